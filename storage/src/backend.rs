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
/// Parts of one file sent at once. One: SeaweedFS on two cores took each
/// part of two or four concurrent ones slower than the whole sequence
/// (measured with `medanchor-bench attachments`); reading and hashing the
/// next part still overlaps the one being sent.
const PARTS_IN_FLIGHT: usize = 1;
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
        let mut opts = object_store::PutMultipartOptions::default();
        if let Some(c) = &class {
            opts.attributes.insert(object_store::Attribute::StorageClass, c.clone().into());
        }
        let upload = self.store.put_multipart_opts(&Self::path(key), opts).await.map_err(|e| store_error(&k, e))?;
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
    /// sent as multipart parts read from the file, several in flight.
    /// Returns what was stored, with the SHA-256 of its bytes.
    pub async fn put_file(
        &self,
        key: &ObjectKey,
        path: &std::path::Path,
        class: Option<&str>,
    ) -> Result<Stored, StorageError> {
        let k = key.to_string();
        let io = |e: std::io::Error| StorageError::Store(format!("storing {k} from {}: {e}", path.display()));
        if let Some(root) = &self.local_root {
            let (root, src, key_path) = (root.clone(), path.to_path_buf(), k.clone());
            let (size, sha256) = tokio::task::spawn_blocking(move || link_local(&root, &key_path, &src))
                .await
                .map_err(|e| StorageError::Store(e.to_string()))?
                .map_err(io)?;
            return Ok(Stored { size, sha256, parts: 1, class: None });
        }
        let class = class.map(str::to_string);
        let mut opts = object_store::PutMultipartOptions::default();
        if let Some(c) = &class {
            opts.attributes.insert(object_store::Attribute::StorageClass, c.clone().into());
        }
        let mut upload = self.store.put_multipart_opts(&Self::path(key), opts).await.map_err(|e| store_error(&k, e))?;
        // A reader thread reads and hashes the next parts off the async
        // threads while one is sent.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let src = path.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, [u8; 32])> {
            use std::io::Read;
            let mut file = std::fs::File::open(src)?;
            let (mut hash, mut size) = (Sha256::new(), 0u64);
            loop {
                let mut part = Vec::with_capacity(PART);
                (&mut file).take(PART as u64).read_to_end(&mut part)?;
                if part.is_empty() {
                    break;
                }
                hash.update(&part);
                size += part.len() as u64;
                if tx.blocking_send(Bytes::from(part)).is_err() {
                    break;
                }
            }
            Ok((size, hash.finalize().into()))
        });
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut parts = 0;
        let sent: Result<(), StorageError> = async {
            use futures::StreamExt;
            while let Some(part) = rx.recv().await {
                while in_flight.len() >= PARTS_IN_FLIGHT {
                    in_flight.next().await.transpose().map_err(|e| store_error(&k, e))?;
                }
                in_flight.push(upload.put_part(PutPayload::from_bytes(part)));
                parts += 1;
            }
            while let Some(done) = in_flight.next().await {
                done.map_err(|e| store_error(&k, e))?;
            }
            Ok(())
        }
        .await;
        drop(rx);
        let read = reader.await.map_err(|e| StorageError::Store(e.to_string()))?.map_err(io);
        let (size, sha256) = match (sent, read) {
            (Ok(()), Ok(r)) if parts > 0 => r,
            (sent, read) => {
                let _ = upload.abort().await;
                sent?;
                read?;
                return Err(StorageError::Store(format!("{k}: the file to store is empty")));
            }
        };
        if let Err(e) = upload.complete().await {
            let _ = upload.abort().await;
            return Err(store_error(&k, e));
        }
        Ok(Stored { size, sha256, parts, class })
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
