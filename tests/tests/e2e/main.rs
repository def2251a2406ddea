//! The API over real HTTP on loopback, in front of a real devnet node and a
//! real indexer fed by the node's event stream: wallet sign-in, a provider
//! writing an encrypted record that gets anchored on-chain, consent-gated
//! reads (allowed, no consent, revoked), optimistic concurrency, and the
//! audit log with proofs that verify against a signed checkpoint.

use std::sync::Arc;
use std::time::Duration;

use medanchor_api::app::{self, ApiConfig, AppState, Custody};
use medanchor_api::auth::SessionKey;
use medanchor_api::merkle;
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_indexer::query::IndexReader;
use medanchor_indexer::{ChainReader, Indexer, IndexerConfig, RecordReader};
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use serde_json::{json, Value};

mod attachments;
mod authz;
mod branches;
mod consent_requests;
mod conventions;
mod credentials;
mod deletion;
mod exports;
mod health;
mod lifecycle;
mod limits;
mod notifications;
mod openapi;
mod oversight;
mod profiles;
mod search;
mod share;
mod signing;
mod templates;
mod tenants;
mod uploads;
mod verify;

struct System {
    node: Node,
    api: String,
    rpc: String,
    accounts: Vec<DevnetAccount>,
    state: AppState,
    reader: IndexReader,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl System {
    fn key(&self, name: &str) -> &StacksKey {
        &self.accounts.iter().find(|a| a.name == name).expect("account").key
    }

    fn principal(&self, name: &str) -> Principal {
        self.key(name).address(TESTNET_SINGLESIG).to_string().parse().expect("principal")
    }

    /// Sends a call from `name`'s wallet, mines it, waits for the indexer.
    async fn tx(&self, name: &str, call: ContractCall) {
        let wallet = Wallet::connect(self.key(name).clone(), RpcClient::new(&self.rpc).expect("rpc"), DEPLOYER_ADDRESS)
            .await
            .expect("wallet");
        wallet.submit(&call, None).await.expect("submit");
        self.mine().await;
    }

    async fn mine(&self) {
        self.node.mine_blocks(1, 0).await.expect("mine");
        let tip = self.node.lock().chain.tip().height;
        for _ in 0..400 {
            if self.reader.status().expect("status").tip_height == Some(tip) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("indexer did not reach {tip}");
    }

    /// The common on-chain set-up, each step a real signed transaction: the
    /// owner registers `provider`; the patient `wallet_1` registers, grants
    /// it consent for lab results and WRITE access. Returns (patient,
    /// provider).
    async fn consent_provider(&self, provider: &str) -> (Principal, Principal) {
        let (patient, provider) = (self.principal("wallet_1"), self.principal(provider));
        let sys = self;
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
        sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked))
            .await;
        sys.tx(
            "wallet_1",
            ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked)
                .expect("call"),
        )
        .await;
        (patient, provider)
    }

    /// Signs in as `name` the way a Stacks wallet does; returns the token.
    async fn sign_in(&self, name: &str) -> String {
        medanchor_wallet::sign_in(&self.http, &self.api, self.key(name)).await.expect("sign-in")
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.api)).bearer_auth(token).send().await.expect("get");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

async fn start() -> System {
    start_with(|_| {}, None).await
}

/// [`start`] with the API's configuration adjusted and, optionally, its
/// clock replaced (sessions keep the system clock).
async fn start_with(configure: impl FnOnce(&mut ApiConfig), clock: Option<app::Clock>) -> System {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
    let index = Indexer::open(&dir.path().join("index"), IndexerConfig::for_deployer(DEPLOYER_ADDRESS)).expect("index");
    let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let observer_addr = observer.local_addr().expect("addr").to_string();
    tokio::spawn(medanchor_indexer::server::serve_observer(index.clone(), observer, std::future::pending()));

    let mut config = NodeConfig::new(dir.path().join("devnet"), accounts.clone());
    config.block_interval = None;
    config.observers = vec![observer_addr];
    let node = Node::open(config).expect("node");
    let rpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let rpc = format!("http://{}", rpc_listener.local_addr().expect("addr"));
    tokio::spawn(node.clone().run(rpc_listener, std::future::pending()));

    let reader = IndexReader::new(index.db().clone());
    let mut custody = Custody::default();
    custody.insert(accounts.iter().find(|a| a.name == "wallet_2").expect("wallet_2").key.clone());
    let mut api_config = ApiConfig::new("test", DEPLOYER_ADDRESS);
    let auditor =
        accounts.iter().find(|a| a.name == "faucet").expect("faucet").key.address(TESTNET_SINGLESIG).to_string();
    api_config.auditors = vec![auditor];
    configure(&mut api_config);
    let state = AppState::open(
        api_config,
        dir.path(),
        &dir.path().join("keys"),
        Some([5; 32]),
        Arc::new(reader.clone()),
        RpcClient::new(&rpc).expect("rpc"),
        custody,
    )
    .expect("the service");
    let state = match clock {
        Some(c) => state.with_clock(c),
        None => state,
    };
    // The contract owner commits verified credentials (as `up` does).
    let state = state.with_registrar(accounts.iter().find(|a| a.name == "deployer").expect("deployer").key.clone());
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", api_listener.local_addr().expect("addr"));
    tokio::spawn(medanchor_api::serve(api_listener, state.clone(), std::future::pending()));
    let sys = System { node, api, rpc, accounts, state, reader, http: reqwest::Client::new(), _dir: dir };
    sys.mine().await;
    sys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_writes_reads_is_refused_after_revocation_and_everything_is_audited() {
    let sys = start().await;
    let (patient, provider) = (sys.principal("wallet_1"), sys.principal("wallet_2"));

    // On-chain set-up, each step a real signed transaction.
    sys.consent_provider("wallet_2").await;

    let provider_token = sys.sign_in("wallet_2").await;
    let patient_token = sys.sign_in("wallet_1").await;
    let stranger_token = sys.sign_in("wallet_3").await;
    let auditor_token = sys.sign_in("faucet").await;

    // Unauthenticated and malformed requests.
    let r = sys.http.get(format!("{}/v1/me", sys.api)).send().await.expect("get");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let (status, me) = sys.get("/v1/me", &provider_token).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("provider")));

    // The provider writes a lab result; it is pending, then anchored.
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
    assert_eq!(record["anchor"]["status"], "pending", "{record}");
    let id = record["record_id"].as_str().expect("id").to_string();
    assert!(record["anchor"]["txid"].is_string(), "custodial signing sent the transaction: {record}");
    sys.mine().await;
    assert_eq!(app::track_once(&sys.state).expect("track"), 1);
    let (status, read) = sys.get(&format!("/v1/records/{id}"), &provider_token).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["content"], json!({ "test": "HbA1c", "value": 5.4 }));
    assert_eq!(read["anchor"]["status"], "anchored");
    // One text form for a txid: the broadcast's (from the node's RPC, bare
    // hex) and the chain's (from the indexer, `0x`) used to differ, so the
    // same record's txid changed form once it was anchored.
    assert_eq!(read["anchor"]["txid"], record["anchor"]["txid"], "the txid keeps its form once anchored");
    assert!(read["anchor"]["txid"].as_str().is_some_and(|t| t.starts_with("0x") && t.len() == 66), "{read}");
    // The anchor is the chain's: the indexer (fed by the node) holds the same hash.
    let onchain = sys
        .reader
        .anchors(&read["anchor"]["data_hash"].as_str().expect("hash").parse().expect("a data hash"))
        .expect("anchors");
    assert_eq!(onchain.len(), 1);
    assert_eq!(onchain[0].record_id.bare_hex(), id);

    // The patient reads their own record; a stranger is refused with the
    // contract's reason; an auditor has no consent either.
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &patient_token).await.0, 200);
    let (status, refused) = sys.get(&format!("/v1/records/{id}"), &stranger_token).await;
    assert_eq!((status, refused["reason"]["name"].as_str()), (403, Some("ERR-NO-CONSENT")), "{refused}");

    // Optimistic concurrency: a stale If-Match loses with 409.
    let stale = sys
        .http
        .put(format!("{}/v1/records/{id}", sys.api))
        .bearer_auth(&provider_token)
        .header("if-match", "\"7\"")
        .json(&json!({ "record_type": "lab-results", "content": { "value": 5.5 } }))
        .send()
        .await
        .expect("put");
    assert_eq!(stale.status(), 409);
    let body: Value = stale.json().await.expect("json");
    assert_eq!(body["current_version"], 1);

    // KEK rotation on the live state: every stored data key moves to the
    // new KEK (payloads untouched) and the provider still reads the record.
    let rewrapped = {
        let (db, keyring) = sys.state.keys();
        let mut keyring = keyring.write().expect("keyring");
        assert_eq!(keyring.rotate().expect("rotate"), 2);
        medanchor_api::rotate::rewrap_all(db, &keyring, "test").expect("rewrap")
    };
    assert_eq!(rewrapped, 1);
    let raw_id: [u8; 16] = hex::decode(&id).expect("hex").try_into().expect("16");
    assert_eq!(sys.state.keys().0.record(&raw_id, 1).expect("db").expect("meta").kek_version, 2);
    let (status, reread) = sys.get(&format!("/v1/records/{id}"), &provider_token).await;
    assert_eq!((status, &reread["content"]), (200, &read["content"]), "{reread}");
    assert_eq!(reread["anchor"]["data_hash"], read["anchor"]["data_hash"], "the anchored blob is unchanged");

    // The patient revokes; the provider is refused from the next block on.
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults)).await;
    let (status, refused) = sys.get(&format!("/v1/records/{id}"), &provider_token).await;
    assert_eq!(status, 403);
    assert_eq!(refused["reason"]["name"], "ERR-CONSENT-REVOKED", "{refused}");

    // The audit log: the patient sees the accesses to their data, allowed
    // and refused; an auditor sees everything; proofs verify against the
    // signed checkpoint.
    let (_, mine) = sys.get("/v1/audit/entries?limit=1000", &patient_token).await;
    let outcomes: Vec<(String, String)> = mine["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["entry"]["action"].as_str().unwrap_or("").to_string(),
                e["entry"]["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(outcomes.contains(&("record.create".into(), "allowed".into())));
    assert!(outcomes.contains(&("record.read".into(), "denied".into())));
    assert!(mine["entries"].as_array().expect("entries").iter().all(|e| e["entry"]["patient"] == patient.to_string()));
    let (_, all) = sys.get("/v1/audit/entries?limit=1000", &auditor_token).await;
    let size = all["size"].as_u64().expect("size");
    assert!(
        all["entries"].as_array().expect("entries").len() as u64 == size
            && size > mine["entries"].as_array().expect("e").len() as u64
    );
    let note =
        sys.http.get(format!("{}/v1/audit/checkpoint", sys.api)).send().await.expect("cp").text().await.expect("text");
    let cp = merkle::verify_note(&note, "medanchor.localhost", &SessionKey::from_bytes(&[5; 32]).verifying_key())
        .expect("signed checkpoint");
    assert!(cp.size >= size);
    let last = all["entries"].as_array().expect("entries").last().expect("one");
    // The leaf is the exact bytes the log stored, served beside the entry.
    let leaf = merkle::leaf_hash(last["leaf"].as_str().expect("leaf").as_bytes());
    assert_eq!(serde_json::from_str::<Value>(last["leaf"].as_str().expect("leaf")).expect("json"), last["entry"]);
    let index = last["index"].as_u64().expect("index");
    let (_, proof) =
        sys.get(&format!("/v1/audit/proof/inclusion?index={index}&size={}", cp.size), &auditor_token).await;
    let proof: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex").try_into().expect("32"))
        .collect();
    merkle::verify_inclusion(&leaf, index, cp.size, &proof, &cp.root).expect("the entry is in the signed log");

    // The accounting of disclosures (HIPAA §164.528): the provider's
    // allowed create and two reads — not the patient's own read, not the
    // refused attempts — each with its audit index.
    let path = format!("/v1/audit/disclosures?patient={patient}");
    let (status, report) = sys.get(&path, &patient_token).await;
    assert_eq!(status, 200, "{report}");
    let rows = report["disclosures"].as_array().expect("rows");
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap_or("")).collect();
    assert_eq!(actions, ["record.create", "record.read", "record.read"], "{report}");
    for r in rows {
        assert_eq!(r["recipient"], provider.to_string());
        assert_eq!(r["purpose"], "treatment (patient consent)");
        assert_eq!((r["record_id"].as_str(), r["record_type"].as_str()), (Some(id.as_str()), Some("lab-results")));
        assert!(r["date"].as_str().expect("date").ends_with('Z'));
        // Each line is the log's entry at its index, provable in the signed log.
        let index = r["index"].as_u64().expect("index");
        let logged = &all["entries"][index as usize];
        assert_eq!((logged["index"].as_u64(), &logged["entry"]["action"]), (Some(index), &r["action"]));
        let (_, proof) =
            sys.get(&format!("/v1/audit/proof/inclusion?index={index}&size={}", cp.size), &patient_token).await;
        let proof: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex").try_into().expect("32"))
            .collect();
        let leaf = merkle::leaf_hash(logged["leaf"].as_str().expect("leaf").as_bytes());
        merkle::verify_inclusion(&leaf, index, cp.size, &proof, &cp.root).expect("the disclosure is in the signed log");
    }
    assert_eq!(sys.get(&path, &auditor_token).await.1["disclosures"], report["disclosures"]);
    for token in [&stranger_token, &provider_token] {
        let (status, refused) = sys.get(&path, token).await;
        assert_eq!((status, refused["code"].as_str()), (403, Some("not-permitted")), "{refused}");
    }
    let csv =
        sys.http.get(format!("{}{path}&format=csv", sys.api)).bearer_auth(&patient_token).send().await.expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("text");
    assert!(csv.starts_with("index,date,recipient,recipient_role,action,"), "{csv}");
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 4, "header and three rows: {csv}");
    let (_, none) = sys.get(&format!("{path}&from=0&to=1"), &patient_token).await;
    assert_eq!(none["disclosures"], json!([]));
    for (query, code) in
        [("&from=9&to=8", "invalid-range"), ("&format=xml", "invalid-format"), ("&from=soon", "invalid-parameter")]
    {
        let (status, bad) = sys.get(&format!("{path}{query}"), &patient_token).await;
        assert_eq!((status, bad["code"].as_str()), (400, Some(code)), "{query}: {bad}");
    }
    let (status, bad) = sys.get("/v1/audit/disclosures?patient=nobody", &auditor_token).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid-principal")));
}
