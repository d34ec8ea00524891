//! How the distributed planner splits a cohort operation over regions (by
//! [`RegionTasksExec::split`]) and a `variants` scan ([`VariantsExec`]) across workers: it
//! may use as many tasks as the scan has row groups in its largest batch; each task gets a
//! contiguous run of key ranges, cut where row groups start (never inside a site, so rows
//! merged across batches are merged whole on one worker), and as many local partitions as the
//! scan had on one node.

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedLeafExec,
    ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
};

use crate::rows::scan_plan::KeyRange;
use crate::rows::variants_exec::VariantsExec;
use crate::session::region_tasks_exec::RegionTasksExec;

/// Tasks a scan may use: one per row group of its largest batch; a split operation, as many
/// as there are workers.
pub(crate) fn desired_task_count(
    ev: DesiredTaskCountEvent,
) -> Option<Result<DesiredTaskCountEventResponse>> {
    if ev.plan.is::<RegionTasksExec>() {
        return Some(Ok(DesiredTaskCountEventResponse::desired(EVERY_WORKER)));
    }
    let scan = ev.plan.downcast_ref::<VariantsExec>()?;
    let groups = scan.scan_plan().most_row_groups().max(1);
    Some(Ok(DesiredTaskCountEventResponse::desired(groups)))
}

/// A task count the planner lowers to the number of workers.
const EVERY_WORKER: usize = 1 << 16;

/// The scan as one variant per task (see the module's documentation); a split operation with
/// its regions cut into one share per task.
pub(crate) fn scale_up_leaf_node(
    ev: ScaleUpLeafNodeEvent,
) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    if let Some(split) = ev.plan.downcast_ref::<RegionTasksExec>() {
        return Some(
            split
                .split(ev.task_count)
                .map(|s| ScaleUpLeafNodeEventResponse::new(Arc::new(s))),
        );
    }
    let scan = ev.plan.downcast_ref::<VariantsExec>()?;
    Some(split(ev.plan, scan, ev.task_count.max(1)))
}

fn split(
    original: &Arc<dyn ExecutionPlan>,
    scan: &VariantsExec,
    tasks: usize,
) -> Result<ScaleUpLeafNodeEventResponse> {
    let local = original.output_partitioning().partition_count().max(1);
    let mut whole = scan.scan_plan().clone();
    whole.split(tasks * local);
    let ranges = std::mem::take(&mut whole.partitions);
    let per_task = ranges.len().div_ceil(tasks);
    let mut variants: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let mut plan = whole.clone();
        plan.partitions = ranges
            .iter()
            .skip(task * per_task)
            .take(per_task)
            .cloned()
            .collect();
        // Every variant shows the same number of partitions; the padding ones hold no key.
        plan.partitions.resize(per_task, KeyRange::none());
        variants.push(Arc::new(VariantsExec::new(plan, scan.footers().clone())?));
    }
    let leaf = DistributedLeafExec::try_new(original.clone(), variants)?;
    Ok(ScaleUpLeafNodeEventResponse::new(Arc::new(leaf)))
}
