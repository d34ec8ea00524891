//! Parsing one VCF line of 10,000 diploid phased calls (the fast path) and of the same calls
//! written with two-digit-capable general forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cohortdb_ingest::vcf_header::Header;
use cohortdb_ingest::vcf_record::parse_vcf_line;
use cohortdb_ingest::{RecordContext, RecordLocation};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SAMPLES: usize = 10_000;

fn line(sep: &str) -> (Header, String) {
    let mut header =
        String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT");
    let mut record = String::from("chr20\t100\t.\tA\tC\t.\tPASS\t.\tGT");
    for i in 0..SAMPLES {
        header.push_str(&format!("\tS{i}"));
        record.push_str(match i % 7 {
            0 => "\t0|1",
            1 => "\t1|1",
            _ => "\t0|0",
        });
    }
    header.push('\n');
    let record = record.replace('|', sep);
    (Header::parse(&header).expect("header"), record)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("genotype_parsing");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    for (name, sep) in [("fast_path_phased", "|"), ("general_triploid_free", "/")] {
        let (header, record) = line(sep);
        let ctx = RecordContext {
            file: "bench.vcf",
            header: &header,
            sample_base: 0,
            format_fields: &[],
            keep_reference_blocks: false,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                parse_vcf_line(record.as_bytes(), RecordLocation::Line(2), &ctx)
                    .map(|s| s.genotypes.an)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
