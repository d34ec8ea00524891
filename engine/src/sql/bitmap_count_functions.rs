//! Counting UDFs over genotype bitmaps within a sample set.
//!
//! - `allele_count(het, hom_alt, hemi, set)`: ALT alleles carried by the set's samples;
//! - `allele_number(called_diploid, called_haploid, gt_exceptions, set)`: called alleles;
//! - `bitmap_and_count(bitmap, set)`: samples of `bitmap` in the set (e.g. `n_het`).
//!
//! `set` is a bitmap over `sample_idx` (see `sample_set`); NULL means every sample. The
//! counting rules are those of `bcftools +fill-tags` (see `cohortdb_store::genotype_bitmaps`).
//!
//! Cohort operations bind the set into the function instead ([`BitmapCountUdf::udf_in`]), so a
//! plan never holds (or prints) a set of 100,000 samples as a literal.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use roaring::RoaringBitmap;

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

/// A sample set bound into a function instance.
#[derive(Debug, Clone)]
struct BoundSet(Arc<RoaringBitmap>);

impl PartialEq for BoundSet {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for BoundSet {}

impl Hash for BoundSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.len().hash(state);
    }
}

/// A counting UDF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitmapCountUdf {
    kind: BitmapCount,
    signature: Signature,
    bound: Option<BoundSet>,
    name: String,
}

impl BitmapCountUdf {
    /// The UDF for `kind`, the set as its last argument.
    pub fn udf(kind: BitmapCount) -> ScalarUDF {
        Self::build(kind, None)
    }

    /// The UDF for `kind` over the bound `set`: the same arguments without the last.
    pub fn udf_in(kind: BitmapCount, set: Arc<RoaringBitmap>) -> ScalarUDF {
        Self::build(kind, Some(BoundSet(set)))
    }

    fn build(kind: BitmapCount, bound: Option<BoundSet>) -> ScalarUDF {
        let arity = match kind {
            BitmapCount::AlleleCount | BitmapCount::AlleleNumber => 4,
            BitmapCount::AndCount => 2,
        } - usize::from(bound.is_some());
        let base = match (kind, bound.is_some()) {
            (BitmapCount::AlleleCount, false) => "allele_count",
            (BitmapCount::AlleleNumber, false) => "allele_number",
            (BitmapCount::AndCount, false) => "bitmap_and_count",
            (BitmapCount::AlleleCount, true) => "allele_count_in_cohort",
            (BitmapCount::AlleleNumber, true) => "allele_number_in_cohort",
            (BitmapCount::AndCount, true) => "bitmap_count_in_cohort",
        };
        // DataFusion's common-subexpression elimination compares functions by name: each
        // bound set needs its own name, or two cohorts of one query would share a result.
        let name = match &bound {
            Some(set) => format!("{base}_{:016x}", fingerprint(&set.0)),
            None => base.to_string(),
        };
        ScalarUDF::from(Self {
            kind,
            signature: Signature::any(arity, Volatility::Immutable),
            bound,
            name,
        })
    }
}

/// A content hash of a sample set (FNV-1a over its members).
fn fingerprint(set: &RoaringBitmap) -> u64 {
    set.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v)).wrapping_mul(0x0100_0000_01b3)
    }) ^ set.len()
}

impl ScalarUDFImpl for BitmapCountUdf {
    fn name(&self) -> &str {
        &self.name
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
            let set = match &self.bound {
                Some(bound) => Some(bound.0.clone()),
                None => a
                    .last()
                    .map(|s| s.bitmap(&name, row))
                    .transpose()?
                    .flatten(),
            };
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
