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
    /// Sample IDs that are not registered: the first [`UNKNOWN_SAMPLES_NAMED`] of them, and
    /// how many more there are.
    #[error("{}", unknown_samples_text(.named, *.more))]
    UnknownSamples {
        /// The first unknown IDs, in the order given.
        named: Vec<String>,
        /// How many more were unknown.
        more: usize,
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
    /// A page token of a store version this engine no longer reads: the answer must be asked
    /// for again from its first page.
    #[error("{0}")]
    PageExpired(String),
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

/// How many unknown sample IDs an error names before it counts the rest.
pub const UNKNOWN_SAMPLES_NAMED: usize = 20;

impl EngineError {
    /// The error for unknown sample IDs `ids` (in the order given; at least one).
    pub fn unknown_samples<S: Into<String>>(ids: impl IntoIterator<Item = S>) -> Self {
        let mut named = Vec::new();
        let mut more = 0;
        for id in ids {
            if named.len() < UNKNOWN_SAMPLES_NAMED {
                named.push(id.into());
            } else {
                more += 1;
            }
        }
        Self::UnknownSamples { named, more }
    }
}

fn unknown_samples_text(named: &[String], more: usize) -> String {
    let quoted: Vec<String> = named.iter().map(|id| format!("{id:?}")).collect();
    match (quoted.as_slice(), more) {
        ([one], 0) => format!("sample {one} is not in the store"),
        (_, 0) => format!(
            "{} samples are not in the store: {}",
            quoted.len(),
            quoted.join(", ")
        ),
        _ => format!(
            "{} samples are not in the store: {} and {more} more",
            quoted.len() + more,
            quoted.join(", ")
        ),
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
