//! Export of regions x samples to VCF, bgzipped VCF or BCF, with a tabix or CSI index.
//!
//! Every site in the regions is written, also where the chosen samples carry no ALT (as
//! `bcftools view -S` keeps them). Multi-allelic sites are rebuilt from their split rows
//! (`allele_index`, `n_alleles`); each sample's GT is rebuilt exactly, phase, allele order and
//! ploidy included ([`cohortdb_store::genotype_calls`]). INFO holds `AC` and `AN` recomputed
//! over the written samples (as `bcftools view` does) and `END` where the record spans more
//! than its REF; FORMAT holds GT. Other INFO and FORMAT fields stay in the store (see the
//! `variants` table).

use std::io::Write;

use cohortdb_store::genotype_calls::SampleColumns;
use cohortdb_store::log_entry::FileEntry;
use cohortdb_store::progress::Unit;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{SessionConfig, col};

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::export::bcf_encoding::encode_header;
use crate::export::bgzf_writer::BgzfWriter;
use crate::export::export_encoders::{bcf_record, header_text, vcf_line};
use crate::export::export_output::ExportOutput;
use crate::export::export_records::{genotypes, group_records, read_columns};
use crate::export::export_windows::{WINDOW_BYTES, Window, windows};
use crate::export::genomic_index::{IndexBuilder, IndexKind};
use crate::region::Region;
use crate::rows::span_pruning::region_filter;
use crate::rows::stored_bitmaps::cast_column;

/// The file format of an export (bcftools' `-O v|z|b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Uncompressed VCF.
    Vcf,
    /// BGZF-compressed VCF.
    VcfGz,
    /// BCF (BGZF-compressed).
    Bcf,
}

impl ExportFormat {
    /// The index written beside an export in this format: `requested`, or the format's own
    /// when none is named (tabix for bgzipped VCF, CSI for BCF). Plain VCF takes none, and a
    /// BCF is indexed with CSI, not tabix.
    pub fn index(self, requested: Option<IndexKind>) -> Result<IndexKind> {
        match (self, requested) {
            (Self::Vcf, _) => Err(crate::error::EngineError::InvalidArgument(
                "an index needs a bgzipped VCF or a BCF".into(),
            )),
            (Self::Bcf, Some(IndexKind::Tbi)) => Err(crate::error::EngineError::InvalidArgument(
                "a BCF is indexed with CSI, not tabix (--write-index csi)".into(),
            )),
            (_, Some(kind)) => Ok(kind),
            (Self::VcfGz, None) => Ok(IndexKind::Tbi),
            (Self::Bcf, None) => Ok(IndexKind::Csi),
        }
    }
}

/// What an export wrote.
#[derive(Debug)]
pub struct ExportSummary {
    /// VCF records written.
    pub records: u64,
    /// Samples written.
    pub samples: usize,
    /// The index file's bytes, when one was asked for.
    pub index: Option<Vec<u8>>,
}

/// Writes records, in one of the three encodings, tracking index offsets.
enum Sink<W: Write> {
    Plain(W),
    Bgzf(BgzfWriter<W>),
}

impl<W: Write> Sink<W> {
    fn offset(&self) -> u64 {
        match self {
            Self::Plain(_) => 0,
            Self::Bgzf(b) => b.virtual_offset(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(w) => w.write_all(bytes),
            Self::Bgzf(b) => b.write_all(bytes),
        }
    }

    /// The output, for [`ExportOutput::hand_on`].
    fn output(&mut self) -> &mut W {
        match self {
            Self::Plain(w) => w,
            Self::Bgzf(b) => b.get_mut(),
        }
    }

    /// Ends the encoding and returns the output.
    fn finish(self) -> std::io::Result<W> {
        match self {
            Self::Plain(mut w) => w.flush().map(|()| w),
            Self::Bgzf(b) => b.finish(),
        }
    }
}

fn io_error(source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: "export output".into(),
        source,
    }
}

/// Which records an export writes, by contig, position, REF and ALT.
pub type SiteKeeps<'a> = dyn Fn(&str, i64, &str, &str) -> bool + Send + Sync + 'a;

impl CohortEngine {
    /// The samples an export writes, in output order: the list's order for an explicit list
    /// (as `bcftools view -S`), else registry order. Withdrawn samples are never written.
    pub fn export_order(
        &self,
        selection: &crate::CohortSpec,
        chosen: &roaring::RoaringBitmap,
    ) -> Vec<u32> {
        match selection {
            crate::CohortSpec::Include(ids) => {
                let by_id: std::collections::HashMap<&str, u32> = self
                    .sample_records()
                    .iter()
                    .map(|s| (s.sample_id.as_str(), s.sample_idx))
                    .collect();
                let mut seen = roaring::RoaringBitmap::new();
                ids.iter()
                    .filter_map(|id| by_id.get(id.as_str()).copied())
                    .filter(|idx| chosen.contains(*idx) && seen.insert(*idx))
                    .collect()
            }
            _ => chosen.iter().collect(),
        }
    }

    /// Writes `regions` (every contig when empty) for `samples` (sample indices in output
    /// order) as `format` into `out`, with an index of `index` kind if given (not for plain
    /// VCF). Contigs come in the order the store first received them; records by position.
    /// With `sites`, only the records it keeps are written: it is asked of a record's contig,
    /// position, REF and first ALT (site filters give a record's ALTs one verdict).
    /// Progress is reported in the stored bytes read.
    pub async fn export<W: ExportOutput>(
        &self,
        regions: &[Region],
        samples: &[u32],
        format: ExportFormat,
        index: Option<IndexKind>,
        sites: Option<&SiteKeeps<'_>>,
        out: W,
    ) -> Result<ExportSummary> {
        let windows = WINDOW_BYTES;
        self.export_windowed(regions, samples, format, index, sites, out, windows)
            .await
    }

    /// [`CohortEngine::export`], reading each contig in windows of about `window_bytes`
    /// stored bytes ([`crate::export::export_windows`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn export_windowed<W: ExportOutput>(
        &self,
        regions: &[Region],
        samples: &[u32],
        format: ExportFormat,
        index: Option<IndexKind>,
        sites: Option<&SiteKeeps<'_>>,
        out: W,
        window_bytes: u64,
    ) -> Result<ExportSummary> {
        self.require_record_level("export")?;
        self.check_regions(regions)?;
        if format == ExportFormat::Vcf && index.is_some() {
            return Err(EngineError::InvalidArgument(
                "an index needs a BGZF-compressed output (-O z or -O b)".into(),
            ));
        }
        let id_of: std::collections::HashMap<u32, &str> = self
            .sample_records()
            .iter()
            .map(|s| (s.sample_idx, s.sample_id.as_str()))
            .collect();
        let names: Vec<String> = samples
            .iter()
            .map(|idx| id_of.get(idx).copied().unwrap_or_default().to_string())
            .collect();
        let fragments: Vec<&FileEntry> = self.snapshot().state.variant_fragments().collect();
        let mut contigs: Vec<String> = Vec::new();
        for f in &fragments {
            if let Some(c) = &f.contig
                && !contigs.contains(c)
                && (regions.is_empty() || regions.iter().any(|r| &r.contig == c))
            {
                contigs.push(c.clone());
            }
        }
        // Per contig, its regions and the windows it is read in.
        let plan: Vec<(Vec<Region>, Vec<Window>)> = contigs
            .iter()
            .map(|contig| {
                let mine: Vec<Region> = regions
                    .iter()
                    .filter(|r| &r.contig == contig)
                    .cloned()
                    .collect();
                let theirs: Vec<&FileEntry> = fragments
                    .iter()
                    .copied()
                    .filter(|f| f.contig.as_ref() == Some(contig))
                    .collect();
                let windows = windows(&theirs, &mine, window_bytes);
                (mine, windows)
            })
            .collect();
        // One partition: rows arrive in fragment order, which is position order.
        let ctx = self.full_session_with(SessionConfig::new().with_target_partitions(1))?;
        let filters = self.filter_names(&ctx, regions).await?;
        let header = header_text(&contigs, &filters, &names, self.snapshot().version());
        let mut sink = match format {
            ExportFormat::Vcf => Sink::Plain(out),
            _ => Sink::Bgzf(BgzfWriter::new(out)),
        };
        if format == ExportFormat::Bcf {
            sink.write(&encode_header(&header)).map_err(io_error)?;
        } else {
            sink.write(header.as_bytes()).map_err(io_error)?;
        }
        let mut indexer = index.map(|kind| IndexBuilder::new(kind, format != ExportFormat::Bcf));
        let columns = SampleColumns::new(samples);
        let mut records = 0;
        let mut line = Vec::new();
        let total = plan.iter().flat_map(|(_, w)| w).map(|w| w.bytes).sum();
        self.progress.start(Some(total), Unit::Bytes, "exporting");
        for (contig_id, (contig, (mine, windows))) in contigs.iter().zip(&plan).enumerate() {
            if let Some(ix) = &mut indexer {
                ix.reference(contig_id, contig);
            }
            let contig_filter = region_filter(mine)
                .unwrap_or_else(|| col("contig").eq(datafusion::prelude::lit(contig.clone())));
            for window in windows {
                let filter = match window.filter() {
                    Some(w) => contig_filter.clone().and(w),
                    None => contig_filter.clone(),
                };
                let typed = read_columns(&ctx, filter).await?;
                for record in group_records(&typed) {
                    let Some(site) = record.fields(&typed) else {
                        continue;
                    };
                    // A record's ALT rows share its verdict.
                    if let Some(keeps) = sites
                        && !site
                            .alts
                            .first()
                            .is_some_and(|alt| keeps(contig, site.pos, site.ref_allele, alt))
                    {
                        continue;
                    }
                    let g = genotypes(&typed, &record, &columns)?;
                    let start = sink.offset();
                    line.clear();
                    if format == ExportFormat::Bcf {
                        bcf_record(&mut line, contig_id, &site, &g, &filters, samples.len());
                    } else {
                        vcf_line(&mut line, contig, &site, &g, !samples.is_empty());
                    }
                    sink.write(&line).map_err(io_error)?;
                    if let Some(ix) = &mut indexer {
                        let (beg, end) =
                            ((site.pos - 1).max(0) as u64, site.end.max(site.pos) as u64);
                        ix.push(contig_id, beg, end, start, sink.offset());
                    }
                    records += 1;
                    sink.output().hand_on(false).await.map_err(io_error)?;
                }
                self.progress.advance(window.bytes);
                if self.progress.is_drawn() {
                    self.progress
                        .message(format!("exporting {contig}: {records} records"));
                }
            }
        }
        self.progress.finish();
        let mut out = sink.finish().map_err(io_error)?;
        out.hand_on(true).await.map_err(io_error)?;
        let index = indexer
            .map(IndexBuilder::finish)
            .transpose()
            .map_err(io_error)?;
        Ok(ExportSummary {
            records,
            samples: samples.len(),
            index,
        })
    }

    /// The FILTER names used in `regions`, PASS first.
    async fn filter_names(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        regions: &[Region],
    ) -> Result<Vec<String>> {
        let mut df = ctx.table("variants").await?;
        if let Some(filter) = region_filter(regions) {
            df = df.filter(filter)?;
        }
        let batches = df
            .select_columns(&["filters"])?
            .distinct()?
            .collect()
            .await?;
        let mut names = vec!["PASS".to_string()];
        for batch in &batches {
            let column = cast_column(batch.column(0), &DataType::Utf8)?;
            for text in column.as_string::<i32>().iter().flatten() {
                for f in text.split(';') {
                    if !f.is_empty() && f != "." && !names.iter().any(|n| n == f) {
                        names.push(f.to_string());
                    }
                }
            }
        }
        names[1..].sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use cohortdb_ingest::{IngestOptions, ingest_vcf};
    use cohortdb_store::Store;

    use super::*;

    /// A VCF of `samples` over positions 100, 110, ... of contigs 1 and 2: a multi-allelic
    /// record, two records at one position, a deletion reaching over the next records.
    fn vcf(samples: &[&str], seed: usize) -> String {
        let mut text = String::from("##fileformat=VCFv4.2\n##contig=<ID=1>\n##contig=<ID=2>\n");
        text.push_str("##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n");
        text.push_str("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t");
        text.push_str(&samples.join("\t"));
        text.push('\n');
        for contig in ["1", "2"] {
            for i in 0..40usize {
                let pos = 100 + 10 * i;
                let (reference, alt) = match i % 7 {
                    3 => ("A", "C,G"),
                    5 => ("ACGTACGTACGTACGTACGTACG", "A"),
                    _ => ("A", "T"),
                };
                let copies = if i % 9 == 4 { 2 } else { 1 };
                for copy in 0..copies {
                    text.push_str(&format!(
                        "{contig}\t{pos}\t.\t{reference}\t{alt}\t.\tPASS\t.\tGT"
                    ));
                    for s in 0..samples.len() {
                        let gt =
                            ["0|0", "0|1", "1|1", "./.", "1/0", "0|2"][(i + s + seed + copy) % 6];
                        let gt = if alt.contains(',') {
                            gt
                        } else {
                            &gt.replace('2', "1")
                        };
                        text.push_str(&format!("\t{gt}"));
                    }
                    text.push('\n');
                }
            }
        }
        text
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn windows_of_a_few_positions_export_what_one_window_exports() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("store").display().to_string();
        let store = Store::open_or_create(&location).unwrap();
        for (i, samples) in [["a", "b", "c"], ["d", "e", "f"]].iter().enumerate() {
            let path = dir.path().join(format!("batch{i}.vcf"));
            std::fs::write(&path, vcf(samples, i)).unwrap();
            let options = IngestOptions {
                missing_as_ref: i == 1,
                ..IngestOptions::default()
            };
            ingest_vcf(&store, &[path.display().to_string()], &options)
                .await
                .unwrap();
        }
        let engine = CohortEngine::open(&location).await.unwrap();
        let samples: Vec<u32> = engine
            .sample_records()
            .iter()
            .map(|s| s.sample_idx)
            .collect();
        let region = |contig: &str, start, end| Region {
            contig: contig.into(),
            start,
            end,
        };
        for regions in [vec![], vec![region("1", 150, 330), region("2", 1, 120)]] {
            let mut text = Vec::new();
            for window_bytes in [u64::MAX, 1] {
                let mut out = Vec::new();
                let summary = engine
                    .export_windowed(
                        &regions,
                        &samples,
                        ExportFormat::Vcf,
                        None,
                        None,
                        &mut out,
                        window_bytes,
                    )
                    .await
                    .unwrap();
                assert!(summary.records > 10, "{}", summary.records);
                text.push(String::from_utf8(out).unwrap());
            }
            assert_eq!(text[0], text[1], "{regions:?}");
        }
    }
}
