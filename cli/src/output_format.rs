//! Writing result batches as TSV, CSV, JSON lines or Parquet to standard output.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use clap::ValueEnum;

/// Output formats of `af` and `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tab-separated with a header line.
    Tsv,
    /// Comma-separated with a header line.
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file.
    Parquet,
}

/// Writes `batches` to `out`.
pub fn write_batches(
    format: OutputFormat,
    batches: &[RecordBatch],
    schema: arrow::datatypes::SchemaRef,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    match format {
        OutputFormat::Tsv | OutputFormat::Csv => {
            let sep = if format == OutputFormat::Tsv {
                "\t"
            } else {
                ","
            };
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            writeln!(out, "{}", names.join(sep))?;
            let options = FormatOptions::default().with_null(".");
            for batch in batches {
                let formatters = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()?;
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> = formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect();
                    writeln!(out, "{}", cells.join(sep))?;
                }
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            let mut buffer = Vec::new();
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema, None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
            out.write_all(&buffer)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints `batches` (with `schema` when there are none) to standard output as `format`.
pub(crate) fn print_batches(
    format: OutputFormat,
    batches: &[RecordBatch],
    schema: arrow::datatypes::SchemaRef,
) -> Result<(), Box<dyn std::error::Error>> {
    write_batches(format, batches, schema, &mut std::io::stdout().lock())
}

/// Prints one batch to standard output as `format`.
pub(crate) fn print_batch(
    format: OutputFormat,
    batch: RecordBatch,
) -> Result<(), Box<dyn std::error::Error>> {
    let schema = batch.schema();
    print_batches(format, &[batch], schema)
}

/// Runs `frame` and prints its rows to standard output as `format`.
pub(crate) async fn print_frame(
    format: OutputFormat,
    frame: datafusion::prelude::DataFrame,
) -> Result<(), Box<dyn std::error::Error>> {
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await?;
    print_batches(format, &batches, schema)
}
