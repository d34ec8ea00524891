//! The engine over one snapshot: a DataFusion session with the store's tables and functions,
//! and the cohort operations built on it.

use std::sync::Arc;

use cohortdb_store::log_entry::FileKind;
use cohortdb_store::progress::Progress;
use cohortdb_store::sample_registry::{SampleRecord, read_sample_batch, records_of};
use cohortdb_store::{Snapshot, Store};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::common::runtime::SpawnedTask;
use roaring::RoaringBitmap;

use crate::error::{EngineError, Result};
use crate::policy::access_policy::{Access, AccessState, Tier, pseudonymous_samples};
use crate::policy::disclosure_control::{DisclosureControl, ReleaseKey, members_digest};
use crate::region::Region;
use crate::rows::site_cache::SiteCache;
use crate::sql::phenotype_schema::{PhenotypeCache, StoreSchema};

/// The most rows of a page of a paged answer (carriers) unless the operator sets another
/// maximum ([`CohortEngine::with_max_page_size`]).
pub const MAX_PAGE_SIZE: usize = 100_000;

/// A store opened at one snapshot.
#[derive(Debug, Clone)]
pub struct CohortEngine {
    pub(crate) store: Store,
    pub(crate) snapshot: Snapshot,
    pub(crate) samples: Arc<std::sync::OnceLock<Vec<SampleRecord>>>,
    pub(crate) sample_batch: RecordBatch,
    /// Phenotype tables: name -> file, read by a session only when a query names them.
    pub(crate) phenotypes: std::collections::BTreeMap<String, String>,
    /// Per phenotype file, the columns this engine's project may read (absent: all).
    pub(crate) phenotype_columns: Arc<std::collections::BTreeMap<String, Vec<String>>>,
    pub(crate) phenotype_cache: PhenotypeCache,
    pub(crate) withdrawn: RoaringBitmap,
    pub(crate) access: AccessState,
    /// Cohorts by predicate text, for this engine's view of the samples (an engine from
    /// [`CohortEngine::with_access`] starts its own: pseudonyms change what a predicate means,
    /// and an aggregate engine's entries are predicates its grammar check passed).
    pub(crate) cohort_cache:
        Arc<std::sync::Mutex<std::collections::HashMap<String, RoaringBitmap>>>,
    /// Saved list cohorts by name, resolved in this engine's view of the samples (reset with
    /// it by [`CohortEngine::with_access`]).
    pub(crate) saved_lists: Arc<std::sync::Mutex<std::collections::HashMap<String, RoaringBitmap>>>,
    /// [`CohortEngine::sample_positions`], once built.
    pub(crate) sample_positions: Arc<std::sync::OnceLock<Arc<Vec<Option<usize>>>>>,
    /// [`CohortEngine::everyone`], once built.
    pub(crate) everyone: Arc<std::sync::OnceLock<RoaringBitmap>>,
    /// The registry's IDs by hash, built on the second sample list resolved (see
    /// [`crate::sample_ids`]), and how many lists were resolved.
    pub(crate) sample_ids: Arc<std::sync::OnceLock<crate::sample_ids::SampleIds>>,
    pub(crate) lists_resolved: Arc<std::sync::atomic::AtomicUsize>,
    /// [`CohortEngine::sample_order`], once built.
    pub(crate) sample_order: Arc<std::sync::OnceLock<Arc<SampleOrder>>>,
    /// Decoded variant rows, shared by every engine derived from this one.
    pub(crate) site_cache: Arc<SiteCache>,
    /// How this engine's sessions plan onto workers (none: on this node alone).
    pub(crate) distribution: Option<Arc<dyn Distribution>>,
    /// Where long operations (export, purge, compaction, association) report how far they
    /// have come; hidden unless [`CohortEngine::with_progress`] says otherwise.
    pub(crate) progress: Progress,
    /// The most rows a page of a paged answer (carriers) may hold.
    pub(crate) max_page_size: usize,
}

/// How the sessions of an engine plan their queries onto other nodes: given the builder of a
/// session's state, the builder with a distributed planner, its workers and codec. The cluster
/// module implements it for a pool of workers (`CohortEngine::with_workers`).
#[async_trait::async_trait]
pub trait Distribution: std::fmt::Debug + Send + Sync {
    /// `builder`, planning onto the workers, for a session of `engine`.
    fn distribute(
        &self,
        engine: &CohortEngine,
        builder: datafusion::execution::SessionStateBuilder,
    ) -> Result<datafusion::execution::SessionStateBuilder>;

    /// Runs `tasks` (one task, which the distributed planner splits) on the workers, for a
    /// session of `engine`: the operation's rows, in the order one node gives them.
    async fn run(
        &self,
        engine: &CohortEngine,
        tasks: crate::region_tasks::RegionTasks,
    ) -> Result<Vec<RecordBatch>>;

    /// When `error` ended a query because a node was lost (its connection broke, or it no
    /// longer answers): what to tell the caller, naming the node; `None` for other errors.
    async fn lost_node(&self, error: &datafusion::error::DataFusionError) -> Option<String>;
}

/// Samples ordered by ID: sorting by `rank[sample_idx]` sorts by ID, and `by_id` lists every
/// `sample_idx` in that order.
#[derive(Debug, Default)]
pub(crate) struct SampleOrder {
    /// Position of each `sample_idx` in ID order (`u32::MAX` for unused indices).
    pub rank: Vec<u32>,
    /// Every registered `sample_idx`, in ID order.
    pub by_id: Vec<u32>,
}

impl CohortEngine {
    /// Opens the newest snapshot of the store at `location`.
    pub async fn open(location: &str) -> Result<Self> {
        let store = Store::open(location).await?;
        let snapshot = store.snapshot().await?;
        Self::open_at(store, snapshot).await
    }

    /// Opens the newest snapshot of the store at `location`, as [`CohortEngine::open`], having
    /// started to read the variant rows of `regions` into the engine's cache first: the
    /// registry is then read, and the caller's cohorts resolved, while the rows are decoded.
    /// Await the task before the operation over `regions` (the command line's `af` and
    /// `case-control` do: at N=100,000 the registry, the cohort and the rows each take a few
    /// milliseconds).
    pub async fn open_reading(
        location: &str,
        regions: &[Region],
    ) -> Result<(Self, SpawnedTask<()>)> {
        let store = Store::open(location).await?;
        let snapshot = store.snapshot().await?;
        let cache = Arc::new(SiteCache::default());
        let fragments = snapshot.state.variant_fragments().cloned().collect();
        let rows = cache.prefetch(store.location(), fragments, regions);
        let engine = Self::open_at(store, snapshot).await?.with_site_cache(cache);
        Ok((engine, rows))
    }

    /// The engine over `snapshot` of `store`, with a cache of decoded rows of its own (share
    /// one with [`CohortEngine::with_site_cache`]).
    pub async fn open_at(store: Store, snapshot: Snapshot) -> Result<Self> {
        let sample_batch = read_sample_batch(&store, &snapshot).await?;
        let withdrawn = snapshot.state.hidden_bitmap();
        let phenotypes = snapshot
            .state
            .named_files(FileKind::Phenotypes)
            .map(|(name, file)| (name.to_string(), file.path.clone()))
            .collect();
        Ok(Self {
            store,
            snapshot,
            samples: Default::default(),
            sample_batch,
            phenotypes,
            phenotype_columns: Default::default(),
            phenotype_cache: PhenotypeCache::default(),
            withdrawn,
            access: AccessState::new(Access::admin()),
            cohort_cache: Default::default(),
            saved_lists: Default::default(),
            sample_positions: Default::default(),
            everyone: Default::default(),
            sample_order: Default::default(),
            sample_ids: Default::default(),
            lists_resolved: Default::default(),
            site_cache: Default::default(),
            distribution: None,
            progress: Progress::hidden(),
            max_page_size: MAX_PAGE_SIZE,
        })
    }

    /// This engine reading variant rows through `cache` (see [`crate::rows::site_cache`]), for
    /// example one with another byte budget, or one shared with engines over other snapshots.
    pub fn with_site_cache(mut self, cache: Arc<SiteCache>) -> Self {
        self.site_cache = cache;
        self
    }

    /// This engine reporting the progress of its long operations (export, purge, compaction,
    /// association) to `progress`, for example [`Progress::on_terminal`].
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// This engine refusing pages of more than `rows` rows (the operator's maximum; engines
    /// derived from it keep it).
    pub fn with_max_page_size(mut self, rows: usize) -> Self {
        self.max_page_size = rows.max(1);
        self
    }

    /// The most rows of a page ([`CohortEngine::with_max_page_size`]).
    pub fn max_page_size(&self) -> usize {
        self.max_page_size
    }

    /// This engine planning its sessions' queries as `distribution` says (`None`: on this
    /// node alone). Engines derived from it ([`CohortEngine::with_access`],
    /// [`CohortEngine::for_request`]) plan the same way.
    pub fn with_distribution(mut self, distribution: Option<Arc<dyn Distribution>>) -> Self {
        self.distribution = distribution;
        self
    }

    /// `error`, which ended a query of this engine, as [`EngineError::WorkerLost`] when a node
    /// the query ran on was lost (the query may be sent again: it then runs on the nodes that
    /// remain); `None` for any other error.
    pub async fn lost_node(
        &self,
        error: &datafusion::error::DataFusionError,
    ) -> Option<EngineError> {
        let distribution = self.distribution.as_ref()?;
        distribution
            .lost_node(error)
            .await
            .map(EngineError::WorkerLost)
    }

    /// The tasks of `operation` over `regions` (none: every contig) for `cohorts`, on this
    /// engine's snapshot: one task, until the distributed planner splits it.
    pub fn region_tasks(
        &self,
        operation: crate::region_tasks::SplitOperation,
        regions: &[Region],
        cohorts: &[&RoaringBitmap],
    ) -> crate::region_tasks::RegionTasks {
        crate::region_tasks::RegionTasks {
            operation,
            version: self.snapshot.version(),
            cohorts: cohorts
                .iter()
                .map(|c| hex::encode(cohortdb_store::genotype_bitmaps::serialize_bitmap(c)))
                .collect(),
            tasks: vec![regions.to_vec()],
        }
    }

    /// `operation` over `regions` for `cohorts`, run on this engine's workers when it has some
    /// and the operation is split at its tier; `None` otherwise (the caller computes it here).
    pub(crate) async fn on_workers(
        &self,
        operation: crate::region_tasks::SplitOperation,
        regions: &[Region],
        cohorts: &[&RoaringBitmap],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let Some(distribution) = &self.distribution else {
            return Ok(None);
        };
        if !operation.splits_at(self.tier()) {
            return Ok(None);
        }
        let tasks = self.region_tasks(operation, regions, cohorts);
        distribution.run(self, tasks).await.map(Some)
    }

    /// How this engine's sessions plan onto other nodes, if they do.
    pub fn distribution(&self) -> Option<&Arc<dyn Distribution>> {
        self.distribution.as_ref()
    }

    /// The cache of decoded variant rows this engine reads through.
    pub fn site_cache(&self) -> &Arc<SiteCache> {
        &self.site_cache
    }

    /// This engine under `access` (see [`crate::policy::access_policy`]). For the record tier every
    /// sample ID becomes the project's pseudonym, which costs one HMAC per sample: keep the
    /// result and call [`CohortEngine::for_request`] per request.
    pub fn with_access(&self, access: Access) -> Result<Self> {
        let mut engine = self.clone();
        if access.tier == Tier::Record {
            let secret = access.pseudonym_secret.as_deref().ok_or_else(|| {
                EngineError::InvalidArgument("the record tier needs a pseudonym secret".into())
            })?;
            engine.sample_batch = pseudonymous_samples(&self.sample_batch, secret.as_bytes())?;
            engine.samples = Default::default();
            engine.phenotype_cache = PhenotypeCache::default();
        }
        if let Some(allowed) = &access.phenotypes {
            // Tables the project may not read are not there at all; the others show their
            // allowed columns only, on every path (SQL, cohort predicates, carriers columns,
            // association), since every path reads them through the same schema.
            engine
                .phenotypes
                .retain(|name, _| allowed.contains_key(name));
            engine.phenotype_columns = Arc::new(
                engine
                    .phenotypes
                    .iter()
                    .filter_map(|(name, path)| {
                        let columns = allowed.get(name)?;
                        (!columns.iter().any(|c| c == "*")).then(|| (path.clone(), columns.clone()))
                    })
                    .collect(),
            );
            engine.phenotype_cache = PhenotypeCache::default();
        }
        engine.access = AccessState::new(access);
        engine.cohort_cache = Default::default();
        engine.saved_lists = Default::default();
        engine.sample_order = Default::default();
        engine.sample_ids = Default::default();
        Ok(engine)
    }

    /// This engine for one request: it shares the caches of cohorts and their releases (a
    /// snapshot never changes what a predicate chooses).
    pub fn for_request(&self) -> Self {
        self.clone()
    }

    /// The tier this engine serves.
    pub fn tier(&self) -> Tier {
        self.access.tier()
    }

    /// The policy this engine applies.
    pub fn access(&self) -> &Access {
        &self.access.access
    }

    pub(crate) fn access_state(&self) -> &AccessState {
        &self.access
    }

    /// The samples in the order of their IDs as this engine shows them (pseudonyms at the
    /// record tier), built once per engine.
    pub(crate) fn sample_order(&self) -> Arc<SampleOrder> {
        self.sample_order
            .get_or_init(|| {
                use datafusion::arrow::array::{StringArray, UInt32Array};
                let column = |i: usize| self.sample_batch.column(i).as_any();
                let (Some(idx), Some(ids)) = (
                    column(0).downcast_ref::<UInt32Array>(),
                    column(1).downcast_ref::<StringArray>(),
                ) else {
                    return Arc::default();
                };
                let mut rows: Vec<usize> = (0..idx.len()).collect();
                rows.sort_by(|&a, &b| ids.value(a).cmp(ids.value(b)));
                let by_id: Vec<u32> = rows.iter().map(|&row| idx.value(row)).collect();
                let end = by_id.iter().max().map_or(0, |m| *m as usize + 1);
                let mut rank = vec![u32::MAX; end];
                for (r, &i) in by_id.iter().enumerate() {
                    rank[i as usize] = r as u32;
                }
                Arc::new(SampleOrder { rank, by_id })
            })
            .clone()
    }

    /// The registry row of each `sample_idx` (`None` where no sample has it), built once per
    /// engine.
    pub(crate) fn sample_positions(&self) -> Arc<Vec<Option<usize>>> {
        self.sample_positions
            .get_or_init(|| {
                let idx = self
                    .sample_batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::UInt32Array>();
                let mut out: Vec<Option<usize>> = Vec::new();
                for (row, i) in idx
                    .map(|a| a.values().to_vec())
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let i = i as usize;
                    if out.len() <= i {
                        out.resize(i + 1, None);
                    }
                    out[i] = Some(row);
                }
                Arc::new(out)
            })
            .clone()
    }

    /// The decoded batches of phenotype table `name` (withdrawn samples removed, pseudonyms
    /// for the record tier), shared with the sessions of this engine.
    pub(crate) async fn phenotype_table(
        &self,
        name: &str,
    ) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        let path = self.phenotypes.get(name).ok_or_else(|| {
            EngineError::InvalidArgument(format!("the store has no phenotype table {name:?}"))
        })?;
        Ok(self.store_schema().batches(path).await?)
    }

    pub(crate) fn store_schema(&self) -> StoreSchema {
        StoreSchema::new(
            self.store.clone(),
            self.phenotypes.clone(),
            self.withdrawn.clone(),
            self.phenotype_cache.clone(),
            self.phenotype_columns.clone(),
            (self.tier() == Tier::Record).then(|| self.sample_batch.clone()),
        )
    }

    /// The disclosure control of an aggregate engine.
    pub(crate) fn disclosure(&self) -> Result<&Arc<DisclosureControl>> {
        self.access().disclosure.as_ref().ok_or_else(|| {
            EngineError::PermissionDenied(
                "the aggregate tier needs a disclosure control (noise key and budget)".into(),
            )
        })
    }

    /// The release of `set` chosen by `label` (computed once per label and engine: a label
    /// chooses the same participants for the whole snapshot). Aggregate tier only.
    pub(crate) fn release_of(&self, label: &str, set: &RoaringBitmap) -> Result<ReleaseKey> {
        let releases = &self.access_state().releases;
        if let Some(release) = releases.lock().ok().and_then(|r| r.get(label).cloned()) {
            return Ok(release);
        }
        let release = self.disclosure()?.release_key(label, &members_digest(set));
        if let Ok(mut releases) = releases.lock() {
            releases.insert(label.to_string(), release.clone());
        }
        Ok(release)
    }

    /// Every registered sample that has not withdrawn.
    pub(crate) fn everyone(&self) -> &RoaringBitmap {
        self.everyone.get_or_init(|| {
            let idx = self
                .sample_batch
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt32Array>();
            let all: RoaringBitmap = idx
                .map(|a| a.values().iter().copied().collect())
                .unwrap_or_default();
            all - &self.withdrawn
        })
    }

    /// Refuses `regions` on a contig the store holds no records or coverage of, naming the
    /// contigs it has ([`Region::check_contigs`]): a misspelt contig is a mistake, not an
    /// empty answer.
    pub fn check_regions(&self, regions: &[Region]) -> Result<()> {
        if regions.is_empty() {
            return Ok(());
        }
        let state = &self.snapshot().state;
        let mut known = state.contigs();
        known.extend(
            state
                .files
                .values()
                .filter(|f| f.kind == FileKind::Coverage)
                .filter_map(|f| f.contig.clone()),
        );
        known.sort();
        known.dedup();
        Region::check_contigs(regions, &known)
    }

    /// Names of the phenotype tables.
    pub fn phenotype_tables(&self) -> Vec<&str> {
        self.phenotypes.keys().map(String::as_str).collect()
    }

    /// The store read.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The snapshot read.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Registered samples, by `sample_idx` (withdrawn ones excluded).
    pub fn samples(&self) -> Vec<&SampleRecord> {
        self.sample_records()
            .iter()
            .filter(|s| !self.withdrawn.contains(s.sample_idx))
            .collect()
    }

    /// All registered samples, withdrawn ones included (for selection resolution).
    pub fn sample_records(&self) -> &[SampleRecord] {
        self.samples.get_or_init(|| records_of(&self.sample_batch))
    }

    /// Samples that withdrew consent (`cohortdb admin withdraw`), and indices whose data an
    /// `ingest vcf --replace` replaced; every read path removes them.
    pub fn withdrawn(&self) -> &RoaringBitmap {
        &self.withdrawn
    }
}
