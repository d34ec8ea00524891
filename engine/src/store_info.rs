//! What a store holds, as `cohortdb info` and the admin service's `StoreInfo` show it: one
//! computation, with what a tier may not see blanked ([`StoreInfo::visible_to`]).

use cohortdb_store::log_entry::{FORMAT_VERSION, FileKind};

use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::policy::access_policy::Tier;

/// A description of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The store's location as it was opened (blank for tiers other than admin).
    pub location: String,
    /// The snapshot's version.
    pub version: u64,
    /// The store format version this build writes.
    pub format_version: u32,
    /// Registered participants: each sample ID once (an index replaced by `--replace` is not
    /// counted), withdrawn ones included (purged or not), so that the number does not move
    /// with a withdrawal.
    pub samples: u64,
    /// Of them, those who withdrew consent.
    pub withdrawn: u64,
    /// Indices whose data `ingest vcf --replace` replaced.
    pub replaced: u64,
    /// Per contig, the stored variant rows (one per ALT per batch holding it).
    pub contigs: Vec<(String, u64)>,
    /// Variant fragments.
    pub fragments: u64,
    /// Bytes of every live file.
    pub bytes: u64,
    /// Phenotype tables with their rows.
    pub phenotype_tables: Vec<(String, u64)>,
    /// Names of the saved cohorts.
    pub named_cohorts: Vec<String>,
    /// BAM coverage files.
    pub coverage_files: u64,
    /// gVCF reference-block files.
    pub ref_block_files: u64,
}

impl StoreInfo {
    /// Stored variant rows over every contig.
    pub fn variant_rows(&self) -> u64 {
        self.contigs.iter().map(|(_, rows)| rows).sum()
    }

    /// This description with another version (to compare two snapshots but for it).
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// What `tier` may see: the aggregate tier sees nothing that moves with a withdrawal (the
    /// number withdrawn, the stored rows and bytes a purge rewrites), and only admin sees the
    /// location.
    pub fn visible_to(mut self, tier: Tier) -> Self {
        if tier != Tier::Admin {
            self.location.clear();
        }
        if tier == Tier::Aggregate {
            self.withdrawn = 0;
            self.replaced = 0;
            self.bytes = 0;
            for (_, rows) in &mut self.contigs {
                *rows = 0;
            }
            for (_, rows) in &mut self.phenotype_tables {
                *rows = 0;
            }
        }
        self
    }
}

impl CohortEngine {
    /// The description of this engine's snapshot (everything; see [`StoreInfo::visible_to`]).
    pub async fn info(&self) -> Result<StoreInfo> {
        let state = &self.snapshot().state;
        let retired: roaring::RoaringBitmap = state.retired.iter().copied().collect();
        let withdrawn: roaring::RoaringBitmap = state.withdrawn.iter().copied().collect();
        // A purge removes withdrawn participants' registry rows; their indices stay withdrawn.
        // Read from the registry's index column: no record (and ID copy) per participant.
        let indices = self
            .sample_batch
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::UInt32Array>()
            .map(|a| a.values().to_vec())
            .unwrap_or_else(|| self.sample_records().iter().map(|s| s.sample_idx).collect());
        let mut sorted = indices;
        sorted.sort_unstable();
        let registered = (roaring::RoaringBitmap::from_sorted_iter(sorted).unwrap_or_default()
            | &withdrawn)
            - &retired;
        let fragments: Vec<_> = state.variant_fragments().collect();
        let contigs = state
            .contigs()
            .into_iter()
            .map(|contig| {
                let rows = fragments
                    .iter()
                    .filter(|f| f.contig.as_deref() == Some(&contig))
                    .map(|f| f.rows)
                    .sum();
                (contig, rows)
            })
            .collect();
        let count = |kind: FileKind| state.files.values().filter(|f| f.kind == kind).count() as u64;
        Ok(StoreInfo {
            location: self.store().location().url.clone(),
            version: self.snapshot().version(),
            format_version: FORMAT_VERSION,
            samples: registered.len(),
            withdrawn: (withdrawn & &registered).len(),
            replaced: retired.len(),
            contigs,
            fragments: fragments.len() as u64,
            bytes: state.files.values().map(|f| f.bytes).sum(),
            phenotype_tables: state
                .named_files(FileKind::Phenotypes)
                .map(|(name, file)| (name.to_string(), file.rows))
                .collect(),
            named_cohorts: self
                .named_cohorts()
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect(),
            coverage_files: count(FileKind::Coverage),
            ref_block_files: count(FileKind::RefBlocks),
        })
    }
}
