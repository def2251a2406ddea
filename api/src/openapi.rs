//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (`#[utoipa::path]` in [`crate::app`]) and served at `GET /openapi.json`.
//!
//! Every response body is one of the structs below (or a domain type
//! they hold), serialized as it is described: the document cannot drift
//! from what is served. Request bodies, which the handlers read
//! incrementally rather than deserialize, are described by the request
//! structs. Ids, hashes and the contracts' names are the domain types'
//! own schemas (`medanchor_contracts`, feature `openapi`).

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use medanchor_contracts::types::{DataType, RecordType};
use medanchor_contracts::{BlockHash, DataHash, RecordId, Txid};
use medanchor_indexer::query::{AnchorView as ChainAnchor, RecordView as ChainRecord, VersionView as ChainVersion};

use crate::db::AnchorStatus;

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "medanchor API", description = "Encrypted off-chain medical records anchored on Stacks: wallet sign-in, consent-gated reads, the audit log."),
    paths(
        crate::app::sign_in::challenge,
        crate::app::sign_in::sign_in,
        crate::app::sign_in::me,
        crate::app::records::create_record,
        crate::app::records::list_records,
        crate::app::records::read_record,
        crate::app::records::update_record,
        crate::app::records::record_versions,
        crate::app::records::finalize_record,
        crate::app::records::unlock_record,
        crate::app::records::archive_record,
        crate::app::audit_log::audit_entries,
        crate::app::audit_log::audit_disclosures,
        crate::app::audit_log::audit_checkpoint,
        crate::app::audit_log::inclusion_proof,
        crate::app::audit_log::consistency_proof,
        crate::app::verify::verify_record,
        crate::app::verify::record_blob,
        crate::app::verify::verify_hash,
        crate::app::verify::audit_anchor,
        crate::app::share::create_share,
        crate::app::share::list_shares,
        crate::app::share::revoke_share,
        crate::app::share::unlock_shares,
        crate::app::share::redeem_code,
        crate::app::share::redeem_link,
        crate::app::share::issuer,
        crate::app::consent_requests::create_consent_request,
        crate::app::consent_requests::list_consent_requests,
        crate::app::consent_requests::read_consent_request,
        crate::app::consent_requests::approve_consent_request,
        crate::app::consent_requests::decline_consent_request,
        crate::app::profiles::read_profile,
        crate::app::profiles::write_profile,
        crate::app::templates::list_templates,
        crate::app::templates::add_template,
        crate::app::templates::template,
        crate::app::credentials::read_credentials,
        crate::app::credentials::credential_document,
        crate::app::credentials::write_credentials,
        crate::app::credentials::decide_credentials,
        crate::app::credentials::list_credentials,
        crate::app::search::search_records,
        crate::app::search::search_patients,
        crate::app::attachments::upload_attachment,
        crate::app::attachments::list_attachments,
        crate::app::attachments::download_attachment,
        crate::app::attachments::remove_attachment,
        crate::app::attachments::attachment_link,
        crate::app::attachments::signed_download,
        crate::app::attachments::restore_attachment,
        crate::app::attachments::attachment_anchor,
        crate::app::attachments::storage_report,
        crate::app::deletion::request_deletion,
        crate::app::exports::export_patient,
        crate::app::exports::summary_report,
        crate::app::exports::export_verification,
        crate::app::exports::export_key,
        crate::app::notifications::subscribe_webhook,
        crate::app::notifications::read_webhook,
        crate::app::notifications::remove_webhook,
        crate::app::notifications::set_preferences,
        crate::app::notifications::read_preferences,
        crate::app::backups::backup_status,
        crate::app::backups::create_backup,
        crate::app::backups::verify_backup,
        crate::app::backups::prune_backups,
        crate::app::jobs::jobs,
        crate::app::analytics::dashboard,
        crate::app::analytics::compliance,
        crate::app::analytics::flags,
        crate::app::analytics::acknowledge,
        crate::app::uploads::tus_options,
        crate::app::uploads::create_upload,
        crate::app::uploads::upload_status,
        crate::app::uploads::upload_piece,
        crate::app::uploads::cancel_upload,
        openapi_json,
        crate::app::health::healthz,
        crate::app::health::readyz,
        crate::app::health::metrics,
    ),
    components(schemas(
        Problem, RecordId, DataHash, Txid, BlockHash, Principal, StandardPrincipal, ShareId, Capability, AccessCode,
        GrantToken, RecordType, DataType, SigningMode, ShareDurationName, ReportFormat, ConsentRequestId, PrefixedTxid,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Wallet sign-in and sessions"),
        (name = "records", description = "Encrypted records anchored on-chain"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "verify", description = "Trust-us verification views and raw ciphertext"),
        (name = "share", description = "6-digit access codes and signed QR links: make, revoke, redeem"),
        (name = "consent-requests", description = "Providers ask patients for consent; patients approve by signing the grant in their wallet, or decline"),
        (name = "templates", description = "Record templates for structured content"),
        (name = "profiles", description = "Patient health profiles, released part by part as the chain allows"),
        (name = "credentials", description = "Provider credentials, their verification and on-chain commitment"),
        (name = "attachments", description = "Files attached to records: checked, sealed as streams, on the object store"),
        (name = "uploads", description = "Resumable uploads (tus 1.0: creation, expiration, checksum, termination)"),
        (name = "exports", description = "A patient's data as a signed PDF, JSON, CSV or FHIR R4 Bundle; exports' verification"),
        (name = "notifications", description = "Patients' notifications: signed webhooks and e-mail (immediate or as digests) from a durable outbox"),
        (name = "backups", description = "Encrypted, verified backups: state, alerts, jobs run now (admins)"),
        (name = "oversight", description = "Analytics dashboard, providers' activity, anomaly flags and security alerts (admins, auditors)"),
        (name = "search", description = "Records and patients by what they hold: a blind index, results filtered by the chain"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (the session token from
/// `POST /v1/auth/verify`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The session token from `POST /v1/auth/verify` (Ed25519-signed, 1 h)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The node's `MEDANCHOR_METRICS_TOKEN` (a Prometheus scraper's credential)"))
                    .build(),
            ),
        );
    }
}

/// The document, with the crate's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The document as served: [`document`] in JSON, with utoipa's link
/// objects repaired (utoipa 5.5 writes their `operationId` and
/// `operationRef` as `operation_id` and `operation_ref`, which no OpenAPI
/// tool reads).
pub fn json() -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).expect("the document serializes");
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|i| i.values_mut()) {
            let responses = op.get_mut("responses").and_then(|r| r.as_object_mut());
            for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                let links = response.get_mut("links").and_then(|l| l.as_object_mut());
                for link in links.into_iter().flat_map(|l| l.values_mut()).filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [("operation_id", "operationId"), ("operation_ref", "operationRef")] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.to_string(), v);
                        }
                    }
                }
            }
        }
    }
    doc
}

/// The operations the document says need a session (`bearer`, not
/// optional), as (method, path template): the router checks their session
/// before it reads anything else of the request (`app::session_first`), so
/// such a route answers 401 to a caller without one whatever else is
/// wrong with the request, as the document promises.
pub(crate) fn session_routes() -> std::collections::HashSet<(String, String)> {
    let doc = json();
    let mut out = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let security = op["security"].as_array().cloned().unwrap_or_default();
            // `{}` among the requirements makes the session optional.
            if !security.is_empty() && security.iter().all(|r| r.as_object().is_some_and(|o| !o.is_empty())) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "The OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object),
        (status = 500, description = "Server fault", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn openapi_json() -> axum::response::Response {
    match serde_json::to_string(&json()) {
        Ok(json) => ([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => crate::error::ApiError::internal(e).into_response(),
    }
}

// ---------------------------------------------------------------- identifiers
//
// The shapes every path, query, header and body field that names a thing
// takes, each declared once here and referenced by the handlers, so a
// value that can never name anything is refused by the document before it
// is refused by the handler. Each pattern is exactly the language the
// parser accepts, except where noted.

/// A Stacks principal: an account (`S`, the address version, then the
/// c32check encoding of its HASH160 and a 4-byte checksum, which must
/// match) or a contract (`ADDRESS.name`). The pattern is the canonical
/// text; the parser also takes lowercase and c32's `O`/`I`/`L` aliases,
/// and refuses a wrong checksum (`format: stacks-principal`).
#[derive(ToSchema)]
#[schema(
    value_type = String,
    format = "stacks-principal",
    pattern = r"^S[0-9A-HJKMNP-TV-Z]{26,40}(\.[a-zA-Z][a-zA-Z0-9_-]{0,127})?$",
    example = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5"
)]
pub struct Principal(pub String);

/// A Stacks account (a standard principal, not a contract): see
/// [`Principal`].
#[derive(ToSchema)]
#[schema(
    value_type = String,
    format = "stacks-principal",
    pattern = "^S[0-9A-HJKMNP-TV-Z]{26,40}$",
    example = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5"
)]
pub struct StandardPrincipal(pub String);

/// A share id: 16 bytes of hex.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-fA-F]{32}$", example = "5e1c0d2b3a4f69788796a5b4c3d2e1f0")]
pub struct ShareId(pub String);

/// A QR link's capability: 32 bytes of unpadded base64url (43
/// characters; the last carries 2 unused bits, which must be zero).
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
    example = "q2Vh9xJ0c1mBn4rT6yW8zA3dF5gH7jK9lQ2wE4rT6yU"
)]
pub struct Capability(pub String);

/// A 6-digit access code.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]{6}$", example = "042917")]
pub struct AccessCode(pub String);

/// A share grant token (`X-Share-Grant`): 32 bytes of unpadded base64url.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
    example = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGE"
)]
pub struct GrantToken(pub String);

/// Raw bytes (an `application/octet-stream` body).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// The error responses most routes share, each an RFC 9457 problem: named
/// once here, listed by name in the handlers' `responses(...)`.
pub mod errors {
    use super::Problem;

    /// What a call sent to the chain on the caller's behalf can answer
    /// (finalize, unlock, archive): invalid input, no session, refused by
    /// the contract's rules, no such record, node unavailable, our fault.
    #[derive(utoipa::IntoResponses)]
    pub enum ChainCall {
        /// 400.
        #[response(status = 400, description = "Invalid input", content_type = "application/problem+json")]
        InvalidInput(Problem),
        /// 401.
        #[response(status = 401, description = "No valid session", content_type = "application/problem+json")]
        NoSession(Problem),
        /// 403.
        #[response(
            status = 403,
            description = "Not permitted (the contract's error in `reason` when the chain refused)",
            content_type = "application/problem+json"
        )]
        NotPermitted(Problem),
        /// 404.
        #[response(status = 404, description = "Not found", content_type = "application/problem+json")]
        NotFound(Problem),
        /// 429.
        #[response(
            status = 429,
            description = "The node already holds as many of the caller's pending transactions as it takes (25): \
                           retry after a block (`Retry-After`)",
            content_type = "application/problem+json"
        )]
        TooManyPending(Problem),
        /// 503.
        #[response(
            status = 503,
            description = "The node is unreachable or refused the broadcast",
            content_type = "application/problem+json"
        )]
        NodeUnavailable(Problem),
        /// 500.
        #[response(
            status = 500,
            description = "Server fault (logged, not detailed)",
            content_type = "application/problem+json"
        )]
        ServerFault(Problem),
    }

    /// 500: a server fault (logged, not detailed).
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 500,
        description = "Server fault (logged, not detailed)",
        content_type = "application/problem+json"
    )]
    pub struct ServerFault(pub Problem);

    /// 400: invalid input.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400, description = "Invalid input", content_type = "application/problem+json")]
    pub struct InvalidInput(pub Problem);

    /// 401: no valid session.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401, description = "No valid session", content_type = "application/problem+json")]
    pub struct NoSession(pub Problem);

    /// 404: not found.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, description = "Not found", content_type = "application/problem+json")]
    pub struct NotFound(pub Problem);

    /// 403: not permitted (the contract's error in `reason` when the chain refused).
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 403,
        description = "Not permitted (the contract's error in `reason` when the chain refused)",
        content_type = "application/problem+json"
    )]
    pub struct NotPermitted(pub Problem);

    /// 503: the node is unreachable or refused the broadcast.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 503,
        description = "The node is unreachable or refused the broadcast",
        content_type = "application/problem+json"
    )]
    pub struct NodeUnavailable(pub Problem);

    /// 503: this node runs no backups, or the job failed.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 503,
        description = "This node runs no backups, or the job failed (which raises an alert until one succeeds)",
        content_type = "application/problem+json"
    )]
    pub struct NoBackups(pub Problem);

    /// 429: rate limited (`Retry-After`).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 429, description = "Rate limited (`Retry-After`)", content_type = "application/problem+json")]
    pub struct RateLimited(pub Problem);

    /// 413: the body is over the configured limit.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413, description = "Body over the configured limit", content_type = "application/problem+json")]
    pub struct TooLarge(pub Problem);

    /// What a route with a JSON body answers to a body that is not that
    /// JSON: over the 16 KiB limit, not sent as `application/json`, or JSON
    /// of the wrong shape (malformed JSON is a 400, listed with the
    /// route's other invalid input).
    #[derive(utoipa::IntoResponses)]
    pub enum JsonBody {
        /// 413.
        #[response(
            status = 413,
            description = "Body over the limit (16 KiB)",
            content_type = "application/problem+json"
        )]
        TooLarge(Problem),
        /// 415.
        #[response(
            status = 415,
            description = "Body not sent as `application/json`",
            content_type = "application/problem+json"
        )]
        UnsupportedMediaType(Problem),
        /// 422.
        #[response(
            status = 422,
            description = "JSON that does not fit the body's schema (a missing or unknown field, a wrong type)",
            content_type = "application/problem+json"
        )]
        Unprocessable(Problem),
    }

    /// 415: the body's media type is not one the route takes.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 415,
        description = "Body not sent as a media type the route takes",
        content_type = "application/problem+json"
    )]
    pub struct UnsupportedMediaType(pub Problem);

    /// 403: not an active provider on-chain.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 403,
        description = "Not an active provider on-chain",
        content_type = "application/problem+json"
    )]
    pub struct NotAProvider(pub Problem);
}

// ------------------------------------------------------------------ problems

/// An RFC 9457 problem (`application/problem+json`): every error response.
#[derive(ToSchema, serde::Serialize)]
pub struct Problem {
    /// `https://medanchor.dev/problems/{code}`.
    pub r#type: String,
    /// The HTTP status's reason phrase.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `consent-denied`, `version-conflict`.
    pub code: &'static str,
    /// What was wrong (generic for 5xx: details are logged, not sent).
    pub detail: String,
    /// 403 from a contract rule: the contract's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ContractReason>,
    /// 409: the record's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// 401 from a wrong access code or passcode: wrong attempts left
    /// before the codes burn or redemption locks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
    /// 429: seconds to wait (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// 400 `invalid-content`: every field of structured content its
    /// template refuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldIssue>>,
}

/// A field of structured content its template refuses.
#[derive(ToSchema, serde::Serialize)]
pub struct FieldIssue {
    /// Its path in the content, e.g. `medications[1].dose.unit`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

// -------------------------------------------------------------- attachments

/// An attachment version.
#[derive(ToSchema, serde::Serialize)]
pub struct AttachmentView {
    /// The attachment (the same for every version of one file name).
    pub attachment_id: String,
    /// From 1.
    pub version: u64,
    /// The file's name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// The original size.
    pub size: u64,
    /// Bytes stored (compressed when that saved space, then sealed).
    pub stored_size: u64,
    /// SHA-256 of the stored ciphertext.
    pub sha256: DataHash,
    /// `gzip` when compressed before sealing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When (unix ms).
    pub uploaded_ms: u64,
    /// When it was marked removed (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_ms: Option<u64>,
    /// The version this one restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// The object's storage class (`STANDARD` on a local store).
    pub storage_class: String,
}

/// `GET …/anchor`: where a file's hash stands on-chain.
#[derive(ToSchema, serde::Serialize)]
pub struct FileAnchorView {
    /// The attachment.
    pub attachment_id: String,
    /// The version.
    pub version: u64,
    /// SHA-256 of its stored ciphertext (the leaf's entry).
    pub sha256: DataHash,
    /// `queued` (waiting for a batch), `pending` (sent), `anchored`.
    pub status: String,
    /// Its index among the batch's leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// The batch's leaf count (the `leaf-count` on-chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// The audit path, bottom-up (RFC 9162 §2.1.3.1), hex.
    pub path: Vec<String>,
    /// The batch's root, hex (the key of `get-batch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The `anchor-batch` transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txid: Option<Txid>,
    /// The block that anchored it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u64>,
}

/// `POST …/link`.
#[derive(ToSchema, serde::Serialize)]
pub struct LinkView {
    /// The link (on the node's public URL).
    pub url: String,
    /// The same, as a path on this API.
    pub path: String,
    /// The version it names.
    pub version: u64,
    /// When it stops working (unix ms).
    pub expires_ms: u64,
}

/// `GET /v1/records/{id}/attachments`.
#[derive(ToSchema, serde::Serialize)]
pub struct AttachmentList {
    /// By file, then version.
    pub items: Vec<AttachmentView>,
}

/// `POST …/remove`.
#[derive(ToSchema, serde::Serialize)]
pub struct Removed {
    /// Versions marked.
    pub versions: u64,
}

// ------------------------------------------------------------------- search

/// A matched text.
#[derive(ToSchema, serde::Serialize)]
pub struct HighlightView {
    /// `patient_name`, `diagnosis`, `medication`, `name`, `phone` or
    /// `blood_group`.
    pub field: &'static str,
    /// The text as the caller may read it.
    pub text: String,
    /// `[start, end)` byte ranges of the matches in `text`.
    pub ranges: Vec<[usize; 2]>,
}

/// A record found.
#[derive(ToSchema, serde::Serialize)]
pub struct RecordHitView {
    /// The record.
    pub record_id: RecordId,
    /// Its current version.
    pub version: u64,
    /// The patient.
    pub patient: String,
    /// The record type.
    pub record_type: String,
    /// When the version was written (unix ms).
    pub created_ms: u64,
    /// The template it was written with, if structured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<medanchor_clinical::TemplateRef>,
    /// What matched.
    pub highlights: Vec<HighlightView>,
}

/// `GET /v1/search/records`.
#[derive(ToSchema, serde::Serialize)]
pub struct RecordSearchPage {
    /// Newest first.
    pub items: Vec<RecordHitView>,
    /// The next page's `cursor`, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A patient found.
#[derive(ToSchema, serde::Serialize)]
pub struct PatientHitView {
    /// The patient's principal.
    pub patient: String,
    /// What matched.
    pub highlights: Vec<HighlightView>,
}

/// `GET /v1/search/patients`.
#[derive(ToSchema, serde::Serialize)]
pub struct PatientSearchPage {
    /// The patients found.
    pub items: Vec<PatientHitView>,
    /// The next page's `cursor`, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// -------------------------------------------------------------- credentials

/// A provider's credential version.
#[derive(ToSchema, serde::Serialize)]
pub struct CredentialView {
    /// The provider.
    pub provider: String,
    /// The version (also the `ETag`).
    pub version: u64,
    /// `pending`, `verified`, `rejected` or `expired`.
    pub state: &'static str,
    /// The state with who decided, when, and why.
    pub status: medanchor_service::credentials::CredentialStatus,
    /// SHA-256 of the document's canonical bytes.
    pub document_hash: DataHash,
    /// The document.
    pub document: medanchor_clinical::credentials::Credential,
    /// When it was written (unix ms).
    pub updated_ms: u64,
    /// What the chain holds for the provider (single reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainCommitment>,
    /// Whether the chain commits to exactly this document (single reads
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches_chain: Option<bool>,
}

/// The contract's view of a provider (`get-provider`), as indexed.
#[derive(ToSchema, serde::Serialize)]
pub struct ChainCommitment {
    /// Whether the provider is registered.
    pub registered: bool,
    /// The committed `credential-hash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_hash: Option<DataHash>,
    /// The active flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `GET /v1/credentials`.
#[derive(ToSchema, serde::Serialize)]
pub struct CredentialList {
    /// Current versions, by provider.
    pub items: Vec<CredentialView>,
    /// `after` for the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `POST /v1/providers/{provider}/credentials/decision`. Other members
/// are ignored (an internally tagged body's variants cannot each be
/// closed in the document).
#[derive(ToSchema, serde::Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum DecisionBody {
    /// Verify: commit the document's hash on-chain.
    Verify {
        /// The version decided on (the current one).
        #[schema(minimum = 1)]
        #[serde(deserialize_with = "medanchor_clinical::template::whole")]
        version: u64,
    },
    /// Reject, with a reason for the provider.
    Reject {
        /// The version decided on (the current one).
        #[schema(minimum = 1)]
        #[serde(deserialize_with = "medanchor_clinical::template::whole")]
        version: u64,
        /// Why, 1 to 500 characters (not blank).
        #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
        reason: String,
    },
}

// ----------------------------------------------------------------- profiles

/// `GET` / `PUT /v1/patients/{patient}/profile`.
#[derive(ToSchema, serde::Serialize)]
pub struct ProfileView {
    /// The patient.
    pub patient: String,
    /// The version (0: none written yet; also the `ETag`).
    pub version: u64,
    /// `owner`, `consent` or `emergency`.
    pub access: &'static str,
    /// The sections released to this reader.
    pub sections: Vec<&'static str>,
    /// The released sections' content.
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    /// The patient only: how complete the profile is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completeness: Option<Completeness>,
    /// When it was written (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_ms: Option<u64>,
}

/// How complete a profile is.
#[derive(ToSchema, serde::Serialize)]
pub struct Completeness {
    /// Sections filled, in percent.
    pub percent: u8,
    /// The sections still empty.
    pub missing: Vec<&'static str>,
}

/// A health profile's content: every member optional. `full_name`;
/// `phone` (7 to 15 digits, `+` optional); `allergies`:
/// `[{substance, reaction, severity}]`; `chronic_conditions`: `[{code
/// (ICD-10-CM), description?}]`; `current_medications`: `[{name, dose:
/// {value, unit}, route, frequency}]`; `blood_type`: `A+`…`O-`;
/// `medical_alerts`: `[text]`; `emergency_contacts`: `[{name,
/// relationship, phone, email?}]`; `organ_donor`; `preferred_language`;
/// `communication_preference`: `email`, `sms`, `phone`, `mail` or
/// `portal`; `preferred_pharmacy`; `insurance_provider`;
/// `insurance_member_id`. Unknown members are refused.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct ProfileContent(pub serde_json::Value);

// ---------------------------------------------------------------- templates

/// `GET /v1/templates`.
#[derive(ToSchema, serde::Serialize)]
pub struct TemplateList {
    /// The latest version of every template the caller may write with.
    pub items: Vec<medanchor_clinical::Template>,
}

/// `GET /v1/templates/{id}`.
#[derive(ToSchema, serde::Serialize)]
pub struct TemplateView {
    /// The template.
    pub template: medanchor_clinical::Template,
    /// A new record's content: the fields' defaults.
    #[schema(value_type = Object)]
    pub prefill: serde_json::Value,
}

impl Problem {
    /// A problem with only the members every problem has.
    pub fn new(status: axum::http::StatusCode, code: &'static str, detail: String) -> Problem {
        Problem {
            r#type: format!("https://medanchor.dev/problems/{code}"),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            code,
            detail,
            reason: None,
            current_version: None,
            remaining_attempts: None,
            retry_after: None,
            errors: None,
        }
    }
}

/// A contract's error, in a 403 problem.
#[derive(ToSchema, serde::Serialize)]
pub struct ContractReason {
    /// The contract's error code (`u100`…).
    pub code: u32,
    /// The contract's constant, e.g. `ERR-CONSENT-REVOKED`.
    pub name: &'static str,
    /// What it means.
    pub message: &'static str,
}

// --------------------------------------------------------------------- auth

/// `POST /v1/auth/challenge`'s answer.
#[derive(ToSchema, serde::Serialize)]
pub struct ChallengeResponse {
    /// Single-use challenge id, sent back with the signature.
    pub nonce: String,
    /// The text for the wallet to sign.
    pub message: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /v1/auth/verify`'s answer: a session.
#[derive(ToSchema, serde::Serialize)]
pub struct SessionResponse {
    /// The bearer token.
    pub token: String,
    /// Who signed in.
    pub principal: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `GET /v1/me`.
#[derive(ToSchema, serde::Serialize)]
pub struct MeResponse {
    /// The session's principal.
    pub principal: String,
    /// `admin`, `auditor`, `provider`, `patient` or `none`.
    pub role: String,
    /// Whether this node holds the caller's key (custodial signing).
    pub custodial: bool,
}

// ------------------------------------------------------------------ records

/// A contract call for the caller's wallet to sign and broadcast.
#[derive(ToSchema, serde::Serialize)]
pub struct ContractCallView {
    /// `deployer.contract-name`.
    pub contract: String,
    /// The public function.
    pub function: String,
    /// Clarity-serialized arguments, `0x` hex.
    pub args: Vec<String>,
}

/// A record version's anchor.
#[derive(ToSchema, serde::Serialize)]
pub struct AnchorView {
    /// Pending, anchored or failed.
    pub status: AnchorStatus,
    /// SHA-256 of the stored ciphertext blob.
    pub data_hash: DataHash,
    /// What `data_hash` hashes.
    pub hashed: String,
    /// The anchoring transaction, once known.
    pub txid: Option<Txid>,
    /// Its block.
    pub block_height: Option<u64>,
    /// Its block's index hash.
    pub index_block_hash: Option<BlockHash>,
    /// Why it failed (or that a broadcast is unconfirmed).
    pub failure: Option<String>,
}

/// A record version (with its content when read).
#[derive(ToSchema, serde::Serialize)]
pub struct RecordView {
    /// 16 bytes of hex (without `0x`).
    #[schema(value_type = RecordId)]
    pub record_id: String,
    /// Version, from 1.
    pub version: u64,
    /// The patient's principal.
    pub patient: String,
    /// The record type.
    pub record_type: String,
    /// The data type consent is granted for.
    pub data_type: String,
    /// The writing provider.
    pub author: String,
    /// The payload's media type.
    pub content_type: String,
    /// Plaintext bytes.
    pub size: u64,
    /// The anchor.
    pub anchor: AnchorView,
    /// Reads only: the payload (JSON as itself, anything else base64).
    /// Spliced into the serialized view (`app::records::with_content`),
    /// never held as a tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<serde_json::Value>,
    /// Reads only: `json` or `base64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// Writes with `signing: wallet`: the transaction to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_and_broadcast: Option<ContractCallView>,
    /// Reads of an anchored record: the chain's lifecycle status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Reads of an anchored record: whether it is finalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalized: Option<bool>,
    /// Structured records: the template (and version) the content was
    /// written with and validated against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<medanchor_clinical::TemplateRef>,
}

/// Who signs a write's transaction: this node with the caller's custodial
/// key (`custodial`, the default; 403 `no-custodial-key` when it holds
/// none) or the caller's wallet (`wallet`: the call is returned to sign).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SigningMode {
    /// The node signs with the key it holds for the caller.
    Custodial,
    /// The caller's wallet signs the returned call.
    Wallet,
}

/// `content_encoding` of the JSON form.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JsonEncoding {
    /// The content is the JSON value itself.
    Json,
}

/// `content_encoding` of the base64 form.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Base64Encoding {
    /// The content is a base64 string of the payload's bytes.
    Base64,
}

/// A record body with JSON content: stored as the JSON text sent, served
/// back as JSON (`application/json`).
#[derive(ToSchema)]
pub struct JsonRecordRequest {
    /// The record type (creation; an update keeps its record's type, but
    /// the name must still be one).
    pub record_type: RecordType,
    /// Any JSON value, `null` included.
    #[schema(value_type = Value)]
    pub content: (),
    /// `json`, or absent.
    pub content_encoding: Option<JsonEncoding>,
    /// Ignored: JSON content is `application/json`.
    pub content_type: Option<String>,
    /// 0 to 3 (default 1); creation only (an update checks it and leaves
    /// the record's).
    #[schema(minimum = 0, maximum = 3)]
    pub confidentiality: Option<u8>,
    /// `custodial` (default) or `wallet`.
    pub signing: Option<SigningMode>,
    /// Structured content: the template it is written with. The content
    /// must be an object its template accepts (400 `invalid-content` names
    /// every failing field), and the template's record type must be
    /// `record_type`.
    pub template: Option<medanchor_clinical::TemplateRef>,
}

/// A record body with base64 content: any bytes, with their media type.
#[derive(ToSchema)]
pub struct Base64RecordRequest {
    /// The record type (creation; an update keeps its record's type, but
    /// the name must still be one).
    pub record_type: RecordType,
    /// The payload, standard base64 with padding.
    #[schema(pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$")]
    pub content: String,
    /// `base64`.
    pub content_encoding: Base64Encoding,
    /// The payload's media type (default `application/octet-stream`).
    pub content_type: Option<String>,
    /// 0 to 3 (default 1); creation only (an update checks it and leaves
    /// the record's).
    #[schema(minimum = 0, maximum = 3)]
    pub confidentiality: Option<u8>,
    /// `custodial` (default) or `wallet`.
    pub signing: Option<SigningMode>,
}

/// `POST /v1/patients/{patient}/records` and `PUT /v1/records/{id}`'s JSON
/// body: JSON content, or base64 content with `content_encoding: base64`.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum RecordRequest {
    /// JSON content.
    Json(JsonRecordRequest),
    /// Base64 content.
    Base64(Base64RecordRequest),
}

/// `GET /v1/patients/{patient}/records`: one page.
#[derive(ToSchema, serde::Serialize)]
pub struct RecordPage {
    /// The indexer's records the caller may read.
    pub items: Vec<ChainRecord>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// A lifecycle transaction's answer (202).
#[derive(ToSchema, serde::Serialize)]
pub struct LifecycleResponse {
    /// 16 bytes of hex (without `0x`).
    #[schema(value_type = RecordId)]
    pub record_id: String,
    /// `record.finalize`, `record.unlock` or `record.archive`.
    pub action: String,
    /// The contract function.
    pub function: String,
    /// Custodial: the broadcast transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txid: Option<Txid>,
    /// Custodial: `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `?signing=wallet`: the transaction to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_and_broadcast: Option<ContractCallView>,
}

// -------------------------------------------------------------------- audit

/// One audit log entry with its index and Merkle leaf.
#[derive(ToSchema, serde::Serialize)]
pub struct IndexedEntry {
    /// Position in the log.
    pub index: u64,
    /// The entry.
    pub entry: crate::audit::AuditEntry,
    /// The leaf's canonical bytes (JSON text).
    pub leaf: String,
}

/// `GET /v1/audit/entries`.
#[derive(ToSchema, serde::Serialize)]
pub struct AuditEntries {
    /// The visible entries of the requested range.
    pub entries: Vec<IndexedEntry>,
    /// The log's size.
    pub size: u64,
}

/// A disclosures report's format.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ReportFormat {
    /// `application/json` (the default).
    Json,
    /// `text/csv`.
    Csv,
}

/// `GET /v1/audit/disclosures` (JSON).
#[derive(ToSchema, serde::Serialize)]
pub struct DisclosureReport {
    /// The patient.
    pub patient: String,
    /// Range start, ISO 8601.
    pub from: String,
    /// Range end, ISO 8601.
    pub to: String,
    /// The log size scanned.
    pub log_size: u64,
    /// The disclosures.
    pub disclosures: Vec<crate::disclosures::Disclosure>,
}

/// `GET /v1/audit/proof/inclusion`.
#[derive(ToSchema, serde::Serialize)]
pub struct InclusionProof {
    /// The leaf index.
    pub index: u64,
    /// The tree size.
    pub size: u64,
    /// RFC 9162 audit path, hex hashes.
    pub proof: Vec<String>,
}

/// `GET /v1/audit/proof/consistency`.
#[derive(ToSchema, serde::Serialize)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// RFC 9162 consistency proof, hex hashes.
    pub proof: Vec<String>,
}

/// The checkpoint key, in `GET /v1/audit/anchor`.
#[derive(ToSchema, serde::Serialize)]
pub struct CheckpointKey {
    /// The checkpoint's origin line.
    pub origin: String,
    /// The signed note's key name.
    pub key_name: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// The signature algorithm.
    pub algorithm: String,
    /// Where the checkpoint is served.
    pub url: String,
}

/// `GET /v1/audit/anchor`.
#[derive(ToSchema, serde::Serialize)]
pub struct AuditAnchor {
    /// Whether the log is anchored on-chain.
    pub anchoring: bool,
    /// The operator principal (null when not anchoring).
    pub log: Option<String>,
    /// `deployer.record-management`.
    pub contract: String,
    /// The log's size.
    pub size: u64,
    /// The checkpoint key.
    pub checkpoint: CheckpointKey,
    /// The last on-chain head read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<crate::anchoring::OnChainHead>,
    /// When the anchoring record last changed (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_ms: Option<u64>,
    /// The last submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_submission: Option<crate::anchoring::Submission>,
    /// The last step's failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How to verify independently (when anchoring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
}

// ------------------------------------------------------------------- verify

/// What a stored ciphertext blob looks like when hashed again.
#[derive(ToSchema, serde::Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum BlobState {
    /// Present and hashing to its address.
    Present,
    /// Not in the store.
    Missing,
    /// Present, but its bytes do not hash to the anchored hash.
    Corrupt,
    /// The store could not be read.
    Unreadable,
}

/// The stored ciphertext, hashed again.
#[derive(ToSchema, serde::Serialize)]
pub struct BlobView {
    /// What was found.
    pub state: BlobState,
    /// SHA-256 of the stored bytes, when they could be read.
    pub sha256: Option<DataHash>,
    /// Whether it matches the anchored hash.
    pub matches: bool,
    /// Bytes, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why it is corrupt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The API's own anchor state, in `GET /v1/verify/record/{id}`.
#[derive(ToSchema, serde::Serialize)]
pub struct ApiAnchorState {
    /// Pending, anchored or failed.
    pub status: AnchorStatus,
    /// The anchoring transaction.
    pub txid: Option<Txid>,
    /// Its block.
    pub block_height: Option<u64>,
    /// Its block's index hash.
    pub index_block_hash: Option<BlockHash>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// The indexer's view, in `GET /v1/verify/record/{id}`.
#[derive(ToSchema, serde::Serialize)]
pub struct IndexedChainView {
    /// `the API's indexer`.
    pub source: String,
    /// `deployer.record-management`.
    pub contract: String,
    /// The on-chain record version, if any.
    pub version: Option<ChainVersion>,
    /// Every anchor of this data hash.
    pub anchors: Vec<ChainAnchor>,
}

/// A verification's verdict on a record version.
#[derive(ToSchema, serde::Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum RecordVerdict {
    /// The chain holds this version with the stored ciphertext's hash.
    Anchored,
    /// The chain holds this version with another hash.
    Mismatch,
    /// Not on-chain yet; the transaction is pending.
    Pending,
    /// The anchoring transaction failed.
    Failed,
    /// The API says anchored but the chain has no such version.
    NotAnchored,
    /// The ciphertext is not in the store.
    BlobMissing,
    /// The ciphertext does not hash to its address.
    BlobCorrupt,
    /// The store could not be read.
    BlobUnreadable,
}

/// `GET /v1/verify/record/{id}`.
#[derive(ToSchema, serde::Serialize)]
pub struct VerifyRecord {
    /// What this answer is (trust-us).
    pub trust: &'static str,
    /// The verdict.
    pub verdict: RecordVerdict,
    /// 16 bytes of hex (without `0x`).
    #[schema(value_type = RecordId)]
    pub record_id: String,
    /// The version.
    pub version: u64,
    /// SHA-256 of the stored ciphertext.
    pub data_hash: DataHash,
    /// What `data_hash` hashes.
    pub hashed: &'static str,
    /// The API's anchor state.
    pub api: ApiAnchorState,
    /// The stored ciphertext.
    pub blob: BlobView,
    /// The indexer's view.
    pub chain: IndexedChainView,
}

/// The API's copy of an anchored hash, in `GET /v1/verify/hash/{sha256}`.
#[derive(ToSchema, serde::Serialize)]
pub struct ApiCopy {
    /// 16 bytes of hex (without `0x`).
    #[schema(value_type = RecordId)]
    pub record_id: String,
    /// The version.
    pub version: u64,
    /// The API's anchor state.
    pub status: AnchorStatus,
    /// The stored ciphertext.
    pub blob: BlobView,
}

/// Whether a hash is anchored.
#[derive(ToSchema, serde::Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum HashVerdict {
    /// At least one anchor holds it.
    Anchored,
    /// No anchor holds it.
    NotAnchored,
}

/// `GET /v1/verify/hash/{sha256}`.
#[derive(ToSchema, serde::Serialize)]
pub struct VerifyHash {
    /// What this answer is (trust-us).
    pub trust: &'static str,
    /// The verdict.
    pub verdict: HashVerdict,
    /// The hash asked about.
    pub data_hash: DataHash,
    /// Every anchor of this hash.
    pub anchors: Vec<ChainAnchor>,
    /// The API's copy, if it holds one.
    pub api_copy: Option<ApiCopy>,
}

// --------------------------------------------------------- consent requests

/// A consent request's id: 16 bytes of lowercase hex.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-f]{32}$", example = "5e1c0d2b3a4f69788796a5b4c3d2e1f0")]
pub struct ConsentRequestId(pub String);

/// A transaction id as wallets and the node report it: `0x` and 64
/// lowercase hex digits.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^0x[0-9a-f]{64}$",
    example = "0xabababababababababababababababababababababababababababababababab"
)]
pub struct PrefixedTxid(pub String);

/// A consent request's `data_types`: 1 to 6, each at most once.
pub fn consent_request_types_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("DataTypeName"))
        .min_items(Some(1))
        .max_items(Some(medanchor_service::consent_requests::MAX_DATA_TYPES))
        .unique_items(true)
        .description(Some("Consent data types by name, 1 to 6, each at most once"))
        .build()
}

/// An approval's `txids`: 1 to 8, each at most once.
pub fn grant_txids_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("PrefixedTxid"))
        .min_items(Some(1))
        .max_items(Some(medanchor_service::consent_requests::MAX_TXIDS))
        .unique_items(true)
        .description(Some("The grant-consent transactions, 1 to 8, each at most once"))
        .build()
}

/// Where a consent request stands.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ConsentRequestState {
    /// Waiting for the patient.
    Pending,
    /// The patient approved (and reported their grant transactions).
    Approved,
    /// The patient declined.
    Declined,
    /// Not decided within its 7 days.
    Expired,
}

/// A consent request, as its patient and its provider see it.
#[derive(ToSchema, serde::Serialize)]
pub struct ConsentRequestView {
    /// The request.
    #[schema(value_type = ConsentRequestId)]
    pub id: String,
    /// Who asks.
    pub provider: String,
    /// Whom.
    pub patient: String,
    /// For which data types.
    pub data_types: Vec<DataType>,
    /// For how many burn blocks (null: until revoked).
    pub duration_blocks: Option<u64>,
    /// Why (the provider's text).
    pub purpose: String,
    /// `pending`, `approved`, `declined` or `expired`.
    #[schema(value_type = ConsentRequestState)]
    pub state: &'static str,
    /// When it was made (unix ms).
    pub created_ms: u64,
    /// When it expires unless decided (unix ms).
    pub expires_ms: u64,
    /// When the patient decided (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<u64>,
    /// The patient's decline message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The grant transactions the patient reported on approval.
    pub txids: Vec<String>,
    /// Whether the chain shows, now, the patient's consent to the provider
    /// for every requested data type (the request itself grants nothing).
    pub granted_on_chain: bool,
}

/// `GET /v1/consent-requests`.
#[derive(ToSchema, serde::Serialize)]
pub struct ConsentRequestList {
    /// Newest first.
    pub requests: Vec<ConsentRequestView>,
}

// -------------------------------------------------------------------- share

/// A share's `data_types`: at least one, each at most once (utoipa's
/// field attributes cannot say `uniqueItems`).
pub fn data_types_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("DataTypeName"))
        .min_items(Some(1))
        .unique_items(true)
        .description(Some("Consent data types by name, each at most once"))
        .build()
}

/// How long a share's code and link live.
#[derive(ToSchema)]
pub enum ShareDurationName {
    /// One hour.
    #[schema(rename = "1h")]
    OneHour,
    /// Six hours.
    #[schema(rename = "6h")]
    SixHours,
    /// A day (the default).
    #[schema(rename = "24h")]
    OneDay,
    /// A week.
    #[schema(rename = "7d")]
    SevenDays,
}

/// A share's QR image and content.
#[derive(ToSchema, serde::Serialize)]
pub struct ShareQr {
    /// `shlink:/…`: what the QR encodes (signed; carries the release key).
    pub content: String,
    /// QR version at error correction M.
    pub version: i16,
    /// The QR as PNG, base64.
    pub png_base64: String,
    /// The QR as SVG.
    pub svg: String,
}

/// `POST /v1/share/codes`'s answer.
#[derive(ToSchema, serde::Serialize)]
pub struct CreatedShare {
    /// The 6-digit code: shown once, stored only as a keyed hash.
    pub code: String,
    /// The share.
    pub share: crate::share::ShareView,
    /// When `qr` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<ShareQr>,
    /// Set when making this code lifted a lock-out: the failed attempts
    /// that had locked redemption (they are in your access history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlocked_after_failures: Option<u32>,
}

/// `GET /v1/share/codes`'s answer.
#[derive(ToSchema, serde::Serialize)]
pub struct ShareList {
    /// Your stored shares (dead ones are swept).
    pub items: Vec<crate::share::ShareView>,
    /// How many are active.
    pub active: usize,
    /// The most that may be active.
    pub max_active: usize,
    /// Redemption locked after too many failures.
    pub locked: bool,
    /// Failures since you last unlocked.
    pub failures: u32,
    /// Failures ever.
    pub lifetime_failures: u64,
}

/// A patient's failure counter.
#[derive(ToSchema, serde::Serialize)]
pub struct ShareGuard {
    /// Redemption locked.
    pub locked: bool,
    /// Failures since the last unlock.
    pub failures: u32,
    /// Failures ever.
    pub lifetime_failures: u64,
}

/// What one data type of a grant gives now, under the chain's rules.
#[derive(ToSchema, serde::Serialize)]
pub struct GrantAccess {
    /// The data type.
    pub data_type: String,
    /// Readable now.
    pub allowed: bool,
    /// The contract's error when the chain refuses.
    pub reason: Option<String>,
}

/// A redemption's grant.
#[derive(ToSchema, serde::Serialize)]
pub struct GrantView {
    /// The grant token: send it as the `X-Share-Grant` header.
    pub grant: String,
    /// `x-share-grant`.
    pub header: String,
    /// The share redeemed.
    pub share_id: String,
    /// Whose data.
    pub patient: String,
    /// Data types covered.
    pub data_types: Vec<String>,
    /// `access_code` or `qr_code` (the audit method).
    pub method: String,
    /// Unix ms (never past the share's expiry).
    pub expires_ms: u64,
    /// Per data type, what the chain allows now.
    pub access: Vec<GrantAccess>,
}

/// A QR link's redemption: the grant and the release document.
#[derive(ToSchema, serde::Serialize)]
pub struct LinkGrantView {
    /// The grant's fields.
    #[serde(flatten)]
    pub grant: GrantView,
    /// Compact JWE (`alg: dir`, `enc: A256GCM`) under the QR's key: the
    /// share id, the patient, the data types, the expiry and the issuer.
    pub release: String,
}

/// `GET /v1/share/issuer`.
#[derive(ToSchema, serde::Serialize)]
pub struct IssuerView {
    /// The node's base URL (the links' `iss`).
    pub iss: String,
    /// RFC 7638 thumbprint (the links' `kid`).
    pub kid: String,
    /// The Ed25519 public key as a JWK.
    pub jwk: OkpJwk,
}

/// An Ed25519 public key as a JWK (RFC 8037).
#[derive(ToSchema, serde::Serialize)]
pub struct OkpJwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// `EdDSA`.
    pub alg: &'static str,
    /// The public key, unpadded base64url.
    pub x: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        json()
    }

    #[test]
    fn is_openapi_3_1_with_title_version_and_bearer() {
        let d = doc();
        assert!(d["openapi"].as_str().expect("openapi").starts_with("3.1."), "{}", d["openapi"]);
        assert_eq!(d["info"]["title"], "medanchor API");
        assert_eq!(d["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(d["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(d["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    fn every_served_route_is_documented_and_nothing_else() {
        let d = doc();
        let documented: BTreeSet<(String, String)> = d["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().expect("path item").keys().map(move |m| (m.to_uppercase(), path.clone()))
            })
            .filter(|(m, _)| ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"].contains(&m.as_str()))
            .collect();
        let served: BTreeSet<(String, String)> = crate::app::routes()
            .into_iter()
            .map(|(verb, path, _)| (verb.name().to_string(), path.to_string()))
            .collect();
        assert_eq!(served.len(), crate::app::routes().len(), "a route is listed twice");
        assert_eq!(documented, served);
    }

    #[test]
    fn error_responses_are_problems() {
        let d = doc();
        let mut errors = 0;
        for (path, item) in d["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no success response");
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        errors += 1;
                        assert_eq!(
                            r["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
                // Routes that require a session answer 401 (`{}` marks it optional).
                let security = op["security"].as_array().cloned().unwrap_or_default();
                if !security.is_empty() && security.iter().all(|r| r.as_object().is_some_and(|o| !o.is_empty())) {
                    assert!(responses.contains_key("401"), "{method} {path}: bearer without 401");
                }
            }
        }
        assert!(errors > 20);
    }

    #[test]
    fn the_documents_enums_are_the_contracts_names() {
        use medanchor_contracts::types::{DataType, RecordType};
        let d = doc();
        let names = |schema: &str| -> Vec<String> {
            d["components"]["schemas"][schema]["enum"]
                .as_array()
                .expect("enum")
                .iter()
                .map(|v| v.as_str().expect("name").to_string())
                .collect()
        };
        let records: Vec<String> = RecordType::ALL.iter().map(|t| t.name().to_string()).collect();
        let data: Vec<String> = DataType::ALL.iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names("RecordTypeName"), records);
        assert_eq!(names("DataTypeName"), data);
        let durations: Vec<String> =
            medanchor_service::share::ShareDuration::ALL.iter().map(|d| d.name().to_string()).collect();
        assert_eq!(names("ShareDurationName"), durations);
    }

    #[tokio::test]
    async fn openapi_json_is_served_as_json() {
        let response = openapi_json().await;
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let d: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(d["paths"]["/openapi.json"]["get"].is_object());
    }
}
