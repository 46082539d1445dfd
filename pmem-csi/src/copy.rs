//! Copying one volume's device into another, durable before it returns.
//!
//! A device-dax destination is written through pmem-dax's [`DevDax`]
//! mapping, one window of [`WINDOW`] bytes at a time, with pmem-dax's
//! non-temporal stores ([`pmem_dax::memcpy`] with [`MemFlags::NONTEMPORAL`]),
//! a fence per window making them durable. A block destination (an LV, an
//! fsdax namespace's `/dev/pmemX`) has no DAX mapping: mapping it would go
//! through the page cache, which reads every page in before it is
//! overwritten; it is written with `O_DIRECT` instead (the pmem driver
//! copies into PMEM with non-temporal stores itself) and `fsync`ed at the
//! end. The source is read with `O_DIRECT` into a small buffer (a block
//! device) or mapped (device-dax, which has no `read(2)`). What lies beyond
//! the copy on the destination is zeroed unless the caller knows it reads
//! zeros already.
//!
//! A source in use while it is copied (mounted, written) gives a copy like
//! the state a power cut at that moment would leave.

use crate::error::{Error, Result};
use pmem_dax::{DevDax, Mapping, MemFlags};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

/// Bytes of the destination mapped at a time.
pub const WINDOW: u64 = 64 << 20;

/// Bytes read from a block source per `pread` (kept small so it stays in the CPU cache).
const CHUNK: usize = 2 << 20;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Copied {
    /// Bytes copied from the source.
    pub bytes: u64,
    /// Bytes zeroed after them on the destination.
    pub zeroed: u64,
    /// Seconds the copy took (without the zeroing).
    pub seconds: f64,
}

impl Copied {
    /// The copy's throughput, MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / f64::from(1u32 << 20) / self.seconds.max(1e-9)
    }
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("{}: {what}: {e}", path.display()))
}

fn dax(e: pmem_dax::Error) -> Error {
    Error::Internal(e.to_string())
}

fn is_char_device(path: &Path) -> Result<bool> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, "stat", e))?;
    let t = meta.file_type();
    if !t.is_block_device() && !t.is_char_device() {
        return Err(Error::Internal(format!(
            "{}: not a block device or a device-dax device",
            path.display()
        )));
    }
    Ok(t.is_char_device())
}

/// Copies the first `len` bytes of device `src` to device `dst` and makes
/// them durable; zeroes the rest of `dst` unless `zeroed` says it reads
/// zeros already. `dst` must hold at least `len` bytes.
pub fn copy_device(src: &Path, len: u64, dst: &Path, zeroed: bool) -> Result<Copied> {
    let dst_size = pmem_ndctl::erase::device_size(dst)?;
    let src_size = pmem_ndctl::erase::device_size(src)?;
    if len > dst_size || len > src_size {
        return Err(Error::Internal(format!(
            "copy of {len} bytes from {} ({src_size} bytes) to {} ({dst_size} bytes): too large",
            src.display(),
            dst.display()
        )));
    }
    let start = Instant::now();
    let mut source = Source::open(src, len)?;
    let mut dest = Dest::open(dst, len)?;
    let window = WINDOW.max(source.align()).max(dest.align());
    let mut at = 0;
    while at < len {
        let n = window.min(len - at);
        dest.write(at, n, &mut source)?;
        at += n;
    }
    dest.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    let zeroed = if zeroed || dst_size == len {
        0
    } else {
        let what = format!("{} beyond a copy of {}", dst.display(), src.display());
        crate::zeroing::zero(&what, dst, Some((len, dst_size - len)))?
    };
    let copied = Copied {
        bytes: len,
        zeroed,
        seconds,
    };
    tracing::info!(from = %src.display(), to = %dst.display(), bytes = len, zeroed, seconds, mib_per_s = copied.mib_per_s(), "copied");
    Ok(copied)
}

/// Where the bytes come from.
enum Source {
    /// A block device read with `O_DIRECT` (when sizes allow) into `buf`.
    Block { file: File, buf: Mapping },
    /// A device-dax device, mapped a window at a time.
    Dax(DevDax),
}

impl Source {
    fn open(path: &Path, len: u64) -> Result<Self> {
        if is_char_device(path)? {
            return Ok(Source::Dax(DevDax::open(path).map_err(dax)?));
        }
        let mut opts = OpenOptions::new();
        opts.read(true);
        if len.is_multiple_of(4096) {
            opts.custom_flags(libc::O_DIRECT);
        }
        let file = opts.open(path).map_err(|e| io(path, "open", e))?;
        // Page-aligned, as O_DIRECT needs.
        let buf = Mapping::anonymous(CHUNK).map_err(dax)?;
        Ok(Source::Block { file, buf })
    }

    fn align(&self) -> u64 {
        match self {
            Source::Block { .. } => 1,
            Source::Dax(d) => d.align(),
        }
    }

    /// Reads `out.len()` bytes from offset `at` into `out`, a buffer of this
    /// process (a block destination's, written with `O_DIRECT` after).
    fn read_into(&mut self, at: u64, out: &mut [u8]) -> Result<()> {
        match self {
            Source::Block { file, .. } => file
                .read_exact_at(out, at)
                .map_err(|e| Error::Internal(format!("read at {at}: {e}"))),
            Source::Dax(_) => {
                self.copy_into(at, out)?;
                // Orders the non-temporal stores before the kernel reads the buffer.
                pmem_dax::drain();
                Ok(())
            }
        }
    }

    /// Copies `out.len()` bytes from offset `at` into `out` with non-temporal stores (not yet fenced).
    fn copy_into(&mut self, at: u64, out: &mut [u8]) -> Result<()> {
        match self {
            Source::Block { file, buf } => {
                let mut done = 0;
                while done < out.len() {
                    let n = CHUNK.min(out.len() - done);
                    let chunk = &mut buf.as_mut_slice()[..n];
                    file.read_exact_at(chunk, at + done as u64).map_err(|e| {
                        Error::Internal(format!("read at {}: {e}", at + done as u64))
                    })?;
                    pmem_dax::memcpy(
                        &mut out[done..done + n],
                        chunk,
                        MemFlags::NONTEMPORAL | MemFlags::NODRAIN,
                    );
                    done += n;
                }
                Ok(())
            }
            Source::Dax(d) => {
                let len = out.len() as u64;
                let map_len = len.div_ceil(d.align()) * d.align();
                let map_len = map_len.min(d.size() - at);
                // SAFETY: the source volume's lock is held for the copy, so
                // the driver changes nothing in it; a user writing through
                // a mapping of their own meanwhile changes only which bytes
                // are copied (the bytes are copied, never interpreted).
                let m = unsafe { d.map(at, Some(map_len)) }.map_err(dax)?;
                pmem_dax::memcpy(
                    out,
                    &m.as_slice()[..out.len()],
                    MemFlags::NONTEMPORAL | MemFlags::NODRAIN,
                );
                Ok(())
            }
        }
    }
}

/// Where the bytes go.
enum Dest {
    /// A block device written with `O_DIRECT` (when sizes allow) from `buf`.
    Block {
        file: File,
        path: std::path::PathBuf,
        buf: Mapping,
    },
    /// A device-dax device, mapped a window at a time.
    Dax(DevDax),
}

impl Dest {
    fn open(path: &Path, len: u64) -> Result<Self> {
        if is_char_device(path)? {
            return Ok(Dest::Dax(DevDax::open(path).map_err(dax)?));
        }
        let mut opts = OpenOptions::new();
        opts.write(true);
        if len.is_multiple_of(4096) {
            opts.custom_flags(libc::O_DIRECT);
        }
        let file = opts.open(path).map_err(|e| io(path, "open", e))?;
        // Page-aligned, as O_DIRECT needs.
        let buf = Mapping::anonymous(CHUNK).map_err(dax)?;
        Ok(Dest::Block {
            file,
            path: path.to_owned(),
            buf,
        })
    }

    fn align(&self) -> u64 {
        match self {
            Dest::Block { .. } => 4096,
            Dest::Dax(d) => d.align(),
        }
    }

    /// Copies `n` bytes at `at` from `src` (durable on return for device-dax,
    /// after [`Dest::finish`] for block devices).
    fn write(&mut self, at: u64, n: u64, src: &mut Source) -> Result<()> {
        match self {
            Dest::Dax(d) => {
                let map_len = (n.div_ceil(d.align()) * d.align()).min(d.size() - at);
                // SAFETY: the destination is a new volume's device that no
                // one else knows of yet (pending, or a placeholder).
                let mut m = unsafe { d.map(at, Some(map_len)) }.map_err(dax)?;
                src.copy_into(at, &mut m.as_mut_slice()[..n as usize])?;
                pmem_dax::drain();
                Ok(())
            }
            Dest::Block { file, path, buf } => {
                let mut done = 0u64;
                while done < n {
                    let k = (CHUNK as u64).min(n - done) as usize;
                    let chunk = &mut buf.as_mut_slice()[..k];
                    src.read_into(at + done, chunk)?;
                    file.write_all_at(chunk, at + done)
                        .map_err(|e| io(path, &format!("write at {}", at + done), e))?;
                    done += k as u64;
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        match self {
            Dest::Dax(_) => Ok(()),
            Dest::Block { file, path, .. } => file.sync_all().map_err(|e| io(path, "fsync", e)),
        }
    }
}
