//! Cohort coverage: per bin and depth threshold, how much of a cohort is covered.
//!
//! Reads the coverage files (`ingest bam`) of the regions' contigs, ORs the bitmaps of a bin
//! and threshold across files (batches), and intersects them with the cohort. Withdrawn
//! participants are never in a cohort, so they are never counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use cohortdb_store::coverage_bins::decode_coverage;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use roaring::RoaringBitmap;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::disclosure_control::CellNoise;
use crate::region::Region;

/// The schema of [`CohortEngine::coverage`] (before suppression).
pub fn coverage_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("chrom", DataType::Utf8, false),
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
        Field::new("min_depth", DataType::UInt32, false),
        Field::new("n_samples", DataType::Int64, false),
        Field::new("n_covered", DataType::Int64, false),
        Field::new("fraction", DataType::Float64, true),
    ]))
}

type BinKey = (String, i64, i64, u32);

impl CohortEngine {
    /// For every bin of `regions` (a contig's bins as `ingest bam --bin-size` cut them) and
    /// every depth threshold: the cohort's size, how many of `samples` have a mean depth over
    /// the bin of at least `min_depth`, and that fraction. `start`/`end` are 1-based and
    /// inclusive. Samples without coverage data count as not covered. At the aggregate tier
    /// the counts carry the cohort's noise, and a bin whose noisy covered or not-covered count
    /// is between 1 and k-1 is withheld.
    pub async fn coverage(&self, regions: &[Region], samples: &Cohort) -> Result<RecordBatch> {
        if regions.is_empty() {
            return Err(EngineError::InvalidArgument(
                "coverage needs at least one region (-r)".into(),
            ));
        }
        self.check_regions(regions)?;
        let mut bins: BTreeMap<BinKey, RoaringBitmap> = BTreeMap::new();
        let files = self
            .snapshot()
            .state
            .files
            .values()
            .filter(|f| f.kind == cohortdb_store::log_entry::FileKind::Coverage);
        for file in files {
            let Some(contig) = file.contig.as_deref() else {
                continue;
            };
            let wanted: Vec<&Region> = regions.iter().filter(|r| r.contig == contig).collect();
            if wanted.is_empty() {
                continue;
            }
            let bytes = self.store().read_file(&file.path).await?;
            for region in wanted {
                for bin in decode_coverage(&file.path, bytes.clone(), region.start, region.end)? {
                    *bins
                        .entry((contig.to_string(), bin.start, bin.end, bin.min_depth))
                        .or_default() |= bin.samples;
                }
            }
        }
        let order: Vec<&str> = regions.iter().map(|r| r.contig.as_str()).collect();
        let mut rows: Vec<(&BinKey, &RoaringBitmap)> = bins.iter().collect();
        rows.sort_by_key(|((contig, start, _, depth), _)| {
            (order.iter().position(|c| c == contig), *start, *depth)
        });
        let noise = self.cohort_noise(samples)?;
        let k = i64::from(self.access().min_count);
        let small = |c: i64| c > 0 && c < k;
        // The cohort's size as the aggregate tier sees it: the noisy size it was admitted by.
        let n = match &noise {
            Some(noise) => CellNoise::apply(samples.len() as i64, noise.pair(&[b"cohort size"])[0]),
            None => samples.len() as i64,
        };
        let mut covered: Vec<i64> = Vec::with_capacity(rows.len());
        let mut withheld: Vec<Option<bool>> = Vec::with_capacity(rows.len());
        for ((contig, start, end, depth), bitmap) in &rows {
            let exact = bitmap.intersection_len(samples) as i64;
            let Some(noise) = &noise else {
                covered.push(exact);
                continue;
            };
            let e = noise.pair(&[
                b"coverage",
                contig.as_bytes(),
                &start.to_le_bytes(),
                &end.to_le_bytes(),
                &depth.to_le_bytes(),
            ])[0];
            let c = CellNoise::apply(exact, e);
            covered.push(c);
            withheld.push(Some(small(c) || small(n - c)));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(k, _)| &k.0),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(k, _)| k.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(k, _)| k.2))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(k, _)| k.3))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|_| n))),
            Arc::new(Int64Array::from_iter_values(covered.iter().copied())),
            Arc::new(Float64Array::from_iter(
                covered
                    .iter()
                    .map(|&c| (n > 0).then(|| c as f64 / n as f64)),
            )),
        ];
        let batch =
            RecordBatch::try_new(coverage_schema(), columns).map_err(DataFusionError::from)?;
        if noise.is_none() {
            return Ok(batch);
        }
        let flags: datafusion::arrow::array::BooleanArray = withheld.into_iter().collect();
        Ok(crate::policy::count_suppression::suppress_rows(
            &batch, &flags,
        )?)
    }
}
