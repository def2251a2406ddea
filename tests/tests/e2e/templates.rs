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
