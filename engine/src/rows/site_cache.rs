//! Decoded variant rows, cached per fragment row group within a byte budget.
//!
//! Fragments are immutable once committed (a path is never rewritten), so a row group read
//! and decoded once (Parquet pages, zstd, then the roaring bitmaps) stays valid for every
//! snapshot and every engine of the process that shares the cache. Counting and carrier
//! lookups read the decoded rows directly: a warm 100 kb query is then set intersections
//! only, with no Parquet decoding and no query plan.
//!
//! Only the columns counting and carriers need are kept: the site (`pos`, `end_pos`, `id`,
//! `ref`, `alt`, `allele_index`, `n_alleles`, `record_ordinal`), the carrier bitmaps `het`,
//! `hom_alt` and `hemi`, the per-site bitmaps `called_diploid`, `called_haploid`, `no_call`,
//! `haploid`, `phased` and `swapped` (each distinct value decoded once per row group and
//! shared, so counting can compute AN once per distinct value; the last four rebuild a
//! carrier's GT), and the calls of ploidy above 2 from `gt_exceptions`. When the decoded bytes
//! pass the budget, the least recently used row groups are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cohortdb_store::StoreLocation;
use cohortdb_store::genotype_bitmaps::{GenotypeException, decode_exceptions, deserialize_bitmap};
use cohortdb_store::log_entry::FileEntry;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::runtime::SpawnedTask;
use roaring::RoaringBitmap;

use crate::error::{EngineError, Result};
use crate::region::Region;
use crate::rows::fragment_reader::{FooterCache, read_row_group};
use crate::rows::span_pruning::{Span, region_filter};

/// The default budget of decoded rows: 2 GiB.
pub const DEFAULT_CACHE_BYTES: usize = 2 << 30;

/// The fragment columns a [`SiteRows`] is decoded from, in this order.
const COLUMNS: [&str; 18] = [
    "pos",
    "end_pos",
    "ref",
    "alt",
    "allele_index",
    "record_ordinal",
    "het",
    "hom_alt",
    "hemi",
    "called_diploid",
    "called_haploid",
    "gt_exceptions",
    "id",
    "n_alleles",
    "no_call",
    "haploid",
    "phased",
    "swapped",
];

/// The decoded rows of one row group of one variant fragment (one contig).
#[derive(Debug)]
pub struct SiteRows {
    /// The fragment's path: rows of one input record are in one fragment, maybe in two of
    /// its row groups.
    pub path: Arc<str>,
    /// The fragment's contig.
    pub contig: Arc<str>,
    /// 1-based position of each row.
    pub pos: Vec<i64>,
    /// 1-based inclusive end of each row.
    pub end_pos: Vec<i64>,
    /// ID of each row (NULL for `.`).
    pub id: StringArray,
    /// REF of each row.
    pub ref_allele: StringArray,
    /// ALT of each row.
    pub alt: StringArray,
    /// 1-based index of the row's ALT at its site.
    pub allele_index: Vec<i32>,
    /// Number of alleles (REF and ALTs) of the row's record.
    pub n_alleles: Vec<i32>,
    /// Which input record at this position the row comes from.
    pub record_ordinal: Vec<i32>,
    /// Samples heterozygous for the row's ALT.
    pub het: Vec<RoaringBitmap>,
    /// Samples homozygous for it.
    pub hom_alt: Vec<RoaringBitmap>,
    /// Samples hemizygous for it.
    pub hemi: Vec<RoaringBitmap>,
    /// Samples contributing 2 (or more) to AN at the row's site.
    pub called_diploid: Vec<Arc<RoaringBitmap>>,
    /// Samples contributing 1 to AN at the row's site.
    pub called_haploid: Vec<Arc<RoaringBitmap>>,
    /// Samples with no called allele at the row's site.
    pub no_call: Vec<Arc<RoaringBitmap>>,
    /// Samples whose call has ploidy 1 there.
    pub haploid: Vec<Arc<RoaringBitmap>>,
    /// Samples whose call is phased there.
    pub phased: Vec<Arc<RoaringBitmap>>,
    /// Samples whose alleles were not in ascending order there.
    pub swapped: Vec<Arc<RoaringBitmap>>,
    /// Calls of ploidy above 2 at the row's site.
    pub exceptions: Vec<Arc<Vec<GenotypeException>>>,
    bytes: usize,
}

impl SiteRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// Whether row `row` overlaps one of `regions` (every row when `regions` is empty), as
    /// `bcftools view -r` does: `pos <= end` and `end_pos >= start`.
    pub fn in_regions(&self, row: usize, regions: &[Region]) -> bool {
        regions.is_empty()
            || regions.iter().any(|r| {
                *r.contig == *self.contig && self.pos[row] <= r.end && self.end_pos[row] >= r.start
            })
    }

    /// AN of row `row` within `set` (`None`: every sample), by the counting rules of
    /// [`cohortdb_store::genotype_bitmaps`].
    pub fn allele_number(&self, row: usize, set: Option<&RoaringBitmap>) -> u64 {
        crate::rows::stored_bitmaps::allele_number(
            Some(&self.called_diploid[row]),
            Some(&self.called_haploid[row]),
            &self.exceptions[row],
            set,
        )
    }

    fn decode(contig: &str, path: &str, batch: &RecordBatch) -> Result<Self> {
        let corrupt = |what: &str, reason: &str| {
            EngineError::Store(cohortdb_store::StoreError::Corrupt {
                path: path.to_string(),
                what: what.to_string(),
                reason: reason.to_string(),
            })
        };
        let column = |i: usize, to: &DataType| {
            datafusion::arrow::compute::cast(batch.column(i), to)
                .map_err(|e| corrupt(COLUMNS[i], &e.to_string()))
        };
        let int64 = |i: usize| -> Result<Vec<i64>> {
            Ok(column(i, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .values()
                .to_vec())
        };
        let int32 = |i: usize| -> Result<Vec<i32>> {
            Ok(column(i, &DataType::Int32)?
                .as_primitive::<Int32Type>()
                .values()
                .to_vec())
        };
        let text = |i: usize| -> Result<StringArray> {
            Ok(column(i, &DataType::Utf8)?.as_string::<i32>().clone())
        };
        let bitmaps = |i: usize| -> Result<Vec<RoaringBitmap>> {
            let array = column(i, &DataType::Binary)?;
            let array = array.as_binary::<i32>();
            (0..array.len())
                .map(|row| match array.is_null(row) {
                    true => Ok(RoaringBitmap::new()),
                    false => deserialize_bitmap(array.value(row))
                        .ok_or_else(|| corrupt(COLUMNS[i], "not a portable roaring bitmap")),
                })
                .collect()
        };
        // Per-site bitmaps repeat on each ALT row, and most sites of a cohort have the same
        // called samples: decode each distinct value once and share it.
        let shared = |i: usize| -> Result<Vec<Arc<RoaringBitmap>>> {
            let array = column(i, &DataType::Binary)?;
            let array = array.as_binary::<i32>();
            let mut seen: HashMap<&[u8], Arc<RoaringBitmap>> = HashMap::new();
            let mut out: Vec<Arc<RoaringBitmap>> = Vec::with_capacity(array.len());
            for row in 0..array.len() {
                let bytes = match array.is_null(row) {
                    true => &[][..],
                    false => array.value(row),
                };
                if let Some(bitmap) = seen.get(bytes) {
                    out.push(bitmap.clone());
                    continue;
                }
                let bitmap = match bytes.is_empty() {
                    true => RoaringBitmap::new(),
                    false => deserialize_bitmap(bytes)
                        .ok_or_else(|| corrupt(COLUMNS[i], "not a portable roaring bitmap"))?,
                };
                let bitmap = Arc::new(bitmap);
                seen.insert(bytes, bitmap.clone());
                out.push(bitmap);
            }
            Ok(out)
        };
        let exceptions = {
            let array = column(11, &DataType::Binary)?;
            let array = array.as_binary::<i32>();
            let none = Arc::new(Vec::new());
            (0..array.len())
                .map(
                    |row| match array.is_null(row) || array.value(row).is_empty() {
                        true => Ok(none.clone()),
                        false => decode_exceptions(array.value(row))
                            .map(Arc::new)
                            .ok_or_else(|| corrupt("gt_exceptions", "malformed value")),
                    },
                )
                .collect::<Result<Vec<_>>>()?
        };
        let mut rows = Self {
            path: Arc::from(path),
            contig: Arc::from(contig),
            end_pos: int64(1)?,
            id: text(12)?,
            ref_allele: text(2)?,
            alt: text(3)?,
            het: bitmaps(6)?,
            hom_alt: bitmaps(7)?,
            hemi: bitmaps(8)?,
            called_diploid: shared(9)?,
            called_haploid: shared(10)?,
            no_call: shared(14)?,
            haploid: shared(15)?,
            phased: shared(16)?,
            swapped: shared(17)?,
            exceptions,
            pos: int64(0)?,
            allele_index: int32(4)?,
            record_ordinal: int32(5)?,
            n_alleles: int32(13)?,
            bytes: 0,
        };
        rows.bytes = rows.measure();
        Ok(rows)
    }

    /// Approximate heap bytes held.
    fn measure(&self) -> usize {
        let bitmaps: usize = [&self.het, &self.hom_alt, &self.hemi]
            .into_iter()
            .flatten()
            .map(|b| b.serialized_size())
            .sum();
        let mut seen = std::collections::HashSet::new();
        let shared: usize = self
            .called_diploid
            .iter()
            .chain(&self.called_haploid)
            .chain(&self.no_call)
            .chain(&self.haploid)
            .chain(&self.phased)
            .chain(&self.swapped)
            .filter(|b| seen.insert(Arc::as_ptr(b)))
            .map(|b| b.serialized_size())
            .sum();
        bitmaps
            + shared
            + self.id.get_array_memory_size()
            + self.ref_allele.get_array_memory_size()
            + self.alt.get_array_memory_size()
            + self.len() * (8 + 8 + 4 + 4 + 4 + 3 * 32 + 7 * 8)
    }
}

#[derive(Debug)]
struct Entry {
    rows: Arc<SiteRows>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct CacheState {
    rows: HashMap<(String, usize), Entry>,
    bytes: usize,
    tick: u64,
    /// Row groups asked for and found decoded, and those read and decoded.
    hits: u64,
    misses: u64,
}

/// The cache: decoded row groups by (fragment path, row group), and fragments' Parquet
/// metadata. Shared by the engines of one process (an engine's access variants keep
/// it); safe to use from many requests at once.
#[derive(Debug)]
pub struct SiteCache {
    budget: usize,
    state: Mutex<CacheState>,
    footers: Arc<FooterCache>,
}

impl Default for SiteCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_BYTES)
    }
}

impl SiteCache {
    /// A cache holding at most about `budget` bytes of decoded rows.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::default(),
            footers: Arc::default(),
        }
    }

    /// The fragments' Parquet footers, shared with the `variants` scans of the engines using
    /// this cache.
    pub fn footers(&self) -> &Arc<FooterCache> {
        &self.footers
    }

    /// Bytes of decoded rows held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Row groups found decoded and row groups read, since the cache began.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        let state = self.lock();
        (state.hits, state.misses)
    }

    /// The budget it keeps to.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves consistent maps: keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The decoded row groups of `fragments` that may hold rows in `regions` (all of them when
    /// `regions` is empty), each with the index of its fragment in `fragments`, read and
    /// decoded on a miss. Fragments are chosen by their log
    /// statistics, row groups by their Parquet statistics of `pos` and `end_pos`.
    ///
    /// Missed row groups are read and decoded as tasks of their own, so on every core of the
    /// runtime: at 10^6 participants a 100 kb region is three row groups of 20-30 MB of
    /// bitmaps, which one task decoded in turn.
    pub async fn rows(
        &self,
        location: &StoreLocation,
        fragments: &[&FileEntry],
        regions: &[Region],
    ) -> Result<Vec<(Arc<SiteRows>, usize)>> {
        let filter: Vec<_> = region_filter(regions).into_iter().collect();
        let mut out: Vec<Option<(Arc<SiteRows>, usize)>> = Vec::new();
        let mut reads = Vec::new();
        for (index, file) in fragments
            .iter()
            .enumerate()
            .filter(|(_, f)| Span::of_fragment(f).may_match_all(&filter))
        {
            let footer = self.footers.footer(location, file).await?;
            let descr = footer.metadata().file_metadata().schema_descr();
            let wanted: Vec<usize> = footer
                .metadata()
                .row_groups()
                .iter()
                .enumerate()
                .filter(|(_, rg)| {
                    Span::of_row_group(file.contig.as_deref(), descr, rg).may_match_all(&filter)
                })
                .map(|(i, _)| i)
                .collect();
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            for i in wanted {
                match state.rows.get_mut(&(file.path.clone(), i)) {
                    Some(entry) => {
                        entry.last_used = tick;
                        out.push(Some((entry.rows.clone(), index)));
                        state.hits += 1;
                    }
                    None => {
                        state.misses += 1;
                        let (location, file, footer) =
                            (location.clone(), (*file).clone(), footer.clone());
                        let read = SpawnedTask::spawn(async move {
                            let batch =
                                read_row_group(&location, &file, &footer, i, &COLUMNS).await?;
                            let contig = file.contig.as_deref().unwrap_or_default();
                            let rows = SiteRows::decode(contig, &file.path, &batch)?;
                            Ok::<_, EngineError>((file.path, Arc::new(rows)))
                        });
                        reads.push((out.len(), i, index, read));
                        out.push(None);
                    }
                }
            }
        }
        for (slot, i, index, read) in reads {
            // A task aborts when dropped (an error here, a cancelled query), as DataFusion's do.
            let (path, rows) = read.join_unwind().await.map_err(|e| {
                EngineError::DataFusion(datafusion::error::DataFusionError::External(Box::new(e)))
            })??;
            self.insert((path, i), rows.clone());
            out[slot] = Some((rows, index));
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Starts reading the rows of `regions` in `fragments` into this cache in a task of its own
    /// (see [`SiteCache::rows`]); a read that fails here fails again when the rows are asked
    /// for, with its error.
    pub fn prefetch(
        self: &Arc<Self>,
        location: &StoreLocation,
        fragments: Vec<FileEntry>,
        regions: &[Region],
    ) -> SpawnedTask<()> {
        let (cache, location, regions) = (self.clone(), location.clone(), regions.to_vec());
        SpawnedTask::spawn(async move {
            let fragments: Vec<&FileEntry> = fragments.iter().collect();
            let _ = cache.rows(&location, &fragments, &regions).await;
        })
    }

    fn insert(&self, key: (String, usize), rows: Arc<SiteRows>) {
        let mut state = self.lock();
        state.tick += 1;
        let last_used = state.tick;
        let bytes = rows.bytes;
        if let Some(old) = state.rows.insert(key, Entry { rows, last_used }) {
            state.bytes -= old.rows.bytes;
        }
        state.bytes += bytes;
        if state.bytes > self.budget {
            let mut by_age: Vec<(u64, (String, usize))> = state
                .rows
                .iter()
                .map(|(k, e)| (e.last_used, k.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, key) in by_age {
                if state.bytes <= self.budget / 4 * 3 {
                    break;
                }
                if let Some(old) = state.rows.remove(&key) {
                    state.bytes -= old.rows.bytes;
                }
            }
        }
    }
}
