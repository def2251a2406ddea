//! A transaction until it is mined: the page polls its status (htmx, every
//! second) and says when the chain has it — or why the contract refused.
//! And the page that hands a call to the browser's wallet.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use medanchor_contracts::Txid;
use medanchor_wallet::ContractCall;
use serde::Deserialize;

use crate::error::PortalError;
use crate::session::Session;
use crate::view::{self, Page};
use crate::wallet::{tx_state, TxState};

/// `?back=` (where to go once mined).
#[derive(Debug, Deserialize)]
pub struct Back {
    back: Option<String>,
    done: Option<String>,
}

fn txid_arg(s: &str) -> Result<Txid, PortalError> {
    s.parse().map_err(|_| PortalError::Invalid("That is not a transaction id.".into()))
}

/// The transaction's page.
pub async fn page(session: Session, Path(txid): Path<String>, Query(q): Query<Back>) -> Result<Markup, PortalError> {
    session.principal()?;
    let txid = txid_arg(&txid)?;
    let back = super::local_path(q.back.as_deref().unwrap_or(""), session.role);
    let state = tx_state(&session.service, &txid).await?;
    let body = html! {
        p { "Transaction " code.wrap { (txid) } }
        (status_fragment(&txid, &back, &state))
    };
    let help = html! {
        p { "A transaction takes effect when a block includes it. This page follows it and says when the chain has it; nothing you see elsewhere changes before that." }
        p { "If the contract refuses it, the reason is its error name (for example ERR-PROVIDER-NOT-FOUND)." }
    };
    Ok(view::render(&session, Page { title: "Transaction", current: "", help, body }, q.done.as_deref()))
}

/// The status fragment (polled).
pub async fn status(session: Session, Path(txid): Path<String>, Query(q): Query<Back>) -> Result<Markup, PortalError> {
    session.principal()?;
    let txid = txid_arg(&txid)?;
    let back = super::local_path(q.back.as_deref().unwrap_or(""), session.role);
    let state = tx_state(&session.service, &txid).await?;
    Ok(status_fragment(&txid, &back, &state))
}

fn status_fragment(txid: &Txid, back: &str, state: &TxState) -> Markup {
    let poll = format!("/tx/{txid}/status?back={}", super::urlencode(back));
    html! {
        @match state {
            TxState::Pending => {
                div #tx-status.notice hx-get=(poll) hx-trigger="every 1s" hx-swap="outerHTML" data-tx-state="pending" {
                    p { (view::badge("pending", "warn")) " Waiting for the next block…" }
                    p.small { a href=(format!("/tx/{txid}?back={}", super::urlencode(back))) { "Check again" } }
                }
            }
            TxState::Done { height } => {
                div #tx-status.notice.ok data-tx-state="mined" role="status" {
                    p { (view::badge("mined", "ok")) " Mined in block " (height) ". The chain now shows it." }
                    p { a.button href=(back) { "Continue" } }
                }
            }
            TxState::Failed(why) => {
                div #tx-status.notice.error data-tx-state="failed" role="alert" {
                    p { (view::badge("failed", "bad")) " The chain refused it: " code { (why) } }
                    p { a.button href=(back) { "Back" } }
                }
            }
        }
    }
}

/// The page that asks the browser's wallet to sign `calls`, one prompt
/// each, in order. With `done`, the txids are then posted there (with
/// the session's anti-forgery token) and that route decides where to go;
/// without, the page follows the last transaction.
pub fn sign_in_wallet(session: &Session, calls: &[ContractCall], back: &str, done: Option<&str>) -> Response {
    let requests: Vec<serde_json::Value> =
        calls.iter().map(|c| crate::wallet::browser_call(&session.service, c)).collect();
    let body = html! {
        p { "Your wallet signs " @if calls.len() == 1 { "this call" } @else { (calls.len()) " calls, one after the other," } " to the chain:" }
        ul { @for c in calls { li { code { (c.function) } " on the " (crate::wallet::contract_label(c.contract)) } } }
        p { "They move no tokens: each transaction forbids any transfer (deny-mode post-conditions)." }
        div data-wallet-call=(serde_json::Value::Array(requests).to_string()) data-back=(back) data-done=[done] {
            button type="button" data-wallet-sign { "Sign in my wallet" }
            p.hint #wallet-status aria-live="polite" {}
        }
    };
    let help = html! { p { "Approve each request in your wallet's window. The page then follows the transactions until they are mined." } };
    view::render(session, Page { title: "Sign with your wallet", current: "", help, body }, None).into_response()
}
