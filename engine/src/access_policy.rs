//! Who may see what: access tiers, per-project pseudonyms and the disclosure guard that the
//! engine applies to every cohort and count it returns ([`CohortEngine::with_access`]).
//!
//! Invariants:
//! - An **aggregate** engine never returns a row about one participant: the operations that
//!   would (carriers, one sample's genotypes, export) and the SQL tables that hold such rows
//!   (`samples`, phenotype tables, `genotypes`, bitmap and FORMAT columns of `variants`) are
//!   refused or absent.
//! - Every cohort an aggregate engine evaluates (by predicate, name or ID list) is admitted by
//!   one [`DisclosureGuard`] per request: a cohort of 1 to k-1 participants, a cohort whose
//!   complement among all participants has 1 to k-1, and two cohorts of one request whose
//!   symmetric difference has 1 to k-1 are refused. So no count is derivable by subtracting
//!   two results of one response.
//! - Counts of participants or alleles from 1 to k-1 are suppressed per row (see
//!   [`crate::count_suppression`]).
//! - A **record** engine sees pseudonyms instead of sample IDs everywhere: the HMAC-SHA-256 of
//!   the ID keyed by the project's secret, so stable within a project and unlinkable across.
//! - **admin** sees the store as it is.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use roaring::RoaringBitmap;
use sha2::Sha256;

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};

/// The default smallest count an aggregate-tier principal may see.
pub const DEFAULT_MIN_COUNT: u32 = 20;

/// What a principal may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Aggregate results only, with small counts suppressed.
    Aggregate,
    /// Individual-level results with pseudonymous sample IDs.
    Record,
    /// Everything, with the stored sample IDs.
    Admin,
}

impl Tier {
    /// The tier's name as the tokens file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Aggregate => "aggregate",
            Tier::Record => "record",
            Tier::Admin => "admin",
        }
    }

    /// Parses `aggregate`, `record` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "aggregate" => Some(Tier::Aggregate),
            "record" => Some(Tier::Record),
            "admin" => Some(Tier::Admin),
            _ => None,
        }
    }
}

/// The policy an engine applies: a tier, the suppression threshold k and, for the record
/// tier, the project's pseudonym secret.
#[derive(Debug, Clone)]
pub struct Access {
    /// The tier.
    pub tier: Tier,
    /// Counts from 1 to `min_count - 1` are suppressed for the aggregate tier.
    pub min_count: u32,
    /// The project's secret that keys the pseudonyms (record tier).
    pub pseudonym_secret: Option<String>,
}

impl Access {
    /// Unrestricted access, as the command line has.
    pub fn admin() -> Self {
        Self {
            tier: Tier::Admin,
            min_count: DEFAULT_MIN_COUNT,
            pseudonym_secret: None,
        }
    }
}

/// The pseudonym of `sample_id` in the project whose secret is `secret`: 32 hex digits of
/// HMAC-SHA-256(secret, sample_id), prefixed with `P`.
pub fn pseudonym(secret: &[u8], sample_id: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(sample_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(33);
    out.push('P');
    for byte in digest.iter().take(16) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Admits the cohorts of one aggregate-tier request (see the module's invariants).
#[derive(Debug)]
pub struct DisclosureGuard {
    min_count: u64,
    admitted: Mutex<Vec<RoaringBitmap>>,
}

impl DisclosureGuard {
    /// A guard with threshold `min_count`.
    pub fn new(min_count: u32) -> Self {
        Self {
            min_count: u64::from(min_count),
            admitted: Mutex::new(Vec::new()),
        }
    }

    fn small(&self, n: u64) -> bool {
        n > 0 && n < self.min_count
    }

    /// Admits `cohort`, drawn from `everyone`, or says why not.
    pub fn admit(&self, cohort: &RoaringBitmap, everyone: &RoaringBitmap) -> Result<()> {
        let k = self.min_count;
        // An empty cohort is refused too: otherwise 0 (allowed) and 1 (refused) would tell
        // whether someone matching a predicate is in the biobank.
        if cohort.len() < k {
            return Err(EngineError::PermissionDenied(format!(
                "the cohort has fewer than {k} participants"
            )));
        }
        if self.small(everyone.len() - everyone.intersection_len(cohort)) {
            return Err(EngineError::PermissionDenied(format!(
                "the cohort leaves out fewer than {k} participants"
            )));
        }
        let mut admitted = self
            .admitted
            .lock()
            .map_err(|_| EngineError::PermissionDenied("disclosure guard poisoned".into()))?;
        for earlier in admitted.iter() {
            if self.small(earlier.symmetric_difference_len(cohort)) {
                return Err(EngineError::PermissionDenied(format!(
                    "two cohorts of one request differ by fewer than {k} participants"
                )));
            }
        }
        admitted.push(cohort.clone());
        Ok(())
    }
}

/// The access state of one engine: its policy and the guard of the current request.
#[derive(Debug, Clone)]
pub(crate) struct AccessState {
    pub(crate) access: Access,
    pub(crate) guard: Arc<DisclosureGuard>,
}

impl AccessState {
    pub(crate) fn new(access: Access) -> Self {
        let guard = Arc::new(DisclosureGuard::new(access.min_count));
        Self { access, guard }
    }

    pub(crate) fn tier(&self) -> Tier {
        self.access.tier
    }
}

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
    pub(crate) fn check_aggregate_predicate(
        &self,
        predicate: &datafusion::prelude::Expr,
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
            Ok(TreeNodeRecursion::Continue)
        });
        match refused {
            Some(what) => Err(EngineError::PermissionDenied(format!(
                "the aggregate tier may not {what}"
            ))),
            None => Ok(()),
        }
    }

    /// Admits a cohort through the request's guard (aggregate tier only).
    pub(crate) fn admit(&self, cohort: &RoaringBitmap) -> Result<()> {
        if self.tier() != Tier::Aggregate {
            return Ok(());
        }
        self.access_state().guard.admit(cohort, self.everyone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: u32, to: u32) -> RoaringBitmap {
        (from..to).collect()
    }

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = pseudonym(b"project-a", "HG00096");
        assert_eq!(a, pseudonym(b"project-a", "HG00096"));
        assert_ne!(a, pseudonym(b"project-b", "HG00096"));
        assert_ne!(a, pseudonym(b"project-a", "HG00097"));
        assert_eq!(a.len(), 33);
        // RFC 4231 test case 2: HMAC-SHA-256("Jefe", "what do ya want for nothing?").
        assert_eq!(
            pseudonym(b"Jefe", "what do ya want for nothing?"),
            "P5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn guard_refuses_small_cohorts_complements_and_differences() {
        let everyone = range(0, 1000);
        let guard = DisclosureGuard::new(20);
        assert!(guard.admit(&range(0, 19), &everyone).is_err());
        assert!(guard.admit(&range(0, 990), &everyone).is_err());
        assert!(guard.admit(&RoaringBitmap::new(), &everyone).is_err());
        assert!(guard.admit(&range(0, 500), &everyone).is_ok());
        assert!(guard.admit(&range(0, 500), &everyone).is_ok());
        assert!(guard.admit(&range(0, 505), &everyone).is_err());
        assert!(guard.admit(&range(0, 520), &everyone).is_ok());
        assert!(guard.admit(&range(500, 1000), &everyone).is_ok());
    }
}
