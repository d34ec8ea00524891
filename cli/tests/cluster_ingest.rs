//! Cluster ingest: `examples/cluster/ingest.slurm` run as a four-task job array on this
//! machine (the tasks at once, with the variables Slurm sets), each task committing its part
//! of the simulated N=10,000 cohort on its own. The store then answers exactly as a store of
//! the whole file, and a re-run of a committed task changes nothing.

use std::process::Command;

use crate::oracle_support::*;

fn info_field(store: &str, name: &str) -> String {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")))
        .unwrap()
        .to_string()
}

fn task(store: &str, input: &str, id: u32) -> Command {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster/ingest.slurm");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .args([store, input])
        .env("COHORTDB", env!("CARGO_BIN_EXE_cohortdb"))
        .env("SLURM_ARRAY_TASK_ID", id.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", "4");
    cmd
}

#[test]
fn a_slurm_array_ingests_the_parts_of_one_input() {
    let input = format!("{}.vcf.gz", sim_prefix());
    let (_tmp, store) = new_store();
    run_all_at_once(
        (1..=4).map(|id| task(&store, &input, id)).collect(),
        "a task",
    );
    assert_eq!(info_field(&store, "version"), "4");
    assert_eq!(info_field(&store, "samples"), "10000");
    let fragments: u32 = info_field(&store, "fragments").parse().unwrap();
    assert!(
        fragments >= 3,
        "the parts hold different sites: {fragments} fragments"
    );

    let (_tmp2, whole) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &whole, &input]).unwrap();
    for args in [
        vec!["af", "-r", "chr20"],
        vec![
            "af",
            "-r",
            "chr20:20300000-20400000",
            "--cohort",
            "sample_idx < 5000",
        ],
        vec!["carriers", "-r", "chr20:20542845"],
        vec!["samples"],
        vec!["query", "SELECT count(*), sum(an), sum(ac) FROM variants"],
    ] {
        let on = |s: &str| {
            let mut a = args.clone();
            a.insert(1, "--store");
            a.insert(2, s);
            cohortdb(&a).unwrap()
        };
        assert_eq!(on(&store), on(&whole), "{args:?}");
    }

    // A requeued task finds its part committed and does nothing.
    let out = task(&store, &input, 2).output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("nothing to do"), "{said}");
    assert_eq!(info_field(&store, "version"), "4");
    // A malformed shard is refused.
    let bad = cohortdb(&["ingest", "vcf", "--store", &store, "--shard", "5/4", &input]);
    assert!(bad.unwrap_err().contains("5/4"));
}

/// `--region` splits one input by position: records whose POS lies in the regions (as
/// bcftools `--regions-overlap pos`), VCF and BCF alike. The parts at once answer as the whole
/// file, each equals `bcftools view -t` of its regions, and a re-run does nothing.
#[test]
fn regions_split_an_input_by_position() {
    let vcf = shared_dir()
        .join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let bcf = tmp.path().join("slice.bcf").display().to_string();
    run(
        "bcftools",
        &["view", "--no-version", "-Ob", "-o", &bcf, &vcf],
    )
    .unwrap();
    let parts = ["22:1-16300000,22:16600001-", "22:16300001-16600000"];
    for input in [&vcf, &bcf] {
        let (_tmp, store) = new_store();
        run_all_at_once(
            parts
                .iter()
                .map(|region| {
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohortdb"));
                    cmd.args([
                        "ingest", "vcf", "--store", &store, "--region", region, input,
                    ]);
                    cmd
                })
                .collect(),
            "a region part",
        );
        assert_eq!(info_field(&store, "version"), "2");
        let (_whole_tmp, whole) = new_store();
        cohortdb(&["ingest", "vcf", "--store", &whole, input]).unwrap();
        let af = |s: &str, r: &str| cohortdb(&["af", "--store", s, "-r", r]).unwrap();
        assert_eq!(af(&store, "22"), af(&whole, "22"));
        // The middle part alone holds exactly the records bcftools -t selects.
        let (_one_tmp, one) = new_store();
        cohortdb(&[
            "ingest", "vcf", "--store", &one, "--region", parts[1], input,
        ])
        .unwrap();
        let want = run(
            "bcftools",
            &["query", "-t", parts[1], "-f", "%POS\\n", input],
        )
        .unwrap();
        let want: std::collections::BTreeSet<&str> = want.lines().collect();
        let got = cohortdb(&[
            "query",
            "--store",
            &one,
            "SELECT count(DISTINCT pos) FROM variants",
        ])
        .unwrap();
        assert_eq!(tsv_rows(&got)[0][0], want.len().to_string());
        let again = cohortdb(&[
            "ingest", "vcf", "--store", &store, "--region", parts[1], input,
        ]);
        assert!(again.is_ok());
        assert_eq!(
            info_field(&store, "version"),
            "2",
            "a committed part is not redone"
        );
    }
    let bad = cohortdb(&[
        "ingest",
        "vcf",
        "--store",
        "/nonexistent",
        "--region",
        "chr20:9-1",
        &vcf,
    ]);
    assert!(bad.unwrap_err().contains("chr20:9-1"));
}
