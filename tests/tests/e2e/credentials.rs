//! Provider credentials over HTTP against a real devnet: the provider
//! writes versions (If-Match; two editors, one wins), an admin verifies and
//! the node commits the document's hash on-chain, anyone signed in checks
//! the document against the chain, a document changed at rest stops
//! matching, rejections carry a reason, and the expiry job (on a moved
//! clock) expires the document and clears the chain's active flag. Every
//! refusal branch of each route is tried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use medanchor_api::app;
use medanchor_api::credentials::{CredentialStatus, State};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::{ContractCall, RpcClient};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::System;

const DAY_MS: u64 = 86_400_000;

pub(super) fn document(name: &str, cert_expires: &str) -> Value {
    json!({
        "name": name,
        "license": { "number": "MD-448812", "issuer": "Medical Board of California" },
        "specializations": ["Cardiology"],
        "certifications": [{ "name": "ACLS", "issuer": "American Heart Association", "expires": cert_expires }],
        "medical_school": { "institution": "Johns Hopkins School of Medicine", "year": 2009 },
        "years_of_experience": 14,
        "affiliations": [{ "hospital": "St. Mary's", "department": "Cardiology" }],
        "contact": { "email": "clinic@stmarys.example" }
    })
}

async fn put(sys: &System, token: &str, provider: &str, if_match: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req =
        sys.http.put(format!("{}/v1/providers/{provider}/credentials", sys.api)).bearer_auth(token).json(body);
    if let Some(v) = if_match {
        req = req.header("if-match", v);
    }
    let r = req.send().await.expect("put");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn decide(sys: &System, token: &str, provider: &str, body: &Value) -> (u16, Value) {
    let r = sys
        .http
        .post(format!("{}/v1/providers/{provider}/credentials/decision", sys.api))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Mines a block every 100 ms while the node waits for its transactions.
fn miner(sys: &System) -> tokio::task::JoinHandle<()> {
    let node = sys.node.clone();
    tokio::spawn(async move {
        loop {
            let _ = node.mine_blocks(1, 0).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The chain's `get-provider` through the node's read-only RPC (not the
/// indexer, not the API): (credential-hash, active).
async fn on_chain(sys: &System, provider: &str) -> (Vec<u8>, bool) {
    let v = RpcClient::new(&sys.rpc)
        .expect("rpc")
        .call_read_only(
            DEPLOYER_ADDRESS,
            ContractName::RecordManagement.name(),
            "get-provider",
            DEPLOYER_ADDRESS,
            &[ClarityValue::principal(provider).expect("p")],
        )
        .await
        .expect("get-provider");
    let ClarityValue::Optional(Some(tuple)) = v else { panic!("not registered: {v:?}") };
    let ClarityValue::Tuple(fields) = *tuple else { panic!("shape") };
    let hash = match fields.get("credential-hash") {
        Some(ClarityValue::Buffer(b)) => b.clone(),
        other => panic!("credential-hash: {other:?}"),
    };
    (hash, fields.get("active") == Some(&ClarityValue::Bool(true)))
}

/// Reads until the indexer shows what `done` wants.
async fn read_until(sys: &System, token: &str, provider: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (status, v) = sys.get(&format!("/v1/providers/{provider}/credentials"), token).await;
        assert_eq!(status, 200, "{v}");
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the indexer never showed the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_versioned_verified_on_chain_checkable_and_expire() {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let clock: app::Clock = Arc::new(move || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as u64
            + o.load(Ordering::SeqCst)
    });
    let sys = super::start_with(|c| c.admins = vec![DEPLOYER_ADDRESS.to_string()], Some(clock)).await;
    let provider = sys.principal("wallet_2").to_string();
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::principal(&provider).expect("p"), ClarityValue::Buffer(vec![4; 32])],
        },
    )
    .await;
    let doctor = sys.sign_in("wallet_2").await;
    let patient = sys.sign_in("wallet_1").await;
    let stranger = sys.sign_in("wallet_3").await;
    let admin = sys.sign_in("deployer").await;
    let in_days = |days: u64| {
        let (y, m, d) = medanchor_clinical::credentials::utc_date(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as u64
                + days * DAY_MS,
        );
        format!("{y:04}-{m:02}-{d:02}")
    };
    let doc = document("Dr. Ada Okafor", &in_days(30));

    // Writing: refusals first.
    let r = sys.http.get(format!("{}/v1/providers/{provider}/credentials", sys.api)).send().await.expect("get");
    assert_eq!(r.status(), 401, "anonymous");
    assert_eq!(sys.get(&format!("/v1/providers/{provider}/credentials"), &patient).await.0, 404, "none yet");
    let (status, body) = put(&sys, &patient, &provider, Some("\"0\""), &doc).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("credentials-owner")), "{body}");
    let wallet_3 = sys.principal("wallet_3").to_string();
    let (status, body) = put(&sys, &stranger, &wallet_3, Some("\"0\""), &doc).await;
    assert_eq!(
        (status, body["reason"]["name"].as_str()),
        (403, Some("ERR-PROVIDER-NOT-FOUND")),
        "unregistered: {body}"
    );
    assert_eq!(put(&sys, &doctor, &provider, None, &doc).await.0, 400, "no If-Match");
    let mut bad = doc.clone();
    bad["contact"]["email"] = json!("nope");
    bad["certifications"][0]["expires"] = json!("2027-02-30");
    let (status, body) = put(&sys, &doctor, &provider, Some("\"0\""), &bad).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid-content")), "{body}");
    let paths: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["certifications[0].expires", "contact.email"]);
    let r = sys
        .http
        .put(format!("{}/v1/providers/{provider}/credentials", sys.api))
        .bearer_auth(&doctor)
        .header("if-match", "\"0\"")
        .header("content-type", "application/json")
        .body(vec![b' '; 600 * 1024])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 413, "an oversized document");

    // Version 1: pending, not what the chain commits to.
    let (status, v1) = put(&sys, &doctor, &provider, Some("\"0\""), &doc).await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!((v1["version"].as_u64(), v1["state"].as_str()), (Some(1), Some("pending")));
    assert_eq!(v1["matches_chain"], false);
    assert_eq!(v1["chain"]["active"], true);

    // Two editors on version 1: exactly one wins.
    let (first, second) = (document("Dr. Ada Okafor-Smith", &in_days(30)), document("Dr. A. Okafor", &in_days(30)));
    let (a, b) = tokio::join!(
        put(&sys, &doctor, &provider, Some("\"1\""), &first),
        put(&sys, &doctor, &provider, Some("\"1\""), &second),
    );
    let mut outcomes = [a.0, b.0];
    outcomes.sort_unstable();
    assert_eq!(outcomes, [200, 409], "{a:?} {b:?}");
    let lost = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(lost["current_version"], 2, "{lost}");

    // Deciding: refusals.
    let (status, body) = decide(&sys, &doctor, &provider, &json!({ "version": 2, "decision": "verify" })).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("admin-only")), "{body}");
    let (status, body) = decide(&sys, &admin, &provider, &json!({ "version": 1, "decision": "verify" })).await;
    assert_eq!((status, body["current_version"].as_u64()), (409, Some(2)), "a stale version: {body}");
    let (status, body) =
        decide(&sys, &admin, &provider, &json!({ "version": 2, "decision": "reject", "reason": "  " })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid-reason")), "{body}");
    for shape in [
        json!({ "version": 2, "decision": "reject" }),
        json!({ "version": 2, "decision": "maybe" }),
        json!({ "decision": "verify" }),
    ] {
        let (status, body) = decide(&sys, &admin, &provider, &shape).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("invalid-request")), "{shape}: {body}");
    }
    let (status, _) = decide(&sys, &admin, &wallet_3, &json!({ "version": 1, "decision": "verify" })).await;
    assert_eq!(status, 404, "no document");

    // The admin's queue.
    let (status, queue) = sys.get("/v1/credentials?state=pending", &admin).await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["items"].as_array().map(|i| i.len()), Some(1));
    assert_eq!(sys.get("/v1/credentials", &doctor).await.0, 403);
    assert_eq!(sys.get("/v1/credentials?state=lost", &admin).await.0, 400);

    // Verified: the chain now holds the SHA-256 of the served bytes.
    let mining = miner(&sys);
    let (status, verified) = decide(&sys, &admin, &provider, &json!({ "version": 2, "decision": "verify" })).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["state"], "verified");
    let bytes = sys
        .http
        .get(format!("{}/v1/providers/{provider}/credentials/document", sys.api))
        .bearer_auth(&patient)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    let digest = Sha256::digest(&bytes).to_vec();
    let (chain_hash, active) = on_chain(&sys, &provider).await;
    assert_eq!(chain_hash, digest, "anyone can check the document against get-provider");
    assert!(active);
    let seen = read_until(&sys, &patient, &provider, |v| v["matches_chain"] == true).await;
    assert_eq!(seen["status"]["state"], "verified");
    assert_eq!(seen["document_hash"].as_str(), Some(format!("0x{}", hex::encode(&digest)).as_str()));
    let (status, body) = decide(&sys, &admin, &provider, &json!({ "version": 2, "decision": "verify" })).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("credentials-decided")), "{body}");
    // Earlier versions stay readable by number.
    let r = sys
        .http
        .get(format!("{}/v1/providers/{provider}/credentials/document?version=1", sys.api))
        .bearer_auth(&patient)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_ne!(Sha256::digest(r.bytes().await.expect("bytes")).to_vec(), digest);

    // A document changed at rest no longer matches the commitment.
    let db = sys.state.db();
    let mut stored = db.current_credential(&provider).expect("db").expect("stored");
    let original = stored.clone();
    stored.document.years_of_experience = Some(40);
    db.put_credential(Some(&original.status), &stored).expect("tamper");
    let (_, tampered) = sys.get(&format!("/v1/providers/{provider}/credentials"), &patient).await;
    assert_eq!(tampered["matches_chain"], false, "{tampered}");
    db.put_credential(Some(&stored.status), &original).expect("restore");

    // A new version is pending and does not match until verified; rejected
    // with a reason, it stays rejected.
    let (_, v3) = put(&sys, &doctor, &provider, Some("\"2\""), &document("Dr. Ada Okafor", &in_days(10))).await;
    assert_eq!((v3["state"].as_str(), v3["matches_chain"].as_bool()), (Some("pending"), Some(false)), "{v3}");
    let (status, rejected) = decide(
        &sys,
        &admin,
        &provider,
        &json!({ "version": 3, "decision": "reject", "reason": "licence scan unreadable" }),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(
        rejected["status"],
        json!({ "state": "rejected", "by": DEPLOYER_ADDRESS, "at_ms": rejected["status"]["at_ms"], "reason": "licence scan unreadable" })
    );
    assert_eq!(on_chain(&sys, &provider).await.0, digest, "a rejection commits nothing");

    // An already expired document cannot be verified.
    let (_, v4) = put(&sys, &doctor, &provider, Some("\"3\""), &document("Dr. Ada Okafor", "2020-01-01")).await;
    let (status, body) = decide(&sys, &admin, &provider, &json!({ "version": 4, "decision": "verify" })).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("credentials-expired")), "{v4} {body}");

    // Verify version 5 (valid 10 more days), then move the clock 12 days:
    // the job expires it and clears the chain's active flag.
    let (_, _v5) = put(&sys, &doctor, &provider, Some("\"4\""), &document("Dr. Ada Okafor", &in_days(10))).await;
    let (status, body) = decide(&sys, &admin, &provider, &json!({ "version": 5, "decision": "verify" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sys.state.expire_credentials().await.expect("job"), Vec::<String>::new(), "nothing expired yet");
    offset.store(12 * DAY_MS, Ordering::SeqCst);
    assert_eq!(sys.state.expire_credentials().await.expect("job"), vec![provider.clone()]);
    assert_eq!(sys.state.expire_credentials().await.expect("job"), Vec::<String>::new(), "once");
    let current = sys.state.db().current_credential(&provider).expect("db").expect("current");
    assert_eq!(current.status.state(), State::Expired);
    assert!(
        matches!(&current.status, CredentialStatus::Expired { items, .. } if items == &["certifications[0]".to_string()])
    );
    assert!(!on_chain(&sys, &provider).await.1, "the chain's active flag is cleared");
    let seen = read_until(&sys, &patient, &provider, |v| v["chain"]["active"] == false).await;
    assert_eq!(seen["state"], "expired");
    let (status, queue) = sys.get("/v1/credentials?state=expired", &admin).await;
    assert_eq!((status, queue["items"][0]["provider"].as_str()), (200, Some(provider.as_str())));

    // A current document verified again reactivates the provider.
    offset.store(0, Ordering::SeqCst);
    let (_, _v6) = put(&sys, &doctor, &provider, Some("\"5\""), &document("Dr. Ada Okafor", &in_days(400))).await;
    let (status, body) = decide(&sys, &admin, &provider, &json!({ "version": 6, "decision": "verify" })).await;
    assert_eq!(status, 200, "{body}");
    assert!(on_chain(&sys, &provider).await.1, "active again");
    mining.abort();

    // Every decision and write is in the audit log.
    let actions: Vec<String> = (0..sys.state.audit().size().expect("size"))
        .filter_map(|i| sys.state.audit().entry(i).expect("entry"))
        .filter(|e| e.action.starts_with("credentials."))
        .map(|e| format!("{} {}", e.action, e.outcome))
        .collect();
    for expected in [
        "credentials.update denied",
        "credentials.update allowed",
        "credentials.verify denied",
        "credentials.verify allowed",
        "credentials.reject allowed",
        "credentials.expire allowed",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }
}
