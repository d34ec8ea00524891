//! The `variants` scan as an [`ExecutionPlan`]: a [`ScanPlan`] made when the query is planned,
//! read when the stream is first polled (`rows::row_stream`).

use std::fmt;
use std::sync::Arc;

use cohortdb_store::StoreLocation;
use cohortdb_store::fragment_schema::fragment_schema;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};

use crate::rows::fragment_reader::FooterCache;
use crate::rows::row_stream::{PartitionRows, ScanSource};
use crate::rows::scan_plan::ScanPlan;

/// URL under which a session registers the store's object store; scans read fragments
/// through it, so a plan sent to another node reads that node's registration.
pub const STORE_URL: &str = "cohortdb://store/";

/// Scans the `variants` rows a [`ScanPlan`] chose: one output partition per key range,
/// batches merged into cohort rows when the plan says so, projection and limit applied.
#[derive(Debug)]
pub struct VariantsExec {
    plan: Arc<ScanPlan>,
    footers: Arc<FooterCache>,
    /// The columns read: the projection plus what the merge needs.
    read_schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

/// Columns the merge keys rows by.
const KEY_COLUMNS: [&str; 6] = [
    "contig",
    "pos",
    "ref",
    "alt",
    "record_ordinal",
    "allele_index",
];

impl VariantsExec {
    /// The scan `plan` describes, reading footers through `footers`.
    pub fn new(plan: ScanPlan, footers: Arc<FooterCache>) -> Result<Self> {
        let table = fragment_schema(&plan.extra_columns);
        let output = match &plan.projection {
            Some(p) => Arc::new(table.project(p)?),
            None => table.clone(),
        };
        let mut wanted: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
        wanted.extend(["contig", "pos"]);
        if plan.merge {
            wanted.extend(KEY_COLUMNS);
            for name in output.fields().iter().map(|f| f.name().as_str()) {
                wanted.extend(merge_inputs(name));
            }
        }
        let read: Vec<usize> = (0..table.fields().len())
            .filter(|&i| wanted.contains(&table.field(i).name().as_str()))
            .collect();
        let read_schema = Arc::new(table.project(&read)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(plan.partitions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        .with_scheduling_type(SchedulingType::NonCooperative);
        Ok(Self {
            plan: Arc::new(plan),
            footers,
            read_schema,
            properties: Arc::new(properties),
        })
    }

    /// What this scan reads.
    pub fn scan_plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// The footers it reads through.
    pub(crate) fn footers(&self) -> &Arc<FooterCache> {
        &self.footers
    }
}

/// The stored columns a merged column is computed from.
fn merge_inputs(name: &str) -> &'static [&'static str] {
    match name {
        "ac" | "n_het" | "n_hom_alt" | "n_hemi" => &["het", "hom_alt", "hemi"],
        "an" => &["called_diploid", "called_haploid", "gt_exceptions"],
        "n_no_call" => &["no_call"],
        _ if name.starts_with("fmt_") => &["het", "hom_alt", "hemi"],
        _ => &[],
    }
}

impl DisplayAs for VariantsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let fragments: usize = self.plan.batches.iter().map(|b| b.fragments.len()).sum();
        let groups: usize = self
            .plan
            .batches
            .iter()
            .flat_map(|b| &b.fragments)
            .map(|f| f.row_groups.len())
            .sum();
        write!(
            f,
            "VariantsExec: batches={}, fragments={fragments}, row_groups={groups}, merge={}, partitions={}",
            self.plan.batches.len(),
            self.plan.merge,
            self.plan.partitions.len()
        )?;
        if let Some(limit) = self.plan.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for VariantsExec {
    fn name(&self) -> &'static str {
        "VariantsExec"
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
        let output = self.properties.eq_properties.schema().clone();
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        let location = StoreLocation {
            url: STORE_URL.to_string(),
            object_store: context.runtime_env().object_store(url)?,
            root: self.plan.root.as_str().into(),
        };
        let source = Arc::new(ScanSource {
            plan: self.plan.clone(),
            location,
            footers: self.footers.clone(),
            read_schema: self.read_schema.clone(),
            output_schema: output.clone(),
        });
        let rows = PartitionRows::new(source, partition, context.session_config().batch_size())?;
        let stream = futures::stream::try_unfold(rows, |mut rows| async move {
            Ok::<_, DataFusionError>(rows.next().await?.map(|batch| (batch, rows)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(output, stream)))
    }
}
