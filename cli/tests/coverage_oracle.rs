//! `ingest bam` and `coverage` against mosdepth 0.3.3: for every 1 kb bin of the simulated
//! 5-30x samples (`bam/`), each sample is covered at a threshold exactly when mosdepth's
//! window mean (`--by 1000`) reaches it, with default flags and with `-Q 1`; the same for a
//! real CRAM against mosdepth on its BAM. Withdrawal removes a sample from every bin, and a
//! truncated BAM is refused with the store unchanged. The server serves the same coverage over
//! gRPC.

use crate::support::serving_harness;

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::oracle_support::*;
use arrow::array::RecordBatch;
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_client::QueryServiceClient;
use serving_harness::{ADMIN, AGGREGATE, read_chunks, request, start_following, strings};
use tonic::Code;

const THRESHOLDS: [u32; 3] = [5, 10, 20];

/// mosdepth's `regions.bed.gz`: (contig, 1-based start) -> mean depth, printed with 2 decimals.
fn mosdepth_means(prefix: &str) -> BTreeMap<(String, i64), f64> {
    let path = shared_dir().join(format!("testdata/bam/mosdepth/{prefix}.regions.bed.gz"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file))
        .lines()
        .map(|line| {
            let line = line.unwrap();
            let f: Vec<&str> = line.split('\t').collect();
            let start: i64 = f[1].parse().unwrap();
            ((f[0].to_string(), start + 1), f[3].parse().unwrap())
        })
        .collect()
}

/// `coverage` rows of one sample: (contig, start, min_depth) -> covered (0 or 1).
fn covered(store: &str, sample: &str, regions: &str) -> BTreeMap<(String, i64, u32), i64> {
    tsv_rows(&cohortdb(&["coverage", "--store", store, "-r", regions, "-s", sample]).unwrap())
        .into_iter()
        .map(|r| {
            assert_eq!(r[4], "1", "one sample in the cohort: {r:?}");
            (
                (r[0].clone(), r[1].parse().unwrap(), r[3].parse().unwrap()),
                r[5].parse().unwrap(),
            )
        })
        .collect()
}

/// Checks every bin x threshold of `sample` against mosdepth's means; a mean printed within
/// 0.005 of a threshold is ambiguous after rounding and skipped. Returns the bins compared.
fn assert_matches_mosdepth(
    store: &str,
    sample: &str,
    regions: &str,
    prefix: &str,
    thresholds: &[u32],
) -> usize {
    let means = mosdepth_means(prefix);
    let ours = covered(store, sample, regions);
    let (mut compared, mut ambiguous) = (0, 0);
    for ((contig, start), mean) in &means {
        if !regions.split(',').any(|r| r == contig) {
            continue;
        }
        for &t in thresholds {
            let got = ours
                .get(&(contig.clone(), *start, t))
                .unwrap_or_else(|| panic!("{prefix}: no bin {contig}:{start} at {t}x"));
            if (mean - f64::from(t)).abs() <= 0.005 {
                ambiguous += 1;
                continue;
            }
            let expected = i64::from(*mean >= f64::from(t));
            assert_eq!(
                *got, expected,
                "{prefix} {contig}:{start} at {t}x, mosdepth mean {mean}"
            );
            compared += 1;
        }
    }
    assert!(
        ambiguous * 100 <= compared,
        "{prefix}: {ambiguous} ambiguous of {compared}"
    );
    assert_eq!(
        ours.len(),
        compared + ambiguous,
        "{prefix}: bins mosdepth does not have"
    );
    compared
}

fn bam(name: &str) -> String {
    shared_dir()
        .join("testdata/bam")
        .join(name)
        .display()
        .to_string()
}

fn thresholds_arg() -> String {
    THRESHOLDS.map(|t| t.to_string()).join(",")
}

#[test]
fn cohort_coverage_per_bin_equals_mosdepth_means() {
    let (_dir, store) = new_store();
    let samples = ["sampleA", "sampleB", "sampleC"];
    // Inputs under neutral names: a path naming the sample would stay in the log's
    // operation text (see docs/store-format.md).
    let inputs = tempfile::tempdir().unwrap();
    let files: Vec<String> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let copy = inputs.path().join(format!("input{i}.bam"));
            std::fs::copy(bam(&format!("{s}.bam")), &copy).unwrap();
            copy.display().to_string()
        })
        .collect();
    let mut args = vec!["ingest", "bam", "--store", &store, "--thresholds"];
    let thresholds = thresholds_arg();
    args.push(&thresholds);
    args.extend(files.iter().map(String::as_str));
    cohortdb(&args).unwrap();
    let regions = "chrS1,chrS2,chrE";
    let mut compared = 0;
    for sample in samples {
        compared += assert_matches_mosdepth(&store, sample, regions, sample, &THRESHOLDS);
    }
    assert!(compared > 3 * 250 * 3 - 30, "{compared}");

    // The whole cohort: each bin's count is the number of samples whose mosdepth mean
    // reaches the threshold; after sampleA withdraws, of the two others.
    let means: Vec<_> = samples.iter().map(|s| mosdepth_means(s)).collect();
    let expect_counts = |members: &[usize]| {
        let rows = tsv_rows(
            &cohortdb(&["coverage", "--store", &store, "-r", "chrS1:90001-120000"]).unwrap(),
        );
        assert_eq!(rows.len(), 30 * THRESHOLDS.len());
        for r in &rows {
            assert_eq!(r[4], members.len().to_string(), "{r:?}");
            let (key, t) = (
                (r[0].clone(), r[1].parse::<i64>().unwrap()),
                r[3].parse::<f64>().unwrap(),
            );
            let expected = members.iter().filter(|&&m| means[m][&key] >= t).count();
            assert_eq!(r[5], expected.to_string(), "{r:?}");
        }
    };
    expect_counts(&[0, 1, 2]);
    cohortdb(&["admin", "withdraw", "--store", &store, "sampleA"]).unwrap();
    expect_counts(&[1, 2]);
    // Named explicitly, a withdrawn sample is in no cohort: a list of only it is refused.
    let refused = cohortdb(&[
        "coverage", "--store", &store, "-r", "chrS1", "-s", "sampleA",
    ])
    .unwrap_err();
    assert!(
        refused.contains("the 1 it names withdrew consent"),
        "{refused}"
    );

    // Purge rewrites every coverage file without sampleA; the answers stay the same.
    let out = cohortdb(&["admin", "purge", "--store", &store]).unwrap();
    assert!(!out.contains(" 0 coverage file(s)"), "{out}");
    expect_counts(&[1, 2]);
    // After vacuum no file holds sampleA's ID or index 0 in any bitmap.
    cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    assert_eq!(scan_store(&store, &["sampleA".into()], &["0".into()]), 0);
}

#[test]
fn mapping_quality_threshold_equals_mosdepth_q1() {
    let (_dir, store) = new_store();
    let thresholds = thresholds_arg();
    cohortdb(&[
        "ingest",
        "bam",
        "--store",
        &store,
        "-Q",
        "1",
        "--thresholds",
        &thresholds,
        &bam("sampleA.bam"),
    ])
    .unwrap();
    let compared = assert_matches_mosdepth(
        &store,
        "sampleA",
        "chrS1,chrS2,chrE",
        "sampleA.mapq1",
        &THRESHOLDS,
    );
    assert!(compared > 700, "{compared}");
}

#[test]
fn a_cram_file_gives_mosdepths_windows_of_its_bam() {
    let (_dir, store) = new_store();
    let cram = shared_dir().join("testdata/htsget-rs/cram/htsnexus_test_NA12878.cram");
    cohortdb(&[
        "ingest",
        "bam",
        "--store",
        &store,
        "--bin-size",
        "10000",
        "--thresholds",
        "1,5,10",
        &cram.display().to_string(),
    ])
    .unwrap();
    let samples = tsv_rows(&cohortdb(&["samples", "--store", &store]).unwrap());
    let sample = samples
        .iter()
        .find(|r| r[0] != "sample_idx")
        .map(|r| r[1].clone())
        .unwrap();
    let compared =
        assert_matches_mosdepth(&store, &sample, "11,20", "htsnexus_NA12878", &[1, 5, 10]);
    assert!(compared > 1000, "{compared}");
}

#[test]
fn a_truncated_bam_is_refused_and_the_store_is_unchanged() {
    let (_dir, store) = new_store();
    cohortdb(&["ingest", "bam", "--store", &store, &bam("sampleC.bam")]).unwrap();
    let before = cohortdb(&["info", "--store", &store]).unwrap();
    let truncated = shared_dir().join("testdata/curated/invalid/derived/truncated.bam");
    let err = cohortdb(&[
        "ingest",
        "bam",
        "--store",
        &store,
        &bam("sampleB.bam"),
        &truncated.display().to_string(),
    ])
    .unwrap_err();
    assert!(err.contains("truncated.bam"), "{err}");
    assert_eq!(cohortdb(&["info", "--store", &store]).unwrap(), before);
    // Two files of one sample, and a file without a sample name, are refused too.
    let err = cohortdb(&[
        "ingest",
        "bam",
        "--store",
        &store,
        &bam("sampleB.bam"),
        &bam("sampleB.bam"),
    ])
    .unwrap_err();
    assert!(err.contains("also the sample of"), "{err}");
    let no_sample = shared_dir().join("testdata/htslib/no_hdr_sq_1.bam");
    let err = cohortdb(&[
        "ingest",
        "bam",
        "--store",
        &store,
        &no_sample.display().to_string(),
    ])
    .unwrap_err();
    assert!(err.contains("SM"), "{err}");
    assert_eq!(cohortdb(&["info", "--store", &store]).unwrap(), before);
}

/// Three `ingest bam` commits leave three coverage files per contig; `admin compact` merges
/// them into one per contig and every coverage answer stays the same.
#[test]
fn compaction_merges_coverage_files_and_keeps_every_answer() {
    let (_dir, store) = new_store();
    for sample in ["sampleA", "sampleB", "sampleC"] {
        cohortdb(&[
            "ingest",
            "bam",
            "--store",
            &store,
            &bam(&format!("{sample}.bam")),
        ])
        .unwrap();
    }
    let answers = || {
        ["chrS1", "chrS2:1-20000", "chrE"]
            .map(|r| cohortdb(&["coverage", "--store", &store, "-r", r]).unwrap())
    };
    let files = || {
        std::fs::read_dir(std::path::Path::new(&store).join("coverage/contig=chrS1"))
            .unwrap()
            .count()
    };
    let before = answers();
    assert_eq!(files(), 3);
    let out = cohortdb(&["admin", "compact", "--store", &store]).unwrap();
    assert!(out.contains("9 coverage file(s) into 3"), "{out}");
    assert_eq!(answers(), before);
    cohortdb(&["admin", "vacuum", "--store", &store, "--older-than", "0s"]).unwrap();
    assert_eq!(files(), 1);
    assert_eq!(answers(), before);
}

/// Coverage over gRPC: after `ingest bam` adds a sample's coverage to the served store, the
/// `Coverage` RPC answers as `cohortdb coverage` does, and the aggregate tier gets the one
/// covered participant suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_is_served_with_suppression() {
    let server = start_following().await;
    let bam = shared_dir().join("testdata/bam/sampleA.bam");
    let store = server.store.clone();
    tokio::task::spawn_blocking(move || {
        cohortdb(&[
            "ingest",
            "bam",
            "--store",
            &store,
            &bam.display().to_string(),
        ])
        .unwrap()
    })
    .await
    .unwrap();
    let mut query = QueryServiceClient::new(server.channel.clone());
    let ask = |token| {
        let mut query = query.clone();
        async move {
            let message = pb::CoverageRequest {
                regions: vec!["chrS1:1-5000".into()],
                cohort: None,
            };
            read_chunks(query.coverage(request(message, Some(token))).await).await
        }
    };
    // The server moves to the new version on its own; until then chrS1 is a contig it does
    // not know, and the request is refused as a mistake.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let batches = loop {
        match ask(ADMIN).await {
            Ok((batches, _)) if batches.iter().map(RecordBatch::num_rows).sum::<usize>() > 0 => {
                break batches;
            }
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert!(
                    status.message().contains("no contig \"chrS1\""),
                    "{status:?}"
                );
            }
        }
        assert!(std::time::Instant::now() < deadline, "no coverage served");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let served: Vec<String> = (0..strings(&batches, "start").len())
        .map(|i| {
            [
                "chrom",
                "start",
                "end",
                "min_depth",
                "n_samples",
                "n_covered",
            ]
            .map(|c| strings(&batches, c)[i].clone())
            .join("\t")
        })
        .collect();
    let store = server.store.clone();
    let cli = tokio::task::spawn_blocking(move || {
        cohortdb(&["coverage", "--store", &store, "-r", "chrS1:1-5000"]).unwrap()
    })
    .await
    .unwrap();
    let cli: Vec<String> = cli
        .lines()
        .skip(1)
        .map(|l| l.split('\t').take(6).collect::<Vec<_>>().join("\t"))
        .collect();
    assert_eq!(served, cli);
    assert!(
        served.iter().all(|r| r.ends_with("\t10001\t1")),
        "{served:?}"
    );
    // Aggregate tier: 1 covered of 10,001 is a small count: with the cohort's noise it shows
    // as 0 or is withheld, never as itself.
    let (batches, _) = ask(AGGREGATE).await.unwrap();
    let flags = strings(&batches, "suppressed");
    let covered = strings(&batches, "n_covered");
    assert!(!flags.is_empty(), "no bins");
    for (flag, covered) in flags.iter().zip(&covered) {
        match flag.as_str() {
            "true" => assert!(covered.is_empty() || covered == "null", "{covered}"),
            _ => assert_eq!(covered, "0"),
        }
    }
    // No region: INVALID_ARGUMENT.
    let err = query
        .coverage(request(pb::CoverageRequest::default(), Some(ADMIN)))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
}
