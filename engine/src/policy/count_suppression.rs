//! Counts as the aggregate tier sees them: with the cohort's noise
//! ([`crate::policy::disclosure_control`]), and NULL where the noisy value is between 1 and k-1; a row
//! keeps its key columns (`chrom pos ref alt`) and says in the boolean column `suppressed`
//! whether anything in it was withheld.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, new_null_array,
};
use datafusion::arrow::compute::{cast, nullif};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};

use crate::policy::disclosure_control::CellNoise;

/// The site columns every operation's row starts with (`id` is the input's, NULL for `.`); a
/// suppressed row keeps them.
pub const KEY_COLUMNS: [&str; 5] = ["chrom", "pos", "id", "ref", "alt"];

/// The columns of an allele-frequency table (`cohortdb af`): the key
/// columns a suppressed row keeps, then the counts.
pub const FREQUENCY_COLUMNS: [&str; 10] = [
    "chrom",
    "pos",
    "id",
    "ref",
    "alt",
    "ac",
    "an",
    "af",
    "n_het",
    "n_hom_alt",
];

/// The name of the flag column.
pub const SUPPRESSED: &str = "suppressed";

/// `schema` with the `suppressed` flag appended and every non-key column nullable.
pub fn suppressed_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.as_ref()
                .clone()
                .with_nullable(i >= KEY_COLUMNS.len() || f.is_nullable())
        })
        .collect();
    fields.push(Field::new(SUPPRESSED, DataType::Boolean, false));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether `n` is a disclosive count under threshold `k`.
fn small(n: i64, k: i64) -> bool {
    n > 0 && n < k
}

/// The counts of one cohort in a batch of sites, as released to the aggregate tier: for each
/// `(suffix, noise)`, the columns `ac an n_het n_hom_alt` (and `af`, when present) of that
/// suffix. Each count gets the cohort's noise for the site (`chrom pos ref alt`), drawn
/// again identically whenever the same cohort is asked about the same site. A cohort's counts
/// at a site are NULL when its noisy AC, AN or reference alleles (AN - AC) are between 1 and
/// k-1; otherwise a genotype count alone is NULL when its noisy value is. The `suppressed`
/// column says whether anything in the row is NULL. Suppression reads only noisy values, so
/// it tells no more than they do; a noisy 0 is shown as 0.
pub fn release_counts(
    batch: &RecordBatch,
    groups: &[(&str, &CellNoise)],
    k: u32,
) -> Result<RecordBatch> {
    let k = i64::from(k);
    let rows = batch.num_rows();
    let column = |name: &str| -> Result<ArrayRef> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?;
        Ok(cast(array, &DataType::Int64)?)
    };
    let text = |name: &str| -> Result<ArrayRef> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?;
        Ok(cast(array, &DataType::Utf8)?)
    };
    let (chrom, pos, reference, alt) = (text("chrom")?, column("pos")?, text("ref")?, text("alt")?);
    let (chrom, reference, alt) = (
        chrom.as_string::<i32>(),
        reference.as_string::<i32>(),
        alt.as_string::<i32>(),
    );
    let pos = pos.as_primitive::<Int64Type>();
    let mut flags = vec![false; rows];
    let mut replaced: Vec<(String, ArrayRef)> = Vec::new();
    for (suffix, noise) in groups {
        let names = ["ac", "an", "n_het", "n_hom_alt"].map(|n| format!("{n}{suffix}"));
        let counts = names
            .iter()
            .map(|n| column(n))
            .collect::<Result<Vec<_>>>()?;
        let counts: Vec<&Int64Array> = counts.iter().map(|c| c.as_primitive()).collect();
        let mut out: [Vec<Option<i64>>; 4] = Default::default();
        let mut af: Vec<Option<f64>> = Vec::with_capacity(rows);
        for (row, flag) in flags.iter_mut().enumerate() {
            // The draws of `draws()`; the genotype counts' only where the row is shown.
            let cell = noise.cell(&[
                chrom.value(row).as_bytes(),
                &pos.value(row).to_le_bytes(),
                reference.value(row).as_bytes(),
                alt.value(row).as_bytes(),
            ]);
            let apply = |i: usize, e: f64| CellNoise::apply(counts[i].value(row), e);
            let [e_ac, e_an] = noise.normals(&cell, 0);
            let (ac, an) = (apply(0, e_ac), apply(1, e_an));
            let whole = small(ac, k) || small(an, k) || small(an - ac, k);
            let [het, hom] = match whole {
                true => [0, 0],
                false => {
                    let [e_het, e_hom] = noise.normals(&cell, 1);
                    [apply(2, e_het), apply(3, e_hom)]
                }
            };
            let noisy = [ac, an, het, hom];
            let keep = [
                !whole,
                !whole,
                !whole && !small(het, k),
                !whole && !small(hom, k),
            ];
            for i in 0..4 {
                out[i].push(keep[i].then_some(noisy[i]));
            }
            *flag |= keep.contains(&false);
            af.push((!whole && an > 0).then(|| ac as f64 / an as f64));
        }
        for (name, values) in names.into_iter().zip(out) {
            replaced.push((name, Arc::new(Int64Array::from(values)) as ArrayRef));
        }
        replaced.push((
            format!("af{suffix}"),
            Arc::new(Float64Array::from(af)) as ArrayRef,
        ));
    }
    let schema = suppressed_schema(batch.schema().as_ref());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns() + 1);
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let new = replaced
            .iter()
            .find(|(name, _)| name == field.name())
            .map(|(_, a)| cast(a, field.data_type()))
            .transpose()?;
        columns.push(new.unwrap_or_else(|| array.clone()));
    }
    columns.push(Arc::new(BooleanArray::from(flags)) as ArrayRef);
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// `batch` with the non-key values of the `rows` set to NULL and the `suppressed` column added.
pub fn suppress_rows(batch: &RecordBatch, rows: &BooleanArray) -> Result<RecordBatch> {
    let schema = suppressed_schema(batch.schema().as_ref());
    let mut columns = Vec::with_capacity(batch.num_columns() + 1);
    for (i, array) in batch.columns().iter().enumerate() {
        columns.push(if i < KEY_COLUMNS.len() || rows.true_count() == 0 {
            array.clone()
        } else if rows.true_count() == rows.len() {
            new_null_array(array.data_type(), array.len())
        } else {
            nullif(array, rows)?
        });
    }
    columns.push(Arc::new(rows.clone()) as ArrayRef);
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::disclosure_control::DisclosureControl;
    use datafusion::arrow::array::StringArray;

    fn sites(ac: &[i64], an: &[i64], het: &[i64], hom: &[i64]) -> RecordBatch {
        let n = ac.len();
        let text = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
        let int = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef;
        let fields = FREQUENCY_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let t = match i {
                    1 | 5 | 6 | 8 | 9 => DataType::Int64,
                    7 => DataType::Float64,
                    _ => DataType::Utf8,
                };
                Field::new(*name, t, false)
            })
            .collect::<Vec<_>>();
        let af: Vec<f64> = ac
            .iter()
            .zip(an)
            .map(|(a, b)| *a as f64 / *b as f64)
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                text("1"),
                int(&(1..=n as i64).collect::<Vec<_>>()),
                text("."),
                text("A"),
                text("C"),
                int(ac),
                int(an),
                Arc::new(Float64Array::from(af)),
                int(het),
                int(hom),
            ],
        )
        .unwrap()
    }

    #[test]
    fn counts_are_noisy_repeatable_and_withheld_when_small() {
        let control = DisclosureControl::in_memory([3; 32], "p", 10.0, 2.0).unwrap();
        let noise = control.noise(&control.release_key("TRUE", &[0; 32]));
        // Rows: common (kept), rare (ac 3: withheld), nearly fixed (an - ac = 5: withheld),
        // common with few hom-alt calls (only n_hom_alt withheld).
        let batch = sites(
            &[400, 3, 995, 300],
            &[1000, 1000, 1000, 1000],
            &[200, 3, 5, 284],
            &[100, 0, 495, 8],
        );
        let out = release_counts(&batch, &[("", &noise)], 20).unwrap();
        assert_eq!(out, release_counts(&batch, &[("", &noise)], 20).unwrap());
        let flags = out.column_by_name(SUPPRESSED).unwrap().as_boolean();
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            [false, true, true, true].map(Some)
        );
        let ac = out
            .column_by_name("ac")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert!(
            (ac.value(0) - 400).abs() <= 10,
            "noise of sd 2: {}",
            ac.value(0)
        );
        assert!(ac.is_null(1) && ac.is_null(2) && !ac.is_null(3));
        let hom = out.column_by_name("n_hom_alt").unwrap();
        assert!(hom.is_null(3) && !hom.is_null(0));
        assert_eq!(out.column_by_name("pos").unwrap().null_count(), 0);
        // Another cohort's noise differs somewhere among the common rows.
        let other = control.noise(&control.release_key("age > 1", &[0; 32]));
        assert_ne!(out, release_counts(&batch, &[("", &other)], 20).unwrap());
    }
}
