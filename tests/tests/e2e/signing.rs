//! The two ways a version reaches the chain besides custodial signing:
//! a provider's own wallet signs the call the API returns; and a version
//! stored while the node was unreachable (as after a crash between store
//! and broadcast) stays `pending` until the chain shows its anchor, while
//! one the node refuses outright is `failed` for good.

use std::sync::Arc;

use medanchor_api::app::{self, ApiConfig, AppState, Custody};
use medanchor_api::auth::{Claims, SessionKey};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType, RecordType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use serde_json::{json, Value};

use super::System;

/// A second API over `sys`'s chain view, with its own storage, whose node
/// RPC is `rpc` and which holds `key` as a custodial provider key.
async fn side_api(sys: &System, rpc: &str, key: StacksKey) -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut custody = Custody::default();
    custody.insert(key);
    let state = AppState::open(
        ApiConfig::new("test", DEPLOYER_ADDRESS),
        dir.path(),
        &dir.path().join("keys"),
        Some([5; 32]),
        Arc::new(sys.reader.clone()),
        RpcClient::new(rpc).expect("rpc"),
        custody,
    )
    .expect("the service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(medanchor_api::serve(listener, state.clone(), std::future::pending()));
    (state, api, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_signed_record_is_anchored() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_3").await;
    let token = sys.sign_in("wallet_3").await;
    let url = format!("{}/v1/patients/{patient}/records", sys.api);
    let body = json!({ "record_type": "lab-results", "content": { "test": "LDL" } });

    // The node holds no key for wallet_3: custodial signing is refused.
    let r = sys.http.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
    assert_eq!(r.status(), 403);
    let refused: Value = r.json().await.expect("problem");
    assert_eq!(refused["code"], "no-custodial-key", "{refused}");

    let mut body = body;
    body["signing"] = json!("wallet");
    let r = sys.http.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
    assert_eq!(r.status(), 202);
    let record: Value = r.json().await.expect("json");
    assert_eq!(record["anchor"]["status"], "pending");
    assert!(record["anchor"]["txid"].is_null(), "nothing sent by the node: {record}");
    let to_sign = &record["sign_and_broadcast"];
    assert_eq!(to_sign["contract"], format!("{DEPLOYER_ADDRESS}.record-management"), "{record}");
    assert_eq!(to_sign["function"], "create-record");
    let args = to_sign["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| ClarityValue::from_hex(a.as_str().expect("hex")).expect("clarity value"))
        .collect();

    // The provider's own wallet signs and broadcasts it.
    let call = ContractCall { contract: ContractName::RecordManagement, function: "create-record", args };
    let wallet = Wallet::connect(sys.key("wallet_3").clone(), RpcClient::new(&sys.rpc).expect("rpc"), DEPLOYER_ADDRESS)
        .await
        .expect("wallet");
    wallet.submit(&call, None).await.expect("broadcast");
    sys.mine().await;
    assert_eq!(app::track_once(&sys.state).expect("track"), 1);
    let id = record["record_id"].as_str().expect("id");
    let (status, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!((status, &read["anchor"]["status"]), (200, &json!("anchored")), "{read}");
    assert!(read["anchor"]["txid"].is_string(), "the tracker found the wallet's transaction: {read}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_stored_but_never_broadcast_stays_pending_until_the_chain_shows_it() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;

    // A second API over the same chain view whose node RPC is a closed
    // port: the version is stored, the transaction never leaves.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (state, api, _dir) = side_api(&sys, &format!("http://{closed}"), sys.key("wallet_2").clone()).await;
    let token = sys.sign_in("wallet_2").await;

    let r = sys
        .http
        .post(format!("{api}/v1/patients/{patient}/records"))
        .bearer_auth(&token)
        .json(&json!({ "record_type": "lab-results", "content": { "test": "TSH" } }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 503, "the node is unreachable");
    let pending = state.keys().0.pending().expect("pending");
    assert_eq!(pending.len(), 1, "metadata and blob are durable before the broadcast");
    let (id, version) = pending[0];
    let meta = state.keys().0.record(&id, version).expect("db").expect("meta");
    let hex_id = hex::encode(id);
    let get = || async {
        let r = sys.http.get(format!("{api}/v1/records/{hex_id}")).bearer_auth(&token).send().await.expect("get");
        (r.status().as_u16(), r.json::<Value>().await.expect("json"))
    };
    let (status, read) = get().await;
    assert_eq!((status, &read["anchor"]["status"], &read["anchor"]["txid"]), (200, &json!("pending"), &Value::Null));

    // Blocks go by without the anchor: still pending, consistently.
    sys.mine().await;
    assert_eq!(app::track_once(&state).expect("track"), 0);
    assert_eq!(get().await.1["anchor"]["status"], "pending");

    // Recovery: the same call is broadcast later (by a restarted node or
    // the provider); once the chain shows it, the tracker settles it.
    let hash: [u8; 32] = *meta.data_hash;
    sys.tx("wallet_2", ContractCall::create_record(id, &patient, RecordType::LabResults, hash, None, 1).expect("call"))
        .await;
    assert_eq!(app::track_once(&state).expect("track"), 1);
    let (_, read) = get().await;
    assert_eq!(read["anchor"]["status"], "anchored", "{read}");
    assert!(read["anchor"]["txid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_the_node_refuses_is_failed_and_stays_failed() {
    let sys = super::start().await;
    // A provider key with no STX: the node refuses its transactions.
    let poor = StacksKey::from_hex(&format!("{}01", "17".repeat(32))).expect("key");
    let poor_principal: Principal = poor.address(TESTNET_SINGLESIG).to_string().parse().expect("principal");
    let patient = sys.principal("wallet_1");
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(poor_principal.clone()), ClarityValue::Buffer(vec![4; 32])],
        },
    )
    .await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    sys.tx("wallet_1", ContractCall::grant_consent(&poor_principal, DataType::LabResults, GrantDuration::UntilRevoked))
        .await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&poor_principal, AccessLevel::Write, GrantDuration::UntilRevoked)
            .expect("call"),
    )
    .await;
    let (state, api, _dir) = side_api(&sys, &sys.rpc, poor).await;
    // A session as the node itself issues them (same session key).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let claims = Claims { sub: poor_principal.to_string(), iat: now, exp: now + 600, jti: "t".into() };
    let token = SessionKey::for_node(&[5; 32]).issue(&claims);

    let r = sys
        .http
        .post(format!("{api}/v1/patients/{patient}/records"))
        .bearer_auth(&token)
        .json(&json!({ "record_type": "lab-results", "content": { "test": "CRP" } }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    let record: Value = r.json().await.expect("json");
    assert_eq!(record["anchor"]["status"], "failed", "{record}");
    assert!(record["anchor"]["failure"].as_str().expect("failure").contains("NotEnoughFunds"), "{record}");
    let id = record["record_id"].as_str().expect("id");
    sys.mine().await;
    assert_eq!(app::track_once(&state).expect("track"), 0, "failed is final: nothing pending");
    let r = sys.http.get(format!("{api}/v1/records/{id}")).bearer_auth(&token).send().await.expect("get");
    let read: Value = r.json().await.expect("json");
    assert_eq!(read["anchor"]["status"], "failed", "{read}");
}
