//! Named cohorts: a predicate saved under a name (`cohortdb cohort save NAME --where PRED`, one
//! commit) and used as `--cohort @NAME`. The predicate, not the member list, is saved: a
//! cohort grows with the phenotype tables; a snapshot read at an older version sees the
//! definition of that version.

use bytes::Bytes;
use cohortdb_store::Commit;
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};

/// The stored definition of a named cohort.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CohortDefinition {
    /// The name.
    pub name: String,
    /// The SQL predicate over `samples` and `phenotypes`.
    pub predicate: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl CohortEngine {
    /// The definition of the saved cohort `name`.
    pub async fn named_cohort(&self, name: &str) -> Result<CohortDefinition> {
        let file = self
            .snapshot()
            .state
            .named_files(FileKind::Cohort)
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.path.clone())
            .ok_or_else(|| EngineError::Cohort {
                name: name.to_string(),
                reason: "no cohort of that name is saved".into(),
            })?;
        let bytes = self.store().read_file(&file).await?;
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Cohort {
            name: name.to_string(),
            reason: format!("unreadable definition {file}: {e}"),
        })
    }

    /// Saved cohorts by name.
    pub async fn named_cohorts(&self) -> Result<Vec<CohortDefinition>> {
        let names: Vec<String> = self
            .snapshot()
            .state
            .named_files(FileKind::Cohort)
            .map(|(n, _)| n.to_string())
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.named_cohort(&name).await?);
        }
        Ok(out)
    }

    /// Saves (or redefines) the cohort `name` as one commit, after checking that `predicate`
    /// resolves; returns the committed version and the cohort's current size.
    pub async fn save_cohort(&self, name: &str, predicate: &str) -> Result<(u64, u64)> {
        if !valid_name(name) {
            return Err(EngineError::Cohort {
                name: name.to_string(),
                reason: "names are letters, digits, _ and -".into(),
            });
        }
        let size = self
            .cohort(&crate::CohortSpec::Predicate(predicate.to_string()))
            .await?
            .len();
        let definition = CohortDefinition {
            name: name.to_string(),
            predicate: predicate.to_string(),
        };
        let json = serde_json::to_vec_pretty(&definition).map_err(|e| EngineError::Cohort {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let path = format!("cohorts/{name}/{}.json", uuid::Uuid::new_v4());
        let bytes = json.len() as u64;
        let store = self.store();
        store.put_new_file(&path, Bytes::from(json)).await?;
        let snapshot = self.snapshot();
        let commit = Commit {
            kind: CommitKind::Cohort,
            add: vec![FileEntry {
                table: Some(name.to_string()),
                ..FileEntry::new(path.clone(), FileKind::Cohort, size, bytes)
            }],
            remove: snapshot
                .state
                .named_files(FileKind::Cohort)
                .filter(|(n, _)| *n == name)
                .map(|(_, f)| f.path.clone())
                .collect(),
            withdraw: Vec::new(),
            retire: Vec::new(),
            operation: serde_json::json!({"cohort": name, "where": predicate}),
        };
        let committed = store.commit_or_discard(snapshot, commit).await?;
        Ok((committed.state.version, size))
    }
}
