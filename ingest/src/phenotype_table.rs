//! Phenotype tables: TSV, CSV or Parquet keyed by sample ID, typed, checked against the sample
//! registry and stored as one Parquet file per table (`phenotypes/<table>/<uuid>.parquet`).
//! Re-ingesting a table replaces it in one commit; older snapshots keep reading the old file.
//!
//! Stored columns: `sample_idx` (UInt32), `sample_id`, then the input's other columns with
//! inferred or given types (integer = Int64, float = Float64, boolean, string, date = Date32).
//! `NA`, `.` and empty cells are nulls.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::sample_registry::read_samples;
use cohortdb_store::{Commit, Store};
use parquet::arrow::ArrowWriter;

use crate::error::{IngestError, Result};
pub use crate::phenotype_values::ColumnType;
use crate::phenotype_values::{infer, parse_bool, parse_date, read_parquet, read_text};

/// How to ingest a phenotype table.
#[derive(Debug, Clone)]
pub struct PhenotypeOptions {
    /// Table name in SQL (`phenotypes` by default).
    pub table: String,
    /// The column holding sample IDs.
    pub key: String,
    /// Types given for some columns; the others are inferred.
    pub types: Vec<(String, ColumnType)>,
    /// Store the table without rows whose sample ID is not registered (they are reported)
    /// instead of refusing it.
    pub drop_unknown: bool,
}

impl Default for PhenotypeOptions {
    fn default() -> Self {
        Self {
            table: "phenotypes".into(),
            key: "sample_id".into(),
            types: Vec::new(),
            drop_unknown: false,
        }
    }
}

/// What a phenotype ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhenotypeSummary {
    /// The committed version.
    pub version: u64,
    /// Rows stored.
    pub rows: u64,
    /// Columns stored besides `sample_idx` and `sample_id`, with their types.
    pub columns: Vec<(String, ColumnType)>,
    /// Rows dropped for unknown sample IDs, and the first few of those IDs.
    pub unknown: (u64, Vec<String>),
    /// Whether an older version of the table was replaced.
    pub replaced: bool,
    /// Columns stored as text although most of their values are numbers: why, for the user
    /// to see (a stray `unknown` in an age column).
    pub text_columns: Vec<String>,
}

/// How many unknown sample IDs an ingest error names before it counts the rest.
const UNKNOWN_NAMED: usize = 20;

/// The ID column to suggest for `--key` when the default is missing: the first whose name
/// says sample or ID, else the first.
fn likely_key(header: &[String]) -> Option<&String> {
    let says_id = |h: &&String| {
        let h = h.to_ascii_lowercase();
        h.contains("sample") || h == "id" || h.ends_with("_id") || h == "iid"
    };
    header.iter().find(says_id).or_else(|| header.first())
}

/// Why a column of mostly numbers was inferred as text: the first value that is not one.
fn text_column_note(name: &str, cells: &[(u64, &str)]) -> Option<String> {
    let numeric = cells
        .iter()
        .filter(|(_, v)| v.parse::<f64>().is_ok())
        .count();
    let (line, value) = cells.iter().find(|(_, v)| v.parse::<f64>().is_err())?;
    (numeric > 0 && numeric >= cells.len() - numeric).then(|| {
        format!(
            "column {name:?} is stored as text: {} of its {} values are not numbers \
             ({value:?} on line {line}); write missing values as NA or empty, or give \
             --types {name}=float to refuse such values",
            cells.len() - numeric,
            cells.len()
        )
    })
}

fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !matches!(name, "variants" | "samples" | "genotypes")
}

/// Ingests the table in `file` (`.tsv`/`.txt` tab-separated, `.csv`, `.parquet`) as one commit.
pub async fn ingest_phenotypes(
    store: &Store,
    file: &str,
    options: &PhenotypeOptions,
) -> Result<PhenotypeSummary> {
    let inputs = |reason: String| IngestError::Inputs {
        file: file.to_string(),
        reason,
    };
    if !valid_table_name(&options.table) {
        return Err(inputs(format!(
            "table name {:?} must be lower-case letters, digits and _, and not variants, samples or genotypes",
            options.table
        )));
    }
    let bytes = std::fs::read(file).map_err(|source| IngestError::Io {
        file: file.to_string(),
        source,
    })?;
    let table = if file.ends_with(".parquet") {
        read_parquet(file, bytes.into())?
    } else {
        let text = String::from_utf8(bytes).map_err(|_| inputs("not UTF-8 text".into()))?;
        let delimiter = if file.ends_with(".csv") { ',' } else { '\t' };
        read_text(file, &text, delimiter)?
    };
    let key = table
        .header
        .iter()
        .position(|h| *h == options.key)
        .ok_or_else(|| {
            let suggestion = likely_key(&table.header)
                .map(|k| format!("; name the sample ID column with --key, e.g. --key {k}"))
                .unwrap_or_default();
            inputs(format!(
                "no key column {:?} in the header; its columns: {}{suggestion}",
                options.key,
                table.header.join(", ")
            ))
        })?;
    for (name, _) in &options.types {
        if !table.header.contains(name) {
            return Err(inputs(format!(
                "--types names {name:?}, which is not a column"
            )));
        }
    }

    // Rows by registered sample.
    let snapshot = store.snapshot().await?;
    let registry: HashMap<String, u32> = read_samples(store, &snapshot)
        .await?
        .into_iter()
        .map(|s| (s.sample_id, s.sample_idx))
        .collect();
    let mut unknown = Vec::new();
    let mut seen = HashMap::new();
    let mut kept = Vec::new();
    for (line, cells) in &table.rows {
        let Some(id) = cells[key].as_deref() else {
            return Err(IngestError::Record {
                file: file.to_string(),
                location: format!("line {line}"),
                field: options.key.clone(),
                reason: "the sample ID is missing".into(),
            });
        };
        match registry.get(id) {
            None => unknown.push(id.to_string()),
            Some(&idx) => {
                if let Some(first) = seen.insert(id.to_string(), *line) {
                    return Err(IngestError::Record {
                        file: file.to_string(),
                        location: format!("line {line}"),
                        field: options.key.clone(),
                        reason: format!("sample {id:?} already has a row (line {first})"),
                    });
                }
                kept.push((idx, *line, cells));
            }
        }
    }
    let first_unknown: Vec<String> = unknown.iter().take(UNKNOWN_NAMED).cloned().collect();
    if !unknown.is_empty() && !options.drop_unknown {
        let more = match unknown.len() - first_unknown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(inputs(format!(
            "{} rows have sample IDs not in the store: {}{more}; nothing was stored. \
             Ingest their genotypes first, or pass --drop-unknown to store the table without them",
            unknown.len(),
            first_unknown.join(", ")
        )));
    }
    kept.sort_by_key(|(idx, _, _)| *idx);

    // Typed columns.
    let mut fields = vec![
        Field::new("sample_idx", DataType::UInt32, false),
        Field::new("sample_id", DataType::Utf8, false),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(kept.iter().map(|k| k.0))),
        Arc::new(arrow::array::StringArray::from_iter_values(
            kept.iter().map(|k| k.2[key].as_deref().unwrap_or_default()),
        )),
    ];
    let mut columns = Vec::new();
    let mut text_columns = Vec::new();
    for (c, name) in table.header.iter().enumerate() {
        if c == key || name == "sample_idx" || name == "sample_id" {
            continue;
        }
        let values: Vec<&str> = kept.iter().filter_map(|k| k.2[c].as_deref()).collect();
        let given = options
            .types
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t);
        let kind = given.unwrap_or_else(|| infer(&values));
        let bad = |line: u64, v: &str| IngestError::Record {
            file: file.to_string(),
            location: format!("line {line}"),
            field: name.clone(),
            reason: format!("{v:?} is not a {kind:?}").to_lowercase(),
        };
        let cells = kept.iter().map(|k| (k.1, k.2[c].as_deref()));
        let (data_type, array): (DataType, ArrayRef) = match kind {
            ColumnType::Integer => {
                let mut b = Int64Builder::new();
                for (line, v) in cells {
                    b.append_option(v.map(|v| v.parse().map_err(|_| bad(line, v))).transpose()?);
                }
                (DataType::Int64, Arc::new(b.finish()))
            }
            ColumnType::Float => {
                let mut b = Float64Builder::new();
                for (line, v) in cells {
                    b.append_option(v.map(|v| v.parse().map_err(|_| bad(line, v))).transpose()?);
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::new();
                for (line, v) in cells {
                    b.append_option(
                        v.map(|v| parse_bool(v).ok_or_else(|| bad(line, v)))
                            .transpose()?,
                    );
                }
                (DataType::Boolean, Arc::new(b.finish()))
            }
            ColumnType::Date => {
                let mut b = Date32Builder::new();
                for (line, v) in cells {
                    b.append_option(
                        v.map(|v| parse_date(v).ok_or_else(|| bad(line, v)))
                            .transpose()?,
                    );
                }
                (DataType::Date32, Arc::new(b.finish()))
            }
            ColumnType::String => {
                if given.is_none() {
                    let present: Vec<(u64, &str)> = kept
                        .iter()
                        .filter_map(|k| Some((k.1, k.2[c].as_deref()?)))
                        .collect();
                    text_columns.extend(text_column_note(name, &present));
                }
                let mut b = StringBuilder::new();
                for (_, v) in cells {
                    b.append_option(v);
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
        columns.push((name.clone(), kind));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| inputs(format!("building the table: {e}")))?;
    let parquet_err = |e: parquet::errors::ParquetError| inputs(format!("writing Parquet: {e}"));
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    let parquet = writer.into_inner().map_err(parquet_err)?;

    let path = format!(
        "phenotypes/{}/{}.parquet",
        options.table,
        uuid::Uuid::new_v4()
    );
    let size = parquet.len() as u64;
    store.put_new_file(&path, parquet.into()).await?;
    let old: Vec<String> = snapshot
        .state
        .named_files(FileKind::Phenotypes)
        .filter(|(t, _)| *t == options.table)
        .map(|(_, f)| f.path.clone())
        .collect();
    let commit = Commit {
        kind: CommitKind::Phenotypes,
        add: vec![FileEntry {
            table: Some(options.table.clone()),
            ..FileEntry::new(
                path.clone(),
                FileKind::Phenotypes,
                batch.num_rows() as u64,
                size,
            )
        }],
        remove: old.clone(),
        withdraw: Vec::new(),
        retire: Vec::new(),
        operation: serde_json::json!({"phenotypes": file, "table": options.table}),
    };
    let committed = store.commit_or_discard(&snapshot, commit).await?;
    Ok(PhenotypeSummary {
        version: committed.state.version,
        rows: batch.num_rows() as u64,
        columns,
        unknown: (unknown.len() as u64, first_unknown),
        replaced: !old.is_empty(),
        text_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_sql_identifiers() {
        assert!(valid_table_name("clinical_2024") && !valid_table_name("Samples"));
        assert!(!valid_table_name("variants"));
    }
}
