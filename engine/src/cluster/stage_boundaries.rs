//! Network boundaries this engine places itself, where datafusion-distributed's planner would
//! place none or the wrong ones. The planner keeps boundaries it finds in a plan and adds none
//! of its own, so the rule below, run last among the physical optimizer rules, either leaves a
//! plan to the planner or draws all of its stages:
//!
//! - At the aggregate tier only scans run on workers. The tier's `variants` is a filter
//!   (`site_is_public`, keyed by the tier's noise key and charged to its budget) over the scan,
//!   and its counts and refusals come from the cohort operations: none of that may run where
//!   the key and the budget are not, and nothing but a scan's rows may cross the network
//!   towards the coordinator. So a boundary sits right above every `variants` scan: the scan's
//!   stage runs on the workers (split by row groups, `scan_tasks`), everything above it on the
//!   coordinator.
//! - A cohort operation split by region ([`RegionTasksExec`]) yields one partition, under
//!   which the planner finds no place for a boundary: one goes right above it, its tasks on
//!   the workers. A `variants` scan of the same query then gets one too (as above).
//!
//! Any other plan is left to the planner.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::NetworkCoalesceExec;

use crate::rows::variants_exec::VariantsExec;
use crate::session::region_tasks_exec::RegionTasksExec;

/// Puts the leaves of a plan in stages of `tasks` worker tasks and the rest on the
/// coordinator: always at the aggregate tier (`scans_only`), else when the plan holds a split
/// operation.
#[derive(Debug)]
pub(crate) struct LeavesOnWorkers {
    pub tasks: usize,
    pub scans_only: bool,
}

impl PhysicalOptimizerRule for LeavesOnWorkers {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let split = plan.exists(|node| Ok(node.is::<RegionTasksExec>()))?;
        if !self.scans_only && !split {
            return Ok(plan);
        }
        let tasks = self.tasks.max(1);
        let plan = plan
            .transform_up(|node| {
                let gathered: Arc<dyn ExecutionPlan> = if node.is::<VariantsExec>() {
                    // One partition per task: the scan's variants may have fewer local
                    // partitions than the plan had when this rule ran.
                    Arc::new(CoalescePartitionsExec::new(node))
                } else if node.is::<RegionTasksExec>() {
                    node
                } else {
                    return Ok(Transformed::no(node));
                };
                let boundary = NetworkCoalesceExec::try_new(gathered, tasks, 1)?;
                Ok(Transformed::yes(
                    Arc::new(boundary) as Arc<dyn ExecutionPlan>
                ))
            })?
            .data;
        // The distributed plan's root yields one partition.
        Ok(match plan.output_partitioning().partition_count() {
            1 => plan,
            _ => Arc::new(CoalescePartitionsExec::new(plan)),
        })
    }

    fn name(&self) -> &str {
        "cohortdb_leaves_on_workers"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
