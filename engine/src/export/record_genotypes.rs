//! Genotypes as VCF writes them (`0|1`, `1/2`, `.|1`) for chosen samples in regions: what `genotypes` shows beside each call, rebuilt by export's own
//! code so that it reads as `bcftools query -f '[%GT]'` of the input.

use cohortdb_store::genotype_calls::SampleColumns;
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::SessionConfig;

use crate::region::Region;
use crate::rows::span_pruning::region_filter;

use crate::cohort_engine::CohortEngine;
use crate::error::Result;
use crate::export::export_encoders::gt_texts;
use crate::export::export_records::{genotypes, group_records, read_columns};

/// One VCF record at a position, with the chosen samples' GT.
pub struct RecordGenotypes {
    /// Contig.
    pub contig: String,
    /// 1-based position.
    pub pos: i64,
    /// Which of the input records at this position it was (`record_ordinal`): two records
    /// may share a position, REF and an ALT.
    pub ordinal: i32,
    /// REF.
    pub ref_allele: String,
    /// The ALTs, in allele order.
    pub alts: Vec<String>,
    /// GT of each chosen sample, in the order given.
    pub gt: Vec<String>,
}

impl RecordGenotypes {
    /// The GT of the `column`th chosen sample if it carries `alt` (an ALT of this record; a
    /// record merged from several batches may list one ALT more than once).
    pub fn carrying(&self, column: usize, alt: &str) -> Option<&str> {
        let gt = self.gt.get(column)?;
        gt.split(['|', '/'])
            .filter_map(|a| a.parse::<usize>().ok())
            .any(|i| i > 0 && self.alts.get(i - 1).is_some_and(|a| a == alt))
            .then_some(gt.as_str())
    }
}

impl CohortEngine {
    /// The records overlapping `regions` (every contig when empty), by contig and position,
    /// with the GT of `samples` (sample indices, each once).
    pub(crate) async fn record_genotypes(
        &self,
        regions: &[Region],
        samples: &[u32],
    ) -> Result<Vec<RecordGenotypes>> {
        let ctx = self.full_session_with(SessionConfig::new().with_target_partitions(1))?;
        let columns = SampleColumns::new(samples);
        let mut contigs: Vec<String> = self.snapshot().state.contigs();
        if !regions.is_empty() {
            contigs.retain(|c| regions.iter().any(|r| &r.contig == c));
        }
        let mut out = Vec::new();
        for contig in contigs {
            let mine: Vec<Region> = regions
                .iter()
                .filter(|r| r.contig == contig)
                .cloned()
                .collect();
            let filter =
                region_filter(&mine).unwrap_or_else(|| col("contig").eq(lit(contig.clone())));
            let typed = read_columns(&ctx, filter).await?;
            for record in group_records(&typed) {
                let Some(site) = record.fields(&typed) else {
                    continue;
                };
                let g = genotypes(&typed, &record, &columns)?;
                let gt = gt_texts(&g.calls, &g.exceptions);
                out.push(RecordGenotypes {
                    contig: contig.clone(),
                    pos: site.pos,
                    ordinal: record.ordinal(&typed).unwrap_or_default(),
                    ref_allele: site.ref_allele.to_string(),
                    alts: site.alts.iter().map(|a| a.to_string()).collect(),
                    gt,
                });
            }
        }
        Ok(out)
    }

    /// The GT of the `column`th of `samples` at `contig:pos` `reference>alt`,
    /// among `records`, if the sample carries that ALT there: in the record `ordinal` when it
    /// does (the `variants` table numbers records as export does), else in the first record
    /// where it does.
    pub(crate) fn carried<'a>(
        records: &'a [RecordGenotypes],
        column: usize,
        (contig, pos, ordinal, reference, alt): (&str, i64, i32, &str, &str),
    ) -> Option<&'a str> {
        let first = records.partition_point(|r| (r.contig.as_str(), r.pos) < (contig, pos));
        let here = || {
            records[first..]
                .iter()
                .take_while(|r| r.contig == contig && r.pos == pos)
                .filter(|r| r.ref_allele == reference)
        };
        let carried = |r: &'a RecordGenotypes| r.carrying(column, alt);
        here()
            .filter(|r| r.ordinal == ordinal)
            .find_map(carried)
            .or_else(|| here().find_map(carried))
    }
}
