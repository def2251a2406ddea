//! Typed decoders for every `print` the contracts emit (see
//! `contracts/EVENTS.md`). Each print is a tuple with an `event` name and a
//! `schema` version; decoding is strict — a missing, mistyped or unexpected
//! field is an error — so a contract change that the decoders do not know
//! about is caught by the tests rather than silently mis-indexed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::principal::Principal;
use crate::types::{AccessLevel, AccessMethod, DataType, RecordType};
use crate::value::ClarityValue;
use crate::{ContractName, EventError};

/// The schema version these decoders read.
pub const EVENT_SCHEMA: u128 = 1;

/// An event of patient-consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[allow(missing_docs)] // Fields are documented in contracts/EVENTS.md.
pub enum ConsentEvent {
    PatientRegistered {
        patient: Principal,
        #[serde(with = "hex32")]
        patient_id: [u8; 32],
        emergency_contact: Option<Principal>,
        primary_physician: Option<Principal>,
        seq: u64,
        at: u64,
    },
    ConsentGranted {
        patient: Principal,
        provider: Principal,
        data_type: DataType,
        expires_at: Option<u64>,
        seq: u64,
        at: u64,
    },
    ConsentRevoked {
        patient: Principal,
        provider: Principal,
        data_type: DataType,
        seq: u64,
        at: u64,
    },
    PreferencesUpdated {
        patient: Principal,
        emergency_contact: Option<Principal>,
        primary_physician: Option<Principal>,
        emergency_mental_health: bool,
        emergency_genetic: bool,
        seq: u64,
        at: u64,
    },
    EmergencyOverrideStarted {
        patient: Principal,
        provider: Principal,
        reason: u8,
        expires_at: u64,
        seq: u64,
        at: u64,
    },
    EmergencyOverrideEnded {
        patient: Principal,
        provider: Principal,
        ended_by: Principal,
        seq: u64,
        at: u64,
    },
    DeceasedStatusSet {
        patient: Principal,
        deceased: bool,
        set_by: Principal,
        seq: u64,
        at: u64,
    },
    EmergencyResponderSet {
        provider: Principal,
        authorized: bool,
        at: u64,
    },
    EmergencyTimeoutSet {
        blocks: u64,
        at: u64,
    },
    PausedSet {
        paused: bool,
        at: u64,
    },
    OwnerProposed {
        proposed: Principal,
        at: u64,
    },
    OwnerChanged {
        owner: Principal,
        at: u64,
    },
}

/// Which status change a [`RecordEvent::RecordStatusChanged`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusChange {
    /// `record-finalized`.
    Finalized,
    /// `record-unlocked`.
    Unlocked,
    /// `record-archived`.
    Archived,
    /// `record-purged`.
    Purged,
}

impl StatusChange {
    /// The event name.
    pub fn event_name(self) -> &'static str {
        match self {
            StatusChange::Finalized => "record-finalized",
            StatusChange::Unlocked => "record-unlocked",
            StatusChange::Archived => "record-archived",
            StatusChange::Purged => "record-purged",
        }
    }
}

/// An event of record-management.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[allow(missing_docs)] // Fields are documented in contracts/EVENTS.md.
pub enum RecordEvent {
    RecordCreated {
        #[serde(with = "hex16")]
        record_id: [u8; 16],
        patient: Principal,
        record_type: RecordType,
        data_type: DataType,
        #[serde(with = "hex32")]
        data_hash: [u8; 32],
        #[serde(with = "opt_hex32")]
        encryption_key_id: Option<[u8; 32]>,
        confidentiality: u8,
        created_by: Principal,
        access: AccessMethod,
        retention_until: u64,
        at: u64,
    },
    RecordAccessed {
        #[serde(with = "hex16")]
        record_id: [u8; 16],
        patient: Principal,
        accessor: Principal,
        access: AccessMethod,
        version: u64,
        at: u64,
    },
    RecordUpdated {
        #[serde(with = "hex16")]
        record_id: [u8; 16],
        patient: Principal,
        version: u64,
        #[serde(with = "hex32")]
        data_hash: [u8; 32],
        #[serde(with = "opt_hex32")]
        encryption_key_id: Option<[u8; 32]>,
        updated_by: Principal,
        at: u64,
    },
    RecordRolledBack {
        #[serde(with = "hex16")]
        record_id: [u8; 16],
        patient: Principal,
        version: u64,
        target_version: u64,
        #[serde(with = "hex32")]
        data_hash: [u8; 32],
        #[serde(with = "opt_hex32")]
        encryption_key_id: Option<[u8; 32]>,
        updated_by: Principal,
        at: u64,
    },
    RecordStatusChanged {
        change: StatusChange,
        #[serde(with = "hex16")]
        record_id: [u8; 16],
        patient: Principal,
        version: u64,
        by: Principal,
        at: u64,
    },
    ProviderAccessGranted {
        patient: Principal,
        provider: Principal,
        access_level: AccessLevel,
        expires_at: Option<u64>,
        at: u64,
    },
    ProviderAccessRevoked {
        patient: Principal,
        provider: Principal,
        at: u64,
    },
    BatchAnchored {
        #[serde(with = "hex32")]
        root: [u8; 32],
        leaf_count: u64,
        submitter: Principal,
        at: u64,
    },
    AuditRootAnchored {
        log: Principal,
        tree_size: u64,
        #[serde(with = "hex32")]
        root: [u8; 32],
        at: u64,
    },
    ProviderRegistered {
        provider: Principal,
        #[serde(with = "hex32")]
        credential_hash: [u8; 32],
        at: u64,
    },
    ProviderStatusSet {
        provider: Principal,
        active: bool,
        at: u64,
    },
    ProviderCredentialSet {
        provider: Principal,
        #[serde(with = "hex32")]
        credential_hash: [u8; 32],
        at: u64,
    },
    AnchorOperatorSet {
        operator: Principal,
        authorized: bool,
        at: u64,
    },
    RetentionPeriodSet {
        blocks: u64,
        at: u64,
    },
    OwnerProposed {
        proposed: Principal,
        at: u64,
    },
    OwnerChanged {
        owner: Principal,
        at: u64,
    },
}

/// An event of either contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "contract", content = "event", rename_all = "kebab-case")]
pub enum ContractEvent {
    /// From patient-consent.
    PatientConsent(ConsentEvent),
    /// From record-management.
    RecordManagement(RecordEvent),
}

/// Every event name each contract prints, for documentation checks.
pub const CONSENT_EVENT_NAMES: &[&str] = &[
    "patient-registered",
    "consent-granted",
    "consent-revoked",
    "preferences-updated",
    "emergency-override-started",
    "emergency-override-ended",
    "deceased-status-set",
    "emergency-responder-set",
    "emergency-timeout-set",
    "paused-set",
    "owner-proposed",
    "owner-changed",
];

/// Every event name record-management prints.
pub const RECORD_EVENT_NAMES: &[&str] = &[
    "record-created",
    "record-accessed",
    "record-updated",
    "record-rolled-back",
    "record-finalized",
    "record-unlocked",
    "record-archived",
    "record-purged",
    "provider-access-granted",
    "provider-access-revoked",
    "batch-anchored",
    "audit-root-anchored",
    "provider-registered",
    "provider-status-set",
    "provider-credential-set",
    "anchor-operator-set",
    "retention-period-set",
    "owner-proposed",
    "owner-changed",
];

/// Decodes one `print` value of `contract`.
pub fn decode_print(contract: ContractName, value: &ClarityValue) -> Result<ContractEvent, EventError> {
    let ClarityValue::Tuple(map) = value else {
        return Err(EventError::NotATuple);
    };
    let mut f = Fields { event: String::new(), map, used: 2 };
    f.event = match map.get("event") {
        Some(ClarityValue::StringAscii(name)) => name.clone(),
        _ => return Err(EventError::MissingName),
    };
    match map.get("schema") {
        Some(ClarityValue::UInt(EVENT_SCHEMA)) => {}
        Some(ClarityValue::UInt(other)) => {
            return Err(EventError::UnsupportedSchema { event: f.event.clone(), schema: *other })
        }
        _ => return Err(f.wrong("schema", "uint")),
    }
    let event = match contract {
        ContractName::PatientConsent => ContractEvent::PatientConsent(decode_consent(&mut f)?),
        ContractName::RecordManagement => ContractEvent::RecordManagement(decode_record(&mut f)?),
    };
    f.finish()?;
    Ok(event)
}

/// Decodes a `print` from its `raw_value` hex, as an event observer gets it.
pub fn decode_raw_print(contract: ContractName, raw_value: &str) -> Result<ContractEvent, EventError> {
    let value = ClarityValue::from_hex(raw_value).map_err(EventError::Codec)?;
    decode_print(contract, &value)
}

fn decode_consent(f: &mut Fields<'_>) -> Result<ConsentEvent, EventError> {
    Ok(match f.event.as_str() {
        "patient-registered" => ConsentEvent::PatientRegistered {
            patient: f.principal("patient")?,
            patient_id: f.buff("patient-id")?,
            emergency_contact: f.opt_principal("emergency-contact")?,
            primary_physician: f.opt_principal("primary-physician")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "consent-granted" => ConsentEvent::ConsentGranted {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            data_type: f.code("data-type", DataType::from_code)?,
            expires_at: f.opt_uint("expires-at")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "consent-revoked" => ConsentEvent::ConsentRevoked {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            data_type: f.code("data-type", DataType::from_code)?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "preferences-updated" => ConsentEvent::PreferencesUpdated {
            patient: f.principal("patient")?,
            emergency_contact: f.opt_principal("emergency-contact")?,
            primary_physician: f.opt_principal("primary-physician")?,
            emergency_mental_health: f.bool("emergency-mental-health")?,
            emergency_genetic: f.bool("emergency-genetic")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "emergency-override-started" => ConsentEvent::EmergencyOverrideStarted {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            reason: f.uint("reason")?,
            expires_at: f.uint("expires-at")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "emergency-override-ended" => ConsentEvent::EmergencyOverrideEnded {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            ended_by: f.principal("ended-by")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "deceased-status-set" => ConsentEvent::DeceasedStatusSet {
            patient: f.principal("patient")?,
            deceased: f.bool("deceased")?,
            set_by: f.principal("set-by")?,
            seq: f.uint("seq")?,
            at: f.uint("at")?,
        },
        "emergency-responder-set" => ConsentEvent::EmergencyResponderSet {
            provider: f.principal("provider")?,
            authorized: f.bool("authorized")?,
            at: f.uint("at")?,
        },
        "emergency-timeout-set" => ConsentEvent::EmergencyTimeoutSet { blocks: f.uint("blocks")?, at: f.uint("at")? },
        "paused-set" => ConsentEvent::PausedSet { paused: f.bool("paused")?, at: f.uint("at")? },
        "owner-proposed" => ConsentEvent::OwnerProposed { proposed: f.principal("proposed")?, at: f.uint("at")? },
        "owner-changed" => ConsentEvent::OwnerChanged { owner: f.principal("owner")?, at: f.uint("at")? },
        _ => return Err(EventError::UnknownEvent(f.event.clone())),
    })
}

fn decode_record(f: &mut Fields<'_>) -> Result<RecordEvent, EventError> {
    let status_change = match f.event.as_str() {
        "record-finalized" => Some(StatusChange::Finalized),
        "record-unlocked" => Some(StatusChange::Unlocked),
        "record-archived" => Some(StatusChange::Archived),
        "record-purged" => Some(StatusChange::Purged),
        _ => None,
    };
    if let Some(change) = status_change {
        return Ok(RecordEvent::RecordStatusChanged {
            change,
            record_id: f.buff("record-id")?,
            patient: f.principal("patient")?,
            version: f.uint("version")?,
            by: f.principal("by")?,
            at: f.uint("at")?,
        });
    }
    Ok(match f.event.as_str() {
        "record-created" => RecordEvent::RecordCreated {
            record_id: f.buff("record-id")?,
            patient: f.principal("patient")?,
            record_type: f.code("record-type", RecordType::from_code)?,
            data_type: f.code("data-type", DataType::from_code)?,
            data_hash: f.buff("data-hash")?,
            encryption_key_id: f.opt_buff("encryption-key-id")?,
            confidentiality: f.uint("confidentiality")?,
            created_by: f.principal("created-by")?,
            access: f.code("access", AccessMethod::from_code)?,
            retention_until: f.uint("retention-until")?,
            at: f.uint("at")?,
        },
        "record-accessed" => RecordEvent::RecordAccessed {
            record_id: f.buff("record-id")?,
            patient: f.principal("patient")?,
            accessor: f.principal("accessor")?,
            access: f.code("access", AccessMethod::from_code)?,
            version: f.uint("version")?,
            at: f.uint("at")?,
        },
        "record-updated" => RecordEvent::RecordUpdated {
            record_id: f.buff("record-id")?,
            patient: f.principal("patient")?,
            version: f.uint("version")?,
            data_hash: f.buff("data-hash")?,
            encryption_key_id: f.opt_buff("encryption-key-id")?,
            updated_by: f.principal("updated-by")?,
            at: f.uint("at")?,
        },
        "record-rolled-back" => RecordEvent::RecordRolledBack {
            record_id: f.buff("record-id")?,
            patient: f.principal("patient")?,
            version: f.uint("version")?,
            target_version: f.uint("target-version")?,
            data_hash: f.buff("data-hash")?,
            encryption_key_id: f.opt_buff("encryption-key-id")?,
            updated_by: f.principal("updated-by")?,
            at: f.uint("at")?,
        },
        "provider-access-granted" => RecordEvent::ProviderAccessGranted {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            access_level: f.code("access-level", AccessLevel::from_code)?,
            expires_at: f.opt_uint("expires-at")?,
            at: f.uint("at")?,
        },
        "provider-access-revoked" => RecordEvent::ProviderAccessRevoked {
            patient: f.principal("patient")?,
            provider: f.principal("provider")?,
            at: f.uint("at")?,
        },
        "batch-anchored" => RecordEvent::BatchAnchored {
            root: f.buff("root")?,
            leaf_count: f.uint("leaf-count")?,
            submitter: f.principal("submitter")?,
            at: f.uint("at")?,
        },
        "audit-root-anchored" => RecordEvent::AuditRootAnchored {
            log: f.principal("log")?,
            tree_size: f.uint("tree-size")?,
            root: f.buff("root")?,
            at: f.uint("at")?,
        },
        "provider-registered" => RecordEvent::ProviderRegistered {
            provider: f.principal("provider")?,
            credential_hash: f.buff("credential-hash")?,
            at: f.uint("at")?,
        },
        "provider-status-set" => RecordEvent::ProviderStatusSet {
            provider: f.principal("provider")?,
            active: f.bool("active")?,
            at: f.uint("at")?,
        },
        "provider-credential-set" => RecordEvent::ProviderCredentialSet {
            provider: f.principal("provider")?,
            credential_hash: f.buff("credential-hash")?,
            at: f.uint("at")?,
        },
        "anchor-operator-set" => RecordEvent::AnchorOperatorSet {
            operator: f.principal("operator")?,
            authorized: f.bool("authorized")?,
            at: f.uint("at")?,
        },
        "retention-period-set" => RecordEvent::RetentionPeriodSet { blocks: f.uint("blocks")?, at: f.uint("at")? },
        "owner-proposed" => RecordEvent::OwnerProposed { proposed: f.principal("proposed")?, at: f.uint("at")? },
        "owner-changed" => RecordEvent::OwnerChanged { owner: f.principal("owner")?, at: f.uint("at")? },
        _ => return Err(EventError::UnknownEvent(f.event.clone())),
    })
}

/// Encodes an event as the contract prints it: the inverse of
/// [`decode_print`] (synthetic event streams for tests and benchmarks).
pub fn encode_print(event: &ContractEvent) -> ClarityValue {
    use ClarityValue as V;
    let p = |p: &Principal| V::Principal(p.clone());
    let op = |p: &Option<Principal>| p.as_ref().map_or(V::none(), |p| V::some(V::Principal(p.clone())));
    let u = |n: u64| V::UInt(u128::from(n));
    let ou = |n: &Option<u64>| n.map_or(V::none(), |n| V::some(V::UInt(u128::from(n))));
    let b = |b: &[u8]| V::Buffer(b.to_vec());
    let ob = |b: &Option<[u8; 32]>| b.map_or(V::none(), |b| V::some(V::Buffer(b.to_vec())));
    let code = |c: u8| V::UInt(u128::from(c));
    let (name, fields): (&str, Vec<(&str, ClarityValue)>) = match event {
        ContractEvent::PatientConsent(e) => match e {
            ConsentEvent::PatientRegistered { patient, patient_id, emergency_contact, primary_physician, seq, at } => (
                "patient-registered",
                vec![
                    ("patient", p(patient)),
                    ("patient-id", b(patient_id)),
                    ("emergency-contact", op(emergency_contact)),
                    ("primary-physician", op(primary_physician)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::ConsentGranted { patient, provider, data_type, expires_at, seq, at } => (
                "consent-granted",
                vec![
                    ("patient", p(patient)),
                    ("provider", p(provider)),
                    ("data-type", code(data_type.code())),
                    ("expires-at", ou(expires_at)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::ConsentRevoked { patient, provider, data_type, seq, at } => (
                "consent-revoked",
                vec![
                    ("patient", p(patient)),
                    ("provider", p(provider)),
                    ("data-type", code(data_type.code())),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::PreferencesUpdated {
                patient,
                emergency_contact,
                primary_physician,
                emergency_mental_health,
                emergency_genetic,
                seq,
                at,
            } => (
                "preferences-updated",
                vec![
                    ("patient", p(patient)),
                    ("emergency-contact", op(emergency_contact)),
                    ("primary-physician", op(primary_physician)),
                    ("emergency-mental-health", V::Bool(*emergency_mental_health)),
                    ("emergency-genetic", V::Bool(*emergency_genetic)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::EmergencyOverrideStarted { patient, provider, reason, expires_at, seq, at } => (
                "emergency-override-started",
                vec![
                    ("patient", p(patient)),
                    ("provider", p(provider)),
                    ("reason", code(*reason)),
                    ("expires-at", u(*expires_at)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::EmergencyOverrideEnded { patient, provider, ended_by, seq, at } => (
                "emergency-override-ended",
                vec![
                    ("patient", p(patient)),
                    ("provider", p(provider)),
                    ("ended-by", p(ended_by)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::DeceasedStatusSet { patient, deceased, set_by, seq, at } => (
                "deceased-status-set",
                vec![
                    ("patient", p(patient)),
                    ("deceased", V::Bool(*deceased)),
                    ("set-by", p(set_by)),
                    ("seq", u(*seq)),
                    ("at", u(*at)),
                ],
            ),
            ConsentEvent::EmergencyResponderSet { provider, authorized, at } => (
                "emergency-responder-set",
                vec![("provider", p(provider)), ("authorized", V::Bool(*authorized)), ("at", u(*at))],
            ),
            ConsentEvent::EmergencyTimeoutSet { blocks, at } => {
                ("emergency-timeout-set", vec![("blocks", u(*blocks)), ("at", u(*at))])
            }
            ConsentEvent::PausedSet { paused, at } => {
                ("paused-set", vec![("paused", V::Bool(*paused)), ("at", u(*at))])
            }
            ConsentEvent::OwnerProposed { proposed, at } => {
                ("owner-proposed", vec![("proposed", p(proposed)), ("at", u(*at))])
            }
            ConsentEvent::OwnerChanged { owner, at } => ("owner-changed", vec![("owner", p(owner)), ("at", u(*at))]),
        },
        ContractEvent::RecordManagement(e) => match e {
            RecordEvent::RecordCreated {
                record_id,
                patient,
                record_type,
                data_type,
                data_hash,
                encryption_key_id,
                confidentiality,
                created_by,
                access,
                retention_until,
                at,
            } => (
                "record-created",
                vec![
                    ("record-id", b(record_id)),
                    ("patient", p(patient)),
                    ("record-type", code(record_type.code())),
                    ("data-type", code(data_type.code())),
                    ("data-hash", b(data_hash)),
                    ("encryption-key-id", ob(encryption_key_id)),
                    ("confidentiality", code(*confidentiality)),
                    ("created-by", p(created_by)),
                    ("access", code(access.code())),
                    ("retention-until", u(*retention_until)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::RecordAccessed { record_id, patient, accessor, access, version, at } => (
                "record-accessed",
                vec![
                    ("record-id", b(record_id)),
                    ("patient", p(patient)),
                    ("accessor", p(accessor)),
                    ("access", code(access.code())),
                    ("version", u(*version)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::RecordUpdated {
                record_id,
                patient,
                version,
                data_hash,
                encryption_key_id,
                updated_by,
                at,
            } => (
                "record-updated",
                vec![
                    ("record-id", b(record_id)),
                    ("patient", p(patient)),
                    ("version", u(*version)),
                    ("data-hash", b(data_hash)),
                    ("encryption-key-id", ob(encryption_key_id)),
                    ("updated-by", p(updated_by)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::RecordRolledBack {
                record_id,
                patient,
                version,
                target_version,
                data_hash,
                encryption_key_id,
                updated_by,
                at,
            } => (
                "record-rolled-back",
                vec![
                    ("record-id", b(record_id)),
                    ("patient", p(patient)),
                    ("version", u(*version)),
                    ("target-version", u(*target_version)),
                    ("data-hash", b(data_hash)),
                    ("encryption-key-id", ob(encryption_key_id)),
                    ("updated-by", p(updated_by)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::RecordStatusChanged { change, record_id, patient, version, by, at } => (
                change.event_name(),
                vec![
                    ("record-id", b(record_id)),
                    ("patient", p(patient)),
                    ("version", u(*version)),
                    ("by", p(by)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::ProviderAccessGranted { patient, provider, access_level, expires_at, at } => (
                "provider-access-granted",
                vec![
                    ("patient", p(patient)),
                    ("provider", p(provider)),
                    ("access-level", code(access_level.code())),
                    ("expires-at", ou(expires_at)),
                    ("at", u(*at)),
                ],
            ),
            RecordEvent::ProviderAccessRevoked { patient, provider, at } => {
                ("provider-access-revoked", vec![("patient", p(patient)), ("provider", p(provider)), ("at", u(*at))])
            }
            RecordEvent::BatchAnchored { root, leaf_count, submitter, at } => (
                "batch-anchored",
                vec![("root", b(root)), ("leaf-count", u(*leaf_count)), ("submitter", p(submitter)), ("at", u(*at))],
            ),
            RecordEvent::AuditRootAnchored { log, tree_size, root, at } => (
                "audit-root-anchored",
                vec![("log", p(log)), ("tree-size", u(*tree_size)), ("root", b(root)), ("at", u(*at))],
            ),
            RecordEvent::ProviderRegistered { provider, credential_hash, at } => (
                "provider-registered",
                vec![("provider", p(provider)), ("credential-hash", b(credential_hash)), ("at", u(*at))],
            ),
            RecordEvent::ProviderStatusSet { provider, active, at } => {
                ("provider-status-set", vec![("provider", p(provider)), ("active", V::Bool(*active)), ("at", u(*at))])
            }
            RecordEvent::ProviderCredentialSet { provider, credential_hash, at } => (
                "provider-credential-set",
                vec![("provider", p(provider)), ("credential-hash", b(credential_hash)), ("at", u(*at))],
            ),
            RecordEvent::AnchorOperatorSet { operator, authorized, at } => (
                "anchor-operator-set",
                vec![("operator", p(operator)), ("authorized", V::Bool(*authorized)), ("at", u(*at))],
            ),
            RecordEvent::RetentionPeriodSet { blocks, at } => {
                ("retention-period-set", vec![("blocks", u(*blocks)), ("at", u(*at))])
            }
            RecordEvent::OwnerProposed { proposed, at } => {
                ("owner-proposed", vec![("proposed", p(proposed)), ("at", u(*at))])
            }
            RecordEvent::OwnerChanged { owner, at } => ("owner-changed", vec![("owner", p(owner)), ("at", u(*at))]),
        },
    };
    let mut tuple = vec![("event", V::StringAscii(name.to_string())), ("schema", V::UInt(EVENT_SCHEMA))];
    tuple.extend(fields);
    V::tuple(tuple)
}

/// Typed, strict access to a print tuple's fields.
struct Fields<'a> {
    event: String,
    map: &'a BTreeMap<String, ClarityValue>,
    /// How many fields were read (starting with `event` and `schema`).
    used: usize,
}

impl Fields<'_> {
    fn get(&mut self, field: &'static str) -> Result<&ClarityValue, EventError> {
        self.used += 1;
        let event = &self.event;
        self.map.get(field).ok_or_else(|| EventError::MissingField { event: event.clone(), field })
    }

    fn wrong(&self, field: &'static str, expected: &'static str) -> EventError {
        EventError::WrongType { event: self.event.clone(), field, expected }
    }

    fn uint<T: TryFrom<u128>>(&mut self, field: &'static str) -> Result<T, EventError> {
        match self.get(field)? {
            ClarityValue::UInt(u) => T::try_from(*u).map_err(|_| self.wrong(field, "uint in range")),
            _ => Err(self.wrong(field, "uint")),
        }
    }

    fn opt_uint(&mut self, field: &'static str) -> Result<Option<u64>, EventError> {
        match self.get(field)? {
            ClarityValue::Optional(None) => Ok(None),
            ClarityValue::Optional(Some(inner)) => match **inner {
                ClarityValue::UInt(u) => u64::try_from(u).map(Some).map_err(|_| self.wrong(field, "uint in range")),
                _ => Err(self.wrong(field, "optional uint")),
            },
            _ => Err(self.wrong(field, "optional uint")),
        }
    }

    fn code<T>(&mut self, field: &'static str, from: fn(u128) -> Option<T>) -> Result<T, EventError> {
        match self.get(field)? {
            ClarityValue::UInt(u) => from(*u).ok_or_else(|| self.wrong(field, "known code")),
            _ => Err(self.wrong(field, "uint")),
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, EventError> {
        match self.get(field)? {
            ClarityValue::Bool(b) => Ok(*b),
            _ => Err(self.wrong(field, "bool")),
        }
    }

    fn principal(&mut self, field: &'static str) -> Result<Principal, EventError> {
        match self.get(field)? {
            ClarityValue::Principal(p) => Ok(p.clone()),
            _ => Err(self.wrong(field, "principal")),
        }
    }

    fn opt_principal(&mut self, field: &'static str) -> Result<Option<Principal>, EventError> {
        match self.get(field)? {
            ClarityValue::Optional(None) => Ok(None),
            ClarityValue::Optional(Some(inner)) => match &**inner {
                ClarityValue::Principal(p) => Ok(Some(p.clone())),
                _ => Err(self.wrong(field, "optional principal")),
            },
            _ => Err(self.wrong(field, "optional principal")),
        }
    }

    fn buff<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EventError> {
        match self.get(field)? {
            ClarityValue::Buffer(b) => {
                <[u8; N]>::try_from(b.as_slice()).map_err(|_| self.wrong(field, "fixed-size buff"))
            }
            _ => Err(self.wrong(field, "buff")),
        }
    }

    fn opt_buff<const N: usize>(&mut self, field: &'static str) -> Result<Option<[u8; N]>, EventError> {
        match self.get(field)? {
            ClarityValue::Optional(None) => Ok(None),
            ClarityValue::Optional(Some(inner)) => match &**inner {
                ClarityValue::Buffer(b) => <[u8; N]>::try_from(b.as_slice())
                    .map(Some)
                    .map_err(|_| self.wrong(field, "optional fixed-size buff")),
                _ => Err(self.wrong(field, "optional buff")),
            },
            _ => Err(self.wrong(field, "optional buff")),
        }
    }

    /// Every field of the tuple must have been read.
    fn finish(&self) -> Result<(), EventError> {
        if self.used == self.map.len() {
            return Ok(());
        }
        Err(EventError::UnexpectedFields { event: self.event.clone(), fields: self.map.len(), known: self.used })
    }
}

macro_rules! hex_serde {
    ($module:ident, $n:literal) => {
        mod $module {
            pub fn serialize<S: serde::Serializer>(bytes: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(bytes))
            }
        }
    };
}
hex_serde!(hex16, 16);
hex_serde!(hex32, 32);

mod opt_hex32 {
    pub fn serialize<S: serde::Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
}
