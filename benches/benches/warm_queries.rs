//! Cohort operations on a warm engine (store open, runtime running), as a server runs them:
//! the per-query cost without process start; `aggregate_*` run the same questions under the
//! aggregate tier's disclosure control (noise per cell, one budget charge per cohort), so
//! their ratio to the plain ones is what the control costs. Needs the N=100,000 store of the peer harness
//! (`bash benches/peer/run.sh 100000`), or `COHORTDB_BENCH_STORE=<store with the simulated
//! phenotypes>`.
//!
//!     cargo bench -p cohortdb-benches --bench warm_queries

use cohortdb_engine::{CohortEngine, CohortSpec, Region};
use criterion::{Criterion, criterion_group, criterion_main};

const REGION: &str = "chr20:20500001-20600000";

fn bench(c: &mut Criterion) {
    let store = std::env::var("COHORTDB_BENCH_STORE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/peer/N100000/store").to_string()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let engine = runtime
        .block_on(CohortEngine::open(&store))
        .unwrap_or_else(|e| panic!("{store}: {e} (run benches/peer/run.sh 100000 first)"));
    let regions = Region::parse_list(REGION).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("warm_N100000_100kb");
    group.sample_size(20);
    group.bench_function("case_control", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let sets = engine.cohorts(&case_control_cohorts()).await?;
                engine.case_control(&regions, &sets[0], &sets[1]).await
            })
        })
    });
    group.bench_function("case_control_cohorts_only", |b| {
        b.iter(|| runtime.block_on(engine.cohorts(&case_control_cohorts())))
    });
    let sets = runtime
        .block_on(engine.cohorts(&case_control_cohorts()))
        .unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("case_control_counts_only", |b| {
        b.iter(|| runtime.block_on(engine.case_control(&regions, &sets[0], &sets[1])))
    });
    group.bench_function("af_cohort", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let set = engine
                    .cohort(&CohortSpec::parse("sex = 'F' AND age BETWEEN 50 AND 60"))
                    .await?;
                engine.allele_frequencies(&regions, &set).await
            })
        })
    });
    // The aggregate tier: a budget that never runs out, so every iteration is answered (a
    // repeated question is charged once anyway).
    let control = cohortdb_engine::policy::disclosure_control::DisclosureControl::in_memory(
        [1; 32],
        "bench",
        1e9,
        cohortdb_engine::policy::disclosure_control::DEFAULT_NOISE_SD,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let aggregate = engine
        .with_access(cohortdb_engine::Access {
            tier: cohortdb_engine::Tier::Aggregate,
            min_count: 20,
            pseudonym_secret: None,
            disclosure: Some(std::sync::Arc::new(control)),
            phenotypes: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("aggregate_case_control", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = aggregate.for_request();
                let sets = request.cohorts(&case_control_cohorts()).await?;
                request.case_control(&regions, &sets[0], &sets[1]).await
            })
        })
    });
    group.bench_function("aggregate_af_cohort", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = aggregate.for_request();
                let set = request
                    .cohort(&CohortSpec::parse("sex = 'F' AND age BETWEEN 50 AND 60"))
                    .await?;
                request.allele_frequencies(&regions, &set).await
            })
        })
    });
    group.bench_function("assoc_linear", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let everyone = engine.cohort(&CohortSpec::All).await?;
                let covariates = ["age", "sex", "bmi"].map(String::from);
                engine
                    .association(
                        &regions,
                        &everyone,
                        "phenotypes",
                        "quant_trait",
                        &covariates,
                        Some(cohortdb_engine::ops::association::Model::Linear),
                        None,
                    )
                    .await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// Cases and controls of the simulated cohort.
fn case_control_cohorts() -> [CohortSpec; 2] {
    ["case_control = 1", "case_control = 0"].map(CohortSpec::parse)
}
