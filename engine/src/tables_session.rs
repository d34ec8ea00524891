//! The sessions of an engine: the store's tables and the genotype functions, shaped by the
//! engine's tier.

use std::sync::Arc;

use cohortdb_store::log_entry::FileKind;
use cohortdb_store::sample_registry::samples_schema;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::col;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::policy::access_policy::Tier;
use crate::rows::variants_exec::STORE_URL;
use crate::rows::variants_table::VariantsTable;
use crate::sql::genotype_aggregates::GenotypeAggregates;
use crate::sql::genotypes_view::{GENOTYPES, GenotypesTable, genotypes_plan};
use crate::sql::phenotype_schema::without_withdrawn;
use crate::sql::sample_set::SampleSetUdaf;

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

impl CohortEngine {
    /// `site_is_public` bound to this engine's everyone release (aggregate tier only).
    pub(crate) fn public_site_filter(&self) -> Result<datafusion::logical_expr::ScalarUDF> {
        let control = self.disclosure()?.clone();
        let release = self.release_of(crate::policy::access_policy::EVERYONE, self.everyone())?;
        Ok(crate::policy::public_sites::PublicSiteUdf::udf(
            control,
            release,
            self.access().min_count,
        ))
    }

    /// A new session for this engine's tier: for admin and record, `variants`, `samples`,
    /// `genotypes`, the phenotype tables and the genotype functions; for aggregate, only the
    /// site columns of `variants` (see [`crate::policy::access_policy`]).
    pub fn session(&self) -> Result<SessionContext> {
        self.session_with(SessionConfig::new())
    }
    /// [`CohortEngine::session`] with a given configuration (information schema added).
    pub fn session_with(&self, config: SessionConfig) -> Result<SessionContext> {
        match self.tier() {
            Tier::Admin => return self.full_session_with(config),
            Tier::Record => return self.tables_session(config, true),
            Tier::Aggregate => {}
        }
        let ctx = self.new_context(config.with_information_schema(true))?;
        self.register_store(&ctx)?;
        let mut denied: Vec<String> = vec!["samples".into(), GENOTYPES.into()];
        denied.extend(self.phenotypes.keys().cloned());
        crate::policy::aggregate_schema::AggregateSchema::install(&ctx, denied)?;
        // The provider is not registered by name, so only the view's columns are reachable;
        // only sites enough participants carry are listed ([`crate::policy::public_sites`]).
        let public = self.public_site_filter()?;
        let visible = crate::sql::withdrawal_masks::variants_without(
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
    /// A context of `config`, planning onto other nodes when the engine has a
    /// [`crate::cohort_engine::Distribution`].
    fn new_context(&self, config: SessionConfig) -> Result<SessionContext> {
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if let Some(distribution) = &self.distribution {
            builder = distribution.distribute(self, builder)?;
        }
        Ok(SessionContext::new_with_state(builder.build()))
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
        let ctx = self.new_context(config)?;
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
        let visible = crate::sql::withdrawal_masks::variants_without(
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
        for udf in crate::sql::session_udfs() {
            ctx.register_udf(udf);
        }
        ctx.register_udaf(SampleSetUdaf::udaf());
        Ok(ctx)
    }
}
