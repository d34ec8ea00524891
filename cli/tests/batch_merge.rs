//! A cohort grown in batches: the five sample batches of the 1000 Genomes chr22 slice
//! (`opencga/1000g_batches`, each keeping only the sites polymorphic in it) ingested one by
//! one. Per-ALT counts and carriers across batches equal `bcftools merge` of the batch files
//! (a batch without a record is missing there), and with `--missing-as-ref` equal
//! `bcftools merge -0` and the full slice at the merged sites.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oracle_support;

use std::collections::BTreeSet;

use oracle_support::*;

fn batch_files() -> Vec<String> {
    let dir = shared_dir().join("testdata/opencga/1000g_batches");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    files
}

/// `pos ref alt ac an` per ALT of a VCF, as bcftools counts them.
fn bcftools_counts(vcf: &str) -> BTreeSet<String> {
    sh(&format!(
        "bcftools norm --no-version -m- {vcf} 2>/dev/null | bcftools +fill-tags -- -t AC,AN \
         2>/dev/null | bcftools query -f '%POS\\t%REF\\t%ALT\\t%AC\\t%AN\\n'"
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

fn cohortdb_counts(store: &str) -> BTreeSet<String> {
    tsv_rows(&cohortdb(&["af", "--store", store, "-r", "22"]).unwrap())
        .into_iter()
        .map(|r| {
            [&r[1], &r[2], &r[3], &r[4], &r[5]]
                .map(|s| s.as_str())
                .join("\t")
        })
        .collect()
}

fn merged(dir: &std::path::Path, name: &str, zero: bool) -> String {
    let list = dir.join("files.txt");
    std::fs::write(&list, batch_files().join("\n") + "\n").unwrap();
    let out = dir.join(name).display().to_string();
    let mut args = vec!["merge", "--no-version", "--no-index", "-l"];
    let list = list.display().to_string();
    args.push(&list);
    if zero {
        args.push("-0");
    }
    args.extend(["-Oz", "-o", &out]);
    run("bcftools", &args).unwrap();
    run("bcftools", &["index", "-t", &out]).unwrap();
    out
}

/// Non-reference callers of `pos` in a VCF, by sample.
fn bcftools_carriers(vcf: &str, pos: &str) -> BTreeSet<String> {
    sh(&format!(
        "bcftools view -t 22:{pos}-{pos} {vcf} | bcftools query -i 'GT=\"alt\"' -f '[%SAMPLE\\n]'"
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn counts_and_carriers_across_batches_equal_bcftools_merge() {
    let tmp = tempfile::tempdir().unwrap();
    for zero in [false, true] {
        let store = tmp
            .path()
            .join(format!("store{zero}"))
            .display()
            .to_string();
        for file in batch_files() {
            let mut args = vec!["ingest", "vcf", "--store", &store, &file];
            if zero {
                args.push("--missing-as-ref");
            }
            cohortdb(&args).unwrap();
        }
        let oracle = merged(tmp.path(), &format!("merged{zero}.vcf.gz"), zero);
        let (got, want) = (cohortdb_counts(&store), bcftools_counts(&oracle));
        assert!(want.len() > 9000, "{} rows", want.len());
        let differ: Vec<_> = got.symmetric_difference(&want).take(6).collect();
        assert!(
            differ.is_empty(),
            "missing-as-ref {zero}: {} vs {}: {differ:?}",
            got.len(),
            want.len()
        );

        // Carriers at sites several batches hold.
        let sites = sh(&format!(
            "bcftools query -f '%POS\\t%AC\\n' {oracle} | awk '$2 > 40 && n++ < 3 {{print $1}}'"
        ))
        .unwrap();
        for pos in sites.lines() {
            let rows = tsv_rows(
                &cohortdb(&["carriers", "--store", &store, "-r", &format!("22:{pos}")]).unwrap(),
            );
            let ids: BTreeSet<String> = rows.iter().map(|r| r[4].clone()).collect();
            assert_eq!(ids, bcftools_carriers(&oracle, pos), "carriers at {pos}");
        }
    }
    // With --missing-as-ref the batches are the full slice, at the sites they kept.
    let full = shared_dir()
        .join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string();
    let zero = tmp.path().join("storetrue").display().to_string();
    let kept: BTreeSet<String> = cohortdb_counts(&zero);
    let positions = tmp.path().join("positions.txt");
    let mut text: String = kept
        .iter()
        .map(|r| format!("22\t{}\n", r.split('\t').next().unwrap()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    text.push('\n');
    std::fs::write(&positions, text).unwrap();
    let restricted = tmp.path().join("full.vcf.gz").display().to_string();
    run(
        "bcftools",
        &[
            "view",
            "--no-version",
            "-T",
            &positions.display().to_string(),
            "-Oz",
            "-o",
            &restricted,
            &full,
        ],
    )
    .unwrap();
    let want = bcftools_counts(&restricted);
    let differ: Vec<_> = kept.symmetric_difference(&want).take(6).collect();
    assert!(differ.is_empty(), "against the full slice: {differ:?}");
}
