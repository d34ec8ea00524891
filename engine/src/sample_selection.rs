//! Sample selections as bcftools takes them: `-s A,B`, `-s ^A,B`, `-S file`, `-S ^file`.

use std::collections::HashMap;

use cohortdb_store::sample_registry::SampleRecord;
use roaring::RoaringBitmap;

use crate::error::{EngineError, Result};

/// Which samples an operation covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SampleSelection {
    /// Every registered sample.
    #[default]
    All,
    /// Only these IDs.
    Include(Vec<String>),
    /// Every sample except these IDs.
    Exclude(Vec<String>),
}

impl SampleSelection {
    /// Parses `-s` text: comma-separated IDs, a leading `^` excludes them.
    pub fn from_list(text: &str) -> Self {
        let (exclude, list) = match text.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let ids = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if exclude {
            Self::Exclude(ids)
        } else {
            Self::Include(ids)
        }
    }

    /// Reads `-S` file: one ID per line (first whitespace-separated column), `^file` excludes.
    pub fn from_file(arg: &str) -> Result<Self> {
        let (exclude, path) = match arg.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, arg),
        };
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_string(),
            source,
        })?;
        let ids = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|s| !s.starts_with('#'))
            .map(str::to_string)
            .collect();
        Ok(if exclude {
            Self::Exclude(ids)
        } else {
            Self::Include(ids)
        })
    }

    /// The selected `sample_idx` values among `samples`, without `withdrawn` ones. An unknown ID
    /// is an error (as bcftools without `--force-samples`).
    pub fn resolve(
        &self,
        samples: &[SampleRecord],
        withdrawn: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        // Index the requested IDs (a few), not the registry (up to millions).
        let lookup = |ids: &[String]| -> Result<RoaringBitmap> {
            let mut found: HashMap<&str, Option<u32>> =
                ids.iter().map(|id| (id.as_str(), None)).collect();
            for s in samples {
                if let Some(slot) = found.get_mut(s.sample_id.as_str()) {
                    *slot = Some(s.sample_idx);
                }
            }
            ids.iter()
                .map(|id| {
                    found.get(id.as_str()).copied().flatten().ok_or_else(|| {
                        EngineError::UnknownSample {
                            sample_id: id.clone(),
                        }
                    })
                })
                .collect()
        };
        let mut idx: Vec<u32> = samples.iter().map(|s| s.sample_idx).collect();
        idx.sort_unstable();
        let all = RoaringBitmap::from_sorted_iter(idx).unwrap_or_default();
        let chosen = match self {
            Self::All => all,
            Self::Include(ids) => lookup(ids)?,
            Self::Exclude(ids) => all - lookup(ids)?,
        };
        Ok(chosen - withdrawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_exclude_and_unknown() {
        let samples: Vec<SampleRecord> = ["A", "B", "C"]
            .iter()
            .enumerate()
            .map(|(i, s)| SampleRecord {
                sample_idx: i as u32,
                sample_id: s.to_string(),
                source: "x".into(),
            })
            .collect();
        let none = RoaringBitmap::new();
        let got = SampleSelection::from_list("A,C")
            .resolve(&samples, &none)
            .unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), [0, 2]);
        let got = SampleSelection::from_list("^A")
            .resolve(&samples, &none)
            .unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), [1, 2]);
        let withdrawn: RoaringBitmap = [1u32].into_iter().collect();
        assert_eq!(
            SampleSelection::All
                .resolve(&samples, &withdrawn)
                .unwrap()
                .len(),
            2
        );
        assert!(
            SampleSelection::from_list("Z")
                .resolve(&samples, &none)
                .is_err()
        );
    }
}
