//! The page shell and its pieces. Every page: a skip link, a header with
//! the navigation the caller's role allows (no link to a page that would
//! refuse them), the toast region, the offline banner, `main` with one
//! `h1` and the page's help, and the footer. Markup escapes by default
//! (maud); nothing here writes inline script or style, so the strict CSP
//! holds.

use axum::http::StatusCode;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::assets;
use crate::session::Session;

/// One navigation entry: (path, label).
type Nav = (&'static str, &'static str);

/// The navigation of a role.
fn nav_of(role: &str) -> &'static [Nav] {
    match role {
        "patient" => &[
            ("/patient", "Consent"),
            ("/patient/requests", "Requests"),
            ("/patient/records", "Records"),
            ("/patient/history", "Access history"),
            ("/patient/shares", "Share"),
            ("/patient/profile", "Profile"),
            ("/patient/exports", "Exports"),
            ("/patient/notifications", "Notifications"),
        ],
        "provider" => &[
            ("/provider", "Patients"),
            ("/provider/redeem", "Redeem a code"),
            ("/provider/requests", "Requests"),
            ("/provider/credentials", "Credentials"),
        ],
        "auditor" => &[
            ("/audit/verify", "Verify"),
            ("/audit/log", "Audit log"),
            ("/admin/analytics", "Analytics"),
            ("/admin/flags", "Flags"),
        ],
        "admin" => &[
            ("/audit/verify", "Verify"),
            ("/audit/log", "Audit log"),
            ("/admin/analytics", "Analytics"),
            ("/admin/flags", "Flags"),
            ("/admin/credentials", "Credentials"),
            ("/admin/operations", "Backups & jobs"),
            ("/admin/providers", "Providers"),
        ],
        _ => &[],
    }
}

/// The home page of a role.
pub fn home_of(role: &str) -> &'static str {
    match role {
        "patient" => "/patient",
        "provider" => "/provider",
        "auditor" | "admin" => "/audit/verify",
        "none" => "/welcome",
        _ => "/sign-in",
    }
}

/// A page: its title, which nav entry it is, its help and its body.
pub struct Page<'a> {
    /// The `h1` and the document title.
    pub title: &'a str,
    /// The nav entry to mark current.
    pub current: &'a str,
    /// A few sentences on what the page is for and how to use it.
    pub help: Markup,
    /// The content.
    pub body: Markup,
}

/// A toast named in the query after a successful POST (`?done=…`): only
/// these fixed messages, so nothing from the URL is echoed.
pub fn toast_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed-in" => "Signed in.",
        "tx-sent" => "Transaction sent. It takes effect once mined.",
        "tx-mined" => "Transaction mined. The chain now shows it.",
        "share-revoked" => "The code was revoked.",
        "profile-saved" => "Profile saved.",
        "prefs-saved" => "Notification settings saved.",
        "record-created" => "Record created and sent to the chain for anchoring.",
        "record-updated" => "New version saved.",
        "finalized" => "Record finalized.",
        "unlocked" => "Record unlocked.",
        "request-sent" => "Request sent. The patient has been notified.",
        "request-declined" => "Request declined.",
        "request-approved" => "Request approved.",
        "flag-acknowledged" => "Flag acknowledged.",
        "credentials-saved" => "Credentials submitted for verification.",
        "credentials-decided" => "Decision recorded.",
        "backup-started" => "Backup finished.",
        "redeemed" => "Code accepted. You may read what it covers while it lasts.",
        _ => return None,
    })
}

/// The whole document for `page`.
pub fn render(session: &Session, page: Page<'_>, toast: Option<&str>) -> Markup {
    let role = session.role;
    let signed_in = session.caller.principal.is_some();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(page.title, html! {
                // htmx: no inline styles (the CSP forbids them), errors
                // swapped like successes (they are pages too).
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;
                @if signed_in { meta name="csrf-token" content=(session.csrf); }
                // The script's API calls (uploads) name the tenant, as the
                // API asks of a node with several.
                @if let Some(t) = &session.tenant { meta name="tenant" content=(t); }
                script src=(assets::HTMX_PATH) defer {}
            }))
            body hx-boost="true" {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(home_of(role)) { "medanchor" }
                    @if signed_in {
                        span.who {
                            span.badge.role { (role) }
                            @if let Some(t) = &session.tenant { " " span.badge { "tenant " (t) } }
                            " " code.addr title="Your Stacks address" { (short(&session.caller.principal.as_ref().map(|p| p.to_string()).unwrap_or_default())) }
                        }
                        form.signout method="post" action="/sign-out" {
                            (csrf_field(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                    @if !nav_of(role).is_empty() {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label) in nav_of(role) {
                                    li { a href=(href) aria-current=[(*href == page.current).then_some("page")] { (label) } }
                                }
                            }
                        }
                    }
                }
                div #offline.banner hidden role="alert" { "You are offline. What you type is kept; send it again when the connection is back." }
                div #toasts role="status" aria-live="polite" {
                    @if let Some(text) = toast.and_then(toast_text) { p.toast { (text) } }
                }
                main #main tabindex="-1" {
                    h1 { (page.title) }
                    details.help {
                        summary { "How this page works" }
                        div { (page.help) }
                    }
                    (page.body)
                }
                footer {
                    p { "medanchor — the chain decides who may see what. " a href="/help" { "Help" } }
                }
            }
        }
    }
}

/// The hidden anti-forgery field of a form.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="_csrf" value=(session.csrf); }
}

/// A message beside a form: what went wrong (kept values are the form's
/// own), or nothing.
pub fn notice(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            div.notice.error role="alert" {
                p { strong { "Not done: " } (e) }
                p.small { "What you typed is still in the form: correct it and send again." }
            }
        }
    }
}

/// A labelled text input keeping `value`.
pub fn text_field(name: &str, label: &str, value: &str, hint: Option<&str>, required: bool) -> Markup {
    let id = format!("f-{name}");
    let hint_id = format!("{id}-hint");
    html! {
        div.field {
            label for=(id) { (label) @if required { " " span.req aria-hidden="true" { "*" } } }
            @if let Some(h) = hint { p.hint id=(hint_id) { (h) } }
            input id=(id) name=(name) type="text" value=(value) required[required]
                aria-describedby=[hint.map(|_| hint_id.clone())];
        }
    }
}

/// A labelled select keeping `value`.
pub fn select_field(name: &str, label: &str, options: &[(&str, &str)], value: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                @for (v, text) in options {
                    option value=(v) selected[*v == value] { (text) }
                }
            }
        }
    }
}

/// A status badge.
pub fn badge(text: &str, kind: &str) -> Markup {
    html! { span class=(format!("badge {kind}")) { (text) } }
}

/// What a list shows when it has nothing.
pub fn empty(text: &str, next: Option<(&str, &str)>) -> Markup {
    html! {
        div.empty {
            p { (text) }
            @if let Some((href, label)) = next { p { a.button href=(href) { (label) } } }
        }
    }
}

/// `ST12…ABCD` of a long address.
pub fn short(s: &str) -> String {
    if s.len() <= 14 {
        return s.to_string();
    }
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// A unix-millisecond time as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: u64) -> String {
    let iso = medanchor_service::disclosures::iso8601(ms);
    format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "))
}

/// A page for a refused request (no session needed).
pub fn refusal_page(title: &str, why: &str) -> Markup {
    bare(title, html! { p { (why) } p { a href="/" { "Back to the portal" } } })
}

/// The page of an error.
pub fn error_page(status: StatusCode, code: &str, message: &str) -> Markup {
    let title = match status.as_u16() {
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        409 => "That cannot be done now",
        429 => "Too many attempts",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    };
    bare(
        title,
        html! {
            div.notice.error role="alert" { p { (message) } }
            p.small { "Error code: " code { (code) } " (HTTP " (status.as_u16()) ")" }
            p { a.button href="/" data-back { "Go back and retry" } " " a href="/" { "Portal home" } " " a href="/sign-in" { "Sign in again" } }
        },
    )
}

/// Every document's `head`: `extra` (a session's metadata and htmx) and
/// the stylesheet and script every page has.
fn head(title: &str, extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            (extra)
            title { (title) " · medanchor" }
            link rel="stylesheet" href=(assets::CSS_PATH);
            script src=(assets::JS_PATH) defer {}
        }
    }
}

/// A page without a session's navigation.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, html! {}))
            body {
                header.top { a.brand href="/" { "medanchor" } }
                main #main tabindex="-1" { h1 { (title) } (body) }
                footer { p { "medanchor" } }
            }
        }
    }
}

/// Text known to be safe markup: SVG we draw (`crate::charts`, the share
/// QR), with escaped labels and no script or style.
pub fn trusted(svg: String) -> Markup {
    PreEscaped(svg)
}
