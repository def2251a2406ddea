//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (`#[utoipa::path]` in [`crate::app`]) and served at `GET /openapi.json`.
//!
//! Handlers that build their JSON with `serde_json::json!` are described
//! by the schema structs below, which mirror those bodies field for field;
//! they are documentation only and never serialized.

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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
        openapi_json,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Wallet sign-in and sessions"),
        (name = "records", description = "Encrypted records anchored on-chain"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "verify", description = "Trust-us verification views and raw ciphertext"),
        (name = "share", description = "6-digit access codes and signed QR links: make, revoke, redeem"),
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
    }
}

/// The document, with the crate's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
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
    match document().to_json() {
        Ok(json) => ([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => crate::error::ApiError::internal(e).into_response(),
    }
}

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

    /// 429: rate limited (`Retry-After`).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 429, description = "Rate limited (`Retry-After`)", content_type = "application/problem+json")]
    pub struct RateLimited(pub Problem);

    /// 413: the body is over the configured limit.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413, description = "Body over the configured limit", content_type = "application/problem+json")]
    pub struct TooLarge(pub Problem);

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
#[derive(ToSchema)]
pub struct Problem {
    /// `https://medanchor.dev/problems/{code}`.
    pub r#type: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `consent-denied`, `version-conflict`.
    pub code: String,
    /// What was wrong (generic for 5xx: details are logged, not sent).
    pub detail: String,
    /// 403 from a contract rule: the contract's error (`{code, name, message}`).
    #[schema(value_type = Option<Object>)]
    pub reason: Option<()>,
    /// 409: the record's current version.
    pub current_version: Option<u64>,
    /// 401 from a wrong access code or passcode: wrong attempts left
    /// before the codes burn or redemption locks.
    pub remaining_attempts: Option<u32>,
    /// 429: seconds to wait (also in `Retry-After`).
    pub retry_after: Option<u64>,
}

// --------------------------------------------------------------------- auth

/// `POST /v1/auth/challenge`'s answer.
#[derive(ToSchema)]
pub struct ChallengeResponse {
    /// Single-use challenge id, sent back with the signature.
    pub nonce: String,
    /// The text for the wallet to sign.
    pub message: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /v1/auth/verify`'s answer: a session.
#[derive(ToSchema)]
pub struct SessionResponse {
    /// The bearer token.
    pub token: String,
    /// Who signed in.
    pub principal: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `GET /v1/me`.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct ContractCallView {
    /// `deployer.contract-name`.
    pub contract: String,
    /// The public function.
    pub function: String,
    /// Clarity-serialized arguments, `0x` hex.
    pub args: Vec<String>,
}

/// A record version's anchor.
#[derive(ToSchema)]
pub struct AnchorView {
    /// Pending, anchored or failed.
    pub status: AnchorStatus,
    /// `0x` SHA-256 of the stored ciphertext blob.
    pub data_hash: String,
    /// What `data_hash` hashes.
    pub hashed: String,
    /// The anchoring transaction, once known.
    pub txid: Option<String>,
    /// Its block.
    pub block_height: Option<u64>,
    /// Its block's index hash.
    pub index_block_hash: Option<String>,
    /// Why it failed (or that a broadcast is unconfirmed).
    pub failure: Option<String>,
}

/// A record version (with its content when read).
#[derive(ToSchema)]
pub struct RecordView {
    /// 16 bytes of hex.
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
    pub content: Option<serde_json::Value>,
    /// Reads only: `json` or `base64`.
    pub content_encoding: Option<String>,
    /// Writes with `signing: wallet`: the transaction to sign.
    pub sign_and_broadcast: Option<ContractCallView>,
    /// Reads of an anchored record: the chain's lifecycle status.
    pub status: Option<String>,
    /// Reads of an anchored record: whether it is finalized.
    pub finalized: Option<bool>,
}

/// `POST /v1/patients/{patient}/records` and `PUT /v1/records/{id}`'s JSON body.
#[derive(ToSchema)]
pub struct RecordRequest {
    /// One of the contract's record types, e.g. `lab-result`.
    pub record_type: String,
    /// Any JSON value (stored as its JSON text), or a base64 string with
    /// `content_encoding: base64`.
    pub content: serde_json::Value,
    /// `base64`, or absent for JSON content.
    pub content_encoding: Option<String>,
    /// The payload's media type (base64 content; default
    /// `application/octet-stream`).
    pub content_type: Option<String>,
    /// 0 to 3 (default 1); creation only.
    pub confidentiality: Option<u8>,
    /// `custodial` (default) or `wallet`.
    pub signing: Option<String>,
}

/// `GET /v1/patients/{patient}/records`: one page.
#[derive(ToSchema)]
pub struct RecordPage {
    /// The indexer's records the caller may read.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<()>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// A lifecycle transaction's answer (202).
#[derive(ToSchema)]
pub struct LifecycleResponse {
    /// 16 bytes of hex.
    pub record_id: String,
    /// `record.finalize`, `record.unlock` or `record.archive`.
    pub action: String,
    /// The contract function.
    pub function: String,
    /// Custodial: the broadcast transaction.
    pub txid: Option<String>,
    /// Custodial: `pending`.
    pub status: Option<String>,
    /// `?signing=wallet`: the transaction to sign.
    pub sign_and_broadcast: Option<ContractCallView>,
}

// -------------------------------------------------------------------- audit

/// One audit log entry with its index and Merkle leaf.
#[derive(ToSchema)]
pub struct IndexedEntry {
    /// Position in the log.
    pub index: u64,
    /// The entry.
    pub entry: crate::audit::AuditEntry,
    /// The leaf's canonical bytes (JSON text).
    pub leaf: String,
}

/// `GET /v1/audit/entries`.
#[derive(ToSchema)]
pub struct AuditEntries {
    /// The visible entries of the requested range.
    pub entries: Vec<IndexedEntry>,
    /// The log's size.
    pub size: u64,
}

/// `GET /v1/audit/disclosures` (JSON).
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct InclusionProof {
    /// The leaf index.
    pub index: u64,
    /// The tree size.
    pub size: u64,
    /// RFC 9162 audit path, hex hashes.
    pub proof: Vec<String>,
}

/// `GET /v1/audit/proof/consistency`.
#[derive(ToSchema)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// RFC 9162 consistency proof, hex hashes.
    pub proof: Vec<String>,
}

/// The checkpoint key, in `GET /v1/audit/anchor`.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
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
    #[schema(value_type = Option<Object>)]
    pub head: Option<()>,
    /// When the anchoring record last changed (Unix ms).
    pub checked_ms: Option<u64>,
    /// The last submission.
    #[schema(value_type = Option<Object>)]
    pub last_submission: Option<()>,
    /// The last step's failure.
    pub last_error: Option<String>,
    /// How to verify independently.
    pub verify: Option<String>,
}

// ------------------------------------------------------------------- verify

/// The stored ciphertext, hashed again.
#[derive(ToSchema)]
pub struct BlobView {
    /// `present`, `missing`, `corrupt` or `unreadable`.
    pub state: String,
    /// `0x` SHA-256 of the stored bytes.
    pub sha256: Option<String>,
    /// Whether it matches the anchored hash.
    pub matches: bool,
    /// Bytes, when present.
    pub size: Option<u64>,
    /// Why it is corrupt.
    pub detail: Option<String>,
}

/// The API's own anchor state, in `GET /v1/verify/record/{id}`.
#[derive(ToSchema)]
pub struct ApiAnchorState {
    /// Pending, anchored or failed.
    pub status: AnchorStatus,
    /// The anchoring transaction.
    pub txid: Option<String>,
    /// Its block.
    pub block_height: Option<u64>,
    /// Its block's index hash.
    pub index_block_hash: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// The indexer's view, in `GET /v1/verify/record/{id}`.
#[derive(ToSchema)]
pub struct IndexedChainView {
    /// `the API's indexer`.
    pub source: String,
    /// `deployer.record-management`.
    pub contract: String,
    /// The on-chain record version, if any.
    #[schema(value_type = Option<Object>)]
    pub version: Option<()>,
    /// Every anchor of this data hash.
    #[schema(value_type = Vec<Object>)]
    pub anchors: Vec<()>,
}

/// `GET /v1/verify/record/{id}`.
#[derive(ToSchema)]
pub struct VerifyRecord {
    /// What this answer is (trust-us).
    pub trust: String,
    /// `anchored`, `mismatch`, `pending`, `failed`, `not-anchored`,
    /// `blob-missing`, `blob-corrupt` or `blob-unreadable`.
    pub verdict: String,
    /// 16 bytes of hex.
    pub record_id: String,
    /// The version.
    pub version: u64,
    /// `0x` SHA-256 of the stored ciphertext.
    pub data_hash: String,
    /// What `data_hash` hashes.
    pub hashed: String,
    /// The API's anchor state.
    pub api: ApiAnchorState,
    /// The stored ciphertext.
    pub blob: BlobView,
    /// The indexer's view.
    pub chain: IndexedChainView,
}

/// The API's copy of an anchored hash, in `GET /v1/verify/hash/{sha256}`.
#[derive(ToSchema)]
pub struct ApiCopy {
    /// 16 bytes of hex.
    pub record_id: String,
    /// The version.
    pub version: u64,
    /// The API's anchor state.
    pub status: AnchorStatus,
    /// The stored ciphertext.
    pub blob: BlobView,
}

/// `GET /v1/verify/hash/{sha256}`.
#[derive(ToSchema)]
pub struct VerifyHash {
    /// What this answer is (trust-us).
    pub trust: String,
    /// `anchored` or `not-anchored`.
    pub verdict: String,
    /// `0x` hex.
    pub data_hash: String,
    /// Every anchor of this hash.
    #[schema(value_type = Vec<Object>)]
    pub anchors: Vec<()>,
    /// The API's copy, if it holds one.
    pub api_copy: Option<ApiCopy>,
}

// -------------------------------------------------------------------- share

/// A share's QR image and content.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct CreatedShare {
    /// The 6-digit code: shown once, stored only as a keyed hash.
    pub code: String,
    /// The share.
    pub share: crate::share::ShareView,
    /// When `qr` was asked for.
    pub qr: Option<ShareQr>,
    /// Set when making this code lifted a lock-out: the failed attempts
    /// that had locked redemption (they are in your access history).
    pub unlocked_after_failures: Option<u32>,
}

/// `GET /v1/share/codes`'s answer.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct ShareGuard {
    /// Redemption locked.
    pub locked: bool,
    /// Failures since the last unlock.
    pub failures: u32,
    /// Failures ever.
    pub lifetime_failures: u64,
}

/// What one data type of a grant gives now, under the chain's rules.
#[derive(ToSchema)]
pub struct GrantAccess {
    /// The data type.
    pub data_type: String,
    /// Readable now.
    pub allowed: bool,
    /// The contract's error when the chain refuses.
    pub reason: Option<String>,
}

/// A redemption's grant.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct LinkGrantView {
    /// The grant's fields.
    #[serde(flatten)]
    pub grant: GrantView,
    /// Compact JWE (`alg: dir`, `enc: A256GCM`) under the QR's key: the
    /// share id, the patient, the data types, the expiry and the issuer.
    pub release: String,
}

/// `GET /v1/share/issuer`.
#[derive(ToSchema)]
pub struct IssuerView {
    /// The node's base URL (the links' `iss`).
    pub iss: String,
    /// RFC 7638 thumbprint (the links' `kid`).
    pub kid: String,
    /// The Ed25519 public key as a JWK (`kty` OKP, `crv` Ed25519, `x`).
    #[schema(value_type = Object)]
    pub jwk: (),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        let text = document().to_json().expect("serializes");
        serde_json::from_str(&text).expect("parses as JSON")
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
