//! The object store behind attachments: local disk (the embedded default)
//! or an S3-compatible server, chosen by configuration, through
//! `object_store` — nothing above [`Backend`] knows which.
//!
//! Everything written is ciphertext ([`crate::stream`]); objects are
//! written once ([`Backend::put_new`] refuses to overwrite, a sealed
//! upload goes to a fresh key) and read back whole or by range. A
//! [`SealedUpload`] seals plaintext as it arrives and sends the ciphertext
//! as multipart parts of [`PART`] bytes, hashing it on the way (the
//! SHA-256 that is anchored), so a 50 MB file never sits in memory twice.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

use crate::keys::{ObjectKey, Tenant};
use crate::stream::{Sealer, StreamError};

/// Ciphertext bytes per multipart part (S3 wants ≥ 5 MiB but the last).
pub const PART: usize = 8 * 1024 * 1024;
/// Parts of one file sent at once. Two: on SeaweedFS (two cores shared
/// with the node) one at a time left the server idle between parts, four
/// made each part slower than the whole sequence (measured with
/// `medanchor-bench attachments`).
const PARTS_IN_FLIGHT: usize = 2;
const SEALED_CHUNK: usize = crate::stream::CHUNK + crate::stream::TAG;

/// Where objects are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// A directory on local disk.
    Local {
        /// The root directory (created if missing).
        root: PathBuf,
    },
    /// An S3-compatible server.
    S3 {
        /// The endpoint (`http://127.0.0.1:8333`); none for AWS itself.
        endpoint: Option<String>,
        /// The bucket.
        bucket: String,
        /// The region.
        region: String,
        /// Access key and secret; none to read `AWS_ACCESS_KEY_ID` and
        /// `AWS_SECRET_ACCESS_KEY` from the environment.
        credentials: Option<(String, String)>,
    },
}

impl std::fmt::Display for BackendConfig {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendConfig::Local { root } => write!(f, "local disk at {}", root.display()),
            BackendConfig::S3 { endpoint, bucket, .. } => {
                write!(f, "s3 bucket {bucket} at {}", endpoint.as_deref().unwrap_or("AWS"))
            }
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object exists already (objects are written once).
    #[error("{0} exists already")]
    Exists(String),
    /// No such object.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The store failed or refused (credentials, network, server).
    #[error("object store: {0}")]
    Store(String),
    /// The configuration is unusable.
    #[error("object store configuration: {0}")]
    Config(String),
    /// Sealing failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

fn store_error(key: &str, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::AlreadyExists { .. } => StorageError::Exists(key.to_string()),
        object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
        other => StorageError::Store(other.to_string()),
    }
}

/// The object store.
#[derive(Debug, Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    describe: String,
    /// The root of a local store: `object_store` writes local files
    /// without syncing them, so a completed object is synced here (an
    /// acknowledged file must survive a power loss, not just a crash).
    local_root: Option<PathBuf>,
}

/// An object's key and size, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: ObjectKey,
    /// Bytes stored.
    pub size: u64,
}

impl Backend {
    /// Opens the store `config` names.
    pub fn open(config: &BackendConfig) -> Result<Backend, StorageError> {
        let store: Arc<dyn ObjectStore> = match config {
            BackendConfig::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| StorageError::Config(format!("{}: {e}", root.display())))?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(root)
                        .map_err(|e| StorageError::Config(e.to_string()))?
                        // An interrupted write leaves no partial object.
                        .with_automatic_cleanup(true),
                )
            }
            BackendConfig::S3 { endpoint, bucket, region, credentials } => {
                let mut b = match credentials {
                    Some((key, secret)) => {
                        AmazonS3Builder::new().with_access_key_id(key).with_secret_access_key(secret)
                    }
                    None => AmazonS3Builder::from_env(),
                };
                b = b.with_bucket_name(bucket).with_region(region);
                if let Some(e) = endpoint {
                    // A local server: path-style requests, plain HTTP on
                    // loopback allowed.
                    b = b
                        .with_endpoint(e)
                        .with_virtual_hosted_style_request(false)
                        .with_allow_http(e.starts_with("http://"));
                }
                Arc::new(b.build().map_err(|e| StorageError::Config(e.to_string()))?)
            }
        };
        let local_root = match config {
            BackendConfig::Local { root } => Some(root.clone()),
            BackendConfig::S3 { .. } => None,
        };
        Ok(Backend { store, describe: config.to_string(), local_root })
    }

    /// Whether objects are files on local disk (inside the node's data
    /// directory, backed up with it), not in a bucket.
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// What this store is (for logs; no secret).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn path(key: &ObjectKey) -> Path {
        Path::from(key.to_string())
    }

    /// Writes `bytes` at `key`, which must not exist yet.
    pub async fn put_new(&self, key: &ObjectKey, bytes: Bytes) -> Result<(), StorageError> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        self.store
            .put_opts(&Self::path(key), PutPayload::from_bytes(bytes), opts)
            .await
            .map(|_| ())
            .map_err(|e| store_error(&key.to_string(), e))
    }

    /// The whole object.
    pub async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let k = key.to_string();
        let got = self.store.get(&Self::path(key)).await.map_err(|e| store_error(&k, e))?;
        got.bytes().await.map_err(|e| store_error(&k, e))
    }

    /// Bytes `range` of the object.
    pub async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.store.get_range(&Self::path(key), range).await.map_err(|e| store_error(&key.to_string(), e))
    }

    /// Deletes the object (absent is fine: deletion is what was asked).
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store.delete(&Self::path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(&key.to_string(), e)),
        }
    }

    /// Writes `bytes` at `path`, a key outside the attachments' layout
    /// (backups' sealed blobs and manifests), replacing what is there.
    pub async fn put_raw(&self, path: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&Path::from(path), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| store_error(path, e))
    }

    /// The object at `path`.
    pub async fn get_raw(&self, path: &str) -> Result<Bytes, StorageError> {
        let got = self.store.get(&Path::from(path)).await.map_err(|e| store_error(path, e))?;
        got.bytes().await.map_err(|e| store_error(path, e))
    }

    /// The size of the object at `path`, if there is one.
    pub async fn size_raw(&self, path: &str) -> Result<Option<u64>, StorageError> {
        match self.store.head(&Path::from(path)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(path, e)),
        }
    }

    /// Every object of `tenant` (keys of another shape are skipped).
    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<Listed>, StorageError> {
        use futures::TryStreamExt;
        let prefix = Path::from(tenant.as_str());
        let metas: Vec<_> =
            self.store.list(Some(&prefix)).try_collect().await.map_err(|e| StorageError::Store(e.to_string()))?;
        let mut out: Vec<Listed> = metas
            .into_iter()
            .filter_map(|m| ObjectKey::parse(m.location.as_ref()).map(|key| Listed { key, size: m.size }))
            .filter(|l| &l.key.tenant == tenant)
            .collect();
        out.sort_by_key(|l| l.key.to_string());
        Ok(out)
    }

    /// A multipart upload to `key`, in storage class `class` when given
    /// (S3's `x-amz-storage-class`).
    async fn start_multipart(
        &self,
        key: &ObjectKey,
        class: Option<&str>,
    ) -> Result<Box<dyn MultipartUpload>, StorageError> {
        let mut opts = object_store::PutMultipartOptions::default();
        if let Some(c) = class {
            opts.attributes.insert(object_store::Attribute::StorageClass, c.to_string().into());
        }
        self.store.put_multipart_opts(&Self::path(key), opts).await.map_err(|e| store_error(&key.to_string(), e))
    }

    /// Starts a sealed upload to `key` under the file's `data_key`, bound
    /// to `binding`.
    pub async fn sealed_upload(
        &self,
        key: &ObjectKey,
        data_key: &[u8; 32],
        binding: &[u8],
    ) -> Result<SealedUpload, StorageError> {
        self.sealed_upload_in(key, data_key, binding, None).await
    }

    /// [`Backend::sealed_upload`] in storage class `class` (S3's
    /// `x-amz-storage-class`; a local store has one class and ignores it).
    pub async fn sealed_upload_in(
        &self,
        key: &ObjectKey,
        data_key: &[u8; 32],
        binding: &[u8],
        class: Option<&str>,
    ) -> Result<SealedUpload, StorageError> {
        let k = key.to_string();
        let class = class.filter(|_| self.local_root.is_none()).map(str::to_string);
        let upload = self.start_multipart(key, class.as_deref()).await?;
        let sealer = Sealer::new(data_key, binding);
        let mut hash = Sha256::new();
        hash.update(sealer.header());
        let pending = sealer.header().to_vec();
        let local = self.local_root.as_ref().map(|root| (root.clone(), k.clone()));
        Ok(SealedUpload { key: k, upload, sealer: Some(sealer), hash, pending, size: 0, parts: 0, local, class })
    }
}

impl Backend {
    /// Stores the sealed stream in the local file `path` at `key`, a key
    /// no other file has (stored again after a crash, the object is
    /// replaced whole, never mixed). On local disk the file is linked into
    /// place (no copy; the caller removes its own name afterwards), on S3
    /// sent as multipart parts read from the file — continuing `parts`,
    /// the parts already sent while the file was being written, when they
    /// are for this key. Returns what was stored, with the SHA-256 of its
    /// bytes.
    pub async fn put_file(
        &self,
        key: &ObjectKey,
        path: &std::path::Path,
        class: Option<&str>,
        parts: Option<FileParts>,
    ) -> Result<Stored, StorageError> {
        let k = key.to_string();
        if let Some(root) = &self.local_root {
            let io = |e: std::io::Error| StorageError::Store(format!("storing {k} from {}: {e}", path.display()));
            let (root, src, key_path) = (root.clone(), path.to_path_buf(), k.clone());
            let (size, sha256) = tokio::task::spawn_blocking(move || link_local(&root, &key_path, &src))
                .await
                .map_err(|e| StorageError::Store(e.to_string()))?
                .map_err(io)?;
            return Ok(Stored { size, sha256, parts: 1, class: None });
        }
        let parts = match parts {
            Some(p) if p.key == k => p,
            other => {
                if let Some(stale) = other {
                    stale.abort().await;
                }
                match self.start_file(key, class).await? {
                    Some(p) => p,
                    None => return Err(StorageError::Config("a local store has no multipart file upload".into())),
                }
            }
        };
        parts.finish(path).await
    }

    /// Starts sending a file that is still being written to `key` as
    /// multipart parts ([`FileParts`]); `None` on local disk, where a
    /// finished file is linked instead.
    pub async fn start_file(&self, key: &ObjectKey, class: Option<&str>) -> Result<Option<FileParts>, StorageError> {
        if self.local_root.is_some() {
            return Ok(None);
        }
        let k = key.to_string();
        let class = class.map(str::to_string);
        let upload = self.start_multipart(key, class.as_deref()).await?;
        Ok(Some(FileParts {
            key: k,
            upload,
            sent: 0,
            hash: Sha256::new(),
            parts: 0,
            in_flight: std::collections::VecDeque::new(),
            class,
        }))
    }
}

/// A file sent to S3 as multipart parts while it is still being written:
/// every whole part of its durable beginning goes out as soon as it is
/// there ([`FileParts::advance`]), so completing the file sends only its
/// end. Parts are read back from the file (the page cache), hashed in
/// order, and sent [`PARTS_IN_FLIGHT`] at a time in the background.
pub struct FileParts {
    key: String,
    upload: Box<dyn MultipartUpload>,
    sent: u64,
    hash: Sha256,
    parts: usize,
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<object_store::Result<()>>>,
    class: Option<String>,
}

impl std::fmt::Debug for FileParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileParts").field("key", &self.key).field("sent", &self.sent).finish_non_exhaustive()
    }
}

impl FileParts {
    /// Sends every whole part of `path` before byte `durable` (bytes that
    /// will not change) not sent yet.
    pub async fn advance(&mut self, path: &std::path::Path, durable: u64) -> Result<(), StorageError> {
        while self.sent + PART as u64 <= durable {
            self.send_from(path, PART).await?;
        }
        Ok(())
    }

    /// Reads `len` bytes of `path` at the next unsent offset and sends
    /// them as the next part, once fewer than [`PARTS_IN_FLIGHT`] are out.
    async fn send_from(&mut self, path: &std::path::Path, len: usize) -> Result<(), StorageError> {
        let (src, at) = (path.to_path_buf(), self.sent);
        let part = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(src)?;
            file.seek(std::io::SeekFrom::Start(at))?;
            let mut part = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut part)?;
            Ok(part)
        })
        .await
        .map_err(|e| StorageError::Store(e.to_string()))?
        .map_err(|e| StorageError::Store(format!("reading {} for {}: {e}", path.display(), self.key)))?;
        if part.len() != len {
            return Err(StorageError::Store(format!("{} is shorter than what was to be sent", path.display())));
        }
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.wait_one().await?;
        }
        self.hash.update(&part);
        self.sent += len as u64;
        self.parts += 1;
        self.in_flight.push_back(tokio::spawn(self.upload.put_part(PutPayload::from(part))));
        Ok(())
    }

    async fn wait_one(&mut self) -> Result<(), StorageError> {
        if let Some(part) = self.in_flight.pop_front() {
            part.await.map_err(|e| StorageError::Store(e.to_string()))?.map_err(|e| store_error(&self.key, e))?;
        }
        Ok(())
    }

    /// Sends the rest of the complete file `path` and completes the
    /// object (aborted on failure: nothing partial stays).
    pub async fn finish(mut self, path: &std::path::Path) -> Result<Stored, StorageError> {
        let done: Result<(), StorageError> = async {
            let len =
                std::fs::metadata(path).map_err(|e| StorageError::Store(format!("{}: {e}", path.display())))?.len();
            if len < self.sent {
                return Err(StorageError::Store(format!("{} is shorter than its parts sent", path.display())));
            }
            self.advance(path, len).await?;
            if len > self.sent || self.parts == 0 {
                self.send_from(path, (len - self.sent) as usize).await?;
            }
            while !self.in_flight.is_empty() {
                self.wait_one().await?;
            }
            self.upload.complete().await.map_err(|e| store_error(&self.key, e))?;
            Ok(())
        }
        .await;
        if let Err(e) = done {
            self.abort().await;
            return Err(e);
        }
        Ok(Stored { size: self.sent, sha256: self.hash.finalize().into(), parts: self.parts, class: self.class })
    }

    /// Abandons the upload (its parts are deleted by the server).
    pub async fn abort(mut self) {
        for part in self.in_flight.drain(..) {
            part.abort();
        }
        let _ = self.upload.abort().await;
    }
}

/// Links `src` into a local store at `key` (replacing what is there),
/// hashing it; synced down to the root. Copied when the link is refused
/// (another file system).
fn link_local(root: &std::path::Path, key: &str, src: &std::path::Path) -> std::io::Result<(u64, [u8; 32])> {
    use std::io::Read;
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    let mut file = std::fs::File::open(src)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    let dest = root.join(key);
    let dir = dest.parent().ok_or_else(|| std::io::Error::other("an object key names a directory"))?;
    std::fs::create_dir_all(dir)?;
    // A name no object key has (`ObjectKey::parse` refuses it), so a
    // crash's leftover is never listed as an object.
    let tmp = dir.join(format!(".{}.link", dest.file_name().and_then(|n| n.to_str()).unwrap_or("object")));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp)?;
    }
    std::fs::rename(&tmp, &dest)?;
    sync_local(root, key)?;
    Ok((size, hash.finalize().into()))
}

/// A file being sealed into the store, part by part.
#[derive(Debug)]
pub struct SealedUpload {
    key: String,
    upload: Box<dyn MultipartUpload>,
    sealer: Option<Sealer>,
    hash: Sha256,
    pending: Vec<u8>,
    size: u64,
    parts: usize,
    /// A local store's root and the key: synced once complete.
    local: Option<(PathBuf, String)>,
    /// The storage class the object is written in (S3 only).
    class: Option<String>,
}

/// Syncs a completed local object and the directories down to it.
fn sync_local(root: &std::path::Path, key: &str) -> std::io::Result<()> {
    let file = root.join(key);
    std::fs::File::open(&file)?.sync_all()?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Ciphertext bytes stored.
    pub size: u64,
    /// SHA-256 of the stored ciphertext.
    pub sha256: [u8; 32],
    /// Multipart parts sent.
    pub parts: usize,
    /// The storage class it was written in (`None`: the store's only one).
    pub class: Option<String>,
}

impl SealedUpload {
    /// Seals `plaintext` and sends every whole part it completes.
    pub async fn write(&mut self, plaintext: &[u8]) -> Result<(), StorageError> {
        // Sealed straight into the part being built, which is then moved
        // (not copied) into the request once it holds a part's worth: a
        // part is PART bytes or up to one chunk more.
        let step = PART.max(crate::stream::CHUNK);
        for piece in plaintext.chunks(step) {
            let sealer = self.sealer.as_mut().ok_or(StreamError::TooLong)?;
            let before = self.pending.len();
            sealer.update_into(piece, &mut self.pending)?;
            self.hash.update(&self.pending[before..]);
            if self.pending.len() >= PART {
                let part = std::mem::replace(&mut self.pending, Vec::with_capacity(PART + 2 * SEALED_CHUNK));
                self.send(part).await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, part: Vec<u8>) -> Result<(), StorageError> {
        self.size += part.len() as u64;
        self.parts += 1;
        self.upload.put_part(PutPayload::from(part)).await.map_err(|e| store_error(&self.key, e))
    }

    /// Seals the last chunk, sends the last part, completes the object.
    pub async fn finish(mut self) -> Result<Stored, StorageError> {
        let last = self.sealer.take().ok_or(StreamError::TooLong)?.finish()?;
        self.hash.update(&last);
        self.pending.extend_from_slice(&last);
        let part = std::mem::take(&mut self.pending);
        self.send(part).await?;
        self.upload.complete().await.map_err(|e| store_error(&self.key, e))?;
        if let Some((root, key)) = self.local.take() {
            tokio::task::spawn_blocking(move || sync_local(&root, &key))
                .await
                .map_err(|e| StorageError::Store(e.to_string()))?
                .map_err(|e| StorageError::Store(format!("syncing {}: {e}", self.key)))?;
        }
        Ok(Stored { size: self.size, sha256: self.hash.finalize().into(), parts: self.parts, class: self.class.take() })
    }

    /// Abandons the upload: nothing stays behind.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        self.upload.abort().await.map_err(|e| store_error(&self.key, e))
    }
}
