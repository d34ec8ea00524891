//! cohortdb's query engine: DataFusion tables over a store snapshot, genotype bitmap
//! functions, and cohort operations.
//!
//! Tables: `variants` (one row per ALT allele, genotypes as roaring bitmaps), `samples`,
//! `genotypes` (one row per non-reference call, [`genotypes_view`]; per-group counts over it
//! are rewritten to bitmaps by [`genotype_aggregates`]) and the phenotype tables by name.
//! Functions: `allele_count`, `allele_number`, `bitmap_and_count`, `bitmap_or`, `bitmap_and`,
//! `bitmap_andnot`, `bitmap_count`, `bitmap_to_list`, `genotype_calls` and the aggregate
//! `sample_set`; in [`CohortEngine::sql_session`] also the cohort operations as table
//! functions ([`table_functions`]).
//!
//! Operations: allele frequencies ([`allele_counts`]), carriers, one sample's genotypes, case/control tests
//! ([`case_control`]), regression on dosage ([`association`]) and export to VCF/BCF with a
//! tabix or CSI index ([`vcf_export`]); cohort coverage per bin from BAM depth ([`coverage`]).
//! Counting and carriers read decoded variant rows from
//! a process-wide cache ([`site_cache`]) instead of planning a query.
//!
//! Access: tiers, pseudonyms and phenotype allow-lists ([`access_policy`]); for the aggregate
//! tier, noise keyed by the question and a per-project privacy budget in the store
//! ([`disclosure_control`], [`count_suppression`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use cohortdb_engine::{CohortEngine, Region, CohortSpec};
//! let engine = CohortEngine::open("/tmp/store").await?;
//! let set = engine.resolve(&CohortSpec::All)?;
//! let regions = Region::parse_list("chr20:20000001-20100000")?;
//! let batch = engine.allele_frequencies(&regions, &set).await?;
//! # Ok(()) }
//! ```

pub mod cohort;
mod cohort_engine;
mod error;
pub mod export;
pub mod maintenance;
pub mod ops;
pub mod policy;
mod region;
pub mod rows;
pub mod sql;

pub use cohort::cohort_spec::CohortSpec;
pub use cohort::members::Cohort;
pub use cohort_engine::CohortEngine;
pub use error::{EngineError, Result};
pub use policy::access_policy::{Access, Tier};
pub use region::Region;
pub use rows::span_pruning::region_filter;
