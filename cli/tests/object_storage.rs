//! Stores on S3-compatible object storage and many writers at once:
//! - a store on `moto_server` (PyPI `moto[server]`, on loopback) answers exactly as a local
//!   store of the same input, through ingest, queries, export, withdrawal, purge and vacuum;
//! - eight `cohortdb ingest` processes adding different sample batches to one store at once,
//!   on a local directory and on S3: every commit lands, `sample_idx` values are unique, and
//!   each sample's calls equal those of a store ingested from the whole file.

use std::process::{Child, Command, Stdio};

use crate::oracle_support::*;

const BUCKET: &str = "cohortdb-ci";

/// A `moto_server` on a free loopback port with the test bucket, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (scripts/test.sh installs moto[server])");
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let script = format!(
        "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', \
         aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='{BUCKET}')",
        moto.endpoint
    );
    run("python3", &["-c", &script]).expect("creating the bucket");
    moto
}

/// `cohortdb ARGS` with the AWS environment pointing at `endpoint` (none for local stores).
fn command(args: &[&str], endpoint: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohortdb"));
    cmd.args(args);
    if let Some(endpoint) = endpoint {
        cmd.envs([
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT", endpoint),
            ("AWS_ALLOW_HTTP", "true"),
        ]);
    }
    cmd
}

fn cohortdb_at(args: &[&str], endpoint: Option<&str>) -> String {
    let out = command(args, endpoint).output().unwrap();
    assert!(
        out.status.success(),
        "cohortdb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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
    // Every sample's calls equal those of one store of the whole file.
    let (_tmp, whole) = new_store();
    cohortdb_at(&["ingest", "vcf", "--store", &whole, &hail_vcf()], None);
    for id in ids.iter().step_by(11) {
        let calls = |s: &str, e: Option<&str>| {
            cohortdb_at(&["genotypes", "--store", s, "--sample", id, "-r", "20"], e)
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
