//! The SQL face of the engine: the genotype bitmap functions ([`bitmap_count_functions`],
//! [`bitmap_set_functions`], [`sample_set`]), the `genotypes` view and its rewrite to bitmaps
//! ([`genotypes_view`], [`genotype_aggregates`]), withdrawn participants masked out
//! (`withdrawal_masks`), the phenotype tables (`phenotype_schema`) and the cohort
//! operations as table functions ([`table_functions`]).

pub(crate) mod bitmap_args;
pub mod bitmap_count_functions;
pub mod bitmap_set_functions;
pub mod genotype_aggregates;
pub mod genotypes_view;
pub mod operation_exec;
pub(crate) mod phenotype_schema;
pub mod plan_codec;
pub mod sample_set;
pub mod sql_session;
pub mod table_functions;
pub mod tables_session;
pub(crate) mod withdrawal_masks;
