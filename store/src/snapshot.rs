//! A snapshot: the set of live files at one version of the commit log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::log_entry::{ExtraColumn, FileEntry, FileKind, LogEntry};

/// The state of the store at one version; also the content of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// The version this state reflects (0 = empty store).
    pub version: u64,
    /// Live files by path.
    pub files: BTreeMap<String, FileEntry>,
    /// The next unused `sample_idx`; indices are never reused.
    pub next_sample_idx: u32,
    /// `sample_idx` of every participant who withdrew consent, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<u32>,
    /// `sample_idx` whose data was replaced (the participant lives on under a newer index),
    /// ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<u32>,
}

impl SnapshotState {
    /// Applies one log entry on top of this state.
    pub fn apply(&mut self, entry: &LogEntry) {
        for path in &entry.remove {
            self.files.remove(path);
        }
        for file in &entry.add {
            if file.kind == FileKind::Samples {
                self.next_sample_idx = self
                    .next_sample_idx
                    .max(file.sample_idx_end.unwrap_or(self.next_sample_idx));
            }
            self.files.insert(file.path.clone(), file.clone());
        }
        for (set, new) in [
            (&mut self.withdrawn, &entry.withdraw),
            (&mut self.retired, &entry.retire),
        ] {
            if !new.is_empty() {
                set.extend(new);
                set.sort_unstable();
                set.dedup();
            }
        }
        self.version = entry.version;
    }

    /// The participants who withdrew consent, as a bitmap over `sample_idx`.
    pub fn withdrawn_bitmap(&self) -> roaring::RoaringBitmap {
        self.withdrawn.iter().copied().collect()
    }

    /// The `sample_idx` no read path shows: withdrawn participants and replaced indices.
    pub fn hidden_bitmap(&self) -> roaring::RoaringBitmap {
        self.withdrawn
            .iter()
            .chain(&self.retired)
            .copied()
            .collect()
    }

    /// Live variant fragments, in path order.
    pub fn variant_fragments(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values().filter(|f| f.kind == FileKind::Variants)
    }

    /// Live files of any of `kinds`, in path order.
    pub fn files_of<'a>(&'a self, kinds: &'a [FileKind]) -> impl Iterator<Item = &'a FileEntry> {
        self.files.values().filter(|f| kinds.contains(&f.kind))
    }

    /// Live sample registry files.
    pub fn sample_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values().filter(|f| f.kind == FileKind::Samples)
    }

    /// Live files of `kind` that carry a name (phenotype tables, named cohorts):
    /// (name, file), by path.
    pub fn named_files(&self, kind: FileKind) -> impl Iterator<Item = (&str, &FileEntry)> {
        self.files
            .values()
            .filter(move |f| f.kind == kind)
            .filter_map(|f| f.table.as_deref().map(|t| (t, f)))
    }

    /// Contigs with at least one fragment, sorted by name.
    pub fn contigs(&self) -> Vec<String> {
        let mut contigs: Vec<String> = self
            .variant_fragments()
            .filter_map(|f| f.contig.clone())
            .collect();
        contigs.sort();
        contigs.dedup();
        contigs
    }

    /// The union of the typed INFO columns of all fragments, in first-seen order.
    pub fn extra_columns(&self) -> Result<Vec<ExtraColumn>> {
        merge_extra_columns(
            &[],
            self.variant_fragments()
                .flat_map(|f| f.columns.iter().cloned()),
        )
    }
}

/// Adds `new` columns to `existing`, refusing a name that comes with two different types.
pub fn merge_extra_columns(
    existing: &[ExtraColumn],
    new: impl IntoIterator<Item = ExtraColumn>,
) -> Result<Vec<ExtraColumn>> {
    let mut merged = existing.to_vec();
    for column in new {
        match merged.iter().find(|c| c.name == column.name) {
            Some(seen) if seen == &column => {}
            Some(seen) => {
                return Err(StoreError::ColumnTypeConflict {
                    column: column.name.clone(),
                    existing: describe(seen),
                    new: describe(&column),
                });
            }
            None => merged.push(column),
        }
    }
    Ok(merged)
}

fn describe(column: &ExtraColumn) -> String {
    if column.list {
        format!("a list of {:?}", column.kind)
    } else {
        format!("{:?}", column.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_entry::ValueKind;

    fn column(name: &str, kind: ValueKind) -> ExtraColumn {
        ExtraColumn {
            name: name.into(),
            kind,
            list: false,
        }
    }

    #[test]
    fn extra_columns_union_and_conflicts() {
        let a = [column("info_dp", ValueKind::Integer)];
        let merged = merge_extra_columns(&a, [column("info_af", ValueKind::Float)]).unwrap();
        assert_eq!(merged.len(), 2);
        let err = merge_extra_columns(&a, [column("info_dp", ValueKind::Float)]).unwrap_err();
        assert!(matches!(err, StoreError::ColumnTypeConflict { .. }));
    }
}

#[cfg(test)]
mod withdrawal_tests {
    use super::*;
    use crate::log_entry::{CommitKind, FORMAT_VERSION};

    fn withdrawal(version: u64, withdraw: Vec<u32>) -> LogEntry {
        LogEntry {
            format_version: FORMAT_VERSION,
            version,
            kind: CommitKind::Withdraw,
            timestamp_ms: 0,
            add: vec![],
            remove: vec![],
            withdraw,
            retire: vec![],
            operation: serde_json::Value::Null,
        }
    }

    #[test]
    fn withdrawals_accumulate_and_survive_a_checkpoint() {
        let mut state = SnapshotState::default();
        state.apply(&withdrawal(1, vec![7, 3]));
        state.apply(&withdrawal(2, vec![3, 11]));
        assert_eq!(state.withdrawn, vec![3, 7, 11]);
        assert_eq!(state.withdrawn_bitmap().len(), 3);
        let json = serde_json::to_string(&state).unwrap();
        let back: SnapshotState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        // A state written before withdrawals existed reads as none withdrawn.
        let old: SnapshotState =
            serde_json::from_str(r#"{"version":1,"files":{},"next_sample_idx":4}"#).unwrap();
        assert!(old.withdrawn.is_empty());
    }
}
