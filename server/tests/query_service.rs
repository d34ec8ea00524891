//! The server in process, called by the generated tonic client: allele frequencies over gRPC
//! equal `bcftools +fill-tags` on the ingested file, a request without a token is refused, and
//! the admin service's store information counts what was ingested.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use cohortdb_proto::v1::admin_service_client::AdminServiceClient;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use cohortdb_proto::v1::{AlleleFrequenciesRequest, StoreInfoRequest};
use cohortdb_server::{ServerOptions, ServerState, TokenRegistry, serve};
use tonic::Request;

const ADMIN: &str = "admin-token-0001";

/// The shared test data folder: `$COHORTDB_SHARED` or `../shared` beside the repository;
/// missing, the test fails (it never passes by skipping).
fn shared_dir() -> PathBuf {
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

fn first_batch() -> String {
    shared_dir()
        .join("testdata/opencga/1000g_batches/1-500.filtered.10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string()
}

/// `pos ref alt ac an` per ALT from bcftools on `vcf` (multi-allelic records split).
fn bcftools_counts(vcf: &str) -> BTreeSet<String> {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; bcftools norm --no-version -m- -Ou '{vcf}' \
             | bcftools +fill-tags -Ou -- -t AC,AN \
             | bcftools query -f '%POS\\t%REF\\t%ALT\\t%AC\\t%AN\\n'"
        ))
        .output()
        .expect("bcftools (apt-get install bcftools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn with_token<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allele_frequencies_over_grpc_equal_bcftools() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store").display().to_string();
    let store = cohortdb_store::Store::open_or_create(&location).unwrap();
    let vcf = first_batch();
    cohortdb_ingest::ingest_vcf(&store, std::slice::from_ref(&vcf), &Default::default())
        .await
        .unwrap();

    let engine = cohortdb_engine::CohortEngine::open(&location)
        .await
        .unwrap();
    let tokens = TokenRegistry::parse(&format!(
        "[[token]]\ntoken = \"{ADMIN}\"\nname = \"test\"\nproject = \"test\"\ntier = \"admin\"\n"
    ))
    .unwrap();
    let state = Arc::new(ServerState::new(engine, tokens, ServerOptions::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    let mut query = QueryServiceClient::connect(address.clone()).await.unwrap();
    let ask = AlleleFrequenciesRequest {
        regions: vec!["22".into()],
        cohort: None,
    };
    let refused = query
        .allele_frequencies(Request::new(ask.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    let mut stream = query
        .allele_frequencies(with_token(ask))
        .await
        .unwrap()
        .into_inner();
    let mut ipc = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        ipc.extend_from_slice(&chunk.ipc);
    }
    let batches: Vec<RecordBatch> =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let mut served = BTreeSet::new();
    for batch in &batches {
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let (pos, reference, alt, ac, an) = (
            column("pos"),
            column("ref"),
            column("alt"),
            column("ac"),
            column("an"),
        );
        let text = |a: &dyn Array, row: usize| {
            arrow::util::display::array_value_to_string(a, row).unwrap()
        };
        for row in 0..batch.num_rows() {
            served.insert(format!(
                "{}\t{}\t{}\t{}\t{}",
                text(pos.as_ref(), row),
                text(reference.as_ref(), row),
                text(alt.as_ref(), row),
                text(ac.as_ref(), row),
                text(an.as_ref(), row),
            ));
        }
    }
    let oracle = bcftools_counts(&vcf);
    assert!(
        oracle.len() > 3_000,
        "only {} rows from bcftools",
        oracle.len()
    );
    assert_eq!(
        served.difference(&oracle).take(3).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows the server gives that bcftools does not"
    );
    assert_eq!(
        served.len(),
        oracle.len(),
        "the server lacks rows bcftools gives"
    );

    let mut admin = AdminServiceClient::connect(address).await.unwrap();
    let info = admin
        .store_info(with_token(StoreInfoRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.samples, 500);
    assert_eq!(
        info.contigs.iter().map(|c| c.variant_rows).sum::<u64>() as usize,
        oracle.len()
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
