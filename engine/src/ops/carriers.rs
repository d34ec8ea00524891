//! Carriers of a variant: the samples with a non-reference call, with chosen phenotype columns.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
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
    /// Carriers of `variant` within `cohort`: `chrom pos id ref alt sample_id genotype gt`
    /// (`genotype` `het`, `hom_alt` or `hemi` for the row's ALT, `gt` the call as VCF writes
    /// it) and the phenotype `columns` asked for, ordered by ALT (in input
    /// order) and sample ID.
    ///
    /// Built from the site's cached bitmaps ([`crate::rows::site_cache`]) directly: sample IDs and
    /// phenotype values are taken by `sample_idx` from the registry and the (cached) phenotype
    /// table, with no query plan and no join.
    pub async fn carriers(
        &self,
        variant: &VariantSpec,
        cohort: &RoaringBitmap,
        columns: &[String],
    ) -> Result<RecordBatch> {
        Ok(self
            .carrier_rows(variant, cohort, columns, 0, usize::MAX)
            .await?
            .0)
    }

    /// Rows `offset..offset + limit` of [`CohortEngine::carriers`] (in its order), and how many
    /// rows the whole answer has: only the rows asked for are built (their GT strings and
    /// phenotype values). Pages and their tokens are built on it (`carrier_pages`).
    pub async fn carrier_rows(
        &self,
        variant: &VariantSpec,
        cohort: &RoaringBitmap,
        columns: &[String],
        offset: u64,
        limit: usize,
    ) -> Result<(RecordBatch, u64)> {
        use datafusion::arrow::array::{Array, ArrayRef, StringArray};
        use datafusion::arrow::compute::{concat, take};
        use datafusion::scalar::ScalarValue;
        self.require_record_level("carriers")?;
        let at = crate::region::Region {
            contig: variant.contig.clone(),
            start: variant.pos,
            end: variant.pos,
        };
        self.check_regions(std::slice::from_ref(&at))?;
        let mut selection = self.site_selection(std::slice::from_ref(&at)).await?;
        selection.rows.retain(|m| {
            let (g, r) = m.sources[0];
            let rows = &selection.groups[g];
            rows.pos[r] == variant.pos
                && variant.alleles.as_ref().is_none_or(|(reference, alt)| {
                    rows.ref_allele.value(r) == reference && rows.alt.value(r) == alt
                })
        });
        let registry = self.sample_positions();
        let order = self.sample_order();
        // One output row per (selected row, class, sample in the cohort), by ALT then ID;
        // classes are 0 het, 1 hom_alt, 2 hemi. Only the rows up to the page's end are listed;
        // the others are counted.
        let end = usize::try_from(offset.saturating_add(limit as u64)).unwrap_or(usize::MAX);
        let mut calls: Vec<(u32, u8, u32)> = Vec::new();
        let mut class_of: Vec<u8> = Vec::new();
        let mut total = 0u64;
        for i in 0..selection.rows.len() {
            let classes = selection.carriers(i, cohort);
            let carriers: u64 = classes.iter().map(RoaringBitmap::len).sum();
            total += carriers;
            if calls.len() >= end {
                continue;
            }
            if carriers as usize * 16 > order.by_id.len() {
                // Many carriers: mark each sample's class, then walk the samples in ID order
                // (to the page's end) instead of sorting.
                class_of.clear();
                class_of.resize(order.rank.len(), u8::MAX);
                for (class, set) in classes.iter().enumerate() {
                    for idx in set {
                        if let Some(slot) = class_of.get_mut(idx as usize) {
                            *slot = class as u8;
                        }
                    }
                }
                let wanted = end - calls.len();
                calls.extend(
                    order
                        .by_id
                        .iter()
                        .filter_map(|&idx| {
                            let class = class_of[idx as usize];
                            (class != u8::MAX).then_some((i as u32, class, idx))
                        })
                        .take(wanted),
                );
            } else {
                let start = calls.len();
                calls.reserve(carriers as usize);
                for (class, set) in classes.iter().enumerate() {
                    calls.extend(set.iter().map(|idx| (i as u32, class as u8, idx)));
                }
                calls[start..].sort_unstable_by_key(|c| order.rank.get(c.2 as usize).copied());
            }
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(calls.len());
        calls.truncate(end);
        calls.drain(..start);
        // The whole call as VCF writes it (`0|1`, `1/2`): from the cached rows in a store of
        // one batch, else by export's code in the merged record the row belongs to.
        let gt: StringArray = match crate::ops::carrier_calls::cached_gt(&selection, &calls) {
            Some(gt) => gt,
            None => self.merged_gt(&selection, &calls, &at).await?,
        };
        // Calls are grouped by row: each site column is its rows' values repeated.
        let mut repeats = vec![0usize; selection.rows.len()];
        for call in &calls {
            repeats[call.0 as usize] += 1;
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut out_columns: Vec<ArrayRef> = Vec::new();
        for (field, column) in crate::ops::allele_counts::site_fields()
            .into_iter()
            .zip(selection.site_columns()?)
        {
            fields.push(field);
            let parts = repeats
                .iter()
                .enumerate()
                .map(|(row, &n)| ScalarValue::try_from_array(&column, row)?.to_array_of_size(n))
                .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
            let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            out_columns.push(match parts.as_slice() {
                [] => column.slice(0, 0),
                [one] => one.slice(0, one.len()),
                many => concat(many).map_err(DataFusionError::from)?,
            });
        }
        // IDs (pseudonyms at the record tier) taken from the registry by row.
        let id_rows: UInt32Array = calls
            .iter()
            .map(|c| {
                registry
                    .get(c.2 as usize)
                    .copied()
                    .flatten()
                    .map(|r| r as u32)
            })
            .collect();
        let ids = self.sample_batch.column(1);
        fields.push(Field::new("sample_id", DataType::Utf8, true));
        out_columns.push(take(ids, &id_rows, None).map_err(DataFusionError::from)?);
        let names = StringArray::from(vec!["het", "hom_alt", "hemi"]);
        let class_indices: UInt32Array = calls.iter().map(|c| u32::from(c.1)).collect();
        fields.push(Field::new("genotype", DataType::Utf8, false));
        out_columns.push(take(&names, &class_indices, None).map_err(DataFusionError::from)?);
        fields.push(Field::new("gt", DataType::Utf8, true));
        out_columns.push(Arc::new(gt));
        if !columns.is_empty() {
            // Decoded as one batch, once per engine.
            let (schema, batches) = self.phenotype_table("phenotypes").await?;
            let table = match batches.as_slice() {
                [one] => one.clone(),
                many => datafusion::arrow::compute::concat_batches(&schema, many)
                    .map_err(DataFusionError::from)?,
            };
            let idx = table
                .column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| DataFusionError::Internal("sample_idx is not UInt32".into()))?;
            let mut row_of = vec![None; registry.len()];
            for (row, i) in idx.values().iter().enumerate() {
                if let Some(slot) = row_of.get_mut(*i as usize) {
                    *slot = Some(row as u32);
                }
            }
            let picks: UInt32Array = calls
                .iter()
                .map(|c| row_of.get(c.2 as usize).copied().flatten())
                .collect();
            for column in columns {
                let Some((i, field)) = schema.column_with_name(column) else {
                    return Err(crate::error::EngineError::InvalidArgument(format!(
                        "phenotypes has no column {column:?}"
                    )));
                };
                out_columns
                    .push(take(table.column(i), &picks, None).map_err(DataFusionError::from)?);
                fields.push(field.clone().with_nullable(true));
            }
        }
        let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), out_columns)
            .map_err(DataFusionError::from)?;
        Ok((rows, total))
    }
}

impl CohortEngine {
    /// The GT of each of `calls` in the merged record of its row, as export writes it (see
    /// `record_genotypes`).
    async fn merged_gt(
        &self,
        selection: &crate::ops::allele_counts::SiteSelection,
        calls: &[(u32, u8, u32)],
        at: &crate::region::Region,
    ) -> Result<datafusion::arrow::array::StringArray> {
        let mut carriers: Vec<u32> = calls.iter().map(|c| c.2).collect();
        carriers.sort_unstable();
        carriers.dedup();
        let records = self
            .record_genotypes(std::slice::from_ref(at), &carriers)
            .await?;
        Ok(calls
            .iter()
            .map(|&(i, _, idx)| {
                let row = &selection.rows[i as usize];
                let (g, r) = row.sources[0];
                let rows = &selection.groups[g];
                let site = (
                    &*rows.contig,
                    rows.pos[r],
                    row.record_number(),
                    rows.ref_allele.value(r),
                    rows.alt.value(r),
                );
                Self::carried(&records, carriers.binary_search(&idx).ok()?, site)
            })
            .collect())
    }
}

impl CohortEngine {
    /// One sample's non-reference calls in `regions` (all contigs when empty):
    /// `chrom pos id ref alt genotype phased gt`, `genotype` being `het`, `hom_alt` or `hemi`
    /// for that ALT and `gt` the whole call as VCF writes it (`1|0`, `1/2`); ordered by
    /// contig, position, REF and ALT (the same however the store's batches number the
    /// alleles). An unknown or withdrawn sample is an error.
    pub async fn sample_genotypes(
        &self,
        regions: &[crate::region::Region],
        sample_id: &str,
    ) -> Result<DataFrame> {
        use datafusion::arrow::array::{AsArray, StringArray};
        use datafusion::logical_expr::{col, lit, when};

        use crate::rows::stored_bitmaps::cast_column;
        use crate::sql::bitmap_count_functions::{BitmapCount, BitmapCountUdf};
        self.require_record_level("sample genotypes")?;
        self.check_regions(regions)?;
        let selection = crate::cohort::cohort_spec::CohortSpec::Include(vec![sample_id.into()]);
        let set = self.listed_cohort(&selection)?.into_set();
        if set.is_empty() {
            return Err(crate::error::EngineError::unknown_samples([sample_id]));
        }
        let sample_idx = set.min().unwrap_or_default();
        // One sample: its set travels in the plan as a literal (to workers, too).
        let set = lit(datafusion::common::ScalarValue::Binary(Some(
            cohortdb_store::genotype_bitmaps::serialize_bitmap(&set),
        )));
        let has = |column: &str| {
            BitmapCountUdf::udf(BitmapCount::AndCount)
                .call(vec![col(column), set.clone()])
                .gt(lit(0i64))
        };
        let mut df = self.full_session()?.table("variants").await?;
        if let Some(filter) = crate::rows::span_pruning::region_filter(regions) {
            df = df.filter(filter)?;
        }
        let genotype = when(has("het"), lit("het"))
            .when(has("hom_alt"), lit("hom_alt"))
            .otherwise(lit("hemi"))?;
        let frame = df
            .filter(has("het").or(has("hom_alt")).or(has("hemi")))?
            .select(vec![
                col("contig").alias("chrom"),
                col("pos"),
                col("id"),
                col("ref"),
                col("alt"),
                genotype.alias("genotype"),
                has("phased").alias("phased"),
                col("record_ordinal"),
            ])?
            .sort(vec![
                col("chrom").sort(true, false),
                col("pos").sort(true, false),
                col("ref").sort(true, false),
                col("alt").sort(true, false),
                col("record_ordinal").sort(true, false),
            ])?;
        // Every column but record_ordinal (which finds the row's record), then gt.
        let kept = 7;
        let mut fields: Vec<Field> = frame
            .schema()
            .fields()
            .iter()
            .take(kept)
            .map(|f| (**f).clone())
            .collect();
        fields.push(Field::new("gt", DataType::Utf8, true));
        let schema = Arc::new(Schema::new(fields));
        let batches = frame.collect().await?;
        // The whole call as VCF writes it beside each row.
        let records = self.record_genotypes(regions, &[sample_idx]).await?;
        let mut out = vec![RecordBatch::new_empty(schema.clone())];
        for batch in &batches {
            let text = |i: usize| cast_column(batch.column(i), &DataType::Utf8);
            let (chrom, reference, alt) = (text(0)?, text(3)?, text(4)?);
            let (chrom, reference, alt) = (
                chrom.as_string::<i32>(),
                reference.as_string::<i32>(),
                alt.as_string::<i32>(),
            );
            let pos = cast_column(batch.column(1), &DataType::Int64)?;
            let pos = pos.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let ordinal = cast_column(batch.column(kept), &DataType::Int32)?;
            let ordinal = ordinal.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            let gt: StringArray = (0..batch.num_rows())
                .map(|r| {
                    let site = (
                        chrom.value(r),
                        pos.value(r),
                        ordinal.value(r),
                        reference.value(r),
                        alt.value(r),
                    );
                    Self::carried(&records, 0, site)
                })
                .collect();
            let mut columns = batch.columns()[..kept].to_vec();
            columns.push(Arc::new(gt));
            out.push(RecordBatch::try_new(schema.clone(), columns).map_err(DataFusionError::from)?);
        }
        Ok(datafusion::prelude::SessionContext::new().read_batches(out)?)
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
