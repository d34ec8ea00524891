//! A carriers answer in pages: a variant with 81,000 carriers is a 7 MB answer, a bulk list
//! that belongs to export; a lookup returns [`DEFAULT_PAGE_SIZE`] rows at a time and a token
//! for the next page.
//!
//! A token names the store version, the next row and the request it continues (its variant,
//! cohort and columns, hashed): pages are stable within one version, since the answer's order
//! (ALT, then sample ID) is fixed by the snapshot. A token of another version is refused
//! ([`EngineError::PageExpired`]): the store changed (new data, a withdrawal) and the answer
//! must be asked for again from its first page. Nothing is kept between pages: each page is
//! computed again from the cached bitmaps, and only its own rows are built.

use datafusion::arrow::array::RecordBatch;
use roaring::RoaringBitmap;
use sha2::{Digest, Sha256};

pub use crate::cohort_engine::MAX_PAGE_SIZE;

use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::ops::carriers::VariantSpec;

/// Rows per page when the caller names no size.
pub const DEFAULT_PAGE_SIZE: usize = 10_000;

/// One page of a carriers answer.
#[derive(Debug, Clone)]
pub struct CarriersPage {
    /// The page's rows, as [`CohortEngine::carriers`] builds them.
    pub rows: RecordBatch,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// Rows in the whole answer.
    pub total_rows: u64,
}

/// Where a page starts: `<version>-<row>-<request>`, hexadecimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageToken {
    version: u64,
    offset: u64,
    request: u64,
}

impl PageToken {
    fn encode(self) -> String {
        format!("{:x}-{:x}-{:016x}", self.version, self.offset, self.request)
    }

    fn decode(text: &str) -> Result<Self> {
        let bad = || EngineError::InvalidArgument(format!("malformed page token {text:?}"));
        let mut parts = text.split('-');
        let mut next = || u64::from_str_radix(parts.next().ok_or_else(bad)?, 16).map_err(|_| bad());
        let token = Self {
            version: next()?,
            offset: next()?,
            request: next()?,
        };
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(token),
        }
    }
}

/// What a token binds: the request's variant, cohort and columns.
fn request_key(variant: &VariantSpec, cohort: &RoaringBitmap, columns: &[String]) -> u64 {
    let mut hash = Sha256::new();
    hash.update(format!(
        "{}\t{}\t{:?}\t",
        variant.contig, variant.pos, variant.alleles
    ));
    let mut members = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = cohort.serialize_into(&mut members);
    hash.update(&members);
    for column in columns {
        hash.update(column.as_bytes());
        hash.update(b"\t");
    }
    let digest = hash.finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

impl CohortEngine {
    /// `requested` rows per page ([`DEFAULT_PAGE_SIZE`] for 0), within the engine's maximum.
    pub fn page_size(&self, requested: usize) -> Result<usize> {
        match requested {
            0 => Ok(DEFAULT_PAGE_SIZE.min(self.max_page_size)),
            n if n > self.max_page_size => Err(EngineError::InvalidArgument(format!(
                "a page holds at most {} rows (asked for {n}); follow the page tokens, or \
                 export a bulk list",
                self.max_page_size
            ))),
            n => Ok(n),
        }
    }

    /// The page of [`CohortEngine::carriers`] that `token` starts (the first page without
    /// one), of `page_size` rows ([`DEFAULT_PAGE_SIZE`] for 0; more than the engine's maximum
    /// is refused). A token of another request is refused, and one of another store version
    /// is [`EngineError::PageExpired`].
    pub async fn carriers_page(
        &self,
        variant: &VariantSpec,
        cohort: &RoaringBitmap,
        columns: &[String],
        page_size: usize,
        token: Option<&str>,
    ) -> Result<CarriersPage> {
        let size = self.page_size(page_size)?;
        let version = self.snapshot().version();
        let request = request_key(variant, cohort, columns);
        let offset = match token.filter(|t| !t.is_empty()) {
            None => 0,
            Some(text) => {
                let token = PageToken::decode(text)?;
                // A newer version first: a withdrawal also changes who "everyone" is.
                if token.version != version {
                    return Err(EngineError::PageExpired(format!(
                        "the page token is of store version {}, and the store is now at \
                         version {version} (new data or a withdrawal): ask again from the \
                         first page",
                        token.version
                    )));
                }
                if token.request != request {
                    return Err(EngineError::InvalidArgument(
                        "the page token continues another request (another variant, cohort \
                         or columns)"
                            .into(),
                    ));
                }
                token.offset
            }
        };
        let (rows, total_rows) = self
            .carrier_rows(variant, cohort, columns, offset, size)
            .await?;
        let next = offset + rows.num_rows() as u64;
        let next_page_token = (next < total_rows).then(|| {
            PageToken {
                version,
                offset: next,
                request,
            }
            .encode()
        });
        Ok(CarriersPage {
            rows,
            next_page_token,
            total_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let token = PageToken {
            version: 12,
            offset: 30_000,
            request: u64::MAX - 5,
        };
        assert_eq!(PageToken::decode(&token.encode()).unwrap(), token);
        for bad in ["", "12", "c-7530", "c-7530-x", "c-7530-1-2", "-1-2"] {
            assert!(PageToken::decode(bad).is_err(), "{bad}");
        }
    }
}
