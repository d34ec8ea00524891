//! The SQL building blocks, none of which knows the engine: the genotype bitmap functions
//! ([`bitmap_count_functions`], [`bitmap_set_functions`], [`sample_set`]), the `genotypes`
//! view and its rewrite to bitmaps ([`genotypes_view`], [`genotype_aggregates`]), withdrawn
//! participants masked out (`withdrawal_masks`) and the phenotype tables (`phenotype_schema`).

pub(crate) mod bitmap_args;
pub mod bitmap_count_functions;
pub mod bitmap_set_functions;
pub mod genotype_aggregates;
pub mod genotypes_view;
pub(crate) mod phenotype_schema;
pub mod sample_set;
pub(crate) mod withdrawal_masks;
