//! The `cohortdb.v1` protocol: code generated from `proto/cohortdb/v1/*.proto` by
//! `tonic-prost-build`, and nothing else. Field numbers are a contract (see
//! `docs/protocol.md`).
//!
//! ```
//! use cohortdb_proto::v1::{AlleleFrequenciesRequest, Cohort, cohort::Selection};
//! let request = AlleleFrequenciesRequest {
//!     regions: vec!["chr20:1000-2000".into()],
//!     cohort: Some(Cohort { selection: Some(Selection::Predicate("sex = 'F'".into())) }),
//! };
//! assert_eq!(request.regions.len(), 1);
//! ```

/// The generated messages, clients and servers of package `cohortdb.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("cohortdb.v1");
}

/// The encoded `FileDescriptorSet` of `cohortdb.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("cohortdb_v1_descriptor");
