//! `compact`: merges fragments into fewer, in one commit.
//!
//! Fragments of one batch (one sample range: the parts of a cluster ingest, or a large input
//! written in several fragments) are taken in the order readers take them (path order) and
//! grouped so that each group holds at most a byte budget of stored fragments (memory is bounded by it); each group
//! of two or more becomes one fragment whose rows are the group's rows, stably sorted by
//! position, so rows at one position keep their relative order and every answer stays the
//! same.
//!
//! Across batches ([`CompactOptions::across_batches`], chosen by [`batch_tiers`]): adjacent
//! batches merge into one batch whose sample range is their union, every contig of them. Their
//! rows are read as every reader reads them, merged into cohort rows by the `variants` scan
//! (a batch without a record at a site missing there, or hom-ref by `--missing-as-ref` or a
//! gVCF reference block), streamed, and written as fragments of at most the byte budget cut
//! between positions. Each merged row then holds every sample of the new batch, so readers
//! find the same answer in one input that they found merging several; withdrawn and retired
//! samples stay in the bitmaps and stay hidden by the snapshot's masks until `purge`.
//!
//! Readers see the old fragments or the new ones: the commit removes the one set and adds the
//! other; a commit that removed one of them first (another compaction, a purge) conflicts. A
//! contig's coverage files (one per `ingest bam`) merge into one, each bin's bitmaps ORed as
//! readers OR them.
//!
//! [`batch_tiers`]: crate::maintenance::batch_tiers

use std::collections::BTreeMap;
use std::sync::Arc;

use cohortdb_store::Commit;
use cohortdb_store::coverage_bins::{CoverageBin, decode_coverage, encode_coverage};
use cohortdb_store::fragment_schema::fragment_schema;
use cohortdb_store::fragment_writer::{EncodedFragment, FragmentWriter, encode_fragment};
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::merge_extra_columns;
use cohortdb_store::progress::Unit;
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionConfig;
use futures::StreamExt;
use roaring::RoaringBitmap;

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::maintenance::batch_tiers::{BatchPolicy, BatchSpan, plan_merges};
use crate::policy::access_policy::Tier;
use crate::rows::span_pruning::stored_bytes_up_to;

/// The default most stored bytes merged into one fragment: 512 MiB.
pub const DEFAULT_COMPACT_BYTES: u64 = 512 << 20;

/// What [`CohortEngine::compact`] merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// Only the fragments of this contig (every contig when `None`); not with
    /// `across_batches`, which merges whole batches.
    pub contig: Option<String>,
    /// The most stored bytes merged into one fragment (within a batch), or written into one
    /// (across batches).
    pub max_bytes: u64,
    /// Also merge batches into fewer, by this policy.
    pub across_batches: Option<BatchPolicy>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            contig: None,
            max_bytes: DEFAULT_COMPACT_BYTES,
            across_batches: None,
        }
    }
}

/// What [`CohortEngine::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compaction {
    /// The version that commits it (the current one when nothing was merged).
    pub version: u64,
    /// Batches merged away.
    pub batches_before: usize,
    /// Batches they became.
    pub batches_after: usize,
    /// Fragments merged away.
    pub before: usize,
    /// Fragments written.
    pub after: usize,
    /// Coverage files merged away.
    pub coverage_before: usize,
    /// Coverage files written (one per contig).
    pub coverage_after: usize,
}

/// Adjacent batches to become one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchMerge {
    /// Their sample ranges, ascending, each ending where the next starts.
    pub batches: Vec<[u32; 2]>,
    /// Their samples are hom-ref where they have no record.
    pub missing_as_ref: bool,
    /// Their fragments, every contig, in path order.
    pub fragments: Vec<FileEntry>,
}

impl BatchMerge {
    /// The sample range of the merged batch.
    pub fn samples(&self) -> [u32; 2] {
        let first = self.batches.first().map_or(0, |b| b[0]);
        [first, self.batches.last().map_or(first, |b| b[1])]
    }
}

/// What [`CohortEngine::compact`] would merge (`admin compact --dry-run` prints it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionPlan {
    /// The contigs looked at.
    pub contigs: Vec<String>,
    /// Batches to merge, each group into one batch.
    pub batches: Vec<BatchMerge>,
    /// Groups of variant fragments, each to become one fragment (one batch and contig each).
    pub fragments: Vec<Vec<FileEntry>>,
    /// Groups of coverage files, each to become one file (one contig each).
    pub coverage: Vec<Vec<FileEntry>>,
}

impl CompactionPlan {
    /// Whether there is nothing to merge.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.fragments.is_empty() && self.coverage.is_empty()
    }
}

impl CohortEngine {
    /// Merges fragments (and, with [`CompactOptions::across_batches`], batches) into fewer,
    /// in one commit. Admin tier only.
    pub async fn compact(&self, options: &CompactOptions) -> Result<Compaction> {
        let plan = self.compaction_plan(options)?;
        self.run_compaction(&plan, options.max_bytes).await
    }

    /// What [`CohortEngine::compact`] would merge, reading nothing but the snapshot. Admin
    /// tier only.
    pub fn compaction_plan(&self, options: &CompactOptions) -> Result<CompactionPlan> {
        if self.tier() != Tier::Admin {
            return Err(EngineError::PermissionDenied(
                "compaction needs the admin tier".into(),
            ));
        }
        let (contig, max_bytes) = (options.contig.as_deref(), options.max_bytes);
        if let (Some(contig), Some(_)) = (contig, options.across_batches) {
            return Err(EngineError::InvalidArgument(format!(
                "merging batches rewrites every contig of them: it cannot be limited to \
                 contig {contig}"
            )));
        }
        let state = &self.snapshot().state;
        let contigs: Vec<String> = match contig {
            Some(c) => vec![c.to_string()],
            None => state.contigs(),
        };
        let batches = match options.across_batches {
            Some(policy) => self.batch_merges(policy),
            None => Vec::new(),
        };
        let merged_away = |file: &FileEntry| {
            batches.iter().any(|m| {
                m.missing_as_ref == file.missing_as_ref
                    && file.sample_range.is_some_and(|r| m.batches.contains(&r))
            })
        };
        let mut groups: Vec<Vec<FileEntry>> = Vec::new();
        // Within a batch, fragments merge by contig: readers merge a site across batches by
        // the fragments' sample ranges (fragments from before ranges were recorded stay
        // apart).
        let mut keys: Vec<(String, [u32; 2], bool)> = Vec::new();
        for file in state.variant_fragments().filter(|f| !merged_away(f)) {
            if let (Some(contig), Some(range)) = (&file.contig, file.sample_range) {
                let key = (contig.clone(), range, file.missing_as_ref);
                if contigs.contains(contig) && !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        for (contig, range, missing_as_ref) in &keys {
            let mut current: Vec<FileEntry> = Vec::new();
            let mut bytes = 0;
            for file in state.variant_fragments().filter(|f| {
                f.contig.as_deref() == Some(contig.as_str())
                    && f.sample_range == Some(*range)
                    && f.missing_as_ref == *missing_as_ref
            }) {
                if !current.is_empty() && bytes + file.bytes > max_bytes {
                    groups.push(std::mem::take(&mut current));
                    bytes = 0;
                }
                bytes += file.bytes;
                current.push(file.clone());
            }
            groups.push(current);
        }
        groups.retain(|g| g.len() > 1);
        // Coverage files of one contig (one per `ingest bam`) merge whatever their batch.
        let mut coverage: Vec<Vec<FileEntry>> = Vec::new();
        for file in state
            .files
            .values()
            .filter(|f| f.kind == FileKind::Coverage)
        {
            let Some(c) = file.contig.as_deref() else {
                continue;
            };
            if contig.is_some_and(|wanted| wanted != c) {
                continue;
            }
            match coverage
                .iter_mut()
                .find(|g| g[0].contig.as_deref() == Some(c))
            {
                Some(group) => group.push(file.clone()),
                None => coverage.push(vec![file.clone()]),
            }
        }
        coverage.retain(|g| g.len() > 1);
        Ok(CompactionPlan {
            contigs,
            batches,
            fragments: groups,
            coverage,
        })
    }

    /// The snapshot's batches that `policy` merges, with their fragments.
    fn batch_merges(&self, policy: BatchPolicy) -> Vec<BatchMerge> {
        let state = &self.snapshot().state;
        let mut spans: Vec<BatchSpan> = state
            .variant_fragments()
            .filter_map(|f| {
                f.sample_range.map(|samples| BatchSpan {
                    samples,
                    missing_as_ref: f.missing_as_ref,
                })
            })
            .collect();
        spans.sort_by_key(|b| (b.samples, b.missing_as_ref));
        spans.dedup();
        plan_merges(&spans, policy)
            .into_iter()
            .map(|range| {
                let merged = &spans[range];
                let missing_as_ref = merged[0].missing_as_ref;
                let batches: Vec<[u32; 2]> = merged.iter().map(|b| b.samples).collect();
                let fragments = state
                    .variant_fragments()
                    .filter(|f| {
                        f.missing_as_ref == missing_as_ref
                            && f.sample_range.is_some_and(|r| batches.contains(&r))
                    })
                    .cloned()
                    .collect();
                BatchMerge {
                    batches,
                    missing_as_ref,
                    fragments,
                }
            })
            .collect()
    }

    /// Carries out `plan` in one commit over this engine's snapshot.
    async fn run_compaction(&self, plan: &CompactionPlan, max_bytes: u64) -> Result<Compaction> {
        let mut done = Compaction {
            version: self.snapshot().version(),
            ..Compaction::default()
        };
        if plan.is_empty() {
            return Ok(done);
        }
        let mut add: Vec<FileEntry> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        let total = plan.batches.iter().flat_map(|m| &m.fragments);
        let total = total
            .chain(plan.fragments.iter().flatten())
            .chain(plan.coverage.iter().flatten())
            .map(|f| f.bytes)
            .sum();
        self.progress.start(Some(total), Unit::Bytes, "compacting");
        let written = self
            .write_compaction(plan, max_bytes, &mut add, &mut remove, &mut done)
            .await;
        self.progress.finish();
        if let Err(e) = written {
            self.store().discard(&add).await;
            return Err(e);
        }
        let commit = Commit {
            kind: CommitKind::Compact,
            add,
            remove,
            withdraw: Vec::new(),
            retire: Vec::new(),
            operation: serde_json::json!({
                "compact": {
                    "contigs": plan.contigs,
                    "batches_before": done.batches_before,
                    "batches_after": done.batches_after,
                    "before": done.before,
                    "after": done.after,
                    "coverage_before": done.coverage_before,
                    "coverage_after": done.coverage_after,
                }
            }),
        };
        done.version = self
            .store()
            .commit_or_discard(self.snapshot(), commit)
            .await?
            .version();
        Ok(done)
    }

    /// Writes the files of `plan`, adding each to `add` as soon as it is written (so a
    /// failure can discard them) and the files they replace to `remove`.
    async fn write_compaction(
        &self,
        plan: &CompactionPlan,
        max_bytes: u64,
        add: &mut Vec<FileEntry>,
        remove: &mut Vec<String>,
        done: &mut Compaction,
    ) -> Result<()> {
        for merge in &plan.batches {
            let written = add.len();
            self.merge_batches(merge, max_bytes, add).await?;
            remove.extend(merge.fragments.iter().map(|f| f.path.clone()));
            done.batches_before += merge.batches.len();
            done.batches_after += 1;
            done.before += merge.fragments.len();
            done.after += add.len() - written;
        }
        for group in &plan.fragments {
            add.push(self.merge(group).await?);
            self.progress
                .advance(group.iter().map(|f| f.bytes).sum::<u64>());
            remove.extend(group.iter().map(|f| f.path.clone()));
            done.before += group.len();
            done.after += 1;
        }
        for group in &plan.coverage {
            add.push(self.merge_coverage(group).await?);
            self.progress
                .advance(group.iter().map(|f| f.bytes).sum::<u64>());
            remove.extend(group.iter().map(|f| f.path.clone()));
            done.coverage_before += group.len();
            done.coverage_after += 1;
        }
        Ok(())
    }

    /// Writes the batches of `merge` as one: their rows merged as readers merge them, in
    /// fragments of about `max_bytes` (cut between positions), each pushed to `add`. Progress
    /// advances by the stored bytes of `merge` below each merged position.
    async fn merge_batches(
        &self,
        merge: &BatchMerge,
        max_bytes: u64,
        add: &mut Vec<FileEntry>,
    ) -> Result<()> {
        let extras = merge.fragments.iter().try_fold(Vec::new(), |acc, f| {
            merge_extra_columns(&acc, f.columns.iter().cloned())
        })?;
        let blocks = self
            .snapshot()
            .state
            .files_of(&[FileKind::RefBlocks])
            .cloned()
            .collect();
        let table = self
            .stored_rows(extras.clone(), merge.fragments.clone())
            .merging(blocks);
        // One partition: rows come in (contig, position) order.
        let ctx = self.full_session_with(SessionConfig::new().with_target_partitions(1))?;
        let mut rows = ctx.read_table(Arc::new(table))?.execute_stream().await?;
        let mut writer: Option<FragmentWriter> = None;
        let start = self.progress.position();
        // Stored bytes of the contigs merged whole, and the fragments of the current one.
        let mut finished = 0.0;
        let mut current: (String, Vec<&FileEntry>) = Default::default();
        while let Some(batch) = rows.next().await {
            let batch = batch?;
            for (contig, part) in contig_runs(&batch)? {
                let positions = part.column(1).as_primitive::<Int64Type>();
                let first_pos = positions.value(0);
                if current.0 != contig {
                    finished += stored_bytes_up_to(&current.1, i64::MAX);
                    let of_contig = |f: &&FileEntry| f.contig.as_deref() == Some(contig.as_str());
                    current = (
                        contig.clone(),
                        merge.fragments.iter().filter(of_contig).collect(),
                    );
                }
                let last_pos = positions.value(positions.len() - 1);
                let read = finished + stored_bytes_up_to(&current.1, last_pos);
                self.progress.set_position(start + read as u64);
                let full = |w: &FragmentWriter| {
                    w.bytes() as u64 >= max_bytes && w.last_pos() != Some(first_pos)
                };
                if writer
                    .as_ref()
                    .is_some_and(|w| w.contig() != contig || full(w))
                    && let Some(done) = writer.take()
                {
                    add.push(self.put_fragment(done.finish()?, merge).await?);
                }
                let current = match &mut writer {
                    Some(w) => w,
                    None => writer.insert(FragmentWriter::new(&contig, extras.clone())?),
                };
                current.write(&part)?;
            }
        }
        if let Some(done) = writer.take() {
            add.push(self.put_fragment(done.finish()?, merge).await?);
        }
        let all: u64 = merge.fragments.iter().map(|f| f.bytes).sum();
        self.progress.set_position(start + all);
        Ok(())
    }

    /// Puts one fragment of the batch `merge` makes and returns its log entry.
    async fn put_fragment(
        &self,
        encoded: EncodedFragment,
        merge: &BatchMerge,
    ) -> Result<FileEntry> {
        // Beside a fragment it replaces: the rows of a contig come from its fragments.
        let sibling = merge
            .fragments
            .iter()
            .find(|f| f.contig.as_deref() == Some(encoded.contig.as_str()))
            .map(FileEntry::sibling_path)
            .ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "merged rows of {} from no fragment",
                    encoded.contig
                ))
            })?;
        let bytes = encoded.parquet.len() as u64;
        self.store().put_new_file(&sibling, encoded.parquet).await?;
        Ok(FileEntry {
            contig: Some(encoded.contig),
            min_pos: Some(encoded.min_pos),
            max_pos: Some(encoded.max_pos),
            max_end: Some(encoded.max_end),
            columns: encoded.extras,
            sample_range: Some(merge.samples()),
            missing_as_ref: merge.missing_as_ref,
            ..FileEntry::new(sibling, FileKind::Variants, encoded.rows, bytes)
        })
    }

    /// One coverage file with the bins of `group` (one contig): the bitmaps of one bin and
    /// threshold ORed, as readers OR them.
    async fn merge_coverage(&self, group: &[FileEntry]) -> Result<FileEntry> {
        let mut bins: BTreeMap<(i64, i64, u32), RoaringBitmap> = BTreeMap::new();
        for file in group {
            let bytes = self.store().read_file(&file.path).await?;
            for bin in decode_coverage(&file.path, bytes, i64::MIN, i64::MAX)? {
                *bins.entry((bin.start, bin.end, bin.min_depth)).or_default() |= bin.samples;
            }
        }
        let rows: Vec<CoverageBin> = bins
            .into_iter()
            .map(|((start, end, min_depth), samples)| CoverageBin {
                start,
                end,
                min_depth,
                samples,
            })
            .collect();
        let contig = group[0].contig.clone().unwrap_or_default();
        let body = encode_coverage(&contig, &rows)?;
        let path = group[0].sibling_path();
        let size = body.len() as u64;
        self.store().put_new_file(&path, body).await?;
        Ok(FileEntry {
            contig: Some(contig),
            min_pos: group.iter().filter_map(|f| f.min_pos).min(),
            max_pos: group.iter().filter_map(|f| f.max_pos).max(),
            max_end: group.iter().filter_map(|f| f.max_end).max(),
            ..FileEntry::new(path, FileKind::Coverage, rows.len() as u64, size)
        })
    }

    /// One fragment with the rows of `group` (one contig, reader order), written to the store.
    async fn merge(&self, group: &[FileEntry]) -> Result<FileEntry> {
        let extras = group.iter().try_fold(Vec::new(), |acc, f| {
            merge_extra_columns(&acc, f.columns.iter().cloned())
        })?;
        let schema = fragment_schema(&extras);
        // One partition: batches come back in file order, files in the order given.
        let ctx = self.full_session_with(SessionConfig::new().with_target_partitions(1))?;
        let mut batches = Vec::new();
        for file in group {
            let table = self.stored_rows(extras.clone(), vec![file.clone()]);
            batches.extend(ctx.read_table(Arc::new(table))?.collect().await?);
        }
        let batch = concat_batches(&schema, &batches).map_err(DataFusionError::from)?;
        let pos = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| DataFusionError::Internal("pos is not Int64".into()))?;
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        order.sort_by_key(|&i| pos.value(i as usize)); // stable: ties keep reader order
        let batch =
            take_record_batch(&batch, &UInt32Array::from(order)).map_err(DataFusionError::from)?;
        let contig = group[0].contig.clone().unwrap_or_default();
        let encoded = encode_fragment(&contig, batch, extras)?;
        let path = group[0].sibling_path();
        let bytes = encoded.parquet.len() as u64;
        self.store().put_new_file(&path, encoded.parquet).await?;
        Ok(FileEntry {
            contig: Some(contig),
            min_pos: Some(encoded.min_pos),
            max_pos: Some(encoded.max_pos),
            max_end: Some(encoded.max_end),
            columns: encoded.extras,
            sample_range: group[0].sample_range,
            missing_as_ref: group[0].missing_as_ref,
            ..FileEntry::new(
                path,
                cohortdb_store::log_entry::FileKind::Variants,
                encoded.rows,
                bytes,
            )
        })
    }
}

/// The rows of `batch` split where the contig changes: (contig, rows) in order.
fn contig_runs(batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
    let contigs = batch
        .column_by_name("contig")
        .ok_or_else(|| DataFusionError::Internal("merged rows without contig".into()))?
        .as_string::<i32>();
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=batch.num_rows() {
        if i == batch.num_rows() || contigs.value(i) != contigs.value(start) {
            runs.push((
                contigs.value(start).to_string(),
                batch.slice(start, i - start),
            ));
            start = i;
        }
    }
    Ok(runs)
}
