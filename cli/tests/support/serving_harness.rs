//! The shared harness of `serving.rs`: tokens, an in-process server over the simulated
//! N=10,000 cohort, and client helpers.

#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use cohortdb_server::{ServerOptions, ServerState, TokenRegistry, serve};
use futures::TryStreamExt;
use tonic::Request;
use tonic::transport::Channel;

use crate::oracle_support::{sh, sim_prefix, sim_store};

pub(crate) const ADMIN: &str = "token-admin-0001";
pub(crate) const RECORD_P1: &str = "token-record-p1";
pub(crate) const RECORD_P2: &str = "token-record-p2";
pub(crate) const AGGREGATE: &str = "token-aggregate-1";
pub(crate) const REGION: &str = "chr20:20100001-20200000";

pub(crate) const TOKENS: &str = r#"
[[token]]
token = "token-admin-0001"
name = "root"
project = "operations"
tier = "admin"

[[token]]
token = "token-record-p1"
name = "alice"
project = "p1"
tier = "record"

[[token]]
token = "token-record-p2"
name = "bob"
project = "p2"
tier = "record"

[[token]]
token = "token-aggregate-1"
name = "carol"
project = "p3"
tier = "aggregate"

[projects.p1]
secret = "secret-one"

[projects.p2]
secret = "secret-two"
phenotypes = { phenotypes = ["sex", "age"] }

[projects.p3]
privacy_budget = 1000.0
"#;

/// The noise key the test stores start with, so that noisy answers are the same in every run.
pub(crate) const NOISE_KEY: &str =
    "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

pub(crate) struct Server {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: String,
    pub(crate) channel: Channel,
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) async fn start_with(options: ServerOptions) -> Server {
    let (dir, store) = tokio::task::spawn_blocking(|| sim_store(true))
        .await
        .unwrap();
    std::fs::create_dir_all(format!("{store}/_privacy")).unwrap();
    std::fs::write(format!("{store}/_privacy/noise_key"), NOISE_KEY).unwrap();
    let engine = cohortdb_engine::CohortEngine::open(&store).await.unwrap();
    let tokens = TokenRegistry::parse(TOKENS).unwrap();
    let state = Arc::new(ServerState::new(engine, tokens, options).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Server {
        _dir: dir,
        store,
        channel,
        _stop: stop,
    }
}

pub(crate) async fn start() -> Server {
    start_with(ServerOptions::default()).await
}

pub(crate) fn request<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

pub(crate) async fn read_chunks(
    stream: Result<tonic::Response<tonic::Streaming<pb::ArrowChunk>>, tonic::Status>,
) -> Result<(Vec<RecordBatch>, usize), tonic::Status> {
    let chunks: Vec<pb::ArrowChunk> = stream?.into_inner().try_collect().await?;
    let n = chunks.len();
    let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.ipc).collect();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    Ok((reader.collect::<Result<_, _>>().unwrap(), n))
}

pub(crate) async fn sql(
    channel: &Channel,
    token: &str,
    query: &str,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let mut client = QueryServiceClient::new(channel.clone());
    let sql = pb::SqlRequest {
        query: query.into(),
    };
    Ok(read_chunks(client.sql(request(sql, Some(token))).await)
        .await?
        .0)
}

pub(crate) fn predicate(p: &str) -> Option<pb::Cohort> {
    Some(pb::Cohort {
        selection: Some(pb::cohort::Selection::Predicate(p.into())),
    })
}

pub(crate) fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(
            b.column_by_name(column).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        out.extend(
            c.as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or("").to_string()),
        );
    }
    out
}

/// `P` + 32 hex digits of HMAC-SHA-256(secret, id), computed by openssl.
pub(crate) fn openssl_pseudonym(secret: &str, id: &str) -> String {
    let out = sh(&format!(
        "printf %s '{id}' | openssl dgst -sha256 -hmac '{secret}' | sed 's/.*= //'"
    ))
    .unwrap();
    format!("P{}", &out.trim()[..32])
}

/// The batches of a FlightInfo's first endpoint.
pub(crate) async fn fetch(
    flight: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    flight
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// ALT alleles in the simulated VCF (rows of `variants`), counted by bcftools.
pub(crate) fn alt_rows() -> String {
    let prefix = sim_prefix();
    sh(&format!(
        "bcftools query -f '%ALT\\n' {prefix}.vcf.gz | tr , '\\n' | wc -l"
    ))
    .unwrap()
    .trim()
    .to_string()
}

pub(crate) fn assert_no_small_counts(batches: &[RecordBatch], k: i64) {
    for b in batches {
        let flags = b.column_by_name("suppressed").unwrap().as_boolean();
        for row in 0..b.num_rows() {
            let mut withheld = false;
            for name in ["ac", "an", "n_het", "n_hom_alt"] {
                let Some(c) = b.column_by_name(name) else {
                    continue;
                };
                let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Int64).unwrap();
                let c = c.as_primitive::<Int64Type>();
                if c.is_null(row) {
                    withheld = true;
                } else {
                    let v = c.value(row);
                    assert!(v == 0 || v >= k, "{name} = {v} is shown");
                }
            }
            assert_eq!(
                flags.value(row),
                withheld,
                "suppressed says what is withheld"
            );
        }
    }
}
