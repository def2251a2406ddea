//! The index's schema version, and its forward migrations.
//!
//! The version is `meta`/`schema` ([`schema::meta::SCHEMA`]), ASCII
//! decimal. [`IndexDb::open`] reads it before anything else and:
//! - stamps a new (empty) index at [`SCHEMA_VERSION`];
//! - takes an index with data and no stamp for version 1 (the first
//!   release's layout; every release has stamped it);
//! - runs each step of [`MIGRATIONS`] from the index's version up, in
//!   order, stamping the next version only once a step is done, so a crash
//!   part-way leaves an index the next open finishes (a step's writes are
//!   idempotent);
//! - refuses an index stamped with a newer version, or with no number, as
//!   [`Error::Schema`] — never opening it. (`medanchor up` then moves it
//!   aside and rebuilds the index from the devnet's blocks: an index is
//!   derived data.)
//!
//! | version | layout |
//! |---|---|
//! | 1 | the first release's. `meta`/`tip_header` was added to it later without a new version, so a version-1 index may have a tip and no `tip_header`: queries then read "now" from the tip block, and a block whose parent is unknown cannot be buffered ("a tip without its header") |
//! | 2 | every index with a tip has its `tip_header` (step 1 → 2 writes it from the tip block); the tables in [`crate::schema`] |

use rocksdb::WriteBatch;

use crate::schema::{self, BlockHeader, Cf};
use crate::store::IndexDb;
use crate::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// One step: brings an index at version `from` to `from + 1`.
pub type Migration = medanchor_contracts::schema::Migration<IndexDb>;

/// Every step, in order.
pub const MIGRATIONS: &[Migration] =
    &[Migration { from: 1, what: "keep the tip's header under meta/tip_header", run: tip_header }];

/// 1 → 2: writes `meta`/`tip_header` from the tip block, if there is a tip
/// and no header yet.
fn tip_header(db: &IndexDb) -> Result<()> {
    if db.get(Cf::Meta, schema::meta::TIP_HEADER)?.is_some() {
        return Ok(());
    }
    let Some(tip) = db.get(Cf::Meta, schema::meta::TIP)? else {
        return Ok(());
    };
    let block = db
        .get(Cf::Blocks, &tip)?
        .ok_or_else(|| Error::Corrupt(format!("the tip block {} is not stored", hex::encode(&tip))))?;
    let header: BlockHeader = schema::decode("tip block", &block)?;
    let mut batch = WriteBatch::default();
    batch.put_cf(db.cf(Cf::Meta), schema::meta::TIP_HEADER, schema::encode(&header));
    db.write(batch)
}

/// The index's stamp: `None` when there is none, an error when it is not a
/// version number.
pub fn stored_version(db: &IndexDb) -> Result<Option<u32>> {
    db.get(Cf::Meta, schema::meta::SCHEMA)?
        .map(|v| {
            std::str::from_utf8(&v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| Error::Schema { found: format!("{:?}", String::from_utf8_lossy(&v)) })
        })
        .transpose()
}

impl medanchor_contracts::schema::Versioned for IndexDb {
    type Error = Error;
    const NAME: &'static str = "the index";

    fn stored_version(&self) -> Result<Option<u32>> {
        stored_version(self)
    }

    fn is_empty(&self) -> Result<bool> {
        IndexDb::is_empty(self)
    }

    fn stamp(&self, version: u32) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::Meta), schema::meta::SCHEMA, version.to_string());
        self.write(batch)
    }

    fn refused(found: String) -> Error {
        Error::Schema { found }
    }
}

/// Brings `db` to version `target` with `steps` (the shared runner,
/// [`medanchor_contracts::schema::migrate`]).
pub(crate) fn migrate(db: &IndexDb, steps: &[Migration], target: u32) -> Result<()> {
    medanchor_contracts::schema::migrate(db, steps, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Indexer, IndexerConfig};
    use crate::payload::NewBlock;
    use crate::query::IndexReader;
    use crate::synth::{self, SynthBlock};
    use crate::ChainReader;

    const DEPLOYER: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";

    fn put(db: &IndexDb, cf: Cf, key: &[u8], value: Option<&[u8]>) {
        let mut batch = WriteBatch::default();
        match value {
            Some(v) => batch.put_cf(db.cf(cf), key, v),
            None => batch.delete_cf(db.cf(cf), key),
        }
        db.write(batch).expect("write");
    }

    /// An index of a few synthetic blocks, as this build writes it.
    fn indexed(dir: &std::path::Path) -> (BlockHeader, Vec<u8>) {
        let indexer = Indexer::open(dir, IndexerConfig::for_deployer(DEPLOYER)).expect("open");
        let mut parent = synth::id("the root's parent");
        for height in 0..3 {
            let id = synth::id(&format!("block {height}"));
            let block =
                SynthBlock { height, id, parent, burn_block_height: 100 + height, time: 1_700_000_000, txs: vec![] };
            let payload: NewBlock = serde_json::from_slice(&block.to_bytes()).expect("payload");
            indexer.ingest(indexer.block_row(&payload).expect("row")).expect("ingest");
            parent = id;
        }
        let db = indexer.db();
        let header = db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read").expect("a tip header");
        (schema::decode("tip header", &header).expect("header"), header)
    }

    /// The layout the first release could leave: stamped 1, a tip, no
    /// `tip_header`.
    fn as_version_1(db: &IndexDb) {
        put(db, Cf::Meta, schema::meta::TIP_HEADER, None);
        put(db, Cf::Meta, schema::meta::SCHEMA, Some(b"1"));
    }

    #[test]
    fn a_new_index_is_stamped_at_this_builds_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = IndexDb::open(dir.path()).expect("open");
        assert_eq!(stored_version(&db).expect("version"), Some(SCHEMA_VERSION));
        assert_eq!(db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read"), None, "no tip, no header");
    }

    #[test]
    fn a_version_1_index_gets_its_tip_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (header, bytes) = indexed(dir.path());
        {
            let db = IndexDb::open(dir.path()).expect("open");
            as_version_1(&db);
        }
        let db = std::sync::Arc::new(IndexDb::open(dir.path()).expect("migrated"));
        assert_eq!(stored_version(&db).expect("version"), Some(SCHEMA_VERSION));
        assert_eq!(db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read"), Some(bytes), "byte for byte");
        let status = IndexReader::new(db.clone()).status().expect("status");
        assert_eq!(status.tip_height, Some(header.height));
        drop(db);
        // What the header is for: a block whose parent has not arrived yet
        // is buffered (without it: "a tip without its header", a 500 the
        // node retries for ever).
        let indexer = Indexer::open(dir.path(), IndexerConfig::for_deployer(DEPLOYER)).expect("open");
        let orphan = SynthBlock {
            height: header.height + 2,
            id: synth::id("orphan"),
            parent: synth::id("not yet arrived"),
            burn_block_height: 200,
            time: 1_700_000_000,
            txs: vec![],
        };
        let payload: NewBlock = serde_json::from_slice(&orphan.to_bytes()).expect("payload");
        let outcome = indexer.ingest(indexer.block_row(&payload).expect("row")).expect("buffered, not an error");
        assert!(matches!(outcome, crate::Outcome::Buffered), "{outcome:?}");
    }

    #[test]
    fn an_unstamped_index_with_data_is_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, bytes) = indexed(dir.path());
        {
            let db = IndexDb::open(dir.path()).expect("open");
            as_version_1(&db);
            put(&db, Cf::Meta, schema::meta::SCHEMA, None);
        }
        let db = IndexDb::open(dir.path()).expect("migrated");
        assert_eq!(stored_version(&db).expect("version"), Some(SCHEMA_VERSION));
        assert_eq!(db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read"), Some(bytes), "1 -> 2 ran");
    }

    #[test]
    fn a_migration_killed_before_its_stamp_runs_again_to_the_same_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, bytes) = indexed(dir.path());
        let db = IndexDb::open(dir.path()).expect("open");
        as_version_1(&db);
        // The step's write landed, the stamp did not.
        tip_header(&db).expect("step");
        assert_eq!(stored_version(&db).expect("version"), Some(1));
        migrate(&db, MIGRATIONS, SCHEMA_VERSION).expect("resume");
        assert_eq!(stored_version(&db).expect("version"), Some(SCHEMA_VERSION));
        assert_eq!(db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read"), Some(bytes));
    }

    // A pretend third version, to kill a migration between two steps.
    fn mark(db: &IndexDb) -> Result<()> {
        let mut log = db.get(Cf::Meta, b"steps")?.unwrap_or_default();
        log.push(b'x');
        put(db, Cf::Meta, b"steps", Some(&log));
        Ok(())
    }
    fn crash(_: &IndexDb) -> Result<()> {
        Err(Error::Storage("killed".into()))
    }

    #[test]
    fn a_migration_killed_between_steps_resumes_from_the_last_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, bytes) = indexed(dir.path());
        let db = IndexDb::open(dir.path()).expect("open");
        as_version_1(&db);
        let crashing = [MIGRATIONS[0], Migration { from: 2, what: "next", run: crash }];
        assert!(migrate(&db, &crashing, 3).is_err());
        assert_eq!(stored_version(&db).expect("version"), Some(2), "1 -> 2 done and stamped");
        assert_eq!(db.get(Cf::Meta, schema::meta::TIP_HEADER).expect("read"), Some(bytes));
        let steps = [MIGRATIONS[0], Migration { from: 2, what: "next", run: mark }];
        migrate(&db, &steps, 3).expect("resume");
        assert_eq!(stored_version(&db).expect("version"), Some(3));
        assert_eq!(db.get(Cf::Meta, b"steps").expect("read").as_deref(), Some(&b"x"[..]), "2 -> 3 ran once");
    }

    #[test]
    fn a_newer_or_unreadable_index_is_refused_and_left_as_it_was() {
        for (stamp_bytes, says) in [
            (
                format!("{}", SCHEMA_VERSION + 1).into_bytes(),
                format!("schema {}; this build reads", SCHEMA_VERSION + 1),
            ),
            (b"two".to_vec(), "schema \"two\"".to_string()),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            indexed(dir.path());
            {
                let db = IndexDb::open(dir.path()).expect("open");
                put(&db, Cf::Meta, schema::meta::SCHEMA, Some(&stamp_bytes));
            }
            // A newer build may have added a family: the refusal is still
            // ours, not RocksDB's "column families not opened".
            {
                let opts = rocksdb::Options::default();
                let names = rocksdb::DB::list_cf(&opts, dir.path()).expect("families");
                let mut raw = rocksdb::DB::open_cf(&opts, dir.path(), &names).expect("raw open");
                raw.create_cf("from_the_future", &opts).expect("create family");
            }
            for _ in 0..2 {
                let e = IndexDb::open(dir.path()).expect_err("refused").to_string();
                assert!(e.contains(&says) && e.contains(&format!("schemas 1 to {SCHEMA_VERSION}")), "{e}");
            }
        }
    }
}
