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
