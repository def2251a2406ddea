//! Signing in and out, the first visit (registering as a patient), and
//! the help page.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use medanchor_service::sign_in::Session as ServiceSession;

use super::{see_other, Done};
use crate::error::PortalError;
use crate::session::{self, Form, Session};
use crate::view::{self, csrf_field, notice, Page};

/// `/`: the role's home, or sign in.
pub async fn home(session: Session, headers: HeaderMap) -> Response {
    see_other(&headers, view::home_of(session.role), "")
}

/// The sign-in page.
pub async fn page(session: Session) -> Markup {
    page_with(&session, None)
}

fn page_with(session: &Session, error: Option<&str>) -> Markup {
    let tenants: Vec<String> = session.portal.tenants.iter().map(|s| s.config().tenant.clone()).collect();
    // One per form, each with its own id.
    let tenant_field = |form: &str| {
        html! {
            @if tenants.len() > 1 {
                div.field {
                    label for=(format!("{form}-tenant")) { "Organisation (tenant)" }
                    select id=(format!("{form}-tenant")) name="tenant" {
                        @for t in &tenants { option value=(t) { (t) } }
                    }
                }
            }
        }
    };
    let body = html! {
        (notice(error))
        section.card aria-labelledby="wallet-h" {
            h2 #wallet-h { "With your Stacks wallet" }
            p { "Your wallet (Leather or Xverse) signs a one-time message that proves the address is yours. Nothing is sent to the chain and nothing is paid." }
            form #wallet-signin method="post" action="/sign-in/challenge" data-wallet-signin hx-boost="false" {
                (tenant_field("wallet"))
                button type="submit" { "Connect wallet and sign in" }
                p.hint #wallet-status aria-live="polite" {}
            }
        }
        @if !session.portal.dev_accounts.is_empty() {
            section.card aria-labelledby="dev-h" {
                h2 #dev-h { "Development wallet " (view::badge("devnet only", "warn")) }
                p { "This node runs its own devnet. Its test accounts (public keys from Devnet.toml, never for real funds) can sign in and sign transactions here without a browser extension." }
                form method="post" action="/sign-in/dev" {
                    (tenant_field("dev"))
                    div.field {
                        label for="f-account" { "Account" }
                        select id="f-account" name="account" {
                            @for a in &session.portal.dev_accounts {
                                option value=(a.name) { (a.name) " — " (view::short(&a.address)) }
                            }
                        }
                    }
                    button type="submit" { "Sign in with the development wallet" }
                }
            }
        }
    };
    let help = html! {
        p { "Sign in with the wallet that holds your Stacks address. Patients, providers, auditors and administrators use the same page: what you can do afterwards follows what the chain says your address is." }
        p { "The session lasts until you sign out or it expires; it is kept in a cookie your browser's scripts cannot read." }
    };
    view::render(session, Page { title: "Sign in", current: "", help, body }, None)
}

fn tenant_of(session: &Session, form: &Form) -> Result<usize, String> {
    let t = form.get("tenant");
    if t.is_empty() {
        return Ok(0);
    }
    session.portal.tenants.iter().position(|s| s.config().tenant == t).ok_or_else(|| "Unknown organisation.".into())
}

/// Sets the session's cookies and goes home.
fn signed_in(headers: &HeaderMap, s: &ServiceSession, tenant: &str, wallet: &str, home: &str) -> Response {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let age = s.expires_at.saturating_sub(now);
    let mut r = see_other(headers, home, "signed-in");
    let h = r.headers_mut();
    h.append("set-cookie", session::set_cookie(session::SESSION_COOKIE, &s.token, age));
    h.append("set-cookie", session::set_cookie(session::TENANT_COOKIE, tenant, age));
    h.append("set-cookie", session::set_cookie(session::WALLET_COOKIE, wallet, age));
    h.append("set-cookie", session::clear_cookie(session::GRANT_COOKIE));
    r
}

async fn home_after(service: &medanchor_service::Service, principal: &str) -> Result<&'static str, PortalError> {
    let p = principal.parse().map_err(PortalError::internal)?;
    let s = service.clone();
    let role = tokio::task::spawn_blocking(move || s.role_of(&p)).await.map_err(PortalError::internal)??;
    Ok(view::home_of(role))
}

/// Signs in with the development wallet.
pub async fn dev(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let tenant = match tenant_of(&session, &form) {
        Ok(t) => t,
        Err(e) => return Ok(page_with(&session, Some(&e)).into_response()),
    };
    let Some(account) = session.portal.dev_accounts.iter().find(|a| a.name == form.get("account")) else {
        return Ok(page_with(&session, Some("Choose one of the development accounts.")).into_response());
    };
    let service = &session.portal.tenants[tenant];
    let signed = crate::wallet::dev_sign_in(service, &session.caller, account).await?;
    let home = home_after(service, &signed.principal).await?;
    Ok(signed_in(&headers, &signed, &service.config().tenant, "dev", home))
}

/// A challenge for the browser wallet to sign (`principal` from the
/// wallet): a fragment whose data attributes the script reads.
pub async fn challenge(session: Session, form: Form) -> Result<Response, PortalError> {
    let tenant = tenant_of(&session, &form).map_err(PortalError::Invalid)?;
    let principal =
        super::principal_field(form.get("principal"), "The wallet's address").map_err(PortalError::Invalid)?;
    let c = session.portal.tenants[tenant].challenge(&principal)?;
    Ok(html! { div #challenge data-nonce=(c.nonce) data-message=(c.message) {} }.into_response())
}

/// Signs in with a browser wallet's signature of a challenge.
pub async fn verify(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let tenant = tenant_of(&session, &form).map_err(PortalError::Invalid)?;
    let service = &session.portal.tenants[tenant];
    let signed = service.sign_in(&session.caller, form.get("nonce"), form.get("signature")).await?;
    let home = home_after(service, &signed.principal).await?;
    Ok(signed_in(&headers, &signed, &service.config().tenant, "browser", home))
}

/// Signs out: the cookies go. (The token itself lives until it expires,
/// like every bearer token the node issues; the browser forgets it.)
pub async fn sign_out(headers: HeaderMap) -> Response {
    let mut r = see_other(&headers, "/sign-in", "");
    for c in [session::SESSION_COOKIE, session::TENANT_COOKIE, session::WALLET_COOKIE, session::GRANT_COOKIE] {
        r.headers_mut().append("set-cookie", session::clear_cookie(c));
    }
    r.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    r
}

/// A signed-in address the chain does not know yet: register as a patient.
pub async fn welcome(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.principal()?;
    if session.role != "none" {
        return Ok(view::render(
            &session,
            Page {
                title: "Welcome",
                current: "",
                help: html! {},
                body: html! { p { "You are registered as " (session.role) ". " a href=(view::home_of(session.role)) { "Go to your pages" } } },
            },
            done.done.as_deref(),
        ));
    }
    let body = html! {
        p { "The chain does not know this address yet. Patients register themselves; providers are registered by the contract's owner (ask your administrator)." }
        form method="post" action="/welcome" {
            (csrf_field(&session))
            button type="submit" { "Register as a patient" }
        }
    };
    let help = html! {
        p { "Registering signs one transaction with your wallet: it records a random patient id (no personal data) on the chain. After it is mined you can grant and revoke consent." }
    };
    Ok(view::render(&session, Page { title: "Welcome", current: "", help, body }, done.done.as_deref()))
}

/// Registers the signed-in address as a patient (a wallet-signed call).
pub async fn register_patient(session: Session, headers: HeaderMap) -> Result<Response, PortalError> {
    session.principal()?;
    let id = medanchor_wallet::actions::new_patient_id();
    let call = medanchor_wallet::ContractCall::register_patient(id, None, None);
    super::submit(&session, &headers, call, "/patient").await
}

/// The help page: what each role can do, and where.
pub async fn help(session: Session) -> Markup {
    let body = html! {
        section.card {
            h2 { "Patients" }
            p { "Grant and revoke consent per data type and provider (each a transaction your wallet signs), see every access to your data, share a one-time code or QR with a provider, keep your profile, read your records, download exports and choose how you are notified." }
        }
        section.card {
            h2 { "Providers" }
            p { "Search your patients, read and write records while consent allows, create records from templates with attachments, follow versions, finalize or unlock, redeem a patient's code, ask a patient for consent and keep your credentials current." }
        }
        section.card {
            h2 { "Auditors and administrators" }
            p { "Verify a record against the chain step by step, browse the tamper-evident audit log with inclusion proofs, read the analytics and anomaly flags, decide on provider credentials, and (administrators) watch backups and jobs." }
        }
        p { "The full guide is docs/user-guide.md in the medanchor repository." }
    };
    view::render(
        &session,
        Page { title: "Help", current: "", help: html! { p { "An overview of the portal." } }, body },
        None,
    )
}
