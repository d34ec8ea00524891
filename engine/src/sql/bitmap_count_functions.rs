//! Counting UDFs over genotype bitmaps within a sample set.
//!
//! - `allele_count(het, hom_alt, hemi, set)`: ALT alleles carried by the set's samples;
//! - `allele_number(called_diploid, called_haploid, gt_exceptions, set)`: called alleles;
//! - `bitmap_and_count(bitmap, set)`: samples of `bitmap` in the set (e.g. `n_het`).
//!
//! `set` is a bitmap over `sample_idx` (see `sample_set`); NULL means every sample. The
//! counting rules are those of `bcftools +fill-tags` (see `cohortdb_store::genotype_bitmaps`).

use std::sync::Arc;

use datafusion::arrow::array::Int64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::rows::stored_bitmaps::{allele_number, count_in};
use crate::sql::bitmap_args::{binary_args, into_columnar, output_rows};

/// Which count a [`BitmapCountUdf`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitmapCount {
    /// `allele_count`.
    AlleleCount,
    /// `allele_number`.
    AlleleNumber,
    /// `bitmap_and_count`.
    AndCount,
}

/// A counting UDF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitmapCountUdf {
    kind: BitmapCount,
    signature: Signature,
}

impl BitmapCountUdf {
    /// The UDF for `kind`, the set as its last argument.
    pub fn udf(kind: BitmapCount) -> ScalarUDF {
        let arity = match kind {
            BitmapCount::AlleleCount | BitmapCount::AlleleNumber => 4,
            BitmapCount::AndCount => 2,
        };
        ScalarUDF::from(Self {
            kind,
            signature: Signature::any(arity, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for BitmapCountUdf {
    fn name(&self) -> &str {
        match self.kind {
            BitmapCount::AlleleCount => "allele_count",
            BitmapCount::AlleleNumber => "allele_number",
            BitmapCount::AndCount => "bitmap_and_count",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name().to_string();
        let rows = output_rows(&args);
        let a = binary_args(&name, &args.args)?;
        let mut out = Int64Builder::with_capacity(rows);
        for row in 0..rows {
            let set = a
                .last()
                .map(|s| s.bitmap(&name, row))
                .transpose()?
                .flatten();
            let set = set.as_deref();
            let bm = |i: usize| {
                a.get(i)
                    .map(|x| x.bitmap(&name, row))
                    .transpose()
                    .map(Option::flatten)
            };
            let value = match self.kind {
                BitmapCount::AlleleCount => {
                    let (het, hom, hemi) = (bm(0)?, bm(1)?, bm(2)?);
                    count_in(het.as_deref(), set)
                        + 2 * count_in(hom.as_deref(), set)
                        + count_in(hemi.as_deref(), set)
                }
                BitmapCount::AlleleNumber => {
                    let (diploid, haploid) = (bm(0)?, bm(1)?);
                    let exceptions = match a.get(2) {
                        Some(e) => e.exceptions(&name, row)?,
                        None => Vec::new(),
                    };
                    allele_number(diploid.as_deref(), haploid.as_deref(), &exceptions, set)
                }
                BitmapCount::AndCount => count_in(bm(0)?.as_deref(), set),
            };
            out.append_value(value as i64);
        }
        let array: datafusion::arrow::array::ArrayRef = Arc::new(out.finish());
        into_columnar(&args, array)
    }
}
