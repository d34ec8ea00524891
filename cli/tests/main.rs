//! The command line's integration tests, in one test binary: each module is one capability,
//! checked against an independent oracle. One binary links DataFusion once instead of once per
//! file, which keeps a clean CI build within its disk and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oracle_support;

/// The harnesses that more than one module shares.
mod support {
    pub mod cluster_harness;
    pub mod disclosure_harness;
    pub mod s3_harness;
    pub mod server_process;
    pub mod serving_harness;
}

mod association_oracle;
mod batch_merge;
mod bcftools_oracle;
mod carrier_pages;
mod cluster_ingest;
mod cluster_queries;
mod cluster_workflow;
mod cohort_operations_oracle;
mod compaction;
mod consent_withdrawal;
mod coverage_oracle;
mod crash_safety;
mod disclosure_attacks;
mod export_oracle;
mod format_fields_oracle;
mod object_storage;
mod phenotype_tables;
mod serving;
mod serving_attacks;
mod serving_tls;
mod simulated_reference;
mod site_cache;
mod streamed_answers;
mod user_mistakes;
mod variant_filters;
