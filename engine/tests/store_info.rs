//! `info` counts participants one way for the CLI and the admin service: every registered
//! sample ID once, withdrawn ones included (so the number does not move with a withdrawal),
//! with the number withdrawn beside it; the aggregate tier sees nothing that moves with a
//! withdrawal.

use std::process::Command;

use cohortdb_engine::{CohortEngine, Tier};

/// The samples of the batch files, as bcftools lists them.
fn bcftools_samples() -> u64 {
    crate::support::thousand_genomes_batches()
        .iter()
        .map(|file| {
            let out = Command::new("bcftools")
                .args(["query", "-l", file])
                .output()
                .expect("bcftools (scripts/test.sh installs it)");
            assert!(out.status.success(), "bcftools query -l {file}");
            String::from_utf8(out.stdout).unwrap().lines().count() as u64
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_count_registered_participants_and_withdrawals_beside_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::support::batched_store(tmp.path()).await;
    let engine = CohortEngine::open(&store).await.unwrap();
    let before = engine.info().await.unwrap();
    assert_eq!(before.samples, bcftools_samples());
    assert_eq!((before.withdrawn, before.replaced), (0, 0));
    assert_eq!(before.contigs.len(), 1);
    assert!(before.variant_rows() > 1000);
    assert_eq!(before.fragments, 5, "one fragment per batch");
    assert_eq!(before.phenotype_tables.len(), 1);

    let leaving: Vec<String> = engine.samples()[..2]
        .iter()
        .map(|s| s.sample_id.clone())
        .collect();
    engine.withdraw(&leaving).await.unwrap();
    let engine = CohortEngine::open(&store).await.unwrap();
    let after = engine.info().await.unwrap();
    assert_eq!(after.samples, before.samples, "a withdrawal leaves samples");
    assert_eq!(
        engine.samples().len() as u64,
        before.samples - 2,
        "readers see 2 fewer"
    );
    assert_eq!(after.withdrawn, 2);
    assert_eq!(after.version, before.version + 1);
    // A purge rewrites the registry without them; they still count, as withdrawn.
    engine.purge().await.unwrap();
    let engine = CohortEngine::open(&store).await.unwrap();
    let after = engine.info().await.unwrap();
    assert_eq!((after.samples, after.withdrawn), (before.samples, 2));

    // What each tier sees.
    let admin = after.clone().visible_to(Tier::Admin);
    assert_eq!(admin, after);
    let record = after.clone().visible_to(Tier::Record);
    assert!(record.location.is_empty());
    assert_eq!(record.withdrawn, 2);
    let aggregate = after.clone().visible_to(Tier::Aggregate);
    assert_eq!(aggregate.samples, before.samples);
    assert_eq!(
        (
            aggregate.withdrawn,
            aggregate.variant_rows(),
            aggregate.bytes
        ),
        (0, 0, 0)
    );
    assert_eq!(
        aggregate.clone(),
        before
            .clone()
            .visible_to(Tier::Aggregate)
            .with_version(after.version),
        "the aggregate tier cannot tell the two snapshots apart but by version"
    );
}
