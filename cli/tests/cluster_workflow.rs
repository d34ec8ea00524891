//! `examples/cluster/Snakefile` run by Snakemake (PyPI) with its local executor: four ingest
//! shards, each committing on its own, then compaction, the phenotype table and a cohort
//! query, on the simulated
//! N=10,000 cohort. The workflow's answer equals `af` on a store ingested from the whole file,
//! and compaction left fewer fragments than the shards wrote.

use std::process::Command;

use crate::oracle_support::*;

fn fragments(store: &str) -> u32 {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("fragments\t"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_snakemake_workflow_ingests_in_shards_compacts_and_answers() {
    let input = format!("{}.vcf.gz", sim_prefix());
    let phenotypes = format!("{}.pheno.tsv", sim_prefix());
    let (tmp, store) = new_store();
    let snakefile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster/Snakefile");
    let workdir = tmp.path().join("run");
    let region = "chr20:20200001-20400000";
    let out = Command::new("snakemake")
        .arg("-s")
        .arg(&snakefile)
        .args(["--cores", "2", "--quiet", "all", "--directory"])
        .arg(&workdir)
        .arg("--config")
        .args([
            format!("cohortdb={}", env!("CARGO_BIN_EXE_cohortdb")),
            format!("store={store}"),
            format!("vcf={input}"),
            format!("phenotypes={phenotypes}"),
            "shards=4".to_string(),
            format!("region={region}"),
            "cohort=age >= 60".to_string(),
        ])
        .output()
        .expect("snakemake (scripts/test.sh installs it from PyPI)");
    assert!(
        out.status.success(),
        "snakemake failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = std::fs::read_to_string(workdir.join("results/af.tsv")).unwrap();

    let (_whole_dir, whole) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &whole, &input]).unwrap();
    cohortdb(&["ingest", "phenotypes", "--store", &whole, &phenotypes]).unwrap();
    let expected = cohortdb(&[
        "af",
        "--store",
        &whole,
        "-r",
        region,
        "--cohort",
        "age >= 60",
    ])
    .unwrap();
    assert!(expected.lines().count() > 500, "too few rows");
    assert_eq!(answer, expected);
    // Four shards' fragments, compacted.
    let info = cohortdb(&["info", "--store", &store]).unwrap();
    assert!(
        info.contains("version\t6"),
        "four ingests, a compaction, the phenotypes:\n{info}"
    );
    assert!(fragments(&store) <= fragments(&whole), "{info}");
}
