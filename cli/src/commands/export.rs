//! `cohortdb export`: regions x samples to VCF/BCF with an index beside the file.

use std::io::BufWriter;

use clap::Args;

use cohortdb_engine::CohortEngine;
use cohortdb_engine::export::genomic_index::IndexKind;
use cohortdb_engine::export::vcf_export::{ExportFormat, SiteKeeps};
use cohortdb_store::progress::Progress;

use crate::CliResult;
use crate::shared_args::{RegionArgs, SampleArgs, SiteFilterArgs, StoreArg};

/// `export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    samples: SampleArgs,
    /// Output type: v (VCF), z (bgzipped VCF), b (BCF); by default taken from the output's
    /// name as bcftools does (*.bcf BCF, *.vcf.gz or *.bgz bgzipped VCF, else VCF).
    #[arg(short = 'O', long = "output-type")]
    output_type: Option<ExportType>,
    /// Output file; - for standard output.
    #[arg(short = 'o', long = "output", default_value = "-")]
    output: String,
    /// Index written beside the output: tbi or csi (default tbi for -O z, csi for -O b),
    /// or none. Not for standard output.
    #[arg(long = "write-index")]
    write_index: Option<IndexChoice>,
    #[command(flatten)]
    filters: SiteFilterArgs,
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

impl ExportType {
    /// The type bcftools would write to `output` without `-O`.
    fn of_name(output: &str) -> Self {
        let name = output.to_ascii_lowercase();
        if name.ends_with(".bcf") {
            Self::B
        } else if name.ends_with(".gz") || name.ends_with(".bgz") {
            Self::Z
        } else {
            Self::V
        }
    }
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

/// Runs the export; a file output is written under a temporary name and renamed when whole,
/// so a failed export leaves no partial file.
pub(crate) async fn run(args: ExportArgs) -> CliResult {
    let ExportArgs {
        store,
        regions,
        samples,
        output_type,
        output,
        write_index,
        filters,
    } = args;
    let output = output.as_str();
    let engine = CohortEngine::open(&store.location)
        .await?
        .with_progress(Progress::on_terminal());
    let regions = regions.parse()?;
    let (selection, set) = samples.resolve(&engine).await?;
    let order = engine.export_order(&selection, &set);
    let keeps: Option<Box<SiteKeeps<'_>>> = filters
        .pass(&engine, &regions, &set)
        .await?
        .map(|pass| Box::new(move |c: &str, p, r: &str, a: &str| pass.keeps(c, p, r, a)) as _);
    let keeps = keeps.as_deref();
    let format = match output_type.unwrap_or_else(|| ExportType::of_name(output)) {
        ExportType::V => ExportFormat::Vcf,
        ExportType::Z => ExportFormat::VcfGz,
        ExportType::B => ExportFormat::Bcf,
    };
    let to_stdout = output == "-";
    // Which index a format takes is the engine's rule (ExportFormat::index).
    let index = match write_index {
        Some(IndexChoice::None) => None,
        Some(_) if to_stdout => {
            return Err("--write-index needs an output file (-o FILE)".into());
        }
        Some(IndexChoice::Tbi) => Some(format.index(Some(IndexKind::Tbi))?),
        Some(IndexChoice::Csi) => Some(format.index(Some(IndexKind::Csi))?),
        None if to_stdout || format == ExportFormat::Vcf => None,
        None => Some(format.index(None)?),
    };
    let summary = if to_stdout {
        let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        engine
            .export(&regions, &order, format, index, keeps, out)
            .await?
    } else {
        let partial = format!("{output}.partial");
        let file = std::fs::File::create(&partial).map_err(|e| format!("{partial}: {e}"))?;
        let written = engine
            .export(
                &regions,
                &order,
                format,
                index,
                keeps,
                BufWriter::with_capacity(1 << 20, file),
            )
            .await;
        let summary = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        std::fs::rename(&partial, output).map_err(|e| format!("{output}: {e}"))?;
        if let (Some(kind), Some(bytes)) = (index, &summary.index) {
            let suffix = if kind == IndexKind::Tbi { "tbi" } else { "csi" };
            let path = format!("{output}.{suffix}");
            std::fs::write(&path, bytes).map_err(|e| format!("{path}: {e}"))?;
        }
        summary
    };
    eprintln!(
        "wrote {} records x {} samples",
        summary.records, summary.samples
    );
    Ok(())
}
