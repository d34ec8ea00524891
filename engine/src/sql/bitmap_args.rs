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

/// A stored column cast to `to` (Parquet may hand back view types).
pub fn cast_column(array: &ArrayRef, to: &DataType) -> crate::error::Result<ArrayRef> {
    Ok(cast(array, to).map_err(DataFusionError::from)?)
}

/// The bitmap in `row` of a stored bitmap column; empty for NULL.
pub fn stored_bitmap(array: &BinaryArray, row: usize) -> crate::error::Result<RoaringBitmap> {
    if array.is_null(row) {
        return Ok(RoaringBitmap::new());
    }
    deserialize_bitmap(array.value(row)).ok_or_else(|| {
        crate::error::EngineError::Store(cohortdb_store::StoreError::Corrupt {
            path: "variants".into(),
            what: "genotype bitmap".into(),
            reason: "not a portable roaring bitmap".into(),
        })
    })
}

/// Wraps every argument.
pub fn binary_args(name: &str, args: &[ColumnarValue]) -> Result<Vec<BinaryArg>> {
    args.iter().map(|a| BinaryArg::new(name, a)).collect()
}

/// Samples of `bitmap` within `set` (all of them when `set` is `None`).
pub fn count_in(bitmap: Option<&RoaringBitmap>, set: Option<&RoaringBitmap>) -> u64 {
    match (bitmap, set) {
        (None, _) => 0,
        (Some(b), None) => b.len(),
        (Some(b), Some(s)) => b.intersection_len(s),
    }
}

/// AN within `set` (all samples when `None`) of a site's called samples: 2 per
/// `called_diploid`, 1 per `called_haploid`, plus what calls of ploidy above 2 (`exceptions`)
/// contribute beyond 2 (the rules of `cohortdb_store::genotype_bitmaps`).
pub fn allele_number(
    diploid: Option<&RoaringBitmap>,
    haploid: Option<&RoaringBitmap>,
    exceptions: &[GenotypeException],
    set: Option<&RoaringBitmap>,
) -> u64 {
    let extra: u64 = exceptions
        .iter()
        .filter(|x| set.is_none_or(|s| s.contains(x.sample_idx)))
        .map(|x| u64::from(x.an_contribution().saturating_sub(2)))
        .sum();
    2 * count_in(diploid, set) + count_in(haploid, set) + extra
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
