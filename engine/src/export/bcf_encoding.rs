//! BCF 2.2 typed values and records (VCF specification, section 6).

use cohortdb_store::genotype_bitmaps::GenotypeException;
use cohortdb_store::genotype_calls::{Call, MISSING_ALLELE};

const INT8: u8 = 1;
const INT16: u8 = 2;
const INT32: u8 = 3;
const CHAR: u8 = 7;

/// BCF's missing float (a signalling NaN).
const FLOAT_MISSING: u32 = 0x7F80_0001;

fn descriptor(out: &mut Vec<u8>, count: usize, kind: u8) {
    if count < 15 {
        out.push(((count as u8) << 4) | kind);
    } else {
        out.push(0xF0 | kind);
        typed_int(out, count as i32);
    }
}

fn int_kind(min: i32, max: i32) -> u8 {
    if min >= -120 && max <= 127 {
        INT8
    } else if min >= -32760 && max <= 32767 {
        INT16
    } else {
        INT32
    }
}

fn put_int(out: &mut Vec<u8>, kind: u8, v: i32) {
    match kind {
        INT8 => out.push(v as i8 as u8),
        INT16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
        _ => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// A typed integer vector in its smallest type.
pub fn typed_ints(out: &mut Vec<u8>, values: &[i32]) {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    let kind = int_kind(min, max);
    descriptor(out, values.len(), kind);
    for v in values {
        put_int(out, kind, *v);
    }
}

/// One typed integer.
pub fn typed_int(out: &mut Vec<u8>, v: i32) {
    typed_ints(out, &[v]);
}

/// A typed character string (length 0 for a missing value).
pub fn typed_str(out: &mut Vec<u8>, s: &str) {
    descriptor(out, s.len(), CHAR);
    out.extend_from_slice(s.as_bytes());
}

/// The fixed fields of a BCF record.
pub struct SharedFields<'a> {
    /// Contig index in the header dictionary.
    pub contig: i32,
    /// 0-based position.
    pub pos0: i32,
    /// Length of the reference span.
    pub rlen: i32,
    /// QUAL.
    pub qual: Option<f32>,
    /// ID, `None` for `.`.
    pub id: Option<&'a str>,
    /// REF then the ALTs.
    pub alleles: &'a [&'a str],
    /// FILTER dictionary indices (empty for `.`).
    pub filters: &'a [i32],
    /// INFO (dictionary index, integer values).
    pub info: &'a [(i32, Vec<i32>)],
}

/// GT of every sample as BCF typed values (key `gt_key`): the vector is as wide as the
/// largest ploidy; shorter calls end with the vector-end value.
pub fn encode_gt(
    out: &mut Vec<u8>,
    gt_key: i32,
    calls: &[Call],
    exceptions: &[(usize, GenotypeException)],
) {
    let width = exceptions
        .iter()
        .map(|(_, e)| e.alleles.len())
        .max()
        .unwrap_or(0)
        .max(calls.iter().map(|c| c.ploidy as usize).max().unwrap_or(1));
    let top = exceptions
        .iter()
        .flat_map(|(_, e)| e.alleles.iter().flatten().copied())
        .chain(calls.iter().flat_map(|c| c.alleles))
        .filter(|a| *a != MISSING_ALLELE)
        .max()
        .unwrap_or(0);
    let kind = int_kind(0, ((top as i64 + 1) * 2 + 1).min(i32::MAX as i64) as i32);
    let vector_end = match kind {
        INT8 => -127,
        INT16 => -32767,
        _ => -2_147_483_647,
    };
    typed_int(out, gt_key);
    descriptor(out, width, kind);
    let encode = |a: Option<u32>, phased: bool| -> i32 {
        let base = a.map_or(0, |a| (a as i32 + 1) << 1);
        base | i32::from(phased)
    };
    let mut next_exception = exceptions.iter().peekable();
    for (column, call) in calls.iter().enumerate() {
        if let Some((_, e)) = next_exception.next_if(|(c, _)| *c == column) {
            for slot in 0..width {
                let v = match e.alleles.get(slot) {
                    Some(a) => encode(*a, e.phased && slot > 0),
                    None => vector_end,
                };
                put_int(out, kind, v);
            }
            continue;
        }
        for slot in 0..width {
            let v = if slot < call.ploidy as usize {
                let a = call.alleles[slot];
                encode((a != MISSING_ALLELE).then_some(a), call.phased && slot > 0)
            } else {
                vector_end
            };
            put_int(out, kind, v);
        }
    }
}

/// A whole record: lengths, shared part, then `indiv` (already encoded FORMAT data for
/// `n_samples` samples and `n_format` keys).
pub fn encode_record(
    out: &mut Vec<u8>,
    fields: &SharedFields<'_>,
    n_samples: usize,
    n_format: usize,
    indiv: &[u8],
) {
    let mut shared = Vec::with_capacity(64);
    shared.extend_from_slice(&fields.contig.to_le_bytes());
    shared.extend_from_slice(&fields.pos0.to_le_bytes());
    shared.extend_from_slice(&fields.rlen.to_le_bytes());
    let qual = fields.qual.map_or(FLOAT_MISSING, f32::to_bits);
    shared.extend_from_slice(&qual.to_le_bytes());
    let n_allele_info = ((fields.alleles.len() as u32) << 16) | fields.info.len() as u32;
    shared.extend_from_slice(&n_allele_info.to_le_bytes());
    let n_fmt_sample = ((n_format as u32) << 24) | (n_samples as u32 & 0x00FF_FFFF);
    shared.extend_from_slice(&n_fmt_sample.to_le_bytes());
    typed_str(&mut shared, fields.id.unwrap_or(""));
    for allele in fields.alleles {
        typed_str(&mut shared, allele);
    }
    if fields.filters.is_empty() {
        shared.push(0);
    } else {
        typed_ints(&mut shared, fields.filters);
    }
    for (key, values) in fields.info {
        typed_int(&mut shared, *key);
        typed_ints(&mut shared, values);
    }
    out.extend_from_slice(&(shared.len() as u32).to_le_bytes());
    out.extend_from_slice(&(indiv.len() as u32).to_le_bytes());
    out.extend_from_slice(&shared);
    out.extend_from_slice(indiv);
}

/// The BCF file header: magic, length and the VCF header text (NUL-terminated).
pub fn encode_header(text: &str) -> Vec<u8> {
    let mut out = b"BCF\x02\x02".to_vec();
    out.extend_from_slice(&(text.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        let mut out = Vec::new();
        typed_int(&mut out, 5);
        assert_eq!(out, [0x11, 5]);
        out.clear();
        typed_ints(&mut out, &[1, 300]);
        assert_eq!(out, [0x22, 1, 0, 0x2c, 1]);
        out.clear();
        typed_str(&mut out, "AC");
        assert_eq!(out, [0x27, b'A', b'C']);
    }

    #[test]
    fn genotypes_use_vector_end_for_haploid_calls() {
        let calls = [
            Call {
                alleles: [0, 1],
                ploidy: 2,
                phased: true,
            },
            Call {
                alleles: [1, MISSING_ALLELE],
                ploidy: 1,
                phased: false,
            },
        ];
        let mut out = Vec::new();
        encode_gt(&mut out, 3, &calls, &[]);
        // key 3, int8 x 2, then 0|1 = (2, 5) and 1 = (4, end).
        assert_eq!(out, [0x11, 3, 0x21, 2, 5, 4, 0x81]);
    }
}
