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
use medanchor_contracts::ContractName;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use medanchor_service::records::{hash32, RecordId};

use super::records::VersionQuery;
use super::{record_id_arg, with_request_id, AppState, Caller};
use crate::blob::BlobError;
use crate::db::{AnchorStatus, RecordMeta};
use crate::error::{ApiError, ApiResult};

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
    entry.record_id = record.map(|(id, _)| hex::encode(id));
    entry.version = record.and_then(|(_, v)| v);
    if let Some(m) = meta {
        entry.patient = Some(m.patient.clone());
        entry.record_id = Some(m.record_id.clone());
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
    match s.version_or_latest(id, version).map_err(ApiError::from) {
        Ok(m) => Ok(m),
        Err(e) => {
            audit(s, caller, action, Some((id, version)), None, Some(e.to_string())).await?;
            Err(e)
        }
    }
}

/// The stored ciphertext, hashed again.
fn blob_view(s: &AppState, hash: &[u8; 32]) -> (Value, bool) {
    match s.blobs().get(hash) {
        Ok(Some(bytes)) => {
            let sha: [u8; 32] = Sha256::digest(&bytes).into();
            let ok = sha == *hash;
            (
                json!({ "state": if ok { "present" } else { "corrupt" }, "sha256": format!("0x{}", hex::encode(sha)), "matches": ok, "size": bytes.len() }),
                ok,
            )
        }
        Ok(None) => (json!({ "state": "missing", "sha256": null, "matches": false }), false),
        Err(BlobError::Corrupt(_)) => (
            json!({ "state": "corrupt", "sha256": null, "matches": false,
                    "detail": "the stored bytes do not hash to the anchored hash (altered in storage)" }),
            false,
        ),
        Err(e) => {
            tracing::error!(error = %e, "reading a blob to verify it");
            (json!({ "state": "unreadable", "sha256": null, "matches": false }), false)
        }
    }
}

/// The API's own view of a record's anchor (trust-us).
#[utoipa::path(
    get,
    path = "/v1/verify/record/{id}",
    tag = "verify",
    security((), ("bearer" = [])),
    summary = "The API's own view of a record's anchor (trust-us)",
    params(
        ("id" = crate::openapi::RecordId, Path, description = "Record id, 16 bytes of hex"),
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
    let (blob, blob_ok, onchain, anchors) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let hash = hash32(&m2.data_hash)?;
        let (blob, blob_ok) = blob_view(&s2, &hash);
        let onchain =
            s2.chain().versions(&id).map_err(ApiError::internal)?.into_iter().find(|v| v.version == m2.version);
        let anchors = s2.chain().anchors(&hash).map_err(ApiError::internal)?;
        Ok((blob, blob_ok, onchain, anchors))
    })
    .await
    .map_err(ApiError::internal)??;
    let ours = format!("0x{}", meta.data_hash);
    let verdict = match (&onchain, blob_ok) {
        (_, false) => match blob["state"].as_str() {
            Some("missing") => "blob-missing",
            Some("unreadable") => "blob-unreadable",
            _ => "blob-corrupt",
        },
        (Some(v), true) if v.data_hash == ours => "anchored",
        (Some(_), true) => "mismatch",
        (None, true) => match meta.status {
            AnchorStatus::Pending => "pending",
            AnchorStatus::Failed => "failed",
            AnchorStatus::Anchored => "not-anchored",
        },
    };
    audit(&s, &caller, "verify.record", None, Some(&meta), None).await?;
    let body = json!({
        "trust": TRUST_US,
        "verdict": verdict,
        "record_id": meta.record_id,
        "version": meta.version,
        "data_hash": ours,
        "hashed": "SHA-256 of the stored ciphertext blob (nonce ‖ AES-256-GCM ciphertext ‖ tag)",
        "api": {
            "status": meta.status,
            "txid": meta.txid,
            "block_height": meta.block_height,
            "index_block_hash": meta.index_block_hash,
            "failure": meta.failure,
        },
        "blob": blob,
        "chain": {
            "source": "the API's indexer",
            "contract": format!("{}.{}", s.config().contracts, ContractName::RecordManagement.name()),
            "version": onchain,
            "anchors": anchors,
        },
    });
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
        ("sha256" = crate::openapi::Sha256, Path, description = "32 bytes of hex"),
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
    let hash: [u8; 32] =
        hex::decode(hash.trim_start_matches("0x")).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
            ApiError::bad("invalid-hash", format!("{} is not a SHA-256 (32 bytes of hex)", crate::error::echo(&hash)))
        })?;
    let s2 = s.clone();
    let (anchors, held) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let anchors = s2.chain().anchors(&hash).map_err(ApiError::internal)?;
        // The first anchor is the one `get-anchor` names; a rollback
        // re-uses a hash without a new anchor entry.
        let meta = match anchors.first() {
            Some(a) => s2.db().record(&record_id_arg(&a.record_id)?.0, a.version).map_err(ApiError::internal)?,
            None => None,
        };
        let held = meta.map(|m| {
            let (blob, _) = blob_view(&s2, &hash);
            (m, blob)
        });
        Ok((anchors, held))
    })
    .await
    .map_err(ApiError::internal)??;
    let record = anchors.first().map(|a| (record_id_arg(&a.record_id), a.version));
    let record = match &record {
        Some((Ok(id), v)) => Some((id, Some(*v))),
        _ => None,
    };
    audit(&s, &caller, "verify.hash", record, held.as_ref().map(|(m, _)| m), None).await?;
    let body = json!({
        "trust": TRUST_US,
        "verdict": if anchors.is_empty() { "not-anchored" } else { "anchored" },
        "data_hash": format!("0x{}", hex::encode(hash)),
        "anchors": anchors,
        "api_copy": held.map(|(m, blob)| json!({
            "record_id": m.record_id,
            "version": m.version,
            "status": m.status,
            "blob": blob,
        })),
    });
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
        ("id" = crate::openapi::RecordId, Path, description = "Record id, 16 bytes of hex"),
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
        ("x-record-id", format!("0x{}", meta.record_id)),
        ("x-record-version", meta.version.to_string()),
        ("x-data-hash", format!("0x{}", meta.data_hash)),
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
pub(super) async fn audit_anchor(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let record = crate::anchoring::anchor_record(s.db()).map_err(ApiError::internal)?;
    let size = s.audit().size().map_err(ApiError::internal)?;
    let contract = format!("{}.{}", s.config().contracts, ContractName::RecordManagement.name());
    let checkpoint = json!({
        "origin": format!("{}/audit", s.config().domain),
        "key_name": s.config().domain,
        "public_key": hex::encode(s.checkpoint_key().verifying_key().as_bytes()),
        "algorithm": "Ed25519 (C2SP signed-note)",
        "url": "/v1/audit/checkpoint",
    });
    Ok(Json(match record {
        None => json!({
            "anchoring": false,
            "log": null,
            "contract": contract,
            "size": size,
            "checkpoint": checkpoint,
        }),
        Some(r) => json!({
            "anchoring": true,
            "log": r.log,
            "contract": contract,
            "head": r.head,
            "checked_ms": r.checked_ms,
            "last_submission": r.last_submission,
            "last_error": r.last_error,
            "size": size,
            "checkpoint": checkpoint,
            "verify": "medanchor verify audit --api <this API> --node <a node you trust> --index N",
        }),
    }))
}
