//! The cohort operations: allele counts and frequencies ([`allele_counts`]), carriers and one
//! sample's genotypes ([`carriers`], in pages: [`carrier_pages`], their GT from cached rows: [`carrier_calls`]), case/control tests ([`case_control`], with
//! [`association_stats`]), regression on dosage ([`association`], [`regression`], [`logistic`]),
//! plink2's variant filters ([`site_qc`]), bcftools filter expressions ([`site_expression`]) and cohort coverage from BAM depth ([`coverage`]).

pub mod allele_counts;
pub mod association;
pub mod association_stats;
pub mod carrier_calls;
pub mod carrier_pages;
pub mod carriers;
pub mod case_control;
pub mod coverage;
pub mod logistic;
pub mod regression;
pub mod site_expression;
pub mod site_qc;
