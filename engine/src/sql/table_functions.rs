//! The cohort operations as SQL table functions, so that SQL clients (Flight SQL, `cohortdb
//! query`) reach them unchanged:
//!
//! | function | columns |
//! |---|---|
//! | `allele_frequencies(regions [, cohort])` | `chrom pos ref alt ac an af n_het n_hom_alt` |
//! | `case_control(regions, cases, controls)` | as `cohortdb case-control` |
//! | `association(regions, trait, covariates [, model [, cohort]])` | `chrom pos ref alt n beta se p` |
//! | `carriers(variant [, cohort])` | `chrom pos ref alt sample_id genotype` |
//! | `sample_genotypes(sample_id [, regions])` | `chrom pos ref alt genotype phased` |
//!
//! Arguments are string literals: regions as `-r` takes them (`''` for every contig), a cohort
//! as `--cohort` takes it (a predicate or `@NAME`; `''` or absent for everyone), covariates
//! comma-separated, model `linear` or `logistic` (`''` to choose by the trait). The operation
//! runs when the table is scanned; its rows then flow through the rest of the query.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::cohort_engine::CohortEngine;
use crate::ops::association::{Model, association_schema};
use crate::ops::carriers::VariantSpec;
use crate::ops::case_control::case_control_schema;
use crate::policy::access_policy::Tier;
use crate::policy::count_suppression::suppressed_schema;
use crate::region::Region;

/// Which operation a table function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    AlleleFrequencies,
    CaseControl,
    Association,
    Carriers,
    SampleGenotypes,
}

impl Operation {
    const ALL: [(Self, &'static str, usize, usize); 5] = [
        (Self::AlleleFrequencies, "allele_frequencies", 1, 2),
        (Self::CaseControl, "case_control", 3, 3),
        (Self::Association, "association", 3, 5),
        (Self::Carriers, "carriers", 1, 2),
        (Self::SampleGenotypes, "sample_genotypes", 1, 2),
    ];

    /// Whether the aggregate tier may call the operation (`association`'s coefficients are
    /// exact, see [`CohortEngine::association`]).
    fn is_aggregate(self) -> bool {
        matches!(self, Self::AlleleFrequencies | Self::CaseControl)
    }

    fn schema(self) -> SchemaRef {
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
                cols.extend([("sample_id", DataType::Utf8), ("genotype", DataType::Utf8)]);
                fields(&cols)
            }
            Self::SampleGenotypes => {
                let mut cols = site.to_vec();
                cols.extend([("genotype", DataType::Utf8), ("phased", DataType::Boolean)]);
                fields(&cols)
            }
        }
    }
}

/// A table function bound to an engine.
#[derive(Debug)]
struct OperationFunction {
    engine: Arc<CohortEngine>,
    operation: Operation,
    name: &'static str,
    arity: (usize, usize),
}

fn text_argument(name: &str, expr: &Expr) -> Result<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v),
            _,
        ) => Ok(v.clone().unwrap_or_default()),
        Expr::Literal(ScalarValue::Null, _) => Ok(String::new()),
        other => Err(DataFusionError::Plan(format!(
            "{name}: arguments are string literals, not {other}"
        ))),
    }
}

impl TableFunctionImpl for OperationFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if self.engine.tier() == Tier::Aggregate && !self.operation.is_aggregate() {
            return Err(engine_error(crate::error::EngineError::PermissionDenied(
                format!(
                    "{} returns individual-level data, which the aggregate tier may not see",
                    self.name
                ),
            )));
        }
        let exprs = args.exprs();
        let (min, max) = self.arity;
        if exprs.len() < min || exprs.len() > max {
            return Err(DataFusionError::Plan(format!(
                "{} takes {min} to {max} string arguments, got {}",
                self.name,
                exprs.len()
            )));
        }
        let args = exprs
            .iter()
            .map(|e| text_argument(self.name, e))
            .collect::<Result<Vec<_>>>()?;
        let schema = match self.engine.tier() {
            Tier::Aggregate => suppressed_schema(self.operation.schema().as_ref()),
            _ => self.operation.schema(),
        };
        // The scan is named after the whole call: DataFusion compares scans by name, and two
        // calls with other arguments must never be taken for one (common subexpressions).
        let call = format!(
            "{}({})",
            self.name,
            args.iter()
                .map(|a| format!("'{}'", a.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let table = Arc::new(OperationTable {
            engine: self.engine.clone(),
            operation: self.operation,
            schema,
            args,
        });
        let plan = datafusion::logical_expr::LogicalPlanBuilder::scan(
            call,
            datafusion::datasource::provider_as_source(table),
            None,
        )?
        .build()?;
        Ok(Arc::new(OperationCall { plan }))
    }
}

/// One call of a table function, as a view over the scan of its [`OperationTable`].
#[derive(Debug)]
struct OperationCall {
    plan: datafusion::logical_expr::LogicalPlan,
}

#[async_trait]
impl TableProvider for OperationCall {
    fn schema(&self) -> SchemaRef {
        self.plan.schema().inner().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(
        &self,
    ) -> Option<std::borrow::Cow<'_, datafusion::logical_expr::LogicalPlan>> {
        Some(std::borrow::Cow::Borrowed(&self.plan))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plan = datafusion::logical_expr::LogicalPlanBuilder::from(self.plan.clone());
        if let Some(filter) = filters.iter().cloned().reduce(Expr::and) {
            plan = plan.filter(filter)?;
        }
        if let Some(projection) = projection {
            let columns = projection
                .iter()
                .map(|i| {
                    Expr::Column(datafusion::common::Column::from(
                        self.plan.schema().qualified_field(*i),
                    ))
                })
                .collect::<Vec<_>>();
            plan = plan.project(columns)?;
        }
        plan = plan.limit(0, limit)?;
        state.create_physical_plan(&plan.build()?).await
    }
}

/// The result of one call, computed when scanned.
#[derive(Debug)]
struct OperationTable {
    engine: Arc<CohortEngine>,
    operation: Operation,
    schema: SchemaRef,
    args: Vec<String>,
}

/// Engine errors pass through DataFusion as `External`, so their kind (a refusal, a bad
/// region) reaches the caller.
fn engine_error(e: crate::error::EngineError) -> DataFusionError {
    match e {
        crate::error::EngineError::DataFusion(e) => e,
        other => DataFusionError::External(Box::new(other)),
    }
}

impl OperationTable {
    fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }

    async fn cohort(&self, i: usize) -> crate::error::Result<crate::cohort::members::Cohort> {
        self.engine
            .cohort(&crate::CohortSpec::parse(self.arg(i)))
            .await
    }

    fn regions(&self, i: usize) -> crate::error::Result<Vec<Region>> {
        match self.arg(i).trim() {
            "" => Ok(Vec::new()),
            text => Region::parse_list(text),
        }
    }

    async fn run(&self) -> crate::error::Result<Vec<RecordBatch>> {
        let e = &self.engine;
        Ok(match self.operation {
            Operation::AlleleFrequencies => {
                let set = self.cohort(1).await?;
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
                let covariates: Vec<String> = self
                    .arg(2)
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                let model = match self.arg(3).trim() {
                    "" => None,
                    "linear" => Some(Model::Linear),
                    "logistic" => Some(Model::Logistic),
                    other => {
                        return Err(crate::error::EngineError::InvalidArgument(format!(
                            "association: model {other:?} is not linear or logistic"
                        )));
                    }
                };
                let set = self.cohort(4).await?;
                e.association(
                    &self.regions(0)?,
                    &set,
                    "phenotypes",
                    self.arg(1),
                    &covariates,
                    model,
                )
                .await?
            }
            Operation::Carriers => {
                let variant = VariantSpec::parse(self.arg(0))
                    .map_err(crate::error::EngineError::InvalidArgument)?;
                let set = self.cohort(1).await?;
                vec![e.carriers(&variant, &set, &[]).await?]
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

#[async_trait]
impl TableProvider for OperationTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches = self.run().await.map_err(engine_error)?;
        // Same columns, declared types and nullability.
        let batches = batches
            .iter()
            .map(|b| {
                let columns = b
                    .columns()
                    .iter()
                    .zip(self.schema.fields())
                    .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
            })
            .collect::<Result<Vec<_>>>()?;
        MemTable::try_new(self.schema.clone(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Registers the table functions of `engine` in `ctx`. For the aggregate tier, those that
/// return individual-level rows refuse to plan, and the others' rows carry the `suppressed`
/// flag.
pub fn register_table_functions(ctx: &SessionContext, engine: &CohortEngine) {
    let engine = Arc::new(engine.clone());
    for (operation, name, min, max) in Operation::ALL {
        ctx.register_udtf(
            name,
            Arc::new(OperationFunction {
                engine: engine.clone(),
                operation,
                name,
                arity: (min, max),
            }),
        );
    }
}
