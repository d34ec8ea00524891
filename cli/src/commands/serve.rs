//! `cohortdb serve`: opens the store and serves it until SIGTERM or Ctrl-C, then drains the
//! requests in flight.

use std::sync::Arc;

use clap::Args;
use cohortdb_engine::CohortEngine;
use cohortdb_engine::policy::disclosure_control::{DEFAULT_NOISE_SD, DEFAULT_PRIVACY_BUDGET};
use cohortdb_engine::rows::site_cache::SiteCache;
use cohortdb_server::{ServerOptions, ServerState, ServerTls, TokenRegistry, serve, serve_metrics};

use crate::CliResult;
use crate::shared_args::{ClusterArgs, StoreArg};

/// `serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Address to listen on (port 0 picks a free port, printed on standard error).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: String,
    /// The tokens file (TOML `[[token]]` entries: token, name, project, tier).
    #[arg(long, required_unless_present = "dev_anonymous")]
    tokens: Option<String>,
    /// Counts from 1 to this minus 1 are suppressed for the aggregate tier.
    #[arg(long, default_value_t = 20)]
    min_count: u32,
    /// The largest gRPC message decoded or encoded, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_bytes: usize,
    /// Memory for decoded variant rows (counts and carriers read them), in MiB; the least
    /// recently used row groups are dropped beyond it.
    #[arg(long, default_value_t = 2048)]
    cache_mib: usize,
    /// Seconds between looks for a newer store version (new data, withdrawals); requests
    /// after it see that version.
    #[arg(long, default_value_t = 5.0)]
    refresh_secs: f64,
    /// Threads of the scan lane, which runs everything but point lookups at a lower OS
    /// priority so that lookups are answered first (default: one per core; 0 runs scans
    /// on the server's own threads, with no priority between them).
    #[arg(long)]
    scan_threads: Option<usize>,
    /// The standard deviation of the noise on every count the aggregate tier sees.
    #[arg(long, default_value_t = DEFAULT_NOISE_SD)]
    noise_sd: f64,
    /// The privacy budget (zCDP rho) of each project whose `[projects.NAME]` in the tokens
    /// file sets no `privacy_budget`.
    #[arg(long, default_value_t = DEFAULT_PRIVACY_BUDGET)]
    privacy_budget: f64,
    /// Development only: requests without a token run as an admin named "anonymous".
    #[arg(long)]
    dev_anonymous: bool,
    /// Serve over TLS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS: clients must present a certificate signed by this CA (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// The most rows a page of a carriers answer may hold (a client asks for 10,000 unless it
    /// names a size).
    #[arg(long, default_value_t = cohortdb_engine::ops::carrier_pages::MAX_PAGE_SIZE)]
    max_page_size: usize,
    /// Also serve Prometheus metrics over HTTP at http://ADDR/metrics (port 0 picks one,
    /// printed on standard error).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Seconds health reports NOT_SERVING after SIGTERM while requests are still answered,
    /// before the server drains and stops.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
}

/// Serves the store with the options of `args`.
pub(crate) async fn run(args: ServeArgs) -> CliResult {
    let options = ServerOptions {
        min_count: args.min_count,
        noise_sd: args.noise_sd,
        privacy_budget: args.privacy_budget,
        max_message_bytes: args.max_message_bytes,
        anonymous: args.dev_anonymous.then(|| cohortdb_server::Principal {
            name: "anonymous".into(),
            project: "development".into(),
            tier: cohortdb_engine::Tier::Admin,
        }),
        refresh_interval: std::time::Duration::try_from_secs_f64(args.refresh_secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or("--refresh-secs must be a positive number of seconds")?,
        scan_threads: args
            .scan_threads
            .unwrap_or(ServerOptions::default().scan_threads),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::from_files(
                cert,
                key,
                args.tls_client_ca.as_deref(),
            )?),
            _ => None,
        },
        drain_grace: std::time::Duration::try_from_secs_f64(args.drain_secs)
            .map_err(|_| "--drain-secs must be zero or a positive number of seconds")?,
        ..Default::default()
    };
    serve_store(&args, options).await
}

/// Serves the store of `args` on its address (planning onto its cluster's workers, if any),
/// with its cache of decoded variant rows, its page limit and its metrics listener.
async fn serve_store(args: &ServeArgs, options: ServerOptions) -> CliResult {
    let (store, listen) = (args.store.location.as_str(), args.listen.as_str());
    let tokens = args.tokens.as_deref();
    let tokens = match tokens {
        Some(path) => TokenRegistry::from_file(path)?,
        None => TokenRegistry::default(),
    };
    if options.anonymous.is_some() {
        eprintln!(
            "cohortdb serve: WARNING: --dev-anonymous lets requests without a token in as admin"
        );
    }
    let engine = CohortEngine::open(store)
        .await?
        .with_site_cache(Arc::new(SiteCache::new(args.cache_mib << 20)))
        .with_max_page_size(args.max_page_size);
    let engine = args.cluster.attach(engine).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let transport = match &options.tls {
        Some(tls) if tls.is_mutual() => "TLS, client certificates required",
        Some(_) => "TLS",
        None => "plaintext",
    };
    eprintln!(
        "cohortdb serve: listening on {} ({transport}; store version {})",
        listener.local_addr()?,
        engine.snapshot().version()
    );
    let state = Arc::new(ServerState::new(engine, tokens, options)?);
    let metrics = match args.metrics_listen.as_deref() {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address}: {e}"))?;
            eprintln!(
                "cohortdb serve: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            let state = state.clone();
            let render = move || state.metrics_text();
            let served = serve_metrics(listener, render, std::future::pending());
            Some(tokio::spawn(served))
        }
        None => None,
    };
    let served = serve(listener, state, shutdown_signal()).await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served?;
    eprintln!("cohortdb serve: stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
