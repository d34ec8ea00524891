//! What one scan of `variants` reads, decided when it is planned: the batches of the snapshot,
//! each with its fragments and their row groups chosen by statistics
//! ([`crate::rows::span_pruning`]), and the ranges of (contig, position) each output partition
//! covers. A plan is plain data (serde), so it can be sent to another node and read there.

use cohortdb_store::log_entry::{ExtraColumn, FileEntry};
use serde::{Deserialize, Serialize};

/// A place in the order rows are stored: contig (by name), then 1-based position.
pub type RowKey = (String, i64);

/// One row group of a fragment, with its `pos` range (1-based, inclusive; `None`: unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowGroupSpan {
    /// Its index in the fragment.
    pub index: usize,
    /// Smallest `pos`.
    pub min_pos: Option<i64>,
    /// Largest `pos`.
    pub max_pos: Option<i64>,
}

/// One fragment and the row groups of it the scan reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FragmentRead {
    /// The fragment, as the log lists it.
    pub file: FileEntry,
    /// The row groups chosen, in file order.
    pub row_groups: Vec<RowGroupSpan>,
}

impl FragmentRead {
    /// Whether a row group of this fragment may hold rows in `[from, to)`.
    pub(crate) fn overlaps(&self, group: &RowGroupSpan, range: &KeyRange) -> bool {
        let contig = self.file.contig.clone().unwrap_or_default();
        let first = (contig.clone(), group.min_pos.unwrap_or(i64::MIN));
        let last = (contig, group.max_pos.unwrap_or(i64::MAX));
        range.to.as_ref().is_none_or(|to| first < *to) && last >= range.from
    }
}

/// One batch: the samples it holds calls of, and its fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRead {
    /// The `sample_idx` range `[start, end)` of the batch (`None`: a fragment written before
    /// ranges were recorded).
    pub samples: Option<[u32; 2]>,
    /// Its samples are hom-ref where it has no record.
    pub missing_as_ref: bool,
    /// Its fragments chosen by the scan, by (contig, first position).
    pub fragments: Vec<FragmentRead>,
}

/// A half-open range `[from, to)` of row keys (`to` `None`: to the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// First key in the range.
    pub from: RowKey,
    /// First key after it.
    pub to: Option<RowKey>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            from: (String::new(), i64::MIN),
            to: None,
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, contig: &str, pos: i64) -> bool {
        let after_start = (contig, pos) >= (self.from.0.as_str(), self.from.1);
        let before_end = self
            .to
            .as_ref()
            .is_none_or(|(c, p)| (contig, pos) < (c.as_str(), *p));
        after_start && before_end
    }

    /// No key: `[k, k)`.
    pub fn none() -> Self {
        let from = Self::all().from;
        Self {
            to: Some(from.clone()),
            from,
        }
    }

    /// Whether every key is in the range.
    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }
}

/// A planned scan of `variants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPlan {
    /// The store's root inside its object store (fragment paths are relative to it).
    pub root: String,
    /// The typed INFO columns of the table (the schema is the fragment schema with them).
    pub extra_columns: Vec<ExtraColumn>,
    /// Every batch of the snapshot (those with no fragment chosen too: their samples are
    /// hom-ref or missing at every site), in sample order.
    pub batches: Vec<BatchRead>,
    /// Rows of different batches at one site merge into one row; without it (one batch, or
    /// fragments of a store written before batches were recorded) rows are read as stored.
    pub merge: bool,
    /// The snapshot's gVCF reference-block files (read only when merging).
    pub block_files: Vec<FileEntry>,
    /// The table columns produced, by index (`None`: all).
    pub projection: Option<Vec<usize>>,
    /// At most this many rows per partition.
    pub limit: Option<usize>,
    /// The key range of each output partition; together they cover every key once.
    pub partitions: Vec<KeyRange>,
}

impl ScanPlan {
    /// The number of row groups the batch with the most of them reads.
    pub fn most_row_groups(&self) -> usize {
        self.batches
            .iter()
            .map(|b| {
                b.fragments
                    .iter()
                    .map(|f| f.row_groups.len())
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Splits the scan into at most `target` partitions of about equal numbers of row groups
    /// (cut where a row group of the batch with the most of them starts). A site is never cut:
    /// each partition ends where the next begins.
    pub fn split(&mut self, target: usize) {
        let Some(pilot) = self.batches.iter().max_by_key(|b| {
            b.fragments
                .iter()
                .map(|f| f.row_groups.len())
                .sum::<usize>()
        }) else {
            self.partitions = vec![KeyRange::all()];
            return;
        };
        let mut starts: Vec<RowKey> = pilot
            .fragments
            .iter()
            .flat_map(|f| {
                let contig = f.file.contig.clone().unwrap_or_default();
                f.row_groups
                    .iter()
                    .filter_map(move |g| Some((contig.clone(), g.min_pos?)))
            })
            .collect();
        starts.sort();
        starts.dedup();
        let parts = target.clamp(1, starts.len().max(1));
        let mut cuts: Vec<RowKey> = (1..parts)
            .map(|k| starts[k * starts.len() / parts].clone())
            .collect();
        cuts.dedup();
        let mut from = KeyRange::all().from;
        self.partitions = Vec::with_capacity(cuts.len() + 1);
        for cut in cuts {
            self.partitions.push(KeyRange {
                from: std::mem::replace(&mut from, cut.clone()),
                to: Some(cut),
            });
        }
        self.partitions.push(KeyRange { from, to: None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohortdb_store::log_entry::FileKind;

    fn fragment(contig: &str, starts: &[i64]) -> FragmentRead {
        FragmentRead {
            file: FileEntry {
                contig: Some(contig.into()),
                ..FileEntry::new("f", FileKind::Variants, 1, 1)
            },
            row_groups: starts
                .iter()
                .enumerate()
                .map(|(index, &s)| RowGroupSpan {
                    index,
                    min_pos: Some(s),
                    max_pos: Some(s + 9),
                })
                .collect(),
        }
    }

    #[test]
    fn partitions_cover_every_key_once_and_cut_at_row_group_starts() {
        let mut plan = ScanPlan {
            root: String::new(),
            extra_columns: vec![],
            batches: vec![BatchRead {
                samples: Some([0, 10]),
                missing_as_ref: false,
                fragments: vec![fragment("1", &[1, 11, 21]), fragment("2", &[1, 11])],
            }],
            merge: false,
            block_files: vec![],
            projection: None,
            limit: None,
            partitions: vec![],
        };
        plan.split(2);
        assert_eq!(plan.partitions.len(), 2);
        let cut = ("1".to_string(), 21);
        assert_eq!(plan.partitions[0].to, Some(cut.clone()));
        assert_eq!(plan.partitions[1].from, cut);
        for (contig, pos) in [("1", 1), ("1", 20), ("1", 21), ("2", 5), ("3", i64::MAX)] {
            let holding = plan
                .partitions
                .iter()
                .filter(|p| p.contains(contig, pos))
                .count();
            assert_eq!(holding, 1, "{contig}:{pos}");
        }
        let f = &plan.batches[0].fragments[0];
        assert!(!f.overlaps(&f.row_groups[0], &plan.partitions[1]));
        assert!(f.overlaps(&f.row_groups[2], &plan.partitions[1]));
        assert!(
            ["1", "2", ""].iter().all(
                |c| !KeyRange::none().contains(c, i64::MIN) && !KeyRange::none().contains(c, 5)
            )
        );
        assert_eq!(plan.most_row_groups(), 5);
        plan.split(16);
        assert_eq!(
            plan.partitions.len(),
            5,
            "no more partitions than row groups"
        );
    }
}
