//! The rows of one partition of a `variants` scan, streamed: each batch's fragments are read a
//! row group at a time, in (contig, position) order, and the rows of all batches are merged
//! window by window. A window ends just before the smallest last key any batch with more to
//! read holds, so every site in it is complete in every batch. A batch's row groups are read in
//! slices of the window's share (only the pages holding a slice are fetched), so memory is
//! about one window, whatever the region or the number of batches.

use std::collections::VecDeque;
use std::sync::Arc;

use cohortdb_store::StoreLocation;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use roaring::RoaringBitmap;

use crate::rows::batch_merge::{BatchRows, merge_batches};
use crate::rows::fragment_reader::{FooterCache, read_rows};
use crate::rows::reference_blocks::ReferenceBlocks;
use crate::rows::scan_plan::{KeyRange, ScanPlan};

/// A merge window holds about the session's batch size in stored rows (8,192 by default),
/// over all batches, and about this many bytes per row of it (8 MiB by default, as stored,
/// uncompressed): the merging cursors of one partition read their row groups in slices of
/// their share, so that the rows held while merging do not grow with the number of batches.
const WINDOW_BYTES_PER_ROW: usize = 1024;

/// The fewest rows a merging cursor reads at once (or the window, when smaller): smaller slices
/// would decode the same data page again for each.
const MIN_SLICE_ROWS: usize = 256;

/// What every partition of one scan shares.
#[derive(Debug)]
pub(crate) struct ScanSource {
    pub plan: Arc<ScanPlan>,
    pub location: StoreLocation,
    pub footers: Arc<FooterCache>,
    /// The columns read (the projection, the merge keys and what merged columns are computed
    /// from), in table order.
    pub read_schema: SchemaRef,
    /// The columns produced.
    pub output_schema: SchemaRef,
}

/// A reader of one chain of a batch's fragments (fragments that do not overlap, in order).
struct Cursor {
    batch: usize,
    /// (fragment, row group, first row) still to read, in order.
    queue: VecDeque<(usize, usize, usize)>,
    /// Rows read and not yet merged, ordered by key.
    buffer: Option<RecordBatch>,
}

/// The stream state of one partition.
pub(crate) struct PartitionRows {
    source: Arc<ScanSource>,
    range: KeyRange,
    cursors: Vec<Cursor>,
    blocks: Option<ReferenceBlocks>,
    /// Rows still allowed by the scan's limit.
    remaining: usize,
    /// About the most stored rows a merge window holds.
    window_rows: usize,
    /// About the most bytes a cursor reads at once.
    slice_bytes: usize,
}

impl PartitionRows {
    /// The rows of `partition`, merged in windows of about `window_rows` stored rows; nothing
    /// is read before the first call to `next`.
    pub fn new(source: Arc<ScanSource>, partition: usize, window_rows: usize) -> Result<Self> {
        let window_rows = window_rows.max(1);
        let plan = &source.plan;
        let range = plan.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("variants scan has no partition {partition}"))
        })?;
        let mut cursors = Vec::new();
        for (b, batch) in plan.batches.iter().enumerate() {
            // Chains: fragments of one batch that overlap (in key order) are read apart.
            let mut order: Vec<usize> = (0..batch.fragments.len()).collect();
            let key = |f: usize, last: bool| {
                let file = &batch.fragments[f].file;
                let pos = match last {
                    false => file.min_pos.unwrap_or(i64::MIN),
                    true => file.max_pos.unwrap_or(i64::MAX),
                };
                (file.contig.clone().unwrap_or_default(), pos)
            };
            order.sort_by_key(|&f| key(f, false));
            let mut chains: Vec<Vec<usize>> = Vec::new();
            for f in order {
                match chains
                    .iter_mut()
                    .find(|c| c.last().is_some_and(|&l| key(l, true) < key(f, false)))
                {
                    Some(chain) => chain.push(f),
                    None => chains.push(vec![f]),
                }
            }
            for chain in chains {
                let queue: VecDeque<(usize, usize, usize)> = chain
                    .into_iter()
                    .flat_map(|f| {
                        let fragment = &batch.fragments[f];
                        fragment
                            .row_groups
                            .iter()
                            .filter(|g| fragment.overlaps(g, &range))
                            .map(move |g| (f, g.index, 0))
                    })
                    .collect();
                if !queue.is_empty() {
                    cursors.push(Cursor {
                        batch: b,
                        queue,
                        buffer: None,
                    });
                }
            }
        }
        // Unmerged rows are read a row group at a time (one is held at once); merging cursors
        // are read in slices of their share of a window.
        let slice_bytes = match plan.merge {
            true => window_rows.saturating_mul(WINDOW_BYTES_PER_ROW) / cursors.len().max(1),
            false => usize::MAX,
        };
        Ok(Self {
            remaining: plan.limit.unwrap_or(usize::MAX),
            window_rows,
            slice_bytes,
            source,
            range,
            cursors,
            blocks: None,
        })
    }

    /// The next output batch, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<RecordBatch>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let rows = match self.source.plan.merge {
            true => self.next_window().await?,
            false => self.next_stored().await?,
        };
        let Some(rows) = rows else { return Ok(None) };
        let rows = rows.slice(0, rows.num_rows().min(self.remaining));
        self.remaining -= rows.num_rows();
        let columns = self
            .source
            .output_schema
            .fields()
            .iter()
            .map(|f| rows.schema().index_of(f.name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let out = rows.project(&columns)?;
        Ok(Some(RecordBatch::try_new_with_options(
            self.source.output_schema.clone(),
            out.columns().to_vec(),
            &datafusion::arrow::array::RecordBatchOptions::new()
                .with_row_count(Some(out.num_rows())),
        )?))
    }

    /// Rows as stored, a row group at a time.
    async fn next_stored(&mut self) -> Result<Option<RecordBatch>> {
        for c in 0..self.cursors.len() {
            while !self.cursors[c].queue.is_empty() {
                let rows = self.read_next(c).await?;
                if rows.num_rows() > 0 {
                    return Ok(Some(rows));
                }
            }
        }
        Ok(None)
    }

    /// The next window of merged rows.
    async fn next_window(&mut self) -> Result<Option<RecordBatch>> {
        if self.blocks.is_none() {
            self.blocks = Some(self.load_blocks().await?);
        }
        loop {
            for c in 0..self.cursors.len() {
                while buffered(&self.cursors[c]) == 0 && !self.cursors[c].queue.is_empty() {
                    let rows = self.read_next(c).await?;
                    self.cursors[c].buffer = Some(rows);
                }
            }
            if self.cursors.iter().all(|c| buffered(c) == 0) {
                return Ok(None);
            }
            // Rows before the smallest last key of a batch with more to read are complete.
            let bound = self
                .cursors
                .iter()
                .filter(|c| !c.queue.is_empty() && buffered(c) > 0)
                .filter_map(|c| c.buffer.as_ref().map(|b| key_at(b, b.num_rows() - 1)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .min();
            let mut takes = self.takes(bound.as_ref())?;
            // A window holds at most about `window_rows` stored rows (fewer under a small limit):
            // it ends before the cap-th row of any batch that would give more, when that still
            // leaves rows to merge. The merge's memory is then bounded by the window, not by
            // the number of batches times a row group.
            let per_cursor = (self.window_rows / self.cursors.len().max(1))
                .max(1)
                .min(self.remaining);
            let cap = self
                .cursors
                .iter()
                .zip(&takes)
                .filter(|(_, n)| **n > per_cursor)
                .filter_map(|(c, _)| c.buffer.as_ref().map(|b| key_at(b, per_cursor)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .min();
            if let Some(cap) = cap {
                let capped = self.takes(Some(&cap))?;
                if capped.iter().any(|&n| n > 0) {
                    takes = capped;
                }
            }
            if takes.iter().all(|&n| n == 0) {
                // Every buffered row is at or after the bound: read on where it ends.
                let Some(bound) = bound else { return Ok(None) };
                for c in 0..self.cursors.len() {
                    let ends_at_bound = match &self.cursors[c].buffer {
                        Some(b) if b.num_rows() > 0 && !self.cursors[c].queue.is_empty() => {
                            key_at(b, b.num_rows() - 1)? == bound
                        }
                        _ => false,
                    };
                    if ends_at_bound {
                        let more = self.read_next(c).await?;
                        let cursor = &mut self.cursors[c];
                        let held = cursor.buffer.take().into_iter().chain([more]);
                        cursor.buffer = Some(concat_batches(
                            &self.source.read_schema,
                            &held.collect::<Vec<_>>(),
                        )?);
                    }
                }
                continue;
            }
            return self.merge_taken(&takes).map(Some);
        }
    }

    /// How many buffered rows of each cursor come before `bound` (all without one).
    fn takes(&self, bound: Option<&(String, i64)>) -> Result<Vec<usize>> {
        self.cursors
            .iter()
            .map(|c| match (&c.buffer, bound) {
                (None, _) => Ok(0),
                (Some(b), None) => Ok(b.num_rows()),
                (Some(b), Some(bound)) => rows_before(b, bound),
            })
            .collect()
    }

    /// Merges the first `takes[c]` buffered rows of each cursor, removing them.
    fn merge_taken(&mut self, takes: &[usize]) -> Result<RecordBatch> {
        let plan = &self.source.plan;
        let schema = &self.source.read_schema;
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); plan.batches.len()];
        for (cursor, &n) in self.cursors.iter_mut().zip(takes) {
            let Some(buffer) = cursor.buffer.take() else {
                continue;
            };
            parts[cursor.batch].push(buffer.slice(0, n));
            cursor.buffer = Some(buffer.slice(n, buffer.num_rows() - n));
        }
        let mut batches = Vec::with_capacity(plan.batches.len());
        for (batch, parts) in plan.batches.iter().zip(parts) {
            let mut samples = RoaringBitmap::new();
            if let Some([start, end]) = batch.samples {
                samples.insert_range(start..end);
            }
            batches.push(BatchRows {
                rows: concat_batches(schema, &parts)?,
                samples: Arc::new(samples),
                missing_as_ref: batch.missing_as_ref,
            });
        }
        let blocks = self.blocks.as_ref().ok_or_else(|| {
            DataFusionError::Internal("reference blocks read before merging".into())
        })?;
        merge_batches(schema, &batches, blocks)
    }

    /// Reads the next slice of cursor `c`: its rows in this partition's range, in the read
    /// schema.
    async fn read_next(&mut self, c: usize) -> Result<RecordBatch> {
        let source = &self.source;
        let cursor = &mut self.cursors[c];
        let Some((f, group_index, start)) = cursor.queue.pop_front() else {
            return Ok(RecordBatch::new_empty(source.read_schema.clone()));
        };
        let file = &source.plan.batches[cursor.batch].fragments[f].file;
        let footer = source
            .footers
            .footer(&source.location, file)
            .await
            .map_err(external)?;
        let stored = footer.schema();
        let present: Vec<&str> = source
            .read_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|name| stored.index_of(name).is_ok())
            .collect();
        let group = footer.metadata().row_groups().get(group_index);
        let group_rows = group.map_or(0, |g| g.num_rows() as usize);
        let min_rows = MIN_SLICE_ROWS.min(self.window_rows);
        let end = group.map_or(0, |g| {
            slice_end(g, &present, start, self.slice_bytes, min_rows)
        });
        if end < group_rows {
            cursor.queue.push_front((f, group_index, end));
        }
        let rows = read_rows(
            &source.location,
            file,
            &footer,
            group_index,
            start..end,
            &present,
        )
        .await
        .map_err(external)?;
        let rows = conform(&rows, &source.read_schema)?;
        if self.range.is_all() {
            return Ok(rows);
        }
        let (contig, pos) = keys(&rows)?;
        let keep: BooleanArray = (0..rows.num_rows())
            .map(|r| Some(self.range.contains(contig.value(r), pos.value(r))))
            .collect();
        Ok(filter_record_batch(&rows, &keep)?)
    }

    /// The reference blocks of the contigs this partition reads (none when no batch has any).
    async fn load_blocks(&self) -> Result<ReferenceBlocks> {
        let plan = &self.source.plan;
        if plan.block_files.is_empty() {
            return Ok(ReferenceBlocks::default());
        }
        let mut contigs: Vec<String> = plan
            .batches
            .iter()
            .flat_map(|b| &b.fragments)
            .filter_map(|f| f.file.contig.clone())
            .collect();
        contigs.sort();
        contigs.dedup();
        let regions: Vec<crate::region::Region> = contigs
            .into_iter()
            .map(|contig| crate::region::Region {
                contig,
                start: 1,
                end: i64::MAX,
            })
            .collect();
        crate::rows::reference_blocks::load(&self.source.location, &plan.block_files, &regions)
            .await
            .map_err(external)
    }
}

/// Where a slice of row group `group` that starts at row `start` ends: about `slice_bytes` of
/// the `columns` read (as stored, uncompressed), at least `min_rows` rows, at most the group.
fn slice_end(
    group: &parquet::file::metadata::RowGroupMetaData,
    columns: &[&str],
    start: usize,
    slice_bytes: usize,
    min_rows: usize,
) -> usize {
    let rows = group.num_rows().max(0) as usize;
    let bytes: usize = group
        .columns()
        .iter()
        .filter(|c| columns.contains(&c.column_path().string().as_str()))
        .map(|c| c.uncompressed_size().max(0) as usize)
        .sum();
    let slice = match bytes {
        0 => rows,
        bytes => (slice_bytes as u128 * rows as u128 / bytes as u128) as usize,
    };
    start.saturating_add(slice.max(min_rows)).min(rows)
}

fn external(e: crate::error::EngineError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn buffered(cursor: &Cursor) -> usize {
    cursor.buffer.as_ref().map_or(0, RecordBatch::num_rows)
}

fn keys(
    rows: &RecordBatch,
) -> Result<(
    &datafusion::arrow::array::StringArray,
    &datafusion::arrow::array::Int64Array,
)> {
    let column = |name: &str| {
        rows.column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("variants scan read no {name}")))
    };
    Ok((
        column("contig")?.as_string::<i32>(),
        column("pos")?.as_primitive::<Int64Type>(),
    ))
}

fn key_at(rows: &RecordBatch, row: usize) -> Result<(String, i64)> {
    let (contig, pos) = keys(rows)?;
    Ok((contig.value(row).to_string(), pos.value(row)))
}

/// How many leading rows of `rows` (ordered by key) come before `bound`.
fn rows_before(rows: &RecordBatch, bound: &(String, i64)) -> Result<usize> {
    let (contig, pos) = keys(rows)?;
    let (mut lo, mut hi) = (0, rows.num_rows());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if (contig.value(mid), pos.value(mid)) < (bound.0.as_str(), bound.1) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// `rows` in `schema`: columns a fragment lacks (INFO fields another batch has) are null, and
/// types follow the table's.
fn conform(rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> Result<ArrayRef> {
            Ok(match rows.column_by_name(field.name()) {
                Some(c) if c.data_type() == field.data_type() => c.clone(),
                Some(c) => cast(c, field.data_type())?,
                None => new_null_array(field.data_type(), rows.num_rows()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn keyed(rows: &[(&str, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("contig", DataType::Utf8, false),
            Field::new("pos", DataType::Int64, false),
        ]));
        let contigs: StringArray = rows.iter().map(|r| Some(r.0)).collect();
        let pos: Int64Array = rows.iter().map(|r| Some(r.1)).collect();
        RecordBatch::try_new(schema, vec![Arc::new(contigs), Arc::new(pos)]).unwrap()
    }

    #[test]
    fn rows_before_a_bound_follow_contig_then_position() {
        let rows = keyed(&[
            ("chr1", 5),
            ("chr1", 9),
            ("chr1", 9),
            ("chr2", 1),
            ("chr2", 7),
        ]);
        let before = |contig: &str, pos| rows_before(&rows, &(contig.to_string(), pos)).unwrap();
        assert_eq!(before("chr1", 5), 0);
        assert_eq!(before("chr1", 9), 1, "rows at the bound are not before it");
        assert_eq!(before("chr1", 10), 3);
        assert_eq!(
            before("chr2", 0),
            3,
            "a later contig starts after every earlier one"
        );
        assert_eq!(before("chr3", 0), 5);
    }

    #[test]
    fn missing_columns_are_null_and_types_follow_the_table() {
        let rows = keyed(&[("chr1", 5)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("contig", DataType::LargeUtf8, false),
            Field::new("pos", DataType::Int64, false),
            Field::new("info_dp", DataType::Int32, true),
        ]));
        let conformed = conform(&rows, &schema).unwrap();
        assert_eq!(conformed.schema(), schema);
        assert_eq!(conformed.column(2).null_count(), 1);
    }
}
