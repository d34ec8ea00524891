//! Participant IDs as the audit trail writes them: `sid:` and the first 16 hex digits of
//! HMAC-SHA256 of the ID under the audit secret (`audit_secret` in the tokens file). The trail
//! still says which requests named one participant (the same ID gives the same pseudonym while
//! the secret stays), and whoever holds the secret can test a known ID against it; but a
//! withdrawn participant's ID, once purge and vacuum have removed it from the store's data,
//! is found in no file of the store, the trail and its kept lists included.
//!
//! What is replaced: every entry of a request's sample lists (whatever it is: a list is IDs),
//! and in the rest of the text (SQL, predicates, error messages) every word that is a
//! registered sample ID at the time of the request. A word is a maximal run of characters other
//! than whitespace, quotes and SQL punctuation, so `sample_id = 'HG00096'` and `["HG00096"]`
//! both name it; an ID assembled in SQL (`'HG000' || '96'`) is not recognised.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Pseudonymises participant IDs for the audit trail.
#[derive(Clone)]
pub struct AuditPseudonyms {
    key: Vec<u8>,
}

impl std::fmt::Debug for AuditPseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditPseudonyms")
    }
}

/// Characters that end a word of [`AuditPseudonyms::rewrite`].
fn separates(c: char) -> bool {
    c.is_whitespace() || "'\"`,;()[]{}=<>!|&+*^%\\".contains(c)
}

impl AuditPseudonyms {
    /// Pseudonyms under `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    /// Pseudonyms under a secret drawn now: stable for this process only.
    pub fn random() -> Self {
        let secret = [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ];
        Self::new(secret.as_flattened())
    }

    /// The pseudonym of `id`.
    pub fn pseudonym(&self, id: &str) -> String {
        // HMAC takes a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return "sid:?".into(),
        };
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("sid:{}", hex::encode(&digest[..8]))
    }

    /// `text` with each word for which `is_id` holds replaced by its pseudonym.
    pub fn rewrite(&self, text: &str, is_id: impl Fn(&str) -> bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut word_start = None;
        for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
            if !separates(c) {
                word_start.get_or_insert(i);
                continue;
            }
            if let Some(start) = word_start.take() {
                let word = &text[start..i];
                if is_id(word) {
                    out.push_str(&self.pseudonym(word));
                } else {
                    out.push_str(word);
                }
            }
            if i < text.len() {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_ids_become_keyed_pseudonyms_wherever_they_are_words() {
        let p = AuditPseudonyms::new(b"secret");
        let ids = ["HG00096", "NA12878", "GSX-1.2"];
        let is_id = |w: &str| ids.contains(&w);
        let text = "SELECT * FROM genotypes WHERE sample_id IN ('HG00096',\"NA12878\") \
                    AND x=GSX-1.2 -- HG000960 stays\n[\"HG00096\"]";
        let out = p.rewrite(text, is_id);
        for id in ids {
            assert!(!out.replace("HG000960", "").contains(id), "{out}");
        }
        assert!(out.contains("HG000960 stays"), "{out}");
        let hg = p.pseudonym("HG00096");
        assert_eq!(out.matches(&hg).count(), 2, "{out}");
        assert!(
            out.starts_with("SELECT * FROM genotypes WHERE sample_id IN ('sid:"),
            "{out}"
        );
        assert!(out.ends_with(&format!("[\"{hg}\"]")), "{out}");
        // Keyed: another secret, another pseudonym; the same secret, the same one.
        assert_ne!(AuditPseudonyms::new(b"other").pseudonym("HG00096"), hg);
        assert_eq!(AuditPseudonyms::new(b"secret").pseudonym("HG00096"), hg);
        assert_eq!(p.rewrite("", is_id), "");
        assert_eq!(p.rewrite("HG00096", is_id), hg);
    }
}
