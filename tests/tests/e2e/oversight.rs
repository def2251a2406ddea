//! Oversight over HTTP against a real devnet: a provider with consent
//! writes and reads structured records, a stranger is refused again and
//! again; the dashboard's counts equal what the audit log holds (by record
//! type, by diagnosis with small counts left out), the stranger's refusals
//! raise a `repeated-denials` flag naming the entries behind it; the
//! compliance report shows the provider's day (JSON and CSV); an admin
//! acknowledges the flag (audited) and it leaves the open alerts. Every
//! refusal branch: anonymous, patient, provider, auditor acknowledging,
//! unknown flag; bad input answered with its precise code.

use medanchor_contracts::types::DataType;
use medanchor_contracts::DEPLOYER_ADDRESS;
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

async fn post(sys: &System, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
    let mut r = sys.http.post(format!("{}{path}", sys.api)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get_text(sys: &System, token: Option<&str>, path: &str) -> (u16, String, String) {
    let mut r = sys.http.get(format!("{}{path}", sys.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("get");
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (r.status().as_u16(), kind, r.text().await.expect("text"))
}

fn consultation(code: &str) -> Value {
    json!({
        "record_type": "diagnosis",
        "template": { "id": "consultation", "version": 1 },
        "content": {
            "visit_date": "2026-11-02",
            "chief_complaint": "Follow-up",
            "diagnoses": [{ "code": code, "description": "A condition", "primary": true }],
        }
    })
}

fn series<'a>(d: &'a Value, metric: &str) -> &'a Value {
    d["series"].as_array().expect("series").iter().find(|s| s["metric"] == metric).expect("metric")
}

fn today() -> String {
    let day = medanchor_ops::analytics::day_of(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64,
    );
    let (y, m, d) = medanchor_storage::keys::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_what_the_log_holds_and_flags_are_raised_explained_and_acknowledged() {
    let sys = super::start_with(
        |c| {
            c.admins = vec![DEPLOYER_ADDRESS.to_string()];
            c.analytics_min_cell = 2;
        },
        None,
    )
    .await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::MedicalHistory, GrantDuration::UntilRevoked))
        .await;
    let (doctor, stranger, me) =
        (sys.sign_in("wallet_2").await, sys.sign_in("wallet_3").await, sys.sign_in("wallet_1").await);
    let (auditor, admin) = (sys.sign_in("faucet").await, sys.sign_in("deployer").await);

    // Three structured records (two with E11.9, one with I10), each read
    // once by the provider.
    let mut records = Vec::new();
    for code in ["E11.9", "E11.9", "I10"] {
        let (s, v) = post(&sys, Some(&doctor), &format!("/v1/patients/{patient}/records"), consultation(code)).await;
        assert!((200..300).contains(&s), "{v}");
        records.push(v["record_id"].as_str().expect("id").to_string());
    }
    sys.mine().await;
    for r in &records {
        let (s, v) = sys.get(&format!("/v1/records/{r}"), &doctor).await;
        assert_eq!(s, 200, "{v}");
    }
    // A stranger tries the first record ten times.
    for _ in 0..10 {
        let (s, _) = sys.get(&format!("/v1/records/{}", records[0]), &stranger).await;
        assert_eq!(s, 403);
    }

    // The dashboard, as the auditor, against the audit log itself.
    let (s, d) = sys.get("/v1/admin/analytics?days=30", &auditor).await;
    assert_eq!(s, 200, "{d}");
    let (_, log) = sys.get("/v1/audit/entries?limit=1000", &auditor).await;
    let entries: Vec<&Value> = log["entries"].as_array().expect("entries").iter().map(|e| &e["entry"]).collect();
    let count = |f: &dyn Fn(&Value) -> bool| entries.iter().filter(|e| f(e)).count() as u64;
    let allowed = |action: &'static str| move |e: &Value| e["action"] == action && e["outcome"] == "allowed";
    // Entries written after the dashboard was read (its own, the log read)
    // are not in it: count those before.
    let before = |e: &Value| e["action"] != "analytics.dashboard" && e["action"] != "audit.entries";
    assert_eq!(series(&d, "records.created")["total"], count(&allowed("record.create")));
    assert_eq!(series(&d, "records.created")["total"], 3);
    assert_eq!(series(&d, "records.read")["total"], count(&allowed("record.read")));
    assert_eq!(series(&d, "denied")["total"], count(&|e| e["outcome"] == "denied" && before(e)));
    assert_eq!(series(&d, "entries")["total"], count(&before));
    assert_eq!(series(&d, "records.read")["per_day"].as_array().expect("days").len(), 30);
    assert_eq!(series(&d, "records.read")["per_day"][29], series(&d, "records.read")["total"], "all today");
    let by_type = |m: &str, t: &str| {
        d["by_record_type"]
            .as_array()
            .expect("types")
            .iter()
            .find(|c| c["metric"] == m && c["key"] == t)
            .map(|c| c["count"].clone())
    };
    assert_eq!(by_type("records.created", "diagnosis"), Some(json!(3)));
    assert_eq!(by_type("records.read", "diagnosis"), Some(json!(3)));
    // E11 twice (created, and read) is shown; I10 once each is left out
    // (min_cell 2), only counted.
    assert_eq!(
        d["by_diagnosis"],
        json!([
            { "metric": "records.created", "key": "E11", "count": 2 },
            { "metric": "records.read", "key": "E11", "count": 2 },
        ])
    );
    assert_eq!((d["diagnoses_suppressed"].as_u64(), d["min_cell"].as_u64()), (Some(2), Some(2)));
    let trend =
        d["trends"].as_array().expect("trends").iter().find(|t| t["metric"] == "records.created").expect("trend");
    assert_eq!((trend["this_week"].as_u64(), trend["last_week"].as_u64()), (Some(3), Some(0)));
    assert!(trend["change"].is_null(), "no change from nothing: {trend}");

    // The stranger's refusals raised one security flag, explained.
    let stranger_p = sys.principal("wallet_3").to_string();
    let alerts = d["alerts"].as_array().expect("alerts");
    let flag = alerts.iter().find(|a| a["rule"] == "repeated-denials").unwrap_or_else(|| panic!("{alerts:?}"));
    assert_eq!((flag["kind"].as_str(), flag["subject"].as_str()), (Some("security"), Some(stranger_p.as_str())));
    assert_eq!(flag["numbers"]["refusals"], 10.0);
    let behind: Vec<u64> = flag["entries"].as_array().expect("entries").iter().filter_map(Value::as_u64).collect();
    assert_eq!(behind.len(), 10);
    for i in &behind {
        let (s, page) = sys.get(&format!("/v1/audit/entries?from={i}&limit=1"), &auditor).await;
        assert_eq!(s, 200, "{page}");
        let e = &page["entries"][0]["entry"];
        assert_eq!((e["actor"].as_str(), e["outcome"].as_str()), (Some(stranger_p.as_str()), Some("denied")), "{e}");
    }
    assert_eq!(d["open_alerts"], 1);
    let id = flag["id"].as_str().expect("id").to_string();

    // The compliance report: the provider's day, and the flag.
    let today = today();
    let period = format!("from={today}&to={today}");
    let (s, report) = sys.get(&format!("/v1/admin/compliance?{period}"), &admin).await;
    assert_eq!(s, 200, "{report}");
    let doc = report["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["provider"] == provider.to_string())
        .expect("doctor");
    assert_eq!((doc["writes"].as_u64(), doc["reads"].as_u64(), doc["patients"].as_u64()), (Some(3), Some(3), Some(1)));
    assert_eq!(doc["days"][0]["day"], today);
    assert_eq!(report["flags"][0]["rule"], "repeated-denials");
    let (s, kind, csv) = get_text(&sys, Some(&admin), &format!("/v1/admin/compliance?{period}&format=csv")).await;
    assert_eq!((s, kind.as_str()), (200, "text/csv; charset=utf-8"), "{csv}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("provider,day,reads,writes,patients,emergency,denied,enhanced_patients,flags"));
    assert!(csv.contains(&format!("{provider},{today},3,3,1,0,0,0,\n")), "{csv}");

    // Refusals: nobody but admins and auditors reads oversight, only
    // admins acknowledge; each refusal audited.
    for (token, path, status, code) in [
        (None, "/v1/admin/analytics", 401, "unauthorized"),
        (Some(&me), "/v1/admin/analytics", 403, "oversight-only"),
        (Some(&doctor), "/v1/admin/flags", 403, "oversight-only"),
        (Some(&doctor), "/v1/admin/compliance?from=2026-01-01&to=2026-01-02", 403, "oversight-only"),
    ] {
        let (s, _, body) = get_text(&sys, token.map(String::as_str), path).await;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }
    let ack = format!("/v1/admin/flags/{id}/acknowledge");
    for (token, body, status, code) in [
        (None, json!({}), 401, "unauthorized"),
        (Some(&auditor), json!({}), 403, "admin-only"),
        (Some(&doctor), json!({}), 403, "admin-only"),
        (Some(&admin), json!({ "note": "x".repeat(1001) }), 400, "invalid-note"),
        (Some(&admin), json!({ "note": 1 }), 400, "invalid-body"),
        (Some(&admin), json!([null]), 400, "invalid-body"),
    ] {
        let (s, v) = post(&sys, token.map(String::as_str), &ack, body).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{v}");
    }
    let (s, v) = post(&sys, Some(&admin), "/v1/admin/flags/00ff/acknowledge", json!({})).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not-found")), "{v}");
    let (s, v) =
        post(&sys, Some(&admin), &ack, json!({ "note": "wallet_3 is a new clinician without consent yet" })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["acknowledged_by"].as_str(), v["rule"].as_str()), (Some(DEPLOYER_ADDRESS), Some("repeated-denials")));
    let (_, d) = sys.get("/v1/admin/analytics", &auditor).await;
    assert_eq!(
        (d["open_alerts"].as_u64(), d["days"].as_u64()),
        (Some(0), Some(7)),
        "acknowledged flags leave the alerts"
    );
    let (_, open) = sys.get("/v1/admin/flags", &auditor).await;
    assert_eq!(open, json!([]));
    let (_, all) = sys.get("/v1/admin/flags?all=true&days=7", &auditor).await;
    assert_eq!(all[0]["note"], "wallet_3 is a new clinician without consent yet");

    let (_, log) = sys.get("/v1/audit/entries?limit=1000", &auditor).await;
    let entries: Vec<&Value> = log["entries"].as_array().expect("entries").iter().map(|e| &e["entry"]).collect();
    let acked: Vec<&&Value> = entries.iter().filter(|e| e["action"] == "flag.acknowledge").collect();
    let outcomes: Vec<(&str, &str)> =
        acked.iter().map(|e| (e["actor"].as_str().unwrap_or(""), e["outcome"].as_str().unwrap_or(""))).collect();
    assert!(outcomes.contains(&(DEPLOYER_ADDRESS, "allowed")), "{outcomes:?}");
    assert!(outcomes.iter().filter(|(_, o)| *o == "denied").count() >= 3, "refusals audited: {outcomes:?}");
    let done = acked.iter().find(|e| e["outcome"] == "allowed").expect("allowed");
    assert!(done["detail"].as_str().expect("detail").starts_with(&format!("repeated-denials {stranger_p}")), "{done}");
    assert!(entries.iter().any(|e| e["action"] == "analytics.dashboard" && e["outcome"] == "denied"));

    // The node's periodic jobs: for admins only.
    let (s, jobs) = sys.get("/v1/admin/jobs", &admin).await;
    assert_eq!(s, 200, "{jobs}");
    let names: Vec<&str> = jobs.as_array().expect("jobs").iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names, ["notifications", "share-sweep", "credential-expiry", "attachment-cleanup", "consent-reminders"]);
    assert_eq!((jobs[1]["every_s"].as_u64(), jobs[1]["failing"].as_u64()), (Some(60), Some(0)));
    for token in [&auditor, &doctor] {
        let (s, v) = sys.get("/v1/admin/jobs", token).await;
        assert_eq!((s, v["code"].as_str()), (403, Some("admin-only")), "{v}");
    }

    // Bad input, each with its code.
    for (path, code) in [
        ("/v1/admin/analytics?days=0", "invalid-days"),
        ("/v1/admin/analytics?days=367", "invalid-days"),
        ("/v1/admin/analytics?days=seven", "invalid-days"),
        ("/v1/admin/analytics?day=7", "invalid-query"),
        ("/v1/admin/flags?all=yes", "invalid-query"),
        ("/v1/admin/compliance?to=2026-01-01", "invalid-date"),
        ("/v1/admin/compliance?from=2026-13-01&to=2026-12-01", "invalid-date"),
        ("/v1/admin/compliance?from=2026-02-01&to=2026-01-01", "invalid-range"),
        ("/v1/admin/compliance?from=2024-01-01&to=2026-01-01", "invalid-range"),
        ("/v1/admin/compliance?from=2026-01-01&to=2026-01-01&format=xml", "invalid-format"),
    ] {
        let (s, v) = sys.get(path, &admin).await;
        assert_eq!((s, v["code"].as_str()), (400, Some(code)), "{path}: {v}");
    }
}
