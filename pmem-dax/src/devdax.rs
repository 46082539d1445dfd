//! Device-dax character devices (`/dev/daxX.Y`): size and alignment read
//! from sysfs, mapped whole or in aligned parts.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::map::{MapKind, Mapping};

/// A device-dax character device, opened for mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevDax {
    path: PathBuf,
    sys: PathBuf,
    size: u64,
    align: u64,
}

fn read_u64(attr: PathBuf) -> Result<u64> {
    let text = fs::read_to_string(&attr).map_err(|e| Error::Sysfs {
        path: attr.clone(),
        reason: format!("cannot read: {e}"),
    })?;
    text.trim().parse().map_err(|_| Error::Sysfs {
        path: attr,
        reason: format!("not a number: {:?}", text.trim()),
    })
}

impl DevDax {
    /// Looks `path` up: it must be a character device of the `dax` bus.
    pub fn open(path: impl AsRef<Path>) -> Result<DevDax> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|e| Error::io(path, "stat", e))?;
        if !meta.file_type().is_char_device() {
            return Err(Error::NotDevDax {
                path: path.to_owned(),
                reason: "not a character device".into(),
            });
        }
        let rdev = meta.rdev();
        let sys = PathBuf::from(format!(
            "/sys/dev/char/{}:{}",
            libc::major(rdev),
            libc::minor(rdev)
        ));
        let bus = fs::canonicalize(sys.join("subsystem")).unwrap_or_default();
        if bus.file_name().and_then(|n| n.to_str()) != Some("dax") {
            return Err(Error::NotDevDax {
                path: path.to_owned(),
                reason: format!("its sysfs device {} is not on the dax bus", sys.display()),
            });
        }
        let size = read_u64(sys.join("size"))?;
        // Kernels before 5.10 have no per-device `align`; their devices are
        // aligned to the page size at least.
        let align = match read_u64(sys.join("align")) {
            Ok(a) if a.is_power_of_two() => a,
            Ok(a) => {
                return Err(Error::Sysfs {
                    path: sys.join("align"),
                    reason: format!("alignment {a} is not a power of two"),
                })
            }
            Err(_) => 4096,
        };
        Ok(DevDax {
            path: path.to_owned(),
            sys,
            size,
            align,
        })
    }

    /// The device's sysfs directory (`/sys/dev/char/M:m`).
    pub(crate) fn sys(&self) -> &Path {
        &self.sys
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Usable size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Alignment of every mapping's offset and length, in bytes.
    pub fn align(&self) -> u64 {
        self.align
    }

    fn check_aligned(&self, what: &'static str, value: u64) -> Result<()> {
        if !value.is_multiple_of(self.align) {
            return Err(Error::Misaligned {
                path: self.path.clone(),
                what,
                value,
                align: self.align,
            });
        }
        Ok(())
    }

    /// Maps `len` bytes (the rest of the device when `None`) from `offset`.
    /// Both must be multiples of [`DevDax::align`] and inside the device.
    ///
    /// # Safety
    ///
    /// While the mapping lives, nothing outside it may change the bytes it
    /// covers (another process or mapping of the same device).
    pub unsafe fn map(&self, offset: u64, len: Option<u64>) -> Result<Mapping> {
        self.check_aligned("offset", offset)?;
        let len = len.unwrap_or(self.size.saturating_sub(offset));
        self.check_aligned("length", len)?;
        let bad = |reason: String| Error::InvalidSize {
            path: self.path.clone(),
            size: len,
            reason,
        };
        if len == 0 {
            return Err(bad("nothing to map".into()));
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(bad(format!(
                "offset {offset} + length exceeds the device's {} bytes",
                self.size
            )));
        }
        let len = usize::try_from(len).map_err(|_| bad("larger than the address space".into()))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, "open", e))?;
        Mapping::map_file(
            &file,
            &self.path,
            offset,
            len,
            MapKind::DevDax,
            Some(self.sys.clone()),
        )?
        .ok_or_else(|| {
            Error::io(
                &self.path,
                "mmap",
                std::io::Error::from_raw_os_error(libc::EINVAL),
            )
        })
    }
}
