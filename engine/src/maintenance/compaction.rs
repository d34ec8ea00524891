//! `compact`: merges a contig's fragments into fewer, in one commit.
//!
//! Fragments of one batch (one sample range: the parts of a cluster ingest, or a large input
//! written in several fragments) are taken in the order readers take them (path order) and
//! grouped so that each group holds at most a byte budget of stored fragments (memory is bounded by it); each group
//! of two or more becomes one fragment whose rows are the group's rows, stably sorted by
//! position, so rows at one position keep their relative order and every answer stays the
//! same. Readers see the old fragments or the new ones: the commit removes the one set and
//! adds the other. A contig's coverage files (one per `ingest bam`) merge into one, each bin's
//! bitmaps ORed as readers OR them.

use std::collections::BTreeMap;
use std::sync::Arc;

use cohortdb_store::Commit;
use cohortdb_store::coverage_bins::{CoverageBin, decode_coverage, encode_coverage};
use cohortdb_store::fragment_builder::encode_fragment;
use cohortdb_store::fragment_schema::fragment_schema;
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::merge_extra_columns;
use datafusion::arrow::array::{Int64Array, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionConfig;
use roaring::RoaringBitmap;

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::access_policy::Tier;

/// The default most stored bytes merged into one fragment: 512 MiB.
pub const DEFAULT_COMPACT_BYTES: u64 = 512 << 20;

/// What [`CohortEngine::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compaction {
    /// The version that commits it (the current one when nothing was merged).
    pub version: u64,
    /// Fragments merged away.
    pub before: usize,
    /// Fragments written.
    pub after: usize,
    /// Coverage files merged away.
    pub coverage_before: usize,
    /// Coverage files written (one per contig).
    pub coverage_after: usize,
}

/// What [`CohortEngine::compact`] would merge (`admin compact --dry-run` prints it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionPlan {
    /// The contigs looked at.
    pub contigs: Vec<String>,
    /// Groups of variant fragments, each to become one fragment (one batch and contig each).
    pub fragments: Vec<Vec<FileEntry>>,
    /// Groups of coverage files, each to become one file (one contig each).
    pub coverage: Vec<Vec<FileEntry>>,
}

impl CompactionPlan {
    /// Whether there is nothing to merge.
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty() && self.coverage.is_empty()
    }
}

impl CohortEngine {
    /// Merges the fragments of `contig` (every contig when `None`) into fewer, each new one
    /// from at most `max_bytes` of stored fragments. Admin tier only.
    pub async fn compact(&self, contig: Option<&str>, max_bytes: u64) -> Result<Compaction> {
        let plan = self.compaction_plan(contig, max_bytes)?;
        self.run_compaction(&plan).await
    }

    /// What [`CohortEngine::compact`] would merge, reading nothing but the snapshot. Admin
    /// tier only.
    pub fn compaction_plan(&self, contig: Option<&str>, max_bytes: u64) -> Result<CompactionPlan> {
        if self.tier() != Tier::Admin {
            return Err(EngineError::PermissionDenied(
                "compaction needs the admin tier".into(),
            ));
        }
        let state = &self.snapshot().state;
        let contigs: Vec<String> = match contig {
            Some(c) => vec![c.to_string()],
            None => state.contigs(),
        };
        let mut groups: Vec<Vec<FileEntry>> = Vec::new();
        // Only fragments of one batch merge: readers merge a site across batches by the
        // fragments' sample ranges (fragments from before ranges were recorded stay apart).
        let mut batches: Vec<(String, [u32; 2], bool)> = Vec::new();
        for file in state.variant_fragments() {
            if let (Some(contig), Some(range)) = (&file.contig, file.sample_range) {
                let key = (contig.clone(), range, file.missing_as_ref);
                if contigs.contains(contig) && !batches.contains(&key) {
                    batches.push(key);
                }
            }
        }
        for (contig, range, missing_as_ref) in &batches {
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
            fragments: groups,
            coverage,
        })
    }

    /// Carries out `plan` in one commit over this engine's snapshot.
    async fn run_compaction(&self, plan: &CompactionPlan) -> Result<Compaction> {
        let mut done = Compaction {
            version: self.snapshot().version(),
            ..Compaction::default()
        };
        if plan.is_empty() {
            return Ok(done);
        }
        let (groups, coverage) = (&plan.fragments, &plan.coverage);
        let mut add: Vec<FileEntry> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        let all = coverage
            .iter()
            .map(|g| (g, true))
            .chain(groups.iter().map(|g| (g, false)));
        for (group, is_coverage) in all {
            let merged = match is_coverage {
                true => self.merge_coverage(group).await,
                false => self.merge(group).await,
            };
            match merged {
                Ok(entry) => add.push(entry),
                Err(e) => {
                    self.store().discard(&add).await;
                    return Err(e);
                }
            }
            remove.extend(group.iter().map(|f| f.path.clone()));
            let (before, after) = match is_coverage {
                true => (&mut done.coverage_before, &mut done.coverage_after),
                false => (&mut done.before, &mut done.after),
            };
            *before += group.len();
            *after += 1;
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
