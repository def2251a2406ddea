//! The patient health profile over HTTP: the patient writes it (versioned,
//! If-Match, every failing field named); a provider reads exactly the
//! sections its consent covers; a responder under an override the
//! emergency information only; every refusal is the contract's and audited;
//! reads by others are disclosures.

use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

async fn put(sys: &System, token: &str, patient: &str, if_match: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = sys.http.put(format!("{}/v1/patients/{patient}/profile", sys.api)).bearer_auth(token).json(body);
    if let Some(v) = if_match {
        req = req.header("if-match", v);
    }
    let r = req.send().await.expect("put");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn owner_call(contract: ContractName, function: &'static str, args: Vec<ClarityValue>) -> ContractCall {
    ContractCall { contract, function, args }
}

pub(super) fn full_profile() -> Value {
    json!({
        "full_name": "María José García",
        "phone": "+34 600 123 456",
        "allergies": [{ "substance": "Penicillin", "reaction": "hives", "severity": "severe" }],
        "chronic_conditions": [{ "code": "E11.9" }],
        "current_medications": [{ "name": "Metformin", "dose": { "value": 500, "unit": "mg" }, "route": "oral", "frequency": "twice-daily" }],
        "blood_type": "O-",
        "medical_alerts": ["anticoagulated"],
        "emergency_contacts": [{ "name": "Ana", "relationship": "sister", "phone": "+1 555 010 2030" }],
        "organ_donor": true,
        "preferred_language": "es",
        "communication_preference": "sms",
        "preferred_pharmacy": "Main St Pharmacy",
        "insurance_provider": "Acme Health",
        "insurance_member_id": "AC-123",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_released_part_by_part_as_the_chain_allows() {
    let sys = super::start().await;
    let (patient, provider, responder) =
        (sys.principal("wallet_1"), sys.principal("wallet_2"), sys.principal("wallet_3"));
    let register = |p: &medanchor_contracts::Principal| {
        owner_call(
            ContractName::RecordManagement,
            "register-provider",
            vec![ClarityValue::Principal(p.clone()), ClarityValue::Buffer(vec![4; 32])],
        )
    };
    sys.tx("deployer", register(&provider)).await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    let p = patient.to_string();
    let patient_token = sys.sign_in("wallet_1").await;
    let doctor = sys.sign_in("wallet_2").await;
    let stranger = sys.sign_in("wallet_3").await;
    let path = format!("/v1/patients/{p}/profile");

    // The patient: nothing yet, then a first version, then the next.
    let (status, empty) = sys.get(&path, &patient_token).await;
    assert_eq!(
        (status, empty["version"].as_u64(), empty["completeness"]["percent"].as_u64()),
        (200, Some(0), Some(0)),
        "{empty}"
    );
    let (status, first) = put(&sys, &patient_token, &p, Some("\"0\""), &json!({ "blood_type": "O-" })).await;
    assert_eq!((status, first["version"].as_u64()), (200, Some(1)), "{first}");
    let (status, second) = put(&sys, &patient_token, &p, Some("\"1\""), &full_profile()).await;
    assert_eq!(
        (status, second["version"].as_u64(), second["completeness"]["percent"].as_u64()),
        (200, Some(2), Some(100)),
        "{second}"
    );

    // Every refused write, precise; none stores anything.
    // (case, token, whose profile, If-Match, body, status, code)
    type Row<'a> = (&'a str, &'a String, String, Option<&'a str>, Value, u16, &'a str);
    let cases: Vec<Row> = vec![
        ("a stale version", &patient_token, p.clone(), Some("\"1\""), json!({}), 409, "version-conflict"),
        ("no If-Match", &patient_token, p.clone(), None, json!({}), 400, "if-match-required"),
        (
            "every failing field",
            &patient_token,
            p.clone(),
            Some("\"2\""),
            json!({ "blood_type": "C", "emergency_contacts": [{ "name": "x" }], "shoe_size": 9 }),
            400,
            "invalid-content",
        ),
        ("not an object", &patient_token, p.clone(), Some("\"2\""), json!([1]), 400, "invalid-content"),
        ("someone else's profile", &doctor, p.clone(), Some("\"2\""), json!({}), 403, "profile-owner"),
        ("not a registered patient", &stranger, responder.to_string(), Some("\"0\""), json!({}), 403, "consent-denied"),
    ];
    for (name, token, whose, if_match, body, status, code) in &cases {
        let (got, problem) = put(&sys, token, whose, *if_match, body).await;
        assert_eq!((got, problem["code"].as_str()), (*status, Some(*code)), "{name}: {problem}");
    }
    let (_, problem) = put(&sys, &patient_token, &p, Some("\"2\""), &cases[2].4).await;
    let mut paths: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["blood_type", "emergency_contacts[0].phone", "emergency_contacts[0].relationship", "shoe_size"]);
    assert_eq!(sys.get(&path, &patient_token).await.1["version"], 2, "nothing stored by a refused write");

    // Two writers on the same version: exactly one wins.
    let body = json!({ "blood_type": "O-", "organ_donor": false });
    let (a, b) = tokio::join!(
        put(&sys, &patient_token, &p, Some("\"2\""), &body),
        put(&sys, &patient_token, &p, Some("\"2\""), &body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let (_, latest) = put(&sys, &patient_token, &p, Some("\"3\""), &full_profile()).await;
    assert_eq!(latest["version"], 4);

    // A provider without consent: the contract's refusal, nothing of the
    // profile (not even whether it exists).
    let (status, refused) = sys.get(&path, &doctor).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-NO-CONSENT")), "{refused}");

    // Consent for medical history (and read access): exactly those parts.
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::MedicalHistory, GrantDuration::UntilRevoked))
        .await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&provider, AccessLevel::Read, GrantDuration::UntilRevoked).expect("call"),
    )
    .await;
    let (status, seen) = sys.get(&path, &doctor).await;
    assert_eq!((status, seen["access"].as_str()), (200, Some("consent")), "{seen}");
    let mut keys: Vec<&str> = seen["profile"].as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["allergies", "blood_type", "chronic_conditions", "medical_alerts"], "{seen}");
    assert!(seen.get("completeness").is_none(), "completeness is the patient's");
    // More consent, more parts.
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::Financial, GrantDuration::UntilRevoked)).await;
    let (_, seen) = sys.get(&path, &doctor).await;
    assert_eq!(seen["profile"]["insurance_provider"], "Acme Health", "{seen}");
    assert!(seen["profile"].get("current_medications").is_none(), "{seen}");
    // Revoked: refused again.
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::MedicalHistory)).await;
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::Financial)).await;
    let (status, refused) = sys.get(&path, &doctor).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{refused}");

    // A responder: nothing without an override; with one, the emergency
    // information and nothing else.
    let (status, refused) = sys.get(&path, &stranger).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-NO-CONSENT")), "{refused}");
    sys.tx("deployer", register(&responder)).await;
    sys.tx(
        "deployer",
        owner_call(
            ContractName::PatientConsent,
            "set-emergency-responder",
            vec![ClarityValue::Principal(responder.clone()), ClarityValue::Bool(true)],
        ),
    )
    .await;
    sys.tx("wallet_3", ContractCall::emergency_override(&patient, 1).expect("call")).await;
    let (status, emergency) = sys.get(&path, &stranger).await;
    assert_eq!((status, emergency["access"].as_str()), (200, Some("emergency")), "{emergency}");
    let mut keys: Vec<&str> = emergency["profile"].as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["allergies", "blood_type", "current_medications", "emergency_contacts", "medical_alerts"]);

    // Every read is audited with how it was allowed; reads by others are
    // disclosures in the patient's accounting.
    let (_, log) = sys.get("/v1/audit/entries?limit=1000", &patient_token).await;
    let reads: Vec<(String, String, Option<String>)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entry"]["action"] == "profile.read")
        .map(|e| {
            (
                e["entry"]["actor"].as_str().unwrap_or("").to_string(),
                e["entry"]["outcome"].as_str().unwrap_or("").to_string(),
                e["entry"]["method"].as_str().map(str::to_string),
            )
        })
        .collect();
    let responder_s = responder.to_string();
    assert!(reads.contains(&(responder_s.clone(), "allowed".into(), Some("emergency".into()))), "{reads:?}");
    assert!(reads.contains(&(responder_s, "denied".into(), None)), "{reads:?}");
    assert!(reads.contains(&(provider.to_string(), "allowed".into(), Some("consent".into()))), "{reads:?}");
    let (status, report) = sys.get(&format!("/v1/audit/disclosures?patient={p}"), &patient_token).await;
    assert_eq!(status, 200, "{report}");
    let purposes: Vec<&str> =
        report["disclosures"].as_array().expect("disclosures").iter().filter_map(|d| d["purpose"].as_str()).collect();
    assert!(purposes.contains(&"emergency treatment (break-glass)"), "{purposes:?}");
    assert!(purposes.contains(&"treatment (patient consent)"), "{purposes:?}");
}
