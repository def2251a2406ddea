//! Backups for admins: their state and alerts, and the jobs run now
//! (create, verify, prune). Restores are not a route: a node cannot
//! restore over the stores it serves from (`medanchor backup restore`,
//! docs/RECOVERY.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use medanchor_service::backups::{BackupJob, BackupRun, BackupStatus};

use super::{AppState, Caller};
use crate::error::{ApiError, ApiResult};

/// A backup id as `medanchor backup list` prints it: the capture's UTC
/// time to the millisecond and a 4-hex-digit suffix (the pattern the
/// document gives, `^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{4}$`).
fn backup_id_arg(id: &str) -> ApiResult<String> {
    let ok = id.len() == 24
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            18 => b == b'Z',
            19 => b == b'-',
            20..=23 => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            _ => b.is_ascii_digit(),
        });
    if ok {
        Ok(id.to_string())
    } else {
        Err(ApiError::from(medanchor_service::Error::BadRequest {
            code: "invalid-backup-id",
            detail: format!("{:?} is not a backup id (as `medanchor backup list` prints them)", cut(id)),
        }))
    }
}

fn cut(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `GET /v1/admin/backups`.
#[utoipa::path(
    get,
    path = "/v1/admin/backups",
    tag = "backups",
    summary = "Backups, their alerts and the last runs (admins)",
    description = "The backups in the local target (oldest first, with when each was last verified), where backups go, the schedule and retention, the standing alerts (a failed run of a kind not followed by a success of that kind), the last run of each kind, and the reconciliation with the chain after the restore this node started from, if any. Admins only; audited.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The state of the backups", body = BackupStatus),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NoBackups,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn backup_status(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<BackupStatus>> {
    caller.require()?;
    Ok(Json(s.backup_status(&caller).await?))
}

/// `POST /v1/admin/backups`.
#[utoipa::path(
    post,
    path = "/v1/admin/backups",
    tag = "backups",
    summary = "Make a backup now (admins)",
    description = "Captures every store through a checkpoint while the node serves (writers are not paused) and every file, seals it (zstd, AES-256-GCM STREAM under the backup key), signs the manifest, verifies it (every blob opened, restored into a scratch directory, every store's digest compared), copies it to the bucket if one is configured, and prunes expired backups. Takes as long as the data is large: minutes for gigabytes. A failure is answered 503 and stays an alert until a backup succeeds. Admins only; audited.",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The backup made and verified", body = BackupRun),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NoBackups,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn create_backup(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<BackupRun>)> {
    caller.require()?;
    Ok((StatusCode::CREATED, Json(s.run_backup(&caller, BackupJob::Create).await?)))
}

/// `POST /v1/admin/backups/{id}/verify`.
#[utoipa::path(
    post,
    path = "/v1/admin/backups/{id}/verify",
    tag = "backups",
    summary = "Verify a backup (admins)",
    description = "Checks the manifest's signature under the node's key, opens every blob and compares it with the manifest, restores into a scratch directory and compares every store's state digest with the one captured. A failure is answered 503 and raises an alert. Admins only; audited.",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{4}$", description = "The backup")),
    responses(
        (status = 200, description = "The backup verifies", body = BackupRun),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NotFound,
        crate::openapi::errors::NoBackups,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn verify_backup(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<BackupRun>> {
    caller.require()?;
    let id = backup_id_arg(&id)?;
    Ok(Json(s.run_backup(&caller, BackupJob::Verify(id)).await?))
}

/// `POST /v1/admin/backups/prune`.
#[utoipa::path(
    post,
    path = "/v1/admin/backups/prune",
    tag = "backups",
    summary = "Remove expired backups (admins)",
    description = "Removes the backups past their retention (every backup within the configured days; beyond, the newest of each of 8 weeks and 12 months) and the blobs no remaining backup holds; never the newest verified backup. Admins only; audited.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was removed", body = BackupRun),
        crate::openapi::errors::NoSession,
        crate::openapi::errors::NotPermitted,
        crate::openapi::errors::NoBackups,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn prune_backups(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<BackupRun>> {
    caller.require()?;
    Ok(Json(s.run_backup(&caller, BackupJob::Prune).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_what_the_pattern_says() {
        for (id, ok) in [
            ("20261205T194500123Z-0a9f", true),
            ("20261205T194500123Z-0A9F", false),
            ("20261205T194500123Z-0a9", false),
            ("20261205T19450012Z-0a9f0", false),
            ("../../etc/passwd", false),
            ("20261205X194500123Z-0a9f", false),
            ("", false),
        ] {
            assert_eq!(backup_id_arg(id).is_ok(), ok, "{id}");
        }
    }
}
