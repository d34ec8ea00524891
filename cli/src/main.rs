//! The `cohortdb` command line: parses the command and runs it ([`commands`]).

use std::process::ExitCode;

use clap::Parser;

mod command_line;
mod commands;
mod demo;
mod output_format;
mod shared_args;

use command_line::{Cli, Command};
use commands::{admin, analysis, cohort, export, ingest, query, serve, store, worker};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    // Logs as RUST_LOG chooses them; one JSON object per line with COHORTDB_LOG_FORMAT=json.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr);
    if std::env::var("COHORTDB_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cohortdb: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if reader_went_away(e.as_ref()) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cohortdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `error` is, at any depth, a write to a closed pipe (`cohortdb ... | head`): then
/// the reader has what it wanted, and the command ends quietly as bcftools does.
fn reader_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

async fn run(command: Command) -> CliResult {
    match command {
        Command::Ingest(command) => ingest::run(command).await,
        Command::Cohort(command) => cohort::run(command).await,
        Command::Admin(command) => admin::run(command).await,
        Command::Af(args) => analysis::af(args).await,
        Command::Coverage(args) => analysis::coverage(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Carriers(args) => analysis::carriers(args).await,
        Command::Genotypes(args) => analysis::genotypes(args).await,
        Command::CaseControl(args) => analysis::case_control(args).await,
        Command::Assoc(args) => analysis::assoc(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Audit(args) => store::audit(args).await,
        Command::Samples(args) => store::samples(args).await,
        Command::Info(args) => store::info(args).await,
        Command::Demo { store } => demo::run(store).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "cohortdb", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { command } => {
            let mut page = <Cli as clap::CommandFactory>::command();
            let mut name = String::from("cohortdb");
            for part in &command {
                let Some(sub) = page.find_subcommand(part).cloned() else {
                    return Err(format!(
                        "no command {:?} (see cohortdb --help)",
                        command.join(" ")
                    )
                    .into());
                };
                name = format!("{name}-{part}");
                page = sub.name(name.clone());
            }
            clap_mangen::Man::new(page).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}
