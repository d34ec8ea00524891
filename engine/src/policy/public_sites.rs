//! Which sites the aggregate tier's `variants` lists: those whose noisy number of carriers
//! among every participant (withdrawn ones never counted) is at least k. A site carried by
//! fewer would be a Beacon answer ("someone in the biobank carries this allele"), the input of
//! Shringarpure and Bustamante's membership test; a site carried only by participants who
//! withdrew would tell that they did.
//!
//! `site_is_public(het, hom_alt, hemi, contig, pos, ref, alt)` is bound to the everyone release
//! of the engine's project ([`crate::policy::disclosure_control`]) and charges it on first use.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::policy::disclosure_control::{CellNoise, DisclosureControl, ReleaseKey};
use crate::sql::bitmap_args::{binary_args, into_columnar, output_rows};

/// The filter UDF of one aggregate engine.
#[derive(Debug, Clone)]
pub(crate) struct PublicSiteUdf {
    control: Arc<DisclosureControl>,
    release: ReleaseKey,
    min_count: i64,
    signature: Signature,
}

impl PartialEq for PublicSiteUdf {
    fn eq(&self, other: &Self) -> bool {
        self.release == other.release && self.min_count == other.min_count
    }
}

impl Eq for PublicSiteUdf {}

impl Hash for PublicSiteUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.release.hash(state);
    }
}

impl PublicSiteUdf {
    /// The UDF for `release` (every participant) under `control`, threshold `min_count`.
    pub(crate) fn udf(
        control: Arc<DisclosureControl>,
        release: ReleaseKey,
        min_count: u32,
    ) -> ScalarUDF {
        ScalarUDF::from(Self {
            control,
            release,
            min_count: i64::from(min_count),
            signature: Signature::any(7, Volatility::Immutable),
        })
    }
}

impl PublicSiteUdf {
    /// The release the UDF's noise is keyed by.
    pub(crate) fn release(&self) -> &ReleaseKey {
        &self.release
    }
}

impl ScalarUDFImpl for PublicSiteUdf {
    fn name(&self) -> &str {
        "site_is_public"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.control
            .charge(&self.release)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let rows = output_rows(&args);
        let name = self.name();
        let (bitmaps, site) = args.args.split_at(3);
        let bitmaps = binary_args(name, bitmaps)?;
        let column = |i: usize, to: &DataType| -> Result<Arc<dyn Array>> {
            let array = site
                .get(i)
                .ok_or_else(|| DataFusionError::Internal(format!("{name}: 7 arguments")))?
                .to_array(rows)?;
            Ok(cast(&array, to)?)
        };
        let (contig, pos, reference, alt) = (
            column(0, &DataType::Utf8)?,
            column(1, &DataType::Int64)?,
            column(2, &DataType::Utf8)?,
            column(3, &DataType::Utf8)?,
        );
        let (contig, pos, reference, alt) = (
            contig.as_string::<i32>(),
            pos.as_primitive::<Int64Type>(),
            reference.as_string::<i32>(),
            alt.as_string::<i32>(),
        );
        let noise = self.control.noise(&self.release);
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let mut carriers = roaring::RoaringBitmap::new();
            for bitmap in &bitmaps {
                if let Some(b) = bitmap.bitmap(name, row)? {
                    carriers |= b.as_ref();
                }
            }
            let site = [contig.value(row), reference.value(row), alt.value(row)];
            out.append_value(is_public(
                &noise,
                site,
                pos.value(row),
                carriers.len() as i64,
                self.min_count,
            ));
        }
        into_columnar(&args, Arc::new(out.finish()))
    }
}

/// Whether the site `[contig, ref, alt]` at `pos`, carried by `carriers` participants, is
/// shown to the aggregate tier: its noisy carrier count (`noise` of the everyone release) is
/// at least `min_count`.
pub(crate) fn is_public(
    noise: &CellNoise,
    site: [&str; 3],
    pos: i64,
    carriers: i64,
    min_count: i64,
) -> bool {
    let [contig, reference, alt] = site;
    let e = noise.pair(&[
        b"site carriers",
        contig.as_bytes(),
        &pos.to_le_bytes(),
        reference.as_bytes(),
        alt.as_bytes(),
    ])[0];
    CellNoise::apply(carriers, e) >= min_count
}
