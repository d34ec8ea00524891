//! `cohortdb assoc` against live `plink2 --glm` on the simulated N=10,000 cohort: linear
//! (quant_trait) and logistic (case_control) regression on ALT dosage with age, sex and bmi.
//!
//! Tolerance: plink2 prints 6 significant digits, so beta, se and p must agree to a relative
//! 1e-4 (plus 1e-5 absolute for betas near 0, printed as an odds ratio for logistic). plink2
//! reports the effect of its A1 allele, which is REF where REF is the minor allele; the test
//! turns those around. Rows where plink2 fell back to Firth regression (`FIRTH?` = Y) are not
//! compared: cohortdb fits plain maximum likelihood (docs/cohorts.md).

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

/// Compares one trait; returns how many variants were compared.
fn compare(
    store: &str,
    dir: &std::path::Path,
    (pgen, pheno, covar): &(String, String, String),
    trait_name: &str,
    from: u64,
    to: u64,
) -> usize {
    let out = dir.join(trait_name).display().to_string();
    run(
        "plink2",
        &[
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
            "--chr",
            "20",
            "--from-bp",
            &from.to_string(),
            "--to-bp",
            &to.to_string(),
            "--threads",
            "2",
            "--out",
            &out,
        ],
    )
    .expect("plink2 --glm");
    let suffix = if trait_name == "quant_trait" {
        "glm.linear"
    } else {
        "glm.logistic.hybrid"
    };
    let expected = std::fs::read_to_string(format!("{out}.{trait_name}.{suffix}")).unwrap();
    let region = format!("chr20:{from}-{to}");
    let got = cohortdb(&[
        "assoc", "--store", store, "-r", &region, "--trait", trait_name, "--covar", COVARIATES,
    ])
    .expect("cohortdb assoc");
    let ours: HashMap<(String, String), Vec<String>> = tsv_rows(&got)
        .into_iter()
        .map(|r| ((r[1].clone(), r[3].clone()), r))
        .collect();
    let mut lines = expected.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let at = |name: &str| header.iter().position(|h| *h == name);
    let mut compared = 0;
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
        let firth = at("FIRTH?").is_some_and(|i| f[i] == "Y");
        let (beta, se) = match at("BETA") {
            Some(i) => (f[i], f[at("SE").unwrap()]),
            None => (f[at("OR").unwrap()], f[at("LOG(OR)_SE").unwrap()]),
        };
        if firth || beta == "NA" {
            continue;
        }
        let mut beta: f64 = beta.parse().unwrap();
        if at("OR").is_some() {
            beta = beta.ln();
        }
        if f[at("A1").unwrap()] != alt {
            beta = -beta;
        }
        let number = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let close = |a: f64, b: f64, absolute: f64| (a - b).abs() <= 1e-4 * b.abs() + absolute;
        let (n, b, s, p) = (&row[4], number(&row[5]), number(&row[6]), number(&row[7]));
        let ok = n == f[at("OBS_CT").unwrap()]
            && close(b, beta, 1e-5)
            && close(s, number(se), 0.0)
            && close(p, number(f[at("P").unwrap()]), 1e-300);
        if !ok {
            failures.push(format!("{pos} {alt}: cohortdb {row:?}\n  plink2 {line}"));
        }
        compared += 1;
    }
    assert!(
        failures.is_empty(),
        "{trait_name}: {} of {compared} variants differ from plink2 --glm:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    compared
}

#[test]
fn linear_and_logistic_regression_equal_plink2_glm() {
    let (dir, store) = sim_store(true);
    let plink = plink_inputs(dir.path());
    let compared = compare(
        &store,
        dir.path(),
        &plink,
        "quant_trait",
        20_000_000,
        20_100_000,
    );
    assert!(compared > 1000, "only {compared} linear fits compared");
    let compared = compare(
        &store,
        dir.path(),
        &plink,
        "case_control",
        20_000_000,
        20_030_000,
    );
    assert!(compared > 100, "only {compared} logistic fits compared");
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
