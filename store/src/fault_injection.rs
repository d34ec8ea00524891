//! Tests with a fault-injecting object store: the Nth put or get fails, a put is cut short
//! (half the bytes land, then an error), or create-only puts are ignored. Every failure must
//! surface as a typed [`StoreError`] and leave readers at the old version or the new one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::commit_log::{Commit, Store};
use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::log_entry::{CommitKind, FileEntry, FileKind};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The Nth put (1-based) fails.
    FailPut(usize),
    /// The Nth get fails.
    FailGet(usize),
    /// The Nth put stores half its bytes, then fails.
    CutPut(usize),
    /// Create-only puts overwrite.
    IgnoreCreate,
}

#[derive(Debug)]
struct FaultyStore {
    inner: InMemory,
    fault: Fault,
    puts: AtomicUsize,
    gets: AtomicUsize,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({:?})", self.fault)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected failure of {what}").into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fault {
            Fault::FailPut(k) if k == n => return Err(injected("a put")),
            Fault::CutPut(k) if k == n => {
                let bytes: Bytes = payload.into();
                let half = bytes.slice(..bytes.len() / 2);
                self.inner.put_opts(location, half.into(), opts).await?;
                return Err(injected("a put, half written"));
            }
            Fault::IgnoreCreate => opts.mode = PutMode::Overwrite,
            _ => {}
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let n = self.gets.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault == Fault::FailGet(n) {
            return Err(injected("a get"));
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn faulty(fault: Fault) -> Store {
    Store::at(StoreLocation {
        url: format!("faulty://{fault:?}"),
        object_store: Arc::new(FaultyStore {
            inner: InMemory::new(),
            fault,
            puts: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        }),
        root: Path::default(),
    })
}

/// Two data files and their commit, as a writer does it.
async fn write_and_commit(store: &Store) -> crate::Result<u64> {
    let base = store.snapshot().await?;
    let mut files = Vec::new();
    for name in ["variants/contig=1/a.parquet", "samples/b.parquet"] {
        store
            .put_new_file(name, Bytes::from_static(b"0123456789"))
            .await?;
        let kind = match name.starts_with("samples") {
            true => FileKind::Samples,
            false => FileKind::Variants,
        };
        files.push(FileEntry {
            sample_idx_end: (kind == FileKind::Samples).then_some(4),
            ..FileEntry::new(name, kind, 1, 10)
        });
    }
    let commit = Commit {
        kind: CommitKind::Ingest,
        add: files,
        remove: vec![],
        withdraw: vec![],
        retire: vec![],
        operation: serde_json::Value::Null,
    };
    Ok(store.commit_or_discard(&base, commit).await?.version())
}

#[tokio::test]
async fn a_store_that_ignores_create_only_puts_is_refused() {
    let store = faulty(Fault::IgnoreCreate);
    let err = write_and_commit(&store).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidLocation { reason, .. } if reason.contains("create-only")),
        "{err}"
    );
    assert_eq!(store.snapshot().await.unwrap().version(), 0);
}

#[tokio::test]
async fn every_failure_is_typed_and_readers_see_old_or_new() {
    // Puts: 2 data files, 2 probe puts, the log entry (nothing more below a checkpoint).
    // A put cut short is injected on the data files and the probe only: object stores make
    // a single put atomic (S3, GCS, Azure; a local file is renamed into place), and the log
    // entry relies on that.
    for fault in (1..=6)
        .map(Fault::FailPut)
        .chain((1..=4).map(Fault::CutPut))
        .chain((1..=6).map(Fault::FailGet))
    {
        let store = faulty(fault);
        let outcome = write_and_commit(&store).await;
        // Reading may meet the injected get failure itself: a typed error, never a panic.
        let version = match store.snapshot().await {
            Ok(s) => s.version(),
            Err(e) => {
                assert!(
                    matches!(e, StoreError::ObjectStore { .. }),
                    "{fault:?}: {e}"
                );
                store.snapshot().await.unwrap().version()
            }
        };
        match outcome {
            Ok(v) => assert_eq!((v, version), (1, 1), "{fault:?}"),
            Err(e) => {
                assert!(
                    matches!(e, StoreError::ObjectStore { .. }),
                    "{fault:?}: untyped {e}"
                );
                assert_eq!(version, 0, "{fault:?}: a failed commit is not visible");
            }
        }
        // Whatever happened, the store stays writable and readable.
        let store = Store::at(store.location().clone());
        let next = write_and_commit(&store).await;
        if let Ok(v) = next {
            assert_eq!(v, version + 1, "{fault:?}");
        }
    }
}
