//! Erasing a volume before its extents can be reused: zeroing the whole block device in the kernel.
//!
//! The device is opened exclusively (`O_EXCL` on a block device), so a
//! mounted or otherwise held volume is refused as in use and left intact;
//! then one `fallocate(FALLOC_FL_ZERO_RANGE)` has the kernel write zeros
//! over every byte (what `blkdiscard --zeroout` does, without a process),
//! and `fsync` waits until they are on the media.

use crate::error::{Error, Result};
use rustix::fs::{FallocateFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io::{Seek, SeekFrom};
use std::path::Path;

/// Overwrites the whole block device at `device` with zeros; `object` names it in errors.
pub fn zero_out(object: &str, device: &Path) -> Result<()> {
    let fd = rustix::fs::open(
        device,
        OFlags::WRONLY | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::BUSY => Error::InUse {
            object: object.to_string(),
            detail: format!("{} is mounted or held open", device.display()),
        },
        Errno::NOENT | Errno::NXIO | Errno::NODEV => Error::NotFound {
            object: format!("{object} ({})", device.display()),
        },
        e => Error::Io {
            object: object.to_string(),
            op: format!("open {} to erase it", device.display()),
            source: e.into(),
        },
    })?;
    let mut file = std::fs::File::from(fd);
    let op = |what: &str| format!("{what} {}", device.display());
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(Error::io(object, op("read the size of")))?;
    rustix::fs::fallocate(
        &file,
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        0,
        len,
    )
    .map_err(|e| Error::Io {
        object: object.to_string(),
        op: op("write zeros over"),
        source: e.into(),
    })?;
    file.sync_all().map_err(Error::io(object, op("flush")))
}
