//! Audit-log routes: entries (patients see their own), the accounting of
//! disclosures, signed checkpoints, inclusion and consistency proofs.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use medanchor_service::state::now_ms;

use super::{required_number, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// Audit log entries (patients: their own data's).
#[utoipa::path(
    get,
    path = "/v1/audit/entries",
    tag = "audit",
    summary = "Audit log entries (patients: their own data's)",
    params(
        ("from" = Option<u64>, Query, description = "First index (default 0)"),
        ("limit" = Option<u64>, Query, description = "At most this many (default 100, max 1000)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The visible entries", body = crate::openapi::AuditEntries),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn audit_entries(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.require()?;
    let from: u64 = q
        .get("from")
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| ApiError::bad("invalid-from", "from must be a number"))?
        .unwrap_or(0);
    let limit: u64 = q
        .get("limit")
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| ApiError::bad("invalid-limit", "limit must be a number"))?
        .unwrap_or(100);
    let (entries, size) = s.audit_entries(&caller, from, limit)?;
    let visible: Vec<Value> = entries
        .into_iter()
        .map(|(i, e)| json!({ "index": i, "entry": e, "leaf": String::from_utf8_lossy(&e.leaf()) }))
        .collect();
    Ok(Json(json!({ "entries": visible, "size": size })))
}

/// `GET /v1/audit/disclosures`: the HIPAA §164.528 accounting of
/// disclosures (see [`crate::disclosures`]). The request is audited itself:
/// the report names who saw the patient's data.
#[utoipa::path(
    get,
    path = "/v1/audit/disclosures",
    tag = "audit",
    summary = "HIPAA accounting of disclosures",
    params(
        ("patient" = Option<String>, Query, description = "The patient (default: the caller)"),
        ("from" = Option<u64>, Query, description = "Unix seconds (default: six years before `to`)"),
        ("to" = Option<u64>, Query, description = "Unix seconds (default: now)"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report; `x-audit-log-size` is the log size scanned", content((crate::openapi::DisclosureReport = "application/json"), (String = "text/csv")), headers(("x-audit-log-size" = u64, description = "The log size scanned"))),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn audit_disclosures(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req = crate::disclosures::ReportRequest::parse(&q, &who, now_ms() / 1000)?;
    let report = s.disclosures(&caller, req).await?;
    Ok(with_request_id(disclosures_response(report), &caller.request_id))
}

/// The log's signed checkpoint (C2SP signed note).
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    summary = "The log's signed checkpoint (C2SP signed note)",
    responses(
        (status = 200, description = "The checkpoint", body = String, content_type = "text/plain; charset=utf-8"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn audit_checkpoint(State(s): State<AppState>) -> ApiResult<Response> {
    let size = s.audit().size().map_err(ApiError::internal)?;
    let root = s.audit().root(size).map_err(ApiError::internal)?;
    let cp = crate::merkle::Checkpoint { origin: format!("{}/audit", s.config().domain), size, root };
    let note = crate::merkle::sign(&cp, &s.config().domain, s.checkpoint_key()).map_err(ApiError::internal)?;
    Ok(([("content-type", "text/plain; charset=utf-8")], note).into_response())
}

/// RFC 9162 inclusion proof.
#[utoipa::path(
    get,
    path = "/v1/audit/proof/inclusion",
    tag = "audit",
    summary = "RFC 9162 inclusion proof",
    params(
        ("index" = u64, Query, description = "The leaf"),
        ("size" = u64, Query, description = "The tree size"),
    ),
    responses(
        (status = 200, description = "The proof", body = crate::openapi::InclusionProof),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn inclusion_proof(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let num = |k: &str| required_number(&q, k);
    let (index, size) = (num("index")?, num("size")?);
    if index >= size || size > s.audit().size().map_err(ApiError::internal)? {
        return Err(ApiError::bad("out-of-range", "need index < size <= the log's size"));
    }
    let proof = s.audit().inclusion_proof(index, size).map_err(ApiError::internal)?;
    Ok(Json(json!({ "index": index, "size": size, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() })))
}

/// RFC 9162 consistency proof.
#[utoipa::path(
    get,
    path = "/v1/audit/proof/consistency",
    tag = "audit",
    summary = "RFC 9162 consistency proof",
    params(
        ("from" = u64, Query, description = "The older size"),
        ("to" = u64, Query, description = "The newer size"),
    ),
    responses(
        (status = 200, description = "The proof", body = crate::openapi::ConsistencyProof),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn consistency_proof(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let num = |k: &str| required_number(&q, k);
    let (from, to) = (num("from")?, num("to")?);
    if from > to || to > s.audit().size().map_err(ApiError::internal)? {
        return Err(ApiError::bad("out-of-range", "need from <= to <= the log's size"));
    }
    let proof = s.audit().consistency_proof(from, to).map_err(ApiError::internal)?;
    Ok(Json(json!({ "from": from, "to": to, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() })))
}

/// A disclosures report in the requested format. Both carry the scanned
/// log size (`x-audit-log-size`) for the inclusion proofs.
fn disclosures_response(report: crate::disclosures::Report) -> Response {
    use crate::disclosures::{iso8601, to_csv, Format};
    use axum::http::header;
    let size = report.log_size.to_string();
    match report.request.format {
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"disclosures-{}.csv\"", report.request.patient),
                ),
                (header::HeaderName::from_static("x-audit-log-size"), size),
            ],
            to_csv(&report.rows),
        )
            .into_response(),
        Format::Json => (
            [(header::HeaderName::from_static("x-audit-log-size"), size)],
            Json(json!({
                "patient": report.request.patient.to_string(),
                "from": iso8601(report.request.from_s.saturating_mul(1000)),
                "to": iso8601(report.request.to_s.saturating_mul(1000)),
                "log_size": report.log_size,
                "disclosures": report.rows,
            })),
        )
            .into_response(),
    }
}
