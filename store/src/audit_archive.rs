//! Archives of the audit trail: old record files rotated into one gzip-compressed file of
//! JSON lines, `_audit/archive/<first>-<last>.jsonl.gz` (record numbers as 20 digits), so the
//! trail does not grow by a file per request group forever.
//!
//! An archive holds records `first..=last` exactly as they were written, hashes included, so
//! the chain runs through archives and live files alike and the audit trail's `verify`
//! checks both. An archive is written once (`PutMode::Create`) before the files it replaces are
//! deleted; a crash in between leaves records in both, and readers take the archive's copy.

use std::io::{Read, Write};

use bytes::Bytes;
use object_store::PutPayload;

use crate::audit_record::{AuditRecord, decode, genesis_hash};
use crate::error::{Result, StoreError};
use crate::location::StoreLocation;

/// Where archives live, relative to the store root.
pub const ARCHIVE_DIR: &str = "_audit/archive";

/// The records one archive holds: `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArchiveSpan {
    /// Its first record number.
    pub first: u64,
    /// Its last.
    pub last: u64,
}

impl ArchiveSpan {
    /// The archive's path relative to the store root.
    pub fn relative_path(&self) -> String {
        format!(
            "{ARCHIVE_DIR}/{:020}-{:020}.jsonl.gz",
            self.first, self.last
        )
    }

    fn parse(name: &str) -> Option<Self> {
        let (first, last) = name.strip_suffix(".jsonl.gz")?.split_once('-')?;
        Some(Self {
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }
}

/// The archives present, in record order.
pub async fn archives(location: &StoreLocation) -> Result<Vec<ArchiveSpan>> {
    let objects = location.list(&location.path(ARCHIVE_DIR)).await?;
    let mut spans: Vec<ArchiveSpan> = objects
        .iter()
        .filter_map(|o| ArchiveSpan::parse(o.location.filename()?))
        .collect();
    spans.sort_unstable();
    Ok(spans)
}

/// The records of the archive `span`, checked to be exactly `first..=last`.
pub async fn read_archive(location: &StoreLocation, span: ArchiveSpan) -> Result<Vec<AuditRecord>> {
    let relative = span.relative_path();
    let compressed = location.read(&location.path(&relative)).await?;
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed.as_ref())
        .read_to_end(&mut text)
        .map_err(|e| corrupt(&relative, e.to_string()))?;
    let records = text
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| serde_json::from_slice(line).map_err(|e| decode(&relative, e)))
        .collect::<Result<Vec<AuditRecord>>>()?;
    let dense = records
        .iter()
        .zip(span.first..)
        .all(|(record, seq)| record.seq == seq);
    if !dense || records.last().map(|r| r.seq) != Some(span.last) {
        return Err(corrupt(
            &relative,
            format!("does not hold records {} to {}", span.first, span.last),
        ));
    }
    Ok(records)
}

/// The number and hash of the last archived record: `(0, genesis hash)` without archives.
pub async fn archived_head(location: &StoreLocation) -> Result<(u64, String)> {
    let Some(&span) = archives(location).await?.last() else {
        return Ok((0, genesis_hash()));
    };
    let records = read_archive(location, span).await?;
    Ok(records
        .last()
        .map_or((0, genesis_hash()), |r| (r.seq, r.hash.clone())))
}

/// Writes `records` (dense, ascending, not empty) as one archive. An archive of the same span
/// that is there already holds the same records (records never change), so it is kept.
pub async fn write_archive(
    location: &StoreLocation,
    records: &[AuditRecord],
) -> Result<ArchiveSpan> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(StoreError::AuditWrite {
            reason: "an archive of no records".into(),
        });
    };
    let span = ArchiveSpan {
        first: first.seq,
        last: last.seq,
    };
    let relative = span.relative_path();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for record in records {
        serde_json::to_writer(&mut gzip, record).map_err(|e| decode(&relative, e))?;
        gzip.write_all(b"\n")
            .map_err(|e| corrupt(&relative, e.to_string()))?;
    }
    let bytes = gzip
        .finish()
        .map_err(|e| corrupt(&relative, e.to_string()))?;
    location
        .put_new(
            &location.path(&relative),
            PutPayload::from(Bytes::from(bytes)),
        )
        .await?;
    Ok(span)
}

fn corrupt(path: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_string(),
        what: "audit archive".into(),
        reason,
    }
}
