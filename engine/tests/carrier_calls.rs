//! Carriers' GT against the calls written into the input: a random cohort with multi-allelic
//! records (enough ALT rows that a record straddles two Parquet row groups), phased and
//! unphased calls in either allele order, haploid calls, partly missing calls and calls of
//! ploidy 3. In a store of one batch the GT comes from the cached site rows; in a store of the
//! same samples in two batches from the merged records. Both must print every carrier's call
//! exactly as the input has it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use cohortdb_engine::ops::carriers::VariantSpec;
use cohortdb_engine::{CohortEngine, CohortSpec};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;
use datafusion::arrow::array::{Array, AsArray};

/// xorshift64*: a fixed stream of numbers, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One record: position, REF, ALTs, and each sample's GT text.
struct Site {
    pos: i64,
    reference: &'static str,
    alts: Vec<&'static str>,
    gt: Vec<String>,
}

fn cohort(rng: &mut Rng, samples: usize) -> Vec<Site> {
    let bases = ["A", "C", "G", "T"];
    let mut pos = 1000;
    (0..1400)
        .map(|_| {
            pos += 1 + rng.below(30) as i64;
            let r = rng.below(4) as usize;
            let n_alts = 1 + rng.below(3) as usize;
            let alts = (1..=n_alts).map(|k| bases[(r + k) % 4]).collect();
            let gt = (0..samples)
                .map(|_| {
                    let ploidy = match rng.below(30) {
                        0..=2 => 1,
                        3 => 3,
                        _ => 2,
                    };
                    let alleles: Vec<String> = (0..ploidy)
                        .map(|_| match rng.below(20) {
                            0 => ".".to_string(),
                            x if x < 12 => "0".to_string(),
                            _ => (1 + rng.below(n_alts as u64)).to_string(),
                        })
                        .collect();
                    alleles.join(if rng.below(2) == 0 { "|" } else { "/" })
                })
                .collect();
            Site {
                pos,
                reference: bases[r],
                alts,
                gt,
            }
        })
        .collect()
}

fn vcf(sites: &[Site], samples: std::ops::Range<usize>) -> String {
    let mut text = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100000>\n\
         ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
         #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT",
    );
    for s in samples.clone() {
        write!(text, "\tS{s:03}").unwrap();
    }
    text.push('\n');
    for site in sites {
        let alts = site.alts.join(",");
        write!(
            text,
            "chr1\t{}\t.\t{}\t{alts}\t.\tPASS\t.\tGT",
            site.pos, site.reference
        )
        .unwrap();
        for gt in &site.gt[samples.clone()] {
            write!(text, "\t{gt}").unwrap();
        }
        text.push('\n');
    }
    text
}

/// `pos alt sample gt` of every carrier, from the input: a sample carries an ALT when one of
/// its called alleles is that ALT.
fn expected<'a>(sites: impl Iterator<Item = &'a Site>) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for site in sites {
        for (a, alt) in site.alts.iter().enumerate() {
            let allele = (a + 1).to_string();
            for (s, gt) in site.gt.iter().enumerate() {
                if gt.split(['|', '/']).any(|x| x == allele) {
                    rows.insert(format!("{}\t{alt}\tS{s:03}\t{gt}", site.pos));
                }
            }
        }
    }
    rows
}

/// The carriers of `sites` as `expected` writes them.
async fn carriers<'a>(location: &str, sites: impl Iterator<Item = &'a Site>) -> BTreeSet<String> {
    let engine = CohortEngine::open(location).await.unwrap();
    let everyone = engine.cohort(CohortSpec::All).await.unwrap();
    let mut rows = BTreeSet::new();
    for site in sites {
        let variant = VariantSpec {
            contig: "chr1".into(),
            pos: site.pos,
            alleles: None,
        };
        let batch = engine
            .carriers(&variant, everyone.set(), &[])
            .await
            .unwrap();
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let (alt, sample, gt) = (text("alt"), text("sample_id"), text("gt"));
        for r in 0..batch.num_rows() {
            assert!(
                !gt.is_null(r),
                "no GT for {} at {}",
                sample.value(r),
                site.pos
            );
            rows.insert(format!(
                "{}\t{}\t{}\t{}",
                site.pos,
                alt.value(r),
                sample.value(r),
                gt.value(r)
            ));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carriers_print_each_call_as_the_input_wrote_it() {
    let samples = 40;
    let sites = cohort(&mut Rng(0x2545_F491_4F6C_DD1D), samples);
    let rows: usize = sites.iter().map(|s| s.alts.len()).sum();
    assert!(
        rows > cohortdb_store::fragment_writer::ROW_GROUP_ROWS,
        "{rows} ALT rows fill more than one row group"
    );
    let dir = tempfile::tempdir().unwrap();
    // Across batches the GT is rebuilt by a read of the records' columns, 20 ms a site:
    // every 10th site there.
    // Batches by their first sample.
    for (name, starts, every) in [("one", vec![0], 1), ("two", vec![0, 15], 10)] {
        let location = dir.path().join(name).display().to_string();
        let store = Store::open_or_create(&location).unwrap();
        for (b, &start) in starts.iter().enumerate() {
            let part = start..starts.get(b + 1).copied().unwrap_or(samples);
            let path = dir.path().join(format!("{name}{b}.vcf"));
            std::fs::write(&path, vcf(&sites, part)).unwrap();
            let files = [path.display().to_string()];
            ingest_vcf(&store, &files, &IngestOptions::default())
                .await
                .unwrap();
        }
        let chosen: Vec<&Site> = sites.iter().step_by(every).collect();
        let want = expected(chosen.iter().copied());
        let got = carriers(&location, chosen.into_iter()).await;
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name} batch(es): missing {missing:?}, not in the input {extra:?}"
        );
    }
}
