//! Shared helpers of the oracle tests: locating `../shared`, running commands, parsing TSV.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The shared test data folder: `$COHORTDB_SHARED` or `../shared` beside the repository.
/// Panics (fails the test) when it is missing: these tests never pass by skipping.
pub fn shared_dir() -> PathBuf {
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

/// Runs `program args...`, returning stdout; `Err(stderr)` on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e} (is it installed?)"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs a shell pipeline.
pub fn sh(script: &str) -> Result<String, String> {
    run("bash", &["-o", "pipefail", "-c", script])
}

/// Runs the cohortdb binary.
pub fn cohortdb(args: &[&str]) -> Result<String, String> {
    run(env!("CARGO_BIN_EXE_cohortdb"), args)
}

/// A fresh store directory.
pub fn new_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store").display().to_string();
    (dir, store)
}

/// Rows of a TSV text without its header line.
pub fn tsv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}
