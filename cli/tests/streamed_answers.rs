//! Answers longer than a chunk stream from the plan, batch by batch, over gRPC and Flight SQL
//! (and exports as they are written):
//! the audit trail gets a record before the first batch leaves and one when the answer ends
//! (or is dropped), and a client that stops reading leaves the rest of the answer unread and
//! uncomputed.

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use cohortdb_server::ServerOptions;
use futures::{StreamExt, TryStreamExt};

use crate::oracle_support::{cohortdb, sh, sim_prefix};
use crate::support::serving_harness::*;

/// The audit records of `method` whose request starts with `request`: (rows, decision).
fn audit_records(store: &str, method: &str, request: &str) -> Vec<(u64, String)> {
    let listing = cohortdb(&["audit", "--store", store]).unwrap();
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[5] == method && f[8].starts_with(request))
                .then(|| (f[6].parse().unwrap(), f[7].to_string()))
        })
        .collect()
}

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_answers_stream_audited_before_their_first_batch_and_after_their_last() {
    let server = start_with(ServerOptions {
        chunk_bytes: 256 << 10,
        ..Default::default()
    })
    .await;
    let alt_rows: u64 = alt_rows().parse().unwrap();
    let sql_method = "cohortdb.v1.QueryService/Sql";

    // A long answer over gRPC: whole, in chunks, and audited twice.
    let long = "SELECT contig, pos, ref, alt, het FROM variants";
    let batches = sql(&server.channel, ADMIN, long).await.unwrap();
    assert_eq!(rows(&batches), alt_rows);
    assert_eq!(
        audit_records(&server.store, sql_method, long),
        [
            (0, "allowed: streaming".into()),
            (alt_rows, "allowed".into())
        ]
    );
    // A short one is read whole before it leaves: one record with its rows.
    let short = "SELECT count(*) AS n FROM variants";
    let batches = sql(&server.channel, ADMIN, short).await.unwrap();
    assert_eq!(strings(&batches, "n"), [alt_rows.to_string()]);
    assert_eq!(
        audit_records(&server.store, sql_method, short),
        [(1, "allowed".into())]
    );

    // The same long answer through Flight SQL.
    let mut flight = FlightSqlServiceClient::new(server.channel.clone());
    flight.set_token(ADMIN.into());
    let flight_long = "SELECT pos, ref, alt, het FROM variants";
    let info = flight.execute(flight_long.into(), None).await.unwrap();
    assert_eq!(rows(&fetch(&mut flight, info).await), alt_rows);
    assert_eq!(
        audit_records(
            &server.store,
            "arrow.flight.protocol.sql.TicketStatementQuery",
            flight_long
        ),
        [
            (0, "allowed: streaming".into()),
            (alt_rows, "allowed".into())
        ]
    );

    // Every genotype of the cohort: a client that reads one chunk and hangs up gets its first
    // rows long before the last is computed, and the record says how many rows left.
    let all = "SELECT * FROM genotypes";
    let total: u64 = strings(
        &sql(
            &server.channel,
            ADMIN,
            "SELECT count(*) AS n FROM genotypes",
        )
        .await
        .unwrap(),
        "n",
    )[0]
    .parse()
    .unwrap();
    let mut client = QueryServiceClient::new(server.channel.clone());
    let query = pb::SqlRequest { query: all.into() };
    let mut chunks = client
        .sql(request(query, Some(ADMIN)))
        .await
        .unwrap()
        .into_inner();
    let first = chunks.next().await.unwrap().unwrap();
    assert!(!first.ipc.is_empty());
    drop(chunks);
    let mut records = Vec::new();
    for _ in 0..100 {
        records = audit_records(&server.store, sql_method, all);
        if records.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0], (0, "allowed: streaming".into()));
    let (sent, decision) = &records[1];
    assert!(decision.starts_with("cancelled"), "{decision}");
    assert!(*sent > 0 && *sent < total / 4, "{sent} of {total} rows");

    // An export longer than a chunk streams as it is written: a BCF bcftools reads whole, the
    // index after it, and the records it holds in its end record.
    let export = |region: &str| pb::ExportRequest {
        regions: vec![region.into()],
        cohort: None,
        format: pb::ExportFormat::Bcf as i32,
        index: true,
    };
    let region = "chr20:20000000-20400000";
    let parts: Vec<pb::ExportChunk> = client
        .export(request(export(region), Some(RECORD_P1)))
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let (mut data, mut index) = (Vec::new(), Vec::new());
    for part in &parts {
        match part.part.as_ref().unwrap() {
            pb::export_chunk::Part::Data(d) => {
                assert!(index.is_empty(), "data after the index");
                data.extend(d)
            }
            pb::export_chunk::Part::Index(i) => index.extend(i),
        }
    }
    assert!(data.len() > 2 * (256 << 10), "{} bytes", data.len());
    let dir = tempfile::tempdir().unwrap();
    let bcf = dir.path().join("out.bcf");
    std::fs::write(&bcf, &data).unwrap();
    std::fs::write(dir.path().join("out.bcf.csi"), &index).unwrap();
    let written: u64 = sh(&format!(
        "bcftools view -H -r {region} {} | wc -l",
        bcf.display()
    ))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let expected: u64 = sh(&format!(
        "bcftools view -H -r {region} {}.vcf.gz | wc -l",
        sim_prefix()
    ))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert_eq!(written, expected);
    let export_method = "cohortdb.v1.QueryService/Export";
    let exports = audit_records(&server.store, export_method, "");
    assert_eq!(
        exports,
        [
            (0, "allowed: streaming".into()),
            (expected, "allowed".into())
        ]
    );
    // A client that leaves after the first part stops the export.
    let mut parts = client
        .export(request(export("chr20"), Some(RECORD_P1)))
        .await
        .unwrap()
        .into_inner();
    assert!(parts.next().await.unwrap().is_ok());
    drop(parts);
    for _ in 0..100 {
        records = audit_records(&server.store, export_method, "");
        if records.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records[3].1.starts_with("cancelled"), "{records:?}");

    // The chain still verifies.
    let verified = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap();
    assert!(verified.starts_with("audit trail intact"), "{verified}");
}
