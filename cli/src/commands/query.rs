//! `cohortdb query`: SQL over the store.

use clap::Args;
use cohortdb_engine::CohortEngine;

use crate::CliResult;
use crate::output_format::print_frame;
use crate::shared_args::{ClusterArgs, FormatArg, StoreArg};

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
    let frame = engine.sql_session()?.sql(&args.sql).await?;
    print_frame(args.format.format, frame).await
}
