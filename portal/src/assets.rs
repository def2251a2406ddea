//! Static assets compiled into the binary: htmx (pinned, committed, its
//! SHA-256 checked by a test), the stylesheet and the one hand-written
//! script. No CDN, no build step. Served gzip-compressed to browsers that
//! accept it (compressed once, on first use).

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::State;

/// htmx 2.0.11 (`htmx.org` on npm, `dist/htmx.min.js`).
pub const HTMX: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
/// Its SHA-256, as npm's tarball holds it.
pub const HTMX_SHA256: &str = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717";
/// The stylesheet.
pub const CSS: &[u8] = include_bytes!("../assets/portal.css");
/// The script: wallet signing, uploads, QR scanning, the offline banner.
pub const JS: &[u8] = include_bytes!("../assets/portal.js");

/// Where htmx is served (versioned: cached for good).
pub const HTMX_PATH: &str = "/assets/htmx-2.0.11.min.js";
/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/assets/portal.css";
/// Where the script is served.
pub const JS_PATH: &str = "/assets/portal.js";

/// The asset routes.
pub fn routes() -> Router<State> {
    Router::new()
        .route(HTMX_PATH, get(|h: HeaderMap| async move { serve(&h, 0, "text/javascript; charset=utf-8", true) }))
        .route(CSS_PATH, get(|h: HeaderMap| async move { serve(&h, 1, "text/css; charset=utf-8", false) }))
        .route(JS_PATH, get(|h: HeaderMap| async move { serve(&h, 2, "text/javascript; charset=utf-8", false) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

fn gzipped(i: usize) -> &'static [u8] {
    static GZ: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    let all = GZ.get_or_init(|| {
        [HTMX, CSS, JS].map(|raw| {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(raw).expect("writing to memory");
            e.finish().expect("writing to memory")
        })
    });
    &all[i]
}

fn serve(headers: &HeaderMap, i: usize, media: &'static str, immutable: bool) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let body: &'static [u8] = if gzip { gzipped(i) } else { [HTMX, CSS, JS][i] };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // The pinned library never changes under its name; our own files may
    // change with a release, so they are revalidated after an hour.
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "public, max-age=3600" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    #[test]
    fn the_committed_htmx_is_the_pinned_release() {
        assert_eq!(hex::encode(sha2::Sha256::digest(super::HTMX)), super::HTMX_SHA256);
    }
}
