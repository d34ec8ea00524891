//! `cohortdb ingest vcf|bam|phenotypes`.

use clap::Subcommand;
use cohortdb_ingest::phenotype_table::{ColumnType, PhenotypeOptions, ingest_phenotypes};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use cohortdb_store::progress::Progress;

use crate::CliResult;
use crate::shared_args::StoreArg;

#[derive(Subcommand)]
pub(crate) enum IngestCommand {
    /// Ingest VCF or BCF files (plain, gzip or BGZF; `-` for standard input) as one commit.
    Vcf {
        #[command(flatten)]
        store: StoreArg,
        /// FORMAT fields kept for non-reference calls (Integer or Float, Number 1, A or R),
        /// comma-separated; an empty value keeps none.
        #[arg(long, value_delimiter = ',', default_value = "DP,GQ,AD")]
        format_fields: Vec<String>,
        /// Cluster ingest: only part I of N of the inputs (records bucketed by contig and 100 kb
        /// bin); each part commits on its own, and re-running a committed part does nothing.
        #[arg(long, value_parser = cohortdb_ingest::Shard::parse)]
        shard: Option<cohortdb_ingest::Shard>,
        /// Only records whose POS lies in these regions (`chr20`, `chr20:1000-2000`,
        /// comma-separated; 1-based, inclusive); each region set commits on its own, and
        /// re-running a committed one does nothing. Combines with --shard.
        #[arg(long, value_delimiter = ',', value_parser = cohortdb_ingest::IngestRegion::parse)]
        region: Vec<cohortdb_ingest::IngestRegion>,
        /// This batch's samples are hom-ref at sites where it has no record (as `bcftools merge
        /// -0`); by default they are missing there.
        #[arg(long)]
        missing_as_ref: bool,
        /// Samples already in the store get this input's data in place of their old data
        /// (registered again under a new index; phenotypes and coverage move with them);
        /// without it a known sample is an error.
        #[arg(long)]
        replace: bool,
        /// gVCF: a reference block calls a sample hom-ref only where its GQ reaches this.
        #[arg(long)]
        gvcf_min_gq: Option<i32>,
        /// gVCF: a reference block calls a sample hom-ref only where its MIN_DP (or DP)
        /// reaches this.
        #[arg(long)]
        gvcf_min_dp: Option<i32>,
        /// Input files.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Ingest the read depth of BAM/CRAM files (one sample each, from the read groups' SM) as
    /// per-bin coverage bitmaps, with mosdepth's counting rules, as one commit.
    Bam {
        #[command(flatten)]
        store: StoreArg,
        /// Bin width in bases (mosdepth --by).
        #[arg(long, default_value_t = 1000)]
        bin_size: u32,
        /// Depth thresholds: a sample is covered in a bin when its mean depth there reaches one.
        #[arg(long, value_delimiter = ',', default_value = "10,20")]
        thresholds: Vec<u32>,
        /// Skip reads with a mapping quality below this (mosdepth -Q).
        #[arg(short = 'Q', long, default_value_t = 0)]
        mapq: u8,
        /// Skip reads with any of these SAM flags (mosdepth -F; default unmapped, secondary,
        /// QC-fail, duplicate).
        #[arg(short = 'F', long, default_value_t = 1796)]
        exclude_flags: u16,
        /// Reference FASTA for CRAM inputs.
        #[arg(long)]
        reference: Option<std::path::PathBuf>,
        /// BAM or CRAM files, coordinate-sorted.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Ingest a phenotype table (TSV, CSV or Parquet keyed by sample ID) as one commit;
    /// an existing table of the same name is replaced.
    Phenotypes {
        #[command(flatten)]
        store: StoreArg,
        /// Table name in SQL.
        #[arg(long, default_value = "phenotypes")]
        table: String,
        /// The column holding sample IDs.
        #[arg(long, default_value = "sample_id")]
        key: String,
        /// Column types, e.g. `age=integer,visit=date` (integer, float, boolean, string,
        /// date); other columns are inferred.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Store the table without rows of unknown sample IDs (reported) instead of refusing.
        #[arg(long)]
        drop_unknown: bool,
        /// The table file (.tsv/.txt tab-separated, .csv, .parquet).
        file: String,
    },
}

/// The local directory an ingest is about to create a store in, if it does not exist yet: a
/// first ingest that fails removes it again, so that it leaves nothing behind.
struct NewStoreDir(Option<std::path::PathBuf>);

impl NewStoreDir {
    fn before_opening(location: &str) -> Self {
        let local = match location.split_once("://") {
            None => Some(location),
            Some(("file", path)) => Some(path),
            Some(_) => None,
        };
        Self(
            local
                .map(std::path::PathBuf::from)
                .filter(|dir| !dir.exists()),
        )
    }

    /// `result`, after removing the new directory if it failed and nothing was committed.
    fn unless_failed<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        if let (Err(_), Some(dir)) = (&result, &self.0) {
            let committed = std::fs::read_dir(dir.join("_log"))
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if !committed {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        result
    }
}

pub(crate) async fn run(command: IngestCommand) -> CliResult {
    match command {
        IngestCommand::Vcf {
            store,
            format_fields,
            shard,
            region,
            missing_as_ref,
            replace,
            gvcf_min_gq,
            gvcf_min_dp,
            files,
        } => {
            let created = NewStoreDir::before_opening(&store.location);
            let store = Store::open_or_create(&store.location)?;
            let options = IngestOptions {
                progress: Progress::on_terminal(),
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
            let summary = created.unless_failed(ingest_vcf(&store, &files, &options).await)?;
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
        IngestCommand::Bam {
            store,
            bin_size,
            thresholds,
            mapq,
            exclude_flags,
            reference,
            files,
        } => {
            let created = NewStoreDir::before_opening(&store.location);
            let store = Store::open_or_create(&store.location)?;
            let options = cohortdb_ingest::CoverageOptions {
                depth: cohortdb_ingest::bam_depth::DepthOptions {
                    min_mapq: mapq,
                    exclude_flags,
                },
                bin_size,
                thresholds,
                reference,
                progress: Progress::on_terminal(),
            };
            let summary = created
                .unless_failed(cohortdb_ingest::ingest_bam(&store, &files, &options).await)?;
            eprintln!(
                "committed version {}: coverage of {} samples ({} new), {} contig files",
                summary.version, summary.samples, summary.samples_added, summary.files
            );
        }
        IngestCommand::Phenotypes {
            store,
            table,
            key,
            types,
            drop_unknown,
            file,
        } => {
            let store = Store::open(&store.location).await?;
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
            for note in &summary.text_columns {
                eprintln!("note: {note}");
            }
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
            let verb = if summary.replaced {
                "replaced"
            } else {
                "created"
            };
            eprintln!(
                "committed version {}: table {} {verb} with {} rows; columns {}",
                summary.version,
                options.table,
                summary.rows,
                columns.join(", ")
            );
        }
    }
    Ok(())
}
