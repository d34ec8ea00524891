//! Changing what is stored: consent withdrawal ([`consent`]), purging withdrawn participants'
//! data from the files ([`purge`]) and compaction of small fragments ([`compaction`]).

pub mod compaction;
pub mod consent;
pub mod purge;
