//! A patient's notifications: the webhook (subscribe — the secret shown
//! once —, read, remove) and the e-mail settings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use medanchor_service::notify::{Digest, Preferences, WebhookView};
use serde::Deserialize;

use super::{principal_arg, AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// A webhook subscription.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    /// Where events are POSTed: an absolute http(s) URL with a host and no
    /// credentials (a public address unless the node allows private
    /// ones, checked at each delivery).
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = "^https?://",
        example = "https://hooks.example.org/medanchor"
    )]
    webhook_url: String,
}

/// `PUT /v1/patients/{patient}/notifications/webhook`.
#[utoipa::path(
    put,
    path = "/v1/patients/{patient}/notifications/webhook",
    tag = "notifications",
    summary = "Subscribe a webhook to the patient's notifications (the patient)",
    description = "From now on, every read or write of the patient's data by someone else, and every break-glass access, is POSTed to the URL as JSON (who, when, which action on which opaque record id — never content), signed `Medanchor-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">` under the secret in the answer (shown once; subscribing again rotates it), with `Medanchor-Event-Id` to de-duplicate on: delivered at least once, retried with exponential backoff. The event is stored in the same commit as the audit entry that records it.",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    request_body = WebhookRequest,
    responses(
        (status = 200, description = "Subscribed; the secret, once", body = WebhookView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn subscribe_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Json(req): Json<WebhookRequest>,
) -> ApiResult<Json<WebhookView>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    Ok(Json(s.subscribe_webhook(&caller, &patient, &req.webhook_url).await?))
}

/// `GET /v1/patients/{patient}/notifications/webhook`.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/notifications/webhook",
    tag = "notifications",
    summary = "The patient's webhook, and its pending and failed events (the patient)",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    responses(
        (status = 200, description = "The subscription (without its secret)", body = WebhookView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    Ok(Json(s.webhook(&caller, &patient).await?))
}

/// `DELETE /v1/patients/{patient}/notifications/webhook`.
#[utoipa::path(
    delete,
    path = "/v1/patients/{patient}/notifications/webhook",
    tag = "notifications",
    summary = "Remove the patient's webhook (the patient)",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    responses(
        (status = 204, description = "Removed"),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn remove_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    s.unsubscribe_webhook(&caller, &patient).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The patient's notification settings, as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreferencesRequest {
    /// Where e-mail goes; absent or null: no e-mail.
    #[schema(
        max_length = 254,
        pattern = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "patient@example.org"
    )]
    email: Option<String>,
    /// `immediate` (default), `hourly` or `daily`.
    #[schema(pattern = "^(immediate|hourly|daily)$")]
    digest: Option<String>,
}

/// `PUT /v1/patients/{patient}/notifications/preferences`.
#[utoipa::path(
    put,
    path = "/v1/patients/{patient}/notifications/preferences",
    tag = "notifications",
    summary = "Set how the patient is e-mailed about their data (the patient)",
    description = "An e-mail address and how often: `immediate` (each event), `hourly` or `daily` (one message per period, UTC). A break-glass access and a lock-out of the patient's access codes are sent at once whatever the setting. A message says who did what, when, to which opaque record — never content; it carries a `Message-ID` derived from its events, so a message sent again after a crash is the same message. Stored off-chain; the events are kept in the audit entry's own commit. The patient only; audited.",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    request_body = PreferencesRequest,
    responses(
        (status = 200, description = "The settings stored", body = Preferences),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn set_preferences(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<Preferences>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let req: PreferencesRequest = super::json_object(body)?;
    let digest = match req.digest.as_deref() {
        None | Some("immediate") => Digest::Immediate,
        Some("hourly") => Digest::Hourly,
        Some("daily") => Digest::Daily,
        Some(_) => return Err(ApiError::bad("invalid-digest", "digest is immediate, hourly or daily")),
    };
    Ok(Json(s.set_preferences(&caller, &patient, Preferences { email: req.email, digest }).await?))
}

/// `GET /v1/patients/{patient}/notifications/preferences`.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/notifications/preferences",
    tag = "notifications",
    summary = "The patient's notification settings (the patient)",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    responses(
        (status = 200, description = "The settings (no e-mail, immediate, when never set)", body = Preferences),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_preferences(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
) -> ApiResult<Json<Preferences>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    Ok(Json(s.preferences(&caller, &patient).await?))
}
