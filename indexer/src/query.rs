//! Reading the index: the traits the API depends on ([`ChainReader`],
//! [`ConsentReader`], [`RecordReader`]), their RocksDB implementation
//! [`IndexReader`], and the JSON views they return (distinct from the
//! stored rows, so either can change alone).
//!
//! Every call reads one RocksDB snapshot, so an answer never mixes two
//! blocks. "Now" is the canonical tip: `check_consent` evaluates expiry
//! against the tip block's burn height, which is the `burn-block-height` a
//! read-only call at the tip sees (Clarity's burn height is the one of the
//! last mined block).

use std::sync::Arc;

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{
    AccessLevel, AccessMethod, ChangeKind, DataType, HistoryAction, RecordStatus, RecordType,
};
use medanchor_contracts::{BlockHash, ContractError, DataHash, RecordId, Txid};
use serde::Serialize;

use crate::schema::{self, key, principal_key, Cf};
use crate::schema::{
    AccessRow, ActivityRow, AnchorRow, BatchRow, BlockHeader, ConsentRow, HistoryRow, OverrideRow, PatientRecordRow,
    PatientRow, ProviderRow, RecordRow, TxRow, VersionRow,
};
use crate::store::{IndexDb, KeyValue};
use crate::{Error, Result};

/// Most items one page returns.
pub const MAX_PAGE: usize = 500;
/// Items a page returns when the caller does not say.
pub const DEFAULT_PAGE: usize = 50;

/// Where the index stands.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainStatus {
    /// Canonical tip height (None before the first block).
    pub tip_height: Option<u64>,
    /// Its index block hash.
    pub tip_index_block_hash: Option<BlockHash>,
    /// Its burn height: "now" for expiries.
    pub tip_burn_block_height: Option<u64>,
    /// Its time (unix seconds).
    pub tip_time: Option<u64>,
    /// The last `/new_burn_block` seen.
    pub last_burn_block_height: Option<u64>,
    /// Blocks buffered for want of their parent.
    pub buffered_blocks: usize,
}

/// A transaction in a canonical block.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TxView {
    /// `0x` txid.
    pub txid: Txid,
    /// `0x` index block hash.
    pub index_block_hash: BlockHash,
    /// Block height.
    pub block_height: u64,
    /// Position.
    pub tx_index: u32,
    /// `success`, `abort_by_response`, …
    pub status: String,
    /// `0x` Clarity hex of the result.
    pub raw_result: String,
}

impl TxView {
    /// Whether the transaction succeeded (its effects are on-chain).
    pub fn succeeded(&self) -> bool {
        self.status == "success"
    }
}

/// A registered patient.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors the contract's `patients` map.
pub struct PatientView {
    pub patient: String,
    pub patient_id: String,
    pub emergency_contact: Option<String>,
    pub primary_physician: Option<String>,
    pub emergency_mental_health: bool,
    pub emergency_genetic: bool,
    pub deceased: bool,
    pub registered_at: u64,
    pub updated_at: u64,
    pub history_len: u64,
}

/// The state of a consent at the tip.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// In force.
    Active,
    /// Past its expiry.
    Expired,
    /// Withdrawn.
    Revoked,
}

/// One consent of a patient.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ConsentView {
    pub provider: String,
    pub data_type: &'static str,
    pub data_type_code: u8,
    pub granted_at: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub seq: u64,
    pub state: ConsentState,
    pub txid: Txid,
    pub block_height: u64,
}

/// One entry of a patient's consent history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct HistoryView {
    pub seq: u64,
    pub action: &'static str,
    pub actor: String,
    pub provider: Option<String>,
    pub data_type: Option<&'static str>,
    pub at: u64,
    pub expires_at: Option<u64>,
    pub txid: Txid,
    pub block_height: u64,
}

/// A contract error as the API reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorView {
    /// `u` code.
    pub code: u32,
    /// `ERR-…` constant.
    pub name: &'static str,
    /// What it means.
    pub message: &'static str,
}

impl From<ContractError> for ErrorView {
    fn from(e: ContractError) -> Self {
        ErrorView { code: e.code(), name: e.constant(), message: e.message() }
    }
}

/// The answer of `check-consent`, computed from the index.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsentCheck {
    /// Allowed?
    pub allowed: bool,
    /// How (`self`, `consent`, `emergency`), when allowed.
    pub method: Option<&'static str>,
    /// Why not, when refused: the contract's own error.
    pub error: Option<ErrorView>,
    /// The burn height it was evaluated at.
    pub burn_block_height: u64,
}

impl ConsentCheck {
    /// The result as the contract's `(ok method)` / `(err code)`.
    pub fn as_result(&self) -> std::result::Result<u8, u32> {
        match (&self.error, self.method) {
            (Some(e), _) => Err(e.code),
            (None, Some(m)) => {
                Ok(AccessMethod::ALL.iter().find(|a| a.name() == m).map(|a| a.code()).unwrap_or_default())
            }
            (None, None) => Err(0),
        }
    }
}

/// An emergency override.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct OverrideView {
    pub provider: String,
    pub reason: u8,
    pub started_at: u64,
    pub expires_at: u64,
    pub seq: u64,
    /// Unexpired and the provider still credentialed.
    pub active: bool,
}

/// A record (its current version).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChainRecord))]
#[allow(missing_docs)]
pub struct RecordView {
    pub record_id: RecordId,
    pub patient: String,
    pub record_type: RecordType,
    pub data_type: DataType,
    pub data_hash: DataHash,
    pub encryption_key_id: Option<String>,
    pub confidentiality: u8,
    pub created_by: String,
    pub created_at: u64,
    pub created_height: u64,
    pub created_time: u64,
    pub version: u64,
    pub updated_by: String,
    pub updated_at: u64,
    pub status: RecordStatus,
    pub finalized: bool,
    pub retention_until: u64,
}

/// One version of a record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChainVersion))]
#[allow(missing_docs)]
pub struct VersionView {
    pub version: u64,
    pub data_hash: DataHash,
    pub encryption_key_id: Option<String>,
    pub author: String,
    pub at: u64,
    pub change: ChangeKind,
    pub txid: Txid,
    pub block_height: u64,
    pub index_block_hash: BlockHash,
}

/// Who anchored a data hash, when and where.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChainAnchor))]
#[allow(missing_docs)]
pub struct AnchorView {
    pub data_hash: DataHash,
    pub record_id: RecordId,
    pub version: u64,
    pub anchored_by: String,
    pub at: u64,
    pub txid: Txid,
    pub block_height: u64,
    pub index_block_hash: BlockHash,
}

/// A batch root.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct BatchView {
    pub root: String,
    pub submitter: String,
    pub leaf_count: u64,
    pub at: u64,
    pub txid: Txid,
    pub block_height: u64,
}

/// A registered provider.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ProviderView {
    pub provider: String,
    pub credential_hash: String,
    pub active: bool,
    pub registered_at: u64,
    pub emergency_responder: bool,
    pub anchor_operator: bool,
}

/// Access a patient gave a provider.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AccessView {
    pub provider: String,
    pub level: &'static str,
    pub granted_at: u64,
    pub expires_at: Option<u64>,
    /// Unexpired at the tip.
    pub active: bool,
}

/// Something a principal did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ActivityView {
    pub event: String,
    pub patient: Option<String>,
    pub record_id: Option<RecordId>,
    pub data_type: Option<&'static str>,
    pub at: u64,
    pub txid: Txid,
    pub block_height: u64,
}

/// A page of results; pass `next_cursor` back for the next one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Opaque cursor of the next page; None on the last one.
    pub next_cursor: Option<String>,
}

/// Which page.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Items wanted (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub limit: Option<usize>,
}

impl PageRequest {
    fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(0) => Err(Error::BadRequest("limit must be at least 1".into())),
            Some(n) if n > MAX_PAGE => Err(Error::BadRequest(format!("limit must be at most {MAX_PAGE}"))),
            Some(n) => Ok(n),
        }
    }

    /// The cursor's key, checked to lie under `prefix` and to be followed
    /// by exactly `suffix_len` bytes (the rest of the listing's key).
    ///
    /// The length matters because a patient's history, records and
    /// activity keys all begin with the same principal key: checking the
    /// prefix alone let a cursor of one listing start another at a key that
    /// means something else there (a history seq read as a record height).
    /// The three suffixes differ in length (8, 24, 16 bytes), so the length
    /// tells the listings apart without changing the cursor format.
    fn cursor_key(&self, prefix: &[u8], suffix_len: usize) -> Result<Option<Vec<u8>>> {
        let Some(c) = &self.cursor else { return Ok(None) };
        let k = hex::decode(c).map_err(|_| Error::BadRequest("cursor is not one this index issued".into()))?;
        if !k.starts_with(prefix) || k.len() != prefix.len() + suffix_len {
            return Err(Error::BadRequest("cursor belongs to another query".into()));
        }
        Ok(Some(k))
    }
}

/// Filters of a patient's record list (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only this record type.
    pub record_type: Option<RecordType>,
    /// Only records created by this provider.
    pub provider: Option<Principal>,
    /// Created at or after this Stacks height.
    pub from_height: Option<u64>,
    /// Created at or before this Stacks height.
    pub to_height: Option<u64>,
    /// Created at or after this unix time.
    pub from_time: Option<u64>,
    /// Created at or before this unix time.
    pub to_time: Option<u64>,
}

/// A provider's access level for a patient, as `access-level-of` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderAccess {
    /// The level's contract code (`AccessLevel::code`): compared as the
    /// contract compares its uints.
    pub level: u8,
    /// Past its expiry at the tip (`ERR-PROVIDER-ACCESS-EXPIRED`).
    pub expired: bool,
}

/// What record-management's `authorize` reads about one actor acting on
/// one patient's data type, from one snapshot at the tip: the decision is
/// made from these by the API's one authorization rule, so no answer mixes
/// two blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFacts {
    /// The tip's burn height ("now").
    pub burn_block_height: u64,
    /// `check-consent`'s answer.
    pub consent: std::result::Result<AccessMethod, ContractError>,
    /// `consent-status` alone — the direct consent, ignoring emergency
    /// overrides — when `check-consent` evaluated it (a registered, living
    /// patient, a concrete type, not paused, an actor other than the
    /// patient): `check-consent` reports an expired override or enhanced
    /// protection in its place, which would hide an explicit revocation.
    pub direct: Option<std::result::Result<(), ContractError>>,
    /// The actor as a registered provider: `Some(active)`, or None.
    pub provider_active: Option<bool>,
    /// The access level the patient gave the actor, if any.
    pub access: Option<ProviderAccess>,
}

/// A record as `authorize-record` and the lifecycle asserts see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordState {
    /// Whose record.
    pub patient: Principal,
    /// Its record type (`data-type-of` gives the consent type).
    pub record_type: RecordType,
    /// The current version on-chain.
    pub version: u64,
    /// Active, archived or purged.
    pub status: RecordStatus,
    /// Finalized (no updates until unlocked).
    pub finalized: bool,
}

/// The facts authorization decisions are made from.
pub trait AccessReader {
    /// [`AccessFacts`] for `actor` on `patient`'s `data_type`, at the tip.
    fn access_facts(&self, patient: &Principal, actor: &Principal, data_type: DataType) -> Result<AccessFacts>;
    /// A record's on-chain state with the [`AccessFacts`] of `actor` on it,
    /// from one snapshot; None when the chain has no such record.
    fn record_access(&self, record_id: &RecordId, actor: &Principal) -> Result<Option<(RecordState, AccessFacts)>>;
}

/// Chain-level reads.
pub trait ChainReader {
    /// Where the index stands.
    fn status(&self) -> Result<ChainStatus>;
    /// A transaction of the canonical chain.
    fn transaction(&self, txid: &Txid) -> Result<Option<TxView>>;
}

/// Consent reads (patient-consent).
pub trait ConsentReader {
    /// A patient's profile.
    fn patient(&self, patient: &Principal) -> Result<Option<PatientView>>;
    /// The patient a patient-id commitment belongs to.
    fn patient_by_id(&self, patient_id: &[u8; 32]) -> Result<Option<String>>;
    /// All consents a patient gave, with their state at the tip.
    fn consents(&self, patient: &Principal) -> Result<Vec<ConsentView>>;
    /// The patient's consent history, oldest first.
    fn consent_history(&self, patient: &Principal, page: &PageRequest) -> Result<Page<HistoryView>>;
    /// `check-consent` at the tip.
    fn check_consent(&self, patient: &Principal, accessor: &Principal, data_type: u8) -> Result<ConsentCheck>;
    /// `has-consent` at the tip.
    fn has_consent(&self, patient: &Principal, provider: &Principal, data_type: u8) -> Result<bool> {
        Ok(self.check_consent(patient, provider, data_type)?.allowed)
    }
    /// The override of (patient, provider), if any.
    fn emergency_override(&self, patient: &Principal, provider: &Principal) -> Result<Option<OverrideView>>;
}

/// Record, provider and anchor reads (record-management).
pub trait RecordReader {
    /// One record.
    fn record(&self, record_id: &RecordId) -> Result<Option<RecordView>>;
    /// A patient's records, oldest first, filtered and paginated.
    fn records(&self, patient: &Principal, filter: &RecordFilter, page: &PageRequest) -> Result<Page<RecordView>>;
    /// Every version of a record, oldest first.
    fn versions(&self, record_id: &RecordId) -> Result<Vec<VersionView>>;
    /// Who anchored this data hash.
    fn anchors(&self, data_hash: &DataHash) -> Result<Vec<AnchorView>>;
    /// A batch root.
    fn batch(&self, root: &[u8; 32]) -> Result<Option<BatchView>>;
    /// A provider.
    fn provider(&self, provider: &Principal) -> Result<Option<ProviderView>>;
    /// A patient's grant to a provider.
    fn provider_access(&self, patient: &Principal, provider: &Principal) -> Result<Option<AccessView>>;
    /// What a principal did, oldest first.
    fn activity(&self, actor: &Principal, page: &PageRequest) -> Result<Page<ActivityView>>;
    /// Every record on the chain, in id order, until `visit` answers
    /// false: for reconciliation after a restore, never a request path
    /// (it reads the whole family).
    fn each_record(&self, visit: &mut dyn FnMut(RecordView) -> bool) -> Result<()>;
}

/// The RocksDB implementation of the readers.
#[derive(Debug, Clone)]
pub struct IndexReader {
    db: Arc<IndexDb>,
}

fn h(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn data_type_name(code: u8) -> &'static str {
    DataType::from_code(u128::from(code)).map_or("unknown", |d| d.name())
}

struct View<'a> {
    db: &'a IndexDb,
    snap: rocksdb::Snapshot<'a>,
}

impl View<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_at(&self.snap, cf, key)
    }

    fn row<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(b) => Ok(Some(schema::decode(cf.name(), &b)?)),
        }
    }

    fn flag(&self, cf: Cf, key: &[u8]) -> Result<bool> {
        Ok(self.get(cf, key)?.is_some_and(|v| v.first() == Some(&1)))
    }

    /// The tip's header. Kept apart from the tip block so that "now" costs
    /// the same whatever that block holds (an index from before it existed
    /// gets it when migrated to schema 2: [`crate::migrate`]).
    fn tip(&self) -> Result<Option<BlockHeader>> {
        self.row(Cf::Meta, schema::meta::TIP_HEADER)
    }

    /// The burn height expiries are judged at.
    fn now(&self) -> Result<u64> {
        Ok(self.tip()?.map_or(0, |t| t.burn_block_height))
    }

    fn entry_status(c: Option<&ConsentRow>, now: u64) -> std::result::Result<(), ContractError> {
        match c {
            None => Err(ContractError::NoConsent),
            Some(c) if c.revoked_at.is_some() => Err(ContractError::ConsentRevoked),
            Some(c) if c.expires_at.is_some_and(|e| now >= e) => Err(ContractError::ConsentExpired),
            Some(_) => Ok(()),
        }
    }

    /// `check-consent`, line by line.
    fn check(
        &self,
        patient: &Principal,
        accessor: &Principal,
        dt: u8,
    ) -> Result<std::result::Result<AccessMethod, ContractError>> {
        Ok(self.check_with_direct(patient, accessor, dt)?.0)
    }

    /// [`View::check`], with `consent-status` (the direct consent) when
    /// `check-consent` got as far as evaluating it.
    #[allow(clippy::type_complexity)]
    fn check_with_direct(
        &self,
        patient: &Principal,
        accessor: &Principal,
        dt: u8,
    ) -> Result<(std::result::Result<AccessMethod, ContractError>, Option<std::result::Result<(), ContractError>>)>
    {
        let now = self.now()?;
        let Some(profile) = self.row::<PatientRow>(Cf::Patients, &principal_key(patient))? else {
            return Ok((Err(ContractError::PatientNotFound), None));
        };
        let Some(data_type) = DataType::from_code(u128::from(dt)).filter(|d| *d != DataType::AllStandard) else {
            return Ok((Err(ContractError::InvalidDataType), None));
        };
        if self.flag(Cf::Settings, schema::setting::PAUSED)? {
            return Ok((Err(ContractError::Paused), None));
        }
        if profile.deceased {
            return Ok((Err(ContractError::PatientDeceased), None));
        }
        if patient == accessor {
            return Ok((Ok(AccessMethod::SelfAccess), None));
        }
        let direct = self.consent_status(patient, accessor, data_type, now)?;
        if direct.is_ok() {
            return Ok((Ok(AccessMethod::Consent), Some(direct)));
        }
        let Some(o) = self.row::<OverrideRow>(Cf::Overrides, &key::pair(patient, accessor))? else {
            return Ok((direct.map(|()| AccessMethod::Consent), Some(direct)));
        };
        if now >= o.expires_at || !self.flag(Cf::Responders, &principal_key(accessor))? {
            return Ok((Err(ContractError::EmergencyExpired), Some(direct)));
        }
        let allowed = !data_type.is_enhanced()
            || (data_type == DataType::MentalHealth && profile.emergency_mental_health)
            || (data_type == DataType::Genetic && profile.emergency_genetic);
        let consent = if allowed { Ok(AccessMethod::Emergency) } else { Err(ContractError::EnhancedProtection) };
        Ok((consent, Some(direct)))
    }

    /// `consent-status`: the direct consent alone (the grant for this data
    /// type, or for a standard type the broad grant), with the most
    /// specific reason when neither allows.
    fn consent_status(
        &self,
        patient: &Principal,
        accessor: &Principal,
        data_type: DataType,
        now: u64,
    ) -> Result<std::result::Result<(), ContractError>> {
        let specific = self.row::<ConsentRow>(Cf::Consents, &key::consent(patient, accessor, data_type.code()))?;
        let specific = Self::entry_status(specific.as_ref(), now);
        Ok(if specific.is_ok() || data_type.is_enhanced() {
            specific
        } else {
            let broad =
                self.row::<ConsentRow>(Cf::Consents, &key::consent(patient, accessor, DataType::AllStandard.code()))?;
            let broad = Self::entry_status(broad.as_ref(), now);
            if broad.is_ok() || specific == Err(ContractError::NoConsent) {
                broad
            } else {
                specific
            }
        })
    }

    /// Everything record-management's `authorize` reads about `actor`
    /// acting on `patient`'s `data_type`.
    fn access_facts(&self, patient: &Principal, actor: &Principal, data_type: DataType) -> Result<AccessFacts> {
        let now = self.now()?;
        let (consent, direct) = self.check_with_direct(patient, actor, data_type.code())?;
        let k = principal_key(actor);
        let provider = self.row::<ProviderRow>(Cf::Providers, &k)?.map(|p| p.active);
        let access = self
            .row::<AccessRow>(Cf::Access, &key::pair(patient, actor))?
            .map(|a| ProviderAccess { level: a.level, expired: a.expires_at.is_some_and(|e| now >= e) });
        Ok(AccessFacts { burn_block_height: now, consent, direct, provider_active: provider, access })
    }

    fn scan(&self, cf: Cf, prefix: &[u8], start: &[u8]) -> impl Iterator<Item = Result<KeyValue>> + '_ {
        self.db.scan_prefix(&self.snap, cf, prefix.to_vec(), start)
    }
}

impl IndexReader {
    /// A reader over `db`.
    pub fn new(db: Arc<IndexDb>) -> Self {
        IndexReader { db }
    }

    fn view(&self) -> View<'_> {
        View { db: &self.db, snap: self.db.snapshot() }
    }
}

/// A stored record as its typed view; a code no contract version defines
/// is corruption, never a string to compare.
fn record_view(id: &RecordId, r: RecordRow) -> Result<RecordView> {
    let corrupt = |what: &str| Error::Corrupt(format!("record {id}: {what}"));
    Ok(RecordView {
        record_id: *id,
        patient: r.patient.to_string(),
        record_type: RecordType::from_code(u128::from(r.record_type)).ok_or_else(|| corrupt("record type"))?,
        data_type: DataType::from_code(u128::from(r.data_type)).ok_or_else(|| corrupt("data type"))?,
        data_hash: DataHash(r.data_hash),
        encryption_key_id: r.encryption_key_id.map(|k| h(&k)),
        confidentiality: r.confidentiality,
        created_by: r.created_by.to_string(),
        created_at: r.created_at,
        created_height: r.created_height,
        created_time: r.created_time,
        version: r.version,
        updated_by: r.updated_by.to_string(),
        updated_at: r.updated_at,
        status: RecordStatus::from_code(u128::from(r.status)).ok_or_else(|| corrupt("status"))?,
        finalized: r.finalized,
        retention_until: r.retention_until,
    })
}

impl AccessReader for IndexReader {
    fn access_facts(&self, patient: &Principal, actor: &Principal, data_type: DataType) -> Result<AccessFacts> {
        self.view().access_facts(patient, actor, data_type)
    }

    fn record_access(&self, record_id: &RecordId, actor: &Principal) -> Result<Option<(RecordState, AccessFacts)>> {
        let v = self.view();
        let Some(r) = v.row::<RecordRow>(Cf::Records, record_id.as_ref())? else { return Ok(None) };
        let corrupt = |what: &str| Error::Corrupt(format!("record {record_id}: {what}"));
        let record_type = RecordType::from_code(u128::from(r.record_type)).ok_or_else(|| corrupt("record type"))?;
        let state = RecordState {
            patient: r.patient,
            record_type,
            version: r.version,
            status: RecordStatus::from_code(u128::from(r.status)).ok_or_else(|| corrupt("status"))?,
            finalized: r.finalized,
        };
        let facts = v.access_facts(&state.patient, actor, record_type.data_type())?;
        Ok(Some((state, facts)))
    }
}

impl ChainReader for IndexReader {
    fn status(&self) -> Result<ChainStatus> {
        let v = self.view();
        let tip = v.tip()?;
        let last_burn = v
            .get(Cf::Meta, schema::meta::BURN)?
            .and_then(|b| b.get(..8).and_then(|h| h.try_into().ok()).map(u64::from_be_bytes));
        let buffered = v.scan(Cf::Orphans, &[], &[]).count();
        Ok(ChainStatus {
            tip_height: tip.as_ref().map(|t| t.height),
            tip_index_block_hash: tip.as_ref().map(|t| BlockHash(t.id)),
            tip_burn_block_height: tip.as_ref().map(|t| t.burn_block_height),
            tip_time: tip.as_ref().map(|t| t.time),
            last_burn_block_height: last_burn,
            buffered_blocks: buffered,
        })
    }

    fn transaction(&self, txid: &Txid) -> Result<Option<TxView>> {
        Ok(self.view().row::<TxRow>(Cf::Txs, txid.as_ref())?.map(|t| TxView {
            txid: *txid,
            index_block_hash: BlockHash(t.block),
            block_height: t.height,
            tx_index: t.tx_index,
            status: t.status,
            raw_result: h(&t.raw_result),
        }))
    }
}

impl ConsentReader for IndexReader {
    fn patient(&self, patient: &Principal) -> Result<Option<PatientView>> {
        Ok(self.view().row::<PatientRow>(Cf::Patients, &principal_key(patient))?.map(|p| PatientView {
            patient: patient.to_string(),
            patient_id: h(&p.patient_id),
            emergency_contact: p.emergency_contact.map(|c| c.to_string()),
            primary_physician: p.primary_physician.map(|c| c.to_string()),
            emergency_mental_health: p.emergency_mental_health,
            emergency_genetic: p.emergency_genetic,
            deceased: p.deceased,
            registered_at: p.registered_at,
            updated_at: p.updated_at,
            history_len: p.history_len,
        }))
    }

    fn patient_by_id(&self, patient_id: &[u8; 32]) -> Result<Option<String>> {
        Ok(self.view().get(Cf::PatientIds, patient_id)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn consents(&self, patient: &Principal) -> Result<Vec<ConsentView>> {
        let v = self.view();
        let now = v.now()?;
        let prefix = principal_key(patient);
        let mut out = Vec::new();
        for item in v.scan(Cf::Consents, &prefix, &prefix) {
            let (_, value) = item?;
            let c: ConsentRow = schema::decode("consents", &value)?;
            let state = match View::entry_status(Some(&c), now) {
                Ok(()) => ConsentState::Active,
                Err(ContractError::ConsentRevoked) => ConsentState::Revoked,
                Err(_) => ConsentState::Expired,
            };
            out.push(ConsentView {
                provider: c.provider.to_string(),
                data_type: data_type_name(c.data_type),
                data_type_code: c.data_type,
                granted_at: c.granted_at,
                expires_at: c.expires_at,
                revoked_at: c.revoked_at,
                seq: c.seq,
                state,
                txid: Txid(c.txid),
                block_height: c.height,
            });
        }
        Ok(out)
    }

    fn consent_history(&self, patient: &Principal, page: &PageRequest) -> Result<Page<HistoryView>> {
        let limit = page.limit()?;
        let v = self.view();
        let prefix = principal_key(patient);
        // History keys: patient ‖ seq (8).
        let start = page.cursor_key(&prefix, 8)?.unwrap_or_else(|| prefix.clone());
        let mut items = Vec::new();
        let mut next = None;
        for item in v.scan(Cf::History, &prefix, &start) {
            let (k, value) = item?;
            if items.len() == limit {
                next = Some(hex::encode(&k));
                break;
            }
            let seq =
                u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| Error::Corrupt("history key".into()))?);
            let r: HistoryRow = schema::decode("history", &value)?;
            items.push(HistoryView {
                seq,
                action: HistoryAction::from_code(u128::from(r.action)).map_or("unknown", |a| a.name()),
                actor: r.actor.to_string(),
                provider: r.provider.map(|p| p.to_string()),
                data_type: r.data_type.map(data_type_name),
                at: r.at,
                expires_at: r.expires_at,
                txid: Txid(r.txid),
                block_height: r.height,
            });
        }
        Ok(Page { items, next_cursor: next })
    }

    fn check_consent(&self, patient: &Principal, accessor: &Principal, data_type: u8) -> Result<ConsentCheck> {
        let v = self.view();
        let now = v.now()?;
        Ok(match v.check(patient, accessor, data_type)? {
            Ok(method) => {
                ConsentCheck { allowed: true, method: Some(method.name()), error: None, burn_block_height: now }
            }
            Err(e) => ConsentCheck { allowed: false, method: None, error: Some(e.into()), burn_block_height: now },
        })
    }

    fn emergency_override(&self, patient: &Principal, provider: &Principal) -> Result<Option<OverrideView>> {
        let v = self.view();
        let now = v.now()?;
        let Some(o) = v.row::<OverrideRow>(Cf::Overrides, &key::pair(patient, provider))? else { return Ok(None) };
        let credentialed = v.flag(Cf::Responders, &principal_key(provider))?;
        Ok(Some(OverrideView {
            provider: provider.to_string(),
            reason: o.reason,
            started_at: o.started_at,
            expires_at: o.expires_at,
            seq: o.seq,
            active: now < o.expires_at && credentialed,
        }))
    }
}

impl RecordReader for IndexReader {
    fn record(&self, record_id: &RecordId) -> Result<Option<RecordView>> {
        self.view().row::<RecordRow>(Cf::Records, record_id.as_ref())?.map(|r| record_view(record_id, r)).transpose()
    }

    fn each_record(&self, visit: &mut dyn FnMut(RecordView) -> bool) -> Result<()> {
        let v = self.view();
        for item in v.scan(Cf::Records, &[], &[]) {
            let (k, value) = item?;
            let id = RecordId(k.as_ref().try_into().map_err(|_| Error::Corrupt("records key".into()))?);
            let row: RecordRow = schema::decode("records", &value)?;
            if !visit(record_view(&id, row)?) {
                break;
            }
        }
        Ok(())
    }

    fn records(&self, patient: &Principal, filter: &RecordFilter, page: &PageRequest) -> Result<Page<RecordView>> {
        let limit = page.limit()?;
        let v = self.view();
        let prefix = principal_key(patient);
        // by_patient keys: patient ‖ height (8) ‖ record id (16).
        let start = match page.cursor_key(&prefix, 24)? {
            Some(c) => c,
            None => {
                let mut s = prefix.clone();
                s.extend_from_slice(&filter.from_height.unwrap_or(0).to_be_bytes());
                s
            }
        };
        let mut items = Vec::new();
        let mut next = None;
        for item in v.scan(Cf::ByPatient, &prefix, &start) {
            let (k, value) = item?;
            let rest = &k[prefix.len()..];
            if rest.len() != 24 {
                return Err(Error::Corrupt("by_patient key".into()));
            }
            let height = u64::from_be_bytes(rest[..8].try_into().map_err(|_| Error::Corrupt("by_patient key".into()))?);
            if filter.to_height.is_some_and(|t| height > t) {
                break;
            }
            let idx: PatientRecordRow = schema::decode("by_patient", &value)?;
            let keep = filter.record_type.is_none_or(|t| t.code() == idx.record_type)
                && filter.provider.as_ref().is_none_or(|p| *p == idx.created_by)
                && filter.from_time.is_none_or(|t| idx.created_time >= t)
                && filter.to_time.is_none_or(|t| idx.created_time <= t);
            if !keep {
                continue;
            }
            if items.len() == limit {
                next = Some(hex::encode(&k));
                break;
            }
            let id = RecordId(rest[8..].try_into().map_err(|_| Error::Corrupt("by_patient key".into()))?);
            let row: RecordRow = v
                .row(Cf::Records, id.as_ref())?
                .ok_or_else(|| Error::Corrupt(format!("record {id} indexed but absent")))?;
            items.push(record_view(&id, row)?);
        }
        Ok(Page { items, next_cursor: next })
    }

    fn versions(&self, record_id: &RecordId) -> Result<Vec<VersionView>> {
        let v = self.view();
        let mut out = Vec::new();
        for item in v.scan(Cf::Versions, record_id.as_ref(), record_id.as_ref()) {
            let (k, value) = item?;
            let version = u64::from_be_bytes(k[16..].try_into().map_err(|_| Error::Corrupt("versions key".into()))?);
            let r: VersionRow = schema::decode("versions", &value)?;
            out.push(VersionView {
                version,
                data_hash: DataHash(r.data_hash),
                encryption_key_id: r.encryption_key_id.map(|k| h(&k)),
                author: r.author.to_string(),
                at: r.at,
                change: ChangeKind::from_code(u128::from(r.change))
                    .ok_or_else(|| Error::Corrupt(format!("record {record_id} version {version}: change kind")))?,
                txid: Txid(r.txid),
                block_height: r.height,
                index_block_hash: BlockHash(r.block),
            });
        }
        Ok(out)
    }

    fn anchors(&self, data_hash: &DataHash) -> Result<Vec<AnchorView>> {
        let v = self.view();
        let mut out = Vec::new();
        for item in v.scan(Cf::Anchors, data_hash.as_ref(), data_hash.as_ref()) {
            let (k, value) = item?;
            let record_id = RecordId(k[32..48].try_into().map_err(|_| Error::Corrupt("anchors key".into()))?);
            let version = u64::from_be_bytes(k[48..].try_into().map_err(|_| Error::Corrupt("anchors key".into()))?);
            let r: AnchorRow = schema::decode("anchors", &value)?;
            out.push(AnchorView {
                data_hash: *data_hash,
                record_id,
                version,
                anchored_by: r.by.to_string(),
                at: r.at,
                txid: Txid(r.txid),
                block_height: r.height,
                index_block_hash: BlockHash(r.block),
            });
        }
        Ok(out)
    }

    fn batch(&self, root: &[u8; 32]) -> Result<Option<BatchView>> {
        Ok(self.view().row::<BatchRow>(Cf::Batches, root)?.map(|b| BatchView {
            root: h(root),
            submitter: b.submitter.to_string(),
            leaf_count: b.leaf_count,
            at: b.at,
            txid: Txid(b.txid),
            block_height: b.height,
        }))
    }

    fn provider(&self, provider: &Principal) -> Result<Option<ProviderView>> {
        let v = self.view();
        let k = principal_key(provider);
        let Some(p) = v.row::<ProviderRow>(Cf::Providers, &k)? else { return Ok(None) };
        Ok(Some(ProviderView {
            provider: provider.to_string(),
            credential_hash: h(&p.credential_hash),
            active: p.active,
            registered_at: p.registered_at,
            emergency_responder: v.flag(Cf::Responders, &k)?,
            anchor_operator: v.flag(Cf::Operators, &k)?,
        }))
    }

    fn provider_access(&self, patient: &Principal, provider: &Principal) -> Result<Option<AccessView>> {
        let v = self.view();
        let now = v.now()?;
        Ok(v.row::<AccessRow>(Cf::Access, &key::pair(patient, provider))?.map(|a| AccessView {
            provider: provider.to_string(),
            level: AccessLevel::from_code(u128::from(a.level)).map_or("unknown", |l| l.name()),
            granted_at: a.granted_at,
            expires_at: a.expires_at,
            active: a.expires_at.is_none_or(|e| now < e),
        }))
    }

    fn activity(&self, actor: &Principal, page: &PageRequest) -> Result<Page<ActivityView>> {
        let limit = page.limit()?;
        let v = self.view();
        let prefix = principal_key(actor);
        // Activity keys: actor ‖ height (8) ‖ tx index (4) ‖ event index (4).
        let start = page.cursor_key(&prefix, 16)?.unwrap_or_else(|| prefix.clone());
        let mut items = Vec::new();
        let mut next = None;
        for item in v.scan(Cf::Activity, &prefix, &start) {
            let (k, value) = item?;
            if items.len() == limit {
                next = Some(hex::encode(&k));
                break;
            }
            let height = u64::from_be_bytes(
                k[prefix.len()..prefix.len() + 8].try_into().map_err(|_| Error::Corrupt("activity key".into()))?,
            );
            let r: ActivityRow = schema::decode("activity", &value)?;
            items.push(ActivityView {
                event: r.event,
                patient: r.patient.map(|p| p.to_string()),
                record_id: r.record_id.map(RecordId),
                data_type: r.data_type.map(data_type_name),
                at: r.at,
                txid: Txid(r.txid),
                block_height: height,
            });
        }
        Ok(Page { items, next_cursor: next })
    }
}
