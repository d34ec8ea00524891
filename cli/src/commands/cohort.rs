//! `cohortdb cohort save|list`: named cohorts.

use std::io::Write;

use clap::Subcommand;
use cohortdb_engine::cohort::named_cohorts::SavedMembers;
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
        /// The predicate over `samples` and `phenotypes`: the cohort follows the tables.
        #[arg(long = "where", required_unless_present = "samples_file")]
        predicate: Option<String>,
        /// Or a file of sample IDs, one per line (as `-S`): these participants, less any who
        /// withdraw. A server resolves the list once, not with every request.
        #[arg(short = 'S', long = "samples-file", conflicts_with = "predicate")]
        samples_file: Option<String>,
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
            samples_file,
        } => {
            let members = match (predicate, samples_file) {
                (Some(p), _) => SavedMembers::Predicate(p),
                (None, Some(file)) => match CohortSpec::from_file(&file)? {
                    CohortSpec::Include(ids) => SavedMembers::Samples(ids),
                    _ => {
                        return Err(invalid(format!(
                            "{file}: a saved list names its members (no leading ^)"
                        )));
                    }
                },
                (None, None) => return Err(invalid("give --where PREDICATE or -S FILE".into())),
            };
            let engine = CohortEngine::open(&store.location).await?;
            let (version, size) = engine.save_cohort(&name, members).await?;
            eprintln!("committed version {version}: cohort {name} ({size} samples now)");
        }
        CohortCommand::List { store } => {
            let engine = CohortEngine::open(&store.location).await?;
            let mut out = String::from("name\tsamples\tdefinition\n");
            for c in engine.named_cohorts().await? {
                let size = engine
                    .cohort(CohortSpec::Named(c.name.clone()))
                    .await?
                    .len();
                out.push_str(&format!("{}\t{size}\t{}\n", c.name, c.members.describe()));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
        }
    }
    Ok(())
}

fn invalid(reason: String) -> Box<dyn std::error::Error> {
    Box::new(cohortdb_engine::EngineError::InvalidArgument(reason))
}
