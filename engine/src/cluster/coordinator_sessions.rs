//! The sessions of a coordinator: an engine with a [`WorkerPool`] plans every query with
//! datafusion-distributed's planner onto the pool's live workers, sending its plan nodes
//! with the engine's codec and the cluster's secret in a header.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt};

use crate::cluster::policy_on_coordinator::ScansOnWorkers;
use crate::cluster::scan_tasks::{desired_task_count, scale_up_leaf_node};
use crate::cluster::worker_pool::WorkerPool;
use crate::cohort_engine::{CohortEngine, Distribution};
use crate::error::Result;
use crate::policy::access_policy::Tier;
use crate::session::plan_codec::PlanCodec;

/// [`WorkerPool`] as the [`Distribution`] of an engine.
#[derive(Debug)]
struct OntoWorkers(Arc<WorkerPool>);

impl Distribution for OntoWorkers {
    fn distribute(
        &self,
        engine: &CohortEngine,
        mut builder: SessionStateBuilder,
    ) -> Result<SessionStateBuilder> {
        let pool = &self.0;
        if engine.tier() == Tier::Aggregate {
            let rule = ScansOnWorkers {
                tasks: pool.live().len(),
            };
            builder = builder.with_physical_optimizer_rule(Arc::new(rule));
        }
        Ok(builder
            .with_distributed_worker_resolver(pool.resolver())
            .with_distributed_channel_resolver(pool.channels())
            .with_distributed_planner()
            .with_distributed_user_codec(PlanCodec::new(Arc::new(engine.clone())))
            .with_distributed_desired_task_count_handler(desired_task_count)
            .with_distributed_scale_up_leaf_node_handler(scale_up_leaf_node)
            .with_distributed_passthrough_headers(pool.secret().headers())?)
    }
}

impl CohortEngine {
    /// This engine planning its sessions' queries onto `workers` (see [`crate::cluster`]).
    /// Engines derived from it plan onto them too.
    pub fn with_workers(self, workers: Arc<WorkerPool>) -> Self {
        self.with_distribution(Some(Arc::new(OntoWorkers(workers))))
    }
}
