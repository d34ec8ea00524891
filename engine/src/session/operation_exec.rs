//! One call of a cohort operation (a table function of `table_functions`) as
//! an [`ExecutionPlan`]: planning only names the call; the operation runs when its stream is
//! first polled, and its errors (a refusal, an unknown sample) come in the stream.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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
use serde::{Deserialize, Serialize};

use crate::cohort_engine::CohortEngine;
use crate::ops::association::{Model, association_schema};
use crate::ops::carriers::VariantSpec;
use crate::ops::case_control::case_control_schema;
use crate::policy::access_policy::Tier;
use crate::policy::count_suppression::suppressed_schema;
use crate::region::Region;

/// Which operation a table function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `allele_frequencies`.
    AlleleFrequencies,
    /// `case_control`.
    CaseControl,
    /// `association`.
    Association,
    /// `carriers`.
    Carriers,
    /// `sample_genotypes`.
    SampleGenotypes,
}

impl Operation {
    /// Each operation with its SQL name and its least and most arguments.
    pub const ALL: [(Self, &'static str, usize, usize); 5] = [
        (Self::AlleleFrequencies, "allele_frequencies", 1, 2),
        (Self::CaseControl, "case_control", 3, 3),
        (Self::Association, "association", 3, 5),
        (Self::Carriers, "carriers", 1, 4),
        (Self::SampleGenotypes, "sample_genotypes", 1, 2),
    ];

    /// The SQL name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, ..)| *op == self)
            .map_or("", |(_, name, ..)| name)
    }

    /// The operation of SQL name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, ..)| *n == name)
            .map(|(op, ..)| *op)
    }

    /// Whether the aggregate tier may call the operation (`association`'s coefficients are
    /// exact, see [`CohortEngine::association`]).
    pub fn is_aggregate(self) -> bool {
        matches!(self, Self::AlleleFrequencies | Self::CaseControl)
    }

    /// The columns of its rows (before the aggregate tier's `suppressed` flag).
    pub fn schema(self) -> SchemaRef {
        let fields = |cols: &[(&str, DataType)]| -> SchemaRef {
            Arc::new(Schema::new(
                cols.iter()
                    .map(|(n, t)| Field::new(*n, t.clone(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        let site = [
            ("chrom", DataType::Utf8),
            ("pos", DataType::Int64),
            ("id", DataType::Utf8),
            ("ref", DataType::Utf8),
            ("alt", DataType::Utf8),
        ];
        let nullable = |s: SchemaRef| -> SchemaRef {
            Arc::new(Schema::new(
                s.fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            ))
        };
        match self {
            Self::AlleleFrequencies => {
                let mut cols = site.to_vec();
                cols.extend([
                    ("ac", DataType::Int64),
                    ("an", DataType::Int64),
                    ("af", DataType::Float64),
                    ("n_het", DataType::Int64),
                    ("n_hom_alt", DataType::Int64),
                ]);
                fields(&cols)
            }
            Self::CaseControl => nullable(case_control_schema()),
            Self::Association => nullable(association_schema()),
            Self::Carriers => {
                let mut cols = site.to_vec();
                cols.extend([
                    ("sample_id", DataType::Utf8),
                    ("genotype", DataType::Utf8),
                    ("gt", DataType::Utf8),
                ]);
                fields(&cols)
            }
            Self::SampleGenotypes => {
                let mut cols = site.to_vec();
                cols.extend([
                    ("genotype", DataType::Utf8),
                    ("phased", DataType::Boolean),
                    ("gt", DataType::Utf8),
                ]);
                fields(&cols)
            }
        }
    }
}

/// One call: the operation and its arguments (string literals, as SQL gave them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCall {
    /// The operation's SQL name.
    pub name: String,
    /// The arguments.
    pub args: Vec<String>,
}

/// Engine errors pass through DataFusion as `External`, so their kind (a refusal, a bad
/// region) reaches the caller.
pub(crate) fn engine_error(e: crate::error::EngineError) -> DataFusionError {
    match e {
        crate::error::EngineError::DataFusion(e) => e,
        other => DataFusionError::External(Box::new(other)),
    }
}

impl OperationCall {
    /// Argument `i`, blank when not given.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }

    async fn cohort(
        &self,
        e: &CohortEngine,
        i: usize,
    ) -> crate::error::Result<crate::cohort::members::Cohort> {
        e.cohort(self.arg(i)).await
    }

    /// Argument `i` as regions (blank: every contig).
    pub fn regions(&self, i: usize) -> crate::error::Result<Vec<Region>> {
        match self.arg(i).trim() {
            "" => Ok(Vec::new()),
            text => Region::parse_list(text),
        }
    }

    /// Checks the arguments that need no data: regions, the model, the variant.
    pub fn check(&self) -> crate::error::Result<()> {
        match Operation::from_name(&self.name) {
            Some(Operation::AlleleFrequencies | Operation::CaseControl) => {
                self.regions(0)?;
            }
            Some(Operation::Association) => {
                self.regions(0)?;
                self.model()?;
            }
            Some(Operation::Carriers) => {
                VariantSpec::parse(self.arg(0))
                    .map_err(crate::error::EngineError::InvalidArgument)?;
                self.page()?;
            }
            Some(Operation::SampleGenotypes) => {
                self.regions(1)?;
            }
            None => {
                return Err(crate::error::EngineError::InvalidArgument(format!(
                    "no operation {:?}",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// The page size (0: the default) and page number (from 0) of `carriers`.
    pub(crate) fn page(&self) -> crate::error::Result<(usize, u64)> {
        let number = |i: usize, what: &str| -> crate::error::Result<u64> {
            let text = self.arg(i).trim();
            if text.is_empty() {
                return Ok(0);
            }
            text.parse().map_err(|_| {
                crate::error::EngineError::InvalidArgument(format!(
                    "carriers: the {what} {text:?} is not a whole number"
                ))
            })
        };
        let size = number(2, "page size")?;
        Ok((
            usize::try_from(size).unwrap_or(usize::MAX),
            number(3, "page")?,
        ))
    }

    /// The `covariates` argument of `association`, split at commas.
    pub(crate) fn covariates(&self) -> Vec<String> {
        self.arg(2)
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The `model` argument of `association`.
    pub(crate) fn model(&self) -> crate::error::Result<Option<Model>> {
        Model::parse(self.arg(3))
    }

    /// Runs the call on `e`.
    pub async fn run(&self, e: &CohortEngine) -> crate::error::Result<Vec<RecordBatch>> {
        let operation = Operation::from_name(&self.name).ok_or_else(|| {
            crate::error::EngineError::InvalidArgument(format!("no operation {:?}", self.name))
        })?;
        Ok(match operation {
            Operation::AlleleFrequencies => {
                let set = self.cohort(e, 1).await?;
                vec![e.allele_frequencies(&self.regions(0)?, &set).await?]
            }
            Operation::CaseControl => {
                let sets = e
                    .cohorts(&[
                        crate::CohortSpec::parse(self.arg(1)),
                        crate::CohortSpec::parse(self.arg(2)),
                    ])
                    .await?;
                e.case_control(&self.regions(0)?, &sets[0], &sets[1])
                    .await?
            }
            Operation::Association => {
                let covariates = self.covariates();
                let model = self.model()?;
                let set = self.cohort(e, 4).await?;
                e.association(
                    &self.regions(0)?,
                    &set,
                    "phenotypes",
                    self.arg(1),
                    &covariates,
                    model,
                    None,
                )
                .await?
            }
            Operation::Carriers => {
                let variant = VariantSpec::parse(self.arg(0))
                    .map_err(crate::error::EngineError::InvalidArgument)?;
                let set = self.cohort(e, 1).await?;
                let (size, page) = self.page()?;
                let size = e.page_size(size)?;
                let offset = page.saturating_mul(size as u64);
                vec![e.carrier_rows(&variant, &set, &[], offset, size).await?.0]
            }
            Operation::SampleGenotypes => {
                e.sample_genotypes(&self.regions(1)?, self.arg(0))
                    .await?
                    .collect()
                    .await?
            }
        })
    }
}

impl OperationCall {
    /// The operation called.
    pub fn operation(&self) -> Result<Operation> {
        Operation::from_name(&self.name)
            .ok_or_else(|| DataFusionError::Plan(format!("no operation {:?}", self.name)))
    }

    /// The columns of its rows for `tier`.
    pub fn schema(&self, tier: Tier) -> Result<SchemaRef> {
        let schema = self.operation()?.schema();
        Ok(match tier {
            Tier::Aggregate => suppressed_schema(schema.as_ref()),
            _ => schema,
        })
    }
}

/// `batches` of a call with the columns, declared types and nullability of `schema`, then
/// projected.
pub(crate) fn conform(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    projection: Option<&[usize]>,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        out.push(match projection {
            Some(p) => batch.project(p)?,
            None => batch,
        });
    }
    Ok(out)
}

/// A call run by an engine, its rows projected.
#[derive(Debug)]
pub struct OperationExec {
    engine: Arc<CohortEngine>,
    call: OperationCall,
    projection: Option<Vec<usize>>,
    /// The call's columns, before projection.
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl OperationExec {
    /// `call` on `engine`, producing the columns `projection` chooses.
    pub fn new(
        engine: Arc<CohortEngine>,
        call: OperationCall,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let schema = call.schema(engine.tier())?;
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
            engine,
            call,
            projection,
            schema,
            properties: Arc::new(properties),
        })
    }

    /// The call.
    pub fn call(&self) -> &OperationCall {
        &self.call
    }

    /// The columns produced, by index into the call's (`None`: all).
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }
}

impl DisplayAs for OperationExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "OperationExec: {}({})",
            self.call.name,
            self.call.args.len()
        )
    }
}

impl ExecutionPlan for OperationExec {
    fn name(&self) -> &'static str {
        "OperationExec"
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
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "OperationExec has one partition, not {partition}"
            )));
        }
        let (engine, call, schema) = (self.engine.clone(), self.call.clone(), self.schema.clone());
        let projection = self.projection.clone();
        let output = self.properties.eq_properties.schema().clone();
        let rows = futures::stream::once(async move {
            let batches = call.run(&engine).await.map_err(engine_error)?;
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
