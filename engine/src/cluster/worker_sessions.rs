//! What a worker runs plans in. A worker serves one store: it decodes a plan with the codec of
//! an engine over that store ([`PlanCodec`]), registers the functions plans call by name and
//! the store's object store under [`STORE_URL`], and refuses any plan whose request does not
//! carry the cluster's secret. It plans nothing and applies no access tier itself: the
//! coordinator does, before a plan is sent and after its rows come back.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext, WorkerSessionBuilder};

use crate::cluster::cluster_secret::ClusterSecret;
use crate::cluster::worker_pool::BUILD;
use crate::cohort_engine::CohortEngine;
use crate::rows::variants_exec::STORE_URL;
use crate::session::plan_codec::PlanCodec;

/// The sessions of one worker.
#[derive(Debug)]
struct WorkerSessions {
    engine: Arc<CohortEngine>,
    secret: ClusterSecret,
}

#[async_trait]
impl WorkerSessionBuilder for WorkerSessions {
    async fn build_session_state(&self, ctx: WorkerQueryContext) -> Result<SessionState> {
        if !self.secret.admits(&ctx.headers) {
            return Err(DataFusionError::Plan(
                "cohortdb worker: refused a plan without this cluster's secret: \
                 workers run plans only from a coordinator of their cluster"
                    .into(),
            ));
        }
        let (scalar, aggregate) = crate::sql::plan_functions();
        let mut builder = ctx
            .builder
            .with_distributed_user_codec(PlanCodec::new(self.engine.clone()))
            // A stage that reads another worker's stage sends the secret on.
            .with_distributed_passthrough_headers(self.secret.headers())?;
        builder
            .scalar_functions()
            .get_or_insert_default()
            .extend(scalar);
        builder
            .aggregate_functions()
            .get_or_insert_default()
            .extend(aggregate);
        Ok(builder.build())
    }
}

/// A worker running plans over the store of `engine`, for coordinators holding `secret`; it
/// reports [`BUILD`] as its version. Serve it with `into_worker_server()` on a tonic server.
pub fn worker(engine: CohortEngine, secret: ClusterSecret) -> Result<Worker> {
    let runtime = RuntimeEnv::default();
    let url = url::Url::parse(STORE_URL).map_err(|e| DataFusionError::Internal(e.to_string()))?;
    runtime.register_object_store(&url, engine.store.location().object_store.clone());
    let sessions = WorkerSessions {
        engine: Arc::new(engine),
        secret,
    };
    Ok(Worker::from_session_builder(sessions)
        .with_runtime_env(Arc::new(runtime))
        .with_version(BUILD))
}
