//! The patient's right to deletion, within medical-record retention, that
//! no backup can undo.
//!
//! A patient asks for their records (or some of them) to be deleted. The
//! chain decides what may go: a record is purged by the contract's
//! `purge-record` (the contract owner's call, which this node makes with
//! its registrar key) only once it is archived and its retention period has
//! passed; the rest is refused with the reason and, for retention, the
//! height (and an estimated date) from which it becomes deletable. A purged
//! record is **erased** here: every version's ciphertext deleted, its
//! wrapped data keys and metadata deleted (so the content cannot be
//! decrypted again even from a copy of the ciphertext), its attachments'
//! objects and keys deleted, its search entries removed. The anchor stays
//! on-chain, as proof that the record existed and when.
//!
//! Backups hold the old state; a restore must not bring an erased record
//! back. Two lists survive a restore and are replayed by it: the chain
//! itself (a record it says is purged is erased on reconciliation) and the
//! **tombstone list**, a file kept apart from the data directory and from
//! the backups (`Config::tombstones`), written and synced before anything
//! is erased — which also covers a devnet whose chain was restored from the
//! same backup.

use std::io::{BufRead, Write};
use std::path::Path;

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::RecordStatus;
use medanchor_contracts::{ClarityValue, ContractName, RecordId};
use medanchor_indexer::query::{PageRequest, RecordFilter};
use medanchor_wallet::ContractCall;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::db::Cf;
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// Most records named in one request.
pub const MAX_RECORDS: usize = 100;

/// Burn blocks are about ten minutes.
const BURN_BLOCK_MS: u64 = 600_000;

fn erased_key(id: &[u8; 16]) -> Vec<u8> {
    [&b"erased\0"[..], id].concat()
}

/// What became of one record of a deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletionOutcome {
    /// The record (hex).
    pub record_id: String,
    /// `erased` (purged on-chain and erased here), or `refused`.
    pub outcome: String,
    /// Why refused: `retention-active`, `not-archived`, `not-found`,
    /// `no-owner-key`, or the contract's error.
    pub reason: Option<String>,
    /// What to do, or what was done.
    pub detail: String,
    /// For `retention-active`: the burn height from which the record may
    /// be purged.
    pub deletable_from_height: Option<u64>,
    /// …and an estimate of when (unix ms; burn blocks are about ten
    /// minutes).
    pub deletable_from_estimate_ms: Option<u64>,
    /// The `purge-record` transaction, when this request sent it.
    pub txid: Option<String>,
}

impl DeletionOutcome {
    fn refused(id: &RecordId, reason: &str, detail: String) -> DeletionOutcome {
        DeletionOutcome {
            record_id: id.bare_hex(),
            outcome: "refused".into(),
            reason: Some(reason.into()),
            detail,
            deletable_from_height: None,
            deletable_from_estimate_ms: None,
            txid: None,
        }
    }
}

/// One line of the tombstone list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Tombstone {
    record_id: String,
    erased_ms: u64,
}

/// The records a tombstone list names (hex ids), in order; a torn last
/// line (a crash while appending) is skipped.
pub fn read_tombstones(path: &Path) -> Result<Vec<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::internal(format!("{}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        if let Ok(t) = serde_json::from_str::<Tombstone>(&line) {
            out.push(t.record_id);
        }
    }
    Ok(out)
}

fn append_tombstone(path: &Path, id: &RecordId, now_ms: u64) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("tombstones {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    let line =
        serde_json::to_string(&Tombstone { record_id: id.bare_hex(), erased_ms: now_ms }).map_err(Error::internal)?;
    // A torn line from an earlier crash ends here: start on a new line.
    file.write_all(format!("\n{line}\n").as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

impl Service {
    /// Whether this node erased `id` (purged at its patient's request).
    pub fn is_erased(&self, id: &[u8; 16]) -> Result<bool> {
        Ok(self.db.get(Cf::Meta, &erased_key(id))?.is_some())
    }

    /// A patient's deletion request: each record (`records`, or every
    /// record of theirs on the chain) purged and erased where the chain
    /// allows, refused with the reason (and when it becomes deletable)
    /// where it does not. Only the patient may ask; every record's outcome
    /// is audited.
    pub async fn request_deletion(
        &self,
        caller: &Caller,
        patient: &Principal,
        records: Option<Vec<RecordId>>,
    ) -> Result<Vec<DeletionOutcome>> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "record.deletion");
        entry.patient = Some(patient.to_string());
        if &who != patient {
            let refused = Error::Forbidden {
                code: "patient-only",
                detail: "only the patient may ask for their records to be deleted".into(),
                reason: None,
            };
            return self.audited(entry, Err(refused)).await;
        }
        let ids = match records {
            Some(ids) if ids.len() > MAX_RECORDS => {
                let e = Error::bad("too-many-records", format!("at most {MAX_RECORDS} records per request"));
                return self.audited(entry, Err(e)).await;
            }
            Some(ids) => ids,
            None => self.records_of(patient)?,
        };
        let status = self.chain.status().map_err(Error::internal)?;
        let burn = status.tip_burn_block_height.unwrap_or(0);
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let outcome = self.delete_one(patient, &id, burn).await?;
            let mut e = entry.clone();
            e.record_id = Some(id.bare_hex());
            if outcome.outcome != "erased" {
                e.outcome = "denied".into();
                e.reason = outcome.reason.clone();
            }
            self.audit.append(e).await.map_err(Error::internal)?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn records_of(&self, patient: &Principal) -> Result<Vec<RecordId>> {
        let mut ids = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let got = self.chain.records(patient, &RecordFilter::default(), &page).map_err(Error::internal)?;
            ids.extend(got.items.into_iter().map(|r| r.record_id));
            match got.next_cursor {
                Some(c) => page = PageRequest { cursor: Some(c), ..PageRequest::default() },
                None => return Ok(ids),
            }
        }
    }

    async fn delete_one(&self, patient: &Principal, id: &RecordId, burn: u64) -> Result<DeletionOutcome> {
        let not_found = || DeletionOutcome::refused(id, "not-found", format!("no record {id} of this patient"));
        let Some(record) = self.chain.record(id).map_err(Error::internal)? else { return Ok(not_found()) };
        if record.patient != patient.to_string() {
            return Ok(not_found());
        }
        let mut txid = None;
        match record.status {
            RecordStatus::Purged => {}
            _ if burn < record.retention_until => {
                let left = record.retention_until - burn;
                let mut o = DeletionOutcome::refused(
                    id,
                    "retention-active",
                    format!(
                        "medical-record retention keeps it until burn height {} ({left} blocks, about {} days)",
                        record.retention_until,
                        left.div_ceil(144)
                    ),
                );
                o.deletable_from_height = Some(record.retention_until);
                o.deletable_from_estimate_ms = Some(self.now_ms().saturating_add(left.saturating_mul(BURN_BLOCK_MS)));
                return Ok(o);
            }
            RecordStatus::Active => {
                return Ok(DeletionOutcome::refused(
                    id,
                    "not-archived",
                    "its retention has passed, but only an archived record may be purged: a provider with ADMIN \
                     access archives it (POST /v1/records/{id}/archive), then ask again"
                        .into(),
                ))
            }
            RecordStatus::Archived => {
                let call = ContractCall {
                    contract: ContractName::RecordManagement,
                    function: "purge-record",
                    args: vec![ClarityValue::Buffer(id.0.to_vec())],
                };
                match self.registrar_call(&call).await {
                    Ok(t) => txid = Some(t.to_string()),
                    Err(Error::Unavailable(detail)) if self.registrar.is_none() => {
                        return Ok(DeletionOutcome::refused(id, "no-owner-key", detail))
                    }
                    Err(e @ Error::Forbidden { .. }) => {
                        return Ok(DeletionOutcome::refused(id, e.code(), e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let erased = self.erase_record(id).await?;
        Ok(DeletionOutcome {
            record_id: id.bare_hex(),
            outcome: "erased".into(),
            reason: None,
            detail: if erased {
                "purged on-chain (the anchor stays as proof); ciphertext, data keys and attachments erased here".into()
            } else {
                "purged on-chain; nothing of it was held here".into()
            },
            deletable_from_height: None,
            deletable_from_estimate_ms: None,
            txid,
        })
    }

    /// Erases what this node holds of `id`: the tombstone first (synced),
    /// then every version's ciphertext, metadata and wrapped data key, its
    /// attachments' objects and keys, its search entries; an `erased`
    /// marker stays (reads answer 410). Returns whether anything was held.
    /// Idempotent.
    pub async fn erase_record(&self, id: &RecordId) -> Result<bool> {
        self.erase(id, true).await
    }

    async fn erase(&self, id: &RecordId, tombstone: bool) -> Result<bool> {
        let versions = self.db.versions(&id.0)?;
        let attachments = self.db.attachments(&id.0)?;
        if versions.is_empty() && attachments.is_empty() {
            return Ok(false);
        }
        if let (true, Some(path)) = (tombstone, &self.config.tombstones) {
            append_tombstone(path, id, self.now_ms())?;
        }
        for m in &attachments {
            if let Some(store) = &self.objects {
                if let Some(key) = medanchor_storage::keys::ObjectKey::parse(&m.object_key) {
                    store.delete(&key).await.map_err(|e| Error::Unavailable(e.to_string()))?;
                }
            }
        }
        for m in &versions {
            self.blobs.delete(&m.data_hash).map_err(Error::internal)?;
        }
        let mut batch = self.db.batch();
        for m in &versions {
            batch.delete_cf(self.db.cf(Cf::Records), crate::db::record_key(&id.0, m.version));
            batch.delete_cf(self.db.cf(Cf::Pending), crate::db::record_key(&id.0, m.version));
        }
        self.db.drop_attachment_rows(&mut batch, &id.0)?;
        self.db.drop_search_doc(&mut batch, &id.0)?;
        batch.put_cf(self.db.cf(Cf::Meta), erased_key(&id.0), self.now_ms().to_be_bytes());
        self.db.write(batch)?;
        let mut entry = AuditEntry::system("record.erase", self.now_ms());
        entry.patient = versions.first().map(|m| m.patient.clone());
        entry.record_id = Some(id.bare_hex());
        self.audit.append(entry).await.map_err(Error::internal)?;
        tracing::info!(record = %id, versions = versions.len(), attachments = attachments.len(), "record erased");
        Ok(true)
    }

    /// [`Service::erase_record`] for a record the tombstone list already
    /// names (not listed again).
    pub async fn replay_erase(&self, id: &RecordId) -> Result<bool> {
        self.erase(id, false).await
    }

    /// Erases every record the tombstone list names that this node still
    /// holds (a restore brought it back). Returns how many.
    pub async fn replay_tombstones(&self) -> Result<usize> {
        let Some(path) = &self.config.tombstones else { return Ok(0) };
        let mut erased = 0;
        for hex_id in read_tombstones(path)? {
            let Ok(id) = hex_id.parse::<RecordId>() else { continue };
            if self.erase(&id, false).await? {
                erased += 1;
            }
        }
        Ok(erased)
    }
}
