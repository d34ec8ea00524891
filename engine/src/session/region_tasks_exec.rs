//! A cohort operation split by region ([`RegionTasks`]) as a plan node: each task runs the
//! operation over its share of the regions, on the snapshot the query was planned on, with the
//! cohorts resolved by the coordinator and sent as bitmaps.

use std::fmt;
use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::deserialize_bitmap;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use datafusion_distributed::DistributedTaskContext;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::region::Region;
use crate::region_tasks::{RegionTasks, SplitOperation, split_regions};
use crate::session::operation_exec::{Operation, OperationCall, conform, engine_error};

/// Engines over the versions of one store, for tasks planned on any of them: the engine a
/// node started with, and the last other version asked for.
#[derive(Debug)]
pub struct EngineVersions {
    base: Arc<CohortEngine>,
    other: tokio::sync::Mutex<Option<Arc<CohortEngine>>>,
}

impl EngineVersions {
    /// Versions of the store of `base`, sharing its cache of decoded rows.
    pub fn new(base: Arc<CohortEngine>) -> Self {
        Self {
            base,
            other: Default::default(),
        }
    }

    /// The engine over `version`.
    pub async fn at(&self, version: u64) -> crate::error::Result<Arc<CohortEngine>> {
        if self.base.snapshot().version() == version {
            return Ok(self.base.clone());
        }
        let mut other = self.other.lock().await;
        if let Some(engine) = other.as_ref().filter(|e| e.snapshot().version() == version) {
            return Ok(engine.clone());
        }
        let store = self.base.store().clone();
        let snapshot = store.snapshot_at(version).await?;
        let engine = Arc::new(
            CohortEngine::open_at(store, snapshot)
                .await?
                .with_site_cache(self.base.site_cache().clone()),
        );
        *other = Some(engine.clone());
        Ok(engine)
    }
}

/// The tasks of one split operation.
#[derive(Debug)]
pub struct RegionTasksExec {
    tasks: RegionTasks,
    engines: Arc<EngineVersions>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RegionTasksExec {
    /// `tasks` run by `engines`, producing the columns `projection` chooses.
    pub fn new(
        tasks: RegionTasks,
        engines: Arc<EngineVersions>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let operation = Operation::from_name(tasks.operation.name())
            .ok_or_else(|| DataFusionError::Internal("an operation without a name".into()))?;
        let schema = operation.schema();
        let output = match &projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema.clone(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Self {
            tasks,
            engines,
            projection,
            schema,
            properties: Arc::new(properties),
        })
    }

    /// The split form of `call` on `engine`, when the engine plans onto workers and the call
    /// may be split at its tier; its cohorts are resolved here.
    pub(crate) async fn for_call(
        engine: &Arc<CohortEngine>,
        call: &OperationCall,
        projection: Option<Vec<usize>>,
    ) -> crate::error::Result<Option<Self>> {
        let (operation, cohort_args) = match call.operation()? {
            Operation::AlleleFrequencies => (SplitOperation::AlleleFrequencies, vec![1]),
            Operation::CaseControl => (SplitOperation::CaseControl, vec![1, 2]),
            Operation::Association => {
                call.model()?;
                let association = SplitOperation::Association {
                    table: "phenotypes".into(),
                    trait_column: call.arg(1).to_string(),
                    covariates: call.covariates(),
                    model: call.arg(3).to_string(),
                };
                (association, vec![4])
            }
            _ => return Ok(None),
        };
        if engine.distribution().is_none() || !operation.splits_at(engine.tier()) {
            return Ok(None);
        }
        call.check()?;
        let specs: Vec<crate::CohortSpec> = cohort_args
            .into_iter()
            .map(|i| crate::CohortSpec::parse(call.arg(i)))
            .collect();
        let cohorts = engine.cohorts(&specs).await?;
        let sets: Vec<&roaring::RoaringBitmap> = cohorts.iter().map(|c| c.set()).collect();
        let tasks = engine.region_tasks(operation, &call.regions(0)?, &sets);
        let engines = Arc::new(EngineVersions::new(engine.clone()));
        Ok(Some(Self::new(tasks, engines, projection)?))
    }

    /// What the tasks run.
    pub fn tasks(&self) -> &RegionTasks {
        &self.tasks
    }

    /// The columns produced, by index into the call's (`None`: all).
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }

    /// This node with its regions split into `n` tasks of about equal lengths of the genome
    /// (measured over the spans the snapshot's fragments cover), in genome order.
    pub fn split(&self, n: usize) -> Result<Self> {
        let engine = &self.engines.base;
        let spans: Vec<Region> = engine
            .snapshot()
            .state
            .variant_fragments()
            .filter_map(|f| {
                Some(Region {
                    contig: f.contig.clone()?,
                    start: f.min_pos?,
                    end: f.max_pos?,
                })
            })
            .collect();
        let regions: Vec<Region> = self.tasks.tasks.iter().flatten().cloned().collect();
        let mut tasks = self.tasks.clone();
        tasks.tasks = split_regions(&regions, &spans, n.max(1));
        Self::new(tasks, self.engines.clone(), self.projection.clone())
    }
}

impl DisplayAs for RegionTasksExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RegionTasksExec: {}, version={}, tasks={}",
            self.tasks.operation.name(),
            self.tasks.version,
            self.tasks.tasks.len()
        )
    }
}

impl ExecutionPlan for RegionTasksExec {
    fn name(&self) -> &'static str {
        "RegionTasksExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "RegionTasksExec has one partition per task, not {partition}"
            )));
        }
        let task = DistributedTaskContext::from_ctx(&context).task_index;
        let regions = self.tasks.tasks.get(task).cloned().unwrap_or_default();
        let (tasks, engines) = (self.tasks.clone(), self.engines.clone());
        let (schema, projection) = (self.schema.clone(), self.projection.clone());
        let output = self.properties.eq_properties.schema().clone();
        let rows = futures::stream::once(async move {
            // A task without regions has no rows (an empty list would mean every contig).
            let batches = match regions.is_empty() {
                true => Vec::new(),
                false => run(&tasks, &engines, &regions)
                    .await
                    .map_err(engine_error)?,
            };
            let out = conform(batches, &schema, projection.as_deref())?;
            Ok::<_, DataFusionError>(futures::stream::iter(out.into_iter().map(Ok)))
        });
        use futures::TryStreamExt;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output,
            rows.try_flatten(),
        )))
    }
}

/// One task: the operation over `regions` on the planned version, on this node alone.
async fn run(
    tasks: &RegionTasks,
    engines: &EngineVersions,
    regions: &[Region],
) -> crate::error::Result<Vec<datafusion::arrow::array::RecordBatch>> {
    let engine = engines.at(tasks.version).await?;
    let engine = engine.as_ref().clone().with_distribution(None);
    let cohorts = tasks
        .cohorts
        .iter()
        .map(|hex_set| {
            let set = hex::decode(hex_set)
                .ok()
                .and_then(|bytes| deserialize_bitmap(&bytes))
                .ok_or_else(|| {
                    crate::error::EngineError::InvalidArgument(
                        "a cohort's bitmap is not valid".into(),
                    )
                })?;
            Ok(Cohort::new(set))
        })
        .collect::<crate::error::Result<Vec<_>>>()?;
    let cohort = |i: usize| {
        cohorts
            .get(i)
            .ok_or_else(|| crate::error::EngineError::InvalidArgument("a cohort is missing".into()))
    };
    Ok(match &tasks.operation {
        SplitOperation::AlleleFrequencies => {
            vec![engine.allele_frequencies(regions, cohort(0)?).await?]
        }
        SplitOperation::CaseControl => engine.case_control(regions, cohort(0)?, cohort(1)?).await?,
        SplitOperation::Association {
            table,
            trait_column,
            covariates,
            model,
        } => {
            engine
                .association(
                    regions,
                    cohort(0)?,
                    table,
                    trait_column,
                    covariates,
                    crate::ops::association::Model::parse(model)?,
                    None,
                )
                .await?
        }
    })
}
