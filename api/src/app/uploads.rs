//! Resumable uploads: the tus 1.0.0 protocol's HTTP framing (core,
//! creation, expiration, checksum, termination) over the service's
//! uploads, so tus clients (tus-js-client, Uppy, tusd's CLI) upload to the
//! node unchanged.
//!
//! `POST /v1/records/{id}/uploads` creates an upload (`Upload-Length`,
//! `Upload-Metadata` with `filename` and `filetype`) and answers its
//! `Location`; `PATCH` appends at `Upload-Offset`; `HEAD` says where it
//! stands after an interruption; `DELETE` cancels it. Every answer carries
//! `Tus-Resumable`; a request that speaks another version gets 412.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use medanchor_service::uploads::{upload_id_arg, Checksum, UploadState};

use super::{record_id_arg, with_request_id, AppState, Caller};
use crate::error::ApiError;

/// The protocol version spoken.
pub(crate) const TUS_VERSION: &str = "1.0.0";
/// The extensions implemented.
pub(crate) const TUS_EXTENSIONS: &str = "creation,expiration,checksum,termination";
/// The longest `Upload-Metadata` taken.
const MAX_METADATA: usize = 4096;

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// Adds `Tus-Resumable` (every answer but OPTIONS' must carry it; it
/// does no harm there) and the request id.
fn tus(mut response: Response, caller: &Caller) -> Response {
    response.headers_mut().insert(h("tus-resumable"), HeaderValue::from_static(TUS_VERSION));
    with_request_id(response, &caller.request_id)
}

fn failed(e: impl Into<ApiError>, caller: &Caller) -> Response {
    tus(e.into().into_response(), caller)
}

/// The 412 for a request that does not speak tus 1.0.0, if it does not.
fn refuse_other_tus(headers: &HeaderMap) -> Option<Response> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => None,
        other => {
            let detail = match other {
                None => "send Tus-Resumable: 1.0.0".to_string(),
                Some(v) => format!(
                    "tus version {:?} is not spoken; this server speaks 1.0.0",
                    v.chars().take(16).collect::<String>()
                ),
            };
            let mut r = ApiError(medanchor_service::Error::Conflict { precondition: true, detail, current_version: 0 })
                .into_response();
            r.headers_mut().insert(h("tus-version"), HeaderValue::from_static(TUS_VERSION));
            Some(r)
        }
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    let v = headers.get(name).ok_or_else(|| ApiError::bad("tus-header", format!("send {name}")))?;
    v.to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad("tus-header", format!("{name} is a non-negative integer")))
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs.
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = headers.get("upload-metadata") else { return Ok(Vec::new()) };
    let bad = |d: &str| ApiError::bad("upload-metadata", d.to_string());
    if raw.len() > MAX_METADATA {
        return Err(bad("Upload-Metadata is at most 4096 bytes"));
    }
    let raw = raw.to_str().map_err(|_| bad("Upload-Metadata is ASCII"))?;
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| bad("each Upload-Metadata value is base64"))?;
        let value = String::from_utf8(value).map_err(|_| bad("Upload-Metadata values are UTF-8 text"))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, ApiError> {
    let Some(raw) = headers.get("upload-checksum") else { return Ok(None) };
    let bad = || ApiError::bad("invalid-checksum", "Upload-Checksum is `<algorithm> <base64 digest>`");
    let raw = raw.to_str().map_err(|_| bad())?;
    let (alg, digest) = raw.split_once(' ').ok_or_else(bad)?;
    let digest = base64::engine::general_purpose::STANDARD.decode(digest.trim()).map_err(|_| bad())?;
    Ok(Some(Checksum::new(alg.trim(), &digest)?))
}

fn expires(ms: u64) -> HeaderValue {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn progress(state: &UploadState, response: &mut Response) {
    let hs = response.headers_mut();
    hs.insert(h("upload-offset"), HeaderValue::from(state.offset));
    hs.insert(h("upload-expires"), expires(state.expires_ms));
    if let Some(a) = &state.completed {
        if let Ok(v) = HeaderValue::from_str(&a.meta.attachment_id) {
            hs.insert(h("medanchor-attachment-id"), v);
        }
        hs.insert(h("medanchor-attachment-version"), HeaderValue::from(a.meta.version));
    }
}

/// What the server speaks.
#[utoipa::path(
    options,
    path = "/v1/uploads",
    tag = "uploads",
    summary = "tus capabilities",
    description = "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size` and `Tus-Checksum-Algorithm`, as tus clients ask.",
    responses(
        (status = 204, description = "The capabilities", headers(
            ("Tus-Version" = String, description = "1.0.0"),
            ("Tus-Extension" = String, description = "creation,expiration,checksum,termination"),
            ("Tus-Max-Size" = u64, description = "The largest file, in bytes"),
            ("Tus-Checksum-Algorithm" = String, description = "sha1,sha256"),
        )),
    )
)]
pub(crate) async fn tus_options(State(s): State<AppState>, caller: Caller) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let hs = r.headers_mut();
    hs.insert(h("tus-version"), HeaderValue::from_static(TUS_VERSION));
    hs.insert(h("tus-extension"), HeaderValue::from_static(TUS_EXTENSIONS));
    hs.insert(h("tus-max-size"), HeaderValue::from(s.config().max_attachment_bytes as u64));
    hs.insert(h("tus-checksum-algorithm"), HeaderValue::from_static(Checksum::ALGORITHMS));
    tus(r, &caller)
}

/// Creates an upload.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/uploads",
    tag = "uploads",
    summary = "Start a resumable upload of a file to a record (tus creation)",
    description = "`Upload-Length` is the file's size (50 MB at most: 413); `Upload-Metadata` carries `filename` (or `name`) and `filetype` (or `type`), base64 as tus sends them. The caller needs write access to the record's data type; the type and the name's extension are checked now (415/400), the content as it arrives. At most 32 unfinished uploads per caller. An upload untouched for 7 days is deleted. Audited.",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "The record"),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", example = "1.0.0", description = "The tus version: 1.0.0"),
        ("Upload-Length" = u64, Header, example = 2048, description = "The file's size in bytes"),
        ("Upload-Metadata" = String, Header, example = "filename c2Nhbi5wZGY=,filetype YXBwbGljYXRpb24vcGRm", description = "`filename <base64>,filetype <base64>`"),
    ),
    responses(
        (status = 201, description = "Created; PATCH the `Location`", headers(
            ("Location" = String, description = "The upload's URL"),
            ("Upload-Expires" = String, description = "When it is deleted unless continued"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Too many unfinished uploads", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_upload(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_other_tus(&headers) {
        return tus(r, &caller);
    }
    let parsed = (|| {
        caller.require()?;
        let id = record_id_arg(&id)?;
        if headers.contains_key("upload-defer-length") {
            return Err(ApiError::bad("tus-header", "Upload-Defer-Length is not supported: send Upload-Length"));
        }
        let length = header_u64(&headers, "upload-length")?;
        let meta = metadata(&headers)?;
        let find = |keys: &[&str]| meta.iter().find(|(k, _)| keys.contains(&k.as_str())).map(|(_, v)| v.clone());
        // A missing name is refused by the service, after the record and
        // the caller's access: an unknown record is 404 whatever else.
        let name = find(&["filename", "name"]).unwrap_or_default();
        let media_type = find(&["filetype", "type"]).unwrap_or_default();
        Ok::<_, ApiError>((id, length, name, media_type))
    })();
    let (id, length, name, media_type) = match parsed {
        Ok(p) => p,
        Err(e) => return failed(e, &caller),
    };
    match s.create_upload(&caller, &id, length, &name, &media_type).await {
        Ok(state) => {
            let mut r = StatusCode::CREATED.into_response();
            let location = format!("/v1/uploads/{}", state.upload_id);
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut().insert(h("upload-expires"), expires(state.expires_ms));
            tus(r, &caller)
        }
        Err(e) => failed(e, &caller),
    }
}

/// Where an upload stands.
#[utoipa::path(
    head,
    path = "/v1/uploads/{upload}",
    tag = "uploads",
    summary = "An upload's offset (tus HEAD)",
    description = "For its uploader only (anyone else: 404). An upload whose every byte arrived but whose completion a crash interrupted completes now.",
    security(("bearer" = [])),
    params(
        ("upload" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", example = "1.0.0", description = "The tus version: 1.0.0"),
    ),
    responses(
        (status = 200, description = "Where it stands", headers(
            ("Upload-Offset" = u64, description = "Bytes acknowledged"),
            ("Upload-Length" = u64, description = "The file's size"),
            ("Upload-Expires" = String, description = "When it is deleted unless continued"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotFound,
        (status = 410, description = "Abandoned", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn upload_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(upload): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_other_tus(&headers) {
        return tus(r, &caller);
    }
    let upload = match upload_id_arg(&upload) {
        Ok(u) => u,
        Err(e) => return failed(e, &caller),
    };
    match s.upload_status(&caller, &upload).await {
        Ok(state) => {
            let mut r = StatusCode::OK.into_response();
            progress(&state, &mut r);
            r.headers_mut().insert(h("upload-length"), HeaderValue::from(state.length));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            tus(r, &caller)
        }
        Err(e) => failed(e, &caller),
    }
}

/// Appends to an upload.
#[utoipa::path(
    patch,
    path = "/v1/uploads/{upload}",
    tag = "uploads",
    summary = "Append to an upload at its offset (tus PATCH)",
    description = "`Upload-Offset` must be the upload's offset (409 otherwise). Every byte that arrives is kept, even if the connection drops — unless the piece carries `Upload-Checksum` (sha1 or sha256), which must then match all of it (460), or it runs past the file's length (400). The last byte completes the upload: the file is checked, compressed when that helps, sealed onto the object store and becomes the record's attachment (its id in `Medanchor-Attachment-Id`).",
    security(("bearer" = [])),
    params(
        ("upload" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", example = "1.0.0", description = "The tus version: 1.0.0"),
        ("Upload-Offset" = u64, Header, description = "Where this piece starts"),
        ("Upload-Checksum" = Option<String>, Header, nullable = false, description = "`sha1 <base64>` or `sha256 <base64>` of this piece"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "The piece"),
    responses(
        (status = 204, description = "Acknowledged", headers(
            ("Upload-Offset" = u64, description = "Bytes acknowledged"),
            ("Upload-Expires" = String, description = "When it is deleted unless continued"),
            ("Medanchor-Attachment-Id" = String, description = "Once complete: the attachment"),
            ("Medanchor-Attachment-Version" = u64, description = "Once complete: its version"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Not at the upload's offset", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Abandoned", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::UnsupportedMediaType,
        (status = 460, description = "The piece does not match its checksum; nothing of it was kept", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn upload_piece(
    State(s): State<AppState>,
    caller: Caller,
    Path(upload): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(r) = refuse_other_tus(&headers) {
        return tus(r, &caller);
    }
    let parsed = (|| {
        let upload = upload_id_arg(&upload)?;
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if content_type.split(';').next().unwrap_or_default().trim() != "application/offset+octet-stream" {
            return Err(ApiError(medanchor_service::Error::Unsupported {
                code: "tus-content-type",
                detail: "a piece is sent as Content-Type: application/offset+octet-stream".into(),
            }));
        }
        let offset = header_u64(&headers, "upload-offset")?;
        Ok::<_, ApiError>((upload, offset, checksum(&headers)?))
    })();
    let (upload, offset, checksum) = match parsed {
        Ok(p) => p,
        Err(e) => return failed(e, &caller),
    };
    match s.upload_piece(&caller, &upload, offset, checksum, body.into_data_stream()).await {
        Ok(state) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            progress(&state, &mut r);
            tus(r, &caller)
        }
        Err(e) => failed(e, &caller),
    }
}

/// Cancels an upload.
#[utoipa::path(
    delete,
    path = "/v1/uploads/{upload}",
    tag = "uploads",
    summary = "Cancel an upload (tus termination)",
    description = "Its uploader only. What it held is deleted; the record's other uploads go on. Audited.",
    security(("bearer" = [])),
    params(
        ("upload" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", example = "1.0.0", description = "The tus version: 1.0.0"),
    ),
    responses(
        (status = 204, description = "Cancelled"),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotFound,
        (status = 410, description = "Abandoned", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn cancel_upload(
    State(s): State<AppState>,
    caller: Caller,
    Path(upload): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_other_tus(&headers) {
        return tus(r, &caller);
    }
    let upload = match upload_id_arg(&upload) {
        Ok(u) => u,
        Err(e) => return failed(e, &caller),
    };
    match s.cancel_upload(&caller, &upload).await {
        Ok(()) => tus(StatusCode::NO_CONTENT.into_response(), &caller),
        Err(e) => failed(e, &caller),
    }
}
