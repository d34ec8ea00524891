//! Genotypes of one variant row as roaring bitmaps over `sample_idx`, and the counting rules.
//!
//! Counting follows `bcftools +fill-tags` exactly, so that AC, AN, AC_Het and AC_Hom agree with
//! it for every ploidy. For one sample at one site, let D be the set of distinct called allele
//! indices and `called` the number of non-missing alleles out of its ploidy:
//!
//! - D empty: no call (contributes nothing);
//! - |D| >= 2: heterozygous; every allele in D gets 1 (AN += |D|);
//! - D = {a} and `called == ploidy >= 2`: homozygous; allele a gets 2 (AN += 2);
//! - D = {a} otherwise (haploid call, or a partly missing call such as `./1`): hemizygous;
//!   allele a gets 1 (AN += 1).
//!
//! Per ALT row the bitmaps `het`, `hom_alt` and `hemi` hold the samples whose call puts this ALT
//! in that class; they are disjoint. Per site (repeated on each ALT row) `called_diploid` holds
//! samples contributing 2 to AN (and those contributing more, see below), `called_haploid`
//! those contributing 1, `no_call` those with no called allele, `haploid` the samples whose
//! call has ploidy 1 (called or not), `phased` the samples whose call is phased, and `swapped`
//! the samples whose alleles are not in ascending order in the input (`1|0`, `1/.`), so export
//! can write the call back exactly. Calls of ploidy above 2 are also listed in full in
//! `gt_exceptions` (see [`GenotypeException`]); their AN contribution above 2 is added from
//! there.

use roaring::RoaringBitmap;

/// Names of the bitmap columns of a variant fragment, in schema order.
pub const BITMAP_COLUMNS: [&str; 9] = [
    "het",
    "hom_alt",
    "hemi",
    "called_diploid",
    "called_haploid",
    "no_call",
    "haploid",
    "phased",
    "swapped",
];

/// A call that the bitmaps cannot hold in full: ploidy above 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenotypeException {
    /// The sample.
    pub sample_idx: u32,
    /// Whether the call is phased.
    pub phased: bool,
    /// Allele indices in input order; `None` for a missing allele (`.`).
    pub alleles: Vec<Option<u32>>,
}

impl GenotypeException {
    /// Contribution of this call to AN under the counting rules above.
    pub fn an_contribution(&self) -> u32 {
        allele_number_contribution(&self.alleles)
    }
}

/// The AN contribution of one call (allele indices, `None` = missing) under the rules above.
pub fn allele_number_contribution(alleles: &[Option<u32>]) -> u32 {
    let mut distinct: Vec<u32> = alleles.iter().flatten().copied().collect();
    let called = distinct.len();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.len() {
        0 => 0,
        1 if called == alleles.len() && called >= 2 => 2,
        1 => 1,
        n => n as u32,
    }
}

/// Serialises exceptions: per call `sample_idx` (u32 LE), flags (bit 0 = phased), ploidy (u8),
/// then each allele as u32 LE with `u32::MAX` for missing.
pub fn encode_exceptions(exceptions: &[GenotypeException]) -> Vec<u8> {
    let mut out = Vec::with_capacity(exceptions.len() * 16);
    for e in exceptions {
        out.extend_from_slice(&e.sample_idx.to_le_bytes());
        out.push(u8::from(e.phased));
        out.push(e.alleles.len().min(255) as u8);
        for allele in e.alleles.iter().take(255) {
            out.extend_from_slice(&allele.unwrap_or(u32::MAX).to_le_bytes());
        }
    }
    out
}

/// Decodes [`encode_exceptions`] output; `None` when the bytes are malformed.
pub fn decode_exceptions(mut bytes: &[u8]) -> Option<Vec<GenotypeException>> {
    let mut out = Vec::new();
    let take_u32 = |b: &mut &[u8]| -> Option<u32> {
        let (head, rest) = b.split_first_chunk::<4>()?;
        *b = rest;
        Some(u32::from_le_bytes(*head))
    };
    while !bytes.is_empty() {
        let sample_idx = take_u32(&mut bytes)?;
        let (&[flags, ploidy], rest) = bytes.split_first_chunk::<2>()?;
        bytes = rest;
        let mut alleles = Vec::with_capacity(ploidy as usize);
        for _ in 0..ploidy {
            let a = take_u32(&mut bytes)?;
            alleles.push((a != u32::MAX).then_some(a));
        }
        out.push(GenotypeException {
            sample_idx,
            phased: flags & 1 == 1,
            alleles,
        });
    }
    Some(out)
}

/// Serialises a bitmap in the portable roaring format (readable by CRoaring, Java, pyroaring).
pub fn serialize_bitmap(bitmap: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = bitmap.serialize_into(&mut out);
    out
}

/// Gives `bitmap` the one encoding ingest stores a set in: each container as an array or a
/// bitset by its cardinality, or as runs where those are strictly smaller. (`optimize` alone
/// keeps a container's runs where they tie, so equal sets could serialise differently.)
pub fn canonicalize(bitmap: &mut RoaringBitmap) {
    bitmap.remove_run_compression();
    bitmap.optimize();
}

/// Reads a portable roaring bitmap; `None` when the bytes are not one.
pub fn deserialize_bitmap(bytes: &[u8]) -> Option<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_contribution_follows_fill_tags() {
        let c = |a: &[Option<u32>]| allele_number_contribution(a);
        assert_eq!(c(&[Some(0), Some(1)]), 2);
        assert_eq!(c(&[Some(1), Some(1)]), 2);
        assert_eq!(c(&[None, Some(1)]), 1);
        assert_eq!(c(&[None, None]), 0);
        assert_eq!(c(&[Some(1)]), 1);
        assert_eq!(c(&[Some(0), Some(1), Some(1)]), 2);
        assert_eq!(c(&[Some(0), Some(1), Some(2)]), 3);
        assert_eq!(c(&[Some(1), Some(1), Some(1)]), 2);
        assert_eq!(c(&[Some(1), Some(1), None]), 1);
    }

    #[test]
    fn exceptions_round_trip_and_reject_truncation() {
        let e = vec![GenotypeException {
            sample_idx: 7,
            phased: true,
            alleles: vec![Some(0), None, Some(2)],
        }];
        let bytes = encode_exceptions(&e);
        assert_eq!(decode_exceptions(&bytes).unwrap(), e);
        assert!(decode_exceptions(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn bitmaps_round_trip() {
        let b: RoaringBitmap = [1u32, 5, 70000].into_iter().collect();
        assert_eq!(deserialize_bitmap(&serialize_bitmap(&b)).unwrap(), b);
        assert!(deserialize_bitmap(b"nope").is_none());
    }
}
