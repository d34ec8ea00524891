//! The command line: the subcommands (the contract of README.md); each one's options live
//! with its code in [`crate::commands`].

use clap::{Parser, Subcommand};

use crate::commands::{admin, analysis, cohort, export, ingest, query, serve, store, worker};
use crate::shared_args::StoreArg;

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
    Ingest(ingest::IngestCommand),
    /// Named cohorts.
    #[command(subcommand)]
    Cohort(cohort::CohortCommand),
    /// Store administration: consent withdrawal, purge, vacuum, compaction.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Allele counts and frequencies per ALT allele in regions and a sample set.
    Af(analysis::AfArgs),
    /// Fraction of a cohort covered per bin at each depth threshold (from `ingest bam`).
    Coverage(analysis::RegionCohortArgs),
    /// Write regions x samples as VCF or BCF (GT, with AC/AN over the written samples) that
    /// bcftools reads back, with a tabix or CSI index.
    Export(export::ExportArgs),
    /// Carriers of a variant (non-reference calls) with chosen phenotype columns.
    Carriers(analysis::CarriersArgs),
    /// One sample's non-reference calls in regions.
    Genotypes(analysis::GenotypesArgs),
    /// Case/control counts per ALT allele with the allelic odds ratio, Fisher's exact p and the
    /// allelic chi-square p.
    CaseControl(analysis::CaseControlArgs),
    /// Per-variant regression of a phenotype on ALT dosage with covariates: linear for a
    /// quantitative trait, logistic for a binary one (`chrom pos id ref alt n beta se p or firth errcode`).
    Assoc(analysis::AssocArgs),
    /// Run SQL over the store (tables: variants, samples, phenotype tables by name).
    Query(query::QueryArgs),
    /// Serve the store over gRPC (cohortdb.v1), Arrow Flight SQL, health and reflection on
    /// one port, with bearer tokens, access tiers and an audit trail.
    Serve(serve::ServeArgs),
    /// Serve a store's plan stages to the coordinators of a cluster (`query --workers`,
    /// `serve --workers`) that hold its secret.
    Worker(worker::WorkerArgs),
    /// List the audit trail of a store, or verify its hash chain.
    Audit(store::AuditArgs),
    /// List the store's samples.
    Samples(StoreArg),
    /// Describe the store: version, samples, contigs, fragments, phenotype tables.
    Info(StoreArg),
    /// Print a shell completion script: `cohortdb completions bash > /etc/bash_completion.d/cohortdb`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff): `cohortdb man | man -l -`, `cohortdb man ingest vcf | man -l -`.
    Man {
        /// The command whose page to print (default: cohortdb's own).
        command: Vec<String>,
    },
    /// Ingest bundled data into a new store and answer cohort queries on it.
    Demo {
        /// Where to create the demo store (default: a temporary directory).
        #[arg(long)]
        store: Option<String>,
    },
}
