//! The session a user queries: every table of [`crate::CohortEngine::session`] plus the cohort
//! operations as table functions ([`table_functions`]), planned as nodes of their own
//! ([`operation_exec`]; with workers, split by region: [`region_tasks_exec`]), and the codec that sends those plans to another node
//! ([`plan_codec`]). Queries may write `?` placeholders ([`placeholders`]).

pub mod operation_exec;
pub mod placeholders;
pub mod plan_codec;
pub mod region_tasks_exec;
pub mod sql_session;
pub mod table_functions;
