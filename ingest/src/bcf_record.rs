//! Parses one BCF 2.x record (shared and per-sample parts) into an [`EncodedSite`].

use crate::error::{RecordLocation, Result};
use crate::format_fields::{CarrierFormat, called_alts};
use crate::genotype_accumulator::GenotypeAccumulator;
use crate::site::{EncodedSite, InfoValues};
use crate::site_fields::{RecordContext, check_alt, check_ref};
use crate::vcf_record::{MAX_ALLELES, MAX_PLOIDY};
use cohortdb_store::log_entry::ValueKind;

/// A typed BCF value: element type code and count.
#[derive(Debug, Clone, Copy)]
struct Typed {
    kind: u8,
    count: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.i32().map(|v| v as u32)
    }
    fn typed(&mut self) -> Option<Typed> {
        let d = self.u8()?;
        let mut count = usize::from(d >> 4);
        if count == 15 {
            let t = self.typed()?;
            let v = self.ints(t)?;
            count = usize::try_from(v.first().copied().flatten()?).ok()?;
        }
        Some(Typed {
            kind: d & 0x0f,
            count,
        })
    }
    fn width(kind: u8) -> Option<usize> {
        match kind {
            0 => Some(0),
            1 | 7 => Some(1),
            2 => Some(2),
            3 | 5 => Some(4),
            _ => None,
        }
    }
    /// Integers; `None` = missing; vector-end values are dropped.
    fn ints(&mut self, t: Typed) -> Option<Vec<Option<i32>>> {
        let w = Self::width(t.kind)?;
        let raw = self.take(w.checked_mul(t.count)?)?;
        let mut out = Vec::with_capacity(t.count);
        for chunk in raw.chunks_exact(w.max(1)).take(t.count) {
            let (v, missing, end) = match t.kind {
                1 => (
                    i32::from(chunk[0] as i8),
                    i32::from(i8::MIN),
                    i32::from(i8::MIN) + 1,
                ),
                2 => (
                    i32::from(i16::from_le_bytes([chunk[0], chunk[1]])),
                    i32::from(i16::MIN),
                    i32::from(i16::MIN) + 1,
                ),
                3 => (
                    i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                    i32::MIN,
                    i32::MIN + 1,
                ),
                _ => return None,
            };
            if v == end {
                break;
            }
            out.push((v != missing).then_some(v));
        }
        Some(out)
    }
    fn floats(&mut self, t: Typed) -> Option<Vec<Option<f32>>> {
        let raw = self.take(4usize.checked_mul(t.count)?)?;
        let mut out = Vec::with_capacity(t.count);
        for c in raw.chunks_exact(4) {
            let bits = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            match bits {
                0x7F80_0002 => break,
                0x7F80_0001 => out.push(None),
                _ => out.push(Some(f32::from_bits(bits))),
            }
        }
        Some(out)
    }
    fn string(&mut self, t: Typed) -> Option<String> {
        let raw = self.take(t.count)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8(raw[..end].to_vec()).ok()
    }
    fn skip(&mut self, t: Typed) -> Option<()> {
        self.take(Self::width(t.kind)?.checked_mul(t.count)?)
            .map(|_| ())
    }
}

/// Parses one record: `shared` and `indiv` are its two parts.
pub fn parse_bcf_record(
    shared: &[u8],
    indiv: &[u8],
    location: RecordLocation,
    ctx: &RecordContext<'_>,
) -> Result<EncodedSite> {
    let bad = |field: &str, reason: &str| ctx.error(location, None, field, reason.to_string());
    let mut c = Cursor {
        bytes: shared,
        at: 0,
    };
    let truncated = "the record is truncated or malformed";
    let chrom = c.i32().ok_or_else(|| bad("CHROM", truncated))?;
    let contig = usize::try_from(chrom)
        .ok()
        .and_then(|i| ctx.header.contig_dict.get(i))
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| {
            bad(
                "CHROM",
                &format!("contig index {chrom} is not in the header"),
            )
        })?;
    let pos0 = c.i32().ok_or_else(|| bad("POS", truncated))?;
    let pos = i64::from(pos0) + 1;
    if pos < 1 {
        return Err(bad("POS", &format!("position {pos} is not >= 1")));
    }
    let site = Some((contig.as_str(), pos));
    let err = |field: &str, reason: String| ctx.error(location, site, field, reason);
    let rlen = c.i32().ok_or_else(|| err("rlen", truncated.into()))?;
    let qual_bits = c.u32().ok_or_else(|| err("QUAL", truncated.into()))?;
    let qual = (qual_bits != 0x7F80_0001).then(|| f32::from_bits(qual_bits));
    let n_allele_info = c.u32().ok_or_else(|| err("n_info", truncated.into()))?;
    let n_fmt_sample = c.u32().ok_or_else(|| err("n_sample", truncated.into()))?;
    let (n_info, n_allele) = (
        (n_allele_info & 0xffff) as usize,
        (n_allele_info >> 16) as usize,
    );
    let (n_sample, n_fmt) = (
        (n_fmt_sample & 0x00ff_ffff) as usize,
        (n_fmt_sample >> 24) as usize,
    );
    if n_sample != ctx.header.samples.len() {
        return Err(err(
            "n_sample",
            format!(
                "{n_sample} samples, but the header names {}",
                ctx.header.samples.len()
            ),
        ));
    }
    if n_allele == 0 || n_allele > MAX_ALLELES {
        return Err(err("n_allele", format!("{n_allele} alleles")));
    }
    let t = c.typed().ok_or_else(|| err("ID", truncated.into()))?;
    let id = c.string(t).ok_or_else(|| err("ID", truncated.into()))?;
    let mut alleles = Vec::with_capacity(n_allele);
    for _ in 0..n_allele {
        let t = c.typed().ok_or_else(|| err("ALT", truncated.into()))?;
        alleles.push(c.string(t).ok_or_else(|| err("ALT", truncated.into()))?);
    }
    let ref_allele = alleles.remove(0);
    if let Some(reason) = check_ref(&ref_allele) {
        return Err(err("REF", reason));
    }
    if let Some(reason) = alleles.iter().find_map(|a| check_alt(a)) {
        return Err(err("ALT", reason));
    }
    let t = c.typed().ok_or_else(|| err("FILTER", truncated.into()))?;
    let filter_ids = c.ints(t).ok_or_else(|| err("FILTER", truncated.into()))?;
    let filters = if filter_ids.is_empty() {
        None
    } else {
        let names: Option<Vec<&str>> = filter_ids
            .iter()
            .map(|i| {
                i.and_then(|i| ctx.header.string_dict.get(i as usize))
                    .map(String::as_str)
            })
            .collect();
        Some(
            names
                .ok_or_else(|| err("FILTER", "filter index not in the header".into()))?
                .join(";"),
        )
    };
    let mut info = Vec::new();
    let mut end_pos = pos + i64::from(rlen.max(1)) - 1;
    for _ in 0..n_info {
        let kt = c.typed().ok_or_else(|| err("INFO", truncated.into()))?;
        let key = c
            .ints(kt)
            .and_then(|k| k.first().copied().flatten())
            .ok_or_else(|| err("INFO", truncated.into()))?;
        let key_name = ctx
            .header
            .string_dict
            .get(key as usize)
            .cloned()
            .unwrap_or_default();
        let vt = c
            .typed()
            .ok_or_else(|| err(&format!("INFO/{key_name}"), truncated.into()))?;
        let Some(def_idx) = ctx.header.info_index(&key_name) else {
            c.skip(vt)
                .ok_or_else(|| err(&format!("INFO/{key_name}"), truncated.into()))?;
            continue;
        };
        let values = match vt.kind {
            0 => InfoValues::Flag,
            1..=3 => InfoValues::Int(
                c.ints(vt)
                    .ok_or_else(|| err(&format!("INFO/{key_name}"), truncated.into()))?,
            ),
            5 => InfoValues::Float(
                c.floats(vt)
                    .ok_or_else(|| err(&format!("INFO/{key_name}"), truncated.into()))?,
            ),
            7 => {
                let s = c
                    .string(vt)
                    .ok_or_else(|| err(&format!("INFO/{key_name}"), truncated.into()))?;
                InfoValues::Text(
                    s.split(',')
                        .map(|p| (p != ".").then(|| p.to_string()))
                        .collect(),
                )
            }
            k => {
                return Err(err(
                    &format!("INFO/{key_name}"),
                    format!("unknown BCF type {k}"),
                ));
            }
        };
        let values = match (ctx.header.info.get(def_idx).map(|d| d.kind), values) {
            (Some(cohortdb_store::log_entry::ValueKind::Flag), _) => InfoValues::Flag,
            (_, v) => v,
        };
        if key_name == "END"
            && let InfoValues::Int(v) = &values
            && let Some(Some(end)) = v.first()
        {
            end_pos = i64::from(*end).max(pos);
        }
        info.push((def_idx, values));
    }
    let mut acc = GenotypeAccumulator::new(n_allele, ctx.sample_base, n_sample);
    // A gVCF reference block keeps the values of its called reference samples too.
    let reference_too = ctx.keep_reference_blocks
        && !alleles.is_empty()
        && alleles.iter().all(|a| crate::site::is_gvcf_other_allele(a));
    let gt_key = ctx.header.string_dict.iter().position(|s| s == "GT");
    let mut c = Cursor {
        bytes: indiv,
        at: 0,
    };
    let mut saw_gt = false;
    // Kept FORMAT fields: (index in ctx.format_fields, type, offset of the first sample).
    let mut kept: Vec<(usize, Typed, usize)> = Vec::new();
    let mut carriers: Vec<CarrierFormat> = Vec::new();
    for _ in 0..n_fmt {
        let kt = c.typed().ok_or_else(|| err("FORMAT", truncated.into()))?;
        let key = c
            .ints(kt)
            .and_then(|k| k.first().copied().flatten())
            .ok_or_else(|| err("FORMAT", truncated.into()))?;
        let vt = c.typed().ok_or_else(|| err("FORMAT", truncated.into()))?;
        if Some(key as usize) != gt_key {
            let per = Cursor::width(vt.kind)
                .ok_or_else(|| err("FORMAT", format!("unknown BCF type {}", vt.kind)))?;
            let name = usize::try_from(key)
                .ok()
                .and_then(|k| ctx.header.string_dict.get(k));
            if let Some(f) = ctx.format_fields.iter().position(|d| Some(&d.id) == name) {
                kept.push((f, vt, c.at));
            }
            c.take(per * vt.count * n_sample)
                .ok_or_else(|| err("FORMAT", truncated.into()))?;
            continue;
        }
        saw_gt = true;
        if vt.count > MAX_PLOIDY {
            return Err(err(
                "FORMAT/GT",
                format!("ploidy {} exceeds {MAX_PLOIDY}", vt.count),
            ));
        }
        let mut alleles = Vec::with_capacity(vt.count);
        for s in 0..n_sample {
            let raw = c
                .ints(Typed {
                    kind: vt.kind,
                    count: vt.count,
                })
                .ok_or_else(|| err("FORMAT/GT", truncated.into()))?;
            alleles.clear();
            let mut phased = false;
            for (k, v) in raw.iter().enumerate() {
                // Encoding: (allele + 1) << 1 | phased; 0 (or 1) is a missing allele.
                let v = v.unwrap_or(0);
                if k == 1 {
                    phased = v & 1 == 1;
                }
                let allele = (v >> 1) - 1;
                if allele < 0 {
                    alleles.push(None);
                } else if allele as usize >= n_allele {
                    return Err(err(
                        &format!("GT of sample {}", s + 1),
                        format!("allele index {allele}, but the site has {n_allele} alleles"),
                    ));
                } else {
                    alleles.push(Some(allele as u32));
                }
            }
            acc.add_call(ctx.sample_base + s as u32, &alleles, phased);
            let alts = called_alts(alleles.iter().copied());
            if !alts.is_empty() || (reference_too && alleles.iter().any(Option::is_some)) {
                carriers.push(CarrierFormat {
                    sample_idx: s as u32,
                    alts,
                    values: Vec::new(),
                });
            }
        }
    }
    let has_format = !kept.is_empty();
    for carrier in &mut carriers {
        let s = carrier.sample_idx as usize;
        carrier.values = vec![InfoValues::Int(Vec::new()); ctx.format_fields.len()];
        for &(f, vt, start) in &kept {
            let per = Cursor::width(vt.kind).unwrap_or(0) * vt.count;
            let mut at = Cursor {
                bytes: indiv,
                at: start + s * per,
            };
            let def = &ctx.format_fields[f];
            let name = || format!("FORMAT/{} of sample {}", def.id, s + 1);
            let values = if vt.kind == 5 {
                at.floats(vt).map(InfoValues::Float)
            } else {
                at.ints(vt).map(InfoValues::Int)
            }
            .ok_or_else(|| err(&name(), truncated.into()))?;
            carrier.values[f] = match (def.kind, values) {
                (ValueKind::Float, InfoValues::Int(v)) => {
                    InfoValues::Float(v.into_iter().map(|x| x.map(|x| x as f32)).collect())
                }
                (_, v) => v,
            };
        }
        carrier.sample_idx += ctx.sample_base;
    }
    if !saw_gt {
        for s in 0..n_sample {
            acc.add_call(ctx.sample_base + s as u32, &[], false);
        }
    }
    Ok(EncodedSite {
        contig,
        pos,
        end_pos,
        id: (id != "." && !id.is_empty()).then_some(id),
        ref_allele,
        alts: if alleles.len() == 1 && alleles[0] == "." {
            Vec::new()
        } else {
            alleles
        },
        qual,
        filters,
        info,
        genotypes: acc.finish(),
        format: has_format.then_some(carriers),
    })
}
