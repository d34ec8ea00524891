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
//! Each part (a folder, or a file directly in `src/`) imports only the parts below it, and
//! the modules inside a part import one way too (`scripts/check-module-cycles.py` fails on a
//! circle of either, counting imports, doc links and calls of methods defined elsewhere):
//!
//! ```text
//!  cluster        worker_pool, cluster_secret, coordinator_sessions, scan_tasks,
//!     │           stage_boundaries, worker_sessions (datafusion-distributed: docs/cluster.md)
//!  session        sql_session, table_functions, operation_exec (the operations as plan
//!                 nodes), region_tasks_exec (an operation split by region across workers),
//!                 plan_codec (those nodes and ours sent to another node)
//!     │
//!  export, maintenance, store_info       VCF/BCF writing; withdrawal, purge, compaction
//!     │
//!  ops            allele_counts, carriers, case_control, association, coverage
//!     │
//!  cohort         members (Cohort), cohort_spec, resolve (the one way in), named_cohorts,
//!     │           admission (what the tier may ask, disclosure control of every cohort)
//!  tables_session the store's tables and functions, shaped by the engine's tier
//!     │
//!  cohort_engine  the handle: open, access, snapshot, samples, releases; its Distribution
//!     │           (how its sessions plan onto workers, implemented by cluster)
//!  region_tasks   an operation over regions as tasks (plain data), regions cut into shares
//!     │
//!  policy         access tiers, disclosure control, suppression, public sites (no engine)
//!     │
//!  sql            bitmap functions, genotypes view, phenotype tables (no engine)
//!     │
//!  rows           pruning, fragment reading, the streaming merge, the site cache
//!     │
//!  region, error, sample_ids (the registry's IDs by hash, no copies)
//! ```
//!
//! - [`cohort_engine`](CohortEngine): the handle over one snapshot: open, access, caches,
//!   samples; every operation is an `impl CohortEngine` in the module of its concept.
//! - [`cohort`]: one [`Cohort`] type and one way in ([`CohortEngine::cohort`] of a
//!   [`CohortSpec`]: everyone, `-s`/`-S` lists, a predicate, a saved name), and the admission
//!   of every cohort by the engine's tier.
//! - [`policy`]: tiers, pseudonyms, phenotype allow-lists and the aggregate tier's disclosure
//!   control (noise keyed by the question, privacy budget, withheld counts, listed sites).
//! - [`tables_session`](CohortEngine::session): the tables a tier sees. [`sql`]: the views
//!   and functions they are made of.
//! - [`session`]: the user's SQL session, the table functions ([`session::operation_exec`])
//!   and the codec that sends our plans to another node ([`session::plan_codec`]).
//! - [`rows`]: the read path: pruning, reading, the streaming merge of batches, the cache of
//!   decoded row groups.
//! - [`ops`]: allele counts, carriers, case/control, association, coverage.
//! - [`export`]: VCF/BCF writing and indexes. [`maintenance`]: withdrawal, purge, compaction.
//! - [`cluster`]: queries over several nodes on datafusion-distributed: the workers of a
//!   coordinator ([`CohortEngine::with_workers`]), the cluster's secret, how scans and
//!   operations ([`region_tasks`]) split, which stages stay on the coordinator, and the
//!   sessions a worker (`cohortdb worker`) runs plans in.
//!
//! Tables: `variants` (one row per ALT allele, genotypes as roaring bitmaps), `samples`,
//! `genotypes` (one row per non-reference call) and the phenotype tables by name. Functions:
//! `allele_count`, `allele_number`, `bitmap_and_count`, `bitmap_or`, `bitmap_and`,
//! `bitmap_andnot`, `bitmap_count`, `bitmap_to_list`, `genotype_calls` and the aggregate
//! `sample_set`; in [`CohortEngine::sql_session`] also the cohort operations as table
//! functions ([`session::table_functions`]).

pub mod cluster;
pub mod cohort;
mod cohort_engine;
mod error;
pub mod export;
pub mod maintenance;
pub mod ops;
pub mod policy;
mod region;
pub mod region_tasks;
pub mod rows;
mod sample_ids;
pub mod session;
pub mod sql;
pub mod store_info;
mod tables_session;

pub use cohort::cohort_spec::CohortSpec;
pub use cohort::members::Cohort;
pub use cohort_engine::{CohortEngine, Distribution};
pub use error::{EngineError, Result};
pub use policy::access_policy::{Access, Tier};
pub use region::Region;
pub use rows::span_pruning::region_filter;
