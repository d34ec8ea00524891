//! Cohort operations on the simulated N=10,000 cohort:
//! - `case-control`: the counts equal bcftools' `+fill-tags -S groups` answer (Q3 of
//!   REFERENCE_QUERIES.md), and the odds ratio, Fisher's exact p and the allelic chi-square p
//!   equal scipy's `fisher_exact` and `chi2_contingency(correction=False)` computed live here;
//! - `carriers`: the carriers of Q2 equal bcftools', with genotype classes as plink2 counts
//!   them, and phenotype columns as the table holds them;
//! - `genotypes`: one sample's non-reference calls equal bcftools' GT of that sample.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::oracle_support::*;

const SCIPY: &str = r#"
import sys
from scipy.stats import fisher_exact, chi2_contingency
for line in sys.stdin:
    a, b, c, d = map(int, line.split())
    odds, p = fisher_exact([[a, b], [c, d]])
    try:
        chi = chi2_contingency([[a, b], [c, d]], correction=False)[1]
    except ValueError:
        chi = float("nan")
    print(repr(float(odds)), repr(float(p)), repr(float(chi)))
"#;

fn scipy(tables: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", SCIPY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs scipy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(tables.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scipy failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Equal within `rel` (relative), both NaN, or both the same infinity.
fn close(got: f64, want: f64, rel: f64) -> bool {
    (got.is_nan() && want.is_nan())
        || got == want
        || (got - want).abs() <= rel * want.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn case_control_counts_and_tests_equal_bcftools_and_scipy() {
    let (_tmp, store) = sim_store(true);
    let text = cohortdb(&[
        "case-control",
        "--store",
        &store,
        "-r",
        "chr20:20500001-20600000",
        "--cases",
        "case_control = 1",
        "--controls",
        "case_control = 0",
    ])
    .unwrap();
    let rows = tsv_rows(&text);
    assert_eq!(rows.len(), 1496);

    // Counts: bcftools' AC_Hom counts alleles (2 per hom-alt sample).
    let q3 = std::fs::read_to_string(
        shared_dir().join("testdata/reference_queries/q3_bcftools_case_control_counts.tsv"),
    )
    .unwrap();
    let mut expected = Vec::new();
    for line in q3.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        for (i, alt) in f[3].split(',').enumerate() {
            let at = |c: usize| f[c].split(',').nth(i).unwrap().parse::<i64>().unwrap();
            expected.push(format!(
                "{} {} {} {alt} {} {} {} {} {} {} {} {}",
                f[0],
                f[1],
                f[2],
                at(4),
                f[5],
                at(6),
                at(7) / 2,
                at(8),
                f[9],
                at(10),
                at(11) / 2
            ));
        }
    }
    // The site as bcftools keys it (the ID is checked against the VCF below), then the counts.
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| [&r[..2], &r[3..13]].concat().join(" "))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    let ids = run(
        "bcftools",
        &[
            "query",
            "-r",
            "chr20:20500001-20600000",
            "-f",
            "%POS\t%ID\n",
            &format!("{}.vcf.gz", sim_prefix()),
        ],
    )
    .unwrap();
    let ids: std::collections::HashMap<&str, &str> =
        ids.lines().filter_map(|l| l.split_once('\t')).collect();
    for r in &rows {
        assert_eq!(ids.get(r[1].as_str()), Some(&r[2].as_str()), "ID of {r:?}");
    }

    // Statistics against scipy, row by row.
    let tables: String = rows
        .iter()
        .map(|r| {
            let n = |i: usize| r[i].parse::<i64>().unwrap();
            format!("{} {} {} {}\n", n(5), n(6) - n(5), n(9), n(10) - n(9))
        })
        .collect();
    let reference = scipy(&tables);
    let mut checked = 0;
    for (row, line) in rows.iter().zip(reference.lines()) {
        let want: Vec<f64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
        let value = |i: usize| -> f64 {
            if row[i].is_empty() {
                f64::NAN
            } else {
                row[i].parse().unwrap_or_else(|_| panic!("{row:?}"))
            }
        };
        assert!(
            close(value(13), want[0], 1e-12),
            "odds ratio {row:?} vs {line}"
        );
        assert!(
            close(value(14), want[1], 1e-7),
            "Fisher p {row:?} vs {line}"
        );
        assert!(
            close(value(15), want[2], 1e-9),
            "chi-square p {row:?} vs {line}"
        );
        checked += 1;
    }
    assert_eq!(checked, 1496);
}

#[test]
fn carriers_equal_bcftools_with_phenotype_columns_from_the_table() {
    let (_tmp, store) = sim_store(true);
    let pheno = std::fs::read_to_string(format!("{}.pheno.tsv", sim_prefix())).unwrap();

    // Q2: the 719 carriers of chr20:20542845 T>C (654 het, 65 hom-alt as plink2 counts them).
    let all =
        tsv_rows(&cohortdb(&["carriers", "--store", &store, "-r", "chr20:20542845:T:C"]).unwrap());
    let mut ids: Vec<String> = all.iter().map(|r| r[5].clone()).collect();
    assert!(ids.is_sorted(), "carriers are listed by sample ID");
    ids.sort();
    let mut expected: Vec<String> = std::fs::read_to_string(
        shared_dir().join("testdata/reference_queries/q2_bcftools_carriers.txt"),
    )
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let count = |rows: &[Vec<String>], g: &str| rows.iter().filter(|r| r[6] == g).count();
    assert_eq!((count(&all, "het"), count(&all, "hom_alt")), (654, 65));
    // Each carrier's whole call as bcftools prints it.
    let calls = run(
        "bcftools",
        &[
            "query",
            "-r",
            "chr20:20542845",
            "-i",
            "GT=\"alt\"",
            "-f",
            "[%SAMPLE\t%GT\n]",
            &format!("{}.vcf.gz", sim_prefix()),
        ],
    )
    .unwrap();
    let calls: std::collections::HashMap<&str, &str> = calls
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, gt)| gt.contains('1'))
        .collect();
    assert_eq!(calls.len(), all.len());
    for r in &all {
        assert_eq!(calls.get(r[5].as_str()), Some(&r[7].as_str()), "{r:?}");
        assert_eq!(r[2], "8021", "the record's ID: {r:?}");
    }

    // Among cases (170: 150 het + 20 hom-alt), with age and sex as the table has them.
    let cases = tsv_rows(
        &cohortdb(&[
            "carriers",
            "--store",
            &store,
            "-r",
            "chr20:20542845",
            "--cohort",
            "case_control = 1",
            "--columns",
            "age,sex",
        ])
        .unwrap(),
    );
    assert_eq!((count(&cases, "het"), count(&cases, "hom_alt")), (150, 20));
    assert!(
        cases.is_sorted_by_key(|r| r[5].clone()),
        "listed by sample ID"
    );
    let table: std::collections::HashMap<&str, (&str, &str)> = pheno
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], (f[2], f[1]))
        })
        .collect();
    for row in &cases {
        assert_eq!(
            (row[8].as_str(), row[9].as_str()),
            table[row[5].as_str()],
            "{row:?}"
        );
    }
}

#[test]
fn one_samples_genotypes_equal_bcftools() {
    let vcf = format!("{}.vcf.gz", sim_prefix());
    let (_tmp, store) = sim_store(false);
    let region = "chr20:20500001-20600000";
    for sample in ["GSX1020738", "GSX4359091", "GSX6000420"] {
        // bcftools' GT of the sample, split per ALT here: a call holding ALT i twice is
        // hom_alt, once with another called allele het, once with a missing one hemi.
        let text = run(
            "bcftools",
            &[
                "query",
                "-s",
                sample,
                "-r",
                region,
                "-i",
                "GT=\"alt\"",
                "-f",
                "%CHROM\t%POS\t%REF\t%ALT\t[%GT]\t%ID\n",
                &vcf,
            ],
        )
        .unwrap();
        let mut expected = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let phased = f[4].contains('|');
            let alleles: Vec<&str> = f[4].split(['|', '/']).collect();
            for (i, alt) in f[3].split(',').enumerate() {
                let me = (i + 1).to_string();
                let copies = alleles.iter().filter(|a| **a == me).count();
                let missing = alleles.contains(&".");
                let genotype = match (copies, missing) {
                    (0, _) => continue,
                    (2, _) => "hom_alt",
                    (_, true) => "hemi",
                    _ if alleles.len() == 1 => "hemi",
                    _ => "het",
                };
                // The record's ID, and after the class the whole call as bcftools prints it.
                expected.push(format!(
                    "{} {} {} {} {alt} {genotype} {phased} {}",
                    f[0], f[1], f[5], f[2], f[4]
                ));
            }
        }
        let got: Vec<String> = tsv_rows(
            &cohortdb(&[
                "genotypes",
                "--store",
                &store,
                "--sample",
                sample,
                "-r",
                region,
            ])
            .unwrap(),
        )
        .iter()
        .map(|r| r.join(" "))
        .collect();
        assert!(
            !expected.is_empty(),
            "{sample} has no ALT calls in {region}"
        );
        assert_eq!(got, expected, "{sample}");
    }
    let err = cohortdb(&[
        "genotypes",
        "--store",
        &store,
        "--sample",
        "NOPE",
        "-r",
        region,
    ])
    .unwrap_err();
    assert!(err.contains("NOPE"), "{err}");
}

/// The `genotypes` view joined with phenotypes in plain SQL gives the per-group allele counts
/// of `case-control` (itself checked against bcftools above), at every ALT of the region.
#[test]
fn genotypes_view_joins_equal_case_control_counts() {
    let (_tmp, store) = sim_store(true);
    let region = "chr20:20000000-20100000";
    let counts = cohortdb(&[
        "case-control",
        "--store",
        &store,
        "-r",
        region,
        "--cases",
        "case_control = 1",
        "--controls",
        "case_control = 0",
    ])
    .expect("case-control");
    let mut expected = std::collections::BTreeMap::new();
    for row in tsv_rows(&counts) {
        for (group, column) in [("1", 5), ("0", 9)] {
            let ac: i64 = row[column].parse().unwrap();
            if ac > 0 {
                expected.insert((row[1].clone(), row[4].clone(), group.to_string()), ac);
            }
        }
    }
    let sql = "SELECT g.pos, g.alt, p.case_control, sum(g.dosage) \
               FROM genotypes g JOIN phenotypes p USING (sample_id) \
               WHERE g.contig = 'chr20' AND g.pos BETWEEN 20000000 AND 20100000 \
                 AND p.case_control IS NOT NULL GROUP BY 1, 2, 3";
    let got: std::collections::BTreeMap<_, i64> =
        tsv_rows(&cohortdb(&["query", "--store", &store, sql]).expect("query"))
            .into_iter()
            .map(|r| {
                (
                    (r[0].clone(), r[1].clone(), r[2].clone()),
                    r[3].parse().unwrap(),
                )
            })
            .collect();
    assert!(expected.len() > 1000, "only {} groups", expected.len());
    assert_eq!(got, expected);
    // That query is answered with bitmaps (genotype_aggregates.rs), never expanding a call;
    // a filter on a call column (always true here) makes it expand, with the same answer.
    let plan = cohortdb(&["query", "--store", &store, &format!("EXPLAIN {sql}")]).unwrap();
    assert!(
        plan.contains("bitmap_and_count") && !plan.contains("Unnest"),
        "{plan}"
    );
    let expanded_sql = sql.replace("GROUP BY", "AND g.dosage > 0 GROUP BY");
    let plan = cohortdb(&[
        "query",
        "--store",
        &store,
        &format!("EXPLAIN {expanded_sql}"),
    ])
    .unwrap();
    assert!(plan.contains("Unnest"), "{plan}");
    let expanded: std::collections::BTreeMap<_, i64> =
        tsv_rows(&cohortdb(&["query", "--store", &store, &expanded_sql]).expect("query"))
            .into_iter()
            .map(|r| {
                (
                    (r[0].clone(), r[1].clone(), r[2].clone()),
                    r[3].parse().unwrap(),
                )
            })
            .collect();
    assert_eq!(expanded, expected);
}
