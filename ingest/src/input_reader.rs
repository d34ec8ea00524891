//! An opened VCF or BCF input: format detection, header, and batches of whole records.

use std::ops::Range;

use rayon::prelude::*;

use crate::byte_source::ByteSource;
use crate::error::{IngestError, RecordLocation, Result};
use crate::site::EncodedSite;
use crate::site_fields::RecordContext;
use crate::vcf_header::Header;

/// The input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// VCF text.
    Vcf,
    /// BCF binary.
    Bcf,
}

/// A batch of whole records sharing one buffer.
pub struct RawBatch {
    data: Vec<u8>,
    /// Per record: location, first part, second part (BCF per-sample data; empty for VCF).
    records: Vec<(RecordLocation, Range<usize>, Range<usize>)>,
}

impl RawBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// An input being read.
pub struct InputReader {
    source: ByteSource,
    buf: Vec<u8>,
    eof: bool,
    /// The detected format.
    pub format: InputFormat,
    /// The parsed header.
    pub header: Header,
    next_number: u64,
}

impl InputReader {
    /// Opens `name` (`-` = standard input), detects VCF or BCF and reads the header.
    pub fn open(name: &str) -> Result<Self> {
        let mut reader = Self {
            source: ByteSource::open(name)?,
            buf: Vec::new(),
            eof: false,
            format: InputFormat::Vcf,
            header: Header::default(),
            next_number: 1,
        };
        while reader.buf.len() < 5 && reader.fill()? {}
        let header_error = |line: u64, reason: String| IngestError::Header {
            file: name.to_string(),
            line,
            reason,
        };
        if reader.buf.starts_with(b"BCF\x02") {
            reader.format = InputFormat::Bcf;
            while reader.buf.len() < 9 && reader.fill()? {}
            let Some(len) = reader.buf.get(5..9) else {
                return Err(header_error(0, "BCF header is truncated".into()));
            };
            let l_text = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            while reader.buf.len() < 9 + l_text && reader.fill()? {}
            let Some(text) = reader.buf.get(9..9 + l_text) else {
                return Err(header_error(0, "BCF header is truncated".into()));
            };
            let text = String::from_utf8_lossy(text)
                .trim_end_matches('\0')
                .to_string();
            reader.header = Header::parse(&text).map_err(|(l, r)| header_error(l, r))?;
            reader.buf.drain(..9 + l_text);
        } else if reader.buf.starts_with(b"##") || reader.buf.starts_with(b"#CHROM") {
            // Read until the whole #CHROM line is in the buffer.
            let end = loop {
                if let Some(at) = find_chrom_line_end(&reader.buf) {
                    break at;
                }
                if !reader.fill()? {
                    break reader.buf.len();
                }
            };
            let text = String::from_utf8_lossy(&reader.buf[..end]).to_string();
            reader.header = Header::parse(&text).map_err(|(l, r)| header_error(l, r))?;
            reader.next_number = 1 + text.lines().count() as u64;
            reader.buf.drain(..(end + 1).min(reader.buf.len()));
        } else {
            return Err(header_error(
                1,
                "not a VCF or BCF file: it must start with `##fileformat`, `#CHROM` or the BCF magic".into(),
            ));
        }
        Ok(reader)
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    /// Stored bytes read so far, and the input's stored size when known
    /// ([`ByteSource::progress`]).
    pub fn progress(&self) -> (u64, Option<u64>) {
        self.source.progress()
    }

    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.source.next_chunk()? {
            Some(chunk) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    /// The next batch of whole records, `None` at the end of the input.
    pub fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        loop {
            let batch = match self.format {
                InputFormat::Vcf => self.split_lines(),
                InputFormat::Bcf => self.split_bcf()?,
            };
            if let Some(batch) = batch {
                return Ok(Some(batch));
            }
            if !self.fill()? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return match self.format {
                    InputFormat::Vcf => {
                        self.buf.push(b'\n');
                        Ok(self.split_lines())
                    }
                    InputFormat::Bcf => Err(IngestError::Record {
                        file: self.name().to_string(),
                        location: RecordLocation::Record(self.next_number).to_string(),
                        field: "record".into(),
                        reason: format!(
                            "truncated: {} bytes left that do not form a whole record",
                            self.buf.len()
                        ),
                    }),
                };
            }
        }
    }

    fn split_lines(&mut self) -> Option<RawBatch> {
        let last = memchr::memrchr(b'\n', &self.buf)?;
        let rest = self.buf.split_off(last + 1);
        let data = std::mem::replace(&mut self.buf, rest);
        let mut records = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &data) {
            let line = &data[start..end];
            if !line.is_empty() && line != b"\r" {
                records.push((RecordLocation::Line(self.next_number), start..end, 0..0));
            }
            self.next_number += 1;
            start = end + 1;
        }
        Some(RawBatch { data, records })
    }

    fn split_bcf(&mut self) -> Result<Option<RawBatch>> {
        let mut records = Vec::new();
        let mut at = 0usize;
        while let Some(lens) = self.buf.get(at..at + 8) {
            let l_shared = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
            let l_indiv = u32::from_le_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
            let end = at + 8 + l_shared + l_indiv;
            if end > self.buf.len() {
                break;
            }
            records.push((
                RecordLocation::Record(self.next_number),
                at + 8..at + 8 + l_shared,
                at + 8 + l_shared..end,
            ));
            self.next_number += 1;
            at = end;
        }
        if records.is_empty() {
            return Ok(None);
        }
        let rest = self.buf.split_off(at);
        let data = std::mem::replace(&mut self.buf, rest);
        Ok(Some(RawBatch { data, records }))
    }
}

fn find_chrom_line_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', buf) {
        if buf[start..end].starts_with(b"#CHROM") {
            return Some(end);
        }
        if !buf[start..end].starts_with(b"#") {
            return Some(start.saturating_sub(1));
        }
        start = end + 1;
    }
    None
}

/// One of N parts of an input for cluster ingest (`--shard I/N`): the records whose contig
/// and 100 kb bin hash to part I. Records of one position always fall in one part, so the
/// parts of an input hold disjoint sites; each part commits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This part, 1-based.
    pub index: u32,
    /// Parts in all.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with 1 <= I <= N.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{text:?} is not a shard I/N with 1 <= I <= N");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// Whether the record keyed by `contig` (its name, or its BCF dictionary index) and 1-based
    /// `pos` belongs to this part (FNV-1a over the contig and the 100 kb bin).
    fn holds(&self, contig: &[u8], pos: i64) -> bool {
        let bin = (pos.max(0) / 100_000) as u64;
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in contig.iter().chain(bin.to_le_bytes().iter()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// A region of `ingest vcf --region`: 1-based, inclusive, as bcftools writes them
/// (`chr20`, `chr20:1000`, `chr20:1000-2000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRegion {
    /// Contig name.
    pub contig: String,
    /// First position.
    pub start: i64,
    /// Last position.
    pub end: i64,
}

impl IngestRegion {
    /// Parses one region.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let r = text.trim();
        let bad = || format!("{r:?} is not a region CHR, CHR:POS, CHR:FROM- or CHR:FROM-TO");
        let Some((contig, span)) = r.rsplit_once(':') else {
            return match r.is_empty() {
                true => Err(bad()),
                false => Ok(Self {
                    contig: r.to_string(),
                    start: 1,
                    end: i64::MAX,
                }),
            };
        };
        let number = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
        let (start, end) = match span.split_once('-') {
            Some((a, "")) => (number(a)?, i64::MAX),
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(span)?, number(span)?),
        };
        if contig.is_empty() || start < 1 || end < start {
            return Err(bad());
        }
        Ok(Self {
            contig: contig.to_string(),
            start,
            end,
        })
    }
}

/// Which records of one input an ingest keeps: those of part I of N (`--shard`) whose POS lies
/// in one of the regions (`--region`, like bcftools `--regions-overlap pos`, so a record
/// spanning two regions is in exactly one). Applied to raw records, before parsing.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    shard: Option<Shard>,
    /// (contig key as the records write it: name for VCF, dictionary index for BCF, start, end)
    regions: Option<Vec<(Vec<u8>, i64, i64)>>,
}

impl RecordFilter {
    /// The filter for one input with `header` in `format`.
    pub fn new(
        shard: Option<Shard>,
        regions: &[IngestRegion],
        header: &crate::vcf_header::Header,
        format: InputFormat,
    ) -> Self {
        let regions = (!regions.is_empty()).then(|| {
            regions
                .iter()
                .filter_map(|r| {
                    let key = match format {
                        InputFormat::Vcf => r.contig.as_bytes().to_vec(),
                        InputFormat::Bcf => {
                            let idx = header.contig_dict.iter().position(|c| *c == r.contig)?;
                            (idx as i32).to_le_bytes().to_vec()
                        }
                    };
                    Some((key, r.start, r.end))
                })
                .collect()
        });
        Self { shard, regions }
    }

    /// Whether the filter keeps every record.
    pub fn keeps_all(&self) -> bool {
        self.shard.is_none() && self.regions.is_none()
    }

    fn holds(&self, contig: &[u8], pos: i64) -> bool {
        self.shard.is_none_or(|s| s.holds(contig, pos))
            && self.regions.as_ref().is_none_or(|regions| {
                regions
                    .iter()
                    .any(|(c, start, end)| c == contig && (*start..=*end).contains(&pos))
            })
    }

    /// Whether a raw record is kept; records it cannot key are kept (the parser then reports
    /// them).
    fn keeps(&self, record: &[u8], format: InputFormat) -> bool {
        match format {
            InputFormat::Vcf => {
                let mut fields = record.splitn(3, |b| *b == b'\t');
                let (Some(chrom), Some(pos)) = (fields.next(), fields.next()) else {
                    return true;
                };
                let pos = std::str::from_utf8(pos)
                    .ok()
                    .and_then(|p| p.trim().parse::<i64>().ok());
                pos.is_none_or(|p| self.holds(chrom, p))
            }
            InputFormat::Bcf => match (record.get(0..4), record.get(4..8)) {
                (Some(chrom), Some(pos)) => {
                    let pos = i32::from_le_bytes([pos[0], pos[1], pos[2], pos[3]]);
                    self.holds(chrom, i64::from(pos) + 1)
                }
                _ => true,
            },
        }
    }
}

impl RawBatch {
    /// Keeps only the records `filter` keeps, before any of them is parsed.
    pub fn retain(&mut self, filter: &RecordFilter, format: InputFormat) {
        if filter.keeps_all() {
            return;
        }
        let data = &self.data;
        self.records
            .retain(|(_, first, _)| filter.keeps(&data[first.clone()], format));
    }
}

/// Parses a batch in parallel; on failure returns the error of the earliest bad record.
pub fn parse_batch(
    batch: &RawBatch,
    format: InputFormat,
    ctx: &RecordContext<'_>,
) -> Result<Vec<EncodedSite>> {
    // A parallel task holds at least about 256 KiB of records: 64 records of a small cohort,
    // one record of 100,000 samples (400 KB of text). A fixed 64 records kept a batch of large
    // records (an 8 MiB chunk held ~20 at N=100,000) on one core.
    let bytes_per_record = batch.data.len() / batch.records.len().max(1);
    let min_len = ((256 << 10) / bytes_per_record.max(1)).clamp(1, 64);
    let parsed: Vec<Result<EncodedSite>> = batch
        .records
        .par_iter()
        .with_min_len(min_len)
        .map(|(location, first, second)| {
            let first = &batch.data[first.clone()];
            match format {
                InputFormat::Vcf => crate::vcf_record::parse_vcf_line(first, *location, ctx),
                InputFormat::Bcf => crate::bcf_record::parse_bcf_record(
                    first,
                    &batch.data[second.clone()],
                    *location,
                    ctx,
                ),
            }
        })
        .collect();
    parsed.into_iter().collect()
}
