//! A cohort operation over regions as tasks of a distributed plan: what each task runs (plain
//! data, sent to the workers), and how regions are cut into shares. The counts of a site depend
//! on that site's rows alone, so the tasks' rows together are the operation's rows.
//!
//! Split: allele frequencies and case/control counts for the admin and record tiers,
//! association for the admin tier. The aggregate tier's operations are never split: their
//! refusals, noise and count floor run where the noise key and budget are, on the
//! coordinator. Association at the record tier is not split either: the coordinator's engine
//! checks the project's phenotype columns, a worker's would not.

use serde::{Deserialize, Serialize};

use crate::policy::access_policy::Tier;
use crate::region::Region;

/// An operation that can be split by region, with its arguments other than regions and
/// cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum SplitOperation {
    /// Allele frequencies in one cohort.
    AlleleFrequencies,
    /// Case/control counts: cases, then controls.
    CaseControl,
    /// Per-variant regression of `trait_column` of `table` on dosage with `covariates`.
    Association {
        /// The phenotype table.
        table: String,
        /// The trait.
        trait_column: String,
        /// The covariates.
        covariates: Vec<String>,
        /// `linear`, `logistic`, or blank (the trait chooses).
        model: String,
    },
}

impl SplitOperation {
    /// Whether the operation is split at `tier` (see the module's documentation).
    pub fn splits_at(&self, tier: Tier) -> bool {
        match self {
            Self::AlleleFrequencies | Self::CaseControl => {
                matches!(tier, Tier::Admin | Tier::Record)
            }
            Self::Association { .. } => tier == Tier::Admin,
        }
    }

    /// The SQL name of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AlleleFrequencies => "allele_frequencies",
            Self::CaseControl => "case_control",
            Self::Association { .. } => "association",
        }
    }
}

/// What the tasks of one split operation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionTasks {
    /// The operation.
    pub operation: SplitOperation,
    /// The store version the query was planned on.
    pub version: u64,
    /// The operation's cohorts, resolved: serialized bitmaps over `sample_idx`, hex.
    pub cohorts: Vec<String>,
    /// The regions of each task (one task until the planner splits it).
    pub tasks: Vec<Vec<Region>>,
}

/// `regions` (none: every contig of `spans`) cut into `n` lists covering about equal lengths of
/// what `spans` cover. A region over no span stays whole in the first list, so that its errors
/// (an unknown contig) are those of the unsplit call.
pub(crate) fn split_regions(regions: &[Region], spans: &[Region], n: usize) -> Vec<Vec<Region>> {
    // The covered part of each region: the smallest and largest position spans reach on its
    // contig.
    let covered = |contig: &str| {
        spans
            .iter()
            .filter(|s| s.contig == contig)
            .fold(None, |acc: Option<(i64, i64)>, s| {
                Some(acc.map_or((s.start, s.end), |(a, b)| (a.min(s.start), b.max(s.end))))
            })
    };
    let whole: Vec<Region>;
    let regions = if regions.is_empty() {
        let mut contigs: Vec<&str> = spans.iter().map(|s| s.contig.as_str()).collect();
        contigs.sort();
        contigs.dedup();
        whole = contigs
            .into_iter()
            .filter_map(|c| {
                covered(c).map(|(start, end)| Region {
                    contig: c.to_string(),
                    start,
                    end,
                })
            })
            .collect();
        &whole[..]
    } else {
        regions
    };
    let mut out: Vec<Vec<Region>> = vec![Vec::new(); n];
    let mut pieces: Vec<Region> = Vec::new();
    for region in regions {
        match covered(&region.contig) {
            Some((lo, hi)) if region.start.max(lo) <= region.end.min(hi) => pieces.push(Region {
                contig: region.contig.clone(),
                start: region.start.max(lo),
                end: region.end.min(hi),
            }),
            _ => out[0].push(region.clone()),
        }
    }
    let total: i64 = pieces.iter().map(|p| p.end - p.start + 1).sum();
    let share = (total + n as i64 - 1) / n as i64;
    let (mut task, mut filled) = (0usize, 0i64);
    for mut piece in pieces {
        while piece.start <= piece.end {
            let room = share - filled;
            let end = piece.end.min(piece.start + room - 1);
            out[task].push(Region {
                contig: piece.contig.clone(),
                start: piece.start,
                end,
            });
            filled += end - piece.start + 1;
            piece.start = end + 1;
            if filled >= share && task + 1 < n {
                task += 1;
                filled = 0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(contig: &str, start: i64, end: i64) -> Region {
        Region {
            contig: contig.into(),
            start,
            end,
        }
    }

    #[test]
    fn regions_split_into_equal_covered_lengths_in_order() {
        let spans = [region("1", 101, 200), region("2", 1, 100)];
        let tasks = split_regions(&[], &spans, 4);
        assert_eq!(
            tasks,
            vec![
                vec![region("1", 101, 150)],
                vec![region("1", 151, 200)],
                vec![region("2", 1, 50)],
                vec![region("2", 51, 100)],
            ]
        );
        // Clamped to what fragments cover; an uncovered region stays whole in task 0.
        let tasks = split_regions(
            &[
                region("1", 1, 120),
                region("9", 5, 6),
                region("2", 91, 1000),
            ],
            &spans,
            2,
        );
        assert_eq!(
            tasks,
            vec![
                vec![region("9", 5, 6), region("1", 101, 115)],
                vec![region("1", 116, 120), region("2", 91, 100)],
            ]
        );
        // More tasks than positions: the rest are empty.
        let tasks = split_regions(&[region("1", 150, 151)], &spans, 3);
        assert_eq!(tasks.iter().filter(|t| !t.is_empty()).count(), 2);
    }
}
