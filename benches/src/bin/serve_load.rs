//! A bounded load test of a running `cohortdb serve` (see `benches/serve/run.sh`): concurrent
//! clients mixing carriers lookups (record tier) and 100 kb cohort allele frequencies
//! (aggregate tier) for a fixed time; prints errors, QPS and latency percentiles per query type.
//!
//! `serve_load ADDRESS RECORD_TOKEN AGGREGATE_TOKEN [CLIENTS] [SECONDS] [RATE]`
//!
//! Each client has its own connection. Without RATE (or with 0) the clients are closed-loop:
//! each sends its next request as soon as the last one is answered, so latency is mostly
//! queueing at saturation. With RATE the load is open-loop: requests arrive as a Poisson
//! process of RATE per second in total, spread over the clients, and latency is measured from
//! each request's scheduled arrival (so a slow answer also delays the ones queued behind it
//! in the count, without coordinated omission).
//!
//! Prints p90, p95, p99.9 and the maximum per type on stderr. `MIX=carriers` or `MIX=af`
//! sends only that type (for diagnosis).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use futures::TryStreamExt;
use tonic::transport::Channel;

/// The cohorts of the frequency queries: phenotype predicates of the simulated cohort.
const COHORTS: [&str; 4] = [
    "sex = 'F'",
    "age BETWEEN 50 AND 60",
    "sex = 'M' AND bmi >= 25",
    "case_control = 1",
];
/// The simulated chromosome: chr20:20,000,001-21,000,000.
const FROM: i64 = 20_000_001;
const LENGTH: i64 = 1_000_000;
const WINDOW: i64 = 100_000;

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// xorshift64: a fixed-seed stream per client.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn ipc_rows(
    stream: tonic::Streaming<pb::ArrowChunk>,
) -> Result<usize, Box<dyn std::error::Error>> {
    let chunks: Vec<pb::ArrowChunk> = stream.try_collect().await?;
    let mut bytes = Vec::with_capacity(chunks.iter().map(|c| c.ipc.len()).sum());
    for chunk in &chunks {
        bytes.extend_from_slice(&chunk.ipc);
    }
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    let mut rows = 0;
    for batch in reader {
        rows += batch?.num_rows();
    }
    Ok(rows)
}

/// Variants with at least one carrier, to look up.
async fn variants(channel: &Channel, token: &str) -> Vec<String> {
    let sql = pb::SqlRequest {
        query: "SELECT contig, pos, ref, alt FROM variants WHERE contig = 'chr20' \
                AND n_het + n_hom_alt > 0 ORDER BY pos"
            .into(),
    };
    let stream = QueryServiceClient::new(channel.clone())
        .sql(authorized(sql, token))
        .await
        .unwrap()
        .into_inner();
    let chunks: Vec<pb::ArrowChunk> = stream.try_collect().await.unwrap();
    let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.ipc).collect();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let text = |i: usize| {
            arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap()
        };
        let (c, p, r, a) = (text(0), text(1), text(2), text(3));
        use arrow::array::AsArray;
        for row in 0..batch.num_rows() {
            out.push(format!(
                "{}:{}:{}:{}",
                c.as_string::<i32>().value(row),
                p.as_string::<i32>().value(row),
                r.as_string::<i32>().value(row),
                a.as_string::<i32>().value(row)
            ));
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    carriers: Vec<Duration>,
    frequencies: Vec<Duration>,
    errors: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (address, record, aggregate) = (&args[1], args[2].clone(), args[3].clone());
    let clients: usize = args.get(4).map_or(32, |a| a.parse().unwrap());
    let seconds: u64 = args.get(5).map_or(60, |a| a.parse().unwrap());
    let rate: f64 = args.get(6).map_or(0.0, |a| a.parse().unwrap());
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.unwrap();
    let variants = std::sync::Arc::new(variants(&channel, &record).await);
    eprintln!(
        "{} variants with carriers; {clients} clients for {seconds} s, {}",
        variants.len(),
        match rate > 0.0 {
            true => format!("open loop at {rate} requests/s"),
            false => "closed loop".to_string(),
        }
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mix = std::env::var("MIX");
    let mut tasks = Vec::new();
    for client in 0..clients {
        let channel = endpoint.connect().await.unwrap();
        let variants = variants.clone();
        let mix = mix.clone();
        let (record, aggregate) = (record.clone(), aggregate.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (client as u64 + 1));
            let mut query = QueryServiceClient::new(channel).max_decoding_message_size(64 << 20);
            let mut tally = Tally::default();
            let mut i = 0u64;
            let mut arrival = Instant::now();
            while Instant::now() < deadline {
                i += 1;
                if rate > 0.0 {
                    // Exponential gaps: a Poisson process of rate / clients per client.
                    let uniform = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                    let gap = -(1.0 - uniform).ln() * clients as f64 / rate;
                    arrival += Duration::from_secs_f64(gap);
                    tokio::time::sleep_until(arrival.into()).await;
                }
                let start = if rate > 0.0 { arrival } else { Instant::now() };
                let carriers = match mix.as_deref() {
                    Ok("carriers") => true,
                    Ok("af") => false,
                    _ => i.is_multiple_of(2),
                };
                let outcome = if carriers {
                    let variant = variants[rng.next() as usize % variants.len()].clone();
                    let message = pb::CarriersRequest {
                        variant,
                        cohort: None,
                        columns: vec!["age".into(), "sex".into()],
                        ..Default::default()
                    };
                    match query.carriers(authorized(message, &record)).await {
                        Ok(s) => ipc_rows(s.into_inner()).await.map(|_| true),
                        Err(e) => Err(e.into()),
                    }
                } else {
                    let from = FROM + (rng.next() % (LENGTH - WINDOW) as u64) as i64;
                    let cohort = COHORTS[rng.next() as usize % COHORTS.len()];
                    let message = pb::AlleleFrequenciesRequest {
                        regions: vec![format!("chr20:{from}-{}", from + WINDOW - 1)],
                        cohort: Some(pb::Cohort {
                            selection: Some(pb::cohort::Selection::Predicate(cohort.into())),
                        }),
                    };
                    match query
                        .allele_frequencies(authorized(message, &aggregate))
                        .await
                    {
                        Ok(s) => ipc_rows(s.into_inner()).await.map(|_| false),
                        Err(e) => Err(e.into()),
                    }
                };
                let took = start.elapsed();
                match outcome {
                    Ok(true) => tally.carriers.push(took),
                    Ok(false) => tally.frequencies.push(took),
                    Err(e) => tally.errors.push(e.to_string()),
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.unwrap();
        all.carriers.extend(t.carriers);
        all.frequencies.extend(t.frequencies);
        all.errors.extend(t.errors);
    }
    all.carriers.sort();
    all.frequencies.sort();
    println!("| query | requests | errors | QPS | p50 (ms) | p99 (ms) |");
    println!("|---|---|---|---|---|---|");
    for (name, list) in [
        ("carriers", &all.carriers),
        ("af 100 kb, cohort", &all.frequencies),
    ] {
        println!(
            "| {name} | {} | - | {:.1} | {:.1} | {:.1} |",
            list.len(),
            list.len() as f64 / seconds as f64,
            percentile(list, 0.5),
            percentile(list, 0.99)
        );
        eprintln!(
            "{name}: p90 {:.1} p95 {:.1} p99.9 {:.1} max {:.1}",
            percentile(list, 0.9),
            percentile(list, 0.95),
            percentile(list, 0.999),
            percentile(list, 1.0)
        );
    }
    println!(
        "| errors | {} | {} | | | |",
        all.errors.len(),
        all.errors.len()
    );
    for e in all.errors.iter().take(5) {
        eprintln!("error: {e}");
    }
}
