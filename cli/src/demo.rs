//! `cohortdb demo`: writes a small deterministic cohort VCF (500 participants, 2,000 sites on
//! chr20, a few multi-allelic and haploid-looking edge cases), ingests it into a new store and
//! answers cohort queries on it, printing each command's equivalent.

use std::io::Write;

use cohortdb_engine::{CohortEngine, CohortSpec, Region};
use cohortdb_ingest::{IngestOptions, ingest_vcf};
use cohortdb_store::Store;

use crate::CliResult;
use crate::output_format::{OutputFormat, write_batches};

const SAMPLES: usize = 500;
const SITES: usize = 2_000;

/// A small xorshift generator: the demo must not depend on a crate's sequence.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The demo cohort as VCF text.
pub fn demo_vcf() -> String {
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut out = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr20,length=64444167>\n##INFO=<ID=DEMO_AF,Number=A,Type=Float,Description=\"Simulated ALT frequency\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT",
    );
    for s in 0..SAMPLES {
        out.push_str(&format!("\tDEMO{s:04}"));
    }
    out.push('\n');
    let bases = ["A", "C", "G", "T"];
    let mut pos = 20_000_000u64;
    for site in 0..SITES {
        pos += 1 + rng.next() % 500;
        let r = (rng.next() % 4) as usize;
        let a1 = (r + 1 + (rng.next() % 3) as usize) % 4;
        let multi = site % 97 == 0;
        let third = (0..4).find(|&b| b != r && b != a1).unwrap_or(0);
        let alts = if multi {
            format!("{},{}", bases[a1], bases[third])
        } else {
            bases[a1].to_string()
        };
        let p = 0.5 * rng.unit() * rng.unit();
        out.push_str(&format!(
            "chr20\t{pos}\tdemo{site}\t{}\t{alts}\t.\tPASS\tDEMO_AF={p:.4}{}\tGT",
            bases[r],
            if multi { ",0.01" } else { "" }
        ));
        for _ in 0..SAMPLES {
            let allele = |rng: &mut Xorshift| {
                if rng.unit() < p {
                    if multi && rng.unit() < 0.1 { 2 } else { 1 }
                } else {
                    0
                }
            };
            let (a, b) = (allele(&mut rng), allele(&mut rng));
            if rng.unit() < 0.002 {
                out.push_str("\t./.");
            } else {
                out.push_str(&format!("\t{a}|{b}"));
            }
        }
        out.push('\n');
    }
    out
}

/// Runs the demo.
pub async fn run(store: Option<String>) -> CliResult {
    let dir = std::env::temp_dir().join(format!("cohortdb-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let location = store.unwrap_or_else(|| dir.join("store").display().to_string());
    let vcf = dir.join("demo.vcf");
    std::fs::write(&vcf, demo_vcf())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "# cohortdb demo: {SAMPLES} participants x {SITES} sites on chr20\n# cohortdb ingest vcf --store {location} {}",
        vcf.display()
    )?;
    let store_handle = Store::open_or_create(&location)?;
    let summary = ingest_vcf(
        &store_handle,
        &[vcf.display().to_string()],
        &IngestOptions::default(),
    )
    .await?;
    writeln!(
        out,
        "committed version {}: {} records, {} samples\n",
        summary.version, summary.records, summary.samples_added
    )?;

    let engine = CohortEngine::open(&location).await?;
    writeln!(
        out,
        "# cohortdb af --store {location} -r chr20:20010000-20020000 -s ^DEMO0000,DEMO0001"
    )?;
    let set = engine
        .cohort(&CohortSpec::from_list("^DEMO0000,DEMO0001"))
        .await?;
    let batch = engine
        .allele_frequencies(&Region::parse_list("chr20:20010000-20020000")?, &set)
        .await?;
    write_batches(
        OutputFormat::Tsv,
        std::slice::from_ref(&batch),
        batch.schema(),
        &mut out,
    )?;

    let sql = "SELECT count(*) AS variants, sum(ac) AS alt_alleles, sum(CASE WHEN ac = 0 THEN 1 ELSE 0 END) AS monomorphic FROM variants";
    writeln!(out, "\n# cohortdb query --store {location} \"{sql}\"")?;
    let df = engine.session()?.sql(sql).await?;
    let schema = df.schema().inner().clone();
    write_batches(OutputFormat::Tsv, &df.collect().await?, schema, &mut out)?;

    let sql = "SELECT v.pos, v.ref, v.alt, allele_count(v.het, v.hom_alt, v.hemi, c.s) AS ac_first_100, \
               allele_number(v.called_diploid, v.called_haploid, v.gt_exceptions, c.s) AS an_first_100 \
               FROM variants v, (SELECT sample_set(sample_idx) AS s FROM samples WHERE sample_id < 'DEMO0100') c \
               WHERE v.contig = 'chr20' AND v.pos BETWEEN 20030000 AND 20040000 ORDER BY v.pos, v.alt";
    writeln!(
        out,
        "\n# a cohort in SQL: the first 100 participants\n# cohortdb query --store {location} \"{sql}\""
    )?;
    let df = engine.session()?.sql(sql).await?;
    let schema = df.schema().inner().clone();
    write_batches(OutputFormat::Tsv, &df.collect().await?, schema, &mut out)?;

    // Phenotypes: sex, age and a case/control status, deterministic per participant.
    let table = dir.join("phenotypes.tsv");
    let mut text = String::from("sample_id\tsex\tage\tcase_control\n");
    let mut rng = Xorshift(0x5eed_cafe);
    for i in 0..SAMPLES {
        let sex = if rng.unit() < 0.5 { "F" } else { "M" };
        let age = 40 + (rng.unit() * 30.0) as u32;
        let case = u8::from(rng.unit() < 0.3);
        text.push_str(&format!("DEMO{i:04}\t{sex}\t{age}\t{case}\n"));
    }
    std::fs::write(&table, text)?;
    writeln!(
        out,
        "\n# cohortdb ingest phenotypes --store {location} {}",
        table.display()
    )?;
    let options = cohortdb_ingest::phenotype_table::PhenotypeOptions {
        table: "phenotypes".into(),
        key: "sample_id".into(),
        types: Vec::new(),
        drop_unknown: false,
    };
    let store_handle = Store::open(&location).await?;
    cohortdb_ingest::phenotype_table::ingest_phenotypes(
        &store_handle,
        &table.display().to_string(),
        &options,
    )
    .await?;
    let engine = CohortEngine::open(&location).await?;
    let sql = "SELECT chrom, pos, ref, alt, ac_cases, ac_controls, odds_ratio, p_fisher \
               FROM case_control('chr20:20000000-20050000', 'case_control = 1 AND age >= 50', \
               'case_control = 0 AND age >= 50') ORDER BY p_fisher LIMIT 5";
    writeln!(
        out,
        "\n# case/control among the over-50s, as a table function\n# cohortdb query --store {location} \"{sql}\""
    )?;
    let df = engine.sql_session()?.sql(sql).await?;
    let schema = df.schema().inner().clone();
    write_batches(OutputFormat::Tsv, &df.collect().await?, schema, &mut out)?;

    let bcf = dir.join("women.bcf");
    writeln!(
        out,
        "\n# cohortdb export --store {location} -r chr20:20000000-20010000 --cohort \"sex = 'F'\" -O b -o {}",
        bcf.display()
    )?;
    let women = engine.cohort(&CohortSpec::parse("sex = 'F'")).await?;
    let order = engine.export_order(&CohortSpec::All, &women);
    let file = std::io::BufWriter::new(std::fs::File::create(&bcf)?);
    let summary = engine
        .export(
            &Region::parse_list("chr20:20000000-20010000")?,
            &order,
            cohortdb_engine::export::vcf_export::ExportFormat::Bcf,
            Some(cohortdb_engine::export::genomic_index::IndexKind::Csi),
            None,
            file,
        )
        .await?;
    if let Some(index) = summary.index {
        std::fs::write(format!("{}.csi", bcf.display()), index)?;
    }
    writeln!(
        out,
        "wrote {} records x {} samples (and {}.csi): bcftools view reads it",
        summary.records,
        summary.samples,
        bcf.display()
    )?;
    writeln!(out, "\n# store: {location}")?;
    Ok(())
}
