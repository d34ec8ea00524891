//! `cohortdb assoc` against live `plink2 --glm` on the simulated N=10,000 cohort: linear
//! (quant_trait) and logistic (case_control) regression on ALT dosage with age, sex and bmi.
//!
//! Tolerance: plink2 prints 6 significant digits, so beta, se and p must agree to a relative
//! 1e-4 (plus 1e-5 absolute for betas near 0, printed as an odds ratio for logistic). plink2
//! reports the effect of its A1 allele, which is REF where REF is the minor allele; the test
//! turns those around. Rows where plink2 fell back to Firth regression (`FIRTH?` = Y) must be
//! Firth fits in cohortdb too, and rows without a fit must carry plink2's ERRCODE.

use std::collections::HashMap;

use crate::oracle_support::*;

const COVARIATES: &str = "age,sex,bmi";

/// plink2 inputs from the simulated phenotype table: `#IID` files for the phenotypes (case
/// control as 1/2) and covariates (sex as an M indicator, as cohortdb encodes it).
fn plink_inputs(dir: &std::path::Path) -> (String, String, String) {
    let prefix = sim_prefix();
    let table = std::fs::read_to_string(format!("{prefix}.pheno.tsv")).unwrap();
    let mut pheno = String::from("#IID\tquant_trait\tcase_control\n");
    let mut covar = String::from("#IID\tage\tsex_m\tbmi\n");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, sex, age, bmi, cc, qt) = (
        at("sample_id"),
        at("sex"),
        at("age"),
        at("bmi"),
        at("case_control"),
        at("quant_trait"),
    );
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let cc = match f[cc] {
            "0" => "1",
            "1" => "2",
            _ => "NA",
        };
        let sex_m = match f[sex] {
            "M" => "1",
            "F" => "0",
            _ => "NA",
        };
        pheno.push_str(&format!("{}\t{}\t{cc}\n", f[id], f[qt]));
        covar.push_str(&format!("{}\t{}\t{sex_m}\t{}\n", f[id], f[age], f[bmi]));
    }
    let path = |n: &str| dir.join(n).display().to_string();
    std::fs::write(path("pheno.txt"), pheno).unwrap();
    std::fs::write(path("covar.txt"), covar).unwrap();
    run(
        "plink2",
        &[
            "--vcf",
            &format!("{prefix}.vcf.gz"),
            "--make-pgen",
            "--threads",
            "2",
            "--out",
            &path("pgen"),
        ],
    )
    .expect("plink2 --make-pgen");
    (path("pgen"), path("pheno.txt"), path("covar.txt"))
}

/// How `assoc` and `plink2 --glm` are run for a trait.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Linear,
    /// plink2's default `firth-fallback`, cohortdb's default.
    FirthFallback,
    /// plink2's `no-firth`, cohortdb's `--no-firth`.
    NoFirth,
}

/// Compares one trait over chr20:from-to; returns how many plain and how many Firth fits were
/// compared. plink2 computes in single precision (its Firth fit converges to 1e-4), cohortdb
/// in double: plain fits agree to a relative 1e-4 in beta and se and in log p; Firth fits to
/// 2e-3 of a standard error in beta and 1e-3 in se and p (cohortdb's Firth fits are checked
/// to 1e-6 against a double-precision reference below).
fn compare(
    store: &str,
    dir: &std::path::Path,
    (pgen, pheno, covar): &(String, String, String),
    trait_name: &str,
    (from, to): (u64, u64),
    mode: Mode,
) -> (usize, usize) {
    let out = dir.join(trait_name).display().to_string();
    let (from_bp, to_bp) = (from.to_string(), to.to_string());
    let mut args = vec![
        "--pfile",
        pgen,
        "--pheno",
        pheno,
        "--pheno-name",
        trait_name,
        "--covar",
        covar,
        "--glm",
        "hide-covar",
    ];
    if mode == Mode::NoFirth {
        args.push("no-firth");
    }
    args.extend([
        "--chr",
        "20",
        "--from-bp",
        &from_bp,
        "--to-bp",
        &to_bp,
        "--threads",
        "2",
        "--out",
        &out,
    ]);
    run("plink2", &args).expect("plink2 --glm");
    let suffix = match mode {
        Mode::Linear => "glm.linear",
        Mode::FirthFallback => "glm.logistic.hybrid",
        Mode::NoFirth => "glm.logistic",
    };
    let expected = std::fs::read_to_string(format!("{out}.{trait_name}.{suffix}")).unwrap();
    let region = format!("chr20:{from}-{to}");
    let mut ours_args = vec![
        "assoc", "--store", store, "-r", &region, "--trait", trait_name, "--covar", COVARIATES,
    ];
    if mode == Mode::NoFirth {
        ours_args.push("--no-firth");
    }
    let got = cohortdb(&ours_args).expect("cohortdb assoc");
    let ours: HashMap<(String, String), Vec<String>> = tsv_rows(&got)
        .into_iter()
        .map(|r| ((r[1].clone(), r[4].clone()), r))
        .collect();
    let mut lines = expected.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let at = |name: &str| header.iter().position(|h| *h == name);
    let (mut plain, mut firth_fits) = (0, 0);
    let mut failures = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let alt = f[at("ALT").unwrap()];
        // plink2 fits all ALTs of a multi-allelic site jointly; cohortdb fits each ALT row.
        if alt.contains(',') {
            continue;
        }
        let pos = f[at("POS").unwrap()];
        let row = ours
            .get(&(pos.to_string(), alt.to_string()))
            .unwrap_or_else(|| panic!("cohortdb has no row for {pos} {alt}"));
        let (n, b, s, p, or, firth, errcode) = (
            &row[5], &row[6], &row[7], &row[8], &row[9], &row[10], &row[11],
        );
        assert_eq!(row[2], f[at("ID").unwrap()], "the variant's ID: {row:?}");
        let number = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let plink_firth = at("FIRTH?").is_some_and(|i| f[i] == "Y");
        let plink_error = f[at("ERRCODE").unwrap()];
        // The same fit, or the same reason for none (plink2 adds which allele: SEPARATION,ALT1).
        let same_kind = (firth == "true") == plink_firth
            && match plink_error {
                "." | "UNFINISHED" => b != ".",
                code => b == "." && code.starts_with(errcode.as_str()),
            };
        if !same_kind {
            failures.push(format!("{pos} {alt}: cohortdb {row:?}\n  plink2 {line}"));
            continue;
        }
        let (beta, se) = match at("BETA") {
            Some(i) => (f[i], f[at("SE").unwrap()]),
            None => (f[at("OR").unwrap()], f[at("LOG(OR)_SE").unwrap()]),
        };
        if beta == "NA" {
            continue;
        }
        let mut beta: f64 = beta.parse().unwrap();
        if at("OR").is_some() {
            beta = beta.ln();
        }
        if f[at("A1").unwrap()] != alt {
            beta = -beta;
        }
        let (se, plink_p) = (number(se), number(f[at("P").unwrap()]));
        let (b, s, p) = (number(b), number(s), number(p));
        let ok = if plink_firth {
            firth_fits += 1;
            (b - beta).abs() <= 2e-3 * se
                && (s - se).abs() <= 1e-3 * se
                && (p - plink_p).abs() <= 1e-3
        } else {
            plain += 1;
            let close = |a: f64, b: f64, absolute: f64| (a - b).abs() <= 1e-4 * b.abs() + absolute;
            close(b, beta, 1e-5)
                && close(s, se, 0.0)
                && (p.ln() - plink_p.ln()).abs() <= 1e-4 * plink_p.ln().abs().max(1.0)
        };
        let or_ok = mode == Mode::Linear || (number(or) - b.exp()).abs() <= 1e-9 * b.exp();
        if !ok || !or_ok || n != f[at("OBS_CT").unwrap()] {
            failures.push(format!("{pos} {alt}: cohortdb {row:?}\n  plink2 {line}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{trait_name}: {} of {} variants differ from plink2 --glm:\n{}",
        failures.len(),
        plain + firth_fits,
        failures[..failures.len().min(5)].join("\n")
    );
    (plain, firth_fits)
}

#[test]
fn linear_and_logistic_regression_equal_plink2_glm() {
    let (dir, store) = sim_store(true);
    let plink = plink_inputs(dir.path());
    let (compared, _) = compare(
        &store,
        dir.path(),
        &plink,
        "quant_trait",
        (20_000_000, 20_100_000),
        Mode::Linear,
    );
    assert!(compared > 1000, "only {compared} linear fits compared");
    let region = (20_000_000, 20_100_000);
    let (plain, firth) = compare(
        &store,
        dir.path(),
        &plink,
        "case_control",
        region,
        Mode::FirthFallback,
    );
    assert!(
        plain > 500 && firth > 300,
        "only {plain} plain and {firth} Firth fits compared"
    );
    let (plain, firth) = compare(
        &store,
        dir.path(),
        &plink,
        "case_control",
        region,
        Mode::NoFirth,
    );
    assert!(
        plain > 500 && firth == 0,
        "{plain} plain and {firth} Firth fits without Firth"
    );
}

/// cohortdb's Firth fits against an independent double-precision implementation
/// (`cli/tests/python/firth_reference.py`, numpy), on genotypes read by bcftools.
#[test]
fn firth_fits_equal_a_double_precision_reference() {
    let (dir, store) = sim_store(true);
    let prefix = sim_prefix();
    let got = cohortdb(&[
        "assoc",
        "--store",
        &store,
        "-r",
        "chr20:20000000-20200000",
        "--trait",
        "case_control",
        "--covar",
        COVARIATES,
    ])
    .unwrap();
    let firth_rows: Vec<Vec<String>> = tsv_rows(&got)
        .into_iter()
        .filter(|r| r[10] == "true" && r[11] == ".")
        .collect();
    assert!(firth_rows.len() > 100, "{} Firth fits", firth_rows.len());
    // Analysed samples: case_control, age, sex and bmi all present (sex as an M indicator).
    let table = std::fs::read_to_string(format!("{prefix}.pheno.tsv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut samples: Vec<(String, String)> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let values = [
            f[at("case_control")],
            f[at("age")],
            f[at("sex")],
            f[at("bmi")],
        ];
        if values.iter().any(|v| ["", "NA", "."].contains(v)) {
            continue;
        }
        let sex_m = if values[2] == "M" { "1" } else { "0" };
        let row = format!("{}\t{}\t{sex_m}\t{}", values[0], values[1], values[3]);
        samples.push((f[at("sample_id")].to_string(), row));
    }
    let vcf = format!("{prefix}.vcf.gz");
    let mut checked = 0;
    // Every 40th Firth fit: singletons and rarer doubletons alike.
    for row in firth_rows.iter().step_by(40) {
        let (pos, alt) = (&row[1], &row[4]);
        let calls = run(
            "bcftools",
            &[
                "query",
                "-r",
                &format!("chr20:{pos}"),
                "-f",
                "%ALT\t[%SAMPLE=%GT,]\n",
                &vcf,
            ],
        )
        .unwrap();
        let Some(line) = calls.lines().find(|l| l.split('\t').next() == Some(alt)) else {
            continue;
        };
        let dosage: HashMap<&str, usize> = line
            .split('\t')
            .nth(1)
            .unwrap()
            .split(',')
            .filter_map(|c| c.split_once('='))
            .map(|(s, gt)| (s, gt.split(['|', '/']).filter(|a| *a == "1").count()))
            .collect();
        let design: String = samples
            .iter()
            .map(|(id, values)| format!("{values}\t{}\n", dosage.get(id.as_str()).unwrap_or(&0)))
            .collect();
        let path = dir.path().join("design.tsv");
        std::fs::write(&path, design).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/firth_reference.py"
        );
        let reference = run("python3", &[script, path.to_str().unwrap()]).expect("numpy Firth");
        let expected: Vec<f64> = reference
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let (beta, se) = (
            row[6].parse::<f64>().unwrap(),
            row[7].parse::<f64>().unwrap(),
        );
        assert!(
            (beta - expected[0]).abs() <= 1e-6 * expected[0].abs().max(1.0)
                && (se - expected[1]).abs() <= 1e-6 * expected[1],
            "{pos} {alt}: cohortdb beta {beta} se {se}, reference {expected:?}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} Firth fits checked");
}

#[test]
fn assoc_refuses_a_logistic_model_of_a_quantitative_trait() {
    let (_dir, store) = sim_store(true);
    let err = cohortdb(&[
        "assoc",
        "--store",
        &store,
        "-r",
        "chr20:20000000-20001000",
        "--trait",
        "quant_trait",
        "--model",
        "logistic",
    ])
    .unwrap_err();
    assert!(err.contains("0/1"), "{err}");
    let err = cohortdb(&[
        "assoc",
        "--store",
        &store,
        "-r",
        "chr20:20000000-20001000",
        "--trait",
        "no_such",
    ])
    .unwrap_err();
    assert!(err.contains("no_such"), "{err}");
}
