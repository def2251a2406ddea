//! The provider's pages: patient search, a patient's records (filters,
//! empty state), a record from a template, redeeming a code, credentials.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use medanchor_contracts::principal::Principal;
use medanchor_indexer::query::{PageRequest, RecordFilter};
use serde_json::Value;

use super::{data_type_choices, principal_field, see_other, Done};
use crate::error::PortalError;
use crate::session::{self, Form, Session};
use crate::view::{self, badge, csrf_field, empty, notice, text_field, Page};

fn provider(session: &Session) -> Result<Principal, PortalError> {
    Ok(session.require_role(&["provider"])?.clone())
}

/// Marks the matched ranges of a highlight.
fn highlighted(text: &str, ranges: &[std::ops::Range<usize>]) -> Markup {
    let mut parts = Vec::new();
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > text.len() || !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            continue;
        }
        parts.push((false, &text[at..r.start]));
        parts.push((true, &text[r.start..r.end]));
        at = r.end;
    }
    parts.push((false, &text[at..]));
    html! { @for (hit, t) in parts { @if hit { mark { (t) } } @else { (t) } } }
}

/// Patient search (by name, phone, blood group — through the blind
/// index; only patients the provider may see come back).
pub async fn search(session: Session, Query(q): Query<HashMap<String, String>>) -> Result<Markup, PortalError> {
    provider(&session)?;
    let name = q.get("name").map(String::as_str).unwrap_or("").trim().to_string();
    let open = q.get("patient").map(String::as_str).unwrap_or("").trim().to_string();
    let hits = if name.is_empty() {
        None
    } else {
        let query = medanchor_service::search::PatientSearch {
            name: Some(name.clone()),
            phone: None,
            blood_group: None,
            limit: Some(20),
            cursor: None,
        };
        Some(session.service.search_patients(&session.caller, query).await?)
    };
    let body = html! {
        form.filters method="get" action="/provider" role="search" {
            div.field { label for="q-name" { "Patient name" } input #q-name type="search" name="name" value=(name); }
            button type="submit" { "Search" }
        }
        form.filters method="get" action="/provider" {
            div.field { label for="q-patient" { "Or open a patient by address" } input #q-patient name="patient" value=(open); }
            button type="submit" { "Open" }
        }
        @if !open.is_empty() {
            @match principal_field(&open, "The address") {
                Ok(p) => { p { a.button href=(format!("/provider/patients/{p}")) { "Open " (view::short(&p.to_string())) } } }
                Err(e) => { (notice(Some(&e))) }
            }
        }
        @if let Some(h) = &hits {
            @if h.items.is_empty() { (empty("No patient you may see matches that name.", None)) }
            ul.results { @for hit in &h.items { li {
                a href=(format!("/provider/patients/{}", hit.patient)) { code { (view::short(&hit.patient)) } }
                @for hl in &hit.highlights { " — " span.small { (hl.field) ": " } (highlighted(&hl.text, &hl.ranges)) }
            } } }
        }
    };
    let help = html! { p { "Search finds only patients whose consent lets you see their name; matches are highlighted. You can also open a patient by the Stacks address they gave you." } };
    Ok(view::render(
        &session,
        Page { title: "Patients", current: "/provider", help, body },
        q.get("done").map(String::as_str),
    ))
}

/// A patient's records as a list with filters (shared with the patient's page).
pub async fn records_list(
    session: &Session,
    patient: &Principal,
    q: &HashMap<String, String>,
) -> Result<Markup, PortalError> {
    let record_type = q.get("type").filter(|t| !t.is_empty()).and_then(|t| t.parse().ok());
    let filter = RecordFilter { record_type, ..RecordFilter::default() };
    let page = PageRequest { cursor: q.get("cursor").cloned().filter(|c| !c.is_empty()), limit: Some(25) };
    let grant = session.grant.as_ref().filter(|(p, _)| *p == patient.to_string()).map(|(_, t)| t.clone());
    let (items, next) = session.service.list_records(&session.caller, patient, filter, page, grant.as_deref()).await?;
    let types = medanchor_contracts::types::RecordType::ALL;
    let current = q.get("type").map(String::as_str).unwrap_or("");
    Ok(html! {
        form.filters method="get" {
            div.field {
                label for="r-type" { "Record type" }
                select #r-type name="type" {
                    option value="" { "All" }
                    @for t in types { option value=(t.name()) selected[t.name() == current] { (t.name()) } }
                }
            }
            button type="submit" { "Filter" }
        }
        @if items.is_empty() {
            (empty("No records to show. Records appear here once written and anchored, and only those the chain lets you see.", None))
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Record" } th scope="col" { "Type" } th scope="col" { "Version" } th scope="col" { "Status" } } }
                tbody { @for r in &items { tr {
                    td { a href=(format!("/records/{}", r.record_id.bare_hex())) { (r.record_id.bare_hex().get(..8).unwrap_or("")) "…" } }
                    td { (r.record_type.name()) }
                    td { (r.version) }
                    td { @if r.finalized { (badge("finalized", "ok")) } @else { (badge("draft", "warn")) } }
                } } }
            } }
            @if let Some(c) = next { p { a href=(format!("?type={}&cursor={}", super::urlencode(current), super::urlencode(&c))) { "Next page" } } }
        }
    })
}

/// One patient: records, new record, consent request.
pub async fn patient(
    session: Session,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PortalError> {
    provider(&session)?;
    let p = principal_field(&patient, "The patient").map_err(PortalError::Invalid)?;
    let list = records_list(&session, &p, &q).await?;
    let body = html! {
        p { "Patient " code.wrap { (p) } }
        p { a.button href=(format!("/provider/patients/{p}/new")) { "New record" } }
        section.card aria-labelledby="recs-h" { h2 #recs-h { "Records" } (list) }
        section.card aria-labelledby="req-h" {
            h2 #req-h { "Ask for consent" }
            form method="post" action=(format!("/provider/patients/{p}/request")) {
                (csrf_field(&session))
                fieldset.field {
                    legend { "Data types" }
                    @for (name, words) in data_type_choices() {
                        div.check { input type="checkbox" id=(format!("rq-{name}")) name="data_type" value=(name); label for=(format!("rq-{name}")) { (words) } }
                    }
                }
                div.field { label for="rq-blocks" { "For how many blocks (empty: until revoked)" } input #rq-blocks name="blocks" inputmode="numeric"; }
                div.field { label for="rq-purpose" { "Purpose (the patient reads this)" } textarea #rq-purpose name="purpose" rows="3" maxlength="500" {} }
                button type="submit" { "Send request" }
            }
        }
    };
    let help = html! { p { "You see this patient's records only while their consent and your access level allow, or through a code they shared. A request asks them for consent; it grants nothing until they sign it." } };
    Ok(view::render(
        &session,
        Page { title: "Patient", current: "/provider", help, body },
        q.get("done").map(String::as_str),
    ))
}

/// The new-record form: pick a template, fill its fields.
pub async fn new_record(
    session: Session,
    Path(patient): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PortalError> {
    provider(&session)?;
    let p = principal_field(&patient, "The patient").map_err(PortalError::Invalid)?;
    new_record_page(&session, &p, q.get("template").map(String::as_str).unwrap_or(""), None, &Value::Null)
}

fn new_record_page(
    session: &Session,
    patient: &Principal,
    template: &str,
    error: Option<&str>,
    values: &Value,
) -> Result<Markup, PortalError> {
    let templates = session.service.templates(&session.caller)?;
    let chosen = templates.iter().find(|t| t.id.as_str() == template);
    let body = html! {
        (notice(error))
        form.filters method="get" action=(format!("/provider/patients/{patient}/new")) {
            div.field {
                label for="tpl" { "Template" }
                select #tpl name="template" {
                    @for t in &templates { option value=(t.id.as_str()) selected[t.id.as_str() == template] { (t.title) " (" (t.record_type.name()) ")" } }
                }
            }
            button type="submit" { "Use this template" }
        }
        @if let Some(t) = chosen {
            form method="post" action=(format!("/provider/patients/{patient}/new")) {
                (csrf_field(session))
                input type="hidden" name="_template" value=(t.id.as_str());
                (super::records::template_inputs(t, values))
                button type="submit" { "Create record" }
            }
            p.hint { "Attachments are added on the record's page once it is created." }
        }
    };
    let help = html! { p { "A template lists the fields of a kind of record and checks them: codes (ICD-10, LOINC), units and dates are validated before anything is stored. The record is encrypted, stored off-chain, and its hash anchored on the chain." } };
    Ok(view::render(session, Page { title: "New record", current: "/provider", help, body }, None))
}

/// Creates a record from a template.
pub async fn create_record(
    session: Session,
    headers: HeaderMap,
    Path(patient): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    provider(&session)?;
    let p = principal_field(&patient, "The patient").map_err(PortalError::Invalid)?;
    let id: medanchor_clinical::template::TemplateId = form.get("_template").parse().map_err(PortalError::Invalid)?;
    let template = session.service.template(&session.caller, &id, None)?;
    let content = super::records::template_content(&template, &form);
    let payload = medanchor_service::records::Payload {
        content_type: "application/json".into(),
        bytes: serde_json::to_vec(&content).map_err(PortalError::internal)?,
        template: Some(medanchor_clinical::template::TemplateRef {
            id: template.id.clone(),
            version: template.version,
        }),
    };
    let new = medanchor_service::records::NewRecord {
        record_type: template.record_type,
        payload,
        confidentiality: None,
        signing: None,
    };
    match session.service.create_record(&session.caller, &p, new).await {
        Ok(w) => Ok(see_other(&headers, &format!("/records/{}", w.meta.record_id.bare_hex()), "record-created")),
        Err(e) => {
            let msg = PortalError::from(e).message();
            Ok(new_record_page(&session, &p, id.as_str(), Some(&msg), &content)?.into_response())
        }
    }
}

/// Redeem a code (typed, or scanned from the patient's QR).
pub async fn redeem_page(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    provider(&session)?;
    redeem_with(&session, done.done.as_deref(), None, &Form::default())
}

fn redeem_with(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    typed: &Form,
) -> Result<Markup, PortalError> {
    let body = html! {
        (notice(error))
        form method="post" action="/provider/redeem" {
            (csrf_field(session))
            (text_field("patient", "Patient's Stacks address", typed.get("patient"), None, true))
            (text_field("code", "Code", typed.get("code"), Some("As the patient shows it; spaces and dashes do not matter."), true))
            button type="submit" { "Redeem" }
        }
        div.scanner data-scanner hidden {
            button type="button" data-scan { "Scan the patient's QR with the camera" }
            video data-video muted playsinline aria-label="Camera preview" {}
            p.hint #scan-status aria-live="polite" {}
        }
        @if let Some((patient, _)) = &session.grant {
            p { "A redeemed code is active in this browser for " code { (view::short(patient)) } ". " a href=(format!("/provider/patients/{patient}")) { "See what it covers" } }
        }
    };
    let help = html! { p { "A code lets you read the data types the patient chose, for as long as they chose, even without standing consent. Each redemption is recorded in the patient's access history. Too many wrong codes lock the patient's codes." } };
    Ok(view::render(session, Page { title: "Redeem a code", current: "/provider/redeem", help, body }, toast))
}

/// Redeems a code: the grant goes into an HttpOnly cookie for this browser.
pub async fn redeem(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    provider(&session)?;
    let patient = form.get("patient").to_string();
    let redeemed = if form.get("link").is_empty() {
        session.service.redeem_code(&session.caller, &patient, form.get("code")).await
    } else {
        // A scanned QR: the signed link names its share by capability.
        let link = medanchor_service::share::link::LinkPayload::decode(form.get("link"))
            .map_err(|_| PortalError::Invalid("That QR code is not a medanchor share link.".into()))?;
        let capability =
            link.capability().ok_or_else(|| PortalError::Invalid("That QR code names no share.".into()))?;
        session.service.redeem_link(&session.caller, capability, None).await.map(|(g, _)| g)
    };
    match redeemed {
        Ok(g) => {
            let age = g.redeemed.grant.expires_ms.saturating_sub(medanchor_service::state::now_ms()) / 1000;
            let mut r = see_other(&headers, &format!("/provider/patients/{}", g.redeemed.grant.patient), "redeemed");
            let value = format!("{}.{}", g.redeemed.grant.patient, g.redeemed.token);
            r.headers_mut().append("set-cookie", session::set_cookie(session::GRANT_COOKIE, &value, age));
            Ok(r)
        }
        Err(e) => Ok(redeem_with(&session, None, Some(&PortalError::from(e).message()), &form)?.into_response()),
    }
}

/// The provider's own credentials: state, and a new version to submit.
pub async fn credentials(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    let me = provider(&session)?;
    credentials_page(&session, &me, done.done.as_deref(), None, None)
}

fn credentials_page(
    session: &Session,
    me: &Principal,
    toast: Option<&str>,
    error: Option<&str>,
    typed: Option<&str>,
) -> Result<Markup, PortalError> {
    let current = session.service.read_credentials(&session.caller, me).ok();
    let document = typed
        .map(str::to_string)
        .or_else(|| current.as_ref().and_then(|c| serde_json::to_string_pretty(&c.current.document).ok()))
        .unwrap_or_default();
    let body = html! {
        (notice(error))
        @if let Some(c) = &current {
            p { "Version " (c.current.version) " — " (badge(c.current.status.state().name(), "info")) " "
                @if c.matches_chain() { (badge("matches the chain", "ok")) } @else { (badge("not on the chain yet", "warn")) } }
        } @else { (empty("No credentials submitted yet.", None)) }
        form method="post" action="/provider/credentials" {
            (csrf_field(session))
            input type="hidden" name="_version" value=(current.as_ref().map_or(0, |c| c.current.version));
            div.field {
                label for="c-doc" { "Credential document (JSON: name, license, specializations, …)" }
                textarea #c-doc name="document" rows="14" spellcheck="false" { (document) }
            }
            button type="submit" { "Submit for verification" }
        }
    };
    let help = html! { p { "An administrator verifies your credentials; a verified version's hash is committed on the chain, where anyone can check it. Changing them starts a new verification." } };
    Ok(view::render(session, Page { title: "Credentials", current: "/provider/credentials", help, body }, toast))
}

/// Submits a credentials version.
pub async fn save_credentials(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let me = provider(&session)?;
    let expected: u64 = form.get("_version").parse().unwrap_or(0);
    match session.service.write_credentials(&session.caller, &me, expected, form.get("document").as_bytes()).await {
        Ok(_) => Ok(see_other(&headers, "/provider/credentials", "credentials-saved")),
        Err(e) => Ok(credentials_page(
            &session,
            &me,
            None,
            Some(&PortalError::from(e).message()),
            Some(form.get("document")),
        )?
        .into_response()),
    }
}
