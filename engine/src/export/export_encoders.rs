//! One record as VCF text or as BCF, and the header both share.

use std::io::Write as _;

use cohortdb_store::genotype_bitmaps::GenotypeException;
use cohortdb_store::genotype_calls::{Call, MISSING_ALLELE};

use crate::export::bcf_encoding::{SharedFields, encode_gt, encode_record};
use crate::export::export_records::{Genotypes, SiteFields};

/// BCF dictionary keys after the FILTERs: AC, AN, END, GT (the order of [`header_text`]).
const AC: i32 = 0;
const AN: i32 = 1;
const END: i32 = 2;
const GT: i32 = 3;

/// Appends one BCF record; `filters` are the header's FILTER names (PASS first).
pub fn bcf_record(
    out: &mut Vec<u8>,
    contig_id: usize,
    site: &SiteFields<'_>,
    g: &Genotypes,
    filters: &[String],
    n_samples: usize,
) {
    let key = |k: i32| filters.len() as i32 + k;
    let mut alleles = vec![site.ref_allele];
    alleles.extend(&site.alts);
    let mut info = Vec::new();
    if !g.ac.is_empty() {
        info.push((key(AC), g.ac.clone()));
    }
    info.push((key(AN), vec![g.an]));
    if let Some(end) = site.info_end() {
        info.push((key(END), vec![end as i32]));
    }
    let filter_ids: Vec<i32> = site
        .filters
        .map(|text| {
            text.split(';')
                .filter_map(|f| filters.iter().position(|x| x == f))
                .map(|i| i as i32)
                .collect()
        })
        .unwrap_or_default();
    let mut indiv = Vec::new();
    if n_samples > 0 {
        encode_gt(&mut indiv, key(GT), &g.calls, &g.exceptions);
    }
    encode_record(
        out,
        &SharedFields {
            contig: contig_id as i32,
            pos0: (site.pos - 1) as i32,
            rlen: (site.end - site.pos + 1) as i32,
            qual: site.qual,
            id: site.id,
            alleles: &alleles,
            filters: &filter_ids,
            info: &info,
        },
        n_samples,
        usize::from(n_samples > 0),
        &indiv,
    );
}

fn push_allele(line: &mut Vec<u8>, a: u32) {
    if a == MISSING_ALLELE {
        line.push(b'.');
    } else if a < 10 {
        line.push(b'0' + a as u8);
    } else {
        line.extend_from_slice(a.to_string().as_bytes());
    }
}

/// One call's GT text (`0|1`, `1/2`, `.`, `0/1/2` for a call of higher ploidy).
fn gt_text(call: &Call, exception: Option<&GenotypeException>) -> String {
    let mut text = Vec::new();
    push_gt(&mut text, call, exception);
    String::from_utf8_lossy(&text).into_owned()
}

/// The GT text of each of `calls` (one per column), the exception of a column (a call of
/// ploidy above 2, as `decode_calls` returns them, by column) taking its place.
pub fn gt_texts(calls: &[Call], exceptions: &[(usize, GenotypeException)]) -> Vec<String> {
    let mut exceptions = exceptions.iter().peekable();
    calls
        .iter()
        .enumerate()
        .map(|(column, call)| {
            let exception = exceptions.next_if(|(c, _)| *c == column).map(|(_, e)| e);
            gt_text(call, exception)
        })
        .collect()
}

/// Appends one call's GT text.
fn push_gt(line: &mut Vec<u8>, call: &Call, exception: Option<&GenotypeException>) {
    if let Some(e) = exception {
        for (i, a) in e.alleles.iter().enumerate() {
            if i > 0 {
                line.push(if e.phased { b'|' } else { b'/' });
            }
            push_allele(line, a.unwrap_or(MISSING_ALLELE));
        }
        return;
    }
    push_allele(line, call.alleles[0]);
    if call.ploidy == 2 {
        line.push(if call.phased { b'|' } else { b'/' });
        push_allele(line, call.alleles[1]);
    }
}

/// Appends one VCF text line.
pub fn vcf_line(
    line: &mut Vec<u8>,
    contig: &str,
    site: &SiteFields<'_>,
    g: &Genotypes,
    with_samples: bool,
) {
    let alt = if site.alts.is_empty() {
        ".".to_string()
    } else {
        site.alts.join(",")
    };
    let qual = site.qual.map_or(".".to_string(), |q| q.to_string());
    let _ = write!(
        line,
        "{contig}\t{}\t{}\t{}\t{alt}\t{qual}\t{}\t",
        site.pos,
        site.id.unwrap_or("."),
        site.ref_allele,
        site.filters.unwrap_or(".")
    );
    if !g.ac.is_empty() {
        let ac: Vec<String> = g.ac.iter().map(i32::to_string).collect();
        let _ = write!(line, "AC={};", ac.join(","));
    }
    let _ = write!(line, "AN={}", g.an);
    if let Some(end) = site.info_end() {
        let _ = write!(line, ";END={end}");
    }
    if with_samples {
        line.extend_from_slice(b"\tGT");
        let mut next_exception = g.exceptions.iter().peekable();
        for (column, call) in g.calls.iter().enumerate() {
            line.push(b'\t');
            let exception = next_exception
                .next_if(|(c, _)| *c == column)
                .map(|(_, e)| e);
            push_gt(line, call, exception);
        }
    }
    line.push(b'\n');
}

/// The VCF header: FILTERs (PASS first), INFO AC, AN, END, FORMAT GT, contigs, samples.
pub fn header_text(
    contigs: &[String],
    filters: &[String],
    samples: &[String],
    version: u64,
) -> String {
    let mut h = String::from("##fileformat=VCFv4.2\n");
    for f in filters {
        let description = if f == "PASS" { "All filters passed" } else { f };
        h.push_str(&format!(
            "##FILTER=<ID={f},Description=\"{}\">\n",
            description.replace('"', "'")
        ));
    }
    h.push_str(
        "##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count in genotypes, for each ALT allele, in the same order as listed\">\n\
         ##INFO=<ID=AN,Number=1,Type=Integer,Description=\"Total number of alleles in called genotypes\">\n\
         ##INFO=<ID=END,Number=1,Type=Integer,Description=\"End position of the record (1-based, inclusive)\">\n\
         ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n",
    );
    for c in contigs {
        h.push_str(&format!("##contig=<ID={c}>\n"));
    }
    h.push_str(&format!(
        "##source=cohortdb {} (store version {version})\n",
        env!("CARGO_PKG_VERSION")
    ));
    h.push_str("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO");
    if !samples.is_empty() {
        h.push_str("\tFORMAT");
        for s in samples {
            h.push('\t');
            h.push_str(s);
        }
    }
    h.push('\n');
    h
}
