//! The VCF header (also the text header of BCF): field definitions, contigs and samples.
//!
//! Parsed leniently where htslib is lenient (unknown meta lines, missing contig lengths, Flag
//! with a non-zero Number is forced to 0) and strictly where meaning would be lost (no
//! `#CHROM` line, empty or duplicate sample names).

use std::collections::HashMap;

use cohortdb_store::log_entry::ValueKind;

/// VCF `Number` of an INFO or FORMAT field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// A fixed count.
    Count(u32),
    /// One value per ALT allele.
    A,
    /// One value per allele, REF included.
    R,
    /// One value per genotype.
    G,
    /// Unknown (`.`).
    Unknown,
}

/// An INFO or FORMAT definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// The key.
    pub id: String,
    /// How many values.
    pub number: Number,
    /// Value type.
    pub kind: ValueKind,
}

/// The parsed header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// INFO definitions in header order.
    pub info: Vec<FieldDef>,
    /// FORMAT definitions by key.
    pub format: HashMap<String, FieldDef>,
    /// Sample names from the `#CHROM` line.
    pub samples: Vec<String>,
    /// BCF dictionary of strings (FILTER/INFO/FORMAT IDs), by index.
    pub string_dict: Vec<String>,
    /// BCF dictionary of contigs, by index.
    pub contig_dict: Vec<String>,
    /// The header text as read (without the final newline).
    pub text: String,
    info_index: HashMap<String, usize>,
}

/// A header problem: 1-based line and reason.
pub type HeaderProblem = (u64, String);

impl Header {
    /// Index of INFO key `id` in [`Header::info`].
    pub fn info_index(&self, id: &str) -> Option<usize> {
        self.info_index.get(id).copied()
    }

    /// Parses header text (meta lines and the `#CHROM` line).
    pub fn parse(text: &str) -> Result<Self, HeaderProblem> {
        let mut header = Header {
            text: text.trim_end_matches(['\n', '\r']).to_string(),
            ..Header::default()
        };
        let mut strings: Vec<(Option<usize>, String)> = vec![(Some(0), "PASS".into())];
        let mut contigs: Vec<(Option<usize>, String)> = Vec::new();
        let mut saw_chrom = false;
        for (i, raw) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("#CHROM") {
                header.samples = parse_samples(rest).map_err(|r| (n, r))?;
                saw_chrom = true;
                break;
            }
            let Some(meta) = line.strip_prefix("##") else {
                return Err((
                    n,
                    format!(
                        "expected a `##` meta line or the `#CHROM` line, found {:?}",
                        clip(line)
                    ),
                ));
            };
            let Some((key, value)) = meta.split_once('=') else {
                continue;
            };
            if !matches!(key, "INFO" | "FORMAT" | "FILTER" | "contig") {
                continue;
            }
            let attrs = parse_structured(value).map_err(|r| (n, format!("##{key}: {r}")))?;
            let Some(id) = attrs.get("ID").cloned() else {
                return Err((n, format!("##{key} line without ID")));
            };
            let idx = attrs.get("IDX").and_then(|v| v.parse::<usize>().ok());
            match key {
                "contig" => contigs.push((idx, id)),
                "FILTER" => strings.push((idx, id)),
                _ => {
                    let def =
                        field_def(&id, &attrs).map_err(|r| (n, format!("##{key} {id}: {r}")))?;
                    strings.push((idx, id.clone()));
                    if key == "INFO" {
                        if !header.info_index.contains_key(&id) {
                            header.info_index.insert(id, header.info.len());
                            header.info.push(def);
                        }
                    } else {
                        header.format.insert(id, def);
                    }
                }
            }
        }
        if !saw_chrom {
            return Err((0, "no `#CHROM` header line".into()));
        }
        header.string_dict = build_dictionary(strings);
        header.contig_dict = build_dictionary(contigs);
        Ok(header)
    }
}

/// Builds a BCF dictionary: explicit `IDX` values win, others are numbered in order of first
/// appearance, as htslib does.
fn build_dictionary(entries: Vec<(Option<usize>, String)>) -> Vec<String> {
    let mut dict: Vec<Option<String>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut next = 0usize;
    for (idx, id) in entries {
        if !seen.insert(id.clone()) {
            continue;
        }
        let slot = idx.unwrap_or(next);
        next = next.max(slot + 1);
        if dict.len() <= slot {
            dict.resize(slot + 1, None);
        }
        dict[slot] = Some(id);
    }
    dict.into_iter().map(Option::unwrap_or_default).collect()
}

fn parse_samples(rest: &str) -> Result<Vec<String>, String> {
    let columns: Vec<&str> = rest.split('\t').collect();
    let fixed = ["", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"];
    if columns.len() < fixed.len() || columns[..fixed.len()] != fixed {
        return Err(
            "the #CHROM line must list CHROM POS ID REF ALT QUAL FILTER INFO separated by tabs"
                .into(),
        );
    }
    if columns.len() == fixed.len() {
        return Ok(Vec::new());
    }
    if columns[fixed.len()] != "FORMAT" {
        return Err(format!(
            "expected FORMAT after INFO, found {:?}",
            columns[fixed.len()]
        ));
    }
    let samples: Vec<String> = columns[fixed.len() + 1..]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, s) in samples.iter().enumerate() {
        if s.is_empty() {
            return Err(format!("sample column {} has an empty name", i + 1));
        }
        if !seen.insert(s.as_str()) {
            return Err(format!("sample name {s:?} appears twice"));
        }
    }
    Ok(samples)
}

fn field_def(id: &str, attrs: &HashMap<String, String>) -> Result<FieldDef, String> {
    let kind = match attrs.get("Type").map(String::as_str) {
        Some("Integer") => ValueKind::Integer,
        Some("Float") => ValueKind::Float,
        Some("Flag") => ValueKind::Flag,
        Some("String") | Some("Character") => ValueKind::String,
        other => return Err(format!("unknown Type {other:?}")),
    };
    let number = match attrs.get("Number").map(String::as_str) {
        _ if kind == ValueKind::Flag => Number::Count(0),
        Some("A") => Number::A,
        Some("R") => Number::R,
        Some("G") => Number::G,
        Some(".") | None => Number::Unknown,
        Some(n) => Number::Count(n.parse().map_err(|_| format!("invalid Number {n:?}"))?),
    };
    Ok(FieldDef {
        id: id.to_string(),
        number,
        kind,
    })
}

/// Parses `<Key=Value,Key="quoted, value",...>`. A missing closing `>` is tolerated, as htslib
/// does (DeepVariant has written such lines); the meaning is unambiguous.
fn parse_structured(value: &str) -> Result<HashMap<String, String>, String> {
    let inner = value.strip_prefix('<').ok_or("expected <...>")?;
    let inner = inner.strip_suffix('>').unwrap_or(inner);
    let mut attrs = HashMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        val.push(c);
                        escaped = false;
                    }
                }
            }
            // Skip to the next separator.
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
                val.push(c);
            }
        }
        attrs.insert(key.trim().to_string(), val);
    }
    Ok(attrs)
}

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "##fileformat=VCFv4.2\n\
        ##FILTER=<ID=q10,Description=\"Quality, below 10\">\n\
        ##INFO=<ID=AF,Number=A,Type=Float,Description=\"x\">\n\
        ##INFO=<ID=DB,Number=1,Type=Flag,Description=\"x\">\n\
        ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"x\">\n\
        ##contig=<ID=chr20,length=10>\n\
        #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n";

    #[test]
    fn parses_definitions_samples_and_dictionaries() {
        let h = Header::parse(TEXT).unwrap();
        assert_eq!(h.samples, ["A", "B"]);
        assert_eq!(h.info[0].number, Number::A);
        assert_eq!(
            h.info[1].number,
            Number::Count(0),
            "Flag forced to Number=0"
        );
        assert_eq!(h.string_dict, ["PASS", "q10", "AF", "DB", "GT"]);
        assert_eq!(h.contig_dict, ["chr20"]);
    }

    #[test]
    fn refuses_missing_chrom_line_and_duplicate_samples() {
        assert_eq!(Header::parse("##fileformat=VCFv4.2\n").unwrap_err().0, 0);
        let dup = TEXT.replace("\tB\n", "\tA\n");
        assert!(Header::parse(&dup).unwrap_err().1.contains("twice"));
    }
}
