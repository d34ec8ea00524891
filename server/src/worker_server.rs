//! A worker of a cluster (`cohortdb worker`): datafusion-distributed's worker service over one
//! store ([`cohortdb_engine::cluster::worker_sessions`]) and `grpc.health.v1`, on one port.
//! It runs the plan stages a coordinator holding the cluster's secret sends, and answers its
//! build to anyone who asks (`GetWorkerInfo`), so that coordinators of another build are
//! turned away before they send a plan.

use std::future::Future;

use cohortdb_engine::CohortEngine;
use cohortdb_engine::cluster::cluster_secret::ClusterSecret;
use cohortdb_engine::cluster::worker_sessions::worker;

use crate::ServerError;

/// Serves a worker over the store of `engine` on `listener` until `shutdown` completes.
pub async fn serve_worker(
    listener: tokio::net::TcpListener,
    engine: CohortEngine,
    secret: ClusterSecret,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let worker = worker(engine, secret)?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tracing::info!(address = ?listener.local_addr().ok(), "worker serving");
    Ok(tonic::transport::Server::builder()
        .add_service(health)
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?)
}
