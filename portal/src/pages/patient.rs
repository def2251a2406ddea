//! The patient's pages: consent (each change a wallet-signed transaction),
//! access history, share codes, profile, records, exports, notifications.

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

use super::{data_type_choices, principal_field, see_other, submit, Done};
use crate::error::PortalError;
use crate::session::{Form, Session};
use crate::view::{self, badge, csrf_field, empty, notice, text_field, Page};

fn patient(session: &Session) -> Result<Principal, PortalError> {
    Ok(session.require_role(&["patient"])?.clone())
}

/// The consent dashboard.
pub async fn dashboard(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    dashboard_with(&session, done.done.as_deref(), None, &Form::default()).await
}

async fn dashboard_with(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    typed: &Form,
) -> Result<Markup, PortalError> {
    let me = patient(session)?;
    let (s, p) = (session.service.clone(), me.clone());
    let (consents, profile) = tokio::task::spawn_blocking(move || -> Result<_, PortalError> {
        let consents = s.chain().consents(&p).map_err(PortalError::internal)?;
        let profile = s.chain().patient(&p).map_err(PortalError::internal)?;
        Ok((consents, profile))
    })
    .await
    .map_err(PortalError::internal)??;
    let mut providers: Vec<String> = consents.iter().map(|c| c.provider.clone()).collect();
    providers.sort();
    providers.dedup();
    let (s, p, ps) = (session.service.clone(), me.clone(), providers.clone());
    let access = tokio::task::spawn_blocking(move || {
        ps.iter()
            .filter_map(|pr| pr.parse::<Principal>().ok())
            .filter_map(|pr| s.chain().provider_access(&p, &pr).ok().flatten())
            .collect::<Vec<_>>()
    })
    .await
    .map_err(PortalError::internal)?;
    let shares = session.service.list_shares(&session.caller).map(|l| l.active).unwrap_or(0);
    let pending = session.service.consent_requests(&session.caller, false).await.map(|r| r.len()).unwrap_or(0);
    let active: Vec<_> = consents.iter().filter(|c| format!("{:?}", c.state) == "Active").collect();
    let body = html! {
        (notice(error))
        div.stats {
            p.stat { strong { (active.len()) } " active consents" }
            p.stat { a href="/patient/shares" { strong { (shares) } " active share codes" } }
            p.stat { a href="/patient/requests" { strong { (pending) } " pending requests" } }
        }
        section.card aria-labelledby="consents-h" {
            h2 #consents-h { "Who may see what" }
            @if consents.is_empty() {
                (empty("You have not granted consent to anyone. Providers see nothing of yours until you do.", None))
            } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Provider" } th scope="col" { "Data type" } th scope="col" { "Until" } th scope="col" { "State" } th scope="col" { span.vh { "Action" } } } }
                    tbody {
                        @for c in &consents {
                            @let state = format!("{:?}", c.state).to_lowercase();
                            tr {
                                td { code title=(c.provider) { (view::short(&c.provider)) } }
                                td { (c.data_type) }
                                td { @match c.expires_at { Some(h) => { "block " (h) }, None => { "until revoked" } } }
                                td { (badge(&state, if state == "active" { "ok" } else { "muted" })) }
                                td {
                                    @if state == "active" {
                                        form method="post" action="/patient/consents/revoke" {
                                            (csrf_field(session))
                                            input type="hidden" name="provider" value=(c.provider);
                                            input type="hidden" name="data_type" value=(c.data_type);
                                            button.danger type="submit" aria-label=(format!("Revoke {} for {}", c.data_type, view::short(&c.provider))) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        section.card aria-labelledby="grant-h" {
            h2 #grant-h { "Grant consent" }
            form method="post" action="/patient/consents" {
                (csrf_field(session))
                (text_field("provider", "Provider's Stacks address", typed.get("provider"), Some("The address your provider gave you (ST…)."), true))
                fieldset.field {
                    legend { "Data types" }
                    @for (name, words) in data_type_choices() {
                        div.check {
                            input type="checkbox" id=(format!("dt-{name}")) name="data_type" value=(name) checked[typed.has("data_type", name)];
                            label for=(format!("dt-{name}")) { (words) }
                        }
                    }
                }
                (duration_field(typed.get("blocks")))
                fieldset.field {
                    legend { "Access level for records (optional)" }
                    @for (v, words) in [("", "Leave as it is"), ("read", "Read"), ("write", "Read and write")] {
                        div.check {
                            input type="radio" id=(format!("lvl-{v}")) name="level" value=(v) checked[typed.get("level") == v];
                            label for=(format!("lvl-{v}")) { (words) }
                        }
                    }
                }
                button type="submit" { "Sign and grant" }
            }
        }
        @if !access.is_empty() {
            section.card aria-labelledby="access-h" {
                h2 #access-h { "Record access levels" }
                table {
                    thead { tr { th scope="col" { "Provider" } th scope="col" { "Level" } th scope="col" { "State" } th scope="col" { span.vh { "Action" } } } }
                    tbody { @for a in &access { tr {
                        td { code { (view::short(&a.provider)) } }
                        td { (a.level) }
                        td { (badge(if a.active { "active" } else { "ended" }, if a.active { "ok" } else { "muted" })) }
                        td { @if a.active {
                            form method="post" action="/patient/access/revoke" {
                                (csrf_field(session))
                                input type="hidden" name="provider" value=(a.provider);
                                button.danger type="submit" aria-label=(format!("Revoke access — {}", view::short(&a.provider))) { "Revoke access" }
                            }
                        } }
                    } } }
                }
            }
        }
        @if let Some(pr) = &profile {
            section.card aria-labelledby="em-h" {
                h2 #em-h { "Emergency settings" }
                p { "In an emergency, an authorised responder may read your records for a limited time (an override, always audited and notified to you). Mental-health and genetic records stay hidden unless you allow them here." }
                form method="post" action="/patient/emergency" {
                    (csrf_field(session))
                    div.check { input type="checkbox" id="em-mh" name="mental_health" value="true" checked[pr.emergency_mental_health]; label for="em-mh" { "Responders may see mental-health records" } }
                    div.check { input type="checkbox" id="em-gen" name="genetic" value="true" checked[pr.emergency_genetic]; label for="em-gen" { "Responders may see genetic records" } }
                    button type="submit" { "Sign and save" }
                }
            }
        }
    };
    let help = html! {
        p { "Consent is kept on the Stacks chain, not by this portal: granting or revoking signs a transaction with your wallet, and it takes effect when mined. Providers see a data type only while your consent for it is active." }
        p { "All standard types covers everything except mental-health and genetic data, which always need their own consent." }
    };
    Ok(view::render(session, Page { title: "Consent", current: "/patient", help, body }, toast))
}

fn duration_field(blocks: &str) -> Markup {
    html! {
        div.field {
            label for="f-blocks" { "For how many blocks (empty: until you revoke)" }
            p.hint #f-blocks-hint { "About 144 blocks a day on Bitcoin's schedule." }
            input #f-blocks name="blocks" inputmode="numeric" value=(blocks) aria-describedby="f-blocks-hint";
        }
    }
}

fn duration_of(form: &Form) -> Result<GrantDuration, String> {
    match form.get("blocks") {
        "" => Ok(GrantDuration::UntilRevoked),
        b => b
            .parse::<u64>()
            .ok()
            .and_then(|n| GrantDuration::blocks(n).ok())
            .ok_or_else(|| "The number of blocks must be a whole number above zero.".into()),
    }
}

/// Grants consent (one transaction per data type; the first is followed).
pub async fn grant(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    patient(&session)?;
    let parsed = (|| -> Result<(Principal, Vec<DataType>, GrantDuration, Option<AccessLevel>), String> {
        let provider = principal_field(form.get("provider"), "The provider's address")?;
        let types: Vec<DataType> = form.all("data_type").iter().filter_map(|t| t.parse().ok()).collect();
        if types.is_empty() {
            return Err("Choose at least one data type.".into());
        }
        let level = match form.get("level") {
            "" => None,
            l => Some(l.parse::<AccessLevel>().map_err(|_| "Choose read or write.".to_string())?),
        };
        Ok((provider, types, duration_of(&form)?, level))
    })();
    let (provider, types, duration, level) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(dashboard_with(&session, None, Some(&e), &form).await?.into_response()),
    };
    // The chain refuses consent to an unknown provider; say so before a
    // transaction is signed for nothing.
    let (s, pr) = (session.service.clone(), provider.clone());
    let known = tokio::task::spawn_blocking(move || s.chain().provider(&pr))
        .await
        .map_err(PortalError::internal)?
        .map_err(PortalError::internal)?;
    if known.is_none() {
        let e = "No provider is registered at that address. Check it with your provider.";
        return Ok(dashboard_with(&session, None, Some(e), &form).await?.into_response());
    }
    let mut calls: Vec<ContractCall> =
        types.iter().map(|t| ContractCall::grant_consent(&provider, *t, duration)).collect();
    if let Some(level) = level {
        calls.push(
            ContractCall::grant_provider_access(&provider, level, duration)
                .map_err(|e| PortalError::Invalid(e.to_string()))?,
        );
    }
    submit_all(&session, &headers, calls, "/patient").await
}

/// Sends several calls: the development wallet signs each in turn, a
/// browser wallet is handed them all (one prompt each); the page follows
/// the last.
pub(crate) async fn submit_all(
    session: &Session,
    headers: &HeaderMap,
    calls: Vec<ContractCall>,
    back: &str,
) -> Result<Response, PortalError> {
    if session.dev_account().is_none() {
        let back = super::local_path(back, session.role);
        return Ok(super::tx::sign_in_wallet(session, &calls, &back, None).into_response());
    }
    let n = calls.len();
    let mut last = None;
    for (i, call) in calls.into_iter().enumerate() {
        if i + 1 < n && session.dev_account().is_some() {
            let account = session.dev_account().ok_or(PortalError::SignIn)?;
            crate::wallet::dev_submit(&session.service, account, &call).await?;
        } else {
            last = Some(submit(session, headers, call, back).await?);
        }
    }
    last.ok_or_else(|| PortalError::Invalid("Nothing to send.".into()))
}

/// Revokes one consent.
pub async fn revoke(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    patient(&session)?;
    let provider = principal_field(form.get("provider"), "The provider").map_err(PortalError::Invalid)?;
    let t: DataType = form.get("data_type").parse().map_err(|_| PortalError::Invalid("Unknown data type.".into()))?;
    submit(&session, &headers, ContractCall::revoke_consent(&provider, t), "/patient").await
}

/// Grants a record access level.
pub async fn grant_access(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    patient(&session)?;
    let provider = principal_field(form.get("provider"), "The provider").map_err(PortalError::Invalid)?;
    let level: AccessLevel =
        form.get("level").parse().map_err(|_| PortalError::Invalid("Choose read or write.".into()))?;
    let duration = duration_of(&form).map_err(PortalError::Invalid)?;
    let call = ContractCall::grant_provider_access(&provider, level, duration)
        .map_err(|e| PortalError::Invalid(e.to_string()))?;
    submit(&session, &headers, call, "/patient").await
}

/// Revokes a provider's record access.
pub async fn revoke_access(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    patient(&session)?;
    let provider = principal_field(form.get("provider"), "The provider").map_err(PortalError::Invalid)?;
    submit(&session, &headers, ContractCall::revoke_provider_access(&provider), "/patient").await
}

/// Saves the emergency settings (`update-patient-preferences`, keeping the
/// chain's contact and physician).
pub async fn emergency_settings(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let me = patient(&session)?;
    let s = session.service.clone();
    let current = tokio::task::spawn_blocking(move || s.chain().patient(&me))
        .await
        .map_err(PortalError::internal)?
        .map_err(PortalError::internal)?;
    let current = current.ok_or_else(|| PortalError::Invalid("Register as a patient first.".into()))?;
    use medanchor_contracts::{ClarityValue, ContractName};
    let opt = |p: &Option<String>| match p.as_deref().and_then(|s| s.parse::<Principal>().ok()) {
        Some(p) => ClarityValue::some(ClarityValue::Principal(p)),
        None => ClarityValue::none(),
    };
    let call = ContractCall {
        contract: ContractName::PatientConsent,
        function: "update-patient-preferences",
        args: vec![
            opt(&current.emergency_contact),
            opt(&current.primary_physician),
            ClarityValue::Bool(form.has("mental_health", "true")),
            ClarityValue::Bool(form.has("genetic", "true")),
        ],
    };
    submit(&session, &headers, call, "/patient").await
}

/// The access history filters.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    who: Option<String>,
    action: Option<String>,
    format: Option<String>,
}

/// Who accessed my data: every disclosure from the audit log, filtered;
/// CSV export of the same rows.
pub async fn history(session: Session, Query(q): Query<HistoryQuery>) -> Result<Response, PortalError> {
    let me = patient(&session)?;
    let mut params = HashMap::new();
    for (k, v) in [("from", &q.from), ("to", &q.to)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            params.insert(k.to_string(), v.to_string());
        }
    }
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let request = match medanchor_service::disclosures::ReportRequest::parse(&params, &me, now_s) {
        Ok(r) => r,
        Err(e) => return Err(PortalError::Invalid(format!("{e} (dates are YYYY-MM-DD)"))),
    };
    let report = session.service.disclosures(&session.caller, request).await?;
    let who = q.who.clone().unwrap_or_default();
    let action = q.action.clone().unwrap_or_default();
    let rows: Vec<_> = report
        .rows
        .into_iter()
        .filter(|r| who.is_empty() || r.recipient.contains(who.trim()))
        .filter(|r| action.is_empty() || r.action == action)
        .collect();
    if q.format.as_deref() == Some("csv") {
        let mut r = medanchor_service::disclosures::to_csv(&rows).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        r.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"access-history.csv\""),
        );
        return Ok(r);
    }
    let mut actions: Vec<String> =
        vec!["record.read".into(), "record.list".into(), "record.create".into(), "share.redeem".into()];
    actions.sort();
    let csv = format!(
        "/patient/history?format=csv&from={}&to={}&who={}&action={}",
        super::urlencode(q.from.as_deref().unwrap_or("")),
        super::urlencode(q.to.as_deref().unwrap_or("")),
        super::urlencode(&who),
        super::urlencode(&action)
    );
    let body = html! {
        form.filters method="get" action="/patient/history" {
            div.field { label for="h-from" { "From" } input #h-from type="date" name="from" value=(q.from.as_deref().unwrap_or("")); }
            div.field { label for="h-to" { "To" } input #h-to type="date" name="to" value=(q.to.as_deref().unwrap_or("")); }
            div.field { label for="h-who" { "Who (address contains)" } input #h-who name="who" value=(who); }
            div.field {
                label for="h-action" { "Action" }
                select #h-action name="action" {
                    option value="" { "Any" }
                    @for a in &actions { option value=(a) selected[*a == action] { (a) } }
                }
            }
            button type="submit" { "Filter" }
        }
        p { a.button href=(csv) hx-boost="false" download { "Export these rows (CSV)" } }
        @if rows.is_empty() {
            (empty("No access to your data in this period.", None))
        } @else {
            div.scroll { table.history {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Role" } th scope="col" { "What" } th scope="col" { "Why allowed" } } }
                tbody { @for r in &rows { tr {
                    td { (r.date.get(..16).unwrap_or(&r.date).replace('T', " ")) }
                    td { code title=(r.recipient) { (view::short(&r.recipient)) } }
                    td { (r.recipient_role) }
                    td { (r.description) }
                    td { (r.purpose) }
                } } }
            } }
        }
    };
    let help = html! {
        p { "Every time someone reads, lists or writes your records, the node writes it to a tamper-evident audit log whose root is anchored on the chain. This page shows those entries for you; each line can be proven with an inclusion proof." }
    };
    Ok(view::render(&session, Page { title: "Access history", current: "/patient/history", help, body }, None)
        .into_response())
}

/// Share codes: the active count, the list, a new code with its QR.
pub async fn shares(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    shares_page(&session, done.done.as_deref(), None, None, &Form::default()).await
}

async fn shares_page(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    created: Option<Markup>,
    typed: &Form,
) -> Result<Markup, PortalError> {
    patient(session)?;
    let list = session.service.list_shares(&session.caller)?;
    let body = html! {
        (notice(error))
        @if let Some(c) = created { (c) }
        p.stat { strong #active-shares { (list.active) } " of at most " (list.max_active) " codes active" }
        section.card aria-labelledby="new-h" {
            h2 #new-h { "New share code" }
            form method="post" action="/patient/shares" {
                (csrf_field(session))
                fieldset.field {
                    legend { "What it shows" }
                    @for (name, words) in data_type_choices() {
                        div.check {
                            input type="checkbox" id=(format!("s-{name}")) name="data_type" value=(name) checked[typed.has("data_type", name)];
                            label for=(format!("s-{name}")) { (words) }
                        }
                    }
                }
                (view::select_field("duration", "For how long", &[("1h", "1 hour"), ("6h", "6 hours"), ("24h", "24 hours"), ("7d", "7 days")], if typed.get("duration").is_empty() { "24h" } else { typed.get("duration") }))
                div.check { input type="checkbox" id="s-single" name="single_use" value="true" checked[typed.has("single_use", "true")]; label for="s-single" { "One use only" } }
                div.check { input type="checkbox" id="s-qr" name="qr" value="true" checked[typed.0.is_empty() || typed.has("qr", "true")]; label for="s-qr" { "Also make a QR code" } }
                button type="submit" { "Create code" }
            }
        }
        section.card aria-labelledby="list-h" {
            h2 #list-h { "Your codes" }
            @if list.items.is_empty() { (empty("No codes yet.", None)) } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Created" } th scope="col" { "Covers" } th scope="col" { "Expires" } th scope="col" { "Uses" } th scope="col" { "State" } th scope="col" { span.vh { "Action" } } } }
                    tbody { @for sh in &list.items {
                        @let state = format!("{:?}", sh.state).to_lowercase();
                        tr {
                            td { (view::when(sh.created_ms)) }
                            td { (sh.data_types.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")) }
                            td { (view::when(sh.expires_ms)) }
                            td { (sh.uses) }
                            td { (badge(&state, if state == "active" { "ok" } else { "muted" })) }
                            td { @if state == "active" {
                                form method="post" action=(format!("/patient/shares/{}/revoke", sh.id)) {
                                    (csrf_field(session))
                                    button.danger type="submit" { "Revoke" }
                                }
                            } }
                        }
                    } }
                } }
            }
        }
    };
    let help = html! {
        p { "A share code lets a provider read the data types you choose, for the time you choose, even without standing consent. Give the code (or show the QR) only to the person who should use it; it is shown once." }
        p { "Wrong guesses are counted: after too many, your codes lock until you unlock them, and you are notified." }
    };
    Ok(view::render(session, Page { title: "Share", current: "/patient/shares", help, body }, toast))
}

/// Creates a share code and shows it once, with its QR.
pub async fn create_share(session: Session, form: Form) -> Result<Markup, PortalError> {
    patient(&session)?;
    let types: Vec<DataType> = form.all("data_type").iter().filter_map(|t| t.parse().ok()).collect();
    if types.is_empty() {
        return shares_page(&session, None, Some("Choose at least one data type."), None, &form).await;
    }
    let duration = match serde_json::from_value(Value::String(form.get("duration").into())) {
        Ok(d) => d,
        Err(_) => return shares_page(&session, None, Some("Choose how long the code lasts."), None, &form).await,
    };
    let new = medanchor_service::share::NewShare {
        data_types: types,
        duration,
        single_use: form.has("single_use", "true"),
        max_uses: None,
        link: form.has("qr", "true").then_some(false),
    };
    let created = match session.service.create_share(&session.caller, new).await {
        Ok(c) => c,
        Err(e) => return shares_page(&session, None, Some(&PortalError::from(e).message()), None, &form).await,
    };
    // The same QR (level M, quiet zone) the API hands out.
    let qr = match &created.link {
        Some(l) => Some(medanchor_service::share::qr::svg(&l.encode()).map_err(PortalError::internal)?),
        None => None,
    };
    let shown = html! {
        section.card.created aria-labelledby="code-h" {
            h2 #code-h { "Your code" }
            p.code #share-code { (created.created.code) }
            p { "For " (view::short(&created.created.share.patient)) "'s data; it is shown only now." }
            @if let Some(svg) = qr {
                figure.qr {
                    div role="img" aria-label="QR code of the share link" { (view::trusted(svg)) }
                    figcaption { "Let the provider scan this with the portal's scanner." }
                }
            }
        }
    };
    shares_page(&session, None, None, Some(shown), &Form::default()).await
}

/// Revokes a share code.
pub async fn revoke_share(
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    patient(&session)?;
    session.service.revoke_share(&session.caller, &id).await?;
    Ok(see_other(&headers, "/patient/shares", "share-revoked"))
}

/// The profile, edited with its completeness.
pub async fn profile(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    let me = patient(&session)?;
    let read = session.service.read_profile(&session.caller, &me).await?;
    profile_page(&session, done.done.as_deref(), None, &read.content, read.version, read.completeness).await
}

async fn profile_page(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    values: &Value,
    version: u64,
    completeness: Option<(u8, Vec<&'static str>)>,
) -> Result<Markup, PortalError> {
    let schema = medanchor_clinical::profile::schema();
    let body = html! {
        (notice(error))
        @if let Some((pct, missing)) = &completeness {
            div.field {
                label for="completeness" { "Profile " (pct) "% complete" }
                progress #completeness max="100" value=(pct) { (pct) "%" }
                @if !missing.is_empty() { p.hint { "Missing: " (missing.join(", ").replace('_', " ")) } }
            }
        }
        form method="post" action="/patient/profile" {
            (csrf_field(session))
            input type="hidden" name="_version" value=(version);
            (super::records::template_inputs(&schema, values))
            button type="submit" { "Save profile" }
        }
    };
    let help = html! {
        p { "Your profile is encrypted like a record. Each part is released under the consent for its data type: your name and contacts under basic information, allergies and conditions under medical history, medications under treatment plans, insurance under financial." }
        p { "Emergency responders see only allergies, medications, blood type, alerts and emergency contacts, and only during an override." }
    };
    Ok(view::render(session, Page { title: "Profile", current: "/patient/profile", help, body }, toast))
}

/// Saves the profile (a new version; a concurrent edit is refused, not overwritten).
pub async fn save_profile(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let me = patient(&session)?;
    let schema = medanchor_clinical::profile::schema();
    let content = super::records::template_content(&schema, &form);
    let expected: u64 = form.get("_version").parse().unwrap_or(0);
    let bytes = serde_json::to_vec(&content).map_err(PortalError::internal)?;
    match session.service.write_profile(&session.caller, &me, expected, &bytes).await {
        Ok(_) => Ok(see_other(&headers, "/patient/profile", "profile-saved")),
        Err(e) => {
            let msg = PortalError::from(e).message();
            Ok(profile_page(&session, None, Some(&msg), &content, expected, None).await?.into_response())
        }
    }
}

/// My records (each read audited like any other).
pub async fn records(session: Session) -> Result<Markup, PortalError> {
    let me = patient(&session)?;
    let body = super::provider::records_list(&session, &me, &HashMap::new()).await?;
    let help = html! { p { "Every record providers wrote about you, newest first. Open one to read it, see its versions and its attachments." } };
    Ok(view::render(&session, Page { title: "Records", current: "/patient/records", help, body }, None))
}

/// Exports: what can be downloaded.
pub async fn exports(session: Session) -> Result<Markup, PortalError> {
    patient(&session)?;
    let body = html! {
        form method="get" action="/patient/exports/download" hx-boost="false" {
            (view::select_field("format", "Format", &[("pdf", "PDF (signed, for clinicians)"), ("fhir", "FHIR R4 bundle (JSON)"), ("json", "JSON"), ("csv", "CSV (zip)")], "pdf"))
            div.field { label for="e-from" { "From (optional)" } input #e-from type="date" name="from"; }
            div.field { label for="e-to" { "To (optional)" } input #e-to type="date" name="to"; }
            button type="submit" { "Download" }
        }
    };
    let help = html! { p { "An export holds your records, decrypted, in the format you choose. It is signed by this node and its hash is anchored, so anyone can check it was not changed. Keep it safe: it is your medical data." } };
    Ok(view::render(&session, Page { title: "Exports", current: "/patient/exports", help, body }, None))
}

/// `?format=&from=&to=`.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Downloads an export.
pub async fn download_export(session: Session, Query(q): Query<ExportQuery>) -> Result<Response, PortalError> {
    let me = patient(&session)?;
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let req = medanchor_service::exports::ExportRequest::parse(
        q.format.as_deref(),
        nonempty(&q.from).as_deref(),
        nonempty(&q.to).as_deref(),
        None,
    )?;
    let exported = session.service.export(&session.caller, &me, req).await?;
    let name = format!("medanchor-export-{}.{}", &exported.id[..8.min(exported.id.len())], exported.format.extension());
    let mut r = exported.bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(exported.format.media_type()));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).map_err(PortalError::internal)?,
    );
    Ok(r)
}

/// Notification settings.
pub async fn notifications(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    let me = patient(&session)?;
    let prefs = session.service.preferences(&session.caller, &me).await?;
    let digest = format!("{:?}", prefs.digest).to_lowercase();
    notifications_page(&session, done.done.as_deref(), None, prefs.email.as_deref().unwrap_or(""), &digest)
}

fn notifications_page(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    email: &str,
    digest: &str,
) -> Result<Markup, PortalError> {
    let body = html! {
        (notice(error))
        form method="post" action="/patient/notifications" {
            (csrf_field(session))
            div.field {
                label for="n-email" { "E-mail address (empty: no e-mail)" }
                input #n-email type="email" name="email" value=(email) autocomplete="email";
            }
            (view::select_field("digest", "How often", &[("immediate", "At once, each event"), ("hourly", "One message an hour"), ("daily", "One message a day")], digest))
            button type="submit" { "Save" }
        }
    };
    let help = html! { p { "You are told when someone reads your records, when consent is about to end, when a share code is locked, and at once — whatever you choose here — when an emergency override opens your records. Messages never contain medical data." } };
    Ok(view::render(session, Page { title: "Notifications", current: "/patient/notifications", help, body }, toast))
}

/// Saves notification settings.
pub async fn save_notifications(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    let me = patient(&session)?;
    let digest = match serde_json::from_value(Value::String(form.get("digest").into())) {
        Ok(d) => d,
        Err(_) => {
            return Ok(notifications_page(
                &session,
                None,
                Some("Choose how often."),
                form.get("email"),
                form.get("digest"),
            )?
            .into_response())
        }
    };
    let email = Some(form.get("email").to_string()).filter(|e| !e.is_empty());
    let prefs = medanchor_service::notify::Preferences { email, digest };
    match session.service.set_preferences(&session.caller, &me, prefs).await {
        Ok(_) => Ok(see_other(&headers, "/patient/notifications", "prefs-saved")),
        Err(e) => Ok(notifications_page(
            &session,
            None,
            Some(&PortalError::from(e).message()),
            form.get("email"),
            form.get("digest"),
        )?
        .into_response()),
    }
}
