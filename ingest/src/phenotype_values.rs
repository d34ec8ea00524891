//! Reading phenotype tables: TSV/CSV text (quoted CSV fields) or Parquet rendered as text,
//! null markers, and column types inferred from the values.

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

/// A text table: header and rows of cells, with the 1-based line of each row.
pub(crate) struct TextTable {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<(u64, Vec<Option<String>>)>,
}

pub(crate) fn is_null(cell: &str) -> bool {
    matches!(cell, "" | "NA" | ".")
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
pub(crate) fn split_csv(line: &str) -> Vec<String> {
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

pub(crate) fn read_text(file: &str, text: &str, delimiter: char) -> Result<TextTable> {
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
pub(crate) fn read_parquet(file: &str, bytes: bytes::Bytes) -> Result<TextTable> {
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

pub(crate) fn infer(values: &[&str]) -> ColumnType {
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

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "TRUE" | "True" => Some(true),
        "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub(crate) fn parse_date(v: &str) -> Option<i32> {
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
    }
}
