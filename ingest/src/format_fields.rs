//! FORMAT fields kept for non-reference calls (DESIGN.md: "as list columns aligned with the
//! carriers in ascending `sample_idx` order").
//!
//! Each ALT row lists one value per carrier of that ALT (the samples in its `het`, `hom_alt`
//! or `hemi` bitmap, ascending): `Number=1` fields as `fmt_<ID>`, `Number=A` fields as
//! `fmt_<ID>` holding the carrier's value for this ALT, and `Number=R` fields (AD) as
//! `fmt_<ID>_ref` and `fmt_<ID>_alt`. Only Integer and Float fields with those Numbers are
//! kept; a missing value is a null element, and a record without any of the fields has NULL
//! lists. Calls without an ALT allele keep nothing.

use cohortdb_store::fragment_builder::ExtraValue;
use cohortdb_store::log_entry::{ExtraColumn, ValueKind};

use crate::info_values::InfoValues;
use crate::site_fields::parse_numbers;
use crate::vcf_header::{FieldDef, Header, Number};

/// The FORMAT fields kept when the ingest does not say otherwise.
pub const DEFAULT_FORMAT_FIELDS: [&str; 3] = ["DP", "GQ", "AD"];

/// The FORMAT values of one non-reference call.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierFormat {
    /// The sample.
    pub sample_idx: u32,
    /// The ALT alleles (1-based) in its call, ascending, without repeats.
    pub alts: Vec<u32>,
    /// One entry per kept field (in [`kept_format_fields`] order); empty where absent.
    pub values: Vec<InfoValues>,
}

/// The definitions among `ids` that the header declares and that can be kept, in `ids` order.
pub fn kept_format_fields(header: &Header, ids: &[String]) -> Vec<FieldDef> {
    ids.iter()
        .filter_map(|id| header.format.get(id))
        .filter(|def| matches!(def.kind, ValueKind::Integer | ValueKind::Float))
        .filter(|def| matches!(def.number, Number::Count(1) | Number::A | Number::R))
        .cloned()
        .collect()
}

/// The list columns of `fields`, named in lower case (`fmt_dp`, `fmt_ad_ref`, `fmt_ad_alt`).
pub fn format_columns(fields: &[FieldDef]) -> Vec<ExtraColumn> {
    let column = |name: String, kind| ExtraColumn {
        name,
        kind,
        list: true,
    };
    fields
        .iter()
        .flat_map(|def| {
            let id = def.id.to_ascii_lowercase();
            match def.number {
                Number::R => vec![
                    column(format!("fmt_{id}_ref"), def.kind),
                    column(format!("fmt_{id}_alt"), def.kind),
                ],
                _ => vec![column(format!("fmt_{id}"), def.kind)],
            }
        })
        .collect()
}

/// The distinct ALT alleles of a call, ascending.
pub fn called_alts(alleles: impl IntoIterator<Item = Option<u32>>) -> Vec<u32> {
    let mut alts: Vec<u32> = alleles.into_iter().flatten().filter(|&a| a > 0).collect();
    alts.sort_unstable();
    alts.dedup();
    alts
}

/// Parses the kept fields of one VCF sample column. `positions[i]` is the index of field `i`
/// in the record's FORMAT keys. Unparseable numbers are an `Err` naming the field.
pub fn parse_vcf_sample(
    column: &[u8],
    positions: &[Option<usize>],
    fields: &[FieldDef],
) -> Result<Vec<InfoValues>, (String, String)> {
    let parts: Vec<&[u8]> = column.split(|&b| b == b':').collect();
    fields
        .iter()
        .zip(positions)
        .map(|(def, pos)| {
            let text = pos
                .and_then(|p| parts.get(p))
                .map(|b| std::str::from_utf8(b).unwrap_or("\u{fffd}"))
                .unwrap_or(".");
            parse_values(def, text).map_err(|r| (format!("FORMAT/{}", def.id), r))
        })
        .collect()
}

fn parse_values(def: &FieldDef, text: &str) -> Result<InfoValues, String> {
    let items = text.split(',').filter(|s| !s.is_empty());
    let bad = |s: &str| format!("{:?} is not a {:?}", crate::vcf_header::clip(s), def.kind);
    Ok(match def.kind {
        ValueKind::Float => InfoValues::Float(parse_numbers(items).map_err(bad)?),
        _ => InfoValues::Int(parse_numbers(items).map_err(bad)?),
    })
}

/// The column values of the row of ALT `alt_index` (1-based): one list per column of
/// [`format_columns`], one element per carrier of that ALT; all NULL where the record has
/// none of the fields (`carriers` is `None`).
pub fn row_lists(
    fields: &[FieldDef],
    carriers: Option<&[CarrierFormat]>,
    alt_index: u32,
) -> Vec<ExtraValue> {
    let Some(carriers) = carriers else {
        return vec![ExtraValue::Null; format_columns(fields).len()];
    };
    let mine: Vec<&CarrierFormat> = carriers
        .iter()
        .filter(|c| c.alts.binary_search(&alt_index).is_ok())
        .collect();
    let mut out = Vec::new();
    for (f, def) in fields.iter().enumerate() {
        let slots: Vec<usize> = match def.number {
            Number::R => vec![0, alt_index as usize],
            Number::A => vec![(alt_index as usize).saturating_sub(1)],
            _ => vec![0],
        };
        for slot in slots {
            out.push(match def.kind {
                ValueKind::Float => ExtraValue::FloatList(
                    mine.iter()
                        .map(|c| match c.values.get(f) {
                            Some(InfoValues::Float(v)) => v.get(slot).copied().flatten(),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => ExtraValue::IntList(
                    mine.iter()
                        .map(|c| match c.values.get(f) {
                            Some(InfoValues::Int(v)) => v.get(slot).copied().flatten(),
                            _ => None,
                        })
                        .collect(),
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, number: Number, kind: ValueKind) -> FieldDef {
        FieldDef {
            id: id.into(),
            number,
            kind,
        }
    }

    #[test]
    fn carriers_get_values_per_alt_row() {
        let fields = [
            def("DP", Number::Count(1), ValueKind::Integer),
            def("AD", Number::R, ValueKind::Integer),
        ];
        assert_eq!(
            format_columns(&fields)
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["fmt_dp", "fmt_ad_ref", "fmt_ad_alt"]
        );
        // FORMAT GT:AD:DP, so DP is at 2 and AD at 1.
        let positions = [Some(2), Some(1)];
        let sample = |idx, alts: Vec<u32>, column: &[u8]| CarrierFormat {
            sample_idx: idx,
            alts,
            values: parse_vcf_sample(column, &positions, &fields).unwrap(),
        };
        let carriers = [
            sample(1, vec![1, 2], b"1/2:0,4,5:9"),
            sample(3, vec![2], b"0/2:3,.,6"),
        ];
        assert_eq!(
            row_lists(&fields, Some(&carriers), 1),
            [
                ExtraValue::IntList(vec![Some(9)]),
                ExtraValue::IntList(vec![Some(0)]),
                ExtraValue::IntList(vec![Some(4)]),
            ]
        );
        assert_eq!(
            row_lists(&fields, Some(&carriers), 2),
            [
                ExtraValue::IntList(vec![Some(9), None]),
                ExtraValue::IntList(vec![Some(0), Some(3)]),
                ExtraValue::IntList(vec![Some(5), Some(6)]),
            ]
        );
        assert!(parse_vcf_sample(b"0/1:x:1", &positions, &fields).is_err());
        assert_eq!(row_lists(&fields, None, 1), vec![ExtraValue::Null; 3]);
        assert_eq!(called_alts([Some(2), None, Some(0), Some(2)]), [2]);
    }
}
