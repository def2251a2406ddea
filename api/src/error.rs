//! `ApiError`: the one place errors become HTTP responses, as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.
//!
//! Client faults (4xx) say precisely what was wrong; server faults (5xx)
//! are logged with their detail and answered with a generic message, so
//! internals (paths, keys, storage errors) never reach a client.

use crate::openapi::{ContractReason, FieldIssue, Problem};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
pub use medanchor_service::error::echo;
use medanchor_service::Error;

/// A service error on its way out as HTTP: the one mapping of
/// [`medanchor_service::Error`] to a status and problem+json.
#[derive(Debug)]
pub struct ApiError(pub Error);

/// Any service error (or anything that converts to one) answers through
/// the one mapping.
impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError(Error::bad(code, detail))
    }

    /// A 500 from any displayable cause.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError(Error::internal(e))
    }

    /// The status and the stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        let status = match &self.0 {
            Error::BadRequest { .. } | Error::Content(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) | Error::Attempt { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict { precondition: true, .. } => StatusCode::PRECONDITION_FAILED,
            // tus's own status for a piece that fails its Upload-Checksum.
            Error::State { code: "checksum-mismatch", .. } => StatusCode::from_u16(460).unwrap_or(StatusCode::CONFLICT),
            Error::Conflict { .. } | Error::State { .. } => StatusCode::CONFLICT,
            Error::Gone { .. } => StatusCode::GONE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) | Error::Integrity(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.0.code())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let detail = match &self.0 {
            Error::Internal(detail) | Error::Integrity(detail) => {
                tracing::error!(%detail, code, "request failed");
                "the server failed; the error was logged".to_string()
            }
            // The last guard of "never echo unbounded input": messages
            // built from a library's error (a JSON parser quoting the
            // body) are cut too.
            other => bounded(other.to_string()),
        };
        let mut body = Problem::new(status, code, detail);
        match &self.0 {
            Error::Forbidden { reason: Some(e), .. } => {
                body.reason = Some(ContractReason { code: e.code(), name: e.constant(), message: e.message() })
            }
            Error::Conflict { current_version, .. } => body.current_version = Some(*current_version),
            Error::Attempt { remaining, .. } => body.remaining_attempts = Some(*remaining),
            Error::TooManyRequests { retry_after_s, .. } => body.retry_after = Some(*retry_after_s),
            Error::Content(errors) => {
                body.errors = Some(
                    errors
                        .iter()
                        .map(|(path, message)| FieldIssue { path: path.clone(), message: message.clone() })
                        .collect(),
                )
            }
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self.0 {
            Error::TooManyRequests { retry_after_s, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            // RFC 9110: a 401 names the scheme that would succeed.
            Error::Unauthorized(_) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::Attempt { .. } => {
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
