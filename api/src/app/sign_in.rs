//! Sign-in routes: a challenge for the wallet to sign, its verification
//! into a session token, and `GET /v1/me`.

use crate::openapi::{ChallengeResponse, MeResponse, SessionResponse};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{principal_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// `POST /v1/auth/challenge`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ChallengeRequest {
    /// The Stacks principal signing in (not a contract).
    #[schema(value_type = crate::openapi::StandardPrincipal)]
    principal: String,
}

/// Request a sign-in challenge.
#[utoipa::path(
    post,
    path = "/v1/auth/challenge",
    tag = "auth",
    summary = "Request a sign-in challenge",
    request_body(content = ChallengeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The challenge to sign", body = crate::openapi::ChallengeResponse),
        (status = 400, description = "Malformed JSON, or a principal that is not an account (a bad checksum, a contract)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn challenge(
    State(s): State<AppState>,
    Json(req): Json<ChallengeRequest>,
) -> ApiResult<Json<ChallengeResponse>> {
    let c = s.challenge(&principal_arg(&req.principal, "principal")?)?;
    Ok(Json(ChallengeResponse { nonce: c.nonce, message: c.message, expires_at: c.expires_at }))
}

/// `POST /v1/auth/verify`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct SignInRequest {
    /// The challenge's nonce.
    nonce: String,
    /// The wallet's signature of the challenge message: 65 bytes of hex,
    /// r ‖ s ‖ v (`0x` optional).
    #[schema(pattern = "^(0x)?[0-9a-fA-F]{130}$")]
    signature: String,
}

/// Sign in with the signed challenge.
#[utoipa::path(
    post,
    path = "/v1/auth/verify",
    tag = "auth",
    summary = "Sign in with the signed challenge",
    request_body(content = SignInRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A session token", body = crate::openapi::SessionResponse),
        crate::openapi::errors::InvalidInput,
        (status = 401, description = "An unknown, used or expired challenge, or a signature that is not the principal's", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn sign_in(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<SignInRequest>,
) -> ApiResult<Response> {
    let session = s.sign_in(&caller, &req.nonce, &req.signature).await?;
    Ok(with_request_id(
        Json(SessionResponse { token: session.token, principal: session.principal, expires_at: session.expires_at })
            .into_response(),
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
pub(crate) async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<MeResponse>> {
    let p = caller.require()?.clone();
    let s2 = s.clone();
    let p2 = p.clone();
    let role = tokio::task::spawn_blocking(move || s2.role_of(&p2)).await.map_err(ApiError::internal)??;
    let custodial = s.custody().holds(&p.to_string());
    Ok(Json(MeResponse { principal: p.to_string(), role: role.to_string(), custodial }))
}
