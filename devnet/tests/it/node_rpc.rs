//! The node over real HTTP on loopback: RPC shapes, submission paths,
//! devnet controls, and observer delivery through a flaky observer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clarity_repl::clarity::vm::Value;
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::TESTNET_SINGLESIG;
use medanchor_wallet::txbuild::{serialize, sign, Payload, TxOptions};
use serde_json::Value as Json;

struct Running {
    base: String,
    node: Node,
    accounts: Vec<DevnetAccount>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
}

async fn start(observers: Vec<String>) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start_in(dir.path(), observers).await;
    running._dir = Some(dir);
    running
}

/// A node on the chain stored in `dir` (opened again if it exists).
async fn start_in(dir: &std::path::Path, observers: Vec<String>) -> Running {
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
    let mut config = NodeConfig::new(dir.to_path_buf(), accounts.clone());
    config.block_interval = None; // blocks only on demand: tests step the chain
    config.observers = observers;
    config.observer_timeout = Duration::from_millis(300);
    let node = Node::open(config).expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runner = node.clone();
    let task = tokio::spawn(async move {
        runner
            .run(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("node runs");
    });
    Running { base, node, accounts, stop: Some(tx), task, _dir: None }
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }

    fn key(&self, name: &str) -> &medanchor_wallet::keys::StacksKey {
        &self.accounts.iter().find(|a| a.name == name).expect("account").key
    }

    fn register_tx(&self, name: &str, nonce: u64, id: u8) -> Vec<u8> {
        let deployer = self.key("deployer").address(TESTNET_SINGLESIG);
        let payload = Payload::ContractCall {
            address: deployer,
            contract: "patient-consent".into(),
            function: "register-patient".into(),
            args: vec![Value::buff_from(vec![id; 32]).expect("buff"), Value::none(), Value::none()],
        };
        serialize(&sign(self.key(name), payload, &TxOptions::new(nonce, 1000)).expect("sign"))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(url: String) -> (u16, Json) {
    let r = client().get(url).send().await.expect("get");
    (r.status().as_u16(), r.json().await.expect("json"))
}

fn keys(v: &Json) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("object").keys().map(|s| s.as_str()).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_speaks_stacks_node_shapes() {
    let n = start(vec![]).await;
    let b = &n.base;
    let (status, info) = get(format!("{b}/v2/info")).await;
    assert_eq!(status, 200);
    for field in [
        "burn_block_height",
        "network_id",
        "stacks_tip_height",
        "stacks_tip",
        "stacks_tip_consensus_hash",
        "server_version",
        "peer_version",
        "is_fully_synced",
    ] {
        assert!(info.get(field).is_some(), "/v2/info lacks {field}");
    }
    assert_eq!(info["network_id"], 2147483648u64);
    assert!(!info["stacks_tip"].as_str().expect("hash").starts_with("0x"), "stacks-node omits 0x in /v2/info");

    let wallet = n.key("wallet_1").address(TESTNET_SINGLESIG).to_string();
    let (status, acct) = get(format!("{b}/v2/accounts/{wallet}?proof=0")).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&acct), vec!["balance", "locked", "nonce", "unlock_height"]);
    assert_eq!(acct["balance"], "0x000000000000000000005af3107a4000");
    let (status, _) = get(format!("{b}/v2/accounts/not-a-principal")).await;
    assert_eq!(status, 400);

    // Submit as octet-stream; a re-broadcast returns the same txid.
    let raw = n.register_tx("wallet_1", 0, 1);
    let post = |body: Vec<u8>, ct: &'static str| {
        client().post(format!("{b}/v2/transactions")).header("content-type", ct).body(body).send()
    };
    let r = post(raw.clone(), "application/octet-stream").await.expect("post");
    assert_eq!(r.status(), 200);
    let txid: String = r.json().await.expect("txid");
    assert_eq!(txid.len(), 64);
    let again: String = post(raw.clone(), "application/octet-stream").await.expect("post").json().await.expect("txid");
    assert_eq!(again, txid);
    let (_, pending) = get(format!("{b}/extended/v1/tx/0x{txid}")).await;
    assert_eq!(pending["tx_status"], "pending");
    let (_, nonces) = get(format!("{b}/extended/v1/address/{wallet}/nonces")).await;
    assert_eq!(nonces["possible_next_nonce"], 1);
    assert_eq!(nonces["last_mempool_tx_nonce"], 0);

    // Rejections carry stacks-node's body.
    let r = post(
        serde_json::to_vec(&serde_json::json!({"tx": hex::encode(&raw[..10])})).expect("json"),
        "application/json",
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 400);
    let body: Json = r.json().await.expect("json");
    assert_eq!(body["error"], "transaction rejected");
    assert_eq!(body["reason"], "Deserialization");

    let r = client().post(format!("{b}/devnet/mine?blocks=1")).send().await.expect("mine");
    assert_eq!(r.status(), 200);
    let (_, mined) = get(format!("{b}/extended/v1/tx/0x{txid}")).await;
    assert_eq!(mined["tx_status"], "success");
    assert_eq!(mined["tx_result"]["hex"], "0x0703");
    // Once mined, the same bytes are an old nonce: accepted idempotently.
    let r = post(raw.clone(), "application/octet-stream").await.expect("post");
    assert_eq!(r.status(), 200);
    // A new transaction with a used nonce is refused with BadNonce.
    let stale = n.register_tx("wallet_1", 0, 2);
    let r =
        post(serde_json::to_vec(&serde_json::json!({"tx": hex::encode(&stale)})).expect("json"), "application/json")
            .await
            .expect("post");
    let body: Json = r.json().await.expect("json");
    assert_eq!(body["reason"], "BadNonce");
    assert_eq!(body["reason_data"]["expected"], 1);

    // Read-only call, map entry, data var, interface, source, fees.
    let deployer = n.key("deployer").address(TESTNET_SINGLESIG).to_string();
    let principal_hex = {
        let mut out = Vec::new();
        use clarity_repl::clarity::codec::StacksMessageCodec;
        Value::Principal(n.key("wallet_1").address(TESTNET_SINGLESIG).into())
            .consensus_serialize(&mut out)
            .expect("ser");
        format!("0x{}", hex::encode(out))
    };
    let r: Json = client()
        .post(format!("{b}/v2/contracts/call-read/{deployer}/patient-consent/get-history-length"))
        .json(&serde_json::json!({"sender": wallet, "arguments": [principal_hex]}))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json");
    assert_eq!(r, serde_json::json!({"okay": true, "result": "0x0100000000000000000000000000000001"}));
    let r: Json = client()
        .post(format!("{b}/v2/contracts/call-read/{deployer}/patient-consent/no-such-fn"))
        .json(&serde_json::json!({"sender": wallet, "arguments": []}))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json");
    assert_eq!(r["okay"], false);
    let r: Json = client()
        .post(format!("{b}/v2/map_entry/{deployer}/patient-consent/patients?proof=0"))
        .json(&principal_hex)
        .send()
        .await
        .expect("map")
        .json()
        .await
        .expect("json");
    assert!(r["data"].as_str().expect("data").starts_with("0x0a0c"), "some tuple: {r}");
    let (_, var) = get(format!("{b}/v2/data_var/{deployer}/patient-consent/paused")).await;
    assert_eq!(var["data"], "0x04");
    let (_, iface) = get(format!("{b}/v2/contracts/interface/{deployer}/record-management")).await;
    assert!(iface["functions"].as_array().expect("functions").iter().any(|f| f["name"] == "create-record"));
    let (_, src) = get(format!("{b}/v2/contracts/source/{deployer}/record-management")).await;
    assert_eq!(src["publish_height"], 1);
    let (status, _) = get(format!("{b}/v2/contracts/source/{deployer}/nope")).await;
    assert_eq!(status, 404);
    let rate: Json =
        client().get(format!("{b}/v2/fees/transfer")).send().await.expect("fee").json().await.expect("json");
    assert_eq!(rate, 1);
    let est: Json = client()
        .post(format!("{b}/v2/fees/transaction"))
        .json(&serde_json::json!({"transaction_payload": "0x0102", "estimated_len": 300}))
        .send()
        .await
        .expect("fee")
        .json()
        .await
        .expect("json");
    assert_eq!(est["estimations"].as_array().expect("3").len(), 3);

    // Advancing the burn height is visible to reads at once.
    let before = n.node.lock().chain.tip().burn_block_height;
    let r: Json = client()
        .post(format!("{b}/devnet/advance-burn?blocks=144"))
        .send()
        .await
        .expect("adv")
        .json()
        .await
        .expect("json");
    assert_eq!(r["burn_block_height"], before + 144);
    n.shutdown().await;
}

/// An observer that refuses, then stalls past the timeout, then accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_observer_gets_every_block_in_order() {
    #[derive(Default)]
    struct Seen {
        calls: u32,
        blocks: Vec<u64>,
        burn_blocks: Vec<u64>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |axum::extract::Path(path): axum::extract::Path<String>, body: axum::Json<Json>| {
            let s = s.clone();
            async move {
                let call = {
                    let mut g = s.lock().expect("lock");
                    g.calls += 1;
                    g.calls
                };
                if call <= 3 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                if call == 4 {
                    tokio::time::sleep(Duration::from_millis(800)).await; // past the 300 ms timeout
                    return axum::http::StatusCode::OK;
                }
                let mut g = s.lock().expect("lock");
                match path.as_str() {
                    "new_block" => g.blocks.push(body["block_height"].as_u64().expect("height")),
                    "new_burn_block" => g.burn_blocks.push(body["burn_block_height"].as_u64().expect("height")),
                    _ => {}
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let observer = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("observer") });

    let n = start(vec![observer]).await;
    n.node.mine_blocks(5, 0).await.expect("mine");
    let tip = n.node.lock().chain.tip().height;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = seen.lock().expect("lock").blocks.last().is_some_and(|h| *h >= tip);
        if done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "observer did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let blocks = seen.lock().expect("lock").blocks.clone();
    let mut deduped = blocks.clone();
    deduped.dedup();
    assert_eq!(deduped, (0..=tip).collect::<Vec<_>>(), "in order, none missing (at least once): {blocks:?}");
    n.shutdown().await;
}

/// Delivery resumes after a restart: blocks an observer refused while the
/// node ran are delivered by the reopened node, from the persisted cursor
/// on — and the ones it accepted are not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_delivery_resumes_after_a_restart_from_the_persisted_cursor() {
    let accept_up_to = Arc::new(Mutex::new(3u64));
    let blocks = Arc::new(Mutex::new(Vec::<u64>::new()));
    let (limit, seen) = (accept_up_to.clone(), blocks.clone());
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |axum::extract::Path(path): axum::extract::Path<String>, body: axum::Json<Json>| {
            let (limit, seen) = (limit.clone(), seen.clone());
            async move {
                if path != "new_block" {
                    return axum::http::StatusCode::OK;
                }
                let height = body["block_height"].as_u64().expect("height");
                if height > *limit.lock().expect("lock") {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                seen.lock().expect("lock").push(height);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let observer = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("observer") });

    let dir = tempfile::tempdir().expect("tempdir");
    let n = start_in(dir.path(), vec![observer.clone()]).await;
    n.node.mine_blocks(6, 0).await.expect("mine");
    let tip = n.node.lock().chain.tip().height;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while blocks.lock().expect("lock").last() != Some(&3) {
        assert!(tokio::time::Instant::now() < deadline, "blocks up to 3 were not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n.shutdown().await;
    assert!(tip > 3, "blocks the observer refused exist: tip {tip}");

    // The observer accepts everything now; the reopened node delivers the
    // rest without being asked.
    *accept_up_to.lock().expect("lock") = u64::MAX;
    let n = start_in(dir.path(), vec![observer]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while blocks.lock().expect("lock").last().is_none_or(|h| *h < tip) {
        assert!(tokio::time::Instant::now() < deadline, "delivery did not resume: {:?}", blocks.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = blocks.lock().expect("lock").clone();
    assert_eq!(delivered, (0..=tip).collect::<Vec<_>>(), "each block once, in order, across the restart");
    n.shutdown().await;
}

/// A JSON value reduced to its shape: keys kept (sorted), arrays reduced to
/// their first element, scalars to their type (`0x…` strings as "hex").
fn shape(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Json::Array(a) => Json::Array(a.first().map(shape).into_iter().collect()),
        Json::String(s) if s.starts_with("0x") => Json::String("hex".into()),
        Json::String(_) => Json::String("string".into()),
        Json::Number(_) => Json::String("number".into()),
        Json::Bool(_) => Json::String("bool".into()),
        Json::Null => Json::Null,
    }
}

fn pretty(v: &Json) -> String {
    serde_json::to_string_pretty(&shape(v)).expect("json")
}

fn fixture(name: &str) -> Json {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../indexer/tests/fixtures/stacks-node").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture json")
}

fn key_set(v: &Json) -> std::collections::BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

/// Snapshots of the shapes the node serves and posts (`UPDATE_EXPECT=1`
/// regenerates them after an intended change), and the observer payloads'
/// fields checked against real stacks-node recordings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_and_observer_shapes_match_snapshots_and_stacks_node() {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<(String, Json)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let observer = listener.local_addr().expect("addr").to_string();
    let sink = seen.clone();
    let app = axum::Router::new().fallback(post(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            let v: Json = serde_json::from_slice(&body).expect("observer json");
            sink.lock().expect("lock").push((uri.path().to_string(), v));
            axum::http::StatusCode::OK
        }
    }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let n = start(vec![observer]).await;
    let b = &n.base;
    let wallet = n.key("wallet_1").address(TESTNET_SINGLESIG).to_string();
    let raw = n.register_tx("wallet_1", 0, 7);
    let txid: String = client()
        .post(format!("{b}/v2/transactions"))
        .header("content-type", "application/octet-stream")
        .body(raw)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("txid");
    let stale = n.register_tx("wallet_1", 5, 8);
    n.node.mine_blocks(1, 0).await.expect("mine");
    let rejection: Json = client()
        .post(format!("{b}/v2/transactions"))
        .header("content-type", "application/octet-stream")
        .body(n.register_tx("wallet_1", 0, 9))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let _ = stale;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ours = format!("0x{txid}");
    let block = loop {
        let found = seen
            .lock()
            .expect("lock")
            .iter()
            .find(|(p, v)| {
                p == "/new_block" && v["transactions"].as_array().is_some_and(|t| t.iter().any(|t| t["txid"] == ours))
            })
            .cloned();
        if let Some((_, v)) = found {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no block with a transaction reached the observer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let burn = seen.lock().expect("lock").iter().find(|(p, _)| p == "/new_burn_block").cloned().expect("burn block").1;
    let paths: Vec<String> = seen.lock().expect("lock").iter().map(|(p, _)| p.clone()).collect();
    let mempool = seen
        .lock()
        .expect("lock")
        .iter()
        .find(|(p, _)| p == "/new_mempool_tx")
        .cloned()
        .unwrap_or_else(|| panic!("no mempool payload in {paths:?}"))
        .1;

    assert!(
        block["events"].as_array().is_some_and(|e| !e.is_empty()),
        "the registration printed no event: {}",
        block["transactions"]
    );
    // The fields stacks-node sends, per real recordings (newest format).
    let real = fixture("new_block_nakamoto_failed_deploy_vm_error.json");
    let missing: Vec<_> = [
        "block_hash",
        "block_height",
        "burn_block_hash",
        "burn_block_height",
        "burn_block_time",
        "index_block_hash",
        "parent_block_hash",
        "parent_index_block_hash",
        "parent_microblock",
        "parent_microblock_sequence",
        "miner_txid",
        "matured_miner_rewards",
        "events",
        "transactions",
        "anchored_cost",
        "confirmed_microblocks_cost",
    ]
    .into_iter()
    .filter(|k| !key_set(&block).contains(*k))
    .collect();
    assert!(missing.is_empty(), "our /new_block lacks {missing:?}");
    let real_tx = key_set(&real["transactions"][0]);
    let our_tx = key_set(&block["transactions"][0]);
    let lacking: Vec<_> = real_tx.difference(&our_tx).collect();
    assert!(lacking.is_empty(), "our transactions lack {lacking:?} that stacks-node sends");
    // A recorded print event (the newest recording has none).
    let prints = fixture("new_block_nakamoto_contract_call_prints.json");
    let real_event = prints["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "contract_event")
        .expect("a recorded contract_event")
        .clone();
    assert_eq!(key_set(&block["events"][0]), key_set(&real_event));
    let real_body = key_set(&real_event["contract_event"]);
    let our_body = key_set(&block["events"][0]["contract_event"]);
    // 3.4 dropped the decoded `value`; `raw_value` is what both carry.
    assert!(real_body.difference(&our_body).all(|k| k == "value"), "{real_body:?} vs {our_body:?}");
    assert!(key_set(&fixture("new_burn_block_regtest_2025_reward_recipients.json")).is_superset(&key_set(&burn)));

    let (_, info) = get(format!("{b}/v2/info")).await;
    let (_, account) = get(format!("{b}/v2/accounts/{wallet}")).await;
    let (_, tx) = get(format!("{b}/extended/v1/tx/0x{txid}")).await;
    let (_, nonces) = get(format!("{b}/extended/v1/address/{wallet}/nonces")).await;
    let all = serde_json::json!({
        "/v2/info": info,
        "/v2/accounts": account,
        "/extended/v1/tx": tx,
        "/extended/v1/address/nonces": nonces,
        "POST /v2/transactions rejection": rejection,
        "/new_block": block,
        "/new_burn_block": burn,
        "/new_mempool_tx": mempool,
    });
    expect_test::expect_file!["snapshots/shapes.json"].assert_eq(&pretty(&all));
    n.shutdown().await;
    server.abort();
}
