//! Worker processes (`cohortdb worker`) on 127.0.0.1 for the tests of a cluster: each started
//! on a free port it prints, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::support::s3_harness::command;

/// The secret every test cluster shares.
pub(crate) const SECRET: &str = "cohortdb-test-cluster-0123456789abcdef";

/// A running `cohortdb worker`.
pub(crate) struct WorkerProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) address: String,
}

impl WorkerProcess {
    /// A worker over `store` with the secret in `secret_file`; an S3 store's at `endpoint`.
    pub(crate) fn start(store: &str, secret_file: &str, endpoint: Option<&str>) -> Self {
        let args = [
            "worker",
            "--store",
            store,
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            secret_file,
        ];
        let mut child = command(&args, endpoint)
            .stderr(Stdio::piped())
            .spawn()
            .expect("cohortdb worker");
        let mut line = String::new();
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        reader.read_line(&mut line).expect("worker's first line");
        let address = listening_address(&line);
        // Keep reading its standard error, so that the worker never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Self { child, address }
    }

    /// Kills the worker at once (SIGKILL), as a lost node.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address in the line a `cohortdb serve` or `worker` starts with ("... listening on
/// ADDR ...").
pub(crate) fn listening_address(line: &str) -> String {
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

/// The secret written to a file in `dir`, and its path.
pub(crate) fn secret_file(dir: &std::path::Path) -> String {
    let path = dir.join("cluster.secret");
    std::fs::write(&path, SECRET).unwrap();
    path.display().to_string()
}

/// `n` workers over `store`, and the `--workers` list naming them.
pub(crate) fn start_workers(
    store: &str,
    secret_file: &str,
    n: usize,
) -> (Vec<WorkerProcess>, String) {
    start_workers_at(store, secret_file, n, None)
}

/// [`start_workers`] for a store on the S3 at `endpoint`.
pub(crate) fn start_workers_at(
    store: &str,
    secret_file: &str,
    n: usize,
    endpoint: Option<&str>,
) -> (Vec<WorkerProcess>, String) {
    let workers: Vec<WorkerProcess> = (0..n)
        .map(|_| WorkerProcess::start(store, secret_file, endpoint))
        .collect();
    let list = workers
        .iter()
        .map(|w| w.address.clone())
        .collect::<Vec<_>>()
        .join(",");
    (workers, list)
}
