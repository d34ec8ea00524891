//! The store's error type: every variant names the object it concerns.

use arrow::error::ArrowError;

/// Errors raised while opening, reading or committing to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store location could not be parsed or opened.
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// No commit log exists at the location.
    #[error(
        "no cohortdb store at {location}: it has no commit log (create one with `cohortdb ingest`)"
    )]
    NotFound {
        /// The location as given.
        location: String,
    },
    /// An object store operation failed.
    #[error("object store error at {path}: {source}")]
    ObjectStore {
        /// The object concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// A log entry or checkpoint is not valid JSON of the expected shape.
    #[error("commit log file {path} cannot be decoded: {source}")]
    LogDecode {
        /// The log file.
        path: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The store was written by a newer, incompatible cohortdb.
    #[error(
        "{path} has format version {found}; this cohortdb reads format version {supported} only: upgrade cohortdb"
    )]
    UnsupportedFormatVersion {
        /// The log file carrying the version.
        path: String,
        /// The version found.
        found: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// The audit trail is broken at a record.
    #[error("audit record {seq}: {reason}")]
    AuditChain {
        /// The record number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be appended to the audit trail.
    #[error("audit record not written: {reason}")]
    AuditWrite {
        /// Why.
        reason: String,
    },
    /// A concurrent writer committed a change that conflicts with this one; retrying the whole
    /// operation on the new snapshot may succeed.
    #[error("commit conflict at version {version}: {reason}; re-run the operation")]
    CommitConflict {
        /// The version the concurrent writer took.
        version: u64,
        /// What conflicted.
        reason: String,
    },
    /// Concurrent writers kept taking the next version.
    #[error("commit gave up after {attempts} attempts: other writers kept committing first")]
    CommitRetriesExhausted {
        /// How many versions were tried.
        attempts: u32,
    },
    /// A Parquet file could not be written or read.
    #[error("parquet error in {path}: {source}")]
    Parquet {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow array could not be built or read.
    #[error("arrow error while {context}: {source}")]
    Arrow {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: ArrowError,
    },
    /// A sample ID is registered already.
    #[error("sample {sample_id:?} is already in the store (sample_idx {sample_idx})")]
    DuplicateSample {
        /// The participant ID.
        sample_id: String,
        /// Its existing index.
        sample_idx: u32,
    },
    /// A stored file does not have the content its log entry promises.
    #[error("corrupt {what} in {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Which part.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A typed column of a new fragment disagrees with the store's existing column of that name.
    #[error("column {column} is {existing} in the store but {new} in the new data")]
    ColumnTypeConflict {
        /// Column name.
        column: String,
        /// Its type in the store.
        existing: String,
        /// Its type in the new data.
        new: String,
    },
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn object_store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        Self::ObjectStore {
            path: path.to_string(),
            source,
        }
    }

    /// True when the error is a commit conflict that a retry of the operation may resolve.
    pub fn is_retryable_conflict(&self) -> bool {
        matches!(
            self,
            Self::CommitConflict { .. } | Self::CommitRetriesExhausted { .. }
        )
    }
}
