//! Consent withdrawal (`cohortdb admin withdraw`): afterwards every read path answers as if the
//! participants had never been ingested. The oracle is bcftools: a second store ingested from
//! `bcftools view -s ^WITHDRAWN` of the same input must give the same `variants` rows (counts,
//! FORMAT lists, carriers by ID), allele frequencies, carriers and export; and no read path
//! shows a withdrawn `sample_idx` or ID.

use crate::oracle_support::*;

/// Every column of `variants` that depends on the samples, per ALT row in input order.
const VARIANT_ROWS: &str = "\
    SELECT contig, pos, ref, alt, ac, an, n_het, n_hom_alt, n_hemi, n_no_call, \
      CAST(gt_exceptions IS NULL AS INT) AS no_exceptions, {fmt} \
      bitmap_count(het), bitmap_count(hom_alt), bitmap_count(hemi), bitmap_count(phased), \
      bitmap_count(no_call), bitmap_count(called_diploid), bitmap_count(called_haploid), \
      bitmap_count(haploid), bitmap_count(swapped) \
    FROM variants ORDER BY contig, pos, record_ordinal, allele_index";

/// The members of `variants`' bitmaps by sample ID.
const BITMAP_MEMBERS: &str = "\
    SELECT v.pos, v.ref, v.alt, v.kind, s.sample_id FROM ( \
      SELECT pos, ref, alt, 'het' AS kind, unnest(bitmap_to_list(het)) AS i FROM variants \
      UNION ALL SELECT pos, ref, alt, 'hom', unnest(bitmap_to_list(hom_alt)) FROM variants \
      UNION ALL SELECT pos, ref, alt, 'phased', unnest(bitmap_to_list(phased)) FROM variants \
      UNION ALL SELECT pos, ref, alt, 'no_call', unnest(bitmap_to_list(no_call)) FROM variants \
    ) v JOIN samples s ON v.i = s.sample_idx ORDER BY 1, 2, 3, 4, 5";

/// The genotypes view, FORMAT values included.
const GENOTYPE_ROWS: &str = "\
    SELECT contig, pos, ref, alt, allele_index, sample_id, dosage, phased, {fmt_values} \
    FROM genotypes ORDER BY contig, pos, ref, alt, allele_index, sample_id";

fn query(store: &str, sql: &str) -> String {
    cohortdb(&["query", "--store", store, sql]).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The FORMAT columns of `variants`.
fn fmt_columns(store: &str) -> Vec<String> {
    let text = query(
        store,
        "SELECT column_name FROM information_schema.columns \
         WHERE table_name = 'variants' AND column_name LIKE 'fmt_%' ORDER BY column_name",
    );
    text.lines().skip(1).map(str::to_string).collect()
}

/// Withdraws `withdrawn` (sample IDs) from a store of `input`, and checks it against a store of
/// `bcftools view -s ^withdrawn input`.
fn check(input: &str, withdrawn: &[String], region: &str) {
    let (tmp, store) = new_store();
    // bcftools subsets samples only when the header defines every contig.
    let text = std::fs::read_to_string(input).unwrap();
    let fixed = tmp.path().join("input.vcf");
    std::fs::write(
        &fixed,
        text.replacen("#CHROM", &format!("##contig=<ID={region}>\n#CHROM"), 1),
    )
    .unwrap();
    let input = fixed.display().to_string();
    let input = input.as_str();
    cohortdb(&["ingest", "vcf", "--store", &store, input]).unwrap();
    let ids = tmp.path().join("withdrawn.txt");
    std::fs::write(&ids, withdrawn.join("\n") + "\n").unwrap();
    let ids = ids.display().to_string();
    let idx_text = query(
        &store,
        &format!(
            "SELECT sample_idx FROM samples WHERE sample_id IN ({})",
            withdrawn
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    let idx: Vec<String> = idx_text.lines().skip(1).map(str::to_string).collect();
    // A phenotype table, written here, for every sample (the oracle's for the others).
    let all_ids = run("bcftools", &["query", "-l", input]).unwrap();
    let table = |keep: &dyn Fn(&str) -> bool, name: &str| {
        let path = tmp.path().join(name);
        let mut text = String::from("sample_id\tscore\n");
        for (i, id) in all_ids.lines().enumerate().filter(|(_, id)| keep(id)) {
            text.push_str(&format!("{id}\t{}\n", i * 7 % 100));
        }
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let everyone = table(&|_| true, "all.tsv");
    cohortdb(&["ingest", "phenotypes", "--store", &store, &everyone]).unwrap();
    // A saved list naming the withdrawn participants and one who stays.
    let stays = all_ids
        .lines()
        .find(|id| !withdrawn.iter().any(|w| w == id))
        .unwrap()
        .to_string();
    let mixed = tmp.path().join("mixed.txt");
    std::fs::write(&mixed, withdrawn.join("\n") + "\n" + &stays + "\n").unwrap();
    let mixed = mixed.display().to_string();
    cohortdb(&["cohort", "save", "--store", &store, "mixed", "-S", &mixed]).unwrap();
    assert_eq!(
        idx.len(),
        withdrawn.len(),
        "{input}: withdrawn samples exist"
    );

    let said = cohortdb(&["admin", "withdraw", "--store", &store, "-S", &ids]).unwrap();
    assert!(
        said.contains(&format!("withdrew {}", withdrawn.len())),
        "{said}"
    );
    let again = cohortdb(&["admin", "withdraw", "--store", &store, &withdrawn[0]]).unwrap();
    assert!(
        again.contains("withdrew 0") && again.contains("1 already"),
        "{again}"
    );
    let info = || cohortdb(&["info", "--store", &store]).unwrap();
    let before = info();
    let unknown = cohortdb(&["admin", "withdraw", "--store", &store, "NO_SUCH_SAMPLE"]);
    assert!(unknown.unwrap_err().contains("NO_SUCH_SAMPLE"));
    assert_eq!(info(), before, "a refused withdrawal commits nothing");

    // The oracle store: the input without the withdrawn samples, as bcftools writes it.
    let subset = tmp.path().join("subset.vcf").display().to_string();
    run(
        "bcftools",
        &[
            "view",
            "--no-version",
            "-s",
            &format!("^{}", withdrawn.join(",")),
            "-Ov",
            "-o",
            &subset,
            input,
        ],
    )
    .unwrap();
    let (_tmp2, oracle) = new_store();
    cohortdb(&["ingest", "vcf", "--store", &oracle, &subset]).unwrap();
    let others = table(&|id| !withdrawn.iter().any(|w| w == id), "others.tsv");
    cohortdb(&["ingest", "phenotypes", "--store", &oracle, &others]).unwrap();

    compare(&store, &oracle, withdrawn, &idx, region, input);

    // Purge rewrites the files, vacuum deletes the old ones: the answers stay the same, and no
    // file holds a withdrawn participant any more.
    let purged = cohortdb(&["admin", "purge", "--store", &store]).unwrap();
    assert!(purged.contains("sample registry"), "{purged}");
    assert!(purged.contains(" 1 saved cohort(s)"), "{purged}");
    let before_vacuum = scan_store(&store, withdrawn, &idx);
    assert!(
        before_vacuum > 0,
        "{input}: the old files still hold them before vacuum"
    );
    let vacuumed = cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    assert!(vacuumed.contains("deleted"), "{vacuumed}");
    compare(&store, &oracle, withdrawn, &idx, region, input);
    // The saved list keeps the one who stays.
    assert_eq!(
        cohortdb(&["af", "--store", &store, "-r", region, "--cohort", "@mixed"]).unwrap(),
        cohortdb(&["af", "--store", &oracle, "-r", region, "-s", &stays]).unwrap(),
        "{input}"
    );
    assert_eq!(
        scan_store(&store, withdrawn, &idx),
        0,
        "{input}: files still hold them"
    );
    // Purging again finds nothing to do.
    let again = cohortdb(&["admin", "purge", "--store", &store]).unwrap();
    assert!(
        again.starts_with("rewrote 0 fragment(s), 0 sample"),
        "{again}"
    );
}

/// Every answer of `store` (after withdrawal) equals the oracle store's, and nothing names or
/// indexes a withdrawn participant.
fn compare(
    store: &str,
    oracle: &str,
    withdrawn: &[String],
    idx: &[String],
    region: &str,
    input: &str,
) {
    let store = store.to_string();
    let oracle = oracle.to_string();
    let fmt = fmt_columns(&store);
    assert!(fmt.len() >= 3, "{input}: FORMAT columns {fmt:?}");
    let as_text = |c: &String| format!("CAST({c} AS VARCHAR) AS {c}, ");
    let queries = [
        VARIANT_ROWS.replace("{fmt}", &fmt.iter().map(as_text).collect::<String>()),
        BITMAP_MEMBERS.to_string(),
        GENOTYPE_ROWS.replace("{fmt_values}", &fmt.join(", ")),
        "SELECT sample_id, score FROM phenotypes ORDER BY sample_id".to_string(),
        "SELECT * FROM allele_frequencies('', 'score < 50')".to_string(),
    ];
    for sql in queries {
        let (got, want) = (query(&store, &sql), query(&oracle, &sql));
        assert!(
            want.lines().count() > 10,
            "{input}: {} rows",
            want.lines().count()
        );
        assert_eq!(got, want, "{input}: {sql}");
    }

    let sites = query(
        &oracle,
        "SELECT contig || ':' || pos || ':' || ref || ':' || alt FROM variants \
         WHERE n_het + n_hom_alt > 0 ORDER BY pos LIMIT 5",
    );
    let mut commands: Vec<Vec<&str>> = sites
        .lines()
        .skip(1)
        .map(|v| vec!["carriers", "-r", v])
        .collect();
    commands.extend([
        vec!["af", "-r", region],
        vec!["samples"],
        vec!["export", "-r", region, "-O", "v", "-o", "-"],
    ]);
    for args in commands {
        let run_on = |s: &str| {
            let mut a = args.clone();
            a.insert(1, "--store");
            a.insert(2, s);
            cohortdb(&a).unwrap()
        };
        let (got, want) = (run_on(&store), run_on(&oracle));
        let strip = |t: &str| -> String {
            // Export headers name the store version.
            t.lines()
                .filter(|l| !l.starts_with("##source=cohortdb"))
                // `samples`: the ID only (indices differ between the two stores).
                .map(|l| match args[0] {
                    "samples" => l.split('\t').nth(1).unwrap_or_default().to_string(),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&got), strip(&want), "{input}: {}", args[0]);
    }

    // Nothing names or indexes a withdrawn participant.
    let list = withdrawn
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let idx = idx.join(",");
    for sql in [
        format!("SELECT count(*) FROM samples WHERE sample_id IN ({list})"),
        format!("SELECT count(*) FROM phenotypes WHERE sample_id IN ({list})"),
        format!(
            "SELECT count(*) FROM genotypes WHERE sample_id IN ({list}) OR sample_idx IN ({idx})"
        ),
        format!(
            "SELECT count(*) FROM (SELECT unnest(bitmap_to_list(bitmap_or(bitmap_or(het, hom_alt), \
             bitmap_or(bitmap_or(hemi, no_call), bitmap_or(called_diploid, called_haploid))))) AS i \
             FROM variants) WHERE i IN ({idx})"
        ),
    ] {
        assert_eq!(
            tsv_rows(&query(&store, &sql)),
            vec![vec!["0".to_string()]],
            "{sql}"
        );
    }
    let lookup = cohortdb(&[
        "genotypes",
        "--store",
        &store,
        "--sample",
        &withdrawn[0],
        "-r",
        region,
    ]);
    assert!(
        lookup.is_err(),
        "a withdrawn sample's genotypes are not served"
    );
}

#[test]
fn withdrawn_participants_vanish_from_every_read_path() {
    let shared = shared_dir().join("testdata");
    // FORMAT values (DP, GQ, AD), 100 samples.
    let hail = shared
        .join("hail/sample.pksorted.vcf")
        .display()
        .to_string();
    let ids = run("bcftools", &["query", "-l", &hail]).unwrap();
    let ids: Vec<String> = ids.lines().step_by(9).map(str::to_string).collect();
    check(&hail, &ids, "20");
}
