//! Queries over several nodes, on datafusion-distributed (`DISTRIBUTED-NOTES.md`): a
//! coordinator plans as one node does, and the distributed planner cuts the plan into stages
//! that run on workers, exchanging Arrow Flight streams.
//!
//! - `coordinator_sessions`: an engine with workers (`CohortEngine::with_workers`) plans every
//!   query with datafusion-distributed's planner onto them.
//! - [`worker_pool`]: the workers a coordinator plans onto, checked to be this build and
//!   reachable, and followed while they come and go.
//! - [`cluster_secret`]: the credential a coordinator sends with every plan, without which a
//!   worker runs nothing.
//! - `scan_tasks`: how a `variants` scan (by row-group ranges) and a cohort operation (by
//!   region, `RegionTasksExec`) are split across workers.
//! - `stage_boundaries`: at the aggregate tier, workers only scan; the tier's filter,
//!   counts and refusals run on the coordinator. A cohort operation split by region runs its
//!   tasks on the workers.
//! - [`worker_sessions`]: the session a worker runs a plan in: the engine's functions, codec
//!   and object store.

pub mod cluster_secret;
mod coordinator_sessions;
pub(crate) mod scan_tasks;
pub(crate) mod stage_boundaries;
pub mod worker_pool;
pub mod worker_sessions;
