//! The session SQL clients get, and the one entry point for their queries.

use datafusion::prelude::{DataFrame, SessionContext};

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::session::placeholders::numbered_placeholders;

impl CohortEngine {
    /// [`CohortEngine::session`] plus the cohort operations as table functions
    /// ([`crate::session::table_functions`]; for the aggregate tier only the aggregate ones): the
    /// session SQL clients get.
    pub fn sql_session(&self) -> Result<SessionContext> {
        let ctx = self.session()?;
        crate::session::table_functions::register_table_functions(&ctx, self);
        Ok(ctx)
    }
    /// Plans `query` in [`CohortEngine::sql_session`]. Only queries: no DDL (which could
    /// read any file the server can), DML or statements (`SET`, `PREPARE`, ...); placeholders
    /// (`$1`, or `?` numbered in order: [`numbered_placeholders`]) are left for the caller to
    /// bind.
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        let options = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let ctx = self.sql_session()?;
        let query = numbered_placeholders(query)?;
        let plan = ctx.state().create_logical_plan(&query).await?;
        options.verify_plan(&plan).map_err(|e| {
            EngineError::PermissionDenied(format!(
                "only queries are served (a store changes through `cohortdb ingest` and \
                     `cohortdb admin`, never through SQL): {e}"
            ))
        })?;
        Ok(ctx.execute_logical_plan(plan).await?)
    }
}
