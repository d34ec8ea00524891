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
