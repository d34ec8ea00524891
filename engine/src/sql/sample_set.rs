//! The `sample_set(sample_idx)` aggregate: the bitmap of the `sample_idx` values it sees.
//!
//! `SELECT allele_count(het, hom_alt, hemi, s) FROM variants, (SELECT sample_set(sample_idx) s
//! FROM samples WHERE ...)` counts within a cohort.

use std::sync::Arc;

use cohortdb_store::genotype_bitmaps::{deserialize_bitmap, serialize_bitmap};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;
use roaring::RoaringBitmap;

/// The `sample_set` aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SampleSetUdaf {
    signature: Signature,
}

impl SampleSetUdaf {
    /// The aggregate UDF.
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::from(Self {
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl AggregateUDFImpl for SampleSetUdaf {
    fn name(&self) -> &str {
        "sample_set"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SampleSetAccumulator::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("bitmap", DataType::Binary, true))])
    }
}

#[derive(Debug, Default)]
struct SampleSetAccumulator {
    bitmap: RoaringBitmap,
}

impl Accumulator for SampleSetAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        let values = cast(values, &DataType::UInt32)?;
        let values = values.as_primitive::<UInt32Type>();
        self.bitmap.extend(values.iter().flatten());
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(serialize_bitmap(&self.bitmap))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bitmap.serialized_size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(states) = states.first() else {
            return Ok(());
        };
        let states = states.as_binary::<i32>();
        for i in 0..states.len() {
            if states.is_null(i) {
                continue;
            }
            let other = deserialize_bitmap(states.value(i)).ok_or_else(|| {
                DataFusionError::Execution("sample_set: malformed partial state".into())
            })?;
            self.bitmap |= other;
        }
        Ok(())
    }
}
