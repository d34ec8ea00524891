//! The SQL building blocks, none of which knows the engine: the genotype bitmap functions
//! ([`bitmap_count_functions`], [`bitmap_set_functions`], [`sample_set`]), the `genotypes`
//! view and its rewrite to bitmaps ([`genotypes_view`], [`genotype_aggregates`]), withdrawn
//! participants masked out (`withdrawal_masks`) and the phenotype tables (`phenotype_schema`).

pub(crate) mod bitmap_args;
pub mod bitmap_count_functions;
pub mod bitmap_set_functions;
pub mod genotype_aggregates;
pub mod genotypes_view;
pub(crate) mod phenotype_schema;
pub mod sample_set;
pub(crate) mod withdrawal_masks;

use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;

use bitmap_count_functions::{BitmapCount, BitmapCountUdf};
use bitmap_set_functions::{BitmapSetOp, BitmapSetUdf};
use genotypes_view::GenotypeCallsUdf;
use sample_set::SampleSetUdaf;

/// The functions a session registers by name (the genotype bitmap functions).
pub(crate) fn session_udfs() -> [ScalarUDF; 9] {
    [
        BitmapCountUdf::udf(BitmapCount::AlleleCount),
        BitmapCountUdf::udf(BitmapCount::AlleleNumber),
        BitmapCountUdf::udf(BitmapCount::AndCount),
        BitmapSetUdf::udf(BitmapSetOp::Or),
        BitmapSetUdf::udf(BitmapSetOp::And),
        BitmapSetUdf::udf(BitmapSetOp::AndNot),
        BitmapSetUdf::udf(BitmapSetOp::Count),
        BitmapSetUdf::udf(BitmapSetOp::ToList),
        GenotypeCallsUdf::udf(),
    ]
}

/// Every function without state a plan of an engine's session may call, by name: what a node
/// running such a plan registers (`site_is_public` carries state and travels in the plan).
pub(crate) fn plan_functions() -> (Vec<Arc<ScalarUDF>>, Vec<Arc<AggregateUDF>>) {
    let scalar = session_udfs()
        .into_iter()
        .chain(withdrawal_masks::mask_udfs())
        .map(Arc::new)
        .collect();
    (scalar, vec![Arc::new(SampleSetUdaf::udaf())])
}

/// The physical plan of a view's `plan`, for a view's `scan`: made by DataFusion's own planner,
/// not the session's, which with workers would make this part of a query a distributed plan of
/// its own nested in the query's (the query is distributed as a whole).
pub(crate) async fn plan_view(
    state: &dyn Session,
    plan: &LogicalPlan,
) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
    match state
        .as_any()
        .downcast_ref::<datafusion::execution::SessionState>()
    {
        Some(session) => {
            let optimized = session.optimize(plan)?;
            DefaultPhysicalPlanner::default()
                .create_physical_plan(&optimized, session)
                .await
        }
        None => state.create_physical_plan(plan).await,
    }
}
