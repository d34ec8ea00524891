//! cohortdb's query engine: DataFusion tables over a store snapshot, genotype bitmap
//! functions, and cohort operations.
//!
//! Tables: `variants` (one row per ALT allele, genotypes as roaring bitmaps), `samples`.
//! Functions: `allele_count`, `allele_number`, `bitmap_and_count`, `bitmap_or`, `bitmap_and`,
//! `bitmap_andnot`, `bitmap_count`, `bitmap_to_list` and the aggregate `sample_set`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use cohortdb_engine::{CohortEngine, Region, SampleSelection};
//! let engine = CohortEngine::open("/tmp/store").await?;
//! let set = engine.resolve(&SampleSelection::All)?;
//! let regions = Region::parse_list("chr20:20000001-20100000")?;
//! let batches = engine.allele_frequencies(&regions, &set).await?.collect().await?;
//! # Ok(()) }
//! ```

pub mod association;
pub mod association_stats;
mod bcf_encoding;
mod bgzf_writer;
mod bitmap_args;
pub mod bitmap_count_functions;
pub mod bitmap_set_functions;
pub mod carriers;
pub mod case_control;
mod cohort_engine;
mod error;
mod export_encoders;
mod export_records;
pub mod genomic_index;
pub mod genotype_aggregates;
pub mod genotypes_view;
pub mod named_cohorts;
mod phenotype_schema;
mod region;
pub mod regression;
mod sample_selection;
pub mod sample_set;
pub mod table_functions;
pub mod variants_table;
pub mod vcf_export;

pub use cohort_engine::{CohortEngine, region_filter};
pub use error::{EngineError, Result};
pub use region::Region;
pub use sample_selection::SampleSelection;
