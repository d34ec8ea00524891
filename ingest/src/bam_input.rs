//! One BAM or CRAM file (read with htslib): its sample, and its depth contig by contig.

use std::collections::HashSet;
use std::path::Path;

use cohortdb_store::progress::Progress;
use rust_htslib::bam::{self, Read};

use crate::bam_depth::{Alignment, ContigDepth, DepthOptions};
use crate::error::{IngestError, Result};

/// An open alignment file.
pub struct BamInput {
    name: String,
    reader: bam::Reader,
    /// The read groups' sample (`@RG SM`).
    pub sample: String,
    /// Contig names and lengths from `@SQ`, in header order.
    pub contigs: Vec<(String, usize)>,
}

impl BamInput {
    /// Opens `path`; a CRAM file's reference comes from `reference` (or the CRAM's `UR`/
    /// `REF_PATH`). The header's read groups must name exactly one sample.
    pub fn open(path: &str, reference: Option<&Path>) -> Result<Self> {
        let fail = |reason: String| IngestError::Inputs {
            file: path.to_string(),
            reason,
        };
        let mut reader =
            bam::Reader::from_path(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        if let Some(reference) = reference {
            reader
                .set_reference(reference)
                .map_err(|e| fail(format!("reference {}: {e}", reference.display())))?;
        }
        let header = reader.header();
        let text = String::from_utf8_lossy(header.as_bytes()).into_owned();
        let samples: HashSet<&str> = text
            .lines()
            .filter(|line| line.starts_with("@RG\t"))
            .filter_map(|line| line.split('\t').find_map(|f| f.strip_prefix("SM:")))
            .collect();
        let sample = match samples.len() {
            1 => samples.into_iter().next().unwrap_or_default().to_string(),
            0 => return Err(fail("no @RG line with an SM tag names the sample".into())),
            _ => {
                let mut names: Vec<&str> = samples.into_iter().collect();
                names.sort_unstable();
                return Err(fail(format!(
                    "read groups name {} samples ({}); one file must hold one sample",
                    names.len(),
                    names.join(", ")
                )));
            }
        };
        let contigs = (0..header.target_count())
            .map(|tid| {
                let name = String::from_utf8_lossy(header.tid2name(tid)).into_owned();
                let length = header.target_len(tid).unwrap_or(0) as usize;
                (name, length)
            })
            .collect();
        Ok(Self {
            name: path.to_string(),
            reader,
            sample,
            contigs,
        })
    }

    /// Reads the whole file in coordinate order and calls `on_contig` with each contig's
    /// index and per-base depth (contigs without reads included, all zero). `progress` advances
    /// by the bases of the reference passed (each contig's length in all).
    pub fn for_each_contig(
        mut self,
        options: DepthOptions,
        progress: &Progress,
        mut on_contig: impl FnMut(usize, Vec<i32>) -> Result<()>,
    ) -> Result<()> {
        let lengths: Vec<u64> = self.contigs.iter().map(|c| c.1 as u64).collect();
        // Bases of the current contig reported so far.
        let mut reported = 0u64;
        let finish = |tid: usize, reported: &mut u64| {
            progress.advance(lengths[tid].saturating_sub(*reported));
            *reported = 0;
        };
        let name = self.name.clone();
        let mut record = bam::Record::new();
        let mut current: Option<(usize, ContigDepth)> = None;
        let mut next_contig = 0usize;
        let mut count = 0u64;
        let mut last_pos = -1i64;
        while let Some(read) = self.reader.read(&mut record) {
            count += 1;
            read.map_err(|e| IngestError::Record {
                file: name.clone(),
                location: format!("record {count}"),
                field: "alignment".into(),
                reason: e.to_string(),
            })?;
            let Ok(tid) = usize::try_from(record.tid()) else {
                // Unplaced reads come last and cover nothing.
                break;
            };
            let unsorted = |what: &str| IngestError::Record {
                file: name.clone(),
                location: format!("record {count}"),
                field: "POS".into(),
                reason: format!("{what}: the file must be sorted by coordinate"),
            };
            if current.as_ref().map(|(t, _)| *t) != Some(tid) {
                if tid < next_contig {
                    return Err(unsorted("contig seen before"));
                }
                if let Some((done, depth)) = current.take() {
                    on_contig(done, depth.depths())?;
                    finish(done, &mut reported);
                }
                for empty in next_contig..tid {
                    on_contig(empty, vec![0; self.contigs[empty].1])?;
                    finish(empty, &mut reported);
                }
                let length =
                    self.contigs
                        .get(tid)
                        .map(|c| c.1)
                        .ok_or_else(|| IngestError::Record {
                            file: name.clone(),
                            location: format!("record {count}"),
                            field: "RNAME".into(),
                            reason: format!("contig index {tid} is not in the header"),
                        })?;
                current = Some((tid, ContigDepth::new(length, options)));
                next_contig = tid + 1;
                last_pos = -1;
            }
            if record.pos() < last_pos {
                return Err(unsorted("position before the previous read's"));
            }
            last_pos = record.pos();
            if count.is_multiple_of(4096) {
                let at = (last_pos.max(0) as u64).min(lengths.get(tid).copied().unwrap_or(0));
                progress.advance(at.saturating_sub(reported));
                reported = reported.max(at);
            }
            if let Some((_, depth)) = current.as_mut() {
                depth.add(&Alignment {
                    flags: record.flags(),
                    mapq: record.mapq(),
                    pos: record.pos(),
                    tid: record.tid(),
                    mate_tid: record.mtid(),
                    mate_pos: record.mpos(),
                    name: record.qname(),
                    cigar: record.raw_cigar(),
                });
            }
        }
        if let Some((done, depth)) = current.take() {
            on_contig(done, depth.depths())?;
            finish(done, &mut reported);
        }
        for empty in next_contig..self.contigs.len() {
            on_contig(empty, vec![0; self.contigs[empty].1])?;
            finish(empty, &mut reported);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::BufRead;
    use std::path::PathBuf;

    use super::*;

    /// `../shared/testdata` (or `$COHORTDB_SHARED/testdata`); panics when it is missing.
    fn testdata() -> PathBuf {
        let shared = std::env::var_os("COHORTDB_SHARED").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
            PathBuf::from,
        );
        let dir = shared.join("testdata");
        assert!(
            dir.is_dir(),
            "shared test data not found at {}",
            dir.display()
        );
        dir
    }

    /// mosdepth's `per-base.bed.gz`: per contig, the depth of every base it lists.
    fn mosdepth_per_base(path: &Path) -> HashMap<String, Vec<i32>> {
        let file = std::fs::File::open(path).unwrap();
        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
        let mut depths: HashMap<String, Vec<i32>> = HashMap::new();
        for line in reader.lines() {
            let line = line.unwrap();
            let f: Vec<&str> = line.split('\t').collect();
            let (start, end): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let contig = depths.entry(f[0].to_string()).or_default();
            assert_eq!(contig.len(), start, "{line}");
            contig.extend(std::iter::repeat_n(
                f[3].parse::<i32>().unwrap(),
                end - start,
            ));
        }
        depths
    }

    fn our_depths(bam: &Path, options: DepthOptions) -> HashMap<String, Vec<i32>> {
        let input = BamInput::open(bam.to_str().unwrap(), None).unwrap();
        let contigs = input.contigs.clone();
        let mut depths = HashMap::new();
        input
            .for_each_contig(options, &Progress::hidden(), |tid, d| {
                depths.insert(contigs[tid].0.clone(), d);
                Ok(())
            })
            .unwrap();
        depths
    }

    /// Every base of every contig equals mosdepth 0.3.3's per-base depth, for the hand-placed
    /// reads of `exact.bam` (MAPQ 0, duplicates, deletions, secondary and QC-fail reads,
    /// overlapping mates, clips) under three flag/MAPQ settings, the simulated 5-30x samples
    /// and two real BAMs.
    #[test]
    fn per_base_depth_equals_mosdepth() {
        let data = testdata();
        let cases = [
            ("bam/exact.bam", "exact.default", DepthOptions::default()),
            (
                "bam/exact.bam",
                "exact.mapq1",
                DepthOptions {
                    min_mapq: 1,
                    ..DepthOptions::default()
                },
            ),
            (
                "bam/exact.bam",
                "exact.noflagfilter",
                DepthOptions {
                    exclude_flags: 0,
                    ..DepthOptions::default()
                },
            ),
            ("bam/sampleA.bam", "sampleA", DepthOptions::default()),
            ("bam/sampleB.bam", "sampleB", DepthOptions::default()),
            ("bam/sampleC.bam", "sampleC", DepthOptions::default()),
            (
                "bcftools/mpileup/mpileup.1.bam",
                "mpileup.1",
                DepthOptions::default(),
            ),
            ("htslib/range.bam", "range", DepthOptions::default()),
        ];
        let mut checked = 0;
        for (bam, prefix, options) in cases {
            let expected = data.join(format!("bam/mosdepth/{prefix}.per-base.bed.gz"));
            if !expected.exists() {
                // sampleB/C were run with --by and thresholds only, without per-base output.
                assert!(
                    prefix.starts_with("sample"),
                    "{} missing",
                    expected.display()
                );
                continue;
            }
            let expected = mosdepth_per_base(&expected);
            let ours = our_depths(&data.join(bam), options);
            for (contig, depths) in &ours {
                match expected.get(contig) {
                    Some(theirs) => {
                        let first = depths.iter().zip(theirs).position(|(a, b)| a != b);
                        assert_eq!(
                            first, None,
                            "{prefix} {contig}: first difference at 0-based {first:?}"
                        );
                        assert_eq!(depths.len(), theirs.len(), "{prefix} {contig}");
                        checked += depths.len();
                    }
                    None => assert!(depths.iter().all(|&d| d == 0), "{prefix} {contig}"),
                }
            }
        }
        assert!(checked > 500_000, "only {checked} bases compared");
    }

    #[test]
    fn a_file_without_a_sample_name_is_refused_with_its_reason() {
        let data = testdata();
        let err = BamInput::open(data.join("htslib/no_hdr_sq_1.bam").to_str().unwrap(), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no_hdr_sq_1.bam"), "{err}");
    }
}
