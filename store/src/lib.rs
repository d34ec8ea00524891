//! cohortdb's store: the on-disk format shared by ingest and the query engine.
//!
//! A store is a location (local directory, `file://`, `s3://bucket/prefix`, `memory://name`)
//! holding a commit log (`_log/`), a sample registry (`samples/`) and immutable variant
//! fragments (`variants/contig=<name>/`). Every version is one create-only log entry; readers
//! see consistent snapshots. See `docs/store-format.md` for the contract.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use cohortdb_store::Store;
//! let store = Store::open_or_create("memory://doc-example").unwrap();
//! assert_eq!(store.snapshot().await.unwrap().version(), 0);
//! # });
//! ```

pub mod audit_archive;
pub mod audit_log;
pub mod audit_record;
pub mod audit_rotation;
mod commit_log;
pub mod coverage_bins;
mod error;
pub mod fragment_builder;
pub mod fragment_schema;
pub mod fragment_writer;
pub mod genotype_bitmaps;
pub mod genotype_calls;
mod location;
pub mod log_entry;
pub mod privacy_ledger;
pub mod progress;
pub mod sample_registry;
mod snapshot;
mod vacuum;

#[cfg(test)]
mod fault_injection;

pub use commit_log::{CHECKPOINT_INTERVAL, Commit, MAX_COMMIT_ATTEMPTS, Snapshot, Store};
pub use error::{Result, StoreError};
pub use location::StoreLocation;
pub use snapshot::{SnapshotState, merge_extra_columns};
pub use vacuum::Vacuum;
