//! Coverage files: `coverage/contig=<name>/<uuid>.parquet`, one per ingest x contig.
//!
//! A row is one bin of a contig and one depth threshold: the samples whose mean depth over the
//! bin is at least `min_depth` (mosdepth's per-window mean, compared exactly as
//! `sum of depths >= min_depth x bin length`), as a portable roaring bitmap. Every bin of the
//! contig has a row for every threshold, empty bitmaps included, so a reader knows the bins
//! without the BAM header. Rows are sorted by (`start`, `min_depth`); coordinates are 1-based
//! and inclusive, as everywhere in the store.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryArray, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use roaring::RoaringBitmap;

use crate::commit_log::Store;
use crate::error::{Result, StoreError};
use crate::genotype_bitmaps::{deserialize_bitmap, serialize_bitmap};
use crate::log_entry::FileEntry;

/// One bin x threshold of a coverage file.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageBin {
    /// First position of the bin (1-based).
    pub start: i64,
    /// Last position of the bin (1-based, inclusive).
    pub end: i64,
    /// The depth threshold.
    pub min_depth: u32,
    /// Samples (`sample_idx`) whose mean depth over the bin is at least `min_depth`.
    pub samples: RoaringBitmap,
}

/// The schema of coverage files.
pub fn coverage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("contig", DataType::Utf8, false),
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
        Field::new("min_depth", DataType::UInt32, false),
        Field::new("samples", DataType::Binary, false),
    ]))
}

/// Encodes one contig's bins (already sorted by start, then threshold) as Parquet.
pub fn encode_coverage(contig: &str, bins: &[CoverageBin]) -> Result<Bytes> {
    let schema = coverage_schema();
    let bitmaps: Vec<Vec<u8>> = bins.iter().map(|b| serialize_bitmap(&b.samples)).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(bins.iter().map(|_| contig))),
            Arc::new(Int64Array::from_iter_values(bins.iter().map(|b| b.start))),
            Arc::new(Int64Array::from_iter_values(bins.iter().map(|b| b.end))),
            Arc::new(UInt32Array::from_iter_values(
                bins.iter().map(|b| b.min_depth),
            )),
            Arc::new(BinaryArray::from_iter_values(bitmaps.iter())),
        ],
    )
    .map_err(|e| StoreError::Arrow {
        context: format!("building coverage bins of {contig}"),
        source: e,
    })?;
    let parquet_err = |source| StoreError::Parquet {
        path: format!("new coverage file of {contig}"),
        source,
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(65_536))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, Some(properties)).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    Ok(writer.into_inner().map_err(parquet_err)?.into())
}

/// Decodes the bins of a coverage file that overlap `[start, end]` (1-based, inclusive).
pub fn decode_coverage(path: &str, bytes: Bytes, start: i64, end: i64) -> Result<Vec<CoverageBin>> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?;
    // Only the row groups whose bins can overlap (statistics of `start` and `end`).
    let overlapping: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, rg)| {
            let stat = |column: usize, min: bool| match rg.column(column).statistics() {
                Some(Statistics::Int64(s)) => if min { s.min_opt() } else { s.max_opt() }.copied(),
                _ => None,
            };
            stat(1, true).is_none_or(|first| first <= end)
                && stat(2, false).is_none_or(|last| last >= start)
        })
        .map(|(i, _)| i)
        .collect();
    let reader = builder
        .with_row_groups(overlapping)
        .build()
        .map_err(parquet_err)?;
    let mut bins = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::Arrow {
            context: format!("reading {path}"),
            source: e,
        })?;
        let (Some(starts), Some(ends), Some(depths), Some(samples)) = (
            batch.column(1).as_primitive_opt::<Int64Type>(),
            batch.column(2).as_primitive_opt::<Int64Type>(),
            batch.column(3).as_primitive_opt::<UInt32Type>(),
            batch.column(4).as_binary_opt::<i32>(),
        ) else {
            return Err(StoreError::Corrupt {
                path: path.to_string(),
                what: "coverage file".into(),
                reason: "not a coverage file (unexpected column types)".into(),
            });
        };
        for row in 0..batch.num_rows() {
            let (bin_start, bin_end) = (starts.value(row), ends.value(row));
            if bin_end < start || bin_start > end || samples.is_null(row) {
                continue;
            }
            bins.push(CoverageBin {
                start: bin_start,
                end: bin_end,
                min_depth: depths.value(row),
                samples: deserialize_bitmap(samples.value(row)).ok_or_else(|| {
                    StoreError::Corrupt {
                        path: path.to_string(),
                        what: "coverage bitmap".into(),
                        reason: format!("unreadable coverage bitmap at {bin_start}"),
                    }
                })?,
            });
        }
    }
    Ok(bins)
}

/// Rewrites coverage (or reference-block) file `file` with `edit` applied to every bin's
/// bitmap (`edit` says whether it changed it): when one changed, the new file is written
/// beside the old one and its entry returned (the caller commits it, or discards it); when
/// none did, `None` and nothing is written.
pub async fn rewrite_bitmaps(
    store: &Store,
    file: &FileEntry,
    mut edit: impl FnMut(&mut RoaringBitmap) -> bool,
) -> Result<Option<FileEntry>> {
    let bytes = store.read_file(&file.path).await?;
    let mut bins = decode_coverage(&file.path, bytes, i64::MIN, i64::MAX)?;
    let mut changed = false;
    for bin in &mut bins {
        changed |= edit(&mut bin.samples);
    }
    if !changed {
        return Ok(None);
    }
    let body = encode_coverage(file.contig.as_deref().unwrap_or_default(), &bins)?;
    let path = file.sibling_path();
    let size = body.len() as u64;
    store.put_new_file(&path, body).await?;
    Ok(Some(FileEntry {
        path,
        bytes: size,
        ..file.clone()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_round_trip_and_filter_by_overlap() {
        let bins: Vec<CoverageBin> = (0..3)
            .map(|i| CoverageBin {
                start: i * 1000 + 1,
                end: (i + 1) * 1000,
                min_depth: 10,
                samples: RoaringBitmap::from_iter([i as u32, 7]),
            })
            .collect();
        let bytes = encode_coverage("chr1", &bins).unwrap();
        assert_eq!(decode_coverage("t", bytes.clone(), 1, 3000).unwrap(), bins);
        assert_eq!(decode_coverage("t", bytes, 1000, 1001).unwrap(), bins[..2]);
    }

    #[test]
    fn row_groups_outside_the_range_are_skipped_and_inside_ones_kept() {
        // 200,000 bins: four row groups.
        let bins: Vec<CoverageBin> = (0..200_000i64)
            .map(|i| CoverageBin {
                start: i * 10 + 1,
                end: (i + 1) * 10,
                min_depth: 10,
                samples: RoaringBitmap::from_iter([1]),
            })
            .collect();
        let bytes = encode_coverage("chr1", &bins).unwrap();
        for (start, end) in [
            (1, 10),
            (655_355, 655_375),
            (1_999_991, 2_000_000),
            (900_001, 1_300_000),
        ] {
            let want: Vec<&CoverageBin> = bins
                .iter()
                .filter(|b| b.end >= start && b.start <= end)
                .collect();
            let got = decode_coverage("t", bytes.clone(), start, end).unwrap();
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "{start}-{end}");
        }
    }
}
