//! Verification routes: the API's own ("trust-us") view of a record's
//! anchor, the raw ciphertext for independent checking, and the audit log's
//! on-chain identity.
//!
//! `GET /v1/verify/record/{id}` and `GET /v1/verify/hash/{sha256}` are a
//! convenience: they report what this API believes (the stored ciphertext
//! hashed again from the blob store, the indexer's anchor), so a client
//! that trusts the API need not read the chain. A client that does not
//! trusts none of it: `medanchor verify` fetches the ciphertext from
//! `GET /v1/verify/record/{id}/blob`, hashes it itself and reads the
//! anchor from a node of its choice.
//!
//! The two views need no session: they reveal hashes, ids and what the
//! chain already shows. A signed-in caller's calls are appended to the
//! audit log (`verify.record`, `verify.hash`); anonymous ones are not — an
//! anonymous caller must not be able to grow a log that can never be
//! pruned. The ciphertext (`verify.blob`) needs a session and is released
//! only to auditors, admins, the patient and whoever may read the record
//! under the one authorization rule; every attempt is audited.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_contracts::{ContractName, DataHash, RecordId};

use super::records::VersionQuery;
use super::{record_id_arg, with_request_id, AppState, Caller};
use crate::db::{AnchorStatus, RecordMeta};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{
    ApiAnchorState, ApiCopy, AuditAnchor, BlobState, BlobView, CheckpointKey, HashVerdict, IndexedChainView,
    RecordVerdict, VerifyHash, VerifyRecord,
};
use medanchor_service::evidence::{RecordEvidence, StoredBlob, StoredState};

/// What every trust-us answer says about itself.
const TRUST_US: &str = "trust-us: this is the API's own view (its blob store and its indexer); \
     to verify without trusting the API, run `medanchor verify record` against a node you choose";

/// The caller's role, for the audit entry (verifying needs none).
async fn role(s: &AppState, caller: &Caller) -> ApiResult<String> {
    let Some(p) = caller.principal.clone() else { return Ok("anonymous".into()) };
    let s2 = s.clone();
    let role = tokio::task::spawn_blocking(move || s2.role_of(&p)).await.map_err(ApiError::internal)??;
    Ok(role.to_string())
}

/// Appends the audit entry of a verification call.
async fn audit(
    s: &AppState,
    caller: &Caller,
    action: &str,
    record: Option<(&RecordId, Option<u64>)>,
    meta: Option<&RecordMeta>,
    failure: Option<String>,
) -> ApiResult<()> {
    if caller.principal.is_none() {
        return Ok(());
    }
    let role = role(s, caller).await?;
    let mut entry = caller.entry(&role, action);
    entry.record_id = record.map(|(id, _)| id.bare_hex());
    entry.version = record.and_then(|(_, v)| v);
    if let Some(m) = meta {
        entry.patient = Some(m.patient.clone());
        entry.record_id = Some(m.record_id.bare_hex());
        entry.version = Some(m.version);
    }
    if let Some(reason) = failure {
        entry.outcome = "error".into();
        entry.reason = Some(reason);
    }
    s.audit().append(entry).await.map_err(ApiError::internal)?;
    Ok(())
}

/// The version asked for (or the latest); a miss is audited under
/// `action` before it is answered.
async fn lookup(
    s: &AppState,
    caller: &Caller,
    action: &str,
    id: &RecordId,
    version: Option<u64>,
) -> ApiResult<RecordMeta> {
    let found = s.version_or_latest(id, version);
    if found.is_err() && caller.principal.is_some() {
        // Audited as a refusal (`denied`, not-found), as every lookup of
        // a record this tenant does not hold is.
        let mut entry = caller.entry(&role(s, caller).await?, action);
        entry.record_id = Some(id.bare_hex());
        entry.version = version;
        return Ok(s.audited(entry, found).await?);
    }
    Ok(found?)
}

/// The stored ciphertext, hashed again, as the document shows it.
fn blob_view(b: StoredBlob) -> BlobView {
    let state = match b.state {
        StoredState::Present => BlobState::Present,
        StoredState::Missing => BlobState::Missing,
        StoredState::Corrupt => BlobState::Corrupt,
        StoredState::Unreadable => BlobState::Unreadable,
    };
    BlobView { state, matches: b.matches(), sha256: b.sha256, size: b.size, detail: b.detail }
}

/// The API's own view of a record's anchor (trust-us).
#[utoipa::path(
    get,
    path = "/v1/verify/record/{id}",
    tag = "verify",
    security((), ("bearer" = [])),
    summary = "The API's own view of a record's anchor (trust-us)",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("version" = Option<u64>, Query, minimum = 1, format = "uint64", maximum = 18446744073709551615u64, description = "A version (default: the latest)"),
    ),
    responses(
        (status = 200, description = "The verdict and what it rests on", body = crate::openapi::VerifyRecord),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(super) async fn verify_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    let id = record_id_arg(&id)?;
    let meta = lookup(&s, &caller, "verify.record", &id, q.version).await?;
    let (s2, m2) = (s.clone(), meta.clone());
    let evidence = tokio::task::spawn_blocking(move || s2.record_evidence(&m2)).await.map_err(ApiError::internal)??;
    // Stored data that does not match: audited as an integrity failure,
    // which raises the tampering alert.
    let tampered = evidence.tampered(&meta);
    let RecordEvidence { blob, onchain, anchors } = evidence;
    let blob = blob_view(blob);
    let verdict = match (&onchain, blob.state) {
        (_, BlobState::Missing) => RecordVerdict::BlobMissing,
        (_, BlobState::Unreadable) => RecordVerdict::BlobUnreadable,
        (_, BlobState::Corrupt) => RecordVerdict::BlobCorrupt,
        (Some(v), BlobState::Present) if v.data_hash == meta.data_hash => RecordVerdict::Anchored,
        (Some(_), BlobState::Present) => RecordVerdict::Mismatch,
        (None, BlobState::Present) => match meta.status {
            AnchorStatus::Pending => RecordVerdict::Pending,
            AnchorStatus::Failed => RecordVerdict::Failed,
            AnchorStatus::Anchored => RecordVerdict::NotAnchored,
        },
    };
    debug_assert_eq!(tampered, matches!(verdict, RecordVerdict::BlobCorrupt | RecordVerdict::Mismatch));
    audit(&s, &caller, "verify.record", None, Some(&meta), tampered.then(|| "integrity-failure".to_string())).await?;
    let body = VerifyRecord {
        trust: TRUST_US,
        verdict,
        record_id: meta.record_id.bare_hex(),
        version: meta.version,
        data_hash: meta.data_hash,
        hashed: "SHA-256 of the stored ciphertext blob (nonce ‖ AES-256-GCM ciphertext ‖ tag)",
        api: ApiAnchorState {
            status: meta.status,
            txid: meta.txid,
            block_height: meta.block_height,
            index_block_hash: meta.index_block_hash,
            failure: meta.failure,
        },
        blob,
        chain: IndexedChainView {
            source: "the API's indexer".into(),
            contract: format!("{}.{}", s.config().contracts, ContractName::RecordManagement.name()),
            version: onchain,
            anchors,
        },
    };
    Ok(with_request_id(Json(body).into_response(), &caller.request_id))
}

/// Who anchored this data hash (trust-us).
#[utoipa::path(
    get,
    path = "/v1/verify/hash/{sha256}",
    tag = "verify",
    security((), ("bearer" = [])),
    summary = "Who anchored this data hash (trust-us)",
    params(
        ("sha256" = medanchor_contracts::DataHash, Path, description = "32 bytes of hex"),
    ),
    responses(
        (status = 200, description = "The anchors and the API's copy", body = crate::openapi::VerifyHash),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::ServerFault,
    )
)]
pub(super) async fn verify_hash(
    State(s): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let hash: DataHash = hash.parse().map_err(|_| {
        ApiError::bad("invalid-hash", format!("{} is not a SHA-256 (32 bytes of hex)", crate::error::echo(&hash)))
    })?;
    let s2 = s.clone();
    let (anchors, held) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let anchors = s2.chain().anchors(&hash).map_err(ApiError::internal)?;
        // The first anchor is the one `get-anchor` names; a rollback
        // re-uses a hash without a new anchor entry.
        let meta = match anchors.first() {
            Some(a) => s2.db().record(&a.record_id, a.version).map_err(ApiError::internal)?,
            None => None,
        };
        let held = meta.map(|m| {
            let blob = blob_view(s2.stored_blob(&hash));
            (m, blob)
        });
        Ok((anchors, held))
    })
    .await
    .map_err(ApiError::internal)??;
    let record = anchors.first().map(|a| (&a.record_id, Some(a.version)));
    audit(&s, &caller, "verify.hash", record, held.as_ref().map(|(m, _)| m), None).await?;
    let body = VerifyHash {
        trust: TRUST_US,
        verdict: if anchors.is_empty() { HashVerdict::NotAnchored } else { HashVerdict::Anchored },
        data_hash: hash,
        api_copy: held.map(|(m, blob)| ApiCopy {
            record_id: m.record_id.bare_hex(),
            version: m.version,
            status: m.status,
            blob,
        }),
        anchors,
    };
    Ok(with_request_id(Json(body).into_response(), &caller.request_id))
}

/// The raw ciphertext, to hash independently.
#[utoipa::path(
    get,
    path = "/v1/verify/record/{id}/blob",
    tag = "verify",
    description = "Auditors, admins, the patient, and callers the chain lets read the record.",
    security(("bearer" = [])),
    summary = "The raw ciphertext, to hash independently",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("version" = Option<u64>, Query, minimum = 1, format = "uint64", maximum = 18446744073709551615u64, description = "A version (default: the latest)"),
    ),
    responses(
        (status = 200, description = "The stored ciphertext blob", body = crate::openapi::Binary, content_type = "application/octet-stream", headers(("x-record-id" = String), ("x-record-version" = u64), ("x-data-hash" = String))),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(super) async fn record_blob(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let (meta, bytes) = s.ciphertext(&caller, &id, q.version).await?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    for (name, value) in [
        ("x-record-id", meta.record_id.to_string()),
        ("x-record-version", meta.version.to_string()),
        ("x-data-hash", meta.data_hash.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(with_request_id(response, &caller.request_id))
}

/// The audit log's on-chain identity and what the anchoring task last saw.
#[utoipa::path(
    get,
    path = "/v1/audit/anchor",
    tag = "audit",
    summary = "The audit log's on-chain identity",
    responses(
        (status = 200, description = "The anchoring state and checkpoint key", body = crate::openapi::AuditAnchor),
        crate::openapi::errors::ServerFault,
    )
)]
pub(super) async fn audit_anchor(State(s): State<AppState>) -> ApiResult<Json<AuditAnchor>> {
    let record = crate::anchoring::anchor_record(s.db()).map_err(ApiError::internal)?;
    let mut body = AuditAnchor {
        anchoring: record.is_some(),
        log: None,
        contract: format!("{}.{}", s.config().contracts, ContractName::RecordManagement.name()),
        size: s.audit().size().map_err(ApiError::internal)?,
        checkpoint: CheckpointKey {
            origin: format!("{}/audit", s.config().domain),
            key_name: s.config().domain.clone(),
            public_key: hex::encode(s.checkpoint_key().verifying_key().as_bytes()),
            algorithm: "Ed25519 (C2SP signed-note)".into(),
            url: "/v1/audit/checkpoint".into(),
        },
        head: None,
        checked_ms: None,
        last_submission: None,
        last_error: None,
        verify: None,
    };
    if let Some(r) = record {
        body.log = Some(r.log);
        body.head = r.head;
        body.checked_ms = r.checked_ms;
        body.last_submission = r.last_submission;
        body.last_error = r.last_error;
        body.verify = Some("medanchor verify audit --api <this API> --node <a node you trust> --index N".into());
    }
    Ok(Json(body))
}
