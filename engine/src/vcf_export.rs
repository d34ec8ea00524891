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

use cohortdb_store::genotype_bitmaps::{GenotypeException, decode_exceptions, deserialize_bitmap};
use cohortdb_store::genotype_calls::{
    AltBitmaps, Call, MISSING_ALLELE, SampleColumns, SiteBitmaps, decode_calls,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Float32Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::datatypes::{DataType, Float32Type, Int32Type, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, col};

use crate::bcf_encoding::{SharedFields, encode_gt, encode_header, encode_record};
use crate::bgzf_writer::BgzfWriter;
use crate::cohort_engine::{CohortEngine, region_filter};
use crate::error::{EngineError, Result};
use crate::genomic_index::{IndexBuilder, IndexKind};
use crate::region::Region;

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

const COLUMNS: [&str; 21] = [
    "pos",
    "end_pos",
    "id",
    "ref",
    "alt",
    "qual",
    "filters",
    "allele_index",
    "n_alleles",
    "het",
    "hom_alt",
    "hemi",
    "called_diploid",
    "called_haploid",
    "no_call",
    "haploid",
    "phased",
    "swapped",
    "gt_exceptions",
    "record_ordinal",
    "contig",
];

/// One fragment row, addressed in the collected batches.
#[derive(Clone, Copy)]
struct RowRef {
    batch: usize,
    row: usize,
}

/// The columns of one collected batch, typed.
struct Columns {
    pos: Int64Array,
    end_pos: Int64Array,
    id: StringArray,
    ref_allele: StringArray,
    alt: StringArray,
    qual: Float32Array,
    filters: StringArray,
    allele_index: Int32Array,
    n_alleles: Int32Array,
    record_ordinal: Int32Array,
    bitmaps: Vec<BinaryArray>,
    exceptions: BinaryArray,
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(array, to).map_err(DataFusionError::from)?)
}

impl Columns {
    fn new(batch: &RecordBatch) -> Result<Self> {
        let c = |i: usize| batch.column(i);
        let text = |i: usize| -> Result<StringArray> {
            Ok(cast(c(i), &DataType::Utf8)?.as_string::<i32>().clone())
        };
        let binary = |i: usize| -> Result<BinaryArray> {
            Ok(cast(c(i), &DataType::Binary)?.as_binary::<i32>().clone())
        };
        Ok(Self {
            pos: c(0).as_primitive::<Int64Type>().clone(),
            end_pos: c(1).as_primitive::<Int64Type>().clone(),
            id: text(2)?,
            ref_allele: text(3)?,
            alt: text(4)?,
            qual: c(5).as_primitive::<Float32Type>().clone(),
            filters: text(6)?,
            allele_index: c(7).as_primitive::<Int32Type>().clone(),
            n_alleles: c(8).as_primitive::<Int32Type>().clone(),
            bitmaps: (9..18).map(binary).collect::<Result<_>>()?,
            exceptions: binary(18)?,
            record_ordinal: c(19).as_primitive::<Int32Type>().clone(),
        })
    }
}

/// A VCF record being rebuilt from its ALT rows.
struct Record {
    rows: Vec<Option<RowRef>>,
}

/// The chosen samples' genotypes of one record, and its AC/AN over them.
struct Genotypes {
    calls: Vec<Call>,
    exceptions: Vec<(usize, GenotypeException)>,
    ac: Vec<i32>,
    an: i32,
}

fn bitmap(array: &BinaryArray, row: usize) -> Result<roaring::RoaringBitmap> {
    if array.is_null(row) {
        return Ok(Default::default());
    }
    deserialize_bitmap(array.value(row)).ok_or_else(|| {
        EngineError::Store(cohortdb_store::StoreError::Corrupt {
            path: "variants".into(),
            what: "genotype bitmap".into(),
            reason: "a genotype bitmap is not a portable roaring bitmap".into(),
        })
    })
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

    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Plain(mut w) => w.flush(),
            Self::Bgzf(b) => b.finish().map(|_| ()),
        }
    }
}

fn io_error(source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: "export output".into(),
        source,
    }
}

impl CohortEngine {
    /// The samples an export writes, in output order: the list's order for an explicit list
    /// (as `bcftools view -S`), else registry order. Withdrawn samples are never written.
    pub fn export_order(
        &self,
        selection: &crate::SampleSelection,
        chosen: &roaring::RoaringBitmap,
    ) -> Vec<u32> {
        match selection {
            crate::SampleSelection::Include(ids) => {
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
    pub async fn export<W: Write>(
        &self,
        regions: &[Region],
        samples: &[u32],
        format: ExportFormat,
        index: Option<IndexKind>,
        out: W,
    ) -> Result<ExportSummary> {
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
        let mut contigs: Vec<String> = Vec::new();
        for f in self.snapshot().state.variant_fragments() {
            if let Some(c) = &f.contig
                && !contigs.contains(c)
                && (regions.is_empty() || regions.iter().any(|r| &r.contig == c))
            {
                contigs.push(c.clone());
            }
        }
        // One partition: rows arrive in fragment order, which is position order.
        let ctx = self.session_with(SessionConfig::new().with_target_partitions(1))?;
        let filters = self.filter_names(&ctx, regions).await?;
        let header = header_text(&contigs, &filters, &names, self.snapshot().version());
        let gt_key = filters.len() as i32 + 3;
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
        for (contig_id, contig) in contigs.iter().enumerate() {
            if let Some(ix) = &mut indexer {
                ix.reference(contig_id, contig);
            }
            let mine: Vec<Region> = regions
                .iter()
                .filter(|r| &r.contig == contig)
                .cloned()
                .collect();
            let filter = region_filter(&mine)
                .unwrap_or_else(|| col("contig").eq(datafusion::prelude::lit(contig.clone())));
            let batches = ctx
                .table("variants")
                .await?
                .filter(filter)?
                .select_columns(&COLUMNS)?
                .collect()
                .await?;
            let typed = batches
                .iter()
                .map(Columns::new)
                .collect::<Result<Vec<_>>>()?;
            for record in group_records(&typed) {
                let first = record.rows.iter().flatten().next().copied();
                let Some(first) = first else { continue };
                let c = &typed[first.batch];
                let g = genotypes(&typed, &record, &columns)?;
                let pos = c.pos.value(first.row);
                let end = c.end_pos.value(first.row);
                let start = sink.offset();
                line.clear();
                let filter_ids = |text: &str| -> Vec<i32> {
                    text.split(';')
                        .filter_map(|f| filters.iter().position(|x| x == f))
                        .map(|i| i as i32)
                        .collect()
                };
                let alts: Vec<&str> = record
                    .rows
                    .iter()
                    .flatten()
                    .filter(|r| typed[r.batch].allele_index.value(r.row) > 0)
                    .map(|r| typed[r.batch].alt.value(r.row))
                    .collect();
                let ref_allele = c.ref_allele.value(first.row);
                let rlen = end - pos + 1;
                let id = (!c.id.is_null(first.row)).then(|| c.id.value(first.row));
                let qual = (!c.qual.is_null(first.row)).then(|| c.qual.value(first.row));
                let filter_text =
                    (!c.filters.is_null(first.row)).then(|| c.filters.value(first.row));
                if format == ExportFormat::Bcf {
                    let mut alleles = vec![ref_allele];
                    alleles.extend(&alts);
                    // Dictionary: the FILTERs, then AC, AN, END and GT (header_text).
                    let key = |k: i32| filters.len() as i32 + k;
                    let mut info = Vec::new();
                    if !g.ac.is_empty() {
                        info.push((key(0), g.ac.clone()));
                    }
                    info.push((key(1), vec![g.an]));
                    if rlen != ref_allele.len() as i64 {
                        info.push((key(2), vec![end as i32]));
                    }
                    let mut indiv = Vec::new();
                    if !samples.is_empty() {
                        encode_gt(&mut indiv, gt_key, &g.calls, &g.exceptions);
                    }
                    let filter_list = filter_text.map(filter_ids).unwrap_or_default();
                    encode_record(
                        &mut line,
                        &SharedFields {
                            contig: contig_id as i32,
                            pos0: (pos - 1) as i32,
                            rlen: rlen as i32,
                            qual,
                            id,
                            alleles: &alleles,
                            filters: &filter_list,
                            info: &info,
                        },
                        samples.len(),
                        usize::from(!samples.is_empty()),
                        &indiv,
                    );
                } else {
                    vcf_line(
                        &mut line,
                        contig,
                        pos,
                        id,
                        ref_allele,
                        &alts,
                        qual,
                        filter_text,
                        (rlen != ref_allele.len() as i64).then_some(end),
                        &g,
                        !samples.is_empty(),
                    );
                }
                sink.write(&line).map_err(io_error)?;
                if let Some(ix) = &mut indexer {
                    ix.push(
                        contig_id,
                        (pos - 1).max(0) as u64,
                        end.max(pos) as u64,
                        start,
                        sink.offset(),
                    );
                }
                records += 1;
            }
        }
        sink.finish().map_err(io_error)?;
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
            let column = cast(batch.column(0), &DataType::Utf8)?;
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

/// Rebuilds VCF records from rows in position order: the rows of one record share `pos`,
/// `ref` and `record_ordinal` and fill its slots by `allele_index`.
fn group_records(batches: &[Columns]) -> Vec<Record> {
    let mut rows: Vec<(i64, RowRef)> = Vec::new();
    for (b, c) in batches.iter().enumerate() {
        for row in 0..c.pos.len() {
            rows.push((c.pos.value(row), RowRef { batch: b, row }));
        }
    }
    rows.sort_by_key(|(pos, _)| *pos);
    let key = |r: &RowRef| {
        let c = &batches[r.batch];
        (c.ref_allele.value(r.row), c.record_ordinal.value(r.row))
    };
    let mut out: Vec<Record> = Vec::new();
    let mut open_from = 0;
    let mut open_pos = None;
    for (pos, r) in rows {
        if open_pos != Some(pos) {
            open_from = out.len();
            open_pos = Some(pos);
        }
        let c = &batches[r.batch];
        let (index, n) = (c.allele_index.value(r.row), c.n_alleles.value(r.row));
        let slot = (index.max(1) - 1) as usize;
        let fits = |rec: &Record| {
            index > 0
                && rec.rows.len() + 1 == n as usize
                && rec.rows.get(slot).is_some_and(Option::is_none)
                && rec
                    .rows
                    .iter()
                    .flatten()
                    .next()
                    .is_some_and(|f| key(f) == key(&r))
        };
        match out[open_from..].iter_mut().find(|rec| fits(rec)) {
            Some(rec) => rec.rows[slot] = Some(r),
            None => {
                let mut rec = Record {
                    rows: vec![None; (n.max(2) - 1) as usize],
                };
                let last = rec.rows.len() - 1;
                rec.rows[slot.min(last)] = Some(r);
                out.push(rec);
            }
        }
    }
    out
}

fn genotypes(batches: &[Columns], record: &Record, columns: &SampleColumns) -> Result<Genotypes> {
    let first = record.rows.iter().flatten().next().copied();
    let mut site = SiteBitmaps::default();
    let mut exceptions = Vec::new();
    if let Some(f) = first {
        let b = &batches[f.batch].bitmaps;
        site = SiteBitmaps {
            called_diploid: bitmap(&b[3], f.row)?,
            called_haploid: bitmap(&b[4], f.row)?,
            no_call: bitmap(&b[5], f.row)?,
            haploid: bitmap(&b[6], f.row)?,
            phased: bitmap(&b[7], f.row)?,
            swapped: bitmap(&b[8], f.row)?,
        };
        let e = &batches[f.batch].exceptions;
        if !e.is_null(f.row) {
            exceptions = decode_exceptions(e.value(f.row)).unwrap_or_default();
        }
    }
    let alts = record
        .rows
        .iter()
        .map(|r| match r {
            Some(r) if batches[r.batch].allele_index.value(r.row) > 0 => {
                let b = &batches[r.batch].bitmaps;
                Ok(AltBitmaps {
                    het: bitmap(&b[0], r.row)?,
                    hom_alt: bitmap(&b[1], r.row)?,
                    hemi: bitmap(&b[2], r.row)?,
                })
            }
            _ => Ok(AltBitmaps::default()),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut calls = Vec::new();
    let exceptions = decode_calls(&site, &alts, &exceptions, columns, &mut calls);
    let n_alts = alts.len().max(1);
    let mut ac = vec![0i32; n_alts];
    let mut an = 0;
    let mut count = |a: u32| {
        if a != MISSING_ALLELE {
            an += 1;
            if a > 0 && (a as usize) <= n_alts {
                ac[a as usize - 1] += 1;
            }
        }
    };
    let mut next_exception = exceptions.iter().peekable();
    for (column, call) in calls.iter().enumerate() {
        if let Some((_, e)) = next_exception.next_if(|(c, _)| *c == column) {
            e.alleles
                .iter()
                .for_each(|a| count(a.unwrap_or(MISSING_ALLELE)));
        } else {
            call.alleles[..call.ploidy as usize]
                .iter()
                .for_each(|a| count(*a));
        }
    }
    if record
        .rows
        .iter()
        .flatten()
        .all(|r| batches[r.batch].allele_index.value(r.row) == 0)
    {
        ac.clear();
    }
    Ok(Genotypes {
        calls,
        exceptions,
        ac,
        an,
    })
}

fn push_allele(line: &mut Vec<u8>, a: u32) {
    if a == MISSING_ALLELE {
        line.push(b'.');
    } else if a < 10 {
        line.push(b'0' + a as u8);
    } else {
        line.extend_from_slice(a.to_string().as_bytes());
    }
}

#[allow(clippy::too_many_arguments)]
fn vcf_line(
    line: &mut Vec<u8>,
    contig: &str,
    pos: i64,
    id: Option<&str>,
    ref_allele: &str,
    alts: &[&str],
    qual: Option<f32>,
    filters: Option<&str>,
    end: Option<i64>,
    g: &Genotypes,
    with_samples: bool,
) {
    use std::io::Write as _;
    let alt = if alts.is_empty() {
        ".".to_string()
    } else {
        alts.join(",")
    };
    let qual = qual.map_or(".".to_string(), |q| q.to_string());
    let ac =
        g.ac.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
    let _ = write!(
        line,
        "{contig}\t{pos}\t{}\t{ref_allele}\t{alt}\t{qual}\t{}\t",
        id.unwrap_or("."),
        filters.unwrap_or(".")
    );
    if !g.ac.is_empty() {
        let _ = write!(line, "AC={ac};");
    }
    let _ = write!(line, "AN={}", g.an);
    if let Some(end) = end {
        let _ = write!(line, ";END={end}");
    }
    if with_samples {
        line.extend_from_slice(b"\tGT");
        let mut next_exception = g.exceptions.iter().peekable();
        for (column, call) in g.calls.iter().enumerate() {
            line.push(b'\t');
            if let Some((_, e)) = next_exception.next_if(|(c, _)| *c == column) {
                for (i, a) in e.alleles.iter().enumerate() {
                    if i > 0 {
                        line.push(if e.phased { b'|' } else { b'/' });
                    }
                    push_allele(line, a.unwrap_or(MISSING_ALLELE));
                }
                continue;
            }
            push_allele(line, call.alleles[0]);
            if call.ploidy == 2 {
                line.push(if call.phased { b'|' } else { b'/' });
                push_allele(line, call.alleles[1]);
            }
        }
    }
    line.push(b'\n');
}

fn header_text(contigs: &[String], filters: &[String], samples: &[String], version: u64) -> String {
    let mut h = String::from("##fileformat=VCFv4.2\n");
    for f in filters {
        let description = if f == "PASS" { "All filters passed" } else { f };
        h.push_str(&format!(
            "##FILTER=<ID={f},Description=\"{}\">\n",
            description.replace('"', "'")
        ));
    }
    h.push_str(
        "##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count in genotypes, for each ALT allele, in the same order as listed\">\n\
         ##INFO=<ID=AN,Number=1,Type=Integer,Description=\"Total number of alleles in called genotypes\">\n\
         ##INFO=<ID=END,Number=1,Type=Integer,Description=\"End position of the record (1-based, inclusive)\">\n\
         ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n",
    );
    for c in contigs {
        h.push_str(&format!("##contig=<ID={c}>\n"));
    }
    h.push_str(&format!(
        "##source=cohortdb {} (store version {version})\n",
        env!("CARGO_PKG_VERSION")
    ));
    h.push_str("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO");
    if !samples.is_empty() {
        h.push_str("\tFORMAT");
        for s in samples {
            h.push('\t');
            h.push_str(s);
        }
    }
    h.push('\n');
    h
}
