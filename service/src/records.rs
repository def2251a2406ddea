//! Record use cases: create, read (consent- or grant-gated), update on the
//! chain's version, versions, a patient's list, and the lifecycle calls
//! (finalize, unlock, archive) — each authorized by the one rule
//! ([`crate::authz`]) and audited once ([`Service::audited`]).

use std::collections::HashMap;

use medanchor_clinical::TemplateRef;
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessMethod, DataType, RecordStatus, RecordType};
use medanchor_contracts::Txid;
use medanchor_indexer::query::{PageRequest, RecordFilter, RecordView};
use medanchor_wallet::ContractCall;
use rand::RngCore;

use crate::anchor::{anchor, custodial_submit, store_version};
use crate::authz::{self, Operation};
use crate::db::{AnchorStatus, RecordMeta};
use crate::error::{echo, Error, Result};
use crate::grants;
use crate::state::{Caller, Service};

/// How a write's transaction is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// This node signs with the author's key it holds.
    Custodial,
    /// The author's wallet signs; the call is returned to it.
    Wallet,
}

impl Signing {
    /// `custodial` or `wallet`.
    pub fn name(self) -> &'static str {
        match self {
            Signing::Custodial => "custodial",
            Signing::Wallet => "wallet",
        }
    }
}

/// A record payload: its media type and bytes. Owned: the bytes are
/// encrypted in place (a payload may be tens of MiB; it is never copied).
#[derive(Debug)]
pub struct Payload {
    /// The payload's media type; `application/json` content is served back
    /// as JSON.
    pub content_type: String,
    /// The plaintext.
    pub bytes: Vec<u8>,
    /// The template the content was written with: JSON content validated
    /// against it (and stored in its normal form).
    pub template: Option<TemplateRef>,
}

/// A new record's fields.
#[derive(Debug)]
pub struct NewRecord {
    /// Its type (which fixes the consent data type).
    pub record_type: RecordType,
    /// The content.
    pub payload: Payload,
    /// 0 to 3 (default 1).
    pub confidentiality: Option<u8>,
    /// `custodial` (default) or `wallet`.
    pub signing: Option<String>,
}

/// A stored version and the transaction that anchors it.
#[derive(Debug)]
pub struct Written {
    /// The version's metadata (anchor status included).
    pub meta: RecordMeta,
    /// Who signs the anchoring call.
    pub signing: Signing,
    /// The anchoring call (for the wallet to sign when `signing` is
    /// `Wallet`).
    pub call: ContractCall,
}

/// A decrypted record version.
#[derive(Debug)]
pub struct Opened {
    /// The version's metadata.
    pub meta: RecordMeta,
    /// The plaintext (wiped from memory when dropped).
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
    /// The record's lifecycle on-chain, `(status, finalized)`; None until
    /// anchored.
    pub chain: Option<(RecordStatus, bool)>,
}

/// A lifecycle transition sent (or handed to the wallet).
#[derive(Debug)]
pub struct Transition {
    /// The call.
    pub call: ContractCall,
    /// Who signs it.
    pub signing: Signing,
    /// The custodial broadcast's txid.
    pub txid: Option<Txid>,
}

/// A record lifecycle transition of record-management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `finalize-record` (WRITE): no more updates until unlocked.
    Finalize,
    /// `unlock-record` (ADMIN): updates allowed again.
    Unlock,
    /// `archive-record` (ADMIN): the record leaves active use.
    Archive,
}

impl Lifecycle {
    /// The contract function.
    pub fn function(self) -> &'static str {
        match self {
            Lifecycle::Finalize => "finalize-record",
            Lifecycle::Unlock => "unlock-record",
            Lifecycle::Archive => "archive-record",
        }
    }

    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Lifecycle::Finalize => "record.finalize",
            Lifecycle::Unlock => "record.unlock",
            Lifecycle::Archive => "record.archive",
        }
    }

    fn operation(self) -> Operation {
        match self {
            Lifecycle::Finalize => Operation::Finalize,
            Lifecycle::Unlock => Operation::Unlock,
            Lifecycle::Archive => Operation::Archive,
        }
    }
}

/// A record's id (the chain's 16 bytes); `0x` and 32 hex digits when
/// printed. The API's record answers and audit entries carry the bare
/// digits ([`RecordId::bare_hex`]), as they always have.
pub use medanchor_contracts::RecordId;

/// A record id from a request or a store: [`RecordId`]'s parser.
pub fn record_id_arg(s: &str) -> Result<RecordId> {
    s.parse().map_err(|_| Error::bad("invalid-record-id", format!("record id {} is not 16 bytes of hex", echo(s))))
}

/// The one principal parser; `what` names the argument in the error.
pub fn principal_arg(s: &str, what: &str) -> Result<Principal> {
    s.parse().map_err(|_| Error::bad("invalid-principal", format!("{what} {} is not a Stacks principal", echo(s))))
}

/// A record type by name.
pub fn parse_record_type(s: &str) -> Result<RecordType> {
    s.parse::<RecordType>().map_err(|_| {
        let names: Vec<&str> = RecordType::ALL.iter().map(|t| t.name()).collect();
        Error::bad("invalid-record-type", format!("record_type {} is not one of {}", echo(s), names.join(", ")))
    })
}

/// A stored version's data type.
pub(crate) fn data_type_of(meta: &RecordMeta) -> Result<DataType> {
    meta.data_type.parse().map_err(|_| Error::internal("stored data type"))
}

/// What an update builds on: the version the chain has (`on_chain`, from
/// the indexer) and the number the new version gets, `on_chain + 1`. The
/// version numbers must be the chain's, so a version the chain refused
/// leaves no gap (its slot is reused: it never existed on-chain), and a
/// version still being anchored makes the next update wait (409) instead
/// of building on something the chain may refuse.
fn update_base(versions: &[RecordMeta], on_chain: Option<u64>) -> Result<u64> {
    let Some(on_chain) = on_chain else {
        return Err(Error::State {
            code: "record-not-anchored",
            detail: "the record's creation is not on-chain yet (or was refused): update it once it is".into(),
        });
    };
    if let Some(pending) = versions.iter().find(|m| m.version > on_chain && m.status == AnchorStatus::Pending) {
        return Err(Error::State {
            code: "version-pending",
            detail: format!("version {} is still being anchored; update again once it is", pending.version),
        });
    }
    Ok(on_chain)
}

impl Service {
    /// How a write's transaction is signed: `custodial` (the default; this
    /// node must hold the caller's key) or `wallet` (returned to the caller).
    pub fn signing_mode(&self, who: &Principal, asked: Option<&str>) -> Result<Signing> {
        match asked.unwrap_or("custodial") {
            "wallet" => Ok(Signing::Wallet),
            "custodial" if self.custody.holds(&who.to_string()) => Ok(Signing::Custodial),
            // A well-formed request this node will not carry out for this
            // caller: 403, not 400 (nothing in the request is wrong).
            "custodial" => Err(Error::Forbidden {
                code: "no-custodial-key",
                detail: "this node holds no key for you; sign with your wallet (signing: wallet)".into(),
                reason: None,
            }),
            _ => Err(Error::bad("invalid-signing", "signing must be `custodial` or `wallet`")),
        }
    }

    /// The one authorization rule ([`authz::authorize`]) for `caller` doing
    /// `op` on `patient`'s `data_type`, from the indexer's facts at the tip:
    /// the method that allows it, or the contract's own refusal. Before
    /// anything is encrypted or sent; the contract checks again.
    pub fn authorize_at(
        &self,
        op: Operation,
        patient: &Principal,
        caller: &Principal,
        data_type: DataType,
    ) -> Result<AccessMethod> {
        let facts = self.chain.access_facts(patient, caller, data_type).map_err(Error::internal)?;
        authz::authorize(op, &facts).map_err(Error::denied)
    }

    /// [`Service::authorize_at`] on a record: with the chain's record state
    /// when the record is anchored (its status asserts apply), else — a
    /// record whose creation is not mined yet — on our own metadata's
    /// patient and type, which are what the creating transaction names.
    pub fn authorize_on_record(
        &self,
        op: Operation,
        id: &RecordId,
        meta: &RecordMeta,
        caller: &Principal,
    ) -> Result<AccessMethod> {
        match self.chain.record_access(id, caller).map_err(Error::internal)? {
            Some((record, facts)) => authz::authorize_record(op, &record, &facts).map_err(Error::denied),
            None => {
                let patient = principal_arg(&meta.patient, "patient")?;
                self.authorize_at(op, &patient, caller, data_type_of(meta)?)
            }
        }
    }

    /// Whether `who` may read record `id` (its version `meta`): on the
    /// chain's rule, or through the share grant `grant` within it — the
    /// decision every read of a record's content (its payload, its
    /// attachments) takes.
    pub(crate) fn read_access(
        &self,
        id: &RecordId,
        meta: &RecordMeta,
        who: &Principal,
        grant: Option<&str>,
    ) -> Result<grants::Access> {
        match grant {
            Some(token) => {
                let patient = principal_arg(&meta.patient, "patient")?;
                grants::through_grant(self, token, who, &patient, data_type_of(meta)?)
            }
            None => match self.authorize_on_record(Operation::Read, id, meta, who) {
                Ok(method) => Ok(Ok((method.name().to_string(), None))),
                Err(e @ Error::Forbidden { .. }) => Ok(Err((e, None))),
                Err(e) => Err(e),
            },
        }
    }

    /// A record version's metadata: `version`, or the current one.
    pub fn version_or_latest(&self, id: &RecordId, version: Option<u64>) -> Result<RecordMeta> {
        match version {
            Some(v) => self.db.record(id, v)?.ok_or_else(|| Error::NotFound(format!("record {id} version {v}"))),
            None => self.current(id),
        }
        .map_err(|e| match e {
            Error::NotFound(_) if self.is_erased(&id.0).unwrap_or(false) => Error::Gone {
                code: "record-erased",
                detail: format!(
                    "record {id} was purged at its patient's request: its content is erased here (its anchor stays on-chain as proof)"
                ),
            },
            e => e,
        })
    }

    /// The version a record is at: its latest anchored version — a pending
    /// or failed version above it is visible by number, never served as
    /// current. Before any version is anchored, the latest stored one,
    /// whose anchor status says where it stands.
    pub fn current(&self, id: &RecordId) -> Result<RecordMeta> {
        let mut versions = self.db.versions(id)?;
        match versions.iter().rposition(|m| m.status == AnchorStatus::Anchored) {
            Some(i) => Ok(versions.swap_remove(i)),
            None => versions.pop().ok_or_else(|| Error::NotFound(format!("record {id}"))),
        }
    }

    /// Encrypts and stores a version off the async workers: sealing and
    /// hashing tens of MiB must not stall the requests sharing a worker.
    async fn store(
        &self,
        id: [u8; 16],
        version: u64,
        patient: &Principal,
        author: &Principal,
        record_type: RecordType,
        payload: Payload,
    ) -> Result<(RecordMeta, Vec<String>)> {
        let (s, patient, author) = (self.clone(), patient.clone(), author.clone());
        tokio::task::spawn_blocking(move || {
            store_version(
                &s,
                &id,
                version,
                &patient,
                &author,
                record_type,
                &payload.content_type,
                payload.template,
                payload.bytes,
            )
        })
        .await
        .map_err(Error::internal)?
    }

    /// Creates a record for `patient`: authorized, encrypted, stored as a
    /// pending version 1, audited, then anchored (custodial) or returned
    /// for the wallet to sign.
    pub async fn create_record(&self, caller: &Caller, patient: &Principal, new: NewRecord) -> Result<Written> {
        let who = caller.require()?.clone();
        let signing = self.signing_mode(&who, new.signing.as_deref())?;
        let confidentiality = new.confidentiality.unwrap_or(1);
        if confidentiality > 3 {
            return Err(Error::bad("invalid-confidentiality", "confidentiality must be 0 to 3"));
        }
        let data_type = new.record_type.data_type();
        // Structured content is checked before anything else is done with
        // it: a refused form costs no chain read, no key, no storage.
        let payload = self.structured(new.payload, new.record_type)?;
        let mut entry = caller.entry(self.role_of(&who)?, "record.create");
        entry.patient = Some(patient.to_string());
        let (s2, p2, w2) = (self.clone(), patient.clone(), who.clone());
        let allowed = tokio::task::spawn_blocking(move || s2.authorize_at(Operation::Create, &p2, &w2, data_type))
            .await
            .map_err(Error::internal)?;
        let method = self.audit_refusal(&entry, allowed).await?;
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let (meta, diagnoses) = self.store(id, 1, patient, &who, new.record_type, payload).await?;
        entry.record_id = Some(meta.record_id.bare_hex());
        entry.diagnoses = diagnoses;
        entry.version = Some(1);
        entry.method = Some(method.name().to_string());
        self.audited(entry, Ok(())).await?;
        let call = ContractCall::create_record(id, patient, new.record_type, *meta.data_hash, None, confidentiality)
            .map_err(|e| Error::bad("invalid-record", e.to_string()))?;
        let meta = anchor(self, &who, &id, meta, &call, signing).await?;
        Ok(Written { meta, signing, call })
    }

    /// Reads (decrypts) a record version — on the chain's rule, or through
    /// a share grant (`grant`) within it.
    pub async fn read_record(
        &self,
        caller: &Caller,
        id: &RecordId,
        version: Option<u64>,
        grant: Option<&str>,
    ) -> Result<Opened> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "record.read");
        // A record this tenant does not hold is a refusal too (audited):
        // another tenant's id is tried here first.
        entry.record_id = Some(id.bare_hex());
        let meta = self.audit_refusal(&entry, self.version_or_latest(id, version)).await?;
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(meta.record_id.bare_hex());
        entry.version = Some(meta.version);
        // Point reads of the indexer's RocksDB (memtable and block cache), a
        // few microseconds: done inline, as the blob read below is; a hop
        // through the blocking pool cost more than the reads on the hot
        // read path.
        match self.read_access(id, &meta, &who, grant)? {
            Ok((method, share_id)) => {
                entry.method = Some(method);
                entry.share_id = share_id;
            }
            Err((e, share_id)) => {
                entry.share_id = share_id;
                return self.audited(entry, Err(e)).await;
            }
        }
        let plaintext = match self.open_version(&meta) {
            Ok(p) => p,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        // The diagnoses read, for the analytics counters only (never in
        // the entry's leaf): from the structured content just opened.
        if let Some(reference) = &meta.template {
            let registry = self.registry();
            if let (Ok(t), Ok(content)) =
                (registry.get(reference), serde_json::from_slice::<serde_json::Value>(&plaintext))
            {
                entry.diagnoses = t.search_terms(&content).diagnoses;
            }
        }
        self.audited(entry, Ok(())).await?;
        // The record's lifecycle as the chain has it (absent until anchored).
        let chain = self.chain.record(id).map_err(Error::internal)?.map(|r| (r.status, r.finalized));
        Ok(Opened { meta, plaintext, chain })
    }

    /// Writes a new version on the one the chain has; `expected` is the
    /// version the caller read (`If-Match`).
    pub async fn update_record(
        &self,
        caller: &Caller,
        id: &RecordId,
        expected: u64,
        payload: Payload,
        signing: Option<&str>,
    ) -> Result<Written> {
        let who = caller.require()?.clone();
        // Refused before anything is stored: a version nobody can sign would
        // stay pending for ever.
        let signing = self.signing_mode(&who, signing)?;
        // One writer per record at a time: the loser of a race sees the
        // winner's version and gets 409.
        let lock = self.record_lock(id);
        let _guard = lock.lock().await;
        let versions = self.db.versions(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "record.update");
        entry.record_id = Some(id.bare_hex());
        let held = versions.last().cloned().ok_or_else(|| Error::NotFound(format!("record {id}")));
        let current = self.audit_refusal(&entry, held).await?;
        entry.patient = Some(current.patient.clone());
        entry.record_id = Some(current.record_id.bare_hex());
        // One read of the chain's view serves the version base and the rule.
        let chain = self.chain.record_access(id, &who).map_err(Error::internal)?;
        let base = self.audit_refusal(&entry, update_base(&versions, chain.as_ref().map(|(r, _)| r.version))).await?;
        entry.version = Some(base + 1);
        if expected != base {
            let stale = Error::Conflict {
                precondition: false,
                detail: format!("version {expected} is not the current version"),
                current_version: base,
            };
            return self.audited(entry, Err(stale)).await;
        }
        let record_type = parse_record_type(&current.record_type)?;
        let payload = self.structured(payload, record_type)?;
        let patient = principal_arg(&current.patient, "patient")?;
        // The contract refuses a finalized or archived record after consent
        // and access; so do we, before anything is encrypted or stored.
        let allowed = match &chain {
            Some((record, facts)) => authz::authorize_record(Operation::Update, record, facts).map_err(Error::denied),
            None => Err(Error::internal("update_base passed a record the chain does not have")),
        };
        let method = self.audit_refusal(&entry, allowed).await?;
        let version = base + 1;
        if let Some(refused) = versions.iter().find(|m| m.version == version) {
            // The chain refused that version: its slot is this one's now.
            tracing::info!(record = %current.record_id, version, failure = ?refused.failure, "replacing a refused version");
        }
        let meta = store_version(
            self,
            id,
            version,
            &patient,
            &who,
            record_type,
            &payload.content_type,
            payload.template,
            payload.bytes,
        )?
        .0;
        entry.method = Some(method.name().to_string());
        self.audited(entry, Ok(())).await?;
        let call = ContractCall::update_record(id.0, base, *meta.data_hash, None);
        let meta = anchor(self, &who, id, meta, &call, signing).await?;
        Ok(Written { meta, signing, call })
    }

    /// A record's version history, oldest first.
    pub async fn record_versions(&self, caller: &Caller, id: &RecordId) -> Result<Vec<RecordMeta>> {
        let who = caller.require()?.clone();
        let versions = self.db.versions(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "record.versions");
        entry.record_id = Some(id.bare_hex());
        let held = versions.first().ok_or_else(|| Error::NotFound(format!("record {id}")));
        let first = self.audit_refusal(&entry, held).await?;
        entry.patient = Some(first.patient.clone());
        entry.record_id = Some(first.record_id.bare_hex());
        match self.authorize_on_record(Operation::Read, id, first, &who) {
            Ok(method) => entry.method = Some(method.name().to_string()),
            Err(e @ Error::Forbidden { .. }) => return self.audited(entry, Err(e)).await,
            Err(e) => return Err(e),
        }
        self.audited(entry, Ok(())).await?;
        Ok(versions)
    }

    /// One page of `patient`'s records the caller may read (through
    /// `grant`: only the types it covers, within the chain's rules).
    pub async fn list_records(
        &self,
        caller: &Caller,
        patient: &Principal,
        filter: RecordFilter,
        page: PageRequest,
        grant: Option<&str>,
    ) -> Result<(Vec<RecordView>, Option<String>)> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "record.list");
        entry.patient = Some(patient.to_string());
        let grant = grant.map(str::to_string);
        if let Some(token) = &grant {
            match self.shares.check_grant(token, &who.to_string(), self.now_ms()) {
                Ok(g) if g.patient == patient.to_string() => {
                    entry.method = Some(g.method);
                    entry.share_id = Some(g.share_id);
                }
                Ok(g) => {
                    entry.share_id = Some(g.share_id);
                    let e = Error::Forbidden {
                        code: "grant-other-patient",
                        detail: "the grant is for another patient".into(),
                        reason: None,
                    };
                    return self.audited(entry, Err(e)).await;
                }
                Err(e) => return self.audited(entry, Err(e.into())).await,
            }
        }
        let (s2, p2, w2) = (self.clone(), patient.clone(), who.clone());
        let listed = tokio::task::spawn_blocking(move || -> Result<_> {
            let page = s2.chain.records(&p2, &filter, &page).map_err(|e| match e {
                medanchor_indexer::Error::BadRequest(m) => Error::bad("invalid-query", m),
                other => Error::internal(other),
            })?;
            // Only the records whose data type the caller may read.
            let mut allowed = HashMap::new();
            let mut items = Vec::new();
            for r in page.items {
                // The chain lists every tenant's records; this tenant
                // shows only its own.
                if !s2.db.holds_record(&r.record_id.0)? {
                    continue;
                }
                let dt = r.data_type;
                let ok = match allowed.get(&dt) {
                    Some(ok) => *ok,
                    None => {
                        let ok = match &grant {
                            Some(token) => grants::through_grant(&s2, token, &w2, &p2, dt)?.is_ok(),
                            None => match s2.authorize_at(Operation::Read, &p2, &w2, dt) {
                                Ok(_) => true,
                                Err(Error::Forbidden { .. }) => false,
                                Err(e) => return Err(e),
                            },
                        };
                        allowed.insert(dt, ok);
                        ok
                    }
                };
                if ok {
                    items.push(r);
                }
            }
            Ok((items, page.next_cursor))
        })
        .await
        .map_err(Error::internal)??;
        self.audited(entry, Ok(())).await?;
        Ok(listed)
    }

    /// The stored ciphertext of a record version (`version`, or the
    /// current one), as anchored: for auditors and admins, and for whoever
    /// the one rule lets read the record. Every answer is audited.
    pub async fn ciphertext(
        &self,
        caller: &Caller,
        id: &RecordId,
        version: Option<u64>,
    ) -> Result<(RecordMeta, Vec<u8>)> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "verify.blob");
        entry.record_id = Some(id.bare_hex());
        entry.version = version;
        let meta = self.audit_refusal(&entry, self.version_or_latest(id, version)).await?;
        entry.patient = Some(meta.patient.clone());
        entry.version = Some(meta.version);
        let allowed = match role {
            "auditor" | "admin" => Ok(()),
            _ => self.authorize_on_record(Operation::Read, id, &meta, &who).map(|_| ()),
        };
        self.audit_refusal(&entry, allowed).await?;
        let hash = meta.data_hash;
        let s2 = self.clone();
        let read = tokio::task::spawn_blocking(move || s2.blobs.get(&hash)).await.map_err(Error::internal)?;
        match read {
            Ok(Some(bytes)) => {
                self.audited(entry, Ok(())).await?;
                Ok((meta, bytes))
            }
            // Ours to fix, not the caller's: audited as an error.
            Ok(None) => {
                entry.outcome = "error".into();
                entry.reason = Some("blob missing".into());
                self.audit.append(entry).await.map_err(Error::internal)?;
                Err(Error::NotFound(format!("the ciphertext of record {} version {}", meta.record_id, meta.version)))
            }
            Err(e) => self.audited(entry, Err(Error::from(e))).await,
        }
    }

    /// Checks, audits and sends one lifecycle transaction: signed with the
    /// caller's custodial key, or returned for the caller's wallet.
    pub async fn lifecycle(
        &self,
        caller: &Caller,
        id: &RecordId,
        op: Lifecycle,
        signing: Option<&str>,
    ) -> Result<Transition> {
        let who = caller.require()?.clone();
        let signing = self.signing_mode(&who, signing)?;
        // Serialized with updates of the same record, so a check and its
        // transaction see the same state as far as this node can tell.
        let lock = self.record_lock(id);
        let _guard = lock.lock().await;
        let mut entry = caller.entry(self.role_of(&who)?, op.action());
        entry.record_id = Some(id.bare_hex());
        match self.db.versions(id)?.pop() {
            Some(current) => {
                entry.patient = Some(current.patient.clone());
                entry.version = Some(current.version);
            }
            // Another tenant's record (or one this node never wrote): the
            // chain may allow the call, but not through this tenant.
            None => return self.audited(entry, Err(Error::NotFound(format!("record {id}")))).await,
        }
        let (s2, w2, id2) = (self.clone(), who.clone(), *id);
        // The one rule on the anchored record (a transition needs it on-chain).
        let checked = tokio::task::spawn_blocking(move || -> Result<AccessMethod> {
            let (record, facts) = s2
                .chain
                .record_access(&id2, &w2)
                .map_err(Error::internal)?
                .ok_or_else(|| Error::NotFound(format!("record {id2} on-chain (not anchored yet?)")))?;
            authz::authorize_record(op.operation(), &record, &facts).map_err(Error::denied)
        })
        .await
        .map_err(Error::internal)?;
        let method = self.audit_refusal(&entry, checked).await?;
        entry.method = Some(method.name().to_string());
        let call = ContractCall {
            contract: medanchor_contracts::ContractName::RecordManagement,
            function: op.function(),
            args: vec![medanchor_contracts::ClarityValue::Buffer(id.to_vec())],
        };
        if signing == Signing::Wallet {
            self.audited(entry, Ok(())).await?;
            return Ok(Transition { call, signing, txid: None });
        }
        // Nothing sent is audited as an error.
        let txid = self.audited(entry, custodial_submit(self, &who, &call).await).await?;
        Ok(Transition { call, signing, txid: Some(txid) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: u64, status: AnchorStatus) -> RecordMeta {
        RecordMeta {
            record_id: RecordId([0; 16]),
            version,
            patient: String::new(),
            record_type: "lab-result".into(),
            data_type: "lab-results".into(),
            author: String::new(),
            content_type: "application/json".into(),
            size: 0,
            data_hash: medanchor_contracts::DataHash::default(),
            wrapped_key: String::new(),
            kek_version: 1,
            created_ms: 0,
            status,
            txid: None,
            block_height: None,
            index_block_hash: None,
            failure: None,
            confidentiality: None,
            sent_ms: None,
            custodial: None,
            template: None,
        }
    }

    /// The one record-id parser: each input and what it gives (the id's
    /// hex, or the refusal's code); ids print as they are stored.
    #[test]
    fn record_ids_parse_once() {
        let hex32 = "00112233445566778899aabbccddeeff";
        let cases: &[(&str, Result<&str, &str>)] = &[
            (hex32, Ok(hex32)),
            ("0x00112233445566778899aabbccddeeff", Ok(hex32)),
            ("00112233445566778899AABBCCDDEEFF", Ok(hex32)),
            ("00112233445566778899aabbccddee", Err("invalid-record-id")),
            ("00112233445566778899aabbccddeeff00", Err("invalid-record-id")),
            ("zz112233445566778899aabbccddeeff", Err("invalid-record-id")),
            ("", Err("invalid-record-id")),
        ];
        for (input, want) in cases {
            let got = record_id_arg(input).map(|id| id.bare_hex()).map_err(|e| e.code());
            assert_eq!(got.as_deref().map_err(|c| *c), *want, "{input:?}");
        }
    }

    /// Each case: the stored versions' statuses, the chain's version, and
    /// the base an update gets (or the refusal's code).
    #[test]
    fn update_builds_on_the_chains_version() {
        use AnchorStatus::{Anchored, Failed, Pending};
        type Case<'a> = (&'a [AnchorStatus], Option<u64>, Result<u64, &'a str>);
        let cases: &[Case] = &[
            (&[Pending], None, Err("record-not-anchored")),
            (&[Failed], None, Err("record-not-anchored")),
            (&[Anchored], Some(1), Ok(1)),
            (&[Anchored, Pending], Some(1), Err("version-pending")),
            (&[Anchored, Failed], Some(1), Ok(1)),
            (&[Anchored, Anchored, Failed], Some(2), Ok(2)),
        ];
        for (statuses, on_chain, want) in cases {
            let versions: Vec<RecordMeta> = statuses.iter().enumerate().map(|(i, s)| meta(i as u64 + 1, *s)).collect();
            let got = update_base(&versions, *on_chain).map_err(|e| e.code());
            assert_eq!(got, *want, "{statuses:?} on-chain {on_chain:?}");
        }
    }
}
