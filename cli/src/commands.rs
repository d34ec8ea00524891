//! One module per command (or group of commands), each with its options and its run.

pub(crate) mod admin;
pub(crate) mod analysis;
pub(crate) mod cohort;
pub(crate) mod export;
pub(crate) mod group_frequencies;
pub(crate) mod ingest;
pub(crate) mod query;
pub(crate) mod serve;
pub(crate) mod store;
pub(crate) mod worker;
