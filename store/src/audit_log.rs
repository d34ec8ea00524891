//! The audit trail: one create-only JSON object per request under `_audit/`, hash-chained.
//!
//! Invariants:
//! - Record `n` (from 1) is `_audit/<n as 20 digits>.json`, written with `PutMode::Create` and
//!   never changed, so two writers can never both write record `n`: the loser re-reads the
//!   head and takes the next number.
//! - `hash` is the SHA-256 (hex) of the record's JSON without `hash`, fields in declaration
//!   order; `prev_hash` is the previous record's `hash` (64 zeros for record 1). Changing,
//!   removing or reordering a record breaks the chain at that record ([`AuditLog::verify`]).

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::location::StoreLocation;

/// Where audit records live, relative to the store root.
pub const AUDIT_DIR: &str = "_audit";

/// The version of the record format.
pub const AUDIT_FORMAT_VERSION: u32 = 1;

/// How many times an append retries after losing a race for a record number.
const MAX_APPEND_ATTEMPTS: usize = 16;

/// A best-effort hint naming a recent record (`{"seq": N}`), rewritten every
/// [`HINT_INTERVAL`] records, so finding the head reads the hint and the few records after it
/// instead of listing the whole trail.
const HINT: &str = "_audit/_last_hint";

/// Records between hint rewrites.
const HINT_INTERVAL: u64 = 1024;

/// What a request was and what the server decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The principal's name.
    pub principal: String,
    /// The principal's project.
    pub project: String,
    /// The principal's tier.
    pub tier: String,
    /// The RPC, e.g. `cohortdb.v1.QueryService/Sql`.
    pub method: String,
    /// The request: its SQL text or its message as JSON.
    pub request: String,
    /// Rows returned.
    pub rows: u64,
    /// `allowed`, or `denied: <reason>` / `failed: <reason>`.
    pub decision: String,
}

/// One record of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The record format version.
    pub format_version: u32,
    /// The record number, dense from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the record was written.
    pub time_unix_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash (see the module's invariants).
    #[serde(default)]
    pub hash: String,
}

impl AuditRecord {
    fn computed_hash(&self) -> Result<String> {
        let unhashed = AuditRecord {
            hash: String::new(),
            ..self.clone()
        };
        let mut value = serde_json::to_value(&unhashed).map_err(|e| decode("hash", e))?;
        if let Some(map) = value.as_object_mut() {
            map.remove("hash");
        }
        let bytes = serde_json::to_vec(&value).map_err(|e| decode("hash", e))?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }
}

fn decode(path: &str, source: serde_json::Error) -> StoreError {
    StoreError::LogDecode {
        path: path.to_string(),
        source,
    }
}

/// The chain's start: the `prev_hash` of record 1.
pub fn genesis_hash() -> String {
    "0".repeat(64)
}

/// Appends to and reads the audit trail of one store. One appender per process serialises
/// its appends; appenders in other processes are handled by create-only writes.
#[derive(Debug)]
pub struct AuditLog {
    location: StoreLocation,
    /// The last record number and hash this appender knows, read on first append.
    head: futures::lock::Mutex<Option<(u64, String)>>,
}

impl AuditLog {
    /// The audit trail of the store at `location`.
    pub fn new(location: StoreLocation) -> Self {
        Self {
            location,
            head: futures::lock::Mutex::new(None),
        }
    }

    fn record_path(seq: u64) -> String {
        format!("{AUDIT_DIR}/{seq:020}.json")
    }

    /// Record numbers present, ascending.
    async fn sequence_numbers(&self) -> Result<Vec<u64>> {
        use futures::TryStreamExt;
        let prefix = self.location.path(AUDIT_DIR);
        let objects: Vec<_> = self
            .location
            .object_store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::object_store(&prefix, e))?;
        let mut seqs: Vec<u64> = objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    async fn read(&self, seq: u64) -> Result<AuditRecord> {
        let relative = Self::record_path(seq);
        let path = self.location.path(&relative);
        let bytes = self
            .location
            .object_store
            .get(&path)
            .await
            .map_err(|e| StoreError::object_store(&path, e))?
            .bytes()
            .await
            .map_err(|e| StoreError::object_store(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| decode(&relative, e))
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
        let mut head = match hinted {
            Some(seq) => match self.read(seq).await {
                Ok(record) => (seq, record.hash),
                Err(_) => return self.listed_head().await,
            },
            None => return self.listed_head().await,
        };
        // Walk forward to the end: records are dense.
        loop {
            match self.read(head.0 + 1).await {
                Ok(next) => head = (next.seq, next.hash),
                Err(StoreError::ObjectStore { .. }) => return Ok(head),
                Err(e) => return Err(e),
            }
        }
    }

    async fn listed_head(&self) -> Result<(u64, String)> {
        match self.sequence_numbers().await?.last() {
            Some(&seq) => Ok((seq, self.read(seq).await?.hash)),
            None => Ok((0, genesis_hash())),
        }
    }

    /// Appends `event` as the next record and returns it.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord> {
        let mut head = self.head.lock().await;
        let mut known = head.take();
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let (last, prev_hash) = match known.take() {
                Some(known) => known,
                None => self.read_head().await?,
            };
            let time_unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let mut record = AuditRecord {
                format_version: AUDIT_FORMAT_VERSION,
                seq: last + 1,
                time_unix_ms,
                event: event.clone(),
                prev_hash,
                hash: String::new(),
            };
            record.hash = record.computed_hash()?;
            let relative = Self::record_path(record.seq);
            let path = self.location.path(&relative);
            let body = serde_json::to_vec(&record).map_err(|e| decode(&relative, e))?;
            match self
                .location
                .object_store
                .put_opts(
                    &path,
                    PutPayload::from(Bytes::from(body)),
                    PutMode::Create.into(),
                )
                .await
            {
                Ok(_) => {
                    *head = Some((record.seq, record.hash.clone()));
                    if record.seq.is_multiple_of(HINT_INTERVAL) {
                        let hint = serde_json::json!({ "seq": record.seq }).to_string();
                        let _ = self
                            .location
                            .object_store
                            .put(&self.location.path(HINT), PutPayload::from(hint))
                            .await;
                    }
                    return Ok(record);
                }
                // Another appender took this number: chain after its record and go on.
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let winner = self.read(record.seq).await?;
                    known = Some((winner.seq, winner.hash));
                }
                Err(e) => return Err(StoreError::object_store(&path, e)),
            }
        }
        Err(StoreError::AuditChain {
            seq: 0,
            reason: format!("no free record number after {MAX_APPEND_ATTEMPTS} attempts"),
        })
    }

    /// Every record, ascending.
    pub async fn records(&self) -> Result<Vec<AuditRecord>> {
        let mut out = Vec::new();
        for seq in self.sequence_numbers().await? {
            out.push(self.read(seq).await?);
        }
        Ok(out)
    }

    /// Checks the chain: numbers dense from 1, each `prev_hash` the previous `hash`, each
    /// `hash` recomputed. Returns the number of records.
    pub async fn verify(&self) -> Result<u64> {
        let mut prev = genesis_hash();
        let mut expected = 1;
        for record in self.records().await? {
            let broken = |reason: String| StoreError::AuditChain {
                seq: record.seq,
                reason,
            };
            if record.seq != expected {
                return Err(broken(format!("record {expected} is missing")));
            }
            if record.prev_hash != prev {
                return Err(broken("prev_hash is not the previous record's hash".into()));
            }
            if record.computed_hash()? != record.hash {
                return Err(broken("the record was changed after it was written".into()));
            }
            prev = record.hash.clone();
            expected += 1;
        }
        Ok(expected - 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AuditEvent {
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
        let mut record = log.read(3).await.unwrap();
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
