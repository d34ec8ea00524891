//! Small-count suppression for the aggregate tier: a result row whose counts of participants or
//! alleles, or the counts derivable from them by subtraction, fall between 1 and k-1 keeps its
//! key columns (`chrom pos ref alt`) and has every other value set to NULL, with the boolean
//! column `suppressed` saying so.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, new_null_array,
};
use datafusion::arrow::compute::{cast, nullif};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};

/// Key columns kept in a suppressed row.
const KEY_COLUMNS: usize = 4;

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
                .with_nullable(i >= KEY_COLUMNS || f.is_nullable())
        })
        .collect();
    fields.push(Field::new(SUPPRESSED, DataType::Boolean, false));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether `n` is a disclosive count under threshold `k`.
fn small(n: i64, k: i64) -> bool {
    n > 0 && n < k
}

/// The rows of `batch` to suppress: for each suffix, the counts `ac an n_het n_hom_alt` plus
/// the reference alleles `an - ac` and the diploid hom-ref calls `(an - ac - n_het) / 2`.
pub fn small_count_rows(batch: &RecordBatch, suffixes: &[&str], k: u32) -> Result<BooleanArray> {
    let k = i64::from(k);
    let column = |name: String| -> Result<ArrayRef> {
        let array = batch
            .column_by_name(&name)
            .ok_or_else(|| DataFusionError::Internal(format!("no count column {name}")))?;
        Ok(cast(array, &DataType::Int64)?)
    };
    let mut flags = vec![false; batch.num_rows()];
    for suffix in suffixes {
        let [ac, an, het, hom] =
            ["ac", "an", "n_het", "n_hom_alt"].map(|name| column(format!("{name}{suffix}")));
        let (ac, an, het, hom) = (ac?, an?, het?, hom?);
        let (ac, an, het, hom) = (
            ac.as_primitive::<Int64Type>(),
            an.as_primitive::<Int64Type>(),
            het.as_primitive::<Int64Type>(),
            hom.as_primitive::<Int64Type>(),
        );
        for (row, flag) in flags.iter_mut().enumerate() {
            let (ac, an, het, hom) = (ac.value(row), an.value(row), het.value(row), hom.value(row));
            let reference = an - ac;
            *flag |= [ac, an, het, hom, reference, (reference - het) / 2]
                .into_iter()
                .any(|n| small(n, k));
        }
    }
    Ok(BooleanArray::from(flags))
}

/// `batch` with the non-key values of the `rows` set to NULL and the `suppressed` column added.
pub fn suppress_rows(batch: &RecordBatch, rows: &BooleanArray) -> Result<RecordBatch> {
    let schema = suppressed_schema(batch.schema().as_ref());
    let mut columns = Vec::with_capacity(batch.num_columns() + 1);
    for (i, array) in batch.columns().iter().enumerate() {
        columns.push(if i < KEY_COLUMNS || rows.true_count() == 0 {
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

/// [`suppress_rows`] of the rows [`small_count_rows`] finds, for every batch.
pub fn suppress_small_counts(
    batches: &[RecordBatch],
    suffixes: &[&str],
    k: u32,
) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .map(|b| suppress_rows(b, &small_count_rows(b, suffixes, k)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

    #[test]
    fn rows_with_small_or_derivable_counts_are_nulled() {
        let text = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let int = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef;
        let schema = Arc::new(Schema::new(
            [
                "chrom",
                "pos",
                "ref",
                "alt",
                "ac",
                "an",
                "af",
                "n_het",
                "n_hom_alt",
            ]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let t = match i {
                    1 | 4 | 5 | 7 | 8 => DataType::Int64,
                    6 => DataType::Float64,
                    _ => DataType::Utf8,
                };
                Field::new(*n, t, false)
            })
            .collect::<Vec<_>>(),
        ));
        // Rows: common (kept), rare (ac 3), nearly fixed (an - ac = 5), no carriers (kept),
        // few hom-ref calls ((an - ac - n_het) / 2 = 4).
        let batch = RecordBatch::try_new(
            schema,
            vec![
                text(&["1"; 5]),
                int(&[1, 2, 3, 4, 5]),
                text(&["A"; 5]),
                text(&["C"; 5]),
                int(&[400, 3, 995, 0, 900]),
                int(&[1000, 1000, 1000, 1000, 1000]),
                Arc::new(Float64Array::from(vec![0.4, 0.003, 0.995, 0.0, 0.9])),
                int(&[200, 3, 5, 0, 92]),
                int(&[100, 0, 495, 0, 404]),
            ],
        )
        .unwrap();
        let out = suppress_small_counts(&[batch], &[""], 20).unwrap();
        let flags = out[0].column_by_name(SUPPRESSED).unwrap().as_boolean();
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            [false, true, true, false, true].map(Some)
        );
        let ac = out[0].column_by_name("ac").unwrap();
        assert_eq!(ac.null_count(), 3);
        assert!(out[0].column_by_name("pos").unwrap().null_count() == 0);
    }
}
