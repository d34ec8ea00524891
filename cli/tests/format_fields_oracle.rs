//! FORMAT DP, GQ and AD kept for non-reference calls equal what bcftools reads from the same
//! files: the test asks `bcftools query` for every sample's GT, DP, GQ and AD and works out
//! each ALT's carriers and their values itself; VCF and BCF ingest keep the same values.

use std::collections::BTreeMap;

use crate::oracle_support::*;

/// (chrom, pos, ref, alt) -> "DP list|GQ list|AD ref list|AD alt list" per record (sorted),
/// lists as `[a, b]` with NULL for missing values.
type Values = BTreeMap<(String, String, String, String), Vec<String>>;

const FILES: &[&str] = &[
    "testdata/hail/sample.pksorted.vcf",
    "testdata/hail/store_gq.vcf",
    "testdata/hail/gvcfs/HG0096_excerpt.g.vcf",
];

fn list(values: &[Option<String>]) -> String {
    let items: Vec<&str> = values
        .iter()
        .map(|v| v.as_deref().unwrap_or("NULL"))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The expected values, from bcftools' reading of every sample's GT, DP, GQ and AD.
fn bcftools_values(file: &str) -> Values {
    let text = run(
        "bcftools",
        &[
            "query",
            "-f",
            "%CHROM\t%POS\t%REF\t%ALT[\t%GT %DP %GQ %AD]\n",
            file,
        ],
    )
    .expect("bcftools query");
    let mut out = Values::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let calls: Vec<Vec<&str>> = f[4..].iter().map(|c| c.split(' ').collect()).collect();
        for (i, alt) in f[3].split(',').enumerate() {
            let allele = (i + 1).to_string();
            let value = |s: &str| (s != ".").then(|| s.to_string());
            let mut cols: [Vec<Option<String>>; 4] = Default::default();
            for c in &calls {
                let carries = c[0].split(['/', '|']).any(|a| a == allele);
                if !carries {
                    continue;
                }
                let ad: Vec<&str> = c[3].split(',').collect();
                cols[0].push(value(c[1]));
                cols[1].push(value(c[2]));
                cols[2].push(ad.first().copied().and_then(value));
                cols[3].push(ad.get(i + 1).copied().and_then(value));
            }
            let key = (f[0].into(), f[1].into(), f[2].into(), alt.into());
            let value = cols.iter().map(|c| list(c)).collect::<Vec<_>>().join("|");
            out.entry(key).or_default().push(value);
        }
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

fn cohortdb_values(store: &str) -> Values {
    let sql = "SELECT contig, pos, ref, alt, fmt_dp, fmt_gq, fmt_ad_ref, fmt_ad_alt FROM variants";
    let text = cohortdb(&["query", "--store", store, sql]).expect("query");
    let mut out = Values::new();
    for r in tsv_rows(&text) {
        let key = (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone());
        out.entry(key).or_default().push(r[4..8].join("|"));
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

#[test]
fn carriers_format_values_equal_bcftools() {
    for file in FILES {
        let path = shared_dir().join(file).display().to_string();
        let (dir, store) = new_store();
        cohortdb(&["ingest", "vcf", "--store", &store, &path]).expect("ingest");
        let expected = bcftools_values(&path);
        assert!(!expected.is_empty(), "{file}: no records");
        assert_eq!(cohortdb_values(&store), expected, "{file}");

        // The BCF of the same file keeps the same values (contig lines are added where the
        // header lacks them, as BCF needs them).
        let bcf = dir.path().join("in.bcf").display().to_string();
        let bcf_store = dir.path().join("bcf_store").display().to_string();
        sh(&format!(
            "f='{path}'; {{ bcftools view -h \"$f\" | sed '$d'; \
               bcftools query -f '%CHROM\\n' \"$f\" | uniq | sed 's/.*/##contig=<ID=&>/'; \
               bcftools view -h \"$f\" | tail -n 1; bcftools view -H \"$f\"; }} 2>/dev/null \
             | bcftools view --no-version -Ob -o '{bcf}'"
        ))
        .expect("bcftools view -Ob");
        cohortdb(&["ingest", "vcf", "--store", &bcf_store, &bcf]).expect("ingest bcf");
        assert_eq!(cohortdb_values(&bcf_store), expected, "{file} as BCF");
    }
}
