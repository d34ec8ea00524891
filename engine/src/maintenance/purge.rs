//! `purge`: rewrites every file that still holds a withdrawn participant without them, in one
//! commit. Variant fragments are written back as the masked view reads them (bitmaps, counts,
//! FORMAT lists, high-ploidy calls; see `withdrawal_masks.rs`), the sample registry and the
//! phenotype tables without their rows, coverage bitmaps without them, saved list cohorts
//! without their IDs. The old files stay for older snapshots until `vacuum` deletes them.

use std::sync::Arc;

use bytes::Bytes;
use cohortdb_store::coverage_bins::rewrite_bitmaps;
use cohortdb_store::fragment_schema::fragment_schema;
use cohortdb_store::fragment_writer::encode_fragment;
use cohortdb_store::genotype_bitmaps::{BITMAP_COLUMNS, decode_exceptions, deserialize_bitmap};
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::progress::Unit;
use cohortdb_store::{Commit, Store, StoreError};
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionConfig;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use roaring::RoaringBitmap;

use crate::cohort::named_cohorts::{CohortDefinition, SavedMembers};
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::access_policy::Tier;

/// What [`CohortEngine::purge`] rewrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purge {
    /// The version that commits the rewrite (the current one when nothing needed it).
    pub version: u64,
    /// Variant fragments rewritten.
    pub fragments: usize,
    /// Sample registry files rewritten.
    pub sample_files: usize,
    /// Phenotype table files rewritten.
    pub phenotype_files: usize,
    /// Coverage files rewritten.
    pub coverage_files: usize,
    /// Saved list cohorts rewritten.
    pub cohort_files: usize,
}

/// Whether a raw fragment batch holds any of `withdrawn` in a bitmap or a high-ploidy call.
fn holds_any(batch: &RecordBatch, withdrawn: &RoaringBitmap, path: &str) -> Result<bool> {
    let corrupt = |what: &str| {
        EngineError::Store(StoreError::Corrupt {
            path: path.to_string(),
            what: what.to_string(),
            reason: "not readable as stored".into(),
        })
    };
    for name in BITMAP_COLUMNS.iter().chain(["gt_exceptions"].iter()) {
        let Some(column) = batch.column_by_name(name) else {
            continue;
        };
        let column = crate::rows::stored_bitmaps::cast_column(
            column,
            &datafusion::arrow::datatypes::DataType::Binary,
        )?;
        let column = column.as_binary::<i32>();
        for row in 0..column.len() {
            if column.is_null(row) {
                continue;
            }
            let hit = if *name == "gt_exceptions" {
                decode_exceptions(column.value(row))
                    .ok_or_else(|| corrupt(name))?
                    .iter()
                    .any(|c| withdrawn.contains(c.sample_idx))
            } else {
                !deserialize_bitmap(column.value(row))
                    .ok_or_else(|| corrupt(name))?
                    .is_disjoint(withdrawn)
            };
            if hit {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The rows of a table file (first column `sample_idx`) not in `withdrawn`, or `None` when it
/// holds none of them.
fn without_rows(
    path: &str,
    bytes: Bytes,
    withdrawn: &RoaringBitmap,
) -> Result<Option<RecordBatch>> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?;
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .map_err(parquet_err)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(DataFusionError::from)?;
    let batch = concat_batches(&schema, &batches).map_err(DataFusionError::from)?;
    let idx = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt32Array>()
        .ok_or_else(|| {
            EngineError::Store(StoreError::Corrupt {
                path: path.to_string(),
                what: "sample_idx".into(),
                reason: "the first column is not UInt32".into(),
            })
        })?;
    let keep: BooleanArray = idx
        .iter()
        .map(|i| i.map(|i| !withdrawn.contains(i)))
        .collect();
    if keep.true_count() == batch.num_rows() {
        return Ok(None);
    }
    Ok(Some(
        filter_record_batch(&batch, &keep).map_err(DataFusionError::from)?,
    ))
}

fn encode_table(path: &str, batch: &RecordBatch) -> Result<Bytes> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    Ok(writer.into_inner().map_err(parquet_err)?.into())
}

impl CohortEngine {
    /// Rewrites the files that hold withdrawn participants without them, as one commit (see
    /// the module documentation). Files are written first and removed from the snapshot by
    /// the commit, so readers see the store before or after, never between; on failure the
    /// new files are deleted again. Admin tier only.
    pub async fn purge(&self) -> Result<Purge> {
        if self.tier() != Tier::Admin {
            return Err(EngineError::PermissionDenied(
                "purging needs the admin tier".into(),
            ));
        }
        let withdrawn = self.withdrawn().clone();
        let mut done = Purge {
            version: self.snapshot().version(),
            ..Purge::default()
        };
        if withdrawn.is_empty() {
            return Ok(done);
        }
        let mut add: Vec<FileEntry> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        let result = self
            .rewrite_all(&withdrawn, &mut add, &mut remove, &mut done)
            .await;
        if let Err(e) = result {
            self.store().discard(&add).await;
            return Err(e);
        }
        if add.is_empty() && remove.is_empty() {
            return Ok(done);
        }
        let commit = Commit {
            kind: CommitKind::Withdraw,
            add,
            remove,
            withdraw: Vec::new(),
            retire: Vec::new(),
            operation: serde_json::json!({
                "purge": {
                    "fragments": done.fragments,
                    "sample_files": done.sample_files,
                    "phenotype_files": done.phenotype_files,
                    "coverage_files": done.coverage_files,
                    "cohort_files": done.cohort_files,
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

    /// Rewrites every file that may name a participant of `withdrawn`, reporting progress
    /// in the stored bytes examined.
    async fn rewrite_all(
        &self,
        withdrawn: &RoaringBitmap,
        add: &mut Vec<FileEntry>,
        remove: &mut Vec<String>,
        done: &mut Purge,
    ) -> Result<()> {
        // A batch's fragments hold calls of its sample range only.
        let fragments: Vec<FileEntry> = self
            .snapshot()
            .state
            .variant_fragments()
            .filter(|f| {
                f.sample_range
                    .is_none_or(|[start, end]| withdrawn.range_cardinality(start..end) > 0)
            })
            .cloned()
            .collect();
        let state = &self.snapshot().state;
        let total = fragments.iter().map(|f| f.bytes).sum::<u64>()
            + state
                .files_of(&[
                    FileKind::Coverage,
                    FileKind::RefBlocks,
                    FileKind::Samples,
                    FileKind::Phenotypes,
                ])
                .map(|f| f.bytes)
                .sum::<u64>();
        self.progress.start(Some(total), Unit::Bytes, "purging");
        let result = self
            .rewrite_files(&fragments, withdrawn, add, remove, done)
            .await;
        self.progress.finish();
        result
    }

    /// The rewrites of [`CohortEngine::rewrite_all`], `fragments` those that may hold a
    /// withdrawn participant.
    async fn rewrite_files(
        &self,
        fragments: &[FileEntry],
        withdrawn: &RoaringBitmap,
        add: &mut Vec<FileEntry>,
        remove: &mut Vec<String>,
        done: &mut Purge,
    ) -> Result<()> {
        let store = self.store();
        // One partition keeps each fragment's rows in file order.
        let ctx = self.full_session_with(SessionConfig::new().with_target_partitions(1))?;
        for file in fragments {
            self.progress.advance(file.bytes);
            let schema = fragment_schema(&file.columns);
            let table = Arc::new(self.stored_rows(file.columns.clone(), vec![file.clone()]));
            let batches = ctx.read_table(table)?.collect().await?;
            let raw_batch = concat_batches(&schema, &batches).map_err(DataFusionError::from)?;
            if !holds_any(&raw_batch, withdrawn, &file.path)? {
                continue;
            }
            // Masked from the rows already read, not by reading the fragment again.
            let raw = ctx.read_batch(raw_batch)?;
            let masked = crate::sql::withdrawal_masks::variants_without(raw, withdrawn)?
                .collect()
                .await?;
            let masked =
                concat_batches(&masked[0].schema(), &masked).map_err(DataFusionError::from)?;
            // The stored schema exactly (the view's nullability may differ).
            let batch = RecordBatch::try_new(schema, masked.columns().to_vec())
                .map_err(DataFusionError::from)?;
            let contig = file.contig.clone().unwrap_or_default();
            let encoded = encode_fragment(&contig, batch, file.columns.clone())?;
            replace(store, file, encoded.parquet, file.rows, add, remove).await?;
            done.fragments += 1;
        }
        self.rewrite_coverage(withdrawn, add, remove, done).await?;
        self.rewrite_saved_lists(withdrawn, add, remove, done)
            .await?;
        let tables: Vec<FileEntry> = self
            .snapshot()
            .state
            .files_of(&[FileKind::Samples, FileKind::Phenotypes])
            .cloned()
            .collect();
        for file in tables {
            self.progress.advance(file.bytes);
            let bytes = store.read_file(&file.path).await?;
            let Some(kept) = without_rows(&file.path, bytes, withdrawn)? else {
                continue;
            };
            let body = encode_table(&file.path, &kept)?;
            replace(store, &file, body, kept.num_rows() as u64, add, remove).await?;
            match file.kind {
                FileKind::Samples => done.sample_files += 1,
                _ => done.phenotype_files += 1,
            }
        }
        Ok(())
    }

    /// Saved list cohorts that name a withdrawn participant, written back without the IDs.
    async fn rewrite_saved_lists(
        &self,
        withdrawn: &RoaringBitmap,
        add: &mut Vec<FileEntry>,
        remove: &mut Vec<String>,
        done: &mut Purge,
    ) -> Result<()> {
        let gone: std::collections::HashSet<&str> = self
            .sample_records()
            .iter()
            .filter(|s| withdrawn.contains(s.sample_idx))
            .map(|s| s.sample_id.as_str())
            .collect();
        let store = self.store();
        let files: Vec<FileEntry> = self
            .snapshot()
            .state
            .files_of(&[FileKind::Cohort])
            .cloned()
            .collect();
        for file in files {
            let unreadable = |reason: String| {
                EngineError::Store(StoreError::Corrupt {
                    path: file.path.clone(),
                    what: "saved cohort".into(),
                    reason,
                })
            };
            let bytes = store.read_file(&file.path).await?;
            let mut definition: CohortDefinition =
                serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
            let SavedMembers::Samples(ids) = &mut definition.members else {
                continue;
            };
            let before = ids.len();
            ids.retain(|id| !gone.contains(id.as_str()));
            if ids.len() == before {
                continue;
            }
            let json =
                serde_json::to_vec_pretty(&definition).map_err(|e| unreadable(e.to_string()))?;
            replace(store, &file, Bytes::from(json), file.rows, add, remove).await?;
            done.cohort_files += 1;
        }
        Ok(())
    }

    /// Coverage and reference-block files whose bitmaps name a withdrawn participant, written back without them.
    async fn rewrite_coverage(
        &self,
        withdrawn: &RoaringBitmap,
        add: &mut Vec<FileEntry>,
        remove: &mut Vec<String>,
        done: &mut Purge,
    ) -> Result<()> {
        let store = self.store();
        let files: Vec<FileEntry> = self
            .snapshot()
            .state
            .files_of(&[FileKind::Coverage, FileKind::RefBlocks])
            .cloned()
            .collect();
        for file in files {
            self.progress.advance(file.bytes);
            let rewritten = rewrite_bitmaps(store, &file, |samples| {
                let holds = !samples.is_disjoint(withdrawn);
                *samples -= withdrawn;
                holds
            })
            .await?;
            if let Some(entry) = rewritten {
                add.push(entry);
                remove.push(file.path.clone());
                done.coverage_files += 1;
            }
        }
        Ok(())
    }
}

/// Writes `body` beside `file` as its replacement, holding `rows` rows: the new entry goes to
/// `add`, the old path to `remove`.
async fn replace(
    store: &Store,
    file: &FileEntry,
    body: Bytes,
    rows: u64,
    add: &mut Vec<FileEntry>,
    remove: &mut Vec<String>,
) -> Result<()> {
    let path = file.sibling_path();
    let bytes = body.len() as u64;
    store.put_new_file(&path, body).await?;
    add.push(FileEntry {
        path,
        rows,
        bytes,
        ..file.clone()
    });
    remove.push(file.path.clone());
    Ok(())
}
