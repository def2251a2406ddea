//! Off-chain ciphertext storage, behind a trait so the local directory
//! (the default) and an S3-compatible store are interchangeable.
//!
//! Blobs are content-addressed by SHA-256 (the same hash that is anchored
//! on-chain) and written once: a second write of the same bytes is a no-op,
//! and nothing is ever overwritten — versions and optimistic concurrency
//! live in the database and on-chain, not in the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a blob operation failed (IO detail, never contents).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store failed.
    #[error("blob store: {0}")]
    Io(String),
    /// What was read does not hash to its address: the stored bytes were
    /// altered.
    #[error("blob {0} does not match its hash (altered in storage)")]
    Corrupt(String),
}

impl From<BlobError> for crate::error::Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Corrupt(_) => crate::error::Error::Integrity(e.to_string()),
            BlobError::Io(_) => crate::error::Error::internal(e),
        }
    }
}

/// A write-once, content-addressed blob store.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes`; returns their SHA-256 (the address). Durable on return.
    fn put(&self, bytes: &[u8]) -> Result<[u8; 32], BlobError> {
        self.put_parts(&[bytes])
    }
    /// Stores the concatenation of `parts` (without building it) as one
    /// blob; returns its SHA-256. Durable on return.
    fn put_parts(&self, parts: &[&[u8]]) -> Result<[u8; 32], BlobError>;
    /// The bytes at `hash`, checked against it; `None` if absent.
    fn get(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, BlobError>;
    /// Deletes the blob at `hash` (absent is fine), durably: erasure.
    fn delete(&self, hash: &[u8; 32]) -> Result<(), BlobError>;
}

/// Blobs as files `dir/ab/abcdef…` (the hash in hex, fanned out by its
/// first byte).
#[derive(Debug, Clone)]
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// A store in `dir` (created if needed).
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::Io(format!("{}: {e}", dir.display())))?;
        Ok(LocalDir { dir: dir.to_path_buf() })
    }

    fn path(&self, hash: &[u8; 32]) -> PathBuf {
        let name = hex::encode(hash);
        self.dir.join(&name[..2]).join(name)
    }
}

fn io(path: &Path, e: std::io::Error) -> BlobError {
    BlobError::Io(format!("{}: {e}", path.display()))
}

impl BlobStore for LocalDir {
    fn delete(&self, hash: &[u8; 32]) -> Result<(), BlobError> {
        let path = self.path(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path, e)),
        }
        let parent = path.parent().expect("blob paths have a fan-out directory");
        std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(|e| io(parent, e))
    }

    fn put_parts(&self, parts: &[&[u8]]) -> Result<[u8; 32], BlobError> {
        let mut hasher = Sha256::new();
        for p in parts {
            hasher.update(p);
        }
        let hash: [u8; 32] = hasher.finalize().into();
        let path = self.path(&hash);
        if path.exists() {
            return Ok(hash);
        }
        let parent = path.parent().expect("blob paths have a fan-out directory");
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        // Write to a temporary name, sync, then rename: a crash leaves
        // either no blob or the whole blob, never a prefix.
        let tmp = parent.join(format!(".{}.tmp-{}", hex::encode(hash), std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
            for p in parts {
                f.write_all(p).map_err(|e| io(&tmp, e))?;
            }
            f.sync_all().map_err(|e| io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(|e| io(parent, e))?;
        Ok(hash)
    }

    fn get(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        if <[u8; 32]>::from(Sha256::digest(&bytes)) != *hash {
            return Err(BlobError::Corrupt(hex::encode(hash)));
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_read_back_and_detect_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalDir::open(dir.path()).expect("open");
        let hash = store.put(b"ciphertext").expect("put");
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(b"ciphertext")));
        assert_eq!(store.put(b"ciphertext").expect("again"), hash);
        assert_eq!(store.put_parts(&[b"ciph", b"", b"ertext"]).expect("in parts"), hash, "the same blob");
        let parts_hash = store.put_parts(&[b"nonce", b"body", b"tag"]).expect("parts");
        assert_eq!(store.get(&parts_hash).expect("get").as_deref(), Some(&b"noncebodytag"[..]));
        assert_eq!(store.get(&hash).expect("get").as_deref(), Some(&b"ciphertext"[..]));
        assert_eq!(store.get(&[0; 32]).expect("absent"), None);
        std::fs::write(store.path(&hash), b"ciphertexT").expect("tamper");
        assert!(matches!(store.get(&hash), Err(BlobError::Corrupt(_))));
    }
}
