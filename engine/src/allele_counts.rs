//! Allele counts and frequencies per ALT within sample sets, computed over the decoded rows
//! of the [`crate::site_cache`]: per row, four set intersections per sample set.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use roaring::RoaringBitmap;

use crate::access_policy::Tier;
use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::region::Region;
use crate::site_cache::SiteRows;

/// The columns of [`CohortEngine::allele_frequencies`].
pub const FREQUENCY_COLUMNS: [&str; 9] = [
    "chrom",
    "pos",
    "ref",
    "alt",
    "ac",
    "an",
    "af",
    "n_het",
    "n_hom_alt",
];

/// The rows of `regions`, in order: contig, position, then input order (record, ALT).
pub(crate) struct SiteSelection {
    /// The decoded row groups.
    pub groups: Vec<Arc<SiteRows>>,
    /// (group, row) of each selected row, in output order.
    pub rows: Vec<(usize, usize)>,
}

impl SiteSelection {
    /// Chooses the rows of `groups` overlapping `regions` and orders them.
    pub fn new(groups: Vec<Arc<SiteRows>>, regions: &[Region]) -> Self {
        let mut rows: Vec<(usize, usize)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, rows)| {
                (0..rows.len())
                    .filter(|&r| rows.in_regions(r, regions))
                    .map(move |r| (g, r))
            })
            .collect();
        rows.sort_by(|&(ga, ra), &(gb, rb)| {
            let (a, b) = (&groups[ga], &groups[gb]);
            a.contig
                .cmp(&b.contig)
                .then(a.pos[ra].cmp(&b.pos[rb]))
                .then(a.record_ordinal[ra].cmp(&b.record_ordinal[rb]))
                .then(a.allele_index[ra].cmp(&b.allele_index[rb]))
        });
        Self { groups, rows }
    }

    /// The `chrom pos ref alt` columns.
    pub fn site_columns(&self) -> Result<Vec<ArrayRef>> {
        let chrom: StringArray = self
            .rows
            .iter()
            .map(|&(g, _)| Some(&*self.groups[g].contig))
            .collect();
        let pos: Int64Array = self
            .rows
            .iter()
            .map(|&(g, r)| self.groups[g].pos[r])
            .collect();
        Ok(vec![
            Arc::new(chrom),
            Arc::new(pos),
            self.gather(|g| &g.ref_allele)?,
            self.gather(|g| &g.alt)?,
        ])
    }

    /// One text column gathered across the groups.
    fn gather(&self, column: impl Fn(&SiteRows) -> &StringArray) -> Result<ArrayRef> {
        if let [group] = self.groups.as_slice() {
            let indices: UInt32Array = self.rows.iter().map(|&(_, r)| r as u32).collect();
            return Ok(take(column(group), &indices, None).map_err(DataFusionError::from)?);
        }
        let values: StringArray = self
            .rows
            .iter()
            .map(|&(g, r)| Some(column(&self.groups[g]).value(r)))
            .collect();
        Ok(Arc::new(values))
    }
}

/// `ac an n_het n_hom_alt` of each selected row within `set` (`None`: every sample).
fn count_columns(selection: &SiteSelection, set: Option<&RoaringBitmap>) -> [Int64Array; 4] {
    let n = selection.rows.len();
    let mut columns: [Vec<i64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let count = |b: &RoaringBitmap| match set {
        None => b.len(),
        Some(s) => b.intersection_len(s),
    } as i64;
    // AN depends on the site's called samples only; rows share them (see `SiteRows`).
    let mut allele_numbers: HashMap<(*const RoaringBitmap, *const RoaringBitmap), i64> =
        HashMap::new();
    for &(g, r) in &selection.rows {
        let rows = &selection.groups[g];
        let an = match rows.exceptions[r].is_empty() {
            true => *allele_numbers
                .entry((
                    Arc::as_ptr(&rows.called_diploid[r]),
                    Arc::as_ptr(&rows.called_haploid[r]),
                ))
                .or_insert_with(|| rows.allele_number(r, set) as i64),
            false => rows.allele_number(r, set) as i64,
        };
        let (het, hom, hemi) = (
            count(&rows.het[r]),
            count(&rows.hom_alt[r]),
            count(&rows.hemi[r]),
        );
        columns[0].push(het + 2 * hom + hemi);
        columns[1].push(an);
        columns[2].push(het);
        columns[3].push(hom);
    }
    columns.map(Int64Array::from)
}

impl CohortEngine {
    /// The decoded rows overlapping `regions` (all contigs when empty), in output order.
    pub(crate) async fn site_selection(&self, regions: &[Region]) -> Result<SiteSelection> {
        let fragments: Vec<_> = self.snapshot().state.variant_fragments().collect();
        let groups = self
            .site_cache
            .rows(self.store().location(), &fragments, regions)
            .await?;
        Ok(SiteSelection::new(groups, regions))
    }

    /// `set` for counting: `None` when it is every registered sample, so whole bitmaps are
    /// counted without intersections.
    fn counting_set<'a>(&self, set: &'a RoaringBitmap) -> Option<&'a RoaringBitmap> {
        (set.len() != self.sample_batch.num_rows() as u64).then_some(set)
    }

    /// Per ALT in `regions`: `chrom pos ref alt`, then for each `(set, suffix)` the columns
    /// `ac<suffix> an<suffix> n_het<suffix> n_hom_alt<suffix>` counted within the set; ordered
    /// by contig, position, then input order (record, then ALT).
    pub(crate) async fn counts(
        &self,
        regions: &[Region],
        sets: &[(&RoaringBitmap, &str)],
    ) -> Result<RecordBatch> {
        let selection = self.site_selection(regions).await?;
        let mut fields = site_fields();
        let mut columns = selection.site_columns()?;
        for (set, suffix) in sets {
            let counts = count_columns(&selection, self.counting_set(set));
            for (name, array) in ["ac", "an", "n_het", "n_hom_alt"].iter().zip(counts) {
                fields.push(Field::new(
                    format!("{name}{suffix}"),
                    DataType::Int64,
                    false,
                ));
                columns.push(Arc::new(array));
            }
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(DataFusionError::from)?)
    }

    /// Allele frequencies of every ALT in `regions` (all contigs when empty) within `samples`:
    /// columns `chrom pos ref alt ac an af n_het n_hom_alt`, `pos` 1-based, one row per ALT,
    /// also where the count is 0, ordered by contig, position, then input order. At the
    /// aggregate tier small counts are suppressed (see [`crate::count_suppression`]).
    pub async fn allele_frequencies(
        &self,
        regions: &[Region],
        samples: &RoaringBitmap,
    ) -> Result<RecordBatch> {
        let selection = self.site_selection(regions).await?;
        let [ac, an, het, hom] = count_columns(&selection, self.counting_set(samples));
        let af: Float64Array = ac
            .values()
            .iter()
            .zip(an.values())
            .map(|(&ac, &an)| (an > 0).then(|| ac as f64 / an as f64))
            .collect();
        let mut columns = selection.site_columns()?;
        columns.extend([
            Arc::new(ac) as ArrayRef,
            Arc::new(an),
            Arc::new(af),
            Arc::new(het),
            Arc::new(hom),
        ]);
        let batch =
            RecordBatch::try_new(frequency_schema(), columns).map_err(DataFusionError::from)?;
        if self.tier() != Tier::Aggregate {
            return Ok(batch);
        }
        let k = self.access().min_count;
        let mut out = crate::count_suppression::suppress_small_counts(&[batch], &[""], k)?;
        Ok(out.remove(0))
    }
}

fn site_fields() -> Vec<Field> {
    vec![
        Field::new("chrom", DataType::Utf8, false),
        Field::new("pos", DataType::Int64, false),
        Field::new("ref", DataType::Utf8, false),
        Field::new("alt", DataType::Utf8, false),
    ]
}

/// The schema of [`CohortEngine::allele_frequencies`] (before suppression).
pub fn frequency_schema() -> Arc<Schema> {
    let mut fields = site_fields();
    for name in &FREQUENCY_COLUMNS[4..] {
        let (kind, nullable) = match *name {
            "af" => (DataType::Float64, true),
            _ => (DataType::Int64, false),
        };
        fields.push(Field::new(*name, kind, nullable));
    }
    Arc::new(Schema::new(fields))
}
