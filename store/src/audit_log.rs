//! The audit trail: one JSON record per request under `_audit/`, hash-chained, written in
//! groups (group commit: the records of requests that finish while a write is under way go
//! into the next file together).
//!
//! Invariants:
//! - Records are numbered densely from 1. A file `_audit/<n as 20 digits>.json` holds records
//!   `n, n+1, ...` (one JSON object per line), is written with `PutMode::Create` and never
//!   changed. A writer names its file after the record following the last one it knows, which
//!   is always the last record of some file, so two writers that both believe they extend the
//!   chain from the same record race for the same name: the loser re-reads the head and
//!   chains after the winner's file.
//! - `hash` is the SHA-256 (hex) of the record's JSON without `hash`, fields in declaration
//!   order; `prev_hash` is the previous record's `hash` (64 zeros for record 1). Changing,
//!   removing or reordering a record breaks the chain at that record ([`AuditLog::verify`]).
//! - A long sample list of a request is kept once, by content, as `_audit/lists/<sha256>.txt`
//!   (one ID per line; [`AuditLog::keep_list`]); the record names the file, so the chain covers
//!   the list through its hash, and a list asked again adds nothing but its record.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use tokio::sync::{mpsc, oneshot};

use crate::audit_archive::{archived_head, archives, read_archive};
use crate::audit_record::decode;
pub use crate::audit_record::{AuditEvent, AuditRecord, genesis_hash};
use crate::error::{Result, StoreError};
use crate::location::StoreLocation;

/// Where audit records live, relative to the store root.
pub const AUDIT_DIR: &str = "_audit";

/// The version of the record format: 2 since files hold several records (version 1 files
/// hold one, and are read the same way).
pub const AUDIT_FORMAT_VERSION: u32 = 2;

/// Where [`AuditLog::keep_list`] keeps requests' sample lists, named by content.
pub const LIST_DIR: &str = "_audit/lists";

/// At most this many records per file.
const MAX_GROUP: usize = 1024;

/// How many times an append retries after losing a race for a record number.
const MAX_APPEND_ATTEMPTS: usize = 16;

/// A best-effort hint naming the first record of a recent file (`{"seq": N}`), rewritten
/// about every [`HINT_INTERVAL`] records, so finding the head reads the hint's file and the few
/// after it instead of listing the whole trail.
const HINT: &str = "_audit/_last_hint";

/// Records between hint rewrites.
const HINT_INTERVAL: u64 = 1024;

/// A record waiting to be written, and where its outcome goes.
type Pending = (
    AuditEvent,
    oneshot::Sender<std::result::Result<AuditRecord, String>>,
);

/// Appends to and reads the audit trail of one store. One writer task per appender writes
/// the records of all pending appends as one file; appenders in other processes are handled
/// by create-only writes.
#[derive(Debug)]
pub struct AuditLog {
    location: StoreLocation,
    /// The writer task's queue, started by the first append.
    queue: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
    /// Records appended and not yet written.
    queued: std::sync::Arc<AtomicU64>,
    /// List files this log has written or found (see [`AuditLog::keep_list`]).
    kept_lists: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl AuditLog {
    /// The audit trail of the store at `location`.
    pub fn new(location: StoreLocation) -> Self {
        Self {
            location,
            queue: std::sync::OnceLock::new(),
            queued: Default::default(),
            kept_lists: Default::default(),
        }
    }

    /// Keeps `list` (a request's sample IDs, one per line) as the list file named by its SHA-256,
    /// once (a file of that name holds the same bytes), and returns the file's path for the
    /// request's record to name. Call it before the record is appended: a record never names a
    /// list that is not there.
    pub async fn keep_list(&self, list: Bytes) -> Result<String> {
        let relative = format!("{LIST_DIR}/{}.txt", hex::encode(Sha256::digest(&list)));
        let known = |kept: &std::collections::HashSet<String>| kept.contains(&relative);
        if self.kept_lists.lock().is_ok_and(|kept| known(&kept)) {
            return Ok(relative);
        }
        let path = self.location.path(&relative);
        // Created now, or there already: either way the file holds these bytes.
        self.location.put_new(&path, PutPayload::from(list)).await?;
        if let Ok(mut kept) = self.kept_lists.lock() {
            kept.insert(relative.clone());
        }
        Ok(relative)
    }

    /// Checks every list file `request` names: present, and holding the bytes its name hashes.
    async fn check_lists(&self, request: &str) -> std::result::Result<(), String> {
        let prefix = format!("{LIST_DIR}/");
        for (at, _) in request.match_indices(&prefix) {
            let name: String = request[at + prefix.len()..].chars().take(64).collect();
            let relative = format!("{prefix}{name}.txt");
            let path = self.location.path(&relative);
            let bytes = match self.location.object_store.get(&path).await {
                Ok(found) => found
                    .bytes()
                    .await
                    .map_err(|e| format!("{relative}: {e}"))?,
                Err(_) => return Err(format!("the list file {relative} is missing")),
            };
            if hex::encode(Sha256::digest(&bytes)) != name {
                return Err(format!("the list file {relative} was changed"));
            }
        }
        Ok(())
    }

    /// The store the trail is in.
    pub(crate) fn location(&self) -> &StoreLocation {
        &self.location
    }

    pub(crate) fn record_path(seq: u64) -> String {
        format!("{AUDIT_DIR}/{seq:020}.json")
    }

    /// First record numbers of the files present, ascending.
    pub(crate) async fn file_numbers(&self) -> Result<Vec<u64>> {
        let objects = self.location.list(&self.location.path(AUDIT_DIR)).await?;
        let mut seqs: Vec<u64> = objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The records of the file that starts at record `first`.
    pub(crate) async fn read_file(&self, first: u64) -> Result<Vec<AuditRecord>> {
        let relative = Self::record_path(first);
        let path = self.location.path(&relative);
        let bytes = self.location.read(&path).await?;
        let records = bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| serde_json::from_slice(line).map_err(|e| decode(&relative, e)))
            .collect::<Result<Vec<AuditRecord>>>()?;
        if records.first().map(|r| r.seq) != Some(first) {
            return Err(StoreError::AuditChain {
                seq: first,
                reason: format!("{relative} does not start with record {first}"),
            });
        }
        Ok(records)
    }

    /// The last record of the file that starts at `first`: its number and hash.
    async fn file_end(&self, first: u64) -> Result<(u64, String)> {
        let records = self.read_file(first).await?;
        let last = records
            .last()
            .map_or((first, String::new()), |r| (r.seq, r.hash.clone()));
        Ok(last)
    }

    /// The newest record: from the hint forward when there is one, else by listing.
    async fn read_head(&self) -> Result<(u64, String)> {
        let hinted = match self
            .location
            .object_store
            .get(&self.location.path(HINT))
            .await
        {
            Ok(found) => found
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("seq")?.as_u64()),
            Err(_) => None,
        };
        match hinted {
            Some(seq) => match self.file_end(seq).await {
                Ok(end) => self.walk_to_end(end).await,
                Err(_) => self.listed_head().await,
            },
            None => self.listed_head().await,
        }
    }

    /// The newest record at or after `head` (the end of a file): each file starts after the
    /// previous one's last record.
    async fn walk_to_end(&self, mut head: (u64, String)) -> Result<(u64, String)> {
        loop {
            match self.file_end(head.0 + 1).await {
                Ok(next) => head = next,
                Err(StoreError::ObjectStore { .. }) => return Ok(head),
                Err(e) => return Err(e),
            }
        }
    }

    async fn listed_head(&self) -> Result<(u64, String)> {
        if let Some(&first) = self.file_numbers().await?.last() {
            return self.file_end(first).await;
        }
        // Every file archived (rotation keeps the newest, so only by hand).
        archived_head(&self.location).await
    }

    /// Records appended (by this process) and not yet written: the writer's backlog.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Appends `event` as the next record and returns it once it is stored. Appends that
    /// arrive while a write is under way are written together by the next one.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let queued = self.queued.clone();
            tokio::spawn(write_groups(self.location.clone(), receiver, queued));
            sender
        });
        let (reply, outcome) = oneshot::channel();
        let stopped = || StoreError::AuditWrite {
            reason: "the audit writer has stopped".into(),
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if queue.send((event, reply)).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(stopped());
        }
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(|reason| StoreError::AuditWrite { reason })
    }

    /// Writes `events` as one file after the head, taking the next free number when another
    /// writer took this one.
    async fn write_group(
        &self,
        head: &mut Option<(u64, String)>,
        events: &[AuditEvent],
    ) -> Result<Vec<AuditRecord>> {
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let (last, mut prev_hash) = match head.take() {
                Some(known) => known,
                None => self.read_head().await?,
            };
            let time_unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let mut records = Vec::with_capacity(events.len());
            let mut body = Vec::new();
            for (i, event) in events.iter().enumerate() {
                let mut record = AuditRecord {
                    format_version: AUDIT_FORMAT_VERSION,
                    seq: last + 1 + i as u64,
                    time_unix_ms,
                    event: event.clone(),
                    prev_hash,
                    hash: String::new(),
                };
                record.hash = record.computed_hash()?;
                prev_hash = record.hash.clone();
                serde_json::to_writer(&mut body, &record).map_err(|e| decode("audit", e))?;
                body.push(b'\n');
                records.push(record);
            }
            let relative = Self::record_path(last + 1);
            let path = self.location.path(&relative);
            match self
                .location
                .put_new(&path, PutPayload::from(Bytes::from(body)))
                .await?
            {
                true => {
                    let end = last + events.len() as u64;
                    *head = Some((end, prev_hash));
                    if end / HINT_INTERVAL != last / HINT_INTERVAL {
                        let hint = serde_json::json!({ "seq": last + 1 }).to_string();
                        let _ = self
                            .location
                            .object_store
                            .put(&self.location.path(HINT), PutPayload::from(hint))
                            .await;
                    }
                    return Ok(records);
                }
                // Another appender took this number: chain after its newest file (not just
                // the one that won, or a busy appender keeps winning) and go on.
                false => {
                    let winner = self.file_end(last + 1).await?;
                    *head = Some(self.walk_to_end(winner).await?);
                }
            }
        }
        Err(StoreError::AuditWrite {
            reason: format!("no free record number after {MAX_APPEND_ATTEMPTS} attempts"),
        })
    }

    /// Every record, ascending: the archives' ([`crate::audit_archive`]), then the live files'.
    pub async fn records(&self) -> Result<Vec<AuditRecord>> {
        let mut out = Vec::new();
        for span in archives(&self.location).await? {
            out.extend(read_archive(&self.location, span).await?);
        }
        let archived = out.last().map_or(0, |r| r.seq);
        for first in self.file_numbers().await? {
            // A file an interrupted rotation left behind is in an archive already.
            let records = self.read_file(first).await?;
            out.extend(records.into_iter().filter(|r| r.seq > archived));
        }
        Ok(out)
    }

    /// Checks the chain: numbers dense from 1, each `prev_hash` the previous `hash`, each
    /// `hash` recomputed, each list file a record names unchanged. Returns the number of
    /// records.
    pub async fn verify(&self) -> Result<u64> {
        let mut prev = genesis_hash();
        let mut expected = 1;
        for record in self.records().await? {
            record.check_link(expected, &prev)?;
            self.check_lists(&record.event.request)
                .await
                .map_err(|reason| StoreError::AuditChain {
                    seq: record.seq,
                    reason,
                })?;
            prev = record.hash.clone();
            expected += 1;
        }
        Ok(expected - 1)
    }
}

/// The writer task of one [`AuditLog`]: takes every pending append, writes them as one file,
/// answers each; ends when the log is dropped.
async fn write_groups(
    location: StoreLocation,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    queued: std::sync::Arc<AtomicU64>,
) {
    let log = AuditLog::new(location);
    let mut head = None;
    let mut group: Vec<Pending> = Vec::new();
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let events: Vec<AuditEvent> = group.iter().map(|(event, _)| event.clone()).collect();
        let written = log.write_group(&mut head, &events).await;
        queued.fetch_sub(group.len() as u64, Ordering::Relaxed);
        match written {
            Ok(records) => {
                for ((_, reply), record) in group.drain(..).zip(records) {
                    let _ = reply.send(Ok(record));
                }
            }
            Err(e) => {
                // Unknown what was written: find the head again next time.
                head = None;
                let reason = match e {
                    StoreError::AuditWrite { reason } => reason,
                    other => other.to_string(),
                };
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn iso8601(ms: u64) -> String {
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// The `n`th request of the audit tests: alice's `SELECT n`, answered with `n` rows.
#[cfg(test)]
pub(crate) fn test_event(n: u64) -> AuditEvent {
    AuditEvent {
        principal: "alice".into(),
        project: "p1".into(),
        tier: "aggregate".into(),
        method: "cohortdb.v1.QueryService/Sql".into(),
        request: format!("SELECT {n}"),
        rows: n,
        decision: "allowed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_event as event;

    #[tokio::test]
    async fn appends_chain_and_tampering_is_found() {
        let location = StoreLocation::open("memory://audit-test", true).unwrap();
        let log = AuditLog::new(location.clone());
        for n in 0..5 {
            assert_eq!(log.append(event(n)).await.unwrap().seq, n + 1);
        }
        // A second appender (another process) continues the same chain.
        let other = AuditLog::new(location.clone());
        assert_eq!(other.append(event(9)).await.unwrap().seq, 6);
        assert_eq!(log.append(event(10)).await.unwrap().seq, 7);
        assert_eq!(log.verify().await.unwrap(), 7);
        // Rewrite record 3 with a different row count.
        let mut record = log.read_file(3).await.unwrap().remove(0);
        record.event.rows = 1000;
        let path = location.path(&AuditLog::record_path(3));
        location
            .object_store
            .put(
                &path,
                PutPayload::from(serde_json::to_vec(&record).unwrap()),
            )
            .await
            .unwrap();
        let err = log.verify().await.unwrap_err().to_string();
        assert!(err.contains("record 3"), "{err}");
    }

    #[tokio::test]
    async fn concurrent_appends_share_files_and_keep_one_chain() {
        let location = StoreLocation::open("memory://audit-groups", true).unwrap();
        let log = AuditLog::new(location.clone());
        let appends = (0..100).map(|n| log.append(event(n)));
        let mut seqs: Vec<u64> = futures::future::try_join_all(appends)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        let files = log.file_numbers().await.unwrap();
        assert!(files.len() < 100, "{} files for 100 records", files.len());
        // Each request's event is in the record it was answered with.
        let records = log.records().await.unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(log.verify().await.unwrap(), 100);
        // Another appender chains after the last file.
        let other = AuditLog::new(location);
        assert_eq!(other.append(event(7)).await.unwrap().seq, 101);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_busy_appenders_share_one_chain() {
        // Two processes' appenders on one store with a millisecond per call (as on a disk
        // under load or an object store), both busy: every append succeeds. A loser that
        // chained after the winning file only, not the newest one, stayed behind a busy
        // winner until it gave up.
        use object_store::throttle::{ThrottleConfig, ThrottledStore};
        let memory = StoreLocation::open("memory://audit-two", true).unwrap();
        let wait = std::time::Duration::from_millis(1);
        let throttle = ThrottleConfig {
            wait_get_per_call: wait,
            wait_put_per_call: wait,
            ..ThrottleConfig::default()
        };
        let location = StoreLocation {
            object_store: std::sync::Arc::new(ThrottledStore::new(memory.object_store, throttle)),
            ..memory
        };
        let (a, b) = (
            AuditLog::new(location.clone()),
            AuditLog::new(location.clone()),
        );
        // Each appender's requests arrive one after another, as a server's do.
        let busy = |log: &AuditLog| {
            let log = AuditLog::new(log.location.clone());
            async move {
                for n in 0..100 {
                    log.append(event(n)).await?;
                }
                Ok::<_, StoreError>(())
            }
        };
        let (one, two) = tokio::join!(busy(&a), busy(&b));
        one.unwrap();
        two.unwrap();
        assert_eq!(a.verify().await.unwrap(), 200);
    }

    #[tokio::test]
    async fn a_new_appender_finds_the_head_from_the_hint() {
        let location = StoreLocation::open("memory://audit-hint", true).unwrap();
        let log = AuditLog::new(location.clone());
        for n in 0..(HINT_INTERVAL + 5) {
            log.append(event(n)).await.unwrap();
        }
        // With the hint: read it and walk forward; without it: list the trail.
        let fresh = AuditLog::new(location.clone());
        assert_eq!(fresh.read_head().await.unwrap().0, HINT_INTERVAL + 5);
        assert_eq!(fresh.append(event(0)).await.unwrap().seq, HINT_INTERVAL + 6);
        location
            .object_store
            .delete(&location.path(HINT))
            .await
            .unwrap();
        let unhinted = AuditLog::new(location.clone());
        assert_eq!(
            unhinted.append(event(1)).await.unwrap().seq,
            HINT_INTERVAL + 7
        );
        assert_eq!(fresh.verify().await.unwrap(), HINT_INTERVAL + 7);
    }

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_389_930_123), "2026-11-22T23:25:30.123Z");
    }
}
