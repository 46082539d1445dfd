//! The crate's error type: one enum, each variant naming the object (path,
//! device, sysfs attribute) and the cause, with [`Error::kind`] to match on.

use std::io;
use std::path::PathBuf;

/// What went wrong, for callers that branch on the class of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A path, or the directory that should hold it, does not exist.
    NotFound,
    /// A system call on a file or device failed.
    Io,
    /// DAX was required but the filesystem refused `MAP_SYNC`.
    NotDax,
    /// A requested size is zero, too large, or does not fit on the device.
    InvalidSize,
    /// An offset or length is not a multiple of the device alignment.
    Misaligned,
    /// A range or typed view lies outside the mapping or is misaligned.
    OutOfRange,
    /// The path is not a device-dax character device.
    NotDevDax,
    /// A sysfs attribute is missing or unreadable.
    Sysfs,
    /// Another process holds the file's lock.
    Locked,
    /// The source or its hardware does not offer what was asked (a bad-block list,
    /// an unsafe-shutdown count).
    NotSupported,
}

/// An error from pmem-dax.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory that should hold `path` does not exist.
    #[error("{path}: directory {} does not exist", dir.display(), path = path.display())]
    MissingDirectory {
        /// The file that was to be created or opened.
        path: PathBuf,
        /// Its missing parent directory.
        dir: PathBuf,
    },
    /// A system call on `path` failed.
    #[error("{}: {op} failed: {source}", path.display())]
    Io {
        /// The file or device.
        path: PathBuf,
        /// The operation that failed (`open`, `mmap`, `msync`...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// DAX was required, but the filesystem holding `path` refused `MAP_SYNC`.
    #[error("{}: the filesystem refused MAP_SYNC (not mounted with -o dax?)", path.display())]
    NotDax {
        /// The file.
        path: PathBuf,
    },
    /// A size does not fit.
    #[error("{}: size {size} does not fit: {reason}", path.display())]
    InvalidSize {
        /// The file or device.
        path: PathBuf,
        /// The size asked for, in bytes.
        size: u64,
        /// Why it does not fit.
        reason: String,
    },
    /// An offset or length is not a multiple of the device alignment.
    #[error("{}: {what} {value:#x} is not a multiple of the device alignment {align:#x}", path.display())]
    Misaligned {
        /// The device.
        path: PathBuf,
        /// `offset` or `length`.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The device's alignment, in bytes.
        align: u64,
    },
    /// A byte range or typed view lies outside the mapping, or is misaligned.
    #[error("{}: {what} at offset {offset} length {len} is outside or misaligned in the {size}-byte mapping", path.display())]
    OutOfRange {
        /// The mapped file or device.
        path: PathBuf,
        /// What was asked for (`bytes`, or a type name).
        what: &'static str,
        /// Offset of the range.
        offset: usize,
        /// Length of the range.
        len: usize,
        /// Size of the mapping.
        size: usize,
    },
    /// The path is not a device-dax character device.
    #[error("{}: not a device-dax character device ({reason})", path.display())]
    NotDevDax {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// Another process holds an exclusive lock on the file.
    #[error("{}: locked by another process", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The source or its hardware does not offer what was asked.
    #[error("{}: not supported: {reason}", path.display())]
    NotSupported {
        /// The file or device.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A sysfs attribute is missing or holds something unexpected.
    #[error("sysfs {}: {reason}", path.display())]
    Sysfs {
        /// The attribute.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingDirectory { .. } => ErrorKind::NotFound,
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } => ErrorKind::Io,
            Error::NotDax { .. } => ErrorKind::NotDax,
            Error::InvalidSize { .. } => ErrorKind::InvalidSize,
            Error::Misaligned { .. } => ErrorKind::Misaligned,
            Error::OutOfRange { .. } => ErrorKind::OutOfRange,
            Error::NotDevDax { .. } => ErrorKind::NotDevDax,
            Error::Sysfs { .. } => ErrorKind::Sysfs,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
