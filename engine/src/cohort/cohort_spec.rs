//! How a caller names a cohort: everyone, sample lists as bcftools takes them (`-s A,B`,
//! `-s ^A,B`, `-S file`, `-S ^file`), a predicate over `samples` and `phenotypes`, or a saved
//! name (`@NAME`). [`crate::CohortEngine::cohort`] resolves every kind.

use std::collections::HashMap;

use cohortdb_store::sample_registry::SampleRecord;
use roaring::RoaringBitmap;

use crate::error::{EngineError, Result};

/// Which participants an operation covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CohortSpec {
    /// Every participant.
    #[default]
    All,
    /// Only these sample IDs.
    Include(Vec<String>),
    /// Everyone except these sample IDs.
    Exclude(Vec<String>),
    /// Those a SQL boolean expression over the columns of `samples` and of the phenotype table
    /// `phenotypes` (joined on `sample_idx`; no phenotype row: NULLs) chooses.
    Predicate(String),
    /// A saved cohort (`cohortdb cohort save`), by name.
    Named(String),
}

impl From<&str> for CohortSpec {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<&String> for CohortSpec {
    fn from(text: &String) -> Self {
        Self::parse(text)
    }
}

impl From<&CohortSpec> for CohortSpec {
    fn from(spec: &CohortSpec) -> Self {
        spec.clone()
    }
}

impl CohortSpec {
    /// Parses `--cohort` text: blank for everyone, `@NAME` for a saved cohort, otherwise a
    /// predicate.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "" => Self::All,
            given => match given.strip_prefix('@') {
                Some(name) => Self::Named(name.to_string()),
                None => Self::Predicate(given.to_string()),
            },
        }
    }

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

    /// Reads `-S` file: one ID per line, `^file` excludes. Blank lines and `#` comments are
    /// skipped; a line of several columns is refused (as bcftools refuses it) rather than read
    /// by its first.
    pub fn from_file(arg: &str) -> Result<Self> {
        let (exclude, path) = match arg.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, arg),
        };
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_string(),
            source,
        })?;
        let mut ids = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                [id] => ids.push(id.to_string()),
                [first, ..] => {
                    return Err(EngineError::InvalidArgument(format!(
                        "{path} line {}: one sample ID per line, found {} columns ({line:?}); \
                         keep the first with `cut -f1 {path}`, if {first:?} is the ID",
                        i + 1,
                        fields.len()
                    )));
                }
            }
        }
        Ok(if exclude {
            Self::Exclude(ids)
        } else {
            Self::Include(ids)
        })
    }

    /// The selected `sample_idx` values among `samples`, without `withdrawn` ones. An unknown ID
    /// is an error (as bcftools without `--force-samples`).
    pub(crate) fn resolve(
        &self,
        samples: &[SampleRecord],
        withdrawn: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        self.resolve_ids(
            samples.iter().map(|s| (s.sample_idx, s.sample_id.as_str())),
            withdrawn,
        )
    }

    /// [`CohortSpec::resolve`] over `(sample_idx, sample_id)` pairs, for callers holding
    /// the registry in another form (the engine reads it straight from Arrow arrays).
    pub(crate) fn resolve_ids<'a>(
        &self,
        samples: impl Iterator<Item = (u32, &'a str)>,
        withdrawn: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let chosen = match self {
            Self::All => samples.map(|(idx, _)| idx).collect(),
            Self::Include(ids) => Self::lookup(ids, samples, None)?,
            Self::Exclude(ids) => {
                let mut all = RoaringBitmap::new();
                let excluded = Self::lookup(ids, samples, Some(&mut all))?;
                all - excluded
            }
            Self::Predicate(_) | Self::Named(_) => {
                return Err(EngineError::InvalidArgument(
                    "a predicate or named cohort is not a sample list".into(),
                ));
            }
        };
        Ok(chosen - withdrawn)
    }

    /// [`CohortSpec::resolve_ids`] of a sample list through an index: `find` gives an ID's
    /// `sample_idx`, `registered` every registered one.
    pub(crate) fn resolve_with(
        &self,
        find: impl Fn(&str) -> Option<u32> + Sync,
        registered: &[u32],
        withdrawn: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let chosen = match self {
            Self::Include(ids) => indices_of(ids, |id| find(id))?,
            Self::Exclude(ids) => {
                let all: RoaringBitmap = registered.iter().copied().collect();
                all - indices_of(ids, |id| find(id))?
            }
            Self::All | Self::Predicate(_) | Self::Named(_) => {
                return Err(EngineError::InvalidArgument(
                    "only a sample list resolves through the ID index".into(),
                ));
            }
        };
        Ok(chosen - withdrawn)
    }

    /// The indices of `ids` (an error for an unknown one), indexing only the requested IDs;
    /// every registered index is added to `all`, if given, on the way.
    fn lookup<'a>(
        ids: &[String],
        samples: impl Iterator<Item = (u32, &'a str)>,
        mut all: Option<&mut RoaringBitmap>,
    ) -> Result<RoaringBitmap> {
        let mut found: HashMap<&str, Option<u32>, foldhash::fast::RandomState> =
            ids.iter().map(|id| (id.as_str(), None)).collect();
        for (idx, id) in samples {
            if let Some(all) = all.as_deref_mut() {
                all.insert(idx);
            }
            if let Some(slot) = found.get_mut(id) {
                *slot = Some(idx);
            }
        }
        indices_of(ids, |id| found.get(id).copied().flatten())
    }
}

/// The indices `find` gives `ids` (an error for an unknown one), as a bitmap built from the
/// sorted indices: inserting 100,000 indices in list order took longer than finding them.
fn indices_of(ids: &[String], find: impl Fn(&str) -> Option<u32> + Sync) -> Result<RoaringBitmap> {
    use rayon::prelude::*;
    // A lookup is a few cache misses (table, offsets, ID bytes): a list of 100,000 IDs among
    // 10^6 takes tens of milliseconds on one core, so long lists are looked up on every core.
    let looked_up: Vec<Option<u32>> = if ids.len() >= 16_384 {
        ids.par_iter().map(|id| find(id)).collect()
    } else {
        ids.iter().map(|id| find(id)).collect()
    };
    if looked_up.iter().any(Option::is_none) {
        let unknown = ids.iter().zip(&looked_up).filter(|(_, i)| i.is_none());
        return Err(EngineError::unknown_samples(
            unknown.map(|(id, _)| id.clone()),
        ));
    }
    let mut indices: Vec<u32> = looked_up.into_iter().flatten().collect();
    indices.par_sort_unstable();
    indices.dedup();
    Ok(RoaringBitmap::from_sorted_iter(indices).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_resolves_lists_as_the_registry_pass_does() {
        let ids = ["A", "B", "C", "D"];
        let samples: Vec<SampleRecord> = ids
            .iter()
            .enumerate()
            .map(|(i, s)| SampleRecord {
                sample_idx: 10 + i as u32,
                sample_id: s.to_string(),
                source: "x".into(),
            })
            .collect();
        let registered: Vec<u32> = samples.iter().map(|s| s.sample_idx).collect();
        let find = |id: &str| ids.iter().position(|x| *x == id).map(|i| 10 + i as u32);
        let withdrawn: RoaringBitmap = [12].into_iter().collect();
        for list in ["D,A,C", "^B", "^B,D", "A,A"] {
            let spec = CohortSpec::from_list(list);
            assert_eq!(
                spec.resolve_with(find, &registered, &withdrawn).unwrap(),
                spec.resolve(&samples, &withdrawn).unwrap(),
                "{list}"
            );
        }
        let unknown = CohortSpec::from_list("A,Z").resolve_with(find, &registered, &withdrawn);
        assert!(matches!(unknown, Err(EngineError::UnknownSamples { .. })));
    }

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
        let got = CohortSpec::from_list("A,C")
            .resolve(&samples, &none)
            .unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), [0, 2]);
        let got = CohortSpec::from_list("^A")
            .resolve(&samples, &none)
            .unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), [1, 2]);
        let withdrawn: RoaringBitmap = [1u32].into_iter().collect();
        assert_eq!(
            CohortSpec::All.resolve(&samples, &withdrawn).unwrap().len(),
            2
        );
        assert_eq!(CohortSpec::parse(" "), CohortSpec::All);
        assert_eq!(CohortSpec::parse("@tall"), CohortSpec::Named("tall".into()));
        assert_eq!(
            CohortSpec::parse("age > 40"),
            CohortSpec::Predicate("age > 40".into())
        );
        assert!(CohortSpec::from_list("Z").resolve(&samples, &none).is_err());
    }
}
