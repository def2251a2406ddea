//! The tamper-evident audit log: every access attempt to patient data —
//! allowed or refused — appended to an RFC 6962 Merkle log in the API's
//! RocksDB, with inclusion and consistency proofs and signed checkpoints.
//!
//! Entries hold no PHI and no secrets: principals, opaque ids, the action,
//! the method and the outcome with the contract's reason (MedTrack's
//! masking rule). The leaf is the entry's canonical JSON.
//!
//! Appends are group-committed: concurrent requests queue their entries; a
//! writer appends everything queued to the tree and writes entries, new
//! nodes and the size in one synced batch, then answers each request. A
//! request whose entry is not durable gets no answer, so nothing is
//! acknowledged that a crash could lose.

use std::collections::HashMap;
use std::sync::Arc;

use medanchor_ops::anomaly::{Ack, Flag, Rules};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::db::{ApiDb, Cf, DbError};
use crate::merkle::{self, Hash, NodeStore};

/// The most bytes a client-influenced field of an entry keeps.
pub const MAX_FIELD: usize = 256;

fn truncate(v: &mut String, max: usize) {
    if v.len() > max {
        let mut cut = max;
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        v.truncate(cut);
    }
}

/// One access attempt. Field order is the canonical JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// Who acted (principal), or `anonymous`.
    pub actor: String,
    /// In which role: `patient`, `provider`, `auditor`, `admin`, `anonymous`.
    pub role: String,
    /// What: `record.create`, `record.read`, `record.list`, `auth.sign-in`, …
    pub action: String,
    /// Whose data.
    pub patient: Option<String>,
    /// Which record (hex id).
    pub record_id: Option<String>,
    /// Which version.
    pub version: Option<u64>,
    /// How access was allowed: `self`, `consent`, `emergency`,
    /// `access_code`, `qr_code`.
    pub method: Option<String>,
    /// The share (access code or QR link) used or attempted. Absent from
    /// the leaf when `None`, so entries written before shares existed keep
    /// their leaf bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    /// `allowed`, `denied` or `error`.
    pub outcome: String,
    /// Why refused (e.g. `ERR-CONSENT-REVOKED`), when refused.
    pub reason: Option<String>,
    /// The client's address, in entries written before `ip_hash` (new
    /// entries leave it empty: an address is personal data, and the log
    /// can never forget).
    pub client_ip: Option<String>,
    /// The client's user agent, at most [`MAX_FIELD`] bytes.
    pub user_agent: Option<String>,
    /// A keyed hash of the client's address (HMAC-SHA256 under a key of
    /// the node's, 16 bytes hex): the same client links its entries, and
    /// without the key nobody learns the address. Absent from the leaf
    /// when `None`, so earlier entries keep their leaf bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_hash: Option<String>,
    /// The request id (also in the response headers).
    pub request_id: String,
    /// What an action covered when one record does not say it (an
    /// export's format, range and contents: counts and types, never
    /// content). Absent from the leaf when `None`, so earlier entries keep
    /// their leaf bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The diagnosis codes of the version a `record.create` wrote or a
    /// `record.read` opened, for the analytics counters only
    /// ([`crate::analytics`]): never in the leaf, never stored.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub diagnoses: Vec<String>,
}

impl AuditEntry {
    /// An entry of the node's own jobs (actor `node`, role `system`).
    pub fn system(action: &str, time_ms: u64) -> AuditEntry {
        AuditEntry {
            time_ms,
            actor: "node".into(),
            role: "system".into(),
            action: action.into(),
            patient: None,
            record_id: None,
            version: None,
            method: None,
            share_id: None,
            outcome: "allowed".into(),
            reason: None,
            client_ip: None,
            user_agent: None,
            ip_hash: None,
            request_id: String::new(),
            detail: None,
            diagnoses: Vec::new(),
        }
    }

    /// The facts the notification and analytics rules read, for the entry
    /// at `index`.
    pub fn facts(&self, index: u64) -> medanchor_ops::notify::Facts<'_> {
        medanchor_ops::notify::Facts {
            index,
            actor: &self.actor,
            role: &self.role,
            action: &self.action,
            patient: self.patient.as_deref(),
            record_id: self.record_id.as_deref(),
            method: self.method.as_deref(),
            outcome: &self.outcome,
            time_ms: self.time_ms,
            reason: self.reason.as_deref(),
            ip_hash: self.ip_hash.as_deref(),
            detail: self.detail.as_deref(),
        }
    }

    /// The leaf bytes.
    pub fn leaf(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("entries serialize")
    }
}

/// Nodes in the database plus those created earlier in the same batch.
struct BatchStore<'a> {
    db: &'a ApiDb,
    pending: HashMap<(u8, u64), Hash>,
}

fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

impl NodeStore for BatchStore<'_> {
    type Error = DbError;

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, DbError> {
        if let Some(h) = self.pending.get(&(level, index)) {
            return Ok(Some(*h));
        }
        match self.db.get(Cf::AuditNodes, &node_key(level, index))? {
            None => Ok(None),
            Some(v) => Ok(Some(v.try_into().map_err(|_| DbError::Corrupt("audit node is not 32 bytes".into()))?)),
        }
    }
}

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The tree is inconsistent with the store, or a request is out of range.
    #[error("audit tree: {0}")]
    Tree(String),
    /// The writer is gone (the server is stopping).
    #[error("the audit writer stopped")]
    Stopped,
}

type Job = (AuditEntry, oneshot::Sender<Result<u64, String>>);

/// The audit log (cheap to clone).
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Arc<ApiDb>,
    queue: mpsc::Sender<Job>,
    writer: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Held while flags are read and rewritten (the writer's commits, an
    /// admin's acknowledgement).
    flags_lock: Arc<std::sync::Mutex<()>>,
}

pub(crate) fn size_of(db: &ApiDb) -> Result<u64, DbError> {
    Ok(db
        .get(Cf::Meta, b"audit_size")?
        .map(|v| v.try_into().map(u64::from_be_bytes).map_err(|_| DbError::Corrupt("audit size".into())))
        .transpose()?
        .unwrap_or(0))
}

/// The entry at `index`, if written.
pub(crate) fn read_entry(db: &ApiDb, index: u64) -> Result<Option<AuditEntry>, DbError> {
    db.get(Cf::AuditEntries, &index.to_be_bytes())?
        .map(|b| serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(e.to_string())))
        .transpose()
}

/// `meta` key: how many entries (from index 0) `audit_by_patient` covers.
const INDEXED: &[u8] = b"audit_indexed";

/// `audit_by_patient` key: the patient's principal, a 0 byte (principals
/// never hold one), the entry's index.
fn patient_key(patient: &str, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(patient.len() + 9);
    k.extend_from_slice(patient.as_bytes());
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Indexes the entries a log written before `audit_by_patient` existed
/// holds: the schema 1 → 2 migration of the API database (a crash part-way
/// resumes where the last batch ended).
pub(crate) fn index_patients(db: &ApiDb) -> Result<(), AuditError> {
    let size = size_of(db)?;
    let mut done = db
        .get(Cf::Meta, INDEXED)?
        .map(|v| v.try_into().map(u64::from_be_bytes).map_err(|_| DbError::Corrupt("audit indexed".into())))
        .transpose()?
        .unwrap_or(0);
    while done < size {
        let end = size.min(done + 10_000);
        let mut batch = db.batch();
        for i in done..end {
            if let Some(b) = db.get(Cf::AuditEntries, &i.to_be_bytes())? {
                let e: AuditEntry = serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(e.to_string()))?;
                if let Some(patient) = &e.patient {
                    batch.put_cf(db.cf(Cf::AuditByPatient), patient_key(patient, i), []);
                }
            }
        }
        batch.put_cf(db.cf(Cf::Meta), INDEXED, end.to_be_bytes());
        db.write(batch)?;
        done = end;
    }
    Ok(())
}

/// Appends `entries` after `size` in one synced batch — with the
/// notifications, counters and flags they mean — and returns their
/// indices and the flags they raised or added to.
fn commit(db: &ApiDb, entries: &[AuditEntry], rules: &Rules) -> Result<(Vec<u64>, Vec<Flag>), AuditError> {
    let mut size = size_of(db)?;
    let mut store = BatchStore { db, pending: HashMap::new() };
    let mut batch = db.batch();
    let mut counted = HashMap::new();
    let mut flags = Vec::new();
    let mut indices = Vec::with_capacity(entries.len());
    for entry in entries {
        let leaf = entry.leaf();
        let nodes =
            merkle::append(size, merkle::leaf_hash(&leaf), &store).map_err(|e| AuditError::Tree(e.to_string()))?;
        for (level, index, hash) in nodes {
            batch.put_cf(db.cf(Cf::AuditNodes), node_key(level, index), hash);
            store.pending.insert((level, index), hash);
        }
        batch.put_cf(db.cf(Cf::AuditEntries), size.to_be_bytes(), &leaf);
        if let Some(patient) = &entry.patient {
            batch.put_cf(db.cf(Cf::AuditByPatient), patient_key(patient, size), []);
        }
        // The notification this entry means, in the entry's own commit.
        crate::notify::outbox_row(db, &mut batch, entry, size)?;
        // Its counts and the rules it fires, in its own commit too.
        let mut kv = crate::analytics::BatchKv::new(db, &mut batch, &mut counted);
        flags.extend(crate::analytics::record_entry(db, &mut kv, entry, size, rules)?);
        indices.push(size);
        size += 1;
    }
    batch.put_cf(db.cf(Cf::Meta), b"audit_size", size.to_be_bytes());
    batch.put_cf(db.cf(Cf::Meta), INDEXED, size.to_be_bytes());
    crate::analytics::mark_counted(db, &mut batch, size);
    db.write(batch)?;
    Ok((indices, flags))
}

impl AuditLog {
    /// Starts the log's writer on the current tokio runtime, with the
    /// default anomaly rules.
    pub fn start(db: Arc<ApiDb>) -> AuditLog {
        AuditLog::start_with(db, Rules::default())
    }

    /// Starts the log's writer with these anomaly rules.
    pub fn start_with(db: Arc<ApiDb>, rules: Rules) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        let writer_db = db.clone();
        let flags_lock: Arc<std::sync::Mutex<()>> = Arc::default();
        let writer_lock = flags_lock.clone();
        let rules = Arc::new(rules);
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < 4096 {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let entries: Vec<AuditEntry> = jobs.iter().map(|(e, _)| e.clone()).collect();
                let (db, lock, rules) = (writer_db.clone(), writer_lock.clone(), rules.clone());
                let result = tokio::task::spawn_blocking(move || {
                    let _flags = lock.lock().unwrap_or_else(|p| p.into_inner());
                    commit(&db, &entries, &rules)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
                match result {
                    Ok((indices, flags)) => {
                        for f in flags.iter().filter(|f| f.occurrences == 1) {
                            tracing::warn!(rule = %f.rule, kind = ?f.kind, flag = %f.id, "{}", f.explanation);
                        }
                        for ((_, reply), index) in jobs.into_iter().zip(indices) {
                            let _ = reply.send(Ok(index));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "audit log append failed");
                        for (_, reply) in jobs {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        AuditLog { db, queue: tx, writer: Arc::new(std::sync::Mutex::new(Some(writer))), flags_lock }
    }

    /// Sets the acknowledgement of the flag at `key` (under the lock the
    /// writer holds while it updates flags, so neither loses the other's
    /// change); the flag as stored, or `None` when there is none.
    pub async fn acknowledge(&self, key: Vec<u8>, ack: Ack) -> Result<Option<Flag>, AuditError> {
        let (db, lock) = (self.db.clone(), self.flags_lock.clone());
        tokio::task::spawn_blocking(move || {
            let _flags = lock.lock().unwrap_or_else(|p| p.into_inner());
            let Some(bytes) = db.get(Cf::Analytics, &key)? else { return Ok(None) };
            let mut flag: Flag = serde_json::from_slice(&bytes).map_err(|e| DbError::Corrupt(e.to_string()))?;
            flag.acknowledged = Some(ack);
            let mut batch = db.batch();
            let value = serde_json::to_vec(&flag).map_err(|e| DbError::Corrupt(e.to_string()))?;
            batch.put_cf(db.cf(Cf::Analytics), &key, value);
            db.write(batch)?;
            Ok(Some(flag))
        })
        .await
        .map_err(|e| AuditError::Tree(e.to_string()))?
    }

    /// Stops accepting entries and waits for the writer to finish what is
    /// queued (once every clone of this log is dropped or closed).
    pub async fn close(self) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(self);
        if let Some(w) = writer {
            let _ = w.await;
        }
    }

    /// Appends an entry; returns its index once it is durable.
    pub async fn append(&self, mut entry: AuditEntry) -> Result<u64, AuditError> {
        // Entries are kept for ever and some fields come from the client:
        // none may grow an entry without bound.
        let fields = [&mut entry.user_agent, &mut entry.reason, &mut entry.patient, &mut entry.record_id];
        for v in fields.into_iter().flatten() {
            truncate(v, MAX_FIELD);
        }
        let (tx, rx) = oneshot::channel();
        self.queue.send((entry, tx)).await.map_err(|_| AuditError::Stopped)?;
        rx.await.map_err(|_| AuditError::Stopped)?.map_err(AuditError::Tree)
    }

    /// The current size.
    pub fn size(&self) -> Result<u64, AuditError> {
        Ok(size_of(&self.db)?)
    }

    /// Entry `index`, as stored.
    pub fn entry(&self, index: u64) -> Result<Option<AuditEntry>, AuditError> {
        match self.db.get(Cf::AuditEntries, &index.to_be_bytes())? {
            None => Ok(None),
            Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| DbError::Corrupt(e.to_string()))?)),
        }
    }

    /// Entries in `[from, from + limit)`.
    pub fn entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, AuditEntry)>, AuditError> {
        let size = self.size()?;
        let mut out = Vec::new();
        for i in from..size.min(from.saturating_add(limit)) {
            if let Some(e) = self.entry(i)? {
                out.push((i, e));
            }
        }
        Ok(out)
    }

    /// The entries about `patient` with index at least `from`, in log
    /// order, at most `limit`, below `size` — a range read of the
    /// per-patient index, whatever the log's size.
    pub fn patient_entries(
        &self,
        patient: &str,
        from: u64,
        limit: usize,
        size: u64,
    ) -> Result<Vec<(u64, AuditEntry)>, AuditError> {
        let start = patient_key(patient, from);
        let prefix = &start[..patient.len() + 1];
        let mut out = Vec::new();
        for (k, _) in self.db.scan_page(Cf::AuditByPatient, &start, limit)? {
            if !k.starts_with(prefix) || k.len() != prefix.len() + 8 {
                break;
            }
            let index = u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| DbError::Corrupt("key".into()))?);
            if index >= size {
                break;
            }
            if let Some(e) = self.entry(index)? {
                out.push((index, e));
            }
        }
        Ok(out)
    }

    fn store(&self) -> BatchStore<'_> {
        BatchStore { db: &self.db, pending: HashMap::new() }
    }

    /// The root of the tree of `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, AuditError> {
        merkle::root(size, &self.store()).map_err(|e| AuditError::Tree(e.to_string()))
    }

    /// The inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        merkle::inclusion_proof(index, size, &self.store()).map_err(|e| AuditError::Tree(e.to_string()))
    }

    /// The consistency proof from `old` to `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        merkle::consistency_proof(old, new, &self.store()).map_err(|e| AuditError::Tree(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            time_ms: i,
            actor: "ST1".into(),
            role: "provider".into(),
            action: "record.read".into(),
            patient: Some("ST2".into()),
            record_id: Some(format!("{i:032x}")),
            version: Some(1),
            method: Some("consent".into()),
            share_id: None,
            outcome: if i % 3 == 0 { "denied".into() } else { "allowed".into() },
            reason: (i % 3 == 0).then(|| "ERR-CONSENT-REVOKED".into()),
            client_ip: Some("127.0.0.1".into()),
            user_agent: None,
            ip_hash: None,
            request_id: format!("req-{i}"),
            detail: None,
            diagnoses: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_survive_reopen_and_prove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leaves: Vec<Hash>;
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
            let log = AuditLog::start(db);
            let handles: Vec<_> = (0..50)
                .map(|i| {
                    let log = log.clone();
                    tokio::spawn(async move { log.append(entry(i)).await })
                })
                .collect();
            let mut indices = Vec::new();
            for h in handles {
                indices.push(h.await.expect("task").expect("append"));
            }
            indices.sort_unstable();
            assert_eq!(indices, (0..50).collect::<Vec<_>>(), "every entry got its own index");
            leaves = (0..50).map(|i| merkle::leaf_hash(&log.entry(i).expect("read").expect("entry").leaf())).collect();
            log.close().await;
        }
        let db = Arc::new(ApiDb::open(dir.path()).expect("reopen"));
        let log = AuditLog::start(db);
        assert_eq!(log.size().expect("size"), 50);
        let mut reference = merkle::MemoryStore::new();
        for (i, leaf) in leaves.iter().enumerate() {
            for (level, index, hash) in merkle::append(i as u64, *leaf, &reference).expect("append") {
                reference.insert(level, index, hash);
            }
        }
        for size in [1, 7, 32, 50] {
            let root = log.root(size).expect("root");
            assert_eq!(root, merkle::root(size, &reference).expect("reference root"));
            for index in [0, size / 2, size - 1] {
                let proof = log.inclusion_proof(index, size).expect("proof");
                merkle::verify_inclusion(&leaves[index as usize], index, size, &proof, &root).expect("inclusion");
            }
        }
        let proof = log.consistency_proof(20, 50).expect("consistency");
        merkle::verify_consistency(20, 50, &log.root(20).expect("root"), &log.root(50).expect("root"), &proof)
            .expect("consistent");
        assert!(log.inclusion_proof(50, 50).is_err());
    }

    /// Entries are found by patient with range reads; a log written before
    /// the index existed is indexed when it is opened; fields a client
    /// controls are cut to [`MAX_FIELD`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_by_patient_are_range_reads_and_old_logs_get_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let about = |i: u64| if i % 4 == 0 { "ST3" } else { "ST2" };
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
            let log = AuditLog::start(db.clone());
            for i in 0..40 {
                let mut e = entry(i);
                e.patient = Some(about(i).into());
                e.user_agent = Some("x".repeat(10_000));
                log.append(e).await.expect("append");
            }
            let size = log.size().expect("size");
            let mine: Vec<u64> =
                log.patient_entries("ST3", 0, 100, size).expect("read").iter().map(|(i, _)| *i).collect();
            assert_eq!(mine, (0..40).filter(|i| i % 4 == 0).collect::<Vec<_>>());
            let page: Vec<u64> =
                log.patient_entries("ST2", 10, 3, size).expect("read").iter().map(|(i, _)| *i).collect();
            assert_eq!(page, vec![10, 11, 13], "from an index, at most a limit");
            assert!(log.patient_entries("ST", 0, 100, size).expect("read").is_empty(), "no prefix matches");
            let stored = log.entry(1).expect("read").expect("entry");
            assert_eq!(stored.user_agent.map(|u| u.len()), Some(MAX_FIELD));
            // Forget the index, as a log written before it existed.
            let mut batch = db.batch();
            for (k, _) in db.scan(Cf::AuditByPatient, &[]).expect("scan") {
                batch.delete_cf(db.cf(Cf::AuditByPatient), k);
            }
            batch.delete_cf(db.cf(Cf::Meta), INDEXED);
            batch.put_cf(db.cf(Cf::Meta), b"schema", b"1");
            db.write(batch).expect("write");
            assert!(log.patient_entries("ST3", 0, 100, size).expect("read").is_empty());
            log.close().await;
        }
        let db = Arc::new(ApiDb::open(dir.path()).expect("reopen"));
        let log = AuditLog::start(db);
        let size = log.size().expect("size");
        assert_eq!(log.patient_entries("ST3", 0, 100, size).expect("read").len(), 10, "indexed by the migration");
        assert_eq!(log.patient_entries("ST2", 0, 100, size).expect("read").len(), 30);
        assert_eq!(log.db.schema_version().expect("version"), Some(crate::db::SCHEMA_VERSION));
    }

    /// A log with no schema stamp is the first layout, not a new store: it
    /// is migrated (indexed by patient), not stamped at the current
    /// version as it stands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unstamped_log_is_version_1_and_gets_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
            let log = AuditLog::start(db.clone());
            for i in 0..12 {
                let mut e = entry(i);
                e.patient = Some("ST3".into());
                log.append(e).await.expect("append");
            }
            log.close().await;
            let mut batch = db.batch();
            for (k, _) in db.scan(Cf::AuditByPatient, &[]).expect("scan") {
                batch.delete_cf(db.cf(Cf::AuditByPatient), k);
            }
            batch.delete_cf(db.cf(Cf::Meta), INDEXED);
            batch.delete_cf(db.cf(Cf::Meta), b"schema");
            db.write(batch).expect("write");
        }
        let db = Arc::new(ApiDb::open(dir.path()).expect("reopen"));
        assert_eq!(db.schema_version().expect("version"), Some(crate::db::SCHEMA_VERSION));
        let log = AuditLog::start(db);
        let all = log.patient_entries("ST3", 0, 100, log.size().expect("size")).expect("read");
        assert_eq!(all.len(), 12, "indexed by the 1 -> 2 migration");
        log.close().await;
    }

    /// The schema 1 → 2 migration stopped part-way (the index covers the
    /// first 20 entries, the version still says 1) is finished by the next
    /// open; a store from a newer build, or with no number for a version,
    /// is refused and left as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_migration_resumes_and_newer_stores_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
            assert_eq!(db.schema_version().expect("version"), Some(crate::db::SCHEMA_VERSION), "a new store");
            let log = AuditLog::start(db.clone());
            for i in 0..40 {
                let mut e = entry(i);
                e.patient = Some("ST3".into());
                log.append(e).await.expect("append");
            }
            log.close().await;
            let mut batch = db.batch();
            for i in 20..40u64 {
                batch.delete_cf(db.cf(Cf::AuditByPatient), patient_key("ST3", i));
            }
            batch.put_cf(db.cf(Cf::Meta), INDEXED, 20u64.to_be_bytes());
            batch.put_cf(db.cf(Cf::Meta), b"schema", b"1");
            db.write(batch).expect("write");
        }
        {
            let db = Arc::new(ApiDb::open(dir.path()).expect("reopen"));
            assert_eq!(db.schema_version().expect("version"), Some(crate::db::SCHEMA_VERSION));
            let log = AuditLog::start(db);
            let all = log.patient_entries("ST3", 0, 100, log.size().expect("size")).expect("read");
            assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..40).collect::<Vec<_>>());
            log.close().await;
        }
        let newer = (crate::db::SCHEMA_VERSION + 1).to_string();
        let newer_refused = format!("schema {newer};");
        let reads = format!("this build reads schemas 1 to {}", crate::db::SCHEMA_VERSION);
        for (stamp, refused) in [(newer.as_bytes(), newer_refused.as_str()), (b"two", "schema \"two\"")] {
            {
                let db = ApiDb::open(dir.path()).expect("reopen");
                let mut batch = db.batch();
                batch.put_cf(db.cf(Cf::Meta), b"schema", stamp);
                db.write(batch).expect("write");
            }
            let e = ApiDb::open(dir.path()).expect_err("refused").to_string();
            assert!(e.contains(refused) && e.contains(&reads), "{e}");
            // Left as it was: still refused, the stamp untouched.
            assert!(ApiDb::open(dir.path()).is_err());
            let raw = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), Cf::ALL.iter().map(|c| c.name()))
                .expect("raw open");
            assert_eq!(
                raw.get_cf(raw.cf_handle("meta").expect("meta"), b"schema").expect("get").as_deref(),
                Some(stamp)
            );
            drop(raw);
            let db_raw =
                rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), Cf::ALL.iter().map(|c| c.name()))
                    .expect("raw open");
            db_raw.put_cf(db_raw.cf_handle("meta").expect("meta"), b"schema", b"2").expect("restore");
        }
    }
}
