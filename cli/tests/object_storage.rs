//! Stores on S3-compatible object storage and many writers at once:
//! - a store on `moto_server` (PyPI `moto[server]`, on loopback) answers exactly as a local
//!   store of the same input, through ingest, queries, export, withdrawal, purge and vacuum;
//! - eight `cohortdb ingest` processes adding different sample batches to one store at once,
//!   on a local directory and on S3: every commit lands, `sample_idx` values are unique, and
//!   each sample's calls equal those of a store ingested from the whole file.

use crate::oracle_support::*;
use crate::support::s3_harness::*;

fn hail_vcf() -> String {
    shared_dir()
        .join("testdata/hail/sample.pksorted.vcf")
        .display()
        .to_string()
}

/// The outputs a user reads, with what legitimately differs between two stores removed (the
/// store's location and version in export headers and `info`, registry indices).
fn answers(store: &str, endpoint: Option<&str>) -> Vec<String> {
    let on = |args: &[&str]| {
        let mut a = args.to_vec();
        a.insert(1, "--store");
        a.insert(2, store);
        cohortdb_at(&a, endpoint)
    };
    let variants = "SELECT contig, pos, ref, alt, ac, an, n_het, n_hom_alt, \
                    CAST(fmt_dp AS VARCHAR), bitmap_count(phased) FROM variants \
                    ORDER BY contig, pos, record_ordinal, allele_index";
    vec![
        on(&["af", "-r", "20"]),
        on(&["query", variants]),
        on(&["query", "SELECT sample_id FROM samples ORDER BY sample_id"]),
        on(&["carriers", "-r", "20:13561632"]),
        on(&["export", "-r", "20", "-O", "v", "-o", "-"])
            .lines()
            .filter(|l| !l.starts_with("##source=cohortdb"))
            .collect::<Vec<_>>()
            .join("\n"),
    ]
}

#[test]
fn an_s3_store_answers_like_a_local_one() {
    let moto = moto();
    let s3 = Some(moto.endpoint.as_str());
    let remote = format!("s3://{BUCKET}/stores/one");
    let (_tmp, local) = new_store();
    for (store, endpoint) in [(remote.as_str(), s3), (local.as_str(), None)] {
        cohortdb_at(&["ingest", "vcf", "--store", store, &hail_vcf()], endpoint);
    }
    assert_eq!(answers(&remote, s3), answers(&local, None));
    let ids: Vec<String> = run("bcftools", &["query", "-l", &hail_vcf()])
        .unwrap()
        .lines()
        .step_by(7)
        .map(str::to_string)
        .collect();
    let mut withdraw = vec!["admin", "withdraw", "--store", ""];
    withdraw.extend(ids.iter().map(String::as_str));
    let both = [(remote.as_str(), s3), (local.as_str(), None)];
    for (store, endpoint) in both {
        withdraw[3] = store;
        assert!(cohortdb_at(&withdraw, endpoint).contains(&format!("withdrew {}", ids.len())));
    }
    assert_eq!(answers(&remote, s3), answers(&local, None));
    for (store, endpoint) in both {
        cohortdb_at(&["admin", "purge", "--store", store], endpoint);
        let vacuum = cohortdb_at(
            &["admin", "vacuum", "--store", store, "--older-than", "0s"],
            endpoint,
        );
        assert!(vacuum.starts_with("deleted 2 removed"), "{vacuum}");
    }
    assert_eq!(answers(&remote, s3), answers(&local, None));
    let info = cohortdb_at(&["info", "--store", &remote], s3);
    assert!(
        info.contains("version\t3\n") && info.contains("withdrawn\t15\n"),
        "{info}"
    );
}

/// Eight processes each ingest a different eighth of the samples into `store` at once.
fn eight_writers(store: &str, endpoint: Option<&str>, dir: &std::path::Path) {
    let ids: Vec<String> = run("bcftools", &["query", "-l", &hail_vcf()])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // bcftools subsets samples only when the header defines the contig.
    let text = std::fs::read_to_string(hail_vcf()).unwrap();
    let input = dir.join("input.vcf");
    std::fs::write(
        &input,
        text.replacen("#CHROM", "##contig=<ID=20>\n#CHROM", 1),
    )
    .unwrap();
    let batches: Vec<String> = (0..8)
        .map(|b| {
            let mine: Vec<&str> = ids.iter().skip(b).step_by(8).map(String::as_str).collect();
            let path = dir.join(format!("batch{b}.vcf")).display().to_string();
            let input = input.display().to_string();
            run(
                "bcftools",
                &[
                    "view",
                    "--no-version",
                    "-s",
                    &mine.join(","),
                    "-o",
                    &path,
                    &input,
                ],
            )
            .unwrap();
            path
        })
        .collect();
    let ingests = batches
        .iter()
        .map(|b| command(&["ingest", "vcf", "--store", store, b], endpoint))
        .collect();
    run_all_at_once(ingests, store);
    let info = cohortdb_at(&["info", "--store", store], endpoint);
    assert!(
        info.contains("version\t8\n") && info.contains("samples\t100\n"),
        "{store}: {info}"
    );
    let unique = cohortdb_at(
        &[
            "query",
            "--store",
            store,
            "SELECT count(DISTINCT sample_idx) AS a, count(DISTINCT sample_id) AS b, \
             max(sample_idx) AS c FROM samples",
        ],
        endpoint,
    );
    assert_eq!(tsv_rows(&unique), vec![vec!["100", "100", "99"]], "{store}");
    // Every sample's calls equal those of one store of the whole file. (Not `gt` and `id`:
    // eight batches merge records that share a position and REF into one, as `bcftools
    // merge` does, so a call there is written against the merged record's ALTs.)
    let (_tmp, whole) = new_store();
    cohortdb_at(&["ingest", "vcf", "--store", &whole, &hail_vcf()], None);
    for id in ids.iter().step_by(11) {
        let calls = |s: &str, e: Option<&str>| {
            let text = cohortdb_at(&["genotypes", "--store", s, "--sample", id, "-r", "20"], e);
            text.lines()
                .map(|l| l.split('\t').take(6).collect::<Vec<_>>().join("\t"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let got = calls(store, endpoint);
        assert!(got.lines().count() > 1, "{store}: {id} has calls");
        assert_eq!(got, calls(&whole, None), "{store}: {id}");
    }
}

#[test]
fn eight_writers_at_once_on_a_directory_and_on_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("store").display().to_string();
    eight_writers(&local, None, tmp.path());
    let moto = moto();
    eight_writers(
        &format!("s3://{BUCKET}/stores/eight"),
        Some(&moto.endpoint),
        tmp.path(),
    );
}
