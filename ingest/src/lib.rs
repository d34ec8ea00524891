//! cohortdb ingest: VCF and BCF (plain, gzip or BGZF; files or standard input) into a store,
//! and read depth of BAM/CRAM files as coverage bitmaps ([`ingest_bam`]).
//!
//! Inputs are decompressed in parallel (BGZF blocks on rayon), parsed in parallel batches of
//! whole records with a fast path for common diploid calls, split into one row per ALT allele
//! and written as variant fragments; one ingest is one commit. Bad input stops the ingest with
//! an error naming the file, line or record, field and reason, and commits nothing.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use cohortdb_ingest::{IngestOptions, ingest_vcf};
//! let store = cohortdb_store::Store::open_or_create("/tmp/store")?;
//! let summary = ingest_vcf(&store, &["cohort.vcf.gz".to_string()], &IngestOptions::default()).await?;
//! println!("version {} with {} records", summary.version, summary.records);
//! # Ok(()) }
//! ```

pub mod bam_depth;
mod bam_input;
mod bcf_record;
mod byte_source;
mod coverage_job;
mod error;
pub mod format_fields;
pub mod genotype_accumulator;
pub mod info_values;
mod ingest_job;
pub mod input_reader;
pub mod phenotype_table;
mod phenotype_values;
mod reference_blocks;
pub mod sample_replacement;
pub mod site;
mod site_fields;
pub mod vcf_header;
pub mod vcf_record;

pub use coverage_job::{CoverageOptions, CoverageSummary, ingest_bam};
pub use error::{IngestError, RecordLocation, Result};
pub use ingest_job::{IngestOptions, IngestSummary, encode_contig, ingest_vcf};
pub use input_reader::{IngestRegion, Shard};
pub use reference_blocks::BlockThresholds;
pub use site_fields::RecordContext;
