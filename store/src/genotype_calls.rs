//! Per-sample calls rebuilt from a site's genotype bitmaps: the inverse of the encoding in
//! [`crate::genotype_bitmaps`], used by export.
//!
//! For each chosen sample the call is rebuilt as it was written in the input: ploidy, allele
//! order (`swapped`), phase, partly missing calls (`./1`), and calls of ploidy above 2 from the
//! exceptions. A chosen sample that none of the site bitmaps names (its batch has no record
//! here) is missing (`./.`), as `bcftools merge` writes it.

use roaring::RoaringBitmap;

use crate::genotype_bitmaps::GenotypeException;

/// A missing allele (`.`) in [`Call::alleles`].
pub const MISSING_ALLELE: u32 = u32::MAX;

/// One sample's call of ploidy 1 or 2 (higher ploidies are [`GenotypeException`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Allele indices in output order (0 = REF, [`MISSING_ALLELE`] = `.`); only the first
    /// `ploidy` are used.
    pub alleles: [u32; 2],
    /// 1 or 2.
    pub ploidy: u8,
    /// Whether the call is phased (`|`).
    pub phased: bool,
}

const NOT_CALLED: Call = Call {
    alleles: [MISSING_ALLELE, MISSING_ALLELE],
    ploidy: 2,
    phased: false,
};

/// The site-level bitmaps of one site (see [`crate::genotype_bitmaps::BITMAP_COLUMNS`]).
#[derive(Debug, Clone, Default)]
pub struct SiteBitmaps {
    /// Samples contributing 2 to AN.
    pub called_diploid: RoaringBitmap,
    /// Samples contributing 1 to AN.
    pub called_haploid: RoaringBitmap,
    /// Samples with no called allele.
    pub no_call: RoaringBitmap,
    /// Samples whose call has ploidy 1.
    pub haploid: RoaringBitmap,
    /// Samples whose call is phased.
    pub phased: RoaringBitmap,
    /// Samples whose alleles were not in ascending order.
    pub swapped: RoaringBitmap,
}

/// The per-ALT bitmaps of one ALT.
#[derive(Debug, Clone, Default)]
pub struct AltBitmaps {
    /// One copy of this ALT.
    pub het: RoaringBitmap,
    /// Two copies.
    pub hom_alt: RoaringBitmap,
    /// The hemizygous or partly missing call of this ALT.
    pub hemi: RoaringBitmap,
}

/// The samples to rebuild, in output order.
#[derive(Debug, Clone)]
pub struct SampleColumns {
    set: RoaringBitmap,
    lookup: Lookup,
}

/// How a chosen sample's output column is found.
#[derive(Debug, Clone)]
enum Lookup {
    /// By a table as long as the largest sample index.
    Table(Vec<u32>),
    /// By binary search of the chosen samples, in ascending order: a page of carriers among
    /// many samples needs no table as long as the registry.
    Sorted(Vec<u32>),
}

impl SampleColumns {
    /// Output columns for `order` (sample indices, each at most once).
    pub fn new(order: &[u32]) -> Self {
        let size = order.iter().max().map_or(0, |m| *m as usize + 1);
        let lookup = match order.is_sorted() && order.len() * 8 < size {
            true => Lookup::Sorted(order.to_vec()),
            false => {
                let mut column_of = vec![u32::MAX; size];
                for (column, idx) in order.iter().enumerate() {
                    column_of[*idx as usize] = column as u32;
                }
                Lookup::Table(column_of)
            }
        };
        Self {
            set: order.iter().copied().collect(),
            lookup,
        }
    }

    /// Number of output columns.
    pub fn len(&self) -> usize {
        self.set.len() as usize
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The chosen samples as a set.
    pub fn set(&self) -> &RoaringBitmap {
        &self.set
    }

    /// The output column of a chosen sample.
    pub fn column(&self, sample_idx: u32) -> Option<usize> {
        match &self.lookup {
            Lookup::Sorted(order) => order.binary_search(&sample_idx).ok(),
            Lookup::Table(column_of) => match column_of.get(sample_idx as usize) {
                Some(&c) if c != u32::MAX => Some(c as usize),
                _ => None,
            },
        }
    }

    fn each(&self, bitmap: &RoaringBitmap, mut f: impl FnMut(u32, usize)) {
        for idx in &(bitmap & &self.set) {
            if let Some(column) = self.column(idx) {
                f(idx, column);
            }
        }
    }
}

/// The chosen samples' calls at one site: ploidy 1 and 2 calls in `calls`, one per column;
/// calls of higher ploidy as `(column, exception)` in `exceptions` (their entry in `calls` is
/// then unused). `alts[i]` holds the bitmaps of allele `i + 1`.
pub fn decode_calls(
    site: &SiteBitmaps,
    alts: &[AltBitmaps],
    exceptions: &[GenotypeException],
    columns: &SampleColumns,
    calls: &mut Vec<Call>,
) -> Vec<(usize, GenotypeException)> {
    calls.clear();
    calls.resize(columns.len(), NOT_CALLED);
    columns.each(&site.called_diploid, |_, c| calls[c].alleles = [0, 0]);
    columns.each(&site.called_haploid, |idx, c| {
        calls[c] = if site.haploid.contains(idx) {
            Call {
                alleles: [0, MISSING_ALLELE],
                ploidy: 1,
                phased: false,
            }
        } else {
            Call {
                alleles: [MISSING_ALLELE, 0],
                ..NOT_CALLED
            }
        }
    });
    columns.each(&(&site.no_call & &site.haploid), |_, c| calls[c].ploidy = 1);
    for (i, alt) in alts.iter().enumerate() {
        let a = i as u32 + 1;
        columns.each(&alt.het, |_, c| {
            let call = &mut calls[c];
            call.alleles = match call.alleles {
                [0, 0] => [0, a],
                [0, x] => [x, a],
                other => other,
            };
        });
        columns.each(&alt.hom_alt, |_, c| calls[c].alleles = [a, a]);
        columns.each(&alt.hemi, |_, c| {
            let call = &mut calls[c];
            call.alleles = if call.ploidy == 1 {
                [a, MISSING_ALLELE]
            } else {
                [MISSING_ALLELE, a]
            };
        });
    }
    columns.each(&site.swapped, |_, c| {
        if calls[c].ploidy == 2 {
            calls[c].alleles.swap(0, 1);
        }
    });
    columns.each(&site.phased, |_, c| calls[c].phased = true);
    exceptions
        .iter()
        .filter_map(|e| Some((columns.column(e.sample_idx)?, e.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u32]) -> RoaringBitmap {
        ids.iter().copied().collect()
    }

    #[test]
    fn rebuilds_order_phase_ploidy_and_partial_calls() {
        // Samples: 0 `0/0`, 1 `2|1`, 2 `1/.`, 3 `.`, 4 `1`, 5 `./.`, 6 (not in this batch),
        // 7 `0|1`, 8 `2/2`.
        let site = SiteBitmaps {
            called_diploid: set(&[0, 1, 7, 8]),
            called_haploid: set(&[2, 4]),
            no_call: set(&[3, 5]),
            haploid: set(&[3, 4]),
            phased: set(&[1, 7]),
            swapped: set(&[1, 2]),
        };
        let alts = [
            AltBitmaps {
                het: set(&[1, 7]),
                hom_alt: set(&[]),
                hemi: set(&[2, 4]),
            },
            AltBitmaps {
                het: set(&[1]),
                hom_alt: set(&[8]),
                hemi: set(&[]),
            },
        ];
        let columns = SampleColumns::new(&[8, 7, 6, 5, 4, 3, 2, 1, 0]);
        let mut calls = Vec::new();
        assert!(decode_calls(&site, &alts, &[], &columns, &mut calls).is_empty());
        let m = MISSING_ALLELE;
        let got: Vec<([u32; 2], u8, bool)> = calls
            .iter()
            .map(|c| (c.alleles, c.ploidy, c.phased))
            .collect();
        assert_eq!(
            got,
            [
                ([2, 2], 2, false),
                ([0, 1], 2, true),
                ([m, m], 2, false),
                ([m, m], 2, false),
                ([1, m], 1, false),
                ([m, m], 1, false),
                ([1, m], 2, false),
                ([2, 1], 2, true),
                ([0, 0], 2, false),
            ]
        );
        // A few samples in ascending order among many: found by binary search, same calls.
        let sparse = SampleColumns::new(&[1, 7, 200]);
        assert!(matches!(sparse.lookup, Lookup::Sorted(_)));
        assert_eq!((sparse.column(7), sparse.column(8)), (Some(1), None));
        decode_calls(&site, &alts, &[], &sparse, &mut calls);
        let got: Vec<([u32; 2], bool)> = calls.iter().map(|c| (c.alleles, c.phased)).collect();
        assert_eq!(got, [([2, 1], true), ([0, 1], true), ([m, m], false)]);
    }
}
