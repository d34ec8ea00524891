//! Principals and the tokens file that names them.
//!
//! ```toml
//! audit_secret = "keys the audit trail's participant pseudonyms"   # see audit_pseudonyms
//!
//! [[token]]
//! token = "s3cr3t-alice"
//! name = "alice"
//! project = "diabetes"
//! tier = "record"          # aggregate | record | admin
//!
//! [projects.diabetes]
//! secret = "keys the project's pseudonyms"   # record tier
//! privacy_budget = 2.0                       # aggregate tier, zCDP rho (default: the server's)
//! phenotypes = { phenotypes = ["age", "sex"] } # tables and columns it may read (default: all)
//! ```
//!
//! Tokens are kept only as SHA-256 digests, so a lookup compares digests, never the token.

use std::collections::HashMap;

use cohortdb_engine::Tier;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::server_error::ServerError;

/// Who is calling: from a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name.
    pub name: String,
    /// The project the principal works for.
    pub project: String,
    /// What the principal may see.
    pub tier: Tier,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    audit_secret: Option<String>,
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    projects: HashMap<String, ProjectEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    name: String,
    project: String,
    tier: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectEntry {
    /// Keys the project's pseudonyms (record tier).
    secret: Option<String>,
    /// The project's privacy budget in zCDP rho (aggregate tier).
    privacy_budget: Option<f64>,
    /// The phenotype tables the project may read, each with its columns (`"*"`: all).
    phenotypes: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// Bearer tokens (as digests) and project secrets.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    principals: HashMap<[u8; 32], Principal>,
    secrets: HashMap<String, String>,
    budgets: HashMap<String, f64>,
    phenotypes: HashMap<String, cohortdb_engine::policy::access_policy::PhenotypeAllowList>,
    audit_secret: Option<String>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenRegistry {
    /// Reads a tokens file.
    pub fn from_file(path: &str) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::Io {
            path: path.to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| ServerError::Tokens {
            path: path.to_string(),
            reason,
        })
    }

    /// Parses a tokens file's text; every record-tier project must have a secret, and every
    /// token must be distinct.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut registry = TokenRegistry {
            audit_secret: file.audit_secret,
            ..TokenRegistry::default()
        };
        if registry.audit_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err("audit_secret needs at least 16 characters".into());
        }
        for (name, project) in file.projects {
            if let Some(budget) = project.privacy_budget {
                if !(budget >= 0.0 && budget.is_finite()) {
                    return Err(format!(
                        "[projects.{name}]: privacy_budget {budget} is not a number of 0 or more"
                    ));
                }
                registry.budgets.insert(name.clone(), budget);
            }
            if let Some(allowed) = project.phenotypes {
                registry.phenotypes.insert(name.clone(), allowed);
            }
            if let Some(secret) = project.secret {
                registry.secrets.insert(name, secret);
            }
        }
        for (i, entry) in file.token.into_iter().enumerate() {
            let at = format!("token entry {} ({})", i + 1, entry.name);
            let tier = Tier::parse(&entry.tier).ok_or_else(|| {
                format!(
                    "{at}: tier {:?} is not aggregate, record or admin",
                    entry.tier
                )
            })?;
            if entry.token.len() < 8 {
                return Err(format!("{at}: a token needs at least 8 characters"));
            }
            if tier == Tier::Record && !registry.secrets.contains_key(&entry.project) {
                return Err(format!(
                    "{at}: project {:?} has no [projects.{}] secret for its pseudonyms",
                    entry.project, entry.project
                ));
            }
            let principal = Principal {
                name: entry.name,
                project: entry.project,
                tier,
            };
            if registry
                .principals
                .insert(digest(&entry.token), principal)
                .is_some()
            {
                return Err(format!("{at}: the same token is listed twice"));
            }
        }
        Ok(registry)
    }

    /// The principal of `token`, if any.
    pub fn principal(&self, token: &str) -> Option<&Principal> {
        self.principals.get(&digest(token))
    }

    /// The privacy budget of `project` (zCDP rho), when its `[projects.NAME]` sets one.
    pub fn privacy_budget(&self, project: &str) -> Option<f64> {
        self.budgets.get(project).copied()
    }

    /// The phenotype tables and columns `project` may read, when its `[projects.NAME]` lists
    /// them (otherwise all).
    pub fn phenotypes(
        &self,
        project: &str,
    ) -> Option<&cohortdb_engine::policy::access_policy::PhenotypeAllowList> {
        self.phenotypes.get(project)
    }

    /// The secret of the audit trail's participant pseudonyms
    /// ([`crate::audit_pseudonyms`]), when the file sets one.
    pub fn audit_secret(&self) -> Option<&str> {
        self.audit_secret.as_deref()
    }

    /// The pseudonym secret of `project`.
    pub fn secret(&self, project: &str) -> Option<&str> {
        self.secrets.get(project).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[token]]
token = "token-alice"
name = "alice"
project = "p1"
tier = "record"

[[token]]
token = "token-bob-1"
name = "bob"
project = "p2"
tier = "aggregate"

[projects.p1]
secret = "one"

[projects.p2]
privacy_budget = 0.5
phenotypes = { phenotypes = ["age"], visits = ["*"] }
"#;

    #[test]
    fn tokens_map_to_principals() {
        let registry = TokenRegistry::parse(FILE).unwrap();
        let alice = registry.principal("token-alice").unwrap();
        assert_eq!((alice.name.as_str(), alice.tier), ("alice", Tier::Record));
        assert_eq!(
            registry.principal("token-bob-1").unwrap().tier,
            Tier::Aggregate
        );
        assert!(registry.principal("token-carol").is_none());
        assert_eq!(registry.secret("p1"), Some("one"));
        assert_eq!(registry.privacy_budget("p2"), Some(0.5));
        assert_eq!(registry.privacy_budget("p1"), None);
        assert_eq!(registry.phenotypes("p2").unwrap()["phenotypes"], ["age"]);
        assert!(registry.phenotypes("p1").is_none());
    }

    #[test]
    fn bad_files_are_refused_with_the_entry() {
        let no_secret = FILE.replace("[projects.p1]", "[projects.p9]");
        assert!(
            TokenRegistry::parse(&no_secret)
                .unwrap_err()
                .contains("token entry 1")
        );
        let bad_tier = FILE.replace("\"aggregate\"", "\"superuser\"");
        assert!(
            TokenRegistry::parse(&bad_tier)
                .unwrap_err()
                .contains("superuser")
        );
        let twice = FILE.replace("token-bob-1", "token-alice");
        assert!(TokenRegistry::parse(&twice).unwrap_err().contains("twice"));
    }
}
