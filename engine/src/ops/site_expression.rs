//! bcftools filter expressions on sites (`-i EXPR` keeps, `-e EXPR` drops), for `af`, `assoc`,
//! `case-control` and `export`: parsed here into a SQL expression over the `variants` table
//! and the cohort's counts, and evaluated by DataFusion.
//!
//! The language is bcftools' (`bcftools view -i`) over site fields:
//!
//! - fields `CHROM POS ID REF ALT QUAL FILTER TYPE N_ALT`, `INFO/TAG` (or a bare `TAG`) for the
//!   INFO fields the store keeps, and `AC`, `AN`, `AF`: the counts within the command's cohort
//!   (as `bcftools view -S` recomputes them; `INFO/AC`, `INFO/AN`, `INFO/AF` are the input's);
//! - numbers, `"strings"` (or `'strings'`), `.` for missing (`QUAL="."`);
//! - `== = != < <= > >=`, `~ !~` (regular expressions), `&& &`, `|| |`, `!`, `( )`,
//!   `+ - * /`;
//! - `FILTER="A;B"` is the exact set of filters, `FILTER~"A"` that A is among them,
//!   `FILTER="."` no filter; `TYPE="snp"` a record whose ALTs are all SNPs, `TYPE~"snp"` one
//!   with a SNP among them ([`variant_type`]: `snp`, `mnp`, `indel`, `bnd`, `overlap`, `ref`,
//!   `other`).
//!
//! An expression is evaluated on each ALT row (a `Number=A` field gives the row's value; a field
//! of several values matches when any value does, as in bcftools), and a record matches when
//! one of its ALT rows does: `-i` keeps the records that match, `-e` those that do not. A
//! missing value compares false, in `-i` and in `-e` alike. Per-sample expressions
//! (`FORMAT/DP`, `GT="het"`) are refused.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::JoinType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::col;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::ops::site_qc::SitePass;
use crate::region::Region;
use crate::rows::span_pruning::region_filter;

mod expression_parser;
mod sql_translation;

pub use sql_translation::variant_type;
use sql_translation::{RECORD_TYPES, Translator, variant_type_udf};

/// `-i EXPR` (keep what matches) or `-e EXPR` (drop what matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFilter {
    /// `true` for `-i`, `false` for `-e`.
    pub include: bool,
    /// The expression, as bcftools takes it.
    pub expression: String,
}

impl SiteFilter {
    /// The expression as a SQL condition over `columns` (name -> type), and whether it uses
    /// the cohort's counts.
    fn sql(&self, columns: &HashMap<String, DataType>) -> Result<(String, bool)> {
        let invalid = |reason: String| {
            EngineError::InvalidArgument(format!(
                "{} {:?}: {reason}",
                if self.include { "-i" } else { "-e" },
                self.expression
            ))
        };
        let node = expression_parser::parse(&self.expression).map_err(invalid)?;
        let sql = Translator { columns }.condition(&node).map_err(invalid)?;
        Ok((sql.clone(), sql.contains("cohort_")))
    }
}

impl CohortEngine {
    /// Which ALT rows of `regions` a bcftools filter expression keeps within `cohort` (see the
    /// module). Expressions over exact counts are refused at the aggregate tier.
    pub async fn site_filter(
        &self,
        regions: &[Region],
        cohort: &Cohort,
        filter: &SiteFilter,
    ) -> Result<SitePass> {
        if self.tier() == crate::policy::access_policy::Tier::Aggregate {
            return Err(EngineError::PermissionDenied(
                "filter expressions (-i, -e) decide on exact values, which the aggregate tier \
                 is not given"
                    .into(),
            ));
        }
        self.check_regions(regions)?;
        let ctx = self.full_session()?;
        let mut variants = ctx.table("variants").await?;
        if let Some(filter) = region_filter(regions) {
            variants = variants.filter(filter)?;
        }
        let columns: HashMap<String, DataType> = variants
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let (sql, counts) = filter.sql(&columns)?;
        let mut frame = variants;
        if sql.contains(RECORD_TYPES) {
            use datafusion::logical_expr::{Expr, ExprFunctionExt, expr::WindowFunction};
            let types = Expr::from(WindowFunction::new(
                datafusion::functions_aggregate::array_agg::array_agg_udaf(),
                vec![variant_type_udf().call(vec![col("ref"), col("alt")])],
            ))
            .partition_by(vec![col("contig"), col("pos"), col("record_ordinal")])
            .build()?
            .alias(RECORD_TYPES);
            frame = frame.window(vec![types])?;
        }
        if counts {
            let batch = self.allele_frequencies(regions, cohort).await?;
            let counts = ctx.read_batch(batch)?.select(vec![
                col("chrom").alias("c_chrom"),
                col("pos").alias("c_pos"),
                col("ref").alias("c_ref"),
                col("alt").alias("c_alt"),
                col("ac").alias("cohort_ac"),
                col("an").alias("cohort_an"),
                col("af").alias("cohort_af"),
            ])?;
            frame = frame.join(
                counts,
                JoinType::Left,
                &["contig", "pos", "ref", "alt"],
                &["c_chrom", "c_pos", "c_ref", "c_alt"],
                None,
            )?;
        }
        let condition = frame.parse_sql_expr(&sql)?;
        let batches = frame
            .select(vec![
                col("contig"),
                col("pos"),
                col("record_ordinal"),
                col("ref"),
                col("alt"),
                condition.is_true().alias("matched"),
            ])?
            .collect()
            .await?;
        // A record matches when one of its ALT rows does.
        let mut rows: Vec<(String, i64, i32, String, String)> = Vec::new();
        let mut matched: HashSet<(String, i64, i32)> = HashSet::new();
        for batch in &batches {
            let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
            let (contig, reference, alt) = (text(0), text(3), text(4));
            let (contig, reference, alt) = (
                contig.map_err(DataFusionError::from)?,
                reference.map_err(DataFusionError::from)?,
                alt.map_err(DataFusionError::from)?,
            );
            let pos = cast(batch.column(1), &DataType::Int64).map_err(DataFusionError::from)?;
            let ordinal = cast(batch.column(2), &DataType::Int32).map_err(DataFusionError::from)?;
            let hit = batch.column(5).as_boolean();
            for r in 0..batch.num_rows() {
                let key = (
                    contig.as_string::<i32>().value(r).to_string(),
                    pos.as_primitive::<Int64Type>().value(r),
                    ordinal.as_primitive::<Int32Type>().value(r),
                );
                if hit.is_valid(r) && hit.value(r) {
                    matched.insert(key.clone());
                }
                rows.push((
                    key.0,
                    key.1,
                    key.2,
                    reference.as_string::<i32>().value(r).to_string(),
                    alt.as_string::<i32>().value(r).to_string(),
                ));
            }
        }
        let mut pass = SitePass::default();
        for (contig, pos, ordinal, reference, alt) in rows {
            let hit = matched.contains(&(contig.clone(), pos, ordinal));
            if hit == filter.include {
                pass.keep(contig, pos, reference, alt);
            }
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> HashMap<String, DataType> {
        let list = |t| {
            DataType::List(std::sync::Arc::new(
                datafusion::arrow::datatypes::Field::new("item", t, true),
            ))
        };
        HashMap::from([
            ("info_dp".to_string(), DataType::Int32),
            ("info_db".to_string(), DataType::Boolean),
            ("info_svlen".to_string(), list(DataType::Int32)),
            ("info_cs".to_string(), DataType::Utf8),
        ])
    }

    fn sql(text: &str) -> std::result::Result<String, String> {
        SiteFilter {
            include: true,
            expression: text.into(),
        }
        .sql(&columns())
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn variant_types_follow_htslib() {
        for (r, a, t) in [
            ("A", "G", "snp"),
            ("A", ".", "ref"),
            ("AAA", "AGA", "snp"),
            ("AC", "TG", "mnp"),
            ("GTC", "G", "indel"),
            ("G", "GTCT", "indel"),
            ("AC", "TGG", "other"),
            ("A", "<DEL>", "other"),
            ("A", "<NON_REF>", "ref"),
            ("G", "G]17:198982]", "bnd"),
            ("A", "*", "overlap"),
            ("acgt", "ACGA", "snp"),
        ] {
            assert_eq!(variant_type(r, a), t, "{r}>{a}");
        }
    }

    #[test]
    fn expressions_translate() {
        assert_eq!(
            sql("QUAL>30 && INFO/DP>=10").unwrap(),
            "((qual > 30) AND (info_dp >= 10))"
        );
        assert_eq!(sql("10<DP").unwrap(), "(info_dp > 10)");
        assert_eq!(
            sql("AF<0.01 || DB").unwrap(),
            "((cohort_af < 0.01) OR coalesce(info_db, false))"
        );
        assert_eq!(sql("QUAL=\".\"").unwrap(), "(qual IS NULL)");
        assert_eq!(sql("FILTER='.'").unwrap(), "(filters IS NULL)");
        assert!(
            sql("FILTER=\"PASS\"")
                .unwrap()
                .contains("array_has(string_to_array(filters, ';'), 'PASS')")
        );
        assert_eq!(
            sql("SVLEN < -100").unwrap(),
            "coalesce((array_min(info_svlen) < (-100)), false)"
        );
        assert_eq!(sql("CS=\"it's\"").unwrap(), "(info_cs = 'it''s')");
        assert_eq!(
            sql("!(DP>1) & N_ALT>1").unwrap(),
            "((NOT (info_dp > 1)) AND ((n_alleles - 1) > 1))"
        );
        for bad in [
            "",
            "DP >",
            "(DP>1",
            "FORMAT/DP>1",
            "XYZ>1",
            "strlen(REF)>1",
            "DP>1 DP",
            "\"abc",
            "DP $ 1",
        ] {
            assert!(sql(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            sql("XYZ>1")
                .unwrap_err()
                .contains("it keeps: cs db dp svlen")
        );
    }
}
