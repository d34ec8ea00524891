//! `cohortdb export`: regions x samples to VCF/BCF with an index beside the file.

use std::io::BufWriter;

use cohortdb_engine::CohortEngine;
use cohortdb_engine::export::genomic_index::IndexKind;
use cohortdb_engine::export::vcf_export::ExportFormat;

use crate::CliResult;
use crate::command_line::{ExportType, IndexChoice, RegionArgs, SampleArgs};

/// Runs the export; a file output is written under a temporary name and renamed when whole,
/// so a failed export leaves no partial file.
pub(crate) async fn run(
    store: &str,
    regions: &RegionArgs,
    samples: &SampleArgs,
    output_type: ExportType,
    output: &str,
    write_index: Option<IndexChoice>,
) -> CliResult {
    let engine = CohortEngine::open(store).await?;
    let regions = regions.parse()?;
    let (selection, set) = samples.resolve(&engine).await?;
    let order = engine.export_order(&selection, &set);
    let format = match output_type {
        ExportType::V => ExportFormat::Vcf,
        ExportType::Z => ExportFormat::VcfGz,
        ExportType::B => ExportFormat::Bcf,
    };
    let to_stdout = output == "-";
    let index = match (write_index, format) {
        (Some(IndexChoice::None), _) => None,
        (Some(_), _) if to_stdout => {
            return Err("--write-index needs an output file (-o FILE)".into());
        }
        (Some(IndexChoice::Tbi), ExportFormat::Bcf) => {
            return Err("a BCF is indexed with CSI, not tabix (--write-index csi)".into());
        }
        (Some(IndexChoice::Tbi), _) => Some(IndexKind::Tbi),
        (Some(IndexChoice::Csi), _) => Some(IndexKind::Csi),
        (None, _) if to_stdout => None,
        (None, ExportFormat::Vcf) => None,
        (None, ExportFormat::VcfGz) => Some(IndexKind::Tbi),
        (None, ExportFormat::Bcf) => Some(IndexKind::Csi),
    };
    let summary = if to_stdout {
        let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        engine.export(&regions, &order, format, index, out).await?
    } else {
        let partial = format!("{output}.partial");
        let file = std::fs::File::create(&partial).map_err(|e| format!("{partial}: {e}"))?;
        let written = engine
            .export(
                &regions,
                &order,
                format,
                index,
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
