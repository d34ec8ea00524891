//! Every plan node of ours, and the UDF that carries state, survives the trip to another node:
//! encoded with [`PlanCodec`], decoded, executed, it answers what the original plan answers.

use std::sync::Arc;

use cohortdb_engine::policy::disclosure_control::DisclosureControl;
use cohortdb_engine::session::plan_codec::PlanCodec;
use cohortdb_engine::{Access, CohortEngine, Tier};
use datafusion::physical_plan::{collect, displayable};
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};

/// Rows of `sql` planned by `engine`, and the rows of the same plan after the round trip,
/// as sorted text lines; fails unless the plan holds `node`.
async fn round_trip(engine: &CohortEngine, sql: &str, node: &str) -> (Vec<String>, Vec<String>) {
    let ctx = engine.sql_session().unwrap();
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(shown.contains(node), "{sql}: no {node} in\n{shown}");
    let codec = PlanCodec::new(Arc::new(engine.clone()));
    let bytes = physical_plan_to_bytes_with_extension_codec(plan.clone(), &codec)
        .unwrap_or_else(|e| panic!("{sql}: encoding failed: {e}\n{shown}"));
    let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec)
        .unwrap_or_else(|e| panic!("{sql}: decoding failed: {e}"));
    let lines = crate::support::sorted_lines;
    let want = lines(&collect(plan, ctx.task_ctx()).await.unwrap());
    let got = lines(&collect(decoded, ctx.task_ctx()).await.unwrap());
    (want, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_ours_round_trips_and_answers_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::support::batched_store(tmp.path()).await;
    let admin = CohortEngine::open(&store).await.unwrap();
    let first = admin.samples()[0].sample_id.clone();
    let genotypes = format!("SELECT * FROM sample_genotypes('{first}', '22')");
    let cases: [(&str, &str); 9] = [
        // The merged scan of five batches, whole and projected, counted, limited.
        ("SELECT * FROM variants", "VariantsExec"),
        (
            "SELECT contig, pos, ref, alt, ac, an FROM variants WHERE pos BETWEEN 16050000 AND 16060000",
            "VariantsExec",
        ),
        ("SELECT count(*) FROM variants", "VariantsExec"),
        (
            "SELECT pos, alt FROM variants ORDER BY pos, alt LIMIT 5",
            "VariantsExec",
        ),
        // Every table function.
        (
            "SELECT * FROM allele_frequencies('22', 'age < 50')",
            "OperationExec",
        ),
        (
            "SELECT * FROM case_control('22', 'case_control', 'NOT case_control')",
            "OperationExec",
        ),
        (
            "SELECT * FROM association('22:16050000-16100000', 'quant_trait', 'age', 'linear')",
            "OperationExec",
        ),
        ("SELECT * FROM carriers('22:16050115')", "OperationExec"),
        (&genotypes, "OperationExec"),
    ];
    for (sql, node) in cases {
        let (want, got) = round_trip(&admin, sql, node).await;
        assert!(
            want.len() > 4,
            "{sql}: too few rows to compare ({})",
            want.len()
        );
        assert_eq!(got, want, "{sql}");
    }

    // The aggregate tier's `variants` filters by `site_is_public`, bound to its release.
    let control = Arc::new(DisclosureControl::in_memory([7; 32], "codec", 1000.0, 5.0).unwrap());
    let aggregate = admin
        .with_access(Access {
            tier: Tier::Aggregate,
            min_count: 5,
            pseudonym_secret: None,
            disclosure: Some(control),
            phenotypes: None,
        })
        .unwrap();
    let (want, got) = round_trip(
        &aggregate,
        "SELECT contig, pos, ref, alt FROM variants",
        "site_is_public",
    )
    .await;
    assert!(want.len() > 4);
    assert_eq!(got, want, "aggregate variants");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_of_another_release_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::support::batched_store(tmp.path()).await;
    let admin = CohortEngine::open(&store).await.unwrap();
    let tier = |key: u8| {
        let control = DisclosureControl::in_memory([key; 32], "codec", 1000.0, 5.0).unwrap();
        admin
            .with_access(Access {
                tier: Tier::Aggregate,
                min_count: 5,
                pseudonym_secret: None,
                disclosure: Some(Arc::new(control)),
                phenotypes: None,
            })
            .unwrap()
    };
    let (sender, reader) = (tier(1), tier(2));
    let ctx = sender.sql_session().unwrap();
    let plan = ctx
        .sql("SELECT pos FROM variants")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(plan, &PlanCodec::new(Arc::new(sender)))
            .unwrap();
    let reader_ctx = reader.sql_session().unwrap();
    let error = physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &reader_ctx.task_ctx(),
        &PlanCodec::new(Arc::new(reader)),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("another snapshot or access policy"),
        "{error}"
    );
}
