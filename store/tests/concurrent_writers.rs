//! Writers in separate handles (as separate processes or nodes would be) committing to one
//! store on the local filesystem at the same time: every commit lands at its own version, the
//! log is dense, and a fresh reader sees every file; two writers removing the same file from
//! one snapshot cannot both succeed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cohortdb_store::Commit;
use cohortdb_store::Store;
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};

const WRITERS: usize = 6;
const COMMITS_EACH: usize = 5;

fn fragment(path: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: FileKind::Variants,
        rows: 1,
        bytes: 4,
        contig: Some("chr20".into()),
        min_pos: Some(1),
        max_pos: Some(1),
        max_end: Some(1),
        sample_idx_end: None,
        columns: vec![],
        table: None,
        sample_range: None,
        missing_as_ref: false,
    }
}

fn commit(add: Vec<FileEntry>, remove: Vec<String>) -> Commit {
    Commit {
        kind: CommitKind::Ingest,
        add,
        remove,
        withdraw: vec![],
        retire: vec![],
        operation: serde_json::json!({"test": "concurrent_writers"}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_land_at_their_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store").display().to_string();
    Store::open_or_create(&location).unwrap();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let location = location.clone();
        writers.push(tokio::spawn(async move {
            // Each writer has its own handle and commits from the snapshot it read first,
            // which the others make stale at once.
            let store = Store::open_or_create(&location).unwrap();
            let base = store.snapshot().await.unwrap();
            let mut versions = Vec::new();
            for c in 0..COMMITS_EACH {
                let path = format!("variants/contig=chr20/w{w}-c{c}.parquet");
                store
                    .put_new_file(&path, bytes::Bytes::from_static(b"PAR1"))
                    .await
                    .unwrap();
                let snapshot = store
                    .commit(&base, commit(vec![fragment(&path)], vec![]))
                    .await
                    .unwrap();
                versions.push(snapshot.version());
            }
            versions
        }));
    }
    let mut versions = Vec::new();
    for writer in writers {
        versions.extend(writer.await.unwrap());
    }
    versions.sort_unstable();
    let total = (WRITERS * COMMITS_EACH) as u64;
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "versions taken twice or skipped"
    );

    let reader = Store::open(&location).await.unwrap();
    let snapshot = reader.snapshot().await.unwrap();
    assert_eq!(snapshot.version(), total);
    assert_eq!(snapshot.state.files.len(), WRITERS * COMMITS_EACH);
    for version in 1..=total {
        let entry = reader.read_entry(version).await.unwrap().unwrap();
        assert_eq!(entry.version, version);
        assert_eq!(
            entry.add.len(),
            1,
            "version {version} holds one writer's file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_removing_one_file_cannot_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store").display().to_string();
    let store = Store::open_or_create(&location).unwrap();
    let path = "variants/contig=chr20/shared.parquet".to_string();
    store
        .put_new_file(&path, bytes::Bytes::from_static(b"PAR1"))
        .await
        .unwrap();
    let empty = store.snapshot().await.unwrap();
    let base = store
        .commit(&empty, commit(vec![fragment(&path)], vec![]))
        .await
        .unwrap();

    let attempts = (0..2).map(|w| {
        let (location, base, path) = (location.clone(), base.clone(), path.clone());
        tokio::spawn(async move {
            let store = Store::open_or_create(&location).unwrap();
            let out = format!("variants/contig=chr20/rewritten-{w}.parquet");
            store
                .put_new_file(&out, bytes::Bytes::from_static(b"PAR1"))
                .await
                .unwrap();
            store
                .commit_or_discard(&base, commit(vec![fragment(&out)], vec![path]))
                .await
        })
    });
    let mut results = Vec::new();
    for attempt in attempts {
        results.push(attempt.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one rewrite lands: {results:?}");
    let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(lost.to_string().contains("removed"), "{lost}");

    let snapshot = Store::open(&location)
        .await
        .unwrap()
        .snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.version(), 2);
    let paths: Vec<&String> = snapshot.state.files.keys().collect();
    assert_eq!(paths.len(), 1, "the shared file replaced once: {paths:?}");
    // The loser's output was discarded, not left behind.
    let written: Vec<String> = std::fs::read_dir(dir.path().join("store/variants/contig=chr20"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("rewritten"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
}
