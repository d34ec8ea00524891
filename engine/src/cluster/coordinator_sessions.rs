//! The sessions of a coordinator: an engine with a [`WorkerPool`] plans every query with
//! datafusion-distributed's planner onto the pool's live workers, sending its plan nodes
//! with the engine's codec and the cluster's secret in a header.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt};

use crate::cluster::scan_tasks::{desired_task_count, scale_up_leaf_node};
use crate::cluster::stage_boundaries::LeavesOnWorkers;
use crate::cluster::worker_pool::WorkerPool;
use crate::cohort_engine::{CohortEngine, Distribution};
use crate::error::Result;
use crate::policy::access_policy::Tier;
use crate::region_tasks::RegionTasks;
use crate::session::plan_codec::PlanCodec;
use crate::session::region_tasks_exec::{EngineVersions, RegionTasksExec};

/// [`WorkerPool`] as the [`Distribution`] of an engine.
#[derive(Debug)]
struct OntoWorkers(Arc<WorkerPool>);

#[async_trait::async_trait]
impl Distribution for OntoWorkers {
    fn distribute(
        &self,
        engine: &CohortEngine,
        builder: SessionStateBuilder,
    ) -> Result<SessionStateBuilder> {
        let pool = &self.0;
        let live = pool.live().len();
        if live == 0 {
            return Err(pool.none_answers());
        }
        let rule = LeavesOnWorkers {
            tasks: live,
            scans_only: engine.tier() == Tier::Aggregate,
        };
        Ok(builder
            .with_physical_optimizer_rule(Arc::new(rule))
            .with_distributed_worker_resolver(pool.resolver())
            .with_distributed_channel_resolver(pool.channels())
            .with_distributed_planner()
            .with_distributed_user_codec(PlanCodec::new(Arc::new(engine.clone())))
            .with_distributed_desired_task_count_handler(desired_task_count)
            .with_distributed_scale_up_leaf_node_handler(scale_up_leaf_node)
            .with_distributed_passthrough_headers(pool.secret().headers())?)
    }

    async fn run(&self, engine: &CohortEngine, tasks: RegionTasks) -> Result<Vec<RecordBatch>> {
        let engines = Arc::new(EngineVersions::new(Arc::new(engine.clone())));
        let node: Arc<dyn ExecutionPlan> = Arc::new(RegionTasksExec::new(tasks, engines, None)?);
        let frame = engine.session()?.read_table(Arc::new(PlannedNode(node)))?;
        genome_order(frame.collect().await?)
    }

    async fn lost_node(&self, error: &DataFusionError) -> Option<String> {
        let reason = transport_failure(error)?;
        self.0.refresh().await;
        let down = self.0.down();
        Some(match down.as_slice() {
            [] => format!("a connection to a worker failed ({reason}); send the query again"),
            _ => format!(
                "worker {} no longer answers ({reason}); the next queries run on the {} of {} \
                 workers that remain: send the query again",
                down.iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.0.live().len(),
                self.0.size()
            ),
        })
    }
}

/// The rows of `batches` (an operation's: `chrom`, `pos` first) in the order one node gives
/// them. The tasks' shares of the genome do not overlap and each task keeps its order, so a
/// stable sort by contig and position restores it.
fn genome_order(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::{Array, Int64Array, StringArray, UInt32Array};
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let all = datafusion::arrow::compute::concat_batches(&first.schema(), &batches)
        .map_err(DataFusionError::from)?;
    let chrom = all.column(0).as_any().downcast_ref::<StringArray>();
    let pos = all.column(1).as_any().downcast_ref::<Int64Array>();
    let (Some(chrom), Some(pos)) = (chrom, pos) else {
        return Err(
            DataFusionError::Internal("an operation's rows start with chrom, pos".into()).into(),
        );
    };
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        chrom
            .value(a)
            .cmp(chrom.value(b))
            .then(pos.value(a).cmp(&pos.value(b)))
    });
    let indices = UInt32Array::from(order);
    let columns = all
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::take(c.as_ref(), &indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(DataFusionError::from)?;
    Ok(vec![
        RecordBatch::try_new(all.schema(), columns).map_err(DataFusionError::from)?,
    ])
}

/// A table whose scan is a plan made beforehand.
#[derive(Debug)]
struct PlannedNode(Arc<dyn ExecutionPlan>);

#[async_trait::async_trait]
impl TableProvider for PlannedNode {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(self.0.clone())
    }
}

/// What broke, when `error` comes from a connection to a worker rather than from the query
/// (a worker's own error travels back as a DataFusion error, gRPC code INTERNAL).
fn transport_failure(error: &DataFusionError) -> Option<String> {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(status) = current.downcast_ref::<tonic::Status>()
            && status.code() != tonic::Code::Internal
        {
            return Some(status.message().to_string());
        }
        if let Some(DataFusionError::Execution(text)) = current.downcast_ref::<DataFusionError>()
            && text.starts_with("Error connecting to Distributed DataFusion worker")
        {
            return Some(text.clone());
        }
        current = match current.downcast_ref::<DataFusionError>() {
            Some(DataFusionError::External(inner)) => inner.as_ref(),
            Some(DataFusionError::Shared(inner)) => inner.as_ref(),
            Some(DataFusionError::Context(_, inner)) => inner.as_ref(),
            _ => current.source()?,
        };
    }
}

impl CohortEngine {
    /// This engine planning its sessions' queries onto `workers` (see [`crate::cluster`]).
    /// Engines derived from it plan onto them too.
    pub fn with_workers(self, workers: Arc<WorkerPool>) -> Self {
        self.with_distribution(Some(Arc::new(OntoWorkers(workers))))
    }
}
