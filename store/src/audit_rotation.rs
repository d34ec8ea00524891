//! Rotation of the audit trail: the oldest record files into an archive
//! ([`crate::audit_archive`]), so the trail does not grow by a file per request group forever.

use object_store::ObjectStoreExt;

use crate::audit_archive::{ArchiveSpan, archived_head, write_archive};
use crate::audit_log::AuditLog;
use crate::error::{Result, StoreError};

/// What [`AuditLog::archive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The archive written, if any file was old enough.
    pub archive: Option<ArchiveSpan>,
    /// Records archived.
    pub records: u64,
    /// Record files deleted (those archived, and any an interrupted rotation left behind).
    pub files_removed: usize,
    /// Record files still live.
    pub files_left: usize,
}

impl AuditLog {
    /// Rotates the oldest record files, those whose every record was written before
    /// `before_unix_ms`, into one archive ([`crate::audit_archive`]), after checking their
    /// chain; the newest file always stays (appenders chain after it). Then deletes them.
    pub async fn archive(&self, before_unix_ms: u64) -> Result<Rotation> {
        let (archived, mut prev) = archived_head(self.location()).await?;
        let mut expected = archived + 1;
        let mut files = self.file_numbers().await?;
        files.pop();
        let mut records = Vec::new();
        let mut rotated = Vec::new();
        for first in files {
            let file = self.read_file(first).await?;
            let left_behind = file.iter().all(|r| r.seq <= archived);
            if !left_behind && file.iter().any(|r| r.time_unix_ms >= before_unix_ms) {
                break;
            }
            for record in file.into_iter().filter(|r| r.seq > archived) {
                record.check_link(expected, &prev)?;
                prev = record.hash.clone();
                expected += 1;
                records.push(record);
            }
            rotated.push(first);
        }
        let archive = match records.is_empty() {
            true => None,
            false => Some(write_archive(self.location(), &records).await?),
        };
        for first in &rotated {
            let path = self.location().path(&AuditLog::record_path(*first));
            self.location()
                .object_store
                .delete(&path)
                .await
                .map_err(|e| StoreError::object_store(&path, e))?;
        }
        Ok(Rotation {
            archive,
            records: records.len() as u64,
            files_removed: rotated.len(),
            files_left: self.file_numbers().await?.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;

    use super::*;
    use crate::audit_archive::{archives, read_archive};
    use crate::audit_log::test_event as event;
    use crate::location::StoreLocation;

    #[tokio::test]
    async fn rotation_archives_old_files_and_the_chain_runs_through_the_archives() {
        let location = StoreLocation::open("memory://audit-rotation", true).unwrap();
        let log = AuditLog::new(location.clone());
        // One record per file: 40 files.
        for n in 0..40 {
            log.append(event(n)).await.unwrap();
        }
        let before = log.records().await.unwrap();
        assert_eq!(log.queued(), 0);
        // Nothing is old enough yet.
        let none = log.archive(0).await.unwrap();
        assert_eq!((none.archive, none.files_removed), (None, 0));
        let rotation = log.archive(u64::MAX).await.unwrap();
        let span = rotation.archive.unwrap();
        assert_eq!((span.first, span.last), (1, 39));
        assert_eq!(
            (
                rotation.records,
                rotation.files_removed,
                rotation.files_left
            ),
            (39, 39, 1)
        );
        assert_eq!(log.records().await.unwrap(), before);
        assert_eq!(log.verify().await.unwrap(), 40);
        // New appenders (this one and another process's) chain after the live head.
        assert_eq!(
            AuditLog::new(location.clone())
                .append(event(40))
                .await
                .unwrap()
                .seq,
            41
        );
        assert_eq!(log.append(event(41)).await.unwrap().seq, 42);
        // A second rotation follows the first; a file an interrupted rotation left behind
        // (archived, not deleted) is read once and removed by the next rotation.
        let second = log.archive(u64::MAX).await.unwrap().archive.unwrap();
        assert_eq!((second.first, second.last), (40, 41));
        let leftover = log.read_file(41).await;
        assert!(leftover.is_err(), "record 41's file is archived");
        let record = before[5].clone();
        location
            .put_new(
                &location.path(&AuditLog::record_path(6)),
                PutPayload::from(serde_json::to_vec(&record).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(log.verify().await.unwrap(), 42);
        let third = log.archive(u64::MAX).await.unwrap();
        assert_eq!((third.archive, third.files_removed), (None, 1));
        // Every file archived by hand: the head is the last archive's end.
        log.append(event(42)).await.unwrap();
        for first in log.file_numbers().await.unwrap() {
            let path = location.path(&AuditLog::record_path(first));
            let records = log.read_file(first).await.unwrap();
            write_archive(&location, &records).await.unwrap();
            location.object_store.delete(&path).await.unwrap();
        }
        assert_eq!(
            AuditLog::new(location.clone())
                .append(event(43))
                .await
                .unwrap()
                .seq,
            44
        );
        assert_eq!(log.verify().await.unwrap(), 44);
        // A record changed inside an archive is found.
        let first = archives(&location).await.unwrap()[0];
        let mut records = read_archive(&location, first).await.unwrap();
        records[9].event.rows += 1;
        let path = location.path(&first.relative_path());
        location.object_store.delete(&path).await.unwrap();
        write_archive(&location, &records).await.unwrap();
        let err = log.verify().await.unwrap_err().to_string();
        assert!(err.contains("record 10"), "{err}");
    }
}
