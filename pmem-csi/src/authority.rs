//! Unix-socket connections whose HTTP/2 `:authority` is made acceptable before the gRPC server sees it.
//!
//! Some gRPC clients send the socket's path (`/var/lib/kubelet/plugins_registry/x-reg.sock`) as
//! the `:authority` of a request over a unix socket; the kubelet does so when it asks a plugin
//! for its registration. The path is not a valid authority, and the HTTP/2 server answers such a
//! request with a stream reset. On a unix socket the authority names nothing, so the reading side
//! of [`LocalAuthority`] replaces any `:authority` value of 9 bytes or more in the client's
//! HEADERS frames with `localhost` (9 bytes). Only the value changes, never the representation,
//! and it never grows: the header table the server keeps then holds entries no larger than the
//! client's, so every index the client sends still means what the client meant.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio_stream::{Stream, StreamExt};

/// The value that replaces a client's `:authority`.
const LOCALHOST: &[u8] = b"localhost";
/// The client connection preface that precedes the first frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// HEADERS frames larger than this pass unchanged (a request's headers are far smaller).
const MAX_REWRITTEN: usize = 64 << 10;
/// The static-table index of `:authority`.
const AUTHORITY_INDEX: u64 = 1;

/// A unix-socket connection whose incoming requests carry an acceptable `:authority`.
pub struct LocalAuthority {
    inner: UnixStream,
    /// Bytes read from the client, not yet examined.
    pending: Vec<u8>,
    /// Examined bytes, not yet handed to the server.
    ready: Vec<u8>,
    ready_at: usize,
    /// Preface bytes still to pass.
    preface: usize,
    /// Bytes of the current non-HEADERS frame's payload still to pass.
    passing: usize,
    eof: bool,
}

impl LocalAuthority {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: UnixStream) -> Self {
        LocalAuthority {
            inner,
            pending: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            preface: PREFACE_LEN,
            passing: 0,
            eof: false,
        }
    }

    /// Moves what can be decided from `pending` to `ready`; false when more input is needed.
    fn examine(&mut self) -> bool {
        let take = |this: &mut Self, n: usize| {
            this.ready.extend(this.pending.drain(..n));
        };
        if self.preface > 0 {
            let n = self.preface.min(self.pending.len());
            self.preface -= n;
            take(self, n);
            return n > 0;
        }
        if self.passing > 0 {
            let n = self.passing.min(self.pending.len());
            self.passing -= n;
            take(self, n);
            return n > 0;
        }
        if self.pending.len() < FRAME_HEADER {
            return false;
        }
        let len =
            u32::from_be_bytes([0, self.pending[0], self.pending[1], self.pending[2]]) as usize;
        let (kind, flags) = (self.pending[3], self.pending[4]);
        if kind != HEADERS || flags & END_HEADERS == 0 || len > MAX_REWRITTEN {
            self.passing = len;
            take(self, FRAME_HEADER);
            return true;
        }
        if self.pending.len() < FRAME_HEADER + len {
            return false;
        }
        let frame: Vec<u8> = self.pending.drain(..FRAME_HEADER + len).collect();
        match rewrite_headers(&frame[..FRAME_HEADER], &frame[FRAME_HEADER..]) {
            Some(new) => self.ready.extend(new),
            None => self.ready.extend(frame),
        }
        true
    }
}

/// The HEADERS frame with its `:authority` value replaced; None when there is nothing to
/// replace or the frame cannot be read (it then passes unchanged and the server judges it).
fn rewrite_headers(header: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let flags = header[4];
    let mut start = 0;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = *payload.first()? as usize;
        start = 1;
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    let end = payload.len().checked_sub(pad)?;
    let block = payload.get(start..end)?;
    let new_block = rewrite_block(block)?;
    let len = payload.len() - block.len() + new_block.len();
    let mut out = Vec::with_capacity(FRAME_HEADER + len);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&header[3..FRAME_HEADER]);
    out.extend_from_slice(&payload[..start]);
    out.extend_from_slice(&new_block);
    out.extend_from_slice(&payload[end..]);
    Some(out)
}

/// An HPACK integer with an `prefix`-bit prefix at `b[at]`: (value, bytes used).
fn integer(b: &[u8], at: usize, prefix: u32) -> Option<(u64, usize)> {
    let max = (1u64 << prefix) - 1;
    let first = u64::from(*b.get(at)?) & max;
    if first < max {
        return Some((first, 1));
    }
    let (mut value, mut shift, mut used) = (max, 0u32, 1);
    loop {
        let byte = *b.get(at + used)?;
        used += 1;
        value = value.checked_add(u64::from(byte & 0x7f).checked_shl(shift)?)?;
        shift += 7;
        if byte & 0x80 == 0 || shift > 56 {
            return (byte & 0x80 == 0).then_some((value, used));
        }
    }
}

/// The length of the HPACK string literal at `b[at]`, prefix included.
fn string_len(b: &[u8], at: usize) -> Option<usize> {
    let (len, used) = integer(b, at, 7)?;
    let total = used.checked_add(usize::try_from(len).ok()?)?;
    (at + total <= b.len()).then_some(total)
}

/// The header block with each long enough `:authority` value replaced; None if none was.
fn rewrite_block(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut at = 0;
    let mut changed = false;
    while at < b.len() {
        let first = b[at];
        let prefix = if first & 0x80 != 0 {
            // Indexed field: nothing to change.
            let (_, used) = integer(b, at, 7)?;
            out.extend_from_slice(&b[at..at + used]);
            at += used;
            continue;
        } else if first & 0xc0 == 0x40 {
            6
        } else if first & 0xe0 == 0x20 {
            // Table size update.
            let (_, used) = integer(b, at, 5)?;
            out.extend_from_slice(&b[at..at + used]);
            at += used;
            continue;
        } else {
            4
        };
        // A literal field: name (index or string), then the value string.
        let (index, used) = integer(b, at, prefix)?;
        let mut name_end = at + used;
        let is_authority = if index == 0 {
            let n = string_len(b, name_end)?;
            let name = &b[name_end..name_end + n];
            name_end += n;
            name.first().is_some_and(|h| h & 0x80 == 0) && &name[1..] == b":authority"
        } else {
            index == AUTHORITY_INDEX
        };
        let value_len = string_len(b, name_end)?;
        out.extend_from_slice(&b[at..name_end]);
        let (_, value_prefix) = integer(b, name_end, 7)?;
        if is_authority && value_len - value_prefix >= LOCALHOST.len() {
            out.push(LOCALHOST.len() as u8);
            out.extend_from_slice(LOCALHOST);
            changed = true;
        } else {
            out.extend_from_slice(&b[name_end..name_end + value_len]);
        }
        at = name_end + value_len;
    }
    changed.then_some(out)
}

impl AsyncRead for LocalAuthority {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.examine() {
                continue;
            }
            if this.eof {
                // What is left cannot be a whole frame: pass it and let the server judge.
                this.ready.append(&mut this.pending);
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 16 << 10];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.pending.extend_from_slice(rb.filled());
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for LocalAuthority {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for LocalAuthority {
    type ConnectInfo = tonic::transport::server::UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::Connected::connect_info(&self.inner)
    }
}

/// The connections accepted on `listener`, each wrapped in [`LocalAuthority`].
pub fn incoming(
    listener: tokio::net::UnixListener,
) -> impl Stream<Item = io::Result<LocalAuthority>> {
    tokio_stream::wrappers::UnixListenerStream::new(listener).map(|c| c.map(LocalAuthority::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal_indexed_name(index: u8, value: &[u8], huffman: bool) -> Vec<u8> {
        let mut v = vec![
            0x40 | index,
            value.len() as u8 | if huffman { 0x80 } else { 0 },
        ];
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_and_nothing_else_changes() {
        let path = b"/var/lib/kubelet/plugins_registry/x-reg.sock";
        let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (indexed)
        block.extend(literal_indexed_name(1, path, false));
        block.extend(literal_indexed_name(
            4,
            b"/pluginregistration.Registration/GetInfo",
            false,
        ));
        let out = rewrite_block(&block).expect("rewritten");
        let mut want = vec![0x83, 0x86];
        want.extend(literal_indexed_name(1, b"localhost", false));
        want.extend(literal_indexed_name(
            4,
            b"/pluginregistration.Registration/GetInfo",
            false,
        ));
        assert_eq!(out, want);
    }

    #[test]
    fn huffman_coded_and_literal_names_are_found_short_values_are_left() {
        // A Huffman-coded value of 20 bytes, without indexing, literal name ":authority".
        let mut block = vec![0x00, 10];
        block.extend_from_slice(b":authority");
        block.push(0x80 | 20);
        block.extend_from_slice(&[0xaa; 20]);
        let out = rewrite_block(&block).expect("rewritten");
        let mut want = vec![0x00, 10];
        want.extend_from_slice(b":authority");
        want.push(9);
        want.extend_from_slice(b"localhost");
        assert_eq!(out, want);
        // Too short to replace without growing the table entry: left alone.
        assert_eq!(rewrite_block(&literal_indexed_name(1, b"a:1", false)), None);
        // Other headers are never touched.
        assert_eq!(
            rewrite_block(&literal_indexed_name(4, b"/a/very/long/path/value", false)),
            None
        );
    }

    #[test]
    fn truncated_or_odd_blocks_are_left_for_the_server() {
        assert_eq!(rewrite_block(&[0x41, 0x7f]), None);
        assert_eq!(rewrite_block(&[0x41, 30, b'/', b'x']), None);
        assert_eq!(
            rewrite_block(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn padded_and_prioritised_frames_keep_their_padding_and_priority() {
        let block = literal_indexed_name(1, b"/run/some/socket.sock", false);
        let mut payload = vec![3]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 1, 16]); // priority
        payload.extend(&block);
        payload.extend_from_slice(&[0, 0, 0]);
        let header = [
            0,
            0,
            payload.len() as u8,
            HEADERS,
            END_HEADERS | PADDED | PRIORITY,
            0,
            0,
            0,
            1,
        ];
        let out = rewrite_headers(&header, &payload).expect("rewritten");
        let len = out[2] as usize;
        assert_eq!(len, out.len() - FRAME_HEADER);
        assert_eq!(&out[3..9], &header[3..9]);
        assert_eq!(&out[9..15], &payload[..6]);
        assert_eq!(
            &out[15..len + 9 - 3],
            &literal_indexed_name(1, b"localhost", false)[..]
        );
        assert_eq!(&out[out.len() - 3..], &[0, 0, 0]);
    }
}
