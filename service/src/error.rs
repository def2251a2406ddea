//! The service's one error type. Each variant is one kind of answer a
//! caller gets; the API maps each to exactly one HTTP status
//! (`medanchor_api::error`), other front ends (the portal, jobs) to their
//! own. Client faults say precisely what was wrong; `Internal` carries a
//! detail that is logged, never shown.

use medanchor_contracts::ContractError;

/// An error of a use case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed or invalid input.
    #[error("{detail}")]
    BadRequest {
        /// Stable code, e.g. `invalid-principal`.
        code: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Structured content its template refuses: every failing field, by
    /// its path, with what is wrong.
    #[error("{} field(s) of the content are invalid: {}", .0.len(), .0.iter().map(|(p, m)| format!("{p} {m}")).collect::<Vec<_>>().join("; "))]
    Content(Vec<(String, String)>),
    /// No valid session.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed; `reason` is the contract's error when
    /// the chain's rule refused.
    #[error("{detail}")]
    Forbidden {
        /// Stable code, e.g. `consent-denied`.
        code: &'static str,
        /// Why.
        detail: String,
        /// The contract's refusal, if the chain's rule refused.
        reason: Option<ContractError>,
    },
    /// Not found.
    #[error("{0} not found")]
    NotFound(String),
    /// A stale version, with the current one.
    #[error("{detail}")]
    Conflict {
        /// The caller's precondition (`If-Match`) failed, rather than a
        /// stale write.
        precondition: bool,
        /// What happened.
        detail: String,
        /// The record's current version.
        current_version: u64,
    },
    /// A wrong access code or passcode, with the attempts left.
    #[error("{detail}")]
    Attempt {
        /// Stable code, e.g. `access-code-invalid`.
        code: &'static str,
        /// What happened.
        detail: String,
        /// Wrong attempts left before the codes burn or redemption locks.
        remaining: u32,
    },
    /// The request conflicts with the resource's state.
    #[error("{detail}")]
    State {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
    },
    /// The resource existed and is no longer usable.
    #[error("{detail}")]
    Gone {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
    },
    /// Rate limited.
    #[error("{detail}")]
    TooManyRequests {
        /// Which limit.
        detail: String,
        /// Seconds until an attempt would be allowed.
        retry_after_s: u64,
    },
    /// A media type or content the node does not take (415).
    #[error("{detail}")]
    Unsupported {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
    },
    /// Input over a configured limit (bytes).
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The node or the indexer cannot answer.
    #[error("{0}")]
    Unavailable(String),
    /// Our fault; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// Stored data does not match its hash or does not authenticate: it
    /// changed at rest. The node's fault like `Internal` (the detail is
    /// logged, not sent), audited as `integrity-failure` so the tampering
    /// alert fires.
    #[error("integrity check failed: {0}")]
    Integrity(String),
}

impl Error {
    /// Invalid input with a code.
    pub fn bad(code: &'static str, detail: impl Into<String>) -> Self {
        Error::BadRequest { code, detail: detail.into() }
    }

    /// Our fault, from any displayable cause.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// A refusal of the chain's rules, naming the contract's error:
    /// `consent-denied` for patient-consent's errors, `access-denied` for
    /// record-management's.
    pub fn denied(e: ContractError) -> Self {
        Error::Forbidden {
            code: if e.code() < 200 { "consent-denied" } else { "access-denied" },
            detail: format!("{}: {}", e.constant(), e.message()),
            reason: Some(e),
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Attempt { code, .. }
            | Error::State { code, .. }
            | Error::Gone { code, .. }
            | Error::Unsupported { code, .. } => code,
            Error::Content(_) => "invalid-content",
            Error::Unauthorized(_) => "unauthorized",
            Error::NotFound(_) => "not-found",
            Error::Conflict { precondition: true, .. } => "version-precondition-failed",
            Error::Conflict { .. } => "version-conflict",
            Error::TooManyRequests { .. } => "rate-limited",
            Error::TooLarge(_) => "body-too-large",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
            Error::Integrity(_) => "integrity-failure",
        }
    }

    /// What the audit log records of a refusal: the contract's error name
    /// when the chain refused, else the code.
    pub fn audit_reason(&self) -> String {
        match self {
            Error::Forbidden { reason: Some(r), .. } => r.constant().to_string(),
            other => other.code().to_string(),
        }
    }
}

impl From<crate::db::DbError> for Error {
    fn from(e: crate::db::DbError) -> Self {
        Error::internal(e)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
