//! The read path: variant rows from the store's fragments, one way for every reader.
//!
//! - [`span_pruning`]: fragments and row groups chosen by their statistics;
//! - [`fragment_reader`]: footers and row groups read from the object store;
//! - [`scan_plan`], [`variants_table`], [`variants_exec`], `row_stream`: the `variants`
//!   table, whose scan plans from statistics and streams row groups, merging the batches of
//!   the cohort window by window (`batch_merge`, by the rule of `site_merge`, with gVCF
//!   `reference_blocks`);
//! - [`site_cache`]: the same row groups decoded for counting and carriers, kept per process;
//! - [`stored_bitmaps`]: values of the stored genotype columns.

pub(crate) mod batch_merge;
pub mod fragment_reader;
pub(crate) mod reference_blocks;
pub(crate) mod row_stream;
pub mod scan_plan;
pub mod site_cache;
pub(crate) mod site_merge;
pub mod span_pruning;
pub mod stored_bitmaps;
pub mod variants_exec;
pub mod variants_table;
