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

/// A column type of a phenotype table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit integer.
    Integer,
    /// 64-bit float.
    Float,
    /// `true`/`false`.
    Boolean,
    /// Text.
    String,
    /// `YYYY-MM-DD`.
    Date,
}

impl std::str::FromStr for ColumnType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "integer" | "int" => Ok(Self::Integer),
            "float" | "double" => Ok(Self::Float),
            "boolean" | "bool" => Ok(Self::Boolean),
            "string" | "text" => Ok(Self::String),
            "date" => Ok(Self::Date),
            other => Err(format!(
                "unknown column type {other:?} (integer, float, boolean, string, date)"
            )),
        }
    }
}

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
}

/// A text table: header and rows of cells, with the 1-based line of each row.
struct TextTable {
    header: Vec<String>,
    rows: Vec<(u64, Vec<Option<String>>)>,
}

fn is_null(cell: &str) -> bool {
    matches!(cell, "" | "NA" | ".")
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    out.push(cell);
    out
}

fn read_text(file: &str, text: &str, delimiter: char) -> Result<TextTable> {
    let bad = |line: u64, reason: String| IngestError::Record {
        file: file.to_string(),
        location: format!("line {line}"),
        field: "row".into(),
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_end_matches('\r')));
    let split = |l: &str| -> Vec<String> {
        if delimiter == ',' {
            split_csv(l)
        } else {
            l.split(delimiter).map(str::to_string).collect()
        }
    };
    let Some((_, first)) = lines.find(|(_, l)| !l.is_empty()) else {
        return Err(bad(1, "the table is empty: no header line".into()));
    };
    let header: Vec<String> = split(first.trim_start_matches('#'))
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (number, line) in lines.filter(|(_, l)| !l.is_empty()) {
        let cells = split(line);
        if cells.len() != header.len() {
            return Err(bad(
                number,
                format!(
                    "{} cells, but the header names {} columns",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        rows.push((
            number,
            cells
                .into_iter()
                .map(|c| (!is_null(c.trim())).then(|| c.trim().to_string()))
                .collect(),
        ));
    }
    Ok(TextTable { header, rows })
}

/// Parquet input: every column rendered as text, then typed like a text table.
fn read_parquet(file: &str, bytes: bytes::Bytes) -> Result<TextTable> {
    let err = |reason: String| IngestError::Inputs {
        file: file.to_string(),
        reason,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| err(format!("not a readable Parquet file: {e}")))?
        .build()
        .map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(format!("reading Parquet: {e}")))?;
        header = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let options = arrow::util::display::FormatOptions::default();
        let formatters = batch
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| err(format!("unsupported column type: {e}")))?;
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
                .collect();
            rows.push((rows.len() as u64 + 1, cells));
        }
    }
    Ok(TextTable { header, rows })
}

fn infer(values: &[&str]) -> ColumnType {
    if values.is_empty() {
        ColumnType::String
    } else if values.iter().all(|v| v.parse::<i64>().is_ok()) {
        ColumnType::Integer
    } else if values.iter().all(|v| v.parse::<f64>().is_ok()) {
        ColumnType::Float
    } else if values.iter().all(|v| parse_bool(v).is_some()) {
        ColumnType::Boolean
    } else if values.iter().all(|v| parse_date(v).is_some()) {
        ColumnType::Date
    } else {
        ColumnType::String
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "TRUE" | "True" => Some(true),
        "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_date(v: &str) -> Option<i32> {
    let mut parts = v.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
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
        .ok_or_else(|| inputs(format!("no key column {:?} in the header", options.key)))?;
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
    let first_unknown: Vec<String> = unknown.iter().take(5).cloned().collect();
    if !unknown.is_empty() && !options.drop_unknown {
        return Err(inputs(format!(
            "{} rows have sample IDs not in the store (first: {}); nothing was stored. \
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
        .phenotype_tables()
        .filter(|(t, _)| *t == options.table)
        .map(|(_, f)| f.path.clone())
        .collect();
    let commit = Commit {
        kind: CommitKind::Phenotypes,
        add: vec![FileEntry {
            path: path.clone(),
            kind: FileKind::Phenotypes,
            rows: batch.num_rows() as u64,
            bytes: size,
            contig: None,
            min_pos: None,
            max_pos: None,
            max_end: None,
            sample_idx_end: None,
            columns: vec![],
            table: Some(options.table.clone()),
        }],
        remove: old.clone(),
        operation: serde_json::json!({"phenotypes": file, "table": options.table}),
    };
    let committed = match store.commit(&snapshot, commit).await {
        Ok(s) => s,
        Err(e) => {
            let _ = store.delete_file(&path).await;
            return Err(e.into());
        }
    };
    Ok(PhenotypeSummary {
        version: committed.state.version,
        rows: batch.num_rows() as u64,
        columns,
        unknown: (unknown.len() as u64, first_unknown),
        replaced: !old.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_inferred_and_dates_counted_from_the_epoch() {
        assert_eq!(infer(&["1", "-2"]), ColumnType::Integer);
        assert_eq!(infer(&["1", "2.5"]), ColumnType::Float);
        assert_eq!(infer(&["true", "FALSE"]), ColumnType::Boolean);
        assert_eq!(infer(&["2020-02-29"]), ColumnType::Date);
        assert_eq!(infer(&["2021-02-29"]), ColumnType::String);
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(
            split_csv(r#"a,"b,c","d""e",,"#),
            ["a", "b,c", "d\"e", "", ""]
        );
        assert!(valid_table_name("clinical_2024") && !valid_table_name("Samples"));
    }
}
