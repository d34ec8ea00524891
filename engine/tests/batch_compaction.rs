//! Compaction across batches while others write: a batch ingested after the compactor took its
//! snapshot is kept, a second compaction of the same batches from that snapshot conflicts and
//! leaves no file behind, and the store answers as one never compacted.

use std::collections::BTreeSet;

use crate::support::thousand_genomes_batches;
use cohortdb_engine::maintenance::batch_tiers::BatchPolicy;
use cohortdb_engine::maintenance::compaction::CompactOptions;
use cohortdb_engine::{CohortEngine, CohortSpec, EngineError};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::{Store, StoreError};
use datafusion::arrow::util::display::array_value_to_string;

/// Every row of `sql`, cells tab-separated, as a set.
async fn rows(engine: &CohortEngine, sql: &str) -> BTreeSet<String> {
    let ctx = engine.session().unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = BTreeSet::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r).unwrap())
                .collect();
            out.insert(cells.join("\t"));
        }
    }
    out
}

/// The answers compared: SQL `variants` (bitmaps as counts) and frequencies of everyone.
async fn answers(location: &str) -> (BTreeSet<String>, String) {
    let engine = CohortEngine::open(location).await.unwrap();
    let sql = rows(
        &engine,
        "SELECT contig, pos, ref, alt, record_ordinal, allele_index, ac, an, n_no_call, \
         bitmap_count(het), bitmap_count(called_diploid) FROM variants",
    )
    .await;
    let everyone = engine.cohort(CohortSpec::All).await.unwrap();
    let af = engine.allele_frequencies(&[], &everyone).await.unwrap();
    let af = datafusion::arrow::util::pretty::pretty_format_batches(&[af])
        .unwrap()
        .to_string();
    (sql, af)
}

async fn ingest(location: &str, file: &str) {
    let store = Store::open_or_create(location).unwrap();
    ingest_vcf(
        &store,
        &[file.to_string()],
        &IngestOptions {
            format_fields: Vec::new(),
            ..IngestOptions::default()
        },
    )
    .await
    .unwrap();
}

fn parquet_files(location: &str) -> usize {
    let mut n = 0;
    for contig in std::fs::read_dir(std::path::Path::new(location).join("variants")).unwrap() {
        n += std::fs::read_dir(contig.unwrap().path()).unwrap().count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ingested_meanwhile_is_kept_and_a_rival_compaction_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let files = thousand_genomes_batches();
    let location = tmp.path().join("store").display().to_string();
    let reference = tmp.path().join("reference").display().to_string();
    for file in &files {
        ingest(&reference, file).await;
    }
    for file in &files[..4] {
        ingest(&location, file).await;
    }
    let compactor = CohortEngine::open(&location).await.unwrap();
    let rival = CohortEngine::open(&location).await.unwrap();
    // The fifth batch arrives after both took their snapshot.
    ingest(&location, &files[4]).await;

    let all = CompactOptions {
        across_batches: Some(BatchPolicy::All),
        ..CompactOptions::default()
    };
    let plan = compactor.compaction_plan(&all).unwrap();
    assert_eq!(plan.batches.len(), 1);
    assert_eq!(
        plan.batches[0].batches.len(),
        4,
        "the snapshot's four batches"
    );
    let done = compactor.compact(&all).await.unwrap();
    assert_eq!((done.batches_before, done.batches_after), (4, 1));
    assert_eq!(done.version, 6, "committed after the concurrent ingest");
    let files_after = parquet_files(&location);

    let err = rival.compact(&all).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Store(StoreError::CommitConflict { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("removed"), "{err}");
    assert_eq!(
        parquet_files(&location),
        files_after,
        "the rival's files were left behind"
    );

    let engine = CohortEngine::open(&location).await.unwrap();
    assert_eq!(engine.snapshot().version(), 6);
    assert_eq!(
        engine.info().await.unwrap().fragments,
        2,
        "the merged batch and the new one"
    );
    let (got, want) = (answers(&location).await, answers(&reference).await);
    assert!(got.0.len() > 9000, "{} rows", got.0.len());
    assert!(
        got.0 == want.0,
        "SQL variants differ from the uncompacted store"
    );
    assert_eq!(
        got.1, want.1,
        "frequencies differ from the uncompacted store"
    );

    // Merging by --contig is refused: a batch is one sample range over every contig.
    let one_contig = CompactOptions {
        contig: Some("22".into()),
        ..all
    };
    let err = engine.compaction_plan(&one_contig).unwrap_err();
    assert!(err.to_string().contains("every contig"), "{err}");
}
