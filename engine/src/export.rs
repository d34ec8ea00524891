//! Regions x samples written as VCF or BCF with a tabix or CSI index ([`vcf_export`]): the
//! records (`export_records`) read in windows of positions (`export_windows`), their text and
//! binary encodings (`export_encoders`, `bcf_encoding`), one position's genotypes as VCF text
//! ([`record_genotypes`]), BGZF blocks (`bgzf_writer`), the indexes ([`genomic_index`]), and
//! where the bytes go ([`export_output`]: a file, or a client's channel).

pub(crate) mod bcf_encoding;
pub(crate) mod bgzf_writer;
pub(crate) mod export_encoders;
pub mod export_output;
pub(crate) mod export_records;
pub(crate) mod export_windows;
pub mod genomic_index;
pub mod record_genotypes;
pub mod vcf_export;
