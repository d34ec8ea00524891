//! A cohort grown in 50 batches reads as the cohort ingested at once: the simulated N=10,000
//! cohort of REFERENCE_QUERIES.md split into 50 batches of 200 (each without the sites none of
//! its samples carries, as separately called batches would be) and ingested one by one with
//! `--missing-as-ref`. Counting and the streaming SQL scan (its merge window, its partitions,
//! its limit) answer what `bcftools +fill-tags` answers on the unsplit file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cohortdb_engine::{CohortEngine, CohortSpec};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionConfig;

const BATCHES: usize = 50;

/// The simulated cohort (`scripts/test.sh` generates it into `$COHORTDB_SIM_DIR`).
fn simulated_vcf() -> PathBuf {
    let dir = std::env::var_os("COHORTDB_SIM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/sim"));
    let vcf = dir.join("sim_N10000_L1Mb.vcf.gz");
    assert!(
        vcf.is_file(),
        "{} missing (scripts/test.sh simulates it; set COHORTDB_SIM_DIR)",
        vcf.display()
    );
    vcf
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail; {script}")])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pos ref alt ac an` per ALT of the unsplit file, as bcftools counts them.
fn oracle(vcf: &Path) -> BTreeSet<String> {
    sh(&format!(
        "bcftools norm --no-version -m- {} 2>/dev/null | bcftools +fill-tags -- -t AC,AN \
         2>/dev/null | bcftools query -f '%POS\\t%REF\\t%ALT\\t%AC\\t%AN\\n'",
        vcf.display()
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

/// The batch files: consecutive samples, sites without a carrier in the batch dropped. One
/// pass of `bcftools +split` (fifty `bcftools view -S` runs read the whole file fifty times:
/// seven minutes of the suite).
fn split(vcf: &Path, dir: &Path) -> Vec<String> {
    let samples: Vec<String> = sh(&format!("bcftools query -l {}", vcf.display()))
        .lines()
        .map(str::to_string)
        .collect();
    let size = samples.len().div_ceil(BATCHES);
    let groups: String = samples
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{s}\t-\tbatch_{:03}\n", i / size))
        .collect();
    let list = dir.join("groups.txt");
    std::fs::write(&list, groups).unwrap();
    // The filter applies to each output's samples: a record stays where one of them has an ALT.
    sh(&format!(
        "bcftools +split -G {} -i 'GT=\"alt\"' -Oz -o {} {}",
        list.display(),
        dir.display(),
        vcf.display()
    ));
    (0..samples.len().div_ceil(size))
        .map(|i| {
            dir.join(format!("batch_{i:03}.vcf.gz"))
                .display()
                .to_string()
        })
        .collect()
}

/// `pos ref alt ac an` lines of batches with those columns (first five).
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let text = |i: usize| b.column(i).as_string::<i32>().clone();
        let int = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (pos, reference, alt, ac, an) = (int(0), text(1), text(2), int(3), int(4));
        for r in 0..b.num_rows() {
            assert!(!ac.is_null(r) && !an.is_null(r));
            out.push(format!(
                "{}\t{}\t{}\t{}\t{}",
                pos.value(r),
                reference.value(r),
                alt.value(r),
                ac.value(r),
                an.value(r)
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_batches_answer_as_the_unsplit_file() {
    let vcf = simulated_vcf();
    let want = oracle(&vcf);
    let tmp = tempfile::tempdir().unwrap();
    let files = split(&vcf, tmp.path());
    assert_eq!(files.len(), BATCHES);
    let location = tmp.path().join("store").display().to_string();
    let store = Store::open_or_create(&location).unwrap();
    let options = IngestOptions {
        missing_as_ref: true,
        format_fields: Vec::new(),
        ..IngestOptions::default()
    };
    for file in &files {
        ingest_vcf(&store, std::slice::from_ref(file), &options)
            .await
            .unwrap();
    }
    let engine = CohortEngine::open(&location).await.unwrap();
    assert_eq!(engine.info().await.unwrap().fragments, BATCHES as u64);

    // Counting (the site cache's rows, merged).
    let everyone = engine.cohort(CohortSpec::All).await.unwrap();
    let counted = engine.allele_frequencies(&[], &everyone).await.unwrap();
    let got: BTreeSet<String> = lines(&[counted.project(&[1, 3, 4, 5, 6]).unwrap()])
        .into_iter()
        .collect();
    assert_eq!(got.len(), want.len(), "rows counted");
    assert_eq!(
        got, want,
        "af over 50 batches against bcftools on the unsplit file"
    );

    // The SQL scan, on one partition and on seven (cut inside the contig).
    for partitions in [1, 7] {
        let ctx = engine
            .session_with(SessionConfig::new().with_target_partitions(partitions))
            .unwrap();
        let sql = "SELECT pos, ref, alt, ac, an FROM variants";
        let rows = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let got = lines(&rows);
        assert_eq!(
            got.len(),
            want.len(),
            "{partitions} partitions: one row per ALT"
        );
        assert_eq!(
            got.into_iter().collect::<BTreeSet<_>>(),
            want,
            "{partitions} partitions"
        );
        let count = ctx
            .sql("SELECT count(*) FROM variants")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = count[0].column(0).as_primitive::<Int64Type>().value(0);
        assert_eq!(n as usize, want.len(), "{partitions} partitions: count(*)");
        let first = ctx
            .sql(&format!("{sql} LIMIT 5"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let first = lines(&first);
        assert_eq!(first.len(), 5);
        assert!(first.iter().all(|l| want.contains(l)), "{first:?}");
    }
}
