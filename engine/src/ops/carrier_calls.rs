//! Carriers' GT rebuilt from the cached site rows ([`crate::rows::site_cache`]) of a store of
//! one batch: no Parquet read, no query plan.
//!
//! Measured: at N=100,000 a carriers page rebuilt its GT through a DataFusion read of the
//! record's columns, decompressing whole column chunks of its row group (about 15 ms of CPU a
//! page, 19% of it in zstd); from the cached rows it is the bitmaps of one record intersected
//! with the page's samples. Across batches the GT is the merged record's (alleles renumbered
//! as `bcftools merge` writes them), which `carriers` rebuilds the old way: this module says
//! `None` there, and where a record's rows are not all among the cached row groups.

use cohortdb_store::genotype_calls::{AltBitmaps, SampleColumns, SiteBitmaps, decode_calls};
use datafusion::arrow::array::StringArray;

use crate::export::export_encoders::gt_texts;
use crate::ops::allele_counts::SiteSelection;

/// The GT of each `(row, class, sample_idx)` of `calls` (rows of `selection`, each sample a
/// carrier of its row's ALT) as VCF writes it in the sample's record, or `None` when the
/// selection is merged from several batches, a record's rows are not all in it, or a decoded
/// call does not name its row's ALT.
pub(crate) fn cached_gt(
    selection: &SiteSelection,
    calls: &[(u32, u8, u32)],
) -> Option<StringArray> {
    if selection.merged {
        return None;
    }
    // The page's samples per record (the ALT rows of one record share it).
    let mut records: Vec<Record> = Vec::new();
    let mut record_of_row: Vec<Option<usize>> = vec![None; selection.rows.len()];
    let mut record_of_call = Vec::with_capacity(calls.len());
    for &(row, _, idx) in calls {
        let slot = record_of_row.get_mut(row as usize)?;
        let k = match *slot {
            Some(k) => k,
            None => {
                let (g, r) = *selection.rows[row as usize].sources.first()?;
                let rows = record_rows(selection, g, r)?;
                let k = match records.iter().position(|x| x.rows == rows) {
                    Some(k) => k,
                    None => {
                        records.push(Record {
                            rows,
                            samples: Vec::new(),
                            gt: Vec::new(),
                        });
                        records.len() - 1
                    }
                };
                *slot = Some(k);
                k
            }
        };
        records[k].samples.push(idx);
        record_of_call.push(k);
    }
    for record in &mut records {
        record.decode(selection);
    }
    // Each call must name the ALT its row is of; when one does not (rows of one stored record
    // that came from separate input lines), export's rebuild decides.
    let mut gt = Vec::with_capacity(calls.len());
    for (&(row, _, idx), k) in calls.iter().zip(record_of_call) {
        let record = &records[k];
        let (g, r) = selection.rows[row as usize].sources[0];
        let allele = selection.groups[g].allele_index[r].to_string();
        let text = record.gt_of(idx)?;
        if !text.split(['|', '/']).any(|a| a == allele) {
            return None;
        }
        gt.push(text);
    }
    Some(StringArray::from(gt))
}

/// One input record with carriers on the page.
struct Record {
    /// Its rows by ALT (`allele_index` 1, 2, ...) as (group, row).
    rows: Vec<(usize, usize)>,
    /// Its carriers on the page: in ascending order once decoded.
    samples: Vec<u32>,
    /// Their GT, once decoded.
    gt: Vec<String>,
}

impl Record {
    fn gt_of(&self, idx: u32) -> Option<&str> {
        let i = self.samples.binary_search(&idx).ok()?;
        self.gt.get(i).map(String::as_str)
    }

    fn decode(&mut self, selection: &SiteSelection) {
        self.samples.sort_unstable();
        self.samples.dedup();
        let (g, r) = self.rows[0];
        let first = &selection.groups[g];
        let site = SiteBitmaps {
            called_diploid: (*first.called_diploid[r]).clone(),
            called_haploid: (*first.called_haploid[r]).clone(),
            no_call: (*first.no_call[r]).clone(),
            haploid: (*first.haploid[r]).clone(),
            phased: (*first.phased[r]).clone(),
            swapped: (*first.swapped[r]).clone(),
        };
        let alts: Vec<AltBitmaps> = self
            .rows
            .iter()
            .map(|&(g, r)| {
                let rows = &selection.groups[g];
                AltBitmaps {
                    het: rows.het[r].clone(),
                    hom_alt: rows.hom_alt[r].clone(),
                    hemi: rows.hemi[r].clone(),
                }
            })
            .collect();
        let columns = SampleColumns::new(&self.samples);
        let mut calls = Vec::new();
        let exceptions = decode_calls(&site, &alts, &first.exceptions[r], &columns, &mut calls);
        self.gt = gt_texts(&calls, &exceptions);
    }
}

/// The rows of the record that row `r` of group `g` belongs to, by ALT: the rows of its
/// fragment with its position, REF and `record_ordinal`, one per `allele_index` from 1 to
/// `n_alleles - 1`; `None` when one is missing (in a row group not read) or doubled.
fn record_rows(selection: &SiteSelection, g: usize, r: usize) -> Option<Vec<(usize, usize)>> {
    let of = &selection.groups[g];
    let (pos, reference, ordinal) = (of.pos[r], of.ref_allele.value(r), of.record_ordinal[r]);
    let n_alts = usize::try_from(of.n_alleles[r]).ok()?.checked_sub(1)?;
    let mut slots: Vec<Option<(usize, usize)>> = vec![None; n_alts];
    for (h, rows) in selection.groups.iter().enumerate() {
        if rows.path != of.path {
            continue;
        }
        let from = rows.pos.partition_point(|&p| p < pos);
        for x in (from..rows.len()).take_while(|&x| rows.pos[x] == pos) {
            if rows.ref_allele.value(x) != reference || rows.record_ordinal[x] != ordinal {
                continue;
            }
            let slot =
                slots.get_mut(usize::try_from(rows.allele_index[x]).ok()?.checked_sub(1)?)?;
            if slot.replace((h, x)).is_some() {
                return None;
            }
        }
    }
    slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .filter(|rows| !rows.is_empty())
}
