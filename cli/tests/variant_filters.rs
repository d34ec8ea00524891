//! Site filters on `af`, `assoc`, `case-control` and `export`:
//! - plink2's `--maf`, `--geno`, `--hwe [midp]`: the variants kept equal plink2's own
//!   (`--make-just-pvar` under the same filters), on 3,000 records of the 1000 Genomes chr22
//!   slice (2,504 samples, multi-allelic sites, population structure that fails many HWE
//!   tests) with genotypes made missing at rates that vary by record, for everyone and for a
//!   sample subset;
//! - bcftools' `-i`/`-e` expressions: the records kept equal `bcftools view -i/-e`'s, on
//!   bcftools' own test files (FILTER, QUAL, missing values) and the 1000 Genomes slice among
//!   its EUR samples (INFO, the cohort's AC/AF).

use std::collections::BTreeSet;

use crate::oracle_support::*;

/// (pos, ref, alt) per ALT.
type Rows = BTreeSet<(String, String, String)>;

/// The slice's first 3,000 records with some calls set missing: record i loses the calls of
/// samples j with (7i + 13j) mod 100 < i mod 25, so missing rates run from 0 to 24%.
fn with_missing_calls(dir: &std::path::Path) -> String {
    let slice = shared_dir().join(
        "testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz",
    );
    let text = run(
        "bcftools",
        &["view", "--no-version", &slice.display().to_string()],
    )
    .unwrap();
    let mut out = String::new();
    let mut record = 0usize;
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if record == 3000 {
            break;
        }
        for (j, field) in line.split('\t').enumerate() {
            if j > 0 {
                out.push('\t');
            }
            let missing = j >= 9 && (7 * record + 13 * j) % 100 < record % 25;
            out.push_str(if missing { "./." } else { field });
        }
        out.push('\n');
        record += 1;
    }
    let path = dir.join("missing.vcf");
    std::fs::write(&path, out).unwrap();
    path.display().to_string()
}

/// The ALT rows plink2 keeps under `filters` (and `--keep FILE`).
fn plink2_kept(vcf: &str, dir: &std::path::Path, filters: &[&str]) -> Rows {
    let out = dir.join("kept").display().to_string();
    let mut args = vec![
        "--vcf",
        vcf,
        "--threads",
        "2",
        "--make-just-pvar",
        "--out",
        &out,
    ];
    args.extend(filters);
    run("plink2", &args).unwrap();
    let pvar = std::fs::read_to_string(format!("{out}.pvar")).unwrap();
    let mut rows = Rows::new();
    for line in pvar.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        for alt in f[4].split(',') {
            rows.insert((f[1].to_string(), f[3].to_string(), alt.to_string()));
        }
    }
    rows
}

/// The ALT rows of `cohortdb af` under `args`.
fn af_kept(store: &str, args: &[&str]) -> Rows {
    let mut all = vec!["af", "--store", store, "-r", "22"];
    all.extend(args);
    tsv_rows(&cohortdb(&all).unwrap())
        .into_iter()
        .map(|r| (r[1].clone(), r[3].clone(), r[4].clone()))
        .collect()
}

#[test]
fn maf_geno_and_hwe_keep_what_plink2_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let vcf = with_missing_calls(dir.path());
    let (_tmp, store) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &store, &vcf]).unwrap();
    let everything = af_kept(&store, &[]);

    // Every other sample, as -S and as plink2's --keep.
    let samples = run("bcftools", &["query", "-l", &vcf]).unwrap();
    let subset: Vec<&str> = samples.lines().step_by(2).collect();
    let list = dir.path().join("subset.txt");
    std::fs::write(&list, subset.join("\n") + "\n").unwrap();
    let list = list.display().to_string();

    let cases: [(&[&str], &[&str]); 6] = [
        (&["--maf", "0.05"], &["--maf", "0.05"]),
        (&["--maf"], &["--maf"]),
        (&["--geno", "0.1"], &["--geno", "0.1"]),
        (&["--hwe", "1e-4"], &["--hwe", "1e-4"]),
        (&["--hwe", "0.001", "midp"], &["--hwe", "0.001", "midp"]),
        (
            &[
                "--maf", "0.01", "--geno", "0.05", "--hwe", "1e-6", "-S", &list,
            ],
            &[
                "--maf", "0.01", "--geno", "0.05", "--hwe", "1e-6", "--keep", &list,
            ],
        ),
    ];
    for (ours, theirs) in cases {
        let want = plink2_kept(&vcf, dir.path(), theirs);
        let got = af_kept(&store, ours);
        // Each filter must remove something here, or the comparison shows nothing.
        assert!(
            want.len() < everything.len() && !want.is_empty(),
            "{theirs:?}: plink2 keeps {} of {}",
            want.len(),
            everything.len()
        );
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{ours:?}: {} kept vs plink2's {}; plink2 only {missing:?}; cohortdb only {extra:?}",
            got.len(),
            want.len()
        );
    }

    // export and assoc keep the same records as af.
    let filters = ["--maf", "0.05", "--geno", "0.1", "--hwe", "1e-4"];
    let kept = af_kept(&store, &filters);
    let mut args = vec!["export", "--store", &store, "-r", "22", "-O", "v"];
    args.extend(filters);
    let exported: Rows = cohortdb(&args)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| {
            let f: Vec<&str> = l.splitn(6, '\t').collect();
            f[4].split(',')
                .map(|alt| (f[1].to_string(), f[3].to_string(), alt.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(exported, kept);

    let pheno = dir.path().join("pheno.tsv");
    let mut table = String::from("sample_id\tage\n");
    for (i, s) in samples.lines().enumerate() {
        table.push_str(&format!("{s}\t{}\n", 20 + i % 50));
    }
    std::fs::write(&pheno, table).unwrap();
    cohortdb(&[
        "ingest",
        "phenotypes",
        "--store",
        &store,
        &pheno.display().to_string(),
    ])
    .unwrap();
    let mut args = vec![
        "assoc",
        "--store",
        &store,
        "-r",
        "22:16050000-17000000",
        "--trait",
        "age",
        "--model",
        "linear",
    ];
    args.extend(filters);
    let fitted: Rows = tsv_rows(&cohortdb(&args).unwrap())
        .into_iter()
        .map(|r| (r[1].clone(), r[3].clone(), r[4].clone()))
        .collect();
    let in_range: Rows = kept
        .iter()
        .filter(|(pos, _, _)| (16_050_000..=17_000_000).contains(&pos.parse::<i64>().unwrap()))
        .cloned()
        .collect();
    assert!(!fitted.is_empty());
    assert_eq!(fitted, in_range);

    // Thresholds out of range are refused.
    for bad in [
        &["--maf", "0.7"][..],
        &["--hwe", "2"],
        &["--hwe", "0.1", "mid"],
    ] {
        let mut args = vec!["af", "--store", &store, "-r", "22"];
        args.extend(bad);
        assert!(cohortdb(&args).is_err(), "{bad:?} accepted");
    }
}

/// `(chrom, pos, ref, alts)` of the records of VCF text.
fn records(vcf: &str) -> Vec<String> {
    vcf.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').take(5).collect::<Vec<_>>())
        .map(|f| format!("{} {} {} {}", f[0], f[1], f[3], f[4]))
        .collect()
}

/// `export -i/-e EXPR` keeps the records `bcftools view -i/-e EXPR` keeps, AC, AN and AF
/// recomputed in the cohort (`+fill-tags` after `view -S`) on both sides.
fn expressions_agree(file: &str, samples: Option<&str>, expressions: &[&str]) {
    let (_tmp, store) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &store, file]).unwrap();
    // The records the store holds (ALT-less records are not variants).
    let subset = samples.map_or(String::new(), |s| format!("-S {s}"));
    let view = format!(
        "bcftools view --no-version {subset} '{file}' -Ou | bcftools view -Ou -e 'ALT=\".\"' \
         | bcftools +fill-tags -Ou -- -t AC,AN,AF 2>/dev/null"
    );
    for expression in expressions {
        for flag in ["-i", "-e"] {
            let want =
                records(&sh(&format!("{view} | bcftools view -H {flag} '{expression}'")).unwrap());
            let mut args = vec!["export", "--store", &store, "-O", "v", flag, expression];
            if let Some(list) = samples {
                args.extend(["-S", list]);
            }
            let mut got = records(&cohortdb(&args).unwrap());
            // Records sharing a position are exported SNPs first (docs/cohorts.md, export).
            let mut want = want;
            got.sort();
            want.sort();
            assert_eq!(got, want, "{file} {flag} {expression:?}");
        }
    }
}

#[test]
fn include_and_exclude_expressions_keep_what_bcftools_keeps() {
    let data = shared_dir().join("testdata");
    let path = |p: &str| data.join(p).display().to_string();
    // FILTER sets in either order, missing QUAL and FILTER, flags, strings, MNPs, symbolic
    // alleles (after VCFv4.2's own example).
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("filters.vcf").display().to_string();
    let header = "##fileformat=VCFv4.2\n##contig=<ID=20,length=2000000>\n\
        ##FILTER=<ID=PASS,Description=\"All filters passed\">\n\
        ##FILTER=<ID=q10,Description=\"Quality below 10\">\n\
        ##FILTER=<ID=s50,Description=\"Less than half of samples have data\">\n\
        ##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n\
        ##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP\">\n\
        ##INFO=<ID=AA,Number=1,Type=String,Description=\"Ancestral allele\">\n\
        ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
        #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\n";
    let records = [
        "20 14370 rs6054257 G A 29 PASS DP=14;DB;AA=G GT 0|0 1|0 1/1",
        "20 17330 . T A 3 q10 DP=11;AA=T GT 0|0 0|1 0/0",
        "20 1110696 rs6040355 A G,T 67 PASS DP=10;AA=T;DB GT 1|2 2|1 2/2",
        "20 1230237 . T C . . DP=13 GT 0|0 0|0 0/1",
        "20 1234567 microsat1 GTC G,GTCT 50 q10;s50 DP=9 GT 0/1 0/2 1/1",
        "20 1235000 . A <DEL> 40 s50;q10 . GT 0/1 ./. 0/0",
        "20 1236000 . AC TG 60 PASS DP=30 GT 0/1 0/0 0/0",
    ];
    let body: String = records
        .iter()
        .map(|r| r.replace(' ', "\t") + "\n")
        .collect();
    std::fs::write(&small, format!("{header}{body}")).unwrap();
    expressions_agree(
        &small,
        None,
        &[
            "FILTER=\"PASS\"",
            "FILTER~\"q10\"",
            "FILTER=\"q10;s50\"",
            "FILTER=\".\"",
            "QUAL<50",
            "QUAL=\".\"",
            "FILTER!=\"PASS\" || QUAL>60",
            "INFO/DP>10 && AC>=2",
            "TYPE=\"indel\"",
            "TYPE=\"mnp\" || TYPE=\"other\"",
            "N_ALT>1",
            "DB=1 && AA=\"T\"",
            "DB=0",
            "ID~\"^rs\" || AN<6",
        ],
    );
    expressions_agree(
        &path("bcftools/check.vcf"),
        None,
        &[
            "QUAL>=59.9 && FILTER=\"PASS\"",
            "FILTER!~\"q10\"",
            "TYPE=\"snp\" || REF~\"^G\"",
            "AF>0.4",
            "POS>3200000 && CHROM=\"4\"",
        ],
    );
    // The 1000 Genomes slice among its EUR samples: Number=A INFO fields (any ALT), the
    // cohort's AF and AC, a flag, a field some records lack.
    expressions_agree(
        &path("opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz"),
        Some(&path("1000g/EUR.txt")),
        &[
            "AF<0.05 && INFO/DP>15000",
            "EAS_AF>0.1 || TYPE=\"indel\"",
            "AC>=10",
            "INFO/SVTYPE!=\".\" || IMPRECISE=1",
            "SVLEN<-100",
            "TYPE~\"snp\" && TYPE!=\"snp\"",
            "(AF>0.2 && AF<0.8) || (N_ALT>1 && EUR_AF>0.05)",
            "INFO/DP/NS>20",
        ],
    );
    // Mistakes are refused with what is wrong.
    let (_tmp, store) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &store, &small]).unwrap();
    for (expression, says) in [
        ("FORMAT/GQ>10", "per-sample"),
        ("XYZ>1", "no INFO field XYZ"),
        ("QUAL>", "ends too early"),
        ("strlen(REF)>1", "function strlen"),
    ] {
        let e = cohortdb(&["af", "--store", &store, "-i", expression]).unwrap_err();
        assert!(e.contains(says), "{expression}: {e}");
    }
}
