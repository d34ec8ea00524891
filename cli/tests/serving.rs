//! The server in-process on 127.0.0.1:0 over the simulated N=10,000 cohort, through real tonic
//! and Arrow Flight SQL clients: authentication, tiers, pseudonyms (checked with `openssl`),
//! results (checked with bcftools), chunking and the audit trail. The aggregate tier's attack
//! suite is `serving_attacks.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::admin_service_client::AdminServiceClient;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use cohortdb_server::ServerOptions;
use futures::TryStreamExt;
use tonic::Code;

use crate::oracle_support::{cohortdb, sh, sim_prefix, sim_store};
use crate::support::server_process::{serve_process, stop_process};
use crate::support::serving_harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_tiers_results_and_audit() {
    let server = start().await;
    let mut admin = AdminServiceClient::new(server.channel.clone());
    let mut query = QueryServiceClient::new(server.channel.clone());
    let mut calls = 0;

    // No token, an unknown token: UNAUTHENTICATED.
    for token in [None, Some("token-nobody-00")] {
        let err = admin
            .store_info(request(pb::StoreInfoRequest {}, token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err}");
        calls += 1;
    }
    let info = admin
        .store_info(request(pb::StoreInfoRequest {}, Some(AGGREGATE)))
        .await
        .unwrap()
        .into_inner();
    calls += 1;
    assert_eq!(
        (info.samples, info.tier.as_str(), info.min_count),
        (10_000, "aggregate", 20)
    );
    assert!(info.location.is_empty(), "only admins see the location");

    // Allele frequencies over the whole cohort equal bcftools +fill-tags.
    let af = pb::AlleleFrequenciesRequest {
        regions: vec![REGION.into()],
        cohort: None,
    };
    let (batches, _) = read_chunks(query.allele_frequencies(request(af, Some(ADMIN))).await)
        .await
        .unwrap();
    calls += 1;
    let ours: BTreeSet<String> = {
        let (pos, alt, ac, an) = (
            strings(&batches, "pos"),
            strings(&batches, "alt"),
            strings(&batches, "ac"),
            strings(&batches, "an"),
        );
        (0..pos.len())
            .map(|i| format!("{}\t{}\t{}\t{}", pos[i], alt[i], ac[i], an[i]))
            .collect()
    };
    let prefix = sim_prefix();
    let oracle: BTreeSet<String> = sh(&format!(
        "bcftools view -r {REGION} {prefix}.vcf.gz -Ou | bcftools norm -m- -Ou \
         | bcftools +fill-tags -Ou -- -t AC,AN \
         | bcftools query -f '%POS\\t%ALT\\t%INFO/AC\\t%INFO/AN\\n'"
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect();
    assert!(oracle.len() > 100);
    let differ: Vec<_> = ours.symmetric_difference(&oracle).take(5).collect();
    assert!(
        differ.is_empty(),
        "{} vs {} rows; first differences: {differ:?}",
        ours.len(),
        oracle.len()
    );

    // Record tier: carriers come back as the project's pseudonyms.
    let variant = sh(&format!(
        "bcftools view -H -r {REGION} -i 'COUNT(GT=\"alt\")>=3' {prefix}.vcf.gz | sed -n 1p | cut -f1,2,4,5 | tr '\\t' ':'"
    ))
    .unwrap()
    .trim()
    .to_string();
    let carriers = |token: &'static str| {
        let mut query = query.clone();
        let variant = variant.clone();
        async move {
            let message = pb::CarriersRequest {
                variant,
                cohort: None,
                columns: vec!["age".into()],
                ..Default::default()
            };
            read_chunks(query.carriers(request(message, Some(token))).await).await
        }
    };
    let real = strings(&carriers(ADMIN).await.unwrap().0, "sample_id");
    let p1 = strings(&carriers(RECORD_P1).await.unwrap().0, "sample_id");
    let p2 = strings(&carriers(RECORD_P2).await.unwrap().0, "sample_id");
    calls += 3;
    assert!(real.len() >= 3 && real.iter().all(|id| id.starts_with("GSX")));
    let expected: BTreeSet<String> = real
        .iter()
        .map(|id| openssl_pseudonym("secret-one", id))
        .collect();
    assert_eq!(p1.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        p1.iter().all(|p| !p2.contains(p)),
        "pseudonyms are unlinkable across projects"
    );
    calls += record_tier_projects(&server.channel, &variant).await;
    // Pseudonyms name samples for their project, and stored IDs are not found.
    let genotypes = |token: &'static str, sample: String| {
        let mut query = query.clone();
        async move {
            let message = pb::SampleGenotypesRequest {
                sample,
                regions: vec![REGION.into()],
            };
            read_chunks(query.sample_genotypes(request(message, Some(token))).await).await
        }
    };
    assert!(
        !genotypes(RECORD_P1, p1[0].clone())
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert_eq!(
        genotypes(RECORD_P1, real[0].clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    calls += 2;
    // Phenotype rows carry the same pseudonyms.
    let joined = sql(
        &server.channel,
        RECORD_P1,
        "SELECT count(*) AS n FROM samples s JOIN phenotypes p USING (sample_id)",
    )
    .await
    .unwrap();
    calls += 1;
    assert_eq!(strings(&joined, "n"), ["10000"]);

    // Deadlines are honoured: a query that cannot finish in 1 ms is cut off.
    let mut slow = request(
        pb::SqlRequest {
            query: "SELECT count(*), sum(dosage) FROM genotypes".into(),
        },
        Some(ADMIN),
    );
    slow.set_timeout(std::time::Duration::from_millis(1));
    let err = read_chunks(query.sql(slow).await).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err}"
    );
    calls += 1;
    // Its audit record is written when the server drops the request.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // A long sample list is kept once beside the trail, and its records name it.
    let ids: Vec<String> = sh(&format!(
        "awk 'NR > 1 && NR <= 101 {{print $1}}' {}.pheno.tsv",
        sim_prefix()
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect();
    for _ in 0..2 {
        let af = pb::AlleleFrequenciesRequest {
            regions: vec![REGION.into()],
            cohort: Some(pb::Cohort {
                selection: Some(pb::cohort::Selection::Samples(pb::SampleIds {
                    ids: ids.clone(),
                })),
            }),
        };
        read_chunks(query.allele_frequencies(request(af, Some(ADMIN))).await)
            .await
            .unwrap();
        calls += 1;
    }
    let lists: Vec<_> = std::fs::read_dir(format!("{}/_audit/lists", server.store))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(lists.len(), 1, "one file for one list: {lists:?}");
    // The list as keyed pseudonyms (checked with openssl), never the IDs.
    let kept = std::fs::read_to_string(&lists[0]).unwrap();
    let lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[0], audit_pseudonym(&ids[0]));
    assert_eq!(lines[99], audit_pseudonym(&ids[99]));
    assert!(!ids.iter().any(|id| kept.contains(id.as_str())), "{kept}");
    let name = lists[0].file_name().unwrap().to_str().unwrap().to_string();
    let listing = cohortdb(&["audit", "--store", &server.store]).unwrap();
    assert_eq!(
        listing
            .matches(&format!("100 IDs in _audit/lists/{name}"))
            .count(),
        2,
        "{listing}"
    );
    assert!(!listing.contains(&ids[99]), "{listing}");
    // A changed list file is found.
    std::fs::write(&lists[0], kept.replace(lines[0], "someone_else")).unwrap();
    let err = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap_err();
    assert!(err.contains(&format!("{name} was changed")), "{err}");
    std::fs::write(&lists[0], kept).unwrap();

    // Every request above is in the audit trail, whose chain verifies.
    let verified = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap();
    assert_eq!(
        verified.trim(),
        format!("audit trail intact: {calls} records")
    );
    let listing = cohortdb(&["audit", "--store", &server.store]).unwrap();
    assert_eq!(
        listing.matches("denied: unauthenticated").count(),
        2,
        "{listing}"
    );
    assert!(
        listing.contains(
            "alice\tp1\trecord\tcohortdb.v1.QueryService/Sql\t1\tallowed\tSELECT count(*)"
        )
    );
    // Tampering with a record is found.
    let first = format!("{}/_audit/{:020}.json", server.store, 3);
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replace("\"rows\":1", "\"rows\":2")).unwrap();
    let err = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap_err();
    assert!(err.contains("audit record 3"), "{err}");

    // Rotation refuses a broken chain; on a whole one it archives every file but the newest,
    // and the chain still verifies through the archive.
    let archive = [
        "audit",
        "--store",
        &server.store,
        "--archive-older-than",
        "0",
    ];
    let err = cohortdb(&archive).unwrap_err();
    assert!(err.contains("audit record 3"), "{err}");
    std::fs::write(&first, &text).unwrap();
    let rotated = cohortdb(&archive).unwrap();
    assert!(rotated.starts_with("archived records 1 to "), "{rotated}");
    assert!(rotated.trim_end().ends_with(", 1 live)"), "{rotated}");
    let verified = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap();
    assert_eq!(
        verified.trim(),
        format!("audit trail intact: {calls} records")
    );
    let listing = cohortdb(&["audit", "--store", &server.store]).unwrap();
    assert!(
        listing.contains(
            "alice\tp1\trecord\tcohortdb.v1.QueryService/Sql\t1\tallowed\tSELECT count(*)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_chunks_and_export() {
    let server = start_with(ServerOptions {
        chunk_bytes: 256 << 10,
        ..Default::default()
    })
    .await;
    let channel = &server.channel;

    // Results larger than a chunk arrive in several chunks of at most the limit.
    let mut query = QueryServiceClient::new(channel.clone());
    let big = pb::SqlRequest {
        query: "SELECT contig, pos, ref, alt, het FROM variants".into(),
    };
    let (batches, chunks) = read_chunks(query.sql(request(big, Some(ADMIN))).await)
        .await
        .unwrap();
    assert!(chunks > 2, "{chunks} chunks");
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>()
            .to_string(),
        alt_rows()
    );

    // Flight SQL: a statement, a prepared statement with a parameter, and the catalog.
    let mut flight = FlightSqlServiceClient::new(channel.clone());
    flight.set_token(RECORD_P1.into());
    let info = flight
        .execute(
            "SELECT count(*) AS n FROM phenotypes WHERE age > 60".into(),
            None,
        )
        .await
        .unwrap();
    let batches = fetch(&mut flight, info).await;
    let expected = sh(&format!(
        "awk -F'\\t' 'NR>1 && $3 != \"NA\" && $3 > 60' {}.pheno.tsv | wc -l",
        sim_prefix()
    ))
    .unwrap();
    assert_eq!(strings(&batches, "n"), [expected.trim()]);
    let mut prepared = flight
        .prepare(
            "SELECT count(*) AS n FROM phenotypes WHERE age > $1".into(),
            None,
        )
        .await
        .unwrap();
    let parameter = arrow::array::RecordBatch::try_from_iter([(
        "$1",
        Arc::new(arrow::array::Int64Array::from(vec![60])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    prepared.set_parameters(parameter).unwrap();
    let info = prepared.execute().await.unwrap();
    let batches = fetch(&mut flight, info).await;
    assert_eq!(strings(&batches, "n"), [expected.trim()]);
    let info = flight
        .get_tables(arrow_flight::sql::CommandGetTables::default())
        .await
        .unwrap();
    let tables = fetch(&mut flight, info).await;
    let names = strings(&tables, "table_name");
    for table in ["variants", "samples", "genotypes"] {
        assert!(names.iter().any(|n| n == table), "{names:?}");
    }

    // Export streams a BCF and its CSI index that bcftools reads; genotypes of a record-tier
    // export carry pseudonyms as sample names.
    let export = pb::ExportRequest {
        regions: vec!["chr20:20100001-20110000".into()],
        cohort: predicate("age > 65"),
        format: pb::ExportFormat::Bcf as i32,
        index: true,
    };
    let parts: Vec<pb::ExportChunk> = query
        .export(request(export, Some(RECORD_P1)))
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let (mut data, mut index) = (Vec::new(), Vec::new());
    for part in parts {
        match part.part.unwrap() {
            pb::export_chunk::Part::Data(d) => data.extend(d),
            pb::export_chunk::Part::Index(i) => index.extend(i),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bcf = dir.path().join("out.bcf");
    std::fs::write(&bcf, &data).unwrap();
    std::fs::write(dir.path().join("out.bcf.csi"), &index).unwrap();
    let bcf = bcf.display().to_string();
    let names = sh(&format!("bcftools query -l {bcf}")).unwrap();
    assert!(
        names.lines().count() > 20 && names.lines().all(|n| n.starts_with('P') && n.len() == 33)
    );
    let records = sh(&format!(
        "bcftools view -H -r chr20:20100001-20110000 {bcf} | wc -l"
    ))
    .unwrap();
    let expected = sh(&format!(
        "bcftools view -H -r chr20:20100001-20110000 {}.vcf.gz | wc -l",
        sim_prefix()
    ))
    .unwrap();
    assert_eq!(records.trim(), expected.trim());
}

/// `cohortdb serve` as a process, used by real Python clients (grpcio with reflection and
/// health, adbc_driver_flightsql, pyarrow.flight), then stopped by SIGTERM.
/// A withdrawal committed while the server runs reaches every later request: the server moves
/// to the new store version on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_follows_withdrawals() {
    let server = start_following().await;
    let count = |batches: &[RecordBatch]| strings(batches, "n")[0].clone();
    let first = sql(
        &server.channel,
        ADMIN,
        "SELECT sample_id, sample_idx FROM samples ORDER BY sample_idx LIMIT 100",
    )
    .await
    .unwrap();
    let (listed, idx) = (strings(&first, "sample_id"), strings(&first, "sample_idx"));
    let (ids, idx) = (listed[..3].to_vec(), idx[..3].to_vec());
    // Requests naming them, as the audit trail records them: a long list (kept in a file of
    // its own), a short one, SQL text, and an error that repeats an ID.
    let mut query = QueryServiceClient::new(server.channel.clone());
    for list in [listed.clone(), ids.clone()] {
        let message = pb::AlleleFrequenciesRequest {
            regions: vec![REGION.into()],
            cohort: Some(pb::Cohort {
                selection: Some(pb::cohort::Selection::Samples(pb::SampleIds { ids: list })),
            }),
        };
        read_chunks(
            query
                .allele_frequencies(request(message, Some(ADMIN)))
                .await,
        )
        .await
        .unwrap();
    }
    let refused = sql(
        &server.channel,
        ADMIN,
        &format!("SELECT \"{}\" FROM samples", ids[0]),
    )
    .await;
    assert!(refused.is_err());
    let before = sql(&server.channel, ADMIN, "SELECT count(*) AS n FROM samples")
        .await
        .unwrap();
    assert_eq!(count(&before), "10000");
    let engine = cohortdb_engine::CohortEngine::open(&server.store)
        .await
        .unwrap();
    engine.withdraw(&ids).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = sql(&server.channel, ADMIN, "SELECT count(*) AS n FROM samples")
            .await
            .unwrap();
        if count(&now) == "9997" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never moved on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    for query in [
        format!("SELECT count(*) AS n FROM genotypes WHERE sample_id IN ({list})"),
        format!("SELECT count(*) AS n FROM phenotypes WHERE sample_id IN ({list})"),
    ] {
        let rows = sql(&server.channel, ADMIN, &query).await.unwrap();
        assert_eq!(count(&rows), "0", "{query}");
    }
    // Frequencies over everyone equal the engine's at the new version.
    let fresh = cohortdb_engine::CohortEngine::open(&server.store)
        .await
        .unwrap();
    let regions = cohortdb_engine::Region::parse_list(REGION).unwrap();
    let everyone = fresh
        .cohort(&cohortdb_engine::CohortSpec::All)
        .await
        .unwrap();
    let want = fresh.allele_frequencies(&regions, &everyone).await.unwrap();
    let message = pb::AlleleFrequenciesRequest {
        regions: vec![REGION.into()],
        cohort: None,
    };
    let got = read_chunks(
        QueryServiceClient::new(server.channel.clone())
            .allele_frequencies(request(message, Some(ADMIN)))
            .await,
    )
    .await
    .unwrap()
    .0;
    let want = [want];
    assert_eq!(strings(&got, "an"), strings(&want, "an"));
    assert_eq!(strings(&got, "ac"), strings(&want, "ac"));
    // StoreInfo tells admins how many withdrew, and the aggregate tier nothing that moves
    // with a withdrawal.
    let admin = AdminServiceClient::new(server.channel.clone());
    let info = |token| {
        let mut admin = admin.clone();
        async move {
            admin
                .store_info(request(pb::StoreInfoRequest {}, Some(token)))
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(info(ADMIN).await.withdrawn, 3);
    let aggregate = info(AGGREGATE).await;
    assert_eq!(aggregate.withdrawn, 0);
    assert!(aggregate.contigs.iter().all(|c| c.variant_rows == 0));

    // After purge and vacuum no file of the store holds their IDs: not the data, and not the
    // audit trail of the requests that named them (IDs there are keyed pseudonyms), whose
    // chain still verifies.
    let audit = cohortdb(&["audit", "--store", &server.store]).unwrap();
    assert!(audit.contains(&audit_pseudonym(&ids[0])), "{audit}");
    fresh.purge().await.unwrap();
    cohortdb(&[
        "admin",
        "vacuum",
        "--store",
        &server.store,
        "--older-than",
        "0s",
    ])
    .unwrap();
    assert_eq!(
        crate::oracle_support::scan_store(&server.store, &ids, &idx),
        0,
        "a file still holds a withdrawn participant's ID"
    );
    let verified = cohortdb(&["audit", "--store", &server.store, "--verify"]).unwrap();
    assert!(verified.starts_with("audit trail intact"), "{verified}");
}

#[test]
fn python_clients_against_cohortdb_serve() {
    let (_dir, store) = sim_store(true);
    let tokens = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tokens.path(), TOKENS).unwrap();
    let (child, address, stderr) = serve_process(&store, tokens.path(), &[]);
    let over_60 = sh(&format!(
        "awk -F'\\t' 'NR>1 && $3 != \"NA\" && $3 > 60' {}.pheno.tsv | wc -l",
        sim_prefix()
    ))
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/clients.py");
    let result = std::process::Command::new("python3")
        .args([script, &address, ADMIN, AGGREGATE, over_60.trim()])
        .output()
        .unwrap();
    // SIGTERM drains and stops the server whatever the clients did.
    stop_process(child, stderr);
    assert!(
        result.status.success(),
        "python clients failed:\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let audit = cohortdb(&["audit", "--store", &store, "--verify"]).unwrap();
    assert!(audit.starts_with("audit trail intact"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carriers_come_in_pages_whose_tokens_travel_in_the_schema() {
    let server = start().await;
    let top = sql(
        &server.channel,
        ADMIN,
        "SELECT contig || ':' || CAST(pos AS VARCHAR) AS v FROM variants \
         ORDER BY n_het + n_hom_alt DESC LIMIT 1",
    )
    .await
    .unwrap();
    let variant = strings(&top, "v")[0].clone();
    let engine = cohortdb_engine::CohortEngine::open(&server.store)
        .await
        .unwrap();
    let everyone = engine
        .cohort(&cohortdb_engine::CohortSpec::All)
        .await
        .unwrap();
    let spec = cohortdb_engine::ops::carriers::VariantSpec::parse(&variant).unwrap();
    let whole = engine.carriers(&spec, everyone.set(), &[]).await.unwrap();
    assert!(whole.num_rows() > 1000, "{}", whole.num_rows());
    let mut query = QueryServiceClient::new(server.channel.clone());
    let page = |size: u32, token: String| pb::CarriersRequest {
        variant: variant.clone(),
        page_size: size,
        page_token: token,
        ..Default::default()
    };
    let (mut ids, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (batches, _) = read_chunks(
            query
                .carriers(request(page(1000, token), Some(ADMIN)))
                .await,
        )
        .await
        .unwrap();
        let metadata = batches[0].schema().metadata().clone();
        assert_eq!(metadata["total_rows"], whole.num_rows().to_string());
        ids.extend(strings(&batches, "sample_id"));
        pages += 1;
        token = metadata["next_page_token"].clone();
        if token.is_empty() {
            break;
        }
        assert_eq!(ids.len(), pages * 1000);
    }
    assert_eq!(pages, whole.num_rows().div_ceil(1000));
    assert_eq!(ids, strings(&[whole], "sample_id"));
    // Above the operator's maximum, or with a token not made by the server: refused.
    for (size, token) in [(100_001, String::new()), (10, "not-a-token".to_string())] {
        let refused = read_chunks(
            query
                .carriers(request(page(size, token), Some(ADMIN)))
                .await,
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    }
}
