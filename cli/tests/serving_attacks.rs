//! The aggregate tier's attack suite against the server in-process (127.0.0.1:0, the simulated
//! N=10,000 cohort): every typed RPC, SQL and Flight SQL way to single out a participant (IDs,
//! saved lists, tiny or empty predicates, row-level tables, prepared statements) is denied or
//! suppressed, through real tonic and Arrow Flight SQL clients.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow_flight::sql::client::FlightSqlServiceClient;
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use futures::TryStreamExt;
use tonic::Code;

use crate::oracle_support::{cohortdb, sh, sim_prefix};
use crate::support::serving_harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_tier_attack_suite() {
    attack_suite(start_following().await).await;
}

/// The same attacks on a server that plans onto three worker processes: the tier's refusals
/// and suppression are the coordinator's, whatever runs on the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_tier_attack_suite_on_workers() {
    let options = cohortdb_server::ServerOptions {
        refresh_interval: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let server = start_on(options, 3).await;
    assert_eq!(server.workers.len(), 3);
    attack_suite(server).await;
}

async fn attack_suite(server: Server) {
    let channel = &server.channel;
    let mut query = QueryServiceClient::new(channel.clone());
    let some_id = sh(&format!(
        "head -2 {}.pheno.tsv | tail -1 | cut -f1",
        sim_prefix()
    ))
    .unwrap()
    .trim()
    .to_string();
    let mut attempts = 0;
    let mut denied = |result: Result<Vec<RecordBatch>, tonic::Status>, what: &str| {
        attempts += 1;
        match result {
            Err(s) if s.code() == Code::PermissionDenied => {}
            Err(s) => panic!("{what}: expected PERMISSION_DENIED, got {s}"),
            Ok(b) => panic!("{what}: answered with {} batches", b.len()),
        }
    };

    // Individual-level operations.
    let carriers = pb::CarriersRequest {
        variant: "chr20:20100022".into(),
        cohort: None,
        columns: vec![],
        ..Default::default()
    };
    denied(
        read_chunks(query.carriers(request(carriers, Some(AGGREGATE))).await)
            .await
            .map(|r| r.0),
        "carriers",
    );
    let genotypes = pb::SampleGenotypesRequest {
        sample: some_id.clone(),
        regions: vec![],
    };
    denied(
        read_chunks(
            query
                .sample_genotypes(request(genotypes, Some(AGGREGATE)))
                .await,
        )
        .await
        .map(|r| r.0),
        "sample genotypes",
    );
    let export = pb::ExportRequest {
        regions: vec![REGION.into()],
        cohort: None,
        format: pb::ExportFormat::Bcf as i32,
        index: false,
    };
    let export = match query.export(request(export, Some(AGGREGATE))).await {
        Ok(s) => s.into_inner().try_collect::<Vec<_>>().await.map(|_| vec![]),
        Err(e) => Err(e),
    };
    denied(export, "export");

    // SQL over individual-level tables, functions and files.
    for attack in [
        "SELECT * FROM samples",
        "SELECT * FROM phenotypes",
        "SELECT sample_id, age FROM phenotypes WHERE age > 70",
        "SELECT count(*) FROM genotypes WHERE pos = 20100022",
        "SELECT p.case_control, count(*) FROM genotypes g JOIN phenotypes p USING (sample_id) GROUP BY 1",
        "SELECT * FROM carriers('chr20:20100022')",
        &format!("SELECT * FROM sample_genotypes('{some_id}', '')"),
        &format!("SELECT * FROM allele_frequencies('{REGION}', 'sample_id = ''{some_id}''')"),
        "SELECT * FROM allele_frequencies('chr20:20100001-20100100', 'age = 58 AND bmi = 22.0')",
        // A text column compared with a number: refused before any row is read, whatever
        // the values (a cast row by row would fail only where one is not a number).
        "SELECT * FROM allele_frequencies('chr20:20100001-20100100', 'quant_trait = 1.0 AND population > 5')",
        "SELECT * FROM case_control('chr20:20100001-20100100', 'age = 58 AND bmi = 22.0', 'TRUE')",
        // Predicates whose errors would tell whether a participant exists.
        "SELECT * FROM allele_frequencies('chr20:20100001-20100100', \
         'CASE WHEN age = 58 AND bmi = 22.0 THEN CAST(sex AS INT) ELSE 1 END = 1')",
        "SELECT * FROM allele_frequencies('chr20:20100001-20100100', 'age / (age - 58) > 0')",
        "SELECT * FROM association('chr20:20100001-20100100', 'quant_trait', 'age', 'linear', 'age = 58 AND bmi = 22.0')",
        "CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION '/tmp'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        denied(sql(channel, AGGREGATE, attack).await, attack);
    }

    // Typed RPCs with small cohorts.
    let af = |cohort: Option<pb::Cohort>| pb::AlleleFrequenciesRequest {
        regions: vec!["chr20:20100001-20100100".into()],
        cohort,
    };
    let ids = Some(pb::Cohort {
        selection: Some(pb::cohort::Selection::Samples(pb::SampleIds {
            ids: vec![some_id.clone(); 30],
        })),
    });
    // The same IDs saved as a list cohort (the server follows the store to the new version).
    let list = server.store.clone() + "/../thirty.txt";
    std::fs::write(&list, format!("{some_id}\n").repeat(30)).unwrap();
    cohortdb(&[
        "cohort",
        "save",
        "--store",
        &server.store,
        "thirty",
        "-S",
        &list,
    ])
    .unwrap();
    let named = Some(pb::Cohort {
        selection: Some(pb::cohort::Selection::Named("thirty".into())),
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let admin_named = loop {
        match read_chunks(
            query
                .allele_frequencies(request(af(named.clone()), Some(ADMIN)))
                .await,
        )
        .await
        {
            Ok((batches, _)) => break batches,
            Err(e) if e.code() == Code::NotFound && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("the saved list at the admin tier: {e}"),
        }
    };
    let (admin_ids, _) = read_chunks(
        query
            .allele_frequencies(request(af(ids.clone()), Some(ADMIN)))
            .await,
    )
    .await
    .unwrap();
    assert_eq!(admin_named, admin_ids, "a saved list answers as its IDs");
    for (cohort, what) in [
        (ids, "explicit IDs"),
        (named, "a saved list of IDs"),
        (predicate("age = 58 AND bmi = 22.0"), "a tiny predicate"),
        (predicate("age < 0"), "an empty predicate"),
    ] {
        denied(
            read_chunks(
                query
                    .allele_frequencies(request(af(cohort), Some(AGGREGATE)))
                    .await,
            )
            .await
            .map(|r| r.0),
            what,
        );
    }
    // Prepared statements through Flight SQL.
    let mut flight = FlightSqlServiceClient::new(channel.clone());
    flight.set_token(AGGREGATE.into());
    let prepared = flight
        .prepare("SELECT * FROM phenotypes WHERE sample_id = $1".into(), None)
        .await;
    attempts += 1;
    assert!(
        matches!(&prepared, Err(arrow_flight::error::FlightError::Tonic(s)) if s.code() == Code::PermissionDenied),
        "prepared statement over phenotypes: {prepared:?}"
    );
    assert!(attempts >= 20, "{attempts} attempts");

    three_cohorts_over_sql_and_flight(channel, &mut flight).await;

    // What the tier may see: noisy aggregates with small counts withheld. (Differencing,
    // trackers and the other attacks that combine answers are measured in
    // disclosure_attacks.rs.)
    let rows = sql(
        channel,
        AGGREGATE,
        &format!("SELECT * FROM allele_frequencies('{REGION}', 'sex = ''F''')"),
    )
    .await
    .unwrap();
    let flagged: usize = rows
        .iter()
        .map(|b| {
            b.column_by_name("suppressed")
                .unwrap()
                .as_boolean()
                .true_count()
        })
        .sum();
    let total: usize = rows.iter().map(RecordBatch::num_rows).sum();
    assert!(
        flagged > 0 && flagged < total,
        "{flagged} of {total} rows suppressed"
    );
    assert_no_small_counts(&rows, 20);
    let cc = pb::CaseControlRequest {
        regions: vec![REGION.into()],
        cases: predicate("case_control = 1"),
        controls: predicate("case_control = 0"),
    };
    let (rows, _) = read_chunks(query.case_control(request(cc, Some(AGGREGATE))).await)
        .await
        .unwrap();
    // The tests are computed from the released counts: none where a group's AC or AN is
    // withheld.
    for b in &rows {
        let p = b.column_by_name("p_fisher").unwrap();
        for row in 0..b.num_rows() {
            let withheld = ["ac_cases", "an_cases", "ac_controls", "an_controls"]
                .iter()
                .any(|c| b.column_by_name(c).unwrap().is_null(row));
            assert_eq!(withheld, p.is_null(row));
        }
    }
    // variants lists the sites at least about k participants carry: a rarer one would tell
    // that someone in the biobank carries it (a Beacon answer).
    let sites = sql(channel, AGGREGATE, "SELECT count(*) AS n FROM variants")
        .await
        .unwrap();
    let listed: i64 = strings(&sites, "n")[0].parse().unwrap();
    let exact = sql(
        channel,
        ADMIN,
        "SELECT count(*) AS n FROM variants \
         WHERE bitmap_count(bitmap_or(bitmap_or(het, hom_alt), hemi)) >= 20",
    )
    .await
    .unwrap();
    let exact: i64 = strings(&exact, "n")[0].parse().unwrap();
    let all: i64 = alt_rows().parse().unwrap();
    assert!(
        listed < all && (listed - exact).abs() * 20 < exact,
        "{listed} sites listed; {exact} carried by 20 or more, of {all}"
    );
    let columns = sql(channel, AGGREGATE, "SELECT het FROM variants")
        .await
        .unwrap_err();
    assert_ne!(columns.code(), Code::Ok);
}
