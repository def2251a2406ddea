//! Derived state: what each contract event does to the mirrored maps.
//!
//! Each arm mirrors the contract function that printed the event (the
//! contracts print one event per state change, with every field needed to
//! replay it), so after any sequence of blocks the derived families equal
//! the contracts' maps — a test compares them with the contracts'
//! read-only functions on random histories.

use medanchor_contracts::events::{ConsentEvent, RecordEvent, StatusChange};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{ChangeKind, HistoryAction, RecordStatus};
use medanchor_contracts::ContractEvent;

use crate::schema::{self, key, principal_key, Cf};
use crate::schema::{
    AccessRow, ActivityRow, AnchorRow, AuditRootRow, BatchRow, ConsentRow, HistoryRow, OverrideRow, PatientRecordRow,
    PatientRow, ProviderRow, RecordRow, VersionRow,
};
use crate::store::Stage;
use crate::{Error, Result};

/// Where an event happened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub height: u64,
    pub block: [u8; 32],
    pub time: u64,
    pub txid: [u8; 32],
    pub tx_index: u32,
    pub event_index: u32,
}

fn missing(what: &str, detail: impl std::fmt::Display) -> Error {
    // The contracts only print after the state they describe exists, so a
    // missing row means the index missed a block: refuse rather than guess.
    Error::Invariant(format!("{what} {detail} is not indexed; the event stream has a gap"))
}

fn activity(stage: &mut Stage<'_>, ctx: &Ctx, actor: &Principal, row: ActivityRow) -> Result<()> {
    stage.put_row(Cf::Activity, key::activity(actor, ctx.height, ctx.tx_index, ctx.event_index), &row)
}

fn act(
    ctx: &Ctx,
    event: &str,
    patient: Option<&Principal>,
    record: Option<[u8; 16]>,
    dt: Option<u8>,
    at: u64,
) -> ActivityRow {
    ActivityRow {
        event: event.to_string(),
        patient: patient.cloned(),
        record_id: record,
        data_type: dt,
        at,
        txid: ctx.txid,
    }
}

/// Appends to a patient's history and bumps `history_len` / `updated_at`.
#[allow(clippy::too_many_arguments)]
fn history(
    stage: &mut Stage<'_>,
    ctx: &Ctx,
    patient: &Principal,
    profile: &mut PatientRow,
    seq: u64,
    action: HistoryAction,
    actor: &Principal,
    provider: Option<&Principal>,
    data_type: Option<u8>,
    expires_at: Option<u64>,
    at: u64,
) -> Result<()> {
    profile.history_len = seq + 1;
    profile.updated_at = at;
    let row = HistoryRow {
        action: action.code(),
        actor: actor.clone(),
        provider: provider.cloned(),
        data_type,
        at,
        expires_at,
        txid: ctx.txid,
        height: ctx.height,
    };
    stage.put_row(Cf::History, key::history(patient, seq), &row)
}

fn profile(stage: &Stage<'_>, patient: &Principal) -> Result<PatientRow> {
    stage.row(Cf::Patients, &principal_key(patient))?.ok_or_else(|| missing("patient", patient))
}

fn put_profile(stage: &mut Stage<'_>, patient: &Principal, row: &PatientRow) -> Result<()> {
    stage.put_row(Cf::Patients, principal_key(patient), row)
}

/// Applies one decoded event.
pub(crate) fn apply(stage: &mut Stage<'_>, ctx: &Ctx, event: &ContractEvent) -> Result<()> {
    match event {
        ContractEvent::PatientConsent(e) => consent(stage, ctx, e),
        ContractEvent::RecordManagement(e) => record(stage, ctx, e),
    }
}

fn consent(stage: &mut Stage<'_>, ctx: &Ctx, event: &ConsentEvent) -> Result<()> {
    use ConsentEvent as E;
    match event {
        E::PatientRegistered { patient, patient_id, emergency_contact, primary_physician, seq, at } => {
            let mut row = PatientRow {
                patient_id: *patient_id,
                emergency_contact: emergency_contact.clone(),
                primary_physician: primary_physician.clone(),
                emergency_mental_health: false,
                emergency_genetic: false,
                deceased: false,
                registered_at: *at,
                updated_at: *at,
                history_len: 0,
            };
            history(stage, ctx, patient, &mut row, *seq, HistoryAction::Registered, patient, None, None, None, *at)?;
            put_profile(stage, patient, &row)?;
            stage.put(Cf::PatientIds, patient_id.to_vec(), patient.to_string().into_bytes())?;
            activity(stage, ctx, patient, act(ctx, "patient-registered", Some(patient), None, None, *at))
        }
        E::ConsentGranted { patient, provider, data_type, expires_at, seq, at } => {
            let mut row = profile(stage, patient)?;
            let dt = data_type.code();
            let consent = ConsentRow {
                provider: provider.clone(),
                data_type: dt,
                granted_at: *at,
                expires_at: *expires_at,
                revoked_at: None,
                seq: *seq,
                txid: ctx.txid,
                height: ctx.height,
            };
            stage.put_row(Cf::Consents, key::consent(patient, provider, dt), &consent)?;
            history(
                stage,
                ctx,
                patient,
                &mut row,
                *seq,
                HistoryAction::Granted,
                patient,
                Some(provider),
                Some(dt),
                *expires_at,
                *at,
            )?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, patient, act(ctx, "consent-granted", Some(patient), None, Some(dt), *at))
        }
        E::ConsentRevoked { patient, provider, data_type, seq, at } => {
            let mut row = profile(stage, patient)?;
            let dt = data_type.code();
            let k = key::consent(patient, provider, dt);
            let mut consent: ConsentRow = stage.row(Cf::Consents, &k)?.ok_or_else(|| missing("consent of", patient))?;
            consent.revoked_at = Some(*at);
            stage.put_row(Cf::Consents, k, &consent)?;
            history(
                stage,
                ctx,
                patient,
                &mut row,
                *seq,
                HistoryAction::Revoked,
                patient,
                Some(provider),
                Some(dt),
                None,
                *at,
            )?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, patient, act(ctx, "consent-revoked", Some(patient), None, Some(dt), *at))
        }
        E::PreferencesUpdated {
            patient,
            emergency_contact,
            primary_physician,
            emergency_mental_health,
            emergency_genetic,
            seq,
            at,
        } => {
            let mut row = profile(stage, patient)?;
            row.emergency_contact = emergency_contact.clone();
            row.primary_physician = primary_physician.clone();
            row.emergency_mental_health = *emergency_mental_health;
            row.emergency_genetic = *emergency_genetic;
            history(
                stage,
                ctx,
                patient,
                &mut row,
                *seq,
                HistoryAction::PreferencesUpdated,
                patient,
                None,
                None,
                None,
                *at,
            )?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, patient, act(ctx, "preferences-updated", Some(patient), None, None, *at))
        }
        E::EmergencyOverrideStarted { patient, provider, reason, expires_at, seq, at } => {
            let mut row = profile(stage, patient)?;
            let o = OverrideRow { reason: *reason, started_at: *at, expires_at: *expires_at, seq: *seq };
            stage.put_row(Cf::Overrides, key::pair(patient, provider), &o)?;
            history(
                stage,
                ctx,
                patient,
                &mut row,
                *seq,
                HistoryAction::EmergencyStarted,
                provider,
                Some(provider),
                None,
                Some(*expires_at),
                *at,
            )?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, provider, act(ctx, "emergency-override-started", Some(patient), None, None, *at))
        }
        E::EmergencyOverrideEnded { patient, provider, ended_by, seq, at } => {
            let mut row = profile(stage, patient)?;
            stage.delete(Cf::Overrides, key::pair(patient, provider))?;
            history(
                stage,
                ctx,
                patient,
                &mut row,
                *seq,
                HistoryAction::EmergencyEnded,
                ended_by,
                Some(provider),
                None,
                None,
                *at,
            )?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, ended_by, act(ctx, "emergency-override-ended", Some(patient), None, None, *at))
        }
        E::DeceasedStatusSet { patient, deceased, set_by, seq, at } => {
            let mut row = profile(stage, patient)?;
            row.deceased = *deceased;
            history(stage, ctx, patient, &mut row, *seq, HistoryAction::DeceasedSet, set_by, None, None, None, *at)?;
            put_profile(stage, patient, &row)?;
            activity(stage, ctx, set_by, act(ctx, "deceased-status-set", Some(patient), None, None, *at))
        }
        E::EmergencyResponderSet { provider, authorized, .. } => {
            stage.put(Cf::Responders, principal_key(provider), vec![u8::from(*authorized)])
        }
        E::EmergencyTimeoutSet { blocks, .. } => {
            stage.put(Cf::Settings, schema::setting::EMERGENCY_TIMEOUT.to_vec(), blocks.to_be_bytes().to_vec())
        }
        E::PausedSet { paused, .. } => {
            stage.put(Cf::Settings, schema::setting::PAUSED.to_vec(), vec![u8::from(*paused)])
        }
        E::OwnerProposed { .. } => Ok(()),
        E::OwnerChanged { owner, .. } => {
            stage.put(Cf::Settings, schema::setting::CONSENT_OWNER.to_vec(), owner.to_string().into_bytes())
        }
    }
}

fn record_row(stage: &Stage<'_>, id: &[u8; 16]) -> Result<RecordRow> {
    stage.row(Cf::Records, id)?.ok_or_else(|| missing("record", hex::encode(id)))
}

#[allow(clippy::too_many_arguments)]
fn new_version(
    stage: &mut Stage<'_>,
    ctx: &Ctx,
    record_id: &[u8; 16],
    version: u64,
    data_hash: &[u8; 32],
    encryption_key_id: &Option<[u8; 32]>,
    author: &Principal,
    change: ChangeKind,
    at: u64,
) -> Result<()> {
    let row = VersionRow {
        data_hash: *data_hash,
        encryption_key_id: *encryption_key_id,
        author: author.clone(),
        at,
        change: change.code(),
        txid: ctx.txid,
        height: ctx.height,
        block: ctx.block,
    };
    stage.put_row(Cf::Versions, key::version(record_id, version), &row)
}

fn anchor(
    stage: &mut Stage<'_>,
    ctx: &Ctx,
    hash: &[u8; 32],
    id: &[u8; 16],
    version: u64,
    by: &Principal,
    at: u64,
) -> Result<()> {
    let row = AnchorRow { by: by.clone(), at, txid: ctx.txid, height: ctx.height, block: ctx.block };
    stage.put_row(Cf::Anchors, key::anchor(hash, id, version), &row)
}

fn record(stage: &mut Stage<'_>, ctx: &Ctx, event: &RecordEvent) -> Result<()> {
    use RecordEvent as E;
    match event {
        E::RecordCreated {
            record_id,
            patient,
            record_type,
            data_type,
            data_hash,
            encryption_key_id,
            confidentiality,
            created_by,
            retention_until,
            at,
            ..
        } => {
            let row = RecordRow {
                patient: patient.clone(),
                record_type: record_type.code(),
                data_type: data_type.code(),
                data_hash: *data_hash,
                encryption_key_id: *encryption_key_id,
                confidentiality: *confidentiality,
                created_by: created_by.clone(),
                created_at: *at,
                created_height: ctx.height,
                created_time: ctx.time,
                version: 1,
                updated_by: created_by.clone(),
                updated_at: *at,
                status: RecordStatus::Active.code(),
                finalized: false,
                retention_until: *retention_until,
            };
            stage.put_row(Cf::Records, record_id.to_vec(), &row)?;
            new_version(stage, ctx, record_id, 1, data_hash, encryption_key_id, created_by, ChangeKind::Created, *at)?;
            let index = PatientRecordRow {
                record_type: record_type.code(),
                created_by: created_by.clone(),
                created_time: ctx.time,
            };
            stage.put_row(Cf::ByPatient, key::by_patient(patient, ctx.height, record_id), &index)?;
            anchor(stage, ctx, data_hash, record_id, 1, created_by, *at)?;
            let a = act(ctx, "record-created", Some(patient), Some(*record_id), Some(data_type.code()), *at);
            activity(stage, ctx, created_by, a)
        }
        E::RecordAccessed { record_id, patient, accessor, at, .. } => {
            let row = record_row(stage, record_id)?;
            let a = act(ctx, "record-accessed", Some(patient), Some(*record_id), Some(row.data_type), *at);
            activity(stage, ctx, accessor, a)
        }
        E::RecordUpdated { record_id, patient, version, data_hash, encryption_key_id, updated_by, at }
        | E::RecordRolledBack { record_id, patient, version, data_hash, encryption_key_id, updated_by, at, .. } => {
            let rolled_back = matches!(event, E::RecordRolledBack { .. });
            let mut row = record_row(stage, record_id)?;
            row.data_hash = *data_hash;
            row.encryption_key_id = *encryption_key_id;
            row.version = *version;
            row.updated_by = updated_by.clone();
            row.updated_at = *at;
            stage.put_row(Cf::Records, record_id.to_vec(), &row)?;
            let change = if rolled_back { ChangeKind::RolledBack } else { ChangeKind::Updated };
            new_version(stage, ctx, record_id, *version, data_hash, encryption_key_id, updated_by, change, *at)?;
            // A rollback makes an old hash current again; the contract
            // keeps that hash's original anchor entry, and so do we.
            if !rolled_back {
                anchor(stage, ctx, data_hash, record_id, *version, updated_by, *at)?;
            }
            let name = if rolled_back { "record-rolled-back" } else { "record-updated" };
            let a = act(ctx, name, Some(patient), Some(*record_id), Some(row.data_type), *at);
            activity(stage, ctx, updated_by, a)
        }
        E::RecordStatusChanged { change, record_id, patient, by, at, .. } => {
            let mut row = record_row(stage, record_id)?;
            match change {
                StatusChange::Finalized => row.finalized = true,
                StatusChange::Unlocked => row.finalized = false,
                StatusChange::Archived => row.status = RecordStatus::Archived.code(),
                StatusChange::Purged => row.status = RecordStatus::Purged.code(),
            }
            stage.put_row(Cf::Records, record_id.to_vec(), &row)?;
            let a = act(ctx, change.event_name(), Some(patient), Some(*record_id), Some(row.data_type), *at);
            activity(stage, ctx, by, a)
        }
        E::ProviderAccessGranted { patient, provider, access_level, expires_at, at } => {
            let row = AccessRow { level: access_level.code(), granted_at: *at, expires_at: *expires_at };
            stage.put_row(Cf::Access, key::pair(patient, provider), &row)?;
            activity(stage, ctx, patient, act(ctx, "provider-access-granted", Some(patient), None, None, *at))
        }
        E::ProviderAccessRevoked { patient, provider, at } => {
            stage.delete(Cf::Access, key::pair(patient, provider))?;
            activity(stage, ctx, patient, act(ctx, "provider-access-revoked", Some(patient), None, None, *at))
        }
        E::BatchAnchored { root, leaf_count, submitter, at } => {
            let row = BatchRow {
                submitter: submitter.clone(),
                leaf_count: *leaf_count,
                at: *at,
                txid: ctx.txid,
                height: ctx.height,
            };
            stage.put_row(Cf::Batches, root.to_vec(), &row)?;
            activity(stage, ctx, submitter, act(ctx, "batch-anchored", None, None, None, *at))
        }
        E::AuditRootAnchored { log, tree_size, root, at } => {
            let row = AuditRootRow { root: *root, at: *at, txid: ctx.txid, height: ctx.height };
            stage.put_row(Cf::AuditRoots, key::audit_root(log, *tree_size), &row)?;
            activity(stage, ctx, log, act(ctx, "audit-root-anchored", None, None, None, *at))
        }
        E::ProviderRegistered { provider, credential_hash, at } => {
            let row = ProviderRow { credential_hash: *credential_hash, active: true, registered_at: *at };
            stage.put_row(Cf::Providers, principal_key(provider), &row)
        }
        E::ProviderStatusSet { provider, active, .. } => {
            let k = principal_key(provider);
            let mut row: ProviderRow = stage.row(Cf::Providers, &k)?.ok_or_else(|| missing("provider", provider))?;
            row.active = *active;
            stage.put_row(Cf::Providers, k, &row)
        }
        E::ProviderCredentialSet { provider, credential_hash, .. } => {
            let k = principal_key(provider);
            let mut row: ProviderRow = stage.row(Cf::Providers, &k)?.ok_or_else(|| missing("provider", provider))?;
            row.credential_hash = *credential_hash;
            stage.put_row(Cf::Providers, k, &row)
        }
        E::AnchorOperatorSet { operator, authorized, .. } => {
            stage.put(Cf::Operators, principal_key(operator), vec![u8::from(*authorized)])
        }
        E::RetentionPeriodSet { blocks, .. } => {
            stage.put(Cf::Settings, schema::setting::RETENTION.to_vec(), blocks.to_be_bytes().to_vec())
        }
        E::OwnerProposed { .. } => Ok(()),
        E::OwnerChanged { owner, .. } => {
            stage.put(Cf::Settings, schema::setting::RECORDS_OWNER.to_vec(), owner.to_string().into_bytes())
        }
    }
}
