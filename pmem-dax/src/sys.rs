//! The system calls on open files that `std` lacks (`posix_fallocate`,
//! `flock`, `FIEMAP`, the page size), as safe functions returning `io::Error`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Allocates blocks for the first `len` bytes of `file`, growing it.
pub(crate) fn fallocate(file: &File, len: libc::off_t) -> io::Result<()> {
    // SAFETY: posix_fallocate only reads its integer arguments; the fd is
    // open for the duration of the call (borrowed from `file`).
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

/// Takes an exclusive `flock` on `file` without waiting; it is released
/// when the file is closed.
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock only reads its integer arguments; the fd is open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// One extent of a file: `len` bytes from file offset `logical` stored at byte
/// `physical` of the filesystem's block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
}

/// `struct fiemap_extent` of `<linux/fiemap.h>`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

const BATCH: usize = 64;

/// `struct fiemap` with room for `BATCH` extents.
#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; BATCH],
}

/// `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: u32 = 0xC020_660B;
const FIEMAP_FLAG_SYNC: u32 = 0x1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
/// Extents whose physical place is not known or not a plain block range:
/// UNKNOWN, DELALLOC, ENCODED, DATA_INLINE.
const FIEMAP_EXTENT_NO_PLACE: u32 = 0x2 | 0x4 | 0x8 | 0x200;

/// The extents of `file` (delayed allocations flushed first), in file order.
pub(crate) fn extents(file: &File) -> io::Result<Vec<Extent>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let mut fm = Fiemap {
            start,
            length: u64::MAX - start,
            flags: FIEMAP_FLAG_SYNC,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
            extents: [FiemapExtent::default(); BATCH],
        };
        // SAFETY: `fm` is a `struct fiemap` followed by room for `extent_count`
        // extents, which is all the kernel writes; the fd is open for the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, &mut fm) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = &fm.extents[..(fm.mapped_extents as usize).min(BATCH)];
        let Some(last) = got.last() else {
            return Ok(out);
        };
        out.extend(
            got.iter()
                .filter(|e| e.flags & FIEMAP_EXTENT_NO_PLACE == 0)
                .map(|e| Extent {
                    logical: e.logical,
                    physical: e.physical,
                    len: e.length,
                }),
        );
        if last.flags & FIEMAP_EXTENT_LAST != 0 {
            return Ok(out);
        }
        start = last.logical.saturating_add(last.length);
    }
}
