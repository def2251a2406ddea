//! The chain database's schema version, and its forward migrations.
//!
//! The version is `meta`/`schema`, ASCII decimal. [`ChainDb::open`] reads
//! it before anything else and:
//! - stamps a new (empty) store at [`SCHEMA_VERSION`];
//! - takes a store with data and no stamp for version 1 (the first
//!   release's layout; every release since has stamped it);
//! - runs each step of [`MIGRATIONS`] from the store's version up, in
//!   order, stamping the next version only once a step is done, so a crash
//!   part-way leaves a store the next open finishes (a step's writes are
//!   idempotent);
//! - refuses a store stamped with a newer version, or with no number, as
//!   [`Error::Schema`] — never opening it.
//!
//! | version | layout |
//! |---|---|
//! | 1 | the first release's: the table in [`crate::store`] |
//!
//! No step yet: the chain's layout has not changed since the first
//! release, so this build writes version 1 and the list is empty.

use rocksdb::WriteBatch;

use crate::store::{ChainDb, CF_META};
use crate::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// `meta` key of the version.
pub const SCHEMA_KEY: &[u8] = b"schema";

/// One step: brings a store at version `from` to `from + 1`.
pub type Migration = medanchor_contracts::schema::Migration<ChainDb>;

/// Every step, in order.
pub const MIGRATIONS: &[Migration] = &[];

/// The store's stamp: `None` when there is none, an error when it is not a
/// version number.
pub fn stored_version(db: &ChainDb) -> Result<Option<u32>> {
    db.get(CF_META, SCHEMA_KEY)?
        .map(|v| {
            std::str::from_utf8(&v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| Error::Schema { found: format!("{:?}", String::from_utf8_lossy(&v)) })
        })
        .transpose()
}

impl medanchor_contracts::schema::Versioned for ChainDb {
    type Error = Error;
    const NAME: &'static str = "the chain database";

    fn stored_version(&self) -> Result<Option<u32>> {
        stored_version(self)
    }

    fn is_empty(&self) -> Result<bool> {
        ChainDb::is_empty(self)
    }

    fn stamp(&self, version: u32) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), SCHEMA_KEY, version.to_string());
        self.write(batch)
    }

    fn refused(found: String) -> Error {
        Error::Schema { found }
    }
}

/// Brings `db` to version `target` with `steps` (the shared runner,
/// [`medanchor_contracts::schema::migrate`]).
pub(crate) fn migrate(db: &ChainDb, steps: &[Migration], target: u32) -> Result<()> {
    medanchor_contracts::schema::migrate(db, steps, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CF_BLOCKS;
    use medanchor_contracts::schema::Versioned;

    fn put(db: &ChainDb, family: &str, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf(family), key, value);
        db.write(batch).expect("write");
    }

    fn unstamp(db: &ChainDb) {
        let mut batch = WriteBatch::default();
        batch.delete_cf(db.cf(CF_META), SCHEMA_KEY);
        db.write(batch).expect("write");
    }

    // Steps of a pretend future layout: each appends its name to a log,
    // so a test sees which ran, how often and in what order.
    fn ran(db: &ChainDb, name: &str) -> Result<()> {
        let mut log = db.get(CF_META, b"steps")?.unwrap_or_default();
        log.extend_from_slice(name.as_bytes());
        put(db, CF_META, b"steps", &log);
        Ok(())
    }
    fn one_to_two(db: &ChainDb) -> Result<()> {
        ran(db, "a")
    }
    fn two_to_three(db: &ChainDb) -> Result<()> {
        ran(db, "b")
    }
    fn crash(_: &ChainDb) -> Result<()> {
        Err(Error::Storage("killed".into()))
    }
    const STEPS: [Migration; 2] =
        [Migration { from: 1, what: "one", run: one_to_two }, Migration { from: 2, what: "two", run: two_to_three }];

    /// The version and the steps that ran.
    fn state(db: &ChainDb) -> (Option<u32>, String) {
        let log = db.get(CF_META, b"steps").expect("read").unwrap_or_default();
        (stored_version(db).expect("version"), String::from_utf8(log).expect("utf-8"))
    }

    #[test]
    fn a_new_store_is_stamped_at_this_builds_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ChainDb::open(dir.path()).expect("open");
        assert_eq!(stored_version(&db).expect("version"), Some(SCHEMA_VERSION));
        drop(db);
        // A new store runs no step, whatever the target.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ChainDb::open(dir.path()).expect("open");
        unstamp(&db);
        migrate(&db, &STEPS, 3).expect("migrate");
        assert_eq!(state(&db), (Some(3), String::new()));
    }

    #[test]
    fn an_unstamped_store_with_data_is_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = ChainDb::open(dir.path()).expect("open");
            put(&db, CF_BLOCKS, &0u64.to_be_bytes(), b"{}");
            unstamp(&db);
        }
        let db = ChainDb::open(dir.path()).expect("reopen");
        assert_eq!(stored_version(&db).expect("version"), Some(1), "stamped as the first layout");
        assert_eq!(db.get(CF_BLOCKS, &0u64.to_be_bytes()).expect("read").as_deref(), Some(&b"{}"[..]));
        // ... and so migrated from 1 by every step.
        unstamp(&db);
        migrate(&db, &STEPS, 3).expect("migrate");
        assert_eq!(state(&db), (Some(3), "ab".into()));
    }

    #[test]
    fn an_older_store_runs_every_step_in_order_and_a_crash_between_steps_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ChainDb::open(dir.path()).expect("open");
        put(&db, CF_BLOCKS, &0u64.to_be_bytes(), b"{}");
        Versioned::stamp(&db, 1).expect("stamp");
        // Killed in the second step: the first is done and stamped.
        let crashing = [STEPS[0], Migration { from: 2, what: "two", run: crash }];
        assert!(migrate(&db, &crashing, 3).is_err());
        assert_eq!(state(&db), (Some(2), "a".into()));
        // The next open finishes from there: 1 -> 2 does not run again.
        migrate(&db, &STEPS, 3).expect("resume");
        assert_eq!(state(&db), (Some(3), "ab".into()));
        // Killed after a step's writes, before its stamp: that step runs
        // again (so steps are written to be idempotent).
        Versioned::stamp(&db, 2).expect("stamp");
        migrate(&db, &STEPS, 3).expect("again");
        assert_eq!(state(&db), (Some(3), "abb".into()));
        // At the current version, nothing runs.
        migrate(&db, &STEPS, 3).expect("current");
        assert_eq!(state(&db), (Some(3), "abb".into()));
    }

    #[test]
    fn a_newer_or_unreadable_store_is_refused_and_left_as_it_was() {
        for (stamp_bytes, says) in [
            (
                format!("{}", SCHEMA_VERSION + 1).into_bytes(),
                format!("schema {}; this build reads", SCHEMA_VERSION + 1),
            ),
            (b"two".to_vec(), "schema \"two\"".to_string()),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            {
                let db = ChainDb::open(dir.path()).expect("open");
                put(&db, CF_META, SCHEMA_KEY, &stamp_bytes);
            }
            // A newer build may have added a family: the refusal is still
            // ours, not RocksDB's "column families not opened".
            {
                let mut opts = rocksdb::Options::default();
                opts.create_missing_column_families(true);
                let names = rocksdb::DB::list_cf(&opts, dir.path()).expect("families");
                let mut raw = rocksdb::DB::open_cf(&opts, dir.path(), &names).expect("raw open");
                raw.create_cf("from_the_future", &opts).expect("create family");
            }
            let e = ChainDb::open(dir.path()).expect_err("refused").to_string();
            assert!(e.contains(&says) && e.contains(&format!("schemas 1 to {SCHEMA_VERSION}")), "{e}");
            let e = ChainDb::open(dir.path()).expect_err("still refused").to_string();
            assert!(e.contains(&says), "{e}");
        }
    }
}
