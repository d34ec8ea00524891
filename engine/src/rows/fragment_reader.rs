//! Reading variant fragments: their Parquet footers (kept per process, a fragment never
//! changes once committed) and one row group at a time with only the columns a reader needs,
//! from whatever object store holds the store (local disk, S3, memory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cohortdb_store::StoreLocation;
use cohortdb_store::log_entry::FileEntry;
use datafusion::arrow::array::RecordBatch;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};

use crate::error::{EngineError, Result};

/// Parquet footers of fragments by path, shared by the readers of one process.
#[derive(Debug, Default)]
pub struct FooterCache {
    footers: Mutex<HashMap<String, ArrowReaderMetadata>>,
}

impl FooterCache {
    /// The footer of `file` with its offset index (where each page starts, so that a slice of
    /// a row group is read without the pages around it), read on a miss.
    pub async fn footer(
        &self,
        location: &StoreLocation,
        file: &FileEntry,
    ) -> Result<ArrowReaderMetadata> {
        if let Some(m) = self.lock().get(&file.path) {
            return Ok(m.clone());
        }
        let mut reader = FragmentReader::new(location, file);
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let metadata = ArrowReaderMetadata::load_async(&mut reader, options)
            .await
            .map_err(|e| parquet_error(file, e))?;
        self.lock().insert(file.path.clone(), metadata.clone());
        Ok(metadata)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ArrowReaderMetadata>> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.footers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads row group `row_group` of `file` (whose footer is `metadata`): the columns `columns`,
/// in that order, as one batch.
pub async fn read_row_group(
    location: &StoreLocation,
    file: &FileEntry,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    columns: &[&str],
) -> Result<RecordBatch> {
    read_rows(location, file, metadata, row_group, 0..usize::MAX, columns).await
}

/// Reads the rows `rows` (clipped to the group) of row group `row_group` of `file`: only the
/// pages holding them are fetched and decoded when the footer has an offset index.
pub async fn read_rows(
    location: &StoreLocation,
    file: &FileEntry,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    rows: std::ops::Range<usize>,
    columns: &[&str],
) -> Result<RecordBatch> {
    let schema = metadata.schema().clone();
    let indices = columns
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| parquet_error(file, parquet::errors::ParquetError::General(e.to_string())))?;
    let mask = ProjectionMask::roots(
        metadata.metadata().file_metadata().schema_descr(),
        indices.iter().copied(),
    );
    let group_rows = metadata
        .metadata()
        .row_groups()
        .get(row_group)
        .ok_or_else(|| {
            parquet_error(
                file,
                parquet::errors::ParquetError::General(format!("no row group {row_group}")),
            )
        })?
        .num_rows() as usize;
    let (start, end) = (rows.start.min(group_rows), rows.end.min(group_rows));
    let reader = FragmentReader::new(location, file);
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata.clone())
        .with_row_groups(vec![row_group])
        .with_projection(mask)
        .with_batch_size((end - start).max(1));
    if (start, end) != (0, group_rows) {
        builder = builder.with_row_selection(RowSelection::from(vec![
            RowSelector::skip(start),
            RowSelector::select(end - start),
            RowSelector::skip(group_rows - end),
        ]));
    }
    let stream = builder.build().map_err(|e| parquet_error(file, e))?;
    let batches: Vec<RecordBatch> = stream
        .try_collect()
        .await
        .map_err(|e| parquet_error(file, e))?;
    let arrow = |e: datafusion::arrow::error::ArrowError| {
        EngineError::DataFusion(datafusion::error::DataFusionError::from(e))
    };
    let mut sorted = indices;
    sorted.sort_unstable();
    let projected_schema = Arc::new(schema.project(&sorted).map_err(arrow)?);
    let projected =
        datafusion::arrow::compute::concat_batches(&projected_schema, &batches).map_err(arrow)?;
    // The projection keeps file order; put the columns in the order asked for.
    let ordered = columns
        .iter()
        .map(|name| projected.schema().index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(arrow)?;
    projected.project(&ordered).map_err(arrow)
}

/// Reads one fragment from the store's object store.
#[derive(Debug, Clone)]
struct FragmentReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl FragmentReader {
    fn new(location: &StoreLocation, file: &FileEntry) -> Self {
        Self {
            store: location.object_store.clone(),
            path: location.path(&file.path),
            size: file.bytes,
        }
    }
}

fn object_store_error(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for FragmentReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(object_store_error)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(object_store_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A fragment that cannot be read as the Parquet file the log says it is.
pub(crate) fn parquet_error(file: &FileEntry, e: parquet::errors::ParquetError) -> EngineError {
    EngineError::Store(cohortdb_store::StoreError::Corrupt {
        path: file.path.clone(),
        what: "variant fragment".into(),
        reason: e.to_string(),
    })
}
