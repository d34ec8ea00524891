//! Counting and the read path against a reference computed here from the genotype matrix:
//! random cohorts in three batches (one ingested with `--missing-as-ref`, each batch without
//! some sites, as separately called batches are), some sites multi-allelic, some calls missing
//! or haploid. `allele_frequencies` for everyone and for a subset, and the streamed `variants`
//! scan (every row, in default and in small windows, `count(*)`, `LIMIT`), must give exactly
//! the reference's AC and AN.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cohortdb_engine::{CohortEngine, CohortSpec, Region};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::array_value_to_string;

/// xorshift64*: a fixed stream of numbers, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A site: position, REF, ALTs.
struct Site {
    pos: i64,
    reference: &'static str,
    alts: Vec<&'static str>,
}

/// A batch: its samples' calls per site it holds (`None`: a missing allele), and whether it
/// is ingested with `--missing-as-ref`.
struct Batch {
    samples: Vec<String>,
    calls: BTreeMap<usize, Vec<Vec<Option<usize>>>>,
    missing_as_ref: bool,
}

fn cohort(rng: &mut Rng) -> (Vec<Site>, Vec<Batch>) {
    let bases = ["A", "C", "G", "T"];
    let mut sites = Vec::new();
    let mut pos = 1000;
    for _ in 0..240 {
        pos += 1 + rng.below(40) as i64;
        let r = rng.below(4) as usize;
        let others: Vec<&str> = (1..4).map(|k| bases[(r + k) % 4]).collect();
        let n_alts = if rng.below(5) == 0 { 2 } else { 1 };
        sites.push(Site {
            pos,
            reference: bases[r],
            alts: others[..n_alts].to_vec(),
        });
    }
    let mut batches = Vec::new();
    for (b, (size, missing_as_ref)) in [(7, false), (5, true), (9, false)].into_iter().enumerate() {
        let samples: Vec<String> = (0..size).map(|i| format!("B{b}_{i}")).collect();
        let mut calls = BTreeMap::new();
        for (s, site) in sites.iter().enumerate() {
            if rng.below(10) < 3 {
                continue; // this batch has no record here
            }
            let genotypes = (0..size)
                .map(|_| {
                    let ploidy = if rng.below(12) == 0 { 1 } else { 2 };
                    (0..ploidy)
                        .map(|_| match rng.below(20) {
                            0 => None,
                            x if x < 14 => Some(0),
                            _ => Some(1 + rng.below(site.alts.len() as u64) as usize),
                        })
                        .collect()
                })
                .collect();
            calls.insert(s, genotypes);
        }
        batches.push(Batch {
            samples,
            calls,
            missing_as_ref,
        });
    }
    (sites, batches)
}

fn vcf(sites: &[Site], batch: &Batch) -> String {
    let mut text = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100000>\n\
         ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
         #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT",
    );
    for s in &batch.samples {
        write!(text, "\t{s}").unwrap();
    }
    text.push('\n');
    for (&s, genotypes) in &batch.calls {
        let site = &sites[s];
        write!(
            text,
            "chr1\t{}\t.\t{}\t{}\t.\tPASS\t.\tGT",
            site.pos,
            site.reference,
            site.alts.join(",")
        )
        .unwrap();
        for gt in genotypes {
            let alleles: Vec<String> = gt
                .iter()
                .map(|a| a.map_or(".".into(), |a| a.to_string()))
                .collect();
            write!(text, "\t{}", alleles.join("/")).unwrap();
        }
        text.push('\n');
    }
    text
}

/// `pos ref alt ac an` per ALT over the samples `chosen` keeps, computed from the matrix: a
/// batch without a record at a site calls its samples hom-ref when ingested with
/// `--missing-as-ref`, and not at all otherwise.
fn reference_counts(
    sites: &[Site],
    batches: &[Batch],
    chosen: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut rows = Vec::new();
    for (s, site) in sites.iter().enumerate() {
        if batches.iter().all(|b| !b.calls.contains_key(&s)) {
            continue; // no batch holds it: no row
        }
        for (a, alt) in site.alts.iter().enumerate() {
            let (mut ac, mut an) = (0, 0);
            for batch in batches {
                for (i, sample) in batch.samples.iter().enumerate() {
                    if !chosen(sample) {
                        continue;
                    }
                    match batch.calls.get(&s) {
                        Some(genotypes) => {
                            for allele in genotypes[i].iter().flatten() {
                                an += 1;
                                ac += usize::from(*allele == a + 1);
                            }
                        }
                        None if batch.missing_as_ref => an += 2,
                        None => {}
                    }
                }
            }
            rows.push(format!(
                "{}\t{}\t{alt}\t{ac}\t{an}",
                site.pos, site.reference
            ));
        }
    }
    rows.sort();
    rows
}

fn rows_of(batches: &[RecordBatch], columns: &[&str]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        let arrays: Vec<&dyn Array> = columns
            .iter()
            .map(|c| batch.column_by_name(c).unwrap().as_ref())
            .collect();
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = arrays
                .iter()
                .map(|a| array_value_to_string(*a, r).unwrap())
                .collect();
            rows.push(cells.join("\t"));
        }
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_the_streamed_scan_equal_the_genotype_matrix() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (sites, batches) = cohort(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store").display().to_string();
    let store = Store::open_or_create(&location).unwrap();
    for (b, batch) in batches.iter().enumerate() {
        let path = dir.path().join(format!("batch{b}.vcf"));
        std::fs::write(&path, vcf(&sites, batch)).unwrap();
        let options = IngestOptions {
            missing_as_ref: batch.missing_as_ref,
            ..IngestOptions::default()
        };
        ingest_vcf(&store, &[path.display().to_string()], &options)
            .await
            .unwrap();
    }
    let engine = CohortEngine::open(&location).await.unwrap();
    let regions = Region::parse_list("chr1").unwrap();
    let columns = ["pos", "ref", "alt", "ac", "an"];

    let everyone = reference_counts(&sites, &batches, |_| true);
    let all = engine.cohort(CohortSpec::All).await.unwrap();
    let counted = engine.allele_frequencies(&regions, &all).await.unwrap();
    assert_eq!(rows_of(&[counted], &columns), everyone, "af, everyone");

    // A subset across the three batches: every third sample.
    let subset: Vec<String> = batches
        .iter()
        .flat_map(|b| b.samples.iter().cloned())
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(_, s)| s)
        .collect();
    let some = engine
        .cohort(CohortSpec::Include(subset.clone()))
        .await
        .unwrap();
    let counted = engine.allele_frequencies(&regions, &some).await.unwrap();
    let want = reference_counts(&sites, &batches, |s| subset.iter().any(|x| x == s));
    assert_eq!(
        rows_of(&[counted], &columns),
        want,
        "af, a third of the samples"
    );

    // The streamed scan of `variants` merges the batches by the same rule.
    let scanned = engine
        .sql("SELECT pos, ref, alt, ac, an FROM variants")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows_of(&scanned, &columns), everyone, "the variants scan");
    // Windows of 16 rows: every batch's row groups are read in slices (the offset index
    // choosing their pages) and merged a few rows at a time.
    let small = engine
        .session_with(datafusion::prelude::SessionConfig::new().with_batch_size(16))
        .unwrap();
    let sliced = small
        .sql("SELECT pos, ref, alt, ac, an FROM variants")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(sliced.len() > 20, "{} output batches", sliced.len());
    assert_eq!(
        rows_of(&sliced, &columns),
        everyone,
        "the scan in small windows"
    );
    let count = engine
        .sql("SELECT count(*) AS n FROM variants")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows_of(&count, &["n"]), vec![everyone.len().to_string()]);
    let limited = engine
        .sql("SELECT pos, ref, alt, ac, an FROM variants LIMIT 7")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let limited = rows_of(&limited, &columns);
    assert_eq!(limited.len(), 7);
    assert!(limited.iter().all(|r| everyone.contains(r)), "{limited:?}");
}
