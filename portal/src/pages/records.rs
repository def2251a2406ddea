//! A record's page (its content, versions with the changed fields,
//! lifecycle badges and the buttons the chain allows, attachments with
//! previews and uploads), and the form a template describes — used for
//! new records and for the patient's profile.

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use medanchor_clinical::template::{FieldKind, Template};
use medanchor_contracts::RecordId;
use medanchor_service::authz::Operation;
use medanchor_service::records::Lifecycle;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::see_other;
use crate::error::PortalError;
use crate::session::{Form, Session};
use crate::view::{self, badge, csrf_field, Page};

/// The rows a list field offers beyond those already filled.
const SPARE_ROWS: usize = 2;

/// The sub-fields of a list field's entries: (name, label).
fn entry_fields(kind: &FieldKind) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match kind {
        FieldKind::Diagnoses { .. } => {
            &[("code", "ICD-10-CM code"), ("description", "Description"), ("primary", "Primary (yes/no)")]
        }
        FieldKind::Medications { .. } => &[
            ("name", "Name"),
            ("dose.value", "Dose"),
            ("dose.unit", "Dose unit (e.g. mg)"),
            ("route", "Route (e.g. oral)"),
            ("frequency", "Frequency (e.g. daily)"),
        ],
        FieldKind::Allergies { .. } => {
            &[("substance", "Substance"), ("reaction", "Reaction"), ("severity", "Severity (mild, moderate, severe)")]
        }
        FieldKind::LabResults { .. } => &[
            ("test", "Test"),
            ("loinc", "LOINC code"),
            ("value", "Value"),
            ("unit", "Unit"),
            ("reference_range", "Reference range"),
            ("flag", "Flag"),
        ],
        FieldKind::Contacts { .. } => {
            &[("name", "Name"), ("relationship", "Relationship"), ("phone", "Phone"), ("email", "E-mail")]
        }
        FieldKind::Tags { .. } => &[("", "Tag")],
        _ => return None,
    })
}

fn json_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => "no".into(),
        _ => String::new(),
    }
}

fn sub_value<'a>(entry: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(entry);
    }
    path.split('.').try_fold(entry, |v, k| v.get(k))
}

/// The inputs of `template`'s fields, filled with `values` (what was
/// typed, or what is stored).
pub fn template_inputs(template: &Template, values: &Value) -> Markup {
    html! {
        @for f in &template.fields {
            @let id = format!("t-{}", f.name);
            @let v = values.get(&f.name);
            @match &f.kind {
                FieldKind::Boolean => {
                    div.field.check {
                        input type="checkbox" id=(id) name=(f.name) value="true" checked[v == Some(&Value::Bool(true))];
                        label for=(id) { (f.label) }
                    }
                }
                FieldKind::Choice { options } => {
                    div.field {
                        label for=(id) { (f.label) @if f.required { " *" } }
                        select id=(id) name=(f.name) {
                            option value="" { "—" }
                            @for o in options { option value=(o) selected[v.and_then(Value::as_str) == Some(o.as_str())] { (o) } }
                        }
                    }
                }
                FieldKind::Measurement { .. } => {
                    fieldset.field {
                        legend { (f.label) @if f.required { " *" } }
                        label for=(format!("{id}-value")) { "Value" }
                        input id=(format!("{id}-value")) name=(format!("{}.value", f.name)) inputmode="decimal" value=(json_text(v.and_then(|v| v.get("value"))));
                        label for=(format!("{id}-unit")) { "Unit" }
                        input id=(format!("{id}-unit")) name=(format!("{}.unit", f.name)) value=(json_text(v.and_then(|v| v.get("unit"))));
                    }
                }
                kind if entry_fields(kind).is_some() => {
                    @let subs = entry_fields(kind).unwrap_or(&[]);
                    @let filled = v.and_then(Value::as_array).cloned().unwrap_or_default();
                    fieldset.field.list {
                        legend { (f.label) @if f.required { " *" } }
                        @for i in 0..(filled.len() + SPARE_ROWS) {
                            div.row {
                                @for (sub, label) in subs {
                                    @let name = if sub.is_empty() { format!("{}.{i}", f.name) } else { format!("{}.{i}.{sub}", f.name) };
                                    @let sid = format!("{id}-{i}-{}", sub.replace('.', "-"));
                                    span.sub {
                                        label for=(sid) { (label) " " span.vh { "(row " (i + 1) ")" } }
                                        input id=(sid) name=(name) value=(json_text(filled.get(i).and_then(|e| sub_value(e, sub))));
                                    }
                                }
                            }
                        }
                    }
                }
                _ => {
                    @let input_type = match f.kind { FieldKind::Date => "date", FieldKind::Phone => "tel", _ => "text" };
                    div.field {
                        label for=(id) { (f.label) @if f.required { " *" } }
                        input type=(input_type) id=(id) name=(f.name) value=(json_text(v)) required[f.required];
                    }
                }
            }
        }
    }
}

fn typed(s: &str) -> Value {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() => serde_json::Number::from_f64(n).map_or(Value::String(s.into()), Value::Number),
        _ => Value::String(s.into()),
    }
}

fn put(entry: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            entry.insert(path.into(), value);
        }
        Some((head, rest)) => {
            let inner = entry.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = inner {
                put(m, rest, value);
            }
        }
    }
}

/// The content a template form sent: empty fields and empty rows left
/// out (the template's own validation says what is missing).
pub fn template_content(template: &Template, form: &Form) -> Value {
    let mut out = Map::new();
    for f in &template.fields {
        match &f.kind {
            FieldKind::Boolean => {
                out.insert(f.name.clone(), Value::Bool(form.has(&f.name, "true")));
            }
            FieldKind::Measurement { .. } => {
                let (v, u) = (form.get(&format!("{}.value", f.name)), form.get(&format!("{}.unit", f.name)));
                if !v.is_empty() || !u.is_empty() {
                    out.insert(f.name.clone(), serde_json::json!({ "value": typed(v), "unit": u }));
                }
            }
            kind if entry_fields(kind).is_some() => {
                let subs = entry_fields(kind).unwrap_or(&[]);
                let mut rows = Vec::new();
                for i in 0..64 {
                    if matches!(kind, FieldKind::Tags { .. }) {
                        let t = form.get(&format!("{}.{i}", f.name));
                        if !t.is_empty() {
                            rows.push(Value::String(t.into()));
                        }
                        continue;
                    }
                    let mut entry = Map::new();
                    for (sub, _) in subs {
                        let raw = form.get(&format!("{}.{i}.{sub}", f.name));
                        if raw.is_empty() {
                            continue;
                        }
                        let value = match *sub {
                            "primary" => Value::Bool(matches!(raw.to_ascii_lowercase().as_str(), "yes" | "true" | "y")),
                            "value" | "dose.value" => typed(raw),
                            _ => Value::String(raw.into()),
                        };
                        put(&mut entry, sub, value);
                    }
                    if !entry.is_empty() {
                        rows.push(Value::Object(entry));
                    }
                }
                if !rows.is_empty() {
                    out.insert(f.name.clone(), Value::Array(rows));
                }
            }
            _ => {
                let v = form.get(&f.name);
                if !v.is_empty() {
                    out.insert(f.name.clone(), Value::String(v.into()));
                }
            }
        }
    }
    Value::Object(out)
}

/// Renders structured content as a definition list (fields in the
/// template's order when known).
pub fn content_view(content: &Value) -> Markup {
    html! {
        @match content {
            Value::Object(m) => {
                dl.content {
                    @for (k, v) in m {
                        dt { (k.replace('_', " ")) }
                        dd { (value_text(v)) }
                    }
                }
            }
            other => pre { (value_text(other)) }
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join("; "),
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}: {}", value_text(v))).collect::<Vec<_>>().join(", "),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The fields that differ between two versions' content: (field, before, after).
pub fn diff(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    let empty = Map::new();
    let (a, b) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let t = |v: Option<&Value>| v.map_or_else(|| "—".to_string(), value_text);
            (k.clone(), t(a.get(k)), t(b.get(k)))
        })
        .collect()
}

pub(crate) fn record_arg(id: &str) -> Result<RecordId, PortalError> {
    medanchor_service::records::record_id_arg(id).map_err(|_| PortalError::NotFound("record".into()))
}

fn grant_for<'a>(session: &'a Session, patient: &str) -> Option<&'a str> {
    session.grant.as_ref().filter(|(p, _)| p == patient).map(|(_, t)| t.as_str())
}

/// `?version=`.
#[derive(Debug, Default, Deserialize)]
pub struct RecordQuery {
    version: Option<u64>,
    done: Option<String>,
}

/// A record: content, lifecycle, versions (with what changed), the
/// buttons the caller's chain permissions allow, attachments.
pub async fn view(
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<RecordQuery>,
) -> Result<Markup, PortalError> {
    let who = session.principal()?.clone();
    let id = record_arg(&id)?;
    let s = &session.service;
    let latest = s.current(&id).map_err(|_| PortalError::NotFound("record".into()))?;
    let grant = grant_for(&session, &latest.patient).map(str::to_string);
    let opened = s.read_record(&session.caller, &id, q.version, grant.as_deref()).await?;
    let content: Value = serde_json::from_slice(&opened.plaintext).unwrap_or(Value::Null);
    let versions = if grant.is_none() { s.record_versions(&session.caller, &id).await.ok() } else { None };
    // The previous version, to show what changed.
    let changes = match opened.meta.version {
        v if v > 1 && grant.is_none() => match s.read_record(&session.caller, &id, Some(v - 1), None).await {
            Ok(prev) => {
                let before: Value = serde_json::from_slice(&prev.plaintext).unwrap_or(Value::Null);
                Some(diff(&before, &content))
            }
            Err(_) => None,
        },
        _ => None,
    };
    let attachments = s.list_attachments(&session.caller, &id, grant.as_deref()).await.unwrap_or_default();
    // Buttons only for what the chain allows this caller now.
    let (s2, meta2, who2) = (s.clone(), latest.clone(), who.clone());
    let allowed = tokio::task::spawn_blocking(move || {
        [Operation::Update, Operation::Finalize, Operation::Unlock]
            .map(|op| s2.authorize_on_record(op, &id, &meta2, &who2).is_ok())
    })
    .await
    .map_err(PortalError::internal)?;
    let [may_update, may_finalize, may_unlock] = allowed;
    let finalized = opened.chain.is_some_and(|(_, f)| f);
    let status = opened.chain.map(|(st, _)| format!("{st:?}").to_lowercase());
    let body = html! {
        p {
            (badge(&opened.meta.record_type, "info")) " "
            @if finalized { (badge("finalized", "ok")) " " } @else { (badge("draft", "warn")) " " }
            @if let Some(st) = &status { (badge(st, "info")) " " } @else { (badge("anchoring…", "warn")) " " }
            "version " (opened.meta.version)
        }
        dl.meta {
            dt { "Patient" } dd { code { (view::short(&opened.meta.patient)) } }
            dt { "Author" } dd { code { (view::short(&opened.meta.author)) } }
            dt { "Written" } dd { (view::when(opened.meta.created_ms)) }
            dt { "Anchored hash" } dd { code.wrap { (opened.meta.data_hash) } }
        }
        section.card aria-labelledby="content-h" {
            h2 #content-h { "Content" }
            (content_view(&content))
        }
        @if may_update && !finalized && grant.is_none() && latest.template.is_some() && session.role == "provider" {
            p { a.button href=(format!("/records/{}/edit", id.bare_hex())) { "Edit (new version)" } }
        }
        @if may_finalize && !finalized {
            form method="post" action=(format!("/records/{}/finalize", id.bare_hex())) {
                (csrf_field(&session))
                button type="submit" { "Finalize" }
                span.hint { " A finalized record cannot be changed until an administrator unlocks it." }
            }
        }
        @if may_unlock && finalized {
            form method="post" action=(format!("/records/{}/unlock", id.bare_hex())) {
                (csrf_field(&session))
                button type="submit" { "Unlock" }
            }
        }
        section.card aria-labelledby="att-h" {
            h2 #att-h { "Attachments" }
            @if attachments.is_empty() { p { "No attachments." } }
            ul.attachments {
                @for a in &attachments {
                    @let href = format!("/records/{}/attachments/{}", id.bare_hex(), a.meta.attachment_id);
                    li {
                        a href=(href) hx-boost="false" { (a.info.name) } " " span.small { "(" (a.info.media_type) ", " (a.meta.size) " bytes)" }
                        @if a.info.media_type.starts_with("image/") {
                            br; img.preview src=(href) alt=(format!("Preview of {}", a.info.name)) loading="lazy";
                        }
                        @if a.info.media_type == "application/pdf" {
                            br; iframe.preview src=(href) title=(format!("Preview of {}", a.info.name)) {}
                        }
                    }
                }
            }
            @if !finalized && grant.is_none() && session.role == "provider" {
                form.upload data-upload=(format!("/v1/records/{}/uploads", id.bare_hex())) {
                    div.field {
                        label for="files" { "Add files (images, PDF; each uploads on its own and can be cancelled or retried)" }
                        input #files type="file" name="files" multiple;
                    }
                    button type="submit" { "Upload" }
                    ul.progress aria-live="polite" {}
                }
            }
        }
        @if let Some(changes) = &changes {
            section.card aria-labelledby="diff-h" {
                h2 #diff-h { "What changed from version " (opened.meta.version - 1) }
                @if changes.is_empty() { p { "No structured field changed." } }
                @else {
                    table { thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                        tbody { @for (f, a, b) in changes { tr { td { (f) } td { del { (a) } } td { ins { (b) } } } } } }
                }
            }
        }
        @if let Some(vs) = &versions {
            section.card aria-labelledby="ver-h" {
                h2 #ver-h { "Versions" }
                table {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Written" } th scope="col" { "By" } th scope="col" { "Anchor" } } }
                    tbody {
                        @for v in vs.iter().rev() {
                            tr {
                                td { a href=(format!("/records/{}?version={}", id.bare_hex(), v.version)) { "v" (v.version) } }
                                td { (view::when(v.created_ms)) }
                                td { code { (view::short(&v.author)) } }
                                td { (format!("{:?}", v.status).to_lowercase()) }
                            }
                        }
                    }
                }
            }
        }
        @if matches!(session.role, "auditor" | "admin") {
            p { a.button href=(format!("/audit/verify?record={}", id.bare_hex())) { "Verify against the chain" } }
        }
    };
    let help = html! {
        p { "The content is decrypted for you only because the chain allows it now: consent for this data type and your access level, an active emergency override, or a code the patient shared." }
        p { "Badges: " strong { "draft" } " records can get new versions; " strong { "finalized" } " ones cannot until unlocked. Every version's hash is anchored on the chain." }
    };
    Ok(view::render(&session, Page { title: "Record", current: "", help, body }, q.done.as_deref()))
}

/// The form of a new version: the record's template, filled with the
/// latest content.
pub async fn edit(session: Session, Path(id): Path<String>) -> Result<Markup, PortalError> {
    session.require_role(&["provider"])?;
    let id = record_arg(&id)?;
    let opened = session.service.read_record(&session.caller, &id, None, None).await?;
    let content: Value = serde_json::from_slice(&opened.plaintext).unwrap_or(Value::Null);
    edit_page(&session, &id, opened.meta.version, opened.meta.template.as_ref(), &content, None)
}

fn edit_page(
    session: &Session,
    id: &RecordId,
    version: u64,
    template: Option<&medanchor_clinical::TemplateRef>,
    values: &Value,
    error: Option<&str>,
) -> Result<Markup, PortalError> {
    let template =
        template.ok_or_else(|| PortalError::Invalid("This record was not written from a template.".into()))?;
    let template = session.service.template(&session.caller, &template.id, Some(template.version))?;
    let body = html! {
        (view::notice(error))
        form method="post" action=(format!("/records/{}/edit", id.bare_hex())) {
            (csrf_field(session))
            input type="hidden" name="_version" value=(version);
            (template_inputs(&template, values))
            button type="submit" { "Save new version" }
        }
        p { a href=(format!("/records/{}", id.bare_hex())) { "Back to the record" } }
    };
    let help = html! { p { "Saving writes version " (version + 1) ", encrypted and anchored like the first; earlier versions stay readable. If someone else saved a version since you opened this form, yours is refused rather than overwriting theirs: reload and edit again." } };
    Ok(view::render(session, Page { title: "New version", current: "/provider", help, body }, None))
}

/// Saves a new version (refused, not merged, when another was saved since).
pub async fn save(
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PortalError> {
    session.require_role(&["provider"])?;
    let id = record_arg(&id)?;
    let latest = session.service.current(&id).map_err(|_| PortalError::NotFound("record".into()))?;
    let tref = latest
        .template
        .clone()
        .ok_or_else(|| PortalError::Invalid("This record was not written from a template.".into()))?;
    let template = session.service.template(&session.caller, &tref.id, Some(tref.version))?;
    let content = template_content(&template, &form);
    let expected: u64 =
        form.get("_version").parse().map_err(|_| PortalError::Invalid("Which version is this based on?".into()))?;
    let payload = medanchor_service::records::Payload {
        content_type: "application/json".into(),
        bytes: serde_json::to_vec(&content).map_err(PortalError::internal)?,
        template: Some(tref.clone()),
    };
    match session.service.update_record(&session.caller, &id, expected, payload, None).await {
        Ok(_) => Ok(see_other(&headers, &format!("/records/{}", id.bare_hex()), "record-updated")),
        Err(e) => Ok(edit_page(&session, &id, expected, Some(&tref), &content, Some(&PortalError::from(e).message()))?
            .into_response()),
    }
}

async fn transition(
    session: Session,
    headers: HeaderMap,
    id: String,
    op: Lifecycle,
    done: &str,
) -> Result<Response, PortalError> {
    session.principal()?;
    let id = record_arg(&id)?;
    session.service.lifecycle(&session.caller, &id, op, None).await?;
    Ok(see_other(&headers, &format!("/records/{}", id.bare_hex()), done))
}

/// Finalizes a record (the chain's `finalize-record`, signed for the provider).
pub async fn finalize(session: Session, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, PortalError> {
    transition(session, headers, id, Lifecycle::Finalize, "finalized").await
}

/// Unlocks a finalized record.
pub async fn unlock(session: Session, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, PortalError> {
    transition(session, headers, id, Lifecycle::Unlock, "unlocked").await
}

/// An attachment's bytes (for previews and downloads), after the same
/// authorization as the record.
pub async fn attachment(
    session: Session,
    Path((id, attachment)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    session.principal()?;
    let id = record_arg(&id)?;
    let mut file = [0u8; 16];
    hex::decode_to_slice(&attachment, &mut file).map_err(|_| PortalError::NotFound("attachment".into()))?;
    let meta = session.service.current(&id).map_err(|_| PortalError::NotFound("record".into()))?;
    let grant = grant_for(&session, &meta.patient).map(str::to_string);
    let d = session.service.download_attachment(&session.caller, &id, &file, None, grant.as_deref()).await?;
    let media = &d.attachment.info.media_type;
    let media = if media.starts_with("image/") || media == "application/pdf" {
        media.clone()
    } else {
        "application/octet-stream".into()
    };
    let mut r = d.bytes.to_vec().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&media).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Shown inline only as what it claims to be; anything else downloads.
    let disposition = if media == "application/octet-stream" { "attachment" } else { "inline" };
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    // A user's file: framed only by this origin's record page (the PDF
    // preview), and nothing in it may run or load anything.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; frame-ancestors 'self'"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medanchor_clinical::template::Template;

    fn lab() -> Template {
        medanchor_clinical::builtin::templates()
            .into_iter()
            .find(|t| t.id.as_str() == "lab-result")
            .expect("lab-result")
    }

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_template_form_becomes_the_content_it_describes() {
        let cases: Vec<(Vec<(&str, &str)>, Value)> = vec![
            (
                vec![
                    ("collected", "2026-12-01"),
                    ("results.0.test", "Hemoglobin"),
                    ("results.0.value", "13.9"),
                    ("results.0.unit", "g/dL"),
                ],
                serde_json::json!({"collected": "2026-12-01", "results": [{"test": "Hemoglobin", "value": 13.9, "unit": "g/dL"}]}),
            ),
            // Empty rows and fields are left out; text values stay text.
            (
                vec![
                    ("collected", ""),
                    ("results.0.test", ""),
                    ("results.1.test", "Culture"),
                    ("results.1.value", "negative"),
                ],
                serde_json::json!({"results": [{"test": "Culture", "value": "negative"}]}),
            ),
            (vec![], serde_json::json!({})),
        ];
        for (pairs, want) in cases {
            assert_eq!(template_content(&lab(), &form(&pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn stored_content_fills_the_form_it_came_from() {
        let content = serde_json::json!({"collected": "2026-12-01", "results": [{"test": "Hb <b>", "value": 13.9}]});
        let html = template_inputs(&lab(), &content).into_string();
        assert!(html.contains(r#"value="2026-12-01""#), "{html}");
        assert!(html.contains(r#"name="results.0.test" value="Hb &lt;b&gt;""#), "escaped: {html}");
        // One filled row and the spare ones.
        assert!(html.contains(r#"name="results.2.test""#) && !html.contains(r#"name="results.3.test""#));
    }

    #[test]
    fn a_diff_names_each_changed_field() {
        let a = serde_json::json!({"a": "1", "b": ["x"], "gone": true});
        let b = serde_json::json!({"a": "2", "b": ["x"], "new": "n"});
        let d = diff(&a, &b);
        let fields: Vec<&str> = d.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(fields, ["a", "gone", "new"]);
        assert_eq!(d[0], ("a".into(), "1".into(), "2".into()));
        assert_eq!(d[2].1, "—");
    }
}
