//! One record of the audit trail (`audit_log`): what a request was, what the server
//! decided, and the hash that chains it to the record before.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

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
    /// The record's hash, recomputed (see the invariants of the audit trail, `audit_log`).
    pub fn computed_hash(&self) -> Result<String> {
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

    /// Fails unless this is record `expected`, follows a record whose hash is `prev`, and
    /// still has the hash it was written with.
    pub fn check_link(&self, expected: u64, prev: &str) -> Result<()> {
        let broken = |reason: String| StoreError::AuditChain {
            seq: self.seq,
            reason,
        };
        if self.seq != expected {
            return Err(broken(format!("record {expected} is missing")));
        }
        if self.prev_hash != prev {
            return Err(broken("prev_hash is not the previous record's hash".into()));
        }
        if self.computed_hash()? != self.hash {
            return Err(broken("the record was changed after it was written".into()));
        }
        Ok(())
    }
}

pub(crate) fn decode(path: &str, source: serde_json::Error) -> StoreError {
    StoreError::LogDecode {
        path: path.to_string(),
        source,
    }
}

/// The chain's start: the `prev_hash` of record 1.
pub fn genesis_hash() -> String {
    "0".repeat(64)
}
