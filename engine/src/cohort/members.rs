//! A cohort as the operations take it: the participants chosen, and, at the aggregate tier,
//! the release whose noise and budget its counts use ([`crate::policy::disclosure_control`]).

use roaring::RoaringBitmap;

use crate::policy::disclosure_control::ReleaseKey;

/// Participants (`sample_idx`, withdrawn ones never included) admitted for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cohort {
    set: RoaringBitmap,
    release: Option<ReleaseKey>,
}

impl Cohort {
    /// A cohort of `set` with no release: what the admin and record tiers use.
    pub fn new(set: RoaringBitmap) -> Self {
        Self { set, release: None }
    }

    pub(crate) fn released(set: RoaringBitmap, release: ReleaseKey) -> Self {
        Self {
            set,
            release: Some(release),
        }
    }

    /// The participants.
    pub fn set(&self) -> &RoaringBitmap {
        &self.set
    }

    /// The participants, taken out.
    pub fn into_set(self) -> RoaringBitmap {
        self.set
    }

    /// The release the aggregate tier admitted this cohort as.
    pub(crate) fn release(&self) -> Option<&ReleaseKey> {
        self.release.as_ref()
    }
}

impl std::ops::Deref for Cohort {
    type Target = RoaringBitmap;

    fn deref(&self) -> &RoaringBitmap {
        &self.set
    }
}

impl From<RoaringBitmap> for Cohort {
    fn from(set: RoaringBitmap) -> Self {
        Self::new(set)
    }
}
