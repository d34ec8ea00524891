//! The `genotypes` view: one row per non-reference call, expanded from the bitmaps.
//!
//! Columns: `contig pos ref alt allele_index sample_idx sample_id dosage phased`, then the
//! kept FORMAT fields (`fmt_dp`, ...) of that call. `dosage` is the number of copies of the
//! row's ALT (1 for het and haploid calls, 2 for hom-alt); `phased` whether the call is
//! phased. Withdrawn samples never appear (the view joins `samples`).
//!
//! The expansion is the UDF `genotype_calls(het, hom_alt, hemi, phased)`: the carriers of a
//! row in ascending `sample_idx` as `struct(sample_idx, dosage, phased)`, the order of the
//! FORMAT lists, so unnesting both side by side pairs them. Filters on contig and position
//! reach the `variants` scan before any bitmap is expanded.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int8Builder, ListBuilder, StructBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::catalog::Session;
use datafusion::common::{Column, UnnestOptions};
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{
    ColumnarValue, JoinType, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, col,
};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::sql::bitmap_args::{binary_args, into_columnar, output_rows};

fn call_fields() -> Fields {
    Fields::from(vec![
        Field::new("sample_idx", DataType::UInt32, false),
        Field::new("dosage", DataType::Int8, false),
        Field::new("phased", DataType::Boolean, false),
    ])
}

fn calls_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(call_fields()),
        true,
    )))
}

/// `genotype_calls(het, hom_alt, hemi, phased)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenotypeCallsUdf {
    signature: Signature,
}

impl GenotypeCallsUdf {
    /// The UDF.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(Self {
            signature: Signature::any(4, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for GenotypeCallsUdf {
    fn name(&self) -> &str {
        "genotype_calls"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(calls_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = output_rows(&args);
        let bitmaps = binary_args(self.name(), &args.args)?;
        let fields = call_fields();
        let mut out = ListBuilder::new(StructBuilder::new(
            fields.clone(),
            vec![
                Box::new(UInt32Builder::new()),
                Box::new(Int8Builder::new()),
                Box::new(BooleanBuilder::new()),
            ],
        ))
        .with_field(Arc::new(Field::new("item", DataType::Struct(fields), true)));
        for row in 0..rows {
            let read = |i: usize| bitmaps[i].bitmap(self.name(), row);
            let (het, hom, hemi, phased) = (read(0)?, read(1)?, read(2)?, read(3)?);
            let (Some(het), Some(hom), Some(hemi)) = (het, hom, hemi) else {
                out.append_null();
                continue;
            };
            let mut calls: Vec<(u32, i8)> = het
                .iter()
                .map(|s| (s, 1))
                .chain(hom.iter().map(|s| (s, 2)))
                .chain(hemi.iter().map(|s| (s, 1)))
                .collect();
            calls.sort_unstable();
            let entries = out.values();
            for (sample, dosage) in calls {
                let is_phased = phased.as_ref().is_some_and(|p| p.contains(sample));
                field::<UInt32Builder>(entries, 0).append_value(sample);
                field::<Int8Builder>(entries, 1).append_value(dosage);
                field::<BooleanBuilder>(entries, 2).append_value(is_phased);
                entries.append(true);
            }
            out.append(true);
        }
        let array: ArrayRef = Arc::new(out.finish());
        into_columnar(&args, array)
    }
}

fn field<T: datafusion::arrow::array::ArrayBuilder>(b: &mut StructBuilder, i: usize) -> &mut T {
    // The builders are created above with exactly these types.
    #[allow(clippy::expect_used)]
    b.field_builder::<T>(i).expect("struct field builder type")
}

/// The logical plan of the `genotypes` view over the `variants` and `samples` providers;
/// `format_columns` are the store's kept FORMAT list columns (`fmt_dp`, ...).
pub fn genotypes_plan(
    variants: Arc<dyn TableProvider>,
    samples: Arc<dyn TableProvider>,
    format_columns: &[String],
) -> Result<LogicalPlan> {
    let calls = GenotypeCallsUdf::udf()
        .call(["het", "hom_alt", "hemi", "phased"].map(col).to_vec())
        .alias("call");
    let mut inner = vec![
        col("contig"),
        col("pos"),
        col("ref"),
        col("alt"),
        col("allele_index"),
        calls,
    ];
    inner.extend(format_columns.iter().map(|c| col(c.as_str())));
    let mut unnested = vec![Column::from_name("call")];
    unnested.extend(format_columns.iter().map(|c| Column::from_name(c.as_str())));
    let field = |name: &str| get_field(col("call"), name).alias(name);
    let mut expanded = vec![
        col("contig"),
        col("pos"),
        col("ref"),
        col("alt"),
        col("allele_index"),
        field("sample_idx"),
        field("dosage"),
        field("phased"),
    ];
    expanded.extend(format_columns.iter().map(|c| col(c.as_str())));
    let samples = LogicalPlanBuilder::scan("samples", provider_as_source(samples), None)?
        .project(vec![col("sample_idx").alias("s_idx"), col("sample_id")])?
        .build()?;
    let mut output = [
        "contig",
        "pos",
        "ref",
        "alt",
        "allele_index",
        "sample_idx",
        "sample_id",
    ]
    .map(col)
    .to_vec();
    output.extend(["dosage", "phased"].map(col));
    output.extend(format_columns.iter().map(|c| col(c.as_str())));
    let calls = LogicalPlanBuilder::scan("variants", provider_as_source(variants), None)?
        .project(inner)?
        .unnest_columns_with_options(unnested, UnnestOptions::new())?
        .project(expanded)?
        .build()?;
    // The samples are the join's build side (collected: one row per participant) and the
    // calls its probe side, which streams: a scan of every genotype holds the samples, not the
    // calls (with the sides the other way round, the server held all 60.7 million calls of
    // N=100,000, 5.3 GB, before its first row: benches/serve/streaming.sh).
    LogicalPlanBuilder::from(samples)
        .join(
            calls,
            JoinType::Inner,
            (vec!["s_idx"], vec!["sample_idx"]),
            None,
        )?
        .project(output)?
        .alias(GENOTYPES)?
        .build()
}

/// The name of the view.
pub const GENOTYPES: &str = "genotypes";

/// The `genotypes` table: the plan of [`genotypes_plan`], kept as a table (not inlined as a
/// view) so that the optimizer can recognise it (see the `genotype_aggregates` rewrite).
#[derive(Debug)]
pub struct GenotypesTable {
    plan: LogicalPlan,
    schema: SchemaRef,
}

impl GenotypesTable {
    /// The table over `plan` ([`genotypes_plan`]).
    pub fn new(plan: LogicalPlan) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        Self { plan, schema }
    }
}

#[async_trait]
impl TableProvider for GenotypesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Every filter is applied on the plan, where it reaches the variants scan.
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        if let Some(filter) = filters.iter().cloned().reduce(Expr::and) {
            plan = plan.filter(filter)?;
        }
        if let Some(projection) = projection {
            let columns = projection
                .iter()
                .map(|i| Expr::Column(Column::from(self.plan.schema().qualified_field(*i))))
                .collect::<Vec<_>>();
            plan = plan.project(columns)?;
        }
        if let Some(limit) = limit {
            plan = plan.limit(0, Some(limit))?;
        }
        crate::sql::plan_view(state, &plan.build()?).await
    }
}
