//! Backups of a node's data.
//!
//! A backup captures a set of directories at one point in time — every
//! RocksDB store through a checkpoint (hard links; writers are not paused),
//! every other file as it is — and stores each file in a **target** as a
//! blob: zstd-compressed, then sealed as a STREAM (XChaCha20-Poly1305, chunked, so
//! truncation and reordering are detected) under a key derived from the
//! backup key and a random salt. Blobs are content-addressed by a keyed MAC
//! of the file's SHA-256, so an unchanged file (an SST, an object) is not
//! stored again by the next backup (incremental), and the address reveals
//! nothing about the content to whoever holds the target.
//!
//! A **manifest** lists every file (path, size, SHA-256, blob) and each
//! store's state digest (keys per column family and a hash over them, in
//! order), and is signed with the node's Ed25519 key. `verify` checks the
//! signature, opens every blob and compares the bytes with the manifest,
//! restores into a scratch directory, opens the stores and compares their
//! digests with those recorded at capture. `restore` does the same into an
//! empty directory (it never overwrites anything) and renames it into place.
//!
//! The backup key is kept apart from the data and from the KEKs; the KEKs
//! themselves are a separate set sealed under a recovery key the operator
//! keeps offline.
//!
//! Knows nothing about HTTP or about who may read what.

pub mod blob;
pub mod capture;
pub mod key;
pub mod manifest;
mod ops;
pub mod stream;
pub mod target;

pub use ops::{
    create, create_with_objects, list, prune, restore, restore_except, verify, Created, LiveStore, ObjectSource,
    Progress, Pruned, Retention, Source, Summary, Verified,
};

/// Why a backup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A RocksDB store could not be opened or checkpointed.
    #[error("store {path}: {message}")]
    Store {
        /// The store's directory.
        path: String,
        /// RocksDB's message.
        message: String,
    },
    /// A store is open in another process (the node is running): capture
    /// it from that process instead.
    #[error("store {0} is in use by a running node: stop it, or back up through the running node")]
    InUse(String),
    /// A blob does not open: changed, truncated, reordered, or sealed under
    /// another key or address.
    #[error("blob {0} does not authenticate (changed, truncated, reordered, or not this backup key's)")]
    Tampered(String),
    /// A blob the manifest names is not in the target.
    #[error("blob {0} is missing from the target")]
    Missing(String),
    /// A restored file is not what the manifest says.
    #[error("{path}: {what}")]
    Mismatch {
        /// The file.
        path: String,
        /// What differs.
        what: String,
    },
    /// The manifest's signature does not verify under the node's key.
    #[error("the manifest of backup {0} is not signed by the node's key")]
    Signature(String),
    /// The manifest does not parse, or names a path outside its directory.
    #[error("manifest: {0}")]
    Manifest(String),
    /// No such backup in the target.
    #[error("no backup {0} in the target")]
    NotFound(String),
    /// A restore's destination holds something already.
    #[error("{0} exists and is not empty: a restore never overwrites")]
    NotEmpty(String),
    /// A restored store's state differs from the one captured.
    #[error("store {store}: family {family} restored as {restored}, captured as {captured}")]
    Digest {
        /// The store.
        store: String,
        /// The column family.
        family: String,
        /// Its digest at capture.
        captured: String,
        /// Its digest after restore.
        restored: String,
    },
    /// The backup key file is unusable.
    #[error("backup key {0}")]
    Key(String),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.display().to_string(), source }
}

/// Result alias.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;
