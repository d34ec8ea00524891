//! Tabix (`.tbi`) and CSI (`.csi`) indexes over a BGZF file, built while records are written
//! (htslib's binning scheme: 16 kb windows, 6 levels; specification "CSIv1" and "Tabix").

use std::collections::BTreeMap;

use crate::export::bgzf_writer::bgzf_compress;

const MIN_SHIFT: u32 = 14;
const DEPTH: u32 = 5;
/// The pseudo-bin holding a reference's file span and record counts.
const META_BIN: u32 = 37450;

/// Which index to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Tabix, for bgzipped VCF.
    Tbi,
    /// CSI, for BCF or bgzipped VCF.
    Csi,
}

#[derive(Default)]
struct Reference {
    bins: BTreeMap<u32, Vec<(u64, u64)>>,
    linear: Vec<u64>,
    first_offset: u64,
    last_offset: u64,
    records: u64,
}

/// Collects (reference, interval, virtual offsets) of records in file order.
pub struct IndexBuilder {
    kind: IndexKind,
    names: Vec<String>,
    references: Vec<Reference>,
    /// Whether the file is VCF text (tabix configuration is written) rather than BCF.
    vcf_text: bool,
}

/// htslib's `hts_reg2bin` for 0-based, half-open `[beg, end)`.
fn reg2bin(beg: u64, end: u64) -> u32 {
    let end = end.max(beg + 1) - 1;
    let mut shift = MIN_SHIFT;
    let mut first = ((1u32 << (3 * DEPTH + 3)) - 1) / 7;
    for level in (1..=DEPTH).rev() {
        first -= 1 << (3 * level);
        if beg >> shift == end >> shift {
            return first + (beg >> shift) as u32;
        }
        shift += 3;
    }
    0
}

/// The first position a bin covers.
fn bin_start(bin: u32) -> u64 {
    let mut level = 0;
    let mut first = 0u32;
    while level < DEPTH && bin >= first + (1 << (3 * level)) {
        first += 1 << (3 * level);
        level += 1;
    }
    u64::from(bin - first) << (MIN_SHIFT + 3 * (DEPTH - level))
}

impl IndexBuilder {
    /// A builder for an index of `kind`; `vcf_text` for bgzipped VCF, false for BCF.
    pub fn new(kind: IndexKind, vcf_text: bool) -> Self {
        Self {
            kind,
            names: Vec::new(),
            references: Vec::new(),
            vcf_text,
        }
    }

    /// Declares reference `id` named `name` (ids are dense, from 0, in header order for BCF).
    pub fn reference(&mut self, id: usize, name: &str) {
        while self.references.len() <= id {
            self.references.push(Reference::default());
            self.names.push(String::new());
        }
        self.names[id] = name.to_string();
    }

    /// Adds a record on reference `id` covering 0-based `[beg, end)`, stored between virtual
    /// offsets `start` and `stop`.
    pub fn push(&mut self, id: usize, beg: u64, end: u64, start: u64, stop: u64) {
        let end = end.max(beg + 1);
        let r = &mut self.references[id];
        if r.records == 0 {
            r.first_offset = start;
        }
        r.records += 1;
        r.last_offset = stop;
        let chunks = r.bins.entry(reg2bin(beg, end)).or_default();
        match chunks.last_mut() {
            Some(last) if last.1 == start => last.1 = stop,
            _ => chunks.push((start, stop)),
        }
        let (first, last) = (
            (beg >> MIN_SHIFT) as usize,
            ((end - 1) >> MIN_SHIFT) as usize,
        );
        if r.linear.len() <= last {
            r.linear.resize(last + 1, u64::MAX);
        }
        for slot in &mut r.linear[first..=last] {
            if *slot == u64::MAX {
                *slot = start;
            }
        }
    }

    fn tabix_conf(&self) -> Vec<u8> {
        let mut names = Vec::new();
        for n in &self.names {
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let mut out = Vec::new();
        // format VCF, sequence column 1, begin column 2, no end column, '#' comments, skip 0.
        for v in [2i32, 1, 2, 0, i32::from(b'#'), 0, names.len() as i32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&names);
        out
    }

    /// The index file's bytes (BGZF-compressed).
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let put32 = |out: &mut Vec<u8>, v: i32| out.extend_from_slice(&v.to_le_bytes());
        let put64 = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        match self.kind {
            IndexKind::Tbi => {
                out.extend_from_slice(b"TBI\x01");
                put32(&mut out, self.references.len() as i32);
                out.extend_from_slice(&self.tabix_conf()[..]);
            }
            IndexKind::Csi => {
                out.extend_from_slice(b"CSI\x01");
                put32(&mut out, MIN_SHIFT as i32);
                put32(&mut out, DEPTH as i32);
                let aux = if self.vcf_text {
                    self.tabix_conf()
                } else {
                    Vec::new()
                };
                put32(&mut out, aux.len() as i32);
                out.extend_from_slice(&aux);
                put32(&mut out, self.references.len() as i32);
            }
        }
        for r in &mut self.references {
            // Windows before the first record point at it; gaps take the previous window's.
            let mut previous = r.first_offset;
            for slot in &mut r.linear {
                if *slot == u64::MAX {
                    *slot = previous;
                }
                previous = *slot;
            }
            let meta = r.records > 0;
            put32(&mut out, (r.bins.len() + usize::from(meta)) as i32);
            for (bin, chunks) in &r.bins {
                out.extend_from_slice(&bin.to_le_bytes());
                if self.kind == IndexKind::Csi {
                    let window = (bin_start(*bin) >> MIN_SHIFT) as usize;
                    put64(
                        &mut out,
                        r.linear.get(window).copied().unwrap_or(r.last_offset),
                    );
                }
                put32(&mut out, chunks.len() as i32);
                for (a, b) in chunks {
                    put64(&mut out, *a);
                    put64(&mut out, *b);
                }
            }
            if meta {
                out.extend_from_slice(&META_BIN.to_le_bytes());
                if self.kind == IndexKind::Csi {
                    put64(&mut out, 0);
                }
                put32(&mut out, 2);
                put64(&mut out, r.first_offset);
                put64(&mut out, r.last_offset);
                put64(&mut out, r.records);
                put64(&mut out, 0);
            }
            if self.kind == IndexKind::Tbi {
                put32(&mut out, r.linear.len() as i32);
                for v in &r.linear {
                    put64(&mut out, *v);
                }
            }
        }
        bgzf_compress(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_htslib() {
        // Values from htslib's hts_reg2bin.
        assert_eq!(reg2bin(0, 1), 4681);
        assert_eq!(reg2bin(16384, 16385), 4682);
        assert_eq!(reg2bin(0, 16385), 585);
        assert_eq!(reg2bin(0, 1 << 29), 0);
        assert_eq!(bin_start(4682), 16384);
        assert_eq!(bin_start(585), 0);
        assert_eq!(bin_start(586), 1 << 17);
        assert_eq!(bin_start(0), 0);
    }
}
