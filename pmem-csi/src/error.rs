//! The driver's error type and its mapping to gRPC status codes.

use tonic::Code;

/// An error of the driver, each variant one gRPC code; messages name the volume or field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required field is missing or malformed, a parameter is unknown, a capability unsupported.
    #[error("{0}")]
    InvalidArgument(String),
    /// The volume (or other object) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A volume of that name exists with an incompatible size or parameters.
    #[error("{0}")]
    AlreadyExists(String),
    /// The size can never be met on this node.
    #[error("{0}")]
    OutOfRange(String),
    /// The node lacks the space right now.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Another operation on the same volume is in flight.
    #[error("{0}")]
    Aborted(String),
    /// The operation is not possible in the volume's current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The device manager is not ready.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else, with its cause.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::OutOfRange(_) => Code::OutOfRange,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::Aborted(_) => Code::Aborted,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

impl From<pmem_ndctl::Error> for Error {
    fn from(e: pmem_ndctl::Error) -> Self {
        use pmem_ndctl::ErrorKind as K;
        let msg = e.to_string();
        match e.kind() {
            K::NotFound => Error::NotFound(msg),
            K::NoSpace => Error::ResourceExhausted(msg),
            K::InvalidArgument => Error::InvalidArgument(msg),
            K::Busy => Error::FailedPrecondition(msg),
            _ => Error::Internal(msg), // PermissionDenied, Io and kinds added later
        }
    }
}

/// The driver's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
