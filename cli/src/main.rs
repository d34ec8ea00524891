//! The `cohortdb` command line.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use cohortdb_engine::{CohortEngine, CohortSpec};
use cohortdb_ingest::phenotype_table::{ColumnType, PhenotypeOptions, ingest_phenotypes};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::DataFrame;

mod command_line;
mod demo;
mod export;
mod output_format;
mod serve;

use command_line::{AdminCommand, Cli, CohortCommand, Command, IngestCommand};
use output_format::write_batches;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Runs `df` and prints its rows as `format`.
async fn print_frame(format: output_format::OutputFormat, df: DataFrame) -> CliResult {
    let schema = df.schema().inner().clone();
    let batches = df.collect().await?;
    write_batches(format, &batches, schema, &mut std::io::stdout().lock())
}

/// Prints one batch as `format`.
fn print_batch(format: output_format::OutputFormat, batch: RecordBatch) -> CliResult {
    let schema = batch.schema();
    write_batches(format, &[batch], schema, &mut std::io::stdout().lock())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
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
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("cohortdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> CliResult {
    match command {
        Command::Ingest(IngestCommand::Vcf {
            store,
            format_fields,
            shard,
            region,
            missing_as_ref,
            replace,
            gvcf_min_gq,
            gvcf_min_dp,
            files,
        }) => {
            let store = Store::open_or_create(&store)?;
            let options = IngestOptions {
                progress: std::io::stderr().is_terminal(),
                format_fields: format_fields
                    .into_iter()
                    .filter(|f| !f.is_empty())
                    .collect(),
                shard,
                regions: region,
                missing_as_ref,
                replace,
                block_thresholds: cohortdb_ingest::BlockThresholds {
                    min_gq: gvcf_min_gq,
                    min_dp: gvcf_min_dp,
                },
                ..IngestOptions::default()
            };
            let summary = ingest_vcf(&store, &files, &options).await?;
            if summary.already_committed {
                eprintln!(
                    "this part of these inputs was committed at version {}; nothing to do",
                    summary.version
                );
                return Ok(());
            }
            eprintln!(
                "committed version {}: {} records, {} new samples, {} fragments",
                summary.version, summary.records, summary.samples_added, summary.fragments
            );
        }
        Command::Ingest(IngestCommand::Bam {
            store,
            bin_size,
            thresholds,
            mapq,
            exclude_flags,
            reference,
            files,
        }) => {
            let store = Store::open_or_create(&store)?;
            let options = cohortdb_ingest::CoverageOptions {
                depth: cohortdb_ingest::bam_depth::DepthOptions {
                    min_mapq: mapq,
                    exclude_flags,
                },
                bin_size,
                thresholds,
                reference,
            };
            let summary = cohortdb_ingest::ingest_bam(&store, &files, &options).await?;
            eprintln!(
                "committed version {}: coverage of {} samples ({} new), {} contig files",
                summary.version, summary.samples, summary.samples_added, summary.files
            );
        }
        Command::Ingest(IngestCommand::Phenotypes {
            store,
            table,
            key,
            types,
            drop_unknown,
            file,
        }) => {
            let store = Store::open(&store).await?;
            let types = types
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| {
                    let (name, kind) = t
                        .split_once('=')
                        .ok_or_else(|| format!("--types {t:?}: expected COLUMN=TYPE"))?;
                    Ok((name.to_string(), kind.parse::<ColumnType>()?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let options = PhenotypeOptions {
                table,
                key,
                types,
                drop_unknown,
            };
            let summary = ingest_phenotypes(&store, &file, &options).await?;
            if summary.unknown.0 > 0 {
                eprintln!(
                    "dropped {} rows of unknown sample IDs (first: {})",
                    summary.unknown.0,
                    summary.unknown.1.join(", ")
                );
            }
            let columns: Vec<String> = summary
                .columns
                .iter()
                .map(|(n, t)| format!("{n}:{t:?}").to_lowercase())
                .collect();
            eprintln!(
                "committed version {}: table {} {} with {} rows; columns {}",
                summary.version,
                options.table,
                if summary.replaced {
                    "replaced"
                } else {
                    "created"
                },
                summary.rows,
                columns.join(", ")
            );
        }
        Command::Cohort(CohortCommand::Save {
            store,
            name,
            predicate,
        }) => {
            let engine = CohortEngine::open(&store).await?;
            let (version, size) = engine.save_cohort(&name, &predicate).await?;
            eprintln!("committed version {version}: cohort {name} ({size} samples now)");
        }
        Command::Admin(AdminCommand::Withdraw {
            store,
            samples_file,
            mut sample_ids,
        }) => {
            if let Some(path) = samples_file {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read samples file {path}: {e}"))?;
                sample_ids.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
            }
            if sample_ids.is_empty() {
                return Err("admin withdraw: name at least one sample ID (or -S FILE)".into());
            }
            let engine = CohortEngine::open(&store).await?;
            let done = engine.withdraw(&sample_ids).await?;
            println!(
                "withdrew {} participant(s) ({} already withdrawn); store version {}",
                done.withdrawn, done.already, done.version
            );
        }
        Command::Admin(AdminCommand::Purge { store }) => {
            let engine = CohortEngine::open(&store).await?;
            let done = engine.purge().await?;
            println!(
                "rewrote {} fragment(s), {} sample registry file(s), {} phenotype file(s), \
                 {} coverage file(s); store version {}",
                done.fragments,
                done.sample_files,
                done.phenotype_files,
                done.coverage_files,
                done.version
            );
        }
        Command::Admin(AdminCommand::Compact {
            store,
            contig,
            max_bytes,
        }) => {
            let engine = CohortEngine::open(&store).await?;
            let done = engine.compact(contig.as_deref(), max_bytes).await?;
            println!(
                "merged {} fragment(s) into {} and {} coverage file(s) into {}; store version {}",
                done.before, done.after, done.coverage_before, done.coverage_after, done.version
            );
        }
        Command::Admin(AdminCommand::Vacuum { store, older_than }) => {
            let store = Store::open(&store).await?;
            let done = store.vacuum(older_than).await?;
            println!(
                "deleted {} removed file(s) and {} never-committed file(s); kept {}",
                done.removed.len(),
                done.orphans.len(),
                done.kept
            );
        }
        Command::Cohort(CohortCommand::List { store }) => {
            let engine = CohortEngine::open(&store).await?;
            let mut out = String::from("name\tsamples\tpredicate\n");
            for c in engine.named_cohorts().await? {
                let size = engine
                    .cohort(&CohortSpec::Predicate(c.predicate.clone()))
                    .await?
                    .len();
                out.push_str(&format!("{}\t{size}\t{}\n", c.name, c.predicate));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
        }
        Command::Carriers {
            store,
            variant,
            cohort,
            columns,
            format,
        } => {
            let engine = CohortEngine::open(&store).await?;
            let variant = cohortdb_engine::ops::carriers::VariantSpec::parse(&variant)?;
            let set = engine
                .cohort(&CohortSpec::parse(cohort.as_deref().unwrap_or_default()))
                .await?;
            let columns: Vec<String> = columns.into_iter().filter(|c| !c.is_empty()).collect();
            print_batch(format, engine.carriers(&variant, &set, &columns).await?)?;
        }
        Command::Genotypes {
            store,
            sample,
            regions,
            format,
        } => {
            let engine = CohortEngine::open(&store).await?;
            let regions = regions.parse()?;
            let df = engine.sample_genotypes(&regions, &sample).await?;
            print_frame(format, df).await?;
        }
        Command::CaseControl {
            store,
            regions,
            cases,
            controls,
            format,
        } => {
            let engine = CohortEngine::open(&store).await?;
            let regions = regions.parse()?;
            let sets = engine
                .cohorts(&[CohortSpec::parse(&cases), CohortSpec::parse(&controls)])
                .await?;
            let (cases, controls) = (&sets[0], &sets[1]);
            let batches = engine.case_control(&regions, cases, controls).await?;
            let schema = cohortdb_engine::ops::case_control::case_control_schema();
            write_batches(format, &batches, schema, &mut std::io::stdout().lock())?;
        }
        Command::Af {
            store,
            regions,
            samples,
            format,
        } => {
            let engine = CohortEngine::open(&store).await?;
            let regions = regions.parse()?;
            let (_, set) = samples.resolve(&engine).await?;
            print_batch(format, engine.allele_frequencies(&regions, &set).await?)?;
        }
        Command::Coverage {
            store,
            regions,
            samples,
            format,
        } => {
            let engine = CohortEngine::open(&store).await?;
            let regions = regions.parse()?;
            let (_, set) = samples.resolve(&engine).await?;
            print_batch(format, engine.coverage(&regions, &set).await?)?;
        }
        Command::Export {
            store,
            regions,
            samples,
            output_type,
            output,
            write_index,
        } => {
            export::run(
                &store,
                &regions,
                &samples,
                output_type,
                &output,
                write_index,
            )
            .await?
        }
        Command::Assoc {
            store,
            regions,
            trait_column,
            covar,
            model,
            table,
            cohort,
            format,
        } => {
            use cohortdb_engine::ops::association::{Model, association_schema};
            let engine = CohortEngine::open(&store).await?;
            let regions = regions.parse()?;
            let set = engine
                .cohort(&CohortSpec::parse(cohort.as_deref().unwrap_or_default()))
                .await?;
            let model = model.map(|m| match m {
                command_line::ModelChoice::Linear => Model::Linear,
                command_line::ModelChoice::Logistic => Model::Logistic,
            });
            let covar: Vec<String> = covar.into_iter().filter(|c| !c.is_empty()).collect();
            let batches = engine
                .association(&regions, &set, &table, &trait_column, &covar, model)
                .await?;
            write_batches(
                format,
                &batches,
                association_schema(),
                &mut std::io::stdout().lock(),
            )?;
        }
        Command::Query { store, format, sql } => {
            let engine = CohortEngine::open(&store).await?;
            let df = engine.sql_session()?.sql(&sql).await?;
            print_frame(format, df).await?;
        }
        Command::Serve {
            store,
            listen,
            tokens,
            min_count,
            max_message_bytes,
            cache_mib,
            refresh_secs,
            scan_threads,
            noise_sd,
            privacy_budget,
            dev_anonymous,
        } => {
            use cohortdb_server::ServerOptions;
            let options = ServerOptions {
                min_count,
                noise_sd,
                privacy_budget,
                max_message_bytes,
                anonymous: dev_anonymous.then(|| cohortdb_server::Principal {
                    name: "anonymous".into(),
                    project: "development".into(),
                    tier: cohortdb_engine::Tier::Admin,
                }),
                refresh_interval: std::time::Duration::try_from_secs_f64(refresh_secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("--refresh-secs must be a positive number of seconds")?,
                scan_threads: scan_threads.unwrap_or(ServerOptions::default().scan_threads),
                ..Default::default()
            };
            serve::run(&store, &listen, tokens.as_deref(), cache_mib << 20, options).await?;
        }
        Command::Audit { store, verify } => {
            let store = Store::open(&store).await?;
            let log = cohortdb_store::audit_log::AuditLog::new(store.location().clone());
            if verify {
                let n = log.verify().await?;
                println!("audit trail intact: {n} records");
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "seq\ttime\tprincipal\tproject\ttier\tmethod\trows\tdecision\trequest"
                )?;
                for r in log.records().await? {
                    let e = &r.event;
                    let clean = |t: &str| t.replace(['\t', '\n'], " ");
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        r.seq,
                        cohortdb_store::audit_log::iso8601(r.time_unix_ms),
                        e.principal,
                        e.project,
                        e.tier,
                        e.method,
                        e.rows,
                        clean(&e.decision),
                        clean(&e.request)
                    )?;
                }
            }
        }
        Command::Samples { store } => {
            let engine = CohortEngine::open(&store).await?;
            let mut out = String::from("sample_idx\tsample_id\tsource\n");
            for s in engine.samples() {
                out.push_str(&format!(
                    "{}\t{}\t{}\n",
                    s.sample_idx, s.sample_id, s.source
                ));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
        }
        Command::Info { store } => {
            let engine = CohortEngine::open(&store).await?;
            let state = &engine.snapshot().state;
            let fragments: Vec<_> = state.variant_fragments().collect();
            let mut out = format!(
                "store\t{store}\nversion\t{}\nformat_version\t{}\nsamples\t{}\nfragments\t{}\n\
                 variant_rows\t{}\nbytes\t{}\nwithdrawn\t{}\n",
                state.version,
                cohortdb_store::log_entry::FORMAT_VERSION,
                engine.samples().len(),
                fragments.len(),
                fragments.iter().map(|f| f.rows).sum::<u64>(),
                state.files.values().map(|f| f.bytes).sum::<u64>(),
                state.withdrawn.len()
            );
            for contig in state.contigs() {
                let rows: u64 = fragments
                    .iter()
                    .filter(|f| f.contig.as_deref() == Some(&contig))
                    .map(|f| f.rows)
                    .sum();
                out.push_str(&format!("contig\t{contig}\t{rows}\n"));
            }
            for (table, file) in state.named_files(cohortdb_store::log_entry::FileKind::Phenotypes)
            {
                out.push_str(&format!("table\t{table}\t{}\n", file.rows));
            }
            let count = |kind: cohortdb_store::log_entry::FileKind| {
                state.files.values().filter(|f| f.kind == kind).count()
            };
            out.push_str(&format!(
                "coverage_files\t{}\nref_block_files\t{}\nreplaced\t{}\n",
                count(cohortdb_store::log_entry::FileKind::Coverage),
                count(cohortdb_store::log_entry::FileKind::RefBlocks),
                state.retired.len()
            ));
            std::io::stdout().lock().write_all(out.as_bytes())?;
        }
        Command::Demo { store } => demo::run(store).await?,
    }
    Ok(())
}
