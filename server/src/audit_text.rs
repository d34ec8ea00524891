//! What an audit record holds of a request: the message as text, its sample lists' IDs as
//! pseudonyms ([`crate::audit_pseudonyms`]), and each list of more than [`INLINE_IDS`] IDs
//! replaced by the path of the list file the audit trail keeps for it
//! ([`AuditLog::keep_list`]). A request naming 100,000 participants adds a line to the trail, not
//! 1.4 MB of text, and the same list asked again adds no file; the record's hash still covers the
//! list, through the file's name.

use bytes::Bytes;
use cohortdb_proto::v1 as pb;
use cohortdb_store::audit_log::AuditLog;
use sha2::{Digest, Sha256};

use crate::audit_pseudonyms::AuditPseudonyms;
use crate::server_error::ServerError;

/// Lists of at most this many IDs stay in the record's text.
pub const INLINE_IDS: usize = 64;

/// A request message as the audit trail records it.
pub trait AuditedRequest: std::fmt::Debug {
    /// The request's cohorts, whose sample lists may be long.
    fn cohorts(&mut self) -> Vec<&mut Option<pb::Cohort>> {
        Vec::new()
    }
}

macro_rules! cohorts_in {
    ($message:ty => $($field:ident),*) => {
        impl AuditedRequest for $message {
            fn cohorts(&mut self) -> Vec<&mut Option<pb::Cohort>> {
                vec![$(&mut self.$field),*]
            }
        }
    };
}

cohorts_in!(pb::AlleleFrequenciesRequest => cohort);
cohorts_in!(pb::CoverageRequest => cohort);
cohorts_in!(pb::CarriersRequest => cohort);
cohorts_in!(pb::CaseControlRequest => cases, controls);
cohorts_in!(pb::AssociationRequest => cohort);
cohorts_in!(pb::ExportRequest => cohort);
impl AuditedRequest for pb::SampleGenotypesRequest {}

/// A SQL text, recorded as itself in the audit trail.
pub struct SqlText(pub String);

impl AuditedRequest for SqlText {}

impl std::fmt::Debug for SqlText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sample list of `cohort`, if it is one.
fn ids_of(cohort: &mut Option<pb::Cohort>) -> Option<&mut Vec<String>> {
    match cohort.as_mut()?.selection.as_mut()? {
        pb::cohort::Selection::Samples(list) => Some(&mut list.ids),
        _ => None,
    }
}

/// The text of `message` for its audit record, every ID of its sample lists written as its
/// pseudonym ([`AuditPseudonyms`]). Each long list is kept through `audit` and named by its
/// file; without `audit` (a request refused before it ran) by its count and SHA-256 only.
/// `message` is left as it came.
pub async fn audit_text<M: AuditedRequest>(
    message: &mut M,
    pseudonyms: &AuditPseudonyms,
    audit: Option<&AuditLog>,
) -> Result<String, ServerError> {
    // Take the lists out while the message is formatted, and put them back after.
    let mut taken: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, cohort) in message.cohorts().into_iter().enumerate() {
        if let Some(ids) = ids_of(cohort) {
            taken.push((i, std::mem::take(ids)));
        }
    }
    let mut placeholders = Vec::with_capacity(taken.len());
    for (_, ids) in &taken {
        let ids: Vec<String> = ids.iter().map(|id| pseudonyms.pseudonym(id)).collect();
        if ids.len() <= INLINE_IDS {
            placeholders.push(ids);
            continue;
        }
        let mut text = ids.join("\n");
        text.push('\n');
        placeholders.push(vec![match audit {
            Some(audit) => format!(
                "{} IDs in {}",
                ids.len(),
                audit.keep_list(Bytes::from(text)).await?
            ),
            None => format!(
                "{} IDs with SHA-256 {} (not kept)",
                ids.len(),
                hex::encode(Sha256::digest(text.as_bytes()))
            ),
        }]);
    }
    let shown = taken.iter().map(|(i, _)| *i).zip(placeholders);
    put_lists(message, shown.collect());
    let text = format!("{message:?}");
    put_lists(message, taken);
    Ok(text)
}

/// Sets the sample list of the `i`th cohort of `message` for each `(i, list)`.
fn put_lists<M: AuditedRequest>(message: &mut M, lists: Vec<(usize, Vec<String>)>) {
    let mut cohorts = message.cohorts();
    for (i, list) in lists {
        if let Some(ids) = cohorts.get_mut(i).and_then(|c| ids_of(c)) {
            *ids = list;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: usize) -> pb::AlleleFrequenciesRequest {
        pb::AlleleFrequenciesRequest {
            regions: vec!["chr20".into()],
            cohort: Some(pb::Cohort {
                selection: Some(pb::cohort::Selection::Samples(pb::SampleIds {
                    ids: (0..n).map(|i| format!("S{i}")).collect(),
                })),
            }),
        }
    }

    #[tokio::test]
    async fn lists_are_pseudonymised_short_ones_stay_and_long_ones_are_named_by_their_file() {
        let p = AuditPseudonyms::new(b"a test secret of the audit");
        let mut short = request(INLINE_IDS);
        let text = audit_text(&mut short, &p, None).await.unwrap();
        assert!(
            text.contains(&format!("\"{}\"", p.pseudonym("S63"))),
            "{text}"
        );
        assert!(!text.contains("\"S63\""), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let store =
            cohortdb_store::Store::open_or_create(&dir.path().display().to_string()).unwrap();
        let audit = AuditLog::new(store.location().clone());
        let mut long = request(1000);
        let kept = request(1000);
        let text = audit_text(&mut long, &p, Some(&audit)).await.unwrap();
        assert_eq!(long, kept, "the message is left as it came");
        assert!(!text.contains("S999"), "{text}");
        let expected: String = (0..1000)
            .map(|i| format!("{}\n", p.pseudonym(&format!("S{i}"))))
            .collect();
        let name = hex::encode(Sha256::digest(expected.as_bytes()));
        assert!(
            text.contains(&format!("1000 IDs in _audit/lists/{name}.txt")),
            "{text}"
        );
        let file = dir.path().join(format!("_audit/lists/{name}.txt"));
        assert_eq!(std::fs::read_to_string(file).unwrap(), expected);
        let refused = audit_text(&mut long, &p, None).await.unwrap();
        assert!(refused.contains(&format!("1000 IDs with SHA-256 {name} (not kept)")));
    }
}
