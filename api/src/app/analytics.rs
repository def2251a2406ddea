//! Analytics and oversight for admins and auditors: the dashboard, the
//! compliance report (providers' activity and flags, JSON or CSV), the
//! flags, and an admin's acknowledgement of one.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use medanchor_service::analytics::{ComplianceReport, Dashboard, FlagView};
use serde::Deserialize;

use super::exports::only;
use super::{with_request_id, AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// A whole number of days from a query, 1 to 366 (`default` when absent).
fn days_arg(q: &HashMap<String, String>, default: u32) -> ApiResult<u32> {
    match q.get("days") {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=medanchor_service::analytics::MAX_REPORT_DAYS).contains(d))
            .ok_or_else(|| ApiError::bad("invalid-days", "days must be a whole number from 1 to 366")),
    }
}

/// `GET /v1/admin/analytics`.
#[utoipa::path(
    get,
    path = "/v1/admin/analytics",
    tag = "oversight",
    summary = "The analytics dashboard (admins, auditors)",
    description = "Per-day counts over the last `days` days (7, 30, 90, … up to 366; today included, UTC): audit entries, records created/updated/read, shares created and redeemed, share lock-outs, emergency overrides, refusals, failed sign-ins, exports; records by record type, and created and read by ICD-10 category (a category counted fewer than `min_cell` times is left out, only counted in `diagnoses_suppressed`); refusals by action; this week against last; the open flags of the last 7 days. Read from counters kept on write (never a scan of the log). Audited.",
    security(("bearer" = [])),
    params(("days" = Option<u32>, Query, minimum = 1, maximum = 366, description = "Days covered (default 7)")),
    responses(
        (status = 200, description = "The dashboard", body = Dashboard),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn dashboard(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Dashboard>> {
    caller.require()?;
    only(&q, &["days"])?;
    let days = days_arg(&q, 7)?;
    Ok(Json(s.dashboard(&caller, days).await?))
}

/// `GET /v1/admin/compliance`.
#[utoipa::path(
    get,
    path = "/v1/admin/compliance",
    tag = "oversight",
    summary = "The compliance report: providers' activity and flags over a period (admins, auditors)",
    description = "Per provider and day (UTC): reads, writes, distinct patients, emergency overrides (patients opened by break-glass), refusals, distinct patients whose enhanced-protection data was read; per provider the period's totals (distinct patients over the whole period) and flags; and every flag raised in the period. `format=csv`: one row per provider and day with that day's flag rules (formula-like cells quoted). At most 366 days. Audited.",
    security(("bearer" = [])),
    params(
        ("from" = String, Query, format = Date, description = "First day, YYYY-MM-DD (UTC)"),
        ("to" = String, Query, format = Date, description = "Last day, YYYY-MM-DD (UTC), not before `from`"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "The report", content(
            (ComplianceReport = "application/json"),
            (String = "text/csv"),
        )),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn compliance(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    caller.require()?;
    only(&q, &["from", "to", "format"])?;
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::bad("invalid-format", "format must be json or csv")),
    };
    let need = |k: &str| q.get(k).ok_or_else(|| ApiError::bad("invalid-date", format!("{k} is required (YYYY-MM-DD)")));
    let report: ComplianceReport = s.compliance_report(&caller, need("from")?, need("to")?).await?;
    let response = if csv {
        let mut r = report.to_csv().into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        let name = format!("attachment; filename=\"compliance-{}-{}.csv\"", report.from, report.to);
        if let Ok(v) = HeaderValue::from_str(&name) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        r
    } else {
        Json(report).into_response()
    };
    Ok(with_request_id(response, &caller.request_id))
}

/// `GET /v1/admin/flags`.
#[utoipa::path(
    get,
    path = "/v1/admin/flags",
    tag = "oversight",
    summary = "Anomaly flags and security alerts (admins, auditors)",
    description = "Flags of the last `days` days (default 7), newest first, at most 500: open ones, or all with `all=true`. Each names its rule (`distinct-patients`, `off-hours`, `break-glass`, `enhanced-protection`, `repeated-denials`, `failed-sign-ins`, `share-lockout`, `tampering`), whom it is about, the numbers compared and the audit entries behind it. Audited.",
    security(("bearer" = [])),
    params(
        ("days" = Option<u32>, Query, minimum = 1, maximum = 366, description = "Days covered (default 7)"),
        ("all" = Option<bool>, Query, description = "Include acknowledged flags"),
    ),
    responses(
        (status = 200, description = "The flags", body = [FlagView]),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn flags(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<FlagView>>> {
    caller.require()?;
    only(&q, &["days", "all"])?;
    let days = days_arg(&q, 7)?;
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad("invalid-query", "all must be true or false")),
    };
    Ok(Json(s.flags(&caller, days, all).await?))
}

/// An acknowledgement.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckRequest {
    /// Why it is in order, or what was done.
    #[schema(max_length = 1000)]
    note: Option<String>,
}

/// `POST /v1/admin/flags/{id}/acknowledge`.
#[utoipa::path(
    post,
    path = "/v1/admin/flags/{id}/acknowledge",
    tag = "oversight",
    summary = "Acknowledge a flag (admins)",
    description = "Marks the flag as looked at, by whom, when, with an optional note; it leaves the open alerts. Audited (`flag.acknowledge`). Admins only.",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{12,2046}$", description = "The flag")),
    request_body = AckRequest,
    responses(
        (status = 200, description = "The flag, acknowledged", body = FlagView),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<FlagView>> {
    caller.require()?;
    let req: AckRequest = super::json_object(body)?;
    Ok(Json(s.acknowledge_flag(&caller, &id, req.note.as_deref()).await?))
}
