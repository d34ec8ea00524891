//! Values of the stored genotype columns: bitmaps decoded, counted within a set, and the
//! allele number of a site (the rules of `cohortdb_store::genotype_bitmaps`).

use cohortdb_store::genotype_bitmaps::{GenotypeException, deserialize_bitmap};
use datafusion::arrow::array::{Array, ArrayRef, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use roaring::RoaringBitmap;

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
