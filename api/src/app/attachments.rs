//! Attachments of a record: upload (the raw file as the body), list,
//! download, remove.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_service::attachments::{attachment_id_arg, Attachment};
use serde::Deserialize;

use super::records::read_body;
use super::{record_id_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{AttachmentList, AttachmentView, Removed};

fn view(a: Attachment) -> AttachmentView {
    let m = a.meta;
    AttachmentView {
        attachment_id: m.attachment_id,
        version: m.version,
        name: a.info.name,
        media_type: a.info.media_type,
        size: m.size,
        stored_size: m.stored_size,
        sha256: m.sha256,
        encoding: m.encoding,
        uploaded_by: m.uploaded_by,
        uploaded_ms: m.uploaded_ms,
        removed_ms: m.removed.map(|(_, at)| at),
    }
}

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    name: Option<String>,
}

/// Attaches a file to a record.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/attachments",
    tag = "attachments",
    summary = "Attach a file (PDF, JPEG, PNG, DICOM, DOC, DOCX) to a record",
    description = "The body is the file; `Content-Type` is its declared media type, `name` its file name. The declared type, the extension and the content's signature must agree (415 for a type not taken or content of another kind, 400 for a contradicting extension); 50 MB at most (413). The caller needs write access to the record's data type (the contract's rule for `update-record`). The same name again is the file's next version. Stored compressed when that saves space, sealed chunk by chunk (STREAM, AES-256-GCM) under a fresh key; its name and type are sealed too. Audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("name" = String, Query, min_length = 1, max_length = 255, description = "The file's name (with its extension)"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, with its own media type as Content-Type (application/pdf, image/jpeg, image/png, application/dicom, application/msword, application/vnd.openxmlformats-officedocument.wordprocessingml.document)"),
    responses(
        (status = 201, description = "Attached", body = AttachmentView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Past 200 files per record or versions per file", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn upload_attachment(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let name = q.name.ok_or_else(|| ApiError::bad("invalid-file-name", "send the file's name as `name`"))?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = read_body(body, &headers, s.config().max_attachment_bytes).await?;
    let attached = s.upload_attachment(&caller, &id, &name, &media_type, bytes).await?;
    let response = (StatusCode::CREATED, Json(view(attached))).into_response();
    Ok(with_request_id(response, &caller.request_id))
}

/// A record's attachments.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/attachments",
    tag = "attachments",
    summary = "A record's attachments, every version",
    description = "For whoever may read the record now (the contract's `get-record` rule). Names and types are decrypted for the reader. Audited as a disclosure.",
    security(("bearer" = [])),
    params(("id" = medanchor_contracts::RecordId, Path, description = "The record")),
    responses(
        (status = 200, description = "By file, then version", body = AttachmentList),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_attachments(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AttachmentList>> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let items = s.list_attachments(&caller, &id).await?.into_iter().map(view).collect();
    Ok(Json(AttachmentList { items }))
}

#[derive(Deserialize)]
pub(crate) struct DownloadQuery {
    version: Option<String>,
}

/// Downloads an attachment.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/attachments/{attachment}",
    tag = "attachments",
    summary = "Download an attachment (the original bytes)",
    description = "For whoever may read the record now. The latest version unless `version` is given; a removed one is gone (410). Audited as a disclosure.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
        ("version" = Option<u64>, Query, minimum = 1, description = "A version"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 410, description = "Removed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn download_attachment(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<DownloadQuery>,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let version = q
        .version
        .map(|v| match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::bad("invalid-version", "version must be an integer from 1")),
        })
        .transpose()?;
    let got = s.download_attachment(&caller, &id, &attachment, version).await?;
    let info = &got.attachment.info;
    let mut response = got.bytes.to_vec().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&info.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // The name as typed, percent-encoded (RFC 6266 / 5987).
    let encoded: String = info
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(with_request_id(response, &caller.request_id))
}

/// Marks an attachment removed.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/attachments/{attachment}/remove",
    tag = "attachments",
    summary = "Mark an attachment removed (kept until the record's retention ends)",
    description = "The caller needs write access to the record's data type. Every version is marked; nothing is deleted early. Audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
    ),
    responses(
        (status = 200, description = "Marked", body = Removed),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn remove_attachment(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
) -> ApiResult<Json<Removed>> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let versions = s.remove_attachment(&caller, &id, &attachment).await?;
    Ok(Json(Removed { versions }))
}
