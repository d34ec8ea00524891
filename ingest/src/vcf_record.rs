//! Parses one VCF data line into an [`EncodedSite`], with a fast path for `GT`-first diploid
//! calls written with single-digit alleles (`0|1`, `1/1`, `./.`).

use crate::error::{RecordLocation, Result};
use crate::format_fields::{CarrierFormat, called_alts, parse_vcf_sample};
use crate::genotype_accumulator::GenotypeAccumulator;
use crate::site::EncodedSite;
use crate::site_fields::{RecordContext, check_alt, check_ref, parse_info_text};
use crate::vcf_header::FieldDef;

/// The most ALT alleles a site may have (a guard against hostile input).
pub const MAX_ALLELES: usize = 1 << 12;
/// The largest ploidy accepted.
pub const MAX_PLOIDY: usize = 64;

/// Parses `line` (without its newline).
pub fn parse_vcf_line(
    line: &[u8],
    location: RecordLocation,
    ctx: &RecordContext<'_>,
) -> Result<EncodedSite> {
    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
    // A trailing tab (DeepVariant writes one) is not an extra empty column, as in htslib.
    while let Some(rest) = line.strip_suffix(b"\t") {
        line = rest;
    }
    let mut fields = line.splitn(10, |&b| b == b'\t');
    let mut next = |name: &str| {
        fields.next().ok_or_else(|| ctx.error(location, None, name, "missing column: a record needs 8 tab-separated columns (9 plus one per sample with samples)"))
    };
    fn utf8<'b>(
        b: &'b [u8],
        name: &str,
        location: RecordLocation,
        ctx: &RecordContext<'_>,
    ) -> Result<&'b str> {
        std::str::from_utf8(b).map_err(|_| ctx.error(location, None, name, "not valid UTF-8"))
    }
    let text = |b, name| utf8(b, name, location, ctx);
    let contig = text(next("CHROM")?, "CHROM")?.to_string();
    let pos_text = text(next("POS")?, "POS")?;
    let pos: i64 = match pos_text.parse::<i64>() {
        Ok(p) if p >= 1 => p,
        Ok(p) => {
            return Err(ctx.error(
                location,
                None,
                "POS",
                format!("position {p} is not >= 1 (VCF positions are 1-based)"),
            ));
        }
        Err(_) => {
            return Err(ctx.error(
                location,
                None,
                "POS",
                format!("{:?} is not a position", crate::vcf_header::clip(pos_text)),
            ));
        }
    };
    let site = Some((contig.as_str(), pos));
    let err = |field: &str, reason: String| ctx.error(location, site, field, reason);
    let id = text(next("ID")?, "ID")?;
    let ref_allele = text(next("REF")?, "REF")?;
    if let Some(reason) = check_ref(ref_allele) {
        return Err(err("REF", reason));
    }
    let alt_text = text(next("ALT")?, "ALT")?;
    let alts: Vec<String> = if alt_text == "." {
        Vec::new()
    } else {
        alt_text.split(',').map(str::to_string).collect()
    };
    if alts.len() >= MAX_ALLELES {
        return Err(err(
            "ALT",
            format!(
                "{} ALT alleles exceed the limit of {}",
                alts.len(),
                MAX_ALLELES - 1
            ),
        ));
    }
    if let Some(reason) = alts.iter().find_map(|a| check_alt(a)) {
        return Err(err("ALT", reason));
    }
    let qual_text = text(next("QUAL")?, "QUAL")?;
    let qual = match qual_text {
        "." => None,
        q => Some(q.parse::<f32>().map_err(|_| {
            err(
                "QUAL",
                format!("{:?} is not a number", crate::vcf_header::clip(q)),
            )
        })?),
    };
    let filter = text(next("FILTER")?, "FILTER")?;
    let info_text = text(next("INFO")?, "INFO")?;
    let mut info = Vec::new();
    let mut end_pos = pos + ref_allele.len() as i64 - 1;
    if info_text != "." {
        for item in info_text.split(';').filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            let Some(def_idx) = ctx.header.info_index(key) else {
                continue;
            };
            if key == "END"
                && let Some(v) = value
            {
                // Positions are 64-bit (htslib reads VCF positions beyond 2^31); the typed
                // INFO column is Int32, so a larger END lives in `end_pos` only.
                let end: i64 = v
                    .parse()
                    .map_err(|_| err("INFO/END", format!("END={v:?} is not an integer")))?;
                if end < pos {
                    return Err(err("INFO/END", format!("END={end} is before POS={pos}")));
                }
                end_pos = end;
                if i32::try_from(end).is_err() {
                    continue;
                }
            }
            let values = parse_info_text(ctx.header, def_idx, value)
                .map_err(|r| err(&format!("INFO/{key}"), r))?;
            info.push((def_idx, values));
        }
    }
    let n_alleles = alts.len() + 1;
    let n_samples = ctx.header.samples.len();
    let mut acc = GenotypeAccumulator::new(n_alleles, ctx.sample_base, n_samples);
    let mut carriers = Vec::new();
    let mut has_format = false;
    if n_samples > 0 {
        let format = text(next("FORMAT")?, "FORMAT")?;
        let samples = fields.next().unwrap_or_default();
        let keys: Vec<&str> = format.split(':').collect();
        let gt_index = keys.iter().position(|&k| k == "GT");
        let positions: Vec<Option<usize>> = ctx
            .format_fields
            .iter()
            .map(|def| keys.iter().position(|&k| k == def.id))
            .collect();
        has_format = positions.iter().any(Option::is_some);
        let kept = KeptFormat {
            fields: ctx.format_fields,
            positions: has_format.then_some(&positions[..]),
            carriers: &mut carriers,
            reference_too: ctx.keep_reference_blocks
                && !alts.is_empty()
                && alts.iter().all(|a| crate::site::is_gvcf_other_allele(a)),
        };
        parse_samples(
            samples,
            gt_index,
            n_samples,
            n_alleles,
            ctx.sample_base,
            &mut acc,
            kept,
        )
        .map_err(|(field, reason)| err(&field, reason))?;
    }
    Ok(EncodedSite {
        contig,
        pos,
        end_pos,
        id: (id != ".").then(|| id.to_string()),
        ref_allele: ref_allele.to_string(),
        alts,
        qual,
        filters: (filter != ".").then(|| filter.to_string()),
        info,
        genotypes: acc.finish(),
        format: has_format.then_some(carriers),
    })
}

type FieldError = (String, String);

/// Where the kept FORMAT values of non-reference calls go.
struct KeptFormat<'a> {
    fields: &'a [FieldDef],
    /// Positions of the kept fields among the record's FORMAT keys; `None` when it has none.
    positions: Option<&'a [Option<usize>]>,
    carriers: &'a mut Vec<CarrierFormat>,
    /// Keep the values of called reference samples too (a gVCF reference block).
    reference_too: bool,
}

impl KeptFormat<'_> {
    fn add(
        &mut self,
        sample_idx: u32,
        column: &[u8],
        alleles: impl IntoIterator<Item = Option<u32>>,
    ) -> std::result::Result<(), FieldError> {
        let Some(positions) = self.positions else {
            return Ok(());
        };
        let alleles: Vec<Option<u32>> = alleles.into_iter().collect();
        let alts = called_alts(alleles.iter().copied());
        if !alts.is_empty() || (self.reference_too && alleles.iter().any(Option::is_some)) {
            let values = parse_vcf_sample(column, positions, self.fields)?;
            self.carriers.push(CarrierFormat {
                sample_idx,
                alts,
                values,
            });
        }
        Ok(())
    }
}

fn parse_samples(
    samples: &[u8],
    gt_index: Option<usize>,
    n_samples: usize,
    n_alleles: usize,
    base: u32,
    acc: &mut GenotypeAccumulator,
    mut kept: KeptFormat<'_>,
) -> std::result::Result<(), FieldError> {
    let mut alleles: Vec<Option<u32>> = Vec::with_capacity(4);
    let fast_max = b'0' + n_alleles.min(10) as u8;
    let fast = |c: u8| c.is_ascii_digit() && c < fast_max || c == b'.';
    let allele = |c: u8| (c != b'.').then(|| u32::from(c - b'0'));
    // Fastest path: GT-only columns of three bytes (`0|1\t`), while they last.
    let mut done = 0usize;
    let mut at = 0usize;
    if gt_index == Some(0) && kept.positions.is_none() {
        while done < n_samples {
            let Some(&[a, sep, b, next]) = samples
                .get(at..at + 4)
                .map(<&[u8; 4]>::try_from)
                .and_then(Result::ok)
            else {
                break;
            };
            if next != b'\t' || !(sep == b'|' || sep == b'/') || !fast(a) || !fast(b) {
                break;
            }
            acc.add_diploid(base + done as u32, allele(a), allele(b), sep == b'|');
            done += 1;
            at += 4;
        }
    }
    let mut count = done;
    for (j, field) in samples[at..].split(|&b| b == b'\t').enumerate() {
        let i = done + j;
        count += 1;
        if i >= n_samples {
            continue;
        }
        let sample = base + i as u32;
        let Some(gt_index) = gt_index else {
            acc.add_call(sample, &[], false);
            continue;
        };
        let gt = if gt_index == 0 {
            field.split(|&b| b == b':').next().unwrap_or_default()
        } else {
            field.split(|&b| b == b':').nth(gt_index).unwrap_or(b".")
        };
        // Fast path: one-digit alleles around one separator.
        if let [a, sep @ (b'|' | b'/'), b] = *gt
            && fast(a)
            && fast(b)
        {
            acc.add_diploid(sample, allele(a), allele(b), sep == b'|');
            if a > b'0' || b > b'0' || kept.reference_too {
                kept.add(sample, field, [allele(a), allele(b)])
                    .map_err(|(f, r)| (format!("{f} of sample {}", i + 1), r))?;
            }
            continue;
        }
        let phased = parse_gt(gt, n_alleles, &mut alleles)
            .map_err(|r| (format!("GT of sample {}", i + 1), r))?;
        acc.add_call(sample, &alleles, phased);
        kept.add(sample, field, alleles.iter().copied())
            .map_err(|(f, r)| (format!("{f} of sample {}", i + 1), r))?;
    }
    if count != n_samples {
        return Err((
            "samples".into(),
            format!("{count} sample columns, but the header names {n_samples} samples"),
        ));
    }
    Ok(())
}

/// Parses a GT value into `alleles`; returns whether it is phased.
fn parse_gt(
    gt: &[u8],
    n_alleles: usize,
    alleles: &mut Vec<Option<u32>>,
) -> std::result::Result<bool, String> {
    alleles.clear();
    let shown = || {
        String::from_utf8_lossy(gt)
            .chars()
            .take(40)
            .collect::<String>()
    };
    if gt.is_empty() || gt == b"." {
        alleles.push(None);
        return Ok(false);
    }
    // VCF 4.4 allows a leading phase marker on the first allele.
    let body = gt
        .strip_prefix(b"|")
        .or_else(|| gt.strip_prefix(b"/"))
        .unwrap_or(gt);
    let phased = body
        .iter()
        .find(|b| matches!(b, b'|' | b'/'))
        .map(|&b| b == b'|')
        .unwrap_or(gt.first() == Some(&b'|'));
    for part in body.split(|&b| b == b'|' || b == b'/') {
        if alleles.len() >= MAX_PLOIDY {
            return Err(format!("ploidy above {MAX_PLOIDY} in {:?}", shown()));
        }
        if part == b"." {
            alleles.push(None);
            continue;
        }
        let index = std::str::from_utf8(part)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| {
                format!(
                    "allele {:?} in {:?} is not a number or '.'",
                    String::from_utf8_lossy(part),
                    shown()
                )
            })?;
        if index as usize >= n_alleles {
            return Err(format!(
                "allele index {index} in {:?}, but the site has {n_alleles} alleles",
                shown()
            ));
        }
        alleles.push(Some(index));
    }
    Ok(phased)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcf_header::Header;

    fn header() -> Header {
        Header::parse("##INFO=<ID=AF,Number=A,Type=Float,Description=\"x\">\n##INFO=<ID=END,Number=1,Type=Integer,Description=\"x\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\n").unwrap()
    }

    fn parse(line: &str) -> Result<EncodedSite> {
        let h = header();
        let ctx = RecordContext {
            file: "t.vcf",
            header: &h,
            sample_base: 0,
            format_fields: &[],
            keep_reference_blocks: false,
        };
        parse_vcf_line(line.as_bytes(), RecordLocation::Line(9), &ctx)
    }

    #[test]
    fn parses_fast_and_general_genotypes() {
        let site = parse("20\t5\trs1\tA\tC,G\t10\tPASS\tAF=0.1,0.2\tGT:DP\t0|1:3\t12/2:4\t2\r")
            .unwrap_err();
        assert!(site.to_string().contains("allele index 12"), "{site}");
        let site =
            parse("20\t5\trs1\tA\tC,G\t10\tPASS\tAF=0.1,0.2\tGT:DP\t0|1:3\t1/2:4\t2").unwrap();
        assert_eq!(site.alts, ["C", "G"]);
        let c = &site.genotypes.alt_counts;
        assert_eq!((c[0].ac, c[1].ac, site.genotypes.an), (2, 2, 5));
    }

    #[test]
    fn errors_name_line_field_and_reason() {
        let e = parse("20\t0\t.\tA\tC\t.\t.\t.\tGT\t0/0\t0/0\t0/0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 9") && e.contains("POS"), "{e}");
        let e = parse("20\t5\t.\tA\tC\t.\t.\t.\tGT\t0/0\t0/0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 sample columns"), "{e}");
        let e = parse("20\t5\t.\tA\tC\thigh\t.\t.\tGT\t0/0\t0/0\t0/0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("QUAL"), "{e}");
        let e = parse("20\t5\t.\tA\tC\t.\t.\tEND=2\tGT\t0/0\t0/A\t0/0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("END"), "{e}");
    }
}
