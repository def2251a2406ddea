//! Verification on the live system: the anchoring task puts the audit log's
//! root on-chain (after the owner authorizes the operator) and the chain's
//! head is the log's root at that size; the trust-us routes and the
//! ciphertext route agree with the chain; a blob altered in storage shows.

use std::time::Duration;

use medanchor_api::anchoring::{self, OnChainHead};
use medanchor_api::merkle;
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::{ContractCall, RpcClient};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::System;

/// Mines until the operator's on-chain head reaches `size`.
async fn anchored_at(sys: &System, node: &RpcClient, log: &str, size: u64) -> OnChainHead {
    for _ in 0..200 {
        sys.mine().await;
        if let Some(h) = anchoring::read_audit_head(node, DEPLOYER_ADDRESS, log).await.expect("head") {
            if h.tree_size >= size {
                return h;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the audit log was not anchored at size {size}");
}

async fn get(sys: &System, path: &str) -> (u16, Value) {
    let r = sys.http.get(format!("{}{path}", sys.api)).send().await.expect("get");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_roots_are_anchored_and_records_verify_against_the_chain() {
    let sys = super::start().await;
    let (patient, operator) = (sys.principal("wallet_1"), sys.principal("faucet"));
    let log = operator.to_string();
    let node = RpcClient::new(&sys.rpc).expect("rpc");

    // The owner authorizes the operator; a provider writes a record.
    assert!(!anchoring::is_anchor_operator(&node, DEPLOYER_ADDRESS, &log).await.expect("read"));
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-anchor-operator",
            args: vec![ClarityValue::Principal(operator.clone()), ClarityValue::Bool(true)],
        },
    )
    .await;
    assert!(anchoring::is_anchor_operator(&node, DEPLOYER_ADDRESS, &log).await.expect("read"));
    sys.consent_provider("wallet_2").await;
    let provider_token = sys.sign_in("wallet_2").await;
    let auditor_token = sys.sign_in("faucet").await;
    let record: Value = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(&provider_token)
        .json(&json!({ "record_type": "lab-results", "content": { "test": "HbA1c", "value": 5.4 } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = record["record_id"].as_str().expect("id").to_string();
    let hash = record["anchor"]["data_hash"].as_str().expect("hash").to_string();
    sys.mine().await;
    assert_eq!(medanchor_api::app::track_once(&sys.state).expect("track"), 1);

    // The trust-us views (no session needed), and the raw ciphertext.
    let (status, v) = sys.get(&format!("/v1/verify/record/{id}"), &auditor_token).await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("anchored")), "{v}");
    assert!(v["trust"].as_str().expect("trust").starts_with("trust-us"));
    assert_eq!((v["blob"]["matches"].as_bool(), &v["blob"]["sha256"]), (Some(true), &json!(hash)), "{v}");
    assert_eq!(v["chain"]["version"]["data_hash"], json!(hash));
    let txid = |v: &Value| v.as_str().map(|t| t.trim_start_matches("0x").to_string());
    assert_eq!(txid(&v["chain"]["version"]["txid"]), txid(&record["anchor"]["txid"]), "{v}");
    let (status, h) = sys.get(&format!("/v1/verify/hash/{hash}"), &auditor_token).await;
    assert_eq!((status, h["verdict"].as_str()), (200, Some("anchored")), "{h}");
    assert_eq!(h["anchors"][0]["record_id"], json!(format!("0x{id}")));
    assert_eq!(h["anchors"][0]["version"], 1);
    assert_eq!(h["api_copy"]["blob"]["matches"], true);
    let (status, none) = get(&sys, &format!("/v1/verify/hash/{}", "00".repeat(32))).await;
    assert_eq!((status, none["verdict"].as_str()), (200, Some("not-anchored")), "{none}");
    assert_eq!(get(&sys, &format!("/v1/verify/hash/{}", "00".repeat(3))).await.0, 400);
    assert_eq!(get(&sys, &format!("/v1/verify/record/{}", "ab".repeat(16))).await.0, 404);
    // The ciphertext: a session first, then the chain's rule (or an
    // auditor's role); refusals are audited.
    let blob_url = format!("{}/v1/verify/record/{id}/blob?version=1", sys.api);
    assert_eq!(sys.http.get(&blob_url).send().await.expect("blob").status(), 401);
    let stranger = sys.sign_in("wallet_3").await;
    let refused = sys.http.get(&blob_url).bearer_auth(&stranger).send().await.expect("blob");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["reason"]["name"], "ERR-NO-CONSENT", "{body}");
    let (_, entries) = sys.get("/v1/audit/entries?limit=1000", &auditor_token).await;
    let last = &entries["entries"].as_array().expect("entries").last().expect("entry")["entry"];
    assert_eq!((last["action"].as_str(), last["outcome"].as_str()), (Some("verify.blob"), Some("denied")), "{last}");
    let patient_token = sys.sign_in("wallet_1").await;
    assert_eq!(sys.http.get(&blob_url).bearer_auth(&patient_token).send().await.expect("blob").status(), 200);
    let blob = sys.http.get(&blob_url).bearer_auth(&auditor_token).send().await.expect("blob");
    assert_eq!(blob.status(), 200);
    assert_eq!(blob.headers()["x-record-version"], "1");
    let bytes = blob.bytes().await.expect("bytes");
    assert_eq!(format!("0x{}", hex::encode(Sha256::digest(&bytes))), hash, "the served bytes are the anchored ones");

    // The anchoring task puts the log's root on-chain: the chain's head is
    // the log's root at that size.
    let before = anchoring::read_audit_head(&node, DEPLOYER_ADDRESS, &log).await.expect("head");
    assert_eq!(before, None);
    let (_, info) = get(&sys, "/v1/audit/anchor").await;
    assert_eq!(info["anchoring"], false, "{info}");
    let task = anchoring::spawn_audit_anchor(sys.state.clone(), sys.key("faucet").clone(), Duration::from_millis(50));
    let size = sys.state.audit().size().expect("size");
    let head = anchored_at(&sys, &node, &log, size).await;
    assert_eq!(head.tree_size, size, "nothing was appended meanwhile");
    assert_eq!(head.root_bytes(), Some(sys.state.audit().root(size).expect("root")));
    let checkpoint = anchoring::read_audit_checkpoint(&node, DEPLOYER_ADDRESS, &log, size).await.expect("checkpoint");
    assert_eq!(checkpoint.as_ref().map(|c| &c.root), Some(&head.root));

    // The API names the log and, once the task has read it, its head.
    let mut info = Value::Null;
    for _ in 0..100 {
        info = get(&sys, "/v1/audit/anchor").await.1;
        if info["head"]["tree_size"].as_u64() == Some(size) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((info["log"].as_str(), info["head"]["tree_size"].as_u64()), (Some(log.as_str()), Some(size)), "{info}");
    assert_eq!(info["head"]["root"], json!(head.root));
    assert_eq!(info["checkpoint"]["key_name"], "medanchor.localhost");

    // What `medanchor verify audit` does: the last anchored entry's proof
    // at exactly the on-chain size verifies against the on-chain root.
    let (_, entries) = sys.get(&format!("/v1/audit/entries?from={}&limit=1", size - 1), &auditor_token).await;
    let leaf = merkle::leaf_hash(entries["entries"][0]["leaf"].as_str().expect("leaf").as_bytes());
    let (_, proof) =
        sys.get(&format!("/v1/audit/proof/inclusion?index={}&size={size}", size - 1), &auditor_token).await;
    let proof: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex").try_into().expect("32"))
        .collect();
    let root: [u8; 32] = head.root_bytes().expect("root");
    merkle::verify_inclusion(&leaf, size - 1, size, &proof, &root).expect("included under the on-chain root");

    // Anonymous verification calls leave no entry (nobody can grow the log
    // without signing in); a signed-in caller's do, and the next anchor
    // follows with the larger size.
    let before_anonymous = sys.state.audit().size().expect("size");
    for _ in 0..20 {
        assert_eq!(get(&sys, &format!("/v1/verify/record/{id}")).await.0, 200);
        assert_eq!(get(&sys, &format!("/v1/verify/hash/{hash}")).await.0, 200);
    }
    assert_eq!(sys.state.audit().size().expect("size"), before_anonymous, "anonymous calls are not logged");
    assert_eq!(sys.get(&format!("/v1/verify/record/{id}"), &auditor_token).await.0, 200);
    let grown = sys.state.audit().size().expect("size");
    assert!(grown > size, "the calls above were audited");
    let next = anchored_at(&sys, &node, &log, grown).await;
    assert!(next.tree_size >= grown);
    assert_eq!(next.root_bytes(), Some(sys.state.audit().root(next.tree_size).expect("root")));
    task.abort();

    // Every verification call is in the log, about the patient.
    let (_, all) = sys.get("/v1/audit/entries?limit=1000", &auditor_token).await;
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entry"]["patient"] == patient.to_string())
        .filter_map(|e| e["entry"]["action"].as_str())
        .collect();
    for action in ["verify.record", "verify.hash", "verify.blob"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    // A blob altered in storage: the trust-us view says so, and the
    // ciphertext route refuses to serve it.
    let hex_hash = hash.trim_start_matches("0x");
    let path = sys._dir.path().join("blobs").join(&hex_hash[..2]).join(hex_hash);
    let mut altered = std::fs::read(&path).expect("blob");
    altered[0] ^= 1;
    std::fs::write(&path, &altered).expect("tamper");
    let (status, v) = get(&sys, &format!("/v1/verify/record/{id}")).await;
    assert_eq!(
        (status, v["verdict"].as_str(), v["blob"]["matches"].as_bool()),
        (200, Some("blob-corrupt"), Some(false))
    );
    let (status, v) = sys.get(&format!("/v1/verify/record/{id}"), &auditor_token).await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("blob-corrupt")), "signed in: {v}");
    let (status, v) = sys.get(&format!("/v1/verify/record/{id}/blob"), &auditor_token).await;
    assert_eq!((status, v["code"].as_str()), (500, Some("integrity-failure")), "{v}");
    // A read of it fails the same way, audited as an integrity failure,
    // and the tampering alert is raised naming the record and the entries.
    let (status, v) = sys.get(&format!("/v1/records/{id}"), &provider_token).await;
    assert_eq!((status, v["code"].as_str()), (500, Some("integrity-failure")), "{v}");
    assert!(!v.to_string().contains(hex_hash), "the detail stays in the log: {v}");
    let (_, flags) = sys.get("/v1/admin/flags", &auditor_token).await;
    let bare = id.trim_start_matches("0x");
    let tampering = flags
        .as_array()
        .expect("flags")
        .iter()
        .find(|f| f["rule"] == "tampering")
        .unwrap_or_else(|| panic!("no tampering alert: {flags}"));
    assert_eq!(
        (tampering["kind"].as_str(), tampering["subject"].as_str()),
        (Some("security"), Some(format!("record:{bare}").as_str()))
    );
    assert_eq!(tampering["occurrences"], 3, "the signed-in verification, the blob route and the read: {tampering}");
}
