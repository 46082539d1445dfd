//! The crate's one error type, with a `kind()` callers match on.

use crate::size::Size;
use std::fmt;

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The object is in use (mounted, mapped, held by device-mapper, enabled).
    Busy,
    /// The request is malformed or breaks a rule (alignment, minimum size, name length).
    InvalidArgument,
    /// There is not enough contiguous free space.
    NoSpace,
    /// The caller lacks the privilege (usually: not root).
    PermissionDenied,
    /// Any other failure of the library or the kernel, with its errno.
    Io(i32),
}

/// An error of `pmem-ndctl`. Every message names the object (`region1`,
/// `namespace0.2`, `nmem0`) and the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object does not exist.
    #[error("{object}: not found")]
    NotFound {
        /// The object looked for, e.g. `region7`.
        object: String,
    },
    /// The object is in use.
    #[error("{object}: busy: {reason}")]
    Busy {
        /// The busy object.
        object: String,
        /// Why it is considered busy.
        reason: String,
    },
    /// The request breaks a rule.
    #[error("{object}: {reason}")]
    InvalidArgument {
        /// The object the request was about.
        object: String,
        /// The rule it breaks.
        reason: String,
    },
    /// Not enough contiguous space for the request.
    #[error("{object}: no room for {requested}: the largest that fits is {largest}")]
    NoSpace {
        /// The region (or set of regions) asked.
        object: String,
        /// The size asked for.
        requested: Size,
        /// The largest size that could be satisfied right now.
        largest: Size,
    },
    /// The operation needs privileges the caller lacks.
    #[error("{object}: permission denied: {op} (run as root)")]
    PermissionDenied {
        /// The object operated on.
        object: String,
        /// What was being done.
        op: String,
    },
    /// A library or kernel call failed.
    #[error("{object}: {op} failed: {}", errno_text(*.errno))]
    Io {
        /// The object operated on.
        object: String,
        /// What was being done.
        op: String,
        /// The positive errno.
        errno: i32,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::NoSpace { .. } => ErrorKind::NoSpace,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Io { errno, .. } => ErrorKind::Io(*errno),
        }
    }

    /// An [`Error::InvalidArgument`] about `object`.
    pub fn invalid(object: impl fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            object: object.to_string(),
            reason: reason.into(),
        }
    }

    /// Turns a C return code or negative errno from `op` on `object` into an error.
    ///
    /// `EPERM`/`EACCES` become [`Error::PermissionDenied`], `EBUSY` becomes
    /// [`Error::Busy`], `ENOENT`/`ENXIO`/`ENODEV` become [`Error::NotFound`],
    /// `ENOSPC` becomes [`Error::Io`] with that errno (the caller that knows
    /// the sizes reports [`Error::NoSpace`] itself).
    pub fn from_errno(object: impl fmt::Display, op: impl Into<String>, errno: i32) -> Self {
        let object = object.to_string();
        let op = op.into();
        match errno.abs() {
            libc::EPERM | libc::EACCES => Error::PermissionDenied { object, op },
            libc::EBUSY => Error::Busy {
                object,
                reason: format!("{op}: device or resource busy"),
            },
            libc::ENOENT | libc::ENXIO | libc::ENODEV => Error::NotFound { object },
            e => Error::Io {
                object,
                op,
                errno: e,
            },
        }
    }
}

fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object_and_cause() {
        let e = Error::invalid(
            "region1",
            "size 17 MiB is not a multiple of the 16 MiB alignment",
        );
        assert_eq!(
            e.to_string(),
            "region1: size 17 MiB is not a multiple of the 16 MiB alignment"
        );
        let e = Error::NoSpace {
            object: "region0".into(),
            requested: Size(3 << 30),
            largest: Size(752 << 20),
        };
        assert_eq!(
            e.to_string(),
            "region0: no room for 3 GiB: the largest that fits is 752 MiB"
        );
        assert_eq!(e.kind(), ErrorKind::NoSpace);
    }

    #[test]
    fn errno_classification() {
        assert_eq!(
            Error::from_errno("namespace0.0", "disable", -libc::EBUSY).kind(),
            ErrorKind::Busy
        );
        assert_eq!(
            Error::from_errno("region0", "enable", libc::EACCES).kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            Error::from_errno("nmem3", "open", libc::ENXIO).kind(),
            ErrorKind::NotFound
        );
        let e = Error::from_errno("region0", "set size", -libc::EIO);
        assert_eq!(e.kind(), ErrorKind::Io(libc::EIO));
        assert_eq!(
            e.to_string(),
            "region0: set size failed: Input/output error (os error 5)"
        );
    }
}
