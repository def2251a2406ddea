//! The upgrade fixture: a data directory written by a released
//! `medanchor up` (`tests/fixtures/datadir-v1`: the devnet chain, the
//! index, the API database with its shares and audit log, the ciphertext
//! blobs, the keys) and a manifest of what that release served from it
//! (`datadir-v1.manifest.json`), captured over HTTP from the running
//! release. `upgrade.rs` opens a copy with this build and compares what it
//! serves with the manifest.
//!
//! [`make_datadir_v1`] regenerates both with a release binary (see
//! `tests/fixtures/make-datadir-v1.sh`): it starts the release's `up`,
//! drives it through [`story`] — two patients (one a key of its own,
//! funded by a transfer), two custodial providers, consents granted and
//! revoked, records of several versions, a finalized one, a binary upload,
//! reads, refusals, shares redeemed, revoked and left unused, a wrong
//! code — captures the manifest ([`capture`]), stops the release with
//! Ctrl-C and compacts each RocksDB so the fixture holds only live data.
//! Devnet test keys only: nothing in the fixture is a secret.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clarity_repl::clarity::vm::types::PrincipalData;
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::txbuild::{serialize, sign, Payload, TxOptions};
use medanchor_wallet::{ContractCall, GrantDuration, Reader, RpcClient};
use serde_json::{json, Value};

use super::verify::{address, free_port, key, operator_authorized, rt, tx};

/// The second patient's secret key: SHA-256 of "medanchor datadir-v1
/// patient 2". Not a Devnet.toml account (there are only three wallets),
/// so the faucet funds it by a transfer.
pub(super) const PATIENT_2_SECRET: &str = "ff5dacab84f5fe72add11dae4b6abf4a7728007578ac4878422d5f87651093c7";

/// The fixture's directory and manifest.
pub(super) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1")
}

/// The manifest next to the fixture.
pub(super) fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1.manifest.json")
}

/// Who plays which part.
pub(super) struct Cast {
    pub(super) patient_1: StacksKey,
    pub(super) patient_2: StacksKey,
    pub(super) provider_a: StacksKey,
    pub(super) provider_b: StacksKey,
    pub(super) auditor: StacksKey,
}

impl Cast {
    pub(super) fn new() -> Cast {
        Cast {
            patient_1: key("wallet_1"),
            patient_2: StacksKey::from_hex(PATIENT_2_SECRET).expect("patient 2 key"),
            provider_a: key("wallet_2"),
            provider_b: key("wallet_3"),
            auditor: key("faucet"),
        }
    }

    pub(super) fn patients(&self) -> [(&'static str, &StacksKey); 2] {
        [("patient_1", &self.patient_1), ("patient_2", &self.patient_2)]
    }

    pub(super) fn providers(&self) -> [(&'static str, &StacksKey); 2] {
        [("provider_a", &self.provider_a), ("provider_b", &self.provider_b)]
    }
}

/// A key's testnet address.
pub(super) fn addr(key: &StacksKey) -> String {
    key.address(TESTNET_SINGLESIG).to_string()
}

fn principal(key: &StacksKey) -> Principal {
    addr(key).parse().expect("principal")
}

/// The data types whose consent the manifest records for every patient
/// and provider: the granted, the revoked, the expiring, the never
/// granted and an enhanced one.
pub(super) const CHECKED_TYPES: [DataType; 5] = [
    DataType::BasicInfo,
    DataType::MedicalHistory,
    DataType::LabResults,
    DataType::TreatmentPlans,
    DataType::MentalHealth,
];

/// `medanchor up` of some build, as a process, on free loopback ports
/// (the indexer's query port included), all data under `root`.
pub(super) struct System {
    child: Option<Child>,
    pub(super) rpc: String,
    pub(super) api: String,
    pub(super) query: String,
    log: PathBuf,
}

impl System {
    /// Starts `bin up` on `root`, logging to `log`, and waits until the
    /// node and the API answer.
    pub(super) fn start(bin: &Path, root: &Path, log: &Path) -> System {
        let (rpc, observer, query, api) = (free_port(), free_port(), free_port(), free_port());
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
        let child = Command::new(bin)
            .arg("up")
            .args(["--data-dir", &root.join("devnet").display().to_string()])
            .args(["--indexer-data-dir", &root.join("indexer").display().to_string()])
            .args(["--api-data-dir", &root.join("api").display().to_string()])
            .args(["--keys-dir", &root.join("keys").display().to_string()])
            .args(["--rpc-bind", &format!("127.0.0.1:{rpc}")])
            .args(["--indexer-bind", &format!("127.0.0.1:{observer}")])
            .args(["--indexer-query-bind", &format!("127.0.0.1:{query}")])
            .args(["--api-bind", &format!("127.0.0.1:{api}")])
            .args(["--block-time-ms", "200"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn medanchor up");
        let system = System {
            child: Some(child),
            rpc: format!("http://127.0.0.1:{rpc}"),
            api: format!("http://127.0.0.1:{api}"),
            query: format!("http://127.0.0.1:{query}"),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        rt().block_on(async {
            let http = reqwest::Client::new();
            loop {
                let node = http.get(format!("{}/v2/info", system.rpc)).send().await.is_ok();
                let api = http.get(format!("{}/v1/audit/anchor", system.api)).send().await.is_ok();
                let index = http.get(format!("{}/v1/status", system.query)).send().await.is_ok();
                if node && api && index {
                    break;
                }
                assert!(Instant::now() < deadline, "medanchor up did not start: {}", system.log());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        system
    }

    /// What `up` printed to stderr so far.
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl-C (SIGINT), as a person stops `up`; waits for a clean exit.
    pub(super) fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                assert!(exit.success(), "up exited with {exit}: {}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "up did not stop on Ctrl-C: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP answer: status and JSON body (Null when not JSON).
pub(super) type Answer = (u16, Value);

/// A small client of the API and the indexer's query port.
pub(super) struct Client {
    http: reqwest::Client,
    pub(super) api: String,
    pub(super) query: String,
    pub(super) rpc: String,
}

impl Client {
    pub(super) fn new(system: &System) -> Client {
        Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client"),
            api: system.api.clone(),
            query: system.query.clone(),
            rpc: system.rpc.clone(),
        }
    }

    async fn answer(r: reqwest::RequestBuilder) -> Answer {
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Signs in as `key` (as Stacks wallets sign messages).
    pub(super) async fn sign_in(&self, key: &StacksKey) -> String {
        medanchor_wallet::sign_in(&self.http, &self.api, key).await.expect("sign-in")
    }

    pub(super) async fn get(&self, path: &str, token: &str) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.api)).bearer_auth(token)).await
    }

    pub(super) async fn get_with(&self, path: &str, token: &str, header: (&str, &str)) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.api)).bearer_auth(token).header(header.0, header.1)).await
    }

    pub(super) async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        Self::answer(self.http.post(format!("{}{path}", self.api)).bearer_auth(token).json(body)).await
    }

    pub(super) async fn put(&self, path: &str, token: &str, if_match: u64, body: &Value) -> Answer {
        let r = self
            .http
            .put(format!("{}{path}", self.api))
            .bearer_auth(token)
            .header("If-Match", format!("\"{if_match}\""));
        Self::answer(r.json(body)).await
    }

    pub(super) async fn upload(&self, path: &str, token: &str, bytes: Vec<u8>) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        Self::answer(r).await
    }

    /// Unauthenticated GET of the API.
    pub(super) async fn public(&self, path: &str) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.api))).await
    }

    pub(super) async fn text(&self, path: &str) -> String {
        self.http.get(format!("{}{path}", self.api)).send().await.expect("get").text().await.expect("text")
    }

    /// GET on the indexer's query port.
    pub(super) async fn index(&self, path: &str) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.query))).await
    }

    /// GET on the node's RPC.
    pub(super) async fn node(&self, path: &str) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.rpc))).await
    }
}

/// Polls `f` until it gives `Some` (the indexer and the anchor tracker
/// follow the chain a moment behind); panics after two minutes.
pub(super) async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes a record (JSON content) once the API sees the consent; returns
/// its id once anchored.
pub(super) async fn create(c: &Client, token: &str, patient: &str, record_type: &str, content: Value) -> String {
    let body = json!({ "record_type": record_type, "content": content });
    let path = format!("/v1/patients/{patient}/records");
    let (_, created) = until("the API to accept the record", || async {
        match c.post(&path, token, &body).await {
            (202, v) => Some((202, v)),
            // The indexer has not seen the consent or the access level yet.
            (403, _) => None,
            (s, v) => panic!("creating a record: {s} {v}"),
        }
    })
    .await;
    let id = created["record_id"].as_str().expect("record id").to_string();
    anchored(c, token, &id, 1).await;
    id
}

/// Waits until version `version` of `id` is anchored (read by `token`).
pub(super) async fn anchored(c: &Client, token: &str, id: &str, version: u64) {
    until(&format!("record {id} v{version} anchored"), || async {
        let (_, v) = c.get(&format!("/v1/records/{id}/versions"), token).await;
        let done =
            v.as_array().into_iter().flatten().any(|m| m["version"] == version && m["anchor"]["status"] == "anchored");
        done.then_some(())
    })
    .await
}

/// Writes version `base + 1` of `id` on top of `base`; waits for its anchor.
pub(super) async fn update(c: &Client, token: &str, id: &str, base: u64, record_type: &str, content: Value) {
    let body = json!({ "record_type": record_type, "content": content });
    let (status, v) = c.put(&format!("/v1/records/{id}"), token, base, &body).await;
    assert_eq!(status, 202, "update of {id} on v{base}: {v}");
    assert_eq!(v["version"], base + 1, "{v}");
    anchored(c, token, id, base + 1).await;
}

/// The binary upload's bytes (deterministic).
pub(super) fn scan_bytes() -> Vec<u8> {
    (0..1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Sends 100 STX from the faucet to `to` and waits until mined.
async fn fund(rpc: &str, to: &str) {
    let client = RpcClient::new(rpc).expect("rpc");
    let faucet = key("faucet");
    let nonce = client.next_nonce(&address("faucet")).await.expect("nonce");
    let recipient = PrincipalData::parse(to).expect("recipient");
    let tx = sign(&faucet, Payload::Transfer { recipient, amount: 100_000_000 }, &TxOptions::new(nonce, 10_000))
        .expect("sign transfer");
    let txid = client.broadcast(&serialize(&tx)).await.expect("broadcast");
    let outcome = client.wait_for_tx(&txid, Duration::from_secs(60), Duration::from_millis(200)).await.expect("mined");
    assert!(outcome.is_success(), "transfer: {outcome:?}");
}

/// Signs `call` with `key` (not a Devnet.toml account) and waits.
async fn tx_key(rpc: &str, key: &StacksKey, call: ContractCall) {
    let wallet = medanchor_wallet::Wallet::connect(key.clone(), RpcClient::new(rpc).expect("rpc"), DEPLOYER_ADDRESS)
        .await
        .expect("wallet");
    let sent = wallet.submit(&call, None).await.expect("submit");
    let outcome = wallet.wait(&sent.txid, Duration::from_secs(60)).await.expect("mined");
    assert!(outcome.is_success(), "{} : {outcome:?}", call.function);
}

fn register_provider(provider: &Principal, credential: u8) -> ContractCall {
    ContractCall {
        contract: ContractName::RecordManagement,
        function: "register-provider",
        args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![credential; 32])],
    }
}

/// Drives a running system through the fixture's story. Every write goes
/// through the system's own interfaces: signed transactions to the node,
/// the API (custodial signing for both providers).
pub(super) async fn story(system: &System, cast: &Cast) {
    let c = Client::new(system);
    let rpc = system.rpc.as_str();
    let (p1, p2) = (addr(&cast.patient_1), addr(&cast.patient_2));
    let (a, b) = (principal(&cast.provider_a), principal(&cast.provider_b));
    // `up` authorizes its audit operator with the deployer's key first
    // (one nonce sequence).
    operator_authorized(&RpcClient::new(rpc).expect("rpc"), system.log.parent().expect("log dir")).await;

    // The chain: providers registered by the contract owner; patients
    // register and consent from their own keys.
    tx(rpc, "deployer", register_provider(&a, 0xa1)).await;
    tx(rpc, "deployer", register_provider(&b, 0xb2)).await;
    fund(rpc, &p2).await;
    tx(rpc, "wallet_1", ContractCall::register_patient([0x11; 32], None, None)).await;
    tx_key(rpc, &cast.patient_2, ContractCall::register_patient([0x22; 32], None, None)).await;
    let until_revoked = GrantDuration::UntilRevoked;
    tx(rpc, "wallet_1", ContractCall::grant_consent(&a, DataType::LabResults, until_revoked)).await;
    tx(rpc, "wallet_1", ContractCall::grant_provider_access(&a, AccessLevel::Write, until_revoked).expect("call"))
        .await;
    tx(rpc, "wallet_1", ContractCall::grant_consent(&b, DataType::LabResults, until_revoked)).await;
    tx(rpc, "wallet_1", ContractCall::grant_provider_access(&b, AccessLevel::Write, until_revoked).expect("call"))
        .await;
    let p2_calls = [
        ContractCall::grant_consent(&a, DataType::LabResults, until_revoked),
        // Expires 30 days (4,320 burn blocks) after the grant: still
        // active when the upgrade test runs (a block a burn block).
        ContractCall::grant_consent(&a, DataType::MedicalHistory, GrantDuration::blocks(4_320).expect("blocks")),
        ContractCall::grant_provider_access(&a, AccessLevel::Admin, until_revoked).expect("call"),
        ContractCall::grant_consent(&b, DataType::AllStandard, until_revoked),
        ContractCall::grant_provider_access(&b, AccessLevel::Read, until_revoked).expect("call"),
    ];
    for call in p2_calls {
        tx_key(rpc, &cast.patient_2, call).await;
    }

    let ta = c.sign_in(&cast.provider_a).await;
    let tb = c.sign_in(&cast.provider_b).await;
    let t1 = c.sign_in(&cast.patient_1).await;
    let t2 = c.sign_in(&cast.patient_2).await;

    // Records: versions, a finalized one, one by each provider, a binary
    // upload.
    let r1 = create(&c, &ta, &p1, "lab-results", json!({ "test": "HbA1c", "value": 5.4, "unit": "%" })).await;
    update(&c, &ta, &r1, 1, "lab-results", json!({ "test": "HbA1c", "value": 5.6, "unit": "%", "note": "repeat" }))
        .await;
    update(&c, &ta, &r1, 2, "lab-results", json!({ "test": "HbA1c", "value": 5.5, "unit": "%", "note": "third draw" }))
        .await;
    let r2 = create(&c, &ta, &p1, "imaging", json!({ "study": "chest x-ray", "finding": "clear" })).await;
    let (status, v) = c.post(&format!("/v1/records/{r2}/finalize"), &ta, &json!({})).await;
    assert_eq!(status, 202, "finalize: {v}");
    until("the finalization", || async {
        let (_, v) = c.get(&format!("/v1/records/{r2}"), &ta).await;
        (v["finalized"] == true).then_some(())
    })
    .await;
    let r3 = create(&c, &tb, &p1, "lab-results", json!({ "test": "ferritin", "value": 88, "unit": "ng/mL" })).await;
    update(&c, &tb, &r3, 1, "lab-results", json!({ "test": "ferritin", "value": 91, "unit": "ng/mL" })).await;
    let r4 = create(&c, &ta, &p2, "lab-results", json!({ "test": "TSH", "value": 2.1, "unit": "mIU/L" })).await;
    update(&c, &ta, &r4, 1, "lab-results", json!({ "test": "TSH", "value": 1.9, "unit": "mIU/L" })).await;
    let r5 = create(&c, &ta, &p2, "vitals", json!({ "bp": "118/76", "pulse": 64 })).await;
    let (status, v) = c
        .upload(
            &format!("/v1/patients/{p2}/records?record_type=imaging&content_type=application/dicom"),
            &ta,
            scan_bytes(),
        )
        .await;
    assert_eq!(status, 202, "upload: {v}");
    let r6 = v["record_id"].as_str().expect("id").to_string();
    anchored(&c, &ta, &r6, 1).await;

    // Reads, allowed.
    for (token, id) in [(&ta, &r1), (&tb, &r1), (&tb, &r3), (&t1, &r2), (&t2, &r4), (&t2, &r5), (&ta, &r6)] {
        let (status, v) = c.get(&format!("/v1/records/{id}"), token).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, _) = c.get(&format!("/v1/records/{r1}?version=1"), &ta).await;
    assert_eq!(status, 200);

    // Refusals, audited: a revoked consent, a finalized record, a write
    // without WRITE access.
    tx(rpc, "wallet_1", ContractCall::revoke_consent(&b, DataType::LabResults)).await;
    until("provider_b refused after the revocation", || async {
        let (status, v) = c.get(&format!("/v1/records/{r3}"), &tb).await;
        (status == 403).then(|| assert_eq!(v["reason"]["name"], "ERR-CONSENT-REVOKED", "{v}"))
    })
    .await;
    let (status, v) = c
        .put(
            &format!("/v1/records/{r2}"),
            &ta,
            1,
            &json!({ "record_type": "imaging", "content": { "study": "again" } }),
        )
        .await;
    assert_eq!(status, 403, "an update of a finalized record: {v}");
    let (status, v) =
        c.post(&format!("/v1/patients/{p2}/records"), &tb, &json!({ "record_type": "vitals", "content": {} })).await;
    assert_eq!(status, 403, "a write with READ access: {v}");

    // Shares: one redeemed and read through, one revoked, one left
    // unused with a QR link and passcode; a wrong code against patient 1.
    let (status, s1) = c
        .post("/v1/share/codes", &t2, &json!({ "data_types": ["lab-results"], "duration": "7d", "max_uses": 5 }))
        .await;
    assert_eq!(status, 201, "{s1}");
    let (status, grant) =
        c.post("/v1/share/redeem", &tb, &json!({ "patient": p2, "code": s1["code"].as_str().expect("code") })).await;
    assert_eq!(status, 200, "{grant}");
    let g = grant["grant"].as_str().expect("grant").to_string();
    let (status, v) = c.get_with(&format!("/v1/records/{r4}"), &tb, ("x-share-grant", &g)).await;
    assert_eq!(status, 200, "a read through the grant: {v}");
    let (status, s2) = c
        .post("/v1/share/codes", &t1, &json!({ "data_types": ["lab-results"], "duration": "1h", "single_use": true }))
        .await;
    assert_eq!(status, 201, "{s2}");
    let s2_id = s2["share"]["id"].as_str().expect("id");
    let (status, v) = c.post(&format!("/v1/share/codes/{s2_id}/revoke"), &t1, &json!({})).await;
    assert!(status == 200 || status == 204, "revoke: {status} {v}");
    let (status, s3) =
        c.post("/v1/share/codes", &t2, &json!({ "data_types": ["all-standard"], "qr": true, "passcode": true })).await;
    assert_eq!(status, 201, "{s3}");
    let (status, v) =
        c.post("/v1/share/codes", &t1, &json!({ "data_types": ["lab-results"], "duration": "24h" })).await;
    assert_eq!(status, 201, "{v}");
    let wrong = if v["code"] == "000000" { "000001" } else { "000000" };
    let (status, v) = c.post("/v1/share/redeem", &tb, &json!({ "patient": p1, "code": wrong })).await;
    assert_eq!(status, 401, "a wrong code: {v}");

    // An auditor fetches a ciphertext; the patients read their history.
    let tq = c.sign_in(&cast.auditor).await;
    let (status, _) = c.get(&format!("/v1/verify/record/{r1}/blob"), &tq).await;
    assert_eq!(status, 200, "the ciphertext to an auditor");
    for t in [&t1, &t2] {
        let (status, _) = c.get("/v1/audit/entries?limit=1000", t).await;
        assert_eq!(status, 200);
    }
}

/// What the running system serves: the chain, records (every version's
/// anchor and decrypted content, read by its patient), consents as the
/// chain and the indexer answer them, shares, and the audit log (every
/// leaf, the signed checkpoint and its root, what each patient sees, the
/// on-chain head). Reading appends audit entries, so the log is read
/// last.
pub(super) async fn capture(system: &System, cast: &Cast) -> Value {
    let c = Client::new(system);
    let mut records = Vec::new();
    let mut patients = serde_json::Map::new();
    for (name, key) in cast.patients() {
        let p = addr(key);
        let token = c.sign_in(key).await;
        let (status, list) = c.get(&format!("/v1/patients/{p}/records?limit=100"), &token).await;
        assert_eq!(status, 200, "{list}");
        let mut ids: Vec<String> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["record_id"].as_str().expect("id").to_string())
            .collect();
        ids.sort();
        for id in &ids {
            let (_, versions) = c.get(&format!("/v1/records/{id}/versions"), &token).await;
            let mut out = Vec::new();
            for m in versions.as_array().expect("versions") {
                let v = m["version"].as_u64().expect("version");
                let (status, r) = c.get(&format!("/v1/records/{id}?version={v}"), &token).await;
                assert_eq!(status, 200, "{r}");
                out.push(json!({
                    "version": v,
                    "author": r["author"],
                    "content_type": r["content_type"],
                    "size": r["size"],
                    "content": r["content"],
                    "content_encoding": r["content_encoding"],
                    "anchor": {
                        "status": r["anchor"]["status"],
                        "data_hash": r["anchor"]["data_hash"],
                        "txid": r["anchor"]["txid"],
                        "block_height": r["anchor"]["block_height"],
                    },
                }));
            }
            let (_, current) = c.get(&format!("/v1/records/{id}"), &token).await;
            records.push(json!({
                "record_id": id,
                "patient": p,
                "record_type": current["record_type"],
                "data_type": current["data_type"],
                "current_version": current["version"],
                "status": current["status"],
                "finalized": current["finalized"],
                "versions": out,
            }));
        }
        let (status, shares) = c.get("/v1/share/codes", &token).await;
        assert_eq!(status, 200, "{shares}");
        let (_, consents) = c.index(&format!("/v1/patients/{p}/consents")).await;
        let (_, history) = c.index(&format!("/v1/patients/{p}/history?limit=100")).await;
        patients.insert(
            name.into(),
            json!({ "principal": p, "record_ids": ids, "shares": shares, "consents": consents, "history": history }),
        );
    }

    let reader = Reader::new(RpcClient::new(&system.rpc).expect("rpc"), DEPLOYER_ADDRESS).expect("reader");
    let mut consents = Vec::new();
    for (_, patient) in cast.patients() {
        for (_, provider) in cast.providers() {
            for dt in CHECKED_TYPES {
                let chain =
                    match reader.check_consent(&principal(patient), &principal(provider), dt).await.expect("check") {
                        Ok(method) => method.name().to_string(),
                        Err(e) => e.constant().to_string(),
                    };
                let (_, index) = c
                    .index(&format!(
                        "/v1/consent/check?patient={}&provider={}&data_type={}",
                        addr(patient),
                        addr(provider),
                        dt.name()
                    ))
                    .await;
                consents.push(json!({
                    "patient": addr(patient),
                    "provider": addr(provider),
                    "data_type": dt.name(),
                    "chain": chain,
                    "indexer": index,
                }));
            }
        }
    }

    let (_, info) = c.node("/v2/info").await;
    let height = info["stacks_tip_height"].as_u64().expect("height");
    let mut blocks = Vec::new();
    for h in [0, 1, height / 2, height] {
        let (_, b) = c.node(&format!("/extended/v1/block/by_height/{h}")).await;
        blocks.push(b);
    }

    // The log last: nothing reads after it.
    let tq = c.sign_in(&cast.auditor).await;
    let mut visible = serde_json::Map::new();
    for (name, key) in cast.patients() {
        let token = c.sign_in(key).await;
        let (_, mine) = c.get("/v1/audit/entries?limit=1000", &token).await;
        let indices: Vec<u64> =
            mine["entries"].as_array().expect("entries").iter().map(|e| e["index"].as_u64().expect("index")).collect();
        visible.insert(name.into(), json!(indices));
    }
    let (_, log) = c.get("/v1/audit/entries?limit=1000", &tq).await;
    let leaves: Vec<Value> = log["entries"].as_array().expect("entries").iter().map(|e| e["leaf"].clone()).collect();
    let checkpoint = c.text("/v1/audit/checkpoint").await;
    let (_, anchor) = c.public("/v1/audit/anchor").await;
    json!({
        "accounts": {
            "patient_1": addr(&cast.patient_1),
            "patient_2": addr(&cast.patient_2),
            "provider_a": addr(&cast.provider_a),
            "provider_b": addr(&cast.provider_b),
            "auditor": addr(&cast.auditor),
        },
        "chain": { "height": height, "blocks": blocks },
        "patients": patients,
        "records": records,
        "consents": consents,
        "audit": {
            "size": log["size"],
            "leaves": leaves,
            "checkpoint": checkpoint,
            "visible_to": visible,
            "anchor": anchor,
        },
    })
}

/// Rewrites every RocksDB under `root` as compacted, lz4-compressed
/// tables: the same keys and values, none of the write-ahead log or
/// overwritten versions the release left, so the fixture stays small.
/// (Any build reads lz4 tables: the compression is recorded per file.)
fn compact(root: &Path) {
    for db in ["devnet/chain", "indexer", "api/db"] {
        let path = root.join(db);
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("families");
        let mut opts = rocksdb::Options::default();
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let families = names.iter().map(|n| {
            let mut o = rocksdb::Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            rocksdb::ColumnFamilyDescriptor::new(n, o)
        });
        let rocks = rocksdb::DB::open_cf_descriptors(&opts, &path, families).expect("open for compaction");
        for n in &names {
            let cf = rocks.cf_handle(n).expect("family");
            rocks.flush_cf(&cf).expect("flush");
            let mut compact = rocksdb::CompactOptions::default();
            compact.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            rocks.compact_range_cf_opt(&cf, None::<&[u8]>, None::<&[u8]>, &compact);
        }
        drop(rocks);
        // What RocksDB does not need to open a store: its info logs and
        // options files (it writes the options it is opened with anew).
        for e in std::fs::read_dir(&path).expect("dir") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if name.starts_with("LOG") || name.starts_with("OPTIONS-") {
                std::fs::remove_file(path.join(&name)).expect("remove");
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Copies the fixture to `to` (a test never writes the checked-in copy).
pub(super) fn copy_fixture(to: &Path) {
    copy_dir(&fixture_dir(), to);
}

/// Regenerates the fixture and its manifest with the release binary named
/// by `MEDANCHOR_RELEASE_BIN` (the fixture script builds it from a
/// release commit). Not a test: it writes the checked-in fixture.
#[test]
#[ignore = "regenerates tests/fixtures/datadir-v1 with a release binary; run by make-datadir-v1.sh"]
fn make_datadir_v1() {
    let bin =
        PathBuf::from(std::env::var("MEDANCHOR_RELEASE_BIN").expect("MEDANCHOR_RELEASE_BIN: the release's medanchor"));
    let release = std::env::var("MEDANCHOR_RELEASE").unwrap_or_else(|_| "unknown".into());
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("datadir");
    std::fs::create_dir_all(&root).expect("mkdir");
    let cast = Cast::new();
    let system = System::start(&bin, &root, &work.path().join("up.log"));
    let mut manifest = rt().block_on(async {
        story(&system, &cast).await;
        capture(&system, &cast).await
    });
    manifest["written_by"] = json!(release);
    system.stop();
    compact(&root);
    let out = fixture_dir();
    if out.exists() {
        std::fs::remove_dir_all(&out).expect("remove the old fixture");
    }
    copy_dir(&root, &out);
    std::fs::write(manifest_path(), serde_json::to_string_pretty(&manifest).expect("json") + "\n").expect("manifest");
}
