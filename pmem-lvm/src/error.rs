//! The crate's one error type, with a `kind()` callers match on.

use std::time::Duration;

/// What kind of failure an [`Error`] is, for callers that branch on it
/// (the CSI driver maps these to gRPC codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named VG, LV or volume does not exist.
    NotFound,
    /// The object exists already (for a volume: with another size).
    AlreadyExists,
    /// No volume group has room for the request.
    NoSpace,
    /// The object is in use (mounted, open, held).
    InUse,
    /// The request is malformed: a bad name, a size of zero, a shrink.
    InvalidArgument,
    /// An LVM command did not finish in time and was killed.
    Timeout,
    /// Anything else: a command failed for another reason, its output could
    /// not be read, or the namespace layer failed.
    Other,
}

/// An error of `pmem-lvm`. Every message names the object (`VG
/// pmem-rs-region0`, `volume db-1`, `region0`) and the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist.
    #[error("{object}: not found")]
    NotFound {
        /// What was looked for, e.g. `VG pmem-rs-region0`.
        object: String,
    },
    /// The object exists already.
    #[error("{object}: already exists: {detail}")]
    AlreadyExists {
        /// The object, e.g. `volume db-1`.
        object: String,
        /// How it differs from the request, or LVM's words.
        detail: String,
    },
    /// Not enough free space.
    #[error("{object}: no space: {detail}")]
    NoSpace {
        /// The object the request was for.
        object: String,
        /// What was asked and what would fit.
        detail: String,
    },
    /// The object is in use.
    #[error("{object}: in use: {detail}")]
    InUse {
        /// The busy object.
        object: String,
        /// Who holds it, as far as known.
        detail: String,
    },
    /// The request breaks a rule.
    #[error("{object}: {reason}")]
    InvalidArgument {
        /// The object (or the name) the request was about.
        object: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A command ran past its time limit and was killed.
    #[error("{object}: `{command}` did not finish within {after:?} and was killed")]
    Timeout {
        /// The object operated on.
        object: String,
        /// The command, e.g. `lvm lvcreate`.
        command: String,
        /// The limit.
        after: Duration,
    },
    /// A command failed in a way no other variant describes.
    #[error("{object}: `{command}` failed ({status}): {stderr}")]
    Command {
        /// The object operated on.
        object: String,
        /// The command, e.g. `lvm vgcreate`.
        command: String,
        /// The exit status as text (`exit status 5`, `killed by signal 9`).
        status: String,
        /// What the command wrote to stderr, trimmed.
        stderr: String,
    },
    /// A command's output could not be decoded.
    #[error("{object}: cannot read the output of `{command}`: {reason}")]
    Decode {
        /// The object operated on.
        object: String,
        /// The command.
        command: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The namespace layer (pmem-ndctl) failed.
    #[error("{object}: {source}")]
    Ndctl {
        /// The region or namespace operated on.
        object: String,
        /// The underlying error.
        #[source]
        source: pmem_ndctl::Error,
    },
    /// A system call failed (spawning a command, opening a device).
    #[error("{object}: {op}: {source}")]
    Io {
        /// The object operated on.
        object: String,
        /// What was being done.
        op: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::NoSpace { .. } => ErrorKind::NoSpace,
            Error::InUse { .. } => ErrorKind::InUse,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Ndctl { source, .. } => match source.kind() {
                pmem_ndctl::ErrorKind::NotFound => ErrorKind::NotFound,
                pmem_ndctl::ErrorKind::Busy => ErrorKind::InUse,
                pmem_ndctl::ErrorKind::NoSpace => ErrorKind::NoSpace,
                pmem_ndctl::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                _ => ErrorKind::Other,
            },
            Error::Command { .. } | Error::Decode { .. } | Error::Io { .. } => ErrorKind::Other,
        }
    }

    /// An [`Error::InvalidArgument`] about `object`.
    pub fn invalid(object: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            object: object.to_string(),
            reason: reason.into(),
        }
    }

    /// Wraps a pmem-ndctl error about `object`.
    pub fn ndctl(object: impl std::fmt::Display) -> impl FnOnce(pmem_ndctl::Error) -> Self {
        let object = object.to_string();
        move |source| Error::Ndctl { object, source }
    }

    /// Wraps an I/O error of `op` on `object`.
    pub fn io(
        object: impl std::fmt::Display,
        op: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (object, op) = (object.to_string(), op.into());
        move |source| Error::Io { object, op, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
