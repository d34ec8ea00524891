//! Reading bitmap arguments of UDFs: columns or scalars, with a scalar set decoded once.

use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::{GenotypeException, decode_exceptions, deserialize_bitmap};
use datafusion::arrow::array::{Array, ArrayRef, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use datafusion::scalar::ScalarValue;
use roaring::RoaringBitmap;

/// One binary argument: a column or a scalar.
pub enum BinaryArg {
    /// A column of serialised bitmaps.
    Column(BinaryArray),
    /// One value for every row, decoded once.
    Scalar(Option<Arc<RoaringBitmap>>, Option<Vec<u8>>),
}

impl BinaryArg {
    /// Wraps argument `value` of function `name`.
    pub fn new(name: &str, value: &ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Array(array) => {
                let array: ArrayRef = if array.data_type() == &DataType::Binary {
                    array.clone()
                } else {
                    cast(array, &DataType::Binary)?
                };
                let binary = array
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| {
                        DataFusionError::Execution(format!("{name}: expected binary bitmaps"))
                    })?;
                Ok(Self::Column(binary.clone()))
            }
            ColumnarValue::Scalar(scalar) => {
                let bytes = match scalar {
                    ScalarValue::Binary(b)
                    | ScalarValue::LargeBinary(b)
                    | ScalarValue::BinaryView(b) => b.clone(),
                    s if s.is_null() => None,
                    other => {
                        return Err(DataFusionError::Execution(format!(
                            "{name}: expected a binary bitmap, got {}",
                            other.data_type()
                        )));
                    }
                };
                let bitmap = bytes
                    .as_deref()
                    .map(|b| decode(name, b))
                    .transpose()?
                    .map(Arc::new);
                Ok(Self::Scalar(bitmap, bytes))
            }
        }
    }

    /// The raw bytes at `row`.
    pub fn bytes(&self, row: usize) -> Option<&[u8]> {
        match self {
            Self::Column(a) => (!a.is_null(row)).then(|| a.value(row)),
            Self::Scalar(_, b) => b.as_deref(),
        }
    }

    /// The bitmap at `row` (`None` for null).
    pub fn bitmap(&self, name: &str, row: usize) -> Result<Option<Arc<RoaringBitmap>>> {
        match self {
            Self::Column(a) if a.is_null(row) => Ok(None),
            Self::Column(a) => decode(name, a.value(row)).map(|b| Some(Arc::new(b))),
            Self::Scalar(b, _) => Ok(b.clone()),
        }
    }

    /// Genotype exceptions at `row`.
    pub fn exceptions(&self, name: &str, row: usize) -> Result<Vec<GenotypeException>> {
        match self.bytes(row) {
            None => Ok(Vec::new()),
            Some(b) => decode_exceptions(b).ok_or_else(|| {
                DataFusionError::Execution(format!("{name}: malformed gt_exceptions value"))
            }),
        }
    }
}

fn decode(name: &str, bytes: &[u8]) -> Result<RoaringBitmap> {
    deserialize_bitmap(bytes).ok_or_else(|| {
        DataFusionError::Execution(format!(
            "{name}: argument is not a serialised roaring bitmap"
        ))
    })
}

/// Wraps every argument.
pub fn binary_args(name: &str, args: &[ColumnarValue]) -> Result<Vec<BinaryArg>> {
    args.iter().map(|a| BinaryArg::new(name, a)).collect()
}

/// Rows to compute: 1 when every argument is a scalar (the result is then a scalar too).
pub fn output_rows(args: &ScalarFunctionArgs) -> usize {
    if all_scalar(args) {
        1
    } else {
        args.number_rows
    }
}

fn all_scalar(args: &ScalarFunctionArgs) -> bool {
    args.args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// Wraps a computed column: a scalar when every argument was one.
pub fn into_columnar(args: &ScalarFunctionArgs, array: ArrayRef) -> Result<ColumnarValue> {
    if all_scalar(args) {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?));
    }
    Ok(ColumnarValue::Array(array))
}
