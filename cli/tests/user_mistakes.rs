//! The mistakes a bcftools or plink2 user makes every day, and the habits those tools taught
//! (issue 17), tried on the 1000 Genomes chr22 slice: each mistake is refused with what is
//! wrong and a non-zero exit; each habit is done as those tools do it, checked against them.

use std::process::{Command, Stdio};

use crate::oracle_support::{cohortdb, new_store, run, sh, shared_dir};

fn slice() -> String {
    shared_dir()
        .join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string()
}

/// A store of the chr22 slice (contig `22`) with the 1000 Genomes panel as `phenotypes`.
fn slice_store() -> (tempfile::TempDir, String) {
    let (dir, store) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &store, &slice()]).expect("ingest");
    let panel = shared_dir().join("testdata/1000g/panel_2504.tsv");
    let panel = panel.display().to_string();
    cohortdb(&[
        "ingest",
        "phenotypes",
        "--store",
        &store,
        "--key",
        "sample",
        &panel,
    ])
    .expect("phenotypes");
    (dir, store)
}

/// `cohortdb args`' standard error, asserting that it failed.
fn refused(args: &[&str]) -> String {
    match cohortdb(args) {
        Ok(out) => panic!(
            "{args:?} was answered (exit 0): {}",
            &out[..out.len().min(300)]
        ),
        Err(stderr) => stderr,
    }
}

fn assert_says(stderr: &str, words: &[&str]) {
    for w in words {
        assert!(stderr.contains(w), "expected {w:?} in: {stderr}");
    }
}

#[test]
fn malformed_regions_and_unknown_contigs_are_refused() {
    let (_dir, store) = slice_store();
    let s = store.as_str();
    for region in ["chr22:abc", "22:abc", "22:1-x"] {
        let e = refused(&["af", "--store", s, "-r", region]);
        assert_says(&e, &["invalid region", "is not a position"]);
    }
    let e = refused(&["af", "--store", s, "-r", "22 16050075"]);
    assert_says(&e, &["no spaces"]);
    // The store names its contig 22: a chr prefix is the usual slip, and the error says so.
    for args in [
        vec!["af", "-r", "chr22"],
        vec!["export", "-r", "chr22:16050000-16060000", "-o", "-"],
        vec!["genotypes", "--sample", "HG00096", "-r", "chr22"],
        vec![
            "case-control",
            "-r",
            "chr22",
            "--cases",
            "super_pop = 'EUR'",
            "--controls",
            "super_pop = 'AFR'",
        ],
        vec!["assoc", "-r", "chr22", "--trait", "sex"],
        vec!["carriers", "--variant", "chr22:16050075"],
    ] {
        let mut full = args.clone();
        full.extend(["--store", s]);
        let e = refused(&full);
        assert_says(
            &e,
            &[r#"no contig "chr22" (it names it "22"); its contigs: 22"#],
        );
    }
    let e = refused(&[
        "query",
        "--store",
        s,
        "SELECT * FROM allele_frequencies('chr22:abc', '')",
    ]);
    assert_says(&e, &["invalid region \"chr22:abc\""]);
    // A known contig with no record in range is an answer: the header alone, exit 0.
    let out = cohortdb(&["af", "--store", s, "-r", "22:1-1000"]).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn cohorts_that_select_no_one_or_overlap_are_refused() {
    let (dir, store) = slice_store();
    let s = store.as_str();
    let region = "22:16050075";
    let e = refused(&[
        "af",
        "--store",
        s,
        "-r",
        region,
        "--cohort",
        "super_pop = 'XYZ'",
    ]);
    assert_says(&e, &["selects no participants (of 2504 not withdrawn)"]);
    let e = refused(&[
        "case-control",
        "--store",
        s,
        "-r",
        region,
        "--cases",
        "super_pop = 'EUR'",
        "--controls",
        "super_pop = 'XYZ'",
    ]);
    assert_says(&e, &["\"super_pop = 'XYZ'\" selects no participants"]);
    // 503 Europeans, 1233 men: 240 European men would be counted twice.
    let e = refused(&[
        "case-control",
        "--store",
        s,
        "-r",
        region,
        "--cases",
        "super_pop = 'EUR'",
        "--controls",
        "sex = 'male'",
    ]);
    let panel =
        std::fs::read_to_string(shared_dir().join("testdata/1000g/panel_2504.tsv")).unwrap();
    let both = panel
        .lines()
        .filter(|l| l.contains("\tEUR\t") && l.ends_with("\tmale"))
        .count();
    assert_says(
        &e,
        &[&format!("{both} participants are both cases and controls")],
    );

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let e = refused(&[
        "af",
        "--store",
        s,
        "-r",
        region,
        "-S",
        empty.to_str().unwrap(),
    ]);
    assert_says(&e, &["the sample list selects no participants"]);
    // A two-column file is refused, as bcftools refuses it, not read by its first column.
    let two = dir.path().join("two.txt");
    std::fs::write(&two, "HG00096\tGBR\nHG00097\tGBR\n").unwrap();
    let e = refused(&[
        "af",
        "--store",
        s,
        "-r",
        region,
        "-S",
        two.to_str().unwrap(),
    ]);
    assert_says(&e, &["line 1: one sample ID per line, found 2 columns"]);
    // Every unknown ID is named.
    let e = refused(&[
        "af",
        "--store",
        s,
        "-r",
        region,
        "-s",
        "NA0,HG00096,NA1,NA2",
    ]);
    assert_says(
        &e,
        &[r#"3 samples are not in the store: "NA0", "NA1", "NA2""#],
    );

    // A withdrawn participant named explicitly is left out, and the user told so.
    cohortdb(&["admin", "withdraw", "--store", s, "HG00096"]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cohortdb"))
        .args(["af", "--store", s, "-r", region, "-s", "HG00096,HG00097"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_says(&stderr, &["withdrew consent and are left out: HG00096"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().nth(1).unwrap().split('\t').nth(6), Some("2"));
    let e = refused(&["af", "--store", s, "-r", region, "-s", "HG00096"]);
    assert_says(&e, &["the 1 it names withdrew consent"]);
}

#[test]
fn outputs_follow_the_habits_of_bcftools() {
    let (dir, store) = slice_store();
    let s = store.as_str();
    let region = "22:16050000-16100000";
    // The output type comes from the name, and bcftools reads each back with its index.
    // (-t: the slice is plain gzip, without an index.)
    let expected = run("bcftools", &["view", "-H", "-t", region, &slice()]);
    let expected_records = expected.unwrap().lines().count();
    assert!(expected_records > 100, "{expected_records}");
    for name in ["out.bcf", "out.vcf.gz"] {
        let path = dir.path().join(name).display().to_string();
        cohortdb(&["export", "--store", s, "-r", region, "-o", &path]).unwrap();
        let back = run("bcftools", &["view", "-H", "-r", region, &path])
            .unwrap_or_else(|e| panic!("bcftools cannot read {name} back: {e}"));
        assert_eq!(back.lines().count(), expected_records, "{name}");
    }
    let plain = dir.path().join("out.vcf").display().to_string();
    cohortdb(&["export", "--store", s, "-r", region, "-o", &plain]).unwrap();
    assert!(
        std::fs::read_to_string(&plain)
            .unwrap()
            .starts_with("##fileformat=VCF")
    );

    // A reader that stops early is not an error.
    let bin = env!("CARGO_BIN_EXE_cohortdb");
    for command in [
        format!("{bin} af --store {s} -r 22 --format json"),
        format!("{bin} export --store {s} -r 22"),
        format!("{bin} af --store {s} -r 22"),
    ] {
        let out = sh(&format!(
            "{command} 2>&1 | head -c 100 >/dev/null; exit ${{PIPESTATUS[0]}}"
        ))
        .unwrap_or_else(|e| panic!("{command} | head failed: {e}"));
        assert!(out.is_empty(), "{command} | head printed {out}");
    }

    // SQL that would change nothing that lasts, or write local files, is refused.
    let copied = dir.path().join("copied.csv").display().to_string();
    for sql in [
        "DROP TABLE variants".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        format!("COPY (SELECT 1) TO '{copied}'"),
    ] {
        let e = refused(&["query", "--store", s, &sql]);
        assert_says(&e, &["only queries are served"]);
    }
    assert!(!std::path::Path::new(&copied).exists());
}

#[test]
fn bad_inputs_say_why_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.vcf.gz");
    let bytes = std::fs::read(slice()).unwrap();
    std::fs::write(&truncated, &bytes[..300_000]).unwrap();
    let store = dir.path().join("store");
    let e = refused(&[
        "ingest",
        "vcf",
        "--store",
        store.to_str().unwrap(),
        truncated.to_str().unwrap(),
    ]);
    assert_says(&e, &["byte offset 300000", "the file is truncated"]);
    assert!(!store.exists(), "a failed first ingest left {store:?}");

    let (_dir, store) = slice_store();
    let s = store.as_str();
    let table = dir.path().join("visits.tsv");
    std::fs::write(
        &table,
        "participant\tage\tbmi\nHG00096\t54\t31.5\nHG00097\tunknown\t24.0\nHG00099\t61\t22.2\n",
    )
    .unwrap();
    let t = table.to_str().unwrap();
    let e = refused(&["ingest", "phenotypes", "--store", s, "--table", "visits", t]);
    assert_says(
        &e,
        &["its columns: participant, age, bmi", "--key participant"],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cohortdb"))
        .args(["ingest", "phenotypes", "--store", s, "--table", "visits"])
        .args(["--key", "participant", t])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_says(
        &stderr,
        &[
            r#"column "age" is stored as text: 1 of its 3 values are not numbers ("unknown" on line 3)"#,
        ],
    );
    assert!(!stderr.contains("\"bmi\""), "{stderr}");
}

#[test]
fn one_spelling_of_each_option_a_default_store_completions_and_manual_pages() {
    let (_dir, store) = slice_store();
    let bin = env!("CARGO_BIN_EXE_cohortdb");
    // COHORTDB_STORE stands for --store; -s takes samples on every command that takes them.
    let with_env = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("COHORTDB_STORE", &store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let af = with_env(&["af", "-r", "22:16050075", "-s", "HG00096,HG00097"]);
    assert_eq!(
        af.lines().nth(1).unwrap().split('\t').nth(6),
        Some("4"),
        "{af}"
    );
    let carriers = with_env(&["carriers", "--variant", "22:16050075", "-s", "HG00096"]);
    assert_eq!(
        carriers.lines().count(),
        1,
        "HG00096 does not carry it: {carriers}"
    );
    with_env(&["genotypes", "-s", "HG00096", "-r", "22:16050000-16100000"]);
    // Completions that bash reads, and a manual page per command.
    let completions = cohortdb(&["completions", "bash"]).unwrap();
    let script = std::env::temp_dir().join(format!("cohortdb-completions-{}", std::process::id()));
    std::fs::write(&script, &completions).unwrap();
    run("bash", &["-n", script.to_str().unwrap()]).expect("bash parses the completions");
    assert!(completions.contains("--samples-file"));
    let page = cohortdb(&["man", "ingest", "vcf"]).unwrap();
    assert!(
        page.contains(".TH cohortdb-ingest-vcf 1"),
        "{}",
        &page[..200]
    );
    assert!(
        cohortdb(&["man", "af"])
            .unwrap()
            .contains("\\-\\-samples\\-file")
    );
    refused(&["man", "nope"]);
}

#[test]
fn frequencies_per_group_equal_bcftools_fill_tags() {
    let (_dir, store) = slice_store();
    let groups = shared_dir().join("testdata/1000g/groups_superpop.txt");
    let groups = groups.to_str().unwrap();
    let region = "22:16050000-16100000";
    // bcftools' AC and AN per super-population (multi-allelic records split, as af's rows are).
    let expected = sh(&format!(
        "bcftools view -t {region} {} -Ou | bcftools norm -m- -Ou 2>/dev/null \
         | bcftools +fill-tags -- -S {groups} -t AC,AN \
         | bcftools query -f '%POS\\t%ALT\\t%AC_AFR\\t%AN_AFR\\t%AC_AMR\\t%AN_AMR\\t%AC_EAS\\t%AN_EAS\\t%AC_EUR\\t%AN_EUR\\t%AC_SAS\\t%AN_SAS\\n'",
        slice()
    ))
    .unwrap();
    let got = cohortdb(&["af", "--store", &store, "-r", region, "--groups", groups]).unwrap();
    // (pos, alt) -> [(group, ac, an)]
    type GroupCounts = Vec<(String, String, String)>;
    let mut ours: std::collections::HashMap<(String, String), GroupCounts> =
        std::collections::HashMap::new();
    let header: Vec<&str> = got.lines().next().unwrap().split('\t').collect();
    assert_eq!(
        &header[..7],
        ["chrom", "pos", "id", "ref", "alt", "group", "ac"]
    );
    for line in got.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        ours.entry((f[1].to_string(), f[4].to_string()))
            .or_default()
            .push((f[5].to_string(), f[6].to_string(), f[7].to_string()));
    }
    let mut compared = 0;
    for line in expected.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let rows = &ours[&(f[0].to_string(), f[1].to_string())];
        // Groups in the file's order: EUR first there.
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ["EUR", "EAS", "AMR", "SAS", "AFR"], "{line}");
        for (i, group) in ["AFR", "AMR", "EAS", "EUR", "SAS"].iter().enumerate() {
            let row = rows.iter().find(|r| r.0 == *group).unwrap();
            assert_eq!(
                (row.1.as_str(), row.2.as_str()),
                (f[2 + 2 * i], f[3 + 2 * i]),
                "{group} {line}"
            );
        }
        compared += 1;
    }
    assert!(compared > 100, "{compared}");
    let e = refused(&[
        "af", "--store", &store, "-r", region, "--groups", groups, "-s", "HG00096",
    ]);
    assert_says(&e, &["cannot be used with"]);
}
