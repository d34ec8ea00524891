//! The shared harness of `serving.rs`: tokens, an in-process server over the simulated
//! N=10,000 cohort, and client helpers.

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
use crate::support::cluster_harness::{WorkerProcess, secret_file, start_workers};

pub(crate) const ADMIN: &str = "token-admin-0001";
pub(crate) const RECORD_P1: &str = "token-record-p1";
pub(crate) const RECORD_P2: &str = "token-record-p2";
pub(crate) const AGGREGATE: &str = "token-aggregate-1";
pub(crate) const REGION: &str = "chr20:20100001-20200000";

pub(crate) const TOKENS: &str = r#"
audit_secret = "the-tests-audit-secret"

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

/// `sid:` and the first 16 hex digits of HMAC-SHA256 of `id` under the tokens' audit secret,
/// computed by `openssl` (the audit trail's pseudonym of a participant ID).
pub(crate) fn audit_pseudonym(id: &str) -> String {
    let out = sh(&format!(
        "printf %s '{id}' | openssl dgst -sha256 -hmac the-tests-audit-secret"
    ))
    .unwrap();
    let hex = out.split_whitespace().last().unwrap();
    format!("sid:{}", &hex[..16])
}

/// The noise key the test stores start with, so that noisy answers are the same in every run.
pub(crate) const NOISE_KEY: &str =
    "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

pub(crate) struct Server {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: String,
    pub(crate) channel: Channel,
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
    /// The worker processes it plans onto, if any.
    pub(crate) workers: Vec<WorkerProcess>,
}

pub(crate) async fn start_with(options: ServerOptions) -> Server {
    start_on(options, 0).await
}

/// A server over the simulated cohort planning onto `workers` worker processes (none: one
/// node).
pub(crate) async fn start_on(options: ServerOptions, workers: usize) -> Server {
    let (dir, store) = tokio::task::spawn_blocking(|| sim_store(true))
        .await
        .unwrap();
    std::fs::create_dir_all(format!("{store}/_privacy")).unwrap();
    std::fs::write(format!("{store}/_privacy/noise_key"), NOISE_KEY).unwrap();
    let mut engine = cohortdb_engine::CohortEngine::open(&store).await.unwrap();
    let secret = secret_file(dir.path());
    let (workers, list) = start_workers(&store, &secret, workers);
    if !workers.is_empty() {
        let addresses: Vec<String> = list.split(',').map(str::to_string).collect();
        let secret =
            cohortdb_engine::cluster::cluster_secret::ClusterSecret::from_file(&secret).unwrap();
        let pool = cohortdb_engine::cluster::worker_pool::WorkerPool::connect(&addresses, secret)
            .await
            .unwrap();
        engine = engine.with_workers(pool);
    }
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
        workers,
    }
}

pub(crate) async fn start() -> Server {
    start_with(ServerOptions::default()).await
}

/// A server that looks for new store versions every 100 ms, for tests that commit while it runs.
pub(crate) async fn start_following() -> Server {
    start_with(ServerOptions {
        refresh_interval: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .await
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

/// Answers combined: three cohorts of one request, whose a + b - c is one participant's
/// dosage at every site (the held-out attack of issue 13), over the Sql RPC and a Flight
/// SQL prepared statement. Both are the same releases, so they answer alike; the admin's
/// answer is the exact dosage, which the noisy combination almost never equals.
pub(crate) async fn three_cohorts_over_sql_and_flight(
    channel: &Channel,
    flight: &mut FlightSqlServiceClient<Channel>,
) {
    let pheno = std::fs::read_to_string(format!("{}.pheno.tsv", sim_prefix())).unwrap();
    let rows: Vec<Vec<&str>> = pheno
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    fn key<'a>(r: &[&'a str]) -> [&'a str; 4] {
        [r[1], r[2], r[3], r[4]]
    }
    let target = rows
        .iter()
        .find(|r| {
            r[2].parse::<i64>().unwrap() < 55
                && r[3] != "NA"
                && rows.iter().filter(|o| key(o) == key(r)).count() == 1
        })
        .unwrap();
    let t = format!(
        "sex = ''{}'' AND age = {} AND bmi = {} AND population = ''{}''",
        target[1], target[2], target[3], target[4]
    );
    let three = format!(
        "SELECT a.pos, a.alt, a.ac + b.ac - c.ac AS d, c.ac >= 200 AS common \
         FROM allele_frequencies('{REGION}', 'age < 55') a \
         JOIN allele_frequencies('{REGION}', 'age >= 55 OR ({t})') b ON a.pos = b.pos AND a.alt = b.alt \
         JOIN allele_frequencies('{REGION}', '') c ON a.pos = c.pos AND a.alt = c.alt \
         ORDER BY a.pos, a.alt"
    );
    let exact = sql(channel, ADMIN, &three).await.unwrap();
    let noisy = sql(channel, AGGREGATE, &three).await.unwrap();
    let prepared = flight.prepare(three.clone(), None).await;
    let mut prepared = prepared.unwrap();
    let info = prepared.execute().await.unwrap();
    let by_flight = fetch(flight, info).await;
    assert_eq!(strings(&by_flight, "d"), strings(&noisy, "d"));
    // At common sites (a rare one is mostly 0 whatever the noise; the aggregate tier has rows
    // only for the sites its `variants` lists).
    let key = |b: &[RecordBatch]| {
        let (pos, alt) = (strings(b, "pos"), strings(b, "alt"));
        pos.into_iter().zip(alt).collect::<Vec<_>>()
    };
    let truth: std::collections::HashMap<(String, String), (String, String)> = key(&exact)
        .into_iter()
        .zip(
            strings(&exact, "d")
                .into_iter()
                .zip(strings(&exact, "common")),
        )
        .collect();
    let answered: Vec<((String, String), String)> =
        key(&noisy).into_iter().zip(strings(&noisy, "d")).collect();
    let shown: Vec<(&String, &String)> = answered
        .iter()
        .filter(|(_, n)| !n.is_empty() && n != "null")
        .filter_map(|(site, n)| {
            let (e, common) = truth.get(site)?;
            (common == "true").then_some((e, n))
        })
        .collect();
    let equal = shown.iter().filter(|(e, n)| e == n).count();
    assert!(
        shown.len() > 100 && equal * 4 < shown.len(),
        "the combination equals the dosage at {equal} of {} sites",
        shown.len()
    );
}

/// What a record-tier project sees: p2's approval names sex and age of `phenotypes` only, and
/// no project sees `sample_idx`. Returns the requests made (each is audited).
pub(crate) async fn record_tier_projects(channel: &Channel, variant: &str) -> usize {
    // p2's approval names sex and age of `phenotypes` only: every path shows those alone.
    let table = sql(channel, RECORD_P2, "SELECT * FROM phenotypes LIMIT 1")
        .await
        .unwrap();
    let names: Vec<String> = table[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["sample_id", "sex", "age"]);
    // No record-tier table shows `sample_idx` or the bitmaps over it: the registry's row
    // number is the same for every project and follows the input's sample order.
    for query in [
        "SELECT sample_idx FROM samples",
        "SELECT sample_idx FROM phenotypes",
        "SELECT sample_idx FROM genotypes",
        "SELECT het FROM variants",
        "SELECT * FROM carriers('chr20:20100022', 'sample_idx < 10')",
    ] {
        let refused = sql(channel, RECORD_P1, query).await;
        assert!(refused.is_err(), "{query}: {refused:?}");
    }
    for query in [
        format!("SELECT * FROM allele_frequencies('{REGION}', 'bmi > 30')"),
        format!("SELECT * FROM association('{REGION}', 'quant_trait', 'age', 'linear', '')"),
    ] {
        let refused = sql(channel, RECORD_P2, &query).await;
        assert!(refused.is_err(), "{query}: {refused:?}");
    }
    let bmi = pb::CarriersRequest {
        variant: variant.to_string(),
        cohort: None,
        columns: vec!["bmi".into()],
        ..Default::default()
    };
    assert!(
        read_chunks(
            QueryServiceClient::new(channel.clone())
                .carriers(request(bmi, Some(RECORD_P2)))
                .await
        )
        .await
        .is_err()
    );
    9
}
