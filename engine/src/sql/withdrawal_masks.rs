//! The `variants` table as readers see it once participants have withdrawn: every bitmap
//! without them, the stored counts less their contribution, their FORMAT values and
//! high-ploidy calls dropped. Fragments keep the data until `purge` rewrites them; this view
//! makes sure no read path sees it in the meantime.
//!
//! UDFs (the withdrawn set `w` is a serialised bitmap literal):
//! - `carrier_values_without(values, het, hom_alt, hemi, w)`: a FORMAT list (one value per
//!   carrier, carriers in ascending `sample_idx`) without the values of carriers in `w`;
//! - `exceptions_without(gt_exceptions, w)`: the high-ploidy calls of samples not in `w`.

use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::encode_exceptions;
use cohortdb_store::genotype_bitmaps::serialize_bitmap;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, BooleanBufferBuilder};
use datafusion::arrow::array::{BooleanArray, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, col,
    lit,
};
use datafusion::prelude::DataFrame;
use datafusion::scalar::ScalarValue;
use roaring::RoaringBitmap;

use crate::sql::bitmap_args::{binary_args, into_columnar, output_rows};
use crate::sql::bitmap_count_functions::{BitmapCount, BitmapCountUdf};
use crate::sql::bitmap_set_functions::{BitmapSetOp, BitmapSetUdf};
use cohortdb_store::fragment_schema::COUNT_COLUMNS;
use cohortdb_store::genotype_bitmaps::BITMAP_COLUMNS;

/// Which mask a [`WithdrawalMaskUdf`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mask {
    CarrierValues,
    Exceptions,
}

/// A UDF removing withdrawn participants from a column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WithdrawalMaskUdf {
    mask: Mask,
    signature: Signature,
}

impl WithdrawalMaskUdf {
    fn udf(mask: Mask) -> ScalarUDF {
        let arity = match mask {
            Mask::CarrierValues => 5,
            Mask::Exceptions => 2,
        };
        ScalarUDF::from(Self {
            mask,
            signature: Signature::any(arity, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for WithdrawalMaskUdf {
    fn name(&self) -> &str {
        match self.mask {
            Mask::CarrierValues => "carrier_values_without",
            Mask::Exceptions => "exceptions_without",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.mask {
            Mask::CarrierValues => arg_types[0].clone(),
            Mask::Exceptions => DataType::Binary,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name().to_string();
        let rows = output_rows(&args);
        let array = match self.mask {
            Mask::Exceptions => {
                let a = binary_args(&name, &args.args)?;
                let mut out = BinaryBuilder::new();
                for row in 0..rows {
                    let withdrawn = a[1].bitmap(&name, row)?.unwrap_or_default();
                    match a[0].bytes(row) {
                        None => out.append_null(),
                        Some(_) => {
                            let mut calls = a[0].exceptions(&name, row)?;
                            calls.retain(|c| !withdrawn.contains(c.sample_idx));
                            out.append_value(encode_exceptions(&calls));
                        }
                    }
                }
                Arc::new(out.finish()) as ArrayRef
            }
            Mask::CarrierValues => {
                let values = args.args[0].to_array(rows)?;
                let a = binary_args(&name, &args.args[1..])?;
                let list = values.as_list_opt::<i32>().ok_or_else(|| {
                    DataFusionError::Execution(format!("{name}: expected a list column"))
                })?;
                let mut keep = BooleanBufferBuilder::new(list.values().len());
                keep.append_n(list.values().len(), false);
                let mut offsets = vec![0i32];
                let mut kept = 0i32;
                for row in 0..rows {
                    let (start, end) = (
                        list.value_offsets()[row] as usize,
                        list.value_offsets()[row + 1] as usize,
                    );
                    let bitmap = |i: usize| -> Result<RoaringBitmap> {
                        Ok(a[i]
                            .bitmap(&name, row)?
                            .map(|b| (*b).clone())
                            .unwrap_or_default())
                    };
                    let carriers = bitmap(0)? | bitmap(1)? | bitmap(2)?;
                    let withdrawn = bitmap(3)?;
                    for (k, idx) in
                        (start..end).zip(carriers.iter().chain(std::iter::repeat(u32::MAX)))
                    {
                        if list.is_valid(row) && !withdrawn.contains(idx) {
                            keep.set_bit(k, true);
                            kept += 1;
                        }
                    }
                    offsets.push(kept);
                }
                let mask = BooleanArray::new(keep.finish(), None);
                let field = match list.data_type() {
                    DataType::List(f) => f.clone(),
                    other => {
                        return Err(DataFusionError::Execution(format!(
                            "{name}: expected a list, got {other}"
                        )));
                    }
                };
                Arc::new(ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    filter(list.values(), &mask)?,
                    list.nulls().cloned(),
                )?) as ArrayRef
            }
        };
        into_columnar(&args, array)
    }
}

/// The UDFs [`variants_without`] plans with (a node running such a plan registers them).
pub(crate) fn mask_udfs() -> [ScalarUDF; 2] {
    [
        WithdrawalMaskUdf::udf(Mask::CarrierValues),
        WithdrawalMaskUdf::udf(Mask::Exceptions),
    ]
}

/// `variants` (the raw scan `raw`) without the `withdrawn` participants; `raw` itself when
/// nobody has withdrawn.
pub(crate) fn variants_without(raw: DataFrame, withdrawn: &RoaringBitmap) -> Result<DataFrame> {
    if withdrawn.is_empty() {
        return Ok(raw);
    }
    let w = lit(ScalarValue::Binary(Some(serialize_bitmap(withdrawn))));
    let and_not = BitmapSetUdf::udf(BitmapSetOp::AndNot);
    let count_in = BitmapCountUdf::udf(BitmapCount::AndCount);
    let allele_count = BitmapCountUdf::udf(BitmapCount::AlleleCount);
    let allele_number = BitmapCountUdf::udf(BitmapCount::AlleleNumber);
    let values = WithdrawalMaskUdf::udf(Mask::CarrierValues);
    let exceptions = WithdrawalMaskUdf::udf(Mask::Exceptions);
    let withdrawn_part = |name: &str| -> Expr {
        match name {
            "ac" => allele_count.call(vec![col("het"), col("hom_alt"), col("hemi"), w.clone()]),
            "an" => allele_number.call(vec![
                col("called_diploid"),
                col("called_haploid"),
                col("gt_exceptions"),
                w.clone(),
            ]),
            "n_het" => count_in.call(vec![col("het"), w.clone()]),
            "n_hom_alt" => count_in.call(vec![col("hom_alt"), w.clone()]),
            "n_hemi" => count_in.call(vec![col("hemi"), w.clone()]),
            _ => count_in.call(vec![col("no_call"), w.clone()]),
        }
    };
    let schema = raw.schema().clone();
    let columns: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let masked = if COUNT_COLUMNS.contains(&name) {
                col(name) - withdrawn_part(name)
            } else if BITMAP_COLUMNS.contains(&name) {
                and_not.call(vec![col(name), w.clone()])
            } else if name == "gt_exceptions" {
                exceptions.call(vec![col(name), w.clone()])
            } else if name.starts_with("fmt_") {
                values.call(vec![
                    col(name),
                    col("het"),
                    col("hom_alt"),
                    col("hemi"),
                    w.clone(),
                ])
            } else {
                return col(name);
            };
            masked.alias(name)
        })
        .collect();
    raw.select(columns)
}
