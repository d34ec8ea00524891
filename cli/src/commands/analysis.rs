//! The cohort operations: `af`, `coverage`, `carriers`, `genotypes`, `case-control`, `assoc`.

use clap::Args;
use cohortdb_engine::ops::association::{Model, association_schema};
use cohortdb_engine::ops::carriers::VariantSpec;
use cohortdb_engine::ops::case_control::case_control_schema;
use cohortdb_engine::{CohortEngine, CohortSpec};
use cohortdb_store::progress::Progress;

use crate::CliResult;
use crate::output_format::{print_batch, print_batches, print_frame};
use crate::shared_args::{
    ClusterArgs, FormatArg, RegionArgs, SampleArgs, SiteFilterArgs, StoreArg, told,
};

/// `af` and `coverage`: regions, a cohort, a format.
#[derive(Args)]
pub(crate) struct RegionCohortArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    samples: SampleArgs,
    #[command(flatten)]
    format: FormatArg,
}

/// `af`: [`RegionCohortArgs`], groups, and workers to run on.
#[derive(Args)]
pub(crate) struct AfArgs {
    #[command(flatten)]
    common: RegionCohortArgs,
    /// Frequencies per group, one row per site and group (column `group` after `alt`): a file
    /// of SAMPLE<TAB>GROUP[,GROUP...] lines, as `bcftools +fill-tags -- -S FILE` takes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["samples", "samples_file", "cohort"])]
    groups: Option<String>,
    #[command(flatten)]
    filters: SiteFilterArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub(crate) async fn af(args: AfArgs) -> CliResult {
    let (groups, filters, args, cluster) = (args.groups, args.filters, args.common, args.cluster);
    let regions = args.regions.parse()?;
    filters.qc()?;
    if let Some(file) = groups {
        let groups = crate::commands::group_frequencies::read_groups(&file)?;
        let engine = cluster
            .attach(CohortEngine::open(&args.store.location).await?)
            .await?;
        let batch =
            crate::commands::group_frequencies::group_frequencies(&engine, &regions, &groups)
                .await?;
        // Filters decide within every sample of the groups.
        let members = groups.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
        let everyone = engine.cohort(CohortSpec::Include(members)).await?;
        let batch = match filters.pass(&engine, &regions, &everyone).await? {
            Some(pass) => pass.filter(&batch)?,
            None => batch,
        };
        return print_batch(args.format.format, batch);
    }
    let engine = match cluster.given() {
        true => {
            cluster
                .attach(CohortEngine::open(&args.store.location).await?)
                .await?
        }
        false => {
            // Rows decoded here, while the registry is read and the cohort resolved.
            let (engine, rows) = CohortEngine::open_reading(&args.store.location, &regions).await?;
            let (_, cohort) = args.samples.resolve(&engine).await?;
            let _ = rows.join().await;
            let batch = engine.allele_frequencies(&regions, &cohort).await?;
            let batch = match filters.pass(&engine, &regions, &cohort).await? {
                Some(pass) => pass.filter(&batch)?,
                None => batch,
            };
            return print_batch(args.format.format, batch);
        }
    };
    let (_, cohort) = args.samples.resolve(&engine).await?;
    let batch = told(&engine, engine.allele_frequencies(&regions, &cohort).await).await?;
    let batch = match filters.pass(&engine, &regions, &cohort).await? {
        Some(pass) => pass.filter(&batch)?,
        None => batch,
    };
    print_batch(args.format.format, batch)
}

pub(crate) async fn coverage(args: RegionCohortArgs) -> CliResult {
    let engine = CohortEngine::open(&args.store.location).await?;
    let regions = args.regions.parse()?;
    let (_, cohort) = args.samples.resolve(&engine).await?;
    print_batch(
        args.format.format,
        engine.coverage(&regions, &cohort).await?,
    )
}

/// `carriers`.
#[derive(Args)]
pub(crate) struct CarriersArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The variant: CHR:POS (every ALT there) or CHR:POS:REF:ALT.
    #[arg(short = 'r', long = "variant")]
    variant: String,
    #[command(flatten)]
    samples: SampleArgs,
    /// Phenotype columns to list, comma-separated.
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Rows per page (default 10,000): every page is read and printed, in turn.
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    page_size: usize,
    /// Print only the page this token starts (a previous page's `next page token`), and the
    /// next page's token on standard error.
    #[arg(long)]
    page_token: Option<String>,
    #[command(flatten)]
    format: FormatArg,
}

pub(crate) async fn carriers(args: CarriersArgs) -> CliResult {
    let engine = CohortEngine::open(&args.store.location).await?;
    let variant = VariantSpec::parse(&args.variant)?;
    let (_, cohort) = args.samples.resolve(&engine).await?;
    let columns: Vec<String> = args.columns.into_iter().filter(|c| !c.is_empty()).collect();
    // One page when a token names it; otherwise every page, in turn.
    let single = args.page_token.is_some();
    let mut token = args.page_token;
    let mut pages = Vec::new();
    loop {
        let page = engine
            .carriers_page(
                &variant,
                &cohort,
                &columns,
                args.page_size,
                token.as_deref(),
            )
            .await?;
        pages.push(page.rows);
        token = page.next_page_token;
        if single {
            match &token {
                Some(next) => eprintln!("next page token: {next}"),
                None => eprintln!("last page ({} rows in all)", page.total_rows),
            }
        }
        if single || token.is_none() {
            break;
        }
    }
    let schema = pages[0].schema();
    print_batches(args.format.format, &pages, schema)
}

/// `genotypes`.
#[derive(Args)]
pub(crate) struct GenotypesArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The sample ID.
    #[arg(short = 's', long)]
    sample: String,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub(crate) async fn genotypes(args: GenotypesArgs) -> CliResult {
    let engine = CohortEngine::open(&args.store.location).await?;
    let regions = args.regions.parse()?;
    let frame = engine.sample_genotypes(&regions, &args.sample).await?;
    print_frame(args.format.format, frame).await
}

/// `case-control`.
#[derive(Args)]
pub(crate) struct CaseControlArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    regions: RegionArgs,
    /// The cases: a cohort predicate over `samples` and `phenotypes`, or @NAME.
    #[arg(long)]
    cases: String,
    /// The controls: a cohort predicate, or @NAME.
    #[arg(long)]
    controls: String,
    #[command(flatten)]
    filters: SiteFilterArgs,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub(crate) async fn case_control(args: CaseControlArgs) -> CliResult {
    let regions = args.regions.parse()?;
    let (engine, rows) = match args.cluster.given() {
        true => {
            let engine = CohortEngine::open(&args.store.location).await?;
            (args.cluster.attach(engine).await?, None)
        }
        false => {
            let (engine, rows) = CohortEngine::open_reading(&args.store.location, &regions).await?;
            (engine, Some(rows))
        }
    };
    let specs = [&args.cases, &args.controls].map(|c| CohortSpec::parse(c));
    let cohorts = engine.cohorts(&specs).await?;
    if let Some(rows) = rows {
        let _ = rows.join().await;
    }
    let [cases, controls] = &cohorts[..] else {
        return Err("case-control resolves two cohorts".into());
    };
    let batches = told(
        &engine,
        engine.case_control(&regions, cases, controls).await,
    )
    .await?;
    // Filters decide within cases and controls together.
    let both = cohortdb_engine::Cohort::new(cases.set() | controls.set());
    let batches = match args.filters.pass(&engine, &regions, &both).await? {
        Some(pass) => batches
            .iter()
            .map(|b| pass.filter(b))
            .collect::<Result<Vec<_>, _>>()?,
        None => batches,
    };
    print_batches(args.format.format, &batches, case_control_schema())
}

/// `assoc`.
#[derive(Args)]
pub(crate) struct AssocArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    regions: RegionArgs,
    /// The trait: a column of the phenotype table.
    #[arg(long = "trait")]
    trait_column: String,
    /// Covariate columns, comma-separated (strings become level indicators).
    #[arg(long, value_delimiter = ',')]
    covar: Vec<String>,
    /// linear or logistic (default: logistic for a boolean or 0/1 trait, else linear).
    #[arg(long, value_parser = ["linear", "logistic", "logistic-no-firth"])]
    model: Option<String>,
    /// Logistic without the Firth fallback (plink2's `no-firth`): separated or non-converging
    /// variants get no fit and their ERRCODE, instead of Firth's fit.
    #[arg(long)]
    no_firth: bool,
    /// The phenotype table holding the trait and covariates.
    #[arg(long, default_value = "phenotypes")]
    table: String,
    #[command(flatten)]
    samples: SampleArgs,
    #[command(flatten)]
    filters: SiteFilterArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub(crate) async fn assoc(args: AssocArgs) -> CliResult {
    let engine = CohortEngine::open(&args.store.location)
        .await?
        .with_progress(Progress::on_terminal());
    let regions = args.regions.parse()?;
    let (_, cohort) = args.samples.resolve(&engine).await?;
    let mut model = Model::parse(args.model.as_deref().unwrap_or_default())?;
    if args.no_firth {
        model = match model {
            Some(Model::Linear) => return Err("--no-firth is for logistic models".into()),
            _ => Some(Model::LogisticNoFirth),
        };
    }
    let covar: Vec<String> = args.covar.into_iter().filter(|c| !c.is_empty()).collect();
    // Filters first (plink2 applies them before --glm), within the cohort.
    let pass = args.filters.pass(&engine, &regions, &cohort).await?;
    let batches = engine
        .association(
            &regions,
            &cohort,
            &args.table,
            &args.trait_column,
            &covar,
            model,
            pass.as_ref(),
        )
        .await?;
    print_batches(args.format.format, &batches, association_schema())
}
