//! Every VCF/BCF under `../shared/testdata/curated/invalid/` is either accepted or refused with
//! an error naming the file, where (header, line or record, or a byte offset) and why; never a
//! panic, and a refused ingest leaves the store exactly as it was (same version, same files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oracle_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use oracle_support::*;

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

#[test]
fn invalid_inputs_are_refused_clearly_or_accepted_and_never_half_written() {
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
    let (dir, store) = new_store();
    let valid = dir.path().join("valid.vcf");
    std::fs::write(
        &valid,
        "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"GT\">\n\
         #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tBASE1\n\
         1\t10\t.\tA\tC\t.\t.\t.\tGT\t0/1\n",
    )
    .unwrap();
    cohortdb(&["ingest", "vcf", "--store", &store, valid.to_str().unwrap()]).expect("ingest");

    let mut problems = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for input in &inputs {
        let name = input.display().to_string();
        // Each input goes to its own copy of the store, so accepted ones do not change what
        // the next one sees.
        let copy = dir.path().join("copy");
        let _ = std::fs::remove_dir_all(&copy);
        sh(&format!("cp -r '{store}' '{}'", copy.display())).unwrap();
        let before = listing(&copy);
        let out = Command::new(env!("CARGO_BIN_EXE_cohortdb"))
            .args(["ingest", "vcf", "--store", copy.to_str().unwrap(), &name])
            .output()
            .expect("run cohortdb");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => accepted += 1,
            Some(1) => {
                refused += 1;
                let located = ["line ", "record ", "header", "offset", "empty", "byte"]
                    .iter()
                    .any(|w| stderr.contains(w));
                if !stderr.contains(&name) || !located {
                    problems.push(format!("{name}: error lacks file or location: {stderr}"));
                }
                if listing(&copy) != before {
                    problems.push(format!("{name}: refused, but the store changed"));
                }
            }
            other => problems.push(format!(
                "{name}: exit {other:?} (panic or signal): {stderr}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        refused >= 20,
        "only {refused} refused ({accepted} accepted)"
    );
}
