//! What can go wrong on a page, and the page that says so: a clear
//! message, the code to quote to support, and a way back. Forms do better
//! than this page: they show the message beside the fields, with what was
//! typed kept (see `view::Notice`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A portal failure.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No valid session: sign in first.
    #[error("sign in first")]
    SignIn,
    /// Signed in, but the page is for another role.
    #[error("this page is for {needed}; you are signed in as {role}")]
    Role {
        /// The roles it is for.
        needed: String,
        /// The caller's.
        role: &'static str,
    },
    /// A form or parameter that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Nothing here.
    #[error("{0} not found")]
    NotFound(String),
    /// The service refused or failed.
    #[error(transparent)]
    Service(#[from] medanchor_service::Error),
    /// Signing or sending a transaction failed.
    #[error("{0}")]
    Wallet(String),
    /// A fault of ours.
    #[error("internal error")]
    Internal(String),
}

impl PortalError {
    /// A fault (logged with its cause, shown without it).
    pub fn internal(e: impl std::fmt::Display) -> PortalError {
        PortalError::Internal(e.to_string())
    }

    /// The HTTP status: the same classes the JSON API answers with.
    pub fn status(&self) -> StatusCode {
        use medanchor_service::Error as E;
        match self {
            PortalError::SignIn => StatusCode::UNAUTHORIZED,
            PortalError::Role { .. } => StatusCode::FORBIDDEN,
            PortalError::Invalid(_) => StatusCode::BAD_REQUEST,
            PortalError::NotFound(_) => StatusCode::NOT_FOUND,
            PortalError::Wallet(_) => StatusCode::BAD_GATEWAY,
            PortalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PortalError::Service(e) => match e {
                E::BadRequest { .. } | E::Content(_) => StatusCode::BAD_REQUEST,
                E::Unauthorized(_) | E::Attempt { .. } => StatusCode::UNAUTHORIZED,
                E::Forbidden { .. } => StatusCode::FORBIDDEN,
                E::NotFound(_) => StatusCode::NOT_FOUND,
                E::Conflict { precondition: true, .. } => StatusCode::PRECONDITION_FAILED,
                E::Conflict { .. } | E::State { .. } => StatusCode::CONFLICT,
                E::Gone { .. } => StatusCode::GONE,
                E::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
                E::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                E::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The problem code (as the JSON API names it).
    pub fn code(&self) -> &'static str {
        match self {
            PortalError::SignIn => "unauthorized",
            PortalError::Role { .. } => "wrong-role",
            PortalError::Invalid(_) => "invalid-form",
            PortalError::NotFound(_) => "not-found",
            PortalError::Wallet(_) => "wallet",
            PortalError::Internal(_) => "internal",
            PortalError::Service(e) => e.code(),
        }
    }

    /// What to tell the person, in words.
    pub fn message(&self) -> String {
        use medanchor_service::Error as E;
        match self {
            PortalError::Internal(_) | PortalError::Service(E::Internal(_)) => {
                "Something went wrong on our side. Nothing you typed was lost; try again in a moment.".into()
            }
            PortalError::Service(E::Forbidden { reason: Some(r), detail, .. }) => {
                format!("The chain refuses this ({}): {detail}", r.constant())
            }
            PortalError::Service(E::Content(fields)) => {
                let list: Vec<String> = fields.iter().map(|(p, m)| format!("{p}: {m}")).collect();
                format!("Some fields need attention — {}", list.join("; "))
            }
            other => {
                let mut s = other.to_string();
                if let Some(first) = s.get(..1) {
                    s = first.to_uppercase() + &s[1..];
                }
                s
            }
        }
    }
}

impl From<medanchor_wallet::Error> for PortalError {
    fn from(e: medanchor_wallet::Error) -> Self {
        PortalError::Wallet(e.to_string())
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        if let PortalError::SignIn = self {
            let mut r = (StatusCode::SEE_OTHER, "").into_response();
            r.headers_mut().insert("location", HeaderValue::from_static("/sign-in"));
            // htmx follows this header instead of swapping a redirect's body.
            r.headers_mut().insert("hx-redirect", HeaderValue::from_static("/sign-in"));
            return r;
        }
        if let PortalError::Internal(cause) | PortalError::Service(medanchor_service::Error::Internal(cause)) = &self {
            tracing::error!(%cause, "portal fault");
        }
        let status = self.status();
        let body = crate::view::error_page(status, self.code(), &self.message());
        (status, body).into_response()
    }
}
