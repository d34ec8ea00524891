//! Sample IDs to registry rows without copying an ID: a hash table of row numbers over the
//! registry's `sample_id` column. An engine builds it once, when a second sample list is
//! resolved (a server's): a one-shot command finds its list's IDs in one pass over the
//! registry instead, which costs less than building the table.

use std::hash::BuildHasher;

use datafusion::arrow::array::{Array, StringArray};
use hashbrown::HashTable;

/// The rows of a `sample_id` column by ID.
#[derive(Debug)]
pub(crate) struct SampleIds {
    rows: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
}

impl SampleIds {
    /// Indexes every non-null ID of `ids` (the registry's column; IDs are unique).
    pub fn new(ids: &StringArray) -> Self {
        let hasher = foldhash::fast::FixedState::default();
        let mut rows = HashTable::with_capacity(ids.len());
        for row in 0..ids.len() {
            if ids.is_valid(row) {
                let hash = hasher.hash_one(ids.value(row));
                rows.insert_unique(hash, row as u32, |&r| {
                    hasher.hash_one(ids.value(r as usize))
                });
            }
        }
        Self { rows, hasher }
    }

    /// The row of `id` in `ids` (the column it was built from).
    pub fn row(&self, ids: &StringArray, id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        self.rows
            .find(hash, |&r| ids.value(r as usize) == id)
            .map(|&r| r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_id_and_no_other() {
        let ids = StringArray::from(vec![Some("HG00096"), None, Some("NA12878"), Some("X")]);
        let index = SampleIds::new(&ids);
        assert_eq!(index.row(&ids, "NA12878"), Some(2));
        assert_eq!(index.row(&ids, "HG00096"), Some(0));
        assert_eq!(index.row(&ids, "Y"), None);
        assert_eq!(index.row(&ids, ""), None);
    }
}
