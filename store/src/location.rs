//! Store locations: a local directory, `file://`, `memory://NAME` or `s3://bucket/prefix`.
//!
//! Every byte goes through [`object_store`]; the local file system is not special-cased beyond
//! creating the directory on first write.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;

use crate::error::{Result, StoreError};

/// In-memory stores live for the process, keyed by their URL, so that `memory://x` opened twice
/// is the same store (tests rely on this).
static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An opened location: the object store and the prefix under which the store lives.
#[derive(Clone)]
pub struct StoreLocation {
    /// The location as the user gave it.
    pub url: String,
    /// The object store holding the files.
    pub object_store: Arc<dyn ObjectStore>,
    /// The store's root inside `object_store`.
    pub root: Path,
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLocation")
            .field("url", &self.url)
            .field("root", &self.root)
            .finish()
    }
}

impl StoreLocation {
    /// Opens `location`. With `create`, a missing local directory is created.
    pub fn open(location: &str, create: bool) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidLocation {
            location: location.to_string(),
            reason,
        };
        if let Some(name) = location.strip_prefix("memory://") {
            let mut stores = MEMORY_STORES
                .lock()
                .map_err(|_| invalid("in-memory store registry poisoned".into()))?;
            let store = stores
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(InMemory::new()))
                .clone();
            return Ok(Self {
                url: location.to_string(),
                object_store: store,
                root: Path::default(),
            });
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("s3:// needs a bucket name".into()));
            }
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            return Ok(Self {
                url: location.to_string(),
                object_store: Arc::new(s3),
                root: Path::from(prefix.trim_matches('/')),
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(invalid(
                "unsupported scheme (use a path, file://, s3:// or memory://)".into(),
            ));
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        if path.is_empty() {
            return Err(invalid("empty path".into()));
        }
        let dir = std::path::Path::new(path);
        if create {
            std::fs::create_dir_all(dir).map_err(|e| invalid(e.to_string()))?;
        } else if !dir.is_dir() {
            return Err(StoreError::NotFound {
                location: location.to_string(),
            });
        }
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            url: location.to_string(),
            object_store: Arc::new(fs),
            root: Path::default(),
        })
    }

    /// The bytes of the object at `path`.
    pub async fn read(&self, path: &Path) -> Result<bytes::Bytes> {
        use object_store::ObjectStoreExt;
        self.object_store
            .get(path)
            .await
            .map_err(|e| StoreError::object_store(path, e))?
            .bytes()
            .await
            .map_err(|e| StoreError::object_store(path, e))
    }

    /// The objects under `prefix`, in no particular order.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<object_store::ObjectMeta>> {
        use futures::TryStreamExt;
        self.object_store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::object_store(prefix, e))
    }

    /// Writes `payload` to `path` only if no object is there (`PutMode::Create`): `false`
    /// when another writer put one first.
    pub async fn put_new(&self, path: &Path, payload: object_store::PutPayload) -> Result<bool> {
        match self
            .object_store
            .put_opts(path, payload, object_store::PutMode::Create.into())
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(StoreError::object_store(path, e)),
        }
    }

    /// The object path of `relative` (a `/`-separated path inside the store).
    ///
    /// The relative path is taken as written (a `%XX` escape in a fragment's directory name,
    /// such as `contig=1%3A1`, stays as it is rather than being escaped a second time); only a
    /// path object_store cannot hold verbatim is escaped part by part.
    pub fn path(&self, relative: &str) -> Path {
        match Path::parse(relative) {
            Ok(rel) => self.root.parts().chain(rel.parts()).collect(),
            Err(_) => relative
                .split('/')
                .filter(|p| !p.is_empty())
                .fold(self.root.clone(), |path, part| path.join(part)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stores_are_shared_by_name() {
        let a = StoreLocation::open("memory://loc-test", true).unwrap();
        let b = StoreLocation::open("memory://loc-test", false).unwrap();
        assert!(Arc::ptr_eq(&a.object_store, &b.object_store));
    }

    #[test]
    fn missing_local_directory_is_not_found_when_reading() {
        let err = StoreLocation::open("/nonexistent/cohortdb/store", false).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
    }

    #[test]
    fn paths_join_under_the_root() {
        let loc = StoreLocation::open("memory://loc-join", true).unwrap();
        assert_eq!(loc.path("_log/1.json").as_ref(), "_log/1.json");
    }
}
