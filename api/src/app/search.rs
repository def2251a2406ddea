//! Search: records and patients by what they hold, through a blind index,
//! filtered by the chain's rules.

use axum::extract::{Query, State};
use axum::Json;
use medanchor_service::search::{Highlight, PatientSearch, RecordSearch};
use serde::Deserialize;

use super::{principal_arg, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{HighlightView, PatientHitView, PatientSearchPage, RecordHitView, RecordSearchPage};

#[derive(Deserialize)]
pub(crate) struct RecordQuery {
    patient_name: Option<String>,
    diagnosis: Option<String>,
    medication: Option<String>,
    provider: Option<String>,
    patient: Option<String>,
    record_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct PatientQuery {
    name: Option<String>,
    phone: Option<String>,
    blood_group: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The longest text one criterion takes.
const MAX_CRITERION: usize = 200;

fn text(v: Option<String>, what: &str) -> ApiResult<Option<String>> {
    match v {
        Some(t) if t.chars().count() > MAX_CRITERION => {
            Err(ApiError::bad("invalid-search", format!("{what} is longer than {MAX_CRITERION} characters")))
        }
        other => Ok(other.filter(|t| !t.trim().is_empty())),
    }
}

fn limit(v: Option<String>) -> ApiResult<Option<usize>> {
    v.map(|l| l.parse::<usize>().map_err(|_| ApiError::bad("invalid-limit", "limit must be from 1 to 100"))).transpose()
}

fn highlights(h: Vec<Highlight>) -> Vec<HighlightView> {
    h.into_iter()
        .map(|h| HighlightView {
            field: h.field,
            text: h.text,
            ranges: h.ranges.into_iter().map(|r| [r.start, r.end]).collect(),
        })
        .collect()
}

/// Records by what they hold.
#[utoipa::path(
    get,
    path = "/v1/search/records",
    tag = "search",
    summary = "Search records by patient name, diagnosis, medication, provider, patient, type and date",
    description = "At least one of `patient_name` (each word matches the start of a word of the name; needs the patient's basic-info consent too), `diagnosis` (an ICD-10-CM code, dot optional), `medication` (words of its name), `provider`, `patient` or `record_type`; all given must match. `from`/`to` bound the record's first version's date (inclusive, UTC, 1970 to 2200). Newest first, 20 per page by default; `next_cursor` resumes. Only records the caller may read now (the contract's `get-record` rule) are returned, each with its matches highlighted (byte ranges into `text`). The index holds keyed tokens, never the words. Audited, once per patient in the results.",
    security(("bearer" = [])),
    params(
        ("patient_name" = Option<String>, Query, max_length = 200, description = "Words of the patient's name (prefixes)"),
        ("diagnosis" = Option<String>, Query, max_length = 200, description = "An ICD-10-CM code, e.g. `E11.9`"),
        ("medication" = Option<String>, Query, max_length = 200, description = "Words of a medication's name"),
        ("provider" = Option<crate::openapi::Principal>, Query, description = "The provider who wrote the record"),
        ("patient" = Option<crate::openapi::Principal>, Query, description = "The patient"),
        ("record_type" = Option<medanchor_contracts::types::RecordType>, Query, description = "The record type"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "Written on or after this date (UTC)"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "Written on or before this date (UTC)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,700}$", description = "A previous page's `next_cursor` (another caller's or query's is refused)"),
    ),
    responses(
        (status = 200, description = "A page of results", body = RecordSearchPage),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn search_records(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<RecordQuery>,
) -> ApiResult<Json<RecordSearchPage>> {
    caller.require()?;
    let date = |v: Option<String>, what: &str, end: bool| -> ApiResult<Option<u64>> {
        v.map(|d| {
            medanchor_clinical::template::date_start_ms(&d).map(|ms| if end { ms + 86_399_999 } else { ms }).ok_or_else(
                || ApiError::bad("invalid-date", format!("{what} must be a date YYYY-MM-DD from 1970 to 2200")),
            )
        })
        .transpose()
    };
    let query = RecordSearch {
        patient_name: text(q.patient_name, "patient_name")?,
        diagnosis: text(q.diagnosis, "diagnosis")?,
        medication: text(q.medication, "medication")?,
        provider: q.provider.as_deref().map(|p| principal_arg(p, "provider")).transpose()?,
        patient: q.patient.as_deref().map(|p| principal_arg(p, "patient")).transpose()?,
        record_type: q.record_type.as_deref().map(medanchor_service::records::parse_record_type).transpose()?,
        from_ms: date(q.from, "from", false)?,
        to_ms: date(q.to, "to", true)?,
        limit: limit(q.limit)?,
        cursor: q.cursor,
    };
    let hits = s.search_records(&caller, query).await?;
    Ok(Json(RecordSearchPage {
        items: hits
            .items
            .into_iter()
            .map(|h| RecordHitView {
                record_id: h.meta.record_id,
                version: h.meta.version,
                patient: h.meta.patient,
                record_type: h.meta.record_type,
                created_ms: h.meta.created_ms,
                template: h.meta.template,
                highlights: highlights(h.highlights),
            })
            .collect(),
        next_cursor: hits.next_cursor,
    }))
}

/// Patients by name, phone or blood group.
#[utoipa::path(
    get,
    path = "/v1/search/patients",
    tag = "search",
    summary = "Search patients by name, phone or blood group",
    description = "At least one of `name` (each word matches the start of a word), `phone` (its digits, whole) or `blood_group`; all given must match. Only patients whose searched fields the caller may read are returned (name and phone: basic-info consent; blood group: medical-history consent or an emergency override; a patient finds themselves), with the matches highlighted. 20 per page by default. Audited, once per patient in the results.",
    security(("bearer" = [])),
    params(
        ("name" = Option<String>, Query, max_length = 200, description = "Words of the name (prefixes)"),
        ("phone" = Option<String>, Query, max_length = 200, description = "A phone number"),
        ("blood_group" = Option<String>, Query, max_length = 200, description = "A blood group, e.g. `O-`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,700}$", description = "A previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page of results", body = PatientSearchPage),
        crate::openapi::errors::InvalidInput,
        crate::openapi::errors::NoSession,
        crate::openapi::errors::ServerFault,
    )
)]
pub(crate) async fn search_patients(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<PatientQuery>,
) -> ApiResult<Json<PatientSearchPage>> {
    caller.require()?;
    let query = PatientSearch {
        name: text(q.name, "name")?,
        phone: text(q.phone, "phone")?,
        blood_group: text(q.blood_group, "blood_group")?,
        limit: limit(q.limit)?,
        cursor: q.cursor,
    };
    let hits = s.search_patients(&caller, query).await?;
    Ok(Json(PatientSearchPage {
        items: hits
            .items
            .into_iter()
            .map(|h| PatientHitView { patient: h.patient, highlights: highlights(h.highlights) })
            .collect(),
        next_cursor: hits.next_cursor,
    }))
}
