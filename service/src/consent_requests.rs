//! Consent requests: a provider asks a patient for consent to specific data
//! types, for a period, with a purpose; the patient sees the pending
//! requests addressed to them (and is notified of each), and approves by
//! signing the `grant-consent` transactions in their own wallet — the
//! request records the txids they report — or declines, with an optional
//! message. A request grants nothing: the chain still decides every
//! access, and `granted_on_chain` is read from the chain at each read.
//!
//! A request is pending until decided or until it expires
//! ([`REQUEST_TTL_MS`] after it was made); expiry is computed on read, so
//! no job is needed. Growth is bounded: at most [`Limits::per_pair`]
//! pending requests per (provider, patient) and [`Limits::per_provider`]
//! per provider (expired ones do not count); lists are bounded too.
//!
//! Stored in the `meta` family, like exports (no PHI on-chain or in logs:
//! the purpose and the decline message are the parties' free text, kept
//! here only, never in an audit entry or a notification):
//!
//! | key | value | invariant |
//! |---|---|---|
//! | `consent-request/row/{id}` | the request's row (JSON) | written once at creation, replaced once at its decision |
//! | `consent-request/all/{principal} ‖ 0 ‖ (u64::MAX − created ms) BE ‖ {id}` | empty | one key per party (provider and patient), written with the row: newest first |
//! | `consent-request/open/{principal} ‖ 0 ‖ (u64::MAX − created ms) BE ‖ {id}` | empty | the same keys, while the row is pending; deleted with the decision, or once expired by the provider's next request |
//!
//! Every step — and every refusal of a signed-in caller — is audited
//! (`consent-request.create`, `.list`, `.read`, `.approve`, `.decline`);
//! an allowed creation notifies the patient (kind `consent-request`: who
//! asks for which data types, never the purpose).

use std::collections::HashMap;

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{DataType, MAX_DURATION_BLOCKS};
use medanchor_contracts::Txid;
use medanchor_indexer::query::{ConsentState, ConsentView};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::db::{ApiDb, Cf};
use crate::error::{echo, Error, Result};
use crate::state::{Caller, Service};

/// The longest purpose, in characters.
pub const MAX_PURPOSE: usize = 500;
/// The longest decline message, in characters.
pub const MAX_MESSAGE: usize = 500;
/// How long a request stays pending unless decided (7 days).
pub const REQUEST_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// The most data types one request names.
pub const MAX_DATA_TYPES: usize = 6;
/// The most txids an approval reports.
pub const MAX_TXIDS: usize = 8;
/// The most requests a list answers with (newest first).
pub const MAX_LIST: usize = 200;
/// The most open-index keys a pending list looks at (live ones and
/// expired ones not swept yet).
const MAX_OPEN_SCAN: usize = 1000;

/// How many pending requests may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per (provider, patient).
    pub per_pair: usize,
    /// Per provider, over all patients.
    pub per_provider: usize,
}

/// The node's limits.
pub const LIMITS: Limits = Limits { per_pair: 5, per_provider: 200 };

/// A provider's request, as they make it.
#[derive(Debug, Clone)]
pub struct NewConsentRequest {
    /// Whom they ask (a patient registered on-chain).
    pub patient: Principal,
    /// 1 to [`MAX_DATA_TYPES`] distinct data types.
    pub data_types: Vec<DataType>,
    /// For how many burn blocks (1 to the contracts' maximum); `None`:
    /// until revoked.
    pub duration_blocks: Option<u64>,
    /// Why: 1 to [`MAX_PURPOSE`] characters, no control characters.
    pub purpose: String,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the patient.
    Pending,
    /// The patient approved (and reported their grant transactions).
    Approved,
    /// The patient declined.
    Declined,
    /// Not decided within its lifetime.
    Expired,
}

impl RequestState {
    /// `pending`, `approved`, `declined` or `expired`.
    pub fn name(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Declined => "declined",
            RequestState::Expired => "expired",
        }
    }
}

/// A request as its parties see it.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// 32 hex digits, random.
    pub id: String,
    /// Who asks.
    pub provider: String,
    /// Whom.
    pub patient: String,
    /// For which data types.
    pub data_types: Vec<DataType>,
    /// For how many burn blocks (`None`: until revoked).
    pub duration_blocks: Option<u64>,
    /// Why (the provider's text).
    pub purpose: String,
    /// Where it stands (`Expired` when still pending past `expires_ms`).
    pub state: RequestState,
    /// When it was made (unix ms).
    pub created_ms: u64,
    /// When it expires unless decided (unix ms).
    pub expires_ms: u64,
    /// When the patient decided (unix ms).
    pub decided_ms: Option<u64>,
    /// The patient's decline message.
    pub message: Option<String>,
    /// The grant transactions the patient reported on approval.
    pub txids: Vec<String>,
    /// Whether the chain shows, now, the patient's consent to the provider
    /// for every requested data type.
    pub granted_on_chain: bool,
}

/// A stored request's decision (what the row holds; expiry is computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Decision {
    Pending,
    Approved,
    Declined,
}

/// A stored request (the on-disk form; [`ConsentRequest`] is the view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    id: String,
    provider: String,
    patient: String,
    data_types: Vec<DataType>,
    duration_blocks: Option<u64>,
    purpose: String,
    decision: Decision,
    created_ms: u64,
    expires_ms: u64,
    decided_ms: Option<u64>,
    message: Option<String>,
    txids: Vec<String>,
}

impl Row {
    /// Where it stands at `now_ms`.
    fn state(&self, now_ms: u64) -> RequestState {
        match self.decision {
            Decision::Pending if now_ms >= self.expires_ms => RequestState::Expired,
            Decision::Pending => RequestState::Pending,
            Decision::Approved => RequestState::Approved,
            Decision::Declined => RequestState::Declined,
        }
    }

    /// What an audit entry (and the patient's notification) says of it:
    /// ids, data types and the period — never the purpose.
    fn describe(&self) -> String {
        let types: Vec<&str> = self.data_types.iter().map(|d| d.name()).collect();
        let period = match self.duration_blocks {
            None => "until revoked".to_string(),
            Some(n) => format!("for {n} burn blocks"),
        };
        format!("request {} for {} ({period})", self.id, types.join(", "))
    }
}

// ------------------------------------------------------------------ storage

const ROW: &[u8] = b"consent-request/row/";
const ALL: &[u8] = b"consent-request/all/";
const OPEN: &[u8] = b"consent-request/open/";

/// Makes creations and decisions one step each: the pending counts and
/// the write that changes them, a state check and its transition. One
/// process holds a store, and these writes are rare and short, so one
/// lock for all tenants does; a std mutex, held only inside
/// `spawn_blocking`, never across an `.await`.
static WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn row_key(id: &str) -> Vec<u8> {
    [ROW, id.as_bytes()].concat()
}

fn index_prefix(index: &[u8], principal: &str) -> Vec<u8> {
    [index, principal.as_bytes(), &[0]].concat()
}

fn index_key(index: &[u8], principal: &str, row: &Row) -> Vec<u8> {
    let newest_first = (u64::MAX - row.created_ms).to_be_bytes();
    [&index_prefix(index, principal)[..], &newest_first, row.id.as_bytes()].concat()
}

/// The id an index key ends with.
fn id_of(key: &[u8]) -> Option<&str> {
    key.len().checked_sub(32).and_then(|at| std::str::from_utf8(&key[at..]).ok())
}

fn get(db: &ApiDb, id: &str) -> Result<Option<Row>> {
    db.get(Cf::Meta, &row_key(id))?
        .map(|b| serde_json::from_slice(&b).map_err(|e| Error::internal(format!("stored consent request: {e}"))))
        .transpose()
}

fn put_row(db: &ApiDb, batch: &mut rocksdb::WriteBatch, row: &Row) -> Result<()> {
    let bytes = serde_json::to_vec(row).map_err(Error::internal)?;
    batch.put_cf(db.cf(Cf::Meta), row_key(&row.id), bytes);
    Ok(())
}

fn close(db: &ApiDb, batch: &mut rocksdb::WriteBatch, row: &Row) {
    for party in [&row.provider, &row.patient] {
        batch.delete_cf(db.cf(Cf::Meta), index_key(OPEN, party, row));
    }
}

/// Stores `row` (pending, made at `now_ms`) unless its provider is at a
/// limit. Counting walks the provider's open keys, and removes those of
/// requests that expired meanwhile (in the same write), so the open index
/// holds little more than the live requests.
fn insert(db: &ApiDb, row: &Row, now_ms: u64, limits: Limits) -> Result<()> {
    let _one_at_a_time = WRITER.lock().unwrap_or_else(|p| p.into_inner());
    let mut batch = db.batch();
    let (mut pair, mut provider) = (0, 0);
    for (k, _) in db.scan(Cf::Meta, &index_prefix(OPEN, &row.provider))? {
        let open = id_of(&k).map(|id| get(db, id)).transpose()?.flatten();
        match open {
            Some(o) if o.state(now_ms) == RequestState::Pending => {
                if o.provider == row.provider {
                    provider += 1;
                    pair += usize::from(o.patient == row.patient);
                }
            }
            Some(o) if o.decision == Decision::Pending => close(db, &mut batch, &o),
            // Decided (its keys are deleted with the decision) or gone.
            _ => batch.delete_cf(db.cf(Cf::Meta), &k),
        }
    }
    let refused = if pair >= limits.per_pair {
        Some(Error::State {
            code: "consent-request-limit",
            detail: format!(
                "{} requests to this patient are pending already (at most {}): wait for the patient's decision",
                pair, limits.per_pair
            ),
        })
    } else if provider >= limits.per_provider {
        Some(Error::State {
            code: "provider-request-limit",
            detail: format!("{provider} of your requests are pending already (at most {})", limits.per_provider),
        })
    } else {
        None
    };
    if let Some(e) = refused {
        if !batch.is_empty() {
            db.write(batch)?;
        }
        return Err(e);
    }
    put_row(db, &mut batch, row)?;
    for party in [&row.provider, &row.patient] {
        batch.put_cf(db.cf(Cf::Meta), index_key(ALL, party, row), []);
        batch.put_cf(db.cf(Cf::Meta), index_key(OPEN, party, row), []);
    }
    db.write(batch)?;
    Ok(())
}

/// Decides the pending request `id` at `now_ms`: approved with `txids`, or
/// declined with `message`. A request decided already, or expired, is
/// refused (409).
fn decide(
    db: &ApiDb,
    id: &str,
    now_ms: u64,
    decision: Decision,
    txids: Vec<String>,
    message: Option<String>,
) -> Result<Row> {
    let _one_at_a_time = WRITER.lock().unwrap_or_else(|p| p.into_inner());
    let mut row = get(db, id)?.ok_or_else(|| Error::NotFound(format!("consent request {id}")))?;
    match row.state(now_ms) {
        RequestState::Pending => {}
        RequestState::Expired => {
            return Err(Error::State {
                code: "request-expired",
                detail: "the request expired before it was decided: the provider may ask again".into(),
            })
        }
        decided => {
            return Err(Error::State {
                code: "request-decided",
                detail: format!("the request was {} already", decided.name()),
            })
        }
    }
    row.decision = decision;
    row.decided_ms = Some(now_ms);
    row.txids = txids;
    row.message = message;
    let mut batch = db.batch();
    put_row(db, &mut batch, &row)?;
    close(db, &mut batch, &row);
    db.write(batch)?;
    Ok(row)
}

/// Up to `limit` of `principal`'s requests (as provider or as patient),
/// newest first: every one, or only those pending at `now_ms`.
fn list(db: &ApiDb, principal: &str, include_closed: bool, now_ms: u64, limit: usize) -> Result<Vec<Row>> {
    let (index, scan) = if include_closed { (ALL, limit) } else { (OPEN, MAX_OPEN_SCAN) };
    let prefix = index_prefix(index, principal);
    let mut out = Vec::new();
    for (k, _) in db.scan_page(Cf::Meta, &prefix, scan)? {
        if !k.starts_with(&prefix) || out.len() >= limit {
            break;
        }
        let Some(row) = id_of(&k).map(|id| get(db, id)).transpose()?.flatten() else { continue };
        if include_closed || row.state(now_ms) == RequestState::Pending {
            out.push(row);
        }
    }
    Ok(out)
}

// --------------------------------------------------------------- validation

fn check_data_types(types: &[DataType]) -> Result<()> {
    if types.is_empty() || types.len() > MAX_DATA_TYPES {
        return Err(Error::bad(
            "invalid-data-types",
            format!("name 1 to {MAX_DATA_TYPES} data types ({} named)", types.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = types.iter().find(|d| !seen.insert(**d)) {
        return Err(Error::bad("invalid-data-types", format!("data type {d} is named twice")));
    }
    Ok(())
}

/// Free text: at most `max` characters and no control characters as
/// sent (the API document's bounds), then trimmed; `None` when blank.
fn text(code: &'static str, what: &str, s: &str, max: usize) -> Result<Option<String>> {
    if s.chars().count() > max {
        return Err(Error::bad(code, format!("{what} is longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::bad(code, format!("{what} holds control characters (line breaks included)")));
    }
    let s = s.trim();
    Ok((!s.is_empty()).then(|| s.to_string()))
}

fn check_purpose(purpose: &str) -> Result<String> {
    text("invalid-purpose", "purpose", purpose, MAX_PURPOSE)?
        .ok_or_else(|| Error::bad("invalid-purpose", "say why you ask: the purpose is empty"))
}

fn check_message(message: Option<&str>) -> Result<Option<String>> {
    Ok(match message {
        Some(m) => text("invalid-message", "message", m, MAX_MESSAGE)?,
        None => None,
    })
}

fn check_duration(duration_blocks: Option<u64>) -> Result<()> {
    match duration_blocks {
        Some(n) if n == 0 || n > MAX_DURATION_BLOCKS => Err(Error::bad(
            "invalid-duration",
            format!("duration_blocks must be 1 to {MAX_DURATION_BLOCKS} (or absent: until revoked)"),
        )),
        _ => Ok(()),
    }
}

/// 1 to [`MAX_TXIDS`] distinct txids, each in their one text form: `0x`
/// and 64 lowercase hex digits (as wallets and the node report them).
fn check_txids(txids: &[String]) -> Result<Vec<String>> {
    if txids.is_empty() || txids.len() > MAX_TXIDS {
        return Err(Error::bad(
            "invalid-txid",
            format!("report 1 to {MAX_TXIDS} grant transactions ({} given)", txids.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(txids.len());
    for t in txids {
        let txid =
            t.parse::<Txid>().ok().map(|t| t.to_string()).filter(|canonical| canonical == t).ok_or_else(|| {
                Error::bad("invalid-txid", format!("txid {} is not 0x and 64 lowercase hex digits", echo(t)))
            })?;
        if out.contains(&txid) {
            return Err(Error::bad("invalid-txid", format!("txid {txid} is reported twice")));
        }
        out.push(txid);
    }
    Ok(out)
}

fn check_id(id: &str) -> Result<()> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::bad("invalid-consent-request-id", format!("{} is not 32 lowercase hex digits", echo(id))))
    }
}

/// Whether `consents` (a patient's, at the tip) hold an active consent to
/// `provider` for every one of `types` (a broad grant counts for the
/// standard types, as in the contract's `consent-status`).
fn granted(consents: &[ConsentView], provider: &str, types: &[DataType]) -> bool {
    types.iter().all(|wanted| {
        consents.iter().any(|c| {
            c.provider == provider
                && c.state == ConsentState::Active
                && DataType::from_code(u128::from(c.data_type_code)).is_some_and(|given| given.covers(*wanted))
        })
    })
}

// ---------------------------------------------------------------- use cases

impl Service {
    /// A provider asks `new.patient` for consent. The caller's role must be
    /// `provider` (active on-chain), the patient registered on-chain;
    /// bounded per pair and per provider. Audited; the patient is
    /// notified.
    pub async fn request_consent(&self, caller: &Caller, new: NewConsentRequest) -> Result<ConsentRequest> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "consent-request.create");
        entry.patient = Some(new.patient.to_string());
        let checked = self.check_request(&who, role, &new);
        let purpose = self.audit_refusal(&entry, checked).await?;
        let now = self.now_ms();
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let row = Row {
            id: hex::encode(id),
            provider: who.to_string(),
            patient: new.patient.to_string(),
            data_types: new.data_types,
            duration_blocks: new.duration_blocks,
            purpose,
            decision: Decision::Pending,
            created_ms: now,
            expires_ms: now.saturating_add(REQUEST_TTL_MS),
            decided_ms: None,
            message: None,
            txids: Vec::new(),
        };
        let (db, r2) = (self.db.clone(), row.clone());
        let stored =
            tokio::task::spawn_blocking(move || insert(&db, &r2, now, LIMITS)).await.map_err(Error::internal)?;
        self.audit_refusal(&entry, stored).await?;
        entry.detail = Some(row.describe());
        self.audited(entry, Ok(())).await?;
        self.view(row, now, &mut HashMap::new())
    }

    /// Who may ask, and what: the purpose as stored.
    fn check_request(&self, who: &Principal, role: &str, new: &NewConsentRequest) -> Result<String> {
        if role != "provider" {
            return Err(Error::Forbidden {
                code: "provider-required",
                detail: "only a provider registered on-chain can ask for consent".into(),
                reason: None,
            });
        }
        if !self.chain.provider(who).map_err(Error::internal)?.is_some_and(|p| p.active) {
            return Err(Error::Forbidden {
                code: "provider-inactive",
                detail: "the provider is deactivated on-chain".into(),
                reason: None,
            });
        }
        check_data_types(&new.data_types)?;
        check_duration(new.duration_blocks)?;
        let purpose = check_purpose(&new.purpose)?;
        // The chain's state, not the request's shape: refusals (403), as
        // the chain's own rules would refuse a grant to oneself or from
        // no patient.
        if &new.patient == who {
            return Err(Error::Forbidden {
                code: "request-to-self",
                detail: "a provider cannot ask themself for consent".into(),
                reason: None,
            });
        }
        if self.chain.patient(&new.patient).map_err(Error::internal)?.is_none() {
            return Err(Error::Forbidden {
                code: "patient-not-registered",
                detail: format!("{} is not a patient registered on-chain", new.patient),
                reason: None,
            });
        }
        Ok(purpose)
    }

    /// The caller's requests — addressed to them as patient or sent by
    /// them as provider — newest first, at most [`MAX_LIST`]: the pending
    /// ones, or with `include_closed` every one (decided and expired
    /// too). Audited.
    pub async fn consent_requests(&self, caller: &Caller, include_closed: bool) -> Result<Vec<ConsentRequest>> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "consent-request.list");
        if role == "patient" {
            entry.patient = Some(who.to_string());
        }
        let now = self.now_ms();
        // Up to MAX_LIST rows and each patient's consents: off the async
        // threads.
        let (s2, w2) = (self.clone(), who.to_string());
        let result = tokio::task::spawn_blocking(move || {
            let mut consents = HashMap::new();
            list(&s2.db, &w2, include_closed, now, MAX_LIST)?
                .into_iter()
                .map(|row| s2.view(row, now, &mut consents))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(Error::internal)
        .and_then(|r| r);
        if let Ok(views) = &result {
            entry.detail = Some(format!("{} {} requests", views.len(), if include_closed { "all" } else { "pending" }));
        }
        self.audited(entry, result).await
    }

    /// One request, to its patient or its provider (anyone else: not
    /// found, as if it did not exist). Audited.
    pub async fn consent_request(&self, caller: &Caller, id: &str) -> Result<ConsentRequest> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "consent-request.read");
        let row = self.party_row(&who, id, &mut entry).await?;
        self.audited(entry, Ok(())).await?;
        self.view(row, self.now_ms(), &mut HashMap::new())
    }

    /// The patient approves their pending request, reporting the
    /// `grant-consent` transactions they signed (1 to [`MAX_TXIDS`]).
    /// Its patient only; audited.
    pub async fn approve_consent_request(
        &self,
        caller: &Caller,
        id: &str,
        txids: Vec<String>,
    ) -> Result<ConsentRequest> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "consent-request.approve");
        let txids = self.audit_refusal(&entry, check_id(id).and_then(|()| check_txids(&txids))).await?;
        let row = self.party_row(&who, id, &mut entry).await?;
        self.patient_decides(&who, &row, &entry).await?;
        entry.detail = Some(format!("request {id} txids={}", txids.join(",")));
        let (db, id2, now) = (self.db.clone(), id.to_string(), self.now_ms());
        let decided = tokio::task::spawn_blocking(move || decide(&db, &id2, now, Decision::Approved, txids, None))
            .await
            .map_err(Error::internal)
            .and_then(|r| r);
        let row = self.audited(entry, decided).await?;
        self.view(row, now, &mut HashMap::new())
    }

    /// The patient declines their pending request, with an optional
    /// message for the provider (kept off-chain, never audited). Its
    /// patient only; audited.
    pub async fn decline_consent_request(
        &self,
        caller: &Caller,
        id: &str,
        message: Option<String>,
    ) -> Result<ConsentRequest> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "consent-request.decline");
        let message = self.audit_refusal(&entry, check_id(id).and_then(|()| check_message(message.as_deref()))).await?;
        let row = self.party_row(&who, id, &mut entry).await?;
        self.patient_decides(&who, &row, &entry).await?;
        let (db, id2, now) = (self.db.clone(), id.to_string(), self.now_ms());
        let decided =
            tokio::task::spawn_blocking(move || decide(&db, &id2, now, Decision::Declined, Vec::new(), message))
                .await
                .map_err(Error::internal)
                .and_then(|r| r);
        let row = self.audited(entry, decided).await?;
        self.view(row, now, &mut HashMap::new())
    }

    /// The request `id` if `who` is one of its parties; otherwise not
    /// found (audited), whether or not it exists. Sets the entry's
    /// patient once the request is known.
    async fn party_row(&self, who: &Principal, id: &str, entry: &mut crate::audit::AuditEntry) -> Result<Row> {
        self.audit_refusal(entry, check_id(id)).await?;
        entry.detail = Some(format!("request {id}"));
        let row = self.audit_refusal(entry, get(&self.db, id)).await?;
        let not_found = || Error::NotFound(format!("consent request {id}"));
        let Some(row) = row else { return self.audited(entry.clone(), Err(not_found())).await };
        entry.patient = Some(row.patient.clone());
        let me = who.to_string();
        if row.patient != me && row.provider != me {
            return self.audited(entry.clone(), Err(not_found())).await;
        }
        Ok(row)
    }

    /// Only the patient decides (the provider knows the request exists:
    /// 403, not 404).
    async fn patient_decides(&self, who: &Principal, row: &Row, entry: &crate::audit::AuditEntry) -> Result<()> {
        if row.patient == who.to_string() {
            return Ok(());
        }
        let refused = Error::Forbidden {
            code: "patient-only",
            detail: "only the patient decides a consent request".into(),
            reason: None,
        };
        self.audited(entry.clone(), Err(refused)).await
    }

    /// The view of `row` at `now_ms`, with what the chain shows now
    /// (patients' consents read once per call through `consents`).
    fn view(&self, row: Row, now_ms: u64, consents: &mut HashMap<String, Vec<ConsentView>>) -> Result<ConsentRequest> {
        if !consents.contains_key(&row.patient) {
            let patient: Principal = row
                .patient
                .parse()
                .map_err(|_| Error::internal(format!("stored consent request {}: patient", row.id)))?;
            let given = self.chain.consents(&patient).map_err(Error::internal)?;
            consents.insert(row.patient.clone(), given);
        }
        let granted_on_chain = granted(&consents[&row.patient], &row.provider, &row.data_types);
        Ok(ConsentRequest {
            state: row.state(now_ms),
            id: row.id,
            provider: row.provider,
            patient: row.patient,
            data_types: row.data_types,
            duration_blocks: row.duration_blocks,
            purpose: row.purpose,
            created_ms: row.created_ms,
            expires_ms: row.expires_ms,
            decided_ms: row.decided_ms,
            message: row.message,
            txids: row.txids,
            granted_on_chain,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TTL: u64 = 1_000;

    fn row(n: u64, provider: &str, patient: &str, now: u64) -> Row {
        Row {
            id: format!("{n:032x}"),
            provider: provider.into(),
            patient: patient.into(),
            data_types: vec![DataType::LabResults],
            duration_blocks: None,
            purpose: "follow-up".into(),
            decision: Decision::Pending,
            created_ms: now,
            expires_ms: now + TTL,
            decided_ms: None,
            message: None,
            txids: Vec::new(),
        }
    }

    fn code<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
        r.expect_err("refused").code()
    }

    fn txid(b: u8) -> String {
        format!("0x{}", hex::encode([b; 32]))
    }

    #[test]
    fn inputs_are_checked() {
        use DataType::*;
        assert!(check_data_types(&[LabResults]).is_ok());
        assert!(
            check_data_types(&[BasicInfo, MedicalHistory, LabResults, TreatmentPlans, MentalHealth, Genetic]).is_ok()
        );
        for bad in [
            vec![],
            vec![LabResults, LabResults],
            vec![BasicInfo, MedicalHistory, LabResults, TreatmentPlans, MentalHealth, Genetic, Financial],
        ] {
            assert_eq!(code(check_data_types(&bad)), "invalid-data-types", "{bad:?}");
        }

        assert_eq!(check_purpose("  a second opinion  ").expect("purpose"), "a second opinion");
        assert_eq!(check_purpose(&"é".repeat(MAX_PURPOSE)).expect("500 characters").chars().count(), MAX_PURPOSE);
        let padded = format!(" {}", "x".repeat(MAX_PURPOSE));
        for bad in
            ["", "   ", "two\nlines", "\nleading", "bell\u{7}", "c1\u{85}x", &"x".repeat(MAX_PURPOSE + 1), &padded]
        {
            assert_eq!(code(check_purpose(bad)), "invalid-purpose", "{bad:?}");
        }
        assert_eq!(check_message(None).expect("none"), None);
        assert_eq!(check_message(Some(" ")).expect("blank"), None);
        assert_eq!(check_message(Some("not now")).expect("message").as_deref(), Some("not now"));
        assert_eq!(code(check_message(Some("a\tb"))), "invalid-message");
        assert_eq!(code(check_message(Some(&"m".repeat(MAX_MESSAGE + 1)))), "invalid-message");

        assert!(check_duration(None).is_ok() && check_duration(Some(1)).is_ok());
        assert!(check_duration(Some(MAX_DURATION_BLOCKS)).is_ok());
        assert_eq!(code(check_duration(Some(0))), "invalid-duration");
        assert_eq!(code(check_duration(Some(MAX_DURATION_BLOCKS + 1))), "invalid-duration");

        assert_eq!(check_txids(&[txid(0xab)]).expect("txid"), vec![txid(0xab)]);
        let eight: Vec<String> = (0..8).map(txid).collect();
        assert_eq!(check_txids(&eight).expect("eight").len(), 8);
        let nine: Vec<String> = (0..9).map(txid).collect();
        for bad in [
            vec![],
            nine,
            vec![txid(1), txid(1)],
            vec!["ab".repeat(32)],
            vec![format!("0x{}", "ab".repeat(31))],
            vec![format!("0x{}", "zz".repeat(32))],
            vec![format!("0X{}", "ab".repeat(32))],
            vec![format!("0x{}", "AB".repeat(32))],
        ] {
            assert_eq!(code(check_txids(&bad)), "invalid-txid", "{bad:?}");
        }

        assert!(check_id(&"0a".repeat(16)).is_ok());
        for bad in ["", "0A".repeat(16).as_str(), &"0".repeat(31), &"g".repeat(32)] {
            assert_eq!(code(check_id(bad)), "invalid-consent-request-id", "{bad:?}");
        }
    }

    #[test]
    fn the_chain_decides_granted_and_a_broad_grant_covers_standard_types() {
        let consent = |provider: &str, dt: DataType, state: ConsentState| ConsentView {
            provider: provider.into(),
            data_type: dt.name(),
            data_type_code: dt.code(),
            granted_at: 1,
            expires_at: None,
            revoked_at: None,
            seq: 0,
            state,
            txid: Txid([0; 32]),
            block_height: 1,
        };
        let given = [
            consent("DOC", DataType::LabResults, ConsentState::Active),
            consent("DOC", DataType::MentalHealth, ConsentState::Revoked),
            consent("OTHER", DataType::Financial, ConsentState::Active),
        ];
        assert!(granted(&given, "DOC", &[DataType::LabResults]));
        assert!(!granted(&given, "DOC", &[DataType::LabResults, DataType::MentalHealth]), "revoked");
        assert!(!granted(&given, "DOC", &[DataType::Financial]), "another provider's");
        let broad = [consent("DOC", DataType::AllStandard, ConsentState::Active)];
        assert!(granted(&broad, "DOC", &[DataType::BasicInfo, DataType::Financial]));
        assert!(!granted(&broad, "DOC", &[DataType::Genetic]), "enhanced types are never broad");
        assert!(granted(&broad, "DOC", &[DataType::AllStandard]));
    }

    #[test]
    fn requests_expire_on_read_and_decide_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("open");
        let (a, b, c) = (row(1, "DOC", "PAT", 100), row(2, "DOC", "PAT", 200), row(3, "DOC", "PAT", 300));
        for r in [&a, &b, &c] {
            insert(&db, r, r.created_ms, LIMITS).expect("insert");
        }
        // Newest first; both parties see them.
        let ids = |who: &str, all: bool, now: u64| -> Vec<String> {
            list(&db, who, all, now, MAX_LIST).expect("list").into_iter().map(|r| r.id).collect()
        };
        assert_eq!(ids("DOC", false, 300), [c.id.clone(), b.id.clone(), a.id.clone()]);
        assert_eq!(ids("PAT", true, 300), ids("DOC", true, 300));
        assert!(ids("STRANGER", true, 300).is_empty());

        let approved = decide(&db, &a.id, 400, Decision::Approved, vec![txid(1)], None).expect("approve");
        assert_eq!(
            (approved.state(400), approved.decided_ms, approved.txids.len()),
            (RequestState::Approved, Some(400), 1)
        );
        assert_eq!(code(decide(&db, &a.id, 401, Decision::Declined, vec![], None)), "request-decided");
        let declined = decide(&db, &b.id, 500, Decision::Declined, vec![], Some("no".into())).expect("decline");
        assert_eq!((declined.state(500), declined.message.as_deref()), (RequestState::Declined, Some("no")));
        assert_eq!(code(decide(&db, &b.id, 501, Decision::Approved, vec![txid(2)], None)), "request-decided");
        // Pending until its expiry, expired from then on; an expired
        // request cannot be decided.
        assert_eq!(get(&db, &c.id).expect("get").expect("row").state(c.expires_ms - 1), RequestState::Pending);
        assert_eq!(get(&db, &c.id).expect("get").expect("row").state(c.expires_ms), RequestState::Expired);
        assert_eq!(code(decide(&db, &c.id, c.expires_ms, Decision::Approved, vec![txid(3)], None)), "request-expired");
        assert_eq!(code(decide(&db, &"f".repeat(32), 0, Decision::Approved, vec![], None)), "not-found");

        assert_eq!(ids("DOC", false, c.expires_ms - 1), std::slice::from_ref(&c.id), "decided ones are not pending");
        assert!(ids("PAT", false, c.expires_ms).is_empty(), "nor expired ones");
        assert_eq!(ids("PAT", true, c.expires_ms).len(), 3, "all: decided and expired too");
        let states: Vec<_> = list(&db, "PAT", true, c.expires_ms, MAX_LIST)
            .expect("list")
            .iter()
            .map(|r| r.state(c.expires_ms))
            .collect();
        assert_eq!(states, [RequestState::Expired, RequestState::Declined, RequestState::Approved]);
    }

    #[test]
    fn pending_requests_are_bounded_per_pair_and_per_provider_and_expired_ones_do_not_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("open");
        let mut n = 0;
        let mut make = |provider: &str, patient: &str, now: u64| {
            n += 1;
            let r = row(n, provider, patient, now);
            insert(&db, &r, now, LIMITS).map(|()| r)
        };
        for _ in 0..LIMITS.per_pair {
            make("DOC", "PAT", 0).expect("within the pair's limit");
        }
        assert_eq!(code(make("DOC", "PAT", 0)), "consent-request-limit");
        // Other patients fill the provider's limit.
        for i in 0..LIMITS.per_provider - LIMITS.per_pair {
            make("DOC", &format!("P{}", i / LIMITS.per_pair), 0).expect("within the provider's limit");
        }
        assert_eq!(code(make("DOC", "NEW", 0)), "provider-request-limit");
        // Another provider is not held back, by the same patients either.
        make("DOC2", "PAT", 0).expect("another provider");
        // Once expired, none count: the provider may ask again, and the
        // expired keys are swept from the open index.
        make("DOC", "PAT", TTL).expect("the old ones expired");
        let open = |who: &str| db.scan(Cf::Meta, &index_prefix(OPEN, who)).expect("scan").len();
        assert_eq!(open("DOC"), 1, "the provider's open index holds the live request only");
        assert_eq!(open("PAT"), 2, "the patient's: the new one and DOC2's");
        assert_eq!(db.scan(Cf::Meta, &index_prefix(ALL, "DOC")).expect("scan").len(), LIMITS.per_provider + 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Create { provider: usize, patient: usize },
        Wait(u64),
        Approve(usize),
        Decline(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, 0..3usize).prop_map(|(provider, patient)| Op::Create { provider, patient }),
            1 => (0..TTL).prop_map(Op::Wait),
            2 => (0..40usize).prop_map(Op::Approve),
            2 => (0..40usize).prop_map(Op::Decline),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any sequence of creations, decisions and time passing leaves the
        /// store as a plain model says: the limits hold over live pending
        /// requests only, a request is decided at most once and never once
        /// expired, and every party's pending list is exactly its live
        /// pending requests, newest first.
        #[test]
        fn the_store_follows_the_model(ops in prop::collection::vec(op(), 1..60)) {
            let limits = Limits { per_pair: 2, per_provider: 3 };
            let names = ["A", "B", "C"];
            let dir = tempfile::tempdir().expect("tempdir");
            let db = ApiDb::open(dir.path()).expect("open");
            let (mut now, mut made): (u64, Vec<Row>) = (1, Vec::new());
            for op in ops {
                match op {
                    Op::Create { provider, patient } => {
                        let (provider, patient) = (names[provider], names[patient]);
                        let live = |r: &&Row| r.provider == provider && r.state(now) == RequestState::Pending;
                        let by_provider = made.iter().filter(live).count();
                        let by_pair = made.iter().filter(live).filter(|r| r.patient == patient).count();
                        let r = row(made.len() as u64 + 1, provider, patient, now);
                        let got = insert(&db, &r, now, limits);
                        if by_pair >= limits.per_pair {
                            prop_assert_eq!(code(got), "consent-request-limit");
                        } else if by_provider >= limits.per_provider {
                            prop_assert_eq!(code(got), "provider-request-limit");
                        } else {
                            prop_assert!(got.is_ok());
                            made.push(r);
                        }
                    }
                    Op::Wait(ms) => now += ms,
                    Op::Approve(i) | Op::Decline(i) if made.is_empty() => { let _ = i; }
                    Op::Approve(i) | Op::Decline(i) => {
                        let i = i % made.len();
                        let approve = matches!(op, Op::Approve(_));
                        let decision = if approve { Decision::Approved } else { Decision::Declined };
                        let got = decide(&db, &made[i].id, now, decision, vec![txid(1)], None);
                        match made[i].state(now) {
                            RequestState::Pending => {
                                prop_assert!(got.is_ok());
                                made[i].decision = decision;
                                made[i].decided_ms = Some(now);
                            }
                            RequestState::Expired => prop_assert_eq!(code(got), "request-expired"),
                            _ => prop_assert_eq!(code(got), "request-decided"),
                        }
                    }
                }
                for r in &made {
                    let stored = get(&db, &r.id).expect("get").expect("row");
                    prop_assert_eq!(stored.state(now), r.state(now));
                }
                for who in names {
                    let mut want: Vec<&Row> = made
                        .iter()
                        .filter(|r| (r.provider == who || r.patient == who) && r.state(now) == RequestState::Pending)
                        .collect();
                    want.sort_by_key(|r| (std::cmp::Reverse(r.created_ms), r.id.clone()));
                    let got: Vec<String> = list(&db, who, false, now, MAX_LIST).expect("list").into_iter().map(|r| r.id).collect();
                    let want: Vec<String> = want.into_iter().map(|r| r.id.clone()).collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
