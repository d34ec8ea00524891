//! `ingest bam`: BAM/CRAM files -> per-bin coverage bitmaps -> one commit.
//!
//! Each file is one sample (its read groups' `SM`). A sample already in the store gets the
//! coverage attached to its `sample_idx`; a new one is registered. Files are read in parallel
//! (one rayon task each); each yields, per bin, how many depth thresholds its mean reaches, and
//! those levels are folded into one roaring bitmap per bin and threshold. One coverage file
//! per contig, one commit; nothing is committed unless every input is read without error.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use cohortdb_store::coverage_bins::{CoverageBin, encode_coverage};
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::progress::{Progress, Unit};
use cohortdb_store::sample_registry::{SampleIndex, SampleRecord, read_samples};
use cohortdb_store::{Commit, Store};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::bam_depth::{DepthOptions, bin_levels, bins};
use crate::bam_input::BamInput;
use crate::error::{IngestError, Result};
use crate::ingest_job::{encode_contig, put_samples};

/// Options of `ingest bam`.
#[derive(Debug, Clone)]
pub struct CoverageOptions {
    /// Which reads count (mosdepth's defaults).
    pub depth: DepthOptions,
    /// Bin width in bases (mosdepth `--by`).
    pub bin_size: u32,
    /// Depth thresholds, ascending (default 10 and 20).
    pub thresholds: Vec<u32>,
    /// Reference FASTA for CRAM inputs.
    pub reference: Option<PathBuf>,
    /// Where the bar over the bases read goes (hidden by default).
    pub progress: Progress,
}

impl Default for CoverageOptions {
    fn default() -> Self {
        Self {
            depth: DepthOptions::default(),
            bin_size: 1000,
            thresholds: vec![10, 20],
            reference: None,
            progress: Progress::hidden(),
        }
    }
}

/// What `ingest bam` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageSummary {
    /// The committed version.
    pub version: u64,
    /// Samples read (one per input).
    pub samples: usize,
    /// Of those, samples newly registered.
    pub samples_added: usize,
    /// Coverage files written (one per contig).
    pub files: usize,
}

/// Per contig: its length and, per bin and threshold, the samples reaching it.
type ContigBins = BTreeMap<String, (usize, Vec<Vec<RoaringBitmap>>)>;

/// Computes the coverage of `inputs` and commits it to `store` (see the module docs).
pub async fn ingest_bam(
    store: &Store,
    inputs: &[String],
    options: &CoverageOptions,
) -> Result<CoverageSummary> {
    if options.bin_size == 0 {
        return Err(IngestError::Inputs {
            file: "--bin-size".into(),
            reason: "must be at least 1".into(),
        });
    }
    if options.thresholds.is_empty() || options.thresholds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(IngestError::Inputs {
            file: "--thresholds".into(),
            reason: "give one or more depths in ascending order".into(),
        });
    }
    let snapshot = store.snapshot().await?;
    let registered = read_samples(store, &snapshot).await?;
    let index = SampleIndex::new(&registered);
    let withdrawn = snapshot.state.withdrawn_bitmap();

    // Open every input first: the samples are known before any depth is computed.
    let opened: Vec<BamInput> = inputs
        .iter()
        .map(|path| BamInput::open(path, options.reference.as_deref()))
        .collect::<Result<_>>()?;
    let mut next = snapshot.state.next_sample_idx;
    let mut new_samples = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut planned = Vec::new();
    for (input, path) in opened.into_iter().zip(inputs) {
        if let Some(earlier) = seen.insert(input.sample.clone(), path) {
            return Err(IngestError::Inputs {
                file: path.clone(),
                reason: format!("sample {:?} is also the sample of {earlier}", input.sample),
            });
        }
        let sample_idx = match index.get(&input.sample) {
            Some(idx) if withdrawn.contains(idx) => {
                return Err(IngestError::Inputs {
                    file: path.clone(),
                    reason: format!("sample {:?} has withdrawn consent", input.sample),
                });
            }
            Some(idx) => idx,
            None => {
                new_samples.push(SampleRecord {
                    sample_idx: next,
                    sample_id: input.sample.clone(),
                    source: path.as_str().into(),
                });
                next += 1;
                next - 1
            }
        };
        planned.push((input, sample_idx));
    }

    let bases = planned
        .iter()
        .flat_map(|(input, _)| &input.contigs)
        .map(|(_, length)| *length as u64)
        .sum();
    options
        .progress
        .start(Some(bases), Unit::Items("bases"), "reading alignments");
    let bins = tokio::task::block_in_place(|| compute_bins(planned, options));
    options.progress.finish();
    let bins = bins?;
    let mut written = Vec::new();
    let result = write_bins(store, &bins, options, &mut written).await;
    if let Err(e) = result {
        store.discard(&written).await;
        return Err(e);
    }
    let files = written.len();
    put_samples(store, &new_samples, &mut written).await?;
    let commit = Commit {
        kind: CommitKind::Coverage,
        add: written,
        remove: vec![],
        withdraw: Vec::new(),
        retire: Vec::new(),
        operation: serde_json::json!({
            "inputs": inputs,
            "bin_size": options.bin_size,
            "thresholds": options.thresholds,
            "min_mapq": options.depth.min_mapq,
            "exclude_flags": options.depth.exclude_flags,
            "tool": concat!("cohortdb ", env!("CARGO_PKG_VERSION")),
        }),
    };
    let committed = store.commit_or_discard(&snapshot, commit).await?;
    Ok(CoverageSummary {
        version: committed.version(),
        samples: inputs.len(),
        samples_added: new_samples.len(),
        files,
    })
}

/// Reads every input in parallel and folds their bin levels into bitmaps.
fn compute_bins(planned: Vec<(BamInput, u32)>, options: &CoverageOptions) -> Result<ContigBins> {
    let bins: Mutex<ContigBins> = Mutex::new(BTreeMap::new());
    let bin_size = options.bin_size as usize;
    planned
        .into_par_iter()
        .try_for_each(|(input, sample_idx)| {
            let contigs = input.contigs.clone();
            let file = format!("sample {}", input.sample);
            input.for_each_contig(options.depth, &options.progress, |tid, depths| {
            let levels = bin_levels(&depths, bin_size, &options.thresholds);
            let (name, length) = &contigs[tid];
            let mut bins = bins.lock().map_err(|_| IngestError::Inputs {
                file: file.clone(),
                reason: "another input's reader failed".into(),
            })?;
            let (known_length, per_bin) = bins.entry(name.clone()).or_insert_with(|| {
                (
                    *length,
                    vec![vec![RoaringBitmap::new(); options.thresholds.len()]; levels.len()],
                )
            });
            if known_length != length {
                return Err(IngestError::Inputs {
                    file: file.clone(),
                    reason: format!(
                        "contig {name} has length {length} here but {known_length} in another input"
                    ),
                });
            }
            for (bin, level) in per_bin.iter_mut().zip(levels) {
                for reached in &mut bin[..usize::from(level)] {
                    reached.insert(sample_idx);
                }
            }
            Ok(())
        })
        })?;
    bins.into_inner().map_err(|_| IngestError::Inputs {
        file: "ingest bam".into(),
        reason: "a reader thread failed".into(),
    })
}

async fn write_bins(
    store: &Store,
    contigs: &ContigBins,
    options: &CoverageOptions,
    written: &mut Vec<FileEntry>,
) -> Result<()> {
    for (contig, (length, per_bin)) in contigs {
        let rows: Vec<CoverageBin> = bins(*length, options.bin_size as usize)
            .zip(per_bin)
            .flat_map(|((start, end), reached)| {
                options
                    .thresholds
                    .iter()
                    .zip(reached)
                    .map(move |(&min_depth, samples)| CoverageBin {
                        start: start as i64 + 1,
                        end: end as i64,
                        min_depth,
                        samples: samples.clone(),
                    })
            })
            .collect();
        let bytes = encode_coverage(contig, &rows)?;
        let path = format!(
            "coverage/contig={}/{}.parquet",
            encode_contig(contig),
            uuid::Uuid::new_v4()
        );
        let size = bytes.len() as u64;
        store.put_new_file(&path, bytes).await?;
        written.push(FileEntry {
            contig: Some(contig.clone()),
            min_pos: Some(1),
            max_pos: Some(*length as i64),
            max_end: Some(*length as i64),
            ..FileEntry::new(path, FileKind::Coverage, rows.len() as u64, size)
        });
    }
    Ok(())
}
