//! A cohort grown in batches: the five sample batches of the 1000 Genomes chr22 slice
//! (`opencga/1000g_batches`, each keeping only the sites polymorphic in it) ingested one by
//! one. Per-ALT counts and carriers across batches equal `bcftools merge` of the batch files
//! (a batch without a record is missing there), and with `--missing-as-ref` equal
//! `bcftools merge -0` and the full slice at the merged sites.

use std::collections::{BTreeSet, HashMap};

use crate::oracle_support::*;

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
            [&r[1], &r[3], &r[4], &r[5], &r[6]]
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

/// Counts, SQL `variants`, export and carriers of `store` against `oracle` (`bcftools merge`
/// of the batch files, `-0` when `zero`).
fn check_against_merge(store: &str, oracle: &str, zero: bool, dir: &std::path::Path, when: &str) {
    let (got, want) = (cohortdb_counts(store), bcftools_counts(oracle));
    assert!(want.len() > 9000, "{} rows", want.len());
    let differ: Vec<_> = got.symmetric_difference(&want).take(6).collect();
    assert!(
        differ.is_empty(),
        "missing-as-ref {zero} {when}: {} vs {}: {differ:?}",
        got.len(),
        want.len()
    );

    // SQL's `variants` and export merge the batches the same way: one row per ALT with
    // the merged counts, one record per site with every sample's genotype.
    let sql: BTreeSet<String> = tsv_rows(
        &cohortdb(&[
            "query",
            "--store",
            store,
            "SELECT pos, ref, alt, ac, an FROM variants",
        ])
        .unwrap(),
    )
    .into_iter()
    .map(|r| r.join("\t"))
    .collect();
    assert_eq!(sql, want, "SQL variants, missing-as-ref {zero} {when}");
    let exported = dir
        .join(format!("export{zero}.vcf.gz"))
        .display()
        .to_string();
    cohortdb(&["export", "--store", store, "-O", "z", "-o", &exported]).unwrap();
    let query = "bcftools query -f '%CHROM\\t%POS\\t%REF\\t%ALT[\\t%GT]\\n'";
    let lines = |file: &str| sh(&format!("{query} {file} | sort")).unwrap();
    assert!(
        lines(&exported) == lines(oracle),
        "export differs from bcftools merge (missing-as-ref {zero} {when})"
    );

    // Carriers at sites several batches hold.
    let sites = sh(&format!(
        "bcftools query -f '%POS\\t%AC\\n' {oracle} | awk '$2 > 40 && n++ < 3 {{print $1}}'"
    ))
    .unwrap();
    for pos in sites.lines() {
        let rows = tsv_rows(
            &cohortdb(&["carriers", "--store", store, "-r", &format!("22:{pos}")]).unwrap(),
        );
        let ids: BTreeSet<String> = rows.iter().map(|r| r[5].clone()).collect();
        assert_eq!(
            ids,
            bcftools_carriers(oracle, pos),
            "carriers at {pos} {when}"
        );
    }
}

/// Every kind of answer of `store`, as text: frequencies in a subset (in output order),
/// case-control, carriers, SQL `variants` and `genotypes`, export.
fn answers(store: &str) -> Vec<String> {
    let sorted = |text: String| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    let q = |sql: &str| sorted(cohortdb(&["query", "--store", store, sql]).unwrap());
    vec![
        cohortdb(&["af", "--store", store, "-r", "22", "-s", "^HG00096,NA12878"]).unwrap(),
        cohortdb(&[
            "case-control",
            "--store",
            store,
            "-r",
            "22:16050000-16400000",
            "--cases",
            "sample_id < 'HG01500'",
            "--controls",
            "sample_id >= 'HG01500'",
        ])
        .unwrap(),
        cohortdb(&["carriers", "--store", store, "-r", "22:16050075"]).unwrap(),
        q("SELECT * FROM variants"),
        q(
            "SELECT contig, pos, ref, alt, sample_id, dosage, phased FROM genotypes \
           WHERE pos < 16100000",
        ),
        exported_vcf(store, Some("22:16050000-16200000")),
    ]
}

fn info(store: &str, key: &str) -> String {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    let prefix = format!("{key}\t");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap()
        .to_string()
}

/// Compaction across batches (`admin compact --across-batches`) changes no answer: the five
/// batches merged by the size-tiered policy (fan-in 2: four into one) and then into one,
/// each time equal to `bcftools merge` as before; a participant withdrawn before stays hidden.
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
        check_against_merge(&store, &oracle, zero, tmp.path(), "in five batches");
        let before = answers(&store);

        let compact = |policy: &str| {
            let policy = format!("--across-batches={policy}");
            cohortdb(&[
                "admin", "compact", "--store", &store, &policy, "--fan-in", "2",
            ])
            .unwrap()
        };
        let plan = compact("tiered").replace("merged", "");
        assert!(
            plan.starts_with(" 4 batch(es) into 1, 4 fragment(s) into 1"),
            "{plan}"
        );
        assert_eq!(info(&store, "fragments"), "2");
        check_against_merge(&store, &oracle, zero, tmp.path(), "in two batches");
        assert!(
            answers(&store) == before,
            "tiered compaction changed an answer"
        );

        let withdrawn = "HG00097";
        let before = match zero {
            true => before,
            false => {
                cohortdb(&["admin", "withdraw", "--store", &store, withdrawn]).unwrap();
                answers(&store)
            }
        };
        compact("all");
        assert_eq!(info(&store, "fragments"), "1");
        assert!(
            answers(&store) == before,
            "compaction into one batch changed an answer"
        );
        if zero {
            check_against_merge(&store, &oracle, zero, tmp.path(), "in one batch");
        } else {
            let genotypes = cohortdb(&[
                "genotypes",
                "--store",
                &store,
                "--sample",
                withdrawn,
                "-r",
                "22",
            ]);
            assert!(genotypes.is_err(), "{genotypes:?}");
        }
        let dry = cohortdb(&[
            "admin",
            "compact",
            "--store",
            &store,
            "--across-batches",
            "--dry-run",
        ])
        .unwrap();
        assert!(dry.contains("would merge 0 batch(es) into 0"), "{dry}");
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

/// The 50 GATK gVCFs of `hail/gvcfs/1kg_chr22`, one sample each.
fn gvcf_files() -> Vec<String> {
    let dir = shared_dir().join("testdata/hail/gvcfs/1kg_chr22");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".g.vcf.gz"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 50);
    files
}

/// Per position, how many of the gVCFs have a called reference block of one base there
/// (`END` = `POS` or no `END`) with GQ and MIN_DP at least `min`.
fn single_base_blocks(files: &[String], min: (i64, i64)) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for file in files {
        let format = "%POS\t%ALT\t%INFO/END\t[%GT\t%GQ\t%MIN_DP]\n";
        for line in run("bcftools", &["query", "-f", format, file])
            .unwrap()
            .lines()
        {
            let f: Vec<&str> = line.split('\t').collect();
            let value = |i: usize| f[i].parse::<i64>().unwrap_or(-1);
            if f[1] == "<NON_REF>"
                && (f[2] == "." || f[2] == f[0])
                && f[3] != "./."
                && value(4) >= min.0
                && value(5) >= min.1
            {
                *counts.entry(f[0].to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// `pos ref alt ac an` per ALT of `bcftools merge --gvcf` of `files`, split with `norm -m-`.
fn merged_gvcf_counts(dir: &std::path::Path, files: &[String]) -> String {
    let list = dir.join("gvcfs.txt");
    std::fs::write(&list, files.join("\n") + "\n").unwrap();
    sh(&format!(
        "bcftools merge --no-version --gvcf - -l {} | bcftools norm --no-version -m- 2>/dev/null \
         | bcftools view --no-version -e 'ALT=\"<NON_REF>\"' | bcftools +fill-tags -- -t AC,AN \
         2>/dev/null | bcftools query -f '%POS\\t%REF\\t%ALT\\t%AC\\t%AN\\n'",
        list.display()
    ))
    .unwrap()
}

/// gVCF ingest: variant records become fragments (without the `<NON_REF>` allele), reference
/// blocks become callability, so a sample without a record at a site is hom-ref where one of
/// its blocks covers the position and missing elsewhere. Counts equal `bcftools merge --gvcf`
/// of the 50 gVCFs, split with `bcftools norm -m-`, except for one documented class: a
/// one-base block at the position of an indel is hom-ref here, while bcftools keeps it as a
/// separate REF-only record that `-m both` does not merge with the indel (missing there).
/// With `--gvcf-min-gq 10 --gvcf-min-dp 3` they equal the same merge of the gVCFs whose
/// failing blocks `bcftools filter -S .` set to no-call.
#[test]
fn gvcf_reference_blocks_give_exact_an_as_bcftools_merge_gvcf() {
    let tmp = tempfile::tempdir().unwrap();
    let files = gvcf_files();
    for thresholds in [None, Some((10, 3))] {
        let store = tmp
            .path()
            .join(format!("store{thresholds:?}"))
            .display()
            .to_string();
        // Two ingests of 25 files: 50 batches, merged at read time.
        let (gq, dp) = thresholds.unwrap_or((0, 0));
        let (gq, dp) = (gq.to_string(), dp.to_string());
        for half in files.chunks(25) {
            let mut args = vec!["ingest", "vcf", "--store", &store];
            if thresholds.is_some() {
                args.extend(["--gvcf-min-gq", &gq, "--gvcf-min-dp", &dp]);
            }
            args.extend(half.iter().map(String::as_str));
            cohortdb(&args).unwrap();
        }
        let inputs: Vec<String> = match thresholds {
            None => files.clone(),
            Some((gq, dp)) => files
                .iter()
                .enumerate()
                .map(|(i, file)| {
                    let out = tmp
                        .path()
                        .join(format!("filtered{i}.g.vcf.gz"))
                        .display()
                        .to_string();
                    let expr =
                        format!("N_ALT=1 && ALT=\"<NON_REF>\" && (FMT/GQ<{gq} || FMT/MIN_DP<{dp})");
                    run(
                        "bcftools",
                        &[
                            "filter",
                            "--no-version",
                            "-S",
                            ".",
                            "-e",
                            &expr,
                            file,
                            "-Oz",
                            "-o",
                            &out,
                        ],
                    )
                    .unwrap();
                    run("tabix", &["-p", "vcf", &out]).unwrap();
                    out
                })
                .collect(),
        };
        let oracle = merged_gvcf_counts(tmp.path(), &inputs);
        let ours: HashMap<(String, String, String), (i64, i64)> =
            tsv_rows(&cohortdb(&["af", "--store", &store, "-r", "chr22"]).unwrap())
                .into_iter()
                .map(|r| {
                    let counts = (r[5].parse().unwrap(), r[6].parse().unwrap());
                    ((r[1].clone(), r[3].clone(), r[4].clone()), counts)
                })
                .collect();
        let singles = single_base_blocks(&files, thresholds.unwrap_or((0, 0)));
        let (mut rows, mut adjusted, mut an_total) = (0, 0, 0);
        for line in oracle.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let (ac, an): (i64, i64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
            let indel = f[1].len() != 1 || f[2].len() != 1;
            let extra = if indel {
                2 * singles.get(f[0]).copied().unwrap_or(0)
            } else {
                0
            };
            let got = ours
                .get(&(f[0].to_string(), f[1].to_string(), f[2].to_string()))
                .unwrap_or_else(|| panic!("no row for {line}"));
            assert_eq!(
                *got,
                (ac, an + extra),
                "{thresholds:?} {line} (one-base blocks: {extra})"
            );
            rows += 1;
            adjusted += usize::from(extra > 0);
            an_total += an;
        }
        assert_eq!(rows, ours.len(), "rows bcftools does not have");
        assert!(
            rows > 500 && adjusted > 0 && adjusted * 20 < rows,
            "{rows} rows, {adjusted} adjusted"
        );
        // The thresholds take most of these low-coverage blocks away.
        match thresholds {
            None => assert!(an_total > 40_000, "{an_total}"),
            Some(_) => assert!(an_total < 10_000, "{an_total}"),
        }

        // Compaction across batches keeps every answer: the 50 one-sample batches merged by
        // the size-tiered policy (fan-in 4: 48 of them into three of 16 samples, two stay), then into
        // one. A merged row holds the reference blocks' hom-ref calls of its batches; where
        // it has no row, the blocks still say.
        let gvcf_answers = || {
            let q = |sql: &str| {
                let text = cohortdb(&["query", "--store", &store, sql]).unwrap();
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                lines.sort_unstable();
                lines
            };
            (
                cohortdb(&["af", "--store", &store, "-r", "chr22"]).unwrap(),
                q("SELECT * FROM variants"),
                exported_vcf(&store, None),
            )
        };
        let before = gvcf_answers();
        for (policy, batches) in [
            ("tiered", "48 batch(es) into 3"),
            ("all", "5 batch(es) into 1"),
        ] {
            let policy = format!("--across-batches={policy}");
            let done = cohortdb(&["admin", "compact", "--store", &store, &policy]).unwrap();
            assert!(done.contains(batches), "{done}");
            assert!(
                gvcf_answers() == before,
                "{policy} changed an answer ({thresholds:?})"
            );
        }
    }
}

/// A DeepVariant gVCF (`<*>` blocks): its variant records are stored without `<*>`, with the
/// counts `bcftools +fill-tags` gives them, and its blocks become no rows.
#[test]
fn deepvariant_gvcf_blocks_are_callability_not_rows() {
    let (_dir, store) = new_store();
    let file = shared_dir()
        .join("testdata/curated/edge_cases/gvcf/glnexus__extracted__deepvariant__NA12878.gvcf")
        .display()
        .to_string();
    cohortdb(&["ingest", "vcf", "--store", &store, &file]).unwrap();
    let want: BTreeSet<String> = sh(&format!(
        "bcftools norm --no-version -m- {file} 2>/dev/null | bcftools view --no-version \
         -e 'ALT=\"<*>\"' | bcftools +fill-tags -- -t AC,AN 2>/dev/null \
         | bcftools query -f '%POS\\t%REF\\t%ALT\\t%AC\\t%AN\\n'"
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect();
    let got: BTreeSet<String> =
        tsv_rows(&cohortdb(&["af", "--store", &store, "-r", "chr21"]).unwrap())
            .into_iter()
            .map(|r| [&r[1..2], &r[3..7]].concat().join("\t"))
            .collect();
    assert!(want.len() > 5, "{want:?}");
    assert_eq!(got, want);
    let blocks = std::fs::read_dir(std::path::Path::new(&store).join("coverage/contig=chr21"))
        .unwrap()
        .count();
    assert_eq!(blocks, 1, "one reference-block file");
    // Export writes the variant records back without `<*>`.
    let out = std::path::Path::new(&store)
        .with_extension("vcf")
        .display()
        .to_string();
    cohortdb(&["export", "--store", &store, "-O", "v", "-o", &out]).unwrap();
    let query = "bcftools query -f '%POS %REF %ALT [%GT]\\n'";
    let original = sh(&format!(
        "bcftools view --no-version -e 'N_ALT=1 && ALT=\"<*>\"' {file} 2>/dev/null | {query} 2>/dev/null | sed 's/,<\\*>//'"
    ))
    .unwrap();
    assert_eq!(sh(&format!("{query} {out}")).unwrap(), original);
}

/// `ingest vcf --replace`: ten participants of the first batch are sequenced again (their IDs
/// on other genotypes). Without `--replace` the batch is refused and nothing changes; with it
/// the store answers as `bcftools merge` of the first batch without them and the new batch,
/// their phenotype rows follow them to their new index, and after purge their old index is gone.
#[test]
fn replace_swaps_a_participants_data_for_the_new_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).display().to_string();
    let files = batch_files();
    let (first, other) = (&files[0], &files[1]);
    let first_ids: Vec<String> = run("bcftools", &["query", "-l", first])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let other_ids: Vec<String> = run("bcftools", &["query", "-l", other])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let replaced: Vec<&String> = first_ids.iter().step_by(50).collect();
    // The new batch: ten samples of another batch, renamed to the replaced IDs.
    let names = path("rename.txt");
    let renames: String = replaced
        .iter()
        .zip(&other_ids)
        .map(|(new, old)| format!("{old} {new}\n"))
        .collect();
    std::fs::write(&names, renames).unwrap();
    let picked = path("picked.txt");
    std::fs::write(&picked, other_ids[..replaced.len()].join("\n") + "\n").unwrap();
    let second = path("second.vcf.gz");
    sh(&format!(
        "bcftools view --no-version -S {picked} -a {other} -Ou | bcftools reheader -s {names} \
         | bcftools view --no-version -c 1 -Oz -o {second} && bcftools index -t {second}"
    ))
    .unwrap();
    let pheno = path("pheno.tsv");
    let rows: String = first_ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("{id}\t{i}\n"))
        .collect();
    std::fs::write(&pheno, format!("sample_id\ttrait\n{rows}")).unwrap();

    let store = path("store");
    cohortdb(&["ingest", "vcf", "--store", &store, first]).unwrap();
    cohortdb(&["ingest", "phenotypes", "--store", &store, &pheno]).unwrap();
    let before = cohortdb(&["info", "--store", &store]).unwrap();
    let err = cohortdb(&["ingest", "vcf", "--store", &store, &second]).unwrap_err();
    assert!(
        err.contains("--replace") && err.contains(replaced[0].as_str()),
        "{err}"
    );
    assert_eq!(cohortdb(&["info", "--store", &store]).unwrap(), before);
    cohortdb(&["ingest", "vcf", "--store", &store, "--replace", &second]).unwrap();

    // Oracle: the first batch without them, merged with the new batch.
    let excluded = path("excluded.txt");
    let list: Vec<&str> = replaced.iter().map(|s| s.as_str()).collect();
    std::fs::write(&excluded, list.join("\n") + "\n").unwrap();
    let kept = path("kept.vcf.gz");
    sh(&format!(
        "bcftools view --no-version -S ^{excluded} {first} -Oz -o {kept} && bcftools index -t {kept}"
    ))
    .unwrap();
    let merged = path("merged.vcf.gz");
    run(
        "bcftools",
        &[
            "merge",
            "--no-version",
            "-Oz",
            "-o",
            &merged,
            &kept,
            &second,
        ],
    )
    .unwrap();
    let answers = |store: &str| {
        let counts = cohortdb_counts(store);
        let samples =
            cohortdb(&["query", "--store", store, "SELECT count(*) FROM samples"]).unwrap();
        (counts, samples)
    };
    let (counts, samples) = answers(&store);
    let want = bcftools_counts(&merged);
    let differ: Vec<_> = counts.symmetric_difference(&want).take(6).collect();
    assert!(
        differ.is_empty(),
        "{} vs {}: {differ:?}",
        counts.len(),
        want.len()
    );
    assert_eq!(tsv_rows(&samples)[0][0], first_ids.len().to_string());
    // Their phenotype rows moved to the new index (registered after the first batch).
    let moved = cohortdb(&[
        "query", "--store", &store,
        &format!("SELECT p.sample_idx, p.trait FROM phenotypes p JOIN samples s USING (sample_idx) WHERE s.sample_id = '{}'", replaced[1]),
    ])
    .unwrap();
    let row = &tsv_rows(&moved)[0];
    assert!(
        row[0].parse::<usize>().unwrap() >= first_ids.len(),
        "{row:?}"
    );
    assert_eq!(row[1], "50");

    // Purge drops the old indices' data and registry rows; the answers stay.
    cohortdb(&["admin", "purge", "--store", &store]).unwrap();
    let registry = cohortdb(&["samples", "--store", &store]).unwrap();
    assert_eq!(tsv_rows(&registry).len(), first_ids.len());
    assert_eq!(answers(&store), (counts, samples));
}
