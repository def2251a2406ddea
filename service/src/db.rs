//! The API's own RocksDB: record metadata (what is needed to find and open
//! a payload, and where its anchor stands), sign-in challenges, and the
//! audit log.
//!
//! | family | key | value | invariant |
//! |---|---|---|---|
//! | `records` | record id (16) ‖ version (u64 BE) | [`RecordMeta`] JSON | written before the anchoring transaction is sent |
//! | `pending` | record id ‖ version | empty | versions not yet anchored or failed; the tracker's work list |
//! | `challenges` | challenge id (16) | its expiry (u64 BE, unix s) | a challenge used by a valid signature; swept once expired ([`crate::auth::ChallengeKey`]: issuing stores nothing) |
//! | `audit_entries` | index (u64 BE) | entry bytes (the Merkle leaf) | indices 0..size, append-only |
//! | `audit_nodes` | level (u8) ‖ index (u64 BE) | hash | complete aligned subtrees of the audit tree |
//! | `audit_by_patient` | patient principal ‖ 0 ‖ index (u64 BE) | empty | one key per entry about that patient, written in the entry's batch (`meta.audit_indexed` = entries covered; a log written before the index existed is indexed by the schema 1 → 2 migration) |
//! | `shares`, `share_index`, `share_links`, `share_grants`, `share_guards` | see [`crate::share::store`] | | |
//! | `templates` | template id ‖ 0 ‖ version (u32 BE) | [`medanchor_clinical::Template`] JSON | versions people added, append-only (built-in ones are code) |
//! | `profiles` | patient ‖ 0 ‖ version (u64 BE); patient ‖ 1 | [`crate::profiles::ProfileMeta`] JSON | every version kept; the `‖ 1` key is the current one, written in the same batch |
//! | `credentials` | `v` ‖ provider ‖ 0 ‖ version (u64 BE); `v` ‖ provider ‖ 1; `s` ‖ state tag ‖ provider | [`crate::credentials::CredentialVersion`] JSON; empty | every version kept; the `‖ 1` key is the current one; the `s` key names the current version's state; all three written in one batch |
//! | `search` | `r`/`p` ‖ field ‖ token (16) ‖ sort (u64 BE) ‖ id; `d` ‖ scope ‖ id | empty; the document's keys | the blind index ([`crate::search`]): keyed tokens only, never plaintext; each document's keys listed under `d`, replaced in the batch that writes the record version or profile |
//! | `attachments` | `v` ‖ record id ‖ attachment id ‖ version (u64 BE); `n` ‖ record id ‖ name MAC (16) | [`crate::attachments::AttachmentMeta`] JSON; the attachment id | every version kept (removal marks it); the name index finds a file's earlier versions by a keyed MAC of its name, never the name |
//! | `analytics` | see [`medanchor_ops::analytics`] | counters, provider activity, rule windows, flags | written in the batch of the audit entry they count (`meta.analytics_counted` = entries counted; a log written before the family existed is counted by the schema 4 → 5 migration) |
//! | `meta` | name | bytes | `schema` (the version, ASCII decimal: [`SCHEMA_VERSION`]), `audit_size`, `audit_indexed`, `audit_anchor` ([`crate::anchoring::AnchorRecord`] JSON), `job/{name}` (a periodic job's record: [`medanchor_ops::schedule::JobState`]), `search_indexed` (the index covers everything stored), `consent-request/…` (consent requests and their per-party indexes: [`crate::consent_requests`]) |
//!
//! Writes are synced: an acknowledged record or audit entry survives a crash.

use std::path::Path;

use medanchor_contracts::{BlockHash, DataHash, RecordId, Txid};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

/// The schema version this build writes. A store at an older version is
/// migrated forward on open, one step at a time ([`MIGRATIONS`]); a newer
/// one is refused. A store with data and no version is the first layout
/// (1); a new, empty one is stamped at this version at once. The share
/// families are part of this database and of its version.
///
/// | version | what changed |
/// |---|---|
/// | 1 | the first release's layout |
/// | 2 | every audit entry about a patient is in `audit_by_patient` (entries written before the index existed are indexed) |
/// | 3 | the `templates` family (record templates people added) and the `profiles` family (patient health profiles) |
/// | 4 | the `credentials` family (providers' credential documents and their verification) the `search` family (the blind index; built from what is stored at the first open, see [`crate::search`]) and the `attachments` family |
/// | 5 | the `analytics` family (counters and flags, [`crate::analytics`]; the existing log is counted) |
pub const SCHEMA_VERSION: u32 = 5;

/// One migration step: brings a store at version `from` to `from + 1`.
/// Each step is resumable — its writes are idempotent, and the version is
/// stamped only after the step is done — so a crash part-way leaves a
/// store the next open finishes migrating.
pub type Migration = medanchor_contracts::schema::Migration<ApiDb>;

impl medanchor_contracts::schema::Versioned for ApiDb {
    type Error = DbError;
    const NAME: &'static str = "the api database";

    fn stored_version(&self) -> Result<Option<u32>, DbError> {
        self.schema_version()
    }

    fn is_empty(&self) -> Result<bool, DbError> {
        ApiDb::is_empty(self)
    }

    fn stamp(&self, version: u32) -> Result<(), DbError> {
        ApiDb::stamp(self, version)
    }

    fn refused(found: String) -> DbError {
        DbError::Schema(found)
    }
}

/// Every step, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        what: "index the audit log by patient",
        run: |db| crate::audit::index_patients(db).map_err(|e| DbError::Storage(e.to_string())),
    },
    // Opening creates the family; the step marks the layout that has it, so
    // an older build refuses a database whose templates it would ignore.
    Migration { from: 2, what: "families for record templates and health profiles", run: |_| Ok(()) },
    Migration { from: 3, what: "families for provider credentials, the search index and attachments", run: |_| Ok(()) },
    Migration { from: 4, what: "count the audit log into the analytics family", run: crate::analytics::count_log },
];

/// Column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Documented in the table above.
pub enum Cf {
    Records,
    Pending,
    Challenges,
    AuditEntries,
    AuditNodes,
    AuditByPatient,
    Shares,
    ShareIndex,
    ShareLinks,
    ShareGrants,
    ShareGuards,
    Templates,
    Profiles,
    Credentials,
    Search,
    Attachments,
    Analytics,
    Meta,
}

impl Cf {
    pub(crate) const ALL: [Cf; 18] = [
        Cf::Records,
        Cf::Pending,
        Cf::Challenges,
        Cf::AuditEntries,
        Cf::AuditNodes,
        Cf::AuditByPatient,
        Cf::Shares,
        Cf::ShareIndex,
        Cf::ShareLinks,
        Cf::ShareGrants,
        Cf::ShareGuards,
        Cf::Templates,
        Cf::Profiles,
        Cf::Credentials,
        Cf::Search,
        Cf::Attachments,
        Cf::Analytics,
        Cf::Meta,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Cf::Records => "records",
            Cf::Pending => "pending",
            Cf::Challenges => "challenges",
            Cf::AuditEntries => "audit_entries",
            Cf::AuditNodes => "audit_nodes",
            Cf::AuditByPatient => "audit_by_patient",
            Cf::Shares => "shares",
            Cf::ShareIndex => "share_index",
            Cf::ShareLinks => "share_links",
            Cf::ShareGrants => "share_grants",
            Cf::ShareGuards => "share_guards",
            Cf::Templates => "templates",
            Cf::Profiles => "profiles",
            Cf::Credentials => "credentials",
            Cf::Search => "search",
            Cf::Attachments => "attachments",
            Cf::Analytics => "analytics",
            Cf::Meta => "meta",
        }
    }
}

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// RocksDB failed.
    #[error("api database: {0}")]
    Storage(String),
    /// Written by a newer build, or not a version at all: refused, never
    /// opened.
    #[error("api database has schema {0}; this build reads schemas 1 to {SCHEMA_VERSION} (a newer medanchor wrote it: upgrade medanchor, or restore a backup)")]
    Schema(String),
    /// Stored bytes do not decode.
    #[error("api database is corrupt: {0}")]
    Corrupt(String),
}

impl From<rocksdb::Error> for DbError {
    fn from(e: rocksdb::Error) -> Self {
        DbError::Storage(e.to_string())
    }
}

/// Where a record version's anchor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnchorStatus {
    /// Stored; the transaction is not mined yet (or not sent yet).
    Pending,
    /// Mined successfully: the hash is on-chain.
    Anchored,
    /// Mined and refused by the contract, or dropped.
    Failed,
}

/// What the API keeps about one record version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// Record id.
    pub record_id: RecordId,
    /// Version.
    pub version: u64,
    /// The patient.
    pub patient: String,
    /// Record type name.
    pub record_type: String,
    /// Consent data type name.
    pub data_type: String,
    /// Who wrote it.
    pub author: String,
    /// Media type of the plaintext.
    pub content_type: String,
    /// Plaintext length.
    pub size: u64,
    /// SHA-256 of the stored ciphertext blob (the anchor). Versions stored
    /// before the typed form hold bare hex, which the parser reads too.
    pub data_hash: DataHash,
    /// The wrapped data key, hex.
    pub wrapped_key: String,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Anchor state.
    pub status: AnchorStatus,
    /// The anchoring transaction, once sent.
    pub txid: Option<Txid>,
    /// Block height, once anchored.
    pub block_height: Option<u64>,
    /// Index block hash, once anchored.
    pub index_block_hash: Option<BlockHash>,
    /// Why it failed, if it did (the contract's error name, or the node's
    /// rejection reason); while pending, why it is waiting.
    pub failure: Option<String>,
    /// The confidentiality level a creation was sent with (to send it
    /// again exactly); absent in versions stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidentiality: Option<u8>,
    /// The template the content was written with (structured records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<medanchor_clinical::TemplateRef>,
    /// When this node last broadcast (or tried to) the version's
    /// transaction, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<u64>,
    /// Whether this node signs the version's transaction (custodial) —
    /// only then may it send it again; absent in versions stored before it
    /// was kept (a txid then says this node sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodial: Option<bool>,
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The API database.
pub struct ApiDb {
    db: DB,
    /// Makes "used yet? then mark it" one step for sign-in challenges.
    challenge_lock: std::sync::Mutex<()>,
    /// Serializes reads-and-replaces of the scheduler's job records (the
    /// store's compare-and-set; one process holds a RocksDB store).
    job_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for ApiDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiDb").field("path", &self.db.path()).finish()
    }
}

/// `records` / `pending` key.
pub fn record_key(record_id: &[u8; 16], version: u64) -> Vec<u8> {
    let mut k = record_id.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// `meta` key of the schema version (ASCII decimal).
const SCHEMA_KEY: &[u8] = b"schema";

impl ApiDb {
    /// The store's directory.
    pub fn path(&self) -> &std::path::Path {
        self.db.path()
    }

    /// A consistent copy of the store in `into` (a RocksDB checkpoint:
    /// hard links on one file system; writers are not paused), for
    /// backups of a running node.
    pub fn checkpoint(&self, into: &std::path::Path) -> std::result::Result<(), rocksdb::Error> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(into)
    }

    /// Opens (creating) the database at `path`, migrating an older store
    /// forward and refusing a newer one.
    pub fn open(path: &Path) -> Result<ApiDb, DbError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let families = Cf::ALL.iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), Options::default()));
        // A store written by a newer build may hold families this one does
        // not know; RocksDB opens a database only with all of them, and the
        // version must be read to refuse it precisely.
        let known: Vec<&str> = Cf::ALL.iter().map(|cf| cf.name()).collect();
        let unknown = DB::list_cf(&Options::default(), path)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !known.contains(&n.as_str()))
            .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = ApiDb {
            db: DB::open_cf_descriptors(&opts, path, families.chain(unknown))?,
            challenge_lock: Default::default(),
            job_lock: Default::default(),
        };
        db.migrate(MIGRATIONS, SCHEMA_VERSION)?;
        Ok(db)
    }

    /// The store's schema version (None for a store never stamped).
    pub fn schema_version(&self) -> Result<Option<u32>, DbError> {
        self.get(Cf::Meta, SCHEMA_KEY)?
            .map(|v| {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| DbError::Schema(format!("{:?}", String::from_utf8_lossy(&v))))
            })
            .transpose()
    }

    /// Whether no family but `meta` holds a key: a store never written.
    fn is_empty(&self) -> Result<bool, DbError> {
        for cf in Cf::ALL.iter().filter(|cf| **cf != Cf::Meta) {
            if self.db.iterator_cf(self.cf(*cf), rocksdb::IteratorMode::Start).next().transpose()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Brings the store to version `target` with `steps` (the shared
    /// runner, [`medanchor_contracts::schema::migrate`]).
    pub(crate) fn migrate(&self, steps: &[Migration], target: u32) -> Result<(), DbError> {
        medanchor_contracts::schema::migrate(self, steps, target)
    }

    pub(crate) fn stamp(&self, version: u32) -> Result<(), DbError> {
        let mut batch = self.batch();
        batch.put_cf(self.cf(Cf::Meta), SCHEMA_KEY, version.to_string());
        self.write(batch)
    }

    /// Marks the sign-in challenge `id` used (until `expires_at`); false
    /// when it already was. Check and mark are one step, so one challenge
    /// never yields two sessions.
    pub fn use_challenge(&self, id: &[u8; 16], expires_at: u64) -> Result<bool, DbError> {
        let _one_at_a_time = self.challenge_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.get(Cf::Challenges, id)?.is_some() {
            return Ok(false);
        }
        let mut batch = self.batch();
        batch.put_cf(self.cf(Cf::Challenges), id, expires_at.to_be_bytes());
        self.write(batch)?;
        Ok(true)
    }

    /// Forgets used challenges that have expired (and entries of the
    /// earlier, stored-challenge format); returns how many.
    pub fn sweep_challenges(&self, now_s: u64) -> Result<usize, DbError> {
        let mut batch = self.batch();
        let mut n = 0;
        for item in self.db.iterator_cf(self.cf(Cf::Challenges), rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            let expired = <[u8; 8]>::try_from(&v[..]).map_or(true, |b| u64::from_be_bytes(b) <= now_s);
            if expired || k.len() != 16 {
                batch.delete_cf(self.cf(Cf::Challenges), k);
                n += 1;
            }
        }
        if n > 0 {
            self.write(batch)?;
        }
        Ok(n)
    }

    /// A column family handle.
    pub fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(cf.name()).expect("every family is created at open")
    }

    /// A new batch.
    pub fn batch(&self) -> WriteBatch {
        WriteBatch::default()
    }

    /// The lock the scheduler's compare-and-set holds.
    pub(crate) fn job_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.job_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a key.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// Writes a batch with a synced WAL.
    pub fn write(&self, batch: WriteBatch) -> Result<(), DbError> {
        let mut o = WriteOptions::default();
        o.set_sync(true);
        Ok(self.db.write_opt(batch, &o)?)
    }

    /// Keys and values of `cf` under `prefix`, in order.
    pub fn scan(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<KeyValue>, DbError> {
        let mode = rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(cf), mode) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Keys and values of `cf` from `start` (inclusive) to `end`
    /// (exclusive), in order.
    pub fn scan_range(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<Vec<KeyValue>, DbError> {
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(cf), mode) {
            let (k, v) = item?;
            if &*k >= end {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Up to `limit` keys and values of `cf` from `start` (inclusive), in
    /// order: for walking a whole family a page at a time.
    pub fn scan_page(&self, cf: Cf, start: &[u8], limit: usize) -> Result<Vec<KeyValue>, DbError> {
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(cf), mode).take(limit) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// A record version's metadata.
    pub fn record(&self, record_id: &[u8; 16], version: u64) -> Result<Option<RecordMeta>, DbError> {
        self.get(Cf::Records, &record_key(record_id, version))?
            .map(|b| serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Whether this database holds any version of a record (a record of
    /// another tenant, or one never written through this node, is not).
    pub fn holds_record(&self, record_id: &[u8; 16]) -> Result<bool, DbError> {
        Ok(self.scan_page(Cf::Records, record_id, 1)?.first().is_some_and(|(k, _)| k.starts_with(record_id)))
    }

    /// Every version of a record, oldest first.
    pub fn versions(&self, record_id: &[u8; 16]) -> Result<Vec<RecordMeta>, DbError> {
        self.scan(Cf::Records, record_id)?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(e.to_string())))
            .collect()
    }

    /// Stores a template version people added (synced).
    pub fn put_template(&self, template: &medanchor_clinical::Template) -> Result<(), DbError> {
        let mut key = template.id.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&template.version.to_be_bytes());
        let value = serde_json::to_vec(template).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let mut batch = self.batch();
        batch.put_cf(self.cf(Cf::Templates), &key, value);
        self.write(batch)
    }

    /// Stores a profile version and makes it current (one synced batch).
    pub fn put_profile(&self, meta: &crate::profiles::ProfileMeta) -> Result<(), DbError> {
        let mut batch = self.batch();
        self.put_profile_in(&mut batch, meta)?;
        self.write(batch)
    }

    /// [`ApiDb::put_profile`]'s writes, added to `batch`.
    pub fn put_profile_in(&self, batch: &mut WriteBatch, meta: &crate::profiles::ProfileMeta) -> Result<(), DbError> {
        let value = serde_json::to_vec(meta).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let mut version_key = meta.patient.as_bytes().to_vec();
        let mut current_key = version_key.clone();
        version_key.push(0);
        version_key.extend_from_slice(&meta.version.to_be_bytes());
        current_key.push(1);
        batch.put_cf(self.cf(Cf::Profiles), &version_key, &value);
        batch.put_cf(self.cf(Cf::Profiles), &current_key, &value);
        Ok(())
    }

    /// Every patient's current profile version.
    pub fn current_profiles(&self) -> Result<Vec<crate::profiles::ProfileMeta>, DbError> {
        let mut out = Vec::new();
        for (k, v) in self.scan(Cf::Profiles, &[])? {
            // `patient ‖ 1` is the current pointer (a version key,
            // `patient ‖ 0 ‖ version`, may end in 1 too: its length tells).
            if k.last() == Some(&1) {
                let meta: crate::profiles::ProfileMeta =
                    serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("profile: {e}")))?;
                if k.len() == meta.patient.len() + 1 {
                    out.push(meta);
                }
            }
        }
        Ok(out)
    }

    /// The RocksDB handle (the search index reads with its own iterator).
    pub fn raw(&self) -> &DB {
        &self.db
    }

    /// A patient's current profile version, if they wrote one.
    pub fn current_profile(&self, patient: &str) -> Result<Option<crate::profiles::ProfileMeta>, DbError> {
        let mut key = patient.as_bytes().to_vec();
        key.push(1);
        self.get(Cf::Profiles, &key)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("profile: {e}"))))
            .transpose()
    }

    /// Every stored template version, by id then version.
    pub fn templates(&self) -> Result<Vec<medanchor_clinical::Template>, DbError> {
        self.scan(Cf::Templates, &[])?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("template: {e}"))))
            .collect()
    }

    /// Writes a record version's metadata (and its place in `pending`).
    pub fn put_record(&self, meta: &RecordMeta, record_id: &[u8; 16]) -> Result<(), DbError> {
        let mut batch = self.batch();
        self.put_record_in(&mut batch, meta, record_id);
        self.write(batch)
    }

    /// [`ApiDb::put_record`]'s writes, added to `batch`.
    pub fn put_record_in(&self, batch: &mut WriteBatch, meta: &RecordMeta, record_id: &[u8; 16]) {
        let key = record_key(record_id, meta.version);
        batch.put_cf(self.cf(Cf::Records), &key, serde_json::to_vec(meta).expect("metadata serializes"));
        match meta.status {
            AnchorStatus::Pending => batch.put_cf(self.cf(Cf::Pending), &key, []),
            _ => batch.delete_cf(self.cf(Cf::Pending), &key),
        }
    }

    /// Versions whose anchor is pending: (record id, version).
    pub fn pending(&self) -> Result<Vec<([u8; 16], u64)>, DbError> {
        self.scan(Cf::Pending, &[])?
            .into_iter()
            .map(|(k, _)| {
                let id: [u8; 16] = k
                    .get(..16)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| DbError::Corrupt("pending key".into()))?;
                let v = k
                    .get(16..24)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| DbError::Corrupt("pending key".into()))?;
                Ok((id, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(db: &ApiDb, cf: Cf, key: &[u8], value: Option<&[u8]>) {
        let mut batch = db.batch();
        match value {
            Some(v) => batch.put_cf(db.cf(cf), key, v),
            None => batch.delete_cf(db.cf(cf), key),
        }
        db.write(batch).expect("write");
    }

    // Steps of a pretend future layout: each appends its name to a log,
    // so a test sees which ran, how often and in what order.
    fn ran(db: &ApiDb, name: u8) -> Result<(), DbError> {
        let mut log = db.get(Cf::Meta, b"steps")?.unwrap_or_default();
        log.push(name);
        put(db, Cf::Meta, b"steps", Some(&log));
        Ok(())
    }
    const STEPS: [Migration; 2] = [
        Migration { from: 1, what: "a", run: |db| ran(db, b'a') },
        Migration { from: 2, what: "b", run: |db| ran(db, b'b') },
    ];

    fn state(db: &ApiDb) -> (Option<u32>, String) {
        let log = db.get(Cf::Meta, b"steps").expect("read").unwrap_or_default();
        (db.schema_version().expect("version"), String::from_utf8(log).expect("utf-8"))
    }

    #[test]
    fn a_new_store_is_stamped_at_this_builds_version_and_runs_no_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("open");
        assert_eq!(db.schema_version().expect("version"), Some(SCHEMA_VERSION));
        put(&db, Cf::Meta, SCHEMA_KEY, None);
        db.migrate(&STEPS, 3).expect("migrate");
        assert_eq!(state(&db), (Some(3), String::new()));
    }

    #[test]
    fn a_store_with_data_and_no_stamp_is_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("open");
        put(&db, Cf::Challenges, &[7; 16], Some(&u64::MAX.to_be_bytes()));
        put(&db, Cf::Meta, SCHEMA_KEY, None);
        db.migrate(&STEPS, 3).expect("migrate");
        assert_eq!(state(&db), (Some(3), "ab".into()), "migrated from 1 by every step");
        assert!(!db.use_challenge(&[7; 16], u64::MAX).expect("challenge"), "its data kept");
    }

    #[test]
    fn a_migration_killed_between_steps_resumes_from_the_last_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("open");
        db.stamp(1).expect("stamp");
        let crashing = [STEPS[0], Migration { from: 2, what: "b", run: |_| Err(DbError::Storage("killed".into())) }];
        assert!(db.migrate(&crashing, 3).is_err());
        assert_eq!(state(&db), (Some(2), "a".into()), "the first step done and stamped");
        db.migrate(&STEPS, 3).expect("resume");
        assert_eq!(state(&db), (Some(3), "ab".into()), "the first step not run again");
        // Killed after a step's writes, before its stamp: the step runs
        // again (steps are written to be idempotent).
        db.stamp(2).expect("stamp");
        db.migrate(&STEPS, 3).expect("again");
        assert_eq!(state(&db), (Some(3), "abb".into()));
    }

    #[test]
    fn a_newer_store_with_families_this_build_does_not_know_is_refused_by_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = ApiDb::open(dir.path()).expect("open");
            put(&db, Cf::Meta, SCHEMA_KEY, Some(format!("{}", SCHEMA_VERSION + 1).as_bytes()));
        }
        {
            let opts = rocksdb::Options::default();
            let names = DB::list_cf(&opts, dir.path()).expect("families");
            let mut raw = DB::open_cf(&opts, dir.path(), &names).expect("raw open");
            raw.create_cf("from_the_future", &opts).expect("create family");
        }
        for _ in 0..2 {
            let e = ApiDb::open(dir.path()).expect_err("refused").to_string();
            let says = format!(
                "api database has schema {}; this build reads schemas 1 to {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            );
            assert!(e.contains(&says), "{e}");
        }
    }

    #[test]
    fn templates_people_add_are_kept_in_order_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut echo: medanchor_clinical::Template = serde_json::from_value(serde_json::json!({
            "id": "echo", "version": 1, "title": "Echo", "record_type": "imaging", "scope": { "kind": "tenant" },
            "fields": [{ "name": "study_date", "label": "Study date", "required": true, "kind": { "type": "date" } }]
        }))
        .expect("template");
        {
            let db = ApiDb::open(dir.path()).expect("open");
            for v in [1, 2] {
                echo.version = v;
                db.put_template(&echo).expect("put");
            }
            let mut other = echo.clone();
            other.id = "a-first".parse().expect("id");
            other.version = 1;
            db.put_template(&other).expect("put");
        }
        let db = ApiDb::open(dir.path()).expect("reopen");
        let stored: Vec<(String, u32)> =
            db.templates().expect("templates").iter().map(|t| (t.id.to_string(), t.version)).collect();
        assert_eq!(stored, [("a-first".into(), 1), ("echo".into(), 1), ("echo".into(), 2)]);
        // In this order every version follows its predecessor: the
        // registry takes them as they come.
        let mut registry = medanchor_clinical::Registry::builtin();
        for t in db.templates().expect("templates") {
            registry.add(t).expect("loads");
        }
    }
}
