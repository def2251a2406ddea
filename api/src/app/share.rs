//! Sharing routes: patients make, list and revoke access codes (with an
//! optional QR link); providers redeem a code or a link for a short-lived
//! grant and read through it with `X-Share-Grant`. The model and the
//! brute-force bound are in [`crate::share`].
//!
//! The use cases (who may share and redeem, rate limits, audit) are in
//! [`medanchor_service::sharing`]; reads through a grant, within the
//! chain's rules, in [`medanchor_service::grants`]. These handlers parse
//! the request and render the answer (the QR as PNG and SVG).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use medanchor_contracts::types::DataType;
use serde::Deserialize;

use medanchor_service::sharing::RedeemedGrant;

use super::{with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{
    CreatedShare, GrantAccess, GrantView, IssuerView, LinkGrantView, OkpJwk, ShareGuard, ShareList, ShareQr,
};
use crate::share::store::NewShare;
use crate::share::{qr, ShareDuration};

/// The header that carries a grant token on record reads.
pub const GRANT_HEADER: &str = "x-share-grant";

/// `POST /v1/share/codes`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateShareRequest {
    /// Consent data types by name (`lab-results`, …; `all-standard` never
    /// includes `mental-health` or `genetic`, which must be named), each
    /// at most once.
    #[schema(schema_with = crate::openapi::data_types_schema)]
    data_types: Vec<String>,
    /// `1h`, `6h`, `24h` (default) or `7d`.
    #[schema(value_type = Option<crate::openapi::ShareDurationName>)]
    duration: Option<String>,
    /// Invalidated after one redemption.
    #[serde(default)]
    single_use: bool,
    /// At most this many redemptions (1–1000; 1 with `single_use`).
    #[serde(default, deserialize_with = "super::json_integer")]
    #[schema(minimum = 1, maximum = 1000)]
    max_uses: Option<u32>,
    /// Also make a signed QR link.
    #[serde(default)]
    qr: bool,
    /// The QR link needs the code as passcode (only with `qr`).
    #[serde(default)]
    passcode: bool,
}

/// Marks a response that carries a secret (a code, a grant, a QR key) as
/// not to be stored by any cache.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
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
        (status = 201, description = "The code (shown once), the share, and the QR when asked", body = crate::openapi::CreatedShare, links(
            ("revoke" = (operation_id = "revoke_share", parameters(("id" = "$response.body#/share/id")))),
        )),
        (status = 400, description = "Malformed JSON, `passcode` without `qr`, or `max_uses` above 1 with `single_use`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not a registered patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many active codes", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_share(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateShareRequest>,
) -> ApiResult<Response> {
    caller.require()?;
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
    let made = s.create_share(&caller, new).await?;
    let created = &made.created;
    let qr = match &made.link {
        Some(link) => {
            let content = link.encode();
            let png = qr::png(&content).map_err(ApiError::internal)?;
            Some(ShareQr {
                version: qr::version(&content).map_err(ApiError::internal)?,
                png_base64: B64.encode(png),
                svg: qr::svg(&content).map_err(ApiError::internal)?,
                content,
            })
        }
        None => None,
    };
    let body = CreatedShare {
        code: created.code.clone(),
        share: created.share.view(s.now_ms()),
        qr,
        unlocked_after_failures: created.unlocked,
    };
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
pub(crate) async fn list_shares(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<ShareList>> {
    let list = s.list_shares(&caller)?;
    Ok(Json(ShareList {
        items: list.items,
        active: list.active,
        max_active: list.max_active,
        locked: list.guard.locked,
        failures: list.guard.failures,
        lifetime_failures: list.guard.lifetime_failures,
    }))
}

/// Revoke a share.
#[utoipa::path(
    post,
    path = "/v1/share/codes/{id}/revoke",
    tag = "share",
    summary = "Revoke a share: its code, QR link and grants end at once",
    params(("id" = crate::openapi::ShareId, Path, description = "Share id (hex)")),
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
    let share = s.revoke_share(&caller, &id).await?;
    Ok(with_request_id(Json(share).into_response(), &caller.request_id))
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
pub(crate) async fn unlock_shares(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<ShareGuard>> {
    let guard = s.unlock_shares(&caller).await?;
    Ok(Json(ShareGuard { locked: guard.locked, failures: guard.failures, lifetime_failures: guard.lifetime_failures }))
}

/// `POST /v1/share/redeem`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedeemRequest {
    /// The patient (principal) whose code it is.
    #[schema(value_type = crate::openapi::Principal)]
    patient: String,
    /// The 6-digit code.
    #[schema(value_type = crate::openapi::AccessCode)]
    code: String,
}

/// `POST /v1/share/links/{capability}`'s body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkRedeemRequest {
    /// The 6-digit code, when the link's `flag` has `P`.
    #[schema(value_type = Option<crate::openapi::AccessCode>)]
    passcode: Option<String>,
}

/// A redeemed grant's view.
fn redeemed_body(g: &RedeemedGrant) -> GrantView {
    let r = &g.redeemed;
    GrantView {
        grant: r.token.clone(),
        header: GRANT_HEADER.into(),
        share_id: r.grant.share_id.clone(),
        patient: r.grant.patient.clone(),
        data_types: r.grant.data_types.iter().map(|d| d.name().to_string()).collect(),
        method: r.grant.method.clone(),
        expires_ms: r.grant.expires_ms,
        access: g
            .access
            .iter()
            .map(|a| GrantAccess {
                data_type: a.data_type.name().to_string(),
                allowed: a.allowed,
                reason: a.reason.map(str::to_string),
            })
            .collect(),
    }
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
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::RateLimited,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn redeem_code(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<RedeemRequest>,
) -> ApiResult<Response> {
    let granted = s.redeem_code(&caller, &req.patient, &req.code).await?;
    Ok(with_request_id(no_store(Json(redeemed_body(&granted)).into_response()), &caller.request_id))
}

/// Redeem a scanned QR link.
#[utoipa::path(
    post,
    path = "/v1/share/links/{capability}",
    tag = "share",
    summary = "Redeem a scanned QR link for a grant and its encrypted release document",
    params(("capability" = crate::openapi::Capability, Path, description = "The link's 256-bit capability (base64url), from its `url`")),
    request_body(content = Option<LinkRedeemRequest>, description = "Optional: only a link with a passcode needs one"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant, and `release`: a compact JWE (dir, A256GCM) under the QR's key", body = crate::openapi::LinkGrantView),
        crate::openapi::errors::InvalidInput,
        (status = 401, description = "Passcode missing or wrong (`remaining_attempts`), locked, or no valid session", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NotAProvider,
        (status = 404, description = "Unknown link", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired, revoked, used up or burned", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::RateLimited,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn redeem_link(
    State(s): State<AppState>,
    caller: Caller,
    Path(capability): Path<String>,
    body: Option<Json<Option<LinkRedeemRequest>>>,
) -> ApiResult<Response> {
    // No body and a `null` body both mean no passcode.
    let req = body.and_then(|Json(b)| b).unwrap_or_default();
    let (granted, release) = s.redeem_link(&caller, &capability, req.passcode.as_deref()).await?;
    let body = LinkGrantView { grant: redeemed_body(&granted), release };
    Ok(with_request_id(no_store(Json(body).into_response()), &caller.request_id))
}

/// The key scanners pin to check QR links offline.
#[utoipa::path(
    get,
    path = "/v1/share/issuer",
    tag = "share",
    summary = "The node's link-signing key (pin it once; then check QR links offline)",
    responses((status = 200, description = "The issuer and its Ed25519 key as a JWK", body = crate::openapi::IssuerView))
)]
pub(crate) async fn issuer(State(s): State<AppState>) -> Json<IssuerView> {
    let keys = s.shares().keys();
    Json(IssuerView {
        iss: s.config().public_url.trim_end_matches('/').to_string(),
        kid: keys.kid(),
        jwk: OkpJwk { kty: "OKP", crv: "Ed25519", alg: "EdDSA", x: B64URL.encode(keys.issuer_key().as_bytes()) },
    })
}

/// The grant a request presents, if any.
pub(super) fn grant_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(GRANT_HEADER).map(|v| v.to_str().unwrap_or(""))
}
