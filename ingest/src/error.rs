//! Ingest errors: each names the input, the line or record, the field and the reason.

use cohortdb_store::StoreError;

/// Errors raised while reading inputs or writing them to a store.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The input.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The compressed container (BGZF or gzip) is damaged.
    #[error("{file}: compressed data at byte offset {offset}: {reason}")]
    Compression {
        /// The input.
        file: String,
        /// Offset of the damaged block in the compressed file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header is malformed.
    #[error("{file}: header line {line}: {reason}")]
    Header {
        /// The input.
        file: String,
        /// 1-based line number (0 when the header is missing altogether).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record is malformed.
    #[error("{file}: {location}: field {field}: {reason}")]
    Record {
        /// The input.
        file: String,
        /// `line N` for VCF, `record N` for BCF (1-based), plus the site where known.
        location: String,
        /// The VCF column or INFO/FORMAT key.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The inputs of one ingest disagree with each other or with the store.
    #[error("{file}: {reason}")]
    Inputs {
        /// The input.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing to the store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result alias for ingest.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Where in a file a record is, for error messages.
#[derive(Debug, Clone, Copy)]
pub enum RecordLocation {
    /// 1-based text line.
    Line(u64),
    /// 1-based BCF record number.
    Record(u64),
}

impl std::fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Record(n) => write!(f, "record {n}"),
        }
    }
}
