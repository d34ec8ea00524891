//! `cohortdb.v1.AdminService`: what the store holds and who the caller is.

use std::sync::Arc;

use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::server_error::ServerError;
use crate::server_state::ServerState;

/// The admin service over shared server state.
#[derive(Debug, Clone)]
pub struct AdminServiceImpl {
    state: Arc<ServerState>,
}

impl AdminServiceImpl {
    /// The service over `state`.
    pub fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }

    async fn info(
        &self,
        principal: &crate::Principal,
    ) -> Result<pb::StoreInfoResponse, ServerError> {
        // One description for the CLI and this service; what a tier may not see is blanked.
        let info = self
            .state
            .admin_engine()
            .info()
            .await?
            .visible_to(principal.tier);
        Ok(pb::StoreInfoResponse {
            location: info.location,
            version: info.version,
            samples: info.samples,
            withdrawn: info.withdrawn,
            contigs: info
                .contigs
                .into_iter()
                .map(|(name, variant_rows)| pb::ContigInfo { name, variant_rows })
                .collect(),
            phenotype_tables: info.phenotype_tables.into_iter().map(|(t, _)| t).collect(),
            named_cohorts: info.named_cohorts,
            min_count: self.state.options().min_count,
            principal: principal.name.clone(),
            project: principal.project.clone(),
            tier: principal.tier.name().to_string(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn store_info(
        &self,
        request: Request<pb::StoreInfoRequest>,
    ) -> Result<Response<pb::StoreInfoResponse>, Status> {
        let method = "cohortdb.v1.AdminService/StoreInfo";
        let principal = self
            .state
            .audited_scope(request.metadata(), method, "")
            .await?
            .principal;
        let result = self.info(&principal).await;
        let outcome = result.as_ref().map(|_| 1);
        self.state
            .audit(Some(&principal), method, String::new(), outcome)
            .await?;
        Ok(Response::new(result?))
    }
}
