//! Erasing a volume's data before its space is reused: zeroing a block device or a device-dax mapping.

use crate::error::{Error, Result};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

fn io(path: &str, what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("erase {path}: {what}: {e}"))
}

/// Zeroes all of block device `path` (BLKZEROOUT: the kernel writes the zeros).
pub fn block_device(path: &str) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io(path, "open", e))?;
    let size = block_size(&f).map_err(|e| io(path, "size", e))?;
    let range: [u64; 2] = [0, size];
    // SAFETY: BLKZEROOUT reads two u64 (start, length) through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKZEROOUT, range.as_ptr()) };
    if rc != 0 {
        return Err(io(path, "zero out", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The size of the block device open as `f`, bytes (BLKGETSIZE64).
pub(crate) fn block_size(f: &std::fs::File) -> std::io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKGETSIZE64, &mut size) };
    if rc == 0 {
        Ok(size)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Zeroes all of device-dax `path` of `size` bytes through a shared mapping.
pub fn dax_device(path: &str, size: u64) -> Result<()> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io(path, "open", e))?;
    let len = usize::try_from(size)
        .map_err(|_| Error::Internal(format!("erase {path}: size {size} too large")))?;
    // SAFETY: a fresh shared mapping of the whole device; checked for MAP_FAILED below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io(path, "map", std::io::Error::last_os_error()));
    }
    // SAFETY: `p` maps `len` writable bytes that nothing else in this process references.
    unsafe {
        std::ptr::write_bytes(p.cast::<u8>(), 0, len);
        libc::msync(p, len, libc::MS_SYNC);
        libc::munmap(p, len);
    }
    Ok(())
}

// _IOR(0x12, 114, size_t) and _IO(0x12, 127) from <linux/fs.h>.
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
const BLKZEROOUT: libc::c_ulong = 0x127f;
