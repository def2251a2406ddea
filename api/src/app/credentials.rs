//! Provider credentials: the provider writes their document, anyone signed
//! in reads it next to the chain's commitment, admins verify or reject.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_service::credentials::{CredentialRead, CredentialVersion, Decision};
use serde::Deserialize;

use super::records::{if_match, read_body, sent_as_json};
use super::{principal_arg, with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{ChainCommitment, CredentialList, CredentialView, DecisionBody};

/// The largest credential document the API reads (a photo inline).
pub(crate) const CREDENTIALS_BODY: usize = medanchor_clinical::credentials::MAX_DOCUMENT_BYTES;

fn view(read: CredentialRead) -> CredentialView {
    let matches_chain = read.matches_chain();
    let document_hash = read.computed_hash();
    let chain = ChainCommitment {
        registered: read.chain_hash.is_some(),
        credential_hash: read.chain_hash,
        active: read.chain_active,
    };
    CredentialView { chain: Some(chain), matches_chain: Some(matches_chain), document_hash, ..summary(read.current) }
}

fn summary(c: CredentialVersion) -> CredentialView {
    CredentialView {
        provider: c.provider,
        version: c.version,
        state: c.status.state().name(),
        status: c.status,
        document_hash: c.document_hash,
        document: c.document,
        updated_ms: c.updated_ms,
        chain: None,
        matches_chain: None,
    }
}

fn answer(view: CredentialView, request_id: &str) -> Response {
    let etag = format!("\"{}\"", view.version);
    let mut response = Json(view).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(axum::http::header::ETAG, v);
    }
    with_request_id(response, request_id)
}

/// A provider's current credentials and their verification.
#[utoipa::path(
    get,
    path = "/v1/providers/{provider}/credentials",
    tag = "credentials",
    summary = "A provider's credentials, verification status and on-chain commitment",
    description = "Any signed-in caller (patients read a provider's qualifications before granting consent). `matches_chain` says whether the contract's `credential-hash` for the provider (`get-provider`) is the SHA-256 of this document's canonical bytes (`…/credentials/document`): a document that was changed after verification no longer matches.",
    security(("bearer" = [])),
    params(("provider" = crate::openapi::Principal, Path, description = "The provider's Stacks principal")),
    responses(
        (status = 200, description = "The current version", body = CredentialView, headers(("etag" = String))),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> ApiResult<Response> {
    caller.require()?;
    let provider = principal_arg(&provider, "provider")?;
    let read = s.read_credentials(&caller, &provider)?;
    Ok(answer(view(read), &caller.request_id))
}

#[derive(Deserialize)]
pub(crate) struct DocumentQuery {
    version: Option<String>,
}

/// A credential document's canonical bytes: what the chain commits to.
#[utoipa::path(
    get,
    path = "/v1/providers/{provider}/credentials/document",
    tag = "credentials",
    summary = "A credential document's canonical bytes (SHA-256 of them is the on-chain commitment)",
    security(("bearer" = [])),
    params(
        ("provider" = crate::openapi::Principal, Path, description = "The provider's Stacks principal"),
        ("version" = Option<u64>, Query, minimum = 1, description = "A version (default: the current one)"),
    ),
    responses(
        (status = 200, description = "The canonical JSON bytes", body = medanchor_clinical::credentials::Credential, content_type = "application/json"),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn credential_document(
    State(s): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
    Query(q): Query<DocumentQuery>,
) -> ApiResult<Response> {
    caller.require()?;
    let provider = principal_arg(&provider, "provider")?;
    let version = q
        .version
        .map(|v| match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::bad("invalid-version", "version must be an integer from 1")),
        })
        .transpose()?;
    let bytes = s.credential_document(&caller, &provider, version)?;
    let response = ([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response();
    Ok(with_request_id(response, &caller.request_id))
}

/// Writes the next version of the caller's own credentials.
#[utoipa::path(
    put,
    path = "/v1/providers/{provider}/credentials",
    tag = "credentials",
    summary = "Write the next version of your credentials (If-Match: the version read); it awaits verification",
    description = "A provider registered on-chain, for themselves only. Every failing field is named (400 `invalid-content`). `If-Match` is the version read (`\"0\"` before the first); a stale one gets 409 with the current version. The new version is `pending` until an admin decides; the chain keeps committing to the version verified before.",
    security(("bearer" = [])),
    params(
        ("provider" = crate::openapi::Principal, Path, description = "The provider's Stacks principal (the caller)"),
        ("If-Match" = String, Header, pattern = r#"^(W/)?"?[0-9]{1,19}"?$"#, description = "The version the document is based on, e.g. `\"0\"`"),
    ),
    request_body(content = medanchor_clinical::credentials::Credential, content_type = "application/json"),
    responses(
        (status = 200, description = "Written", body = CredentialView, headers(("etag" = String))),
        (status = 400, description = "Invalid input: no or a malformed `If-Match`, a document with failing fields (each named)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        (status = 409, description = "A stale version (with `current_version`), or past 1,000 versions", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn write_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require()?;
    let provider = principal_arg(&provider, "provider")?;
    let expected = if_match(&headers)?;
    if !sent_as_json(&headers) {
        return Ok(super::unsupported_media_type("send the credentials as application/json"));
    }
    let body = read_body(body, &headers, CREDENTIALS_BODY).await?;
    let written = s.write_credentials(&caller, &provider, expected, &body).await?;
    Ok(answer(view(written), &caller.request_id))
}

/// An admin's decision on a version.
#[utoipa::path(
    post,
    path = "/v1/providers/{provider}/credentials/decision",
    tag = "credentials",
    summary = "Verify or reject a pending credential version (admins)",
    description = "The version must be the current one and pending. Verifying commits the document's SHA-256 on-chain with the node's registrar key (`set-provider-credential`, and `set-provider-active true` when the provider is inactive) and answers once the chain holds it; a document with an item past its last valid day cannot be verified. Rejecting needs a reason. Audited.",
    security(("bearer" = [])),
    params(("provider" = crate::openapi::Principal, Path, description = "The provider's Stacks principal")),
    request_body(content = DecisionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided", body = CredentialView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        (status = 409, description = "Not the current version, already decided, or expired", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        (status = 503, description = "The node holds no registrar key, or the chain did not take the commitment", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn decide_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Json<CredentialView>> {
    caller.require()?;
    let provider = principal_arg(&provider, "provider")?;
    let (version, decision) = match body {
        DecisionBody::Verify { version } => (version, Decision::Verify),
        DecisionBody::Reject { version, reason } => (version, Decision::Reject(reason)),
    };
    let read = s.decide_credentials(&caller, &provider, version, decision).await?;
    Ok(Json(view(read)))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// Credentials by state (admins): the verification queue.
#[utoipa::path(
    get,
    path = "/v1/credentials",
    tag = "credentials",
    summary = "Providers' current credentials in a state (admins): the verification queue",
    security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, pattern = "^(pending|verified|rejected|expired)$", description = "Default `pending`"),
        ("after" = Option<crate::openapi::Principal>, Query, description = "The last provider of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 20"),
    ),
    responses(
        (status = 200, description = "A page, by provider", body = CredentialList),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<CredentialList>> {
    caller.require()?;
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(ApiError::bad("invalid-limit", "limit must be from 1 to 100")),
    };
    let after = q.after.as_deref().map(|a| principal_arg(a, "after")).transpose()?.map(|p| p.to_string());
    let page = s.credentials_by_state(&caller, q.state.as_deref().unwrap_or("pending"), after.as_deref(), limit)?;
    let next = (page.len() == limit).then(|| page.last().map(|c| c.provider.clone())).flatten();
    Ok(Json(CredentialList { items: page.into_iter().map(summary).collect(), next }))
}
