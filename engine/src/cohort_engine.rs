//! The engine over one snapshot: a DataFusion session with the store's tables and functions,
//! and the cohort operations built on it.

use std::sync::Arc;

use cohortdb_store::log_entry::FileKind;
use cohortdb_store::sample_registry::{
    SampleRecord, read_sample_batch, records_of, samples_schema,
};
use cohortdb_store::{Snapshot, Store};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::logical_expr::col;
use datafusion::prelude::{DataFrame, Expr, SessionConfig, SessionContext};
use roaring::RoaringBitmap;

use crate::access_policy::{Access, AccessState, Tier, pseudonymous_samples};
use crate::bitmap_count_functions::{BitmapCount, BitmapCountUdf};
use crate::bitmap_set_functions::{BitmapSetOp, BitmapSetUdf};
use crate::cohort::Cohort;
use crate::error::{EngineError, Result};
use crate::genotype_aggregates::GenotypeAggregates;
use crate::genotypes_view::{GENOTYPES, GenotypeCallsUdf, GenotypesTable, genotypes_plan};
use crate::phenotype_schema::{PhenotypeCache, StoreSchema, without_withdrawn};
use crate::rows::site_cache::SiteCache;
use crate::rows::variants_exec::STORE_URL;
use crate::rows::variants_table::VariantsTable;
use crate::sample_selection::SampleSelection;
use crate::sample_set::SampleSetUdaf;

/// The columns of `variants` the aggregate tier sees: the site, never counts over the stored
/// samples (they include withdrawn ones), bitmaps, FORMAT or INFO values (INFO may hold the
/// input's small counts).
const SITE_COLUMNS: [&str; 9] = [
    "contig",
    "pos",
    "id",
    "ref",
    "alt",
    "qual",
    "filters",
    "allele_index",
    "n_alleles",
];

/// A store opened at one snapshot.
#[derive(Debug, Clone)]
pub struct CohortEngine {
    store: Store,
    snapshot: Snapshot,
    samples: Arc<std::sync::OnceLock<Vec<SampleRecord>>>,
    pub(crate) sample_batch: RecordBatch,
    /// Phenotype tables: name -> file, read by a session only when a query names them.
    phenotypes: std::collections::BTreeMap<String, String>,
    /// Per phenotype file, the columns this engine's project may read (absent: all).
    phenotype_columns: Arc<std::collections::BTreeMap<String, Vec<String>>>,
    phenotype_cache: PhenotypeCache,
    withdrawn: RoaringBitmap,
    access: AccessState,
    /// Cohorts by predicate text, for this engine's view of the samples (an engine from
    /// [`CohortEngine::with_access`] starts its own: pseudonyms change what a predicate means,
    /// and an aggregate engine's entries are predicates its grammar check passed).
    cohort_cache: Arc<std::sync::Mutex<std::collections::HashMap<String, RoaringBitmap>>>,
    /// [`CohortEngine::sample_positions`], once built.
    sample_positions: Arc<std::sync::OnceLock<Arc<Vec<Option<usize>>>>>,
    /// [`CohortEngine::everyone`], once built.
    everyone: Arc<std::sync::OnceLock<RoaringBitmap>>,
    /// [`CohortEngine::sample_order`], once built.
    sample_order: Arc<std::sync::OnceLock<Arc<SampleOrder>>>,
    /// Decoded variant rows, shared by every engine derived from this one.
    pub(crate) site_cache: Arc<SiteCache>,
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

/// At most this many cached cohorts per engine (about 12 KiB each at N=100,000); the cache is
/// emptied when full.
const COHORT_CACHE_ENTRIES: usize = 4096;

impl CohortEngine {
    /// Opens the newest snapshot of the store at `location`.
    pub async fn open(location: &str) -> Result<Self> {
        let store = Store::open(location).await?;
        let snapshot = store.snapshot().await?;
        Self::open_at(store, snapshot).await
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
            sample_positions: Default::default(),
            everyone: Default::default(),
            sample_order: Default::default(),
            site_cache: Default::default(),
        })
    }

    /// This engine reading variant rows through `cache` (see [`crate::rows::site_cache`]), for
    /// example one with another byte budget, or one shared with engines over other snapshots.
    pub fn with_site_cache(mut self, cache: Arc<SiteCache>) -> Self {
        self.site_cache = cache;
        self
    }

    /// The cache of decoded variant rows this engine reads through.
    pub fn site_cache(&self) -> &Arc<SiteCache> {
        &self.site_cache
    }

    /// This engine under `access` (see [`crate::access_policy`]). For the record tier every
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
        engine.sample_order = Default::default();
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

    fn store_schema(&self) -> StoreSchema {
        StoreSchema::new(
            self.store.clone(),
            self.phenotypes.clone(),
            self.withdrawn.clone(),
            self.phenotype_cache.clone(),
            self.phenotype_columns.clone(),
            (self.tier() == Tier::Record).then(|| self.sample_batch.clone()),
        )
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

    /// The samples a cohort predicate chooses: a SQL boolean expression over the columns of
    /// `samples` and of the default phenotype table `phenotypes` (joined on `sample_idx`;
    /// samples without a phenotype row see NULLs). Withdrawn samples are never chosen.
    pub async fn cohort(&self, predicate: &str) -> Result<Cohort> {
        Ok(self.cohorts(&[predicate]).await?.pop().unwrap_or_default())
    }

    /// [`CohortEngine::cohort`] of several predicates in one pass over the tables. Results are
    /// kept per engine (a snapshot never changes), so a predicate asked again costs a lookup;
    /// every cohort, cached or not, is admitted by `CohortEngine::admit` (the aggregate
    /// tier's disclosure control).
    pub async fn cohorts(&self, predicates: &[&str]) -> Result<Vec<Cohort>> {
        let cached = |p: &str| {
            self.cohort_cache
                .lock()
                .ok()
                .and_then(|c| c.get(p).cloned())
        };
        let missing: Vec<&str> = predicates
            .iter()
            .copied()
            .filter(|p| cached(p).is_none())
            .collect();
        let mut fresh: std::collections::HashMap<&str, RoaringBitmap> =
            std::collections::HashMap::new();
        if !missing.is_empty() {
            let sets = self.evaluate_cohorts(&missing).await?;
            if let Ok(mut cache) = self.cohort_cache.lock() {
                if cache.len() + sets.len() > COHORT_CACHE_ENTRIES {
                    cache.clear();
                }
                for (p, set) in missing.iter().zip(&sets) {
                    cache.insert((*p).to_string(), set.clone());
                }
            }
            fresh.extend(missing.into_iter().zip(sets));
        }
        let mut out = Vec::with_capacity(predicates.len());
        for p in predicates {
            let set = match fresh.get(p) {
                Some(set) => set.clone(),
                None => cached(p).unwrap_or_default(),
            };
            out.push(self.admit(&crate::access_policy::cohort_label(p), set)?);
        }
        Ok(out)
    }

    /// Evaluates predicates in one pass (the aggregate tier's grammar checked first).
    async fn evaluate_cohorts(&self, predicates: &[&str]) -> Result<Vec<RoaringBitmap>> {
        use datafusion::logical_expr::{ExprFunctionExt, JoinType};
        let ctx = self.full_session()?;
        let samples = ctx.table("samples").await?;
        let rows = if self.phenotypes.contains_key("phenotypes") {
            // Joined on the index alone: a phenotype row's sample_id is its sample's.
            let phenotypes = ctx.table("phenotypes").await?.alias("__p")?;
            let mut columns: Vec<Expr> = samples
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect();
            columns.extend(
                phenotypes
                    .schema()
                    .columns()
                    .into_iter()
                    .filter(|c| {
                        samples
                            .schema()
                            .field_with_unqualified_name(&c.name)
                            .is_err()
                    })
                    .map(|c| Expr::Column(c.clone()).alias(c.name)),
            );
            samples
                .join_on(
                    phenotypes,
                    JoinType::Left,
                    [col("samples.sample_idx").eq(col("__p.sample_idx"))],
                )?
                .select(columns)?
        } else {
            samples
        };
        // Each predicate is parsed as one expression over the joined columns, never spliced
        // into a statement's text.
        let mut sets = Vec::with_capacity(predicates.len());
        for (i, predicate) in predicates.iter().enumerate() {
            let filter = rows.parse_sql_expr(predicate)?;
            self.check_aggregate_predicate(&filter, rows.schema())?;
            if self.tier() == Tier::Record
                && filter.column_refs().iter().any(|c| c.name == "sample_idx")
            {
                return Err(EngineError::PermissionDenied(
                    "the record tier does not see sample_idx".into(),
                ));
            }
            sets.push(
                SampleSetUdaf::udaf()
                    .call(vec![col("sample_idx")])
                    .filter(filter)
                    .build()?
                    .alias(format!("s{i}")),
            );
        }
        let batches = rows.aggregate(vec![], sets)?.collect().await?;
        let mut out = Vec::with_capacity(predicates.len());
        for i in 0..predicates.len() {
            let bytes = batches
                .first()
                .and_then(|b| {
                    b.column(i)
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::BinaryArray>()
                        .filter(|a| !a.is_empty() && !a.is_null(0))
                        .map(|a| a.value(0).to_vec())
                })
                .unwrap_or_default();
            let set = if bytes.is_empty() {
                RoaringBitmap::new()
            } else {
                cohortdb_store::genotype_bitmaps::deserialize_bitmap(&bytes).ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("unreadable sample set".into())
                })?
            };
            out.push(set - &self.withdrawn);
        }
        Ok(out)
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

    /// The `sample_idx` values `selection` chooses, withdrawn samples removed; read straight
    /// from the registry's Arrow arrays.
    pub fn resolve(&self, selection: &SampleSelection) -> Result<Cohort> {
        if self.tier() == Tier::Aggregate && *selection != SampleSelection::All {
            return Err(EngineError::PermissionDenied(
                "the aggregate tier chooses participants by predicate, not by ID".into(),
            ));
        }
        if *selection == SampleSelection::All {
            return self.admit(crate::access_policy::EVERYONE, self.everyone().clone());
        }
        let column = |i: usize| self.sample_batch.column(i).as_any();
        let (Some(idx), Some(ids)) = (
            column(0).downcast_ref::<datafusion::arrow::array::UInt32Array>(),
            column(1).downcast_ref::<datafusion::arrow::array::StringArray>(),
        ) else {
            let set = selection.resolve(self.sample_records(), &self.withdrawn)?;
            return Ok(Cohort::new(set));
        };
        let pairs = idx.values().iter().copied().zip(ids.iter().flatten());
        Ok(Cohort::new(selection.resolve_ids(pairs, &self.withdrawn)?))
    }

    /// Samples that withdrew consent (`cohortdb admin withdraw`), and indices whose data an
    /// `ingest vcf --replace` replaced; every read path removes them.
    pub fn withdrawn(&self) -> &RoaringBitmap {
        &self.withdrawn
    }

    /// A new session for this engine's tier: for admin and record, `variants`, `samples`,
    /// `genotypes`, the phenotype tables and the genotype functions; for aggregate, only the
    /// site columns of `variants` (see [`crate::access_policy`]).
    pub fn session(&self) -> Result<SessionContext> {
        self.session_with(SessionConfig::new())
    }

    /// [`CohortEngine::session`] plus the cohort operations as table functions
    /// ([`crate::table_functions`]; for the aggregate tier only the aggregate ones): the
    /// session SQL clients get.
    pub fn sql_session(&self) -> Result<SessionContext> {
        let ctx = self.session()?;
        crate::table_functions::register_table_functions(&ctx, self);
        Ok(ctx)
    }

    /// [`CohortEngine::session`] with a given configuration (information schema added).
    pub fn session_with(&self, config: SessionConfig) -> Result<SessionContext> {
        match self.tier() {
            Tier::Admin => return self.full_session_with(config),
            Tier::Record => return self.tables_session(config, true),
            Tier::Aggregate => {}
        }
        let ctx = SessionContext::new_with_config(config.with_information_schema(true));
        self.register_store(&ctx)?;
        let mut denied: Vec<String> = vec!["samples".into(), GENOTYPES.into()];
        denied.extend(self.phenotypes.keys().cloned());
        crate::aggregate_schema::AggregateSchema::install(&ctx, denied)?;
        // The provider is not registered by name, so only the view's columns are reachable;
        // only sites enough participants carry are listed ([`crate::public_sites`]).
        let control = self.disclosure()?.clone();
        let release = self.release_of(crate::access_policy::EVERYONE, self.everyone())?;
        let public =
            crate::public_sites::PublicSiteUdf::udf(control, release, self.access().min_count);
        let visible = crate::withdrawal_masks::variants_without(
            ctx.read_table(self.variants_table()?)?,
            &self.withdrawn,
        )?;
        let sites = visible
            .filter(
                public.call(
                    ["het", "hom_alt", "hemi", "contig", "pos", "ref", "alt"]
                        .map(col)
                        .to_vec(),
                ),
            )?
            .select_columns(&SITE_COLUMNS)?
            .into_view();
        ctx.register_table("variants", sites)?;
        Ok(ctx)
    }

    /// Registers the store's object store for the `variants` scans of `ctx`.
    fn register_store(&self, ctx: &SessionContext) -> Result<()> {
        let url = url::Url::parse(STORE_URL)
            .map_err(|e| datafusion::error::DataFusionError::Internal(e.to_string()))?;
        ctx.register_object_store(&url, self.store.location().object_store.clone());
        Ok(())
    }

    /// The `variants` table over this snapshot's fragments, rows merged across batches.
    fn variants_table(&self) -> Result<Arc<dyn TableProvider>> {
        let state = &self.snapshot.state;
        let blocks = state
            .files
            .values()
            .filter(|f| f.kind == FileKind::RefBlocks)
            .cloned()
            .collect();
        Ok(Arc::new(
            VariantsTable::new(
                self.store.location().clone(),
                self.site_cache.footers().clone(),
                state.extra_columns()?,
                state.variant_fragments().cloned().collect(),
            )
            .merging(blocks),
        ))
    }

    /// The rows of `fragments` as stored (not merged across batches), read in file order by a
    /// session of one partition: for rewriting fragments.
    pub(crate) fn stored_rows(
        &self,
        extra_columns: Vec<cohortdb_store::log_entry::ExtraColumn>,
        fragments: Vec<cohortdb_store::log_entry::FileEntry>,
    ) -> VariantsTable {
        VariantsTable::new(
            self.store.location().clone(),
            self.site_cache.footers().clone(),
            extra_columns,
            fragments,
        )
    }

    /// Plans `query` in [`CohortEngine::sql_session`]. Only queries: no DDL (which could
    /// read any file the server can), DML or statements (`SET`, `PREPARE`, ...); placeholders
    /// (`$1`) are left for the caller to bind.
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        let options = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let ctx = self.sql_session()?;
        let plan = ctx.state().create_logical_plan(query).await?;
        options
            .verify_plan(&plan)
            .map_err(|e| EngineError::PermissionDenied(format!("only queries are served: {e}")))?;
        Ok(ctx.execute_logical_plan(plan).await?)
    }

    /// A session with every table and function, whatever the tier: the operations' own.
    pub(crate) fn full_session(&self) -> Result<SessionContext> {
        self.full_session_with(SessionConfig::new())
    }

    pub(crate) fn full_session_with(&self, config: SessionConfig) -> Result<SessionContext> {
        self.tables_session(config, false)
    }

    /// Every table and function; with `hide_indices` (the record tier's own sessions) without
    /// `sample_idx` and the genotype bitmaps over it. The index is the registry's row number,
    /// the same for every project and in the input's sample order: shown, it would link two
    /// projects' pseudonyms, and anyone holding the input's header to the real IDs.
    fn tables_session(&self, config: SessionConfig, hide_indices: bool) -> Result<SessionContext> {
        let config = config.with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        self.register_store(&ctx)?;
        // The default schema also serves the phenotype tables, read when a query names them.
        let catalog = ctx
            .catalog(&ctx.state().config().options().catalog.default_catalog)
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal("no default catalog".into())
            })?;
        catalog.register_schema(
            &ctx.state().config().options().catalog.default_schema,
            Arc::new(self.store_schema().hiding_indices(hide_indices)),
        )?;
        // A view of `df` without `hidden` columns, when indices are hidden.
        let shown = |df: DataFrame, hidden: &[&str]| -> Result<Arc<dyn TableProvider>> {
            if !hide_indices {
                return Ok(df.into_view());
            }
            let keep: Vec<String> = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| !hidden.contains(&n.as_str()))
                .collect();
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            Ok(df.select_columns(&keep)?.into_view())
        };
        let mut bitmaps: Vec<&str> = cohortdb_store::genotype_bitmaps::BITMAP_COLUMNS.to_vec();
        bitmaps.push("gt_exceptions");
        let variants = self.variants_table()?;
        let format_columns: Vec<String> = variants
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name().starts_with("fmt_"))
            .map(|f| f.name().clone())
            .collect();
        // Readers never see withdrawn participants; the genotypes view and the rewrite rule read
        // the fragments as stored (they join `samples`, which has no withdrawn rows).
        let visible = crate::withdrawal_masks::variants_without(
            ctx.read_table(variants.clone())?,
            &self.withdrawn,
        )?;
        ctx.register_table("variants", shown(visible, &bitmaps)?)?;
        let batch = without_withdrawn(&self.sample_batch, &self.withdrawn)?;
        let samples: Arc<dyn TableProvider> =
            Arc::new(MemTable::try_new(samples_schema(), vec![vec![batch]])?);
        let view = genotypes_plan(variants.clone(), samples.clone(), &format_columns)?;
        let genotypes: Arc<dyn TableProvider> = Arc::new(GenotypesTable::new(view));
        if hide_indices {
            ctx.register_table(
                "samples",
                shown(ctx.read_table(samples.clone())?, &["sample_idx"])?,
            )?;
            ctx.register_table(
                GENOTYPES,
                shown(ctx.read_table(genotypes)?, &["sample_idx"])?,
            )?;
        } else {
            ctx.register_table("samples", samples.clone())?;
            ctx.register_table(GENOTYPES, genotypes)?;
        }
        ctx.add_optimizer_rule(Arc::new(GenotypeAggregates::new(variants, samples)));
        for udf in [
            BitmapCountUdf::udf(BitmapCount::AlleleCount),
            BitmapCountUdf::udf(BitmapCount::AlleleNumber),
            BitmapCountUdf::udf(BitmapCount::AndCount),
            BitmapSetUdf::udf(BitmapSetOp::Or),
            BitmapSetUdf::udf(BitmapSetOp::And),
            BitmapSetUdf::udf(BitmapSetOp::AndNot),
            BitmapSetUdf::udf(BitmapSetOp::Count),
            BitmapSetUdf::udf(BitmapSetOp::ToList),
        ] {
            ctx.register_udf(udf);
        }
        ctx.register_udf(GenotypeCallsUdf::udf());
        ctx.register_udaf(SampleSetUdaf::udaf());
        Ok(ctx)
    }
}
