//! Every VCF/BCF under `../shared/testdata/curated/invalid/` is either accepted or refused with
//! an error naming the file, where (header, line or record, or a byte offset) and why; never a
//! panic, and a refused ingest leaves the store exactly as it was (same version, same files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;

/// The shared test data folder: `$COHORTDB_SHARED` or `../shared` beside the repository;
/// missing, the test fails (it never passes by skipping).
fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("COHORTDB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("testdata").is_dir(),
        "shared test data not found at {} (set COHORTDB_SHARED)",
        dir.display()
    );
    dir
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file of the store with its size, relative to the store root.
fn listing(store: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    files_under(store, &mut files);
    let mut out: Vec<(String, u64)> = files
        .iter()
        .map(|f| {
            (
                f.strip_prefix(store).unwrap().display().to_string(),
                f.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

async fn ingest(store: &Path, input: &str) -> Result<(), String> {
    let store = Store::open_or_create(&store.display().to_string()).map_err(|e| e.to_string())?;
    ingest_vcf(&store, &[input.to_string()], &IngestOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_inputs_are_refused_clearly_or_accepted_and_never_half_written() {
    let root = shared_dir().join("testdata/curated/invalid");
    let mut inputs = Vec::new();
    files_under(&root, &mut inputs);
    inputs.retain(|p| {
        let name = p.display().to_string();
        [".vcf", ".vcf.gz", ".gvcf", ".bcf"]
            .iter()
            .any(|s| name.ends_with(s))
    });
    inputs.sort();
    assert!(inputs.len() >= 40, "only {} inputs found", inputs.len());

    // A store holding one valid ingest; each bad input is tried against it.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let valid = dir.path().join("valid.vcf");
    std::fs::write(
        &valid,
        "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"GT\">\n\
         #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tBASE1\n\
         1\t10\t.\tA\tC\t.\t.\t.\tGT\t0/1\n",
    )
    .unwrap();
    ingest(&store, valid.to_str().unwrap())
        .await
        .expect("ingest");

    let mut problems = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for input in &inputs {
        let name = input.display().to_string();
        // Each input goes to its own copy of the store, so accepted ones do not change what
        // the next one sees.
        let copy = dir.path().join("copy");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&store, &copy);
        let before = listing(&copy);
        // Run apart, so that a panic is reported as one more problem.
        let outcome = tokio::spawn({
            let (copy, name) = (copy.clone(), name.clone());
            async move { ingest(&copy, &name).await }
        })
        .await;
        match outcome {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(error)) => {
                refused += 1;
                let located = ["line ", "record ", "header", "offset", "empty", "byte"]
                    .iter()
                    .any(|w| error.contains(w));
                if !error.contains(&name) || !located {
                    problems.push(format!("{name}: error lacks file or location: {error}"));
                }
                if listing(&copy) != before {
                    problems.push(format!("{name}: refused, but the store changed"));
                }
            }
            Err(panic) => problems.push(format!("{name}: panicked: {panic}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        refused >= 20,
        "only {refused} refused ({accepted} accepted)"
    );
}
