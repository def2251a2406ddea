//! The pages, by audience. Each handler: read the session (and the
//! form), call the service, render. Thin on purpose: what may be shown is
//! the service's decision.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use medanchor_wallet::ContractCall;
use serde::Deserialize;

use crate::error::PortalError;
use crate::session::Session;
use crate::State;

pub mod admin;
pub mod audit;
pub mod patient;
pub mod provider;
pub mod records;
pub mod requests;
pub mod sign_in;
pub mod tx;

/// Every page route.
pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(sign_in::home))
        .route("/help", get(sign_in::help))
        .route("/welcome", get(sign_in::welcome).post(sign_in::register_patient))
        .route("/sign-in", get(sign_in::page))
        .route("/sign-in/dev", post(sign_in::dev))
        .route("/sign-in/challenge", post(sign_in::challenge))
        .route("/sign-in/verify", post(sign_in::verify))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/tx/{txid}", get(tx::page))
        .route("/tx/{txid}/status", get(tx::status))
        .route("/patient", get(patient::dashboard))
        .route("/patient/consents", post(patient::grant))
        .route("/patient/consents/revoke", post(patient::revoke))
        .route("/patient/access", post(patient::grant_access))
        .route("/patient/access/revoke", post(patient::revoke_access))
        .route("/patient/emergency", post(patient::emergency_settings))
        .route("/patient/history", get(patient::history))
        .route("/patient/shares", get(patient::shares).post(patient::create_share))
        .route("/patient/shares/{id}/revoke", post(patient::revoke_share))
        .route("/patient/profile", get(patient::profile).post(patient::save_profile))
        .route("/patient/records", get(patient::records))
        .route("/patient/exports", get(patient::exports))
        .route("/patient/exports/download", get(patient::download_export))
        .route("/patient/notifications", get(patient::notifications).post(patient::save_notifications))
        .route("/patient/requests", get(requests::patient_list))
        .route("/patient/requests/{id}/approve", post(requests::approve))
        .route("/patient/requests/{id}/decline", post(requests::decline))
        .route("/patient/requests/{id}/signed", post(requests::signed))
        .route("/provider", get(provider::search))
        .route("/provider/patients/{patient}", get(provider::patient))
        .route("/provider/patients/{patient}/new", get(provider::new_record).post(provider::create_record))
        .route("/provider/patients/{patient}/request", post(requests::create))
        .route("/provider/requests", get(requests::provider_list))
        .route("/provider/redeem", get(provider::redeem_page).post(provider::redeem))
        .route("/provider/credentials", get(provider::credentials).post(provider::save_credentials))
        .route("/records/{id}", get(records::view))
        .route("/records/{id}/edit", get(records::edit).post(records::save))
        .route("/records/{id}/finalize", post(records::finalize))
        .route("/records/{id}/unlock", post(records::unlock))
        .route("/records/{id}/attachments/{attachment}", get(records::attachment))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/log", get(audit::log))
        .route("/audit/log/{index}", get(audit::entry))
        .route("/admin/analytics", get(admin::analytics))
        .route("/admin/flags", get(admin::flags))
        .route("/admin/flags/{id}/acknowledge", post(admin::acknowledge))
        .route("/admin/credentials", get(admin::credentials))
        .route("/admin/credentials/{provider}/decide", post(admin::decide))
        .route("/admin/operations", get(admin::operations).post(admin::backup_now))
        .route("/admin/providers", get(admin::providers).post(admin::register_provider))
}

/// The `?done=` of a page (a toast) and other small query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    /// The toast to show.
    pub done: Option<String>,
}

/// After a successful POST: to `to`, with a toast. htmx gets
/// `HX-Location` (an in-page navigation); a plain form gets 303.
pub fn see_other(headers: &HeaderMap, to: &str, done: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let target = if done.is_empty() { to.to_string() } else { format!("{to}{sep}done={done}") };
    let value = HeaderValue::from_str(&target).unwrap_or_else(|_| HeaderValue::from_static("/"));
    if headers.contains_key("hx-request") {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert("hx-redirect", value);
        return r;
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert("location", value);
    r
}

/// A local path to come back to (anything else: the role's home).
pub fn local_path(p: &str, role: &str) -> String {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && p.len() < 200
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_?=&.".contains(&b));
    if ok {
        p.to_string()
    } else {
        crate::view::home_of(role).to_string()
    }
}

/// Sends a contract call signed by the session's wallet, then shows it
/// until mined: the development wallet signs here; otherwise the page
/// hands the call to the browser's wallet.
pub async fn submit(
    session: &Session,
    headers: &HeaderMap,
    call: ContractCall,
    back: &str,
) -> Result<Response, PortalError> {
    let back = local_path(back, session.role);
    if let Some(account) = session.dev_account() {
        let txid = crate::wallet::dev_submit(&session.service, account, &call).await?;
        return Ok(see_other(headers, &format!("/tx/{txid}?back={}", urlencode(&back)), "tx-sent"));
    }
    Ok(tx::sign_in_wallet(session, &[call], &back, None).into_response())
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Parses a principal typed into a form.
pub fn principal_field(s: &str, what: &str) -> Result<medanchor_contracts::principal::Principal, String> {
    s.trim().parse().map_err(|_| format!("{what} must be a Stacks address (ST…)"))
}

/// The data types, for checkboxes: (name, words).
pub fn data_type_choices() -> Vec<(&'static str, &'static str)> {
    use medanchor_contracts::types::DataType as D;
    D::ALL
        .iter()
        .map(|d| {
            let words = match d {
                D::AllStandard => "All standard types (not mental health or genetic)",
                D::BasicInfo => "Basic information",
                D::MedicalHistory => "Medical history",
                D::LabResults => "Lab results",
                D::TreatmentPlans => "Treatment plans",
                D::MentalHealth => "Mental health (enhanced protection)",
                D::Genetic => "Genetic (enhanced protection)",
                D::Financial => "Financial",
                D::EmergencyContacts => "Emergency contacts",
            };
            (d.name(), words)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_a_transaction() {
        for (given, kept) in [
            ("/patient", true),
            ("/patient/requests?done=x", true),
            ("//evil.example/x", false),
            ("https://evil.example/", false),
            ("/\\evil", false),
            ("/a b", false),
            ("/javascript:alert(1)", false),
            ("", false),
        ] {
            let got = local_path(given, "patient");
            assert_eq!(got == given, kept, "{given:?} → {got:?}");
            if !kept {
                assert_eq!(got, "/patient", "{given:?}");
            }
        }
    }
}
