//! Creating or opening a file and mapping it, preferring `MAP_SYNC` (the
//! Rust counterpart of libpmem's `pmem_map_file`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::map::{MapKind, Mapping};
use crate::sys;

/// How [`MapOptions::map`] opens and maps a file.
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    size: Option<u64>,
    create: bool,
    require_dax: bool,
    lock: bool,
}

impl MapOptions {
    /// Open an existing file, do not require DAX.
    pub fn new() -> Self {
        Self::default()
    }

    /// Create the file with `size` bytes (space reserved with
    /// `posix_fallocate`) when it does not exist. An existing file is
    /// mapped at its own length.
    pub fn create(mut self, size: u64) -> Self {
        self.create = true;
        self.size = Some(size);
        self
    }

    /// Fail with [`ErrorKind::NotDax`](crate::ErrorKind::NotDax) instead of
    /// falling back to a plain shared mapping when `MAP_SYNC` is refused.
    pub fn require_dax(mut self, yes: bool) -> Self {
        self.require_dax = yes;
        self
    }

    /// Take an exclusive `flock` on the file, held until the mapping is
    /// dropped; fail with [`ErrorKind::Locked`](crate::ErrorKind::Locked)
    /// when another process holds it. Cooperating processes use this to
    /// keep the contract of [`MapOptions::map`].
    pub fn lock(mut self, yes: bool) -> Self {
        self.lock = yes;
        self
    }

    /// Opens (or creates) `path` and maps all of it, shared and writable,
    /// with `MAP_SHARED_VALIDATE | MAP_SYNC` when the filesystem allows
    /// (then [`Mapping::is_pmem`] is true), else `MAP_SHARED`.
    ///
    /// # Safety
    ///
    /// While the mapping lives, nothing outside it may change or truncate
    /// the file (another process, another mapping, `write(2)`): the mapping
    /// hands out ordinary Rust references to the bytes.
    pub unsafe fn map(&self, path: impl AsRef<Path>) -> Result<Mapping> {
        let path = path.as_ref();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::MissingDirectory {
                path: path.to_owned(),
                dir,
            });
        }
        let (file, created) = self.open(path)?;
        let mapped = self
            .take_lock(&file, path)
            .and_then(|()| self.size_and_map(&file, path, created));
        match mapped {
            Ok(m) if self.lock => Ok(m.holding(file)),
            Ok(m) => Ok(m),
            Err(e) => {
                if created {
                    let _ = fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    fn open(&self, path: &Path) -> Result<(File, bool)> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).mode(0o600);
        if self.create {
            match opts.clone().create_new(true).open(path) {
                Ok(f) => return Ok((f, true)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(path, "create", e)),
            }
        }
        let f = opts.open(path).map_err(|e| Error::io(path, "open", e))?;
        Ok((f, false))
    }

    fn take_lock(&self, file: &File, path: &Path) -> Result<()> {
        if !self.lock {
            return Ok(());
        }
        let Err(err) = sys::lock_exclusive(file) else {
            return Ok(());
        };
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::Locked {
                path: path.to_owned(),
            });
        }
        Err(Error::io(path, "flock", err))
    }

    fn size_and_map(&self, file: &File, path: &Path, created: bool) -> Result<Mapping> {
        let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
        if !meta.is_file() {
            return Err(Error::InvalidSize {
                path: path.to_owned(),
                size: 0,
                reason: "not a regular file (use DevDax::map for /dev/daxX.Y)".into(),
            });
        }
        let size = if created || meta.len() == 0 {
            let size = self.size.unwrap_or(0);
            reserve(file, path, size)?;
            size
        } else {
            meta.len()
        };
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(|| Error::InvalidSize {
                path: path.to_owned(),
                size,
                reason: "larger than the address space".into(),
            })?;
        let sys_dev = Some(PathBuf::from(format!(
            "/sys/dev/block/{}:{}",
            libc::major(meta.dev()),
            libc::minor(meta.dev())
        )));
        if let Some(m) = Mapping::map_file(file, path, 0, len, MapKind::Sync, sys_dev.clone())? {
            return Ok(m);
        }
        if self.require_dax {
            return Err(Error::NotDax {
                path: path.to_owned(),
            });
        }
        Mapping::map_file(file, path, 0, len, MapKind::Shared, sys_dev)?
            .ok_or_else(|| Error::io(path, "mmap", io::Error::from_raw_os_error(libc::EINVAL)))
    }
}

/// Gives an empty file its size, with its blocks allocated so that stores
/// never fault for lack of space.
fn reserve(file: &File, path: &Path, size: u64) -> Result<()> {
    let bad = |reason: &str| Error::InvalidSize {
        path: path.to_owned(),
        size,
        reason: reason.into(),
    };
    if size == 0 {
        return Err(bad("the file is empty and no size was given"));
    }
    let len = libc::off_t::try_from(size).map_err(|_| bad("larger than off_t"))?;
    match sys::fallocate(file, len) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
            Err(bad("not enough free space on the filesystem"))
        }
        Err(e) if e.raw_os_error() == Some(libc::EFBIG) => {
            Err(bad("beyond the filesystem's largest file"))
        }
        Err(e) => Err(Error::io(path, "posix_fallocate", e)),
    }
}

/// Creates `path` with `size` bytes if it does not exist, and maps it
/// whole; falls back to a plain shared mapping when `MAP_SYNC` is refused.
///
/// # Safety
///
/// As for [`MapOptions::map`]: nothing outside the mapping may change the
/// file while it lives.
pub unsafe fn map_file(path: impl AsRef<Path>, size: u64) -> Result<Mapping> {
    // SAFETY: the caller upholds MapOptions::map's contract.
    unsafe { MapOptions::new().create(size).map(path) }
}
