//! A parsed site: fixed fields, typed INFO values and encoded genotypes, and its split into one
//! fragment row per ALT allele (as `bcftools norm -m-`).
//!
//! INFO values per row: `Number=A` fields keep this ALT's value (a scalar column),
//! `Number=R` fields keep `[REF value, this ALT's value]`, `Number=0/1` stay scalars, and all
//! other numbers keep the whole list.

use cohortdb_store::fragment_builder::{ExtraValue, FragmentBuilder, RowCounts, VariantRow};
use cohortdb_store::genotype_bitmaps::serialize_bitmap;
use cohortdb_store::log_entry::ExtraColumn;

use crate::format_fields::{CarrierFormat, row_lists};
use crate::genotype_accumulator::SiteGenotypes;
use crate::vcf_header::{FieldDef, Header, Number};

pub use crate::info_values::InfoValues;

/// A parsed and encoded site.
#[derive(Debug, Clone)]
pub struct EncodedSite {
    /// Contig name.
    pub contig: String,
    /// 1-based position.
    pub pos: i64,
    /// 1-based inclusive end.
    pub end_pos: i64,
    /// ID, `None` for `.`.
    pub id: Option<String>,
    /// REF.
    pub ref_allele: String,
    /// ALT alleles (empty for `.`).
    pub alts: Vec<String>,
    /// QUAL.
    pub qual: Option<f32>,
    /// FILTER text, `None` for `.`.
    pub filters: Option<String>,
    /// INFO values by header INFO index.
    pub info: Vec<(usize, InfoValues)>,
    /// Genotypes.
    pub genotypes: SiteGenotypes,
    /// Kept FORMAT values of the non-reference calls, in sample order; `None` where the
    /// record has none of the kept fields.
    pub format: Option<Vec<CarrierFormat>>,
}

fn is_scalar(number: Number) -> bool {
    matches!(number, Number::Count(0) | Number::Count(1) | Number::A)
}

/// The typed columns for a header's INFO definitions: `info_<id>` in lower case, so SQL reads
/// them unquoted (`info_af`); a key that differs from an earlier one only in case keeps its
/// case (`"info_Af"`).
pub fn info_columns(header: &Header) -> Vec<ExtraColumn> {
    let mut used = std::collections::HashSet::new();
    header
        .info
        .iter()
        .map(|def| {
            let lower = format!("info_{}", def.id.to_ascii_lowercase());
            let name = if used.insert(lower.clone()) {
                lower
            } else {
                format!("info_{}", def.id)
            };
            ExtraColumn {
                name,
                kind: def.kind,
                list: !is_scalar(def.number),
            }
        })
        .collect()
}

/// The values of `values` kept for the row of ALT `alt_index` (1-based; 0 = no ALT).
fn pick<T: Clone>(number: Number, values: &[Option<T>], alt_index: usize) -> Vec<Option<T>> {
    let at = |i: usize| values.get(i).cloned().flatten();
    match number {
        Number::A if alt_index > 0 => vec![at(alt_index - 1)],
        Number::A => Vec::new(),
        Number::R if alt_index > 0 => vec![at(0), at(alt_index)],
        Number::R => vec![at(0)],
        _ => values.to_vec(),
    }
}

fn row_value(def: &FieldDef, values: &InfoValues, alt_index: usize) -> ExtraValue {
    let scalar = is_scalar(def.number);
    match values {
        InfoValues::Flag => ExtraValue::Flag,
        InfoValues::Int(v) => {
            let v = pick(def.number, v, alt_index);
            match (scalar, v.first().copied().flatten()) {
                (true, Some(x)) => ExtraValue::Int(x),
                (true, None) => ExtraValue::Null,
                (false, _) => ExtraValue::IntList(v),
            }
        }
        InfoValues::Float(v) => {
            let v = pick(def.number, v, alt_index);
            match (scalar, v.first().copied().flatten()) {
                (true, Some(x)) => ExtraValue::Float(x),
                (true, None) => ExtraValue::Null,
                (false, _) => ExtraValue::FloatList(v),
            }
        }
        InfoValues::Text(v) => {
            let v = pick(def.number, v, alt_index);
            match (scalar, v.first().cloned().flatten()) {
                (true, Some(x)) => ExtraValue::Text(x),
                (true, None) => ExtraValue::Null,
                (false, _) => ExtraValue::TextList(v),
            }
        }
    }
}

/// Whether an ALT allele is gVCF's symbolic "any other allele" (GATK `<NON_REF>`,
/// DeepVariant and bcftools `<*>`).
pub fn is_gvcf_other_allele(alt: &str) -> bool {
    alt == "<NON_REF>" || alt == "<*>"
}

impl EncodedSite {
    /// Whether the record is a gVCF reference block: every ALT is [`is_gvcf_other_allele`]
    /// (its span is `pos..=end_pos`, from INFO/END).
    pub fn is_reference_block(&self) -> bool {
        !self.alts.is_empty() && self.alts.iter().all(|a| is_gvcf_other_allele(a))
    }

    /// The samples a reference block calls (its called genotypes; they are all
    /// reference-only in a well-formed gVCF).
    pub fn called_samples(&self) -> roaring::RoaringBitmap {
        let [diploid, haploid, ..] = &self.genotypes.site_bitmaps;
        let read =
            |b: &[u8]| cohortdb_store::genotype_bitmaps::deserialize_bitmap(b).unwrap_or_default();
        read(diploid) | read(haploid)
    }

    /// Appends one row per ALT (or one row with ALT `.` for a site without ALT) to `builder`,
    /// whose extra columns are [`info_columns`] of `header`, then
    /// [`crate::format_fields::format_columns`] of `format_fields`.
    pub fn append_rows(
        &self,
        header: &Header,
        format_fields: &[FieldDef],
        builder: &mut FragmentBuilder,
    ) {
        let g = &self.genotypes;
        let empty = serialize_bitmap(&roaring::RoaringBitmap::new());
        let no_alt = [".".to_string()];
        let alts: &[String] = if self.alts.is_empty() {
            &no_alt
        } else {
            &self.alts
        };
        let mut extras = vec![ExtraValue::Null; header.info.len()];
        // gVCF's "any other allele" is no variant: its row is not stored, and the stored
        // alleles are numbered without it (so export writes the record without it).
        let stored_alts = self
            .alts
            .iter()
            .filter(|a| !is_gvcf_other_allele(a))
            .count();
        let mut stored_index = 0;
        for (i, alt) in alts.iter().enumerate() {
            if is_gvcf_other_allele(alt) {
                continue;
            }
            let alt_index = if self.alts.is_empty() { 0 } else { i + 1 };
            if !self.alts.is_empty() {
                stored_index += 1;
            }
            extras.truncate(header.info.len());
            extras.fill(ExtraValue::Null);
            extras.extend(row_lists(
                format_fields,
                self.format.as_deref(),
                alt_index as u32,
            ));
            for (def_idx, values) in &self.info {
                if let (Some(def), Some(slot)) =
                    (header.info.get(*def_idx), extras.get_mut(*def_idx))
                {
                    *slot = row_value(def, values, alt_index);
                }
            }
            let [het, hom, hemi] = match g.alt_bitmaps.get(i) {
                Some([a, b, c]) => [a.as_slice(), b.as_slice(), c.as_slice()],
                None => [empty.as_slice(); 3],
            };
            let [s0, s1, s2, s3, s4, s5] = &g.site_bitmaps;
            let counts = g.alt_counts.get(i).copied().unwrap_or(RowCounts {
                an: g.an,
                n_no_call: g.n_no_call,
                ..RowCounts::default()
            });
            builder.append(&VariantRow {
                pos: self.pos,
                end_pos: self.end_pos,
                id: self.id.as_deref(),
                ref_allele: &self.ref_allele,
                alt,
                qual: self.qual,
                filters: self.filters.as_deref(),
                allele_index: stored_index,
                n_alleles: stored_alts as i32 + 1,
                counts,
                bitmaps: [het, hom, hemi, s0, s1, s2, s3, s4, s5],
                gt_exceptions: g.exceptions.as_deref(),
                extras: &extras,
            });
        }
    }
}
