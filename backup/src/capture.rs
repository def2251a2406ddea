//! Consistent captures of RocksDB stores, and their state digests.
//!
//! A store is captured through a checkpoint: RocksDB hard-links its live
//! SST files and copies the rest into a new directory, consistent at one
//! sequence number, without pausing writers. The digest of a store is,
//! per column family, its key count and a SHA-256 over every key and value
//! in order: two stores with equal digests hold the same state.

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{Options, DB};
use sha2::{Digest, Sha256};

use crate::manifest::FamilyDigest;
use crate::{BackupError, Result};

/// Whether `dir` holds a RocksDB store.
pub fn is_store(dir: &Path) -> bool {
    dir.join("CURRENT").is_file() && dir.join("IDENTITY").is_file()
}

fn store_error(dir: &Path, e: rocksdb::Error) -> BackupError {
    let message = e.to_string();
    if message.contains("lock") || message.contains("Resource temporarily unavailable") {
        return BackupError::InUse(dir.display().to_string());
    }
    BackupError::Store { path: dir.display().to_string(), message }
}

fn families(dir: &Path) -> Result<Vec<String>> {
    DB::list_cf(&Options::default(), dir).map_err(|e| store_error(dir, e))
}

/// Checkpoints the store in `dir` into `into` (which must not exist; on
/// the same file system, for the hard links). Opening the store takes its
/// lock: a store a running node holds is [`BackupError::InUse`].
pub fn checkpoint(dir: &Path, into: &Path) -> Result<()> {
    let names = families(dir)?;
    let db = DB::open_cf(&Options::default(), dir, &names).map_err(|e| store_error(dir, e))?;
    checkpoint_open(&db, into).map_err(|e| store_error(dir, e))
}

/// Checkpoints an open store (the running node's own handle) into `into`.
pub fn checkpoint_open(db: &DB, into: &Path) -> std::result::Result<(), rocksdb::Error> {
    rocksdb::checkpoint::Checkpoint::new(db)?.create_checkpoint(into)
}

/// The state digest of the store in `dir`, opened read-only.
pub fn digest(dir: &Path) -> Result<BTreeMap<String, FamilyDigest>> {
    let names = families(dir)?;
    let db = DB::open_cf_for_read_only(&Options::default(), dir, &names, false).map_err(|e| store_error(dir, e))?;
    let mut out = BTreeMap::new();
    for name in &names {
        let cf = db.cf_handle(name).ok_or_else(|| BackupError::Store {
            path: dir.display().to_string(),
            message: format!("no column family {name}"),
        })?;
        let mut hash = Sha256::new();
        let mut keys = 0u64;
        for item in db.iterator_cf(&cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(|e| store_error(dir, e))?;
            hash.update((k.len() as u64).to_be_bytes());
            hash.update(&k);
            hash.update((v.len() as u64).to_be_bytes());
            hash.update(&v);
            keys += 1;
        }
        out.insert(name.clone(), FamilyDigest { keys, sha256: hex::encode(hash.finalize()) });
    }
    Ok(out)
}
