//! Collects the calls of one site into sorted sample lists, then roaring bitmaps.
//!
//! Samples must be added in ascending `sample_idx` order (the column order of the input), so
//! every list is sorted and bitmaps are built without searching. The classes follow the
//! counting rules documented in [`cohortdb_store::genotype_bitmaps`].

use cohortdb_store::fragment_builder::RowCounts;
use cohortdb_store::genotype_bitmaps::{
    GenotypeException, allele_number_contribution, encode_exceptions, serialize_bitmap,
};
use roaring::RoaringBitmap;

const HET: usize = 0;
const HOM: usize = 1;
const HEMI: usize = 2;
const CALLED_DIPLOID: usize = 0;
const CALLED_HAPLOID: usize = 1;
const NO_CALL: usize = 2;
const HAPLOID: usize = 3;
const PHASED: usize = 4;
const SWAPPED: usize = 5;

/// A set of the input's samples as a plain bitset (site-level classes are dense: nearly
/// every sample is called, and phased data phases them all).
#[derive(Debug)]
struct DenseSet {
    base: u32,
    bytes: Vec<u8>,
    len: usize,
}

impl DenseSet {
    fn new(base: u32, n_samples: usize) -> Self {
        Self {
            base,
            bytes: vec![0; n_samples.div_ceil(8)],
            len: 0,
        }
    }

    /// Adds `sample`, which must lie in the input's range (others are ignored).
    #[inline]
    fn push(&mut self, sample: u32) {
        let i = sample.wrapping_sub(self.base) as usize;
        if let Some(byte) = self.bytes.get_mut(i >> 3) {
            *byte |= 1 << (i & 7);
            self.len += 1;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn to_bitmap(&self) -> RoaringBitmap {
        if self.len == 0 {
            RoaringBitmap::new()
        } else {
            RoaringBitmap::from_lsb0_bytes(self.base, &self.bytes)
        }
    }
}

/// Accumulates the calls of one site with `n_alleles` alleles (REF included).
#[derive(Debug)]
pub struct GenotypeAccumulator {
    per_alt: Vec<[Vec<u32>; 3]>,
    site: [DenseSet; 6],
    exceptions: Vec<GenotypeException>,
    an_extra: i64,
}

/// The encoded genotypes of one site.
#[derive(Debug, Clone, Default)]
pub struct SiteGenotypes {
    /// Per ALT: serialised `het`, `hom_alt`, `hemi`.
    pub alt_bitmaps: Vec<[Vec<u8>; 3]>,
    /// Per ALT: counts over the input's samples.
    pub alt_counts: Vec<RowCounts>,
    /// Called alleles at the site.
    pub an: i64,
    /// Samples without a called allele.
    pub n_no_call: i64,
    /// Serialised `called_diploid`, `called_haploid`, `no_call`, `haploid`, `phased`, `swapped`.
    pub site_bitmaps: [Vec<u8>; 6],
    /// Serialised exceptions (ploidy above 2), if any.
    pub exceptions: Option<Vec<u8>>,
}

impl GenotypeAccumulator {
    /// An empty accumulator for a site with `n_alleles` alleles, whose samples are
    /// `base..base + n_samples`.
    pub fn new(n_alleles: usize, base: u32, n_samples: usize) -> Self {
        Self {
            per_alt: (1..n_alleles.max(1)).map(|_| Default::default()).collect(),
            site: std::array::from_fn(|_| DenseSet::new(base, n_samples)),
            exceptions: Vec::new(),
            an_extra: 0,
        }
    }

    fn alt(&mut self, allele: u32, class: usize, sample: u32) {
        if allele > 0
            && let Some(lists) = self.per_alt.get_mut(allele as usize - 1)
        {
            lists[class].push(sample);
        }
    }

    /// Adds a diploid call; alleles must be in range (checked by the parser).
    #[inline]
    pub fn add_diploid(&mut self, sample: u32, a: Option<u32>, b: Option<u32>, phased: bool) {
        if phased {
            self.site[PHASED].push(sample);
        }
        match (a, b) {
            (None, None) => self.site[NO_CALL].push(sample),
            (Some(x), Some(y)) => {
                self.site[CALLED_DIPLOID].push(sample);
                if x > y {
                    self.site[SWAPPED].push(sample);
                }
                if x == y {
                    self.alt(x, HOM, sample);
                } else {
                    self.alt(x, HET, sample);
                    self.alt(y, HET, sample);
                }
            }
            (Some(x), None) | (None, Some(x)) => {
                if a.is_some() {
                    self.site[SWAPPED].push(sample);
                }
                self.site[CALLED_HAPLOID].push(sample);
                self.alt(x, HEMI, sample);
            }
        }
    }

    /// Adds a haploid call.
    pub fn add_haploid(&mut self, sample: u32, a: Option<u32>) {
        self.site[HAPLOID].push(sample);
        match a {
            None => self.site[NO_CALL].push(sample),
            Some(x) => {
                self.site[CALLED_HAPLOID].push(sample);
                self.alt(x, HEMI, sample);
            }
        }
    }

    /// Adds a call of any ploidy (ploidy 1 and 2 go to the fast forms).
    pub fn add_call(&mut self, sample: u32, alleles: &[Option<u32>], phased: bool) {
        match alleles {
            // No GT at all reads back as `.`, as bcftools shows it.
            [] => self.add_haploid(sample, None),
            [a] => self.add_haploid(sample, *a),
            [a, b] => self.add_diploid(sample, *a, *b, phased),
            _ => self.add_polyploid(sample, alleles, phased),
        }
    }

    fn add_polyploid(&mut self, sample: u32, alleles: &[Option<u32>], phased: bool) {
        if phased {
            self.site[PHASED].push(sample);
        }
        let mut distinct: Vec<u32> = alleles.iter().flatten().copied().collect();
        let called = distinct.len();
        distinct.sort_unstable();
        distinct.dedup();
        let contribution = allele_number_contribution(alleles);
        match distinct.as_slice() {
            [] => self.site[NO_CALL].push(sample),
            [x] if called == alleles.len() => {
                self.site[CALLED_DIPLOID].push(sample);
                self.alt(*x, HOM, sample);
            }
            [x] => {
                self.site[CALLED_HAPLOID].push(sample);
                self.alt(*x, HEMI, sample);
            }
            many => {
                self.site[CALLED_DIPLOID].push(sample);
                self.an_extra += i64::from(contribution) - 2;
                for &x in many {
                    self.alt(x, HET, sample);
                }
            }
        }
        self.exceptions.push(GenotypeException {
            sample_idx: sample,
            phased,
            alleles: alleles.to_vec(),
        });
    }

    /// Builds the bitmaps and counts.
    pub fn finish(self) -> SiteGenotypes {
        let bitmap = |list: &Vec<u32>| {
            let mut b = sorted_to_bitmap(list);
            b.optimize();
            serialize_bitmap(&b)
        };
        let an = 2 * self.site[CALLED_DIPLOID].len() as i64
            + self.site[CALLED_HAPLOID].len() as i64
            + self.an_extra;
        let n_no_call = self.site[NO_CALL].len() as i64;
        SiteGenotypes {
            alt_counts: self
                .per_alt
                .iter()
                .map(|l| {
                    let (het, hom, hemi) = (
                        l[HET].len() as i64,
                        l[HOM].len() as i64,
                        l[HEMI].len() as i64,
                    );
                    RowCounts {
                        ac: het + 2 * hom + hemi,
                        an,
                        n_het: het,
                        n_hom_alt: hom,
                        n_hemi: hemi,
                        n_no_call,
                    }
                })
                .collect(),
            alt_bitmaps: self
                .per_alt
                .iter()
                .map(|l| [bitmap(&l[HET]), bitmap(&l[HOM]), bitmap(&l[HEMI])])
                .collect(),
            site_bitmaps: std::array::from_fn(|i| {
                let mut b = self.site[i].to_bitmap();
                b.optimize();
                serialize_bitmap(&b)
            }),
            an,
            n_no_call,
            exceptions: (!self.exceptions.is_empty()).then(|| encode_exceptions(&self.exceptions)),
        }
    }
}

/// A bitmap of an ascending list: dense lists (say every sample called) go through a plain
/// bitset, which roaring turns into containers without inserting value by value.
fn sorted_to_bitmap(list: &[u32]) -> RoaringBitmap {
    let (Some(&first), Some(&last)) = (list.first(), list.last()) else {
        return RoaringBitmap::new();
    };
    let span = (last - first) as usize + 1;
    if list.len() < 1024 || list.len() * 32 < span || last < first {
        return RoaringBitmap::from_sorted_iter(list.iter().copied())
            .unwrap_or_else(|_| list.iter().copied().collect());
    }
    let mut bytes = vec![0u8; span.div_ceil(8)];
    for &v in list {
        let bit = (v - first) as usize;
        bytes[bit >> 3] |= 1 << (bit & 7);
    }
    RoaringBitmap::from_lsb0_bytes(first, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_fill_tags_rules() {
        let mut acc = GenotypeAccumulator::new(3, 0, 7);
        acc.add_diploid(0, Some(0), Some(1), false); // het 1
        acc.add_diploid(1, Some(1), Some(1), true); // hom 1
        acc.add_diploid(2, Some(1), Some(2), false); // het 1 and 2
        acc.add_diploid(3, None, Some(2), false); // hemi 2
        acc.add_diploid(4, None, None, false); // no call
        acc.add_haploid(5, Some(1)); // hemi 1
        acc.add_call(6, &[Some(0), Some(1), Some(2)], false); // triploid: het 1, 2; AN 3
        let g = acc.finish();
        let c1 = g.alt_counts[0];
        assert_eq!((c1.ac, c1.n_het, c1.n_hom_alt, c1.n_hemi), (6, 3, 1, 1));
        let c2 = g.alt_counts[1];
        assert_eq!((c2.ac, c2.n_het, c2.n_hemi), (3, 2, 1));
        assert_eq!(c1.an, 2 + 2 + 2 + 1 + 1 + 3);
        assert_eq!(c1.n_no_call, 1);
        assert!(g.exceptions.is_some());
    }

    #[test]
    fn dense_and_sparse_lists_give_the_same_bitmaps() {
        let dense: Vec<u32> = (70_000..140_000).filter(|v| v % 7 != 0).collect();
        let sparse: Vec<u32> = (0..5000).map(|v| v * 1000 + 3).collect();
        for list in [dense, sparse, vec![5], Vec::new()] {
            let expected: RoaringBitmap = list.iter().copied().collect();
            assert_eq!(sorted_to_bitmap(&list), expected);
        }
    }
}
