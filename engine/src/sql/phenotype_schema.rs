//! The session's default schema: the tables a session registers, plus the store's phenotype
//! tables, each read from its Parquet file only when a query first names it (so `af` and the
//! other genotype-only operations never read them).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cohortdb_store::Store;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use roaring::RoaringBitmap;

/// `batch` (whose first column is `sample_idx`) without the rows of `withdrawn` samples.
pub(crate) fn without_withdrawn(
    batch: &RecordBatch,
    withdrawn: &RoaringBitmap,
) -> Result<RecordBatch> {
    let idx = batch.column(0).as_any().downcast_ref::<UInt32Array>();
    match idx {
        Some(idx) if !withdrawn.is_empty() => {
            let keep: BooleanArray = idx
                .iter()
                .map(|i| i.map(|i| !withdrawn.contains(i)))
                .collect();
            Ok(datafusion::arrow::compute::filter_record_batch(
                batch, &keep,
            )?)
        }
        _ => Ok(batch.clone()),
    }
}

/// `batch` (columns `sample_idx`, `sample_id`, ...) with each `sample_id` taken from
/// `registry` (columns `sample_idx`, `sample_id`, ...) by `sample_idx`.
fn with_registry_ids(batch: &RecordBatch, registry: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{StringArray, UInt32Array};
    let ids = |b: &RecordBatch| {
        b.column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .zip(b.column(1).as_any().downcast_ref::<StringArray>())
            .map(|(idx, id)| (idx.clone(), id.clone()))
            .ok_or_else(|| DataFusionError::Internal("sample_idx, sample_id expected".into()))
    };
    let (registry_idx, registry_ids) = ids(registry)?;
    let position: std::collections::HashMap<u32, usize> = registry_idx
        .values()
        .iter()
        .enumerate()
        .map(|(row, idx)| (*idx, row))
        .collect();
    let (idx, _) = ids(batch)?;
    let replaced: StringArray = idx
        .iter()
        .map(|i| {
            i.and_then(|i| position.get(&i))
                .map(|row| registry_ids.value(*row).to_string())
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[1] = Arc::new(replaced);
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Decoded phenotype tables by file path, shared by the sessions of one engine (one snapshot,
/// so a path's content never changes). Each session gets its own `MemTable` over the batches.
pub(crate) type PhenotypeCache =
    Arc<std::sync::Mutex<std::collections::HashMap<String, (SchemaRef, Vec<RecordBatch>)>>>;

/// Registered tables, and phenotype tables (name -> file path) read on first use.
#[derive(Debug)]
pub(crate) struct StoreSchema {
    registered: MemorySchemaProvider,
    store: Store,
    phenotypes: BTreeMap<String, String>,
    withdrawn: RoaringBitmap,
    cache: PhenotypeCache,
    /// Per file, the only columns to show besides `sample_idx` and `sample_id` (a project's
    /// allow-list).
    columns: Arc<BTreeMap<String, Vec<String>>>,
    /// For the record tier: the registry with pseudonymous IDs, which replace the tables'
    /// `sample_id` values.
    pseudonymous_registry: Option<RecordBatch>,
    /// Whether the tables a query names leave out `sample_idx` (the record tier's sessions).
    hide_index: bool,
}

impl StoreSchema {
    pub(crate) fn new(
        store: Store,
        phenotypes: BTreeMap<String, String>,
        withdrawn: RoaringBitmap,
        cache: PhenotypeCache,
        columns: Arc<BTreeMap<String, Vec<String>>>,
        pseudonymous_registry: Option<RecordBatch>,
    ) -> Self {
        Self {
            registered: MemorySchemaProvider::new(),
            store,
            phenotypes,
            withdrawn,
            cache,
            columns,
            pseudonymous_registry,
            hide_index: false,
        }
    }

    /// This schema, its tables without `sample_idx` when `hide`.
    pub(crate) fn hiding_indices(mut self, hide: bool) -> Self {
        self.hide_index = hide;
        self
    }

    /// A phenotype table, withdrawn samples removed: decoded once per engine.
    async fn load(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        let (schema, mut batches) = self.batches(path).await?;
        let mut schema = schema;
        if self.hide_index {
            let keep: Vec<usize> = (0..schema.fields().len())
                .filter(|&i| schema.field(i).name() != "sample_idx")
                .collect();
            schema = Arc::new(schema.project(&keep)?);
            batches = batches
                .iter()
                .map(|b| b.project(&keep))
                .collect::<std::result::Result<_, _>>()?;
        }
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    /// The decoded batches of the phenotype table at `path`, from the engine's cache.
    pub(crate) async fn batches(&self, path: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(path).cloned());
        let (schema, batches) = match cached {
            Some(hit) => hit,
            None => {
                let decoded = self.decode(path).await?;
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(path.to_string(), decoded.clone());
                }
                decoded
            }
        };
        Ok((schema, batches))
    }

    async fn decode(&self, path: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let bytes = self
            .store
            .read_file(path)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        if let Some(allowed) = self.columns.get(path) {
            // `sample_idx` and `sample_id` first, then the allowed columns in file order.
            let keep: Vec<usize> = reader
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, f)| *i < 2 || allowed.iter().any(|a| a == f.name()))
                .map(|(i, _)| i)
                .collect();
            let mask = parquet::arrow::ProjectionMask::roots(reader.parquet_schema(), keep);
            reader = reader.with_projection(mask);
        }
        let reader = reader.build()?;
        let schema = datafusion::arrow::record_batch::RecordBatchReader::schema(&reader);
        let batches = reader
            .map(|b| {
                let batch = without_withdrawn(&b?, &self.withdrawn)?;
                match &self.pseudonymous_registry {
                    Some(registry) => with_registry_ids(&batch, registry),
                    None => Ok(batch),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        // One batch, so that lookups by row (carriers) need no concatenation per request.
        let table = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
        Ok((schema, vec![table]))
    }
}

#[async_trait]
impl SchemaProvider for StoreSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.registered.table_names();
        names.extend(
            self.phenotypes
                .keys()
                .filter(|n| !self.registered.table_exist(n))
                .cloned(),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.registered.table(name).await? {
            return Ok(Some(table));
        }
        let Some(path) = self.phenotypes.get(name) else {
            return Ok(None);
        };
        let table = self.load(path).await?;
        // Kept for the rest of the session; a concurrent first use may have won the race.
        if self
            .registered
            .register_table(name.to_string(), table.clone())
            .is_err()
        {
            return self.registered.table(name).await;
        }
        Ok(Some(table))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.registered.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.registered.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.registered.table_exist(name) || self.phenotypes.contains_key(name)
    }
}
