//! The HTTP API over [`medanchor_service`]: routing, extractors, the one
//! error → HTTP mapping (problem+json), and the OpenAPI document.
//!
//! In reading order: [`app`] (the route table, the request context and the
//! handlers by topic), [`error`] (`ApiError` → problem+json), [`openapi`]
//! (the OpenAPI document, generated from the handlers). The use cases —
//! authorization, records, the audit log, sharing, anchoring — live in
//! the service crate, re-exported here under their old paths for tools
//! and tests.

pub mod app;
pub mod error;
pub mod openapi;

pub use medanchor_service::{
    analytics, anchoring, attachments, audit, auth, authz, backups, blob, credentials, db, disclosures, envelope,
    file_anchors, merkle, notify, rotate, scheduler, search, share, uploads,
};

/// Serves the API for `service` on `listener` until `shutdown` (with the
/// client's address on every request, for the audit log's keyed hash and
/// the rate limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: medanchor_service::Service,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tenants(listener, vec![service], shutdown).await
}

/// Serves the API of every tenant in `tenants` (the first is the one a
/// request naming none gets when it is the only one) on `listener`.
pub async fn serve_tenants(
    listener: tokio::net::TcpListener,
    tenants: Vec<medanchor_service::Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, tenants, None, shutdown).await
}

/// A front end served beside the API on the same listener (the web
/// portal): its router, and which paths are its.
pub struct FrontEnd {
    /// Its routes.
    pub router: axum::Router,
    /// Whether a path is the front end's (the rest is the API's).
    pub serves: fn(&str) -> bool,
}

/// Serves the API of every tenant and, when given, a front end beside it:
/// a request whose path the front end claims goes to it, any other to the
/// API.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    tenants: Vec<medanchor_service::Service>,
    front: Option<FrontEnd>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let api = app::tenants_router(tenants);
    let router = match front {
        None => api,
        Some(front) => axum::Router::new().fallback(move |request: axum::extract::Request| {
            use tower::ServiceExt;
            let target = if (front.serves)(request.uri().path()) { front.router.clone() } else { api.clone() };
            async move {
                match target.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }),
    };
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
