//! Commit log entries: the JSON document of one version, and the file entries it adds.
//!
//! Format contract (version 1): `_log/<version:020>.json` holds one [`LogEntry`]. Fields are
//! only ever added (with serde defaults); a reader refuses an entry whose `format_version` is
//! newer than [`FORMAT_VERSION`].

use serde::{Deserialize, Serialize};

/// The store format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// Variant fragments and samples added from VCF/BCF.
    Ingest,
    /// A phenotype table added or replaced.
    Phenotypes,
    /// Participants withdrew consent.
    Withdraw,
    /// Fragments rewritten into fewer.
    Compact,
    /// A named cohort saved or redefined.
    Cohort,
    /// Coverage bins added from BAM/CRAM.
    Coverage,
}

/// The kind of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A variant fragment under `variants/contig=<name>/`.
    Variants,
    /// Sample registry rows under `samples/`.
    Samples,
    /// A phenotype table under `phenotypes/<table>/`.
    Phenotypes,
    /// A named cohort's definition under `cohorts/<name>/` (JSON; its name in `table`).
    Cohort,
    /// Coverage bins of one contig under `coverage/contig=<name>/` (see
    /// `coverage_bins`).
    Coverage,
    /// gVCF reference blocks of one batch and contig under `coverage/contig=<name>/`: the
    /// samples called hom-ref over each block (same layout as coverage files, `min_depth` 0).
    RefBlocks,
}

/// Scalar type of a typed INFO or FORMAT column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// 32-bit signed integer.
    Integer,
    /// 32-bit float.
    Float,
    /// Boolean flag (INFO `Type=Flag`).
    Flag,
    /// UTF-8 text (`Type=String` and `Type=Character`).
    String,
}

/// A typed column beyond the fixed fragment schema (an INFO field, `info_<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraColumn {
    /// Column name, e.g. `info_af`.
    pub name: String,
    /// Element type.
    pub kind: ValueKind,
    /// True for a list column (VCF `Number` other than 0, 1 or `A` after splitting).
    pub list: bool,
}

/// One file a commit adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the store root.
    pub path: String,
    /// What the file holds.
    pub kind: FileKind,
    /// Number of rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Contig of a variant fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contig: Option<String>,
    /// Smallest `pos` (1-based) in a variant fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pos: Option<i64>,
    /// Largest `pos` (1-based) in a variant fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pos: Option<i64>,
    /// Largest `end_pos` (1-based, inclusive) in a variant fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_end: Option<i64>,
    /// One past the largest `sample_idx` registered by a samples file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_idx_end: Option<u32>,
    /// Typed INFO columns of a variant fragment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ExtraColumn>,
    /// The table a phenotype file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The `sample_idx` range `[start, end)` of the batch a variant fragment holds calls of:
    /// fragments with one range are one batch; readers merge a site across batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_range: Option<[u32; 2]>,
    /// The batch was ingested with `--missing-as-ref`: its samples are hom-ref at sites where
    /// it has no record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing_as_ref: bool,
}

impl FileEntry {
    /// A new file's path beside this one, with its extension (`variants/contig=1/<uuid>.parquet`
    /// for a fragment of `variants/contig=1/`, `cohorts/x/<uuid>.json` for a saved cohort): a
    /// rewritten file stays in its table's directory.
    pub fn sibling_path(&self) -> String {
        let (directory, name) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
        format!("{directory}/{}.{extension}", uuid::Uuid::new_v4())
    }

    /// An entry with only the fields every file has; the kind-specific ones are `None`/empty.
    pub fn new(path: impl Into<String>, kind: FileKind, rows: u64, bytes: u64) -> Self {
        Self {
            path: path.into(),
            kind,
            rows,
            bytes,
            contig: None,
            min_pos: None,
            max_pos: None,
            max_end: None,
            sample_idx_end: None,
            columns: Vec::new(),
            table: None,
            sample_range: None,
            missing_as_ref: false,
        }
    }
}

/// One version of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Store format version of this entry.
    pub format_version: u32,
    /// The version this entry defines.
    pub version: u64,
    /// What the commit did.
    pub kind: CommitKind,
    /// Wall-clock time of the commit, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Files added.
    #[serde(default)]
    pub add: Vec<FileEntry>,
    /// Paths of files removed.
    #[serde(default)]
    pub remove: Vec<String>,
    /// `sample_idx` of participants who withdrew consent in this commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdraw: Vec<u32>,
    /// `sample_idx` whose data this commit replaces (`ingest vcf --replace`): the participant
    /// is registered again under a new index, and the old one is hidden like a withdrawal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<u32>,
    /// Free-form description of the operation (inputs, tool version).
    #[serde(default)]
    pub operation: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_tolerate_missing_optional_fields() {
        let json = r#"{"format_version":1,"version":3,"kind":"ingest","timestamp_ms":5,
            "add":[{"path":"samples/a.parquet","kind":"samples","rows":2,"bytes":10}]}"#;
        let entry: LogEntry = serde_json::from_str(json).unwrap();
        assert_eq!(entry.add[0].contig, None);
        assert!(entry.remove.is_empty());
        let again: LogEntry =
            serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(again, entry);
    }
}
