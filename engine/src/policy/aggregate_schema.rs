//! The default schema of an aggregate-tier session: the tables registered in it, and a
//! refusal (PERMISSION_DENIED, not "not found") for the tables that hold individual-level rows.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::error::EngineError;

/// Registered tables, with `denied` names refused.
#[derive(Debug)]
pub(crate) struct AggregateSchema {
    registered: MemorySchemaProvider,
    denied: Vec<String>,
}

impl AggregateSchema {
    /// Makes this the default schema of `ctx`.
    pub(crate) fn install(ctx: &SessionContext, denied: Vec<String>) -> Result<()> {
        let options = ctx.state().config().options().catalog.clone();
        let catalog = ctx
            .catalog(&options.default_catalog)
            .ok_or_else(|| DataFusionError::Internal("no default catalog".into()))?;
        catalog.register_schema(
            &options.default_schema,
            Arc::new(Self {
                registered: MemorySchemaProvider::new(),
                denied,
            }),
        )?;
        Ok(())
    }
}

#[async_trait]
impl SchemaProvider for AggregateSchema {
    fn table_names(&self) -> Vec<String> {
        self.registered.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.denied.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return Err(DataFusionError::External(Box::new(
                EngineError::PermissionDenied(format!(
                    "table {name} holds individual-level data, which the aggregate tier may not see"
                )),
            )));
        }
        self.registered.table(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.registered.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.registered.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.registered.table_exist(name)
    }
}
