//! The sample registry: `samples/<uuid>.parquet` files mapping `sample_idx` to `sample_id`.
//!
//! Each participant gets a dense `sample_idx: u32` when first registered; indices are never
//! reused. A registry file holds the samples one commit registered, with the input they came
//! from.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
    pub source: String,
}

/// The schema of registry files (and of the `samples` table).
pub fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sample_idx", DataType::UInt32, false),
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
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
            Arc::new(StringArray::from_iter_values(
                samples.iter().map(|s| s.source.as_str()),
            )),
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
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    Ok(writer.into_inner().map_err(parquet_err)?.into())
}

/// All samples registered at `snapshot`, ordered by `sample_idx`.
pub async fn read_samples(store: &Store, snapshot: &Snapshot) -> Result<Vec<SampleRecord>> {
    let mut samples = Vec::new();
    for file in snapshot.state.sample_files() {
        let bytes = store.read_file(&file.path).await?;
        decode_samples(&file.path, bytes, &mut samples)?;
    }
    samples.sort_by_key(|s| s.sample_idx);
    Ok(samples)
}

fn decode_samples(path: &str, bytes: Bytes, out: &mut Vec<SampleRecord>) -> Result<()> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(parquet_err)?
        .build()
        .map_err(parquet_err)?;
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::Arrow {
            context: format!("reading {path}"),
            source: e,
        })?;
        let corrupt = || StoreError::Corrupt {
            path: path.to_string(),
            what: "sample registry".into(),
            reason: "unexpected column types".into(),
        };
        let idx = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(corrupt)?;
        let ids = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(corrupt)?;
        let sources = batch
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(corrupt)?;
        for i in 0..batch.num_rows() {
            if idx.is_null(i) || ids.is_null(i) {
                return Err(corrupt());
            }
            out.push(SampleRecord {
                sample_idx: idx.value(i),
                sample_id: ids.value(i).to_string(),
                source: sources.value(i).to_string(),
            });
        }
    }
    Ok(())
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
        let mut back = Vec::new();
        decode_samples("x", bytes, &mut back).unwrap();
        assert_eq!(back, samples);
        assert_eq!(SampleIndex::new(&back).get("HG00097"), Some(1));
    }
}
