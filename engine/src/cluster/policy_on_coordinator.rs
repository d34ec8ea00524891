//! At the aggregate tier only scans run on workers. The tier's `variants` is a filter
//! (`site_is_public`, keyed by the tier's noise key and charged to its budget) over the scan, and
//! its counts and refusals come from the cohort operations: none of that may run where the key
//! and the budget are not, and nothing but a scan's rows may cross the network towards the
//! coordinator. So this rule, run last among the physical optimizer rules, places a network
//! boundary right above every `variants` scan: the scan's stage runs on the workers (split by
//! [`crate::cluster::scan_tasks`]), and everything above it on the coordinator. The
//! distributed planner keeps boundaries it finds and adds none of its own.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::NetworkCoalesceExec;

use crate::rows::variants_exec::VariantsExec;

/// Puts every `variants` scan in a stage of `tasks` worker tasks, the rest on the coordinator.
#[derive(Debug)]
pub(crate) struct ScansOnWorkers {
    pub tasks: usize,
}

impl PhysicalOptimizerRule for ScansOnWorkers {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = plan
            .transform_up(|node| {
                if !node.is::<VariantsExec>() {
                    return Ok(Transformed::no(node));
                }
                // One partition per task: the scan's variants may have fewer local partitions than
                // the plan had when this rule ran.
                let gathered = Arc::new(CoalescePartitionsExec::new(node));
                let boundary = NetworkCoalesceExec::try_new(gathered, self.tasks.max(1), 1)?;
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
        "cohortdb_scans_on_workers"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
