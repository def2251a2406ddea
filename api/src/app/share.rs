//! Sharing routes: patients make, list and revoke access codes (with an
//! optional QR link); providers redeem a code or a link for a short-lived
//! grant and read through it with `X-Share-Grant`. The model and the
//! brute-force bound are in [`crate::share`].
//!
//! A grant widens access beyond on-chain consent only within the chain's
//! own rules, checked at every read: the reader must be a registered,
//! active provider; the patient must be registered, alive and the
//! contracts running; and an explicit on-chain revocation of this
//! provider's consent for the data type wins over a code — a code lets a
//! patient share with a provider they never consented to on-chain, never
//! override a "no" they recorded there.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::DataType;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{principal_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::share::link::LinkPayload;
use crate::share::store::{Created, NewShare, Redeemed};
use crate::share::{qr, Grant, Share, ShareDuration};
use medanchor_service::Error;

/// The header that carries a grant token on record reads.
pub const GRANT_HEADER: &str = "x-share-grant";

fn require_patient(s: &AppState, who: &Principal) -> Result<(), Error> {
    match s.chain().patient(who).map_err(Error::internal)? {
        Some(_) => Ok(()),
        None => Err(Error::Forbidden {
            code: "patient-required",
            detail: "only a patient registered on-chain can share their records".into(),
            reason: None,
        }),
    }
}

fn require_provider(s: &AppState, who: &Principal) -> Result<(), Error> {
    match s.chain().provider(who).map_err(Error::internal)? {
        Some(p) if p.active => Ok(()),
        Some(_) => Err(Error::Forbidden {
            code: "provider-inactive",
            detail: "the provider is deactivated on-chain".into(),
            reason: None,
        }),
        None => Err(Error::Forbidden {
            code: "provider-required",
            detail: "only a provider registered on-chain can redeem a share".into(),
            reason: None,
        }),
    }
}

/// `POST /v1/share/codes`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateShareRequest {
    /// Consent data types by name (`lab-results`, …; `all-standard` never
    /// includes `mental-health` or `genetic`, which must be named).
    data_types: Vec<String>,
    /// `1h`, `6h`, `24h` (default) or `7d`.
    duration: Option<String>,
    /// Invalidated after one redemption.
    #[serde(default)]
    single_use: bool,
    /// At most this many redemptions (1–1000).
    max_uses: Option<u32>,
    /// Also make a signed QR link.
    #[serde(default)]
    qr: bool,
    /// The QR link needs the code as passcode (only with `qr`).
    #[serde(default)]
    passcode: bool,
}

/// The release document of a QR link: what the scanner learns, encrypted
/// under the QR's key — whose data, which types, until when, from which
/// node. Opaque ids only, and no record list: records are listed through
/// the grant, where the chain's rules apply at the time of reading.
fn release_document(s: &AppState, share: &Share) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "v": 1,
        "share_id": share.id,
        "patient": share.patient,
        "data_types": share.data_types,
        "expires_ms": share.expires_ms,
        "issuer": s.config().public_url.trim_end_matches('/'),
    }))
    .expect("json")
}

/// Marks a response that carries a secret (a code, a grant, a QR key) as
/// not to be stored by any cache.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// The signed link of a created share.
fn link_payload(s: &AppState, created: &Created, capability: &str, key: &[u8; 32]) -> LinkPayload {
    let base = s.config().public_url.trim_end_matches('/');
    let mut payload = LinkPayload {
        url: format!("{base}/v1/share/links/{capability}"),
        key: B64URL.encode(key),
        exp: created.share.expires_ms / 1000,
        flag: created.share.link.as_ref().is_some_and(|l| l.passcode).then(|| "P".to_string()),
        label: "medanchor share".into(),
        v: 1,
        iss: base.to_string(),
        kid: String::new(),
        sig: None,
    };
    s.shares().keys().sign(&mut payload);
    payload
}

/// Make an access code (and optionally a QR link).
#[utoipa::path(
    post,
    path = "/v1/share/codes",
    tag = "share",
    summary = "Make an access code (and optionally a signed QR link)",
    request_body = CreateShareRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The code (shown once), the share, and the QR when asked", body = crate::openapi::CreatedShare),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not a registered patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many active codes", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_share(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateShareRequest>,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    require_patient(&s, &who)?;
    let data_types = req
        .data_types
        .iter()
        .map(|d| d.parse::<DataType>().map_err(|e| ApiError::bad("invalid-data-type", e.to_string())))
        .collect::<ApiResult<Vec<_>>>()?;
    let duration = match &req.duration {
        Some(d) => d.parse::<ShareDuration>().map_err(|e| ApiError::bad("invalid-duration", e))?,
        None => ShareDuration::default(),
    };
    if req.passcode && !req.qr {
        return Err(ApiError::bad("invalid-share", "passcode applies to a QR link: set qr too"));
    }
    let new = NewShare {
        data_types,
        duration,
        single_use: req.single_use,
        max_uses: req.max_uses,
        link: req.qr.then_some(req.passcode),
    };
    let now = s.now_ms();
    let patient = who.to_string();
    let (s2, p2) = (s.clone(), patient.clone());
    let created =
        tokio::task::spawn_blocking(move || s2.shares().create(&p2, &new, now, &|share| release_document(&s2, share)))
            .await
            .map_err(ApiError::internal)?;
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let mut entry = caller.entry("patient", "share.create");
            entry.patient = Some(patient);
            return refuse(&s, entry, e).await;
        }
    };
    if let Some(failures) = created.unlocked {
        let mut entry = caller.entry("patient", "share.unlock");
        entry.patient = Some(patient.clone());
        entry.reason = Some(format!("lifted by a new code after {failures} failed attempts"));
        s.audit().append(entry).await.map_err(ApiError::internal)?;
    }
    let mut entry = caller.entry("patient", "share.create");
    entry.patient = Some(patient);
    entry.share_id = Some(created.share.id.clone());
    s.audit().append(entry).await.map_err(ApiError::internal)?;
    let mut body = json!({ "code": created.code, "share": created.share.view(now) });
    if let Some(failures) = created.unlocked {
        body["unlocked_after_failures"] = json!(failures);
    }
    if let Some((capability, key)) = &created.link {
        let content = link_payload(&s, &created, capability, key).encode();
        let png = qr::png(&content).map_err(ApiError::internal)?;
        body["qr"] = json!({
            "content": content,
            "version": qr::version(&content).map_err(ApiError::internal)?,
            "png_base64": B64.encode(png),
            "svg": qr::svg(&content).map_err(ApiError::internal)?,
        });
    }
    Ok(with_request_id(no_store((StatusCode::CREATED, Json(body)).into_response()), &caller.request_id))
}

/// List your shares.
#[utoipa::path(
    get,
    path = "/v1/share/codes",
    tag = "share",
    summary = "List your shares (active ones counted) and the lock state",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your shares", body = crate::openapi::ShareList),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_shares(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let who = caller.require()?.to_string();
    let now = s.now_ms();
    let items = s.shares().list(&who, now)?;
    let guard = s.shares().guard(&who)?;
    let active = items.iter().filter(|v| v.state == crate::share::ShareState::Active).count();
    Ok(Json(json!({
        "items": items,
        "active": active,
        "max_active": s.shares().policy().max_active,
        "locked": guard.locked,
        "failures": guard.failures,
        "lifetime_failures": guard.lifetime_failures,
    })))
}

/// Revoke a share.
#[utoipa::path(
    post,
    path = "/v1/share/codes/{id}/revoke",
    tag = "share",
    summary = "Revoke a share: its code, QR link and grants end at once",
    params(("id" = String, Path, description = "Share id (hex)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revoked share", body = crate::share::ShareView),
        crate::openapi::errors::NoSession,
        (status = 404, description = "No such share of yours", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn revoke_share(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let who = caller.require()?.to_string();
    let now = s.now_ms();
    let (s2, w2) = (s.clone(), who.clone());
    let revoked =
        tokio::task::spawn_blocking(move || s2.shares().revoke(&w2, &id, now)).await.map_err(ApiError::internal)?;
    let mut entry = caller.entry("patient", "share.revoke");
    entry.patient = Some(who);
    let share = match revoked {
        Ok(share) => share,
        Err(e) => return refuse(&s, entry, e).await,
    };
    entry.share_id = Some(share.id.clone());
    s.audit().append(entry).await.map_err(ApiError::internal)?;
    Ok(with_request_id(Json(share.view(now)).into_response(), &caller.request_id))
}

/// Unlock redemption after a lock-out.
#[utoipa::path(
    post,
    path = "/v1/share/unlock",
    tag = "share",
    summary = "Lift the lock-out after too many failed attempts (the failures stay in your access history)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counter after unlocking", body = crate::openapi::ShareGuard),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn unlock_shares(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let who = caller.require()?.to_string();
    let (s2, w2) = (s.clone(), who.clone());
    let guard = tokio::task::spawn_blocking(move || s2.shares().unlock(&w2)).await.map_err(ApiError::internal)??;
    let mut entry = caller.entry("patient", "share.unlock");
    entry.patient = Some(who);
    s.audit().append(entry).await.map_err(ApiError::internal)?;
    Ok(Json(json!({
        "locked": guard.locked, "failures": guard.failures, "lifetime_failures": guard.lifetime_failures,
    })))
}

/// `POST /v1/share/redeem`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedeemRequest {
    /// The patient (principal) whose code it is.
    patient: String,
    /// The 6-digit code.
    code: String,
}

/// `POST /v1/share/links/{capability}`'s body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkRedeemRequest {
    /// The 6-digit code, when the link's `flag` has `P`.
    passcode: Option<String>,
}

/// What each data type a grant covers gives right now, under the chain's
/// rules.
fn effective_access(s: &AppState, grant: &Grant, provider: &Principal) -> ApiResult<Vec<Value>> {
    let patient = principal_arg(&grant.patient, "patient")?;
    // Concrete types: a broad share is reported per type it covers.
    let covered = DataType::ALL.iter().filter(|d| **d != DataType::AllStandard && grant.covers(**d));
    let mut out = Vec::new();
    for d in covered {
        let refusal = medanchor_service::grants::grant_refusal(s, &patient, provider, *d)?;
        out.push(json!({
            "data_type": d,
            "allowed": refusal.is_none(),
            "reason": refusal.map(|e| e.constant()),
        }));
    }
    Ok(out)
}

fn redeemed_body(s: &AppState, r: &Redeemed, provider: &Principal) -> ApiResult<Value> {
    Ok(json!({
        "grant": r.token,
        "header": GRANT_HEADER,
        "share_id": r.grant.share_id,
        "patient": r.grant.patient,
        "data_types": r.grant.data_types,
        "method": r.grant.method,
        "expires_ms": r.grant.expires_ms,
        "access": effective_access(s, &r.grant, provider)?,
    }))
}

/// Rate-limits one attempt; a refusal is audited like any failed attempt.
async fn limit(s: &AppState, caller: &Caller, who: &Principal, entry: crate::audit::AuditEntry) -> ApiResult<()> {
    if let Err((scope, wait_ms)) = s.limiter().attempt(caller.ip.as_deref(), &who.to_string(), s.now_ms()) {
        let e = Error::TooManyRequests {
            detail: format!("too many redemption attempts from {}; retry later", scope.name()),
            retry_after_s: wait_ms.div_ceil(1000).max(1),
        };
        return refuse(s, entry, e).await;
    }
    Ok(())
}

/// Redeem a patient's 6-digit code.
#[utoipa::path(
    post,
    path = "/v1/share/redeem",
    tag = "share",
    summary = "Redeem a patient's 6-digit code for a short-lived grant",
    request_body = RedeemRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant (send it as `X-Share-Grant` on record reads)", body = crate::openapi::GrantView),
        (status = 400, description = "Invalid input (a malformed code is not counted as an attempt)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong code (`remaining_attempts`), locked, or no valid session", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NotAProvider,
        crate::openapi::errors::RateLimited,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn redeem_code(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<RedeemRequest>,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let mut entry = caller.entry(s.role_of(&who)?, "share.redeem");
    entry.method = Some("access_code".into());
    let patient = match principal_arg(&req.patient, "patient") {
        Ok(p) => p,
        Err(e) => return refuse(&s, entry, e).await,
    };
    entry.patient = Some(patient.to_string());
    if let Err(e) = require_provider(&s, &who) {
        return refuse(&s, entry, e).await;
    }
    limit(&s, &caller, &who, entry.clone()).await?;
    let store = s.shares().clone();
    let (p, code, provider, now) = (patient.to_string(), req.code.clone(), who.to_string(), s.now_ms());
    let outcome = tokio::task::spawn_blocking(move || store.redeem_code(&p, &code, &provider, now))
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        Ok(r) => {
            entry.share_id = Some(r.grant.share_id.clone());
            s.audit().append(entry).await.map_err(ApiError::internal)?;
            Ok(with_request_id(no_store(Json(redeemed_body(&s, &r, &who)?).into_response()), &caller.request_id))
        }
        Err(e) => refuse(&s, entry, e).await,
    }
}

/// Audits a refused attempt and answers with the refusal (or the audit
/// failure).
async fn refuse<T>(s: &AppState, entry: crate::audit::AuditEntry, e: impl Into<Error>) -> ApiResult<T> {
    Ok(s.audited(entry, Err(e.into())).await?)
}

/// Redeem a scanned QR link.
#[utoipa::path(
    post,
    path = "/v1/share/links/{capability}",
    tag = "share",
    summary = "Redeem a scanned QR link for a grant and its encrypted release document",
    params(("capability" = String, Path, description = "The link's 256-bit capability (base64url), from its `url`")),
    request_body = LinkRedeemRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant, and `release`: a compact JWE (dir, A256GCM) under the QR's key", body = crate::openapi::LinkGrantView),
        crate::openapi::errors::InvalidInput,
        (status = 401, description = "Passcode missing or wrong (`remaining_attempts`), locked, or no valid session", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NotAProvider,
        (status = 404, description = "Unknown link", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired, revoked, used up or burned", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::RateLimited,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn redeem_link(
    State(s): State<AppState>,
    caller: Caller,
    Path(capability): Path<String>,
    body: Option<Json<LinkRedeemRequest>>,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let mut entry = caller.entry(s.role_of(&who)?, "share.redeem");
    entry.method = Some("qr_code".into());
    if let Err(e) = require_provider(&s, &who) {
        return refuse(&s, entry, e).await;
    }
    limit(&s, &caller, &who, entry.clone()).await?;
    let store = s.shares().clone();
    let (provider, now) = (who.to_string(), s.now_ms());
    let cap = capability.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        // Attribute the attempt to the patient and share even when it fails.
        let share = store.share_of_link(&cap).ok().flatten();
        (share, store.redeem_link(&cap, req.passcode.as_deref(), &provider, now))
    })
    .await
    .map_err(ApiError::internal)?;
    let (share, outcome) = outcome;
    if let Some(share) = &share {
        entry.patient = Some(share.patient.clone());
        entry.share_id = Some(share.id.clone());
    }
    match outcome {
        Ok((r, release)) => {
            s.audit().append(entry).await.map_err(ApiError::internal)?;
            let mut body = redeemed_body(&s, &r, &who)?;
            body["release"] = json!(release);
            Ok(with_request_id(no_store(Json(body).into_response()), &caller.request_id))
        }
        Err(e) => refuse(&s, entry, e).await,
    }
}

/// The key scanners pin to check QR links offline.
#[utoipa::path(
    get,
    path = "/v1/share/issuer",
    tag = "share",
    summary = "The node's link-signing key (pin it once; then check QR links offline)",
    responses((status = 200, description = "The issuer and its Ed25519 key as a JWK", body = crate::openapi::IssuerView))
)]
pub(crate) async fn issuer(State(s): State<AppState>) -> Json<Value> {
    let keys = s.shares().keys();
    Json(json!({
        "iss": s.config().public_url.trim_end_matches('/'),
        "kid": keys.kid(),
        "jwk": { "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": B64URL.encode(keys.issuer_key().as_bytes()) },
    }))
}

/// The grant a request presents, if any.
pub(super) fn grant_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(GRANT_HEADER).map(|v| v.to_str().unwrap_or(""))
}
