//! `cohortdb cohort save|list`: named cohorts.

use std::io::Write;

use clap::Subcommand;
use cohortdb_engine::{CohortEngine, CohortSpec};

use crate::CliResult;
use crate::shared_args::StoreArg;

#[derive(Subcommand)]
pub(crate) enum CohortCommand {
    /// Save (or redefine) a named cohort as one commit; use it as `--cohort @NAME`.
    Save {
        #[command(flatten)]
        store: StoreArg,
        /// The name (letters, digits, _ and -).
        name: String,
        /// The predicate over `samples` and `phenotypes`.
        #[arg(long = "where")]
        predicate: String,
    },
    /// List the saved cohorts with their current sizes.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
}

pub(crate) async fn run(command: CohortCommand) -> CliResult {
    match command {
        CohortCommand::Save {
            store,
            name,
            predicate,
        } => {
            let engine = CohortEngine::open(&store.location).await?;
            let (version, size) = engine.save_cohort(&name, &predicate).await?;
            eprintln!("committed version {version}: cohort {name} ({size} samples now)");
        }
        CohortCommand::List { store } => {
            let engine = CohortEngine::open(&store.location).await?;
            let mut out = String::from("name\tsamples\tpredicate\n");
            for c in engine.named_cohorts().await? {
                let size = engine
                    .cohort(CohortSpec::Named(c.name.clone()))
                    .await?
                    .len();
                out.push_str(&format!("{}\t{size}\t{}\n", c.name, c.predicate));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
        }
    }
    Ok(())
}
