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
//! - [`scan_tasks`]: how a `variants` scan is split across workers (by row-group ranges).
//! - [`policy_on_coordinator`]: at the aggregate tier, workers only scan; the tier's filter,
//!   counts and refusals run on the coordinator.
//! - [`worker_sessions`]: the session a worker runs a plan in: the engine's functions, codec
//!   and object store.

pub mod cluster_secret;
mod coordinator_sessions;
pub(crate) mod policy_on_coordinator;
pub(crate) mod scan_tasks;
pub mod worker_pool;
pub mod worker_sessions;
