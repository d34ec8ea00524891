//! Runs every `testdata/slt/*.slt` file against a store ingested from `testdata/slt/*.vcf` and
//! the phenotype tables `testdata/slt/*.tsv` (one store for all files; each file gets a fresh
//! session); `batches_*.slt` against a store grown from `testdata/slt/batches/*.vcf`, one
//! ingest each.
//!
//! Values print as Arrow displays them, NULL as `NULL`, the empty string as `(empty)`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cohortdb_engine::policy::disclosure_control::DisclosureControl;
use cohortdb_engine::{Access, CohortEngine, Tier};
use cohortdb_ingest::phenotype_table::{PhenotypeOptions, ingest_phenotypes};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

/// A new store of `vcfs`, each ingested on its own when `one_by_one`, else in one commit.
async fn store_of(vcfs: &[String], one_by_one: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let location = dir.path().join("store").display().to_string();
    let store = Store::open_or_create(&location).expect("store");
    let options = IngestOptions::default();
    if one_by_one {
        for vcf in vcfs {
            ingest_vcf(&store, std::slice::from_ref(vcf), &options)
                .await
                .expect("ingest batch");
        }
    } else {
        ingest_vcf(&store, vcfs, &options).await.expect("ingest");
    }
    (dir, location)
}

/// A file's session: one SQL session for the whole file, or (for `aggregate_tier*.slt`) the
/// aggregate tier's engine, which plans each query as the server does, one request each.
enum Session {
    Full(SessionContext),
    Aggregate(Box<CohortEngine>),
}

#[async_trait]
impl sqllogictest::AsyncDB for Session {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = match self {
            Session::Full(ctx) => ctx.sql(sql).await?,
            Session::Aggregate(engine) => engine
                .for_request()
                .sql(sql)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        };
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let mut rows = Vec::new();
        for batch in &batches {
            rows.extend(format_rows(batch)?);
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cohortdb"
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, DataFusionError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| {
                    let text = f.value(row).to_string();
                    if text.is_empty() && !c.is_null(row) {
                        "(empty)".to_string()
                    } else {
                        text
                    }
                })
                .collect()
        })
        .collect())
}

fn slt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/slt")
}

fn files_with(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(slt_dir())
        .expect("testdata/slt")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The stores the files run on: the main one (with the phenotype tables) and the one grown in
/// batches; kept until dropped.
struct SltStores {
    _dirs: [tempfile::TempDir; 2],
    main: String,
    batches: String,
}

async fn slt_stores() -> SltStores {
    let vcfs: Vec<String> = files_with("vcf")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let (main_dir, main) = store_of(&vcfs, false).await;
    // Each `*.tsv` becomes the phenotype table named after the file.
    let opened = Store::open(&main).await.expect("store");
    for table in files_with("tsv") {
        let options = PhenotypeOptions {
            table: table.file_stem().unwrap().to_str().unwrap().to_string(),
            ..PhenotypeOptions::default()
        };
        ingest_phenotypes(&opened, &table.display().to_string(), &options)
            .await
            .expect("ingest phenotypes");
    }
    // `batches_*.slt` run on a store grown in batches: each `batches/*.vcf` one ingest.
    let mut batch_files: Vec<String> = std::fs::read_dir(slt_dir().join("batches"))
        .expect("testdata/slt/batches")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    batch_files.sort();
    let (batches_dir, batches) = store_of(&batch_files, true).await;
    SltStores {
        _dirs: [main_dir, batches_dir],
        main,
        batches,
    }
}

/// Runs every file on `engine` (the main store) and `batches` (the batches store); the
/// failures.
async fn slt_failures(engine: CohortEngine, batches: CohortEngine) -> Vec<String> {
    let files = files_with("slt");
    assert!(files.len() >= 4, "slt files missing in {:?}", slt_dir());
    let mut failures = Vec::new();
    // k = 2 for the six samples of the aggregate tier's file, noise of sd 0.2 (so counts are
    // near their true values) with a fixed key, and a budget of 40 cohorts.
    let control = DisclosureControl::in_memory([9; 32], "slt", 40.0 * 10.0 / 0.08, 0.2)
        .expect("disclosure control");
    let aggregate = engine
        .with_access(Access {
            tier: Tier::Aggregate,
            min_count: 2,
            pseudonym_secret: None,
            disclosure: Some(std::sync::Arc::new(control)),
            phenotypes: None,
        })
        .expect("aggregate engine");
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let ctx = match name.as_deref().is_some_and(|n| n.starts_with("batches")) {
            true => batches.sql_session().expect("session"),
            false => engine.sql_session().expect("session"),
        };
        let aggregate = aggregate.clone();
        let tiered = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("aggregate_tier"));
        let mut runner = sqllogictest::Runner::new(move || {
            let session = if tiered {
                Session::Aggregate(Box::new(aggregate.clone()))
            } else {
                Session::Full(ctx.clone())
            };
            async move { Ok(session) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_surface_matches_the_slt_files() {
    let stores = slt_stores().await;
    let engine = CohortEngine::open(&stores.main).await.expect("open store");
    let batches = CohortEngine::open(&stores.batches)
        .await
        .expect("open batches store");
    let failures = slt_failures(engine, batches).await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The same files, every query planned onto three workers per store (datafusion-distributed,
/// gRPC on 127.0.0.1): the answers do not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_surface_matches_the_slt_files_on_three_workers() {
    let stores = slt_stores().await;
    let engine = CohortEngine::open(&stores.main)
        .await
        .expect("open store")
        .with_workers(crate::support::start_workers(&stores.main, 3).await);
    let batches = CohortEngine::open(&stores.batches)
        .await
        .expect("open batches store")
        .with_workers(crate::support::start_workers(&stores.batches, 3).await);
    let failures = slt_failures(engine, batches).await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
