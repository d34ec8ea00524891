//! Allele counts and frequencies per ALT within sample sets, computed over the decoded rows
//! of the [`crate::rows::site_cache`]: per row, four set intersections per sample set.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use roaring::RoaringBitmap;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::policy::access_policy::Tier;
use crate::policy::count_suppression::{FREQUENCY_COLUMNS, KEY_COLUMNS};
use crate::region::Region;
use crate::rows::reference_blocks::ReferenceBlocks;
use crate::rows::site_cache::SiteRows;
use crate::rows::site_merge::{BatchSamples, RowKey, absent_fill};

/// A fragment's batch: the `sample_idx` range its calls cover, and whether its samples are
/// hom-ref where it has no record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Batch {
    /// `[start, end)`; a fragment written before ranges were recorded is its own batch.
    range: Result<[u32; 2], usize>,
    missing_as_ref: bool,
}

/// One output row: the same ALT of one site, from every batch that has it.
pub(crate) struct MergedRow {
    /// (group, row) per batch holding this ALT, in batch order.
    pub sources: Vec<(usize, usize)>,
    /// The site this row belongs to, in [`SiteSelection::sites`].
    site: usize,
    /// `record_ordinal` and `allele_index` of the row in its merged record (as stored, in
    /// one batch): rows at one position are ordered by them.
    number: [i32; 2],
}

impl MergedRow {
    /// Which record at its position the row belongs to, numbered as the `variants` table
    /// (and so export) numbers the merged records.
    pub fn record_number(&self) -> i32 {
        self.number[0]
    }
}

/// One site across batches: whose called samples make its AN.
struct MergedSite {
    /// Per batch with a record at the site, its first one (batch, (group, row)): whose called
    /// samples count for the rows of the site that batch does not hold.
    called: Vec<(usize, (usize, usize))>,
    /// Samples of batches without a record at the site that are hom-ref there: every sample
    /// of a `--missing-as-ref` batch, and those a gVCF reference block covers.
    filled: Vec<Arc<RoaringBitmap>>,
}

/// The rows of `regions`, merged across batches as `bcftools merge` (its default `-m both`)
/// merges the batch files ([`crate::rows::site_merge`]). A batch without a record at a
/// site leaves its samples missing there (no AN), or hom-ref with `--missing-as-ref` or where
/// one of its gVCF reference blocks covers the position (as `bcftools merge --gvcf`). Within
/// one batch nothing merges: its rows are the input's. Ordered by contig, position, then
/// record and ALT (input order in one batch; across batches as the merged record numbers them,
/// [`crate::rows::site_merge::Plan::numbering`], so merging batches by compaction keeps the
/// order), then REF and ALT.
pub(crate) struct SiteSelection {
    /// The decoded row groups.
    pub groups: Vec<Arc<SiteRows>>,
    /// The output rows, in order.
    pub rows: Vec<MergedRow>,
    sites: Vec<MergedSite>,
    /// The batch of each group (`usize::MAX`: a fragment without a recorded batch).
    group_batches: Vec<usize>,
    /// Whether rows of several batches were merged (else each row is a stored row as it is).
    pub merged: bool,
}

impl SiteSelection {
    /// Chooses the rows of `groups` overlapping `regions` (each group with its fragment's
    /// batch; `batches` lists every batch of the snapshot), merges and orders them.
    pub fn new(
        groups: Vec<(Arc<SiteRows>, Batch)>,
        batches: &[(Batch, Arc<RoaringBitmap>)],
        regions: &[Region],
        blocks: &ReferenceBlocks,
    ) -> Self {
        let (groups, group_batches): (Vec<_>, Vec<_>) = groups.into_iter().unzip();
        let batch_index = |b: &Batch| batches.iter().position(|(x, _)| x == b);
        let group_batches: Vec<usize> = group_batches
            .iter()
            .map(|b| batch_index(b).unwrap_or(usize::MAX))
            .collect();
        let mut rows: Vec<MergedRow> = Vec::new();
        let mut sites: Vec<MergedSite> = Vec::new();
        if batches.len() <= 1 {
            // One batch: nothing merges and nothing is filled; every row is its own.
            sites.push(MergedSite {
                called: Vec::new(),
                filled: Vec::new(),
            });
            for (g, group) in groups.iter().enumerate() {
                rows.extend(
                    (0..group.len())
                        .filter(|&r| group.in_regions(r, regions))
                        .map(|r| MergedRow {
                            sources: vec![(g, r)],
                            site: 0,
                            number: [group.record_ordinal[r], group.allele_index[r]],
                        }),
                );
            }
            return Self::ordered(groups, rows, sites, group_batches, false);
        }
        let mut refs: Vec<(usize, usize)> = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            refs.extend(
                (0..group.len())
                    .filter(|&r| group.in_regions(r, regions))
                    .map(|r| (g, r)),
            );
        }
        // Taken as the `variants` scan takes them: by position, then batch (in sample order),
        // record and ALT, so both meet (and number) a merged record's ALTs alike.
        refs.sort_by_key(|&(g, r)| {
            let group = &groups[g];
            let key = (
                group_batches[g],
                group.record_ordinal[r],
                group.allele_index[r],
            );
            (&group.contig, group.pos[r], key)
        });
        let keys: Vec<RowKey<'_>> = refs
            .iter()
            .map(|&(g, r)| {
                let (group, batch) = (&groups[g], group_batches[g]);
                RowKey {
                    batch: (batch != usize::MAX).then_some(batch),
                    contig: &group.contig,
                    pos: group.pos[r],
                    reference: group.ref_allele.value(r),
                    alt: group.alt.value(r),
                    record: group.record_ordinal[r],
                }
            })
            .collect();
        let plan = crate::rows::site_merge::plan(&keys);
        // Numbered as the merged record (a compacted batch stores it so: same order).
        let numbers = plan.numbering(|m| {
            let (g, r) = refs[plan.rows[m].sources[0]];
            groups[g].allele_index[r] == 0
        });
        rows.extend(plan.rows.iter().zip(&numbers).map(|(row, n)| MergedRow {
            sources: row.sources.iter().map(|&i| refs[i]).collect(),
            site: row.site,
            number: [n[0], n[1]],
        }));
        for site in &plan.sites {
            // The first record of a batch at the site gives its called samples.
            let mut merged = MergedSite {
                called: site.present.iter().map(|&(b, i)| (b, refs[i])).collect(),
                filled: Vec::new(),
            };
            // Batches absent at the site: `--missing-as-ref` ones are hom-ref there, the
            // others where a gVCF reference block of theirs covers the position.
            let absent = batches
                .iter()
                .enumerate()
                .filter(|(b, _)| !site.present.iter().any(|&(x, _)| x == *b))
                .map(|(_, (batch, samples))| BatchSamples {
                    samples,
                    missing_as_ref: batch.missing_as_ref,
                });
            merged.filled = absent_fill(absent, blocks, &site.contig, site.pos, false).hom_ref;
            sites.push(merged);
        }
        Self::ordered(groups, rows, sites, group_batches, true)
    }

    /// The selection with `rows` in output order.
    fn ordered(
        groups: Vec<Arc<SiteRows>>,
        mut rows: Vec<MergedRow>,
        sites: Vec<MergedSite>,
        group_batches: Vec<usize>,
        merged: bool,
    ) -> Self {
        let order = |x: &MergedRow, y: &MergedRow| {
            let ((ga, ra), (gb, rb)) = (x.sources[0], y.sources[0]);
            let (a, b) = (&groups[ga], &groups[gb]);
            a.contig
                .cmp(&b.contig)
                .then(a.pos[ra].cmp(&b.pos[rb]))
                .then(x.number.cmp(&y.number))
                .then(a.ref_allele.value(ra).cmp(b.ref_allele.value(rb)))
                .then(a.alt.value(ra).cmp(b.alt.value(rb)))
                .then(ga.cmp(&gb))
                .then(ra.cmp(&rb))
        };
        // The rows of one batch mostly come in order: checking costs one comparison a row,
        // sorting (6% of a warm `af` under load, by perf) a dozen.
        if !rows.is_sorted_by(|x, y| order(x, y).is_le()) {
            rows.sort_by(order);
        }
        Self {
            groups,
            rows,
            sites,
            group_batches,
            merged,
        }
    }

    /// The site columns, [`KEY_COLUMNS`]: `chrom pos id ref alt`, a merged row's from its
    /// first batch (as the `variants` table merges them).
    pub fn site_columns(&self) -> Result<Vec<ArrayRef>> {
        let first = |m: &MergedRow| m.sources[0];
        let chrom: StringArray = self
            .rows
            .iter()
            .map(|m| Some(&*self.groups[first(m).0].contig))
            .collect();
        let pos: Int64Array = self
            .rows
            .iter()
            .map(|m| {
                let (g, r) = first(m);
                self.groups[g].pos[r]
            })
            .collect();
        let text = |column: fn(&SiteRows) -> &StringArray| -> StringArray {
            self.rows
                .iter()
                .map(|m| {
                    let (g, r) = first(m);
                    let column = column(&self.groups[g]);
                    column.is_valid(r).then(|| column.value(r))
                })
                .collect()
        };
        Ok(vec![
            Arc::new(chrom),
            Arc::new(pos),
            Arc::new(text(|g| &g.id)),
            Arc::new(text(|g| &g.ref_allele)),
            Arc::new(text(|g| &g.alt)),
        ])
    }

    /// The rows whose called samples make output row `i`'s AN: its sources (each its own
    /// record's), then the first record of each batch with a record at the site but not this
    /// ALT.
    fn called_sources(&self, i: usize) -> Vec<(usize, usize)> {
        let row = &self.rows[i];
        let mut sources = row.sources.clone();
        let holders = |b: usize| row.sources.iter().any(|s| self.group_batches[s.0] == b);
        sources.extend(
            self.sites[row.site]
                .called
                .iter()
                .filter(|(b, _)| !holders(*b))
                .map(|&(_, source)| source),
        );
        sources
    }

    /// The samples of `set` with a diploid (or higher) and with a haploid call at output row
    /// `i`'s site, as [`SiteSelection::allele_number`] counts them.
    pub fn called(&self, i: usize, set: &RoaringBitmap) -> (RoaringBitmap, RoaringBitmap) {
        let (mut diploid, mut haploid) = (RoaringBitmap::new(), RoaringBitmap::new());
        for (g, r) in self.called_sources(i) {
            let rows = &self.groups[g];
            diploid |= rows.called_diploid[r].as_ref() & set;
            haploid |= rows.called_haploid[r].as_ref() & set;
        }
        for samples in &self.sites[self.rows[i].site].filled {
            diploid |= samples.as_ref() & set;
        }
        (diploid, haploid)
    }

    /// The samples of `set` carrying output row `i`'s ALT: `[het, hom_alt, hemi]`, from every
    /// batch holding it (batches hold disjoint samples).
    pub fn carriers(&self, i: usize, set: &RoaringBitmap) -> [RoaringBitmap; 3] {
        let mut classes: [RoaringBitmap; 3] = Default::default();
        for &(g, r) in &self.rows[i].sources {
            let rows = &self.groups[g];
            classes[0] |= &rows.het[r] & set;
            classes[1] |= &rows.hom_alt[r] & set;
            classes[2] |= &rows.hemi[r] & set;
        }
        classes
    }

    /// AN of output row `i` within `set`, with `memo` keyed by the called-sample sets.
    fn allele_number(
        &self,
        i: usize,
        set: Option<&RoaringBitmap>,
        memo: &mut HashMap<(*const RoaringBitmap, *const RoaringBitmap), i64>,
    ) -> i64 {
        let site = &self.sites[self.rows[i].site];
        let mut an = 0;
        for (g, r) in self.called_sources(i) {
            let rows = &self.groups[g];
            an += match rows.exceptions[r].is_empty() {
                true => *memo
                    .entry((
                        Arc::as_ptr(&rows.called_diploid[r]),
                        Arc::as_ptr(&rows.called_haploid[r]),
                    ))
                    .or_insert_with(|| rows.allele_number(r, set) as i64),
                false => rows.allele_number(r, set) as i64,
            };
        }
        for samples in &site.filled {
            an += 2 * match set {
                None => samples.len(),
                Some(s) => samples.intersection_len(s),
            } as i64;
        }
        an
    }
}

/// `ac an n_het n_hom_alt` of each selected row within `set` (`None`: every sample), counted
/// on every core (rayon): at 10^6 participants a row's four intersections are thousands of
/// bitmap words, and a 100 kb region holds thousands of rows.
fn count_columns(selection: &SiteSelection, set: Option<&RoaringBitmap>) -> [Int64Array; 4] {
    use rayon::prelude::*;
    let n = selection.rows.len();
    let chunk = n.div_ceil(4 * rayon::current_num_threads()).max(256);
    let count = |b: &RoaringBitmap| crate::rows::stored_bitmaps::count_in(Some(b), set) as i64;
    let parts: Vec<[Vec<i64>; 4]> = (0..n)
        .step_by(chunk)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let end = (start + chunk).min(n);
            let mut columns: [Vec<i64>; 4] =
                std::array::from_fn(|_| Vec::with_capacity(end - start));
            // AN depends on the site's called samples only; rows share them (see `SiteRows`).
            let mut memo = HashMap::new();
            for i in start..end {
                let row = &selection.rows[i];
                let (mut het, mut hom, mut hemi) = (0, 0, 0);
                // Batches hold disjoint samples: their counts add.
                for &(g, r) in &row.sources {
                    let rows = &selection.groups[g];
                    het += count(&rows.het[r]);
                    hom += count(&rows.hom_alt[r]);
                    hemi += count(&rows.hemi[r]);
                }
                columns[0].push(het + 2 * hom + hemi);
                columns[1].push(selection.allele_number(i, set, &mut memo));
                columns[2].push(het);
                columns[3].push(hom);
            }
            columns
        })
        .collect();
    std::array::from_fn(|k| {
        Int64Array::from_iter_values(parts.iter().flat_map(|p| p[k].iter().copied()))
    })
}

impl CohortEngine {
    /// The decoded rows overlapping `regions` (all contigs when empty), in output order.
    pub(crate) async fn site_selection(&self, regions: &[Region]) -> Result<SiteSelection> {
        let fragments: Vec<_> = self.snapshot().state.variant_fragments().collect();
        let batch_of = |i: usize| Batch {
            range: fragments[i].sample_range.ok_or(i),
            missing_as_ref: fragments[i].missing_as_ref,
        };
        // Every batch of the snapshot, with its samples (withdrawn ones too: sets remove them).
        let mut batches: Vec<(Batch, Arc<RoaringBitmap>)> = Vec::new();
        for i in 0..fragments.len() {
            let batch = batch_of(i);
            if batches.iter().all(|(b, _)| *b != batch) {
                let mut samples = RoaringBitmap::new();
                if let Ok([start, end]) = batch.range {
                    samples.insert_range(start..end);
                }
                batches.push((batch, Arc::new(samples)));
            }
        }
        // In sample order, as the `variants` scan orders them.
        batches.sort_by_key(|(b, _)| b.range);
        let groups = self
            .site_cache
            .rows(self.store().location(), &fragments, regions)
            .await?
            .into_iter()
            .map(|(rows, i)| (rows, batch_of(i)))
            .collect();
        let blocks = if batches.len() > 1 {
            let files: Vec<_> = self
                .snapshot()
                .state
                .files
                .values()
                .filter(|f| f.kind == cohortdb_store::log_entry::FileKind::RefBlocks)
                .cloned()
                .collect();
            crate::rows::reference_blocks::load(self.store().location(), &files, regions).await?
        } else {
            ReferenceBlocks::default()
        };
        Ok(SiteSelection::new(groups, &batches, regions, &blocks))
    }

    /// `set` for counting: `None` when it is every registered sample, so whole bitmaps are
    /// counted without intersections.
    fn counting_set<'a>(&self, set: &'a RoaringBitmap) -> Option<&'a RoaringBitmap> {
        (set.len() != self.sample_batch.num_rows() as u64).then_some(set)
    }

    /// Per ALT in `regions`: `chrom pos id ref alt`, then for each `(set, suffix)` the columns
    /// `ac<suffix> an<suffix> n_het<suffix> n_hom_alt<suffix>` counted within the set; ordered
    /// by contig, position, then input order (record, then ALT).
    pub(crate) async fn counts(
        &self,
        regions: &[Region],
        sets: &[(&Cohort, &str)],
    ) -> Result<RecordBatch> {
        let mut selection = self.site_selection(regions).await?;
        self.keep_listed_sites(&mut selection)?;
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
    /// columns `chrom pos id ref alt ac an af n_het n_hom_alt`, `pos` 1-based, one row per ALT,
    /// also where the count is 0, ordered by contig, position, then input order. At the
    /// aggregate tier counts are noisy and small ones withheld (see
    /// [`crate::policy::count_suppression`]).
    pub async fn allele_frequencies(
        &self,
        regions: &[Region],
        samples: &Cohort,
    ) -> Result<RecordBatch> {
        self.check_regions(regions)?;
        let split = crate::region_tasks::SplitOperation::AlleleFrequencies;
        if let Some(batches) = self.on_workers(split, regions, &[samples.set()]).await? {
            let schema = frequency_schema();
            return Ok(
                datafusion::arrow::compute::concat_batches(&schema, &batches)
                    .map_err(DataFusionError::from)?,
            );
        }
        let mut selection = self.site_selection(regions).await?;
        self.keep_listed_sites(&mut selection)?;
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
        let Some(noise) = self.cohort_noise(samples)? else {
            return Ok(batch);
        };
        Ok(crate::policy::count_suppression::release_counts(
            &batch,
            &[("", &noise)],
            self.access().min_count,
        )?)
    }
}

impl CohortEngine {
    /// At the aggregate tier, keeps only the rows of `selection` at the sites its `variants`
    /// lists ([`crate::policy::public_sites`]), so that no row tells that a rare allele is in the
    /// biobank; the others are never counted.
    fn keep_listed_sites(&self, selection: &mut SiteSelection) -> Result<()> {
        if self.tier() != Tier::Aggregate {
            return Ok(());
        }
        let everyone = self.listed_cohort(&crate::CohortSpec::All)?;
        let Some(noise) = self.cohort_noise(&everyone)? else {
            return Ok(());
        };
        let set = self.counting_set(&everyone);
        let k = i64::from(self.access().min_count);
        let count = |b: &RoaringBitmap| crate::rows::stored_bitmaps::count_in(Some(b), set) as i64;
        let listed_row = |rows: &SiteRows, r: usize, carriers: i64| {
            let site = [&*rows.contig, rows.ref_allele.value(r), rows.alt.value(r)];
            crate::policy::public_sites::is_public(&noise, site, rows.pos[r], carriers, k)
        };
        // A row of one batch: its group's flags, computed once per engine (the decision is
        // the same for every request of the snapshot, and costs a PRF draw per row).
        let group_flags = |g: usize| -> Arc<Vec<bool>> {
            let rows = &selection.groups[g];
            let key = Arc::as_ptr(rows) as usize;
            let cache = &self.access_state().listed;
            if let Some((_, flags)) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
                return flags;
            }
            let flags: Arc<Vec<bool>> = Arc::new(
                (0..rows.len())
                    .map(|r| {
                        let carriers =
                            count(&rows.het[r]) + count(&rows.hom_alt[r]) + count(&rows.hemi[r]);
                        listed_row(rows, r, carriers)
                    })
                    .collect(),
            );
            if let Ok(mut cache) = cache.lock() {
                if cache.len() >= LISTED_GROUPS {
                    cache.clear();
                }
                cache.insert(key, (Arc::downgrade(rows), flags.clone()));
            }
            flags
        };
        let mut by_group: HashMap<usize, Arc<Vec<bool>>> = HashMap::new();
        let listed: Vec<bool> = selection
            .rows
            .iter()
            .map(|row| match row.sources.as_slice() {
                [(g, r)] => by_group
                    .entry(*g)
                    .or_insert_with(|| group_flags(*g))
                    .get(*r)
                    .copied()
                    .unwrap_or(false),
                // Merged across batches: carriers of every batch.
                sources => {
                    let carriers = sources
                        .iter()
                        .map(|&(g, r)| {
                            let rows = &selection.groups[g];
                            count(&rows.het[r]) + count(&rows.hom_alt[r]) + count(&rows.hemi[r])
                        })
                        .sum();
                    let (g, r) = sources[0];
                    listed_row(&selection.groups[g], r, carriers)
                }
            })
            .collect();
        let mut listed = listed.into_iter();
        selection.rows.retain(|_| listed.next().unwrap_or(false));
        Ok(())
    }
}

/// At most this many row groups' listed-site flags per aggregate engine (a few KiB each).
const LISTED_GROUPS: usize = 4096;

/// The fields of [`KEY_COLUMNS`].
pub(crate) fn site_fields() -> Vec<Field> {
    KEY_COLUMNS
        .iter()
        .map(|&name| match name {
            "pos" => Field::new(name, DataType::Int64, false),
            "id" => Field::new(name, DataType::Utf8, true),
            _ => Field::new(name, DataType::Utf8, false),
        })
        .collect()
}

/// The schema of [`CohortEngine::allele_frequencies`] (before suppression).
pub fn frequency_schema() -> Arc<Schema> {
    let mut fields = site_fields();
    for name in &FREQUENCY_COLUMNS[KEY_COLUMNS.len()..] {
        let (kind, nullable) = match *name {
            "af" => (DataType::Float64, true),
            _ => (DataType::Int64, false),
        };
        fields.push(Field::new(*name, kind, nullable));
    }
    Arc::new(Schema::new(fields))
}
