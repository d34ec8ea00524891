//! Physical plans of ours sent to another node and read back there: a
//! [`PhysicalExtensionCodec`] for the `variants` scan ([`VariantsExec`]), the table-function
//! calls ([`OperationExec`], and [`RegionTasksExec`] when split across workers) and the one UDF that carries state (`site_is_public`, bound to a
//! release of the aggregate tier). The other functions carry none and travel by name; the
//! reading side registers them (any session of [`CohortEngine`] does, and a worker's:
//! `crate::sql::plan_functions`).
//!
//! Through datafusion-distributed, only the plan nodes use this codec: its own codec comes
//! first and claims every function by name, so a function's state cannot travel. Plans sent to
//! workers therefore call no function with state: `site_is_public` stays on the coordinator
//! (the cluster module's `stage_boundaries`) and sample sets are literal arguments.
//!
//! A node reads a plan with its own engine: the scan reads fragments through the object store
//! its session registers under [`crate::rows::variants_exec::STORE_URL`], a call runs under
//! that engine's access policy, and `site_is_public` is rebuilt from that engine's release
//! and refused if the sender's was another (a plan of another snapshot or policy).

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::cohort_engine::CohortEngine;
use crate::policy::public_sites::PublicSiteUdf;
use crate::region_tasks::RegionTasks;
use crate::rows::scan_plan::ScanPlan;
use crate::rows::variants_exec::VariantsExec;
use crate::session::operation_exec::{OperationCall, OperationExec};
use crate::session::region_tasks_exec::{EngineVersions, RegionTasksExec};

/// The codec of one engine's plans.
#[derive(Debug, Clone)]
pub struct PlanCodec {
    engine: Arc<CohortEngine>,
    /// Engines over other versions of the store, for split operations planned on them.
    versions: Arc<EngineVersions>,
}

impl PlanCodec {
    /// Plans read back run on `engine` (split operations on the version they were planned
    /// on; keep one codec per node, which keeps the engine of the last other version).
    pub fn new(engine: Arc<CohortEngine>) -> Self {
        Self {
            versions: Arc::new(EngineVersions::new(engine.clone())),
            engine,
        }
    }
}

/// What the bytes of one node hold (JSON: readable in a plan dump, and versioned by its tag).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
enum EncodedNode {
    /// A `variants` scan.
    VariantsScanV1 { plan: ScanPlan },
    /// A table-function call.
    OperationCallV1 {
        call: OperationCall,
        projection: Option<Vec<usize>>,
    },
    /// A table-function call split by region across tasks.
    RegionTasksV1 {
        tasks: RegionTasks,
        projection: Option<Vec<usize>>,
    },
}

/// The state of `site_is_public`.
#[derive(Debug, Serialize, Deserialize)]
struct PublicSiteState {
    release: String,
}

fn codec_error(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("cohortdb plan codec: {what}: {e}"))
}

impl PhysicalExtensionCodec for PlanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node: EncodedNode =
            serde_json::from_slice(buf).map_err(|e| codec_error("unreadable node", e))?;
        Ok(match node {
            EncodedNode::VariantsScanV1 { plan } => Arc::new(VariantsExec::new(
                plan,
                self.engine.site_cache().footers().clone(),
            )?),
            EncodedNode::OperationCallV1 { call, projection } => {
                call.check()
                    .map_err(crate::session::operation_exec::engine_error)?;
                Arc::new(OperationExec::new(self.engine.clone(), call, projection)?)
            }
            EncodedNode::RegionTasksV1 { tasks, projection } => Arc::new(RegionTasksExec::new(
                tasks,
                self.versions.clone(),
                projection,
            )?),
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(scan) = node.downcast_ref::<VariantsExec>() {
            EncodedNode::VariantsScanV1 {
                plan: scan.scan_plan().clone(),
            }
        } else if let Some(call) = node.downcast_ref::<OperationExec>() {
            EncodedNode::OperationCallV1 {
                call: call.call().clone(),
                projection: call.projection().cloned(),
            }
        } else if let Some(split) = node.downcast_ref::<RegionTasksExec>() {
            EncodedNode::RegionTasksV1 {
                tasks: split.tasks().clone(),
                projection: split.projection().cloned(),
            }
        } else {
            return Err(DataFusionError::NotImplemented(format!(
                "cohortdb plan codec: no encoding of {}",
                node.name()
            )));
        };
        serde_json::to_writer(buf, &encoded).map_err(|e| codec_error("encoding", e))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if name != "site_is_public" {
            return Err(DataFusionError::NotImplemented(format!(
                "cohortdb plan codec: {name} carries no state; register it by name"
            )));
        }
        let state: PublicSiteState =
            serde_json::from_slice(buf).map_err(|e| codec_error("unreadable UDF", e))?;
        let udf = self
            .engine
            .public_site_filter()
            .map_err(crate::session::operation_exec::engine_error)?;
        let ours = udf
            .inner()
            .downcast_ref::<PublicSiteUdf>()
            .map(|u| u.release().hex());
        if ours.as_deref() != Some(state.release.as_str()) {
            return Err(DataFusionError::Plan(
                "site_is_public of another snapshot or access policy".into(),
            ));
        }
        Ok(Arc::new(udf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(public) = node.inner().downcast_ref::<PublicSiteUdf>() {
            let state = PublicSiteState {
                release: public.release().hex(),
            };
            serde_json::to_writer(buf, &state).map_err(|e| codec_error("encoding UDF", e))?;
        }
        Ok(())
    }
}
