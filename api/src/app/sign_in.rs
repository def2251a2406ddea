//! Sign-in routes: a challenge for the wallet to sign, its verification
//! into a session token, and `GET /v1/me`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_contracts::principal::Principal;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use medanchor_service::state::now_ms;
use medanchor_service::Error;

use super::{principal_arg, random_hex, with_request_id, AppState, Caller};
use crate::auth::{verify_signature, Claims};
use crate::error::{ApiError, ApiResult};

/// `POST /v1/auth/challenge`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ChallengeRequest {
    /// The Stacks principal signing in (not a contract).
    principal: String,
}

/// Request a sign-in challenge.
#[utoipa::path(
    post,
    path = "/v1/auth/challenge",
    description = "A body that is not this JSON is refused by the framework (plain-text 400, 415 or 422).",
    tag = "auth",
    summary = "Request a sign-in challenge",
    request_body(content = ChallengeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The challenge to sign", body = crate::openapi::ChallengeResponse),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn challenge(State(s): State<AppState>, Json(req): Json<ChallengeRequest>) -> ApiResult<Json<Value>> {
    let principal = principal_arg(&req.principal, "principal")?;
    if matches!(principal, Principal::Contract(..)) {
        return Err(ApiError::bad("invalid-principal", "contracts cannot sign in"));
    }
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    // Nothing is stored: the nonce carries the challenge under the node's
    // MAC (anonymous callers cannot grow the database).
    let c =
        s.challenges().issue(&s.config().domain, &principal, id, now_ms() / 1000, s.config().challenge_ttl.as_secs());
    Ok(Json(json!({ "nonce": c.nonce, "message": c.message(), "expires_at": c.expires_at })))
}

/// `POST /v1/auth/verify`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct SignInRequest {
    /// The challenge's nonce.
    nonce: String,
    /// The wallet's signature of the challenge message (RSV hex).
    signature: String,
}

/// Sign in with the signed challenge.
#[utoipa::path(
    post,
    path = "/v1/auth/verify",
    description = "A body that is not this JSON is refused by the framework (plain-text 400, 415 or 422).",
    tag = "auth",
    summary = "Sign in with the signed challenge",
    request_body(content = SignInRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A session token", body = crate::openapi::SessionResponse),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn sign_in(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<SignInRequest>,
) -> ApiResult<Response> {
    let caller = Caller::from(&s, &headers, Some(addr));
    let (id, c) = s
        .challenges()
        .open(&s.config().domain, &req.nonce)
        .map_err(|_| Error::Unauthorized("unknown or already used challenge".into()))?;
    let now = now_ms() / 1000;
    let principal: Principal = c.principal.parse().map_err(ApiError::internal)?;
    let mut entry = caller.entry("anonymous", "auth.sign-in");
    entry.actor = c.principal.clone();
    let verdict = if now >= c.expires_at {
        Err(Error::Unauthorized("the challenge expired; request a new one".into()))
    } else {
        verify_signature(c.message().as_bytes(), &req.signature, &principal)
            .map_err(|e| Error::Unauthorized(e.to_string()))
    };
    // Single use: only a valid signature uses the challenge up, so a
    // stranger's bad guesses neither store anything nor burn it.
    let verdict = match verdict {
        Ok(()) => match s.db().use_challenge(&id, c.expires_at).map_err(ApiError::internal)? {
            true => Ok(()),
            false => Err(Error::Unauthorized("unknown or already used challenge".into())),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &verdict {
        entry.outcome = "denied".into();
        entry.reason = Some(e.to_string());
    }
    s.audit().append(entry).await.map_err(ApiError::internal)?;
    verdict?;
    let claims =
        Claims { sub: c.principal.clone(), iat: now, exp: now + s.config().session_ttl.as_secs(), jti: random_hex(8) };
    let token = s.session().issue(&claims);
    Ok(with_request_id(
        Json(json!({ "token": token, "principal": c.principal, "expires_at": claims.exp })).into_response(),
        &caller.request_id,
    ))
}

/// The caller's principal and role.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    summary = "The caller's principal and role",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the session is", body = crate::openapi::MeResponse),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn me(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let caller = Caller::from(&s, &headers, None);
    let p = caller.require()?.clone();
    let s2 = s.clone();
    let p2 = p.clone();
    let role = tokio::task::spawn_blocking(move || s2.role_of(&p2)).await.map_err(ApiError::internal)??;
    Ok(Json(json!({ "principal": p.to_string(), "role": role, "custodial": s.custody().holds(&p.to_string()) })))
}
