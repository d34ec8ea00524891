//! UDFs combining and listing bitmaps: `bitmap_or(a, b)`, `bitmap_and(a, b)`,
//! `bitmap_andnot(a, b)`, `bitmap_count(a)` and `bitmap_to_list(a)` (the `sample_idx` values,
//! ascending; with `het`, `hom_alt` or `hemi` this lists carriers).

use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::serialize_bitmap;
use datafusion::arrow::array::{ArrayRef, BinaryBuilder, Int64Builder, ListBuilder, UInt32Builder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use roaring::RoaringBitmap;

use crate::sql::bitmap_args::{binary_args, into_columnar, output_rows};

/// Which operation a [`BitmapSetUdf`] performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitmapSetOp {
    /// Union.
    Or,
    /// Intersection.
    And,
    /// Difference.
    AndNot,
    /// Cardinality.
    Count,
    /// Members as a list.
    ToList,
}

/// A bitmap combining or listing UDF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitmapSetUdf {
    op: BitmapSetOp,
    signature: Signature,
}

impl BitmapSetUdf {
    /// The UDF for `op`.
    pub fn udf(op: BitmapSetOp) -> ScalarUDF {
        let arity = match op {
            BitmapSetOp::Count | BitmapSetOp::ToList => 1,
            _ => 2,
        };
        ScalarUDF::from(Self {
            op,
            signature: Signature::any(arity, Volatility::Immutable),
        })
    }
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::UInt32, true)))
}

impl ScalarUDFImpl for BitmapSetUdf {
    fn name(&self) -> &str {
        match self.op {
            BitmapSetOp::Or => "bitmap_or",
            BitmapSetOp::And => "bitmap_and",
            BitmapSetOp::AndNot => "bitmap_andnot",
            BitmapSetOp::Count => "bitmap_count",
            BitmapSetOp::ToList => "bitmap_to_list",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.op {
            BitmapSetOp::Count => DataType::Int64,
            BitmapSetOp::ToList => list_type(),
            _ => DataType::Binary,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name().to_string();
        let rows = output_rows(&args);
        let a = binary_args(&name, &args.args)?;
        let get = |i: usize, row: usize| -> Result<Option<Arc<RoaringBitmap>>> {
            a.get(i)
                .map(|x| x.bitmap(&name, row))
                .transpose()
                .map(Option::flatten)
        };
        let array: ArrayRef = match self.op {
            BitmapSetOp::Count => {
                let mut out = Int64Builder::with_capacity(rows);
                for row in 0..rows {
                    out.append_option(get(0, row)?.map(|b| b.len() as i64));
                }
                Arc::new(out.finish())
            }
            BitmapSetOp::ToList => {
                let mut out = ListBuilder::new(UInt32Builder::new());
                for row in 0..rows {
                    match get(0, row)? {
                        Some(b) => out.append_value(b.iter().map(Some)),
                        None => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            op => {
                let mut out = BinaryBuilder::new();
                for row in 0..rows {
                    match (get(0, row)?, get(1, row)?) {
                        (Some(x), Some(y)) => {
                            let r = match op {
                                BitmapSetOp::Or => x.as_ref() | y.as_ref(),
                                BitmapSetOp::And => x.as_ref() & y.as_ref(),
                                _ => x.as_ref() - y.as_ref(),
                            };
                            out.append_value(serialize_bitmap(&r));
                        }
                        _ => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
        };
        into_columnar(&args, array)
    }
}
