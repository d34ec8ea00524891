//! The cohortdb server: on one port, the `cohortdb.v1` query and admin services, Arrow Flight
//! SQL, `grpc.health.v1` and server reflection (v1 and v1alpha). Every request is
//! authenticated by bearer token ([`principal`]), answered by an engine under the caller's
//! access tier (enforced in the engine: [`cohortdb_engine::policy::access_policy`]) and written to the
//! store's audit trail ([`cohortdb_store::audit_log`]). Errors become gRPC codes in one place
//! ([`server_error`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use cohortdb_server::{ServerOptions, ServerState, TokenRegistry, serve};
//! let engine = cohortdb_engine::CohortEngine::open("/tmp/store").await?;
//! let tokens = TokenRegistry::from_file("tokens.toml")?;
//! let state = Arc::new(ServerState::new(engine, tokens, ServerOptions::default())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod admin_service;
pub mod answer_stream;
pub mod arrow_chunks;
pub mod audit_pseudonyms;
pub mod audit_text;
pub mod audited_requests;
pub mod export_stream;
pub mod flight_sql_service;
pub mod metrics;
pub mod principal;
pub mod query_service;
pub mod scan_lane;
pub mod server_error;
pub mod server_state;
pub mod transport_security;
pub mod worker_server;

use std::future::Future;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use cohortdb_proto::v1::admin_service_server::AdminServiceServer;
use cohortdb_proto::v1::query_service_server::QueryServiceServer;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

pub use metrics::serve_metrics;
pub use principal::{Principal, TokenRegistry};
pub use server_error::ServerError;
pub use server_state::{ServerOptions, ServerState};
pub use transport_security::ServerTls;
pub use worker_server::serve_worker;

use admin_service::AdminServiceImpl;
use flight_sql_service::FlightSqlServiceImpl;
use query_service::QueryServiceImpl;

/// Serves every service on `listener` (over TLS when [`ServerOptions::tls`] says so) until
/// `shutdown` completes; then health reports NOT_SERVING for
/// [`ServerOptions::drain_grace`] while requests are still answered, and the server stops
/// taking new ones, drains those in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let max = state.options().max_message_bytes;
    let query = QueryServiceServer::new(QueryServiceImpl::new(state.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let admin = AdminServiceServer::new(AdminServiceImpl::new(state.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let flight = FlightServiceServer::new(FlightSqlServiceImpl::new(state.clone())?)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    // Health of the whole server ("") and of each service, by name.
    let services = [
        "",
        <QueryServiceServer<QueryServiceImpl> as NamedService>::NAME,
        <AdminServiceServer<AdminServiceImpl> as NamedService>::NAME,
        <FlightServiceServer<FlightSqlServiceImpl> as NamedService>::NAME,
    ];
    let (health_reporter, health) = tonic_health::server::health_reporter();
    for service in services {
        health_reporter
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(cohortdb_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServerError::InvalidArgument(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServerError::InvalidArgument(format!("reflection: {e}")))?;
    tracing::info!(address = ?listener.local_addr().ok(), "serving");
    let refresher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.options().refresh_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.refresh().await {
                    tracing::warn!("looking for a newer store version: {e}");
                }
            }
        })
    };
    let draining = {
        let (reporter, grace) = (health_reporter.clone(), state.options().drain_grace);
        async move {
            shutdown.await;
            tracing::info!(?grace, "shutting down: health NOT_SERVING, then draining");
            for service in services {
                reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            tokio::time::sleep(grace).await;
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &state.options().tls {
        builder = builder.tls_config(tls.config())?;
    }
    let served = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(query)
        .add_service(admin)
        .add_service(flight)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a small response waits for the client's delayed ACK (40 ms).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            draining,
        )
        .await;
    refresher.abort();
    Ok(served?)
}
