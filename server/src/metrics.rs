//! Prometheus metrics over HTTP (`serve --metrics-listen`, `GET /metrics`, the text exposition
//! format 0.0.4): requests by RPC, tier and outcome, a latency histogram by RPC and tier, the
//! store version, the decoded-row cache's bytes, budget, hits and misses, and the audit
//! trail's queue.
//!
//! The server's state counts where every request passes: the outcome when its audit record is
//! written, the latency where a request's work is timed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BOUNDS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One latency histogram.
#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound (not cumulative here).
    buckets: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (method, tier, outcome).
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    /// Latency by (method, tier).
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

/// Values read when metrics are scraped.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// The store version served.
    pub store_version: u64,
    /// Bytes of decoded variant rows in the cache.
    pub cache_bytes: u64,
    /// The cache's budget.
    pub cache_budget_bytes: u64,
    /// Row groups the cache had decoded when asked for, since the server started.
    pub cache_hits: u64,
    /// Row groups it had to read and decode.
    pub cache_misses: u64,
    /// Audit records waiting for the audit trail's writer.
    pub audit_queue: u64,
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts a request of `method` by a caller of `tier` that ended as `outcome` (`allowed`,
    /// `denied`, `failed`, `cancelled`).
    pub fn request(&self, method: &str, tier: &str, outcome: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests
            .entry((method.into(), tier.into(), outcome.into()))
            .or_default() += 1;
    }

    /// Records the time a request of `method` by a caller of `tier` took.
    pub fn latency(&self, method: &str, tier: &str, seconds: f64) {
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry((method.into(), tier.into())).or_default();
        if let Some(i) = BOUNDS.iter().position(|&b| seconds <= b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut out, gauges);
        out
    }

    fn write(&self, out: &mut String, gauges: Gauges) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP cohortdb_requests_total Requests by RPC, tier and outcome."
        )?;
        writeln!(out, "# TYPE cohortdb_requests_total counter")?;
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((method, tier, outcome), n) in &requests {
            writeln!(
                out,
                "cohortdb_requests_total{{method=\"{}\",tier=\"{}\",outcome=\"{}\"}} {n}",
                label(method),
                label(tier),
                label(outcome)
            )?;
        }
        writeln!(
            out,
            "# HELP cohortdb_request_duration_seconds Time from authentication to the answer."
        )?;
        writeln!(out, "# TYPE cohortdb_request_duration_seconds histogram")?;
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((method, tier), h) in &latency {
            let labels = format!("method=\"{}\",tier=\"{}\"", label(method), label(tier));
            let mut cumulative = 0;
            for (bound, n) in BOUNDS.iter().zip(h.buckets) {
                cumulative += n;
                writeln!(
                    out,
                    "cohortdb_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                )?;
            }
            writeln!(
                out,
                "cohortdb_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            )?;
            writeln!(
                out,
                "cohortdb_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            )?;
            writeln!(
                out,
                "cohortdb_request_duration_seconds_count{{{labels}}} {}",
                h.count
            )?;
        }
        for (name, kind, help, value) in [
            (
                "cohortdb_store_version",
                "gauge",
                "The store version served.",
                gauges.store_version,
            ),
            (
                "cohortdb_cache_bytes",
                "gauge",
                "Bytes of decoded variant rows in the cache.",
                gauges.cache_bytes,
            ),
            (
                "cohortdb_cache_budget_bytes",
                "gauge",
                "The cache's budget (--cache-mib).",
                gauges.cache_budget_bytes,
            ),
            (
                "cohortdb_cache_hits_total",
                "counter",
                "Row groups found decoded in the cache.",
                gauges.cache_hits,
            ),
            (
                "cohortdb_cache_misses_total",
                "counter",
                "Row groups read and decoded into the cache.",
                gauges.cache_misses,
            ),
            (
                "cohortdb_audit_queue",
                "gauge",
                "Audit records waiting to be written (answers wait for theirs).",
                gauges.audit_queue,
            ),
        ] {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} {kind}")?;
            writeln!(out, "{name} {value}")?;
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on `listener`, each scrape answered by `render` (the server's
/// `ServerState::metrics_text`), until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), crate::ServerError> {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = render();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    text,
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| crate::ServerError::Io {
            path: "metrics listener".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("a/B", "admin", "allowed");
        m.request("a/B", "admin", "allowed");
        m.latency("a/B", "admin", 0.003);
        m.latency("a/B", "admin", 20.0);
        let text = m.render(Gauges {
            store_version: 7,
            cache_bytes: 1,
            cache_budget_bytes: 2,
            cache_hits: 3,
            cache_misses: 4,
            audit_queue: 5,
        });
        assert!(text.contains(
            "cohortdb_requests_total{method=\"a/B\",tier=\"admin\",outcome=\"allowed\"} 2"
        ));
        assert!(text.contains("le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"10\"} 1\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("\ncohortdb_audit_queue 5\n"), "{text}");
        assert!(text.contains("cohortdb_store_version 7\n"), "{text}");
        assert!(text.contains("cohortdb_cache_misses_total 4\n"), "{text}");
    }
}
