//! cohortdb's query engine: DataFusion tables over a store snapshot, genotype bitmap
//! functions, and cohort operations.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use cohortdb_engine::{CohortEngine, CohortSpec, Region};
//! let engine = CohortEngine::open("/tmp/store").await?;
//! let women = engine.cohort("sex = 'F' AND age BETWEEN 50 AND 60").await?;
//! let regions = Region::parse_list("chr20:20000001-20100000")?;
//! let frequencies = engine.allele_frequencies(&regions, &women).await?;
//! let everyone = engine.cohort(CohortSpec::All).await?;
//! let rows = engine.sql("SELECT count(*) FROM variants").await?.collect().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Modules import downward only (`scripts/check-module-cycles.py` fails on a circle):
//!
//! ```text
//!  sql::sql_session ─► sql::table_functions ─► sql::operation_exec ─► ops::*      export::*
//!         │                                                              │         maintenance::*
//!         ▼                                                              ▼              │
//!  sql::tables_session ◄───────────── cohort::resolve ◄──────────── (each op) ◄─────────┘
//!         │        │                        │
//!         │        ▼                        ▼
//!         │   sql::{functions, views}   policy::admission ─► policy::{access_policy,
//!         ▼                                                    disclosure_control, ...}
//!  rows::variants_table ─► rows::variants_exec ─► rows::row_stream ─► rows::batch_merge
//!         │                                              │              rows::site_merge
//!         ▼                                              ▼
//!  rows::span_pruning, rows::fragment_reader ◄── rows::site_cache
//!                          ▲
//!  cohort_engine (the handle: open, access, snapshot, samples) ─┘   cohort::members, region, error
//! ```
//!
//! - [`cohort_engine`](CohortEngine): the handle over one snapshot: open, access, caches,
//!   samples; every operation is an `impl CohortEngine` in the module of its concept.
//! - [`cohort`]: one [`Cohort`] type and one way in ([`CohortEngine::cohort`] of a
//!   [`CohortSpec`]: everyone, `-s`/`-S` lists, a predicate, a saved name).
//! - [`policy`]: tiers, pseudonyms, phenotype allow-lists and the aggregate tier's disclosure
//!   control (noise keyed by the question, privacy budget, withheld counts, listed sites).
//! - [`sql`]: sessions, tables, views, UDFs, table functions ([`sql::operation_exec`]) and
//!   the codec that sends our plans to another node ([`sql::plan_codec`]).
//! - [`rows`]: the read path: pruning, reading, the streaming merge of batches, the cache of
//!   decoded row groups.
//! - [`ops`]: allele counts, carriers, case/control, association, coverage.
//! - [`export`]: VCF/BCF writing and indexes. [`maintenance`]: withdrawal, purge, compaction.
//!
//! Tables: `variants` (one row per ALT allele, genotypes as roaring bitmaps), `samples`,
//! `genotypes` (one row per non-reference call) and the phenotype tables by name. Functions:
//! `allele_count`, `allele_number`, `bitmap_and_count`, `bitmap_or`, `bitmap_and`,
//! `bitmap_andnot`, `bitmap_count`, `bitmap_to_list`, `genotype_calls` and the aggregate
//! `sample_set`; in [`CohortEngine::sql_session`] also the cohort operations as table
//! functions ([`sql::table_functions`]).

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
pub mod store_info;

pub use cohort::cohort_spec::CohortSpec;
pub use cohort::members::Cohort;
pub use cohort_engine::CohortEngine;
pub use error::{EngineError, Result};
pub use policy::access_policy::{Access, Tier};
pub use region::Region;
pub use rows::span_pruning::region_filter;
