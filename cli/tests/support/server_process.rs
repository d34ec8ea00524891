//! `cohortdb serve` as a process of its own, for the tests whose clients are other processes
//! (Python's grpcio, ADBC, pyarrow): started on a free port, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use crate::oracle_support::sh;
use crate::support::cluster_harness::listening_address;

/// `cohortdb serve` on a free port with `extra` arguments: the child, its address and the
/// rest of its standard error.
pub(crate) fn serve_process(
    store: &str,
    tokens: &Path,
    extra: &[&str],
) -> (Child, String, BufReader<ChildStderr>) {
    serve_process_with_env(store, tokens, extra, &[])
}

/// [`serve_process`] with `env` set for the server.
pub(crate) fn serve_process_with_env(
    store: &str,
    tokens: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohortdb"))
        .envs(env.iter().copied())
        .args(["serve", "--store", store, "--listen", "127.0.0.1:0"])
        .arg("--tokens")
        .arg(tokens)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    (child, listening_address(&line), stderr)
}

/// Stops `child` with SIGTERM; its exit status is success and it said it stopped. Returns the
/// rest of its standard error.
pub(crate) fn stop_process(mut child: Child, mut stderr: BufReader<ChildStderr>) -> String {
    sh(&format!("kill -TERM {}", child.id())).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        status.success() && rest.contains("stopped"),
        "{status}: {rest}"
    );
    rest
}
