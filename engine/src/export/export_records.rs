//! Export's view of the `variants` rows: typed columns, VCF records rebuilt from their ALT
//! rows, and the chosen samples' genotypes of a record.

use cohortdb_store::genotype_bitmaps::{BITMAP_COLUMNS, GenotypeException, decode_exceptions};
use cohortdb_store::genotype_calls::{
    AltBitmaps, Call, MISSING_ALLELE, SampleColumns, SiteBitmaps, decode_calls,
};
use datafusion::arrow::array::{
    Array, AsArray, BinaryArray, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Float32Type, Int32Type, Int64Type};

use crate::error::Result;
use crate::rows::stored_bitmaps::{cast_column, stored_bitmap};

/// Site columns read before the bitmaps.
const SITE: [&str; 9] = [
    "pos",
    "end_pos",
    "id",
    "ref",
    "alt",
    "qual",
    "filters",
    "allele_index",
    "n_alleles",
];

/// The `variants` columns export reads, in this order: the site columns, the bitmaps in
/// [`BITMAP_COLUMNS`] order (which `genotypes` indexes), `gt_exceptions`, `record_ordinal`.
pub fn columns() -> Vec<&'static str> {
    let mut all = SITE.to_vec();
    all.extend(BITMAP_COLUMNS);
    all.extend(["gt_exceptions", "record_ordinal"]);
    all
}

/// The rows of the `variants` table of `ctx` that `filter` passes, as the [`columns`] records
/// are built from.
pub async fn read_columns(
    ctx: &datafusion::prelude::SessionContext,
    filter: datafusion::prelude::Expr,
) -> Result<Vec<Columns>> {
    let batches = ctx
        .table("variants")
        .await?
        .filter(filter)?
        .select_columns(&columns())?
        .collect()
        .await?;
    batches.iter().map(Columns::new).collect()
}

/// One fragment row, addressed in the collected batches.
#[derive(Clone, Copy)]
pub struct RowRef {
    batch: usize,
    row: usize,
}

/// The columns of one collected batch, typed.
pub struct Columns {
    pos: Int64Array,
    end_pos: Int64Array,
    id: StringArray,
    ref_allele: StringArray,
    alt: StringArray,
    qual: Float32Array,
    filters: StringArray,
    allele_index: Int32Array,
    n_alleles: Int32Array,
    record_ordinal: Int32Array,
    bitmaps: Vec<BinaryArray>,
    exceptions: BinaryArray,
}

const BITMAPS_END: usize = SITE.len() + BITMAP_COLUMNS.len();

impl Columns {
    pub fn new(batch: &RecordBatch) -> Result<Self> {
        let c = |i: usize| batch.column(i);
        let text = |i: usize| -> Result<StringArray> {
            Ok(cast_column(c(i), &DataType::Utf8)?
                .as_string::<i32>()
                .clone())
        };
        let binary = |i: usize| -> Result<BinaryArray> {
            Ok(cast_column(c(i), &DataType::Binary)?
                .as_binary::<i32>()
                .clone())
        };
        Ok(Self {
            pos: c(0).as_primitive::<Int64Type>().clone(),
            end_pos: c(1).as_primitive::<Int64Type>().clone(),
            id: text(2)?,
            ref_allele: text(3)?,
            alt: text(4)?,
            qual: c(5).as_primitive::<Float32Type>().clone(),
            filters: text(6)?,
            allele_index: c(7).as_primitive::<Int32Type>().clone(),
            n_alleles: c(8).as_primitive::<Int32Type>().clone(),
            bitmaps: (SITE.len()..BITMAPS_END)
                .map(binary)
                .collect::<Result<_>>()?,
            exceptions: binary(BITMAPS_END)?,
            record_ordinal: c(BITMAPS_END + 1).as_primitive::<Int32Type>().clone(),
        })
    }
}

/// A VCF record being rebuilt from its ALT rows.
pub struct Record {
    rows: Vec<Option<RowRef>>,
}

/// The chosen samples' genotypes of one record, and its AC/AN over them.
pub struct Genotypes {
    /// Ploidy 1 and 2 calls, one per output column.
    pub calls: Vec<Call>,
    /// Calls of higher ploidy, by column.
    pub exceptions: Vec<(usize, GenotypeException)>,
    /// AC per ALT over the written samples (empty for a record without ALT).
    pub ac: Vec<i32>,
    /// AN over the written samples.
    pub an: i32,
}

/// The site fields of a record (from its first row).
pub struct SiteFields<'a> {
    /// 1-based position.
    pub pos: i64,
    /// 1-based inclusive end.
    pub end: i64,
    /// ID, `None` for `.`.
    pub id: Option<&'a str>,
    /// REF.
    pub ref_allele: &'a str,
    /// ALTs in allele order (empty for `.`).
    pub alts: Vec<&'a str>,
    /// QUAL.
    pub qual: Option<f32>,
    /// FILTER text, `None` for `.`.
    pub filters: Option<&'a str>,
}

impl SiteFields<'_> {
    /// `END` when the record spans more than its REF.
    pub fn info_end(&self) -> Option<i64> {
        (self.end - self.pos + 1 != self.ref_allele.len() as i64).then_some(self.end)
    }
}

impl Record {
    /// Which of the input records at its position (in input order) it was.
    pub fn ordinal(&self, batches: &[Columns]) -> Option<i32> {
        let first = self.rows.iter().flatten().next()?;
        Some(batches[first.batch].record_ordinal.value(first.row))
    }

    /// The record's site fields.
    pub fn fields<'a>(&self, batches: &'a [Columns]) -> Option<SiteFields<'a>> {
        let first = self.rows.iter().flatten().next()?;
        let c = &batches[first.batch];
        let r = first.row;
        Some(SiteFields {
            pos: c.pos.value(r),
            end: c.end_pos.value(r),
            id: (!c.id.is_null(r)).then(|| c.id.value(r)),
            ref_allele: c.ref_allele.value(r),
            alts: self
                .rows
                .iter()
                .flatten()
                .filter(|x| batches[x.batch].allele_index.value(x.row) > 0)
                .map(|x| batches[x.batch].alt.value(x.row))
                .collect(),
            qual: (!c.qual.is_null(r)).then(|| c.qual.value(r)),
            filters: (!c.filters.is_null(r)).then(|| c.filters.value(r)),
        })
    }
}

/// Rebuilds VCF records from rows in position order: the rows of one record share `pos`,
/// `ref` and `record_ordinal` and fill its slots by `allele_index`.
pub fn group_records(batches: &[Columns]) -> Vec<Record> {
    let mut rows: Vec<(i64, RowRef)> = Vec::new();
    for (b, c) in batches.iter().enumerate() {
        for row in 0..c.pos.len() {
            rows.push((c.pos.value(row), RowRef { batch: b, row }));
        }
    }
    rows.sort_by_key(|(pos, _)| *pos);
    let key = |r: &RowRef| {
        let c = &batches[r.batch];
        (c.ref_allele.value(r.row), c.record_ordinal.value(r.row))
    };
    let mut out: Vec<Record> = Vec::new();
    let mut open_from = 0;
    let mut open_pos = None;
    for (pos, r) in rows {
        if open_pos != Some(pos) {
            open_from = out.len();
            open_pos = Some(pos);
        }
        let c = &batches[r.batch];
        let (index, n) = (c.allele_index.value(r.row), c.n_alleles.value(r.row));
        let slot = (index.max(1) - 1) as usize;
        let fits = |rec: &Record| {
            index > 0
                && rec.rows.len() + 1 == n as usize
                && rec.rows.get(slot).is_some_and(Option::is_none)
                && rec
                    .rows
                    .iter()
                    .flatten()
                    .next()
                    .is_some_and(|f| key(f) == key(&r))
        };
        match out[open_from..].iter_mut().find(|rec| fits(rec)) {
            Some(rec) => rec.rows[slot] = Some(r),
            None => {
                let mut rec = Record {
                    rows: vec![None; (n.max(2) - 1) as usize],
                };
                let last = rec.rows.len() - 1;
                rec.rows[slot.min(last)] = Some(r);
                out.push(rec);
            }
        }
    }
    out
}

pub fn genotypes(
    batches: &[Columns],
    record: &Record,
    columns: &SampleColumns,
) -> Result<Genotypes> {
    let first = record.rows.iter().flatten().next().copied();
    let mut site = SiteBitmaps::default();
    let mut exceptions = Vec::new();
    if let Some(f) = first {
        let b = &batches[f.batch].bitmaps;
        site = SiteBitmaps {
            called_diploid: stored_bitmap(&b[3], f.row)?,
            called_haploid: stored_bitmap(&b[4], f.row)?,
            no_call: stored_bitmap(&b[5], f.row)?,
            haploid: stored_bitmap(&b[6], f.row)?,
            phased: stored_bitmap(&b[7], f.row)?,
            swapped: stored_bitmap(&b[8], f.row)?,
        };
        let e = &batches[f.batch].exceptions;
        if !e.is_null(f.row) {
            exceptions = decode_exceptions(e.value(f.row)).unwrap_or_default();
        }
    }
    let alts = record
        .rows
        .iter()
        .map(|r| match r {
            Some(r) if batches[r.batch].allele_index.value(r.row) > 0 => {
                let b = &batches[r.batch].bitmaps;
                Ok(AltBitmaps {
                    het: stored_bitmap(&b[0], r.row)?,
                    hom_alt: stored_bitmap(&b[1], r.row)?,
                    hemi: stored_bitmap(&b[2], r.row)?,
                })
            }
            _ => Ok(AltBitmaps::default()),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut calls = Vec::new();
    let exceptions = decode_calls(&site, &alts, &exceptions, columns, &mut calls);
    let n_alts = alts.len().max(1);
    let mut ac = vec![0i32; n_alts];
    let mut an = 0;
    let mut count = |a: u32| {
        if a != MISSING_ALLELE {
            an += 1;
            if a > 0 && (a as usize) <= n_alts {
                ac[a as usize - 1] += 1;
            }
        }
    };
    let mut next_exception = exceptions.iter().peekable();
    for (column, call) in calls.iter().enumerate() {
        if let Some((_, e)) = next_exception.next_if(|(c, _)| *c == column) {
            e.alleles
                .iter()
                .for_each(|a| count(a.unwrap_or(MISSING_ALLELE)));
        } else {
            call.alleles[..call.ploidy as usize]
                .iter()
                .for_each(|a| count(*a));
        }
    }
    if record
        .rows
        .iter()
        .flatten()
        .all(|r| batches[r.batch].allele_index.value(r.row) == 0)
    {
        ac.clear();
    }
    Ok(Genotypes {
        calls,
        exceptions,
        ac,
        an,
    })
}
