//! What a store holds: `info`, `samples`, `audit`.

use std::io::Write;

use clap::Args;
use cohortdb_engine::CohortEngine;
use cohortdb_store::Store;
use cohortdb_store::audit_log::{AuditLog, iso8601};

use crate::CliResult;
use crate::shared_args::StoreArg;

/// `audit`.
#[derive(Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Verify the chain instead of listing the records.
    #[arg(long)]
    verify: bool,
    /// Rotate the record files whose every record is older than DAYS into one compressed
    /// archive under _audit/archive (the newest file stays live; the chain runs through the
    /// archives, and --verify checks them too). 0 archives every file but the newest.
    #[arg(long, value_name = "DAYS", conflicts_with = "verify")]
    archive_older_than: Option<u64>,
}

pub(crate) async fn audit(args: AuditArgs) -> CliResult {
    let store = Store::open(&args.store.location).await?;
    let log = AuditLog::new(store.location().clone());
    if args.verify {
        let n = log.verify().await?;
        println!("audit trail intact: {n} records");
        return Ok(());
    }
    if let Some(days) = args.archive_older_than {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let rotation = log
            .archive(now.saturating_sub(days.saturating_mul(86_400_000)))
            .await?;
        match rotation.archive {
            Some(span) => println!(
                "archived records {} to {} into {} ({} files removed, {} live)",
                span.first,
                span.last,
                span.relative_path(),
                rotation.files_removed,
                rotation.files_left
            ),
            None => println!(
                "no record file older than {days} days to archive ({} files removed, {} live)",
                rotation.files_removed, rotation.files_left
            ),
        }
        return Ok(());
    }
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
            iso8601(r.time_unix_ms),
            e.principal,
            e.project,
            e.tier,
            e.method,
            e.rows,
            clean(&e.decision),
            clean(&e.request)
        )?;
    }
    Ok(())
}

pub(crate) async fn samples(store: StoreArg) -> CliResult {
    let engine = CohortEngine::open(&store.location).await?;
    let mut out = String::from("sample_idx\tsample_id\tsource\n");
    for s in engine.samples() {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            s.sample_idx, s.sample_id, s.source
        ));
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// `info`: the engine's [`cohortdb_engine::store_info::StoreInfo`], one `key<TAB>value` line
/// each (contigs and tables one line each).
pub(crate) async fn info(store: StoreArg) -> CliResult {
    let engine = CohortEngine::open(&store.location).await?;
    let info = engine.info().await?;
    let mut out = format!(
        "store\t{}\nversion\t{}\nformat_version\t{}\nsamples\t{}\nwithdrawn\t{}\nreplaced\t{}\n\
         fragments\t{}\nvariant_rows\t{}\nbytes\t{}\n",
        info.location,
        info.version,
        info.format_version,
        info.samples,
        info.withdrawn,
        info.replaced,
        info.fragments,
        info.variant_rows(),
        info.bytes,
    );
    for (contig, rows) in &info.contigs {
        out.push_str(&format!("contig\t{contig}\t{rows}\n"));
    }
    for (table, rows) in &info.phenotype_tables {
        out.push_str(&format!("table\t{table}\t{rows}\n"));
    }
    for name in &info.named_cohorts {
        out.push_str(&format!("cohort\t{name}\n"));
    }
    out.push_str(&format!(
        "coverage_files\t{}\nref_block_files\t{}\n",
        info.coverage_files, info.ref_block_files
    ));
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
