//! A local S3 (`moto_server` from PyPI `moto[server]`, on loopback) for the tests of stores on
//! object storage, and `cohortdb` run against it.

use std::process::{Child, Command, Stdio};

use crate::oracle_support::run;

pub(crate) const BUCKET: &str = "cohortdb-ci";

/// A `moto_server` on a free loopback port with the test bucket, stopped on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn moto() -> Moto {
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
pub(crate) fn command(args: &[&str], endpoint: Option<&str>) -> Command {
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

pub(crate) fn cohortdb_at(args: &[&str], endpoint: Option<&str>) -> String {
    let out = command(args, endpoint).output().unwrap();
    assert!(
        out.status.success(),
        "cohortdb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
