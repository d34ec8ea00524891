//! Queries planned onto three workers (gRPC servers on 127.0.0.1, in this process) answer what
//! one node answers, over five batches merged at every site; the aggregate tier sends only
//! scans to the workers; a worker refuses a plan without the cluster's secret.

use cohortdb_engine::CohortEngine;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion_distributed::display_plan_ascii;

use crate::support::{batched_store, start_workers};

/// The rows of `sql` in `engine`'s SQL session, as sorted text lines.
async fn rows(engine: &CohortEngine, sql: &str) -> Vec<String> {
    crate::support::sorted_lines(&engine.sql(sql).await.unwrap().collect().await.unwrap())
}

/// The distributed plan of `sql`, drawn.
async fn plan(engine: &CohortEngine, sql: &str) -> String {
    let plan = engine
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    display_plan_ascii(plan.as_ref(), false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_answer_what_one_node_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = batched_store(tmp.path()).await;
    let one = CohortEngine::open(&store).await.unwrap();
    let pool = start_workers(&store, 3).await;
    assert_eq!(pool.live().len(), 3);
    let many = one.clone().with_workers(pool);

    let sum = "SELECT count(*), sum(ac), sum(an), sum(n_het) FROM variants";
    let shown = plan(&many, sum).await;
    assert!(
        shown.contains("DistributedExec") && shown.contains("tasks=3"),
        "not spread over the workers:\n{shown}"
    );
    let af = "SELECT * FROM allele_frequencies('22', 'age < 50')";
    let shown = plan(&many, af).await;
    assert!(
        shown.contains("RegionTasksExec") && shown.contains("tasks=3"),
        "af not split over the workers:\n{shown}"
    );
    let first = one.samples()[0].sample_id.clone();
    for sql in [
        sum,
        "SELECT contig, pos, ref, alt, ac, an, n_het, n_hom_alt FROM variants",
        "SELECT pos, count(*) AS alts FROM variants GROUP BY pos HAVING count(*) > 1",
        "SELECT pos, alt FROM variants ORDER BY pos, alt LIMIT 7",
        "SELECT v.pos, v.alt, p.case_control, count(*) AS carriers \
         FROM genotypes g JOIN variants v ON g.pos = v.pos AND g.alt = v.alt \
         JOIN phenotypes p ON p.sample_id = g.sample_id \
         WHERE g.pos BETWEEN 16050000 AND 16060000 AND g.dosage > 0 \
         GROUP BY v.pos, v.alt, p.case_control",
        &format!("SELECT * FROM sample_genotypes('{first}', '22')"),
        af,
        "SELECT * FROM allele_frequencies('22:16050000-16300000,22:17000000-17100000')",
        "SELECT * FROM case_control('22', 'case_control', 'NOT case_control')",
        "SELECT * FROM association('22:16050000-16100000', 'quant_trait', 'age', 'linear')",
        "SELECT * FROM carriers('22:16050115')",
    ] {
        assert_eq!(rows(&many, sql).await, rows(&one, sql).await, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_tier_sends_only_scans_to_workers() {
    use cohortdb_engine::policy::disclosure_control::DisclosureControl;
    use cohortdb_engine::{Access, Tier};
    let tmp = tempfile::tempdir().unwrap();
    let store = batched_store(tmp.path()).await;
    let pool = start_workers(&store, 3).await;
    let control = DisclosureControl::in_memory([7; 32], "distributed", 1000.0, 0.2).unwrap();
    let access = Access {
        tier: Tier::Aggregate,
        min_count: 5,
        pseudonym_secret: None,
        disclosure: Some(std::sync::Arc::new(control)),
        phenotypes: None,
    };
    let one = CohortEngine::open(&store)
        .await
        .unwrap()
        .with_access(access.clone())
        .unwrap();
    let many = CohortEngine::open(&store)
        .await
        .unwrap()
        .with_workers(pool)
        .with_access(access)
        .unwrap();
    let sql = "SELECT contig, pos, ref, alt FROM variants WHERE pos < 16100000";
    let shown = plan(&many.for_request(), sql).await;
    // The head stage (the coordinator's) filters; the workers' stage only scans.
    let (head, stages) = shown.split_once("Stage 1").expect("a stage on the workers");
    assert!(head.contains("site_is_public"), "{shown}");
    assert!(
        stages.contains("VariantsExec") && !stages.contains("site_is_public"),
        "{shown}"
    );
    assert!(stages.contains("tasks=3"), "{shown}");
    assert_eq!(
        rows(&many.for_request(), sql).await,
        rows(&one.for_request(), sql).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_a_plan_without_the_cluster_secret() {
    use cohortdb_engine::cluster::cluster_secret::ClusterSecret;
    use cohortdb_engine::cluster::worker_pool::WorkerPool;
    let tmp = tempfile::tempdir().unwrap();
    let store = batched_store(tmp.path()).await;
    let pool = start_workers(&store, 2).await;
    let addresses: Vec<String> = pool.live().iter().map(|u| u.to_string()).collect();
    let wrong = ClusterSecret::new("not-the-cluster-secret-at-all").unwrap();
    let intruder = CohortEngine::open(&store)
        .await
        .unwrap()
        .with_workers(WorkerPool::connect(&addresses, wrong).await.unwrap());
    let err = intruder
        .sql("SELECT count(*), sum(ac) FROM variants")
        .await
        .unwrap()
        .collect()
        .await
        .expect_err("a plan without the secret ran");
    assert!(
        err.to_string()
            .contains("refused a plan without this cluster's secret"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_run_on_the_workers_in_the_order_of_one_node() {
    use cohortdb_engine::{CohortSpec, Region};
    let tmp = tempfile::tempdir().unwrap();
    let store = batched_store(tmp.path()).await;
    let one = CohortEngine::open(&store).await.unwrap();
    let cluster = crate::support::start_cluster(&store, 3).await;
    let many = one.clone().with_workers(cluster.pool.clone());
    let regions = Region::parse_list("22:16050000-16400000,22:17000000-17500000").unwrap();
    let young = one.cohort(CohortSpec::parse("age < 50")).await.unwrap();
    let cases = one.cohort(CohortSpec::parse("case_control")).await.unwrap();
    let controls = one
        .cohort(CohortSpec::parse("NOT case_control"))
        .await
        .unwrap();
    let text = |batches: &[datafusion::arrow::array::RecordBatch]| {
        pretty_format_batches(batches).unwrap().to_string()
    };
    let af = |e: &CohortEngine| {
        let (e, regions, young) = (e.clone(), regions.clone(), young.clone());
        async move { e.allele_frequencies(&regions, &young).await }
    };
    let want = af(&one).await.unwrap();
    assert!(want.num_rows() > 100, "too few rows to split");
    assert_eq!(text(&[af(&many).await.unwrap()]), text(&[want]));
    assert_eq!(
        text(
            &many
                .case_control(&regions, &cases, &controls)
                .await
                .unwrap()
        ),
        text(&one.case_control(&regions, &cases, &controls).await.unwrap())
    );
    // Run on the workers: once they are gone, the operation fails, naming them.
    for stop in cluster.stops {
        stop.send(()).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    cluster.pool.refresh().await;
    assert_eq!(cluster.pool.live().len(), 0, "workers still answer");
    let err = af(&many).await.expect_err("answered without workers");
    assert!(
        err.to_string().contains("no worker of the cluster answers"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_of_another_build_is_refused_by_name() {
    use cohortdb_engine::cluster::worker_pool::WorkerPool;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let other = datafusion_distributed::Worker::default().with_version("0.0.1+someoneelse");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(other.into_worker_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let err = WorkerPool::connect(
        std::slice::from_ref(&address),
        crate::support::cluster_secret(),
    )
    .await
    .expect_err("a worker of another build was accepted");
    let text = err.to_string();
    assert!(
        text.contains(&address)
            && text.contains("0.0.1+someoneelse")
            && text.contains("same build"),
        "{text}"
    );
}
