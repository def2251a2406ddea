//! The HTTP application: the route table, the request context (the
//! `Caller` extractor and the request id on every response), and the one
//! error mapping for rejections. The routes live by topic: `sign_in`,
//! `records`, `audit_log`, `verify` (trust-us views), `share` (access
//! codes and QR links); each parses the request, calls the service
//! ([`medanchor_service`]) and renders its answer.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, options, patch, post, put, MethodRouter};
use axum::{Json, Router};
pub use medanchor_service::anchor::{resend_once, spawn_tracker, track_once, RESEND_AFTER, RETRY_QUEUED_AFTER};
pub use medanchor_service::file_anchors::{file_anchor_job, BATCH_EVERY as FILE_BATCH_EVERY};
pub use medanchor_service::records::{principal_arg, record_id_arg};
/// The state every handler runs on: the service.
pub use medanchor_service::Service as AppState;
pub use medanchor_service::{BackendConfig, ChainView, Clock, Config as ApiConfig, Custody};
use rand::RngCore;

use crate::error::{ApiError, ApiResult};

pub(crate) mod analytics;
pub(crate) mod attachments;
pub(crate) mod audit_log;
pub(crate) mod backups;
pub(crate) mod consent_requests;
pub(crate) mod credentials;
pub(crate) mod deletion;
pub(crate) mod exports;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod notifications;
pub use health::METRICS_TOKEN_VAR;
pub(crate) mod profiles;
pub(crate) mod records;
pub(crate) mod search;
pub(crate) mod share;
pub(crate) mod sign_in;
pub(crate) mod templates;
pub(crate) mod uploads;
pub(crate) mod verify;

pub use share::GRANT_HEADER;

/// A request body that must be a JSON object: serde reads a struct from
/// an array too (`[null, null]` for two optional fields), which the
/// document does not allow.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> ApiResult<T> {
    if !body.is_object() {
        return Err(ApiError::bad("invalid-body", "the body must be a JSON object"));
    }
    serde_json::from_value(body).map_err(|e| ApiError::bad("invalid-body", e.to_string()))
}

/// An HTTP method the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
    /// OPTIONS.
    Options,
}

impl Verb {
    /// The method's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::Head => "HEAD",
            Verb::Options => "OPTIONS",
        }
    }

    fn route<H, T>(self, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        match self {
            Verb::Get => get(handler),
            Verb::Post => post(handler),
            Verb::Put => put(handler),
            Verb::Patch => patch(handler),
            Verb::Delete => delete(handler),
            Verb::Head => head(handler),
            Verb::Options => options(handler),
        }
    }
}

/// Every route the API serves: (method, path, handler). [`router`] is
/// built from this list alone, and the OpenAPI test checks the document
/// against it, so a route cannot be served undocumented.
pub(crate) fn routes() -> Vec<(Verb, &'static str, MethodRouter<AppState>)> {
    use Verb::{Delete, Get, Head, Options, Patch, Post, Put};
    vec![
        (Post, "/v1/auth/challenge", Post.route(sign_in::challenge)),
        (Post, "/v1/auth/verify", Post.route(sign_in::sign_in)),
        (Get, "/v1/me", Get.route(sign_in::me)),
        (Post, "/v1/patients/{patient}/records", Post.route(records::create_record)),
        (Get, "/v1/patients/{patient}/records", Get.route(records::list_records)),
        (Post, "/v1/patients/{patient}/deletion", Post.route(deletion::request_deletion)),
        (Get, "/v1/patients/{patient}/export", Get.route(exports::export_patient)),
        (Get, "/v1/patients/{patient}/summary", Get.route(exports::summary_report)),
        (Get, "/v1/exports/key", Get.route(exports::export_key)),
        (Get, "/v1/exports/{id}", Get.route(exports::export_verification)),
        (Put, "/v1/patients/{patient}/notifications/webhook", Put.route(notifications::subscribe_webhook)),
        (Get, "/v1/patients/{patient}/notifications/webhook", Get.route(notifications::read_webhook)),
        (Delete, "/v1/patients/{patient}/notifications/webhook", Delete.route(notifications::remove_webhook)),
        (Put, "/v1/patients/{patient}/notifications/preferences", Put.route(notifications::set_preferences)),
        (Get, "/v1/patients/{patient}/notifications/preferences", Get.route(notifications::read_preferences)),
        (Get, "/v1/records/{id}", Get.route(records::read_record)),
        (Put, "/v1/records/{id}", Put.route(records::update_record)),
        (Get, "/v1/records/{id}/versions", Get.route(records::record_versions)),
        (Post, "/v1/records/{id}/finalize", Post.route(records::finalize_record)),
        (Post, "/v1/records/{id}/unlock", Post.route(records::unlock_record)),
        (Post, "/v1/records/{id}/archive", Post.route(records::archive_record)),
        (Get, "/v1/audit/entries", Get.route(audit_log::audit_entries)),
        (Get, "/v1/audit/disclosures", Get.route(audit_log::audit_disclosures)),
        (Get, "/v1/audit/checkpoint", Get.route(audit_log::audit_checkpoint)),
        (Get, "/v1/audit/proof/inclusion", Get.route(audit_log::inclusion_proof)),
        (Get, "/v1/audit/proof/consistency", Get.route(audit_log::consistency_proof)),
        (Get, "/v1/verify/record/{id}", Get.route(verify::verify_record)),
        (Get, "/v1/verify/record/{id}/blob", Get.route(verify::record_blob)),
        (Get, "/v1/verify/hash/{sha256}", Get.route(verify::verify_hash)),
        (Get, "/v1/audit/anchor", Get.route(verify::audit_anchor)),
        (Post, "/v1/share/codes", Post.route(share::create_share)),
        (Get, "/v1/share/codes", Get.route(share::list_shares)),
        (Post, "/v1/share/codes/{id}/revoke", Post.route(share::revoke_share)),
        (Post, "/v1/share/unlock", Post.route(share::unlock_shares)),
        (Post, "/v1/share/redeem", Post.route(share::redeem_code)),
        (Post, "/v1/share/links/{capability}", Post.route(share::redeem_link)),
        (Get, "/v1/share/issuer", Get.route(share::issuer)),
        (Post, "/v1/consent-requests", Post.route(consent_requests::create_consent_request)),
        (Get, "/v1/consent-requests", Get.route(consent_requests::list_consent_requests)),
        (Get, "/v1/consent-requests/{id}", Get.route(consent_requests::read_consent_request)),
        (Post, "/v1/consent-requests/{id}/approve", Post.route(consent_requests::approve_consent_request)),
        (Post, "/v1/consent-requests/{id}/decline", Post.route(consent_requests::decline_consent_request)),
        (Get, "/v1/patients/{patient}/profile", Get.route(profiles::read_profile)),
        (Put, "/v1/patients/{patient}/profile", Put.route(profiles::write_profile)),
        (Get, "/v1/templates", Get.route(templates::list_templates)),
        (Post, "/v1/templates", Post.route(templates::add_template)),
        (Get, "/v1/templates/{id}", Get.route(templates::template)),
        (Get, "/v1/providers/{provider}/credentials", Get.route(credentials::read_credentials)),
        (Put, "/v1/providers/{provider}/credentials", Put.route(credentials::write_credentials)),
        (Get, "/v1/providers/{provider}/credentials/document", Get.route(credentials::credential_document)),
        (Post, "/v1/providers/{provider}/credentials/decision", Post.route(credentials::decide_credentials)),
        (Get, "/v1/credentials", Get.route(credentials::list_credentials)),
        (Get, "/v1/search/records", Get.route(search::search_records)),
        (Get, "/v1/search/patients", Get.route(search::search_patients)),
        (Post, "/v1/records/{id}/attachments", Post.route(attachments::upload_attachment)),
        (Get, "/v1/records/{id}/attachments", Get.route(attachments::list_attachments)),
        (Get, "/v1/records/{id}/attachments/{attachment}", Get.route(attachments::download_attachment)),
        (Post, "/v1/records/{id}/attachments/{attachment}/remove", Post.route(attachments::remove_attachment)),
        (Post, "/v1/records/{id}/attachments/{attachment}/link", Post.route(attachments::attachment_link)),
        (Get, "/v1/records/{id}/attachments/{attachment}/signed", Get.route(attachments::signed_download)),
        (Post, "/v1/records/{id}/attachments/{attachment}/restore", Post.route(attachments::restore_attachment)),
        (Get, "/v1/records/{id}/attachments/{attachment}/anchor", Get.route(attachments::attachment_anchor)),
        (Get, "/v1/admin/storage/report", Get.route(attachments::storage_report)),
        (Get, "/v1/admin/backups", Get.route(backups::backup_status)),
        (Post, "/v1/admin/backups", Post.route(backups::create_backup)),
        (Post, "/v1/admin/backups/prune", Post.route(backups::prune_backups)),
        (Post, "/v1/admin/backups/{id}/verify", Post.route(backups::verify_backup)),
        (Get, "/v1/admin/jobs", Get.route(jobs::jobs)),
        (Get, "/v1/admin/analytics", Get.route(analytics::dashboard)),
        (Get, "/v1/admin/compliance", Get.route(analytics::compliance)),
        (Get, "/v1/admin/flags", Get.route(analytics::flags)),
        (Post, "/v1/admin/flags/{id}/acknowledge", Post.route(analytics::acknowledge)),
        (Options, "/v1/uploads", Options.route(uploads::tus_options)),
        (Post, "/v1/records/{id}/uploads", Post.route(uploads::create_upload)),
        (Head, "/v1/uploads/{upload}", Head.route(uploads::upload_status)),
        (Patch, "/v1/uploads/{upload}", Patch.route(uploads::upload_piece)),
        (Delete, "/v1/uploads/{upload}", Delete.route(uploads::cancel_upload)),
        (Get, "/openapi.json", Get.route(crate::openapi::openapi_json)),
        (Get, "/healthz", Get.route(health::healthz)),
        (Get, "/readyz", Get.route(health::readyz)),
        (Get, "/metrics", Get.route(health::metrics)),
    ]
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let payload_limit = payload_limit(state.config());
    let session_routes = crate::openapi::session_routes();
    routes()
        .into_iter()
        .fold(Router::new(), |r, (verb, path, handler)| {
            let handler = if carries_payload(verb, path) {
                // The session is checked before the body is read: an
                // anonymous caller cannot make the node buffer a payload.
                handler
                    .layer(DefaultBodyLimit::max(payload_limit))
                    .layer(axum::middleware::from_fn_with_state(state.clone(), session_first))
            } else if session_routes.contains(&(verb.name().to_string(), path.to_string())) {
                // Before the extractors too: without a session the answer
                // is 401, not the body's 415 or 422.
                let limit = if (verb, path) == (Verb::Put, "/v1/providers/{provider}/credentials") {
                    credentials::CREDENTIALS_BODY
                } else {
                    SMALL_BODY
                };
                handler
                    .layer(DefaultBodyLimit::max(limit))
                    .layer(axum::middleware::from_fn_with_state(state.clone(), session_first))
            } else {
                handler.layer(DefaultBodyLimit::max(SMALL_BODY))
            };
            r.route(path, handler)
        })
        .fallback(|| async { ApiError(medanchor_service::Error::NotFound("route".into())) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), members_only))
        .layer(axum::middleware::map_response(problem_for_rejections))
        .layer(axum::middleware::from_fn(request_context))
        .with_state(state)
}

/// The tenant header: which tenant a request is for.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// The routes of every tenant a node serves, one [`router`] each (each
/// over its own service: database, keys, audit log), chosen per request by
/// `X-Tenant-ID` — or, on signed download links (which a browser follows
/// without headers), their `tenant` query parameter. A node with one tenant needs neither; with
/// several, a request naming none (or an unknown one) is refused with 400
/// before any tenant sees it. `/openapi.json` is the same for all.
pub fn tenants_router(tenants: Vec<AppState>) -> Router {
    let mut routers = Vec::with_capacity(tenants.len());
    for state in tenants {
        routers.push((state.config().tenant.clone(), router(state)));
    }
    let dispatch = std::sync::Arc::new(routers);
    Router::new().fallback(move |request: axum::extract::Request| {
        let dispatch = dispatch.clone();
        async move {
            use tower::ServiceExt;
            match pick_tenant(&dispatch, &request) {
                Ok(i) => match dispatch[i].1.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(e) => with_request_id(e.into_response(), &random_hex(8)),
            }
        }
    })
}

/// The index of the tenant `request` is for.
fn pick_tenant(tenants: &[(String, Router)], request: &axum::extract::Request) -> ApiResult<usize> {
    let header = match request.headers().get(TENANT_HEADER) {
        Some(v) => Some(v.to_str().map_err(|_| ApiError::bad("unknown-tenant", "X-Tenant-ID is not text"))?),
        None => None,
    };
    // Only a signed link carries its tenant in the query (other routes
    // may have a `tenant` parameter of their own, e.g. the storage report).
    // With one tenant it is not read at all: that tenant's link key
    // already refuses any other's link.
    let link = tenants.len() > 1 && request.uri().path().ends_with("/signed");
    let query =
        request.uri().query().filter(|_| link).and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "tenant").map(|(_, v)| v.into_owned())
        });
    let named = match (header, query.as_deref()) {
        (Some(h), Some(q)) if h != q => {
            return Err(ApiError::bad("tenant-mismatch", "X-Tenant-ID and the tenant parameter name different tenants"))
        }
        (Some(h), _) => Some(h),
        (None, q) => q,
    };
    match named {
        Some(name) => tenants.iter().position(|(t, _)| t == name).ok_or_else(|| {
            ApiError::bad("unknown-tenant", format!("this node serves no tenant {}", crate::error::echo(name)))
        }),
        // The node's own routes answer for the node (its first tenant).
        None if tenants.len() == 1
            || ["/openapi.json", "/healthz", "/readyz", "/metrics"].contains(&request.uri().path()) =>
        {
            Ok(0)
        }
        None => Err(ApiError::bad("tenant-required", "this node serves several tenants: name one in X-Tenant-ID")),
    }
}

/// Refuses a signed-in caller who is not a member of this tenant (403,
/// audited in the tenant's log), before the route does any work.
async fn members_only(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // An open tenant (no member list) checks nothing: no second session
    // verification on every request.
    if state.config().members.is_none() {
        return next.run(request).await;
    }
    let caller = Caller::from(&state, request.headers(), None);
    let Some(principal) = caller.principal.clone() else { return next.run(request).await };
    if state.is_member(&principal) {
        return next.run(request).await;
    }
    let refusal = medanchor_service::Error::Forbidden {
        code: "not-a-member",
        detail: format!("{principal} is not a member of tenant {}", state.config().tenant),
        reason: None,
    };
    let entry = caller.entry("none", "tenant.access");
    match state.audited::<()>(entry, Err(refusal)).await {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Gives every request an id — in `X-Request-Id` on every response, errors
/// and rejections included, in its audit entries, and on every log line of
/// its handling (a tracing span). A client's own `X-Request-Id` is
/// replaced: audit entries carry only ids the node made. The span names
/// the route's template, never the path (a share link's path is a secret).
async fn request_context(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let id = random_hex(8);
    let value = HeaderValue::from_str(&id).expect("hex is a valid header value");
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or("-", |m| m.as_str()).to_string();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let (status, elapsed) = (response.status().as_u16(), started.elapsed());
    // The access log: one line per request, in its span (so with its id).
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "answered"));
    health::record_request(method.as_str(), &route, status, elapsed);
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// The request-id header.
const REQUEST_ID: &str = "x-request-id";

/// The body limit of a route that takes a record payload: a record body
/// may hold one (base64 inflates it by a third); nothing else the API
/// takes is larger than a few hundred bytes.
fn payload_limit(config: &ApiConfig) -> usize {
    (config.max_record_bytes * 4 / 3 + 64 * 1024).max(config.max_attachment_bytes)
}

/// The body limit of every route that takes no record payload.
pub const SMALL_BODY: usize = 16 * 1024;

/// Routes whose body is a record payload (create, update).
fn carries_payload(verb: Verb, path: &str) -> bool {
    matches!(
        (verb, path),
        (Verb::Post, "/v1/patients/{patient}/records")
            | (Verb::Put, "/v1/records/{id}")
            | (Verb::Post, "/v1/records/{id}/attachments")
            | (Verb::Patch, "/v1/uploads/{upload}")
    )
}

/// Refuses a request without a valid session before its body is read.
async fn session_first(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let caller = Caller::from(&state, request.headers(), None);
    match caller.require() {
        Ok(_) => next.run(request).await,
        Err(e) => {
            // The body unread is dropped (bounded) before the 401, or the
            // reset connection would lose the answer on the client's side.
            let mut body = request.into_body();
            records::linger(&mut body).await;
            ApiError::from(e).into_response()
        }
    }
}

/// axum's own extractor rejections (malformed JSON, an oversized body, a
/// bad query string) answer in plain text; give them the same
/// problem+json shape as every other error, keeping their status and
/// message.
async fn problem_for_rejections(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; a larger body is not a rejection.
    let detail = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::NOT_FOUND => "not-found",
        s if s.is_server_error() => "internal",
        _ => "invalid-request",
    };
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { detail };
    let body = crate::openapi::Problem::new(status, code, detail);
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    for name in ["x-request-id", "retry-after"] {
        if let Some(v) = parts.headers.get(name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

// ------------------------------------------------------------ request context

/// The request's [`medanchor_service::Caller`]: the session token, the
/// request id `request_context` set, the client's address (when the server
/// records it) and user agent.
#[derive(Debug, Clone)]
pub(crate) struct Caller(medanchor_service::Caller);

impl std::ops::Deref for Caller {
    type Target = medanchor_service::Caller;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Caller {
    fn from(state: &AppState, headers: &HeaderMap, addr: Option<SocketAddr>) -> Caller {
        let token = headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(|h| h.strip_prefix("Bearer ").unwrap_or(""))
            .or_else(|| browser_session(state, headers));
        // Set by `request_context` for every routed request.
        let request_id =
            headers.get(REQUEST_ID).and_then(|h| h.to_str().ok()).map_or_else(|| random_hex(8), str::to_string);
        let user_agent = headers.get("user-agent").and_then(|h| h.to_str().ok());
        Caller(medanchor_service::Caller::new(state, token, request_id, addr.map(|a| a.ip()), user_agent))
    }
}

/// The cookie the web portal keeps a browser's session token in.
pub const BROWSER_SESSION_COOKIE: &str = "__Host-medanchor";

/// A browser's session (the portal's uploads call the API's tus routes
/// from script): the session cookie, taken only with the session's
/// anti-forgery token in `X-CSRF-Token`, which a cross-site page cannot
/// send (a custom header needs a CORS preflight this API never grants).
fn browser_session<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    let presented = headers.get("x-csrf-token").and_then(|h| h.to_str().ok())?;
    let token = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == BROWSER_SESSION_COOKIE)
        .map(|(_, v)| v)?;
    state.csrf_matches(token, presented).then_some(token)
}

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0);
        Ok(Caller::from(state, &parts.headers, addr))
    }
}

fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// An optional non-negative integer query parameter.
fn optional_number(q: &HashMap<String, String>, k: &str) -> ApiResult<Option<u64>> {
    q.get(k)
        .map(|v| {
            v.parse().map_err(|_| ApiError::bad("invalid-parameter", format!("{k} must be a non-negative integer")))
        })
        .transpose()
}

/// A required non-negative integer query parameter.
fn required_number(q: &HashMap<String, String>, k: &str) -> ApiResult<u64> {
    q.get(k)
        .ok_or_else(|| ApiError::bad("missing-parameter", format!("{k} is required")))?
        .parse()
        .map_err(|_| ApiError::bad("invalid-parameter", format!("{k} must be a number")))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A 415 for a body sent as a media type the route does not take, in the
/// shape of the framework's own 415 (`problem_for_rejections` makes it a
/// problem with code `unsupported-media-type`).
fn unsupported_media_type(detail: &'static str) -> Response {
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, detail).into_response()
}

/// An optional integer field of a JSON body, as JSON Schema counts
/// integers: `2.0` is the integer 2 (serde's integer types refuse it),
/// `2.5` and anything out of `T`'s range are refused.
fn json_integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::{Deserialize, Error};
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        // Below 2^64 and whole: exact in an f64, so the cast is too.
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => Some(f as u64),
        _ => None,
    };
    whole
        .and_then(|u| T::try_from(u).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not an integer in range")))
}
