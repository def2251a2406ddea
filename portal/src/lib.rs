//! The web portal: server-rendered pages for patients, providers, auditors
//! and admins over the service layer — never over the JSON API.
//!
//! In reading order: [`session`] (the signed-in browser: cookie, tenant,
//! role from the chain, the anti-forgery check every POST passes),
//! [`view`] (the page shell and its pieces), [`wallet`] (signing in and
//! contract calls: a browser wallet, or on the devnet the built-in
//! development wallet), [`pages`] (one module per audience), [`assets`]
//! (htmx, the stylesheet and the one hand-written script, compiled into
//! the binary).
//!
//! Every page that shows patient data gets it from the same service calls
//! the JSON API makes, so the one authorization rule decides here too:
//! the portal never shows more than the contract would allow.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use medanchor_service::Service;

pub mod assets;
pub mod charts;
pub mod error;
pub mod pages;
pub mod session;
pub mod view;
pub mod wallet;

pub use error::PortalError;
pub use wallet::DevAccount;

/// How the portal runs.
#[derive(Clone, Default)]
pub struct PortalConfig {
    /// The built-in development wallet's accounts (Devnet.toml's public
    /// test keys). Empty unless the node runs its own devnet: on any other
    /// chain the portal only takes signatures from the browser's wallet.
    pub dev_accounts: Vec<DevAccount>,
}

/// What every handler runs on.
pub struct Portal {
    /// Every tenant's service; a browser session belongs to one.
    pub tenants: Vec<Service>,
    /// The development wallet's accounts (devnet only).
    pub dev_accounts: Vec<DevAccount>,
}

/// Shared handler state.
pub type State = Arc<Portal>;

/// The portal's routes, served at `/` beside the JSON API's `/v1`.
pub fn router(tenants: Vec<Service>, config: PortalConfig) -> Router {
    assert!(!tenants.is_empty(), "the portal needs a tenant");
    let state = Arc::new(Portal { tenants, dev_accounts: config.dev_accounts });
    pages::routes()
        .merge(assets::routes())
        // On the portal's own routes only: a request for a path it does
        // not serve is a plain 404 whatever its method, before any check.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), session::forgery_check))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// A path the portal does not serve: the error page for a browser's
/// GET; a short text for anything else (a client that is not a browser
/// gets no page it cannot use).
async fn not_found(method: axum::http::Method) -> Response {
    use axum::response::IntoResponse;
    if matches!(method, axum::http::Method::GET | axum::http::Method::HEAD) {
        PortalError::NotFound("page".into()).into_response()
    } else {
        (axum::http::StatusCode::NOT_FOUND, "not found").into_response()
    }
}

/// The Content-Security-Policy of every portal response: scripts, styles
/// and connections from this origin only — no inline script or style, no
/// `eval`, no frames, no plugins; forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; media-src 'self' blob:; frame-src 'self' blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every portal response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // A handler that set its own (a user's file shown in a frame of the
    // record's page) keeps it; every other response gets the page policy.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with a
    // same-origin form post, and the forgery check could not tell it from
    // a sandboxed foreign page. `same-origin` still sends nothing to
    // another site.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    // The camera only for the QR scanner on this origin; nothing else.
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show patient data: never kept by the browser or a proxy.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether `path` is the portal's (everything but the JSON API and the
/// node's own endpoints).
pub fn serves(path: &str) -> bool {
    !(path.starts_with("/v1/") || ["/openapi.json", "/healthz", "/readyz", "/metrics"].contains(&path))
}
