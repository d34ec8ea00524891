//! Named cohorts: a predicate (`cohortdb cohort save NAME --where PRED`) or a list of sample
//! IDs (`cohortdb cohort save NAME -S FILE`) saved under a name, one commit, and used as
//! `--cohort @NAME`. A predicate cohort grows with the phenotype tables; a list cohort keeps its
//! members, less any who withdraw. A snapshot read at an older version sees the definition of
//! that version. A server resolves a list once per snapshot (the engine keeps its members),
//! so a large list saved once is cheaper than the same list sent with every request.

use bytes::Bytes;
use cohortdb_store::Commit;
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};

use crate::cohort::cohort_spec::CohortSpec;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};

/// The stored definition of a named cohort: `{"name": .., "predicate": ..}` or
/// `{"name": .., "samples": [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CohortDefinition {
    /// The name.
    pub name: String,
    /// Who belongs to it.
    #[serde(flatten)]
    pub members: SavedMembers,
}

/// What a saved cohort stands for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedMembers {
    /// A SQL predicate over `samples` and `phenotypes`.
    Predicate(String),
    /// Sample IDs, as `-S FILE` names them (the IDs of the tier that uses the cohort: at the
    /// record tier, the project's pseudonyms).
    Samples(Vec<String>),
}

impl SavedMembers {
    /// The definition in one line, as `cohortdb cohort list` shows it.
    pub fn describe(&self) -> String {
        match self {
            Self::Predicate(p) => p.clone(),
            Self::Samples(ids) => format!("{} sample IDs", ids.len()),
        }
    }
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

    /// Saves (or redefines) the cohort `name` as one commit, after checking that `members`
    /// resolve (a list: every ID known, at least one participant); returns the committed version
    /// and the cohort's current size.
    pub async fn save_cohort(&self, name: &str, members: SavedMembers) -> Result<(u64, u64)> {
        if !valid_name(name) {
            return Err(EngineError::Cohort {
                name: name.to_string(),
                reason: "names are letters, digits, _ and -".into(),
            });
        }
        let size = match &members {
            SavedMembers::Predicate(p) => self.cohort(&CohortSpec::Predicate(p.clone())).await?,
            SavedMembers::Samples(ids) if ids.is_empty() => {
                return Err(EngineError::Cohort {
                    name: name.to_string(),
                    reason: "the sample list is empty".into(),
                });
            }
            SavedMembers::Samples(ids) => self.cohort(&CohortSpec::Include(ids.clone())).await?,
        }
        .len();
        let operation = match &members {
            SavedMembers::Predicate(p) => serde_json::json!({"cohort": name, "where": p}),
            SavedMembers::Samples(ids) => serde_json::json!({"cohort": name, "samples": ids.len()}),
        };
        let definition = CohortDefinition {
            name: name.to_string(),
            members,
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
            operation,
        };
        let committed = store.commit_or_discard(snapshot, commit).await?;
        Ok((committed.state.version, size))
    }
}
