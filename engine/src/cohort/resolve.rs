//! One way from a cohort as callers name it to the participants it admits: everyone, sample
//! lists, predicates over `samples` and `phenotypes`, named cohorts. Every cohort passes the
//! engine's admission (the aggregate tier's disclosure control) on the way out.

use std::collections::HashMap;

use datafusion::arrow::array::Array;
use datafusion::logical_expr::col;
use datafusion::prelude::Expr;
use roaring::RoaringBitmap;

use crate::cohort::cohort_spec::CohortSpec;
use crate::cohort::members::Cohort;
use crate::cohort::named_cohorts::SavedMembers;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::access_policy::{EVERYONE, Tier, cohort_label};
use crate::sql::sample_set::SampleSetUdaf;

/// At most this many cached cohorts per engine (about 12 KiB each at N=100,000); the cache is
/// emptied when full.
const COHORT_CACHE_ENTRIES: usize = 4096;

impl CohortEngine {
    /// The participants `spec` chooses, admitted for this request: withdrawn participants are
    /// never chosen, and at the aggregate tier the cohort passes the disclosure control (its
    /// release charged; refused when its noisy size, or the noisy number it leaves out, is
    /// between 1 and k-1). An unknown sample ID or cohort name is an error.
    ///
    /// `spec` is a [`CohortSpec`], or text as `--cohort` takes it ([`CohortSpec::parse`]).
    pub async fn cohort(&self, spec: impl Into<CohortSpec>) -> Result<Cohort> {
        let mut cohorts = self.cohorts(&[spec.into()]).await?;
        cohorts
            .pop()
            .ok_or_else(|| EngineError::InvalidArgument("no cohort was resolved".into()))
    }

    /// [`CohortEngine::cohort`] of several specs, their predicates evaluated in one pass over
    /// the tables. Predicate results are kept per engine (a snapshot never changes), so a
    /// predicate asked again costs a lookup; every cohort, cached or not, is admitted.
    pub async fn cohorts(&self, specs: &[CohortSpec]) -> Result<Vec<Cohort>> {
        // Named cohorts are their saved predicates, or their saved lists' members.
        let mut predicates: Vec<Option<String>> = Vec::with_capacity(specs.len());
        let mut saved_lists: HashMap<usize, RoaringBitmap> = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            predicates.push(match spec {
                CohortSpec::Predicate(p) => Some(p.clone()),
                CohortSpec::Named(name) => match self.saved_list(name)? {
                    Some(set) => {
                        saved_lists.insert(i, set);
                        None
                    }
                    None => match self.named_cohort(name).await?.members {
                        SavedMembers::Predicate(p) => Some(p),
                        SavedMembers::Samples(ids) => {
                            saved_lists.insert(i, self.resolve_saved_list(name, ids)?);
                            None
                        }
                    },
                },
                _ => None,
            });
        }
        let cached = |p: &str| {
            self.cohort_cache
                .lock()
                .ok()
                .and_then(|c| c.get(p).cloned())
        };
        let mut missing: Vec<&str> = predicates
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|p| cached(p).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let mut fresh: HashMap<&str, RoaringBitmap> = HashMap::new();
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
        let mut out = Vec::with_capacity(specs.len());
        for (i, (spec, predicate)) in specs.iter().zip(&predicates).enumerate() {
            out.push(match predicate {
                Some(p) => {
                    let set = match fresh.get(p.as_str()) {
                        Some(set) => set.clone(),
                        None => cached(p).unwrap_or_default(),
                    };
                    self.admit(&cohort_label(p), set)?
                }
                None => match saved_lists.remove(&i) {
                    Some(set) => Cohort::new(set),
                    None => self.listed_cohort(spec)?,
                },
            });
        }
        Ok(out)
    }

    /// The members of the saved list cohort `name` when this engine resolved it before
    /// (`None` for a predicate cohort or one not yet resolved); refused at the aggregate tier.
    fn saved_list(&self, name: &str) -> Result<Option<RoaringBitmap>> {
        let found = self
            .saved_lists
            .lock()
            .ok()
            .and_then(|lists| lists.get(name).cloned());
        if found.is_some() && self.tier() == Tier::Aggregate {
            return Err(list_refused());
        }
        Ok(found)
    }

    /// Resolves the saved list `name` as `-S` would, and keeps its members for this engine's
    /// snapshot (a list saved once costs its lookups once per snapshot, not per request).
    fn resolve_saved_list(&self, name: &str, ids: Vec<String>) -> Result<RoaringBitmap> {
        let set = self.listed_cohort(&CohortSpec::Include(ids))?.into_set();
        if let Ok(mut lists) = self.saved_lists.lock() {
            lists.insert(name.to_string(), set.clone());
        }
        Ok(set)
    }

    /// Everyone, or the participants of a sample list (not for the aggregate tier). A list
    /// that leaves no one is refused; withdrawn participants it names are left out and
    /// reported ([`Cohort::withdrawn_named`]).
    pub(crate) fn listed_cohort(&self, spec: &CohortSpec) -> Result<Cohort> {
        if *spec == CohortSpec::All {
            return self.admit(EVERYONE, self.everyone().clone());
        }
        if self.tier() == Tier::Aggregate {
            return Err(list_refused());
        }
        let chosen = self.listed(spec)?;
        let withdrawn_named = match spec {
            CohortSpec::Include(_) => &chosen & &self.withdrawn,
            _ => RoaringBitmap::new(),
        };
        let set = chosen - &self.withdrawn;
        if set.is_empty() {
            let reason = match withdrawn_named.len() {
                0 => "the sample list selects no participants".to_string(),
                n => format!(
                    "the sample list selects no participants: the {n} it names withdrew consent"
                ),
            };
            return Err(EngineError::InvalidArgument(reason));
        }
        Ok(Cohort::new(set).with_withdrawn_named(withdrawn_named))
    }

    /// Whether `id` is a registered sample ID in this engine's view (a pseudonym at the
    /// record tier), withdrawn participants included until a purge drops them; through the
    /// engine's hash table of IDs.
    pub fn is_sample_id(&self, id: &str) -> bool {
        let column = |i: usize| self.sample_batch.column(i).as_any();
        let Some(ids) = column(1).downcast_ref::<datafusion::arrow::array::StringArray>() else {
            return self.sample_records().iter().any(|s| s.sample_id == id);
        };
        let index = self
            .sample_ids
            .get_or_init(|| crate::sample_ids::SampleIds::new(ids));
        index.row(ids, id).is_some()
    }

    /// The registered participants a sample list chooses, withdrawn ones included.
    fn listed(&self, spec: &CohortSpec) -> Result<RoaringBitmap> {
        let none = RoaringBitmap::new();
        let column = |i: usize| self.sample_batch.column(i).as_any();
        let (Some(idx), Some(ids)) = (
            column(0).downcast_ref::<datafusion::arrow::array::UInt32Array>(),
            column(1).downcast_ref::<datafusion::arrow::array::StringArray>(),
        ) else {
            return spec.resolve(self.sample_records(), &none);
        };
        // The first list is found in one pass over the registry; from the second on (a
        // server's), through the engine's hash table of IDs.
        let resolved = self
            .lists_resolved
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if resolved == 0 && self.sample_ids.get().is_none() {
            let pairs = idx.values().iter().copied().zip(ids.iter().flatten());
            return spec.resolve_ids(pairs, &none);
        }
        let index = self
            .sample_ids
            .get_or_init(|| crate::sample_ids::SampleIds::new(ids));
        let find = |id: &str| index.row(ids, id).map(|row| idx.value(row));
        spec.resolve_with(find, idx.values(), &none)
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
}

/// The aggregate tier's refusal of a cohort chosen by ID.
fn list_refused() -> EngineError {
    EngineError::PermissionDenied(
        "the aggregate tier chooses participants by predicate, not by ID".into(),
    )
}
