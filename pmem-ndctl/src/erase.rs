//! Zeroing a device, or a byte range of it, at the device's write bandwidth: the one erase of the workspace.
//!
//! A block device (an fsdax or sector namespace, an LV on one) is opened
//! exclusively (`O_EXCL`), so a mounted or otherwise held device is refused
//! as [`Error::Busy`] and left intact; the kernel then writes the zeros
//! (`fallocate(FALLOC_FL_ZERO_RANGE)`, what `blkdiscard --zeroout` does) in
//! chunks of [`CHUNK`] bytes, and `fsync` waits for the media. A device-dax
//! character device has no such call and ignores `O_EXCL`: it is refused
//! when a process has it open or mapped (the check namespace destruction
//! uses), then zeroed through a mapping with non-temporal stores, one chunk
//! mapped at a time.
//! After each chunk the caller's progress function gets `(done, total)`.

mod devdax;

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Bytes zeroed between two progress reports.
pub const CHUNK: u64 = 256 << 20;

/// Zeroes all of the block or device-dax device at `path`; returns its size.
///
/// `progress(done, total)` is called after each chunk.
pub fn zero_device(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
    zero(path, None, progress)
}

/// Zeroes `len` bytes from `offset` of the device at `path`; returns `len`.
///
/// On a block device both must be multiples of its logical block size; on
/// a device-dax device any range inside the device is accepted.
pub fn zero_range(
    path: &Path,
    offset: u64,
    len: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    zero(path, Some((offset, len)), progress)
}

/// The size in bytes of the block or device-dax device at `path` (nothing is opened exclusively).
pub fn device_size(path: &Path) -> Result<u64> {
    match kind(path)? {
        Kind::Block => {
            let mut f = File::open(path).map_err(io_error(path, "open"))?;
            f.seek(SeekFrom::End(0))
                .map_err(io_error(path, "read the size of"))
        }
        Kind::DevDax => Ok(devdax::geometry(path)?.0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    DevDax,
}

fn kind(path: &Path) -> Result<Kind> {
    let meta = std::fs::metadata(path).map_err(io_error(path, "stat"))?;
    let t = meta.file_type();
    if t.is_block_device() {
        Ok(Kind::Block)
    } else if t.is_char_device() {
        Ok(Kind::DevDax)
    } else {
        Err(Error::invalid(
            path.display(),
            "not a block device or a device-dax character device",
        ))
    }
}

fn zero(path: &Path, range: Option<(u64, u64)>, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
    match kind(path)? {
        Kind::Block => zero_block(path, range, progress),
        Kind::DevDax => zero_dax(path, range, progress),
    }
}

/// `(offset, len)` of `range` (the whole `size` when `None`), checked to lie inside the device.
fn bounds(path: &Path, range: Option<(u64, u64)>, size: u64) -> Result<(u64, u64)> {
    let (offset, len) = range.unwrap_or((0, size));
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok((offset, len)),
        _ => Err(Error::invalid(
            path.display(),
            format!("range of {len} bytes at {offset} exceeds the device's {size} bytes"),
        )),
    }
}

fn zero_block(
    path: &Path,
    range: Option<(u64, u64)>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => Error::Busy {
                object: path.display().to_string(),
                reason: "mounted or held open (an exclusive open was refused)".into(),
            },
            _ => io_error(path, "open exclusively")(e),
        })?;
    let size = f
        .seek(SeekFrom::End(0))
        .map_err(io_error(path, "read the size of"))?;
    let (offset, len) = bounds(path, range, size)?;
    let block = logical_block_size(&f);
    if offset % block != 0 || len % block != 0 {
        return Err(Error::invalid(
            path.display(),
            format!("range of {len} bytes at {offset} is not a multiple of the {block}-byte block"),
        ));
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        let start = i64::try_from(offset + done)
            .map_err(|_| Error::invalid(path.display(), "offset too large"))?;
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        loop {
            // SAFETY: fallocate takes no pointers; `f` is an open descriptor owned here.
            let rc = unsafe {
                libc::fallocate(
                    f.as_raw_fd(),
                    libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                    start,
                    count,
                )
            };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(io_error(path, "write zeros over")(e));
            }
        }
        done += n;
        progress(done, len);
    }
    f.sync_all().map_err(io_error(path, "flush"))?;
    Ok(len)
}

/// The logical block size of the block device open as `f` (sysfs; 512 when unreadable).
fn logical_block_size(f: &File) -> u64 {
    let rdev = f.metadata().map(|m| m.rdev()).unwrap_or(0);
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    std::fs::read_to_string(format!(
        "/sys/dev/block/{major}:{minor}/queue/logical_block_size"
    ))
    .ok()
    .and_then(|s| s.trim().parse::<u64>().ok())
    .filter(|b| b.is_power_of_two())
    .unwrap_or(512)
}

fn zero_dax(
    path: &Path,
    range: Option<(u64, u64)>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    let canonical = std::fs::canonicalize(path).map_err(io_error(path, "resolve"))?;
    if let Some(name) = canonical.file_name().and_then(|n| n.to_str()) {
        if let Some(reason) = crate::busy::char_device(name) {
            return Err(Error::Busy {
                object: path.display().to_string(),
                reason,
            });
        }
    }
    let geometry = devdax::geometry(path)?;
    let (offset, len) = bounds(path, range, geometry.0)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path, "open"))?;
    devdax::fill_zero(path, &f, (offset, len), geometry, CHUNK, &mut |done| {
        progress(done, len)
    })?;
    Ok(len)
}

fn io_error<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::from_errno(path.display(), op, e.raw_os_error().unwrap_or(libc::EIO))
}
