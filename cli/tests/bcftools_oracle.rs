//! Per-ALT AC, AN, het and hom-alt counts equal `bcftools +fill-tags -t AC,AN,AC_Het,AC_Hom`
//! for every VCF/BCF edge case bcftools reads, over all samples and a seeded random subset;
//! and VCF and BCF ingest of the same data give the same answers.

use std::collections::BTreeMap;

use crate::oracle_support::*;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

/// (chrom, pos, ref, alt) -> (ac, an, ac_het, ac_hom) as bcftools reports them.
type Counts = BTreeMap<(String, String, String, String), Vec<(i64, i64, i64, i64)>>;

fn bcftools_counts(file: &str, samples: Option<&str>) -> Result<Counts, String> {
    // gVCF reference blocks are callability, not records (docs/ingest.md).
    let blocks = "-e 'N_ALT=1 && (ALT=\"<NON_REF>\" || ALT=\"<*>\")'";
    let view = match samples {
        Some(list) => format!("bcftools view --no-version {blocks} -S {list} '{file}' -Ou"),
        None => format!("bcftools view --no-version {blocks} '{file}' -Ou"),
    };
    // INFO/AC and AN already in the file are dropped first: bcftools keeps them untouched
    // where there are no samples to recount, and cohortdb counts genotypes only.
    let text = sh(&format!(
        "{view} | bcftools annotate -Ou -x INFO/AC,INFO/AN,INFO/AC_Het,INFO/AC_Hom \
         | bcftools +fill-tags -Ou -- -t AC,AN,AC_Het,AC_Hom | bcftools query -f '%CHROM\\t%POS\\t%REF\\t%ALT\\t%INFO/AC\\t%INFO/AN\\t%INFO/AC_Het\\t%INFO/AC_Hom\\n'"
    ))?;
    let mut counts = Counts::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let alts: Vec<&str> = f[3].split(',').collect();
        let split =
            |s: &str| -> Vec<i64> { s.split(',').map(|v| v.parse().unwrap_or(0)).collect() };
        let (ac, het, hom) = (split(f[4]), split(f[6]), split(f[7]));
        let an: i64 = f[5].parse().unwrap_or(0);
        for (i, alt) in alts.iter().enumerate() {
            // gVCF's symbolic "any other allele" is not stored.
            if *alt == "<NON_REF>" || *alt == "<*>" {
                continue;
            }
            let key = (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                alt.to_string(),
            );
            let value = (
                ac.get(i).copied().unwrap_or(0),
                an,
                het.get(i).copied().unwrap_or(0),
                hom.get(i).copied().unwrap_or(0),
            );
            counts.entry(key).or_default().push(value);
        }
    }
    Ok(counts)
}

fn cohortdb_counts(store: &str, samples: Option<&str>) -> Counts {
    let mut args = vec!["af", "--store", store];
    if let Some(list) = samples {
        args.extend(["-S", list]);
    }
    let text = cohortdb(&args).unwrap_or_else(|e| panic!("cohortdb af failed: {e}"));
    let mut counts = Counts::new();
    for row in tsv_rows(&text) {
        let n = |i: usize| {
            row[i]
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("bad number in {row:?}"))
        };
        let key = (
            row[0].clone(),
            row[1].clone(),
            row[3].clone(),
            row[4].clone(),
        );
        counts
            .entry(key)
            .or_default()
            .push((n(5), n(6), n(8), 2 * n(9)));
    }
    for v in counts.values_mut() {
        v.sort();
    }
    counts
}

fn sorted(mut c: Counts) -> Counts {
    for v in c.values_mut() {
        v.sort();
    }
    c
}

/// Edge cases whose rejection is deliberate (docs/ingest.md explains each class).
const REJECTED: &[(&str, &str)] = &[];

#[test]
fn edge_cases_match_bcftools_fill_tags() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in edge_case_files() {
        let Ok(samples) = run("bcftools", &["query", "-l", &file]) else {
            continue;
        };
        let Ok(expected) = bcftools_counts(&file, None) else {
            continue;
        };
        let (_dir, store) = new_store();
        if let Err(e) = cohortdb(&["ingest", "vcf", "--store", &store, &file]) {
            if !REJECTED.iter().any(|(f, _)| file.ends_with(f)) {
                failures.push(format!(
                    "{file}: bcftools reads it, cohortdb refused it: {e}"
                ));
            }
            continue;
        }
        let got = cohortdb_counts(&store, None);
        if got != sorted(expected) {
            failures.push(format!(
                "{file}: counts differ from bcftools over all samples"
            ));
            continue;
        }
        // A seeded random half of the samples.
        let mut ids: Vec<&str> = samples.lines().collect();
        if ids.len() >= 2 {
            ids.shuffle(&mut StdRng::seed_from_u64(42));
            ids.truncate(ids.len() / 2);
            let list = _dir.path().join("subset.txt");
            std::fs::write(&list, ids.join("\n") + "\n").expect("write subset");
            let list = list.display().to_string();
            let expected = bcftools_counts(&file, Some(&list)).expect("bcftools subset");
            if cohortdb_counts(&store, Some(&list)) != sorted(expected) {
                failures.push(format!(
                    "{file}: counts differ from bcftools over a random subset"
                ));
                continue;
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of the edge cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} edge cases were checked");
}

#[test]
fn vcf_and_bcf_ingest_answer_alike() {
    let file = shared_dir().join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz").display().to_string();
    let (dir, vcf_store) = new_store();
    let bcf = dir.path().join("slice.bcf").display().to_string();
    run(
        "bcftools",
        &["view", "--no-version", "-Ob", "-o", &bcf, &file],
    )
    .expect("bcftools view -Ob");
    let bcf_store = dir.path().join("bcf_store").display().to_string();
    cohortdb(&["ingest", "vcf", "--store", &vcf_store, &file]).expect("ingest vcf");
    cohortdb(&["ingest", "vcf", "--store", &bcf_store, &bcf]).expect("ingest bcf");
    let a = cohortdb_counts(&vcf_store, None);
    assert_eq!(a, sorted(bcftools_counts(&file, None).expect("bcftools")));
    assert_eq!(a, cohortdb_counts(&bcf_store, None));
    // And over a seeded random tenth of the 2,504 samples.
    let mut ids: Vec<String> = run("bcftools", &["query", "-l", &file])
        .expect("bcftools query -l")
        .lines()
        .map(str::to_string)
        .collect();
    ids.shuffle(&mut StdRng::seed_from_u64(7));
    ids.truncate(ids.len() / 10);
    let list = dir.path().join("subset.txt");
    std::fs::write(&list, ids.join("\n") + "\n").expect("write subset");
    let list = list.display().to_string();
    let subset = cohortdb_counts(&vcf_store, Some(&list));
    assert_eq!(
        subset,
        sorted(bcftools_counts(&file, Some(&list)).expect("bcftools subset"))
    );
    assert_eq!(subset, cohortdb_counts(&bcf_store, Some(&list)));
    let sql = "SELECT count(*), sum(ac), sum(an), sum(bitmap_count(phased)) FROM variants";
    assert_eq!(
        cohortdb(&["query", "--store", &vcf_store, sql]),
        cohortdb(&["query", "--store", &bcf_store, sql])
    );
}

#[test]
fn thousand_genomes_superpopulations_match_the_reference() {
    let shared = shared_dir();
    let file = shared.join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz").display().to_string();
    let (dir, store) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &store, &file]).expect("ingest");
    let groups =
        std::fs::read_to_string(shared.join("testdata/1000g/groups_superpop.txt")).expect("groups");
    let reference = sh(&format!(
        "zcat {}",
        shared
            .join("testdata/1000g/reference_superpop_AC_AN.tsv.gz")
            .display()
    ))
    .expect("reference");
    let header: Vec<&str> = reference
        .lines()
        .next()
        .expect("header")
        .split('\t')
        .collect();
    for (k, pop) in ["AFR", "AMR", "EAS", "EUR", "SAS"].iter().enumerate() {
        let ids: Vec<&str> = groups
            .lines()
            .filter(|l| l.ends_with(pop))
            .filter_map(|l| l.split('\t').next())
            .collect();
        let list = dir.path().join(format!("{pop}.txt"));
        std::fs::write(&list, ids.join("\n")).expect("write");
        let got = cohortdb_counts(&store, Some(&list.display().to_string()));
        assert!(header[5 + 2 * k].contains(&format!("AC_{pop}")));
        let mut compared = 0;
        for line in reference.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let an = f[6 + 2 * k].parse::<i64>().expect("AN");
            for (alt, ac) in f[4].split(',').zip(f[5 + 2 * k].split(',')) {
                let key = (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[3].to_string(),
                    alt.to_string(),
                );
                let Some(rows) = got.get(&key) else {
                    panic!("{key:?} missing from cohortdb")
                };
                let ac = ac.parse::<i64>().expect("AC");
                assert!(
                    rows.iter().any(|r| r.0 == ac && r.1 == an),
                    "{pop} {key:?}: reference {ac}/{an}, cohortdb {rows:?}"
                );
                compared += 1;
            }
        }
        assert!(compared > 9000, "{compared}");
    }
}
