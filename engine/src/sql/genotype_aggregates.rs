//! An optimizer rule that answers per-group counts over the `genotypes` view with bitmaps,
//! never expanding a genotype.
//!
//! It rewrites
//!
//! ```sql
//! SELECT <site columns of g>, <columns of p>, count(*), sum(g.dosage)
//! FROM genotypes g JOIN <phenotype table> p ON g.sample_id = p.sample_id   -- or sample_idx
//! WHERE <filters on site columns of g> AND <filters on p>
//! GROUP BY <site columns of g>, <columns of p>
//! ```
//!
//! into: for every `variants` row passing the site filters, and every group of `p` (its rows
//! passing the `p` filters, as a `sample_set`), `count(*) = |carriers & set|` and
//! `sum(dosage) = |het & set| + 2 |hom_alt & set| + |hemi & set|`, keeping the groups whose
//! count is not 0 (the join would produce no row for them). Site columns are `contig`, `pos`,
//! `ref`, `alt` and `allele_index`.
//!
//! The rewrite applies only when it is exact: an inner equi-join on the sample key; the
//! `genotypes` side only scans and filters site columns; the other side is one table scanned,
//! filtered and projected (a phenotype table, keyed by sample, or `samples`), so each sample
//! has at most one row there; group keys are plain columns; aggregates are `count(*)`,
//! `count(<site column>)` and `sum(dosage)`, none distinct or filtered. Anything else runs as
//! written.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, TableReference};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Expr, JoinType, LogicalPlan, LogicalPlanBuilder, TableSource, col, lit,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::sql::bitmap_count_functions::{BitmapCount, BitmapCountUdf};
use crate::sql::bitmap_set_functions::{BitmapSetOp, BitmapSetUdf};
use crate::sql::genotypes_view::GENOTYPES;
use crate::sql::sample_set::SampleSetUdaf;

const SITE_COLUMNS: [&str; 5] = ["contig", "pos", "ref", "alt", "allele_index"];

/// The rule, holding the sources of `variants` and `samples` it plans over.
pub struct GenotypeAggregates {
    variants: Arc<dyn TableSource>,
    samples: Arc<dyn TableSource>,
}

impl std::fmt::Debug for GenotypeAggregates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenotypeAggregates")
    }
}

impl GenotypeAggregates {
    /// The rule over these tables.
    pub fn new(
        variants: Arc<dyn datafusion::datasource::TableProvider>,
        samples: Arc<dyn datafusion::datasource::TableProvider>,
    ) -> Self {
        use datafusion::datasource::provider_as_source;
        Self {
            variants: provider_as_source(variants),
            samples: provider_as_source(samples),
        }
    }
}

/// What an aggregate computes, in bitmap terms.
enum Measure {
    Calls,
    Dosage,
}

/// The `genotypes` side of the join: its plan and the filters on it.
struct GenotypeSide {
    filters: Vec<Expr>,
}

fn site_only(expr: &Expr) -> bool {
    expr.column_refs()
        .iter()
        .all(|c| SITE_COLUMNS.contains(&c.name.as_str()))
}

/// `SubqueryAlias`, `Filter` and column-only `Projection` nodes over a scan of `genotypes`.
fn genotype_side(plan: &LogicalPlan) -> Option<GenotypeSide> {
    let mut filters = Vec::new();
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Filter(f) => {
                filters.push(f.predicate.clone());
                node = &f.input;
            }
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                node = &p.input
            }
            LogicalPlan::TableScan(scan) if scan.table_name.table() == GENOTYPES => {
                if scan.fetch.is_some() {
                    return None;
                }
                filters.extend(scan.filters.iter().cloned());
                return Some(GenotypeSide { filters });
            }
            _ => return None,
        }
    }
}

/// One table scanned, filtered and projected: at most one row per sample.
fn single_table(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::SubqueryAlias(a) => single_table(&a.input),
        LogicalPlan::Filter(f) => single_table(&f.input),
        LogicalPlan::Projection(p) => single_table(&p.input),
        LogicalPlan::TableScan(scan) => {
            scan.fetch.is_none() && ![GENOTYPES, "variants"].contains(&scan.table_name.table())
        }
        _ => false,
    }
}

fn unqualified(expr: Expr) -> Result<Expr> {
    expr.transform(|e| match e {
        Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::from_name(c.name)))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn measure(expr: &Expr, genotypes: &LogicalPlan) -> Option<Measure> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
        return None;
    };
    if params.distinct || params.filter.is_some() || !params.order_by.is_empty() {
        return None;
    }
    let strip = |e: &Expr| match e {
        Expr::Cast(c) => (*c.expr).clone(),
        Expr::TryCast(c) => (*c.expr).clone(),
        other => other.clone(),
    };
    let from_genotypes =
        |c: &Column| genotypes.schema().has_column(c) && SITE_COLUMNS.contains(&c.name.as_str());
    match (func.name(), params.args.as_slice()) {
        ("count", [Expr::Literal(v, _)]) if !v.is_null() => Some(Measure::Calls),
        ("count", [Expr::Column(c)]) if from_genotypes(c) => Some(Measure::Calls),
        ("sum", [arg]) => match strip(arg) {
            Expr::Column(c) if c.name == "dosage" && genotypes.schema().has_column(&c) => {
                Some(Measure::Dosage)
            }
            _ => None,
        },
        _ => None,
    }
}

impl GenotypeAggregates {
    fn try_rewrite(&self, plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(None);
        };
        let mut input = agg.input.as_ref();
        while let LogicalPlan::Projection(p) = input {
            if !p.expr.iter().all(|e| matches!(e, Expr::Column(_))) {
                return Ok(None);
            }
            input = &p.input;
        }
        let LogicalPlan::Join(join) = input else {
            return Ok(None);
        };
        if join.join_type != JoinType::Inner || join.filter.is_some() || join.on.len() != 1 {
            return Ok(None);
        }
        let (Expr::Column(left_key), Expr::Column(right_key)) = &join.on[0] else {
            return Ok(None);
        };
        let (g_plan, p_plan, g_key, p_key) = if genotype_side(&join.left).is_some() {
            (&join.left, &join.right, left_key, right_key)
        } else {
            (&join.right, &join.left, right_key, left_key)
        };
        let (Some(side), true) = (genotype_side(g_plan), single_table(p_plan)) else {
            return Ok(None);
        };
        if !["sample_id", "sample_idx"].contains(&g_key.name.as_str())
            || !side.filters.iter().all(site_only)
        {
            return Ok(None);
        }
        let mut site_groups = Vec::new();
        let mut phenotype_groups = Vec::new();
        for e in &agg.group_expr {
            let Expr::Column(c) = e else { return Ok(None) };
            if g_plan.schema().has_column(c) {
                if !SITE_COLUMNS.contains(&c.name.as_str()) {
                    return Ok(None);
                }
                site_groups.push(c.clone());
            } else if p_plan.schema().has_column(c) {
                phenotype_groups.push(c.clone());
            } else {
                return Ok(None);
            }
        }
        let measures = agg
            .aggr_expr
            .iter()
            .map(|e| measure(e, g_plan))
            .collect::<Option<Vec<_>>>();
        let Some(measures) = measures else {
            return Ok(None);
        };

        // Variants passing the site filters, with their carriers.
        let mut variants = LogicalPlanBuilder::scan("variants", self.variants.clone(), None)?;
        if let Some(filter) = side.filters.into_iter().reduce(Expr::and) {
            variants = variants.filter(unqualified(filter)?)?;
        }
        let or = |a: Expr, b: Expr| BitmapSetUdf::udf(BitmapSetOp::Or).call(vec![a, b]);
        let mut projected: Vec<Expr> = site_groups
            .iter()
            .map(|c| col(format!("variants.{}", c.name)).alias(format!("__site_{}", c.name)))
            .collect();
        projected.extend([
            or(or(col("het"), col("hom_alt")), col("hemi")).alias("__carriers"),
            col("het").alias("__het"),
            col("hom_alt").alias("__hom_alt"),
            col("hemi").alias("__hemi"),
        ]);
        let variants = variants.project(projected)?.build()?;

        // The groups of the other side as sample sets, through `samples` for the index.
        let samples = LogicalPlanBuilder::scan("samples", self.samples.clone(), None)?
            .alias("__samples")?
            .build()?;
        let key = Column::new(Some(TableReference::bare("__samples")), g_key.name.clone());
        let sets = LogicalPlanBuilder::from(p_plan.as_ref().clone())
            .join(
                samples,
                JoinType::Inner,
                (vec![p_key.clone()], vec![key]),
                None,
            )?
            .aggregate(
                phenotype_groups.iter().cloned().map(Expr::Column),
                vec![
                    SampleSetUdaf::udaf()
                        .call(vec![col("__samples.sample_idx")])
                        .alias("__set"),
                ],
            )?
            .build()?;

        let count = |bitmap: &str| {
            BitmapCountUdf::udf(BitmapCount::AndCount).call(vec![col(bitmap), col("__set")])
        };
        // Per variant row and group, then summed over the rows of each output group (the
        // group keys need not identify a row: `GROUP BY p.case_control` over a region).
        let keys: Vec<Expr> = site_groups
            .iter()
            .map(|c| col(format!("__site_{}", c.name)))
            .chain(phenotype_groups.iter().cloned().map(Expr::Column))
            .collect();
        let mut per_row = keys.clone();
        per_row.push(count("__carriers").alias("__calls"));
        for (i, m) in measures.iter().enumerate() {
            per_row.push(
                match m {
                    Measure::Calls => count("__carriers"),
                    Measure::Dosage => {
                        count("__het") + lit(2i64) * count("__hom_alt") + count("__hemi")
                    }
                }
                .alias(format!("__m{i}")),
            );
        }
        let mut sums = vec![sum(col("__calls")).alias("__calls")];
        sums.extend(
            (0..measures.len()).map(|i| sum(col(format!("__m{i}"))).alias(format!("__m{i}"))),
        );
        let outputs = keys
            .into_iter()
            .chain((0..measures.len()).map(|i| col(format!("__m{i}"))));
        let named: Vec<Expr> = outputs
            .zip(agg.schema.iter())
            .map(|(e, (qualifier, field))| e.alias_qualified(qualifier.cloned(), field.name()))
            .collect();
        let rewritten = LogicalPlanBuilder::from(variants)
            .cross_join(sets)?
            .project(per_row)?
            .aggregate(
                site_groups
                    .iter()
                    .map(|c| col(format!("__site_{}", c.name)))
                    .chain(phenotype_groups.iter().cloned().map(Expr::Column)),
                sums,
            )?
            .filter(col("__calls").gt(lit(0i64)))?
            .project(named)?
            .build()?;
        Ok(Some(rewritten))
    }
}

impl OptimizerRule for GenotypeAggregates {
    fn name(&self) -> &str {
        "genotype_aggregates_to_bitmaps"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        // A plan the rewrite cannot build (say, join keys of other types) runs as written.
        Ok(match self.try_rewrite(&plan) {
            Ok(Some(rewritten)) => Transformed::yes(rewritten),
            Ok(None) | Err(_) => Transformed::no(plan),
        })
    }
}
