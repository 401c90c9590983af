//! Deep storage: one object store (local directory, S3, in-memory) under a root prefix.
//!
//! Every other module speaks in paths relative to the deep-storage root, as `layouts` builds
//! them; this module turns them into object-store paths and back, and classifies failures so
//! callers know whether to retry.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// A deep-storage failure, split by who can act on it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The deep-storage URL cannot be used.
    #[error("deep storage {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A create-only write found an object already there.
    #[error("{path} already exists in deep storage")]
    AlreadyExists {
        /// Path relative to the root.
        path: String,
    },
    /// The object does not exist.
    #[error("{path} not found in deep storage")]
    NotFound {
        /// Path relative to the root.
        path: String,
    },
    /// Any other object-store failure; usually external and worth a retry.
    #[error("deep storage {operation} {path}: {source}")]
    Store {
        /// What was being done.
        operation: &'static str,
        /// Path relative to the root.
        path: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
}

impl StorageError {
    fn from_store(operation: &'static str, path: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::AlreadyExists { .. } => Self::AlreadyExists { path: path.into() },
            object_store::Error::NotFound { .. } => Self::NotFound { path: path.into() },
            source => Self::Store { operation, path: path.into(), source },
        }
    }
}

/// An object in deep storage, with its path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Path relative to the deep-storage root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's entity tag, when it has one.
    pub e_tag: Option<String>,
    /// Last modification time, UTC milliseconds.
    pub last_modified: i64,
}

/// The deep-storage root: an object store and a prefix inside it.
#[derive(Debug, Clone)]
pub struct DeepStorage {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl DeepStorage {
    /// Opens deep storage from a URL: a plain path or `file://` path (created if missing),
    /// `s3://bucket/prefix` (credentials and endpoint from the usual AWS environment
    /// variables), or `memory://` (a fresh in-memory store, for tests).
    pub fn open(url: &str) -> Result<Self, StorageError> {
        Self::open_with(url, true)
    }

    /// Like [`DeepStorage::open`] for commands that only read: a local directory must exist,
    /// so a mistyped path is an error rather than a new empty directory.
    pub fn open_existing(url: &str) -> Result<Self, StorageError> {
        Self::open_with(url, false)
    }

    fn open_with(url: &str, create: bool) -> Result<Self, StorageError> {
        let invalid = |reason: String| StorageError::InvalidUrl { url: url.into(), reason };
        if url.is_empty() {
            return Err(invalid("empty; expected a directory, file://, s3:// or memory:// URL".into()));
        }
        if let Some(rest) = url.strip_prefix("memory://") {
            let root = Path::parse(rest.trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
            return Ok(Self { store: Arc::new(InMemory::new()), root });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("no bucket name after s3://".into()));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            let root = Path::parse(prefix.trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
            return Ok(Self { store: Arc::new(store), root });
        }
        let dir = match url.strip_prefix("file://") {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(invalid(
                    "unsupported scheme (expected a directory, file://, s3:// or memory://)".into(),
                ));
            }
            None => url,
        };
        if create {
            std::fs::create_dir_all(dir).map_err(|e| invalid(format!("cannot create directory: {e}")))?;
        } else if !std::path::Path::new(dir).is_dir() {
            return Err(invalid("no such directory".into()));
        }
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| invalid(e.to_string()))?
            // Readers never see half-written files: each put goes to a temporary name first.
            .with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), root: Path::default() })
    }

    /// Deep storage over an existing object store, for tests and embedding.
    pub fn from_store(store: Arc<dyn ObjectStore>, root: &str) -> Self {
        Self { store, root: Path::from(root.trim_matches('/')) }
    }

    /// The object-store path of a root-relative path.
    pub fn path(&self, relative: &str) -> Path {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.clone().join(part);
        }
        path
    }

    fn relative(&self, path: &Path) -> String {
        match path.prefix_match(&self.root) {
            Some(parts) => parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"),
            None => path.to_string(),
        }
    }

    /// Writes an object only if nothing is there yet: the fence every commit relies on.
    pub async fn put_create(&self, relative: &str, bytes: impl Into<PutPayload>) -> Result<(), StorageError> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        self.store
            .put_opts(&self.path(relative), bytes.into(), opts)
            .await
            .map(|_| ())
            .map_err(|e| StorageError::from_store("create", relative, e))
    }

    /// Writes an object, replacing any previous one.
    pub async fn put(&self, relative: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&self.path(relative), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| StorageError::from_store("put", relative, e))
    }

    /// Reads a whole object.
    pub async fn get(&self, relative: &str) -> Result<Bytes, StorageError> {
        let result = self
            .store
            .get(&self.path(relative))
            .await
            .map_err(|e| StorageError::from_store("get", relative, e))?;
        result.bytes().await.map_err(|e| StorageError::from_store("read", relative, e))
    }

    /// An object's bytes, to be read as they are consumed. A local file is handed over open,
    /// so reading it takes a small buffer where [`DeepStorage::get`] first copies the whole
    /// file into memory; other stores' objects are fetched whole.
    pub async fn reader(&self, relative: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let result = self
            .store
            .get(&self.path(relative))
            .await
            .map_err(|e| StorageError::from_store("get", relative, e))?;
        match result.payload {
            GetResultPayload::File(mut file, _) => {
                let range = result.range;
                file.seek(SeekFrom::Start(range.start)).map_err(|e| {
                    let source =
                        object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) };
                    StorageError::from_store("read", relative, source)
                })?;
                Ok(Box::new(file.take(range.end - range.start)))
            }
            GetResultPayload::Stream(_) => {
                let bytes =
                    result.bytes().await.map_err(|e| StorageError::from_store("read", relative, e))?;
                Ok(Box::new(Cursor::new(bytes)))
            }
        }
    }

    /// An object's size and tag, without reading it.
    pub async fn head(&self, relative: &str) -> Result<StoredObject, StorageError> {
        let meta = self
            .store
            .head(&self.path(relative))
            .await
            .map_err(|e| StorageError::from_store("head", relative, e))?;
        Ok(self.stored_object(meta))
    }

    /// The object store underneath, for readers that make ranged requests themselves (Parquet);
    /// address objects in it with [`DeepStorage::path`].
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    fn stored_object(&self, meta: object_store::ObjectMeta) -> StoredObject {
        StoredObject {
            path: self.relative(&meta.location),
            size: meta.size,
            e_tag: meta.e_tag,
            last_modified: meta.last_modified.timestamp_millis(),
        }
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, relative: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::from_store("delete", relative, e)),
        }
    }

    /// Every object under a relative prefix (recursively), sorted by path.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        self.list_from(prefix, None).await
    }

    /// Objects under a prefix whose path sorts after `offset` (a relative path), sorted.
    pub async fn list_after(&self, prefix: &str, offset: &str) -> Result<Vec<StoredObject>, StorageError> {
        self.list_from(prefix, Some(offset)).await
    }

    async fn list_from(&self, prefix: &str, offset: Option<&str>) -> Result<Vec<StoredObject>, StorageError> {
        let location = self.path(prefix);
        let stream = match offset {
            Some(offset) => self.store.list_with_offset(Some(&location), &self.path(offset)),
            None => self.store.list(Some(&location)),
        };
        let metas: Vec<_> =
            stream.try_collect().await.map_err(|e| StorageError::from_store("list", prefix, e))?;
        let mut objects: Vec<StoredObject> = metas.into_iter().map(|meta| self.stored_object(meta)).collect();
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    /// The names of the immediate children "directories" of a relative prefix, sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let location = self.path(prefix);
        let result = self
            .store
            .list_with_delimiter(Some(&location))
            .await
            .map_err(|e| StorageError::from_store("list", prefix, e))?;
        let mut names: Vec<String> =
            result.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test body, run against every kind of store this machine offers.
    async fn exercise(storage: DeepStorage) {
        storage.put_create("a/b/one.json", Bytes::from_static(b"1")).await.unwrap();
        let again = storage.put_create("a/b/one.json", Bytes::from_static(b"2")).await;
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })), "{again:?}");
        assert_eq!(storage.get("a/b/one.json").await.unwrap(), Bytes::from_static(b"1"));
        storage.put("a/c/two.json", Bytes::from_static(b"22")).await.unwrap();
        storage.put("a/c/three.json", Bytes::from_static(b"333")).await.unwrap();

        let listed = storage.list("a").await.unwrap();
        let paths: Vec<_> = listed.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["a/b/one.json", "a/c/three.json", "a/c/two.json"]);
        assert_eq!(listed[1].size, 3);
        let after = storage.list_after("a/c", "a/c/three.json").await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].path, "a/c/two.json");
        assert_eq!(storage.list_dirs("a").await.unwrap(), ["b", "c"]);
        assert!(storage.list("missing").await.unwrap().is_empty());

        let mut read = Vec::new();
        storage.reader("a/c/three.json").await.unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, b"333");
        let missing = storage.reader("a/none.json").await.map(|_| ());
        assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
        let missing = storage.get("a/none.json").await;
        assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
        storage.delete("a/c/two.json").await.unwrap();
        storage.delete("a/c/two.json").await.unwrap();
        assert_eq!(storage.list("a/c").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn in_memory_store() {
        exercise(DeepStorage::open("memory://").unwrap()).await;
        exercise(DeepStorage::from_store(Arc::new(InMemory::new()), "some/root")).await;
    }

    #[tokio::test]
    async fn local_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("deep");
        exercise(DeepStorage::open(url.to_str().unwrap()).unwrap()).await;
        let file_url = format!("file://{}", dir.path().join("other").display());
        exercise(DeepStorage::open(&file_url).unwrap()).await;
    }

    #[test]
    fn bad_urls_are_named() {
        let err = DeepStorage::open("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("ftp://host/x") && err.contains("unsupported scheme"), "{err}");
        let err = DeepStorage::open("").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let missing = tempfile::tempdir().unwrap().path().join("typo");
        let err = DeepStorage::open_existing(missing.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("typo") && err.contains("no such directory"), "{err}");
        assert!(!missing.exists());
        let err = DeepStorage::open("s3:///prefix").unwrap_err().to_string();
        assert!(err.contains("bucket"), "{err}");
    }
}
