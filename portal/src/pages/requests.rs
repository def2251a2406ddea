//! Consent requests: a provider asks; the patient approves by signing the
//! grants in their wallet, or declines with a message.

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{html, Markup};
use medanchor_contracts::types::DataType;
use medanchor_service::consent_requests::{ConsentRequest, NewConsentRequest, RequestState};
use medanchor_wallet::{ContractCall, GrantDuration};

use super::{principal_field, see_other, Done};
use crate::error::PortalError;
use crate::session::{Form, Session};
use crate::view::{self, badge, csrf_field, empty, Page};

fn state_badge(r: &ConsentRequest) -> Markup {
    let kind = match r.state {
        RequestState::Pending => "warn",
        RequestState::Approved => "ok",
        _ => "muted",
    };
    html! { (badge(r.state.name(), kind)) @if r.granted_on_chain { " " (badge("granted on chain", "ok")) } }
}

fn types(r: &ConsentRequest) -> String {
    r.data_types.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
}

/// The patient's requests.
pub async fn patient_list(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.require_role(&["patient"])?;
    let all = session.service.consent_requests(&session.caller, true).await?;
    let body = html! {
        @if all.is_empty() { (empty("No provider has asked you for consent.", None)) }
        @for r in &all {
            section.card.request {
                h2 { "From " code { (view::short(&r.provider)) } " " (state_badge(r)) }
                dl.meta {
                    dt { "Data types" } dd { (types(r)) }
                    dt { "For" } dd { @match r.duration_blocks { Some(b) => { (b) " blocks" }, None => { "until you revoke" } } }
                    dt { "Purpose" } dd { (r.purpose) }
                    dt { "Asked" } dd { (view::when(r.created_ms)) }
                    dt { "Expires" } dd { (view::when(r.expires_ms)) }
                    @if let Some(m) = &r.message { dt { "Your message" } dd { (m) } }
                }
                @if r.state == RequestState::Pending {
                    form.inline method="post" action=(format!("/patient/requests/{}/approve", r.id)) {
                        (csrf_field(&session))
                        button type="submit" { "Approve and sign" }
                    }
                    form.inline method="post" action=(format!("/patient/requests/{}/decline", r.id)) {
                        (csrf_field(&session))
                        div.field { label for=(format!("m-{}", r.id)) { "Message (optional)" } input id=(format!("m-{}", r.id)) name="message" maxlength="500"; }
                        button.danger type="submit" { "Decline" }
                    }
                }
            }
        }
    };
    let help = html! { p { "A request grants nothing. Approving signs one grant-consent transaction per data type with your wallet; the provider sees the data once they are mined. Declining tells the provider, with your message if you write one. Requests expire after a week." } };
    Ok(view::render(
        &session,
        Page { title: "Consent requests", current: "/patient/requests", help, body },
        done.done.as_deref(),
    ))
}

/// Approves: signs the grants, then records the txids with the request.
pub async fn approve(session: Session, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, PortalError> {
    session.require_role(&["patient"])?;
    let r = session.service.consent_request(&session.caller, &id).await?;
    if r.state != RequestState::Pending {
        return Err(PortalError::Invalid(format!(
            "This request is {}; only a pending one can be approved.",
            r.state.name()
        )));
    }
    let provider = principal_field(&r.provider, "The provider").map_err(PortalError::internal)?;
    let duration = match r.duration_blocks {
        Some(b) => GrantDuration::blocks(b).map_err(|e| PortalError::Invalid(e.to_string()))?,
        None => GrantDuration::UntilRevoked,
    };
    let calls: Vec<ContractCall> =
        r.data_types.iter().map(|t| ContractCall::grant_consent(&provider, *t, duration)).collect();
    let Some(account) = session.dev_account() else {
        // The browser's wallet signs them all, then posts the txids back
        // to `signed`, which records the approval.
        let done = format!("/patient/requests/{}/signed", r.id);
        return Ok(super::tx::sign_in_wallet(&session, &calls, "/patient/requests", Some(&done)));
    };
    let mut txids = Vec::new();
    for call in &calls {
        txids.push(crate::wallet::dev_submit(&session.service, account, call).await?.to_string());
    }
    let last = txids.last().cloned().unwrap_or_default();
    session.service.approve_consent_request(&session.caller, &id, txids).await?;
    Ok(see_other(&headers, &format!("/tx/{last}?back=/patient/requests"), "request-approved"))
}

/// Records the approval a browser wallet signed: the txids it got back.
pub async fn signed(
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["patient"])?;
    let txids: Vec<String> =
        form.get("txids").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let last = txids.last().cloned().ok_or_else(|| PortalError::Invalid("The wallet sent no transaction.".into()))?;
    session.service.approve_consent_request(&session.caller, &id, txids).await?;
    Ok(see_other(&headers, &format!("/tx/{last}?back=/patient/requests"), "request-approved"))
}

/// Declines, with an optional message.
pub async fn decline(
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["patient"])?;
    let message = Some(form.get("message").to_string()).filter(|m| !m.is_empty());
    session.service.decline_consent_request(&session.caller, &id, message).await?;
    Ok(see_other(&headers, "/patient/requests", "request-declined"))
}

/// A provider asks a patient for consent.
pub async fn create(
    session: Session,
    headers: HeaderMap,
    Path(patient): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["provider"])?;
    let patient = principal_field(&patient, "The patient").map_err(PortalError::Invalid)?;
    let data_types: Vec<DataType> = form.all("data_type").iter().filter_map(|t| t.parse().ok()).collect();
    let duration_blocks = match form.get("blocks") {
        "" => None,
        b => Some(b.parse().map_err(|_| PortalError::Invalid("The number of blocks must be a whole number.".into()))?),
    };
    let new = NewConsentRequest {
        patient: patient.clone(),
        data_types,
        duration_blocks,
        purpose: form.get("purpose").to_string(),
    };
    session.service.request_consent(&session.caller, new).await?;
    Ok(see_other(&headers, "/provider/requests", "request-sent"))
}

/// The provider's requests and where they stand.
pub async fn provider_list(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.require_role(&["provider"])?;
    let all = session.service.consent_requests(&session.caller, true).await?;
    let body = html! {
        @if all.is_empty() { (empty("You have not asked anyone for consent. Open a patient to ask.", Some(("/provider", "Find a patient")))) }
        @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Patient" } th scope="col" { "Data types" } th scope="col" { "Asked" } th scope="col" { "State" } th scope="col" { "Message" } } }
                tbody { @for r in &all { tr {
                    td { a href=(format!("/provider/patients/{}", r.patient)) { code { (view::short(&r.patient)) } } }
                    td { (types(r)) }
                    td { (view::when(r.created_ms)) }
                    td { (state_badge(r)) }
                    td { (r.message.as_deref().unwrap_or("")) }
                } } }
            } }
        }
    };
    let help = html! { p { "A request becomes access only when the patient signs the grant and it is mined: the badge says when the chain shows it." } };
    Ok(view::render(
        &session,
        Page { title: "Consent requests", current: "/provider/requests", help, body },
        done.done.as_deref(),
    ))
}
