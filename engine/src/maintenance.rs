//! Changing what is stored: consent withdrawal ([`consent`]), purging withdrawn participants'
//! data from the files ([`purge`]) and compaction of fragments and batches ([`compaction`], deciding which batches merge by [`batch_tiers`]).

pub mod batch_tiers;
pub mod compaction;
pub mod consent;
pub mod purge;
