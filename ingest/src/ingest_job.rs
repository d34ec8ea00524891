//! One ingest: inputs -> fragments and sample registry files -> exactly one commit.
//!
//! Samples: an input whose sample list equals an earlier input's in this ingest shares its
//! `sample_idx` range (per-chromosome files of one cohort); an input with new samples gets a
//! new range; an input mixing known and new samples, or naming samples already in the store,
//! is refused. Nothing is committed unless every input is read without error.

use std::collections::HashMap;

use cohortdb_store::fragment_builder::FragmentBuilder;
use cohortdb_store::fragment_writer::EncodedFragment;
use cohortdb_store::log_entry::{CommitKind, FileEntry, FileKind};
use cohortdb_store::progress::{Progress, Unit};
use cohortdb_store::sample_registry::{SampleRecord, encode_samples, read_sample_batch};
use cohortdb_store::{Commit, Snapshot, Store, merge_extra_columns};
use tokio::sync::mpsc;

use crate::error::{IngestError, Result};
use crate::format_fields::{format_columns, kept_format_fields};
use crate::input_reader::{IngestRegion, InputReader, RecordFilter, Shard, parse_batch};
use crate::reference_blocks::{BlockThresholds, EncodedBlocks, ReferenceBlocks};
use crate::sample_replacement::remap_samples;
use crate::site::info_columns;
use crate::site_fields::RecordContext;

/// Options of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Bytes of encoded rows buffered across contigs before the largest fragment is written.
    pub max_buffered_bytes: usize,
    /// Where the bar over the inputs' stored bytes goes (hidden by default).
    pub progress: Progress,
    /// FORMAT fields kept for non-reference calls, where the header declares them
    /// (default DP, GQ, AD; see [`crate::format_fields`]).
    pub format_fields: Vec<String>,
    /// Only this part of the inputs (cluster ingest); see [`Shard`].
    pub shard: Option<Shard>,
    /// Only records whose POS lies in these regions (cluster ingest by region); empty: all.
    pub regions: Vec<IngestRegion>,
    /// The batch's samples are hom-ref at sites where it has no record (`bcftools merge -0`);
    /// otherwise they are missing there.
    pub missing_as_ref: bool,
    /// Samples already in the store get this batch's data in place of their old data (see
    /// [`crate::sample_replacement`]); otherwise a known sample is an error.
    pub replace: bool,
    /// gVCF reference blocks call a sample hom-ref only where its GQ and depth (`MIN_DP`, or
    /// `DP` where a block has no `MIN_DP`) reach these (missing values fail).
    pub block_thresholds: BlockThresholds,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            max_buffered_bytes: 512 << 20,
            progress: Progress::hidden(),
            format_fields: crate::format_fields::DEFAULT_FORMAT_FIELDS
                .map(String::from)
                .to_vec(),
            shard: None,
            regions: Vec::new(),
            replace: false,
            missing_as_ref: false,
            block_thresholds: BlockThresholds::default(),
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    /// The committed version.
    pub version: u64,
    /// Samples newly registered.
    pub samples_added: usize,
    /// Records (sites) read.
    pub records: u64,
    /// Fragment files written.
    pub fragments: usize,
    /// True when this shard of these inputs was committed before (`version` is that commit's)
    /// and nothing was done.
    pub already_committed: bool,
}

struct PlannedInput {
    reader: InputReader,
    sample_base: u32,
}

/// Attempts of an ingest whose commit loses to a concurrent one that registered samples.
const INGEST_ATTEMPTS: usize = 16;

/// Ingests VCF/BCF `inputs` (`-` = standard input) into `store` as one commit.
///
/// When another writer registers samples first, this batch's `sample_idx` values (and so its
/// bitmaps) are stale: the ingest starts again from the new snapshot, after a random pause,
/// up to 16 times (standard input cannot be read twice, so it is not
/// retried). Nothing of a lost attempt stays visible.
pub async fn ingest_vcf(
    store: &Store,
    inputs: &[String],
    options: &IngestOptions,
) -> Result<IngestSummary> {
    let rereadable = !inputs.iter().any(|i| i == "-");
    let mut attempt = 1;
    loop {
        match ingest_once(store, inputs, options).await {
            Err(IngestError::Store(e))
                if e.is_retryable_conflict() && rereadable && attempt < INGEST_ATTEMPTS =>
            {
                attempt += 1;
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
                tracing::info!("ingest: {e}; attempt {attempt}");
                tokio::time::sleep(std::time::Duration::from_millis(20 + 2 * jitter)).await;
            }
            other => return other,
        }
    }
}

async fn ingest_once(
    store: &Store,
    inputs: &[String],
    options: &IngestOptions,
) -> Result<IngestSummary> {
    let snapshot = store.snapshot().await?;
    let part = options.part();
    if let Some(part) = &part
        && let Some(version) = committed_part(store, &snapshot, inputs, part).await?
    {
        return Ok(IngestSummary {
            version,
            samples_added: 0,
            records: 0,
            fragments: 0,
            already_committed: true,
        });
    }
    let registry = read_sample_batch(store, &snapshot).await?;
    let (planned, new_samples, replaced) = tokio::task::block_in_place(|| {
        plan_inputs(
            inputs,
            &registry,
            &snapshot,
            part.is_some(),
            options.replace,
        )
    })?;
    let mut written: Vec<FileEntry> = Vec::new();
    let result = write_all(store, planned, options, &mut written).await;
    let records = match result {
        Ok(records) => records,
        Err(e) => {
            store.discard(&written).await;
            return Err(e);
        }
    };
    let fragments = written
        .iter()
        .filter(|f| f.kind == FileKind::Variants)
        .count();
    put_samples(store, &new_samples, &mut written).await?;
    // Phenotype rows and coverage of replaced participants move to their new index.
    let mut remove = Vec::new();
    if !replaced.is_empty() {
        match remap_samples(store, &snapshot, &replaced).await {
            Ok(remapped) => {
                written.extend(remapped.add);
                remove = remapped.remove;
            }
            Err(e) => {
                store.discard(&written).await;
                return Err(e);
            }
        }
    }
    let mut retire: Vec<u32> = replaced.keys().copied().collect();
    retire.sort_unstable();
    let commit = Commit {
        kind: CommitKind::Ingest,
        add: written.clone(),
        remove,
        withdraw: Vec::new(),
        retire,
        operation: serde_json::json!({
            "inputs": inputs,
            "records": records,
            "shard": part.as_ref().and_then(|p| p.get("shard").cloned()),
            "regions": part.as_ref().and_then(|p| p.get("regions").cloned()),
            "tool": concat!("cohortdb ", env!("CARGO_PKG_VERSION")),
        }),
    };
    let committed = store.commit_or_discard(&snapshot, commit).await?;
    Ok(IngestSummary {
        version: committed.version(),
        samples_added: new_samples.len(),
        records,
        fragments,
        already_committed: false,
    })
}

impl IngestOptions {
    /// The part of the inputs this ingest takes (`{"shard": "I/N", "regions": [...]}`, each
    /// `null` when not given), or `None` for the whole inputs.
    fn part(&self) -> Option<serde_json::Value> {
        if self.shard.is_none() && self.regions.is_empty() {
            return None;
        }
        let regions: Vec<String> = self
            .regions
            .iter()
            .map(|r| match r.end {
                i64::MAX => format!("{}:{}-", r.contig, r.start),
                end => format!("{}:{}-{end}", r.contig, r.start),
            })
            .collect();
        Some(serde_json::json!({
            "shard": self.shard.map(|s| format!("{}/{}", s.index, s.count)),
            "regions": (!regions.is_empty()).then_some(regions),
        }))
    }
}

/// Writes the registry file of `samples` (nothing when there are none) and adds it to
/// `written`; on failure every file of `written` is deleted again.
pub(crate) async fn put_samples(
    store: &Store,
    samples: &[SampleRecord],
    written: &mut Vec<FileEntry>,
) -> Result<()> {
    let Some(last) = samples.last() else {
        return Ok(());
    };
    let path = format!("samples/{}.parquet", uuid::Uuid::new_v4());
    let put = async {
        let bytes = encode_samples(samples)?;
        let size = bytes.len() as u64;
        store.put_new_file(&path, bytes).await?;
        Ok::<u64, IngestError>(size)
    };
    match put.await {
        Ok(size) => {
            written.push(FileEntry {
                sample_idx_end: Some(last.sample_idx + 1),
                ..FileEntry::new(path, FileKind::Samples, samples.len() as u64, size)
            });
            Ok(())
        }
        Err(e) => {
            store.discard(written).await;
            Err(e)
        }
    }
}

/// The version that committed `part` of `inputs`, if one did.
async fn committed_part(
    store: &Store,
    snapshot: &Snapshot,
    inputs: &[String],
    part: &serde_json::Value,
) -> Result<Option<u64>> {
    let inputs = serde_json::json!(inputs);
    let null = serde_json::Value::Null;
    let field = |v: &serde_json::Value, key: &str| v.get(key).cloned().unwrap_or(null.clone());
    for version in 1..=snapshot.version() {
        if let Some(entry) = store.read_entry(version).await?
            && entry.kind == CommitKind::Ingest
            && entry.operation.get("inputs") == Some(&inputs)
            && field(&entry.operation, "shard") == field(part, "shard")
            && field(&entry.operation, "regions") == field(part, "regions")
        {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

/// The inputs with their `sample_idx` ranges, the samples to register, and (with `replace`)
/// the old -> new index of each replaced participant.
type Plan = (Vec<PlannedInput>, Vec<SampleRecord>, HashMap<u32, u32>);

fn plan_inputs(
    inputs: &[String],
    registry: &arrow::array::RecordBatch,
    snapshot: &Snapshot,
    partial: bool,
    replace: bool,
) -> Result<Plan> {
    let readers = inputs
        .iter()
        .map(|name| InputReader::open(name))
        .collect::<Result<Vec<_>>>()?;
    // The registered IDs among the inputs' samples (found in one pass over the registry's
    // column, indexing only the inputs' IDs: at 10^6 registered participants a map of all of
    // them cost more than reading the registry). Withdrawn and replaced indices are hidden: a
    // replaced participant is known by its newest index, a withdrawn one not at all (and may
    // not come back).
    type Fast = foldhash::fast::RandomState;
    let mut wanted: std::collections::HashSet<&str, Fast> = Default::default();
    for reader in &readers {
        wanted.extend(reader.header.samples.iter().map(String::as_str));
    }
    let hidden = snapshot.state.hidden_bitmap();
    let mut withdrawn_ids: std::collections::HashSet<String, Fast> = Default::default();
    let mut known: HashMap<String, u32, Fast> = Default::default();
    if let (Some(idx), Some(ids)) = (
        registry
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::UInt32Array>(),
        registry
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>(),
    ) {
        for (id, &i) in ids.iter().zip(idx.values()) {
            let Some(id) = id.filter(|id| wanted.contains(id)) else {
                continue;
            };
            if hidden.contains(i) {
                withdrawn_ids.insert(id.to_string());
            } else {
                known.insert(id.to_string(), i);
            }
        }
    }
    drop(wanted);
    let mut replaced: HashMap<u32, u32> = HashMap::new();
    let mut next = snapshot.state.next_sample_idx;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut by_list: HashMap<Vec<String>, u32> = HashMap::new();
    let mut new_samples = Vec::new();
    let mut planned = Vec::new();
    for (name, reader) in inputs.iter().zip(readers) {
        let samples = reader.header.samples.clone();
        // Another shard of the same batch registered these samples: reuse their indices.
        if partial
            && let Some(&base) = samples.first().and_then(|s| known.get(s.as_str()))
            && samples
                .iter()
                .enumerate()
                .all(|(i, s)| known.get(s.as_str()) == Some(&(base + i as u32)))
        {
            planned.push(PlannedInput {
                reader,
                sample_base: base,
            });
            continue;
        }
        if let Some(sample) = samples
            .iter()
            .find(|s| withdrawn_ids.contains(s.as_str()) && !known.contains_key(s.as_str()))
        {
            return Err(IngestError::Inputs {
                file: name.clone(),
                reason: format!(
                    "sample {sample:?} withdrew consent and cannot be registered again"
                ),
            });
        }
        let known_here: Vec<(usize, u32)> = samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| known.get(s.as_str()).map(|&idx| (i, idx)))
            .collect();
        if let Some(&(i, _)) = known_here.first()
            && !replace
        {
            return Err(IngestError::Inputs {
                file: name.clone(),
                reason: format!(
                    "sample {:?} is already in the store (give --replace to replace its data)",
                    samples[i]
                ),
            });
        }
        let sample_base = match by_list.get(&samples) {
            Some(&base) => base,
            None => {
                if let Some(sample) = samples.iter().find(|s| seen.contains_key(*s)) {
                    return Err(IngestError::Inputs {
                        file: name.clone(),
                        reason: format!(
                            "sample {sample:?} also appears in an earlier input with a different sample list"
                        ),
                    });
                }
                let base = next;
                for &(i, old) in &known_here {
                    replaced.insert(old, base + i as u32);
                }
                let source: std::sync::Arc<str> = name.as_str().into();
                for (i, s) in samples.iter().enumerate() {
                    let idx = base + i as u32;
                    seen.insert(s.clone(), idx);
                    new_samples.push(SampleRecord {
                        sample_idx: idx,
                        sample_id: s.clone(),
                        source: source.clone(),
                    });
                }
                next += samples.len() as u32;
                by_list.insert(samples, base);
                base
            }
        };
        planned.push(PlannedInput {
            reader,
            sample_base,
        });
    }
    Ok((planned, new_samples, replaced))
}

/// Reads every input (CPU work on a blocking thread) and uploads fragments as they finish.
async fn write_all(
    store: &Store,
    planned: Vec<PlannedInput>,
    options: &IngestOptions,
    written: &mut Vec<FileEntry>,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::channel::<BatchOutput>(2);
    let missing_as_ref = options.missing_as_ref;
    let options = options.clone();
    let reader = tokio::task::spawn_blocking(move || read_inputs(planned, &options, &tx));
    let mut columns = Vec::new();
    while let Some((output, range)) = rx.recv().await {
        let fragment = match output {
            Output::Fragment(fragment) => fragment,
            Output::Blocks(blocks) => {
                let path = format!(
                    "coverage/contig={}/{}.parquet",
                    encode_contig(&blocks.contig),
                    uuid::Uuid::new_v4()
                );
                let bytes = blocks.parquet.len() as u64;
                store.put_new_file(&path, blocks.parquet).await?;
                written.push(FileEntry {
                    contig: Some(blocks.contig),
                    min_pos: Some(blocks.min_pos),
                    max_pos: Some(blocks.max_pos),
                    max_end: Some(blocks.max_pos),
                    sample_range: Some(range),
                    ..FileEntry::new(path, FileKind::RefBlocks, blocks.rows, bytes)
                });
                continue;
            }
        };
        columns = merge_extra_columns(&columns, fragment.extras.iter().cloned())?;
        let path = format!(
            "variants/contig={}/{}.parquet",
            encode_contig(&fragment.contig),
            uuid::Uuid::new_v4()
        );
        let bytes = fragment.parquet.len() as u64;
        store.put_new_file(&path, fragment.parquet).await?;
        written.push(FileEntry {
            contig: Some(fragment.contig),
            min_pos: Some(fragment.min_pos),
            max_pos: Some(fragment.max_pos),
            max_end: Some(fragment.max_end),
            columns: fragment.extras,
            sample_range: Some(range),
            missing_as_ref,
            ..FileEntry::new(path, FileKind::Variants, fragment.rows, bytes)
        });
    }
    reader.await.map_err(|e| IngestError::Inputs {
        file: "ingest".into(),
        reason: format!("reader thread failed: {e}"),
    })?
}

/// Keeps letters, digits, `.`, `_` and `-` of a contig name; percent-encodes the rest.
pub fn encode_contig(contig: &str) -> String {
    contig
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn read_inputs(
    planned: Vec<PlannedInput>,
    options: &IngestOptions,
    tx: &mpsc::Sender<BatchOutput>,
) -> Result<u64> {
    // A bar over the inputs' stored bytes, with rate and ETA (a spinner when one is a pipe).
    let sizes: Option<Vec<u64>> = planned.iter().map(|p| p.reader.progress().1).collect();
    let progress = &options.progress;
    let total = sizes.map(|sizes| sizes.iter().sum());
    progress.start(total, Unit::Bytes, "reading");
    let mut records = 0u64;
    let mut done_bytes = 0u64;
    for PlannedInput {
        mut reader,
        sample_base,
    } in planned
    {
        let header = reader.header.clone();
        let range = [sample_base, sample_base + header.samples.len() as u32];
        let name = reader.name().to_string();
        let mut wanted = options.format_fields.clone();
        let thresholds = options.block_thresholds;
        if thresholds.is_active() {
            for id in ["GQ", "MIN_DP", "DP"] {
                if !wanted.iter().any(|w| w == id) {
                    wanted.push(id.to_string());
                }
            }
        }
        let format_fields = kept_format_fields(&header, &wanted);
        let ctx = RecordContext {
            file: &name,
            header: &header,
            sample_base,
            format_fields: &format_fields,
            keep_reference_blocks: thresholds.is_active(),
        };
        let mut extras = info_columns(&header);
        extras.extend(format_columns(&format_fields));
        let filter = RecordFilter::new(options.shard, &options.regions, &header, reader.format);
        let mut builders: HashMap<String, FragmentBuilder> = HashMap::new();
        let mut blocks = ReferenceBlocks::new(thresholds, &format_fields);
        let mut buffered = 0usize;
        let format = reader.format;
        let mut next = reader.next_batch()?;
        while let Some(mut batch) = next {
            batch.retain(&filter, format);
            // The next chunk is inflated and split while this one is parsed: at 10^6
            // participants a chunk holds two or three records, and in turn the two steps left
            // a core idle a third of the time. A parse error is the earlier one, so it wins.
            let (sites, following) =
                rayon::join(|| parse_batch(&batch, format, &ctx), || reader.next_batch());
            let sites = sites?;
            next = following?;
            records += sites.len() as u64;
            for site in &sites {
                if site.is_reference_block() {
                    blocks.add(site);
                    continue;
                }
                let builder = builders
                    .entry(site.contig.clone())
                    .or_insert_with(|| FragmentBuilder::new(&site.contig, extras.clone()));
                let before = builder.buffered_bytes();
                site.append_rows(&header, &format_fields, builder);
                buffered += builder.buffered_bytes() - before;
            }
            while buffered > options.max_buffered_bytes {
                let Some(largest) = builders
                    .iter()
                    .max_by_key(|(_, b)| b.buffered_bytes())
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(builder) = builders.remove(&largest) {
                    buffered -= builder.buffered_bytes();
                    send(builder, range, tx)?;
                }
            }
            if progress.is_drawn() {
                progress.message(format!("{name}: {records} records"));
                progress.set_position(done_bytes + reader.progress().0);
            }
        }
        done_bytes += reader.progress().0;
        let mut rest: Vec<_> = builders.into_values().collect();
        rest.sort_by_key(FragmentBuilder::rows);
        for builder in rest {
            send(builder, range, tx)?;
        }
        for output in blocks.finish()? {
            let _ = tx.blocking_send((Output::Blocks(output), range));
        }
    }
    progress.finish();
    Ok(records)
}

/// A file the reader finished: a variant fragment, or a contig's gVCF reference blocks.
enum Output {
    Fragment(EncodedFragment),
    Blocks(EncodedBlocks),
}

/// A finished file and the `sample_idx` range of its batch.
type BatchOutput = (Output, [u32; 2]);

fn send(builder: FragmentBuilder, range: [u32; 2], tx: &mpsc::Sender<BatchOutput>) -> Result<()> {
    if builder.rows() == 0 {
        return Ok(());
    }
    let fragment = builder.finish()?;
    // The receiver only goes away when the upload side failed; its error is reported there.
    let _ = tx.blocking_send((Output::Fragment(fragment), range));
    Ok(())
}
