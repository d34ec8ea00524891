//! The shared secret of a cluster: a coordinator sends it in a header of every request that
//! carries a plan, workers re-send it to each other, and a worker refuses a plan without it,
//! so a worker's port is not a way around the access tiers. It travels in clear text: run the
//! cluster on a private network, or behind TLS (docs/cluster.md).

use std::fmt;

use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// The header the secret travels in.
pub const SECRET_HEADER: &str = "x-cohortdb-cluster-secret";

/// Fewest characters a secret may have.
const MIN_LEN: usize = 16;

/// A cluster's secret (never printed).
#[derive(Clone)]
pub struct ClusterSecret {
    value: HeaderValue,
    digest: [u8; 32],
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// The secret `text` (surrounding white space removed): at least 16 visible ASCII
    /// characters.
    pub fn new(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() < MIN_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EngineError::InvalidArgument(format!(
                "a cluster secret is at least {MIN_LEN} visible ASCII characters \
                 (for example: openssl rand -hex 32)"
            )));
        }
        let value = HeaderValue::from_str(text)
            .map_err(|e| EngineError::InvalidArgument(format!("cluster secret: {e}")))?;
        Ok(Self {
            value,
            digest: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The secret held in the file at `path`.
    pub fn from_file(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_string(),
            source,
        })?;
        Self::new(&text).map_err(|e| EngineError::InvalidArgument(format!("{path}: {e}")))
    }

    /// The headers that carry the secret.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SECRET_HEADER, self.value.clone());
        headers
    }

    /// Whether `headers` carry this secret (compared by digest, so the time taken does not
    /// tell how much of a guess was right).
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(SECRET_HEADER)
            .is_some_and(|v| <[u8; 32]>::from(Sha256::digest(v.as_bytes())) == self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_admits_itself_only() {
        let secret = ClusterSecret::new(" 0123456789abcdef0123\n").unwrap();
        assert!(secret.admits(&secret.headers()));
        let other = ClusterSecret::new("0123456789abcdef0124").unwrap();
        assert!(!secret.admits(&other.headers()));
        assert!(!secret.admits(&HeaderMap::new()));
        assert!(ClusterSecret::new("short").is_err());
        assert!(ClusterSecret::new("0123456789 abcdef0123").is_err());
        assert_eq!(format!("{secret:?}"), "ClusterSecret(..)");
    }
}
