//! bcftools-style regions: `chr20`, `chr20:1000`, `chr20:1000-2000`, `chr20:1000-` (1-based,
//! inclusive), and regions files (`CHROM<TAB>POS` or `CHROM<TAB>BEG<TAB>END`, 1-based; a
//! `.bed` file is 0-based half-open).
//!
//! As `bcftools view -r`, a record is in a region when it overlaps it: `pos <= end` and
//! `end_pos >= start`.

use crate::error::{EngineError, Result};

/// A region on one contig; `start` and `end` are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Region {
    /// Contig name.
    pub contig: String,
    /// First position (1-based, inclusive).
    pub start: i64,
    /// Last position (1-based, inclusive).
    pub end: i64,
}

impl Region {
    /// Parses one region.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| EngineError::Region {
            region: text.to_string(),
            reason: reason.to_string(),
        };
        let text_trim = text.trim();
        if text_trim.is_empty() {
            return Err(bad("empty region"));
        }
        let (contig, range) = match text_trim.rsplit_once(':') {
            Some((c, r))
                if !r.is_empty()
                    && r.chars()
                        .all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ',') =>
            {
                (c, Some(r))
            }
            _ => (text_trim, None),
        };
        let number = |s: &str| {
            s.replace(',', "")
                .parse::<i64>()
                .map_err(|_| bad("positions must be whole numbers"))
        };
        let (start, end) = match range {
            None => (1, i64::MAX),
            Some(r) => match r.split_once('-') {
                None => {
                    let p = number(r)?;
                    (p, p)
                }
                Some((s, "")) => (number(s)?, i64::MAX),
                Some((s, e)) => (number(s)?, number(e)?),
            },
        };
        if start < 1 {
            return Err(bad("positions are 1-based: the start must be >= 1"));
        }
        if end < start {
            return Err(bad("the end is before the start"));
        }
        Ok(Self {
            contig: contig.to_string(),
            start,
            end,
        })
    }

    /// Parses a comma-separated list of regions.
    pub fn parse_list(text: &str) -> Result<Vec<Self>> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Self::parse)
            .collect()
    }

    /// Reads a regions file.
    pub fn read_file(path: &str) -> Result<Vec<Self>> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_string(),
            source,
        })?;
        let bed = path.ends_with(".bed") || path.ends_with(".bed.gz");
        let mut regions = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty()
                || line.starts_with('#')
                || line.starts_with("track")
                || line.starts_with("browser")
            {
                continue;
            }
            let bad = |reason: &str| EngineError::Region {
                region: format!("{path} line {}", i + 1),
                reason: reason.to_string(),
            };
            let cols: Vec<&str> = line.split('\t').collect();
            let num = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| bad("positions must be whole numbers"))
            };
            let (start, end) = match cols.as_slice() {
                [_, p] => (num(p)?, num(p)?),
                [_, b, e, ..] if bed => (num(b)? + 1, num(e)?),
                [_, b, e, ..] => (num(b)?, num(e)?),
                _ => return Err(bad("expected CHROM<TAB>POS or CHROM<TAB>BEG<TAB>END")),
            };
            if start < 1 || end < start {
                return Err(bad("invalid interval"));
            }
            regions.push(Self {
                contig: cols[0].to_string(),
                start,
                end,
            });
        }
        Ok(regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bcftools_forms() {
        assert_eq!(
            Region::parse("chr20").unwrap(),
            Region {
                contig: "chr20".into(),
                start: 1,
                end: i64::MAX
            }
        );
        assert_eq!(Region::parse("chr20:1000").unwrap().end, 1000);
        assert_eq!(Region::parse("chr20:1,000-2,000").unwrap().start, 1000);
        assert_eq!(Region::parse("chr20:1000-").unwrap().end, i64::MAX);
        assert!(Region::parse("chr20:0-5").is_err());
        assert!(Region::parse("chr20:9-5").is_err());
    }
}
