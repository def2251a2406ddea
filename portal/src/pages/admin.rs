//! Oversight pages: analytics with server-drawn charts, anomaly flags,
//! the credential verification queue, backups and jobs, and registering
//! providers on the chain (the contract owner).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{html, Markup};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::ContractCall;

use super::{principal_field, see_other, Done};
use crate::charts;
use crate::error::PortalError;
use crate::session::{Form, Session};
use crate::view::{self, badge, csrf_field, empty, notice, Page};

const OVERSIGHT: &[&str] = &["auditor", "admin"];

/// The analytics dashboard.
pub async fn analytics(session: Session, Query(q): Query<HashMap<String, String>>) -> Result<Markup, PortalError> {
    session.require_role(OVERSIGHT)?;
    let days: u32 = q.get("days").and_then(|d| d.parse().ok()).filter(|d| [7, 30, 90].contains(d)).unwrap_or(30);
    let d = session.service.dashboard(&session.caller, days).await?;
    let labels: Vec<String> = (0..d.days as u64)
        .map(|i| {
            let day = medanchor_service::analytics::day_of_date(&d.from).unwrap_or(0) + i as u32;
            medanchor_service::analytics::date_of_day(day)
        })
        .collect();
    let series: Vec<(String, Vec<u64>)> =
        d.series.iter().take(4).map(|s| (s.metric.clone(), s.per_day.clone())).collect();
    let by_type: Vec<(String, u64)> =
        d.by_record_type.iter().map(|c| (format!("{} {}", c.metric, c.key), c.count)).collect();
    let by_dx: Vec<(String, u64)> =
        d.by_diagnosis.iter().map(|c| (format!("{} {}", c.metric, c.key), c.count)).collect();
    let denied: Vec<(String, u64)> = d.denied_by_action.iter().map(|c| (c.key.clone(), c.count)).collect();
    let body = html! {
        nav aria-label="Period" { p { "Period: "
            @for n in [7u32, 30, 90] { a href=(format!("/admin/analytics?days={n}")) aria-current=[(n == days).then_some("page")] { (n) " days" } " " }
        } }
        p { (d.from) " to " (d.to) " · " a href="/admin/flags" { (d.open_alerts) " open alerts" } }
        section.card { h2 { "Activity per day" } (view::trusted(charts::lines("Activity per day", &labels, &series))) }
        section.card { h2 { "By record type" } (view::trusted(charts::bars("By record type", &by_type))) }
        section.card { h2 { "By diagnosis (ICD-10 category)" }
            (view::trusted(charts::bars("By diagnosis", &by_dx)))
            p.small { (d.diagnoses_suppressed) " categories with fewer than " (d.min_cell) " records are left out to protect patients." } }
        section.card { h2 { "Refusals by action" } (view::trusted(charts::bars("Refusals by action", &denied))) }
        section.card { h2 { "Week over week" }
            table { thead { tr { th scope="col" { "Metric" } th scope="col" { "This week" } } }
                tbody { @for t in &d.trends { tr { td { (t.metric) } td { (t.this_week) } } } } } }
    };
    let help = html! { p { "Counts come from the audit log as it is written; no patient data is shown, and small diagnosis groups are suppressed. Reading this page is itself audited." } };
    Ok(view::render(
        &session,
        Page { title: "Analytics", current: "/admin/analytics", help, body },
        q.get("done").map(String::as_str),
    ))
}

/// Anomaly and security flags.
pub async fn flags(session: Session, Query(q): Query<HashMap<String, String>>) -> Result<Markup, PortalError> {
    session.require_role(OVERSIGHT)?;
    let all = q.get("all").is_some_and(|a| a == "1");
    let flags = session.service.flags(&session.caller, 30, all).await?;
    let admin = session.role == "admin";
    let body = html! {
        p { @if all { a href="/admin/flags" { "Show open flags only" } } @else { a href="/admin/flags?all=1" { "Show acknowledged flags too" } } }
        @if flags.is_empty() { (empty("No flags in the last 30 days.", None)) }
        @for f in &flags {
            section.card.flag {
                h2 { (f.rule) " " (badge(&f.kind, if f.kind == "security" { "bad" } else { "warn" })) }
                p { (f.explanation) }
                p.small { "About " code { (view::short(&f.subject)) } " on " (f.day) " · " (f.occurrences) " entries · last " (view::when(f.last_ms)) }
                @if admin && !all {
                    form method="post" action=(format!("/admin/flags/{}/acknowledge", f.id)) {
                        (csrf_field(&session))
                        div.field { label for=(format!("note-{}", f.id)) { "Note (optional)" } input id=(format!("note-{}", f.id)) name="note" maxlength="500"; }
                        button type="submit" { "Acknowledge" }
                    }
                }
            }
        }
    };
    let help = html! { p { "Rules compare each provider with their own usual activity (patients a day, off-hours access, emergency overrides) and watch for attacks (repeated refusals, failed sign-ins, share lock-outs, tampering). Administrators acknowledge a flag once it is looked into; the acknowledgement is audited." } };
    Ok(view::render(
        &session,
        Page { title: "Flags", current: "/admin/flags", help, body },
        q.get("done").map(String::as_str),
    ))
}

/// Acknowledges a flag (admins).
pub async fn acknowledge(
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["admin"])?;
    let note = Some(form.get("note")).filter(|n| !n.is_empty());
    session.service.acknowledge_flag(&session.caller, &id, note).await?;
    Ok(see_other(&headers, "/admin/flags", "flag-acknowledged"))
}

/// Credentials waiting for a decision.
pub async fn credentials(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.require_role(&["admin"])?;
    let pending = session.service.credentials_by_state(&session.caller, "pending", None, 100)?;
    let body = html! {
        @if pending.is_empty() { (empty("No credentials wait for verification.", None)) }
        @for c in &pending {
            section.card {
                h2 { (c.document.name) " " (badge("pending", "warn")) }
                p { code { (view::short(&c.provider)) } " · version " (c.version) " · " (view::when(c.updated_ms)) }
                details { summary { "Document" } pre.wrap { (serde_json::to_string_pretty(&c.document).unwrap_or_default()) } }
                form.inline method="post" action=(format!("/admin/credentials/{}/decide", c.provider)) {
                        (csrf_field(&session))
                        input type="hidden" name="version" value=(c.version);
                        input type="hidden" name="decision" value="verify";
                        button type="submit" { "Verify" }
                    }
                    form.inline method="post" action=(format!("/admin/credentials/{}/decide", c.provider)) {
                        (csrf_field(&session))
                        input type="hidden" name="version" value=(c.version);
                        input type="hidden" name="decision" value="reject";
                        div.field { label for=(format!("why-{}", c.provider)) { "Reason" } input id=(format!("why-{}", c.provider)) name="reason" required; }
                        button.danger type="submit" { "Reject" }
                    }
            }
        }
    };
    let help = html! { p { "Verifying a provider's credentials commits the document's hash on the chain; rejecting tells the provider why. Expired licences leave the verified state by themselves." } };
    Ok(view::render(
        &session,
        Page { title: "Credential verification", current: "/admin/credentials", help, body },
        done.done.as_deref(),
    ))
}

/// Verifies or rejects a credentials version (admins).
pub async fn decide(
    session: Session,
    headers: HeaderMap,
    Path(provider): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["admin"])?;
    let provider = principal_field(&provider, "The provider").map_err(PortalError::Invalid)?;
    let version: u64 = form.get("version").parse().map_err(|_| PortalError::Invalid("Which version?".into()))?;
    let decision = match form.get("decision") {
        "verify" => medanchor_service::credentials::Decision::Verify,
        "reject" if !form.get("reason").is_empty() => {
            medanchor_service::credentials::Decision::Reject(form.get("reason").into())
        }
        _ => return Err(PortalError::Invalid("Give a reason to reject.".into())),
    };
    session.service.decide_credentials(&session.caller, &provider, version, decision).await?;
    Ok(see_other(&headers, "/admin/credentials", "credentials-decided"))
}

/// Backups and jobs (admins).
pub async fn operations(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.require_role(&["admin"])?;
    let backups = session.service.backup_status(&session.caller).await.ok();
    let jobs = session.service.jobs(&session.caller).await?;
    let body = html! {
        section.card aria-labelledby="jobs-h" {
            h2 #jobs-h { "Jobs" }
            div.scroll { table {
                thead { tr { th scope="col" { "Job" } th scope="col" { "Every" } th scope="col" { "Last run" } th scope="col" { "Outcome" } th scope="col" { "Runs" } th scope="col" { "Failing" } } }
                tbody { @for j in &jobs { tr {
                    td { (j.name) } td { (j.every_s) " s" }
                    td { (j.last_start_ms.map(view::when).unwrap_or_else(|| "never".into())) }
                    td { @match j.last_outcome.as_deref() { Some("ok") => { (badge("ok", "ok")) }, Some(o) => { (badge(o, "bad")) " " (j.last_detail.as_deref().unwrap_or("")) }, None => { "—" } } }
                    td { (j.runs) } td { (j.failing) }
                } } }
            } }
        }
        section.card aria-labelledby="bk-h" {
            h2 #bk-h { "Backups" }
            @match &backups {
                None => { (empty("Backups are not configured on this node.", None)) }
                Some(b) => {
                    p { "Every " (b.every_secs) " s to " (b.targets.join(", ")) "; kept " (b.retain_days) " days." }
                    @if !b.alerts.is_empty() { (notice(Some(&format!("{} backup alert(s): {}", b.alerts.len(), b.alerts.iter().map(|a| a.detail.clone()).collect::<Vec<_>>().join("; "))))) }
                    @if b.backups.is_empty() { (empty("No backups yet.", None)) } @else {
                        table { thead { tr { th scope="col" { "Backup" } th scope="col" { "Made" } th scope="col" { "Size" } th scope="col" { "Verified" } } }
                            tbody { @for k in b.backups.iter().rev().take(10) { tr {
                                td { code { (k.id) } } td { (view::when(k.created_ms)) } td { (k.bytes) " bytes" }
                                td { @if let Some(v) = k.verified_ms { (badge("verified", "ok")) " " (view::when(v)) } @else { (badge("not verified", "warn")) } }
                            } } } }
                    }
                    form method="post" action="/admin/operations" { (csrf_field(&session)) button type="submit" { "Back up now" } }
                }
            }
        }
    };
    let help = html! { p { "Jobs run on a restart-safe schedule (a missed run happens once at start). A failing job or backup is an alert here, in /metrics and in the flags." } };
    Ok(view::render(
        &session,
        Page { title: "Backups and jobs", current: "/admin/operations", help, body },
        done.done.as_deref(),
    ))
}

/// Runs a backup now (admins).
pub async fn backup_now(session: Session, headers: HeaderMap) -> Result<Response, PortalError> {
    session.require_role(&["admin"])?;
    session.service.run_backup(&session.caller, medanchor_service::backups::BackupJob::Create).await?;
    Ok(see_other(&headers, "/admin/operations", "backup-started"))
}

/// Registering providers (the contract owner signs `register-provider`).
pub async fn providers(session: Session, Query(done): Query<Done>) -> Result<Markup, PortalError> {
    session.require_role(&["admin"])?;
    providers_page(&session, done.done.as_deref(), None, &Form::default())
}

fn providers_page(
    session: &Session,
    toast: Option<&str>,
    error: Option<&str>,
    typed: &Form,
) -> Result<Markup, PortalError> {
    let body = html! {
        (notice(error))
        form method="post" action="/admin/providers" {
            (csrf_field(session))
            (view::text_field("provider", "Provider's Stacks address", typed.get("provider"), Some("Registering puts the address in the records contract; the provider then submits credentials for verification."), true))
            button type="submit" { "Sign and register" }
        }
    };
    let help =
        html! { p { "Only the contract's owner can register providers; the transaction is signed by your wallet." } };
    Ok(view::render(session, Page { title: "Providers", current: "/admin/providers", help, body }, toast))
}

/// Registers a provider on the chain.
pub async fn register_provider(session: Session, headers: HeaderMap, form: Form) -> Result<Response, PortalError> {
    session.require_role(&["admin"])?;
    let provider = match principal_field(form.get("provider"), "The provider's address") {
        Ok(p) => p,
        Err(e) => {
            return Ok(axum::response::IntoResponse::into_response(providers_page(&session, None, Some(&e), &form)?))
        }
    };
    let call = ContractCall {
        contract: ContractName::RecordManagement,
        function: "register-provider",
        // No credential yet: a zero commitment until one is verified.
        args: vec![ClarityValue::Principal(provider), ClarityValue::Buffer(vec![0; 32])],
    };
    super::submit(&session, &headers, call, "/admin/providers").await
}
