//! Consent requests over real HTTP, devnet and indexer: a provider asks
//! the patient for consent to two data types; the patient sees it pending
//! and is notified (a webhook event naming who asks for what, never the
//! purpose); the patient signs `grant-consent` in their own wallet and
//! approves with the txids; the provider sees it approved, and
//! `granted_on_chain` once the chain holds every grant. A second request
//! is declined with a message. Then every refusal: no session, not a
//! provider, an unregistered patient, bad data types, purposes, durations
//! and txids, the pending limit, a third party (404 whatever it tries),
//! the provider deciding its own request (403), deciding twice (409) and
//! after expiry (409, time moved on the service's clock) — and the audit
//! entry of every step, none holding the purpose or the message.

use std::sync::atomic::Ordering;

use medanchor_contracts::types::DataType;
use medanchor_contracts::DEPLOYER_ADDRESS;
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use serde_json::{json, Value};

use super::System;

const PURPOSE: &str = "Second opinion on the HbA1c trend before the knee surgery";
const MESSAGE: &str = "I am seeing Dr. Osei for this already";
const DAY: u64 = 24 * 3_600_000;

async fn call(sys: &System, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = sys.http.request(method.parse().expect("method"), format!("{}{path}", sys.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Asserts a refusal's status and code.
fn refused(answer: (u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!((answer.0, answer.1["code"].as_str()), (status, Some(code)), "{what}: {}", answer.1);
}

/// The patient's wallet signs and broadcasts a grant; its txid.
async fn grant(sys: &System, provider: &medanchor_contracts::principal::Principal, data_type: DataType) -> String {
    let wallet = Wallet::connect(sys.key("wallet_1").clone(), RpcClient::new(&sys.rpc).expect("rpc"), DEPLOYER_ADDRESS)
        .await
        .expect("wallet");
    let call = ContractCall::grant_consent(provider, data_type, GrantDuration::Blocks(1000));
    wallet.submit(&call, None).await.expect("submit").txid.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_asks_the_patient_grants_in_their_wallet_and_every_refusal_holds() {
    let (clock, offset) = super::share::manual_clock();
    let sys = super::start_with(|c| c.webhook_allow_private = true, Some(clock)).await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let (doctor, me, stranger) =
        (sys.sign_in("wallet_2").await, sys.sign_in("wallet_1").await, sys.sign_in("wallet_3").await);
    let (p, d) = (patient.to_string(), provider.to_string());
    let (url, got) = super::notifications::receiver(0).await;
    let (s, sub) = call(
        &sys,
        "PUT",
        &format!("/v1/patients/{p}/notifications/webhook"),
        Some(&me),
        Some(json!({ "webhook_url": url })),
    )
    .await;
    assert_eq!(s, 200, "{sub}");
    let audit_before = sys.state.audit().size().expect("size");
    let ask = |patient: &str, types: Value| json!({ "patient": patient, "data_types": types, "purpose": PURPOSE });

    // Who may ask, and what.
    let create = |token: Option<String>, body: Value| {
        let sys = &sys;
        async move { call(sys, "POST", "/v1/consent-requests", token.as_deref(), Some(body)).await }
    };
    let good = ask(&p, json!(["medical-history", "treatment-plans"]));
    assert_eq!(create(None, good.clone()).await.0, 401, "no session");
    refused(create(Some(me.clone()), good.clone()).await, 403, "provider-required", "a patient");
    refused(create(Some(stranger.clone()), good.clone()).await, 403, "provider-required", "no role");
    let nobody = sys.principal("wallet_3").to_string();
    refused(
        create(Some(doctor.clone()), ask(&nobody, json!(["lab-results"]))).await,
        403,
        "patient-not-registered",
        "",
    );
    refused(create(Some(doctor.clone()), ask(&d, json!(["lab-results"]))).await, 403, "request-to-self", "");
    refused(create(Some(doctor.clone()), ask("nobody", json!(["lab-results"]))).await, 400, "invalid-principal", "");
    for (types, code) in [
        (json!(["x-rays"]), "invalid-data-type"),
        (json!(["3"]), "invalid-data-type"),
        (json!([]), "invalid-data-types"),
        (json!(["lab-results", "lab-results"]), "invalid-data-types"),
        (
            json!([
                "basic-info",
                "medical-history",
                "lab-results",
                "treatment-plans",
                "mental-health",
                "genetic",
                "financial"
            ]),
            "invalid-data-types",
        ),
    ] {
        refused(create(Some(doctor.clone()), ask(&p, types.clone())).await, 400, code, &types.to_string());
    }
    for purpose in [String::new(), "   ".into(), "two\nlines".into(), "x".repeat(501)] {
        let body = json!({ "patient": p, "data_types": ["lab-results"], "purpose": purpose });
        refused(create(Some(doctor.clone()), body).await, 400, "invalid-purpose", &purpose);
    }
    for blocks in [json!(0), json!(5_259_601)] {
        let body =
            json!({ "patient": p, "data_types": ["lab-results"], "purpose": PURPOSE, "duration_blocks": blocks });
        refused(create(Some(doctor.clone()), body).await, 400, "invalid-duration", &blocks.to_string());
    }
    let extra = json!({ "patient": p, "data_types": ["lab-results"], "purpose": PURPOSE, "reason": "x" });
    refused(create(Some(doctor.clone()), extra).await, 400, "invalid-body", "an unknown field");
    refused(
        create(Some(doctor.clone()), json!([p, ["lab-results"], null, PURPOSE])).await,
        400,
        "invalid-body",
        "an array",
    );
    assert_eq!(sys.state.outbox_depth().expect("depth"), 0, "refusals notify nothing");

    // The provider asks.
    let mut body = good.clone();
    body["duration_blocks"] = json!(1000);
    let (s, made) = create(Some(doctor.clone()), body).await;
    assert_eq!(s, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_string();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
    assert_eq!(
        (&made["state"], &made["provider"], &made["patient"], &made["purpose"], &made["duration_blocks"]),
        (&json!("pending"), &json!(d), &json!(p), &json!(PURPOSE), &json!(1000)),
        "{made}"
    );
    assert_eq!(made["data_types"], json!(["medical-history", "treatment-plans"]));
    assert_eq!(made["granted_on_chain"], false, "a request grants nothing");
    assert_eq!(made["expires_ms"].as_u64().expect("expires") - made["created_ms"].as_u64().expect("created"), 7 * DAY);

    // Both parties list it; a third party does not see it.
    let pending = |token: String, query: &'static str| {
        let sys = &sys;
        async move {
            let (s, list) = call(sys, "GET", &format!("/v1/consent-requests{query}"), Some(&token), None).await;
            assert_eq!(s, 200, "{list}");
            list["requests"]
                .as_array()
                .expect("requests")
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pending(me.clone(), "").await, std::slice::from_ref(&id));
    assert_eq!(pending(doctor.clone(), "?state=pending").await, std::slice::from_ref(&id));
    assert!(pending(stranger.clone(), "?state=all").await.is_empty());
    refused(call(&sys, "GET", "/v1/consent-requests?state=open", Some(&me), None).await, 400, "invalid-state", "");
    refused(call(&sys, "GET", "/v1/consent-requests?limit=5", Some(&me), None).await, 400, "invalid-query", "");
    assert_eq!(call(&sys, "GET", "/v1/consent-requests", None, None).await.0, 401);

    // The patient is told who asks for what, never why.
    assert_eq!(sys.state.outbox_depth().expect("depth"), 1);
    let (delivered, _) = sys.state.deliver_once(&reqwest::Client::new()).await.expect("deliver");
    assert_eq!(delivered, 1);
    let (_, _, event) = got.lock().expect("lock")[0].clone();
    let event_text = String::from_utf8_lossy(&event).into_owned();
    let event: Value = serde_json::from_slice(&event).expect("json");
    assert_eq!((&event["kind"], &event["patient"], &event["actor"]), (&json!("consent-request"), &json!(p), &json!(d)));
    let detail = event["detail"].as_str().expect("detail");
    assert!(detail.contains(&id) && detail.contains("medical-history, treatment-plans"), "{detail}");
    assert!(
        !event_text.contains("HbA1c") && !event_text.contains("surgery"),
        "no purpose in a notification: {event_text}"
    );

    // Reads: its parties only; anyone else as if it did not exist.
    let one = |token: &str, id: &str| {
        let (sys, path, token) = (&sys, format!("/v1/consent-requests/{id}"), token.to_string());
        async move { call(sys, "GET", &path, Some(&token), None).await }
    };
    for token in [&me, &doctor] {
        let (s, r) = one(token, &id).await;
        assert_eq!((s, &r["purpose"]), (200, &json!(PURPOSE)), "{r}");
    }
    refused(one(&stranger, &id).await, 404, "not-found", "a third party");
    refused(one(&doctor, &"f".repeat(32)).await, 404, "not-found", "unknown");
    refused(one(&doctor, "F00D").await, 400, "invalid-consent-request-id", "malformed");
    assert_eq!(call(&sys, "GET", &format!("/v1/consent-requests/{id}"), None, None).await.0, 401);

    // Deciding: the patient only.
    let decide = |token: Option<String>, id: String, what: &'static str, body: Value| {
        let sys = &sys;
        async move { call(sys, "POST", &format!("/v1/consent-requests/{id}/{what}"), token.as_deref(), Some(body)).await }
    };
    let fake = json!({ "txids": [format!("0x{}", "ab".repeat(32))] });
    assert_eq!(decide(None, id.clone(), "approve", fake.clone()).await.0, 401);
    refused(decide(Some(stranger.clone()), id.clone(), "approve", fake.clone()).await, 404, "not-found", "stranger");
    refused(decide(Some(stranger.clone()), id.clone(), "decline", json!({})).await, 404, "not-found", "stranger");
    refused(decide(Some(doctor.clone()), id.clone(), "approve", fake.clone()).await, 403, "patient-only", "provider");
    refused(decide(Some(doctor.clone()), id.clone(), "decline", json!({})).await, 403, "patient-only", "provider");
    let nine: Vec<String> = (0..9u8).map(|b| format!("0x{}", hex::encode([b; 32]))).collect();
    for txids in [
        json!([]),
        json!(nine),
        json!(["ab".repeat(32)]),
        json!([format!("0x{}", "ab".repeat(31))]),
        json!([format!("0x{}", "AB".repeat(32))]),
        json!([fake["txids"][0], fake["txids"][0]]),
    ] {
        refused(
            decide(Some(me.clone()), id.clone(), "approve", json!({ "txids": txids })).await,
            400,
            "invalid-txid",
            &txids.to_string(),
        );
    }
    refused(
        decide(Some(me.clone()), id.clone(), "decline", json!({ "message": "a\u{7}b" })).await,
        400,
        "invalid-message",
        "",
    );
    assert_eq!(pending(me.clone(), "").await, std::slice::from_ref(&id), "still pending after every refusal");

    // The patient grants in their own wallet — one type mined, the other
    // in flight — and approves with both txids.
    let first = grant(&sys, &provider, DataType::MedicalHistory).await;
    sys.mine().await;
    let second = grant(&sys, &provider, DataType::TreatmentPlans).await;
    let (s, approved) = decide(Some(me.clone()), id.clone(), "approve", json!({ "txids": [first, second] })).await;
    assert_eq!(s, 200, "{approved}");
    assert_eq!((&approved["state"], &approved["txids"]), (&json!("approved"), &json!([first, second])));
    assert!(approved["decided_ms"].is_u64());
    assert_eq!(approved["granted_on_chain"], false, "one grant is not mined yet");
    refused(decide(Some(me.clone()), id.clone(), "approve", fake.clone()).await, 409, "request-decided", "twice");
    refused(decide(Some(me.clone()), id.clone(), "decline", json!({})).await, 409, "request-decided", "after approval");
    sys.mine().await;
    let (_, seen) = one(&doctor, &id).await;
    assert_eq!((&seen["state"], &seen["granted_on_chain"]), (&json!("approved"), &json!(true)), "{seen}");
    assert!(pending(me.clone(), "").await.is_empty());
    assert_eq!(pending(doctor.clone(), "?state=all").await, std::slice::from_ref(&id));

    // A second request, declined with a message the provider reads.
    let (s, second_request) = create(Some(doctor.clone()), ask(&p, json!(["financial"]))).await;
    assert_eq!(s, 201, "{second_request}");
    let declined_id = second_request["id"].as_str().expect("id").to_string();
    let (s, declined) = decide(Some(me.clone()), declined_id.clone(), "decline", json!({ "message": MESSAGE })).await;
    assert_eq!((s, &declined["state"], &declined["message"]), (200, &json!("declined"), &json!(MESSAGE)), "{declined}");
    assert_eq!(one(&doctor, &declined_id).await.1["message"], MESSAGE);
    refused(
        decide(Some(me.clone()), declined_id.clone(), "approve", fake.clone()).await,
        409,
        "request-decided",
        "declined",
    );
    assert_eq!(pending(doctor.clone(), "?state=all").await, [declined_id.clone(), id.clone()], "newest first");

    // At most five pending to one patient; the chain's own facts show
    // (lab results are granted already).
    let mut five = Vec::new();
    for _ in 0..5 {
        let (s, r) = create(Some(doctor.clone()), ask(&p, json!(["lab-results"]))).await;
        assert_eq!((s, &r["granted_on_chain"]), (201, &json!(true)), "{r}");
        five.push(r["id"].as_str().expect("id").to_string());
    }
    refused(create(Some(doctor.clone()), ask(&p, json!(["lab-results"]))).await, 409, "consent-request-limit", "sixth");

    // Eight days on: expired, undecidable, no longer counted.
    offset.fetch_add(8 * DAY, Ordering::SeqCst);
    assert_eq!(one(&me, &five[0]).await.1["state"], "expired");
    assert!(pending(me.clone(), "").await.is_empty());
    refused(decide(Some(me.clone()), five[0].clone(), "approve", fake.clone()).await, 409, "request-expired", "");
    refused(decide(Some(me.clone()), five[1].clone(), "decline", json!({})).await, 409, "request-expired", "");
    let (s, again) = create(Some(doctor.clone()), ask(&p, json!(["lab-results"]))).await;
    assert_eq!(s, 201, "expired requests do not count: {again}");

    // The audit log holds every step, allowed and refused (a caller
    // without a session adds nothing), and neither the purpose nor the
    // message.
    let size = sys.state.audit().size().expect("size");
    let entries = sys.state.audit().entries(audit_before, size - audit_before).expect("entries");
    let mut steps = std::collections::BTreeSet::new();
    for (_, e) in &entries {
        let leaf = String::from_utf8(e.leaf()).expect("utf-8");
        assert!(!leaf.contains("HbA1c") && !leaf.contains("Osei"), "free text in the audit log: {leaf}");
        if e.action.starts_with("consent-request.") {
            assert_ne!(e.actor, "anonymous", "{leaf}");
            steps.insert((e.action.clone(), e.outcome.clone(), e.reason.clone().unwrap_or_default()));
        }
    }
    let step = |a: &str, o: &str, r: &str| (format!("consent-request.{a}"), o.to_string(), r.to_string());
    for want in [
        step("create", "allowed", ""),
        step("create", "denied", "provider-required"),
        step("create", "denied", "patient-not-registered"),
        step("create", "denied", "request-to-self"),
        step("create", "denied", "invalid-data-types"),
        step("create", "denied", "invalid-purpose"),
        step("create", "denied", "invalid-duration"),
        step("create", "denied", "consent-request-limit"),
        step("list", "allowed", ""),
        step("read", "allowed", ""),
        step("read", "denied", "not-found"),
        step("read", "denied", "invalid-consent-request-id"),
        step("approve", "allowed", ""),
        step("approve", "denied", "not-found"),
        step("approve", "denied", "patient-only"),
        step("approve", "denied", "invalid-txid"),
        step("approve", "denied", "request-decided"),
        step("approve", "denied", "request-expired"),
        step("decline", "allowed", ""),
        step("decline", "denied", "not-found"),
        step("decline", "denied", "patient-only"),
        step("decline", "denied", "invalid-message"),
        step("decline", "denied", "request-decided"),
        step("decline", "denied", "request-expired"),
    ] {
        assert!(steps.contains(&want), "no audit entry {want:?} among {steps:?}");
    }
    // The creation's entry names the patient, the request and its types;
    // the approval's the txids; the third party's attempt is the patient's
    // to see too.
    let entry = |action: &str, outcome: &str, actor: &str| {
        entries
            .iter()
            .map(|(_, e)| e)
            .find(|e| e.action == action && e.outcome == outcome && e.actor == actor)
            .unwrap_or_else(|| panic!("{action} {outcome} by {actor}"))
            .clone()
    };
    let created = entry("consent-request.create", "allowed", &d);
    assert_eq!(created.patient.as_deref(), Some(p.as_str()));
    assert!(
        created.detail.as_deref().is_some_and(|t| t.contains(&id) && t.contains("for 1000 burn blocks")),
        "{created:?}"
    );
    let approval = entry("consent-request.approve", "allowed", &p);
    assert!(approval.detail.as_deref().is_some_and(|t| t.contains(&first) && t.contains(&second)), "{approval:?}");
    let probe = entry("consent-request.read", "denied", &nobody);
    assert_eq!(probe.patient.as_deref(), Some(p.as_str()));
}
