//! RocksDB access: opening the database (families from [`crate::schema`]),
//! and [`Stage`], the write buffer every block goes through.
//!
//! A `Stage` reads through its own pending writes to the database, records
//! the previous value of every derived key the first time a block touches
//! it (the block's undo log), and turns into one `WriteBatch` that is
//! written with a synced WAL. Blocks, re-orgs and their undo logs are thus
//! all-or-nothing on disk.

use std::collections::HashMap;
use std::path::Path;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use crate::schema::{self, Cf, UndoLog};
use crate::{Error, Result};

/// A key and its value as RocksDB iterators return them.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// One write of a block's batch: the family, the key and the new value
/// (`None` deletes the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The column family.
    pub cf: Cf,
    /// The key.
    pub key: Vec<u8>,
    /// The value written, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// The index database.
pub struct IndexDb {
    db: DB,
}

impl std::fmt::Debug for IndexDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexDb").field("path", &self.db.path()).finish()
    }
}

impl IndexDb {
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
    /// older index forward and refusing a newer one ([`crate::migrate`]).
    pub fn open(path: &Path) -> Result<IndexDb> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        // A WAL file is kept until every family with data in it has been
        // flushed, and families written rarely (meta, settings) fill their
        // memtables slowly: without a cap, WALs pile up to four times the
        // sum of all memtables (gigabytes with 24 families). Past this size
        // RocksDB flushes the stale families and recycles the WAL.
        opts.set_max_total_wal_size(512 << 20);
        // Point lookups dominate queries: bloom filters and a shared block
        // cache keep them to one disk read at most.
        let cache = Cache::new_lru_cache(256 << 20);
        let families = Cf::ALL.iter().map(|cf| {
            let mut table = BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            table.set_block_cache(&cache);
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            // Most reads while ingesting are of keys that do not exist yet
            // (the undo log asks for every derived key's previous value):
            // a whole-key bloom filter on the memtable answers those
            // without searching its skip list.
            o.set_memtable_whole_key_filtering(true);
            o.set_memtable_prefix_bloom_ratio(0.02);
            // Without it nothing is compressed (Snappy, RocksDB's default, is
            // not built); lz4 makes tables about a third smaller.
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        // A store written by a newer build may hold families this one does
        // not know; RocksDB opens a database only with all of them, and the
        // version must be read to refuse it precisely.
        let known: Vec<&str> = Cf::ALL.iter().map(|cf| cf.name()).collect();
        let unknown = DB::list_cf(&Options::default(), path)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !known.contains(&n.as_str()))
            .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, families.chain(unknown))?;
        let index = IndexDb { db };
        crate::migrate::migrate(&index, crate::migrate::MIGRATIONS, schema::SCHEMA_VERSION)?;
        Ok(index)
    }

    /// Whether no family but `meta` holds a key: an index never written.
    pub(crate) fn is_empty(&self) -> Result<bool> {
        for cf in Cf::ALL.iter().filter(|cf| **cf != Cf::Meta) {
            if self.db.iterator_cf(self.cf(*cf), rocksdb::IteratorMode::Start).next().transpose()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(cf.name()).expect("every family is created at open")
    }

    /// Reads one key.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// Writes a batch durably (synced WAL).
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Writes `writes` durably as one batch, in order, as [`Stage::commit`]
    /// writes a block: for replaying the writes [`Stage::writes`] recorded
    /// (see [`crate::Indexer::ingest_recorded`]) into another database, as
    /// `medanchor bench indexer` does for its raw-RocksDB baseline.
    pub fn write_all(&self, writes: &[Write]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for w in writes {
            match &w.value {
                Some(v) => batch.put_cf(self.cf(w.cf), &w.key, v),
                None => batch.delete_cf(self.cf(w.cf), &w.key),
            }
        }
        self.write(batch)
    }

    /// Reads many keys of `cf` at once, `keys` sorted: RocksDB's batched
    /// MultiGet, far cheaper per key than one [`IndexDb::get`] each.
    pub fn get_many<'k>(&self, cf: Cf, keys: impl IntoIterator<Item = &'k [u8]>) -> Result<Vec<Option<Vec<u8>>>> {
        self.db
            .batched_multi_get_cf(self.cf(cf), keys, true)
            .into_iter()
            .map(|r| r.map(|v| v.map(|slice| slice.to_vec())).map_err(Error::from))
            .collect()
    }

    /// A consistent read view.
    pub fn snapshot(&self) -> rocksdb::Snapshot<'_> {
        self.db.snapshot()
    }

    /// Iterates `cf` from `start` while keys begin with `prefix`.
    pub fn scan_prefix<'a>(
        &'a self,
        snapshot: &'a rocksdb::Snapshot<'a>,
        cf: Cf,
        prefix: Vec<u8>,
        start: &[u8],
    ) -> impl Iterator<Item = Result<KeyValue>> + 'a {
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_snapshot(snapshot);
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        self.db
            .iterator_cf_opt(self.cf(cf), opts, mode)
            .map(|r| r.map_err(Error::from))
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
    }

    /// Reads one key in a snapshot.
    pub fn get_at(&self, snapshot: &rocksdb::Snapshot<'_>, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(snapshot.get_cf(self.cf(cf), key)?)
    }

    /// Every key and value of `cf` (tests and replay comparisons).
    pub fn dump(&self, cf: Cf) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Error::from))
            .collect()
    }
}

/// The pending writes of one family: key → (the block that last wrote it,
/// 0 for writes outside a block; the new value, `None` deleting).
type Pending = HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

/// Pending writes of one ingest step (one block, or a re-org).
pub struct Stage<'a> {
    db: &'a IndexDb,
    /// Pending writes, one map per family (indexed by `Cf as usize`, so a
    /// lookup borrows the key).
    writes: Vec<Pending>,
    /// Number of the block being applied (1, 2, … within this stage).
    block: u64,
    /// The undo log of the block being applied, if one is open.
    undo: Option<OpenUndo>,
}

/// The undo log of the block being applied, and which of its entries
/// still need their previous value read from the database. Those reads
/// are deferred to [`Stage::end_block`] and done in one batched read per
/// family: the database does not change while a stage is open, so the
/// value read then is the value the key had when the block first wrote it.
struct OpenUndo {
    log: UndoLog,
    unread: Vec<usize>,
}

impl<'a> Stage<'a> {
    /// An empty stage over `db`.
    pub fn new(db: &'a IndexDb) -> Self {
        Stage { db, writes: Cf::ALL.iter().map(|_| HashMap::new()).collect(), block: 0, undo: None }
    }

    fn staged(&self, cf: Cf, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.writes[cf as usize].get(key).map(|(_, value)| value)
    }

    /// Reads through pending writes.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.staged(cf, key) {
            Some(value) => Ok(value.clone()),
            None => self.db.get(cf, key),
        }
    }

    /// Reads and decodes a row.
    pub fn row<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        let decode = |bytes: &[u8]| schema::decode(cf.name(), bytes);
        match self.staged(cf, key) {
            Some(None) => Ok(None),
            Some(Some(bytes)) => Ok(Some(decode(bytes)?)),
            None => self.db.get(cf, key)?.map(|bytes| decode(&bytes)).transpose(),
        }
    }

    /// Starts a block's undo log.
    pub fn begin_block(&mut self) {
        self.block += 1;
        self.undo = Some(OpenUndo { log: UndoLog::default(), unread: Vec::new() });
    }

    /// Ends the block; returns its undo log, complete.
    pub fn end_block(&mut self) -> Result<UndoLog> {
        let Some(OpenUndo { mut log, unread }) = self.undo.take() else { return Ok(UndoLog::default()) };
        let mut by_family: Vec<Vec<usize>> = vec![Vec::new(); Cf::ALL.len()];
        for i in unread {
            by_family[usize::from(log.entries[i].0)].push(i);
        }
        for (&cf, mut entries) in Cf::ALL.iter().zip(by_family) {
            if entries.is_empty() {
                continue;
            }
            entries.sort_unstable_by(|&a, &b| log.entries[a].1.cmp(&log.entries[b].1));
            let values = self.db.get_many(cf, entries.iter().map(|&i| log.entries[i].1.as_slice()))?;
            for (i, value) in entries.into_iter().zip(values) {
                log.entries[i].2 = value;
            }
        }
        Ok(log)
    }

    /// Stages a write; a derived key's value before the block is recorded
    /// in the undo log the first time the block touches it.
    fn write(&mut self, cf: Cf, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<()> {
        let pending = &mut self.writes[cf as usize];
        if !cf.is_derived() {
            pending.insert(key, (0, value));
            return Ok(());
        }
        let Some(OpenUndo { log, unread }) = &mut self.undo else {
            return Err(Error::Invariant(format!("derived write to {} outside a block", cf.name())));
        };
        match pending.get_mut(&key) {
            Some((block, staged)) => {
                let previous = std::mem::replace(staged, value);
                if *block != self.block {
                    // Staged by an earlier step of this stage (a rolled-back
                    // or earlier block of a re-org): that is the value before.
                    *block = self.block;
                    log.entries.push((cf as u8, key, previous));
                }
            }
            None => {
                // The value before is the database's: read at end_block.
                unread.push(log.entries.len());
                log.entries.push((cf as u8, key.clone(), None));
                pending.insert(key, (self.block, value));
            }
        }
        Ok(())
    }

    /// Writes a value (derived families only inside a block).
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.write(cf, key, Some(value))
    }

    /// Writes an encoded row.
    pub fn put_row<T: serde::Serialize>(&mut self, cf: Cf, key: Vec<u8>, row: &T) -> Result<()> {
        self.put(cf, key, schema::encode(row))
    }

    /// Deletes a key.
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) -> Result<()> {
        self.write(cf, key, None)
    }

    /// Restores a block's undo log (newest write first), bypassing the
    /// undo recording: the log is being consumed, not produced.
    pub fn restore(&mut self, log: &UndoLog) -> Result<()> {
        for (tag, key, previous) in log.entries.iter().rev() {
            let cf = Cf::from_tag(*tag).ok_or_else(|| Error::Corrupt(format!("undo log names family {tag}")))?;
            self.writes[cf as usize].insert(key.clone(), (0, previous.clone()));
        }
        Ok(())
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.writes.iter().map(Pending::len).sum()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.writes.iter().all(Pending::is_empty)
    }

    /// The pending writes in commit order: by family, then by key. Sorted
    /// keys let RocksDB insert into its memtables from where the previous
    /// insert left off rather than searching from the top each time.
    fn sorted(&self) -> impl Iterator<Item = (Cf, &[u8], Option<&[u8]>)> {
        Cf::ALL.iter().flat_map(move |&cf| {
            let mut entries: Vec<_> = self.writes[cf as usize].iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            entries.into_iter().map(move |(key, (_, value))| (cf, key.as_slice(), value.as_deref()))
        })
    }

    /// The pending writes: exactly what [`Stage::commit`] will write, in
    /// the same order (each key appears once).
    pub fn writes(&self) -> Vec<Write> {
        self.sorted()
            .map(|(cf, key, value)| Write { cf, key: key.to_vec(), value: value.map(<[u8]>::to_vec) })
            .collect()
    }

    /// Writes everything in one synced batch.
    pub fn commit(self) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (cf, key, value) in self.sorted() {
            match value {
                Some(v) => batch.put_cf(self.db.cf(cf), key, v),
                None => batch.delete_cf(self.db.cf(cf), key),
            }
        }
        self.db.write(batch)
    }
}
