//! Structured records over HTTP: written from a template, validated with
//! every failing field named, stored in their normal form, read back typed,
//! still governed by the chain's consent; the template routes.

use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

async fn post_record(sys: &System, token: &str, patient: &str, body: &Value) -> (u16, Value) {
    let r = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn lab(results: Value) -> Value {
    json!({
        "record_type": "lab-results",
        "template": { "id": "lab-result", "version": 1 },
        "content": { "collected": "2026-12-01", "results": results },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_records_are_validated_stored_normal_and_read_typed() {
    let sys = super::start().await;
    let (patient, provider) = (sys.principal("wallet_1"), sys.principal("wallet_2"));
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
        },
    )
    .await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked)).await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked).expect("call"),
    )
    .await;
    let token = sys.sign_in("wallet_2").await;
    let stranger = sys.sign_in("wallet_3").await;
    let p = patient.to_string();

    // The template routes: a session first; the list, one template with
    // its pre-filled content, precise refusals.
    let anonymous = sys.http.get(format!("{}/v1/templates", sys.api)).send().await.expect("get");
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, list) = sys.get("/v1/templates", &token).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|t| t["id"].as_str()).collect();
    for id in ["consultation", "follow-up", "procedure", "lab-result", "vital-signs", "discharge-summary", "referral"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let (status, referral) = sys.get("/v1/templates/referral?version=1", &token).await;
    assert_eq!((status, &referral["prefill"]), (200, &json!({ "urgency": "routine" })), "{referral}");
    assert_eq!(referral["template"]["record_type"], "diagnosis");
    for (path, want) in [
        ("/v1/templates/no-such-template", 404),
        ("/v1/templates/referral?version=2", 404),
        ("/v1/templates/referral?version=0", 400),
        ("/v1/templates/Not_A_Slug", 400),
    ] {
        assert_eq!(sys.get(path, &token).await.0, want, "{path}");
    }

    // A valid structured record: stored in its normal form (the code
    // printed, text trimmed), read back as typed JSON with its template.
    let body = lab(json!([
        { "test": " Glucose ", "loinc": "2345-7", "value": 126, "unit": "mg/dL", "flag": "high" },
        { "test": "SARS-CoV-2 RNA", "value": "not detected" }
    ]));
    let (status, created) = post_record(&sys, &token, &p, &body).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["template"], json!({ "id": "lab-result", "version": 1 }));
    let id = created["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let (status, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["content_encoding"], "json");
    assert_eq!(read["content"]["results"][0]["test"], "Glucose", "stored normalised: {read}");
    assert_eq!(read["content"]["results"][0]["value"], 126);
    assert_eq!(read["template"], json!({ "id": "lab-result", "version": 1 }));
    // The chain still decides who reads it.
    let (status, refused) = sys.get(&format!("/v1/records/{id}"), &stranger).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-NO-CONSENT")), "{refused}");

    // Refusals, each precise; none stores anything.
    let before = sys.state.keys().0.pending().expect("pending").len();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "every failing field is named",
            lab(json!([{ "test": "Glucose", "loinc": "2345-6", "value": 126, "flag": "sky-high" }, { "value": 1 }])),
            400,
            "invalid-content",
        ),
        (
            "a template of another record type",
            json!({ "record_type": "vitals", "template": { "id": "lab-result", "version": 1 }, "content": {} }),
            400,
            "record-type-mismatch",
        ),
        (
            "an unknown template",
            json!({ "record_type": "lab-results", "template": { "id": "lab-panel", "version": 1 }, "content": {} }),
            400,
            "unknown-template",
        ),
        (
            "an unknown version",
            json!({ "record_type": "lab-results", "template": { "id": "lab-result", "version": 7 }, "content": {} }),
            400,
            "unknown-template",
        ),
        (
            "structured content in base64",
            json!({ "record_type": "lab-results", "template": { "id": "lab-result", "version": 1 }, "content": "e30=", "content_encoding": "base64" }),
            400,
            "invalid-content",
        ),
        (
            "content that is not an object",
            json!({ "record_type": "lab-results", "template": { "id": "lab-result", "version": 1 }, "content": [1] }),
            400,
            "invalid-content",
        ),
        (
            "structured content past its bound",
            lab(json!([{ "test": "x".repeat(300 * 1024), "value": 1 }])),
            413,
            "body-too-large",
        ),
    ];
    for (name, body, status, code) in &cases {
        let (got, problem) = post_record(&sys, &token, &p, body).await;
        assert_eq!((got, problem["code"].as_str()), (*status, Some(*code)), "{name}: {problem}");
    }
    let (_, problem) = post_record(&sys, &token, &p, &cases[0].1).await;
    let mut paths: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["results[0].flag", "results[0].loinc", "results[1].test"], "{problem}");
    assert_eq!(sys.state.keys().0.pending().expect("pending").len(), before, "nothing stored");

    // An update is validated the same way, on the record's type.
    let put = |body: Value| {
        let sys = &sys;
        let id = id.clone();
        let token = token.clone();
        async move {
            let r = sys
                .http
                .put(format!("{}/v1/records/{id}", sys.api))
                .bearer_auth(&token)
                .header("if-match", "\"1\"")
                .json(&body)
                .send()
                .await
                .expect("put");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, problem) = put(lab(json!([]))).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (400, Some("results")), "{problem}");
    let (status, updated) = put(lab(json!([{ "test": "Glucose", "value": 99, "unit": "mg/dL" }]))).await;
    assert_eq!((status, updated["version"].as_u64()), (202, Some(2)), "{updated}");
}

const WALLET_3: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";

async fn post_template(sys: &System, token: &str, body: &Value) -> (u16, Value) {
    let r =
        sys.http.post(format!("{}/v1/templates", sys.api)).bearer_auth(token).json(body).send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(super) fn custom(id: &str, version: u32, scope: Value) -> Value {
    json!({
        "id": id, "version": version, "title": "Echocardiogram", "record_type": "imaging", "scope": scope,
        "fields": [
            { "name": "study_date", "label": "Study date", "required": true, "kind": { "type": "date" } },
            { "name": "rhythm", "label": "Rhythm", "kind": { "type": "choice", "options": ["sinus", "af"] }, "default": "sinus" }
        ]
    })
}

/// Who may add which template, each refusal precise and audited; added
/// templates are visible to whom they belong and survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_added_by_their_owners_only() {
    let sys = super::start_with(|c| c.admins.push(WALLET_3.into()), None).await;
    let provider = sys.principal("wallet_2");
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
        },
    )
    .await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    let admin = sys.sign_in("wallet_3").await;
    let doctor = sys.sign_in("wallet_2").await;
    let patient = sys.sign_in("wallet_1").await;
    let mine = json!({ "kind": "provider", "name": provider.to_string() });

    // (who, body, status, code)
    let cases: Vec<(&str, &String, Value, u16, Option<&str>)> = vec![
        ("an admin adds the tenant's", &admin, custom("echo", 1, json!({ "kind": "tenant" })), 201, None),
        (
            "an admin adds a specialty's",
            &admin,
            custom("cardio-echo", 1, json!({ "kind": "specialty", "name": "cardiology" })),
            201,
            None,
        ),
        ("a provider saves their own", &doctor, custom("my-echo", 1, mine.clone()), 201, None),
        ("a provider adds its next version", &doctor, custom("my-echo", 2, mine.clone()), 201, None),
        ("a skipped version", &doctor, custom("my-echo", 4, mine.clone()), 409, Some("template-version")),
        ("an existing version", &doctor, custom("my-echo", 1, mine.clone()), 409, Some("template-version")),
        ("a changed scope", &admin, custom("my-echo", 3, json!({ "kind": "tenant" })), 409, Some("template-version")),
        (
            "a provider for someone else",
            &doctor,
            custom("theirs", 1, json!({ "kind": "provider", "name": WALLET_3 })),
            403,
            Some("template-scope"),
        ),
        (
            "a provider for the tenant",
            &doctor,
            custom("tenant-by-doctor", 1, json!({ "kind": "tenant" })),
            403,
            Some("template-scope"),
        ),
        (
            "a patient",
            &patient,
            custom("by-patient", 1, json!({ "kind": "provider", "name": "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5" })),
            403,
            Some("template-scope"),
        ),
        ("a built-in one", &admin, custom("referral", 2, json!({ "kind": "builtin" })), 403, Some("template-scope")),
        (
            "a malformed template",
            &admin,
            json!({ "id": "bad", "version": 1, "title": "x", "record_type": "imaging", "scope": { "kind": "tenant" }, "fields": [] }),
            400,
            Some("invalid-template"),
        ),
        (
            "an unknown record type",
            &admin,
            json!({ "id": "bad", "version": 1, "title": "x", "record_type": "x-rays", "scope": { "kind": "tenant" }, "fields": [] }),
            422,
            None,
        ),
    ];
    for (name, token, body, status, code) in &cases {
        let (got, answer) = post_template(&sys, token, body).await;
        assert_eq!(got, *status, "{name}: {answer}");
        if let Some(code) = code {
            assert_eq!(answer["code"].as_str(), Some(*code), "{name}: {answer}");
        }
    }
    let anonymous = sys.http.post(format!("{}/v1/templates", sys.api)).json(&custom("x", 1, mine.clone())).send().await;
    assert_eq!(anonymous.expect("post").status().as_u16(), 401);

    // Each sees what is theirs: the provider their own (at version 2) and
    // the tenant's, not a specialty they are not in; the admin everything.
    let ids = |list: &Value| -> Vec<String> {
        list["items"].as_array().expect("items").iter().filter_map(|t| t["id"].as_str().map(str::to_string)).collect()
    };
    let (_, seen) = sys.get("/v1/templates", &doctor).await;
    assert!(ids(&seen).contains(&"my-echo".to_string()) && ids(&seen).contains(&"echo".to_string()), "{seen}");
    assert!(!ids(&seen).contains(&"cardio-echo".to_string()), "{seen}");
    let (_, admin_seen) = sys.get("/v1/templates", &admin).await;
    assert!(ids(&admin_seen).contains(&"cardio-echo".to_string()));
    assert_eq!(sys.get("/v1/templates/my-echo", &patient).await.0, 404, "another's template is not found");
    assert_eq!(sys.get("/v1/templates/my-echo?version=1", &doctor).await.0, 200, "every version stays readable");
    let (_, latest) = sys.get("/v1/templates/my-echo", &doctor).await;
    assert_eq!((latest["template"]["version"].as_u64(), &latest["prefill"]), (Some(2), &json!({ "rhythm": "sinus" })));

    // Every addition and refusal is in the audit log.
    let entries = sys.state.audit().size().expect("size");
    let (_, log) = sys.get(&format!("/v1/audit/entries?from=0&limit={entries}"), &admin).await;
    let actions: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["entry"]["action"] == "template.add")
                .map(|e| (e["entry"]["outcome"].as_str().unwrap_or(""), e["entry"]["role"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let allowed = actions.iter().filter(|(o, _)| *o == "allowed").count();
    assert_eq!(allowed, 4, "{actions:?}");
    assert_eq!(actions.len(), 12, "every attempt the body of which parsed: {actions:?}");

    // Stored (synced), each version: what a restarted service loads.
    let stored: Vec<(String, u32)> =
        sys.state.keys().0.templates().expect("stored").into_iter().map(|t| (t.id.to_string(), t.version)).collect();
    assert_eq!(
        stored,
        [
            ("cardio-echo".to_string(), 1),
            ("echo".to_string(), 1),
            ("my-echo".to_string(), 1),
            ("my-echo".to_string(), 2)
        ]
    );
}
