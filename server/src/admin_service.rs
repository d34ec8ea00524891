//! `cohortdb.v1.AdminService`: what the store holds and who the caller is.

use std::sync::Arc;

use cohortdb_engine::Tier;
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
        let engine = self.state.admin_engine();
        let snapshot = engine.snapshot();
        let mut contigs = std::collections::BTreeMap::<String, u64>::new();
        for fragment in snapshot.state.variant_fragments() {
            let contig = fragment.contig.clone().unwrap_or_default();
            *contigs.entry(contig).or_default() += fragment.rows;
        }
        let named_cohorts = engine
            .named_cohorts()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        Ok(pb::StoreInfoResponse {
            location: if principal.tier == Tier::Admin {
                engine.store().location().root.to_string()
            } else {
                String::new()
            },
            version: snapshot.version(),
            samples: (engine.sample_records().len() - snapshot.state.retired.len()) as u64,
            // Nothing that moves with a withdrawal reaches the aggregate tier: not the number
            // withdrawn, nor the stored rows a purge rewrites.
            withdrawn: match principal.tier {
                Tier::Aggregate => 0,
                _ => snapshot.state.withdrawn.len() as u64,
            },
            contigs: contigs
                .into_iter()
                .map(|(name, variant_rows)| pb::ContigInfo {
                    name,
                    variant_rows: match principal.tier {
                        Tier::Aggregate => 0,
                        _ => variant_rows,
                    },
                })
                .collect(),
            phenotype_tables: engine
                .phenotype_tables()
                .iter()
                .map(|t| t.to_string())
                .collect(),
            named_cohorts,
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
