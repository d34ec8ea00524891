//! The windows of positions an export reads a contig in, one query each: memory holds one
//! window's rows rather than the contig's, and the progress bar moves by the stored bytes
//! each window covers, estimated from the fragments' position spans in the log
//! ([`stored_bytes_up_to`]).
//!
//! Windows split by `pos` alone, so every row of a record (its ALT rows share a position)
//! falls in one window, and the first and last windows are open-ended: together they hold
//! every row the region filter passes, each once.

use cohortdb_store::log_entry::FileEntry;
use datafusion::prelude::{Expr, col, lit};

use crate::region::Region;
use crate::rows::span_pruning::stored_bytes_up_to;

/// Stored bytes an export aims to read per window.
pub(crate) const WINDOW_BYTES: u64 = 32 << 20;

/// At most this many windows per contig.
const MAX_WINDOWS: i64 = 4096;

/// Positions `start..end` of one contig (`i64::MIN` and `i64::MAX` for open ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// First position, inclusive.
    pub start: i64,
    /// Last position, exclusive.
    pub end: i64,
    /// Stored bytes estimated to lie in the window.
    pub bytes: u64,
}

impl Window {
    /// The SQL condition on `pos` of the window (`None`: every position).
    pub fn filter(&self) -> Option<Expr> {
        let lower = (self.start != i64::MIN).then(|| col("pos").gt_eq(lit(self.start)));
        let upper = (self.end != i64::MAX).then(|| col("pos").lt(lit(self.end)));
        match (lower, upper) {
            (Some(l), Some(u)) => Some(l.and(u)),
            (l, u) => l.or(u),
        }
    }
}

/// The windows of one contig for the `fragments` of that contig and its `regions` (none: the
/// whole contig), each holding about `target` stored bytes.
pub(crate) fn windows(fragments: &[&FileEntry], regions: &[Region], target: u64) -> Vec<Window> {
    let (Some(first), Some(last)) = (
        fragments.iter().filter_map(|f| f.min_pos).min(),
        fragments.iter().filter_map(|f| f.max_pos).max(),
    ) else {
        return vec![whole()];
    };
    let (lo, hi) = if regions.is_empty() {
        (first, last)
    } else {
        (
            first.max(regions.iter().map(|r| r.start).min().unwrap_or(first)),
            last.min(regions.iter().map(|r| r.end).max().unwrap_or(last)),
        )
    };
    if lo > hi {
        return vec![whole()];
    }
    let below = |p: i64| stored_bytes_up_to(fragments, p);
    let bytes_between = |a: i64, b: i64| (below(b - 1) - below(a - 1)).max(0.0).round() as u64;
    let span = hi - lo + 1;
    let total = bytes_between(lo, hi + 1);
    let count = (total.div_ceil(target.max(1)) as i64).clamp(1, MAX_WINDOWS.min(span));
    let bound = |i: i64| lo + (span as i128 * i as i128 / count as i128) as i64;
    (0..count)
        .map(|i| {
            let (a, b) = (bound(i), bound(i + 1));
            Window {
                start: if i == 0 { i64::MIN } else { a },
                end: if i == count - 1 { i64::MAX } else { b },
                bytes: bytes_between(a, b),
            }
        })
        .collect()
}

/// Every position, with no bytes estimated (no span is known, or the regions lie outside it).
fn whole() -> Window {
    Window {
        start: i64::MIN,
        end: i64::MAX,
        bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use cohortdb_store::log_entry::FileKind;

    use super::*;

    fn fragment(min: i64, max: i64, bytes: u64) -> FileEntry {
        FileEntry {
            min_pos: Some(min),
            max_pos: Some(max),
            ..FileEntry::new("f", FileKind::Variants, 1, bytes)
        }
    }

    #[test]
    fn windows_cover_every_position_once_and_share_the_bytes() {
        let a = fragment(1_000, 50_999, 100 << 20);
        let b = fragment(20_000, 80_000, 30 << 20);
        for (regions, target) in [
            (vec![], WINDOW_BYTES),
            (vec![], 1),
            (
                vec![Region {
                    contig: "1".into(),
                    start: 30_000,
                    end: 40_000,
                }],
                1 << 20,
            ),
        ] {
            let w = windows(&[&a, &b], &regions, target);
            assert_eq!(w.first().unwrap().start, i64::MIN);
            assert_eq!(w.last().unwrap().end, i64::MAX);
            for pair in w.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "{w:?}");
                assert!(pair[0].start < pair[0].end, "{w:?}");
            }
            let bytes: u64 = w.iter().map(|w| w.bytes).sum();
            if regions.is_empty() {
                let all = (130u64 << 20) as f64;
                assert!(
                    (bytes as f64 - all).abs() < 1e-6 * all + w.len() as f64,
                    "{bytes}"
                );
                assert!(w.len() as i64 == MAX_WINDOWS || target > 1, "{}", w.len());
            } else {
                // 10,001 of a's 50,000 positions and 10,001 of b's 60,001.
                let want = (100u64 << 20) as f64 * 10_001.0 / 50_000.0
                    + (30u64 << 20) as f64 * 10_001.0 / 60_001.0;
                assert!((bytes as f64 - want).abs() < 64.0, "{bytes} {want}");
                assert_eq!(w.len(), (want / (1u64 << 20) as f64).ceil() as usize);
            }
        }
        assert_eq!(windows(&[], &[], 1), vec![whole()]);
    }

    #[test]
    fn a_window_filters_by_pos_with_open_ends() {
        assert!(whole().filter().is_none());
        let w = Window {
            start: 10,
            end: i64::MAX,
            bytes: 0,
        };
        assert_eq!(w.filter(), Some(col("pos").gt_eq(lit(10i64))));
    }
}
