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

/// The undo log being built and the keys it already covers.
type OpenUndo = (UndoLog, std::collections::HashSet<(Cf, Vec<u8>)>);

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
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<IndexDb> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        // Point lookups dominate queries: bloom filters and a shared block
        // cache keep them to one disk read at most.
        let cache = Cache::new_lru_cache(256 << 20);
        let families = Cf::ALL.iter().map(|cf| {
            let mut table = BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            table.set_block_cache(&cache);
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = DB::open_cf_descriptors(&opts, path, families)?;
        let index = IndexDb { db };
        match index.get(Cf::Meta, schema::meta::SCHEMA)? {
            None => {
                let mut batch = WriteBatch::default();
                batch.put_cf(index.cf(Cf::Meta), schema::meta::SCHEMA, schema::SCHEMA_VERSION);
                index.write(batch)?;
            }
            Some(v) if v == schema::SCHEMA_VERSION => {}
            Some(v) => return Err(Error::Schema { found: String::from_utf8_lossy(&v).into_owned() }),
        }
        Ok(index)
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

/// Pending writes of one ingest step (one block, or a re-org).
pub struct Stage<'a> {
    db: &'a IndexDb,
    writes: HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>,
    /// The undo log of the block being applied, if one is open.
    undo: Option<OpenUndo>,
}

impl<'a> Stage<'a> {
    /// An empty stage over `db`.
    pub fn new(db: &'a IndexDb) -> Self {
        Stage { db, writes: HashMap::new(), undo: None }
    }

    /// Reads through pending writes.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // Borrowed lookup without building the tuple key would need a
        // custom hash map; the copy is small next to a RocksDB read.
        if let Some(v) = self.writes.get(&(cf, key.to_vec())) {
            return Ok(v.clone());
        }
        self.db.get(cf, key)
    }

    /// Reads and decodes a row.
    pub fn row<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(schema::decode(cf.name(), &bytes)?)),
        }
    }

    /// Starts a block's undo log.
    pub fn begin_block(&mut self) {
        self.undo = Some((UndoLog::default(), Default::default()));
    }

    /// Ends the block; returns its undo log.
    pub fn end_block(&mut self) -> UndoLog {
        self.undo.take().map(|(log, _)| log).unwrap_or_default()
    }

    fn record(&mut self, cf: Cf, key: &[u8]) -> Result<()> {
        if !cf.is_derived() {
            return Ok(());
        }
        let first_touch = match &mut self.undo {
            None => return Err(Error::Invariant(format!("derived write to {} outside a block", cf.name()))),
            Some((_, touched)) => touched.insert((cf, key.to_vec())),
        };
        if first_touch {
            let previous = self.get(cf, key)?;
            if let Some((log, _)) = &mut self.undo {
                log.entries.push((cf as u8, key.to_vec(), previous));
            }
        }
        Ok(())
    }

    /// Writes a value (derived families only inside a block).
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.record(cf, &key)?;
        self.writes.insert((cf, key), Some(value));
        Ok(())
    }

    /// Writes an encoded row.
    pub fn put_row<T: serde::Serialize>(&mut self, cf: Cf, key: Vec<u8>, row: &T) -> Result<()> {
        self.put(cf, key, schema::encode(row))
    }

    /// Deletes a key.
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) -> Result<()> {
        self.record(cf, &key)?;
        self.writes.insert((cf, key), None);
        Ok(())
    }

    /// Restores a block's undo log (newest write first), bypassing the
    /// undo recording: the log is being consumed, not produced.
    pub fn restore(&mut self, log: &UndoLog) -> Result<()> {
        for (tag, key, previous) in log.entries.iter().rev() {
            let cf = Cf::from_tag(*tag).ok_or_else(|| Error::Corrupt(format!("undo log names family {tag}")))?;
            self.writes.insert((cf, key.clone()), previous.clone());
        }
        Ok(())
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The pending writes: exactly what [`Stage::commit`] will write, in
    /// unspecified order (each key appears once).
    pub fn writes(&self) -> Vec<Write> {
        self.writes.iter().map(|((cf, key), value)| Write { cf: *cf, key: key.clone(), value: value.clone() }).collect()
    }

    /// Writes everything in one synced batch.
    pub fn commit(self) -> Result<()> {
        let mut batch = WriteBatch::default();
        for ((cf, key), value) in self.writes {
            match value {
                Some(v) => batch.put_cf(self.db.cf(cf), key, v),
                None => batch.delete_cf(self.db.cf(cf), key),
            }
        }
        self.db.write(batch)
    }
}
