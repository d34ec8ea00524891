//! plink2's variant filters `--maf`, `--geno` and `--hwe`, decided per record within a cohort
//! from the decoded rows of the [`crate::rows::site_cache`], for `af`, `assoc` and `export` to
//! keep only the records that pass.
//!
//! As plink2 computes them, over the cohort's samples (plink2's `--keep`), whether or not they
//! have a phenotype:
//!
//! - **maf**: the nonmajor allele frequency, 1 minus the frequency of the record's most
//!   frequent allele (REF included), at least the threshold. A record with no called allele
//!   has no frequency and fails.
//! - **geno**: the fraction of the cohort without a call (no allele counted in AN) at most the
//!   threshold.
//! - **hwe**: the Hardy-Weinberg exact test ([`hwe_exact`], Wigginton et al. 2005, as plink2)
//!   over the diploid calls, p at least the threshold; a record of k > 2 alleles is tested k
//!   times, each allele against the rest, and fails if any test does. Half calls (`./1`) are
//!   left out. plink2 tests chrX by Graffelman and Weir's method; here a haploid call is
//!   simply not part of the test.
//!
//! The rows of one record share its verdict.

use std::collections::HashSet;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::DataFusionError;
use roaring::RoaringBitmap;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::ops::allele_counts::SiteSelection;
use crate::region::Region;

/// Variant filters as plink2 takes them; a filter not set keeps every record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SiteQc {
    /// `--maf`: the least nonmajor allele frequency kept.
    pub min_maf: Option<f64>,
    /// `--geno`: the largest missing call rate kept.
    pub max_missing: Option<f64>,
    /// `--hwe`: the least Hardy-Weinberg exact test p kept.
    pub min_hwe_p: Option<f64>,
    /// `--hwe ... midp`: the mid-p variant of the test.
    pub hwe_midp: bool,
}

impl SiteQc {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.min_maf.is_none() && self.max_missing.is_none() && self.min_hwe_p.is_none()
    }

    /// Refuses thresholds outside their range.
    pub fn check(&self) -> Result<()> {
        let bad = |flag: &str, v: f64, range: &str| {
            EngineError::InvalidArgument(format!("{flag} {v}: the threshold is in {range}"))
        };
        if let Some(v) = self.min_maf
            && !(0.0..=0.5).contains(&v)
        {
            return Err(bad("--maf", v, "[0, 0.5]"));
        }
        if let Some(v) = self.max_missing
            && !(0.0..=1.0).contains(&v)
        {
            return Err(bad("--geno", v, "[0, 1]"));
        }
        if let Some(v) = self.min_hwe_p
            && !(0.0..=1.0).contains(&v)
        {
            return Err(bad("--hwe", v, "[0, 1]"));
        }
        Ok(())
    }
}

/// The rows that pass, by `(contig, pos, ref, alt)`, and how many records each filter removed.
#[derive(Debug, Default)]
pub struct SitePass {
    kept: HashSet<(String, i64, String, String)>,
    /// Records in the regions.
    pub records: usize,
    /// Records removed by `--geno`, `--hwe` and `--maf`, in that order (a record counts for
    /// the first filter it fails, as plink2 reports them).
    pub removed: [usize; 3],
}

impl SitePass {
    /// Keeps the ALT row `contig:pos ref>alt`.
    pub(crate) fn keep(&mut self, contig: String, pos: i64, reference: String, alt: String) {
        self.kept.insert((contig, pos, reference, alt));
    }

    /// Keeps only the rows `other` keeps too.
    pub fn retain(&mut self, other: &SitePass) {
        self.kept.retain(|row| other.kept.contains(row));
    }

    /// Whether the ALT row `contig:pos ref>alt` passes.
    pub fn keeps(&self, contig: &str, pos: i64, reference: &str, alt: &str) -> bool {
        self.kept.contains(&(
            contig.to_string(),
            pos,
            reference.to_string(),
            alt.to_string(),
        ))
    }

    /// The rows of `batch` that pass: an operation's (`chrom pos id ref alt` first), or the
    /// `variants` table's (`contig` for `chrom`).
    pub fn filter(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                EngineError::InvalidArgument(format!("variant filters need a {name} column"))
            })
        };
        let text = |name: &str| -> Result<ArrayRef> {
            Ok(cast(column(name)?, &DataType::Utf8).map_err(DataFusionError::from)?)
        };
        let contig = if batch.column_by_name("chrom").is_some() {
            "chrom"
        } else {
            "contig"
        };
        let (chrom, reference, alt) = (text(contig)?, text("ref")?, text("alt")?);
        let pos = cast(column("pos")?, &DataType::Int64).map_err(DataFusionError::from)?;
        let (chrom, reference, alt, pos) = (
            chrom.as_string::<i32>(),
            reference.as_string::<i32>(),
            alt.as_string::<i32>(),
            pos.as_primitive::<Int64Type>(),
        );
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|r| {
                Some(self.keeps(
                    chrom.value(r),
                    pos.value(r),
                    reference.value(r),
                    alt.value(r),
                ))
            })
            .collect();
        Ok(filter_record_batch(batch, &keep).map_err(DataFusionError::from)?)
    }

    /// What was removed, as plink2 words it (`--geno: 3 variants removed ...`).
    pub fn summary(&self, qc: &SiteQc) -> Vec<String> {
        let mut lines = Vec::new();
        let flags = [
            ("--geno", qc.max_missing.is_some(), "missing genotype data"),
            ("--hwe", qc.min_hwe_p.is_some(), "Hardy-Weinberg exact test"),
            ("--maf", qc.min_maf.is_some(), "allele frequency"),
        ];
        for ((flag, set, why), n) in flags.into_iter().zip(self.removed) {
            if set {
                lines.push(format!("{flag}: {n} variants removed due to {why}"));
            }
        }
        let kept = self.records - self.removed.iter().sum::<usize>();
        lines.push(format!("{kept} of {} variants pass filters", self.records));
        lines
    }
}

/// One record's calls within the cohort: its diploid and haploid called samples, and per ALT
/// the het, hom-alt and hemi (half-call) samples.
struct RecordCalls {
    diploid: RoaringBitmap,
    haploid: RoaringBitmap,
    alts: Vec<[RoaringBitmap; 3]>,
}

impl RecordCalls {
    /// The record's verdict: `None` when it passes, else the index of the first filter it
    /// fails (0 geno, 1 hwe, 2 maf).
    fn fails(&self, qc: &SiteQc, cohort_size: u64) -> Option<usize> {
        if let Some(max) = qc.max_missing {
            let called = (&self.diploid | &self.haploid).len();
            let missing = cohort_size.saturating_sub(called) as f64 / cohort_size.max(1) as f64;
            if missing > max {
                return Some(0);
            }
        }
        if let Some(min) = qc.min_hwe_p
            && self
                .hwe_tests()
                .into_iter()
                .any(|[het, hom1, hom2]| hwe_exact(het, hom1, hom2, qc.hwe_midp) < min)
        {
            return Some(1);
        }
        if let Some(min) = qc.min_maf {
            match self.nonmajor_frequency() {
                Some(f) if f >= min => {}
                _ => return Some(2),
            }
        }
        None
    }

    /// `[het, hom, other hom]` of each allele-against-the-rest test: one for a biallelic
    /// record, one per allele (REF too) otherwise.
    fn hwe_tests(&self) -> Vec<[u64; 3]> {
        let half_calls = self
            .alts
            .iter()
            .fold(RoaringBitmap::new(), |acc, [_, _, hemi]| acc | hemi);
        let called = &self.diploid - &half_calls;
        let n = called.len();
        let mut tests: Vec<[u64; 3]> = self
            .alts
            .iter()
            .map(|[het, hom, _]| {
                let (het, hom) = (het.intersection_len(&called), hom.intersection_len(&called));
                [het, hom, n - het - hom]
            })
            .collect();
        if tests.len() > 1 {
            // REF: samples with no ALT copy are hom-ref; a het for two ALTs holds no REF.
            let any_het = self
                .alts
                .iter()
                .fold(RoaringBitmap::new(), |acc, [het, _, _]| acc | het);
            let any_alt = self
                .alts
                .iter()
                .fold(any_het.clone(), |acc, [_, hom, _]| acc | hom);
            let union = any_het.intersection_len(&called);
            let both_alt: u64 = tests.iter().map(|t| t[0]).sum::<u64>() - union;
            let het_ref = union - both_alt;
            let hom_ref = n - any_alt.intersection_len(&called);
            tests.push([het_ref, hom_ref, n - het_ref - hom_ref]);
        } else {
            tests.truncate(1);
        }
        tests
    }

    /// 1 minus the frequency of the most frequent allele, over the called alleles.
    fn nonmajor_frequency(&self) -> Option<f64> {
        let an = 2 * self.diploid.len() + self.haploid.len();
        if an == 0 {
            return None;
        }
        let counts: Vec<u64> = self
            .alts
            .iter()
            .map(|[het, hom, hemi]| het.len() + 2 * hom.len() + hemi.len())
            .collect();
        let reference = an.saturating_sub(counts.iter().sum());
        let major = counts.into_iter().fold(reference, u64::max);
        Some(1.0 - major as f64 / an as f64)
    }
}

/// The Hardy-Weinberg exact test of Wigginton, Cutler and Abecasis (2005), two-sided, as
/// plink2 computes it: the probability, given the allele counts, of a heterozygote count at
/// most as likely as `het`; with `midp`, half the observed count's own probability is left
/// out. 1 when there are no genotypes.
pub fn hwe_exact(het: u64, hom1: u64, hom2: u64, midp: bool) -> f64 {
    let (homr, homc) = (hom1.min(hom2), hom1.max(hom2));
    let rare = 2 * homr + het;
    let genotypes = het + homr + homc;
    if genotypes == 0 {
        return 1.0;
    }
    // The most likely heterozygote count, of the parity of `rare`; probabilities relative to
    // it, walked outwards until they underflow (a few dozen standard deviations), with no table.
    let mut mid = rare * (2 * genotypes - rare) / (2 * genotypes);
    if (rare ^ mid) & 1 == 1 {
        mid += 1;
    }
    let walk = |visit: &mut dyn FnMut(u64, f64)| {
        visit(mid, 1.0);
        let (mut r, mut c) = (
            ((rare - mid) / 2) as f64,
            (genotypes - mid - (rare - mid) / 2) as f64,
        );
        let (mut h, mut p) = (mid, 1.0f64);
        while h > 1 && p > f64::MIN_POSITIVE {
            let hf = h as f64;
            p *= hf * (hf - 1.0) / (4.0 * (r + 1.0) * (c + 1.0));
            h -= 2;
            r += 1.0;
            c += 1.0;
            visit(h, p);
        }
        let (mut r, mut c) = (
            ((rare - mid) / 2) as f64,
            (genotypes - mid - (rare - mid) / 2) as f64,
        );
        let (mut h, mut p) = (mid, 1.0f64);
        while h + 2 <= rare && p > f64::MIN_POSITIVE {
            let hf = h as f64;
            p *= 4.0 * r * c / ((hf + 2.0) * (hf + 1.0));
            h += 2;
            r -= 1.0;
            c -= 1.0;
            visit(h, p);
        }
    };
    let (mut sum, mut observed) = (0.0, 0.0);
    walk(&mut |h, p| {
        sum += p;
        if h == het {
            observed = p;
        }
    });
    // Ties within a relative 1e-7 count as "as likely" (floating point noise).
    let mut tail = 0.0;
    walk(&mut |_, p| {
        if p <= observed * (1.0 + 1e-7) {
            tail += p;
        }
    });
    let p = if midp { tail - 0.5 * observed } else { tail } / sum;
    p.min(1.0)
}

impl CohortEngine {
    /// Which ALT rows of `regions` pass `qc` within `cohort` (their record's verdict, see the
    /// module). Filters decide on exact counts, so they are refused at the aggregate tier.
    pub async fn site_qc(
        &self,
        regions: &[Region],
        cohort: &Cohort,
        qc: &SiteQc,
    ) -> Result<SitePass> {
        if self.tier() == crate::policy::access_policy::Tier::Aggregate {
            return Err(EngineError::PermissionDenied(
                "variant filters (--maf, --geno, --hwe) decide on exact counts, which the \
                 aggregate tier is not given: filter on the released counts instead"
                    .into(),
            ));
        }
        qc.check()?;
        self.check_regions(regions)?;
        let selection = self.site_selection(regions).await?;
        Ok(verdicts(&selection, cohort.set(), qc))
    }
}

/// The verdicts of every record of `selection` within `set`.
fn verdicts(selection: &SiteSelection, set: &RoaringBitmap, qc: &SiteQc) -> SitePass {
    let mut pass = SitePass::default();
    let rows = &selection.rows;
    let mut start = 0;
    while start < rows.len() {
        // A record's rows are consecutive: same contig, position and record number.
        let key = |i: usize| {
            let (g, r) = rows[i].sources[0];
            let group = &selection.groups[g];
            (&*group.contig, group.pos[r], rows[i].record_number())
        };
        let end = (start..rows.len())
            .find(|&i| key(i) != key(start))
            .unwrap_or(rows.len());
        let (diploid, haploid) = selection.called(start, set);
        let calls = RecordCalls {
            diploid,
            haploid,
            alts: (start..end).map(|i| selection.carriers(i, set)).collect(),
        };
        pass.records += 1;
        match calls.fails(qc, set.len()) {
            Some(filter) => pass.removed[filter] += 1,
            None => {
                for row in &rows[start..end] {
                    let (g, r) = row.sources[0];
                    let group = &selection.groups[g];
                    pass.kept.insert((
                        group.contig.to_string(),
                        group.pos[r],
                        group.ref_allele.value(r).to_string(),
                        group.alt.value(r).to_string(),
                    ));
                }
            }
        }
        start = end;
    }
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact probabilities by the formula of Wigginton et al. (their eq. 2), summed directly.
    fn brute(het: u64, hom1: u64, hom2: u64, midp: bool) -> f64 {
        let n = het + hom1 + hom2;
        let rare = 2 * hom1.min(hom2) + het;
        let ln_fact = |k: u64| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
        let ln_p = |h: u64| {
            let r = (rare - h) / 2;
            let c = n - h - r;
            ln_fact(n) - ln_fact(r) - ln_fact(h) - ln_fact(c)
                + (h as f64) * 2f64.ln()
                + ln_fact(rare)
                + ln_fact(2 * n - rare)
                - ln_fact(2 * n)
        };
        let hets: Vec<u64> = (rare % 2..=rare)
            .step_by(2)
            .filter(|h| (rare - h) / 2 + h <= n)
            .collect();
        let observed = ln_p(het).exp();
        let p: f64 = hets
            .iter()
            .map(|&h| ln_p(h).exp())
            .filter(|&q| q <= observed * (1.0 + 1e-7))
            .sum();
        if midp { p - 0.5 * observed } else { p }
    }

    #[test]
    fn the_exact_test_sums_the_distribution() {
        for (het, hom1, hom2) in [
            (57, 14, 50),
            (0, 10, 10),
            (20, 0, 0),
            (1, 0, 99),
            (30, 30, 40),
            (5, 1, 3),
        ] {
            for midp in [false, true] {
                let got = hwe_exact(het, hom1, hom2, midp);
                let want = brute(het, hom1, hom2, midp).min(1.0);
                assert!(
                    (got - want).abs() <= 1e-9 * want.max(1e-300),
                    "{het} {hom1} {hom2} {midp}: {got} vs {want}"
                );
            }
        }
        assert_eq!(hwe_exact(0, 0, 0, false), 1.0);
        // Wigginton et al.'s worked example: 21 het, 0 and 79 homozygotes... p < 1 and > 0.
        assert!(hwe_exact(0, 50, 50, false) < 1e-20);
    }
}
