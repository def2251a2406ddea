//! Attachments of a record: upload (the raw file as the body; resumable
//! uploads are `uploads`), list, download (with a session, or through a
//! signed link), restore a version, remove.

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
use crate::openapi::{AttachmentList, AttachmentView, FileAnchorView, LinkView, Removed};

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
        restored_from: m.restored_from,
        storage_class: m.storage_class.unwrap_or_else(|| "STANDARD".into()),
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
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("X-Share-Grant" = Option<crate::openapi::GrantToken>, Header, nullable = false, description = "A grant from redeeming a share: read through it instead of on-chain consent"),
    ),
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
    headers: HeaderMap,
) -> ApiResult<Json<AttachmentList>> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let grant = super::share::grant_token(&headers);
    let items = s.list_attachments(&caller, &id, grant).await?.into_iter().map(view).collect();
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
        ("X-Share-Grant" = Option<crate::openapi::GrantToken>, Header, nullable = false, description = "A grant from redeeming a share: read through it instead of on-chain consent"),
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
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let version = q.version.as_deref().map(version_arg).transpose()?;
    let grant = super::share::grant_token(&headers);
    let got = s.download_attachment(&caller, &id, &attachment, version, grant).await?;
    Ok(with_request_id(file_response(got), &caller.request_id))
}

fn version_arg(v: &str) -> ApiResult<u64> {
    match v.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::bad("invalid-version", "version must be an integer from 1")),
    }
}

/// The file as a download: its type, its name (RFC 6266), never cached.
fn file_response(mut got: medanchor_service::attachments::Download) -> Response {
    // Moved into the body, not copied: it is sent as it is.
    let bytes = std::mem::take(&mut *got.bytes);
    let info = &got.attachment.info;
    let mut response = bytes.into_response();
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
    response
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

#[derive(Deserialize)]
pub(crate) struct VersionQuery {
    version: Option<String>,
}

/// Makes a signed download link.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/attachments/{attachment}/link",
    tag = "attachments",
    summary = "A download link valid 15 minutes",
    description = "For whoever may read the record now (on-chain consent, the patient, an override). The link names one version (the latest unless `version` is given) and carries the caller's access: it is HMAC-signed by the node over record, attachment, version, expiry and caller, works without a session until it expires, and only while the caller could still read the file. Issuing and every use are audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
        ("version" = Option<u64>, Query, minimum = 1, description = "A version"),
    ),
    responses(
        (status = 201, description = "The link", body = LinkView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 410, description = "Removed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn attachment_link(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let version = q.version.as_deref().map(version_arg).transpose()?;
    let link = s.attachment_link(&caller, &id, &attachment, version).await?;
    let path = format!(
        "/v1/records/{}/attachments/{}/signed?version={}&expires={}&by={}&sig={}&tenant={}",
        id.bare_hex(),
        hex::encode(attachment),
        link.version,
        link.expires_ms,
        link.principal,
        link.signature,
        // A browser follows the link without headers: the tenant rides in
        // it (the signature key is the tenant's own).
        s.config().tenant
    );
    let url = format!("{}{path}", s.config().public_url.trim_end_matches('/'));
    let body = LinkView { url, path, version: link.version, expires_ms: link.expires_ms };
    Ok(with_request_id((StatusCode::CREATED, Json(body)).into_response(), &caller.request_id))
}

#[derive(Deserialize)]
pub(crate) struct SignedQuery {
    version: Option<String>,
    expires: Option<String>,
    by: Option<String>,
    sig: Option<String>,
    /// Read by the tenant dispatch, before this route.
    #[allow(dead_code)]
    tenant: Option<String>,
}

/// Downloads through a signed link.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/attachments/{attachment}/signed",
    tag = "attachments",
    summary = "Download through a signed link (no session)",
    description = "The link from `POST …/link`. Refused (403) when its signature does not cover this record, attachment, version, expiry and principal, when it expired, or when the principal it carries may no longer read the record. Audited as a disclosure to that principal.",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
        ("version" = u64, Query, minimum = 1, description = "The version the link names"),
        ("expires" = u64, Query, description = "Its expiry (unix ms)"),
        ("by" = String, Query, min_length = 1, max_length = 200, description = "The principal whose access it carries"),
        ("sig" = String, Query, pattern = "^[0-9a-f]{64}$", description = "The node's HMAC"),
        ("tenant" = Option<String>, Query, description = "The tenant whose link it is (as `X-Tenant-ID`)"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 410, description = "Removed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn signed_download(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<SignedQuery>,
) -> ApiResult<Response> {
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let missing = |what: &str| ApiError::bad("invalid-link", format!("the link lacks `{what}`"));
    let version = version_arg(q.version.as_deref().ok_or_else(|| missing("version"))?)?;
    let expires_ms = q
        .expires
        .as_deref()
        .ok_or_else(|| missing("expires"))?
        .parse::<u64>()
        .map_err(|_| ApiError::bad("invalid-link", "`expires` is unix milliseconds"))?;
    let principal = q.by.ok_or_else(|| missing("by"))?;
    let signature = q.sig.ok_or_else(|| missing("sig"))?;
    if principal.len() > 200 || signature.len() != 64 {
        return Err(ApiError::bad("invalid-link", "a malformed link"));
    }
    let link = medanchor_service::attachments::Link { version, expires_ms, principal, signature };
    let got = s.download_by_link(&caller, &id, &attachment, &link).await?;
    Ok(with_request_id(file_response(got), &caller.request_id))
}

/// Restores an earlier version.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/attachments/{attachment}/restore",
    tag = "attachments",
    summary = "Restore an earlier version of a file as its newest",
    description = "The caller needs write access to the record's data type. The restored version is a new version pointing at the same sealed object (nothing is re-encrypted); a removed version cannot be restored (410). Audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
        ("version" = u64, Query, minimum = 1, description = "The version to restore"),
    ),
    responses(
        (status = 201, description = "The new version", body = AttachmentView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Past 200 versions", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Removed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn restore_attachment(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let from = version_arg(
        q.version.as_deref().ok_or_else(|| ApiError::bad("invalid-version", "send the version to restore"))?,
    )?;
    let restored = s.restore_attachment(&caller, &id, &attachment, from).await?;
    Ok(with_request_id((StatusCode::CREATED, Json(view(restored))).into_response(), &caller.request_id))
}

/// An attachment's anchoring and inclusion proof.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/attachments/{attachment}/anchor",
    tag = "attachments",
    summary = "An attachment's on-chain anchoring: its batch and inclusion proof",
    description = "For whoever may read the record now. The file's ciphertext hash is anchored in a batch (an RFC 6962 tree of many files' hashes, whose root one `anchor-batch` transaction puts on-chain): `queued` until the next batch, then `pending` (sent) and `anchored`, with the leaf index, the tree size, the audit path and the root — checkable against the chain's `get-batch` without trusting this API (`medanchor verify file PATH --attachment ID`). Audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("attachment" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The attachment"),
        ("version" = Option<u64>, Query, minimum = 1, description = "A version (default: the latest)"),
    ),
    responses(
        (status = 200, description = "Where its hash stands", body = FileAnchorView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn attachment_anchor(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<FileAnchorView>> {
    use medanchor_service::file_anchors::{BatchStatus, FileAnchor};
    caller.require()?;
    let id = record_id_arg(&id)?;
    let attachment = attachment_id_arg(&attachment)?;
    let version = q.version.as_deref().map(version_arg).transpose()?;
    let (meta, anchor) = s.attachment_anchor(&caller, &id, &attachment, version).await?;
    let view = match anchor {
        FileAnchor::Queued => FileAnchorView {
            attachment_id: meta.attachment_id,
            version: meta.version,
            sha256: meta.sha256,
            status: "queued".into(),
            leaf_index: None,
            tree_size: None,
            path: Vec::new(),
            root: None,
            txid: None,
            block_height: None,
        },
        FileAnchor::Batched(p) => FileAnchorView {
            attachment_id: meta.attachment_id,
            version: meta.version,
            sha256: meta.sha256,
            status: match p.status {
                BatchStatus::Pending => "pending",
                BatchStatus::Anchored => "anchored",
            }
            .into(),
            leaf_index: Some(p.leaf_index),
            tree_size: Some(p.tree_size),
            path: p.path.iter().map(hex::encode).collect(),
            root: Some(hex::encode(p.root)),
            txid: p.txid,
            block_height: p.block_height,
        },
    };
    Ok(Json(view))
}

#[derive(Deserialize)]
pub(crate) struct ReportQuery {
    tenant: Option<String>,
}

/// The storage report.
#[utoipa::path(
    get,
    path = "/v1/admin/storage/report",
    tag = "attachments",
    summary = "What the object store holds (admins)",
    description = "Bytes and objects per tenant and storage class (each object once, removed ones until their purge), growth per month of upload, an estimated monthly cost from the configured price table, and the tenants over their alert threshold (also logged as a warning); unfinished uploads in the local spool apart. Admins only; audited.",
    security(("bearer" = [])),
    params(("tenant" = Option<String>, Query, min_length = 1, max_length = 63, description = "One tenant only")),
    responses(
        (status = 200, description = "The report", body = medanchor_service::storage_report::StorageReport),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn storage_report(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Json<medanchor_service::storage_report::StorageReport>> {
    caller.require()?;
    Ok(Json(s.storage_report(&caller, q.tenant.as_deref()).await?))
}
