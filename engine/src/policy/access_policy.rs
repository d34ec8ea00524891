//! Who may see what: access tiers, per-project pseudonyms and the disclosure control that the
//! engine applies to every cohort and count it returns (an engine opened `with_access`).
//!
//! Invariants:
//! - An **aggregate** engine never returns a row about one participant: the operations that
//!   would (carriers, one sample's genotypes, export) and the SQL tables that hold such rows
//!   (`samples`, phenotype tables, `genotypes`, bitmap and FORMAT columns of `variants`) are
//!   refused or absent.
//! - Every cohort an aggregate engine evaluates is admitted (the engine's `admit`): its
//!   release is charged to the project's privacy budget, and it is refused when its noisy
//!   size, or the noisy number it leaves out, is between 1 and k-1. Every count it returns
//!   carries the release's noise and is suppressed when its noisy value is between 1 and k-1
//!   ([`crate::policy::disclosure_control`], [`crate::policy::count_suppression`]). So no answer, nor any
//!   combination of answers within the budget, depends much on one participant.
//! - Aggregate cohort predicates are checked before any row is read: only columns, literals
//!   of the column's own kind, comparisons and logic, so that no error depends on the data.
//! - A **record** engine sees pseudonyms instead of sample IDs everywhere: the HMAC-SHA-256 of
//!   the ID keyed by the project's secret, so stable within a project and unlinkable across.
//! - **admin** sees the store as it is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Result;
use crate::policy::disclosure_control::{DisclosureControl, ReleaseKey};

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
    /// The noise and privacy budget of the project (aggregate tier: required).
    pub disclosure: Option<Arc<DisclosureControl>>,
    /// The phenotype tables the project may read and, per table, its columns (`*` for all);
    /// `None` for every table and column. `sample_id` and `sample_idx` always stay.
    pub phenotypes: Option<PhenotypeAllowList>,
}

/// Phenotype tables a project may read, each with its allowed columns (`*`: every column).
pub type PhenotypeAllowList = std::collections::BTreeMap<String, Vec<String>>;

impl Access {
    /// Unrestricted access, as the command line has.
    pub fn admin() -> Self {
        Self {
            tier: Tier::Admin,
            min_count: DEFAULT_MIN_COUNT,
            pseudonym_secret: None,
            disclosure: None,
            phenotypes: None,
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

/// The sample registry batch with `sample_id` replaced by pseudonyms and `source` (a file name
/// that may hold the ID) emptied.
pub(crate) fn pseudonymous_samples(
    batch: &datafusion::arrow::array::RecordBatch,
    secret: &[u8],
) -> Result<datafusion::arrow::array::RecordBatch> {
    use datafusion::arrow::array::{RecordBatch, StringArray};
    let ids = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("sample_id is not text".into())
        })?;
    let pseudonyms: StringArray = ids
        .iter()
        .map(|id| id.map(|id| pseudonym(secret, id)))
        .collect();
    // Inputs' paths are not for a project's eyes: every source is "".
    let sources =
        datafusion::arrow::array::DictionaryArray::<datafusion::arrow::datatypes::Int32Type>::new(
            vec![0; batch.num_rows()].into(),
            Arc::new(StringArray::from(vec![""])),
        );
    Ok(RecordBatch::try_new(
        batch.schema(),
        vec![
            batch.column(0).clone(),
            Arc::new(pseudonyms),
            Arc::new(sources),
        ],
    )
    .map_err(datafusion::error::DataFusionError::from)?)
}

/// The access state of one engine: its policy, and the release of each cohort label it has
/// admitted (a label means the same participants for the whole snapshot).
#[derive(Debug, Clone)]
pub(crate) struct AccessState {
    pub(crate) access: Access,
    pub(crate) releases: Arc<Mutex<HashMap<String, ReleaseKey>>>,
    /// Aggregate tier: which rows of a decoded row group are listed sites, by the group's
    /// address (a weak reference keeps the allocation, so the address is never reused while
    /// the entry lives, without keeping the decoded rows in memory).
    pub(crate) listed: Arc<Mutex<ListedSites>>,
}

/// [`AccessState::listed`].
pub(crate) type ListedSites = HashMap<
    usize,
    (
        std::sync::Weak<crate::rows::site_cache::SiteRows>,
        Arc<Vec<bool>>,
    ),
>;

impl AccessState {
    pub(crate) fn new(access: Access) -> Self {
        Self {
            access,
            releases: Default::default(),
            listed: Default::default(),
        }
    }

    pub(crate) fn tier(&self) -> Tier {
        self.access.tier
    }
}

/// A predicate's label as releases key it: its words, white space folded.
pub(crate) fn cohort_label(predicate: &str) -> String {
    predicate.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a value is, for comparing: numbers with numbers, text with text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Boolean,
    /// Dates and timestamps: compared with each other, or with a text literal (cast once,
    /// while planning).
    Time,
    Null,
    Other,
}

fn kind_of(expr: &datafusion::prelude::Expr, schema: &datafusion::common::DFSchema) -> Kind {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::ExprSchemable;
    match expr.get_type(schema) {
        Ok(DataType::Null) => Kind::Null,
        Ok(t) if t.is_numeric() => Kind::Number,
        Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => Kind::Text,
        Ok(DataType::Boolean) => Kind::Boolean,
        Ok(t) if t.is_temporal() => Kind::Time,
        Ok(DataType::Dictionary(_, value)) if matches!(*value, DataType::Utf8) => Kind::Text,
        _ => Kind::Other,
    }
}

/// Why the operands of `expr` may not be compared, if they may not: different kinds (a NULL
/// literal goes with anything).
pub(crate) fn mixed_kinds(
    expr: &datafusion::prelude::Expr,
    schema: &datafusion::common::DFSchema,
) -> Option<String> {
    use datafusion::logical_expr::Expr;
    let operands: Vec<&Expr> = match expr {
        Expr::BinaryExpr(b)
            if !matches!(
                b.op,
                datafusion::logical_expr::Operator::And | datafusion::logical_expr::Operator::Or
            ) =>
        {
            vec![&b.left, &b.right]
        }
        Expr::Between(b) => vec![&b.expr, &b.low, &b.high],
        Expr::InList(l) => std::iter::once(l.expr.as_ref())
            .chain(l.list.iter())
            .collect(),
        Expr::Like(l) => vec![&l.expr, &l.pattern],
        _ => return None,
    };
    let kinds: Vec<Kind> = operands
        .iter()
        .map(|o| match (kind_of(o, schema), o) {
            // A text literal beside a date is cast once, while planning: no row is read.
            (Kind::Text, Expr::Literal(..))
                if operands.iter().any(|x| kind_of(x, schema) == Kind::Time) =>
            {
                Kind::Time
            }
            (kind, _) => kind,
        })
        .filter(|k| *k != Kind::Null)
        .collect();
    if kinds.contains(&Kind::Other) {
        return Some(format!("compare values of this type in {expr}"));
    }
    let first = kinds.first()?;
    if matches!(expr, Expr::Like(_)) && *first != Kind::Text {
        return Some(format!("use LIKE on what is not text in {expr}"));
    }
    kinds
        .iter()
        .any(|k| k != first)
        .then(|| format!("compare a number, text or boolean with another kind in {expr}"))
}

/// The label of every participant.
pub(crate) const EVERYONE: &str = "TRUE";

#[cfg(test)]
mod tests {
    use super::*;

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
}
