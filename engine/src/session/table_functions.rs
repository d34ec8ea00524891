//! The cohort operations as SQL table functions, so that SQL clients (Flight SQL, `cohortdb
//! query`) reach them unchanged:
//!
//! | function | columns |
//! |---|---|
//! | `allele_frequencies(regions [, cohort])` | `chrom pos id ref alt ac an af n_het n_hom_alt` |
//! | `case_control(regions, cases, controls)` | as `cohortdb case-control` |
//! | `association(regions, trait, covariates [, model [, cohort]])` | `chrom pos id ref alt n beta se p or firth errcode` |
//! | `carriers(variant [, cohort [, page_size [, page]]])` | `chrom pos id ref alt sample_id genotype gt`, one page |
//! | `sample_genotypes(sample_id [, regions])` | `chrom pos id ref alt genotype phased gt` |
//!
//! Arguments are string literals: regions as `-r` takes them (`''` for every contig), a cohort
//! as `--cohort` takes it (a predicate or `@NAME`; `''` or absent for everyone), covariates
//! comma-separated, model `linear` or `logistic` (`''` to choose by the trait), page size and
//! page number (from 0) as numbers or strings: `carriers` answers one page, of 10,000 rows
//! unless a size is given ([`crate::ops::carrier_pages`]). Arguments are
//! checked when the query is planned; the operation runs when the plan is executed
//! ([`crate::session::operation_exec`]), and its rows then flow through the rest of the query.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::cohort_engine::CohortEngine;
use crate::policy::access_policy::Tier;
use crate::session::operation_exec::{Operation, OperationCall, OperationExec, engine_error};
use crate::session::region_tasks_exec::RegionTasksExec;

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
        Expr::Literal(
            v @ (ScalarValue::Int64(Some(_))
            | ScalarValue::Int32(Some(_))
            | ScalarValue::UInt64(Some(_))
            | ScalarValue::UInt32(Some(_))),
            _,
        ) => Ok(v.to_string()),
        other => Err(DataFusionError::Plan(format!(
            "{name}: arguments are string or integer literals, not {other}"
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
        // The scan is named after the whole call: DataFusion compares scans by name, and two
        // calls with other arguments must never be taken for one (common subexpressions).
        let scan_name = format!(
            "{}({})",
            self.name,
            args.iter()
                .map(|a| format!("'{}'", a.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let call = OperationCall {
            name: self.name.to_string(),
            args,
        };
        // Arguments are checked now, so a malformed region fails the plan.
        call.check().map_err(engine_error)?;
        let schema = call.schema(self.engine.tier())?;
        let table = Arc::new(OperationTable {
            engine: self.engine.clone(),
            schema,
            call,
        });
        let plan = datafusion::logical_expr::LogicalPlanBuilder::scan(
            scan_name,
            datafusion::datasource::provider_as_source(table),
            None,
        )?
        .build()?;
        Ok(Arc::new(CallView { plan }))
    }
}

/// One call of a table function, as a view over the scan of its `OperationTable`.
#[derive(Debug)]
struct CallView {
    plan: datafusion::logical_expr::LogicalPlan,
}

#[async_trait]
impl TableProvider for CallView {
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
        crate::sql::plan_view(state, &plan.build()?).await
    }
}

/// One call, run when its plan is executed.
#[derive(Debug)]
struct OperationTable {
    engine: Arc<CohortEngine>,
    schema: SchemaRef,
    call: OperationCall,
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
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let split = RegionTasksExec::for_call(&self.engine, &self.call, projection.cloned())
            .await
            .map_err(crate::session::operation_exec::engine_error)?;
        if let Some(split) = split {
            return Ok(Arc::new(split));
        }
        Ok(Arc::new(OperationExec::new(
            self.engine.clone(),
            self.call.clone(),
            projection.cloned(),
        )?))
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
