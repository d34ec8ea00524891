//! Disclosure control of the aggregate tier: calibrated noise that is the same for the same
//! question, and a per-project privacy budget kept in the store. Defended in
//! `docs/serving.md` ("Disclosure control").
//!
//! Invariants:
//! - A **release** is one cohort (a predicate, and the participants it chose in this
//!   snapshot) as seen by one project. Its key is HMAC-SHA-256(store noise key, predicate,
//!   SHA-256 of the members), so the same predicate over the same people has the same key in
//!   every request, server and restart, and any other predicate, or the same one after the
//!   members changed, has an unrelated key.
//! - Every count released about a cohort is `max(0, round(count + e))` with `e` Gaussian of
//!   standard deviation `noise_sd`, drawn from a PRF of the cell keyed by the release
//!   ([`CellNoise`]): asked again,
//!   a cell gets the same value, so repeating a question teaches nothing; a different
//!   question gets fresh noise and is charged.
//! - The first use of a release charges the project's budget [`SITE_SENSITIVITY_SQUARED`] /
//!   (2 `noise_sd`^2) (zCDP rho of the Gaussian mechanism for one site); a release that would
//!   take the project past its budget is refused before anything is computed. Charges are
//!   written to the store ([`cohortdb_store::privacy_ledger`]) before the answer leaves the
//!   server ([`DisclosureControl::flush`]).

use std::collections::HashSet;
use std::sync::Mutex;

use cohortdb_store::privacy_ledger::{Charge, PrivacyLedger};
use hmac::{Hmac, Mac};
use roaring::RoaringBitmap;
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// The default standard deviation of the noise added to each count.
pub const DEFAULT_NOISE_SD: f64 = 5.0;

/// The default privacy budget of a project, in zCDP rho per site.
pub const DEFAULT_PRIVACY_BUDGET: f64 = 2.0;

/// How far one participant can move the counts of one site (or coverage bin, or cohort size)
/// of one release, squared (L2): adding or removing a hom-alt diploid moves AC by 2, AN by 2,
/// the hom-alt count by 1 and, for the everyone release, the site's carriers (which decide
/// whether it is listed) by 1.
pub const SITE_SENSITIVITY_SQUARED: f64 = 10.0;

/// The key of one release (see the module's invariants).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReleaseKey([u8; 32]);

impl std::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReleaseKey({})", hex::encode(&self.0[..4]))
    }
}

impl ReleaseKey {
    /// The key in hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// SHA-256 of a set's members (little-endian `u32`s, ascending).
pub fn members_digest(set: &RoaringBitmap) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut buffer = Vec::with_capacity(4096);
    for value in set {
        buffer.extend_from_slice(&value.to_le_bytes());
        if buffer.len() >= 4096 {
            hasher.update(&buffer);
            buffer.clear();
        }
    }
    hasher.update(&buffer);
    hasher.finalize().into()
}

/// What a project has spent, as the engine keeps it between ledger writes.
#[derive(Debug, Default)]
struct Budget {
    charged: HashSet<String>,
    spent: f64,
    pending: Vec<Charge>,
    /// The last ledger file read or written.
    last_file: u64,
}

/// The noise key, noise level and budget of one project's aggregate-tier engines.
#[derive(Debug)]
pub struct DisclosureControl {
    key: [u8; 32],
    noise_sd: f64,
    project: String,
    budget: f64,
    ledger: Option<PrivacyLedger>,
    state: Mutex<Budget>,
}

impl DisclosureControl {
    /// The control of `project`, with the store's noise key and the charges already in its
    /// ledger.
    pub async fn open(
        ledger: PrivacyLedger,
        project: &str,
        budget: f64,
        noise_sd: f64,
    ) -> Result<Self> {
        let key = ledger.noise_key().await?;
        let mut control = Self::in_memory(key, project, budget, noise_sd)?;
        control.ledger = Some(ledger);
        control.reload().await?;
        Ok(control)
    }

    /// A control whose charges are kept in memory only (tests, one-off sessions).
    pub fn in_memory(key: [u8; 32], project: &str, budget: f64, noise_sd: f64) -> Result<Self> {
        let valid = noise_sd > 0.0 && noise_sd.is_finite() && budget >= 0.0 && budget.is_finite();
        if !valid {
            return Err(EngineError::InvalidArgument(format!(
                "noise standard deviation {noise_sd} and privacy budget {budget} must be positive"
            )));
        }
        Ok(Self {
            key,
            noise_sd,
            project: project.to_string(),
            budget,
            ledger: None,
            state: Mutex::new(Budget::default()),
        })
    }

    /// Reads charges other servers wrote since the last read.
    pub async fn reload(&self) -> Result<()> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let (charges, last) = ledger.charges(&self.project).await?;
        let mut state = self.lock()?;
        for charge in charges {
            if state.charged.insert(charge.release.clone()) {
                state.spent += charge.rho;
            }
        }
        state.last_file = state.last_file.max(last);
        Ok(())
    }

    /// Writes the charges made since the last write to the store's ledger.
    pub async fn flush(&self) -> Result<()> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let (pending, after) = {
            let mut state = self.lock()?;
            (std::mem::take(&mut state.pending), state.last_file)
        };
        if pending.is_empty() {
            return Ok(());
        }
        match ledger.append(&self.project, &pending, after).await {
            Ok(n) => {
                let mut state = self.lock()?;
                state.last_file = state.last_file.max(n);
                Ok(())
            }
            Err(e) => {
                // Kept, to be written with the next request's charges.
                let mut state = self.lock()?;
                state.pending.extend(pending);
                Err(e.into())
            }
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Budget>> {
        self.state
            .lock()
            .map_err(|_| EngineError::PermissionDenied("the privacy budget is unreadable".into()))
    }

    /// The standard deviation of the noise.
    pub fn noise_sd(&self) -> f64 {
        self.noise_sd
    }

    /// The project's budget and what it has spent, in zCDP rho.
    pub fn budget(&self) -> (f64, f64) {
        let spent = self.state.lock().map_or(f64::INFINITY, |s| s.spent);
        (self.budget, spent)
    }

    /// What one release costs.
    pub fn release_cost(&self) -> f64 {
        SITE_SENSITIVITY_SQUARED / (2.0 * self.noise_sd * self.noise_sd)
    }

    /// The key of the release of `predicate` over `members` ([`members_digest`]).
    pub fn release_key(&self, predicate: &str, members: &[u8; 32]) -> ReleaseKey {
        let mut mac = self.mac(&self.key);
        mac.update(b"cohortdb release v1\0");
        mac.update(predicate.as_bytes());
        mac.update(b"\0");
        mac.update(members);
        ReleaseKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, key: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable_mac(),
        }
    }

    /// Charges `release` to the budget unless it was charged before; refuses it when the
    /// budget cannot pay.
    pub fn charge(&self, release: &ReleaseKey) -> Result<()> {
        let id = release.hex();
        let cost = self.release_cost();
        let mut state = self.lock()?;
        if state.charged.contains(&id) {
            return Ok(());
        }
        if state.spent + cost > self.budget + 1e-9 {
            return Err(EngineError::PermissionDenied(format!(
                "project {:?} has spent its privacy budget (rho {:.3} of {:.3}; a new cohort \
                 costs {cost:.3}); cohorts it asked before are still answered",
                self.project, state.spent, self.budget
            )));
        }
        state.spent += cost;
        state.charged.insert(id.clone());
        state.pending.push(Charge {
            release: id,
            rho: cost,
        });
        Ok(())
    }

    /// The noise of the cells of `release`.
    pub fn noise(&self, release: &ReleaseKey) -> CellNoise {
        CellNoise::new(release, self.noise_sd)
    }
}

#[cold]
fn unreachable_mac() -> Hmac<Sha256> {
    // `new_from_slice` accepts every key length for HMAC; keep a fixed-key MAC rather than
    // panic should that ever change.
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// Deterministic Gaussian noise for the cells of one release.
///
/// Each cell's uniforms come from SipHash-2-4 (a keyed PRF, 128-bit key derived once per release
/// from the release key by HMAC) rather than from an HMAC-SHA-256 per cell: on the warm server
/// the HMAC per cell cost 0.6 ms of a 2.1 ms cohort frequency over 100 kb
/// (`benches/disclosure/run.sh`), SipHash about a quarter of that.
#[derive(Clone)]
pub struct CellNoise {
    keys: [u64; 2],
    sd: f64,
}

impl CellNoise {
    fn new(release: &ReleaseKey, sd: f64) -> Self {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&release.0) {
            Ok(mac) => mac,
            Err(_) => unreachable_mac(),
        };
        mac.update(b"cohortdb cell noise v1");
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Self {
            keys: [word(0), word(1)],
            sd,
        }
    }

    /// The PRF's state after the cell named by `parts` (each part length-prefixed).
    pub(crate) fn cell(&self, parts: &[&[u8]]) -> siphasher::sip128::SipHasher24 {
        use std::hash::Hasher;
        let mut hasher = siphasher::sip128::SipHasher24::new_with_keys(self.keys[0], self.keys[1]);
        // One write of the whole cell name: SipHash per write call costs as much as hashing
        // the short parts themselves.
        let size: usize = parts.iter().map(|p| p.len() + 4).sum();
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let buffer: &mut [u8] = if size <= stack.len() {
            &mut stack[..size]
        } else {
            heap.resize(size, 0);
            &mut heap
        };
        let mut at = 0;
        for part in parts {
            buffer[at..at + 4].copy_from_slice(&(part.len() as u32).to_le_bytes());
            buffer[at + 4..at + 4 + part.len()].copy_from_slice(part);
            at += 4 + part.len();
        }
        hasher.write(buffer);
        hasher
    }

    /// Two standard normals, times sd, from the PRF of a cell and a counter.
    pub(crate) fn normals(&self, cell: &siphasher::sip128::SipHasher24, counter: u8) -> [f64; 2] {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut hasher = *cell;
        hasher.write_u8(counter);
        let hash = hasher.finish128();
        box_muller(hash.h1, hash.h2).map(|z| z * self.sd)
    }

    /// Two independent draws of N(0, sd^2) for the cell named by `parts`.
    pub fn pair(&self, parts: &[&[u8]]) -> [f64; 2] {
        self.normals(&self.cell(parts), 0)
    }

    /// Four independent draws of N(0, sd^2) for the cell named by `parts` (the first two are
    /// [`CellNoise::pair`]'s).
    pub fn draws(&self, parts: &[&[u8]]) -> [f64; 4] {
        let cell = self.cell(parts);
        let [z0, z1] = self.normals(&cell, 0);
        let [z2, z3] = self.normals(&cell, 1);
        [z0, z1, z2, z3]
    }

    /// `count` with noise `e`: rounded, and never below 0.
    pub fn apply(count: i64, e: f64) -> i64 {
        ((count as f64 + e).round() as i64).max(0)
    }
}

/// Two standard normals from two uniform 64-bit words (Box-Muller).
fn box_muller(a: u64, b: u64) -> [f64; 2] {
    // 53 bits, in (0, 1].
    let uniform = |w: u64| ((w >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let radius = (-2.0 * uniform(a).ln()).sqrt();
    let angle = std::f64::consts::TAU * uniform(b);
    [radius * angle.cos(), radius * angle.sin()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(budget: f64) -> DisclosureControl {
        DisclosureControl::in_memory([7; 32], "p", budget, 5.0).unwrap()
    }

    #[test]
    fn same_question_same_noise_other_question_other_noise() {
        let c = control(1.0);
        let members = members_digest(&(0..100).collect());
        let a = c.release_key("age < 55", &members);
        assert_eq!(a, c.release_key("age < 55", &members));
        assert_ne!(a, c.release_key("age <= 54", &members));
        let other = members_digest(&(0..101).collect());
        assert_ne!(a, c.release_key("age < 55", &other));
        let n = c.noise(&a);
        assert_eq!(n.draws(&[b"x"]), n.draws(&[b"x"]));
        assert_ne!(n.draws(&[b"x"]), n.draws(&[b"y"]));
        // Length-prefixed parts: ("ab", "c") is not ("a", "bc").
        assert_ne!(n.draws(&[b"ab", b"c"]), n.draws(&[b"a", b"bc"]));
    }

    #[test]
    fn draws_have_the_stated_spread() {
        let c = control(1.0);
        let n = c.noise(&c.release_key("TRUE", &[0; 32]));
        let draws: Vec<f64> = (0u32..20_000)
            .flat_map(|i| n.draws(&[&i.to_le_bytes()]))
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 5.0).abs() < 0.1, "sd {}", var.sqrt());
        let within_one_sd = draws.iter().filter(|d| d.abs() < 5.0).count() as f64;
        assert!((within_one_sd / draws.len() as f64 - 0.6827).abs() < 0.01);
    }

    #[test]
    fn the_budget_pays_each_release_once_and_refuses_past_it() {
        // 10 / (2 * 25) = 0.2 a release: five fit in 1.0, the sixth does not.
        let c = control(1.0);
        let keys: Vec<ReleaseKey> = (0..6)
            .map(|i| c.release_key(&format!("age > {i}"), &[0; 32]))
            .collect();
        for key in &keys[..5] {
            c.charge(key).unwrap();
        }
        c.charge(&keys[0]).unwrap();
        assert!(matches!(
            c.charge(&keys[5]),
            Err(EngineError::PermissionDenied(_))
        ));
        let (budget, spent) = c.budget();
        assert_eq!(budget, 1.0);
        assert!((spent - 1.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn charges_survive_a_restart() {
        let location =
            cohortdb_store::StoreLocation::open("memory://disclosure-restart", true).unwrap();
        let ledger = PrivacyLedger::new(location);
        let first = DisclosureControl::open(ledger.clone(), "p", 1.0, 5.0)
            .await
            .unwrap();
        let key = first.release_key("TRUE", &[1; 32]);
        first.charge(&key).unwrap();
        first.flush().await.unwrap();
        let second = DisclosureControl::open(ledger, "p", 1.0, 5.0)
            .await
            .unwrap();
        assert!((second.budget().1 - 0.2).abs() < 1e-9);
        assert_eq!(second.release_key("TRUE", &[1; 32]), key);
    }
}
