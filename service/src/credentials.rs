//! Provider credentials: the provider keeps a versioned credential
//! document, an admin verifies or rejects each version, and a verified
//! version's hash is committed on-chain (`set-provider-credential`), so
//! whoever reads the document can check it is the one that was verified.
//!
//! States of a version: `pending` (written, undecided) → `verified` (the
//! admin's decision, once the chain holds its hash) / `rejected` (with a
//! reason) → `expired` (the expiry job: a verified document whose licence
//! or a certification is past its last valid day). Writing a new version
//! starts it pending; the on-chain commitment keeps naming the version
//! last verified until the next verification, so `matches_chain` tells a
//! reader whether the document in front of them is the committed one.
//!
//! Who may do what: a provider registered on-chain (active or not) writes
//! their own document — registration by the contract owner is what bounds
//! who can store documents here; any signed-in caller reads one (patients
//! read qualifications before granting consent; nothing here is patient
//! data); admins decide. On verification the node's registrar key (the
//! contract owner's: only the owner may commit) sends
//! `set-provider-credential`, and `set-provider-active true` when the
//! provider is inactive; when a verified document expires, the job sends
//! `set-provider-active false`, so the chain stops the provider's record
//! operations until a current document is verified.

use std::time::Duration;

use medanchor_clinical::credentials::{utc_date, Credential};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::{ClarityValue, ContractName, DataHash, Txid};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{ContractCall, Wallet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{Cf, DbError};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// Most versions of one provider's document.
pub const MAX_VERSIONS: u64 = 1_000;
/// Longest rejection reason, in characters.
pub const MAX_REASON: usize = 500;
/// How long a verification waits for its transactions to be mined.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// The state of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialStatus {
    /// Written, not decided.
    Pending,
    /// Verified by an admin; the chain holds its hash.
    Verified {
        /// The admin.
        by: String,
        /// Unix milliseconds.
        at_ms: u64,
        /// The `set-provider-credential` transaction.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        txid: Txid,
    },
    /// Rejected by an admin.
    Rejected {
        /// The admin.
        by: String,
        /// Unix milliseconds.
        at_ms: u64,
        /// Why, for the provider.
        reason: String,
    },
    /// A verified document with an item past its last valid day.
    Expired {
        /// Unix milliseconds (the job's run).
        at_ms: u64,
        /// Which items (`license`, `certifications[1]`).
        items: Vec<String>,
    },
}

/// The states, as names and index tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Written, not decided.
    Pending,
    /// Verified; the chain holds its hash.
    Verified,
    /// Rejected.
    Rejected,
    /// Verified, then past an item's last valid day.
    Expired,
}

impl State {
    /// Every state.
    pub const ALL: [State; 4] = [State::Pending, State::Verified, State::Rejected, State::Expired];

    /// `pending`, `verified`, `rejected` or `expired`.
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Verified => "verified",
            State::Rejected => "rejected",
            State::Expired => "expired",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|t| t.name() == s)
    }

    fn tag(self) -> u8 {
        self.name().as_bytes()[0]
    }
}

impl CredentialStatus {
    /// Which state this is.
    pub fn state(&self) -> State {
        match self {
            CredentialStatus::Pending => State::Pending,
            CredentialStatus::Verified { .. } => State::Verified,
            CredentialStatus::Rejected { .. } => State::Rejected,
            CredentialStatus::Expired { .. } => State::Expired,
        }
    }
}

/// One stored version of a provider's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialVersion {
    /// The provider.
    pub provider: String,
    /// From 1.
    pub version: u64,
    /// The document, in normal form.
    pub document: Credential,
    /// SHA-256 of its canonical bytes: what the chain commits to.
    pub document_hash: DataHash,
    /// Unix milliseconds.
    pub updated_ms: u64,
    /// Where it stands.
    pub status: CredentialStatus,
}

/// A provider's current document as a reader sees it, with what the chain
/// holds.
#[derive(Debug, Clone)]
pub struct CredentialRead {
    /// The current version.
    pub current: CredentialVersion,
    /// The chain's commitment, when the provider is registered (the
    /// indexer's view).
    pub chain_hash: Option<DataHash>,
    /// The chain's active flag.
    pub chain_active: Option<bool>,
}

impl CredentialRead {
    /// The SHA-256 of the document as stored now (recomputed: a document
    /// changed at rest does not keep the hash it was written with).
    pub fn computed_hash(&self) -> DataHash {
        document_hash(&self.current.document)
    }

    /// Whether the chain commits to exactly this document.
    pub fn matches_chain(&self) -> bool {
        self.chain_hash == Some(self.computed_hash())
    }
}

/// An admin's decision on a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Verify: commit its hash on-chain.
    Verify,
    /// Reject, with a reason for the provider.
    Reject(String),
}

/// The SHA-256 commitment to a document's canonical bytes.
pub fn document_hash(document: &Credential) -> DataHash {
    DataHash(Sha256::digest(document.canonical()).into())
}

// Keys of the `credentials` family: `v ‖ provider ‖ 0 ‖ version (u64 BE)`
// for every version, `v ‖ provider ‖ 1` for the current one, and
// `s ‖ state tag ‖ provider` (empty) for the current version's state, so
// admins list by state and the expiry job walks verified ones without a
// scan of every provider.
fn version_key(provider: &str, version: u64) -> Vec<u8> {
    let mut k = vec![b'v'];
    k.extend_from_slice(provider.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn current_key(provider: &str) -> Vec<u8> {
    let mut k = vec![b'v'];
    k.extend_from_slice(provider.as_bytes());
    k.push(1);
    k
}

fn state_key(tag: u8, provider: &str) -> Vec<u8> {
    let mut k = vec![b's', tag];
    k.extend_from_slice(provider.as_bytes());
    k
}

impl crate::db::ApiDb {
    /// A provider's current credential version.
    pub fn current_credential(&self, provider: &str) -> std::result::Result<Option<CredentialVersion>, DbError> {
        self.get(Cf::Credentials, &current_key(provider))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("credential: {e}"))))
            .transpose()
    }

    /// One version of a provider's document.
    pub fn credential_version(
        &self,
        provider: &str,
        version: u64,
    ) -> std::result::Result<Option<CredentialVersion>, DbError> {
        self.get(Cf::Credentials, &version_key(provider, version))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("credential: {e}"))))
            .transpose()
    }

    /// Stores `next` as the current version (one synced batch: the
    /// version, the current pointer, and the state index moved from
    /// `previous`'s state).
    pub fn put_credential(
        &self,
        previous: Option<&CredentialStatus>,
        next: &CredentialVersion,
    ) -> std::result::Result<(), DbError> {
        let value = serde_json::to_vec(next).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let cf = self.cf(Cf::Credentials);
        let mut batch = self.batch();
        batch.put_cf(cf, version_key(&next.provider, next.version), &value);
        batch.put_cf(cf, current_key(&next.provider), &value);
        if let Some(p) = previous {
            batch.delete_cf(cf, state_key(p.state().tag(), &next.provider));
        }
        batch.put_cf(cf, state_key(next.status.state().tag(), &next.provider), []);
        self.write(batch)
    }

    /// Providers whose current version is in `state`, after `after`, at
    /// most `limit`.
    pub fn credentials_in_state(
        &self,
        state: State,
        after: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<String>, DbError> {
        let prefix = state_key(state.tag(), "");
        let start = match after {
            Some(a) => {
                let mut k = state_key(state.tag(), a);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for (k, _) in self.scan_page(Cf::Credentials, &start, limit)? {
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }
}

/// The registrar: the key the node commits credentials with, one
/// transaction sequence at a time.
pub struct Registrar {
    key: StacksKey,
    lock: tokio::sync::Mutex<()>,
}

impl Registrar {
    /// The contract owner's key.
    pub fn new(key: StacksKey) -> Registrar {
        Registrar { key, lock: tokio::sync::Mutex::new(()) }
    }
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registrar(..)")
    }
}

impl Service {
    /// The current credential document of `provider`, with the chain's
    /// commitment. Any signed-in caller.
    pub fn read_credentials(&self, caller: &Caller, provider: &Principal) -> Result<CredentialRead> {
        caller.require()?;
        let current = self
            .db
            .current_credential(&provider.to_string())?
            .ok_or_else(|| Error::NotFound(format!("the credentials of {provider}")))?;
        let chain = self.chain.provider(provider).map_err(Error::internal)?;
        let chain_hash = match &chain {
            Some(v) => Some(v.credential_hash.parse::<DataHash>().map_err(Error::internal)?),
            None => None,
        };
        Ok(CredentialRead { current, chain_hash, chain_active: chain.map(|v| v.active) })
    }

    /// One version's canonical bytes (the committed form). Any signed-in
    /// caller.
    pub fn credential_document(&self, caller: &Caller, provider: &Principal, version: Option<u64>) -> Result<Vec<u8>> {
        caller.require()?;
        let p = provider.to_string();
        let found = match version {
            Some(v) => self.db.credential_version(&p, v)?,
            None => self.db.current_credential(&p)?,
        };
        let found = found.ok_or_else(|| Error::NotFound(format!("that version of the credentials of {provider}")))?;
        Ok(found.document.canonical())
    }

    /// Writes a new version of the caller's own document, on the version
    /// they read (`expected`, 0 before the first). It starts pending.
    pub async fn write_credentials(
        &self,
        caller: &Caller,
        provider: &Principal,
        expected: u64,
        body: &[u8],
    ) -> Result<CredentialRead> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "credentials.update");
        let allowed = if who != *provider {
            Err(Error::Forbidden {
                code: "credentials-owner",
                detail: "a provider writes their own credentials only".into(),
                reason: None,
            })
        } else if self.chain.provider(provider).map_err(Error::internal)?.is_none() {
            Err(Error::denied(medanchor_contracts::ContractError::ProviderNotFound))
        } else {
            Ok(())
        };
        self.audit_refusal(&entry, allowed).await?;
        let document = Credential::parse(body)
            .map_err(|errors| Error::Content(errors.into_iter().map(|e| (e.path, e.problem.to_string())).collect()))?;
        let p = provider.to_string();
        let lock = self.record_lock(&lock_id(&p));
        let _one_writer = lock.lock().await;
        let previous = self.db.current_credential(&p)?;
        let current = previous.as_ref().map_or(0, |c| c.version);
        entry.version = Some(current + 1);
        let result = if expected != current {
            Err(Error::Conflict {
                precondition: false,
                detail: format!("version {expected} is not the current version"),
                current_version: current,
            })
        } else if current >= MAX_VERSIONS {
            Err(Error::State { code: "credentials-limit", detail: format!("at most {MAX_VERSIONS} versions") })
        } else {
            let next = CredentialVersion {
                provider: p.clone(),
                version: current + 1,
                document_hash: document_hash(&document),
                document,
                updated_ms: self.now_ms(),
                status: CredentialStatus::Pending,
            };
            self.db.put_credential(previous.as_ref().map(|c| &c.status), &next).map(|()| next).map_err(Error::from)
        };
        self.audited(entry, result).await?;
        self.read_credentials(caller, provider)
    }

    /// An admin's decision on `version` of `provider`'s document (it must
    /// be the current one, still pending). Verifying commits the hash
    /// on-chain first and records the decision once the chain holds it.
    pub async fn decide_credentials(
        &self,
        caller: &Caller,
        provider: &Principal,
        version: u64,
        decision: Decision,
    ) -> Result<CredentialRead> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let action = match decision {
            Decision::Verify => "credentials.verify",
            Decision::Reject(_) => "credentials.reject",
        };
        let mut entry = caller.entry(role, action);
        entry.version = Some(version);
        let admin = if role == "admin" {
            Ok(())
        } else {
            Err(Error::Forbidden { code: "admin-only", detail: "admins decide on credentials".into(), reason: None })
        };
        self.audit_refusal(&entry, admin).await?;
        let p = provider.to_string();
        let lock = self.record_lock(&lock_id(&p));
        let _one_writer = lock.lock().await;
        let current = self.db.current_credential(&p)?;
        let checked = match &current {
            None => Err(Error::NotFound(format!("the credentials of {provider}"))),
            Some(c) if c.version != version => Err(Error::Conflict {
                precondition: false,
                detail: format!("version {version} is not the current version"),
                current_version: c.version,
            }),
            Some(c) if c.status != CredentialStatus::Pending => Err(Error::State {
                code: "credentials-decided",
                detail: format!("version {version} is already {}", c.status.state().name()),
            }),
            Some(c) => Ok(c.clone()),
        };
        let current = self.audit_refusal(&entry, checked).await?;
        let now = self.now_ms();
        let status = match decision {
            Decision::Reject(reason) => {
                let reason = reason.trim().to_string();
                if reason.is_empty() || reason.chars().count() > MAX_REASON {
                    let bad = Error::bad(
                        "invalid-reason",
                        format!("a rejection needs a reason of 1 to {MAX_REASON} characters"),
                    );
                    return self.audited(entry, Err(bad)).await;
                }
                CredentialStatus::Rejected { by: who.to_string(), at_ms: now, reason }
            }
            Decision::Verify => {
                let expired = current.document.expired(utc_date(now));
                if !expired.is_empty() {
                    let stale = Error::State {
                        code: "credentials-expired",
                        detail: format!("past their last valid day: {}", expired.join(", ")),
                    };
                    return self.audited(entry, Err(stale)).await;
                }
                let committed = self.commit_on_chain(provider, &current.document_hash).await;
                let txid = self.audited(entry.clone(), committed).await?;
                CredentialStatus::Verified { by: who.to_string(), at_ms: now, txid }
            }
        };
        let next = CredentialVersion { status, ..current.clone() };
        let stored = self.db.put_credential(Some(&current.status), &next).map_err(Error::from);
        self.audited(entry, stored).await?;
        self.read_credentials(caller, provider)
    }

    /// Providers whose current version is in the state named `state`
    /// (admins), a page after `after`.
    pub fn credentials_by_state(
        &self,
        caller: &Caller,
        state: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialVersion>> {
        let who = caller.require()?;
        if self.role_of(who)? != "admin" {
            return Err(Error::Forbidden {
                code: "admin-only",
                detail: "admins list credentials by state".into(),
                reason: None,
            });
        }
        let state = State::parse(state).ok_or_else(|| {
            Error::bad(
                "invalid-state",
                format!("`{}` is not pending, verified, rejected or expired", crate::error::echo(state)),
            )
        })?;
        let mut out = Vec::new();
        for p in self.db.credentials_in_state(state, after, limit)? {
            if let Some(c) = self.db.current_credential(&p)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The expiry job: every verified document with an item past its last
    /// valid day (on this service's clock) becomes `expired`, and the
    /// chain's active flag of its provider is cleared when the node holds
    /// the registrar key. Returns the providers expired.
    pub async fn expire_credentials(&self) -> Result<Vec<String>> {
        let today = utc_date(self.now_ms());
        let mut expired = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.db.credentials_in_state(State::Verified, after.as_deref(), 256)?;
            let Some(last) = page.last().cloned() else { break };
            for p in page {
                let lock = self.record_lock(&lock_id(&p));
                let _one_writer = lock.lock().await;
                let Some(current) = self.db.current_credential(&p)? else { continue };
                let items = current.document.expired(today);
                if current.status.state() != State::Verified || items.is_empty() {
                    continue;
                }
                let next = CredentialVersion {
                    status: CredentialStatus::Expired { at_ms: self.now_ms(), items },
                    ..current.clone()
                };
                self.db.put_credential(Some(&current.status), &next)?;
                let mut entry = crate::audit::AuditEntry::system("credentials.expire", self.now_ms());
                entry.version = Some(current.version);
                entry.reason = Some(p.clone());
                self.audited(entry, Ok(())).await?;
                if self.registrar.is_some() {
                    let provider: Principal = p.parse().map_err(Error::internal)?;
                    if let Err(e) = self.set_active(&provider, false).await {
                        // The document's state is what patients see; the
                        // chain's flag follows at the next run.
                        tracing::warn!(provider = %p, error = %e, "clearing an expired provider's active flag");
                    }
                }
                expired.push(p);
            }
            after = Some(last);
        }
        Ok(expired)
    }

    /// Sends `set-provider-credential` (and `set-provider-active true`
    /// when the chain has the provider inactive) and waits for both.
    async fn commit_on_chain(&self, provider: &Principal, hash: &DataHash) -> Result<Txid> {
        let call = ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-provider-credential",
            args: vec![principal_value(provider)?, ClarityValue::Buffer(hash.to_vec())],
        };
        let txid = self.registrar_call(&call).await?;
        let inactive = self.chain.provider(provider).map_err(Error::internal)?.is_some_and(|v| !v.active);
        if inactive {
            self.set_active(provider, true).await?;
        }
        Ok(txid)
    }

    async fn set_active(&self, provider: &Principal, active: bool) -> Result<Txid> {
        let call = ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-provider-active",
            args: vec![principal_value(provider)?, ClarityValue::Bool(active)],
        };
        self.registrar_call(&call).await
    }

    /// Signs `call` with the registrar key, sends it, waits until it is
    /// mined and successful.
    pub(crate) async fn registrar_call(&self, call: &ContractCall) -> Result<Txid> {
        let Some(registrar) = &self.registrar else {
            return Err(Error::Unavailable(format!(
                "this node holds no contract owner (registrar) key: it cannot make the owner's call {}",
                call.function
            )));
        };
        let _in_order = registrar.lock.lock().await;
        let unavailable = |e: medanchor_wallet::Error| Error::Unavailable(format!("{}: {e}", call.function));
        let wallet = Wallet::connect(registrar.key.clone(), self.node.clone(), &self.config.contracts)
            .await
            .map_err(unavailable)?;
        let sent = wallet.submit(call, None).await.map_err(unavailable)?;
        let outcome = wallet.wait(&sent.txid, CHAIN_TIMEOUT).await.map_err(unavailable)?;
        if !outcome.is_success() {
            return Err(match outcome.contract_error() {
                Some(e) => Error::denied(e),
                None => Error::Unavailable(format!("{} failed: {}", call.function, outcome.status)),
            });
        }
        Ok(sent.txid)
    }
}

fn principal_value(p: &Principal) -> Result<ClarityValue> {
    ClarityValue::principal(&p.to_string()).map_err(Error::internal)
}

/// The per-provider writer lock's id (shares the record lock table).
fn lock_id(provider: &str) -> [u8; 16] {
    let digest = Sha256::digest([b"medanchor credentials v1\0".as_slice(), provider.as_bytes()].concat());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}
