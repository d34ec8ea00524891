//! The server's error type, and the one place where errors become gRPC status codes.

use cohortdb_engine::EngineError;
use cohortdb_store::StoreError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

/// Errors of the server and of the requests it serves.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No bearer token, or one the tokens file does not list.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The engine refused or failed the request.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed (including the audit trail).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Encoding results failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// Arrow Flight encoding or decoding failed.
    #[error(transparent)]
    Flight(#[from] arrow_flight::error::FlightError),
    /// The tokens file is not valid.
    #[error("tokens file {path}: {reason}")]
    Tokens {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listener or transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The engine error inside a DataFusion error, if any (table functions and schema providers
/// pass engine errors through DataFusion as `External`).
fn engine_error_in(e: &DataFusionError) -> Option<&EngineError> {
    match e.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<EngineError>(),
        _ => None,
    }
}

fn engine_code(e: &EngineError) -> Code {
    match e {
        EngineError::PermissionDenied(_) => Code::PermissionDenied,
        EngineError::UnknownSamples { .. } => Code::NotFound,
        EngineError::Cohort { .. } => Code::NotFound,
        EngineError::Region { .. } | EngineError::InvalidArgument(_) => Code::InvalidArgument,
        EngineError::Store(s) => store_code(s),
        EngineError::DataFusion(d) => match engine_error_in(d) {
            Some(inner) => engine_code(inner),
            None => datafusion_code(d),
        },
        EngineError::Io { .. } => Code::InvalidArgument,
        EngineError::WorkerLost(_) => Code::Unavailable,
        EngineError::PageExpired(_) => Code::FailedPrecondition,
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::CommitConflict { .. } => Code::Aborted,
        StoreError::NotFound { .. } => Code::NotFound,
        _ => Code::Internal,
    }
}

fn datafusion_code(e: &DataFusionError) -> Code {
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Code::InvalidArgument,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        _ => Code::Internal,
    }
}

impl ServerError {
    /// The gRPC code of this error: the only mapping from errors to codes.
    pub fn code(&self) -> Code {
        match self {
            ServerError::Unauthenticated(_) => Code::Unauthenticated,
            ServerError::InvalidArgument(_) => Code::InvalidArgument,
            ServerError::Engine(e) => engine_code(e),
            ServerError::Store(e) => store_code(e),
            ServerError::Flight(_) => Code::InvalidArgument,
            ServerError::Arrow(_)
            | ServerError::Tokens { .. }
            | ServerError::Io { .. }
            | ServerError::Transport(_) => Code::Internal,
        }
    }

    /// How the audit trail records this error.
    pub fn decision(&self) -> String {
        match self.code() {
            Code::PermissionDenied | Code::Unauthenticated => format!("denied: {}", self.message()),
            _ => format!("failed: {}", self.message()),
        }
    }
}

impl From<DataFusionError> for ServerError {
    fn from(e: DataFusionError) -> Self {
        ServerError::Engine(EngineError::DataFusion(e))
    }
}

impl ServerError {
    /// The message a client sees: an engine error's own text, not DataFusion's wrapping of it.
    fn message(&self) -> String {
        if let ServerError::Engine(EngineError::DataFusion(d)) = self
            && let Some(inner) = engine_error_in(d)
        {
            return inner.to_string();
        }
        self.to_string()
    }
}

impl From<ServerError> for Status {
    fn from(e: ServerError) -> Self {
        Status::new(e.code(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_survives_datafusion_wrapping() {
        let denied = EngineError::PermissionDenied("no".into());
        let wrapped = DataFusionError::Context(
            "planning".into(),
            Box::new(DataFusionError::External(Box::new(denied))),
        );
        assert_eq!(ServerError::from(wrapped).code(), Code::PermissionDenied);
        let conflict = StoreError::CommitConflict {
            version: 3,
            reason: "x".into(),
        };
        assert_eq!(ServerError::Store(conflict).code(), Code::Aborted);
    }
}
