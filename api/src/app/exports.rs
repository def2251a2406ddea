//! Exports: a patient's data as a signed PDF, JSON, CSV (zip) or FHIR R4
//! Bundle; an export's public verification record; the node's export
//! signing key.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_service::exports::{ExportRequest, Exported, Format, SummaryRequest};
use medanchor_service::file_anchors::{BatchStatus, FileAnchor};
use serde::Serialize;

use super::{principal_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// `GET /v1/patients/{patient}/export`.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/export",
    tag = "exports",
    summary = "Export the patient's data the caller may read (PDF, JSON, CSV, FHIR R4)",
    description = "The patient exports everything (profile, records, consents, the accesses to their data); anyone else exactly what the chain lets them read now, record by record (the data types it withholds are named in the export). `pdf`: for clinicians, PAdES-signed with the node's P-256 export key, a QR code on the first page leading to the export's verification record. `json` (schema `https://medanchor.invalid/schema/export/v1`, docs/export-schema.md), `csv` (a zip, one file per kind) and `fhir` (an R4 `Bundle` of type `collection`) carry a detached signature in the `Export-Signature` header (JSON: ES256 over the file's SHA-256). Every export's SHA-256 is anchored in the next file batch; `X-Export-Id` names it. Audited (`export`: format, range, types, record count, withheld types); a disclosure when the caller is not the patient. `from`/`to` (inclusive, `from` not after `to`) filter on each record's clinical date, `types` on record types.",
    security(("bearer" = [])),
    params(
        ("patient" = crate::openapi::Principal, Path, description = "The patient"),
        ("format" = Option<Format>, Query, description = "pdf (default), json, csv or fhir"),
        ("from" = Option<String>, Query, format = Date, description = "First clinical date, YYYY-MM-DD"),
        ("to" = Option<String>, Query, format = Date, description = "Last clinical date, YYYY-MM-DD"),
        ("types" = Option<String>, Query, max_length = 1000, pattern = "^(basic-info|vitals|diagnosis|medications|lab-results|imaging|procedures|allergies|immunizations|mental-health|genetic-data|insurance|emergency-contacts)(,(basic-info|vitals|diagnosis|medications|lab-results|imaging|procedures|allergies|immunizations|mental-health|genetic-data|insurance|emergency-contacts))*$", description = "Record types, comma separated"),
    ),
    responses(
        (status = 200, description = "The export: a PDF, the JSON export, a zip of CSV files or a FHIR Bundle", content(
            (Vec<u8> = "application/pdf"),
            (serde_json::Value = "application/json"),
            (Vec<u8> = "application/zip"),
            (serde_json::Value = "application/fhir+json"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn export_patient(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    only(&q, &["format", "from", "to", "types"])?;
    let get = |k: &str| q.get(k).map(String::as_str);
    let req = ExportRequest::parse(get("format"), get("from"), get("to"), get("types"))?;
    let done = s.export(&caller, &patient, req).await?;
    Ok(with_request_id(file(done)?, &caller.request_id))
}

/// `GET /v1/patients/{patient}/summary`.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/summary",
    tag = "exports",
    summary = "A provider summary report: referral, consultation or discharge (PDF or JSON)",
    description = "Computed from the export the caller may have (so it holds no more than the chain lets them read): allergies and alerts, active problems (once per ICD-10-CM code, most mentioned first), current medications, the newest encounters (referral 5, consultation 10, discharge every one in the window) and key indicators over the window — vital signs and numeric lab results with their first and latest value, change, range, mean, trend, and out-of-range counts against normal ranges or the laboratory's flags. Windows default to 365, 180 and 30 days. Signed, anchored and audited as an export (`detail` names the preset).",
    security(("bearer" = [])),
    params(
        ("patient" = crate::openapi::Principal, Path, description = "The patient"),
        ("preset" = Option<String>, Query, pattern = "^(referral|consultation|discharge)$", description = "referral (default), consultation or discharge"),
        ("window_days" = Option<u32>, Query, minimum = 1, maximum = 3660, description = "The last this many days"),
        ("format" = Option<String>, Query, pattern = "^(pdf|json)$", description = "pdf (default) or json"),
    ),
    responses(
        (status = 200, description = "The report", content(
            (Vec<u8> = "application/pdf"),
            (serde_json::Value = "application/json"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn summary_report(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    only(&q, &["preset", "window_days", "format"])?;
    let get = |k: &str| q.get(k).map(String::as_str);
    let req = SummaryRequest::parse(get("preset"), get("window_days"), get("format"))?;
    let done = s.summary(&caller, &patient, req).await?;
    Ok(with_request_id(file(done)?, &caller.request_id))
}

/// Refuses a query naming a parameter the route does not take (a typo
/// must not silently export everything).
pub(crate) fn only(q: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad("invalid-query", format!("unknown parameter {k:?}"))),
        None => Ok(()),
    }
}

/// An export as a download: its type, a file name, never cached; its id,
/// hash and detached signature in headers.
fn file(done: Exported) -> ApiResult<Response> {
    let name = format!("medanchor-export-{}.{}", done.id, done.format.extension());
    let mut response = done.bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(done.format.media_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&done.id) {
        h.insert("x-export-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&hex::encode(done.sha256)) {
        h.insert("x-export-sha256", v);
    }
    if let Some(sig) = &done.signature {
        // Base64 of the signature's JSON: a header value stays ASCII.
        use base64::Engine as _;
        let json = serde_json::to_vec(sig).map_err(ApiError::internal)?;
        if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json)) {
            h.insert("export-signature", v);
        }
    }
    Ok(response)
}

/// An export's verification record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExportVerification {
    /// The export's id.
    id: String,
    /// Its format.
    format: Format,
    /// SHA-256 of the file as served, hex: hash the file you hold and
    /// compare.
    sha256: String,
    /// When it was made (unix ms).
    created_ms: u64,
    /// The role of who asked for it.
    requester_role: String,
    /// The signing key's id (`GET /v1/exports/key`).
    key_id: String,
    /// The detached signature's JSON (not for PDF, which is signed inside).
    signature: Option<String>,
    /// `queued`, `pending` or `anchored`.
    anchor_status: String,
    /// The file's leaf index in its batch.
    leaf_index: Option<u64>,
    /// The batch's leaf count.
    tree_size: Option<u64>,
    /// The audit path, bottom-up, hex.
    path: Vec<String>,
    /// The batch root `get-batch` holds on-chain, hex.
    root: Option<String>,
    /// The anchoring transaction.
    #[schema(value_type = Option<String>)]
    txid: Option<medanchor_contracts::Txid>,
    /// The block that holds it.
    block_height: Option<u64>,
}

/// `GET /v1/exports/{id}`: public, what the QR code leads to.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}",
    tag = "exports",
    summary = "An export's verification record (no session: the QR code leads here)",
    description = "What the node recorded about an export when it served it: the file's SHA-256, format, time, the requester's role, the signing key's id, and where its hash stands in the file batches anchored on-chain (with the inclusion proof once batched). Nothing about the patient. Check without trusting this API: `medanchor verify export FILE`.",
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The export's id")),
    responses(
        (status = 200, description = "The record", body = ExportVerification),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn export_verification(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportVerification>> {
    let row = s.export_row(&id)?;
    let sha: [u8; 32] = hex::decode(&row.sha256)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::internal("stored export hash"))?;
    let anchor = s.file_anchor(&sha)?;
    let mut v = ExportVerification {
        id: row.id,
        format: row.format,
        sha256: row.sha256,
        created_ms: row.created_ms,
        requester_role: row.requester_role,
        key_id: row.key_id,
        signature: row.signature,
        anchor_status: "queued".into(),
        leaf_index: None,
        tree_size: None,
        path: vec![],
        root: None,
        txid: None,
        block_height: None,
    };
    if let Some(FileAnchor::Batched(p)) = anchor {
        v.anchor_status = match p.status {
            BatchStatus::Pending => "pending",
            BatchStatus::Anchored => "anchored",
        }
        .into();
        v.leaf_index = Some(p.leaf_index);
        v.tree_size = Some(p.tree_size);
        v.path = p.path.iter().map(hex::encode).collect();
        v.root = Some(hex::encode(p.root));
        v.txid = p.txid;
        v.block_height = p.block_height;
    }
    Ok(Json(v))
}

/// The node's export signing key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExportKeyView {
    /// Its id (the first 16 bytes of the SHA-256 of its SPKI, hex).
    key_id: String,
    /// `ES256` (ECDSA P-256 with SHA-256).
    alg: String,
    /// The public key (SPKI, PEM).
    public_key_pem: String,
    /// Its self-signed certificate (PEM): the one inside signed PDFs.
    certificate_pem: String,
}

/// `GET /v1/exports/key`: public.
#[utoipa::path(
    get,
    path = "/v1/exports/key",
    tag = "exports",
    summary = "The node's export signing key (no session)",
    description = "The P-256 key that signs this tenant's exports (PAdES inside PDFs, detached ES256 signatures for the other formats), derived from the node's secret: the same on every start. Pin it once; `medanchor verify export` checks signatures against it.",
    responses(
        (status = 200, description = "The key", body = ExportKeyView),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn export_key(State(s): State<AppState>) -> ApiResult<Json<ExportKeyView>> {
    let key = s.export_key()?;
    Ok(Json(ExportKeyView {
        key_id: key.key_id(),
        alg: "ES256".into(),
        public_key_pem: key.public_key_pem(),
        certificate_pem: key.certificate_pem(),
    }))
}
