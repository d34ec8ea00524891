//! Carriers of a variant: the samples with a non-reference call, with chosen phenotype columns.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::DataFrame;
use roaring::RoaringBitmap;

use crate::cohort_engine::CohortEngine;
use crate::error::Result;

/// A variant as `CHR:POS` (every ALT there) or `CHR:POS:REF:ALT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    /// Contig.
    pub contig: String,
    /// 1-based position.
    pub pos: i64,
    /// REF and ALT, when given.
    pub alleles: Option<(String, String)>,
}

impl VariantSpec {
    /// Parses `CHR:POS` or `CHR:POS:REF:ALT`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let bad = || format!("{text:?} is not CHR:POS or CHR:POS:REF:ALT");
        let (contig, pos, alleles) = match parts.as_slice() {
            [c, p] => (c, p, None),
            [c, p, r, a] => (c, p, Some((r.to_string(), a.to_string()))),
            _ => return Err(bad()),
        };
        let pos = pos.replace(',', "").parse::<i64>().map_err(|_| bad())?;
        if contig.is_empty() || pos < 1 {
            return Err(bad());
        }
        Ok(Self {
            contig: contig.to_string(),
            pos,
            alleles,
        })
    }
}

impl CohortEngine {
    /// Carriers of `variant` within `cohort`: `chrom pos ref alt sample_id genotype` (`het`,
    /// `hom_alt` or `hemi`) and the phenotype `columns` asked for, ordered by ALT and sample ID.
    pub async fn carriers(
        &self,
        variant: &VariantSpec,
        cohort: &RoaringBitmap,
        columns: &[String],
    ) -> Result<DataFrame> {
        self.require_record_level("carriers")?;
        let ctx = self.full_session()?;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "sample_idx",
            DataType::UInt32,
            false,
        )]));
        let chosen = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt32Array::from_iter_values(cohort.iter()))],
        )
        .map_err(DataFusionError::from)?;
        ctx.register_table(
            "cohort_samples",
            Arc::new(MemTable::try_new(schema, vec![vec![chosen]])?),
        )?;
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut site = format!(
            "contig = {} AND pos = {}",
            quote(&variant.contig),
            variant.pos
        );
        if let Some((r, a)) = &variant.alleles {
            site.push_str(&format!(" AND ref = {} AND alt = {}", quote(r), quote(a)));
        }
        let calls = ["het", "hom_alt", "hemi"]
            .map(|class| {
                format!(
                    "SELECT contig, pos, ref, alt, allele_index, '{class}' AS genotype, \
                     unnest(bitmap_to_list({class})) AS sample_idx FROM variants WHERE {site}"
                )
            })
            .join(" UNION ALL ");
        let mut select =
            "c.contig AS chrom, c.pos, c.ref, c.alt, s.sample_id, c.genotype".to_string();
        let mut from = format!(
            "({calls}) c JOIN cohort_samples k ON k.sample_idx = c.sample_idx \
             JOIN samples s ON s.sample_idx = c.sample_idx"
        );
        if !columns.is_empty() {
            from.push_str(" LEFT JOIN phenotypes p ON p.sample_idx = c.sample_idx");
            for column in columns {
                // Column names are identifiers, never SQL text.
                let ident = format!("\"{}\"", column.replace('"', "\"\""));
                select.push_str(&format!(", p.{ident}"));
            }
        }
        let sql = format!("SELECT {select} FROM {from} ORDER BY c.allele_index, s.sample_id");
        Ok(ctx.sql(&sql).await?)
    }
}

impl CohortEngine {
    /// One sample's non-reference calls in `regions` (all contigs when empty):
    /// `chrom pos ref alt genotype phased`, `genotype` being `het`, `hom_alt` or `hemi` for
    /// that ALT; ordered by contig, position and allele index. An unknown or withdrawn sample
    /// is an error.
    pub async fn sample_genotypes(
        &self,
        regions: &[crate::region::Region],
        sample_id: &str,
    ) -> Result<DataFrame> {
        use datafusion::logical_expr::{col, lit, when};

        use crate::bitmap_count_functions::{BitmapCount, BitmapCountUdf};
        self.require_record_level("sample genotypes")?;
        let selection = crate::sample_selection::SampleSelection::Include(vec![sample_id.into()]);
        let set = Arc::new(self.resolve(&selection)?);
        if set.is_empty() {
            return Err(crate::error::EngineError::UnknownSample {
                sample_id: sample_id.to_string(),
            });
        }
        let has = |column: &str| {
            BitmapCountUdf::udf_in(BitmapCount::AndCount, set.clone())
                .call(vec![col(column)])
                .gt(lit(0i64))
        };
        let mut df = self.full_session()?.table("variants").await?;
        if let Some(filter) = crate::cohort_engine::region_filter(regions) {
            df = df.filter(filter)?;
        }
        let genotype = when(has("het"), lit("het"))
            .when(has("hom_alt"), lit("hom_alt"))
            .otherwise(lit("hemi"))?;
        Ok(df
            .filter(has("het").or(has("hom_alt")).or(has("hemi")))?
            .select(vec![
                col("contig").alias("chrom"),
                col("pos"),
                col("ref"),
                col("alt"),
                genotype.alias("genotype"),
                has("phased").alias("phased"),
                col("allele_index"),
            ])?
            .sort(vec![
                col("chrom").sort(true, false),
                col("pos").sort(true, false),
                col("allele_index").sort(true, false),
            ])?
            .drop_columns(&["allele_index"])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_specs() {
        let v = VariantSpec::parse("chr20:20,542,845:T:C").unwrap();
        assert_eq!((v.contig.as_str(), v.pos), ("chr20", 20_542_845));
        assert_eq!(v.alleles, Some(("T".into(), "C".into())));
        assert!(VariantSpec::parse("chr20:0").is_err());
        assert!(VariantSpec::parse("chr20:5:T").is_err());
    }
}
