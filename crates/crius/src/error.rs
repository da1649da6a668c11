//! The daemon's error type, and the ONE place where error kinds become gRPC status codes.

use tonic::{Code, Status};

/// What went wrong, classified by what the CRI client can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object (pod, container, image) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (missing or invalid field).
    #[error("{0}")]
    InvalidArgument(String),
    /// The name or ID is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is not in a state that allows the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The call did not finish in time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A collaborator (runtime, network, registry) is not available.
    #[error("{0}")]
    Unavailable(String),
    /// The call is not implemented by crius.
    #[error("{0}")]
    Unimplemented(String),
    /// Anything else: a bug or an unexpected system failure.
    #[error("{0}")]
    Internal(String),
}

/// The daemon's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An internal error with context: "`what`: `err`".
    pub fn internal(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Error::Internal(format!("{what}: {err}"))
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound(_) => Code::NotFound,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{ctx}: {m}");
        match self {
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::AlreadyExists(m) => Error::AlreadyExists(wrap(m)),
            Error::FailedPrecondition(m) => Error::FailedPrecondition(wrap(m)),
            Error::DeadlineExceeded(m) => Error::DeadlineExceeded(wrap(m)),
            Error::Unavailable(m) => Error::Unavailable(wrap(m)),
            Error::Unimplemented(m) => Error::Unimplemented(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        if matches!(e, Error::Internal(_)) {
            tracing::warn!(error = %e, "internal error");
        }
        Status::new(e.code(), e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Adds context to `io::Result`s and other foreign errors, producing an internal [`Error`].
pub trait Context<T> {
    /// Maps the error to `Error::Internal("what: err")`.
    fn ctx(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::internal(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_grpc_codes() {
        let s: Status = Error::NotFound("container x".into()).into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "container x");
        let s: Status = Error::InvalidArgument("m".into()).context("create").into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "create: m");
        assert_eq!(
            Error::DeadlineExceeded(String::new()).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            Error::AlreadyExists(String::new()).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            Error::FailedPrecondition(String::new()).code(),
            Code::FailedPrecondition
        );
    }
}
