//! Writes variant fragments as Parquet: one batch of rows at once ([`encode_fragment`]) or a
//! stream of them ([`FragmentWriter`], for compaction across batches), with the row groups,
//! compression and statistics every fragment has.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Result, StoreError};
use crate::fragment_schema::{COUNT_COLUMNS, FORMAT_VERSION_KEY, fragment_schema};
use crate::genotype_bitmaps::BITMAP_COLUMNS;
use crate::log_entry::{ExtraColumn, FORMAT_VERSION};

/// Rows per Parquet row group: small enough that position predicates skip most of a fragment.
pub const ROW_GROUP_ROWS: usize = 2048;

/// zstd level of fragment columns: at 6 the N=100,000 benchmark store is 12% smaller than at
/// level 1, at no measurable ingest cost.
const ZSTD_LEVEL: i32 = 6;

/// A finished fragment: the Parquet bytes and what the log entry records about them.
#[derive(Debug, Clone)]
pub struct EncodedFragment {
    /// The contig.
    pub contig: String,
    /// Parquet file content.
    pub parquet: bytes::Bytes,
    /// Row count.
    pub rows: u64,
    /// Smallest `pos`.
    pub min_pos: i64,
    /// Largest `pos`.
    pub max_pos: i64,
    /// Largest `end_pos`.
    pub max_end: i64,
    /// Extra columns present.
    pub extras: Vec<ExtraColumn>,
}

/// Encodes `batch` (rows of one contig in fragment order, schema [`fragment_schema`] of
/// `extras`) as a fragment's Parquet file; `purge` uses it to write fragments back.
pub fn encode_fragment(
    contig: &str,
    batch: RecordBatch,
    extras: Vec<ExtraColumn>,
) -> Result<EncodedFragment> {
    let mut writer = FragmentWriter::new(contig, extras)?;
    writer.write(&batch)?;
    writer.finish()
}

/// One fragment written a batch of rows at a time (rows of one contig, in fragment order:
/// by position, then REF and ALT), held in memory until [`FragmentWriter::finish`].
pub struct FragmentWriter {
    contig: String,
    extras: Vec<ExtraColumn>,
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
    /// `(min pos, max pos, max end_pos)` so far.
    positions: Option<(i64, i64, i64)>,
}

impl std::fmt::Debug for FragmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragmentWriter")
            .field("contig", &self.contig)
            .field("rows", &self.rows)
            .finish()
    }
}

impl FragmentWriter {
    /// A new fragment of `contig` with the typed INFO columns `extras`.
    pub fn new(contig: &str, extras: Vec<ExtraColumn>) -> Result<Self> {
        let schema = fragment_schema(&extras);
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties()))
            .map_err(|source| parquet_error(contig, source))?;
        Ok(Self {
            contig: contig.to_string(),
            extras,
            schema,
            writer,
            rows: 0,
            positions: None,
        })
    }

    /// The contig it holds.
    pub fn contig(&self) -> &str {
        &self.contig
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// About the bytes of the file so far (encoded row groups and the one being built).
    pub fn bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// The largest position written so far.
    pub fn last_pos(&self) -> Option<i64> {
        self.positions.map(|(_, max, _)| max)
    }

    /// Appends `batch`: the fragment schema's columns (by position; field names and types
    /// must match), rows of this contig following the rows written before.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()).map_err(
            |source| StoreError::Arrow {
                context: format!("writing a fragment of {}", self.contig),
                source,
            },
        )?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let column = |i: usize| batch.column(i).as_primitive::<Int64Type>();
        let (pos, end) = (column(1), column(2));
        let min = arrow::compute::min(pos).unwrap_or(i64::MAX);
        let max = arrow::compute::max(pos).unwrap_or(i64::MIN);
        let max_end = arrow::compute::max(end).unwrap_or(i64::MIN);
        self.positions = Some(match self.positions {
            None => (min, max, max_end),
            Some((a, b, c)) => (a.min(min), b.max(max), c.max(max_end)),
        });
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(&batch)
            .map_err(|source| parquet_error(&self.contig, source))
    }

    /// The finished file and what its log entry records.
    pub fn finish(self) -> Result<EncodedFragment> {
        let parquet = self
            .writer
            .into_inner()
            .map_err(|source| parquet_error(&self.contig, source))?;
        let (min_pos, max_pos, max_end) = self.positions.unwrap_or((0, 0, 0));
        Ok(EncodedFragment {
            contig: self.contig,
            parquet: parquet.into(),
            rows: self.rows,
            min_pos,
            max_pos,
            max_end,
            extras: self.extras,
        })
    }
}

fn parquet_error(contig: &str, source: parquet::errors::ParquetError) -> StoreError {
    StoreError::Parquet {
        path: format!("new fragment of {contig}"),
        source,
    }
}

fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FORMAT_VERSION_KEY.to_string(),
            FORMAT_VERSION.to_string(),
        )]));
    for name in BITMAP_COLUMNS.iter().chain(["gt_exceptions"].iter()) {
        let path = ColumnPath::from(*name);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    for name in COUNT_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    builder.build()
}
