//! A cohort as the operations take it: the participants chosen, and, at the aggregate tier,
//! the release whose noise and budget its counts use ([`crate::policy::disclosure_control`]).

use roaring::RoaringBitmap;

use crate::policy::disclosure_control::ReleaseKey;

/// Participants (`sample_idx`, withdrawn ones never included) admitted for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cohort {
    set: RoaringBitmap,
    release: Option<ReleaseKey>,
    withdrawn_named: RoaringBitmap,
}

impl Cohort {
    /// A cohort of `set` with no release: what the admin and record tiers use.
    pub fn new(set: RoaringBitmap) -> Self {
        Self {
            set,
            release: None,
            withdrawn_named: RoaringBitmap::new(),
        }
    }

    /// The cohort, noting the withdrawn participants its sample list named (and that it left
    /// out).
    pub(crate) fn with_withdrawn_named(mut self, withdrawn: RoaringBitmap) -> Self {
        self.withdrawn_named = withdrawn;
        self
    }

    /// Withdrawn participants (`sample_idx`) that the sample list named explicitly and that
    /// the cohort leaves out, for callers to tell the user.
    pub fn withdrawn_named(&self) -> &RoaringBitmap {
        &self.withdrawn_named
    }

    pub(crate) fn released(set: RoaringBitmap, release: ReleaseKey) -> Self {
        Self {
            set,
            release: Some(release),
            withdrawn_named: RoaringBitmap::new(),
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
