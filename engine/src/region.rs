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
    /// Parses one region. A contig name that holds `:` is written in braces, as htslib takes
    /// it: `{HLA-A*01:01}:1-100`. Anything after the last `:` must be a position or a range;
    /// `chr22:abc` and `22 16050075` are refused rather than read as contig names.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| EngineError::Region {
            region: text.to_string(),
            reason: reason.to_string(),
        };
        let text_trim = text.trim();
        if text_trim.is_empty() {
            return Err(bad("empty region"));
        }
        let (contig, range) = if let Some(braced) = text_trim.strip_prefix('{') {
            let Some((contig, rest)) = braced.split_once('}') else {
                return Err(bad("no '}' closes the braced contig name"));
            };
            match rest {
                "" => (contig, None),
                _ => match rest.strip_prefix(':') {
                    Some(range) => (contig, Some(range)),
                    None => return Err(bad("expected ':' after the braced contig name")),
                },
            }
        } else {
            match text_trim.rsplit_once(':') {
                Some((contig, range)) => (contig, Some(range)),
                None => (text_trim, None),
            }
        };
        if contig.is_empty() {
            return Err(bad("no contig before ':'"));
        }
        if contig.chars().any(char::is_whitespace) || range.is_some_and(|r| r.contains(' ')) {
            return Err(bad(
                "a region has no spaces: write CHROM, CHROM:POS or CHROM:BEG-END (1-based)",
            ));
        }
        let number = |s: &str| {
            s.replace(',', "").parse::<i64>().map_err(|_| {
                bad(&format!(
                    "{s:?} is not a position: write CHROM, CHROM:POS or CHROM:BEG-END (1-based); \
                     a contig name holding ':' goes in braces, {{name}}"
                ))
            })
        };
        let (start, end) = match range {
            None => (1, i64::MAX),
            Some("") => return Err(bad("no position after ':'")),
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

    /// Refuses a region whose contig is not among `known` (the store's contigs), naming them
    /// and the spelling meant when only a `chr` prefix differs.
    pub fn check_contigs(regions: &[Self], known: &[String]) -> Result<()> {
        let Some(unknown) = regions.iter().find(|r| !known.contains(&r.contig)) else {
            return Ok(());
        };
        let contig = &unknown.contig;
        let flipped = match contig.strip_prefix("chr") {
            Some(bare) => bare.to_string(),
            None => format!("chr{contig}"),
        };
        let mut reason = format!("the store has no contig {contig:?}");
        if known.contains(&flipped) {
            reason.push_str(&format!(" (it names it {flipped:?})"));
        }
        const SHOWN: usize = 12;
        match known.len() {
            0 => reason.push_str("; it holds no records yet"),
            n => {
                let names = known.iter().take(SHOWN).cloned().collect::<Vec<_>>();
                reason.push_str(&format!("; its contigs: {}", names.join(", ")));
                if n > SHOWN {
                    reason.push_str(&format!(" and {} more", n - SHOWN));
                }
            }
        }
        Err(EngineError::Region {
            region: unknown.to_text(),
            reason,
        })
    }

    /// The region as `-r` takes it.
    pub fn to_text(&self) -> String {
        let contig = if self.contig.contains(':') {
            format!("{{{}}}", self.contig)
        } else {
            self.contig.clone()
        };
        match (self.start, self.end) {
            (1, i64::MAX) => contig,
            (s, i64::MAX) => format!("{contig}:{s}-"),
            (s, e) if s == e => format!("{contig}:{s}"),
            (s, e) => format!("{contig}:{s}-{e}"),
        }
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

    #[test]
    fn refuses_what_bcftools_cannot_parse() {
        for text in [
            "chr22:abc",
            "22:abc",
            "22 16050075",
            "22:",
            ":5",
            "{HLA:1",
            "22:1-x",
        ] {
            assert!(Region::parse(text).is_err(), "{text} was accepted");
        }
        let braced = Region::parse("{HLA-A*01:01}:5-9").unwrap();
        assert_eq!(
            (braced.contig.as_str(), braced.start, braced.end),
            ("HLA-A*01:01", 5, 9)
        );
        assert_eq!(braced.to_text(), "{HLA-A*01:01}:5-9");
        assert_eq!(Region::parse("{HLA-A*01:01}").unwrap().end, i64::MAX);
    }

    #[test]
    fn names_the_contigs_of_the_store() {
        let known = vec!["22".to_string()];
        let error = Region::check_contigs(&[Region::parse("chr22").unwrap()], &known)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(r#"no contig "chr22" (it names it "22")"#),
            "{error}"
        );
        assert!(Region::check_contigs(&[Region::parse("22:5").unwrap()], &known).is_ok());
        let none = Region::check_contigs(&[Region::parse("1").unwrap()], &[]).unwrap_err();
        assert!(none.to_string().contains("no records"), "{none}");
    }
}
