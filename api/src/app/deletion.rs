//! The patient's right to deletion: purge what the chain allows, refuse the
//! rest with the reason and when it becomes deletable.

use axum::extract::{Path, State};
use axum::Json;
use medanchor_service::deletion::DeletionOutcome;
use serde::Deserialize;

use super::{principal_arg, record_id_arg, AppState, Caller};
use crate::error::ApiResult;

/// A deletion request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeletionRequest {
    /// The records to delete (hex ids, at most 100); absent: every record
    /// of the patient's on the chain.
    #[schema(max_items = 100, value_type = Option<Vec<medanchor_contracts::RecordId>>)]
    records: Option<Vec<String>>,
}

/// What became of each record.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeletionAnswer {
    /// One outcome per record, in the order asked.
    outcomes: Vec<DeletionOutcome>,
}

/// `POST /v1/patients/{patient}/deletion`.
#[utoipa::path(
    post,
    path = "/v1/patients/{patient}/deletion",
    tag = "records",
    summary = "Delete the patient's records where retention allows (the patient)",
    description = "The patient's right to deletion within medical-record retention. For each record named (or every record of the patient's on the chain): an archived record past its retention is purged on-chain (`purge-record`, the contract owner's call, which the node makes) and erased here — every version's ciphertext, its wrapped data keys and metadata, its attachments' objects and keys, its search entries — and listed in the tombstone list kept apart from the backups, so no restore brings it back; its anchor stays on-chain as proof. Anything else is refused with the reason: `retention-active` (with the burn height, and an estimated date, from which it becomes deletable), `not-archived` (a provider with ADMIN access archives it first), `not-found`. Each outcome is audited. Reads of an erased record answer 410.",
    security(("bearer" = [])),
    params(("patient" = crate::openapi::Principal, Path, description = "The patient (the caller)")),
    request_body = DeletionRequest,
    responses(
        (status = 200, description = "Each record's outcome", body = DeletionAnswer),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        (status = 403, description = "Not the patient", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::errors::JsonBody,
        crate::openapi::errors::NodeUnavailable,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn request_deletion(
    State(s): State<AppState>,
    caller: Caller,
    Path(patient): Path<String>,
    Json(req): Json<DeletionRequest>,
) -> ApiResult<Json<DeletionAnswer>> {
    caller.require()?;
    let patient = principal_arg(&patient, "patient")?;
    let records = match req.records {
        None => None,
        Some(ids) => Some(ids.iter().map(|id| record_id_arg(id)).collect::<Result<Vec<_>, _>>()?),
    };
    Ok(Json(DeletionAnswer { outcomes: s.request_deletion(&caller, &patient, records).await? }))
}
