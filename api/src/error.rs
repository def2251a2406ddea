//! `ApiError`: the one place errors become HTTP responses, as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.
//!
//! Client faults (4xx) say precisely what was wrong; server faults (5xx)
//! are logged with their detail and answered with a generic message, so
//! internals (paths, keys, storage errors) never reach a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error of the API, mapped to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400).
    #[error("{detail}")]
    BadRequest {
        /// Stable code, e.g. `invalid-principal`.
        code: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// No valid session (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (403); `reason` is the contract's
    /// error when the chain refused.
    #[error("{detail}")]
    Forbidden {
        /// Stable code, e.g. `consent-denied`.
        code: &'static str,
        /// Why.
        detail: String,
        /// The contract error (`{code, name, message}`), if any.
        reason: Option<serde_json::Value>,
    },
    /// Not found (404).
    #[error("{0} not found")]
    NotFound(String),
    /// A stale version (409 or 412), with the current one.
    #[error("{detail}")]
    Conflict {
        /// 409 (stale write) or 412 (If-Match precondition).
        status: StatusCode,
        /// What happened.
        detail: String,
        /// The record's current version.
        current_version: u64,
    },
    /// A wrong access code or passcode (401), with the attempts left.
    #[error("{detail}")]
    Attempt {
        /// Stable code, e.g. `access-code-invalid`.
        code: &'static str,
        /// What happened.
        detail: String,
        /// Wrong attempts left before the codes burn or redemption locks.
        remaining: u32,
    },
    /// The request conflicts with the resource's state (409).
    #[error("{detail}")]
    State {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
    },
    /// The resource existed and is no longer usable (410).
    #[error("{detail}")]
    Gone {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
    },
    /// Rate limited (429, with `Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        /// Which limit.
        detail: String,
        /// Seconds until an attempt would be allowed.
        retry_after_s: u64,
    },
    /// Body over the configured limit (413).
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The node or the indexer cannot answer (503).
    #[error("{0}")]
    Unavailable(String),
    /// Our fault (500); the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { code, detail: detail.into() }
    }

    /// A 500 from any displayable cause.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// The status and the stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::Conflict { status, .. } if *status == StatusCode::PRECONDITION_FAILED => {
                (StatusCode::PRECONDITION_FAILED, "version-precondition-failed")
            }
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "version-conflict"),
            ApiError::Attempt { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::State { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Gone { code, .. } => (StatusCode::GONE, code),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let detail = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                "the server failed; the error was logged".to_string()
            }
            // The last guard of "never echo unbounded input": messages
            // built from a library's error (a JSON parser quoting the
            // body) are cut too.
            other => bounded(other.to_string()),
        };
        let mut body = json!({
            "type": format!("https://medanchor.dev/problems/{code}"),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "code": code,
            "detail": detail,
        });
        match &self {
            ApiError::Forbidden { reason: Some(r), .. } => body["reason"] = r.clone(),
            ApiError::Conflict { current_version, .. } => body["current_version"] = json!(current_version),
            ApiError::Attempt { remaining, .. } => body["remaining_attempts"] = json!(remaining),
            ApiError::TooManyRequests { retry_after_s, .. } => body["retry_after"] = json!(retry_after_s),
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self {
            ApiError::TooManyRequests { retry_after_s, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            // RFC 9110: a 401 names the scheme that would succeed.
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Attempt { .. } => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("AccessCode realm=\"medanchor\""));
            }
            _ => {}
        }
        response
    }
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

/// A problem's `detail`, at most [`MAX_DETAIL`] bytes.
fn bounded(mut detail: String) -> String {
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

/// The longest `detail` an answer carries.
pub const MAX_DETAIL: usize = 1024;

/// Client input quoted in an error message, cut to 64 characters: an
/// answer never grows with what a caller sent (a 10 MiB principal gets a
/// short 400, not a 10 MiB one).
pub fn echo(input: &str) -> String {
    const MAX: usize = 64;
    match input.char_indices().nth(MAX) {
        None => format!("{input:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &input[..cut], input.len()),
    }
}

#[cfg(test)]
mod echo_tests {
    #[test]
    fn echoes_are_bounded() {
        assert_eq!(super::echo("ST1"), "\"ST1\"");
        let long = "x".repeat(10 << 20);
        let e = super::echo(&long);
        assert!(e.len() < 100 && e.ends_with("(10485760 bytes)"), "{e}");
        // Cut on a character boundary.
        assert!(super::echo(&"é".repeat(100)).starts_with("\"éé"));
    }
}
