//! Checks and conversions shared by the VCF and BCF record parsers.

use cohortdb_store::log_entry::ValueKind;

use crate::error::{IngestError, RecordLocation};
use crate::info_values::InfoValues;
use crate::vcf_header::{Header, Number};

/// Context for reporting record errors.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The input's name.
    pub file: &'a str,
    /// Its header.
    pub header: &'a Header,
    /// `sample_idx` of the input's first sample.
    pub sample_base: u32,
    /// FORMAT fields kept for non-reference calls (see `format_fields`).
    pub format_fields: &'a [crate::vcf_header::FieldDef],
    /// Keep the FORMAT fields of the called reference samples of gVCF reference blocks too
    /// (for their GQ/DP thresholds).
    pub keep_reference_blocks: bool,
}

impl RecordContext<'_> {
    /// An error at `location` in `field`.
    pub fn error(
        &self,
        location: RecordLocation,
        site: Option<(&str, i64)>,
        field: &str,
        reason: impl Into<String>,
    ) -> IngestError {
        let location = match site {
            Some((contig, pos)) => format!("{location} ({contig}:{pos})"),
            None => location.to_string(),
        };
        IngestError::Record {
            file: self.file.to_string(),
            location,
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// IUPAC nucleotide codes, as htslib accepts them in REF and ALT.
const IUPAC: &[u8] = b"ACGTNMRWSYKVHDBUacgtnmrwsykvhdbu";

/// Why a REF allele is refused, if it is: it must be non-empty IUPAC nucleotide codes.
pub fn check_ref(allele: &str) -> Option<String> {
    if allele.is_empty() {
        return Some("REF is empty".into());
    }
    let ok = allele.bytes().all(|b| IUPAC.contains(&b));
    (!ok).then(|| {
        format!(
            "REF {:?} is not a sequence of IUPAC nucleotide codes",
            crate::vcf_header::clip(allele)
        )
    })
}

/// Why an ALT allele is refused, if it is: bases, `*`, a symbolic `<ID>`, a breakend, or `.`.
pub fn check_alt(allele: &str) -> Option<String> {
    if allele.is_empty() {
        return Some("an ALT allele is empty (`A,,C` or a trailing comma)".into());
    }
    let symbolic = allele.starts_with('<') && allele.ends_with('>') && allele.len() > 2;
    let breakend = allele.contains('[')
        || allele.contains(']')
        || allele.starts_with('.')
        || allele.ends_with('.');
    let bases = allele == "*" || allele.bytes().all(|b| IUPAC.contains(&b));
    let ok = symbolic || breakend && !allele.contains(char::is_whitespace) || bases;
    (!ok).then(|| {
        format!(
            "ALT allele {:?} is not IUPAC bases, `*`, `<ID>` or a breakend",
            crate::vcf_header::clip(allele)
        )
    })
}

/// Parses a text INFO value list for key definition `def_idx`; `Err` holds the reason.
pub fn parse_info_text(
    header: &Header,
    def_idx: usize,
    value: Option<&str>,
) -> Result<InfoValues, String> {
    let Some(def) = header.info.get(def_idx) else {
        return Err("unknown INFO definition".into());
    };
    let Some(value) = value else {
        return match def.kind {
            ValueKind::Flag => Ok(InfoValues::Flag),
            _ => Err(format!(
                "INFO/{} has no value but is declared {:?}",
                def.id, def.kind
            )),
        };
    };
    if def.kind == ValueKind::String && matches!(def.number, Number::Count(1)) {
        return Ok(InfoValues::Text(vec![
            (value != ".").then(|| value.to_string()),
        ]));
    }
    let parts: Vec<&str> = value.split(',').collect();
    if matches!(def.number, Number::Count(0) | Number::Count(1)) && parts.len() > 1 {
        return Err(format!(
            "INFO/{} is declared with Number={} but has {} values",
            def.id,
            if def.number == Number::Count(0) { 0 } else { 1 },
            parts.len()
        ));
    }
    let bad =
        |what: &'static str| move |p: &str| format!("INFO/{} value {p:?} is not {what}", def.id);
    Ok(match def.kind {
        ValueKind::Flag => InfoValues::Flag,
        ValueKind::Integer => {
            InfoValues::Int(parse_numbers(parts.iter().copied()).map_err(bad("an integer"))?)
        }
        ValueKind::Float => {
            InfoValues::Float(parse_numbers(parts.iter().copied()).map_err(bad("a number"))?)
        }
        ValueKind::String => InfoValues::Text(
            parts
                .iter()
                .map(|p| (*p != ".").then(|| p.to_string()))
                .collect(),
        ),
    })
}

/// Numbers of a comma-separated INFO or FORMAT value, `.` as missing; `Err` holds the first
/// value that does not parse.
pub(crate) fn parse_numbers<'a, T: std::str::FromStr>(
    parts: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Option<T>>, &'a str> {
    parts
        .into_iter()
        .map(|p| match p {
            "." => Ok(None),
            p => p.parse().map(Some).map_err(|_| p),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alleles_are_checked() {
        assert!(check_ref("ACGTN").is_none());
        assert!(check_ref("M").is_none(), "IUPAC codes are allowed in REF");
        assert!(check_ref("").is_some());
        assert!(check_ref("bogus").is_some());
        for ok in ["A", "BAA", "<DEL>", "<*>", "*", "G]17:198982]", ".A"] {
            assert!(check_alt(ok).is_none(), "{ok}");
        }
        for bad in ["", " A", "<>", "XYZ"] {
            assert!(check_alt(bad).is_some(), "{bad:?}");
        }
    }
}
