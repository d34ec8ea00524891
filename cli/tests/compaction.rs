//! `cohortdb admin compact`: the 1000 Genomes chr22 slice ingested in four parts (one batch,
//! four fragments) beside another batch (other samples, another contig); the batch's fragments
//! merge into one, the other batch's stays apart (readers merge sites across batches by
//! fragment), and then `--across-batches` merges the two batches into one. Every answer (SQL over
//! `variants` and `genotypes`, frequencies in a cohort, carriers, export) is the same before
//! and after, also for a reader running while compaction commits.

use crate::oracle_support::*;

fn answers(store: &str, site: &str) -> Vec<String> {
    let sorted = |text: String| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    let q = |sql: &str| sorted(cohortdb(&["query", "--store", store, sql]).unwrap());
    vec![
        q(
            "SELECT contig, pos, ref, alt, record_ordinal, allele_index, ac, an, n_het, n_hom_alt, \
           bitmap_count(phased), info_af FROM variants",
        ),
        q(
            "SELECT contig, pos, ref, alt, sample_id, dosage, phased FROM genotypes \
           WHERE contig = '22' AND pos < 16100000",
        ),
        cohortdb(&[
            "af",
            "--store",
            store,
            "-r",
            "22:16050000-16300000",
            "-s",
            "^HG00096,HG00097",
        ])
        .unwrap(),
        cohortdb(&["carriers", "--store", store, "-r", site]).unwrap(),
        exported_vcf(store, Some("22:16050000-16100000")),
    ]
}

fn fragments(store: &str) -> String {
    let info = cohortdb(&["info", "--store", store]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("fragments\t"))
        .unwrap()
        .to_string()
}

#[test]
fn compaction_merges_fragments_and_keeps_every_answer() {
    let (tmp, store) = new_store();
    // One batch in four parts (a cluster ingest), then a second batch of other samples.
    let slice = shared_dir()
        .join("testdata/opencga/10k.chr22.phase3_shapeit2_mvncall_integrated_v5.20130502.genotypes.vcf.gz")
        .display()
        .to_string();
    for part in 1..=4 {
        let shard = format!("{part}/4");
        cohortdb(&[
            "ingest", "vcf", "--store", &store, "--shard", &shard, &slice,
        ])
        .unwrap();
    }
    let hail = shared_dir().join("testdata/hail/sample.pksorted.vcf");
    let renamed = tmp.path().join("other.vcf");
    let text = std::fs::read_to_string(hail).unwrap();
    let (head, body) = text.split_at(text.find("#CHROM").unwrap());
    let (line, records) = body.split_at(body.find('\n').unwrap());
    let line: Vec<String> = line
        .split('\t')
        .enumerate()
        .map(|(i, f)| {
            if i > 8 {
                format!("X{f}")
            } else {
                f.to_string()
            }
        })
        .collect();
    std::fs::write(&renamed, format!("{head}{}{records}", line.join("\t"))).unwrap();
    cohortdb(&[
        "ingest",
        "vcf",
        "--store",
        &store,
        &renamed.display().to_string(),
    ])
    .unwrap();
    assert_eq!(
        fragments(&store),
        "5",
        "four parts of one batch and one of another"
    );
    let site = cohortdb(&[
        "query",
        "--store",
        &store,
        "SELECT contig || ':' || pos FROM variants WHERE n_het > 5 ORDER BY pos LIMIT 1",
    ])
    .unwrap();
    let site = tsv_rows(&site)[0][0].clone();
    let before = answers(&store, &site);

    // A dry run names the one group (the four parts of the first batch) and commits nothing.
    let version = |store: &str| {
        let info = cohortdb(&["info", "--store", store]).unwrap();
        info.lines()
            .find(|l| l.starts_with("version\t"))
            .unwrap()
            .to_string()
    };
    let at = version(&store);
    let plan = cohortdb(&["admin", "compact", "--store", &store, "--dry-run"]).unwrap();
    assert!(
        plan.starts_with("kind\tcontig\tsamples\tfiles\tstored_bytes\n"),
        "{plan}"
    );
    let rows = tsv_rows(&plan);
    assert_eq!(rows[0][..4], ["variants", "22", "0-2503", "4"], "{plan}");
    assert!(
        plan.contains("would merge 0 batch(es) into 0 (0 fragment(s)), 4 fragment(s) into 1"),
        "{plan}"
    );
    assert_eq!(version(&store), at, "a dry run changed the store");
    assert_eq!(fragments(&store), "5");

    // A reader keeps asking while compaction runs: it sees the old fragments or the new ones.
    let reader = {
        let store = store.clone();
        let want = before[2].clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                let got = cohortdb(&[
                    "af",
                    "--store",
                    &store,
                    "-r",
                    "22:16050000-16300000",
                    "-s",
                    "^HG00096,HG00097",
                ])
                .unwrap();
                assert_eq!(got, want, "a reader during compaction");
            }
        })
    };
    let one = cohortdb(&["admin", "compact", "--store", &store, "--contig", "22"]).unwrap();
    assert!(
        one.starts_with("merged 0 batch(es) into 0, 4 fragment(s) into 1"),
        "{one}"
    );
    reader.join().unwrap();
    assert_eq!(fragments(&store), "2");
    assert_eq!(answers(&store, &site), before);
    // Nothing left to merge within a batch.
    let again = cohortdb(&["admin", "compact", "--store", &store]).unwrap();
    assert!(
        again.starts_with("merged 0 batch(es) into 0, 0 fragment(s) into 0"),
        "{again}"
    );
    // The two batches (of different contigs) merge into one; --contig cannot limit that.
    let err = cohortdb(&[
        "admin",
        "compact",
        "--store",
        &store,
        "--contig",
        "22",
        "--across-batches",
    ])
    .unwrap_err();
    assert!(err.contains("--across-batches"), "{err}");
    let both = cohortdb(&[
        "admin",
        "compact",
        "--store",
        &store,
        "--across-batches=all",
    ])
    .unwrap();
    assert!(
        both.starts_with("merged 2 batch(es) into 1, 2 fragment(s) into 2"),
        "{both}"
    );
    assert_eq!(answers(&store, &site), before);
    // Then vacuum removes the six old files.
    let vacuum = cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    assert!(vacuum.starts_with("deleted 6 removed"), "{vacuum}");
    assert_eq!(answers(&store, &site), before);
}
