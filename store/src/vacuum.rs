//! `vacuum`: deletes the data files no live snapshot needs.
//!
//! A file outside the newest snapshot is deleted when the commit that removed it is older than
//! the grace period (readers of snapshots younger than that still find their files), and a
//! file no commit ever added (left by a writer that crashed before committing) when it is
//! older than the grace period (a writer may be about to commit it). The commit log, its
//! checkpoints, the audit trail and the privacy ledger are never touched.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;

use crate::commit_log::Store;
use crate::error::{Result, StoreError};

/// What [`Store::vacuum`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vacuum {
    /// Files removed by commits older than the grace period.
    pub removed: Vec<String>,
    /// Files no commit added, older than the grace period.
    pub orphans: Vec<String>,
    /// Files kept: live, or too recent to delete.
    pub kept: usize,
}

/// Directories under the root whose files vacuum never deletes: the log, the audit trail, and
/// the privacy ledger with the noise key (losing them would reset every project's budget and
/// give every question fresh noise).
const KEEP: [&str; 3] = ["_log", "_audit", crate::privacy_ledger::PRIVACY_DIR];

impl Store {
    /// Deletes data files that no snapshot younger than `grace` needs (see the module
    /// documentation).
    pub async fn vacuum(&self, grace: Duration) -> Result<Vacuum> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let cutoff = now.saturating_sub(grace.as_millis() as u64);
        let snapshot = self.snapshot().await?;
        let live: HashSet<&String> = snapshot.state.files.keys().collect();
        // When each file left the snapshot, and every file any commit added.
        let mut removed_at: HashMap<String, u64> = HashMap::new();
        let mut added: HashSet<String> = HashSet::new();
        for version in 1..=snapshot.version() {
            let Some(entry) = self.read_entry(version).await? else {
                return Err(StoreError::Corrupt {
                    path: format!("_log/{version:020}.json"),
                    what: "log entry".into(),
                    reason: "missing below the newest version".into(),
                });
            };
            added.extend(entry.add.iter().map(|f| f.path.clone()));
            for path in entry.remove {
                removed_at.insert(path, entry.timestamp_ms);
            }
        }
        let location = self.location();
        let objects: Vec<object_store::ObjectMeta> = location
            .object_store
            .list(Some(&location.root))
            .try_collect()
            .await
            .map_err(|e| StoreError::object_store(&location.root, e))?;
        let mut out = Vacuum::default();
        for object in objects {
            let relative: Vec<String> = object
                .location
                .parts()
                .skip(location.root.parts().count())
                .map(|p| p.as_ref().to_string())
                .collect();
            let relative = relative.join("/");
            if KEEP.iter().any(|d| relative.starts_with(&format!("{d}/"))) {
                continue;
            }
            let modified = object.last_modified.timestamp_millis().max(0) as u64;
            let delete = if live.contains(&relative) {
                None
            } else if let Some(&at) = removed_at.get(&relative) {
                (at < cutoff).then_some(true)
            } else if !added.contains(&relative) {
                (modified < cutoff).then_some(false)
            } else {
                None
            };
            match delete {
                None => out.kept += 1,
                Some(was_committed) => {
                    self.delete_file(&relative).await?;
                    if was_committed {
                        out.removed.push(relative);
                    } else {
                        out.orphans.push(relative);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::privacy_ledger::{Charge, PrivacyLedger};

    #[tokio::test]
    async fn the_privacy_ledger_outlives_vacuum() {
        let store = crate::Store::open_or_create("memory://vacuum-keeps-privacy").unwrap();
        let ledger = PrivacyLedger::new(store.location().clone());
        let key = ledger.noise_key().await.unwrap();
        let charge = Charge {
            release: "r".into(),
            rho: 0.5,
        };
        ledger
            .append("p", std::slice::from_ref(&charge), 0)
            .await
            .unwrap();
        store.vacuum(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(ledger.noise_key().await.unwrap(), key);
        assert_eq!(ledger.charges("p").await.unwrap().0, vec![charge]);
    }
}
