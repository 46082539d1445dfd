//! Zeroing a device-dax character device: its geometry from sysfs, one mapped window at a time, non-temporal stores.
//!
//! Device-dax has no write(2) and no kernel zeroing call: the bytes are
//! written through a shared mapping. On x86_64 they are written with
//! non-temporal stores (SSE2, part of every x86_64 CPU) and fenced, so they
//! reach the persistence domain without a cache flush per line; elsewhere
//! with plain stores and `msync`.

use crate::error::{Error, Result};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Size and mapping alignment of the device-dax device at `path`, from sysfs.
pub(super) fn geometry(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(super::io_error(path, "stat"))?;
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    let read = |attr: &str| {
        std::fs::read_to_string(format!("/sys/dev/char/{major}:{minor}/{attr}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let size = read("size").ok_or_else(|| {
        Error::invalid(path.display(), "not a device-dax device (no size in sysfs)")
    })?;
    let align = read("align")
        .filter(|a| a.is_power_of_two())
        .unwrap_or(2 << 20);
    Ok((size, align))
}

/// Writes zeros over `len` bytes at `offset` of the device open as `f`,
/// mapping windows of about `window` bytes aligned to `align`; `progress`
/// gets the bytes done after each window.
pub(super) fn fill_zero(
    path: &Path,
    f: &std::fs::File,
    (offset, len): (u64, u64),
    (size, align): (u64, u64),
    window: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let window = window.div_ceil(align) * align;
    let end = offset + len;
    let mut at = offset / align * align;
    while at < end {
        let map_len = window.min(size - at);
        let n = usize::try_from(map_len)
            .map_err(|_| Error::invalid(path.display(), "window too large"))?;
        let off = libc::off_t::try_from(at)
            .map_err(|_| Error::invalid(path.display(), "offset too large"))?;
        // SAFETY: a new shared mapping of `n` bytes of an open descriptor;
        // MAP_FAILED is checked before the pointer is used.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                n,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(super::io_error(path, "map")(std::io::Error::last_os_error()));
        }
        let from = (offset.max(at) - at) as usize;
        let to = (end.min(at + map_len) - at) as usize;
        // SAFETY: `p` maps `n` writable bytes that nothing else references
        // (the caller checked that no process has the device open), and
        // `from..to` lies within them.
        unsafe {
            zero(p.cast::<u8>().add(from), to - from);
            libc::munmap(p, n);
        }
        at += map_len;
        progress(end.min(at) - offset);
    }
    Ok(())
}

/// Writes `n` zero bytes at `p` so that they reach the persistence domain.
///
/// # Safety
/// `p..p+n` must be valid for writes and not referenced elsewhere.
#[cfg(target_arch = "x86_64")]
unsafe fn zero(p: *mut u8, n: usize) {
    use std::arch::x86_64::{
        __m128i, _mm_clflush, _mm_setzero_si128, _mm_sfence, _mm_stream_si128,
    };
    let head = p.align_offset(16).min(n);
    let body = (n - head) / 16;
    let tail = n - head - body * 16;
    // SAFETY: every address written lies in `p..p+n` (the caller's
    // promise); the body's stores are 16-byte aligned by `head`.
    unsafe {
        std::ptr::write_bytes(p, 0, head);
        let z = _mm_setzero_si128();
        let q = p.add(head).cast::<__m128i>();
        for i in 0..body {
            _mm_stream_si128(q.add(i), z);
        }
        let t = p.add(head + body * 16);
        std::ptr::write_bytes(t, 0, tail);
        // The unaligned edges went through the cache: write them back.
        if head > 0 {
            _mm_clflush(p);
        }
        if tail > 0 {
            _mm_clflush(t);
        }
        _mm_sfence();
    }
}

/// Writes `n` zero bytes at `p` and syncs the mapping.
///
/// # Safety
/// `p..p+n` must be valid for writes and not referenced elsewhere.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn zero(p: *mut u8, n: usize) {
    // SAFETY: the caller's promise.
    unsafe {
        std::ptr::write_bytes(p, 0, n);
        libc::msync(p.cast(), n, libc::MS_SYNC);
    }
}
