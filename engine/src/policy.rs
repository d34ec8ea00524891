//! Who may see what: access tiers, pseudonyms and phenotype allow-lists
//! ([`access_policy`]); for the aggregate tier, noise keyed by the question and a per-project
//! privacy budget kept in the store ([`disclosure_control`]), noisy and withheld counts
//! ([`count_suppression`]), the sites it may list (`public_sites`) and the schema it sees
//! (`aggregate_schema`).

pub mod access_policy;
pub(crate) mod aggregate_schema;
pub mod count_suppression;
pub mod disclosure_control;
pub(crate) mod public_sites;
