//! RocksDB storage of the devnet chain, and the Clarity VM's view of it.
//!
//! Column families (keys are big-endian where numeric, so byte order is
//! numeric order):
//!
//! | family | key | value | invariant |
//! |---|---|---|---|
//! | `clarity` | Clarity key (UTF-8) | Clarity value string | the state after the tip block |
//! | `clarity_meta` | contract id `\0` key | metadata string | contract analyses and sources |
//! | `blocks` | height (u64 BE) | [`crate::chain::StoredBlock`] JSON | heights 0..=tip, contiguous |
//! | `block_ids` | index block hash | height (u64 BE) | one entry per block |
//! | `txs` | txid | height (u64 BE) ‖ tx index (u32 BE) | one entry per mined tx |
//! | `observer` | — | — | created by every release, never written (delivery cursors are in `meta`) |
//! | `meta` | name | value | `schema` (the version, [`crate::migrate`]), `tip`, `observer/<host:port>` (the last height delivered to that observer, u64 BE) |
//!
//! Everything one block changes — state, metadata, the block, its
//! transaction index and the tip marker — is
//! written in one `WriteBatch` with a synced WAL, so a block reported mined
//! survives `kill -9` and a half-written block never exists.

use std::collections::HashMap;
use std::path::Path;

use clarity_repl::clarity::rusqlite::Connection;
use clarity_repl::clarity::stacks_common::types::chainstate::StacksBlockId;
use clarity_repl::clarity::util::hash::Sha512Trunc256Sum;
use clarity_repl::clarity::vm::database::{ClarityBackingStore, SpecialCaseHandler};
use clarity_repl::clarity::vm::errors::{InterpreterError, InterpreterResult};
use clarity_repl::clarity::vm::types::QualifiedContractIdentifier;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use crate::Result;

pub use crate::migrate::SCHEMA_VERSION;

pub(crate) const CF_CLARITY: &str = "clarity";
pub(crate) const CF_META_CLARITY: &str = "clarity_meta";
pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_BLOCK_IDS: &str = "block_ids";
pub(crate) const CF_TXS: &str = "txs";
pub(crate) const CF_OBSERVER: &str = "observer";
pub(crate) const CF_META: &str = "meta";
const FAMILIES: [&str; 7] = [CF_CLARITY, CF_META_CLARITY, CF_BLOCKS, CF_BLOCK_IDS, CF_TXS, CF_OBSERVER, CF_META];

/// The chain database.
pub struct ChainDb {
    db: DB,
}

impl std::fmt::Debug for ChainDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainDb").field("path", &self.db.path()).finish()
    }
}

impl ChainDb {
    /// The store's directory.
    pub fn path(&self) -> &std::path::Path {
        self.db.path()
    }

    /// A consistent copy of the store in `into` (a RocksDB checkpoint:
    /// hard links on one file system; writers are not paused), for
    /// backups of a running node.
    pub fn checkpoint(&self, into: &Path) -> std::result::Result<(), rocksdb::Error> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(into)
    }

    /// Opens (creating if needed) the database at `path`, migrating an
    /// older store forward and refusing a newer one ([`crate::migrate`]).
    pub fn open(path: &Path) -> Result<Self> {
        let chain = ChainDb::open_unmigrated(path)?;
        crate::migrate::migrate(&chain, crate::migrate::MIGRATIONS, SCHEMA_VERSION)?;
        Ok(chain)
    }

    fn open_unmigrated(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // A store written by a newer build may hold families this one does
        // not know; RocksDB opens a database only with all of them, and the
        // version must be read to refuse it precisely.
        let mut names: Vec<String> = FAMILIES.iter().map(|n| n.to_string()).collect();
        for name in DB::list_cf(&Options::default(), path).unwrap_or_default() {
            if name != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !names.contains(&name) {
                names.push(name);
            }
        }
        let families = names.iter().map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, families)?;
        Ok(ChainDb { db })
    }

    /// Whether no family but `meta` holds a key: a store never written.
    pub(crate) fn is_empty(&self) -> Result<bool> {
        for name in FAMILIES.iter().filter(|n| **n != CF_META) {
            if self.db.iterator_cf(self.cf(name), rocksdb::IteratorMode::Start).next().transpose()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("every family is created at open")
    }

    /// Reads one key.
    pub fn get(&self, family: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(family), key)?)
    }

    /// Writes a batch durably: the WAL is synced before this returns.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }
}

/// State writes of the block being built, on top of the committed state.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// Clarity key → value.
    pub data: HashMap<String, String>,
    /// (contract id, key) → metadata value.
    pub metadata: HashMap<(String, String), String>,
}

impl Overlay {
    /// Adds the overlay's writes to `batch`.
    pub fn write_to(&self, db: &ChainDb, batch: &mut WriteBatch) {
        for (k, v) in &self.data {
            batch.put_cf(db.cf(CF_CLARITY), k.as_bytes(), v.as_bytes());
        }
        for ((contract, key), v) in &self.metadata {
            batch.put_cf(db.cf(CF_META_CLARITY), meta_key(contract, key), v.as_bytes());
        }
    }
}

fn meta_key(contract: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(contract.len() + key.len() + 1);
    k.extend_from_slice(contract.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The Clarity VM's backing store: reads see the overlay, then RocksDB;
/// writes go to the overlay. The chain has a single history (the devnet
/// has one miner and never forks), so state is kept only at the tip.
pub struct BlockStore<'a> {
    db: &'a ChainDb,
    overlay: &'a mut Overlay,
    /// Index block hashes of heights `0..open_height`.
    block_ids: &'a [StacksBlockId],
    open_height: u32,
    open_tip: StacksBlockId,
    /// Required by the trait when the VM is built with sqlite; metadata is
    /// kept in RocksDB instead, so this stays empty.
    side_store: &'a Connection,
    /// A storage failure seen during a call; the VM's trait cannot return
    /// one, so the block producer checks this after every transaction.
    pub failure: Option<String>,
}

impl<'a> BlockStore<'a> {
    /// A store for evaluating in the block at `block_ids.len()` (the open
    /// block, whose id is `open_tip`).
    pub fn new(
        db: &'a ChainDb,
        overlay: &'a mut Overlay,
        block_ids: &'a [StacksBlockId],
        open_tip: StacksBlockId,
        side_store: &'a Connection,
    ) -> Self {
        let open_height = block_ids.len() as u32;
        BlockStore { db, overlay, block_ids, open_height, open_tip, side_store, failure: None }
    }

    fn read(&mut self, family: &str, key: &[u8]) -> Option<String> {
        match self.db.get(family, key) {
            // The VM writes only strings, so the bytes are UTF-8; checking
            // is cheaper than the lossy conversion's copy.
            Ok(v) => {
                v.map(|v| String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                None
            }
        }
    }
}

impl ClarityBackingStore for BlockStore<'_> {
    fn put_all(&mut self, items: Vec<(String, String)>) {
        self.overlay.data.extend(items);
    }

    fn get(&mut self, key: &str) -> Option<String> {
        if let Some(v) = self.overlay.data.get(key) {
            return Some(v.clone());
        }
        self.read(CF_CLARITY, key.as_bytes())
    }

    fn get_with_proof(&mut self, key: &str) -> Option<(String, Vec<u8>)> {
        // No MARF: there is no proof to give.
        self.get(key).map(|v| (v, Vec::new()))
    }

    fn set_block_hash(&mut self, bhh: StacksBlockId) -> InterpreterResult<StacksBlockId> {
        // `at-block` would need historical state, which this store does not
        // keep; only evaluation at the open tip is possible.
        if bhh == self.open_tip {
            Ok(self.open_tip)
        } else {
            Err(InterpreterError::DBError("at-block evaluation is not supported by the devnet".into()).into())
        }
    }

    fn get_block_at_height(&mut self, height: u32) -> Option<StacksBlockId> {
        self.block_ids.get(height as usize).copied()
    }

    fn get_current_block_height(&mut self) -> u32 {
        self.open_height
    }

    fn get_open_chain_tip_height(&mut self) -> u32 {
        self.open_height
    }

    fn get_open_chain_tip(&mut self) -> StacksBlockId {
        self.open_tip
    }

    fn get_side_store(&mut self) -> &Connection {
        self.side_store
    }

    fn get_cc_special_cases_handler(&self) -> Option<SpecialCaseHandler> {
        None
    }

    fn get_contract_hash(
        &mut self,
        contract: &QualifiedContractIdentifier,
    ) -> InterpreterResult<(StacksBlockId, Sha512Trunc256Sum)> {
        let key = clarity_repl::clarity::vm::database::clarity_store::make_contract_hash_key(contract);
        let commitment = self
            .get(&key)
            .ok_or_else(|| InterpreterError::DBError(format!("no contract commitment for {contract}")))?;
        // A commitment is the contract hash (64 hex) then its height (8 hex).
        let (hash, height) = commitment.split_at(commitment.len().saturating_sub(8));
        let hash: [u8; 32] = hex::decode(hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| InterpreterError::DBError("corrupt contract commitment".into()))?;
        let hash = Sha512Trunc256Sum(hash);
        let height = u32::from_str_radix(height, 16)
            .map_err(|_| InterpreterError::DBError("corrupt contract commitment".into()))?;
        let block = self.block_ids.get(height as usize).copied().unwrap_or(self.open_tip);
        Ok((block, hash))
    }

    fn insert_metadata(&mut self, contract: &QualifiedContractIdentifier, key: &str, value: &str) {
        self.overlay.metadata.insert((contract.to_string(), key.to_string()), value.to_string());
    }

    fn get_metadata(&mut self, contract: &QualifiedContractIdentifier, key: &str) -> InterpreterResult<Option<String>> {
        let contract = contract.to_string();
        if let Some(v) = self.overlay.metadata.get(&(contract.clone(), key.to_string())) {
            return Ok(Some(v.clone()));
        }
        Ok(self.read(CF_META_CLARITY, &meta_key(&contract, key)))
    }

    fn get_metadata_manual(
        &mut self,
        _at_height: u32,
        contract: &QualifiedContractIdentifier,
        key: &str,
    ) -> InterpreterResult<Option<String>> {
        self.get_metadata(contract, key)
    }
}
