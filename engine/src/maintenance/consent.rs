//! Consent withdrawal: a commit adding participants to the store's withdrawn set. From the
//! next snapshot on, every read path leaves them out (see `withdrawal_masks.rs` for
//! `variants`); their data stays in the files until `purge` rewrites them.

use cohortdb_store::Commit;
use cohortdb_store::log_entry::CommitKind;

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::policy::access_policy::Tier;

/// What [`CohortEngine::withdraw`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// The store version that records the withdrawal (the current one when nothing was new).
    pub version: u64,
    /// Participants newly withdrawn.
    pub withdrawn: usize,
    /// Participants named who had already withdrawn.
    pub already: usize,
}

impl CohortEngine {
    /// Withdraws the participants with these IDs, in one commit. Every ID must be registered
    /// (an unknown one is an error and nothing is committed); naming one who already withdrew
    /// is not an error. The log records `sample_idx` values only, never IDs. Admin tier only.
    pub async fn withdraw(&self, sample_ids: &[String]) -> Result<Withdrawal> {
        if self.tier() != Tier::Admin {
            return Err(EngineError::PermissionDenied(
                "withdrawing consent needs the admin tier".into(),
            ));
        }
        let by_id: std::collections::HashMap<&str, u32> = self
            .sample_records()
            .iter()
            .map(|r| (r.sample_id.as_str(), r.sample_idx))
            .collect();
        let unknown: Vec<&String> = sample_ids
            .iter()
            .filter(|id| !by_id.contains_key(id.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(EngineError::unknown_samples(unknown.into_iter().cloned()));
        }
        let mut new = Vec::new();
        let mut already = 0;
        for id in sample_ids {
            let Some(&idx) = by_id.get(id.as_str()) else {
                continue;
            };
            if self.withdrawn().contains(idx) || new.contains(&idx) {
                already += 1;
            } else {
                new.push(idx);
            }
        }
        if new.is_empty() {
            return Ok(Withdrawal {
                version: self.snapshot().version(),
                withdrawn: 0,
                already,
            });
        }
        new.sort_unstable();
        let commit = Commit {
            kind: CommitKind::Withdraw,
            add: Vec::new(),
            remove: Vec::new(),
            withdraw: new.clone(),
            retire: Vec::new(),
            operation: serde_json::json!({ "withdraw": new.len() }),
        };
        let snapshot = self.store().commit(self.snapshot(), commit).await?;
        Ok(Withdrawal {
            version: snapshot.version(),
            withdrawn: new.len(),
            already,
        })
    }
}
