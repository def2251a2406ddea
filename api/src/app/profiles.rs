//! The patient health profile: the patient reads and writes it; others
//! read the parts the chain lets them (or, under an emergency override,
//! the emergency information).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_service::profiles::ProfileRead;

use super::records::{if_match, read_body, sent_as_json};
use super::{principal_arg, with_request_id, AppState, Caller, SMALL_BODY};
use crate::error::ApiResult;
use crate::openapi::{Completeness, ProfileView};

fn view(patient: String, p: ProfileRead) -> ProfileView {
    ProfileView {
        patient,
        version: p.version,
        access: p.access.name(),
        sections: p.sections,
        profile: p.content,
        completeness: p.completeness.map(|(percent, missing)| Completeness { percent, missing }),
        updated_ms: p.updated_ms,
    }
}

fn answer(view: ProfileView, request_id: &str) -> Response {
    let etag = format!("\"{}\"", view.version);
    let mut response = Json(view).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(axum::http::header::ETAG, v);
    }
    with_request_id(response, request_id)
}

/// A patient's health profile, as the caller may see it.
#[utoipa::path(
    get,
    path = "/v1/patients/{patient}/profile",
    tag = "profiles",
    summary = "A patient's health profile, as far as the chain lets the caller see it",
    description = "The patient sees all of it, with its completeness. A provider sees the parts whose consent data type the contract's rule allows right now (allergies, conditions, blood type and alerts: medical-history; medications and pharmacy: treatment-plans; contacts, donor status, language and preference: basic-info; insurance: financial). A responder under an active emergency override sees the emergency information only. Audited; a read by someone else is a disclosure.",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient's Stacks principal")),
    responses(
        (status = 200, description = "The profile (version 0: none written yet)", body = ProfileView, headers(("etag" = String))),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn read_profile(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
) -> ApiResult<Response> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let read = s.read_profile(&caller, &patient).await?;
    Ok(answer(view(patient.to_string(), read), &caller.request_id))
}

/// Writes the next version of the caller's own health profile.
#[utoipa::path(
    put,
    path = "/v1/patients/{patient}/profile",
    tag = "profiles",
    summary = "Write the next version of your health profile (If-Match: the version read)",
    description = "The patient only. The body is the whole profile; every failing field is named (400 `invalid-content`). `If-Match` is the version read (`\"0\"` before the first); a stale one gets 409 with the current version.",
    security(("bearer" = [])),
    params(
        ("patient" = crate::openapi::Principal, Path, description = "The patient's Stacks principal (the caller)"),
        ("If-Match" = String, Header, pattern = r#"^(W/)?"?[0-9]{1,19}"?$"#, description = "The version the profile is based on, e.g. `\"0\"`"),
    ),
    request_body(content = crate::openapi::ProfileContent, content_type = "application/json"),
    responses(
        (status = 200, description = "Written: the profile as the patient now reads it", body = ProfileView, headers(("etag" = String))),
        (status = 400, description = "Invalid input: no or a malformed `If-Match`, JSON that is not a profile (every failing field named)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        (status = 409, description = "A stale version, with `current_version`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::TooLarge,
        crate::openapi::errors::UnsupportedMediaType,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn write_profile(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let expected = if_match(&headers)?;
    if !sent_as_json(&headers) {
        return Ok(super::unsupported_media_type("send the profile as application/json"));
    }
    let body = read_body(body, &headers, SMALL_BODY).await?;
    let written = s.write_profile(&caller, &patient, expected, &body).await?;
    Ok(answer(view(patient.to_string(), written), &caller.request_id))
}
