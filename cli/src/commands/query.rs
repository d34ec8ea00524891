//! `cohortdb query`: SQL over the store.

use clap::Args;
use cohortdb_engine::CohortEngine;

use crate::CliResult;
use crate::output_format::print_batches;
use crate::shared_args::{ClusterArgs, FormatArg, StoreArg, told};

/// `query`.
#[derive(Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The SQL statement.
    sql: String,
}

pub(crate) async fn run(args: QueryArgs) -> CliResult {
    let engine = args
        .cluster
        .attach(CohortEngine::open(&args.store.location).await?)
        .await?;
    // Only queries: DDL would change nothing that lasts, and COPY would write local files.
    let frame = engine.sql(&args.sql).await?;
    let schema = frame.schema().inner().clone();
    let batches = told(&engine, frame.collect().await.map_err(Into::into)).await?;
    print_batches(args.format.format, &batches, schema)
}
