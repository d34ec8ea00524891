//! A coordinator and three `cohortdb worker` processes on 127.0.0.1: the command line's
//! queries and cohort operations answer exactly what one node answers, on the simulated
//! N=10,000 cohort and on the five 1000 Genomes batches; a worker refuses a coordinator
//! without the cluster's secret; a worker lost mid-query fails that query with UNAVAILABLE
//! naming it, and the server's next query runs on the workers that remain.

use tonic::Code;

use crate::oracle_support::{cohortdb, shared_dir, sim_prefix, sim_store};
use crate::support::cluster_harness::{secret_file, start_workers, start_workers_at};
use crate::support::s3_harness::{BUCKET, cohortdb_at, moto};
use crate::support::serving_harness::{ADMIN, sql, start_on};

/// `args` run once on one node and once with `--workers LIST --secret-file SECRET`: both
/// outputs, which must be equal.
fn both_ways(args: &[&str], list: &str, secret: &str) -> (String, String) {
    let one = cohortdb(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut distributed = args.to_vec();
    distributed.extend(["--workers", list, "--secret-file", secret]);
    let many = cohortdb(&distributed).unwrap_or_else(|e| panic!("{distributed:?}: {e}"));
    (one, many)
}

/// The lines of `text`, sorted (SQL without ORDER BY has no order).
fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines
}

#[test]
fn three_worker_processes_answer_what_one_node_answers() {
    let (dir, store) = sim_store(true);
    let secret = secret_file(dir.path());
    let (_workers, list) = start_workers(&store, &secret, 3);
    let region = "chr20:20000001-20600000";
    for args in [
        vec!["af", "--store", &store, "-r", region],
        vec![
            "af",
            "--store",
            &store,
            "-r",
            region,
            "--cohort",
            "age < 50 AND sex = 'F'",
        ],
        vec![
            "case-control",
            "--store",
            &store,
            "-r",
            region,
            "--cases",
            "case_control = 1",
            "--controls",
            "case_control = 0",
        ],
    ] {
        let (one, many) = both_ways(&args, &list, &secret);
        assert!(one.lines().count() > 1000, "{args:?}: too few rows");
        assert_eq!(many, one, "{args:?}");
    }
    for sql in [
        "SELECT count(*), sum(ac), sum(an), sum(n_het), sum(n_hom_alt) FROM variants",
        "SELECT pos, ref, alt, ac, an FROM variants WHERE pos BETWEEN 20100000 AND 20300000",
        "SELECT p.population, count(*) AS calls FROM genotypes g JOIN phenotypes p \
         USING (sample_id) WHERE g.pos < 20050000 GROUP BY p.population",
        "SELECT * FROM allele_frequencies('chr20:20000001-20400000', 'population = ''YRI''')",
        "SELECT * FROM association('chr20:20000001-20100000', 'quant_trait', 'age', 'linear')",
        "SELECT * FROM carriers('chr20:20000022')",
    ] {
        let args = ["query", "--store", &store, sql];
        let (one, many) = both_ways(&args, &list, &secret);
        assert!(one.lines().count() > 1, "{sql}: no rows");
        assert_eq!(sorted(&many), sorted(&one), "{sql}");
    }
}

#[test]
fn the_1000_genomes_batches_merge_alike_on_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store").display().to_string();
    let mut batches: Vec<String> =
        std::fs::read_dir(shared_dir().join("testdata/opencga/1000g_batches"))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".vcf.gz"))
            .collect();
    batches.sort();
    for file in &batches {
        cohortdb(&["ingest", "vcf", "--store", &store, file]).unwrap();
    }
    let secret = secret_file(tmp.path());
    let (_workers, list) = start_workers(&store, &secret, 3);
    let (one, many) = both_ways(&["af", "--store", &store, "-r", "22"], &list, &secret);
    assert!(one.lines().count() > 5000, "too few rows");
    assert_eq!(many, one);
    let sql = "SELECT contig, pos, ref, alt, ac, an, n_no_call FROM variants";
    let (one, many) = both_ways(&["query", "--store", &store, sql], &list, &secret);
    assert_eq!(sorted(&many), sorted(&one));
}

#[test]
fn workers_of_a_store_on_s3_answer_what_one_node_answers() {
    let s3 = moto();
    let endpoint = Some(s3.endpoint.as_str());
    let store = format!("s3://{BUCKET}/cluster");
    let prefix = sim_prefix();
    cohortdb_at(
        &[
            "ingest",
            "vcf",
            "--store",
            &store,
            &format!("{prefix}.vcf.gz"),
        ],
        endpoint,
    );
    let table = format!("{prefix}.pheno.tsv");
    cohortdb_at(
        &["ingest", "phenotypes", "--store", &store, &table],
        endpoint,
    );
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path());
    let (_workers, list) = start_workers_at(&store, &secret, 3, endpoint);
    let cluster = ["--workers", list.as_str(), "--secret-file", secret.as_str()];
    let af = [
        "af",
        "--store",
        &store,
        "-r",
        "chr20:20000001-20500000",
        "--cohort",
        "age >= 60",
    ];
    let one = cohortdb_at(&af, endpoint);
    let many = cohortdb_at(&[&af[..], &cluster[..]].concat(), endpoint);
    assert!(one.lines().count() > 1000, "too few rows");
    assert_eq!(many, one);
    let sql = "SELECT population, count(*), sum(bmi) FROM phenotypes p JOIN genotypes g \
               USING (sample_id) WHERE g.pos < 20020000 GROUP BY population";
    let query = ["query", "--store", &store, sql];
    let one = cohortdb_at(&query, endpoint);
    let many = cohortdb_at(&[&query[..], &cluster[..]].concat(), endpoint);
    assert_eq!(sorted(&many), sorted(&one));
}

#[test]
fn a_coordinator_without_the_secret_is_refused() {
    let (dir, store) = sim_store(false);
    let secret = secret_file(dir.path());
    let (_workers, list) = start_workers(&store, &secret, 2);
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "not-this-cluster-secret-0000").unwrap();
    let err = cohortdb(&[
        "query",
        "--store",
        &store,
        "SELECT count(*), sum(ac) FROM variants",
        "--workers",
        &list,
        "--secret-file",
        &wrong.display().to_string(),
    ])
    .expect_err("a coordinator without the secret was answered");
    assert!(
        err.contains("refused a plan without this cluster's secret"),
        "{err}"
    );
    // A worker that is not there is named, not skipped.
    let err = cohortdb(&[
        "af",
        "--store",
        &store,
        "-r",
        "chr20",
        "--workers",
        "127.0.0.1:1",
        "--secret-file",
        &secret,
    ])
    .expect_err("an unreachable worker was accepted");
    assert!(err.contains("worker http://127.0.0.1:1/"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_lost_mid_query_fails_it_retryably_and_the_next_runs_on_the_rest() {
    let mut server = start_on(Default::default(), 3).await;
    let channel = server.channel.clone();
    let ask = |query: &'static str| {
        let channel = channel.clone();
        async move { sql(&channel, ADMIN, query).await }
    };
    // Seconds of work on every worker, so that one dies while it runs.
    let slow = ask("SELECT sum(length(repeat(alt, 400000))) FROM variants");
    let running = tokio::spawn(slow);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let lost = server.workers.remove(1);
    let lost_address = lost.address.clone();
    drop(lost);
    let status = running
        .await
        .unwrap()
        .expect_err("a query that lost a worker answered");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(status.message().contains(&lost_address), "{status}");
    // The next query plans onto the two that remain.
    let batches = ask("SELECT count(*), sum(ac) FROM variants").await.unwrap();
    assert_eq!(batches[0].num_rows(), 1);
}
