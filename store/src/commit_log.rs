//! The commit log: versions as create-only JSON objects, snapshots, checkpoints.
//!
//! Invariants:
//! - Version N exists iff `_log/<N:020>.json` exists; it is written once, with
//!   `PutMode::Create`, and never changed. Versions are dense from 1.
//! - A data file is visible only once a committed entry names it; writers put data files
//!   (uniquely named) before the entry, so a crash leaves only unreferenced garbage.
//! - Checkpoints (`_log/<N:020>.checkpoint.json`, every [`CHECKPOINT_INTERVAL`] versions) hold
//!   the whole [`SnapshotState`] at N; `_log/_last_checkpoint` is a best-effort hint naming the
//!   newest. Opening a store reads the hint, the checkpoint and the few entries after it.
//! - A losing writer re-reads the winner's entry and every entry after it, checks each for a
//!   conflict, and retries after the newest, at most [`MAX_COMMIT_ATTEMPTS`] times.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::location::StoreLocation;
use crate::log_entry::{CommitKind, FORMAT_VERSION, FileEntry, FileKind, LogEntry};
use crate::snapshot::SnapshotState;

/// A checkpoint is written after every this many versions.
pub const CHECKPOINT_INTERVAL: u64 = 10;
/// How many times a commit loses the race for a version before giving up.
pub const MAX_COMMIT_ATTEMPTS: u32 = 16;

const LAST_CHECKPOINT: &str = "_log/_last_checkpoint";

/// A cohortdb store: a location plus its commit log.
#[derive(Debug, Clone)]
pub struct Store {
    location: StoreLocation,
    /// Whether the location was seen to honour create-only puts (checked before the first
    /// commit of this handle).
    create_only: Arc<std::sync::atomic::AtomicBool>,
}

/// A consistent view of the store at one version.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The files live at this version.
    pub state: SnapshotState,
}

impl Snapshot {
    /// The version of this snapshot (0 for a store without commits).
    pub fn version(&self) -> u64 {
        self.state.version
    }
}

/// A change to commit: files to add and remove, and what produced them.
#[derive(Debug, Clone)]
pub struct Commit {
    /// What the commit does.
    pub kind: CommitKind,
    /// Files added (already written with [`Store::put_new_file`]).
    pub add: Vec<FileEntry>,
    /// Paths of files removed.
    pub remove: Vec<String>,
    /// `sample_idx` of participants withdrawing consent.
    pub withdraw: Vec<u32>,
    /// `sample_idx` whose data the commit replaces (see [`LogEntry::retire`]).
    pub retire: Vec<u32>,
    /// Description of the operation for the log.
    pub operation: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format_version: u32,
    state: SnapshotState,
}

#[derive(Serialize, Deserialize)]
struct CheckpointHint {
    version: u64,
}

fn entry_path(version: u64) -> String {
    format!("_log/{version:020}.json")
}

fn checkpoint_path(version: u64) -> String {
    format!("_log/{version:020}.checkpoint.json")
}

impl Store {
    /// Opens an existing store for reading; fails with [`StoreError::NotFound`] when the
    /// location holds no commit.
    pub async fn open(location: &str) -> Result<Self> {
        let store = Self::at(StoreLocation::open(location, false)?);
        if store.snapshot().await?.version() == 0 {
            return Err(StoreError::NotFound {
                location: location.to_string(),
            });
        }
        Ok(store)
    }

    /// Opens a store for writing, creating an empty one when none exists.
    pub fn open_or_create(location: &str) -> Result<Self> {
        Ok(Self::at(StoreLocation::open(location, true)?))
    }

    /// The store at an already opened location (any object store, wrappers included).
    pub fn at(location: StoreLocation) -> Self {
        Self {
            location,
            create_only: Arc::default(),
        }
    }

    /// Checks that the location refuses a second create-only put of one object (S3's
    /// `If-None-Match: *`), which the commit log's concurrency rests on: a store that
    /// silently overwrites would let two writers commit the same version. Run before this
    /// handle's first commit; a probe object under `_probe/` is written and deleted.
    pub async fn verify_create_only(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.create_only.load(Ordering::Relaxed) {
            return Ok(());
        }
        let path = self
            .location
            .path(&format!("_probe/{}", uuid::Uuid::new_v4()));
        let put = |body: &'static [u8]| {
            self.location.object_store.put_opts(
                &path,
                PutPayload::from_static(body),
                PutOptions::from(PutMode::Create),
            )
        };
        put(b"1")
            .await
            .map_err(|e| StoreError::object_store(&path, e))?;
        let second = put(b"2").await;
        let _ = self.location.object_store.delete(&path).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.create_only.store(true, Ordering::Relaxed);
                Ok(())
            }
            Ok(_) => Err(StoreError::InvalidLocation {
                location: self.location.url.clone(),
                reason: "it ignores create-only puts (a second `If-None-Match: *` put of one \
                         object succeeded), so concurrent commits could overwrite each other; \
                         refusing to write"
                    .into(),
            }),
            Err(e) => Err(StoreError::object_store(&path, e)),
        }
    }

    /// Where the store lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Reads the newest snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut state = match self.read_json::<CheckpointHint>(LAST_CHECKPOINT).await? {
            Some(hint) => {
                let path = checkpoint_path(hint.version);
                let checkpoint: Checkpoint =
                    self.read_json(&path)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt {
                            path: path.clone(),
                            what: "checkpoint".into(),
                            reason: "named by _log/_last_checkpoint but missing".into(),
                        })?;
                check_format(&path, checkpoint.format_version)?;
                checkpoint.state
            }
            None => SnapshotState::default(),
        };
        while let Some(entry) = self.read_entry(state.version + 1).await? {
            state.apply(&entry);
        }
        Ok(Snapshot { state })
    }

    /// Reads the snapshot at `version`: the newest when it is that version, else the log replayed
    /// from its first entry (a version whose entries a checkpoint replaced cannot be read).
    pub async fn snapshot_at(&self, version: u64) -> Result<Snapshot> {
        let newest = self.snapshot().await?;
        if newest.version() == version {
            return Ok(newest);
        }
        let missing = |reason: String| StoreError::Corrupt {
            path: entry_path(version),
            what: "store version".into(),
            reason,
        };
        if version > newest.version() {
            return Err(missing(format!(
                "version {version} is newer than the store's ({})",
                newest.version()
            )));
        }
        let mut state = SnapshotState::default();
        while state.version < version {
            let entry = self.read_entry(state.version + 1).await?.ok_or_else(|| {
                missing(format!(
                    "entry {} is no longer in the log",
                    state.version + 1
                ))
            })?;
            state.apply(&entry);
        }
        Ok(Snapshot { state })
    }

    /// Reads entry `version`, or `None` when it does not exist.
    pub async fn read_entry(&self, version: u64) -> Result<Option<LogEntry>> {
        let path = entry_path(version);
        let entry: Option<LogEntry> = self.read_json(&path).await?;
        if let Some(entry) = &entry {
            check_format(&path, entry.format_version)?;
        }
        Ok(entry)
    }

    /// Writes a new data file at `relative` with create-only semantics.
    pub async fn put_new_file(&self, relative: &str, bytes: Bytes) -> Result<()> {
        let path = self.location.path(relative);
        self.location
            .object_store
            .put_opts(&path, PutPayload::from(bytes), PutMode::Create.into())
            .await
            .map_err(|e| StoreError::object_store(&path, e))?;
        Ok(())
    }

    /// Deletes a data file (used to clean up after a failed write; never for committed files).
    pub async fn delete_file(&self, relative: &str) -> Result<()> {
        let path = self.location.path(relative);
        self.location
            .object_store
            .delete(&path)
            .await
            .map_err(|e| StoreError::object_store(&path, e))
    }

    /// Reads a whole file of the store.
    pub async fn read_file(&self, relative: &str) -> Result<Bytes> {
        self.location.read(&self.location.path(relative)).await
    }

    /// [`Store::commit`], deleting the files `commit` adds when it fails (they were written
    /// for it alone and are invisible to readers either way).
    pub async fn commit_or_discard(&self, base: &Snapshot, commit: Commit) -> Result<Snapshot> {
        let written = commit.add.clone();
        let result = self.commit(base, commit).await;
        if result.is_err() {
            self.discard(&written).await;
        }
        result
    }

    /// Best-effort removal of files written for a commit that did not happen.
    pub async fn discard(&self, files: &[FileEntry]) {
        for file in files {
            if let Err(e) = self.delete_file(&file.path).await {
                tracing::warn!("could not remove uncommitted {}: {e}", file.path);
            }
        }
    }

    /// Commits `commit` on top of `base`, retrying at later versions when concurrent writers
    /// win, as long as their changes do not conflict. Returns the new snapshot.
    pub async fn commit(&self, base: &Snapshot, commit: Commit) -> Result<Snapshot> {
        self.verify_create_only().await?;
        let mut state = base.state.clone();
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let entry = LogEntry {
                format_version: FORMAT_VERSION,
                version: state.version + 1,
                kind: commit.kind,
                timestamp_ms: now_ms(),
                add: commit.add.clone(),
                remove: commit.remove.clone(),
                withdraw: commit.withdraw.clone(),
                retire: commit.retire.clone(),
                operation: commit.operation.clone(),
            };
            let path = self.location.path(&entry_path(entry.version));
            let body = serde_json::to_vec_pretty(&entry).map_err(|e| StoreError::LogDecode {
                path: path.to_string(),
                source: e,
            })?;
            let options = PutOptions::from(PutMode::Create);
            match self
                .location
                .object_store
                .put_opts(&path, PutPayload::from(body), options)
                .await
            {
                Ok(_) => {
                    state.apply(&entry);
                    if state.version.is_multiple_of(CHECKPOINT_INTERVAL) {
                        self.write_checkpoint(&state).await;
                    }
                    return Ok(Snapshot { state });
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let winner = self.read_entry(entry.version).await?.ok_or_else(|| {
                        StoreError::Corrupt {
                            path: path.to_string(),
                            what: "log entry".into(),
                            reason: "reported as existing but cannot be read".into(),
                        }
                    })?;
                    check_conflict(&commit, &winner)?;
                    state.apply(&winner);
                    // Catch up with every commit since, each checked for a conflict, so that
                    // the next attempt is after the newest: an attempt is lost only to a
                    // writer that committed meanwhile, however stale the base was.
                    while let Some(next) = self.read_entry(state.version + 1).await? {
                        check_conflict(&commit, &next)?;
                        state.apply(&next);
                    }
                }
                Err(e) => return Err(StoreError::object_store(&path, e)),
            }
        }
        Err(StoreError::CommitRetriesExhausted {
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// Writes a checkpoint; failures only cost later readers a few more reads, so they are
    /// logged, not returned.
    async fn write_checkpoint(&self, state: &SnapshotState) {
        let checkpoint = Checkpoint {
            format_version: FORMAT_VERSION,
            state: state.clone(),
        };
        let hint = CheckpointHint {
            version: state.version,
        };
        let store = &self.location.object_store;
        let (Ok(body), Ok(hint)) = (serde_json::to_vec(&checkpoint), serde_json::to_vec(&hint))
        else {
            return;
        };
        let path = self.location.path(&checkpoint_path(state.version));
        if let Err(e) = store.put(&path, PutPayload::from(body)).await {
            tracing::warn!("checkpoint {path} not written: {e}");
            return;
        }
        let hint_path = self.location.path(LAST_CHECKPOINT);
        if let Err(e) = store.put(&hint_path, PutPayload::from(hint)).await {
            tracing::warn!("checkpoint hint {hint_path} not written: {e}");
        }
    }

    async fn read_json<T: serde::de::DeserializeOwned>(&self, relative: &str) -> Result<Option<T>> {
        let path = self.location.path(relative);
        let bytes = match self.location.object_store.get(&path).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| StoreError::object_store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StoreError::object_store(&path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::LogDecode {
                path: path.to_string(),
                source: e,
            })
    }
}

fn check_format(path: &str, found: u32) -> Result<()> {
    if found > FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormatVersion {
            path: path.to_string(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// A concurrent commit conflicts with ours when both register samples (their `sample_idx`
/// ranges were assigned from the same snapshot) or both remove the same file.
fn check_conflict(ours: &Commit, winner: &LogEntry) -> Result<()> {
    let registers = |files: &[FileEntry]| files.iter().any(|f| f.kind == FileKind::Samples);
    if registers(&ours.add) && registers(&winner.add) {
        return Err(StoreError::CommitConflict {
            version: winner.version,
            reason: "a concurrent commit registered samples from the same snapshot".into(),
        });
    }
    if let Some(path) = ours.remove.iter().find(|p| winner.remove.contains(p)) {
        return Err(StoreError::CommitConflict {
            version: winner.version,
            reason: format!("a concurrent commit removed {path} too"),
        });
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, kind: FileKind) -> FileEntry {
        FileEntry {
            sample_idx_end: (kind == FileKind::Samples).then_some(3),
            ..FileEntry::new(path, kind, 1, 1)
        }
    }

    fn commit(files: Vec<FileEntry>) -> Commit {
        Commit {
            kind: CommitKind::Ingest,
            add: files,
            remove: vec![],
            withdraw: vec![],
            retire: vec![],
            operation: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn commits_are_dense_versions_and_snapshots_see_them() {
        let store = Store::open_or_create("memory://commit-dense").unwrap();
        let empty = store.snapshot().await.unwrap();
        assert_eq!(empty.version(), 0);
        let one = store
            .commit(
                &empty,
                commit(vec![file("samples/a.parquet", FileKind::Samples)]),
            )
            .await
            .unwrap();
        assert_eq!(one.version(), 1);
        assert_eq!(one.state.next_sample_idx, 3);
        let read = store.snapshot().await.unwrap();
        assert_eq!(read.state, one.state);
    }

    #[tokio::test]
    async fn a_losing_writer_retries_without_conflict_and_conflicts_on_samples() {
        let store = Store::open_or_create("memory://commit-race").unwrap();
        let base = store.snapshot().await.unwrap();
        store
            .commit(
                &base,
                commit(vec![file("variants/a.parquet", FileKind::Variants)]),
            )
            .await
            .unwrap();
        // Same base: lands at version 2 after re-reading version 1.
        let second = store
            .commit(
                &base,
                commit(vec![file("samples/b.parquet", FileKind::Samples)]),
            )
            .await
            .unwrap();
        assert_eq!(second.version(), 2);
        assert_eq!(second.state.files.len(), 2);
        // A third writer from the same base also registering samples conflicts.
        let err = store
            .commit(
                &base,
                commit(vec![file("samples/c.parquet", FileKind::Samples)]),
            )
            .await
            .unwrap_err();
        assert!(err.is_retryable_conflict(), "{err}");
    }

    #[tokio::test]
    async fn checkpoints_are_used_and_newer_formats_refused() {
        let store = Store::open_or_create("memory://commit-checkpoint").unwrap();
        let mut snap = store.snapshot().await.unwrap();
        for i in 0..12 {
            let f = file(&format!("variants/{i}.parquet"), FileKind::Variants);
            snap = store.commit(&snap, commit(vec![f])).await.unwrap();
        }
        assert!(store.read_file(LAST_CHECKPOINT).await.is_ok());
        assert_eq!(store.snapshot().await.unwrap().state, snap.state);

        let mut future = store.read_entry(12).await.unwrap().unwrap();
        future.version = 13;
        future.format_version = FORMAT_VERSION + 1;
        store
            .put_new_file(&entry_path(13), serde_json::to_vec(&future).unwrap().into())
            .await
            .unwrap();
        let err = store.snapshot().await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedFormatVersion { .. }),
            "{err}"
        );
    }
}
