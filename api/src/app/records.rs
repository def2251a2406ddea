//! Record routes: create, read (consent- or grant-gated), update with
//! `If-Match`, versions, a patient's list, and the lifecycle calls
//! (finalize, unlock, archive) sent to the chain.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessMethod, DataType, RecordType};
use medanchor_contracts::ContractError;
use medanchor_wallet::{ContractCall, Wallet};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{now_ms, optional_number, principal_arg, record_id_arg, role_of, share, with_request_id, AppState, Caller};
use crate::authz::{self, Operation};
use crate::db::{AnchorStatus, RecordMeta};
use crate::envelope::{Binding, Sealed};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
pub(crate) struct RecordBody {
    record_type: String,
    /// Base64 bytes, or any JSON value (stored as the JSON text sent). Kept
    /// as text, never parsed into a tree: a tree costs ~30× the body.
    content: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    confidentiality: Option<u8>,
    /// `custodial` (the node signs with the provider's key it holds) or
    /// `wallet` (the provider signs; the API returns the call to sign).
    #[serde(default)]
    signing: Option<String>,
}

impl RecordBody {
    fn bytes(&self, limit: usize) -> ApiResult<(Vec<u8>, String)> {
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
            Some(other) => {
                return Err(ApiError::bad(
                    "invalid-content",
                    format!("content_encoding {} is not `base64`", crate::error::echo(other)),
                ))
            }
            None => (content.get().as_bytes().to_vec(), "application/json".to_string()),
        };
        if bytes.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        Ok((bytes, ty))
    }
}

/// Whether a record body is the raw payload (`Content-Type:
/// application/octet-stream`) rather than the JSON form.
pub(crate) fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/octet-stream")))
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
        })
    }

    /// The binary body as the payload, without copying it.
    fn binary<'b>(&self, body: &'b [u8], limit: usize) -> ApiResult<(std::borrow::Cow<'b, [u8]>, String)> {
        if body.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        let ty = self.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
        Ok((std::borrow::Cow::Borrowed(body), ty))
    }
}

pub(crate) fn parse_record_type(s: &str) -> ApiResult<RecordType> {
    s.parse::<RecordType>().map_err(|_| {
        let names: Vec<&str> = RecordType::ALL.iter().map(|t| t.name()).collect();
        ApiError::bad(
            "invalid-record-type",
            format!("record_type {} is not one of {}", crate::error::echo(s), names.join(", ")),
        )
    })
}

/// The one authorization rule (`crate::authz::authorize`) for `caller`
/// doing `op` on `patient`'s `data_type`, from the indexer's facts at the
/// tip: the method that allows it, or the contract's own refusal as a 403.
/// Before anything is encrypted or sent; the contract checks again.
pub(crate) fn authorize_at(
    state: &AppState,
    op: Operation,
    patient: &Principal,
    caller: &Principal,
    data_type: DataType,
) -> ApiResult<AccessMethod> {
    let facts = state.chain.access_facts(patient, caller, data_type).map_err(ApiError::internal)?;
    authz::authorize(op, &facts).map_err(denied)
}

/// [`authorize_at`] on a record: with the chain's record state when the
/// record is anchored (its status asserts apply), else — a record whose
/// creation is not mined yet — on our own metadata's patient and type,
/// which are what the creating transaction names.
pub(crate) fn authorize_on_record(
    state: &AppState,
    op: Operation,
    id: &[u8; 16],
    meta: &RecordMeta,
    caller: &Principal,
) -> ApiResult<AccessMethod> {
    match state.chain.record_access(id, caller).map_err(ApiError::internal)? {
        Some((record, facts)) => authz::authorize_record(op, &record, &facts).map_err(denied),
        None => {
            let patient = principal_arg(&meta.patient, "patient")?;
            let data_type: DataType = meta.data_type.parse().map_err(|_| ApiError::internal("stored data type"))?;
            authorize_at(state, op, &patient, caller, data_type)
        }
    }
}

/// A refusal of the chain's rules as a 403 naming the contract's error:
/// `consent-denied` for patient-consent's errors, `access-denied` for
/// record-management's.
pub(crate) fn denied(e: ContractError) -> ApiError {
    ApiError::Forbidden {
        code: if e.code() < 200 { "consent-denied" } else { "access-denied" },
        detail: format!("{}: {}", e.constant(), e.message()),
        reason: Some(json!({ "code": e.code(), "name": e.constant(), "message": e.message() })),
    }
}

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
        ("patient" = String, Path, description = "The patient's Stacks principal"),
        ("record_type" = Option<String>, Query, description = "Binary form only (required there): the record type"),
        ("content_type" = Option<String>, Query, description = "Binary form only: the payload's media type"),
        ("confidentiality" = Option<u8>, Query, description = "Binary form only: 0 to 3 (default 1)"),
        ("signing" = Option<String>, Query, description = "Binary form only: `custodial` (default) or `wallet`"),
    ),
    request_body(content((crate::openapi::RecordRequest = "application/json"), (crate::openapi::Binary = "application/octet-stream")), description = "The JSON form, or the raw payload with its fields in the query"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored; anchoring pending (or the call to sign)", body = crate::openapi::RecordView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_record(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let who = caller.require(&headers)?.clone();
    let patient = principal_arg(&patient, "patient")?;
    let binary = is_binary(&headers);
    let req: RecordBody = if binary {
        RecordBody::from_query(&q)?
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("invalid-body", format!("request body: {e}")))?
    };
    let record_type = parse_record_type(&req.record_type)?;
    let (plaintext, content_type) = if binary {
        req.binary(&body, s.config.max_record_bytes)?
    } else {
        let (bytes, ty) = req.bytes(s.config.max_record_bytes)?;
        (std::borrow::Cow::Owned(bytes), ty)
    };
    let signing = signing_mode(&s, &who, req.signing.as_deref())?;
    let confidentiality = req.confidentiality.unwrap_or(1);
    if confidentiality > 3 {
        return Err(ApiError::bad("invalid-confidentiality", "confidentiality must be 0 to 3"));
    }
    let data_type = record_type.data_type();
    let mut entry = caller.entry(role_of(&s, &who)?, "record.create");
    entry.patient = Some(patient.to_string());
    let (s2, p2, w2) = (s.clone(), patient.clone(), who.clone());
    let allowed = tokio::task::spawn_blocking(move || authorize_at(&s2, Operation::Create, &p2, &w2, data_type))
        .await
        .map_err(ApiError::internal)?;
    let method = match allowed {
        Ok(m) => m.name().to_string(),
        Err(e) => {
            entry.outcome = "denied".into();
            entry.reason = Some(e.to_string());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    let meta = store_version(&s, &id, 1, &patient, &who, record_type, &content_type, &plaintext)?;
    entry.record_id = Some(meta.record_id.clone());
    entry.version = Some(1);
    entry.method = Some(method);
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    let call = ContractCall::create_record(id, &patient, record_type, hash32(&meta.data_hash)?, None, confidentiality)
        .map_err(|e| ApiError::bad("invalid-record", e.to_string()))?;
    let meta = anchor(&s, &who, &id, meta, &call, &signing).await?;
    let body = record_json(&meta, &signing, Some((&call, &s.config.contracts)));
    Ok(with_request_id((StatusCode::ACCEPTED, Json(body)).into_response(), &caller.request_id))
}

/// How a write's transaction is signed: `custodial` (the default; this
/// node must hold the caller's key) or `wallet` (returned to the caller).
pub(crate) fn signing_mode(s: &AppState, who: &Principal, asked: Option<&str>) -> ApiResult<String> {
    match asked.unwrap_or("custodial") {
        "wallet" => Ok("wallet".into()),
        "custodial" if s.custody.holds(&who.to_string()) => Ok("custodial".into()),
        "custodial" => Err(ApiError::bad(
            "no-custodial-key",
            "this node holds no key for you; sign with your wallet (signing: wallet)",
        )),
        _ => Err(ApiError::bad("invalid-signing", "signing must be `custodial` or `wallet`")),
    }
}

pub(crate) fn hash32(hex_str: &str) -> ApiResult<[u8; 32]> {
    hex::decode(hex_str).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| ApiError::internal("stored hash"))
}

/// Encrypts and stores a version, and records it as pending — before any
/// transaction is sent, so a crash leaves a pending version the tracker
/// can settle, never an anchor without its payload.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_version(
    s: &AppState,
    id: &[u8; 16],
    version: u64,
    patient: &Principal,
    author: &Principal,
    record_type: RecordType,
    content_type: &str,
    plaintext: &[u8],
) -> ApiResult<RecordMeta> {
    let patient_s = patient.to_string();
    let binding = Binding { tenant: &s.config.tenant, patient: &patient_s, record_id: id, version };
    let sealed =
        s.keyring.read().unwrap_or_else(|p| p.into_inner()).seal(&binding, plaintext).map_err(ApiError::internal)?;
    let hash = s.blobs.put(&sealed.blob).map_err(ApiError::internal)?;
    let meta = RecordMeta {
        record_id: hex::encode(id),
        version,
        patient: patient_s,
        record_type: record_type.name().into(),
        data_type: record_type.data_type().name().into(),
        author: author.to_string(),
        content_type: content_type.into(),
        size: plaintext.len() as u64,
        data_hash: hex::encode(hash),
        wrapped_key: hex::encode(&sealed.wrapped_key),
        kek_version: sealed.kek_version,
        created_ms: now_ms(),
        status: AnchorStatus::Pending,
        txid: None,
        block_height: None,
        index_block_hash: None,
        failure: None,
        confidentiality: None,
        sent_ms: None,
        custodial: None,
    };
    s.db.put_record(&meta, id).map_err(ApiError::internal)?;
    Ok(meta)
}

/// Sends the anchoring transaction (custodial) or leaves it to the
/// provider's wallet.
pub(crate) async fn anchor(
    s: &AppState,
    who: &Principal,
    id: &[u8; 16],
    mut meta: RecordMeta,
    call: &ContractCall,
    signing: &str,
) -> ApiResult<RecordMeta> {
    if signing != "custodial" {
        meta.custodial = Some(false);
        s.db.put_record(&meta, id).map_err(ApiError::internal)?;
        return Ok(meta);
    }
    meta.custodial = Some(true);
    if !s.custody.holds(&who.to_string()) {
        return Err(ApiError::bad("no-custodial-key", "this node holds no key for you"));
    }
    if let AnchorCall::Create { confidentiality } = anchor_call(call) {
        meta.confidentiality = Some(confidentiality);
    }
    match broadcast(s, who, call).await {
        Sent::Unreachable(e) => {
            // Stays pending; the resender sends it once the node answers.
            meta.failure = Some(format!("not sent yet: {e}"));
            meta.sent_ms = Some(now_ms());
            s.db.put_record(&meta, id).map_err(ApiError::internal)?;
            return Err(ApiError::Unavailable(format!("the node is unreachable: {e}")));
        }
        outcome => settle_broadcast(&mut meta, outcome),
    }
    s.db.put_record(&meta, id).map_err(ApiError::internal)?;
    Ok(meta)
}

/// The kind of anchoring call (to send it again from the metadata).
enum AnchorCall {
    Create { confidentiality: u8 },
    Other,
}

fn anchor_call(call: &ContractCall) -> AnchorCall {
    match (call.function, call.args.last()) {
        ("create-record", Some(medanchor_contracts::ClarityValue::UInt(c))) => {
            AnchorCall::Create { confidentiality: u8::try_from(*c).unwrap_or(1) }
        }
        _ => AnchorCall::Other,
    }
}

/// What became of one broadcast.
pub(crate) enum Sent {
    /// In the node's mempool.
    Accepted(String),
    /// Refused for now (the sender's chain of pending transactions is at
    /// the node's limit, a nonce race): sent again later.
    Later(String),
    /// Refused for good: it can never be mined.
    Refused(String),
    /// Unknown whether it left (the node did not answer).
    Unconfirmed(String),
    /// The node could not be reached at all.
    Unreachable(String),
}

/// Rejections after which the same call, signed again later, can succeed.
const TRANSIENT_REJECTIONS: [&str; 4] =
    ["TooMuchChaining", "ConflictingNonceInMempool", "BadNonce", "ServerFailureDatabase"];

/// Signs `call` with `who`'s custodial key (next nonce from the node,
/// one broadcast at a time per key) and sends it.
pub(crate) async fn broadcast(s: &AppState, who: &Principal, call: &ContractCall) -> Sent {
    let Some((key, lock)) = s.custody.keys.get(&who.to_string()) else {
        return Sent::Refused("this node holds no key for the author".into());
    };
    let _in_order = lock.lock().await;
    let wallet = match Wallet::connect(key.clone(), s.node.clone(), &s.config.contracts).await {
        Ok(w) => w,
        Err(e) => return Sent::Unreachable(e.to_string()),
    };
    match wallet.submit(call, None).await {
        Ok(sent) => Sent::Accepted(sent.txid),
        Err(e @ medanchor_wallet::Error::Rejected { .. }) => {
            let transient = matches!(&e, medanchor_wallet::Error::Rejected { reason, .. }
                if TRANSIENT_REJECTIONS.contains(&reason.as_str()));
            if transient {
                Sent::Later(e.to_string())
            } else {
                Sent::Refused(e.to_string())
            }
        }
        Err(e) => Sent::Unconfirmed(e.to_string()),
    }
}

/// Records a broadcast's outcome in the version's metadata.
pub(crate) fn settle_broadcast(meta: &mut RecordMeta, outcome: Sent) {
    meta.sent_ms = Some(now_ms());
    match outcome {
        Sent::Accepted(txid) => {
            meta.txid = Some(txid);
            meta.failure = None;
        }
        // Pending, without a txid: the resender sends it again.
        Sent::Later(why) => {
            meta.txid = None;
            meta.failure = Some(format!("queued: {why}"));
        }
        // The node said no for good: this transaction will never be mined.
        Sent::Refused(why) => {
            meta.status = AnchorStatus::Failed;
            meta.failure = Some(why);
        }
        // Unknown whether it left (a timeout after sending): stay pending;
        // the tracker settles it from what the chain shows, the resender
        // sends it again if the node never heard of it.
        Sent::Unconfirmed(why) | Sent::Unreachable(why) => meta.failure = Some(format!("broadcast unconfirmed: {why}")),
    }
}

/// The anchoring call of a stored version, rebuilt from its metadata:
/// `create-record` for version 1, else `update-record` on the version
/// before it.
pub(crate) fn anchoring_call(meta: &RecordMeta) -> ApiResult<ContractCall> {
    let id: [u8; 16] = hex::decode(&meta.record_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::internal("stored record id"))?;
    let hash = hash32(&meta.data_hash)?;
    if meta.version == 1 {
        let patient = principal_arg(&meta.patient, "patient")?;
        let record_type = parse_record_type(&meta.record_type)?;
        ContractCall::create_record(id, &patient, record_type, hash, None, meta.confidentiality.unwrap_or(1))
            .map_err(ApiError::internal)
    } else {
        Ok(ContractCall::update_record(id, meta.version - 1, hash, None))
    }
}

/// The record's JSON view; `call` (with the contracts' deployer address)
/// is the transaction for the provider's wallet when `signing` is `wallet`.
pub(crate) fn record_json(meta: &RecordMeta, signing: &str, call: Option<(&ContractCall, &str)>) -> Value {
    let mut v = json!({
        "record_id": meta.record_id,
        "version": meta.version,
        "patient": meta.patient,
        "record_type": meta.record_type,
        "data_type": meta.data_type,
        "author": meta.author,
        "content_type": meta.content_type,
        "size": meta.size,
        "anchor": {
            "status": meta.status,
            "data_hash": format!("0x{}", meta.data_hash),
            "hashed": "SHA-256 of the stored ciphertext blob (nonce ‖ AES-256-GCM ciphertext ‖ tag)",
            "txid": meta.txid,
            "block_height": meta.block_height,
            "index_block_hash": meta.index_block_hash,
            "failure": meta.failure,
        },
    });
    if signing == "wallet" {
        if let Some((call, contracts)) = call {
            v["sign_and_broadcast"] = json!({
                "contract": format!("{contracts}.{}", call.contract.name()),
                "function": call.function,
                "args": call.args.iter().map(|a| format!("0x{}", a.to_hex().trim_start_matches("0x"))).collect::<Vec<_>>(),
            });
        }
    }
    v
}

/// `body` (a JSON object) with the record's content added, as a response:
/// JSON content as the JSON text itself (`content_encoding: "json"`), any
/// other as base64. The content is appended straight into the serialized
/// object rather than run through the JSON serializer: parsing JSON
/// content into a tree costs ~30× its size, and the base64 alphabet needs
/// no escaping (scanning 22 KB per read for escapes was a measurable share
/// of the read path).
pub(crate) fn with_content(body: &Value, plaintext: &[u8], json_content: bool) -> ApiResult<Response> {
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

/// The audit reason of a refused read: the contract's error name when the
/// chain refused, else the problem code.
pub(crate) fn denial_reason(e: &ApiError) -> String {
    match e {
        ApiError::Forbidden { reason: Some(r), .. } => r["name"].as_str().unwrap_or("consent-denied").to_string(),
        other => other.status_code().1.to_string(),
    }
}

/// A record version's metadata: `version`, or the latest.
pub(crate) fn version_or_latest(s: &AppState, id: &[u8; 16], version: Option<u64>) -> ApiResult<RecordMeta> {
    match version {
        Some(v) => {
            s.db.record(id, v)
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::NotFound(format!("record 0x{} version {v}", hex::encode(id))))
        }
        None => current(s, id),
    }
}

/// The version a record is at: its latest anchored version — a pending or
/// failed version above it is visible by number, never served as current.
/// Before any version is anchored, the latest stored one, whose anchor
/// status says where it stands.
pub(crate) fn current(s: &AppState, id: &[u8; 16]) -> ApiResult<RecordMeta> {
    let mut versions = s.db.versions(id).map_err(ApiError::internal)?;
    match versions.iter().rposition(|m| m.status == AnchorStatus::Anchored) {
        Some(i) => Ok(versions.swap_remove(i)),
        None => versions.pop().ok_or_else(|| ApiError::NotFound(format!("record 0x{}", hex::encode(id)))),
    }
}

/// What an update builds on: the version the chain has (`on_chain`, from
/// the indexer) and the number the new version gets, `on_chain + 1`. The
/// version numbers must be the chain's, so a version the chain refused
/// leaves no gap (its slot is reused: it never existed on-chain), and a
/// version still being anchored makes the next update wait (409) instead
/// of building on something the chain may refuse.
fn update_base(versions: &[RecordMeta], on_chain: Option<u64>) -> ApiResult<u64> {
    let Some(on_chain) = on_chain else {
        return Err(ApiError::State {
            code: "record-not-anchored",
            detail: "the record's creation is not on-chain yet (or was refused): update it once it is".into(),
        });
    };
    if let Some(pending) = versions.iter().find(|m| m.version > on_chain && m.status == AnchorStatus::Pending) {
        return Err(ApiError::State {
            code: "version-pending",
            detail: format!("version {} is still being anchored; update again once it is", pending.version),
        });
    }
    Ok(on_chain)
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
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
        ("version" = Option<u64>, Query, description = "A version (default: the latest)"),
        ("X-Share-Grant" = Option<String>, Header, description = "A grant from redeeming a share: read through it instead of on-chain consent"),
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
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let who = caller.require(&headers)?.clone();
    let id = record_id_arg(&id)?;
    let meta = version_or_latest(&s, &id, q.version)?;
    let patient = principal_arg(&meta.patient, "patient")?;
    let data_type: medanchor_contracts::types::DataType =
        meta.data_type.parse().map_err(|_| ApiError::internal("stored data type"))?;
    let mut entry = caller.entry("reader", "record.read");
    entry.patient = Some(meta.patient.clone());
    entry.record_id = Some(meta.record_id.clone());
    entry.version = Some(meta.version);
    // Point reads of the indexer's RocksDB (memtable and block cache), a few
    // microseconds: done inline, as the blob read below is; a hop through
    // the blocking pool cost more than the reads on the hot read path.
    entry.role = role_of(&s, &who)?.into();
    let access = match share::grant_token(&headers) {
        Some(token) => share::through_grant(&s, token, &who, &patient, data_type)?,
        None => match authorize_on_record(&s, Operation::Read, &id, &meta, &who) {
            Ok(method) => Ok((method.name().to_string(), None)),
            Err(e @ ApiError::Forbidden { .. }) => Err((e, None)),
            Err(e) => return Err(e),
        },
    };
    match access {
        Ok((method, share_id)) => {
            entry.method = Some(method);
            entry.share_id = share_id;
        }
        Err((e, share_id)) => {
            entry.outcome = "denied".into();
            entry.reason = Some(denial_reason(&e));
            entry.share_id = share_id;
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    }
    let hash = hash32(&meta.data_hash)?;
    let blob = match s.blobs.get(&hash) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(ApiError::internal(format!("blob {} is missing", meta.data_hash))),
        Err(e) => {
            entry.outcome = "error".into();
            entry.reason = Some(e.to_string());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(ApiError::internal(e));
        }
    };
    let sealed = Sealed {
        blob,
        wrapped_key: hex::decode(&meta.wrapped_key).map_err(ApiError::internal)?,
        kek_version: meta.kek_version,
    };
    let binding = Binding { tenant: &s.config.tenant, patient: &meta.patient, record_id: &id, version: meta.version };
    let plaintext = s
        .keyring
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .open_sealed(&binding, &sealed)
        .map_err(ApiError::internal)?;
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    let json_content = meta.content_type == "application/json";
    // The content is spliced in at the end (`with_content`).
    let mut body = record_json(&meta, "", None);
    // The record's lifecycle as the chain has it (absent until anchored).
    if let Some(r) = s.chain.record(&id).map_err(ApiError::internal)? {
        body["status"] = json!(r.status);
        body["finalized"] = json!(r.finalized);
    }
    let mut response = with_content(&body, &plaintext, json_content)?;
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.version)) {
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
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
        ("If-Match" = String, Header, description = "The version the update is based on, e.g. `\"1\"`"),
    ),
    request_body(content = crate::openapi::RecordRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored; anchoring pending (or the call to sign)", body = crate::openapi::RecordView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Stale version (`version-conflict`, with `current_version`: the chain's), an earlier update still being anchored (`version-pending`), or a creation not mined yet (`record-not-anchored`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn update_record(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let who = caller.require(&headers)?.clone();
    let id = record_id_arg(&id)?;
    let expected: u64 = headers
        .get("if-match")
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().trim_matches('"').trim_start_matches("W/").trim_matches('"'))
        .ok_or_else(|| ApiError::bad("if-match-required", "send If-Match with the version you read"))?
        .parse()
        .map_err(|_| ApiError::bad("invalid-if-match", "If-Match must be a version number"))?;
    let req: RecordBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("invalid-body", format!("request body: {e}")))?;
    let (plaintext, content_type) = req.bytes(s.config.max_record_bytes)?;
    // Refused before anything is stored: a version nobody can sign would
    // stay pending for ever.
    let signing = signing_mode(&s, &who, req.signing.as_deref())?;
    // One writer per record at a time: the loser of a race sees the
    // winner's version and gets 409.
    let lock = s.record_locks.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone();
    let _guard = lock.lock().await;
    let versions = s.db.versions(&id).map_err(ApiError::internal)?;
    let current =
        versions.last().cloned().ok_or_else(|| ApiError::NotFound(format!("record 0x{}", hex::encode(id))))?;
    let mut entry = caller.entry(role_of(&s, &who)?, "record.update");
    entry.patient = Some(current.patient.clone());
    entry.record_id = Some(current.record_id.clone());
    // One read of the chain's view serves the version base and the rule.
    let chain = s.chain.record_access(&id, &who).map_err(ApiError::internal)?;
    let base = match update_base(&versions, chain.as_ref().map(|(r, _)| r.version)) {
        Ok(base) => base,
        Err(e) => {
            entry.outcome = "denied".into();
            entry.reason = Some(e.status_code().1.into());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    entry.version = Some(base + 1);
    if expected != base {
        entry.outcome = "denied".into();
        entry.reason = Some(format!("stale version {expected}, current {base}"));
        s.audit.append(entry).await.map_err(ApiError::internal)?;
        return Err(ApiError::Conflict {
            status: StatusCode::CONFLICT,
            detail: format!("version {expected} is not the current version"),
            current_version: base,
        });
    }
    let record_type = parse_record_type(&current.record_type)?;
    let patient = principal_arg(&current.patient, "patient")?;
    // The contract refuses a finalized or archived record after consent
    // and access; so do we, before anything is encrypted or stored.
    let allowed = match &chain {
        Some((record, facts)) => authz::authorize_record(Operation::Update, record, facts).map_err(denied),
        None => Err(ApiError::internal("update_base passed a record the chain does not have")),
    };
    let method = match allowed {
        Ok(m) => m.name().to_string(),
        Err(e) => {
            entry.outcome = "denied".into();
            entry.reason = Some(e.to_string());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    let version = base + 1;
    if let Some(refused) = versions.iter().find(|m| m.version == version) {
        // The chain refused that version: its slot is this one's now.
        tracing::info!(record = %current.record_id, version, failure = ?refused.failure, "replacing a refused version");
    }
    let meta = store_version(&s, &id, version, &patient, &who, record_type, &content_type, &plaintext)?;
    entry.method = Some(method);
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    let call = ContractCall::update_record(id, base, hash32(&meta.data_hash)?, None);
    let meta = anchor(&s, &who, &id, meta, &call, &signing).await?;
    Ok(with_request_id(
        (StatusCode::ACCEPTED, Json(record_json(&meta, &signing, Some((&call, &s.config.contracts))))).into_response(),
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
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
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
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let who = caller.require(&headers)?.clone();
    let id = record_id_arg(&id)?;
    let versions = s.db.versions(&id).map_err(ApiError::internal)?;
    let first = versions.first().ok_or_else(|| ApiError::NotFound(format!("record 0x{}", hex::encode(id))))?;
    let mut entry = caller.entry(role_of(&s, &who)?, "record.versions");
    entry.patient = Some(first.patient.clone());
    entry.record_id = Some(first.record_id.clone());
    match authorize_on_record(&s, Operation::Read, &id, first, &who) {
        Ok(method) => entry.method = Some(method.name().to_string()),
        Err(e @ ApiError::Forbidden { .. }) => {
            entry.outcome = "denied".into();
            entry.reason = Some(denial_reason(&e));
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    Ok(Json(json!(versions.iter().map(|m| record_json(m, "", None)).collect::<Vec<_>>())))
}

/// A patient's records the caller may read.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/records",
    tag = "records",
    summary = "A patient's records the caller may read",
    params(
        ("patient" = String, Path, description = "The patient's Stacks principal"),
        ("type" = Option<String>, Query, description = "Only this record type"),
        ("provider" = Option<String>, Query, description = "Only this provider's records"),
        ("cursor" = Option<String>, Query, description = "The page to read"),
        ("limit" = Option<u32>, Query, description = "Page size"),
        ("X-Share-Grant" = Option<String>, Header, description = "A grant from redeeming a share: list the types it covers"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = crate::openapi::RecordPage),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_records(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let who = caller.require(&headers)?.clone();
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
    let mut entry = caller.entry(role_of(&s, &who)?, "record.list");
    entry.patient = Some(patient.to_string());
    // Through a grant: only the types it covers, within the chain's rules.
    let grant = share::grant_token(&headers).map(str::to_string);
    if let Some(token) = &grant {
        match s.shares.check_grant(token, &who.to_string(), s.now_ms()) {
            Ok(g) if g.patient == patient.to_string() => {
                entry.method = Some(g.method);
                entry.share_id = Some(g.share_id);
            }
            refused => {
                let e = match refused {
                    Ok(g) => {
                        entry.share_id = Some(g.share_id);
                        ApiError::Forbidden {
                            code: "grant-other-patient",
                            detail: "the grant is for another patient".into(),
                            reason: None,
                        }
                    }
                    Err(e) => e.into(),
                };
                entry.outcome = "denied".into();
                entry.reason = Some(denial_reason(&e));
                s.audit.append(entry).await.map_err(ApiError::internal)?;
                return Err(e);
            }
        }
    }
    let (s2, p2, w2) = (s.clone(), patient.clone(), who.clone());
    let (items, next) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let page = s2.chain.records(&p2, &filter, &page).map_err(|e| match e {
            medanchor_indexer::Error::BadRequest(m) => ApiError::bad("invalid-query", m),
            other => ApiError::internal(other),
        })?;
        // Only the records whose data type the caller may read.
        let mut allowed = HashMap::new();
        let mut items = Vec::new();
        for r in page.items {
            let Ok(dt) = r.data_type.parse::<medanchor_contracts::types::DataType>() else { continue };
            let ok = match allowed.get(&dt) {
                Some(ok) => *ok,
                None => {
                    let ok = match &grant {
                        Some(token) => share::through_grant(&s2, token, &w2, &p2, dt)?.is_ok(),
                        None => match authorize_at(&s2, Operation::Read, &p2, &w2, dt) {
                            Ok(_) => true,
                            Err(ApiError::Forbidden { .. }) => false,
                            Err(e) => return Err(e),
                        },
                    };
                    allowed.insert(dt, ok);
                    ok
                }
            };
            if ok {
                items.push(r);
            }
        }
        Ok((items, page.next_cursor))
    })
    .await
    .map_err(ApiError::internal)??;
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

/// A record lifecycle transition of record-management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// `finalize-record` (WRITE): no more updates until unlocked.
    Finalize,
    /// `unlock-record` (ADMIN): updates allowed again.
    Unlock,
    /// `archive-record` (ADMIN): the record leaves active use.
    Archive,
}

impl Lifecycle {
    fn function(self) -> &'static str {
        match self {
            Lifecycle::Finalize => "finalize-record",
            Lifecycle::Unlock => "unlock-record",
            Lifecycle::Archive => "archive-record",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Lifecycle::Finalize => "record.finalize",
            Lifecycle::Unlock => "record.unlock",
            Lifecycle::Archive => "record.archive",
        }
    }

    fn operation(self) -> Operation {
        match self {
            Lifecycle::Finalize => Operation::Finalize,
            Lifecycle::Unlock => Operation::Unlock,
            Lifecycle::Archive => Operation::Archive,
        }
    }

    /// The one rule on the anchored record (a transition needs it on-chain).
    fn check(self, state: &AppState, id: &[u8; 16], caller: &Principal) -> ApiResult<String> {
        let (record, facts) =
            state.chain.record_access(id, caller).map_err(ApiError::internal)?.ok_or_else(|| {
                ApiError::NotFound(format!("record 0x{} on-chain (not anchored yet?)", hex::encode(id)))
            })?;
        authz::authorize_record(self.operation(), &record, &facts).map(|m| m.name().to_string()).map_err(denied)
    }
}

/// `POST /v1/records/{id}/finalize`.
#[utoipa::path(
    post,
    path = "/v1/records/{id}/finalize",
    tag = "records",
    summary = "Finalize a record (WRITE access)",
    params(
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<String>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn finalize_record(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    lifecycle(s, addr, &id, &q, &headers, Lifecycle::Finalize).await
}

/// `POST /v1/records/{id}/unlock` (ADMIN access).
#[utoipa::path(
    post,
    path = "/v1/records/{id}/unlock",
    tag = "records",
    summary = "Unlock a finalized record (ADMIN access)",
    params(
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<String>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn unlock_record(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    lifecycle(s, addr, &id, &q, &headers, Lifecycle::Unlock).await
}

/// `POST /v1/records/{id}/archive` (ADMIN access).
#[utoipa::path(
    post,
    path = "/v1/records/{id}/archive",
    tag = "records",
    summary = "Archive a record (ADMIN access)",
    params(
        ("id" = String, Path, description = "Record id, 16 bytes of hex"),
        ("signing" = Option<String>, Query, description = "`custodial` (default) or `wallet`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent (txid) or returned to sign", body = crate::openapi::LifecycleResponse),
        crate::openapi::errors::ChainCall,
    )
)]
pub(crate) async fn archive_record(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    lifecycle(s, addr, &id, &q, &headers, Lifecycle::Archive).await
}

/// Checks, audits and sends one lifecycle transaction: signed with the
/// caller's custodial key (202 with the txid), or with `?signing=wallet`
/// returned for the caller's wallet to sign.
pub(crate) async fn lifecycle(
    s: AppState,
    addr: SocketAddr,
    id: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    op: Lifecycle,
) -> ApiResult<Response> {
    let caller = Caller::from(&s, headers, Some(addr));
    let who = caller.require(headers)?.clone();
    let id = record_id_arg(id)?;
    let signing = signing_mode(&s, &who, q.get("signing").map(String::as_str))?;
    // Serialized with updates of the same record, so a check and its
    // transaction see the same state as far as this node can tell.
    let lock = s.record_locks.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone();
    let _guard = lock.lock().await;
    let mut entry = caller.entry(role_of(&s, &who)?, op.action());
    entry.record_id = Some(hex::encode(id));
    if let Some(current) = s.db.versions(&id).map_err(ApiError::internal)?.pop() {
        entry.patient = Some(current.patient.clone());
        entry.version = Some(current.version);
    }
    let (s2, w2) = (s.clone(), who.clone());
    let checked = tokio::task::spawn_blocking(move || op.check(&s2, &id, &w2)).await.map_err(ApiError::internal)?;
    let method = match checked {
        Ok(m) => m,
        Err(e) => {
            entry.outcome = "denied".into();
            entry.reason = Some(e.to_string());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    entry.method = Some(method);
    let call = ContractCall {
        contract: medanchor_contracts::ContractName::RecordManagement,
        function: op.function(),
        args: vec![medanchor_contracts::ClarityValue::Buffer(id.to_vec())],
    };
    let mut body = json!({ "record_id": hex::encode(id), "action": op.action(), "function": op.function() });
    if signing == "wallet" {
        s.audit.append(entry).await.map_err(ApiError::internal)?;
        body["sign_and_broadcast"] = json!({
            "contract": format!("{}.{}", s.config.contracts, call.contract.name()),
            "function": call.function,
            "args": call.args.iter().map(|a| format!("0x{}", a.to_hex().trim_start_matches("0x"))).collect::<Vec<_>>(),
        });
        return Ok(with_request_id((StatusCode::ACCEPTED, Json(body)).into_response(), &caller.request_id));
    }
    let sent = match custodial_submit(&s, &who, &call).await {
        Ok(txid) => txid,
        Err(e) => {
            // Nothing was sent: the audit says so.
            entry.outcome = "error".into();
            entry.reason = Some(e.to_string());
            s.audit.append(entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    s.audit.append(entry).await.map_err(ApiError::internal)?;
    body["txid"] = json!(sent);
    body["status"] = json!("pending");
    Ok(with_request_id((StatusCode::ACCEPTED, Json(body)).into_response(), &caller.request_id))
}

/// Signs and broadcasts `call` with `who`'s custodial key; the txid.
pub(crate) async fn custodial_submit(s: &AppState, who: &Principal, call: &ContractCall) -> ApiResult<String> {
    let Some((key, lock)) = s.custody.keys.get(&who.to_string()) else {
        return Err(ApiError::bad("no-custodial-key", "this node holds no key for you"));
    };
    let _in_order = lock.lock().await;
    let wallet = Wallet::connect(key.clone(), s.node.clone(), &s.config.contracts)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the node is unreachable: {e}")))?;
    let sent = wallet.submit(call, None).await.map_err(|e| ApiError::Unavailable(format!("broadcast failed: {e}")))?;
    Ok(sent.txid)
}
