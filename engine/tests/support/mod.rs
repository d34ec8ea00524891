//! What the engine's integration tests share: the shared test data, and stores built from it
//! by the ingest library.

use std::path::PathBuf;

use cohortdb_ingest::phenotype_table::{PhenotypeOptions, ingest_phenotypes};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;

/// The shared test data folder: `$COHORTDB_SHARED` or `../shared` beside the repository.
/// Panics (fails the test) when it is missing: these tests never pass by skipping.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("COHORTDB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("testdata").is_dir(),
        "shared test data not found at {} (set COHORTDB_SHARED)",
        dir.display()
    );
    dir
}

/// The five sample batches of the 1000 Genomes chr22 slice, in order.
pub fn thousand_genomes_batches() -> Vec<String> {
    let dir = shared_dir().join("testdata/opencga/1000g_batches");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".vcf.gz"))
        .collect();
    files.sort();
    files
}

/// A store of the 1000 Genomes batches ingested one by one (the second with
/// `--missing-as-ref`), and a phenotype table with a quantitative and a binary trait made up
/// from the sample order.
pub async fn batched_store(dir: &std::path::Path) -> String {
    let location = dir.join("store").display().to_string();
    let store = Store::open_or_create(&location).unwrap();
    for (i, file) in thousand_genomes_batches().iter().enumerate() {
        let options = IngestOptions {
            missing_as_ref: i == 1,
            ..IngestOptions::default()
        };
        ingest_vcf(&store, std::slice::from_ref(file), &options)
            .await
            .unwrap();
    }
    let store = Store::open(&location).await.unwrap();
    let snapshot = store.snapshot().await.unwrap();
    let samples = cohortdb_store::sample_registry::read_sample_batch(&store, &snapshot)
        .await
        .unwrap();
    let records = cohortdb_store::sample_registry::records_of(&samples);
    let mut table = String::from("sample_id\tquant_trait\tcase_control\tage\n");
    for (i, s) in records.iter().enumerate() {
        let quant = (i * 37 % 101) as f64 / 10.0;
        table.push_str(&format!(
            "{}\t{quant}\t{}\t{}\n",
            s.sample_id,
            i % 3 == 0,
            30 + i % 40
        ));
    }
    let path = dir.join("phenotypes.tsv");
    std::fs::write(&path, table).unwrap();
    ingest_phenotypes(
        &store,
        &path.display().to_string(),
        &PhenotypeOptions::default(),
    )
    .await
    .unwrap();
    location
}

/// The secret of the test clusters.
pub fn cluster_secret() -> cohortdb_engine::cluster::cluster_secret::ClusterSecret {
    cohortdb_engine::cluster::cluster_secret::ClusterSecret::new("test-cluster-secret-0123456789")
        .unwrap()
}

/// Workers serving in this process, and the pool of them; dropping it stops them.
pub struct TestCluster {
    pub pool: std::sync::Arc<cohortdb_engine::cluster::worker_pool::WorkerPool>,
    pub stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// `n` workers over the store at `location`, each a gRPC server on its own port of 127.0.0.1
/// in this process, and a pool of them.
pub async fn start_cluster(location: &str, n: usize) -> TestCluster {
    let mut addresses = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..n {
        let engine = cohortdb_engine::CohortEngine::open(location).await.unwrap();
        let worker =
            cohortdb_engine::cluster::worker_sessions::worker(engine, cluster_secret()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addresses.push(listener.local_addr().unwrap().to_string());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(worker.into_worker_server())
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
    }
    let pool =
        cohortdb_engine::cluster::worker_pool::WorkerPool::connect(&addresses, cluster_secret())
            .await
            .unwrap();
    TestCluster { pool, stops }
}

/// [`start_cluster`], its workers serving until the test ends.
pub async fn start_workers(
    location: &str,
    n: usize,
) -> std::sync::Arc<cohortdb_engine::cluster::worker_pool::WorkerPool> {
    let cluster = start_cluster(location, n).await;
    std::mem::forget(cluster.stops);
    cluster.pool
}

/// `batches` as table text lines, sorted (rows compared without their order).
pub fn sorted_lines(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<String> {
    let text = datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .unwrap()
        .to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}
