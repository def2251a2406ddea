//! The signed-in browser: its cookies, its tenant, who it is and what the
//! chain says they are, and the anti-forgery check every state-changing
//! request passes before any handler runs.
//!
//! The session token (the same one the JSON API takes as a bearer token)
//! lives in an `HttpOnly; Secure; SameSite=Strict` cookie script cannot
//! read. Every POST must come from this origin (`Sec-Fetch-Site`/`Origin`)
//! and carry the session's anti-forgery token (a MAC of the token, in the
//! form's `_csrf` field or the `X-CSRF-Token` header).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medanchor_contracts::principal::Principal;
use medanchor_service::{Caller, Service};
use rand::RngCore;

use crate::error::PortalError;
use crate::State;

/// The session token's cookie (`__Host-`: Secure, this host only, path /).
pub const SESSION_COOKIE: &str = "__Host-medanchor";
/// Which tenant the session belongs to.
pub const TENANT_COOKIE: &str = "__Host-medanchor-tenant";
/// `dev` when the development wallet signs for this session.
pub const WALLET_COOKIE: &str = "__Host-medanchor-wallet";
/// A share grant the provider redeemed: `patient token`.
pub const GRANT_COOKIE: &str = "__Host-medanchor-grant";

/// The largest form body: forms carry a few fields (record content is
/// the largest, within the service's own limit).
pub const FORM_LIMIT: usize = 256 * 1024;

/// A cookie header value setting `name` for the session's lifetime.
pub fn set_cookie(name: &str, value: &str, max_age_s: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Strict"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cookie header value removing `name`.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The request's id (set by [`forgery_check`], which runs first).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who is asking, as every page handler sees it.
pub struct Session {
    /// The tenant's service.
    pub service: Service,
    /// The session token, when one was presented.
    pub token: Option<String>,
    /// The caller the service sees (the token checked).
    pub caller: Caller,
    /// What the chain (and the node's configuration) says the principal
    /// is: `patient`, `provider`, `auditor`, `admin` or `none`; `anonymous`
    /// without a valid session.
    pub role: &'static str,
    /// The anti-forgery token for this session's forms.
    pub csrf: String,
    /// Whether the development wallet signs for this session.
    pub dev_wallet: bool,
    /// A share grant redeemed in this browser: (patient, token).
    pub grant: Option<(String, String)>,
    /// Whether the node serves several tenants (the page names this one).
    pub tenant: Option<String>,
    /// The portal.
    pub portal: State,
}

impl Session {
    /// The signed-in principal, or a redirect to sign in.
    pub fn principal(&self) -> Result<&Principal, PortalError> {
        self.caller.principal.as_ref().ok_or(PortalError::SignIn)
    }

    /// The principal, when the caller has one of `roles`.
    pub fn require_role(&self, roles: &[&str]) -> Result<&Principal, PortalError> {
        let p = self.principal()?;
        if roles.contains(&self.role) {
            Ok(p)
        } else {
            Err(PortalError::Role { needed: roles.join(" or "), role: self.role })
        }
    }

    /// The development account signing for this session, when there is one.
    pub fn dev_account(&self) -> Option<&crate::DevAccount> {
        let p = self.caller.principal.as_ref()?.to_string();
        self.dev_wallet.then(|| self.portal.dev_accounts.iter().find(|a| a.address == p)).flatten()
    }
}

/// The index of the tenant a request's cookie names (the first without).
pub fn tenant_index(portal: &State, headers: &HeaderMap) -> usize {
    cookie(headers, TENANT_COOKIE).and_then(|t| portal.tenants.iter().position(|s| s.config().tenant == t)).unwrap_or(0)
}

impl FromRequestParts<State> for Session {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, portal: &State) -> Result<Self, Self::Rejection> {
        let service = portal.tenants[tenant_index(portal, &parts.headers)].clone();
        let token = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string);
        let request_id = parts.extensions.get::<RequestId>().map_or_else(|| random_hex(8), |r| r.0.clone());
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        let caller = Caller::new(&service, token.as_deref(), request_id, ip, ua);
        // A tenant with a member list serves only its members (as the
        // API's `members_only`): anyone else is refused on every page,
        // and the refusal is in the tenant's audit log.
        let signing_in = parts.uri.path().starts_with("/sign-in");
        if let Some(p) = caller.principal.as_ref().filter(|p| !signing_in && !service.is_member(p)) {
            let refusal = medanchor_service::Error::Forbidden {
                code: "not-a-member",
                detail: format!("{p} is not a member of {}; sign in to another organisation", service.config().tenant),
                reason: None,
            };
            let entry = caller.entry("none", "tenant.access");
            return Err(service
                .audited::<()>(entry, Err(refusal))
                .await
                .err()
                .map_or(PortalError::SignIn, PortalError::from));
        }
        let role = match caller.principal.clone() {
            None => "anonymous",
            Some(p) => {
                let s = service.clone();
                tokio::task::spawn_blocking(move || s.role_of(&p)).await.map_err(PortalError::internal)??
            }
        };
        // The token only when it is valid: a stale cookie is no session.
        let token = token.filter(|_| caller.principal.is_some());
        let csrf = token.as_deref().map(|t| service.csrf_token(t)).unwrap_or_default();
        let grant = cookie(&parts.headers, GRANT_COOKIE)
            .and_then(|v| v.split_once('.'))
            .map(|(p, t)| (p.to_string(), t.to_string()));
        Ok(Session {
            dev_wallet: cookie(&parts.headers, WALLET_COOKIE) == Some("dev") && !portal.dev_accounts.is_empty(),
            tenant: (portal.tenants.len() > 1).then(|| service.config().tenant.clone()),
            service,
            token,
            caller,
            role,
            csrf,
            grant,
            portal: portal.clone(),
        })
    }
}

/// Paths that take a POST without a session's token: signing in, and
/// signing out (which must work from any page, error pages included; a
/// forged sign-out only signs someone out).
fn before_session(path: &str) -> bool {
    path.starts_with("/sign-in") || path == "/sign-out"
}

/// Refuses a state-changing request that did not come from one of this
/// origin's own pages: a cross-site `Sec-Fetch-Site` or `Origin`, or (once
/// signed in) a missing or wrong anti-forgery token. Runs before any
/// handler; gives every request its id and tracing span.
pub async fn forgery_check(
    axum::extract::State(portal): axum::extract::State<State>,
    mut request: Request,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let id = random_hex(8);
    request.extensions_mut().insert(RequestId(id.clone()));
    // Portal paths carry no secret (codes and signatures travel in
    // bodies), so the access log may name them.
    let span =
        tracing::info_span!("portal", request_id = %id, method = %request.method(), path = %request.uri().path());
    let started = std::time::Instant::now();
    let mut response = async {
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            return next.run(request).await;
        }
        match checked(&portal, request).await {
            Ok(request) => next.run(request).await,
            Err(refusal) => refusal,
        }
    }
    .instrument(span.clone())
    .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), elapsed_ms, "answered"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn checked(portal: &State, request: Request) -> Result<Request, Response> {
    let refuse = |why: &'static str| {
        tracing::warn!(why, "refused a state-changing request");
        (StatusCode::FORBIDDEN, crate::view::refusal_page("This request was refused", why)).into_response()
    };
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" {
            return Err(refuse("It came from another site. Use the portal's own forms."));
        }
    }
    // `Origin: null` (a sandboxed frame, some privacy settings) names no
    // site: the fetch metadata above and the token below still decide.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|o| *o != "null") {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let same = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
        if !same {
            return Err(refuse("It came from another site. Use the portal's own forms."));
        }
    }
    let path = request.uri().path().to_string();
    if before_session(&path) {
        return buffered(request).await;
    }
    let service = &portal.tenants[tenant_index(portal, headers)];
    let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_string) else {
        return Err(refuse("You are not signed in (or your session ended). Sign in and try again."));
    };
    if let Some(presented) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if service.csrf_matches(&token, presented) {
            Ok(request)
        } else {
            Err(refuse("The page's security token did not match. Reload the page and try again."))
        };
    }
    let request = buffered(request).await?;
    let body = request.extensions().get::<FormBody>().map(|b| b.0.clone()).unwrap_or_default();
    let presented = form_urlencoded::parse(&body).find(|(k, _)| k == "_csrf").map(|(_, v)| v.into_owned());
    match presented {
        Some(p) if service.csrf_matches(&token, &p) => Ok(request),
        _ => Err(refuse("The page's security token did not match. Reload the page and try again.")),
    }
}

/// A form body read once by the check and kept for the handler.
#[derive(Clone, Default)]
pub struct FormBody(pub axum::body::Bytes);

async fn buffered(request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        (StatusCode::PAYLOAD_TOO_LARGE, crate::view::refusal_page("Too much data", "The form was larger than 256 KB."))
            .into_response()
    })?;
    let mut request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
    request.extensions_mut().insert(FormBody(bytes));
    Ok(request)
}

/// A submitted form's fields, in order (a field may repeat).
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// Whether `name` was sent with `value`.
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v == value)
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = PortalError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let body = match request.extensions().get::<FormBody>() {
            Some(b) => b.0.clone(),
            None => axum::body::to_bytes(request.into_body(), FORM_LIMIT)
                .await
                .map_err(|_| PortalError::Invalid("The form was larger than 256 KB.".into()))?,
        };
        Ok(Form(form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; __Host-medanchor-tenant=t; __Host-medanchor=tok.en"));
        h.append(header::COOKIE, HeaderValue::from_static("other=2; empty="));
        for (name, want) in [
            (SESSION_COOKIE, Some("tok.en")),
            (TENANT_COOKIE, Some("t")),
            ("other", Some("2")),
            ("empty", None),
            ("__Host-medanchor-wallet", None),
        ] {
            assert_eq!(cookie(&h, name), want, "{name}");
        }
    }

    #[test]
    fn session_cookies_are_http_only_secure_and_strict() {
        let v = set_cookie(SESSION_COOKIE, "t", 60);
        let s = v.to_str().expect("ascii");
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=60"] {
            assert!(s.contains(part), "{s} lacks {part}");
        }
        assert!(clear_cookie(SESSION_COOKIE).to_str().expect("ascii").contains("Max-Age=0"));
    }

    #[test]
    fn form_fields_keep_repeats_and_order() {
        let f = Form(vec![("t".into(), "a".into()), ("x".into(), " y ".into()), ("t".into(), "b".into())]);
        assert_eq!(f.all("t"), ["a", "b"]);
        assert_eq!(f.get("x"), "y");
        assert_eq!(f.get("missing"), "");
        assert!(f.has("t", "b") && !f.has("t", "c"));
    }
}
