//! Options several commands share: the store, regions, samples and output format.

use clap::Args;
use cohortdb_engine::{CohortEngine, CohortSpec, Region};

use crate::output_format::OutputFormat;

/// `--store LOCATION`.
#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArg {
    /// Store location: a directory, file://, s3://bucket/prefix or memory://name (ingest
    /// creates it when missing).
    #[arg(long = "store", value_name = "STORE", env = "COHORTDB_STORE")]
    pub(crate) location: String,
}

/// `--format`.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct FormatArg {
    /// Output format.
    #[arg(long = "format", value_enum, default_value = "tsv")]
    pub(crate) format: OutputFormat,
}

/// `-s LIST | -S FILE | --cohort PREDICATE`: the samples an operation covers.
#[derive(Args, Debug, Clone)]
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
    /// The cohort as given.
    pub(crate) fn spec(&self) -> cohortdb_engine::Result<CohortSpec> {
        Ok(match (&self.cohort, &self.samples, &self.samples_file) {
            (Some(cohort), _, _) => CohortSpec::parse(cohort),
            (None, Some(s), _) => CohortSpec::from_list(s),
            (None, None, Some(f)) => CohortSpec::from_file(f)?,
            (None, None, None) => CohortSpec::All,
        })
    }

    /// The cohort as given, and the participants it resolves to.
    pub(crate) async fn resolve(
        &self,
        engine: &CohortEngine,
    ) -> cohortdb_engine::Result<(CohortSpec, cohortdb_engine::Cohort)> {
        let spec = self.spec()?;
        let cohort = engine.cohort(&spec).await?;
        warn_withdrawn(engine, &cohort);
        Ok((spec, cohort))
    }
}

/// Tells on stderr which participants a sample list named that withdrew consent (and that
/// the answer leaves out).
pub(crate) fn warn_withdrawn(engine: &CohortEngine, cohort: &cohortdb_engine::Cohort) {
    let named = cohort.withdrawn_named();
    if named.is_empty() {
        return;
    }
    const SHOWN: usize = 20;
    let ids: Vec<&str> = engine
        .sample_records()
        .iter()
        .filter(|s| named.contains(s.sample_idx))
        .take(SHOWN)
        .map(|s| s.sample_id.as_str())
        .collect();
    let more = match named.len() as usize {
        n if n > SHOWN => format!(" and {} more", n - SHOWN),
        _ => String::new(),
    };
    eprintln!(
        "warning: {} named sample(s) withdrew consent and are left out: {}{more}",
        named.len(),
        ids.join(", ")
    );
}

/// `-r REGIONS | -R FILE`, as bcftools takes them.
#[derive(Args, Debug, Clone)]
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

/// `--workers HOST:PORT,... --secret-file FILE`: plan onto the workers of a cluster.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ClusterArgs {
    /// Workers (`cohortdb worker`) to run the query on, comma-separated host:port; each must
    /// run this same build and serve the same store.
    #[arg(long, value_delimiter = ',', requires = "secret_file")]
    workers: Vec<String>,
    /// The cluster's secret (the file the workers were given): sent with every plan.
    #[arg(long, value_name = "FILE", requires = "workers")]
    secret_file: Option<String>,
}

impl ClusterArgs {
    /// Whether workers are given.
    pub(crate) fn given(&self) -> bool {
        !self.workers.is_empty()
    }

    /// `engine`, planning onto the workers when some are given.
    pub(crate) async fn attach(
        &self,
        engine: CohortEngine,
    ) -> cohortdb_engine::Result<CohortEngine> {
        if self.workers.is_empty() {
            return Ok(engine);
        }
        let Some(secret) = &self.secret_file else {
            return Err(cohortdb_engine::EngineError::InvalidArgument(
                "--workers needs the cluster's --secret-file".into(),
            ));
        };
        let secret = cohortdb_engine::cluster::cluster_secret::ClusterSecret::from_file(secret)?;
        let pool =
            cohortdb_engine::cluster::worker_pool::WorkerPool::connect(&self.workers, secret)
                .await?;
        Ok(engine.with_workers(pool))
    }
}

/// `result` of a query or operation of `engine`, a worker lost during it told as such
/// ([`cohortdb_engine::EngineError::WorkerLost`]).
pub(crate) async fn told<T>(
    engine: &CohortEngine,
    result: cohortdb_engine::Result<T>,
) -> cohortdb_engine::Result<T> {
    match result {
        Err(cohortdb_engine::EngineError::DataFusion(e)) => match engine.lost_node(&e).await {
            Some(lost) => Err(lost),
            None => Err(e.into()),
        },
        other => other,
    }
}

/// `-i`/`-e` (bcftools filter expressions, engine `ops::site_expression`) and `--maf`,
/// `--geno`, `--hwe` (plink2's variant filters, engine `ops::site_qc`), decided within the
/// command's cohort.
#[derive(Args, Debug, Clone)]
pub(crate) struct SiteFilterArgs {
    /// Keep the records matching a bcftools filter expression over site fields, INFO and
    /// the cohort's AC/AN/AF (`-i 'QUAL>30 && AF<0.01'`).
    #[arg(
        short = 'i',
        long = "include",
        value_name = "EXPR",
        conflicts_with = "exclude"
    )]
    include: Option<String>,
    /// Drop the records matching a bcftools filter expression.
    #[arg(short = 'e', long = "exclude", value_name = "EXPR")]
    exclude: Option<String>,
    /// Keep variants whose nonmajor allele frequency in the cohort is at least FREQ, as
    /// plink2 --maf (0.01 when given without a value).
    #[arg(long, value_name = "FREQ", num_args = 0..=1, default_missing_value = "0.01")]
    maf: Option<f64>,
    /// Keep variants whose missing call rate in the cohort is at most RATE, as plink2 --geno
    /// (0.1 when given without a value).
    #[arg(long, value_name = "RATE", num_args = 0..=1, default_missing_value = "0.1")]
    geno: Option<f64>,
    /// Keep variants whose Hardy-Weinberg exact test p in the cohort is at least P, as plink2
    /// --hwe; `--hwe P midp` for the mid-p test.
    #[arg(long, value_name = "P", num_args = 1..=2)]
    hwe: Vec<String>,
}

impl SiteFilterArgs {
    /// The filters asked for.
    pub(crate) fn qc(&self) -> Result<cohortdb_engine::ops::site_qc::SiteQc, String> {
        let (min_hwe_p, hwe_midp) = match self.hwe.as_slice() {
            [] => (None, false),
            [p, rest @ ..] => {
                let p: f64 = p
                    .parse()
                    .map_err(|_| format!("--hwe {p:?}: not a p-value"))?;
                match rest {
                    [] => (Some(p), false),
                    [m] if m == "midp" => (Some(p), true),
                    [other] => return Err(format!("--hwe: {other:?} is not midp")),
                    _ => unreachable!("clap takes at most two values"),
                }
            }
        };
        let qc = cohortdb_engine::ops::site_qc::SiteQc {
            min_maf: self.maf,
            max_missing: self.geno,
            min_hwe_p,
            hwe_midp,
        };
        qc.check().map_err(|e| e.to_string())?;
        Ok(qc)
    }

    /// Which variants of `regions` pass within `cohort` (`None` when no filter is asked for);
    /// what plink2's filters removed is told on stderr as plink2 tells it.
    pub(crate) async fn pass(
        &self,
        engine: &CohortEngine,
        regions: &[Region],
        cohort: &cohortdb_engine::Cohort,
    ) -> crate::CliResult<Option<cohortdb_engine::ops::site_qc::SitePass>> {
        let qc = self.qc()?;
        let mut pass = None;
        if !qc.is_empty() {
            let kept = engine.site_qc(regions, cohort, &qc).await?;
            for line in kept.summary(&qc) {
                eprintln!("{line}");
            }
            pass = Some(kept);
        }
        let expression = match (&self.include, &self.exclude) {
            (Some(e), _) => Some((true, e)),
            (None, Some(e)) => Some((false, e)),
            (None, None) => None,
        };
        if let Some((include, expression)) = expression {
            let filter = cohortdb_engine::ops::site_expression::SiteFilter {
                include,
                expression: expression.clone(),
            };
            let kept = engine.site_filter(regions, cohort, &filter).await?;
            match &mut pass {
                Some(pass) => pass.retain(&kept),
                None => pass = Some(kept),
            }
        }
        Ok(pass)
    }
}
