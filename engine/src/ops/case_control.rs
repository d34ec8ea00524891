//! Case/control counts per ALT allele with the allelic tests of [`crate::ops::association_stats`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::ops::association_stats::{chi_square, fisher_exact, odds_ratio};
use crate::region::Region;

/// The columns of [`CohortEngine::case_control`].
pub const CASE_CONTROL_COLUMNS: [&str; 16] = [
    "chrom",
    "pos",
    "id",
    "ref",
    "alt",
    "ac_cases",
    "an_cases",
    "n_het_cases",
    "n_hom_alt_cases",
    "ac_controls",
    "an_controls",
    "n_het_controls",
    "n_hom_alt_controls",
    "odds_ratio",
    "p_fisher",
    "p_chi2",
];

/// The schema of [`CohortEngine::case_control`]'s batches.
pub fn case_control_schema() -> Arc<Schema> {
    let kind = |name: &str| match name {
        "chrom" | "id" | "ref" | "alt" => DataType::Utf8,
        "odds_ratio" | "p_fisher" | "p_chi2" => DataType::Float64,
        _ => DataType::Int64,
    };
    Arc::new(Schema::new(
        CASE_CONTROL_COLUMNS
            .iter()
            .map(|name| Field::new(*name, kind(name), true))
            .collect::<Vec<_>>(),
    ))
}

impl CohortEngine {
    /// Per ALT in `regions`: AC, AN, het and hom-alt counts among `cases` and among `controls`,
    /// the allelic odds ratio, Fisher's exact two-sided p and the allelic chi-square p (see
    /// [`crate::ops::association_stats`]), ordered by contig, position, then input order (record, then ALT).
    pub async fn case_control(
        &self,
        regions: &[Region],
        cases: &Cohort,
        controls: &Cohort,
    ) -> Result<Vec<RecordBatch>> {
        self.check_regions(regions)?;
        // Whether two cohorts overlap is itself an answer about participants: the aggregate
        // tier is not told (its counts are as asked); the other tiers are refused.
        if self.tier() != crate::policy::access_policy::Tier::Aggregate {
            let both = cases.intersection_len(controls);
            if both > 0 {
                return Err(crate::error::EngineError::InvalidArgument(format!(
                    "{both} participants are both cases and controls (cases {}, controls {}): \
                     a participant belongs to one group",
                    cases.len(),
                    controls.len()
                )));
            }
        }
        let split = crate::region_tasks::SplitOperation::CaseControl;
        let sets = [cases.set(), controls.set()];
        if let Some(batches) = self.on_workers(split, regions, &sets).await? {
            return Ok(batches);
        }
        let noises = (self.cohort_noise(cases)?, self.cohort_noise(controls)?);
        let mut batch = self
            .counts(regions, &[(cases, "_cases"), (controls, "_controls")])
            .await?;
        // The aggregate tier's counts are released first, and the tests computed from what
        // was released: a p-value of the exact counts would give them away.
        let mut suppressed = None;
        if let (Some(a), Some(b)) = noises {
            let released = crate::policy::count_suppression::release_counts(
                &batch,
                &[("_cases", &a), ("_controls", &b)],
                self.access().min_count,
            )?;
            let last = released.num_columns() - 1;
            suppressed = Some(released.column(last).clone());
            batch = released
                .project(&(0..last).collect::<Vec<_>>())
                .map_err(DataFusionError::from)?;
        }
        let int = |name: &str| -> Result<&Int64Array> {
            Ok(batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?)
        };
        let (ac1, an1, ac2, an2) = (
            int("ac_cases")?,
            int("an_cases")?,
            int("ac_controls")?,
            int("an_controls")?,
        );
        // Fisher's exact test walks the spread of each table's distribution (thousands of
        // terms at 10^6 participants): rows are tested on every core.
        use rayon::prelude::*;
        let per_row: Vec<[Option<f64>; 3]> = (0..batch.num_rows())
            .into_par_iter()
            .map(|i| {
                let value = |a: &Int64Array| a.is_valid(i).then(|| a.value(i));
                let (Some(ac1), Some(an1), Some(ac2), Some(an2)) =
                    (value(ac1), value(an1), value(ac2), value(an2))
                else {
                    return [None; 3];
                };
                let a = ac1.max(0) as u64;
                let b = (an1 - ac1).max(0) as u64;
                let c = ac2.max(0) as u64;
                let d = (an2 - ac2).max(0) as u64;
                let finite = |v: f64| (!v.is_nan()).then_some(v);
                [
                    finite(odds_ratio(a, b, c, d)),
                    Some(fisher_exact(a, b, c, d)),
                    finite(chi_square(a, b, c, d)),
                ]
            })
            .collect();
        let stats: [Vec<Option<f64>>; 3] =
            std::array::from_fn(|k| per_row.iter().map(|row| row[k]).collect());
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for values in stats {
            columns.push(Arc::new(Float64Array::from(values)));
        }
        let mut schema = case_control_schema();
        if let Some(flags) = suppressed {
            columns.push(flags);
            schema = crate::policy::count_suppression::suppressed_schema(&schema);
        }
        Ok(vec![
            RecordBatch::try_new(schema, columns).map_err(DataFusionError::from)?,
        ])
    }
}
