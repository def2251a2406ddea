//! Backups as admins see them, and the node's reconciliation with the
//! chain after a restore.
//!
//! The backup machinery (`medanchor-backup`) and the node's stores belong
//! to the process that runs them; the service reaches them through
//! [`BackupControl`], set once at start, so the admin routes are thin and
//! authorized and audited here like every other use case.
//!
//! After a restore the node's data is as it was at the backup point while
//! the chain went on: [`reconcile`] compares the two — records and
//! versions the chain holds that no tenant here has (written after the
//! backup, so lost: listed by id, never invented), pending anchors (the
//! tracker re-tracks them), and the audit log against its last on-chain
//! root — then records the report, audits it (one entry per affected
//! patient, which their access history shows) and logs it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::db::{Cf, DbError};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// The file a restore leaves in the API's data directory; the next start
/// reconciles, records the report, and removes it.
pub const RESTORE_MARKER: &str = "restored.json";

const REPORT_KEY: &[u8] = b"backup.reconciliation";
const OUTCOME_KEY: &[u8] = b"backup.outcome";

/// What a restore left behind for the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMarker {
    /// The backup restored.
    pub backup: String,
    /// When it was captured (unix ms).
    pub captured_ms: u64,
    /// The index's chain height in the backup (the backup point on the
    /// chain), when the index was restored with it.
    pub index_height: Option<u64>,
    /// When the restore ran (unix ms).
    pub restored_ms: u64,
}

/// A record the chain holds and no tenant of this node has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LostRecord {
    /// The record (hex).
    pub record_id: String,
    /// Its patient.
    pub patient: String,
    /// Who created it.
    pub created_by: String,
    /// The chain height it was created at.
    pub created_height: u64,
    /// Its version on the chain.
    pub version: u64,
    /// Created after the backup point (a write the backup could not hold);
    /// `false`: before it, so not this node's (another node's record) or
    /// missing from the backup itself.
    pub after_backup: bool,
}

/// A record held here at an older version than the chain's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LostVersions {
    /// The record (hex).
    pub record_id: String,
    /// Its patient.
    pub patient: String,
    /// The newest version held here.
    pub held: u64,
    /// The chain's version.
    pub on_chain: u64,
}

/// The audit log against its last on-chain root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AuditCheck {
    /// The log was never anchored (or no operator is configured).
    NotAnchored,
    /// The log holds the anchored size and computes the anchored root.
    Matches {
        /// The anchored size.
        on_chain_size: u64,
        /// The log's size.
        local_size: u64,
    },
    /// The chain anchored entries this log no longer has: entries
    /// `local_size..on_chain_size` were written after the backup point.
    /// Until a new log is started (a new operator key) this log cannot be
    /// anchored again.
    Behind {
        /// The anchored size.
        on_chain_size: u64,
        /// The log's size.
        local_size: u64,
    },
    /// At the anchored size the log computes another root: tampering.
    Diverged {
        /// The anchored size.
        on_chain_size: u64,
        /// The anchored root.
        on_chain_root: String,
        /// The log's root at that size.
        local_root: String,
    },
    /// The node could not be asked.
    Unknown {
        /// Why.
        error: String,
    },
}

/// What the node found on its first start after a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reconciliation {
    /// The backup restored.
    pub backup: String,
    /// When it was captured (unix ms).
    pub captured_ms: u64,
    /// The backup point on the chain (the restored index's height).
    pub backup_height: Option<u64>,
    /// The chain's height when reconciled.
    pub chain_height: u64,
    /// Records on the chain.
    pub records_on_chain: u64,
    /// Of which held here.
    pub records_held: u64,
    /// Records the chain holds and this node does not.
    pub lost_records: Vec<LostRecord>,
    /// Records whose newer versions are lost.
    pub lost_versions: Vec<LostVersions>,
    /// Records erased on reconciliation: the chain says purged, or the
    /// tombstone list names them (a deletion after the backup point must
    /// not come back with it).
    pub erased_records: Vec<String>,
    /// Versions whose anchoring transaction was pending at the backup
    /// point: the tracker settles them from the chain (or sends them
    /// again).
    pub pending_versions: u64,
    /// The default tenant's audit log against the chain.
    pub audit: AuditCheck,
    /// When reconciled (unix ms).
    pub reconciled_ms: u64,
}

impl Reconciliation {
    /// Whether anything acknowledged is missing (records, versions or
    /// audit entries written after the backup point).
    pub fn lost_anything(&self) -> bool {
        !self.lost_records.is_empty()
            || !self.lost_versions.is_empty()
            || matches!(self.audit, AuditCheck::Behind { .. } | AuditCheck::Diverged { .. })
    }
}

/// Reconciles the restored tenants with the chain (the index has caught
/// up with the node first) and records the outcome: the report in the
/// first tenant's database, a `backup.restore` entry in every tenant's
/// audit log, a `backup.record-lost` entry per record lost after the
/// backup point in the first tenant's log (no tenant holds the record; the
/// entry names the patient, so their access history shows it), and a log
/// line. `audit_log` is the principal the first tenant's log is anchored
/// under.
///
/// Idempotent per backup: a crash before the marker is removed runs it
/// again, and the entries are not written twice.
pub async fn reconcile(tenants: &[Service], marker: &RestoreMarker, audit_log: Option<&str>) -> Result<Reconciliation> {
    let first = tenants.first().ok_or_else(|| Error::Internal("no tenant".into()))?;
    if let Some(done) = reconciliation(first)?.filter(|r| r.backup == marker.backup) {
        return Ok(done);
    }
    let status = first.chain().status().map_err(Error::internal)?;
    let chain_height = status.tip_height.unwrap_or(0);
    let mut on_chain = Vec::new();
    first
        .chain()
        .each_record(&mut |r| {
            on_chain.push(r);
            true
        })
        .map_err(Error::internal)?;
    // Deletions first: what the tombstone list names, then what the chain
    // says is purged, is erased before anything is counted.
    let mut erased_records = Vec::new();
    for t in tenants {
        if let Some(path) = &t.config().tombstones {
            for hex_id in crate::deletion::read_tombstones(path)? {
                if let Ok(id) = hex_id.parse::<medanchor_contracts::RecordId>() {
                    if t.replay_erase(&id).await? {
                        erased_records.push(hex_id);
                    }
                }
            }
        }
    }
    for r in on_chain.iter().filter(|r| r.status == medanchor_contracts::types::RecordStatus::Purged) {
        for t in tenants {
            if t.erase_record(&r.record_id).await? {
                erased_records.push(r.record_id.bare_hex());
            }
        }
    }
    let (mut lost_records, mut lost_versions, mut held) = (Vec::new(), Vec::new(), 0);
    for r in &on_chain {
        let id = r.record_id.0;
        let erased = tenants.iter().map(|t| t.is_erased(&id)).collect::<Result<Vec<_>>>()?;
        if r.status == medanchor_contracts::types::RecordStatus::Purged || erased.contains(&true) {
            continue;
        }
        let mut newest = None;
        for t in tenants {
            if let Some(v) = t.db().versions(&id)?.iter().map(|m| m.version).max() {
                newest = newest.max(Some(v));
            }
        }
        match newest {
            None => lost_records.push(LostRecord {
                record_id: hex::encode(id),
                patient: r.patient.clone(),
                created_by: r.created_by.clone(),
                created_height: r.created_height,
                version: r.version,
                after_backup: marker.index_height.is_none_or(|h| r.created_height > h),
            }),
            Some(v) => {
                held += 1;
                if v < r.version {
                    lost_versions.push(LostVersions {
                        record_id: hex::encode(id),
                        patient: r.patient.clone(),
                        held: v,
                        on_chain: r.version,
                    });
                }
            }
        }
    }
    let mut pending = 0;
    for t in tenants {
        pending += t.db().pending()?.len() as u64;
    }
    let audit = match audit_log {
        None => AuditCheck::NotAnchored,
        Some(log) => check_audit(first, log).await,
    };
    let report = Reconciliation {
        backup: marker.backup.clone(),
        captured_ms: marker.captured_ms,
        backup_height: marker.index_height,
        chain_height,
        records_on_chain: on_chain.len() as u64,
        records_held: held,
        lost_records,
        lost_versions,
        erased_records,
        pending_versions: pending,
        audit,
        reconciled_ms: first.now_ms(),
    };
    record(first, tenants, &report).await?;
    Ok(report)
}

async fn check_audit(service: &Service, log: &str) -> AuditCheck {
    let (node, contracts, _) = service.anchor_parts();
    let head = match crate::anchoring::read_audit_head(node, contracts, log).await {
        Ok(None) => return AuditCheck::NotAnchored,
        Ok(Some(h)) => h,
        Err(e) => return AuditCheck::Unknown { error: e.to_string() },
    };
    let local_size = match service.audit().size() {
        Ok(s) => s,
        Err(e) => return AuditCheck::Unknown { error: e.to_string() },
    };
    if head.tree_size > local_size {
        return AuditCheck::Behind { on_chain_size: head.tree_size, local_size };
    }
    match service.audit().root(head.tree_size) {
        Ok(root) if head.root_bytes() == Some(root) => {
            AuditCheck::Matches { on_chain_size: head.tree_size, local_size }
        }
        Ok(root) => AuditCheck::Diverged {
            on_chain_size: head.tree_size,
            on_chain_root: head.root,
            local_root: hex::encode(root),
        },
        Err(e) => AuditCheck::Unknown { error: e.to_string() },
    }
}

/// Audits the report (before storing it: a crash in between writes the
/// entries again on the next start, never loses them), stores it, logs it.
async fn record(first: &Service, tenants: &[Service], report: &Reconciliation) -> Result<()> {
    let now = first.now_ms();
    let summary = format!(
        "restored backup {}: {} records and {} records' newer versions written after it are lost; {} records deleted since erased again; {} pending anchors re-tracked; audit log {}",
        report.backup,
        report.lost_records.len(),
        report.lost_versions.len(),
        report.erased_records.len(),
        report.pending_versions,
        match &report.audit {
            AuditCheck::NotAnchored => "not anchored".to_string(),
            AuditCheck::Matches { on_chain_size, .. } => format!("matches its on-chain root at {on_chain_size}"),
            AuditCheck::Behind { on_chain_size, local_size } =>
                format!("lost entries {local_size}..{on_chain_size} (anchored on-chain)"),
            AuditCheck::Diverged { on_chain_size, .. } => format!("DIVERGES from its on-chain root at {on_chain_size}"),
            AuditCheck::Unknown { error } => format!("not checked ({error})"),
        }
    );
    for t in tenants {
        let mut entry = AuditEntry::system("backup.restore", now);
        entry.outcome = if report.lost_anything() { "error" } else { "allowed" }.into();
        entry.reason = Some(summary.clone());
        t.audit().append(entry).await.map_err(Error::internal)?;
    }
    for r in report.lost_records.iter().filter(|r| r.after_backup) {
        let mut entry = AuditEntry::system("backup.record-lost", now);
        entry.patient = Some(r.patient.clone());
        entry.record_id = Some(r.record_id.clone());
        entry.version = Some(r.version);
        entry.outcome = "error".into();
        entry.reason = Some(format!(
            "the record was anchored on-chain at height {} after backup {}; its content is not on this node",
            r.created_height, report.backup
        ));
        first.audit().append(entry).await.map_err(Error::internal)?;
    }
    for v in &report.lost_versions {
        let mut entry = AuditEntry::system("backup.record-lost", now);
        entry.patient = Some(v.patient.clone());
        entry.record_id = Some(v.record_id.clone());
        entry.version = Some(v.on_chain);
        entry.outcome = "error".into();
        entry.reason = Some(format!(
            "versions {}..={} were anchored on-chain after backup {}; this node holds version {}",
            v.held + 1,
            v.on_chain,
            report.backup,
            v.held
        ));
        first.audit().append(entry).await.map_err(Error::internal)?;
    }
    put_json(first, REPORT_KEY, report)?;
    if report.lost_anything() {
        tracing::error!(
            backup = %report.backup,
            lost_records = report.lost_records.len(),
            lost_versions = report.lost_versions.len(),
            audit = ?report.audit,
            "RESTORE LOST WRITES: {summary}"
        );
    } else {
        tracing::info!(backup = %report.backup, "{summary}");
    }
    Ok(())
}

fn put_json<T: Serialize>(service: &Service, key: &[u8], value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
    let mut batch = service.db().batch();
    batch.put_cf(service.db().cf(Cf::Meta), key, bytes);
    Ok(service.db().write(batch)?)
}

fn get_json<T: serde::de::DeserializeOwned>(service: &Service, key: &[u8]) -> Result<Option<T>> {
    service
        .db()
        .get(Cf::Meta, key)?
        .map(|b| serde_json::from_slice(&b).map_err(|e| Error::from(DbError::Corrupt(e.to_string()))))
        .transpose()
}

/// The backup runs' last outcomes (and so the standing alerts).
pub fn outcomes(service: &Service) -> Result<Outcomes> {
    Ok(get_json(service, OUTCOME_KEY)?.unwrap_or_default())
}

/// The last reconciliation after a restore, if this node was restored.
pub fn reconciliation(service: &Service) -> Result<Option<Reconciliation>> {
    get_json(service, REPORT_KEY)
}

/// One backup in a target, as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSummary {
    /// The backup's id (sorts by time).
    pub id: String,
    /// `data` or `keys`.
    pub set: String,
    /// When captured (unix ms).
    pub created_ms: u64,
    /// Files.
    pub files: u64,
    /// Their bytes, before compression.
    pub bytes: u64,
    /// When last verified (unix ms), if ever.
    pub verified_ms: Option<u64>,
}

/// A backup run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupRun {
    /// What ran: `create`, `verify`, `prune`, `copy` (to the bucket).
    pub kind: String,
    /// The backup, when there is one.
    pub backup: Option<String>,
    /// Unix ms, when it ended.
    pub at_ms: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// `ok` or `failed`.
    pub outcome: String,
    /// What it did, or why it failed.
    pub detail: String,
}

/// The last successful run and the last failure of the backup jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcomes {
    /// Per kind, the last run that succeeded.
    pub last_ok: BTreeMap<String, BackupRun>,
    /// Per kind, the last run that failed.
    pub last_failed: BTreeMap<String, BackupRun>,
}

impl Outcomes {
    /// The standing alerts: every kind whose last run failed (a later
    /// success clears it).
    pub fn alerts(&self) -> Vec<BackupRun> {
        self.last_failed
            .iter()
            .filter(|(kind, f)| self.last_ok.get(*kind).is_none_or(|ok| ok.at_ms < f.at_ms))
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// The backups' state for admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupStatus {
    /// Where backups go (the local target, and the bucket if any).
    pub targets: Vec<String>,
    /// Seconds between scheduled backups (0: none scheduled).
    pub every_secs: u64,
    /// Days every backup is kept.
    pub retain_days: u64,
    /// The backups in the local target, oldest first.
    pub backups: Vec<BackupSummary>,
    /// Failed runs not followed by a success of their kind: what an admin
    /// must look at.
    pub alerts: Vec<BackupRun>,
    /// The last runs.
    pub outcomes: Outcomes,
    /// The reconciliation after the restore this node started from.
    pub reconciliation: Option<Reconciliation>,
}

/// What the node's backup machinery offers the service (blocking calls:
/// the service runs them off the async threads). Errors are messages for
/// admins; none carries a secret.
pub trait BackupControl: Send + Sync {
    /// Where backups go.
    fn targets(&self) -> Vec<String>;
    /// Seconds between scheduled backups, and days of retention.
    fn schedule(&self) -> (u64, u64);
    /// The backups in the local target.
    fn list(&self) -> std::result::Result<Vec<BackupSummary>, String>;
    /// Makes, verifies and prunes one backup now, then copies it to the
    /// second location if there is one: the backup's run, and the copy's
    /// (which fails on its own: the local backup stands).
    fn create(&self) -> std::result::Result<(BackupRun, Option<BackupRun>), String>;
    /// Verifies one backup (decrypt, hash, restore into scratch, compare
    /// every store's digest).
    fn verify(&self, id: &str) -> std::result::Result<BackupRun, String>;
    /// Removes the backups past their retention.
    fn prune(&self) -> std::result::Result<BackupRun, String>;
}

/// A tenant's attachments in a bucket: the store, and each object its
/// metadata names (key, stored size).
#[derive(Debug, Clone)]
pub struct BucketObjects {
    /// The bucket.
    pub store: Arc<medanchor_storage::backend::Backend>,
    /// (key, size), each once, in key order.
    pub objects: Vec<(String, u64)>,
}

/// Where a [`Service`] finds the node's [`BackupControl`] (set once, after
/// the stores it backs up are open).
pub type BackupSlot = Arc<std::sync::OnceLock<Arc<dyn BackupControl>>>;

/// Records a run (scheduled or asked for): its outcome is kept per kind,
/// and a failure is an alert — an error log line and a `backup.failed`
/// audit entry — until a run of its kind succeeds.
pub async fn note_run(service: &Service, run: &BackupRun) -> Result<()> {
    let mut outcomes: Outcomes = get_json(service, OUTCOME_KEY)?.unwrap_or_default();
    if run.outcome == "ok" {
        outcomes.last_ok.insert(run.kind.clone(), run.clone());
    } else {
        tracing::error!(kind = %run.kind, backup = ?run.backup, detail = %run.detail, "BACKUP ALERT: a backup run failed");
        let mut entry = AuditEntry::system("backup.failed", service.now_ms());
        entry.outcome = "error".into();
        entry.reason = Some(format!("{}: {}", run.kind, run.detail));
        service.audit().append(entry).await.map_err(Error::internal)?;
        outcomes.last_failed.insert(run.kind.clone(), run.clone());
    }
    put_json(service, OUTCOME_KEY, &outcomes)
}

impl Service {
    /// The attachments' objects this tenant's metadata names, when they
    /// live in a bucket (on local disk they are files of the data
    /// directory, backed up with it): the store, and each object's key and
    /// stored size, once. Read after the database is checkpointed, so it
    /// names every object the checkpoint does (an object is written before
    /// its metadata, and never rewritten); only an object purged in
    /// between is named by the checkpoint and not here.
    pub fn bucket_objects(&self) -> Result<Option<BucketObjects>> {
        let Some(store) = self.objects.as_ref().filter(|o| !o.is_local()) else { return Ok(None) };
        let mut keys = BTreeMap::new();
        for (_, v) in self.db().scan(Cf::Attachments, b"v")? {
            let meta: crate::attachments::AttachmentMeta = serde_json::from_slice(&v).map_err(Error::internal)?;
            keys.insert(meta.object_key, meta.stored_size);
        }
        Ok(Some(BucketObjects { store: store.clone(), objects: keys.into_iter().collect() }))
    }

    /// Gives the service the node's backup machinery (once).
    pub fn set_backups(&self, control: Arc<dyn BackupControl>) {
        let _ = self.backups.set(control);
    }

    fn backup_control(&self) -> Result<Arc<dyn BackupControl>> {
        if !self.primary {
            return Err(Error::Forbidden {
                code: "node-admin-only",
                detail: "backups are the node's, run by the first tenant's admins".into(),
                reason: None,
            });
        }
        self.backups
            .get()
            .cloned()
            .ok_or_else(|| Error::Unavailable("this node runs no backups (`medanchor up` runs them)".into()))
    }

    async fn admin_only(&self, caller: &Caller, action: &str) -> Result<AuditEntry> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let entry = caller.entry(role, action);
        if role != "admin" {
            let refused =
                Error::Forbidden { code: "admin-only", detail: "backups are for admins".into(), reason: None };
            return self.audited(entry, Err(refused)).await;
        }
        Ok(entry)
    }

    /// The backups, the standing alerts, the last runs, and the
    /// reconciliation after a restore. Admins only; audited.
    pub async fn backup_status(&self, caller: &Caller) -> Result<BackupStatus> {
        let entry = self.admin_only(caller, "backup.status").await?;
        let result = async {
            let control = self.backup_control()?;
            let c = control.clone();
            let backups = tokio::task::spawn_blocking(move || c.list())
                .await
                .map_err(Error::internal)?
                .map_err(Error::Unavailable)?;
            let outcomes: Outcomes = get_json(self, OUTCOME_KEY)?.unwrap_or_default();
            let (every_secs, retain_days) = control.schedule();
            Ok(BackupStatus {
                targets: control.targets(),
                every_secs,
                retain_days,
                backups,
                alerts: outcomes.alerts(),
                outcomes,
                reconciliation: reconciliation(self)?,
            })
        }
        .await;
        self.audited(entry, result).await
    }

    /// Runs a backup job now for an admin: `create`, `verify` (of `id`)
    /// or `prune`. The run is recorded as a scheduled one is (a failure is
    /// an alert) and audited.
    pub async fn run_backup(&self, caller: &Caller, job: BackupJob) -> Result<BackupRun> {
        let kind = job.kind();
        let entry = self.admin_only(caller, &format!("backup.{kind}")).await?;
        let result = async {
            let control = self.backup_control()?;
            if let BackupJob::Verify(id) = &job {
                let c = control.clone();
                let backups = tokio::task::spawn_blocking(move || c.list())
                    .await
                    .map_err(Error::internal)?
                    .map_err(Error::Unavailable)?;
                if !backups.iter().any(|b| &b.id == id) {
                    return Err(Error::NotFound(format!("no backup {id} in the local target")));
                }
            }
            let started = std::time::Instant::now();
            let run = tokio::task::spawn_blocking(move || match job {
                BackupJob::Create => control.create(),
                BackupJob::Verify(id) => control.verify(&id).map(|r| (r, None)),
                BackupJob::Prune => control.prune().map(|r| (r, None)),
            })
            .await
            .map_err(Error::internal)?;
            match run {
                Ok((run, copy)) => {
                    note_run(self, &run).await?;
                    if let Some(copy) = copy {
                        note_run(self, &copy).await?;
                        if copy.outcome != "ok" {
                            return Err(Error::Unavailable(format!(
                                "backup {} was made and verified, but {}",
                                run.backup.as_deref().unwrap_or_default(),
                                copy.detail
                            )));
                        }
                    }
                    Ok(run)
                }
                Err(detail) => {
                    let failed = BackupRun {
                        kind: kind.into(),
                        backup: None,
                        at_ms: self.now_ms(),
                        seconds: started.elapsed().as_secs_f64(),
                        outcome: "failed".into(),
                        detail: detail.clone(),
                    };
                    note_run(self, &failed).await?;
                    Err(Error::Unavailable(format!("backup {kind} failed: {detail}")))
                }
            }
        }
        .await;
        self.audited(entry, result).await
    }
}

/// A backup job an admin asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupJob {
    /// Make (verify, copy, prune) a backup now.
    Create,
    /// Verify this backup.
    Verify(String),
    /// Remove backups past their retention.
    Prune,
}

impl BackupJob {
    /// Its name in runs and audit actions.
    pub fn kind(&self) -> &'static str {
        match self {
            BackupJob::Create => "create",
            BackupJob::Verify(_) => "verify",
            BackupJob::Prune => "prune",
        }
    }
}
