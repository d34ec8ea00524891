//! gVCF reference blocks at read time: which samples a batch's blocks call hom-ref at a
//! position, for the sites where their batch has no record (see `site_merge`).

use std::collections::HashMap;

use cohortdb_store::StoreLocation;
use cohortdb_store::coverage_bins::decode_coverage;
use cohortdb_store::log_entry::FileEntry;
use roaring::RoaringBitmap;

use crate::error::Result;
use crate::region::Region;

/// The blocks of one file (one batch and contig), sorted by start.
struct BlockFile {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// `max(ends[..=i])`: how far back a block may still reach.
    reach: Vec<i64>,
    samples: Vec<RoaringBitmap>,
}

impl BlockFile {
    /// ORs into `out` the samples of every block covering `pos`.
    fn covering(&self, pos: i64, out: &mut RoaringBitmap) {
        let mut i = self.starts.partition_point(|&s| s <= pos);
        while i > 0 && self.reach[i - 1] >= pos {
            i -= 1;
            if self.ends[i] >= pos {
                *out |= &self.samples[i];
            }
        }
    }
}

/// The reference blocks of a snapshot's batches over some regions, by contig.
#[derive(Default)]
pub(crate) struct ReferenceBlocks {
    contigs: HashMap<String, Vec<BlockFile>>,
}

impl ReferenceBlocks {
    /// Whether no batch has blocks here.
    pub fn is_empty(&self) -> bool {
        self.contigs.is_empty()
    }

    /// Of `candidates`, the samples a reference block calls at `contig:pos`.
    pub fn hom_ref_at(&self, contig: &str, pos: i64, candidates: &RoaringBitmap) -> RoaringBitmap {
        let mut covered = RoaringBitmap::new();
        for file in self.contigs.get(contig).into_iter().flatten() {
            file.covering(pos, &mut covered);
        }
        covered & candidates
    }
}

/// The blocks of the reference-block `files` overlapping `regions` (all when empty).
pub(crate) async fn load(
    location: &StoreLocation,
    files: &[FileEntry],
    regions: &[Region],
) -> Result<ReferenceBlocks> {
    let mut blocks = ReferenceBlocks::default();
    for file in files {
        let Some(contig) = file.contig.as_deref() else {
            continue;
        };
        let (file_start, file_end) = (
            file.min_pos.unwrap_or(i64::MIN),
            file.max_pos.unwrap_or(i64::MAX),
        );
        let wanted: Vec<&Region> = regions
            .iter()
            .filter(|r| r.contig == contig && r.start <= file_end && r.end >= file_start)
            .collect();
        let (start, end) = match (regions.is_empty(), wanted.is_empty()) {
            (true, _) => (i64::MIN, i64::MAX),
            (false, true) => continue,
            (false, false) => (
                wanted.iter().map(|r| r.start).min().unwrap_or(i64::MIN),
                wanted.iter().map(|r| r.end).max().unwrap_or(i64::MAX),
            ),
        };
        let bytes = location.read(&location.path(&file.path)).await?;
        let mut rows = decode_coverage(&file.path, bytes, start, end)?;
        rows.sort_by_key(|b| b.start);
        let mut reach = Vec::with_capacity(rows.len());
        let mut furthest = i64::MIN;
        for row in &rows {
            furthest = furthest.max(row.end);
            reach.push(furthest);
        }
        blocks
            .contigs
            .entry(contig.to_string())
            .or_default()
            .push(BlockFile {
                starts: rows.iter().map(|b| b.start).collect(),
                ends: rows.iter().map(|b| b.end).collect(),
                reach,
                samples: rows.into_iter().map(|b| b.samples).collect(),
            });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_disjoint_blocks_are_found_by_position() {
        let file = BlockFile {
            starts: vec![1, 5, 20],
            ends: vec![30, 9, 25],
            reach: vec![30, 30, 30],
            samples: vec![
                RoaringBitmap::from_iter([1]),
                RoaringBitmap::from_iter([2]),
                RoaringBitmap::from_iter([3]),
            ],
        };
        let at = |pos| {
            let mut out = RoaringBitmap::new();
            file.covering(pos, &mut out);
            out.iter().collect::<Vec<_>>()
        };
        assert_eq!(at(0), Vec::<u32>::new());
        assert_eq!(at(5), [1, 2]);
        assert_eq!(at(10), [1]);
        assert_eq!(at(22), [1, 3]);
        assert_eq!(at(31), Vec::<u32>::new());
    }
}
