//! The cached counting path ([`cohortdb_engine::rows::site_cache`]) against a plan over the Parquet
//! fragments: for every file of the foundation's oracle set and the simulated N=10,000 cohort,
//! allele frequencies (everyone and a cohort of every third sample) and carriers read through
//! a warm cache, a cold one and one whose budget evicts every row group equal what DataFusion
//! computes with the counting functions over `variants`.

use std::sync::Arc;

use crate::oracle_support::*;
use cohortdb_engine::rows::site_cache::SiteCache;
use cohortdb_engine::{CohortEngine, CohortSpec, Region};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;

/// Rows of batches as text, every column.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                b.columns()
                    .iter()
                    .map(|c| array_value_to_string(c, r).unwrap())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
        })
        .collect()
}

/// What the plan over `variants` says, with `set` bound as a literal bitmap.
async fn planned(engine: &CohortEngine, set: &roaring::RoaringBitmap) -> Vec<String> {
    let mut bytes = Vec::new();
    set.serialize_into(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let s = format!("X'{hex}'");
    let sql = format!(
        "SELECT contig, pos, id, ref, alt, \
           allele_count(het, hom_alt, hemi, {s}) AS ac, \
           allele_number(called_diploid, called_haploid, gt_exceptions, {s}) AS an, \
           CASE WHEN allele_number(called_diploid, called_haploid, gt_exceptions, {s}) > 0 \
             THEN CAST(allele_count(het, hom_alt, hemi, {s}) AS DOUBLE) \
               / CAST(allele_number(called_diploid, called_haploid, gt_exceptions, {s}) AS DOUBLE) \
           END AS af, \
           bitmap_and_count(het, {s}) AS n_het, bitmap_and_count(hom_alt, {s}) AS n_hom_alt \
         FROM variants ORDER BY contig, pos, record_ordinal, allele_index"
    );
    let frame = engine.session().unwrap().sql(&sql).await.unwrap();
    rows(&frame.collect().await.unwrap())
}

async fn check(store: &str, label: &str) -> usize {
    let cold = CohortEngine::open(store).await.unwrap();
    let evicting = cold.clone().with_site_cache(Arc::new(SiteCache::new(0)));
    let everyone = cold.cohort(&CohortSpec::All).await.unwrap();
    let third: cohortdb_engine::Cohort = everyone
        .iter()
        .step_by(3)
        .collect::<roaring::RoaringBitmap>()
        .into();
    let mut compared = 0;
    for set in [&everyone, &third] {
        let want = planned(&cold, set).await;
        for (engine, name) in [(&cold, "cold"), (&cold, "warm"), (&evicting, "evicting")] {
            let got = rows(&[engine.allele_frequencies(&[], set).await.unwrap()]);
            assert_eq!(got, want, "{label}: {name} cache, set of {}", set.len());
        }
        compared += want.len();
    }
    assert_eq!(
        evicting.site_cache().bytes(),
        0,
        "{label}: budget 0 keeps nothing"
    );
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_counts_equal_the_plan_over_fragments() {
    let mut stores = 0;
    let mut rows = 0;
    for file in edge_case_files() {
        let (_tmp, store) = new_store();
        // Invalid inputs are refused by ingest (tests/invalid_inputs.rs covers them).
        if cohortdb(&["ingest", "vcf", "--store", &store, &file]).is_err() {
            continue;
        }
        rows += check(&store, &file).await;
        stores += 1;
    }
    assert!(stores >= 10, "only {stores} edge-case files ingested");
    let (_tmp, store) = sim_store(false);
    rows += check(&store, "simulated N=10,000").await;
    assert!(rows > 10_000, "only {rows} rows compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_choose_the_rows_bcftools_would() {
    let (_tmp, store) = sim_store(false);
    let engine = CohortEngine::open(&store).await.unwrap();
    let everyone = engine.cohort(&CohortSpec::All).await.unwrap();
    let regions = Region::parse_list("chr20:20100001-20200000,chr20:20500000-20500100").unwrap();
    let got = rows(&[engine
        .allele_frequencies(&regions, &everyone)
        .await
        .unwrap()]);
    let positions: Vec<String> = got
        .iter()
        .map(|r| r.split('\t').take(2).collect::<Vec<_>>().join("\t"))
        .collect();
    let vcf = format!("{}.vcf.gz", sim_prefix());
    let want = sh(&format!(
        "bcftools view -r chr20:20100001-20200000,chr20:20500000-20500100 {vcf} \
         | bcftools norm -m- - 2>/dev/null | bcftools query -f '%CHROM\\t%POS\\n'"
    ))
    .unwrap();
    let want: Vec<&str> = want.lines().collect();
    assert!(want.len() > 100, "{} rows from bcftools", want.len());
    assert_eq!(positions, want);
}
