//! The engine's error type.

use cohortdb_store::StoreError;

/// Errors raised while planning or running queries.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// DataFusion failed to plan or run a query.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A region could not be parsed.
    #[error("invalid region {region:?}: {reason}")]
    Region {
        /// The region text.
        region: String,
        /// What is wrong.
        reason: String,
    },
    /// A sample ID is not registered.
    #[error("sample {sample_id:?} is not in the store")]
    UnknownSample {
        /// The ID.
        sample_id: String,
    },
    /// A named cohort is not defined, or its name is not valid.
    #[error("cohort {name:?}: {reason}")]
    Cohort {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An option or argument is not valid for the operation.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller's access tier does not allow the request.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A worker of the cluster was lost during the query, or none answers: the query may be
    /// sent again (it then runs on the workers that remain).
    #[error("worker lost: {0}")]
    WorkerLost(String),
    /// A file named by the user could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
