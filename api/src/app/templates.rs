//! Record templates: the ones a caller may write structured records with,
//! and one template with a new record's pre-filled content.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use medanchor_service::templates::template_id_arg;

use super::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{TemplateList, TemplateView};

/// The templates the caller may write with.
#[utoipa::path(
    get,
    path = "/v1/templates",
    tag = "templates",
    summary = "The record templates the caller may use",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Their latest versions", body = TemplateList),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn list_templates(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<TemplateList>> {
    Ok(Json(TemplateList { items: s.templates(&caller)? }))
}

#[derive(Deserialize)]
pub(crate) struct TemplateQuery {
    version: Option<String>,
}

/// One template, with a new record's pre-filled content.
#[utoipa::path(
    get,
    path = "/v1/templates/{id}",
    tag = "templates",
    summary = "One record template and a new record's pre-filled content",
    security(("bearer" = [])),
    params(
        ("id" = medanchor_clinical::TemplateId, Path, description = "The template's id"),
        ("version" = Option<u32>, Query, minimum = 1, maximum = 4294967295u32, format = "uint32", description = "A version (default: the latest)"),
    ),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn template(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<TemplateQuery>,
) -> ApiResult<Json<TemplateView>> {
    caller.require()?;
    let id = template_id_arg(&id)?;
    let version = q
        .version
        .map(|v| match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::bad("invalid-version", "version must be an integer from 1")),
        })
        .transpose()?;
    let template = s.template(&caller, &id, version)?;
    let prefill = template.prefill();
    Ok(Json(TemplateView { template, prefill }))
}

/// Adds a template, or the next version of one.
#[utoipa::path(
    post,
    path = "/v1/templates",
    tag = "templates",
    summary = "Add a record template (or its next version)",
    description = "Administrators add the tenant's (`scope.kind: tenant`) and specialties' templates; an active provider saves their own (`scope: {kind: provider, name: <their principal>}`). A new id starts at version 1; a new version is the next number and keeps its scope and record type. Audited.",
    security(("bearer" = [])),
    request_body(content = medanchor_clinical::Template, content_type = "application/json"),
    responses(
        (status = 201, description = "Added: the template and version", body = medanchor_clinical::TemplateRef),
        (status = 400, description = "A malformed template (field names, choices, defaults)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not this caller's scope to add to", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not the next version, a changed scope or record type, or past the limits (100 templates per owner, 100 versions)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn add_template(
    State(s): State<AppState>,
    caller: Caller,
    Json(template): Json<medanchor_clinical::Template>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let reference = s.add_template(&caller, template).await?;
    Ok(super::with_request_id((axum::http::StatusCode::CREATED, Json(reference)).into_response(), &caller.request_id))
}
