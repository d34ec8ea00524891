//! gVCF reference blocks of one input: per contig, the samples called hom-ref over each
//! block, adjacent blocks of the same samples joined, written as one file per contig in the
//! layout of coverage files (`min_depth` 0).

use std::collections::BTreeMap;

use bytes::Bytes;
use cohortdb_store::coverage_bins::{CoverageBin, encode_coverage};

use crate::error::Result;
use crate::site::{EncodedSite, InfoValues};
use crate::vcf_header::FieldDef;

/// Minimum GQ and depth of a sample's reference block for it to call the sample hom-ref.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockThresholds {
    /// Minimum FORMAT/GQ.
    pub min_gq: Option<i32>,
    /// Minimum FORMAT/MIN_DP (FORMAT/DP where the block has no MIN_DP).
    pub min_dp: Option<i32>,
}

impl BlockThresholds {
    /// Whether any threshold is set.
    pub fn is_active(&self) -> bool {
        self.min_gq.is_some() || self.min_dp.is_some()
    }
}

/// One contig's blocks, encoded.
pub struct EncodedBlocks {
    /// The contig.
    pub contig: String,
    /// The Parquet file.
    pub parquet: Bytes,
    /// Rows (joined blocks).
    pub rows: u64,
    /// First position of the first block (1-based).
    pub min_pos: i64,
    /// Last position of the last block (1-based, inclusive).
    pub max_pos: i64,
}

/// The blocks of one input, by contig, in input order.
pub struct ReferenceBlocks {
    contigs: BTreeMap<String, Vec<CoverageBin>>,
    thresholds: BlockThresholds,
    /// Positions of GQ, MIN_DP and DP among the kept FORMAT fields.
    fields: [Option<usize>; 3],
}

/// The first value of a kept FORMAT field, as an integer.
fn first_value(values: &[InfoValues], field: Option<usize>) -> Option<i32> {
    match values.get(field?)? {
        InfoValues::Int(v) => v.first().copied().flatten(),
        InfoValues::Float(v) => v.first().copied().flatten().map(|x| x as i32),
        _ => None,
    }
}

impl ReferenceBlocks {
    /// No blocks yet; `format_fields` are the fields the parser keeps (with GQ, MIN_DP and
    /// DP when `thresholds` are active).
    pub fn new(thresholds: BlockThresholds, format_fields: &[FieldDef]) -> Self {
        let position = |id: &str| format_fields.iter().position(|f| f.id == id);
        Self {
            contigs: BTreeMap::new(),
            thresholds,
            fields: [position("GQ"), position("MIN_DP"), position("DP")],
        }
    }

    /// The called samples of a block that pass the thresholds.
    fn passing(&self, site: &EncodedSite) -> roaring::RoaringBitmap {
        let called = site.called_samples();
        if !self.thresholds.is_active() {
            return called;
        }
        let [gq, min_dp, dp] = self.fields;
        let passes = |values: &[InfoValues]| {
            let depth = first_value(values, min_dp).or_else(|| first_value(values, dp));
            let reaches = |threshold: Option<i32>, value: Option<i32>| {
                threshold.is_none_or(|t| value.is_some_and(|v| v >= t))
            };
            reaches(self.thresholds.min_gq, first_value(values, gq))
                && reaches(self.thresholds.min_dp, depth)
        };
        let kept: roaring::RoaringBitmap = site
            .format
            .iter()
            .flatten()
            .filter(|sample| sample.alts.is_empty() && passes(&sample.values))
            .map(|sample| sample.sample_idx)
            .collect();
        called & kept
    }

    /// Adds a reference-block record (see [`EncodedSite::is_reference_block`]); a block whose
    /// genotypes are all no-calls, or fail the thresholds, calls nobody and is not kept.
    pub fn add(&mut self, site: &EncodedSite) {
        let samples = self.passing(site);
        if samples.is_empty() {
            return;
        }
        let blocks = self.contigs.entry(site.contig.clone()).or_default();
        let end = site.end_pos.max(site.pos);
        if let Some(last) = blocks.last_mut()
            && last.end + 1 == site.pos
            && last.samples == samples
        {
            last.end = end;
            return;
        }
        blocks.push(CoverageBin {
            start: site.pos,
            end,
            min_depth: 0,
            samples,
        });
    }

    /// The encoded files, one per contig, blocks sorted by start.
    pub fn finish(self) -> Result<Vec<EncodedBlocks>> {
        self.contigs
            .into_iter()
            .map(|(contig, mut blocks)| {
                blocks.sort_by_key(|b| b.start);
                let parquet = encode_coverage(&contig, &blocks)?;
                Ok(EncodedBlocks {
                    min_pos: blocks.first().map_or(0, |b| b.start),
                    max_pos: blocks.iter().map(|b| b.end).max().unwrap_or(0),
                    rows: blocks.len() as u64,
                    parquet,
                    contig,
                })
            })
            .collect()
    }
}
