//! `cohortdb serve` in the open: TLS and mutual TLS with certificates `openssl` makes here,
//! through grpcio, ADBC and pyarrow Flight (`python/tls_clients.py`); and a SIGTERM that turns
//! health NOT_SERVING while requests are still answered, before the server drains and stops.

use std::io::BufRead;
use std::path::Path;
use std::process::Command;

use crate::oracle_support::{cohortdb, sh, sim_store};
use crate::support::server_process::{serve_process, serve_process_with_env, stop_process};
use crate::support::serving_harness::{ADMIN, TOKENS};

/// A CA, a server certificate it signs (for localhost and 127.0.0.1) and a client
/// certificate it signs, as PEM files in `dir` (X.509 v3, as rustls requires: the
/// extension files make them so).
fn certificates(dir: &Path) {
    let d = dir.display();
    sh(&format!(
        "cd {d} && exec 2>&1
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
         openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=a-notebook
         printf 'extendedKeyUsage=clientAuth\n' > client.ext
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext"
    ))
    .unwrap();
}

#[test]
fn tls_and_mutual_tls_through_grpcio_adbc_and_pyarrow_flight() {
    let (dir, store) = sim_store(false);
    certificates(dir.path());
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_clients.py");
    for mutual in [false, true] {
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key, "--drain-secs", "0"];
        if mutual {
            args.extend(["--tls-client-ca", &ca]);
        }
        let (child, address, stderr) = serve_process(&store, &tokens, &args);
        let mut clients = vec![address, ca.clone(), ADMIN.to_string(), "10000".to_string()];
        if mutual {
            clients.extend([file("client.pem"), file("client.key")]);
        }
        let result = Command::new("python3")
            .arg(script)
            .args(&clients)
            .output()
            .unwrap();
        stop_process(child, stderr);
        assert!(
            result.status.success(),
            "mutual {mutual}: python clients failed:\n{}\n{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }

    // A key that is not a key is refused by name, before anything listens.
    let refused = cohortdb(&[
        "serve",
        "--store",
        &store,
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        &tokens.display().to_string(),
        "--tls-cert",
        &cert,
        "--tls-key",
        &ca,
    ])
    .unwrap_err();
    assert!(
        refused.contains("ca.pem: not a PEM private key"),
        "{refused}"
    );
}

#[test]
fn sigterm_turns_health_not_serving_while_requests_are_still_answered() {
    let (dir, store) = sim_store(false);
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    let (child, address, stderr) = serve_process(&store, &tokens, &["--drain-secs", "3"]);
    let pid = child.id();
    // Health SERVING; SIGTERM; then within the grace NOT_SERVING, while a query is answered.
    let check = format!(
        r#"
import os, signal, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
import adbc_driver_flightsql.dbapi as flightsql
channel = grpc.insecure_channel("{address}")
health = health_pb2_grpc.HealthStub(channel)
status = lambda service: health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
assert status("cohortdb.v1.QueryService") == health_pb2.HealthCheckResponse.SERVING
os.kill({pid}, signal.SIGTERM)
deadline = time.time() + 2
while status("cohortdb.v1.QueryService") != health_pb2.HealthCheckResponse.NOT_SERVING:
    assert time.time() < deadline, "still SERVING after SIGTERM"
    time.sleep(0.05)
assert status("") == health_pb2.HealthCheckResponse.NOT_SERVING
kwargs = {{"adbc.flight.sql.authorization_header": "Bearer {ADMIN}"}}
with flightsql.connect("grpc://{address}", db_kwargs=kwargs) as conn, conn.cursor() as cur:
    cur.execute("SELECT count(*) FROM samples")
    assert cur.fetchone()[0] == 10000
"#
    );
    let result = Command::new("python3")
        .args(["-c", &check])
        .output()
        .unwrap();
    let mut child = child;
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut { stderr }, &mut rest).unwrap();
    assert!(
        result.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        status.success() && rest.contains("stopped"),
        "{status}: {rest}"
    );
}

#[test]
fn metrics_are_prometheus_text_a_plain_http_client_scrapes() {
    let (dir, store) = sim_store(false);
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    let args = ["--metrics-listen", "127.0.0.1:0", "--drain-secs", "0"];
    let env = [
        ("RUST_LOG", "cohortdb_server=info"),
        ("COHORTDB_LOG_FORMAT", "json"),
    ];
    let (child, address, mut stderr) = serve_process_with_env(&store, &tokens, &args, &env);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let metrics = line
        .trim()
        .strip_prefix("cohortdb serve: metrics on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    // Two answered queries and one refused token, then a scrape parsed line by line.
    let check = format!(
        r##"
import re, urllib.request
import adbc_driver_flightsql.dbapi as flightsql
def connect(token):
    return flightsql.connect("grpc://{address}", db_kwargs={{"adbc.flight.sql.authorization_header": f"Bearer {{token}}"}})
with connect("{ADMIN}") as conn, conn.cursor() as cur:
    for _ in range(2):
        cur.execute("SELECT count(*) FROM samples")
        assert cur.fetchone()[0] == 10000
try:
    with connect("not-a-token") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    raise AssertionError("an unknown token was answered")
except flightsql.Error:
    pass
with urllib.request.urlopen("{metrics}") as r:
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    text = r.read().decode()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\}})? (-?[0-9.e+-]+|\+Inf|NaN)$')
values, types = {{}}, {{}}
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        types[name] = kind
        continue
    if line.startswith("# HELP ") or not line:
        continue
    m = sample.match(line)
    assert m, "not the text format: " + line
    values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
assert types["cohortdb_requests_total"] == "counter", types
assert types["cohortdb_request_duration_seconds"] == "histogram", types
sql = [k for k in values if k.startswith("cohortdb_requests_total{{") and 'tier="admin"' in k and 'outcome="allowed"' in k]
assert sum(values[k] for k in sql) >= 2, values
denied = [k for k in values if k.startswith("cohortdb_requests_total{{") and 'outcome="denied"' in k]
assert sum(values[k] for k in denied) >= 1, values
counts = [k for k in values if k.startswith("cohortdb_request_duration_seconds_count{{")]
assert sum(values[k] for k in counts) >= 2, values
for k in values:
    if k.startswith("cohortdb_request_duration_seconds_bucket{{") and 'le="+Inf"' in k:
        assert values[k] == values[k.replace("_bucket", "_count").replace(',le="+Inf"', "")], k
assert values["cohortdb_store_version"] >= 1, values
assert types["cohortdb_cache_misses_total"] == "counter", types
assert types["cohortdb_audit_queue"] == "gauge" and values["cohortdb_audit_queue"] >= 0, values
"##
    );
    let result = Command::new("python3")
        .args(["-c", &check])
        .output()
        .unwrap();
    let logs = stop_process(child, stderr);
    assert!(
        result.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    // With COHORTDB_LOG_FORMAT=json every log line is a JSON object, and each answered
    // request has one with its method, tier and duration.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let answered: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "answered")
        .collect();
    assert!(!answered.is_empty(), "{logs}");
    for line in answered {
        assert_eq!(line["fields"]["tier"], "admin", "{line}");
        assert!(line["fields"]["duration_us"].is_u64(), "{line}");
        assert!(line["fields"]["method"].is_string(), "{line}");
    }
}
