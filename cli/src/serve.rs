//! `cohortdb serve`: opens the store and serves it until SIGTERM or Ctrl-C, then drains the
//! requests in flight.

use std::sync::Arc;

use cohortdb_engine::CohortEngine;
use cohortdb_engine::rows::site_cache::SiteCache;
use cohortdb_server::{ServerOptions, ServerState, TokenRegistry, serve};

/// Serves `store` on `listen`, with `cache_bytes` of decoded variant rows.
pub async fn run(
    store: &str,
    listen: &str,
    tokens: Option<&str>,
    cache_bytes: usize,
    options: ServerOptions,
) -> Result<(), Box<dyn std::error::Error>> {
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
        .with_site_cache(Arc::new(SiteCache::new(cache_bytes)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "cohortdb serve: listening on {} (store version {})",
        listener.local_addr()?,
        engine.snapshot().version()
    );
    let state = Arc::new(ServerState::new(engine, tokens, options)?);
    serve(listener, state, shutdown_signal()).await?;
    eprintln!("cohortdb serve: stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
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
