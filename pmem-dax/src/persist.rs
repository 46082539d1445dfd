//! The persistence primitives: flush, drain, persist, and copies and fills
//! that leave their bytes durable, as methods of [`Features`] and as free
//! functions using the process-wide choice ([`features`]).

use std::ops::{BitOr, Range};
use std::ptr;

use crate::config::{features, Features, Flush, Movnt};
use crate::flush::{flush_range, sfence, LINE};
use crate::nt;

/// Options of [`memcpy`], [`memmove`] and [`memset`], combined with `|`;
/// the same choices as libpmem's `PMEM_F_MEM_*` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemFlags(u8);

impl MemFlags {
    /// Flush and drain: the bytes are durable on return.
    pub const PERSIST: MemFlags = MemFlags(0);
    /// Skip the final fence; call [`drain`] before relying on durability.
    pub const NODRAIN: MemFlags = MemFlags(1);
    /// Neither flush nor drain: plain stores, made durable later by
    /// [`persist`] (implies `NODRAIN`).
    pub const NOFLUSH: MemFlags = MemFlags(2);
    /// Non-temporal stores whatever the size.
    pub const NONTEMPORAL: MemFlags = MemFlags(4);
    /// Ordinary stores and flushes whatever the size.
    pub const TEMPORAL: MemFlags = MemFlags(8);

    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: MemFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for MemFlags {
    type Output = MemFlags;
    fn bitor(self, rhs: MemFlags) -> MemFlags {
        MemFlags(self.0 | rhs.0)
    }
}

impl Features {
    /// Writes back the cache lines holding `buf`, without waiting.
    #[inline]
    pub fn flush_buf(&self, buf: &[u8]) {
        // SAFETY: a slice is mapped memory of this process.
        unsafe { flush_range(self.flush(), buf.as_ptr(), buf.len()) };
    }

    /// Waits until earlier flushes and non-temporal stores are durable.
    #[inline]
    pub fn drain(&self) {
        sfence();
    }

    /// Makes `buf` durable: flush, then drain.
    #[inline]
    pub fn persist(&self, buf: &[u8]) {
        self.flush_buf(buf);
        if self.flush_needs_fence() {
            sfence();
        }
    }

    /// Copies `src` into `dst` (equal lengths) as `flags` say.
    ///
    /// # Panics
    ///
    /// When the lengths differ, like [`slice::copy_from_slice`].
    #[inline]
    pub fn memcpy(&self, dst: &mut [u8], src: &[u8], flags: MemFlags) {
        assert_eq!(
            dst.len(),
            src.len(),
            "memcpy: destination and source lengths differ"
        );
        // SAFETY: both slices are valid for len bytes, and a `&mut` slice
        // never overlaps a shared one.
        unsafe { self.copy_raw(dst.as_mut_ptr(), src.as_ptr(), src.len(), flags) };
    }

    /// Copies `buf[src]` to `buf[dest..]` (overlap allowed) as `flags` say.
    ///
    /// # Panics
    ///
    /// When either range is out of bounds, like [`slice::copy_within`].
    #[inline]
    pub fn memmove(&self, buf: &mut [u8], src: Range<usize>, dest: usize, flags: MemFlags) {
        assert!(
            src.start <= src.end && src.end <= buf.len(),
            "memmove: source range {src:?} out of bounds of {} bytes",
            buf.len()
        );
        let len = src.end - src.start;
        assert!(
            dest <= buf.len() - len,
            "memmove: destination {dest}+{len} out of bounds of {} bytes",
            buf.len()
        );
        let base = buf.as_mut_ptr();
        // SAFETY: both ranges are inside `buf` (checked above); copy_raw
        // handles overlap.
        unsafe { self.copy_raw(base.add(dest), base.add(src.start), len, flags) };
    }

    /// Fills `dst` with `byte` as `flags` say.
    #[inline]
    pub fn memset(&self, dst: &mut [u8], byte: u8, flags: MemFlags) {
        // SAFETY: the slice is valid for writes of its length.
        unsafe { self.fill_raw(dst.as_mut_ptr(), byte, dst.len(), flags) };
    }

    fn use_movnt(&self, len: usize, flags: MemFlags) -> bool {
        if self.movnt() == Movnt::None || flags.contains(MemFlags::TEMPORAL) {
            return false;
        }
        if flags.contains(MemFlags::NONTEMPORAL) {
            return true;
        }
        !flags.contains(MemFlags::NOFLUSH) && len >= self.movnt_threshold()
    }

    fn finish(&self, flags: MemFlags, movnt: bool) {
        let drain = !flags.contains(MemFlags::NODRAIN) && !flags.contains(MemFlags::NOFLUSH);
        if drain && (movnt || self.flush_needs_fence()) {
            sfence();
        }
    }

    /// Copies `len` bytes from `src` to `dst`; the ranges may overlap.
    ///
    /// # Safety
    ///
    /// `src` is valid for `len` bytes of reads and `dst` for `len` bytes of
    /// writes.
    #[inline]
    pub(crate) unsafe fn copy_raw(
        &self,
        dst: *mut u8,
        src: *const u8,
        len: usize,
        flags: MemFlags,
    ) {
        let how = if flags.contains(MemFlags::NOFLUSH) {
            Flush::Skip
        } else {
            self.flush()
        };
        let movnt = self.use_movnt(len, flags);
        // Head, body and tail split [0, len) into consecutive parts, so each
        // pointer offset and length below stays inside the caller's ranges.
        // `ptr::copy` allows overlap, and the order of the parts (low to high
        // when dst <= src, high to low otherwise) never reads a byte that was
        // already overwritten.
        if !movnt {
            // SAFETY: the caller made both ranges valid for len bytes.
            unsafe {
                ptr::copy(src, dst, len);
                flush_range(how, dst, len);
            }
        } else {
            let head = ((LINE - (dst as usize & (LINE - 1))) & (LINE - 1)).min(len);
            let body = (len - head) & !(LINE - 1);
            let tail = len - head - body;
            let (d, s) = (dst as usize, src as usize);
            if d <= s || d >= s + len {
                // SAFETY: parts inside the ranges, low to high (see above);
                // dst + head is 64-byte aligned and body a multiple of 64.
                unsafe {
                    ptr::copy(src, dst, head);
                    flush_range(how, dst, head);
                    nt::copy_fwd(self.movnt(), dst.add(head), src.add(head), body);
                    ptr::copy(src.add(head + body), dst.add(head + body), tail);
                    flush_range(how, dst.add(head + body), tail);
                }
            } else {
                // SAFETY: parts inside the ranges, high to low as dst > src
                // needs; alignment of the body as above.
                unsafe {
                    ptr::copy(src.add(head + body), dst.add(head + body), tail);
                    flush_range(how, dst.add(head + body), tail);
                    nt::copy_bwd(self.movnt(), dst.add(head), src.add(head), body);
                    ptr::copy(src, dst, head);
                    flush_range(how, dst, head);
                }
            }
        }
        self.finish(flags, movnt);
    }

    /// Fills `len` bytes at `dst` with `byte`.
    ///
    /// # Safety
    ///
    /// `dst` is valid for `len` bytes of writes.
    #[inline]
    pub(crate) unsafe fn fill_raw(&self, dst: *mut u8, byte: u8, len: usize, flags: MemFlags) {
        let how = if flags.contains(MemFlags::NOFLUSH) {
            Flush::Skip
        } else {
            self.flush()
        };
        let movnt = self.use_movnt(len, flags);
        // SAFETY: as in copy_raw, head, body and tail stay inside [0, len).
        unsafe {
            if !movnt {
                ptr::write_bytes(dst, byte, len);
                flush_range(how, dst, len);
            } else {
                let head = ((LINE - (dst as usize & (LINE - 1))) & (LINE - 1)).min(len);
                let body = (len - head) & !(LINE - 1);
                let tail = len - head - body;
                ptr::write_bytes(dst, byte, head);
                flush_range(how, dst, head);
                nt::fill(self.movnt(), dst.add(head), byte, body);
                ptr::write_bytes(dst.add(head + body), byte, tail);
                flush_range(how, dst.add(head + body), tail);
            }
        }
        self.finish(flags, movnt);
    }
}

/// Writes back the cache lines holding `buf`, without waiting ([`drain`]
/// waits). A no-op under eADR or `PMEM_NO_FLUSH=1`.
#[inline]
pub fn flush(buf: &[u8]) {
    features().flush_buf(buf);
}

/// Waits until earlier flushes and non-temporal stores are durable (`sfence`).
#[inline]
pub fn drain() {
    sfence();
}

/// Makes `buf` durable: [`flush`], then [`drain`].
#[inline]
pub fn persist(buf: &[u8]) {
    features().persist(buf);
}

/// Copies `src` into `dst` and makes it durable. Panics if lengths differ.
#[inline]
pub fn memcpy_persist(dst: &mut [u8], src: &[u8]) {
    features().memcpy(dst, src, MemFlags::PERSIST);
}

/// Copies `src` into `dst` and flushes it, without the final drain.
#[inline]
pub fn memcpy_nodrain(dst: &mut [u8], src: &[u8]) {
    features().memcpy(dst, src, MemFlags::NODRAIN);
}

/// Copies `src` into `dst` as `flags` say. Panics if lengths differ.
#[inline]
pub fn memcpy(dst: &mut [u8], src: &[u8], flags: MemFlags) {
    features().memcpy(dst, src, flags);
}

/// Copies `buf[src]` to `buf[dest..]` (ranges may overlap) and makes it
/// durable. Panics when out of bounds, like [`slice::copy_within`].
#[inline]
pub fn memmove_persist(buf: &mut [u8], src: Range<usize>, dest: usize) {
    features().memmove(buf, src, dest, MemFlags::PERSIST);
}

/// Like [`memmove_persist`], without the final drain.
#[inline]
pub fn memmove_nodrain(buf: &mut [u8], src: Range<usize>, dest: usize) {
    features().memmove(buf, src, dest, MemFlags::NODRAIN);
}

/// Copies `buf[src]` to `buf[dest..]` as `flags` say.
#[inline]
pub fn memmove(buf: &mut [u8], src: Range<usize>, dest: usize, flags: MemFlags) {
    features().memmove(buf, src, dest, flags);
}

/// Fills `dst` with `byte` and makes it durable.
#[inline]
pub fn memset_persist(dst: &mut [u8], byte: u8) {
    features().memset(dst, byte, MemFlags::PERSIST);
}

/// Fills `dst` with `byte` and flushes it, without the final drain.
#[inline]
pub fn memset_nodrain(dst: &mut [u8], byte: u8) {
    features().memset(dst, byte, MemFlags::NODRAIN);
}

/// Fills `dst` with `byte` as `flags` say.
#[inline]
pub fn memset(dst: &mut [u8], byte: u8, flags: MemFlags) {
    features().memset(dst, byte, flags);
}
