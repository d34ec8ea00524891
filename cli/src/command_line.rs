//! The command line: subcommands and their options (the contract of README.md).

use clap::{Args, Parser, Subcommand};
use cohortdb_engine::{CohortEngine, CohortSpec, Region};

use crate::output_format::OutputFormat;

#[derive(Parser)]
#[command(
    name = "cohortdb",
    version,
    about = "A genomic variant store and query engine for biobank cohorts"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Ingest data into a store.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Named cohorts.
    #[command(subcommand)]
    Cohort(CohortCommand),
    /// Store administration: consent withdrawal, purge, vacuum, compaction.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Allele counts and frequencies per ALT allele in regions and a sample set.
    Af {
        /// Store location (directory, file://, s3://bucket/prefix, memory://name).
        #[arg(long)]
        store: String,
        #[command(flatten)]
        regions: RegionArgs,
        #[command(flatten)]
        samples: SampleArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// Fraction of a cohort covered per bin at each depth threshold (from `ingest bam`).
    Coverage {
        /// Store location.
        #[arg(long)]
        store: String,
        #[command(flatten)]
        regions: RegionArgs,
        #[command(flatten)]
        samples: SampleArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// Write regions x samples as VCF or BCF (GT, with AC/AN over the written samples) that
    /// bcftools reads back, with a tabix or CSI index.
    Export {
        /// Store location.
        #[arg(long)]
        store: String,
        #[command(flatten)]
        regions: RegionArgs,
        #[command(flatten)]
        samples: SampleArgs,
        /// Output type: v (VCF), z (bgzipped VCF), b (BCF).
        #[arg(short = 'O', long = "output-type", default_value = "v")]
        output_type: ExportType,
        /// Output file; - for standard output.
        #[arg(short = 'o', long = "output", default_value = "-")]
        output: String,
        /// Index written beside the output: tbi or csi (default tbi for -O z, csi for -O b),
        /// or none. Not for standard output.
        #[arg(long = "write-index")]
        write_index: Option<IndexChoice>,
    },
    /// Carriers of a variant (non-reference calls) with chosen phenotype columns.
    Carriers {
        /// Store location.
        #[arg(long)]
        store: String,
        /// The variant: CHR:POS (every ALT there) or CHR:POS:REF:ALT.
        #[arg(short = 'r', long = "variant")]
        variant: String,
        /// A cohort predicate over `samples` and `phenotypes` (default: everyone).
        #[arg(long)]
        cohort: Option<String>,
        /// Phenotype columns to list, comma-separated.
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// One sample's non-reference calls in regions.
    Genotypes {
        /// Store location.
        #[arg(long)]
        store: String,
        /// The sample ID.
        #[arg(long)]
        sample: String,
        #[command(flatten)]
        regions: RegionArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// Case/control counts per ALT allele with the allelic odds ratio, Fisher's exact p and the
    /// allelic chi-square p.
    CaseControl {
        /// Store location.
        #[arg(long)]
        store: String,
        #[command(flatten)]
        regions: RegionArgs,
        /// The cases: a cohort predicate over `samples` and `phenotypes`.
        #[arg(long)]
        cases: String,
        /// The controls: a cohort predicate.
        #[arg(long)]
        controls: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// Per-variant regression of a phenotype on ALT dosage with covariates: linear for a
    /// quantitative trait, logistic for a binary one (`chrom pos ref alt n beta se p`).
    Assoc {
        /// Store location.
        #[arg(long)]
        store: String,
        #[command(flatten)]
        regions: RegionArgs,
        /// The trait: a column of the phenotype table.
        #[arg(long = "trait")]
        trait_column: String,
        /// Covariate columns, comma-separated (strings become level indicators).
        #[arg(long, value_delimiter = ',')]
        covar: Vec<String>,
        /// linear or logistic (default: logistic for a boolean or 0/1 trait, else linear).
        #[arg(long, value_enum)]
        model: Option<ModelChoice>,
        /// The phenotype table holding the trait and covariates.
        #[arg(long, default_value = "phenotypes")]
        table: String,
        /// Only these samples: a cohort predicate or @NAME (default: everyone).
        #[arg(long)]
        cohort: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
    },
    /// Run SQL over the store (tables: variants, samples, phenotype tables by name).
    Query {
        /// Store location.
        #[arg(long)]
        store: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "tsv")]
        format: OutputFormat,
        /// The SQL statement.
        sql: String,
    },
    /// Serve the store over gRPC (cohortdb.v1), Arrow Flight SQL, health and reflection on
    /// one port, with bearer tokens, access tiers and an audit trail.
    Serve {
        /// Store location.
        #[arg(long)]
        store: String,
        /// Address to listen on (port 0 picks a free port, printed on standard error).
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: String,
        /// The tokens file (TOML `[[token]]` entries: token, name, project, tier).
        #[arg(long, required_unless_present = "dev_anonymous")]
        tokens: Option<String>,
        /// Counts from 1 to this minus 1 are suppressed for the aggregate tier.
        #[arg(long, default_value_t = 20)]
        min_count: u32,
        /// The largest gRPC message decoded or encoded, in bytes.
        #[arg(long, default_value_t = 16 << 20)]
        max_message_bytes: usize,
        /// Memory for decoded variant rows (counts and carriers read them), in MiB; the least
        /// recently used row groups are dropped beyond it.
        #[arg(long, default_value_t = 2048)]
        cache_mib: usize,
        /// Seconds between looks for a newer store version (new data, withdrawals); requests
        /// after it see that version.
        #[arg(long, default_value_t = 5.0)]
        refresh_secs: f64,
        /// Threads of the scan lane, which runs everything but point lookups at a lower OS
        /// priority so that lookups are answered first (default: one per core; 0 runs scans
        /// on the server's own threads, with no priority between them).
        #[arg(long)]
        scan_threads: Option<usize>,
        /// The standard deviation of the noise on every count the aggregate tier sees.
        #[arg(long, default_value_t = cohortdb_engine::policy::disclosure_control::DEFAULT_NOISE_SD)]
        noise_sd: f64,
        /// The privacy budget (zCDP rho) of each project whose `[projects.NAME]` in the tokens
        /// file sets no `privacy_budget`.
        #[arg(long, default_value_t = cohortdb_engine::policy::disclosure_control::DEFAULT_PRIVACY_BUDGET)]
        privacy_budget: f64,
        /// Development only: requests without a token run as an admin named "anonymous".
        #[arg(long)]
        dev_anonymous: bool,
    },
    /// List the audit trail of a store, or verify its hash chain.
    Audit {
        /// Store location.
        #[arg(long)]
        store: String,
        /// Verify the chain instead of listing the records.
        #[arg(long)]
        verify: bool,
    },
    /// List the store's samples.
    Samples {
        /// Store location.
        #[arg(long)]
        store: String,
    },
    /// Describe the store: version, samples, contigs, fragments, phenotype tables.
    Info {
        /// Store location.
        #[arg(long)]
        store: String,
    },
    /// Ingest bundled data into a new store and answer cohort queries on it.
    Demo {
        /// Where to create the demo store (default: a temporary directory).
        #[arg(long)]
        store: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum CohortCommand {
    /// Save (or redefine) a named cohort as one commit; use it as `--cohort @NAME`.
    Save {
        /// Store location.
        #[arg(long)]
        store: String,
        /// The name (letters, digits, _ and -).
        name: String,
        /// The predicate over `samples` and `phenotypes`.
        #[arg(long = "where")]
        predicate: String,
    },
    /// List the saved cohorts with their current sizes.
    List {
        /// Store location.
        #[arg(long)]
        store: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Withdraw participants' consent (one commit): from the next snapshot on they are absent
    /// from every read path.
    Withdraw {
        /// Store location.
        #[arg(long)]
        store: String,
        /// A file of sample IDs, one per line (bcftools' -S form), withdrawn too.
        #[arg(short = 'S', long = "samples-file")]
        samples_file: Option<String>,
        /// Sample IDs.
        sample_ids: Vec<String>,
    },
    /// Rewrite every file that still holds a withdrawn participant without them (one
    /// commit); `vacuum` then deletes the old files.
    Purge {
        /// Store location.
        #[arg(long)]
        store: String,
    },
    /// Merge a contig's fragments (every contig's by default) into fewer, in one commit;
    /// every answer stays the same.
    Compact {
        /// Store location.
        #[arg(long)]
        store: String,
        /// Only this contig.
        #[arg(long)]
        contig: Option<String>,
        /// The most stored bytes merged into one fragment (bounds memory too).
        #[arg(long, default_value_t = cohortdb_engine::maintenance::compaction::DEFAULT_COMPACT_BYTES)]
        max_bytes: u64,
    },
    /// Delete files no snapshot younger than the grace period needs (removed by older
    /// commits, or never committed).
    Vacuum {
        /// Store location.
        #[arg(long)]
        store: String,
        /// Grace period: `7d`, `12h`, `30m`, `45s` (0s deletes everything not live).
        #[arg(long = "older-than", value_parser = parse_duration)]
        older_than: std::time::Duration,
    },
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

#[derive(Subcommand)]
pub(crate) enum IngestCommand {
    /// Ingest VCF or BCF files (plain, gzip or BGZF; `-` for standard input) as one commit.
    Vcf {
        /// Store location (created when missing).
        #[arg(long)]
        store: String,
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
        /// Store location (created when missing).
        #[arg(long)]
        store: String,
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
        /// Store location.
        #[arg(long)]
        store: String,
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

/// `-O` of `export`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportType {
    /// VCF.
    V,
    /// BGZF-compressed VCF.
    Z,
    /// BCF.
    B,
}

/// `--model` of `assoc`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ModelChoice {
    /// Ordinary least squares.
    Linear,
    /// Logistic regression.
    Logistic,
}

/// `--write-index` of `export`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum IndexChoice {
    /// Tabix.
    Tbi,
    /// CSI.
    Csi,
    /// No index.
    None,
}

/// `-s LIST | -S FILE | --cohort PREDICATE`: the samples an operation covers.
#[derive(Args)]
pub(crate) struct SampleArgs {
    /// Samples, comma-separated; a leading ^ excludes them.
    #[arg(short = 's', long = "samples", conflicts_with = "samples_file")]
    samples: Option<String>,
    /// File of sample IDs, one per line; ^FILE excludes them.
    #[arg(short = 'S', long = "samples-file", conflicts_with = "samples")]
    samples_file: Option<String>,
    /// A cohort: SQL predicate over `samples` and the `phenotypes` table columns, e.g.
    /// "sex = 'F' AND age BETWEEN 50 AND 60", or @NAME for a saved cohort.
    #[arg(long, conflicts_with_all = ["samples", "samples_file"])]
    cohort: Option<String>,
}

impl SampleArgs {
    /// The cohort as given, and the participants it resolves to.
    pub(crate) async fn resolve(
        &self,
        engine: &CohortEngine,
    ) -> cohortdb_engine::Result<(CohortSpec, cohortdb_engine::Cohort)> {
        let spec = match (&self.cohort, &self.samples, &self.samples_file) {
            (Some(cohort), _, _) => CohortSpec::parse(cohort),
            (None, Some(s), _) => CohortSpec::from_list(s),
            (None, None, Some(f)) => CohortSpec::from_file(f)?,
            (None, None, None) => CohortSpec::All,
        };
        let cohort = engine.cohort(&spec).await?;
        Ok((spec, cohort))
    }
}

/// `-r REGIONS | -R FILE`, as bcftools takes them.
#[derive(Args)]
pub(crate) struct RegionArgs {
    /// Regions, comma-separated: chr20, chr20:1000, chr20:1000-2000 (1-based, inclusive).
    #[arg(short = 'r', long = "regions", conflicts_with = "regions_file")]
    regions: Option<String>,
    /// Regions file: CHROM POS or CHROM BEG END (1-based), or BED (0-based) for *.bed.
    #[arg(short = 'R', long = "regions-file")]
    regions_file: Option<String>,
}

impl RegionArgs {
    /// The regions given; empty (every contig) when neither option is.
    pub(crate) fn parse(&self) -> cohortdb_engine::Result<Vec<Region>> {
        match (&self.regions, &self.regions_file) {
            (Some(r), _) => Region::parse_list(r),
            (None, Some(f)) => Region::read_file(f),
            (None, None) => Ok(Vec::new()),
        }
    }
}
