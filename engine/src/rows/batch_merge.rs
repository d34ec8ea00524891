//! The rows of several batches merged into the rows of one cohort, for the `variants` table
//! (and so SQL, the genotypes view and export), by the rule counting uses too
//! ([`crate::rows::site_merge`]: `bcftools merge`, default `-m both`, of the batch files).
//!
//! A merged row takes its site columns and INFO from the first batch holding it, ORs the ALT bitmaps of its
//! sources, and takes the site bitmaps (called, phased, ...) of every batch with a record at
//! the site; samples of a batch without one are hom-ref where `--missing-as-ref` or a gVCF
//! reference block says so, and no-calls otherwise. Counts are recomputed from the bitmaps,
//! FORMAT lists concatenated in `sample_idx` order, and the alleles of a merged record
//! renumbered, so export writes one record per site as `bcftools merge` does.

use std::collections::HashMap;
use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::{
    BITMAP_COLUMNS, GenotypeException, canonicalize, decode_exceptions, deserialize_bitmap,
    encode_exceptions, serialize_bitmap,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Int32Array, Int64Array, ListArray, RecordBatch,
    new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{concat, interleave};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use roaring::RoaringBitmap;

use crate::rows::reference_blocks::ReferenceBlocks;
use crate::rows::site_merge::{BatchSamples, RowKey, Site, absent_fill};

/// One batch of the merge: its rows (all fragment columns), its samples, and whether they are
/// hom-ref where it has no record.
pub(crate) struct BatchRows {
    pub rows: RecordBatch,
    pub samples: Arc<RoaringBitmap>,
    pub missing_as_ref: bool,
}

/// A row of one batch.
type RowRef = (usize, usize);

/// One merged row in the making.
struct Merged {
    site: usize,
    /// Sources, in batch order.
    sources: Vec<RowRef>,
}

fn column<'a>(rows: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    rows.column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("fragment column {name} missing")))
}

fn bitmap(rows: &RecordBatch, name: &str, row: usize) -> Result<RoaringBitmap> {
    let array = column(rows, name)?.as_binary::<i32>();
    if array.is_null(row) {
        return Ok(RoaringBitmap::new());
    }
    deserialize_bitmap(array.value(row))
        .ok_or_else(|| DataFusionError::Execution(format!("unreadable {name} bitmap")))
}

/// Merges `batches` (in ascending sample order) into one batch of `schema`.
pub(crate) fn merge_batches(
    schema: &SchemaRef,
    batches: &[BatchRows],
    blocks: &ReferenceBlocks,
) -> Result<RecordBatch> {
    // Keys of every row, processed in (contig, pos, batch, record, allele) order.
    let mut order: Vec<RowRef> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        order.extend((0..batch.rows.num_rows()).map(|r| (b, r)));
    }
    let text = |b: usize, name: &str| -> Result<&datafusion::arrow::array::StringArray> {
        Ok(column(&batches[b].rows, name)?.as_string::<i32>())
    };
    let int64 = |b: usize, name: &str| -> Result<&Int64Array> {
        Ok(column(&batches[b].rows, name)?.as_primitive::<Int64Type>())
    };
    let int32 = |b: usize, name: &str| -> Result<&Int32Array> {
        Ok(column(&batches[b].rows, name)?.as_primitive::<Int32Type>())
    };
    let mut sort_keys = Vec::with_capacity(order.len());
    for &(b, r) in &order {
        sort_keys.push((
            text(b, "contig")?.value(r),
            int64(b, "pos")?.value(r),
            b,
            int32(b, "record_ordinal")?.value(r),
            int32(b, "allele_index")?.value(r),
        ));
    }
    let mut by_key: Vec<usize> = (0..order.len()).collect();
    by_key.sort_by(|&x, &y| sort_keys[x].cmp(&sort_keys[y]));
    let mut taken: Vec<RowRef> = Vec::with_capacity(order.len());
    let mut keys: Vec<RowKey<'_>> = Vec::with_capacity(order.len());
    for i in by_key {
        let (b, r) = order[i];
        let (contig, pos, _, record, _) = sort_keys[i];
        taken.push((b, r));
        keys.push(RowKey {
            batch: Some(b),
            contig,
            pos,
            reference: text(b, "ref")?.value(r),
            alt: text(b, "alt")?.value(r),
            record,
        });
    }
    let plan = crate::rows::site_merge::plan(&keys);
    let site_keys = &plan.sites;
    // Per site and batch: the batch's first row there.
    let present: Vec<HashMap<usize, RowRef>> = site_keys
        .iter()
        .map(|site| site.present.iter().map(|&(b, i)| (b, taken[i])).collect())
        .collect();
    let merged: Vec<Merged> = plan
        .rows
        .iter()
        .map(|row| Merged {
            site: row.site,
            sources: row.sources.iter().map(|&i| taken[i]).collect(),
        })
        .collect();
    // Per site: the samples of absent batches that are hom-ref, and those that are missing.
    let mut filled: Vec<RoaringBitmap> = Vec::with_capacity(site_keys.len());
    let mut missing: Vec<RoaringBitmap> = Vec::with_capacity(site_keys.len());
    for (site, Site { contig, pos, .. }) in site_keys.iter().enumerate() {
        let absent = batches
            .iter()
            .enumerate()
            .filter(|(b, _)| !present[site].contains_key(b))
            .map(|(_, batch)| BatchSamples {
                samples: &batch.samples,
                missing_as_ref: batch.missing_as_ref,
            });
        let fill = absent_fill(absent, blocks, contig, *pos, true);
        let mut hom_ref = RoaringBitmap::new();
        for part in &fill.hom_ref {
            hom_ref |= part.as_ref();
        }
        filled.push(hom_ref);
        missing.push(fill.missing);
    }

    // Alleles renumbered per merged record.
    let mut alt_less = Vec::with_capacity(merged.len());
    for row in &merged {
        let (b, r) = row.sources[0];
        alt_less.push(int32(b, "allele_index")?.value(r) == 0);
    }
    let numbers = plan.numbering(|m| alt_less[m]);
    let allele_index: Vec<i32> = numbers.iter().map(|n| n[1]).collect();
    let n_alleles: Vec<i32> = numbers.iter().map(|n| n[2]).collect();
    let ordinal: Vec<i32> = numbers.iter().map(|n| n[0]).collect();
    // Output order: as fragments store rows, by (contig, pos, ref, alt), then record.
    let mut alts: Vec<&str> = Vec::with_capacity(merged.len());
    for row in &merged {
        let (b, r) = row.sources[0];
        alts.push(text(b, "alt")?.value(r));
    }
    let sort_key = |m: usize| {
        let site = &site_keys[merged[m].site];
        (&site.contig, site.pos, &site.reference, alts[m], ordinal[m])
    };
    let mut out_order: Vec<usize> = (0..merged.len()).collect();
    out_order.sort_by(|&x, &y| sort_key(x).cmp(&sort_key(y)));

    build_columns(
        schema,
        batches,
        &merged,
        &out_order,
        &present,
        &filled,
        &missing,
        [&allele_index, &n_alleles, &ordinal],
    )
}

/// The merged rows as columns of `schema`, in `out_order`.
#[allow(clippy::too_many_arguments)]
fn build_columns(
    schema: &SchemaRef,
    batches: &[BatchRows],
    merged: &[Merged],
    out_order: &[usize],
    present: &[HashMap<usize, RowRef>],
    filled: &[RoaringBitmap],
    missing: &[RoaringBitmap],
    renumbered: [&[i32]; 3],
) -> Result<RecordBatch> {
    let firsts: Vec<RowRef> = out_order.iter().map(|&m| merged[m].sources[0]).collect();
    // Per output row: the rows giving the site bitmaps (each present batch's own source row
    // for this ALT if it has one, else its first row at the site), in batch order.
    let site_rows: Vec<Vec<RowRef>> = out_order
        .iter()
        .map(|&m| {
            let row = &merged[m];
            let mut rows: Vec<RowRef> = present[row.site]
                .iter()
                .map(|(b, first)| {
                    row.sources
                        .iter()
                        .find(|(sb, _)| sb == b)
                        .copied()
                        .unwrap_or(*first)
                })
                .collect();
            rows.sort_unstable();
            rows
        })
        .collect();
    // Only the bitmaps read (a scan reads those its columns need).
    let mut bitmaps: HashMap<&str, Vec<RoaringBitmap>> = HashMap::new();
    for name in BITMAP_COLUMNS
        .into_iter()
        .filter(|n| schema.index_of(n).is_ok())
    {
        let per_alt = matches!(name, "het" | "hom_alt" | "hemi");
        let mut out = Vec::with_capacity(out_order.len());
        for (o, &m) in out_order.iter().enumerate() {
            let rows: &[RowRef] = if per_alt {
                &merged[m].sources
            } else {
                &site_rows[o]
            };
            let mut union = RoaringBitmap::new();
            for &(b, r) in rows {
                union |= bitmap(&batches[b].rows, name, r)?;
            }
            let site = merged[m].site;
            match name {
                "called_diploid" => union |= &filled[site],
                "no_call" => union |= &missing[site],
                _ => {}
            }
            // As ingest stores them (runs where smaller): one set, one encoding, so a merged
            // row's bytes do not depend on how many batches it was merged from.
            canonicalize(&mut union);
            out.push(union);
        }
        bitmaps.insert(name, out);
    }
    let mut exceptions: Vec<Vec<GenotypeException>> = Vec::with_capacity(out_order.len());
    let read_exceptions = schema.index_of("gt_exceptions").is_ok();
    for rows in site_rows.iter().filter(|_| read_exceptions) {
        let mut all = Vec::new();
        for &(b, r) in rows {
            let array = column(&batches[b].rows, "gt_exceptions")?.as_binary::<i32>();
            if !array.is_null(r) {
                all.extend(decode_exceptions(array.value(r)).unwrap_or_default());
            }
        }
        exceptions.push(all);
    }

    // A bitmap not read (its column not projected) is empty; the scan reads every bitmap a
    // projected column is computed from.
    let empty = RoaringBitmap::new();
    let merged_bitmap = |name: &str, o: usize| -> &RoaringBitmap {
        bitmaps.get(name).and_then(|v| v.get(o)).unwrap_or(&empty)
    };
    let indices: Vec<(usize, usize)> = firsts.clone();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name().as_str();
        let array: ArrayRef = match name {
            "allele_index" | "n_alleles" | "record_ordinal" => {
                let source = match name {
                    "allele_index" => renumbered[0],
                    "n_alleles" => renumbered[1],
                    _ => renumbered[2],
                };
                Arc::new(Int32Array::from_iter_values(
                    out_order.iter().map(|&m| source[m]),
                ))
            }
            _ if BITMAP_COLUMNS.contains(&name) => Arc::new(BinaryArray::from_iter_values(
                (0..out_order.len()).map(|o| serialize_bitmap(merged_bitmap(name, o))),
            )),
            "gt_exceptions" => Arc::new(BinaryArray::from_iter(
                exceptions
                    .iter()
                    .map(|e| (!e.is_empty()).then(|| encode_exceptions(e))),
            )),
            "ac" | "an" | "n_het" | "n_hom_alt" | "n_hemi" | "n_no_call" => {
                let b = |n: &str, o: usize| merged_bitmap(n, o).len() as i64;
                Arc::new(Int64Array::from_iter_values((0..out_order.len()).map(
                    |o| match name {
                        "ac" => b("het", o) + 2 * b("hom_alt", o) + b("hemi", o),
                        "an" => crate::rows::stored_bitmaps::allele_number(
                            Some(merged_bitmap("called_diploid", o)),
                            Some(merged_bitmap("called_haploid", o)),
                            exceptions.get(o).map_or(&[][..], Vec::as_slice),
                            None,
                        ) as i64,
                        "n_het" => b("het", o),
                        "n_hom_alt" => b("hom_alt", o),
                        "n_hemi" => b("hemi", o),
                        _ => b("no_call", o),
                    },
                )))
            }
            _ if name.starts_with("fmt_") => {
                concat_lists(batches, merged, out_order, name, field.data_type())?
            }
            _ => {
                let sources: Vec<&dyn Array> = batches
                    .iter()
                    .map(|b| column(&b.rows, name).map(|c| c.as_ref()))
                    .collect::<Result<_>>()?;
                interleave(&sources, &indices)?
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A FORMAT list column: per merged row, its sources' lists one after another (batches hold
/// ascending, disjoint sample ranges, so the values stay in carrier order); a source without
/// the list contributes one null per carrier.
fn concat_lists(
    batches: &[BatchRows],
    merged: &[Merged],
    out_order: &[usize],
    name: &str,
    data_type: &DataType,
) -> Result<ArrayRef> {
    let DataType::List(item) = data_type else {
        return Err(DataFusionError::Internal(format!("{name} is not a list")));
    };
    let mut pieces: Vec<ArrayRef> = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(out_order.len());
    for &m in out_order {
        let mut length = 0usize;
        let mut any = false;
        for &(b, r) in &merged[m].sources {
            let rows = &batches[b].rows;
            let list = column(rows, name)?.as_list::<i32>();
            if list.is_null(r) {
                let carriers = ["het", "hom_alt", "hemi"]
                    .iter()
                    .map(|n| bitmap(rows, n, r).map(|x| x.len() as usize))
                    .sum::<Result<usize>>()?;
                pieces.push(new_null_array(item.data_type(), carriers));
                length += carriers;
            } else {
                let values = list.value(r);
                length += values.len();
                pieces.push(values);
                any = true;
            }
        }
        offsets.push(offsets[offsets.len() - 1] + length as i32);
        valid.push(any);
    }
    let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
    let values = if refs.is_empty() {
        new_null_array(item.data_type(), 0)
    } else {
        concat(&refs)?
    };
    Ok(Arc::new(ListArray::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        Some(valid.into()),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohortdb_store::fragment_schema::fragment_schema;
    use datafusion::arrow::array::{Float32Array, StringArray};

    /// One stored row: `(pos, ref, alt, het samples, called samples)`, a biallelic record.
    type Row<'a> = (i64, &'a str, &'a str, &'a [u32], &'a [u32]);

    /// Rows of one batch.
    fn batch(rows: &[Row<'_>], samples: std::ops::Range<u32>) -> BatchRows {
        let schema = fragment_schema(&[]);
        let n = rows.len();
        let bitmaps = |pick: &dyn Fn(usize) -> RoaringBitmap| -> ArrayRef {
            Arc::new(BinaryArray::from_iter_values(
                (0..n).map(|i| serialize_bitmap(&pick(i))),
            ))
        };
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "contig" => Arc::new(StringArray::from(vec!["1"; n])),
                    "pos" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                    "end_pos" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                    "ref" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                    "alt" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
                    "id" | "filters" => new_null_array(&DataType::Utf8, n),
                    "qual" => Arc::new(Float32Array::from(vec![None; n])),
                    "allele_index" | "record_ordinal" | "n_alleles" => {
                        let v = if f.name() == "record_ordinal" { 0 } else { 1 };
                        let v = if f.name() == "n_alleles" { 2 } else { v };
                        Arc::new(Int32Array::from(vec![v; n]))
                    }
                    "het" => bitmaps(&|i| rows[i].3.iter().copied().collect()),
                    "called_diploid" => bitmaps(&|i| rows[i].4.iter().copied().collect()),
                    "gt_exceptions" => new_null_array(&DataType::Binary, n),
                    name if BITMAP_COLUMNS.contains(&name) => bitmaps(&|_| RoaringBitmap::new()),
                    _ => Arc::new(Int64Array::from(vec![0; n])),
                }
            })
            .collect();
        BatchRows {
            rows: RecordBatch::try_new(schema, columns).unwrap(),
            samples: Arc::new(samples.collect()),
            missing_as_ref: false,
        }
    }

    fn column_i64(batch: &RecordBatch, name: &str) -> Vec<i64> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn a_site_of_one_batch_leaves_the_others_missing_or_hom_ref() {
        // Batch 0 (samples 0-2) has sites 100 and 200; batch 1 (samples 3-4) only 100.
        let first = batch(
            &[
                (100, "A", "G", &[0], &[0, 1, 2]),
                (200, "C", "T", &[1], &[0, 1, 2]),
            ],
            0..3,
        );
        let second = batch(&[(100, "A", "G", &[3, 4], &[3, 4])], 3..5);
        let schema = first.rows.schema();
        for missing_as_ref in [false, true] {
            let second = BatchRows {
                missing_as_ref,
                rows: second.rows.clone(),
                samples: second.samples.clone(),
            };
            let batches = [
                BatchRows {
                    rows: first.rows.clone(),
                    samples: first.samples.clone(),
                    missing_as_ref: false,
                },
                second,
            ];
            let merged = merge_batches(&schema, &batches, &ReferenceBlocks::default()).unwrap();
            assert_eq!(column_i64(&merged, "pos"), [100, 200]);
            assert_eq!(column_i64(&merged, "ac"), [3, 1], "ALT bitmaps ORed");
            // At 200 batch 1 has no record: its two samples are missing, or hom-ref.
            let (an, no_call) = match missing_as_ref {
                false => ([10, 6], [0, 2]),
                true => ([10, 10], [0, 0]),
            };
            assert_eq!(
                column_i64(&merged, "an"),
                an,
                "missing_as_ref {missing_as_ref}"
            );
            assert_eq!(column_i64(&merged, "n_no_call"), no_call);
        }
    }
}
