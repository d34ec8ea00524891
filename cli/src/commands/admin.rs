//! `cohortdb admin withdraw|purge|compact|vacuum`.

use clap::Subcommand;
use cohortdb_engine::CohortEngine;
use cohortdb_engine::maintenance::batch_tiers::BatchPolicy;
use cohortdb_engine::maintenance::compaction::{CompactOptions, CompactionPlan};
use cohortdb_store::Store;
use cohortdb_store::progress::Progress;

use crate::CliResult;
use crate::shared_args::StoreArg;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Withdraw participants' consent (one commit): from the next snapshot on they are absent
    /// from every read path.
    Withdraw {
        #[command(flatten)]
        store: StoreArg,
        /// A file of sample IDs, one per line (bcftools' -S form), withdrawn too.
        #[arg(short = 'S', long = "samples-file")]
        samples_file: Option<String>,
        /// Sample IDs.
        sample_ids: Vec<String>,
    },
    /// Rewrite every file that still holds a withdrawn participant without them (one
    /// commit); `vacuum` then deletes the old files.
    Purge {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Merge a contig's fragments (every contig's by default) into fewer, and with
    /// --across-batches batches into fewer, in one commit; every answer stays the same.
    Compact {
        #[command(flatten)]
        store: StoreArg,
        /// Only this contig.
        #[arg(long, conflicts_with = "across_batches")]
        contig: Option<String>,
        /// The most stored bytes merged into one fragment (bounds memory too); across
        /// batches, the most written into one.
        #[arg(long, default_value_t = cohortdb_engine::maintenance::compaction::DEFAULT_COMPACT_BYTES)]
        max_bytes: u64,
        /// Also merge adjacent batches (every contig of them): `tiered` (the default) keeps
        /// at most fan-in - 1 batches per size tier, so queries stay fast as batches keep
        /// coming; `all` merges them into one.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "tiered")]
        across_batches: Option<AcrossBatches>,
        /// Batches of one size tier that merge into one (`--across-batches tiered`).
        #[arg(long, default_value_t = cohortdb_engine::maintenance::batch_tiers::DEFAULT_FAN_IN as u16,
              value_parser = clap::value_parser!(u16).range(2..))]
        fan_in: u16,
        /// Print what would be merged (one line per new file) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete files no snapshot younger than the grace period needs (removed by older
    /// commits, or never committed).
    Vacuum {
        #[command(flatten)]
        store: StoreArg,
        /// Grace period: `7d`, `12h`, `30m`, `45s` (0s deletes everything not live).
        #[arg(long = "older-than", value_parser = parse_duration)]
        older_than: std::time::Duration,
    },
}

/// How `admin compact --across-batches` merges batches.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum AcrossBatches {
    /// Size-tiered: fan-in batches of one tier into one of the next.
    Tiered,
    /// Every run of adjacent batches into one.
    All,
}

/// `7d`, `12h`, `30m`, `45s` or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 7d, 12h, 30m or 45s"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

pub(crate) async fn run(command: AdminCommand) -> CliResult {
    match command {
        AdminCommand::Withdraw {
            store,
            samples_file,
            mut sample_ids,
        } => {
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
            let engine = CohortEngine::open(&store.location).await?;
            let done = engine.withdraw(&sample_ids).await?;
            println!(
                "withdrew {} participant(s) ({} already withdrawn); store version {}",
                done.withdrawn, done.already, done.version
            );
        }
        AdminCommand::Purge { store } => {
            let engine = CohortEngine::open(&store.location)
                .await?
                .with_progress(Progress::on_terminal());
            let done = engine.purge().await?;
            println!(
                "rewrote {} fragment(s), {} sample registry file(s), {} phenotype file(s), \
                 {} coverage file(s), {} saved cohort(s); store version {}",
                done.fragments,
                done.sample_files,
                done.phenotype_files,
                done.coverage_files,
                done.cohort_files,
                done.version
            );
        }
        AdminCommand::Compact {
            store,
            contig,
            max_bytes,
            across_batches,
            fan_in,
            dry_run,
        } => {
            let options = CompactOptions {
                contig,
                max_bytes,
                across_batches: across_batches.map(|a| match a {
                    AcrossBatches::Tiered => BatchPolicy::Tiered {
                        fan_in: usize::from(fan_in),
                    },
                    AcrossBatches::All => BatchPolicy::All,
                }),
            };
            let engine = CohortEngine::open(&store.location)
                .await?
                .with_progress(Progress::on_terminal());
            if dry_run {
                let plan = engine.compaction_plan(&options)?;
                print_plan(&plan);
                println!(
                    "would merge {} batch(es) into {} ({} fragment(s)), {} fragment(s) into {} \
                     and {} coverage file(s) into {}; store unchanged at version {}",
                    plan.batches.iter().map(|m| m.batches.len()).sum::<usize>(),
                    plan.batches.len(),
                    plan.batches
                        .iter()
                        .map(|m| m.fragments.len())
                        .sum::<usize>(),
                    plan.fragments.iter().map(Vec::len).sum::<usize>(),
                    plan.fragments.len(),
                    plan.coverage.iter().map(Vec::len).sum::<usize>(),
                    plan.coverage.len(),
                    engine.snapshot().version()
                );
            } else {
                let done = engine.compact(&options).await?;
                println!(
                    "merged {} batch(es) into {}, {} fragment(s) into {} and {} coverage \
                     file(s) into {}; store version {}",
                    done.batches_before,
                    done.batches_after,
                    done.before,
                    done.after,
                    done.coverage_before,
                    done.coverage_after,
                    done.version
                );
            }
        }
        AdminCommand::Vacuum { store, older_than } => {
            let store = Store::open(&store.location).await?;
            let done = store.vacuum(older_than).await?;
            println!(
                "deleted {} removed file(s) and {} never-committed file(s); kept {}",
                done.removed.len(),
                done.orphans.len(),
                done.kept
            );
        }
    }
    Ok(())
}

/// One line per merge a compaction would make: what it merges, where, and how much (a batch
/// merge writes fragments of every contig, about `--max-bytes` each).
fn print_plan(plan: &CompactionPlan) {
    println!("kind\tcontig\tsamples\tfiles\tstored_bytes");
    let range = |[start, end]: [u32; 2]| format!("{start}-{}", end.saturating_sub(1));
    for merge in &plan.batches {
        println!(
            "batches\t*\t{}\t{}\t{}",
            merge
                .batches
                .iter()
                .map(|b| range(*b))
                .collect::<Vec<_>>()
                .join(","),
            merge.fragments.len(),
            merge.fragments.iter().map(|f| f.bytes).sum::<u64>()
        );
    }
    let groups = plan
        .fragments
        .iter()
        .map(|g| ("variants", g))
        .chain(plan.coverage.iter().map(|g| ("coverage", g)));
    for (kind, group) in groups {
        let first = &group[0];
        let samples = match (kind, first.sample_range) {
            ("variants", Some(samples)) => range(samples),
            _ => "all".to_string(),
        };
        println!(
            "{kind}\t{}\t{samples}\t{}\t{}",
            first.contig.as_deref().unwrap_or("."),
            group.len(),
            group.iter().map(|f| f.bytes).sum::<u64>()
        );
    }
}
