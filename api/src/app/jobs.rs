//! The node's periodic jobs, for admins.

use axum::extract::State;
use axum::Json;
use medanchor_service::scheduler::JobView;

use super::{AppState, Caller};
use crate::error::ApiResult;

/// `GET /v1/admin/jobs`.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs",
    tag = "oversight",
    summary = "The node's periodic jobs: last run, next due, failures (admins)",
    description = "Every job this tenant's scheduler runs (share sweeps, credential expiry, attachment clean-up; on the node's first tenant also backups): its period, its last run's start, end, outcome and detail, when it is next due, runs and failures, failed runs since the last success (an alert while above zero), and who runs it now. A job that fell due while the node was down runs once when it starts. Admins only; audited.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The jobs", body = [JobView]),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn jobs(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<JobView>>> {
    caller.require()?;
    Ok(Json(s.jobs(&caller).await?))
}
