//! The privacy ledger: what each project's aggregate-tier releases have spent of its privacy
//! budget, and the store's noise key. The engine decides what a release costs
//! (`engine/src/disclosure_control.rs`); this module only keeps the record.
//!
//! Invariants:
//! - `_privacy/noise_key` holds 32 random bytes (hex), written once with `PutMode::Create` by
//!   the first server that needs it; every server of the store reads the same key, so a
//!   question asked again gets the same noisy answer across requests, restarts and servers.
//! - A project's charges live in `_privacy/<project>/<n as 20 digits>.json`, numbered densely
//!   from 1, each written once with `PutMode::Create` and never changed. A writer that loses
//!   the race for a number re-reads the ledger and takes the next one, so no charge is lost.
//! - A charge names a release by an opaque key (a keyed digest of the cohort's predicate and
//!   members: never a sample ID) and its cost in zCDP rho.

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::location::StoreLocation;

/// Where the ledger lives, relative to the store root.
pub const PRIVACY_DIR: &str = "_privacy";

/// The version of a ledger file's format.
pub const LEDGER_FORMAT_VERSION: u32 = 1;

/// How many times an append retries after losing a race for a file number.
const MAX_APPEND_ATTEMPTS: usize = 16;

/// One release charged to a project's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// The release's key (hex): the same question about the same people has the same key.
    pub release: String,
    /// What it cost, in zCDP rho.
    pub rho: f64,
}

/// One ledger file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerFile {
    format_version: u32,
    project: String,
    time_unix_ms: u64,
    charges: Vec<Charge>,
}

/// The ledger of one store.
#[derive(Debug, Clone)]
pub struct PrivacyLedger {
    location: StoreLocation,
}

/// A project's directory name: the name itself when it is plain (letters, digits, `.-_`),
/// otherwise `x` and the hex of its bytes, so no name can leave `_privacy/`.
fn project_dir(project: &str) -> String {
    let plain = !project.is_empty()
        && !project.starts_with('.')
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if plain {
        project.to_string()
    } else {
        format!("x{}", hex::encode(project.as_bytes()))
    }
}

impl PrivacyLedger {
    /// The ledger of the store at `location`.
    pub fn new(location: StoreLocation) -> Self {
        Self { location }
    }

    /// The store's noise key, created (32 random bytes) by the first caller.
    pub async fn noise_key(&self) -> Result<[u8; 32]> {
        let path = self.location.path(&format!("{PRIVACY_DIR}/noise_key"));
        for _ in 0..2 {
            match self.location.object_store.get(&path).await {
                Ok(found) => {
                    let bytes = found
                        .bytes()
                        .await
                        .map_err(|e| StoreError::object_store(&path, e))?;
                    let text = String::from_utf8_lossy(&bytes);
                    let mut key = [0u8; 32];
                    hex::decode_to_slice(text.trim(), &mut key).map_err(|e| {
                        StoreError::Corrupt {
                            path: path.to_string(),
                            what: "noise key".into(),
                            reason: format!("not 64 hex digits: {e}"),
                        }
                    })?;
                    return Ok(key);
                }
                Err(object_store::Error::NotFound { .. }) => {
                    // Two v4 UUIDs: 244 random bits from the operating system.
                    let mut key = [0u8; 32];
                    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                    // Otherwise another server wrote it first: read theirs.
                    if self
                        .location
                        .put_new(&path, PutPayload::from(hex::encode(key)))
                        .await?
                    {
                        return Ok(key);
                    }
                }
                Err(e) => return Err(StoreError::object_store(&path, e)),
            }
        }
        Err(StoreError::Corrupt {
            path: path.to_string(),
            what: "noise key".into(),
            reason: "it could be neither read nor created".into(),
        })
    }

    /// Every charge of `project`, oldest first, and the number of the last file read.
    pub async fn charges(&self, project: &str) -> Result<(Vec<Charge>, u64)> {
        let prefix = self
            .location
            .path(&format!("{PRIVACY_DIR}/{}", project_dir(project)));
        let objects = self.location.list(&prefix).await?;
        let mut numbered: Vec<(u64, object_store::path::Path)> = objects
            .into_iter()
            .filter_map(|o| {
                let n = o.location.filename()?.strip_suffix(".json")?.parse().ok()?;
                Some((n, o.location))
            })
            .collect();
        numbered.sort_unstable_by_key(|(n, _)| *n);
        let mut charges = Vec::new();
        let mut last = 0;
        for (n, path) in numbered {
            let bytes = self.location.read(&path).await?;
            let file: LedgerFile =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::LogDecode {
                    path: path.to_string(),
                    source,
                })?;
            if file.format_version > LEDGER_FORMAT_VERSION {
                return Err(StoreError::UnsupportedFormatVersion {
                    path: path.to_string(),
                    found: file.format_version,
                    supported: LEDGER_FORMAT_VERSION,
                });
            }
            charges.extend(file.charges);
            last = n;
        }
        Ok((charges, last))
    }

    /// Appends `charges` to `project`'s ledger as one file after file `after` (or after the
    /// newest, when another writer took that number); returns the number written.
    pub async fn append(&self, project: &str, charges: &[Charge], after: u64) -> Result<u64> {
        let time_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let body = serde_json::to_vec(&LedgerFile {
            format_version: LEDGER_FORMAT_VERSION,
            project: project.to_string(),
            time_unix_ms,
            charges: charges.to_vec(),
        })
        .map_err(|e| StoreError::Corrupt {
            path: PRIVACY_DIR.into(),
            what: "ledger file".into(),
            reason: e.to_string(),
        })?;
        let body = Bytes::from(body);
        let mut next = after + 1;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let path = self.location.path(&format!(
                "{PRIVACY_DIR}/{}/{next:020}.json",
                project_dir(project)
            ));
            if self
                .location
                .put_new(&path, PutPayload::from(body.clone()))
                .await?
            {
                return Ok(next);
            }
            next = self.charges(project).await?.1 + 1;
        }
        Err(StoreError::CommitRetriesExhausted {
            attempts: MAX_APPEND_ATTEMPTS as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_append_and_read_back_across_writers() {
        let location = StoreLocation::open("memory://privacy-ledger-test", true).unwrap();
        let a = PrivacyLedger::new(location.clone());
        let b = PrivacyLedger::new(location);
        let key = a.noise_key().await.unwrap();
        assert_eq!(key, b.noise_key().await.unwrap());
        let charge = |r: &str| Charge {
            release: r.into(),
            rho: 0.25,
        };
        assert_eq!(a.append("p1", &[charge("x")], 0).await.unwrap(), 1);
        // b does not know of file 1: it takes file 2.
        assert_eq!(b.append("p1", &[charge("y")], 0).await.unwrap(), 2);
        assert_eq!(a.append("../p2", &[charge("z")], 0).await.unwrap(), 1);
        let (charges, last) = a.charges("p1").await.unwrap();
        assert_eq!(last, 2);
        assert_eq!(charges, vec![charge("x"), charge("y")]);
        assert_eq!(b.charges("../p2").await.unwrap().0, vec![charge("z")]);
        assert_eq!(project_dir("../p2"), "x2e2e2f7032");
    }
}
