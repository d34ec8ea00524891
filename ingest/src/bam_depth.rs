//! Per-base read depth of one sample's alignments, counted as mosdepth (0.3, default mode) does.
//!
//! - Reads with any flag of `exclude_flags` (default 1796: unmapped, secondary, QC-fail,
//!   duplicate) or a mapping quality below `min_mapq` (default 0) are skipped.
//! - A read covers the reference bases of its `M`, `=` and `X` operations; deletions, skips,
//!   insertions and clips add nothing.
//! - Overlapping mates of a proper pair (not supplementary) count once: where both cover a
//!   base, the pair adds 1. As in mosdepth, when both mates have a one-operation CIGAR the
//!   overlap taken is from the later mate's start to the earlier mate's end.
//!
//! Depth is accumulated as +1/-1 changes per contig and summed once, so a contig costs one
//! `i32` per base.

use std::collections::HashMap;

/// Which reads count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthOptions {
    /// Reads with a mapping quality below this are skipped (mosdepth `-Q`, default 0).
    pub min_mapq: u8,
    /// Reads with any of these flags are skipped (mosdepth `-F`, default 1796).
    pub exclude_flags: u16,
}

impl Default for DepthOptions {
    fn default() -> Self {
        Self {
            min_mapq: 0,
            exclude_flags: 1796,
        }
    }
}

/// The fields of one alignment record that depth needs.
#[derive(Debug, Clone, Copy)]
pub struct Alignment<'a> {
    /// SAM flags.
    pub flags: u16,
    /// Mapping quality.
    pub mapq: u8,
    /// 0-based leftmost position.
    pub pos: i64,
    /// Contig index of this read and of its mate.
    pub tid: i32,
    /// Contig index of the mate.
    pub mate_tid: i32,
    /// 0-based leftmost position of the mate.
    pub mate_pos: i64,
    /// Read name.
    pub name: &'a [u8],
    /// BAM-encoded CIGAR (length << 4 | operation).
    pub cigar: &'a [u32],
}

const PROPER_PAIR: u16 = 0x2;
const SUPPLEMENTARY: u16 = 0x800;

/// Reference intervals `[start, end)` of an alignment's `M`/`=`/`X` runs; runs that touch
/// are joined.
fn covered_runs(pos: i64, cigar: &[u32]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::with_capacity(2);
    let mut at = pos;
    for &op in cigar {
        let len = i64::from(op >> 4);
        match op & 0xf {
            // M, =, X: reference and query.
            0 | 7 | 8 => {
                match runs.last_mut() {
                    Some(last) if last.1 == at => last.1 = at + len,
                    _ => runs.push((at, at + len)),
                }
                at += len;
            }
            // D, N: reference only.
            2 | 3 => at += len,
            _ => {}
        }
    }
    runs
}

/// One past the last reference base an alignment spans.
fn reference_end(pos: i64, cigar: &[u32]) -> i64 {
    pos + cigar
        .iter()
        .filter(|op| matches!(*op & 0xf, 0 | 2 | 3 | 7 | 8))
        .map(|op| i64::from(op >> 4))
        .sum::<i64>()
}

/// The depth changes of one contig of one sample.
#[derive(Debug)]
pub struct ContigDepth {
    changes: Vec<i32>,
    options: DepthOptions,
    /// Proper-pair reads whose mate starts inside them and is still to come.
    waiting_mates: HashMap<Vec<u8>, (i64, Vec<u32>), foldhash::fast::RandomState>,
}

impl ContigDepth {
    /// An empty contig of `length` bases.
    pub fn new(length: usize, options: DepthOptions) -> Self {
        Self {
            changes: vec![0; length + 1],
            options,
            waiting_mates: HashMap::default(),
        }
    }

    /// Adds one alignment of this contig (in coordinate order).
    pub fn add(&mut self, read: &Alignment<'_>) {
        if read.mapq < self.options.min_mapq || read.flags & self.options.exclude_flags != 0 {
            return;
        }
        if read.flags & PROPER_PAIR != 0 && read.flags & SUPPLEMENTARY == 0 {
            let end = reference_end(read.pos, read.cigar);
            if read.tid == read.mate_tid
                && end > read.mate_pos
                && (read.pos < read.mate_pos
                    || (read.pos == read.mate_pos && !self.waiting_mates.contains_key(read.name)))
            {
                self.waiting_mates
                    .insert(read.name.to_vec(), (read.pos, read.cigar.to_vec()));
            } else if let Some((mate_pos, mate_cigar)) = self.waiting_mates.remove(read.name) {
                self.remove_overlap(read, mate_pos, &mate_cigar);
            }
        }
        // Most reads are one M run: no run list needed.
        if let [op] = read.cigar
            && matches!(op & 0xf, 0 | 7 | 8)
        {
            self.change(read.pos, 1);
            self.change(read.pos + i64::from(op >> 4), -1);
            return;
        }
        for (start, end) in covered_runs(read.pos, read.cigar) {
            self.change(start, 1);
            self.change(end, -1);
        }
    }

    /// Takes back one of the two counts where the mates of a pair overlap.
    fn remove_overlap(&mut self, read: &Alignment<'_>, mate_pos: i64, mate_cigar: &[u32]) {
        if read.cigar.len() == 1 && mate_cigar.len() == 1 {
            self.change(read.pos, -1);
            self.change(reference_end(mate_pos, mate_cigar), 1);
            return;
        }
        let (ours, theirs) = (
            covered_runs(read.pos, read.cigar),
            covered_runs(mate_pos, mate_cigar),
        );
        for &(a_start, a_end) in &ours {
            for &(b_start, b_end) in &theirs {
                let (start, end) = (a_start.max(b_start), a_end.min(b_end));
                if start < end {
                    self.change(start, -1);
                    self.change(end, 1);
                }
            }
        }
    }

    fn change(&mut self, at: i64, by: i32) {
        let last = self.changes.len() - 1;
        let at = usize::try_from(at).unwrap_or(0).min(last);
        self.changes[at] += by;
    }

    /// The depth at every base (0-based index).
    pub fn depths(mut self) -> Vec<i32> {
        let mut depth = 0;
        for change in &mut self.changes {
            depth += *change;
            *change = depth;
        }
        self.changes.pop();
        self.changes
    }
}

/// The bins `[start, end)` (0-based) of a contig of `length` bases, as mosdepth's `--by N`
/// windows: every `bin_size` bases, the last one shorter.
pub fn bins(length: usize, bin_size: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..length)
        .step_by(bin_size.max(1))
        .map(move |start| (start, (start + bin_size.max(1)).min(length)))
}

/// For each bin of `depths`, how many of `thresholds` (ascending) the bin's mean depth
/// reaches: the bin's mean is at least `thresholds[i]` for every `i` below the level.
pub fn bin_levels(depths: &[i32], bin_size: usize, thresholds: &[u32]) -> Vec<u8> {
    bins(depths.len(), bin_size)
        .map(|(start, end)| {
            let sum: i64 = depths[start..end].iter().map(|&d| i64::from(d)).sum();
            let length = (end - start) as i64;
            thresholds
                .iter()
                .take_while(|&&t| sum >= i64::from(t) * length)
                .count() as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(len: u32, code: u32) -> u32 {
        len << 4 | code
    }

    fn read<'a>(
        flags: u16,
        pos: i64,
        mate_pos: i64,
        name: &'a [u8],
        cigar: &'a [u32],
    ) -> Alignment<'a> {
        Alignment {
            flags,
            mapq: 60,
            pos,
            tid: 0,
            mate_tid: 0,
            mate_pos,
            name,
            cigar,
        }
    }

    #[test]
    fn deletions_do_not_count_and_overlapping_mates_count_once() {
        let mut contig = ContigDepth::new(30, DepthOptions::default());
        // 5M2D5M at 0: covers 0..5 and 7..12.
        let split = [op(5, 0), op(2, 2), op(5, 0)];
        contig.add(&read(0, 0, -1, b"a", &split));
        // A proper pair 10M at 10 and 10M at 15 overlap on 15..20.
        let whole = [op(10, 0)];
        contig.add(&read(3, 10, 15, b"p", &whole));
        contig.add(&read(3, 15, 10, b"p", &whole));
        // A duplicate adds nothing.
        contig.add(&read(1024, 0, -1, b"d", &whole));
        let depths = contig.depths();
        let expected: Vec<i32> = (0..30)
            .map(|i| match i {
                0..5 => 1,
                5..7 => 0,
                7..10 => 1,
                10 => 2,
                11 => 2,
                12..25 => 1,
                _ => 0,
            })
            .collect();
        assert_eq!(depths, expected);
    }

    #[test]
    fn bins_and_levels_compare_sums_exactly() {
        assert_eq!(
            bins(25, 10).collect::<Vec<_>>(),
            [(0, 10), (10, 20), (20, 25)]
        );
        let depths = [10, 10, 9, 11, 20, 20, 20, 19];
        assert_eq!(bin_levels(&depths, 4, &[10, 20]), [1, 1]);
        assert_eq!(bin_levels(&[20, 20], 2, &[10, 20]), [2]);
    }
}
