//! `ingest vcf --replace`: a participant's new data under a new `sample_idx`.
//!
//! The replacing ingest registers the participant again (in its batch's new range) and retires
//! the old index in the same commit: every read path hides a retired index as it hides a
//! withdrawn one, and `purge` removes its data. What belongs to the participant rather than to
//! the replaced genotypes moves to the new index in that commit: phenotype rows and BAM
//! coverage bitmaps are rewritten with the new index.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, RecordBatchReader, UInt32Array};
use arrow::compute::{sort_to_indices, take_record_batch};
use bytes::Bytes;
use cohortdb_store::coverage_bins::rewrite_bitmaps;
use cohortdb_store::log_entry::{FileEntry, FileKind};
use cohortdb_store::{Snapshot, Store};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{IngestError, Result};

/// Files rewritten for a replacement: to add (already written) and to remove.
#[derive(Debug, Default)]
pub struct Remapped {
    /// New files.
    pub add: Vec<FileEntry>,
    /// Paths of the files they replace.
    pub remove: Vec<String>,
}

fn failure(path: &str, reason: impl std::fmt::Display) -> IngestError {
    IngestError::Inputs {
        file: path.to_string(),
        reason: format!("moving replaced samples to their new index: {reason}"),
    }
}

/// A phenotype file with `sample_idx` moved by `moved`, rows again sorted by it; `None` when
/// no row moves.
fn remap_table(path: &str, bytes: Bytes, moved: &HashMap<u32, u32>) -> Result<Option<Bytes>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| failure(path, e))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| failure(path, e))?;
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| failure(path, e))?;
    let Some(idx) = batch.column(0).as_any().downcast_ref::<UInt32Array>() else {
        return Err(failure(path, "first column is not sample_idx"));
    };
    if !idx.values().iter().any(|i| moved.contains_key(i)) {
        return Ok(None);
    }
    let new_idx: UInt32Array = idx
        .iter()
        .map(|i| i.map(|i| moved.get(&i).copied().unwrap_or(i)))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[0] = Arc::new(new_idx);
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| failure(path, e))?;
    let order = sort_to_indices(batch.column(0), None, None).map_err(|e| failure(path, e))?;
    let batch = take_record_batch(&batch, &order).map_err(|e| failure(path, e))?;
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, None).map_err(|e| failure(path, e))?;
    writer.write(&batch).map_err(|e| failure(path, e))?;
    Ok(Some(
        writer.into_inner().map_err(|e| failure(path, e))?.into(),
    ))
}

/// Rewrites the phenotype tables and coverage files of `snapshot` that name an old index of
/// `moved` (old -> new `sample_idx`) with the new one. The new files are written; the caller
/// commits them (or discards them on failure).
pub async fn remap_samples(
    store: &Store,
    snapshot: &Snapshot,
    moved: &HashMap<u32, u32>,
) -> Result<Remapped> {
    let mut out = Remapped::default();
    let files: Vec<FileEntry> = snapshot
        .state
        .files_of(&[FileKind::Phenotypes, FileKind::Coverage])
        .cloned()
        .collect();
    for file in files {
        let rewritten = match file.kind {
            FileKind::Phenotypes => {
                let bytes = store.read_file(&file.path).await?;
                let Some(body) = remap_table(&file.path, bytes, moved)? else {
                    continue;
                };
                let path = file.sibling_path();
                let size = body.len() as u64;
                store.put_new_file(&path, body).await?;
                FileEntry {
                    path,
                    bytes: size,
                    ..file.clone()
                }
            }
            _ => {
                let remap = |samples: &mut roaring::RoaringBitmap| {
                    let mut changed = false;
                    for (&old, &new) in moved {
                        if samples.remove(old) {
                            samples.insert(new);
                            changed = true;
                        }
                    }
                    changed
                };
                match rewrite_bitmaps(store, &file, remap).await? {
                    Some(entry) => entry,
                    None => continue,
                }
            }
        };
        out.add.push(rewritten);
        out.remove.push(file.path.clone());
    }
    Ok(out)
}
