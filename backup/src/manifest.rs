//! What a backup holds, signed by the node.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{BackupError, Result};

/// The manifest format.
pub const FORMAT: u32 = 1;

/// One captured file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backed-up set's root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The blob holding it.
    pub blob: String,
}

/// One column family's state: its keys, and a hash over every key and
/// value in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyDigest {
    /// Keys.
    pub keys: u64,
    /// SHA-256 over (length-prefixed key, length-prefixed value)*, hex.
    pub sha256: String,
}

/// A RocksDB store's state at capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDigest {
    /// The store's directory, relative to the set's root.
    pub path: String,
    /// Per column family.
    pub families: BTreeMap<String, FamilyDigest>,
}

/// A backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The backup's id (sorts by time).
    pub id: String,
    /// Which set: `data`, or `keys` (sealed under the recovery key).
    pub set: String,
    /// Unix ms of the capture.
    pub created_ms: u64,
    /// The node's public key that signed it, hex.
    pub node_key: String,
    /// Every file, by path.
    pub files: Vec<FileEntry>,
    /// Every store's state digest.
    pub stores: Vec<StoreDigest>,
}

impl Manifest {
    /// The files' total size.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A manifest and the node's signature over its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// The manifest.
    pub manifest: Manifest,
    /// Ed25519 over `serde_json::to_vec(&manifest)`, hex.
    pub signature: String,
}

impl Signed {
    /// Signs `manifest` with the node's key (its public key recorded in it).
    pub fn sign(mut manifest: Manifest, key: &SigningKey) -> Result<Signed> {
        manifest.node_key = hex::encode(key.verifying_key().to_bytes());
        let bytes = serde_json::to_vec(&manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
        Ok(Signed { signature: hex::encode(key.sign(&bytes).to_bytes()), manifest })
    }

    /// The manifest, once its signature verifies under `trusted` (the
    /// node's published key) — or, with none given, under the key it names
    /// (which proves integrity, not origin). Every path must stay inside
    /// the set.
    pub fn verify(&self, trusted: Option<&VerifyingKey>) -> Result<&Manifest> {
        let bad = || BackupError::Signature(self.manifest.id.clone());
        let named: [u8; 32] =
            hex::decode(&self.manifest.node_key).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
        let named = VerifyingKey::from_bytes(&named).map_err(|_| bad())?;
        let key = trusted.unwrap_or(&named);
        let sig: [u8; 64] = hex::decode(&self.signature).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
        let bytes = serde_json::to_vec(&self.manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
        key.verify(&bytes, &Signature::from_bytes(&sig)).map_err(|_| bad())?;
        if self.manifest.format != FORMAT {
            return Err(BackupError::Manifest(format!("format {} is not {FORMAT}", self.manifest.format)));
        }
        for path in self.manifest.files.iter().map(|f| &f.path).chain(self.manifest.stores.iter().map(|s| &s.path)) {
            if !safe_relative(path) {
                return Err(BackupError::Manifest(format!("{path:?} leaves the backed-up directory")));
            }
        }
        Ok(&self.manifest)
    }
}

/// A relative path of plain components (no `..`, no root, no `.`).
pub fn safe_relative(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}
