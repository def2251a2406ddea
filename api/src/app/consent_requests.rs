//! Consent requests: a provider asks a patient for consent to data types
//! (with a period and a purpose); the patient lists what is pending,
//! approves — reporting the `grant-consent` transactions their wallet
//! signed — or declines. The use cases (who may ask, limits, expiry,
//! audit, the patient's notification) are in
//! [`medanchor_service::consent_requests`]; these handlers parse the
//! request and render the answer.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_contracts::types::DataType;
use medanchor_service::consent_requests::{ConsentRequest, NewConsentRequest};
use serde::Deserialize;

use super::{principal_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{ConsentRequestList, ConsentRequestView};

fn view(r: ConsentRequest) -> ConsentRequestView {
    ConsentRequestView {
        state: r.state.name(),
        id: r.id,
        provider: r.provider,
        patient: r.patient,
        data_types: r.data_types,
        duration_blocks: r.duration_blocks,
        purpose: r.purpose,
        created_ms: r.created_ms,
        expires_ms: r.expires_ms,
        decided_ms: r.decided_ms,
        message: r.message,
        txids: r.txids,
        granted_on_chain: r.granted_on_chain,
    }
}

/// `POST /v1/consent-requests`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConsentRequest {
    /// The patient asked (registered on-chain).
    #[schema(value_type = crate::openapi::Principal)]
    patient: String,
    /// Consent data types by name, 1 to 6, each at most once.
    #[schema(schema_with = crate::openapi::consent_request_types_schema)]
    data_types: Vec<String>,
    /// For how many burn blocks the consent is asked (absent: until
    /// revoked).
    #[serde(default, deserialize_with = "super::json_integer")]
    #[schema(minimum = 1, maximum = 5_259_600)]
    duration_blocks: Option<u64>,
    /// Why: 1 to 500 characters, not blank, no control characters (line
    /// breaks included). Kept off-chain, shown to the patient; never in
    /// the audit log or a notification.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    purpose: String,
}

/// A data type by its name (the document's names only: not the
/// contracts' numeric codes, which the type's parser also reads).
fn data_type(name: &str) -> ApiResult<DataType> {
    DataType::ALL.iter().copied().find(|d| d.name() == name).ok_or_else(|| {
        let names: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
        ApiError::bad(
            "invalid-data-type",
            format!("data type {} is not one of {}", crate::error::echo(name), names.join(", ")),
        )
    })
}

/// Ask a patient for consent.
#[utoipa::path(
    post,
    path = "/v1/consent-requests",
    tag = "consent-requests",
    summary = "Ask a patient for consent to data types, for a period, with a purpose (providers)",
    description = "The patient is notified (which provider asks for which data types and for how long — never the purpose) and sees the request among their pending ones for 7 days. It grants nothing: the patient approves by signing `grant-consent` in their own wallet, and the chain decides every access. At most 5 pending requests per patient and 200 in all per provider (expired ones do not count). Audited (`consent-request.create`).",
    request_body = CreateConsentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The request, pending", body = ConsentRequestView, links(
            ("read" = (operation_id = "read_consent_request", parameters(("id" = "$response.body#/id")))),
            ("approve" = (operation_id = "approve_consent_request", parameters(("id" = "$response.body#/id")))),
            ("decline" = (operation_id = "decline_consent_request", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "Invalid input: a data type unknown or named twice, not 1 to 6 of them, a bad duration or purpose", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not an active provider on-chain (`provider-required`, `provider-inactive`), the patient not registered on-chain (`patient-not-registered`), or the caller themself (`request-to-self`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many pending requests: 5 to this patient (`consent-request-limit`) or 200 in all (`provider-request-limit`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_consent_request(
    State(s): State<AppState>,
    caller: Caller,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    caller.require()?;
    let req: CreateConsentRequest = super::json_object(body)?;
    let patient = principal_arg(&req.patient, "patient")?;
    let data_types = req.data_types.iter().map(|d| data_type(d)).collect::<ApiResult<Vec<_>>>()?;
    let new = NewConsentRequest { patient, data_types, duration_blocks: req.duration_blocks, purpose: req.purpose };
    let made = s.request_consent(&caller, new).await?;
    Ok(with_request_id((StatusCode::CREATED, Json(view(made))).into_response(), &caller.request_id))
}

/// The caller's consent requests.
#[utoipa::path(
    get,
    path = "/v1/consent-requests",
    tag = "consent-requests",
    summary = "Your consent requests: addressed to you (patients) or sent by you (providers), newest first",
    description = "At most 200. `state=pending` (the default): those still waiting for the patient; `state=all`: approved, declined and expired ones too. Each says whether the chain shows the consent now (`granted_on_chain`). Audited (`consent-request.list`).",
    security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, pattern = "^(pending|all)$", description = "`pending` (default) or `all`"),
    ),
    responses(
        (status = 200, description = "The requests", body = ConsentRequestList),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_consent_requests(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<ConsentRequestList>> {
    caller.require()?;
    super::exports::only(&q, &["state"])?;
    let include_closed = match q.get("state").map(String::as_str) {
        None | Some("pending") => false,
        Some("all") => true,
        Some(_) => return Err(ApiError::bad("invalid-state", "state is pending or all")),
    };
    let requests = s.consent_requests(&caller, include_closed).await?;
    Ok(Json(ConsentRequestList { requests: requests.into_iter().map(view).collect() }))
}

/// One consent request.
#[utoipa::path(
    get,
    path = "/v1/consent-requests/{id}",
    tag = "consent-requests",
    summary = "One consent request (its patient or its provider)",
    description = "Anyone else is answered 404, whether or not it exists. Audited (`consent-request.read`).",
    params(("id" = crate::openapi::ConsentRequestId, Path, description = "The request")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request", body = ConsentRequestView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 404, description = "No such request of yours", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_consent_request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ConsentRequestView>> {
    caller.require()?;
    Ok(Json(view(s.consent_request(&caller, &id).await?)))
}

/// `POST /v1/consent-requests/{id}/approve`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveConsentRequest {
    /// The `grant-consent` transactions the patient's wallet signed and
    /// broadcast: 1 to 8, each at most once.
    #[schema(schema_with = crate::openapi::grant_txids_schema)]
    txids: Vec<String>,
}

/// Approve a consent request.
#[utoipa::path(
    post,
    path = "/v1/consent-requests/{id}/approve",
    tag = "consent-requests",
    summary = "Approve a pending consent request, reporting the grant transactions your wallet signed (its patient)",
    description = "Sign and broadcast `grant-consent` (patient-consent) for each requested data type in your own wallet first; the request records the txids. Approving grants nothing by itself: `granted_on_chain` turns true once the chain holds the consent for every requested type. Audited (`consent-request.approve`, with the txids).",
    params(("id" = crate::openapi::ConsentRequestId, Path, description = "The request")),
    request_body = ApproveConsentRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request, approved", body = ConsentRequestView),
        (status = 400, description = "Malformed id, or not 1 to 8 distinct txids of `0x` and 64 lowercase hex digits", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        (status = 403, description = "The request's provider: only its patient decides", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request of yours", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already (`request-decided`) or expired (`request-expired`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn approve_consent_request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<ConsentRequestView>> {
    caller.require()?;
    let req: ApproveConsentRequest = super::json_object(body)?;
    Ok(Json(view(s.approve_consent_request(&caller, &id, req.txids).await?)))
}

/// `POST /v1/consent-requests/{id}/decline`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclineConsentRequest {
    /// A message for the provider: at most 500 characters, no control
    /// characters (line breaks included). Kept off-chain; never in the
    /// audit log.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    message: Option<String>,
}

/// Decline a consent request.
#[utoipa::path(
    post,
    path = "/v1/consent-requests/{id}/decline",
    tag = "consent-requests",
    summary = "Decline a pending consent request, with an optional message for the provider (its patient)",
    description = "Audited (`consent-request.decline`; the message is not in the entry).",
    params(("id" = crate::openapi::ConsentRequestId, Path, description = "The request")),
    request_body = DeclineConsentRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request, declined", body = ConsentRequestView),
        (status = 400, description = "Malformed id, or a message too long or with control characters", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        (status = 403, description = "The request's provider: only its patient decides", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request of yours", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already (`request-decided`) or expired (`request-expired`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn decline_consent_request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<ConsentRequestView>> {
    caller.require()?;
    let req: DeclineConsentRequest = super::json_object(body)?;
    Ok(Json(view(s.decline_consent_request(&caller, &id, req.message).await?)))
}
