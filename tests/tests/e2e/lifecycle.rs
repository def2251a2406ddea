//! Record lifecycle over HTTP: finalize (WRITE), unlock and archive
//! (ADMIN) sent with the provider's custodial key, refused with the
//! contract's precise error before any transaction, reflected in reads;
//! an update of a finalized or archived record stores nothing.

use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::branches::create;
use super::System;

async fn post(sys: &System, path: &str, token: &str) -> (u16, Value) {
    let r = sys.http.post(format!("{}{path}", sys.api)).bearer_auth(token).send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn put(sys: &System, id: &str, token: &str, version: u64) -> (u16, Value) {
    let r = sys
        .http
        .put(format!("{}/v1/records/{id}", sys.api))
        .bearer_auth(token)
        .header("if-match", format!("\"{version}\""))
        .json(&json!({ "record_type": "lab-results", "content": { "value": version } }))
        .send()
        .await
        .expect("put");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn access(sys: &System, level: AccessLevel) -> ContractCall {
    ContractCall::grant_provider_access(&sys.principal("wallet_2"), level, GrantDuration::UntilRevoked).expect("call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_unlock_archive_are_checked_sent_and_reflected() {
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
    sys.tx("wallet_1", access(&sys, AccessLevel::Write)).await;
    let token = sys.sign_in("wallet_2").await;
    let patient_token = sys.sign_in("wallet_1").await;
    let id = create(&sys, &token, &patient, "lab-results").await;

    // Not on-chain yet: nothing to finalize.
    assert_eq!(post(&sys, &format!("/v1/records/{id}/finalize"), &token).await.0, 404);
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let (status, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!((status, &read["status"], &read["finalized"]), (200, &json!("active"), &json!(false)), "{read}");

    // The patient may not finalize (patients never write).
    let (status, refused) = post(&sys, &format!("/v1/records/{id}/finalize"), &patient_token).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("no-custodial-key")), "{refused}");

    let (status, sent) = post(&sys, &format!("/v1/records/{id}/finalize"), &token).await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["txid"].is_string(), "{sent}");
    sys.mine().await;
    let (_, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!(read["finalized"], true, "{read}");

    // A finalized record: the update is refused before anything is stored.
    let (status, refused) = put(&sys, &id, &token, 1).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-RECORD-FINALIZED")), "{refused}");
    let raw: [u8; 16] = hex::decode(&id).expect("hex").try_into().expect("16");
    assert_eq!(sys.state.keys().0.versions(&raw).expect("db").len(), 1, "nothing stored");
    let (status, refused) = post(&sys, &format!("/v1/records/{id}/finalize"), &token).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-RECORD-FINALIZED")), "{refused}");

    // Unlock needs ADMIN access.
    let (status, refused) = post(&sys, &format!("/v1/records/{id}/unlock"), &token).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-INSUFFICIENT-ACCESS")), "{refused}");
    sys.tx("wallet_1", access(&sys, AccessLevel::Admin)).await;
    let (status, sent) = post(&sys, &format!("/v1/records/{id}/unlock"), &token).await;
    assert_eq!(status, 202, "{sent}");
    sys.mine().await;
    let (status, updated) = put(&sys, &id, &token, 1).await;
    assert_eq!(status, 202, "{updated}");
    sys.mine().await;
    assert_eq!(medanchor_api::app::track_once(&sys.state).expect("track"), 1);

    // Archive: then no more updates, and unlock says not finalized first.
    let (status, sent) = post(&sys, &format!("/v1/records/{id}/archive"), &token).await;
    assert_eq!(status, 202, "{sent}");
    sys.mine().await;
    let (_, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!((&read["status"], &read["version"]), (&json!("archived"), &json!(2)), "{read}");
    let (status, refused) = put(&sys, &id, &token, 2).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-RECORD-NOT-ACTIVE")), "{refused}");
    let (status, refused) = post(&sys, &format!("/v1/records/{id}/archive"), &token).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-RECORD-NOT-ACTIVE")), "{refused}");

    // Each attempt is audited with its outcome.
    let (_, log) = sys.get("/v1/audit/entries?limit=1000", &patient_token).await;
    let seen: Vec<(String, String)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (e["entry"]["action"].as_str().unwrap_or("").into(), e["entry"]["outcome"].as_str().unwrap_or("").into())
        })
        .collect();
    for expected in [
        ("record.finalize", "allowed"),
        ("record.finalize", "denied"),
        ("record.unlock", "denied"),
        ("record.unlock", "allowed"),
        ("record.archive", "allowed"),
        ("record.archive", "denied"),
        ("record.update", "denied"),
    ] {
        assert!(seen.contains(&(expected.0.into(), expected.1.into())), "{expected:?} in {seen:?}");
    }
}
