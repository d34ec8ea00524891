//! The sample registry: `samples/<uuid>.parquet` files mapping `sample_idx` to `sample_id`.
//!
//! Each participant gets a dense `sample_idx: u32` when first registered; indices are never
//! reused. A registry file holds the samples one commit registered, with the input they came
//! from.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, DictionaryArray, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::commit_log::{Snapshot, Store};
use crate::error::{Result, StoreError};

/// One registered participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRecord {
    /// Dense index used in every bitmap.
    pub sample_idx: u32,
    /// The participant's pseudonymous ID from the input.
    pub sample_id: String,
    /// The input file that registered the sample.
    pub source: Arc<str>,
}

/// The schema of registry files (and of the `samples` table). `source` is dictionary-encoded
/// in memory as on disk: a batch's inputs are few, and as plain text the column was 50 MB of
/// repeated paths at 10^6 participants, most of the time it took to open a store.
pub fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sample_idx", DataType::UInt32, false),
        Field::new("sample_id", DataType::Utf8, false),
        Field::new(
            "source",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
    ]))
}

/// Encodes registry rows as Parquet.
pub fn encode_samples(samples: &[SampleRecord]) -> Result<Bytes> {
    let schema = samples_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt32Array::from_iter_values(
                samples.iter().map(|s| s.sample_idx),
            )),
            Arc::new(StringArray::from_iter_values(
                samples.iter().map(|s| s.sample_id.as_str()),
            )),
            Arc::new(
                samples
                    .iter()
                    .map(|s| &*s.source)
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ],
    )
    .map_err(|e| StoreError::Arrow {
        context: "building the sample registry".into(),
        source: e,
    })?;
    let parquet_err = |source| StoreError::Parquet {
        path: "new sample registry file".into(),
        source,
    };
    // Dense indices delta-encode to almost nothing, and unique IDs gain nothing from a
    // dictionary (with one, the index column was a quarter of a 10^6-sample registry).
    let properties = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("source"), true)
        .set_column_encoding(
            ColumnPath::from("sample_idx"),
            parquet::basic::Encoding::DELTA_BINARY_PACKED,
        )
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, Some(properties)).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    Ok(writer.into_inner().map_err(parquet_err)?.into())
}

/// All samples registered at `snapshot`, ordered by `sample_idx`.
pub async fn read_samples(store: &Store, snapshot: &Snapshot) -> Result<Vec<SampleRecord>> {
    Ok(records_of(&read_sample_batch(store, snapshot).await?))
}

/// The registry at `snapshot` as one batch of [`samples_schema`], ordered by `sample_idx`
/// (what the `samples` table serves, without copying).
pub async fn read_sample_batch(store: &Store, snapshot: &Snapshot) -> Result<RecordBatch> {
    let mut batches = Vec::new();
    for file in snapshot.state.sample_files() {
        let bytes = store.read_file(&file.path).await?;
        batches.extend(decode_batches(&file.path, bytes)?);
    }
    let arrow_err = |e| StoreError::Arrow {
        context: "reading the sample registry".into(),
        source: e,
    };
    let batch = match batches.len() {
        1 => batches.remove(0),
        _ => arrow::compute::concat_batches(&samples_schema(), &batches).map_err(arrow_err)?,
    };
    let idx = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt32Array>()
        .map(|a| a.values().windows(2).all(|w| w[0] < w[1]))
        .unwrap_or(true);
    if idx {
        return Ok(batch);
    }
    let order = arrow::compute::sort_to_indices(batch.column(0), None, None).map_err(arrow_err)?;
    arrow::compute::take_record_batch(&batch, &order).map_err(arrow_err)
}

/// The records of a registry batch; inputs' names are shared, not copied per sample.
pub fn records_of(batch: &RecordBatch) -> Vec<SampleRecord> {
    let column = |i: usize| batch.column(i).as_any();
    let (Some(idx), Some(ids), Some(sources)) = (
        column(0).downcast_ref::<UInt32Array>(),
        column(1).downcast_ref::<StringArray>(),
        column(2).downcast_ref::<DictionaryArray<Int32Type>>(),
    ) else {
        return Vec::new();
    };
    let Some(names) = sources.values().as_string_opt::<i32>() else {
        return Vec::new();
    };
    let names: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.unwrap_or(""))).collect();
    (0..batch.num_rows())
        .map(|i| SampleRecord {
            sample_idx: idx.value(i),
            sample_id: ids.value(i).to_string(),
            source: names
                .get(sources.keys().value(i) as usize)
                .cloned()
                .unwrap_or_else(|| Arc::from("")),
        })
        .collect()
}

/// Reads one registry file, checking its columns (types, no nulls in index and ID).
fn decode_batches(path: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let options = ArrowReaderOptions::new().with_schema(samples_schema());
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .map_err(parquet_err)?;
    // One batch per row group (a registry file is one), not one per 1,024 rows: at 10^6
    // participants the small batches and their concatenation were most of opening a store.
    let rows = builder.metadata().file_metadata().num_rows().max(1) as usize;
    let reader = builder.with_batch_size(rows).build().map_err(parquet_err)?;
    let corrupt = || StoreError::Corrupt {
        path: path.to_string(),
        what: "sample registry".into(),
        reason: "unexpected column types or missing values".into(),
    };
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::Arrow {
            context: format!("reading {path}"),
            source: e,
        })?;
        let types_ok = batch.num_columns() == 3
            && batch.column(0).as_any().is::<UInt32Array>()
            && batch.column(1).as_any().is::<StringArray>()
            && batch.column(2).as_any().is::<DictionaryArray<Int32Type>>();
        if !types_ok || batch.column(0).null_count() > 0 || batch.column(1).null_count() > 0 {
            return Err(corrupt());
        }
        let batch = RecordBatch::try_new(samples_schema(), batch.columns().to_vec())
            .map_err(|_| corrupt())?;
        out.push(batch);
    }
    Ok(out)
}

/// Looks up sample IDs.
#[derive(Debug, Clone, Default)]
pub struct SampleIndex {
    by_id: HashMap<String, u32>,
}

impl SampleIndex {
    /// Indexes `samples` by ID.
    pub fn new(samples: &[SampleRecord]) -> Self {
        Self {
            by_id: samples
                .iter()
                .map(|s| (s.sample_id.clone(), s.sample_idx))
                .collect(),
        }
    }

    /// The index of `sample_id`, if registered.
    pub fn get(&self, sample_id: &str) -> Option<u32> {
        self.by_id.get(sample_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_files_round_trip() {
        let samples = vec![
            SampleRecord {
                sample_idx: 0,
                sample_id: "HG00096".into(),
                source: "a.vcf".into(),
            },
            SampleRecord {
                sample_idx: 1,
                sample_id: "HG00097".into(),
                source: "a.vcf".into(),
            },
        ];
        let bytes = encode_samples(&samples).unwrap();
        let batches = decode_batches("x", bytes).unwrap();
        let back = records_of(&batches[0]);
        assert_eq!(back, samples);
        assert!(Arc::ptr_eq(&back[0].source, &back[1].source));
        assert_eq!(SampleIndex::new(&back).get("HG00097"), Some(1));
    }
}
