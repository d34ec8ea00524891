//! The engine's admission of what a request asks, under its access policy
//! ([`crate::policy::access_policy`]): operations refused to the aggregate tier, the grammar of
//! its cohort predicates, and the disclosure control every cohort passes (its release charged,
//! a cohort too small or leaving too few out refused).

use roaring::RoaringBitmap;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::access_policy::{EVERYONE, Tier, mixed_kinds};
use crate::policy::disclosure_control::CellNoise;

impl CohortEngine {
    /// Refuses an operation that returns rows about single participants to the aggregate tier.
    pub(crate) fn require_record_level(&self, operation: &str) -> Result<()> {
        if self.tier() == Tier::Aggregate {
            return Err(EngineError::PermissionDenied(format!(
                "{operation} returns individual-level data, which the aggregate tier may not see"
            )));
        }
        Ok(())
    }

    /// Refuses, for the aggregate tier, a cohort predicate that names the sample registry's
    /// own columns (IDs and source files single out participants) or goes beyond columns,
    /// literals, comparisons, `AND`/`OR`/`NOT`, `IS [NOT] NULL`, `BETWEEN`, `IN (...)` and
    /// `LIKE`: functions, `CASE`, casts, arithmetic and subqueries could fail on one
    /// participant's values and so tell by an error that such a participant exists.
    ///
    /// Operands compared with each other must be of one kind (numbers, text, booleans): a
    /// text column compared with a number would be cast row by row and fail on the first value
    /// that is not a number, which tells that such a value exists.
    pub(crate) fn check_aggregate_predicate(
        &self,
        predicate: &datafusion::prelude::Expr,
        schema: &datafusion::common::DFSchema,
    ) -> Result<()> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::{Expr, Operator};
        if self.tier() != Tier::Aggregate {
            return Ok(());
        }
        let mut refused: Option<String> = None;
        let _ = predicate.apply(|e| {
            let allowed = match e {
                Expr::Column(c) => {
                    if ["sample_id", "sample_idx", "source"].contains(&c.name.as_str()) {
                        refused = Some(format!("choose participants by {}", c.name));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    true
                }
                Expr::BinaryExpr(b) => matches!(
                    b.op,
                    Operator::Eq
                        | Operator::NotEq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::And
                        | Operator::Or
                        | Operator::IsDistinctFrom
                        | Operator::IsNotDistinctFrom
                ),
                Expr::Literal(..)
                | Expr::Alias(_)
                | Expr::Not(_)
                | Expr::IsNull(_)
                | Expr::IsNotNull(_)
                | Expr::IsTrue(_)
                | Expr::IsFalse(_)
                | Expr::IsNotTrue(_)
                | Expr::IsNotFalse(_)
                | Expr::IsUnknown(_)
                | Expr::IsNotUnknown(_)
                | Expr::Between(_)
                | Expr::InList(_)
                | Expr::Like(_)
                | Expr::Negative(_) => true,
                _ => false,
            };
            if !allowed {
                refused = Some(format!("use {} in a cohort predicate", e.variant_name()));
                return Ok(TreeNodeRecursion::Stop);
            }
            if let Some(why) = mixed_kinds(e, schema) {
                refused = Some(why);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        match refused {
            Some(what) => Err(EngineError::PermissionDenied(format!(
                "the aggregate tier may not {what}"
            ))),
            None => Ok(()),
        }
    }

    /// The noise of `cohort`'s counts: `None` outside the aggregate tier.
    pub(crate) fn cohort_noise(&self, cohort: &Cohort) -> Result<Option<CellNoise>> {
        if self.tier() != Tier::Aggregate {
            return Ok(None);
        }
        let release = cohort.release().ok_or_else(|| {
            EngineError::PermissionDenied(
                "the aggregate tier counts only cohorts it admitted".into(),
            )
        })?;
        Ok(Some(self.disclosure()?.noise(release)))
    }

    /// Admits `set`, chosen by `label` (a predicate's [`cohort_label`], or [`EVERYONE`]). At
    /// the aggregate tier: charges its release to the project's budget (once per label and
    /// members), then refuses it when its noisy size, or for a predicate the noisy number of
    /// participants it leaves out, is between 1 and k-1. The refusal reads the same whatever
    /// the true counts.
    pub(crate) fn admit(&self, label: &str, set: RoaringBitmap) -> Result<Cohort> {
        if self.tier() != Tier::Aggregate {
            // An empty cohort is a mistake (a misspelt value), not a question with the answer 0.
            // The aggregate tier's floor below refuses it as it refuses any small cohort, so
            // its refusal says no more than that.
            if set.is_empty() && label != EVERYONE {
                return Err(EngineError::InvalidArgument(format!(
                    "the cohort {label:?} selects no participants (of {} not withdrawn)",
                    self.everyone().len()
                )));
            }
            return Ok(Cohort::new(set));
        }
        let control = self.disclosure()?;
        let release = self.release_of(label, &set)?;
        control.charge(&release)?;
        let k = i64::from(self.access().min_count);
        let [e_size, e_left_out] = control.noise(&release).pair(&[b"cohort size"]);
        let size = CellNoise::apply(set.len() as i64, e_size);
        let left_out = CellNoise::apply(
            self.everyone().len() as i64 - self.everyone().intersection_len(&set) as i64,
            e_left_out,
        );
        if size < k || (label != EVERYONE && left_out > 0 && left_out < k) {
            return Err(EngineError::PermissionDenied(format!(
                "the cohort has, or leaves out, fewer than about {k} participants"
            )));
        }
        Ok(Cohort::released(set, release))
    }
}
