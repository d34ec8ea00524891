//! Which batches compaction merges into one (`admin compact --across-batches`): a pure
//! decision over the snapshot's batches, kept apart from the writing.
//!
//! Readers merge a site across every batch that holds it, so each query costs one merge input
//! per batch over its range. Batches that merge must be adjacent (one batch's sample range
//! ends where the next one's starts) and agree on `--missing-as-ref`, so that the merged
//! batch is again one sample range with one rule for the sites it has no record of.
//!
//! [`BatchPolicy::Tiered`] is size-tiered compaction as LSM stores do it: a batch's tier is
//! `floor(log_F(samples / u))`, F the fan-in and u the smallest batch of its run of adjacent
//! batches; F adjacent batches of one tier merge into one of the next tier, and a batch
//! followed by a batch of a higher tier merges into it (so tiers fall from the oldest batch to
//! the newest). At most F - 1 batches then stay at each tier: 200 weekly batches of one size
//! become at most 3 per tier over 4 tiers with F = 4, and every sample is rewritten about
//! `log_F` of the batch count times. [`BatchPolicy::All`] merges each run into one batch.

use std::ops::Range;

/// How `admin compact` merges batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPolicy {
    /// Size-tiered with this fan-in (at least 2): bounded batches, little rewriting.
    Tiered {
        /// Batches of one tier that merge into one of the next.
        fan_in: usize,
    },
    /// Every run of adjacent batches into one.
    All,
}

/// The fan-in of `--across-batches tiered` unless given.
pub const DEFAULT_FAN_IN: usize = 4;

/// One batch as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// Its `sample_idx` range `[start, end)`.
    pub samples: [u32; 2],
    /// Whether its samples are hom-ref where it has no record.
    pub missing_as_ref: bool,
}

impl BatchSpan {
    fn size(&self) -> u64 {
        u64::from(self.samples[1].saturating_sub(self.samples[0])).max(1)
    }

    /// Whether `next` continues this batch: adjacent samples, the same rule for absent sites.
    fn continued_by(&self, next: &BatchSpan) -> bool {
        self.samples[1] == next.samples[0] && self.missing_as_ref == next.missing_as_ref
    }
}

/// The merges `policy` makes of `batches` (ascending by sample range): ranges of indices into
/// `batches`, each of at least two adjacent batches, ascending.
pub fn plan_merges(batches: &[BatchSpan], policy: BatchPolicy) -> Vec<Range<usize>> {
    let mut merges = Vec::new();
    let mut start = 0;
    while start < batches.len() {
        let mut end = start + 1;
        while end < batches.len() && batches[end - 1].continued_by(&batches[end]) {
            end += 1;
        }
        let run = &batches[start..end];
        let groups = match policy {
            BatchPolicy::All => std::iter::once(0..run.len()).collect(),
            BatchPolicy::Tiered { fan_in } => tiered(run, fan_in.max(2)),
        };
        merges.extend(
            groups
                .into_iter()
                .filter(|g| g.len() > 1)
                .map(|g| g.start + start..g.end + start),
        );
        start = end;
    }
    merges
}

/// Size-tiered merging of one run of adjacent batches: the groups the stack ends with.
fn tiered(run: &[BatchSpan], fan_in: usize) -> Vec<Range<usize>> {
    let unit = run.iter().map(BatchSpan::size).min().unwrap_or(1);
    let tier = |size: u64| -> u32 {
        let mut tier = 0;
        let mut bound = unit.saturating_mul(fan_in as u64);
        while size >= bound {
            tier += 1;
            bound = bound.saturating_mul(fan_in as u64);
        }
        tier
    };
    // (batches, samples) of each merged batch so far, oldest first.
    let mut stack: Vec<(Range<usize>, u64)> = Vec::new();
    for (i, batch) in run.iter().enumerate() {
        stack.push((i..i + 1, batch.size()));
        loop {
            let n = stack.len();
            let tiers: Vec<u32> = stack.iter().map(|(_, size)| tier(*size)).collect();
            let take = if n >= 2 && tiers[n - 2] < tiers[n - 1] {
                2
            } else if n >= fan_in && tiers[n - fan_in..].iter().all(|&t| t == tiers[n - 1]) {
                fan_in
            } else {
                break;
            };
            let merged = stack.split_off(n - take);
            let range = merged[0].0.start..merged[take - 1].0.end;
            stack.push((range, merged.iter().map(|(_, size)| size).sum()));
        }
    }
    stack.into_iter().map(|(range, _)| range).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(sizes: &[u32]) -> Vec<BatchSpan> {
        let mut start = 0;
        sizes
            .iter()
            .map(|&size| {
                start += size;
                BatchSpan {
                    samples: [start - size, start],
                    missing_as_ref: false,
                }
            })
            .collect()
    }

    /// The batches left after applying `merges` to `n` batches.
    fn left(n: usize, merges: &[Range<usize>]) -> usize {
        n - merges.iter().map(|m| m.len() - 1).sum::<usize>()
    }

    #[test]
    fn equal_batches_merge_like_a_counter_in_base_fan_in() {
        let tiered = BatchPolicy::Tiered { fan_in: 4 };
        for n in 1..=64usize {
            let merges = plan_merges(&batches(&vec![1000; n]), tiered);
            // Base-4 digits of n: how many batches of each tier stay.
            let mut digits = 0;
            let mut rest = n;
            while rest > 0 {
                digits += rest % 4;
                rest /= 4;
            }
            assert_eq!(left(n, &merges), digits, "{n} batches: {merges:?}");
        }
        // 200 weekly batches: 200 = 3*64 + 2*4, five batches.
        let merges = plan_merges(&batches(&[1000; 200]), tiered);
        assert_eq!(left(200, &merges), 5);
        assert_eq!(merges, [0..64, 64..128, 128..192, 192..196, 196..200]);
    }

    #[test]
    fn uneven_batches_stay_bounded() {
        // Sizes wandering within a factor of three, and a large first phase.
        let mut sizes: Vec<u32> = (0..300).map(|i| 700 + (i * 7919 % 1400)).collect();
        sizes.insert(0, 200_000);
        let all = batches(&sizes);
        for fan_in in [2, 4, 8] {
            let merges = plan_merges(&all, BatchPolicy::Tiered { fan_in });
            let samples: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
            let tiers = (samples as f64 / 700.0).log(fan_in as f64).ceil() as usize + 1;
            let n = left(all.len(), &merges);
            assert!(n <= (fan_in - 1) * tiers, "fan-in {fan_in}: {n} batches");
            for pair in merges.windows(2) {
                assert!(pair[0].end <= pair[1].start, "{merges:?}");
            }
        }
    }

    #[test]
    fn only_adjacent_batches_with_one_rule_merge() {
        let mut all = batches(&[10, 10, 10, 10, 10, 10]);
        all[2].missing_as_ref = true;
        all[5].samples = [100, 110]; // a gap before it
        assert_eq!(
            plan_merges(&all, BatchPolicy::All),
            vec![0..2, 3..5],
            "runs end at a rule change and at a gap"
        );
        assert!(plan_merges(&all, BatchPolicy::Tiered { fan_in: 4 }).is_empty());
        assert_eq!(
            plan_merges(&all, BatchPolicy::Tiered { fan_in: 2 }),
            vec![0..2, 3..5]
        );
    }
}
