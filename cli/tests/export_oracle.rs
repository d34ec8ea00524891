//! `cohortdb export` writes VCF and BCF that bcftools reads back, whose genotypes (phase,
//! allele order and ploidy included) equal `bcftools view [-S FILE] [-r REGION]` of the
//! ingested input, for every edge case bcftools reads and the 1000 Genomes slice; and its
//! tabix and CSI indexes answer `bcftools query -r` as bcftools' own index does.

use crate::oracle_support::*;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

const QUERY: &str = "%CHROM\\t%POS\\t%REF\\t%ALT[\\t%GT]\\n";

/// gVCF reference blocks are callability, not records (docs/ingest.md): the oracle input
/// leaves them out.
const NOT_BLOCKS: &str = "-e 'N_ALT=1 && (ALT=\"<NON_REF>\" || ALT=\"<*>\")'";

/// A `QUERY` line without gVCF's symbolic `<NON_REF>`/`<*>` allele, which cohortdb does not
/// store.
fn without_symbolic_allele(line: &str) -> String {
    let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
    if let Some(alt) = fields.get_mut(3) {
        let kept: Vec<&str> = alt
            .split(',')
            .filter(|a| *a != "<NON_REF>" && *a != "<*>")
            .collect();
        *alt = kept.join(",");
    }
    fields.join("\t")
}

/// `bcftools query` lines of `file` (after `args`), sorted: records at one position may come
/// in another order.
fn genotype_lines(file: &str, args: &str) -> Result<Vec<String>, String> {
    let text = sh(&format!("bcftools query {args} -f '{QUERY}' '{file}'"))?;
    let mut lines: Vec<String> = text.lines().map(without_symbolic_allele).collect();
    lines.sort();
    Ok(lines)
}

fn first_difference(a: &[String], b: &[String]) -> String {
    let shorten = |s: &str| s.chars().take(160).collect::<String>();
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("cohortdb {:?}\n  bcftools {:?}", shorten(x), shorten(y)),
        None => format!("{} lines vs {}", a.len(), b.len()),
    }
}

/// Checks one input; `Ok(false)` when bcftools itself cannot read or index it.
fn check_file(file: &str, failures: &mut Vec<String>) -> bool {
    let (dir, store) = new_store();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let indexed = path("input.vcf.gz");
    if sh(&format!(
        "bcftools view --no-version {NOT_BLOCKS} -Oz -o '{indexed}' '{file}' && bcftools index -f '{indexed}'"
    ))
    .is_err()
    {
        return false;
    }
    if let Err(e) = cohortdb(&["ingest", "vcf", "--store", &store, file]) {
        failures.push(format!(
            "{file}: bcftools reads it, cohortdb refused it: {e}"
        ));
        return true;
    }
    // Everything, all samples, VCF on standard output.
    let vcf = path("all.vcf");
    let written = cohortdb(&["export", "--store", &store, "-O", "v"]).and_then(|text| {
        std::fs::write(&vcf, text).map_err(|e| e.to_string())?;
        genotype_lines(&vcf, "")
    });
    let Ok(expected) = genotype_lines(&indexed, "") else {
        return false;
    };
    match written {
        Ok(got) if got == expected => {}
        Ok(got) => failures.push(format!(
            "{file}: whole export differs: {}",
            first_difference(&got, &expected)
        )),
        Err(e) => failures.push(format!("{file}: whole export failed: {e}")),
    }
    // A seeded half of the samples, in shuffled order, over a region from the first record
    // to the middle one; as BCF with CSI and as bgzipped VCF with tabix.
    let positions = sh(&format!("bcftools query -f '%CHROM\\t%POS\\n' '{indexed}'")).unwrap();
    let records: Vec<(&str, &str)> = positions
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let Some(&(contig, start)) = records.first() else {
        return true;
    };
    let end = records
        .iter()
        .filter(|(c, _)| *c == contig)
        .nth(records.len() / 2)
        .map_or(start, |(_, p)| *p);
    let region = format!("{contig}:{start}-{end}");
    let mut ids: Vec<String> = run("bcftools", &["query", "-l", file])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    ids.shuffle(&mut StdRng::seed_from_u64(11));
    ids.truncate(ids.len().div_ceil(2));
    let list = path("subset.txt");
    std::fs::write(&list, ids.join("\n") + "\n").unwrap();
    let subset = if ids.is_empty() {
        String::new()
    } else {
        format!("-S '{list}'")
    };
    let expected = sh(&format!(
        "bcftools view --no-version {subset} -r '{region}' -Ov '{indexed}' \
         | bcftools query -f '{QUERY}' - | sort"
    ));
    let Ok(expected) = expected else {
        return false;
    };
    let mut expected: Vec<String> = expected.lines().map(without_symbolic_allele).collect();
    expected.sort();
    for (kind, name) in [("b", "part.bcf"), ("z", "part.vcf.gz")] {
        let out = path(name);
        let mut args = vec![
            "export", "--store", &store, "-r", &region, "-O", kind, "-o", &out,
        ];
        if !ids.is_empty() {
            args.extend(["-S", &list]);
        }
        if let Err(e) = cohortdb(&args) {
            failures.push(format!("{file}: export -O {kind} -r {region} failed: {e}"));
            continue;
        }
        // Read through the index cohortdb wrote.
        match genotype_lines(&out, &format!("-r '{region}'")) {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!(
                "{file}: -O {kind} -S -r {region} differs: {}",
                first_difference(&got, &expected)
            )),
            Err(e) => failures.push(format!("{file}: bcftools cannot read -O {kind}: {e}")),
        }
    }
    true
}

#[test]
fn exports_equal_bcftools_view_for_every_edge_case() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in edge_case_files() {
        if check_file(&file, &mut failures) {
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} export checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} edge cases were checked");
}

#[test]
fn exports_equal_bcftools_view_for_the_1000_genomes_slice() {
    let file = shared_dir()
        .join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string();
    let mut failures = Vec::new();
    assert!(
        check_file(&file, &mut failures),
        "bcftools cannot read {file}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
