//! The Arrow schema of variant fragments (format version 1).
//!
//! Fixed columns, in order: `contig`, `pos` and `end_pos` (1-based, inclusive; `end_pos` is
//! `INFO/END` when present, else `pos + len(ref) - 1`), `id`, `ref`, `alt`, `qual`, `filters`
//! (the VCF FILTER text, null for `.`), `allele_index` (1-based index of this ALT at the
//! original site) and `n_alleles` (REF included), `record_ordinal` (which of the input
//! records at this position, in input order, the row comes from), the precomputed counts over the fragment's
//! samples (`ac`, `an`, `n_het`, `n_hom_alt`, `n_hemi`, `n_no_call`), the genotype bitmaps
//! ([`BITMAP_COLUMNS`]) and `gt_exceptions`. Typed INFO columns (`info_<id>`) follow.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::genotype_bitmaps::BITMAP_COLUMNS;
use crate::log_entry::{ExtraColumn, ValueKind};

/// Field metadata key stating a coordinate convention.
pub const COORDINATES_KEY: &str = "cohortdb.coordinates";
/// The convention of `pos` and `end_pos`.
pub const ONE_BASED_INCLUSIVE: &str = "1-based, inclusive";
/// Parquet key-value metadata key carrying the store format version.
pub const FORMAT_VERSION_KEY: &str = "cohortdb.format_version";

/// Names of the precomputed count columns.
pub const COUNT_COLUMNS: [&str; 6] = ["ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_no_call"];

fn coordinate(name: &str) -> Field {
    Field::new(name, DataType::Int64, false).with_metadata(HashMap::from([(
        COORDINATES_KEY.to_string(),
        ONE_BASED_INCLUSIVE.to_string(),
    )]))
}

/// The fixed columns of every fragment.
pub fn fixed_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("contig", DataType::Utf8, false),
        coordinate("pos"),
        coordinate("end_pos"),
        Field::new("id", DataType::Utf8, true),
        Field::new("ref", DataType::Utf8, false),
        Field::new("alt", DataType::Utf8, false),
        Field::new("qual", DataType::Float32, true),
        Field::new("filters", DataType::Utf8, true),
        Field::new("allele_index", DataType::Int32, false),
        Field::new("n_alleles", DataType::Int32, false),
        Field::new("record_ordinal", DataType::Int32, false),
    ];
    fields.extend(
        COUNT_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Int64, false)),
    );
    fields.extend(
        BITMAP_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Binary, false)),
    );
    fields.push(Field::new("gt_exceptions", DataType::Binary, true));
    fields
}

/// The Arrow type of a typed extra column.
pub fn extra_data_type(column: &ExtraColumn) -> DataType {
    let scalar = match column.kind {
        ValueKind::Integer => DataType::Int32,
        ValueKind::Float => DataType::Float32,
        ValueKind::Flag => DataType::Boolean,
        ValueKind::String => DataType::Utf8,
    };
    if column.list {
        DataType::List(Arc::new(Field::new("item", scalar, true)))
    } else {
        scalar
    }
}

/// The schema of a fragment (or of the merged `variants` table) with these extra columns.
pub fn fragment_schema(extras: &[ExtraColumn]) -> SchemaRef {
    let mut fields = fixed_fields();
    fields.extend(
        extras
            .iter()
            .map(|c| Field::new(&c.name, extra_data_type(c), true)),
    );
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_say_their_convention() {
        let schema = fragment_schema(&[]);
        let pos = schema.field_with_name("pos").unwrap();
        assert_eq!(pos.metadata()[COORDINATES_KEY], ONE_BASED_INCLUSIVE);
        assert!(schema.field_with_name("het").is_ok());
    }
}
