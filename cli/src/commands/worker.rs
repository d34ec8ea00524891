//! `cohortdb worker`: serves one store's plan stages to the coordinators of a cluster
//! (`query --workers`, `serve --workers`) until SIGTERM or Ctrl-C.

use clap::Args;
use cohortdb_engine::CohortEngine;
use cohortdb_engine::cluster::cluster_secret::ClusterSecret;
use cohortdb_engine::cluster::worker_pool::BUILD;

use crate::CliResult;
use crate::commands::serve::shutdown_signal;
use crate::shared_args::StoreArg;

/// `worker`.
#[derive(Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Address to listen on (port 0 picks a free port, printed on standard error).
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: String,
    /// The cluster's secret: a file of at least 16 characters (`openssl rand -hex 32`);
    /// plans without it are refused.
    #[arg(long, value_name = "FILE")]
    secret_file: String,
}

/// Serves a worker with the options of `args`.
pub(crate) async fn run(args: WorkerArgs) -> CliResult {
    let secret = ClusterSecret::from_file(&args.secret_file)?;
    let engine = CohortEngine::open(&args.store.location).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    eprintln!(
        "cohortdb worker: listening on {} (build {BUILD})",
        listener.local_addr()?
    );
    cohortdb_server::serve_worker(listener, engine, secret, shutdown_signal()).await?;
    eprintln!("cohortdb worker: stopped");
    Ok(())
}
