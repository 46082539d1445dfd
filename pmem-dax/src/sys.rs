//! The system calls on open files that `std` lacks (`posix_fallocate`,
//! `flock`, the page size), as safe functions returning `io::Error`.

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
