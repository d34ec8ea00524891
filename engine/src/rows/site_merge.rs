//! The merge rule shared by allele counting and the `variants` scan
//! (`crate::rows::batch_merge`): which stored rows of several batches are one row of the
//! cohort, as `bcftools merge` (default `-m both`) merges the batch files, and how the samples
//! of a batch without a record at a site are filled ([`absent_fill`]).
//!
//! A site is the records of one (contig, pos, ref) that are all SNP records (every ALT one
//! base) or all other records, so a mixed record (`G GT,T`) stays whole. The k-th row of one
//! ALT at a site in one batch merges with the k-th of every other batch; within one batch
//! nothing merges. A batch without a record at a site leaves its samples missing there, or
//! hom-ref with `--missing-as-ref` or where one of its gVCF reference blocks covers the site.

use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::rows::reference_blocks::ReferenceBlocks;

/// The merge's maps hash short keys per stored row: foldhash, not SipHash (SipHash alone was
/// 4% of `af` over five batches).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One stored row, in the order rows are taken.
pub(crate) struct RowKey<'a> {
    /// Its batch; `None` for a row that never merges (a fragment without a recorded batch).
    pub batch: Option<usize>,
    pub contig: &'a str,
    pub pos: i64,
    pub reference: &'a str,
    pub alt: &'a str,
    /// `record_ordinal`: which record at its position the row belongs to.
    pub record: i32,
}

/// One site of the cohort.
pub(crate) struct Site {
    pub contig: String,
    pub pos: i64,
    pub reference: String,
    pub snp: bool,
    /// Each batch with a record here and its first row (an index into the keys), in the
    /// order they were met.
    pub present: Vec<(usize, usize)>,
}

/// One row of the cohort: the same ALT of one site from every batch that has it.
pub(crate) struct Row {
    pub site: usize,
    /// Which occurrence of its ALT at the site (within each batch) it is.
    pub occurrence: usize,
    /// The stored rows it merges (indices into the keys), in the order they were met.
    pub sources: Vec<usize>,
}

/// The sites and rows of `keys`.
pub(crate) struct Plan {
    pub sites: Vec<Site>,
    pub rows: Vec<Row>,
}

/// Merges `keys` into sites and rows.
pub(crate) fn plan(keys: &[RowKey<'_>]) -> Plan {
    type RecordKey<'a> = (Option<usize>, &'a str, i64, &'a str, i32);
    let mut snp_record: HashMap<RecordKey<'_>, bool> = HashMap::default();
    for k in keys {
        let snp = k.reference.len() == 1 && k.alt.len() == 1;
        *snp_record
            .entry((k.batch, k.contig, k.pos, k.reference, k.record))
            .or_insert(true) &= snp;
    }
    let mut sites: Vec<Site> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut site_of: HashMap<(&str, i64, &str, bool), usize> = HashMap::default();
    let mut row_of: HashMap<(usize, &str, usize), usize> = HashMap::default();
    let mut seen: HashMap<(usize, Option<usize>, &str), usize> = HashMap::default();
    for (i, k) in keys.iter().enumerate() {
        let snp = snp_record[&(k.batch, k.contig, k.pos, k.reference, k.record)];
        let site = *site_of
            .entry((k.contig, k.pos, k.reference, snp))
            .or_insert_with(|| {
                sites.push(Site {
                    contig: k.contig.to_string(),
                    pos: k.pos,
                    reference: k.reference.to_string(),
                    snp,
                    present: Vec::new(),
                });
                sites.len() - 1
            });
        if let Some(b) = k.batch
            && !sites[site].present.iter().any(|&(x, _)| x == b)
        {
            sites[site].present.push((b, i));
        }
        let count = seen.entry((site, k.batch, k.alt)).or_insert(0);
        let occurrence = *count;
        *count += 1;
        match (k.batch, row_of.get(&(site, k.alt, occurrence))) {
            (Some(_), Some(&m)) => rows[m].sources.push(i),
            _ => {
                row_of.insert((site, k.alt, occurrence), rows.len());
                rows.push(Row {
                    site,
                    occurrence,
                    sources: vec![i],
                });
            }
        }
    }
    Plan { sites, rows }
}

impl Plan {
    /// How the merged records number each row, as `variants` shows them and export writes
    /// them: `[record_ordinal, allele_index, n_alleles]`. The rows of one ALT occurrence at a
    /// site are one record (`bcftools merge -m both`), its ALTs numbered in the order met;
    /// at a position SNP records come before the others (`record_ordinal` is
    /// `2 * occurrence + 1` for a site that is not SNPs). `alt_less(row)`: the row has no ALT
    /// (a REF-only record), numbered 0 of 1 allele.
    pub fn numbering(&self, alt_less: impl Fn(usize) -> bool) -> Vec<[i32; 3]> {
        let mut records: HashMap<(usize, usize), Vec<usize>> = HashMap::default();
        for (m, row) in self.rows.iter().enumerate() {
            records
                .entry((row.site, row.occurrence))
                .or_default()
                .push(m);
        }
        let mut numbers = vec![[0; 3]; self.rows.len()];
        for ((site, occurrence), rows) in &records {
            let ordinal = 2 * *occurrence as i32 + i32::from(!self.sites[*site].snp);
            for (k, &m) in rows.iter().enumerate() {
                numbers[m] = match alt_less(m) {
                    true => [ordinal, 0, 1],
                    false => [ordinal, k as i32 + 1, rows.len() as i32 + 1],
                };
            }
        }
        numbers
    }
}

/// One batch as the fill rule sees it: its samples, and whether they are hom-ref where it has
/// no record (`--missing-as-ref`).
pub(crate) struct BatchSamples<'a> {
    pub samples: &'a Arc<RoaringBitmap>,
    pub missing_as_ref: bool,
}

/// The samples of batches without a record at a site, as `bcftools merge` fills them.
pub(crate) struct AbsentFill {
    /// Hom-ref there: every sample of a `--missing-as-ref` batch (shared, not copied), and
    /// those a gVCF reference block of their batch covers.
    pub hom_ref: Vec<Arc<RoaringBitmap>>,
    /// Missing there (no call); computed only when asked for.
    pub missing: RoaringBitmap,
}

/// The fill at `contig:pos` of the batches `absent` (those without a record there). With
/// `want_missing` false and no reference blocks, the missing samples are not gathered.
pub(crate) fn absent_fill<'a>(
    absent: impl Iterator<Item = BatchSamples<'a>>,
    blocks: &ReferenceBlocks,
    contig: &str,
    pos: i64,
    want_missing: bool,
) -> AbsentFill {
    let mut fill = AbsentFill {
        hom_ref: Vec::new(),
        missing: RoaringBitmap::new(),
    };
    let gather = want_missing || !blocks.is_empty();
    for batch in absent {
        match batch.missing_as_ref {
            true => fill.hom_ref.push(batch.samples.clone()),
            false if gather => fill.missing |= batch.samples.as_ref(),
            false => {}
        }
    }
    if !blocks.is_empty() && !fill.missing.is_empty() {
        let called = blocks.hom_ref_at(contig, pos, &fill.missing);
        if !called.is_empty() {
            fill.missing -= &called;
            fill.hom_ref.push(Arc::new(called));
        }
    }
    fill
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(batch: usize, reference: &'a str, alt: &'a str, record: i32) -> RowKey<'a> {
        RowKey {
            batch: Some(batch),
            contig: "1",
            pos: 100,
            reference,
            alt,
            record,
        }
    }

    #[test]
    fn same_alts_merge_across_batches_and_snp_and_indel_records_stay_apart() {
        let keys = [
            key(0, "G", "T", 0),
            key(0, "G", "GT", 1),
            key(1, "G", "GT", 0),
            key(1, "G", "T", 0),
            key(2, "G", "T", 0),
        ];
        let plan = plan(&keys);
        // Batch 1's `G GT,T` is a mixed record: one site with batch 0's `G GT`.
        assert_eq!(plan.sites.len(), 2);
        let sources: Vec<Vec<usize>> = plan.rows.iter().map(|r| r.sources.clone()).collect();
        assert_eq!(sources, [vec![0, 4], vec![1, 2], vec![3]]);
        assert_eq!(plan.sites[0].present, [(0, 0), (2, 4)]);
    }
}
