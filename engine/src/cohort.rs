//! Cohorts: who an operation counts.
//!
//! - [`members`]: [`Cohort`](members::Cohort), the participants admitted for one request and,
//!   at the aggregate tier, the release their noise is keyed by;
//! - [`cohort_spec`]: how a caller names one (everyone, `-s`/`-S` lists);
//! - [`named_cohorts`]: predicates or sample lists saved under a name (`@NAME`);
//! - [`resolve`]: one way from a spec to a cohort ([`crate::CohortEngine::cohort`]);
//! - [`admission`]: what the engine's tier lets a request ask, and the disclosure control
//!   every cohort passes at the aggregate tier.

pub mod admission;
pub mod cohort_spec;
pub mod members;
pub mod named_cohorts;
pub mod resolve;
