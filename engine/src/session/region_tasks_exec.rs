//! A cohort operation split by region across the tasks of a distributed plan (allele
//! frequencies and case/control counts for the admin and record tiers, association for the
//! admin tier): each task runs the operation over its share of the regions, on the snapshot
//! the query was planned on, with the cohorts resolved by the coordinator and sent as bitmaps.
//! The counts of a site depend on that site's rows alone, so the tasks' rows together are the
//! operation's rows.
//!
//! The aggregate tier's operations are never split: their refusals, noise and count floor
//! run where the noise key and budget are, on the coordinator. Association at the record tier
//! is not split either: the coordinator's engine checks the project's phenotype columns, a
//! worker's would not.

use std::fmt;
use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::{deserialize_bitmap, serialize_bitmap};
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
use serde::{Deserialize, Serialize};

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::policy::access_policy::Tier;
use crate::region::Region;
use crate::session::operation_exec::{Operation, OperationCall, conform, engine_error};

/// What the tasks run: plain data, sent to the workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionTasks {
    /// The call as SQL gave it (its operation, and association's trait and covariates).
    pub call: OperationCall,
    /// The store version the query was planned on.
    pub version: u64,
    /// The call's cohorts, resolved: serialized bitmaps over `sample_idx`, hex.
    pub cohorts: Vec<String>,
    /// The regions of each task (one task until the planner splits it).
    pub tasks: Vec<Vec<Region>>,
}

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
        let schema = tasks.call.schema(Tier::Admin)?;
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
    /// may be split (see the module's documentation); its cohorts are resolved here.
    pub(crate) async fn for_call(
        engine: &Arc<CohortEngine>,
        call: &OperationCall,
        projection: Option<Vec<usize>>,
    ) -> crate::error::Result<Option<Self>> {
        let splits = matches!(
            (call.operation()?, engine.tier()),
            (
                Operation::AlleleFrequencies | Operation::CaseControl,
                Tier::Admin | Tier::Record
            ) | (Operation::Association, Tier::Admin)
        );
        if engine.distribution().is_none() || !splits {
            return Ok(None);
        }
        call.check()?;
        let specs: Vec<crate::CohortSpec> = match call.operation()? {
            Operation::AlleleFrequencies => vec![crate::CohortSpec::parse(call.arg(1))],
            Operation::CaseControl => vec![
                crate::CohortSpec::parse(call.arg(1)),
                crate::CohortSpec::parse(call.arg(2)),
            ],
            _ => vec![crate::CohortSpec::parse(call.arg(4))],
        };
        let cohorts = engine
            .cohorts(&specs)
            .await?
            .into_iter()
            .map(|c| hex::encode(serialize_bitmap(&c.into_set())))
            .collect();
        let tasks = RegionTasks {
            call: call.clone(),
            version: engine.snapshot().version(),
            cohorts,
            tasks: vec![call.regions(0)?],
        };
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

/// `regions` (none: every contig of `spans`) cut into `n` lists covering about equal lengths of
/// what `spans` cover. A region over no span stays whole in the first list, so that its errors
/// (an unknown contig) are those of the unsplit call.
fn split_regions(regions: &[Region], spans: &[Region], n: usize) -> Vec<Vec<Region>> {
    // The covered part of each region: the smallest and largest position spans reach on its
    // contig.
    let covered = |contig: &str| {
        spans
            .iter()
            .filter(|s| s.contig == contig)
            .fold(None, |acc: Option<(i64, i64)>, s| {
                Some(acc.map_or((s.start, s.end), |(a, b)| (a.min(s.start), b.max(s.end))))
            })
    };
    let whole: Vec<Region>;
    let regions = if regions.is_empty() {
        let mut contigs: Vec<&str> = spans.iter().map(|s| s.contig.as_str()).collect();
        contigs.sort();
        contigs.dedup();
        whole = contigs
            .into_iter()
            .filter_map(|c| {
                covered(c).map(|(start, end)| Region {
                    contig: c.to_string(),
                    start,
                    end,
                })
            })
            .collect();
        &whole[..]
    } else {
        regions
    };
    let mut out: Vec<Vec<Region>> = vec![Vec::new(); n];
    let mut pieces: Vec<Region> = Vec::new();
    for region in regions {
        match covered(&region.contig) {
            Some((lo, hi)) if region.start.max(lo) <= region.end.min(hi) => pieces.push(Region {
                contig: region.contig.clone(),
                start: region.start.max(lo),
                end: region.end.min(hi),
            }),
            _ => out[0].push(region.clone()),
        }
    }
    let total: i64 = pieces.iter().map(|p| p.end - p.start + 1).sum();
    let share = (total + n as i64 - 1) / n as i64;
    let (mut task, mut filled) = (0usize, 0i64);
    for mut piece in pieces {
        while piece.start <= piece.end {
            let room = share - filled;
            let end = piece.end.min(piece.start + room - 1);
            out[task].push(Region {
                contig: piece.contig.clone(),
                start: piece.start,
                end,
            });
            filled += end - piece.start + 1;
            piece.start = end + 1;
            if filled >= share && task + 1 < n {
                task += 1;
                filled = 0;
            }
        }
    }
    out
}

impl DisplayAs for RegionTasksExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RegionTasksExec: {}, version={}, tasks={}",
            self.tasks.call.name,
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

/// One task: the operation over `regions` on the planned version.
async fn run(
    tasks: &RegionTasks,
    engines: &EngineVersions,
    regions: &[Region],
) -> crate::error::Result<Vec<datafusion::arrow::array::RecordBatch>> {
    let engine = engines.at(tasks.version).await?;
    let cohorts = tasks
        .cohorts
        .iter()
        .map(|hex_set| {
            let bytes = hex::decode(hex_set)
                .map_err(|e| crate::error::EngineError::InvalidArgument(e.to_string()))?;
            let set = deserialize_bitmap(&bytes).ok_or_else(|| {
                crate::error::EngineError::InvalidArgument("a cohort's bitmap is not valid".into())
            })?;
            Ok(Cohort::new(set))
        })
        .collect::<crate::error::Result<Vec<_>>>()?;
    let call = &tasks.call;
    let cohort = |i: usize| {
        cohorts
            .get(i)
            .ok_or_else(|| crate::error::EngineError::InvalidArgument("a cohort is missing".into()))
    };
    Ok(match call.operation()? {
        Operation::AlleleFrequencies => vec![engine.allele_frequencies(regions, cohort(0)?).await?],
        Operation::CaseControl => engine.case_control(regions, cohort(0)?, cohort(1)?).await?,
        Operation::Association => {
            let covariates: Vec<String> = call
                .arg(2)
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            engine
                .association(
                    regions,
                    cohort(0)?,
                    "phenotypes",
                    call.arg(1),
                    &covariates,
                    call.model()?,
                )
                .await?
        }
        other => {
            return Err(crate::error::EngineError::InvalidArgument(format!(
                "{} is not split across tasks",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(contig: &str, start: i64, end: i64) -> Region {
        Region {
            contig: contig.into(),
            start,
            end,
        }
    }

    #[test]
    fn regions_split_into_equal_covered_lengths_in_order() {
        let spans = [region("1", 101, 200), region("2", 1, 100)];
        let tasks = split_regions(&[], &spans, 4);
        assert_eq!(
            tasks,
            vec![
                vec![region("1", 101, 150)],
                vec![region("1", 151, 200)],
                vec![region("2", 1, 50)],
                vec![region("2", 51, 100)],
            ]
        );
        // Clamped to what fragments cover; an uncovered region stays whole in task 0.
        let tasks = split_regions(
            &[
                region("1", 1, 120),
                region("9", 5, 6),
                region("2", 91, 1000),
            ],
            &spans,
            2,
        );
        assert_eq!(
            tasks,
            vec![
                vec![region("9", 5, 6), region("1", 101, 115)],
                vec![region("1", 116, 120), region("2", 91, 100)],
            ]
        );
        // More tasks than positions: the rest are empty.
        let tasks = split_regions(&[region("1", 150, 151)], &spans, 3);
        assert_eq!(tasks.iter().filter(|t| !t.is_empty()).count(), 2);
    }
}
