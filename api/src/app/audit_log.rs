//! Audit-log routes: entries (patients see their own), the accounting of
//! disclosures, signed checkpoints, inclusion and consistency proofs.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use medanchor_service::state::now_ms;

use super::{required_number, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{AuditEntries, ConsistencyProof, InclusionProof, IndexedEntry};

/// Audit log entries (patients: their own data's).
#[utoipa::path(
    get,
    path = "/v1/audit/entries",
    tag = "audit",
    summary = "Audit log entries (patients: their own data's)",
    params(
        ("from" = Option<u64>, Query, format = "uint64", maximum = 18446744073709551615u64, description = "First index (default 0)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
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
) -> ApiResult<Json<AuditEntries>> {
    caller.require()?;
    let from: u64 = q
        .get("from")
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| ApiError::bad("invalid-from", "from must be a number"))?
        .unwrap_or(0);
    // Out of range is refused, not clamped: the document says 1 to 1000.
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_ENTRIES).contains(n))
            .ok_or_else(|| ApiError::bad("invalid-limit", format!("limit must be 1 to {MAX_ENTRIES}")))?,
    };
    let (entries, size) = s.audit_entries(&caller, from, limit)?;
    let visible: Vec<IndexedEntry> = entries
        .into_iter()
        .map(|(index, entry)| IndexedEntry { index, leaf: String::from_utf8_lossy(&entry.leaf()).into_owned(), entry })
        .collect();
    Ok(Json(AuditEntries { entries: visible, size }))
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
        ("patient" = Option<crate::openapi::Principal>, Query, description = "The patient (default: the caller)"),
        ("from" = Option<u64>, Query, maximum = 253402300799u64, description = "Unix seconds, at most the end of year 9999 (default: six years before `to`); not after `to`"),
        ("to" = Option<u64>, Query, maximum = 253402300799u64, description = "Unix seconds, at most the end of year 9999 (default: now)"),
        ("format" = Option<crate::openapi::ReportFormat>, Query, description = "`json` (default) or `csv`"),
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
        ("index" = u64, Query, format = "uint64", maximum = 18446744073709551615u64, description = "The leaf, below `size`"),
        ("size" = u64, Query, minimum = 1, format = "uint64", maximum = 18446744073709551615u64, description = "The tree size"),
    ),
    responses(
        (status = 200, description = "The proof", body = crate::openapi::InclusionProof),
        (status = 400, description = "A missing or malformed number, or `index` not below `size`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log has not reached `size` (yet)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn inclusion_proof(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<InclusionProof>> {
    let num = |k: &str| required_number(&q, k);
    let (index, size) = (num("index")?, num("size")?);
    if index >= size {
        return Err(ApiError::bad("out-of-range", "need index < size"));
    }
    beyond_log(&s, size)?;
    let proof = s.audit().inclusion_proof(index, size).map_err(ApiError::internal)?;
    Ok(Json(InclusionProof { index, size, proof: proof.iter().map(hex::encode).collect() }))
}

/// RFC 9162 consistency proof.
#[utoipa::path(
    get,
    path = "/v1/audit/proof/consistency",
    tag = "audit",
    summary = "RFC 9162 consistency proof",
    params(
        ("from" = u64, Query, format = "uint64", maximum = 18446744073709551615u64, description = "The older size, not above `to`"),
        ("to" = u64, Query, format = "uint64", maximum = 18446744073709551615u64, description = "The newer size"),
    ),
    responses(
        (status = 200, description = "The proof", body = crate::openapi::ConsistencyProof),
        (status = 400, description = "A missing or malformed number, or `from` above `to`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log has not reached `to` (yet)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn consistency_proof(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<ConsistencyProof>> {
    let num = |k: &str| required_number(&q, k);
    let (from, to) = (num("from")?, num("to")?);
    if from > to {
        return Err(ApiError::bad("out-of-range", "need from <= to"));
    }
    beyond_log(&s, to)?;
    let proof = s.audit().consistency_proof(from, to).map_err(ApiError::internal)?;
    Ok(Json(ConsistencyProof { from, to, proof: proof.iter().map(hex::encode).collect() }))
}

/// The most entries one `GET /v1/audit/entries` returns.
const MAX_ENTRIES: u64 = 1000;

/// A proof at a tree size the log has not reached is not there (yet): 404,
/// as for any resource that does not exist — the request itself is fine.
fn beyond_log(s: &AppState, size: u64) -> ApiResult<()> {
    let log = s.audit().size().map_err(ApiError::internal)?;
    if size > log {
        return Err(medanchor_service::Error::NotFound(format!("tree size {size} (the log has {log} entries)")).into());
    }
    Ok(())
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
            Json(crate::openapi::DisclosureReport {
                patient: report.request.patient.to_string(),
                from: iso8601(report.request.from_s.saturating_mul(1000)),
                to: iso8601(report.request.to_s.saturating_mul(1000)),
                log_size: report.log_size,
                disclosures: report.rows,
            }),
        )
            .into_response(),
    }
}
