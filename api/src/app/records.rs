//! Record routes: create, read (consent- or grant-gated), update with
//! `If-Match`, versions, a patient's list, and the lifecycle calls
//! (finalize, unlock, archive) sent to the chain.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use medanchor_clinical::TemplateRef;
use medanchor_service::db::RecordMeta;
use medanchor_service::records::{parse_record_type, Lifecycle, NewRecord, Payload, Signing, Written};
use medanchor_service::Error;
use medanchor_wallet::ContractCall;
use serde::Deserialize;

use super::{optional_number, principal_arg, record_id_arg, share, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{AnchorView, ContractCallView, LifecycleResponse, RecordPage, RecordView};

#[derive(Deserialize)]
pub(crate) struct RecordBody {
    record_type: String,
    /// Base64 bytes, or any JSON value (stored as the JSON text sent), `null`
    /// included (absent is `None`, `null` is `Some("null")`). Kept as text,
    /// never parsed into a tree: a tree costs ~30× the body.
    #[serde(default, deserialize_with = "present")]
    content: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    /// An integer as JSON Schema counts them (`2.0` is 2).
    #[serde(default, deserialize_with = "super::json_integer")]
    confidentiality: Option<u8>,
    /// `custodial` (the node signs with the provider's key it holds) or
    /// `wallet` (the provider signs; the API returns the call to sign).
    #[serde(default)]
    signing: Option<String>,
    /// The template structured content is written with (JSON form only).
    #[serde(default)]
    template: Option<TemplateRef>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<serde_json::value::RawValue>>, D::Error> {
    Box::<serde_json::value::RawValue>::deserialize(d).map(Some)
}

impl RecordBody {
    /// The JSON form's payload.
    fn payload(&self, limit: usize) -> ApiResult<Payload> {
        let Some(content) = &self.content else {
            return Err(ApiError::bad("missing-content", "content is required"));
        };
        let (bytes, ty) = match self.content_encoding.as_deref() {
            Some("base64") => {
                let text: &str = serde_json::from_str(content.get())
                    .map_err(|_| ApiError::bad("invalid-content", "base64 content must be a string"))?;
                (
                    B64.decode(text).map_err(|_| ApiError::bad("invalid-content", "content is not valid base64"))?,
                    self.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
                )
            }
            None | Some("json") => (content.get().as_bytes().to_vec(), "application/json".to_string()),
            Some(other) => {
                return Err(ApiError::bad(
                    "invalid-content",
                    format!("content_encoding {} is not `json` or `base64`", crate::error::echo(other)),
                ))
            }
        };
        if bytes.len() > limit {
            return Err(Error::TooLarge(limit).into());
        }
        Ok(Payload { content_type: ty, bytes, template: self.template.clone() })
    }
}

/// The body's media type (`Content-Type` without parameters), lowercase.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("content-type")?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Whether a record body is the raw payload (`Content-Type:
/// application/octet-stream`) rather than the JSON form.
pub(crate) fn is_binary(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m == "application/octet-stream")
}

/// Whether a record body is sent as JSON (`application/json` or a
/// `+json` type), as axum's `Json` extractor wants it: anything else is
/// 415, not parsed as JSON on a guess.
fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers)
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")))
}

impl RecordBody {
    /// The binary form's fields, from the query string: `record_type`
    /// (required), `content_type` (default `application/octet-stream`),
    /// `confidentiality`, `signing`.
    fn from_query(q: &HashMap<String, String>) -> ApiResult<RecordBody> {
        let record_type = q
            .get("record_type")
            .cloned()
            .ok_or_else(|| ApiError::bad("missing-parameter", "record_type is required with a binary body"))?;
        let confidentiality = q
            .get("confidentiality")
            .map(|c| c.parse().map_err(|_| ApiError::bad("invalid-confidentiality", "confidentiality must be 0 to 3")))
            .transpose()?;
        Ok(RecordBody {
            record_type,
            content: None,
            content_encoding: None,
            content_type: q.get("content_type").cloned(),
            confidentiality,
            signing: q.get("signing").cloned(),
            template: None,
        })
    }

    /// Checks the binary form's query parameters that are present.
    fn from_query_fields(q: &HashMap<String, String>) -> ApiResult<()> {
        if let Some(t) = q.get("record_type") {
            parse_record_type(t)?;
        }
        if q.get("signing").is_some_and(|v| v != "custodial" && v != "wallet") {
            return Err(ApiError::bad("invalid-signing", "signing must be `custodial` or `wallet`"));
        }
        if q.get("confidentiality").is_some_and(|c| c.parse::<u8>().map_or(true, |c| c > 3)) {
            return Err(ApiError::bad("invalid-confidentiality", "confidentiality must be 0 to 3"));
        }
        Ok(())
    }

    /// The binary body as the payload (it is encrypted where it lies).
    fn binary(&self, body: Vec<u8>) -> Payload {
        let content_type = self.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
        Payload { content_type, bytes: body, template: None }
    }
}

/// The version an `If-Match` names (`"3"`, `W/"3"` or `3`).
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<u64> {
    headers
        .get("if-match")
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().trim_matches('"').trim_start_matches("W/").trim_matches('"'))
        .ok_or_else(|| ApiError::bad("if-match-required", "send If-Match with the version you read"))?
        .parse()
        .map_err(|_| ApiError::bad("invalid-if-match", "If-Match must be a version number"))
}

/// Whether a body is sent as JSON.
pub(crate) fn sent_as_json(headers: &HeaderMap) -> bool {
    is_json(headers)
}

/// Reads a payload body frame by frame into one buffer sized from
/// `Content-Length`, refusing with 413 as soon as it would pass `limit`
/// (before reading further). One buffer, filled once: collecting frames and
/// then joining them cost a second pass over fresh memory, which for tens
/// of MiB took longer than encrypting them.
pub(crate) async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> ApiResult<Vec<u8>> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        linger(&mut body).await;
        return Err(Error::TooLarge(limit).into());
    }
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad("invalid-body", format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                linger(&mut body).await;
                return Err(Error::TooLarge(limit).into());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Reads and drops what is left of a refused body, up to [`LINGER_BYTES`]
/// or [`LINGER_TIME`], before the 413 goes out: a connection closed with
/// the client's bytes unread is reset, and the client often loses the
/// answer with it (nginx's lingering close). Bounded (read and dropped,
/// never buffered), so it costs a caller more than the node; also before
/// a 401 for a body sent without a session ([`super::session_first`]).
pub(super) async fn linger(body: &mut Body) {
    use http_body_util::BodyExt;
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n >= left {
                break;
            }
            left -= n;
        }
    })
    .await;
}

/// At most this much of a refused body is read before the answer.
const LINGER_BYTES: usize = 8 << 20;
/// For at most this long.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// `POST /v1/patients/{patient}/records`: the JSON form (`RecordBody`,
/// content as JSON or base64), or the binary form — `Content-Type:
/// application/octet-stream`, the raw payload as the body and the other
/// fields as query parameters (`record_type`, `content_type`,
/// `confidentiality`, `signing`) — which spares large uploads the base64
/// inflation and the JSON parse.
#[utoipa::path(
    post,
    path = "/v1/patients/{patient}/records",
    tag = "records",
    summary = "Write a new record (encrypted, then anchored)",
    params(
        ("patient" = crate::openapi::Principal, Path, description = "The patient's Stacks principal"),
        ("record_type" = Option<medanchor_contracts::types::RecordType>, Query, description = "Binary form only, and required there: the record type"),
        ("content_type" = Option<String>, Query, description = "Binary form only: the payload's media type (default `application/octet-stream`)"),
        ("confidentiality" = Option<u8>, Query, minimum = 0, maximum = 3, description = "Binary form only: 0 to 3 (default 1)"),
        ("signing" = Option<crate::openapi::SigningMode>, Query, description = "Binary form only: `custodial` (default) or `wallet`"),
    ),
    request_body(content((crate::openapi::RecordRequest = "application/json"), (crate::openapi::Binary = "application/octet-stream")), description = "The JSON form, or the raw payload (`application/octet-stream`) with its fields in the query: `record_type` is required with it; with the JSON form the body's fields are used, and query parameters sent anyway must still be valid"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored; anchoring pending (or the call to sign)", body = crate::openapi::RecordView, links(
            ("read" = (operation_id = "read_record", parameters(("id" = "$response.body#/record_id")))),
            ("versions" = (operation_id = "record_versions", parameters(("id" = "$response.body#/record_id")))),
            ("update" = (operation_id = "update_record", parameters(("id" = "$response.body#/record_id"), ("If-Match" = "$response.body#/version")))),
            ("finalize" = (operation_id = "finalize_record", parameters(("id" = "$response.body#/record_id")))),
            ("unlock" = (operation_id = "unlock_record", parameters(("id" = "$response.body#/record_id")))),
            ("archive" = (operation_id = "archive_record", parameters(("id" = "$response.body#/record_id")))),
            ("verify" = (operation_id = "verify_record", parameters(("id" = "$response.body#/record_id")))),
            ("ciphertext" = (operation_id = "record_blob", parameters(("id" = "$response.body#/record_id")))),
        )),
        (status = 400, description = "Invalid input: malformed JSON, a body of the wrong shape, no `record_type` with a binary body", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let limit = s.config().max_record_bytes;
    let (req, payload) = if is_binary(&headers) {
        let req = RecordBody::from_query(&q)?;
        parse_record_type(&req.record_type)?;
        let payload = req.binary(read_body(body, &headers, limit).await?);
        (req, payload)
    } else if !is_json(&headers) {
        return Ok(super::unsupported_media_type("send the record as application/json or application/octet-stream"));
    } else {
        let body = read_body(body, &headers, super::payload_limit(s.config())).await?;
        let req: RecordBody =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad("invalid-body", format!("request body: {e}")))?;
        // The body's fields are the ones used; the binary form's query
        // parameters, if sent anyway, must still be valid (a malformed
        // request is refused, not half-read).
        RecordBody::from_query_fields(&q)?;
        parse_record_type(&req.record_type)?;
        let payload = req.payload(limit)?;
        (req, payload)
    };
    let record_type = parse_record_type(&req.record_type)?;
    let new = NewRecord { record_type, payload, confidentiality: req.confidentiality, signing: req.signing };
    let written = s.create_record(&caller, &patient, new).await?;
    Ok(with_request_id(
        (StatusCode::ACCEPTED, Json(written_json(&written, &s.config().contracts))).into_response(),
        &caller.request_id,
    ))
}

/// A written version's JSON view, with the call to sign when the wallet
/// signs.
fn written_json(w: &Written, contracts: &str) -> RecordView {
    record_json(&w.meta, w.signing.name(), Some((&w.call, contracts)))
}

/// The record's JSON view; `call` (with the contracts' deployer address)
/// is the transaction for the provider's wallet when `signing` is `wallet`.
pub(crate) fn record_json(meta: &RecordMeta, signing: &str, call: Option<(&ContractCall, &str)>) -> RecordView {
    RecordView {
        record_id: meta.record_id.bare_hex(),
        version: meta.version,
        patient: meta.patient.clone(),
        record_type: meta.record_type.clone(),
        data_type: meta.data_type.clone(),
        author: meta.author.clone(),
        content_type: meta.content_type.clone(),
        size: meta.size,
        anchor: AnchorView {
            status: meta.status,
            data_hash: meta.data_hash,
            hashed: "SHA-256 of the stored ciphertext blob (nonce ‖ AES-256-GCM ciphertext ‖ tag)".into(),
            txid: meta.txid,
            block_height: meta.block_height,
            index_block_hash: meta.index_block_hash,
            failure: meta.failure.clone(),
        },
        content: None,
        content_encoding: None,
        sign_and_broadcast: match (signing, call) {
            ("wallet", Some((call, contracts))) => Some(sign_and_broadcast(call, contracts)),
            _ => None,
        },
        status: None,
        finalized: None,
        template: meta.template.clone(),
    }
}

/// A call for the caller's wallet to sign and broadcast.
fn sign_and_broadcast(call: &ContractCall, contracts: &str) -> ContractCallView {
    ContractCallView {
        contract: format!("{contracts}.{}", call.contract.name()),
        function: call.function.to_string(),
        args: call.args.iter().map(|a| format!("0x{}", a.to_hex().trim_start_matches("0x"))).collect(),
    }
}

/// `body` (a JSON object) with the record's content added, as a response:
/// JSON content as the JSON text itself (`content_encoding: "json"`), any
/// other as base64. The content is appended straight into the serialized
/// object rather than run through the JSON serializer: parsing JSON
/// content into a tree costs ~30× its size, and the base64 alphabet needs
/// no escaping (scanning 22 KB per read for escapes was a measurable share
/// of the read path).
pub(crate) fn with_content(body: &RecordView, plaintext: &[u8], json_content: bool) -> ApiResult<Response> {
    let head = serde_json::to_string(body).map_err(ApiError::internal)?;
    let Some(head) = head.strip_suffix('}') else {
        return Err(ApiError::internal("record JSON is not an object"));
    };
    let mut out = String::with_capacity(head.len() + plaintext.len() * 4 / 3 + 64);
    out.push_str(head);
    if head.len() > 1 {
        out.push(',');
    }
    if json_content {
        // Validated without building a tree: only JSON is ever spliced.
        serde_json::from_slice::<serde::de::IgnoredAny>(plaintext)
            .map_err(|e| ApiError::internal(format!("stored JSON content: {e}")))?;
        let text = std::str::from_utf8(plaintext).map_err(ApiError::internal)?;
        out.push_str(r#""content_encoding":"json","content":"#);
        out.push_str(text);
        out.push('}');
    } else {
        out.push_str(r#""content_encoding":"base64","content":""#);
        B64.encode_string(plaintext, &mut out);
        out.push_str("\"}");
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], out).into_response())
}

#[derive(Deserialize)]
pub(crate) struct VersionQuery {
    pub(crate) version: Option<u64>,
}

/// Read (decrypt) a record version.
#[utoipa::path(
    get,
    path = "/v1/records/{id}",
    tag = "records",
    summary = "Read (decrypt) a record version",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("version" = Option<u64>, Query, minimum = 1, format = "uint64", maximum = 18446744073709551615u64, description = "A version (default: the latest)"),
        ("X-Share-Grant" = Option<crate::openapi::GrantToken>, Header, nullable = false, description = "A grant from redeeming a share: read through it instead of on-chain consent"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record with its content and anchor; `ETag` is the version", body = crate::openapi::RecordView, headers(("etag" = String, description = "The version, quoted"))),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let opened = s.read_record(&caller, &id, q.version, share::grant_token(&headers)).await?;
    let json_content = opened.meta.content_type == "application/json";
    // The content is spliced in at the end (`with_content`).
    let mut body = record_json(&opened.meta, "", None);
    if let Some((status, finalized)) = opened.chain {
        body.status = Some(status.name().to_string());
        body.finalized = Some(finalized);
    }
    let mut response = with_content(&body, &opened.plaintext, json_content)?;
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", opened.meta.version)) {
        response.headers_mut().insert("etag", v);
    }
    Ok(with_request_id(response, &caller.request_id))
}

/// Write a new version (If-Match: the version read).
#[utoipa::path(
    put,
    path = "/v1/records/{id}",
    tag = "records",
    summary = "Write a new version (If-Match: the version read)",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("If-Match" = String, Header, pattern = r#"^(W/)?"?[0-9]{1,19}"?$"#, description = "The version the update is based on, e.g. `\"1\"`"),
    ),
    request_body(content = crate::openapi::RecordRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored; anchoring pending (or the call to sign)", body = crate::openapi::RecordView, links(
            ("read" = (operation_id = "read_record", parameters(("id" = "$response.body#/record_id")))),
            ("versions" = (operation_id = "record_versions", parameters(("id" = "$response.body#/record_id")))),
            ("update" = (operation_id = "update_record", parameters(("id" = "$response.body#/record_id"), ("If-Match" = "$response.body#/version")))),
            ("finalize" = (operation_id = "finalize_record", parameters(("id" = "$response.body#/record_id")))),
            ("unlock" = (operation_id = "unlock_record", parameters(("id" = "$response.body#/record_id")))),
            ("archive" = (operation_id = "archive_record", parameters(("id" = "$response.body#/record_id")))),
            ("verify" = (operation_id = "verify_record", parameters(("id" = "$response.body#/record_id")))),
            ("ciphertext" = (operation_id = "record_blob", parameters(("id" = "$response.body#/record_id")))),
        )),
        (status = 400, description = "Invalid input: malformed JSON, a body of the wrong shape, no or a malformed `If-Match`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Stale version (`version-conflict`, with `current_version`: the chain's), an earlier update still being anchored (`version-pending`), or a creation not mined yet (`record-not-anchored`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn update_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let expected = if_match(&headers)?;
    if !is_json(&headers) {
        return Ok(super::unsupported_media_type("send the new version as application/json"));
    }
    let body = read_body(body, &headers, super::payload_limit(s.config())).await?;
    let req: RecordBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("invalid-body", format!("request body: {e}")))?;
    // The type and confidentiality are the record's, set at creation; what
    // the body names must still be valid, as the document says.
    parse_record_type(&req.record_type)?;
    if req.confidentiality.is_some_and(|c| c > 3) {
        return Err(ApiError::bad("invalid-confidentiality", "confidentiality must be 0 to 3"));
    }
    let payload = req.payload(s.config().max_record_bytes)?;
    let written = s.update_record(&caller, &id, expected, payload, req.signing.as_deref()).await?;
    Ok(with_request_id(
        (StatusCode::ACCEPTED, Json(written_json(&written, &s.config().contracts))).into_response(),
        &caller.request_id,
    ))
}

/// A record's version history.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/versions",
    tag = "records",
    summary = "A record's version history",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every version, oldest first", body = Vec<crate::openapi::RecordView>),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn record_versions(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RecordView>>> {
    caller.require()?;
    let id = record_id_arg(&id)?;
    let versions = s.record_versions(&caller, &id).await?;
    Ok(Json(versions.iter().map(|m| record_json(m, "", None)).collect()))
}

/// A patient's records the caller may read.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/records",
    tag = "records",
    summary = "A patient's records the caller may read",
    params(
        ("patient" = crate::openapi::Principal, Path, description = "The patient's Stacks principal"),
        ("type" = Option<medanchor_contracts::types::RecordType>, Query, description = "Only this record type"),
        ("provider" = Option<crate::openapi::Principal>, Query, description = "Only this provider's records"),
        ("from_height" = Option<u64>, Query, format = "uint64", maximum = 18446744073709551615u64, description = "Only records anchored at this block height or later"),
        ("to_height" = Option<u64>, Query, format = "uint64", maximum = 18446744073709551615u64, description = "Only records anchored at this block height or earlier"),
        ("from_time" = Option<u64>, Query, format = "uint64", maximum = 18446744073709551615u64, description = "Only records anchored at this block time (Unix seconds) or later"),
        ("to_time" = Option<u64>, Query, format = "uint64", maximum = 18446744073709551615u64, description = "Only records anchored at this block time (Unix seconds) or earlier"),
        ("cursor" = Option<String>, Query, pattern = "^([0-9a-fA-F]{2})*$", description = "The page to read: a previous page's `next_cursor` (another query's cursor is refused with 400)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size (default 50)"),
        ("X-Share-Grant" = Option<crate::openapi::GrantToken>, Header, nullable = false, description = "A grant from redeeming a share: list the types it covers"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = crate::openapi::RecordPage),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "A grant that is not this caller's, not for this patient, expired or revoked", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_records(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<RecordPage>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let filter = medanchor_indexer::query::RecordFilter {
        record_type: q.get("type").map(|t| parse_record_type(t)).transpose()?,
        provider: q.get("provider").map(|p| principal_arg(p, "provider")).transpose()?,
        from_height: optional_number(&q, "from_height")?,
        to_height: optional_number(&q, "to_height")?,
        from_time: optional_number(&q, "from_time")?,
        to_time: optional_number(&q, "to_time")?,
    };
    let page = medanchor_indexer::query::PageRequest {
        cursor: q.get("cursor").cloned(),
        limit: q
            .get("limit")
            .map(|l| l.parse().map_err(|_| ApiError::bad("invalid-limit", "limit must be a number")))
            .transpose()?,
    };
    let (items, next) = s.list_records(&caller, &patient, filter, page, share::grant_token(&headers)).await?;
    Ok(Json(RecordPage { items, next_cursor: next }))
}

/// `POST /v1/records/{id}/finalize`.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/finalize",
    tag = "records",
    summary = "Finalize a record (WRITE access)",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<crate::openapi::SigningMode>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn finalize_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    lifecycle(s, caller, &id, &q, Lifecycle::Finalize).await
}

/// `POST /v1/records/{id}/unlock` (ADMIN access).
#[utoipa::path(
    post,
    path = "/v1/records/{id}/unlock",
    tag = "records",
    summary = "Unlock a finalized record (ADMIN access)",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<crate::openapi::SigningMode>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn unlock_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    lifecycle(s, caller, &id, &q, Lifecycle::Unlock).await
}

/// `POST /v1/records/{id}/archive` (ADMIN access).
#[utoipa::path(
    post,
    path = "/v1/records/{id}/archive",
    tag = "records",
    summary = "Archive a record (ADMIN access)",
    params(
        ("id" = medanchor_contracts::RecordId, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<crate::openapi::SigningMode>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn archive_record(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    lifecycle(s, caller, &id, &q, Lifecycle::Archive).await
}

/// One lifecycle transaction: signed with the caller's custodial key (202
/// with the txid), or with `?signing=wallet` returned for the caller's
/// wallet to sign.
async fn lifecycle(
    s: AppState,
    caller: Caller,
    id: &str,
    q: &HashMap<String, String>,
    op: Lifecycle,
) -> ApiResult<Response> {
    caller.require()?;
    let id = record_id_arg(id)?;
    let t = s.lifecycle(&caller, &id, op, q.get("signing").map(String::as_str)).await?;
    let mut body = LifecycleResponse {
        record_id: id.bare_hex(),
        action: op.action().to_string(),
        function: op.function().to_string(),
        txid: None,
        status: None,
        sign_and_broadcast: None,
    };
    match (t.signing, t.txid) {
        (Signing::Custodial, Some(txid)) => {
            body.txid = Some(txid);
            body.status = Some("pending".into());
        }
        _ => body.sign_and_broadcast = Some(sign_and_broadcast(&t.call, &s.config().contracts)),
    }
    Ok(with_request_id((StatusCode::ACCEPTED, Json(body)).into_response(), &caller.request_id))
}
