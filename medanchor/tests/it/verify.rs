//! `medanchor verify` end to end: `medanchor up` as a process (devnet,
//! indexer, API with its audit anchoring), a custodial provider writing a
//! record through the API, then `medanchor verify` as a process checking
//! the record and the audit log against the node — and failing when the
//! stored ciphertext, a copy of it, or an audit entry is altered.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use medanchor_api::db::{ApiDb, Cf};
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_wallet::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use serde_json::{json, Value};

/// A loopback port free now, below the kernel's ephemeral range (32768 and
/// up): a port the kernel hands out for `:0` can be taken by any outgoing
/// connection of the many processes these tests run before `up` binds
/// it. Ports come from a per-process sequence offset by the process id
/// and are checked by binding them.
pub(super) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 64) * 150;
    for _ in 0..10_000 {
        let port = (base + NEXT.fetch_add(1, Ordering::Relaxed) % 12_000) as u16;
        if (20_000..32_000).contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `medanchor up` on fixed loopback ports, all data under one directory.
pub(super) struct Up {
    child: Child,
}

pub(super) struct Ports {
    pub(super) rpc: u16,
    pub(super) indexer: u16,
    pub(super) api: u16,
}

impl Ports {
    pub(super) fn rpc(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc)
    }
    pub(super) fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }
}

impl Up {
    pub(super) fn start(root: &Path, ports: &Ports) -> Up {
        Up::start_with(root, ports, &[])
    }

    /// [`Up::start`] with more arguments for `up`.
    pub(super) fn start_with(root: &Path, ports: &Ports, extra: &[&str]) -> Up {
        Up::start_env(root, ports, extra, &[])
    }

    /// [`Up::start_with`] with environment variables for `up`.
    pub(super) fn start_env(root: &Path, ports: &Ports, extra: &[&str], env: &[(&str, &str)]) -> Up {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("up.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .envs(env.iter().copied())
            .arg("up")
            .args(["--data-dir", &root.join("devnet").display().to_string()])
            .args(["--indexer-data-dir", &root.join("indexer").display().to_string()])
            .args(["--api-data-dir", &root.join("api").display().to_string()])
            .args(["--keys-dir", &root.join("keys").display().to_string()])
            .args(["--rpc-bind", &format!("127.0.0.1:{}", ports.rpc)])
            .args(["--indexer-bind", &format!("127.0.0.1:{}", ports.indexer)])
            .args(["--indexer-query-bind", "127.0.0.1:0"])
            .args(["--api-bind", &format!("127.0.0.1:{}", ports.api)])
            .args(["--block-time-ms", "200"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn medanchor up");
        let up = Up { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        rt().block_on(async {
            let http = reqwest::Client::new();
            loop {
                let node = http.get(format!("{}/v2/info", ports.rpc())).send().await.is_ok();
                let api = http.get(format!("{}/v1/audit/anchor", ports.api())).send().await.is_ok();
                if node && api {
                    break;
                }
                assert!(Instant::now() < deadline, "medanchor up did not start: {}", up_log(root));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        up
    }

    /// SIGKILL: nothing of the shutdown path runs.
    pub(super) fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn up_log(root: &Path) -> String {
    std::fs::read_to_string(root.join("up.log")).unwrap_or_default()
}

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

pub(super) fn key(name: &str) -> StacksKey {
    parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml")
        .expect("accounts")
        .into_iter()
        .find(|a| a.name == name)
        .expect("account")
        .key
}

pub(super) fn address(name: &str) -> String {
    key(name).address(TESTNET_SINGLESIG).to_string()
}

/// Signs and sends `call` from `name`, and waits until it is mined.
pub(super) async fn tx(rpc: &str, name: &str, call: ContractCall) {
    let wallet = Wallet::connect(key(name), RpcClient::new(rpc).expect("rpc"), DEPLOYER_ADDRESS).await.expect("wallet");
    let sent = wallet.submit(&call, None).await.expect("submit");
    let outcome = wallet.wait(&sent.txid, Duration::from_secs(60)).await.expect("mined");
    assert!(outcome.is_success(), "{} from {name}: {outcome:?}", call.function);
}

/// Waits until `up` has authorized its operator (the devnet faucet) with
/// the deployer's key: the deployer signs nothing else before (one nonce
/// sequence).
pub(super) async fn operator_authorized(node: &RpcClient, root: &Path) {
    let faucet = address("faucet");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !medanchor_api::anchoring::is_anchor_operator(node, DEPLOYER_ADDRESS, &faucet).await.unwrap_or(false) {
        assert!(Instant::now() < deadline, "up did not authorize its operator: {}", up_log(root));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Signs in to the API as `name`, the way a Stacks wallet does.
pub(super) async fn sign_in(api: &str, name: &str) -> String {
    medanchor_wallet::sign_in(&reqwest::Client::new(), api, &key(name)).await.expect("sign-in")
}

/// Runs `medanchor verify ARGS…` (with `token` in the environment).
pub(super) fn verify(args: &[&str], token: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medanchor"));
    c.arg("verify").args(args).env("RUST_LOG", "warn").env_remove("MEDANCHOR_API_TOKEN").stdin(Stdio::null());
    if let Some(t) = token {
        c.env("MEDANCHOR_API_TOKEN", t);
    }
    c.output().expect("run medanchor verify")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn blob_path(root: &Path, hash: &str) -> PathBuf {
    let h = hash.trim_start_matches("0x");
    root.join("api").join("blobs").join(&h[..2]).join(h)
}

#[test]
fn verify_checks_records_and_the_audit_log_against_the_chain_and_catches_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let up = Up::start(root, &ports);
    let node = RpcClient::new(&rpc).expect("rpc");
    let patient = address("wallet_1");
    let provider: medanchor_contracts::Principal = address("wallet_2").parse().expect("principal");

    let (id, hash, patient_token) = rt().block_on(async {
        operator_authorized(&node, root).await;
        tx(
            &rpc,
            "deployer",
            ContractCall {
                contract: ContractName::RecordManagement,
                function: "register-provider",
                args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
            },
        )
        .await;
        tx(&rpc, "wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
        tx(&rpc, "wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked))
            .await;
        let access = ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked);
        tx(&rpc, "wallet_1", access.expect("call")).await;

        // wallet_2 is a custodial provider of `up`: the API signs for it.
        let provider_token = sign_in(&api, "wallet_2").await;
        let http = reqwest::Client::new();
        let record: Value = http
            .post(format!("{api}/v1/patients/{patient}/records"))
            .bearer_auth(&provider_token)
            .json(&json!({ "record_type": "lab-results", "content": { "test": "HbA1c", "value": 5.4 } }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        let id = record["record_id"].as_str().unwrap_or_else(|| panic!("no record: {record}")).to_string();
        let hash = record["anchor"]["data_hash"].as_str().expect("hash").to_string();
        // Wait for the anchor (the API's tracker).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v: Value =
                http.get(format!("{api}/v1/verify/record/{id}")).send().await.expect("get").json().await.expect("json");
            if v["verdict"] == "anchored" {
                break;
            }
            assert!(Instant::now() < deadline, "the record was not anchored: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (id, hash, sign_in(&api, "wallet_1").await)
    });
    let chain = ["--node", rpc.as_str()];

    // The record, fetched from the API and checked against the node.
    // The ciphertext goes only to a session the chain lets read it.
    let out = verify(&[&["record", id.as_str(), "--api", api.as_str()][..], &chain].concat(), None);
    assert!(!out.status.success() && text(&out).contains("MEDANCHOR_API_TOKEN"), "{}", text(&out));
    let out = verify(&[&["record", id.as_str(), "--api", api.as_str()][..], &chain].concat(), Some(&patient_token));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("VERIFIED") && stdout.contains(&format!("record 0x{id} version 1")), "{stdout}");

    // A local copy of the ciphertext: verified; modified: not.
    let copy = root.join("copy.bin");
    std::fs::copy(blob_path(root, &hash), &copy).expect("copy");
    let copy_s = copy.display().to_string();
    let out = verify(&[&["file", copy_s.as_str(), "--record", id.as_str()][..], &chain].concat(), None);
    assert!(out.status.success(), "{}", text(&out));
    let mut bytes = std::fs::read(&copy).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(&copy, &bytes).expect("write");
    for version in [None, Some("1")] {
        let mut args = vec!["file", copy_s.as_str(), "--record", id.as_str()];
        args.extend(version.map(|v| ["--version", v]).into_iter().flatten());
        let out = verify(&[&args[..], &chain].concat(), None);
        assert!(!out.status.success(), "a modified file verified: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH"), "{}", text(&out));
    }
    // A record id the chain does not know.
    let other = "ab".repeat(16);
    let out = verify(&[&["file", copy_s.as_str(), "--record", other.as_str()][..], &chain].concat(), None);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("NOT ANCHORED"), "{}", text(&out));

    // The audit log: the record's creation, proven under the on-chain root
    // once the operator has anchored it.
    let index = rt().block_on(async {
        let v: Value = reqwest::Client::new()
            .get(format!("{api}/v1/audit/entries?limit=1000"))
            .bearer_auth(&patient_token)
            .send()
            .await
            .expect("entries")
            .json()
            .await
            .expect("json");
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["entry"]["action"] == "record.create")
            .and_then(|e| e["index"].as_u64())
            .unwrap_or_else(|| panic!("no record.create entry: {v}"))
    });
    let index_s = index.to_string();
    let audit_args = [&["audit", "--api", api.as_str(), "--index", index_s.as_str()][..], &chain].concat();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = verify(&audit_args, Some(&patient_token));
        if out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains(&format!("audit entry {index} is in log {}", address("faucet"))), "{stdout}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "verify audit never succeeded: {}\n--- up log ---\n{}",
            text(&out),
            up_log(root)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Without a token (and no entry file) it says what it needs.
    let out = verify(&audit_args, None);
    assert!(!out.status.success() && text(&out).contains("MEDANCHOR_API_TOKEN"), "{}", text(&out));

    // The stored ciphertext altered in place: the API no longer serves it
    // and `verify record` fails.
    let stored = blob_path(root, &hash);
    let original = std::fs::read(&stored).expect("blob");
    let mut altered = original.clone();
    altered[0] ^= 1;
    std::fs::write(&stored, &altered).expect("tamper");
    let out = verify(&[&["record", id.as_str(), "--api", api.as_str()][..], &chain].concat(), Some(&patient_token));
    assert!(!out.status.success(), "an altered blob verified: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"), "{}", text(&out));
    std::fs::write(&stored, &original).expect("restore");

    // An audit entry altered in place (the API stopped, its database
    // edited, the API restarted): the entry no longer proves under the
    // on-chain root.
    up.kill();
    {
        let db = ApiDb::open(&root.join("api").join("db")).expect("api db");
        let stored = db.get(Cf::AuditEntries, &index.to_be_bytes()).expect("read").expect("entry");
        let mut entry: Value = serde_json::from_slice(&stored).expect("entry json");
        assert_eq!(entry["action"], "record.create");
        entry["outcome"] = json!("denied");
        let mut batch = db.batch();
        batch.put_cf(db.cf(Cf::AuditEntries), index.to_be_bytes(), serde_json::to_vec(&entry).expect("json"));
        db.write(batch).expect("write");
    }
    let _up = Up::start(root, &ports);
    let out = verify(&audit_args, Some(&patient_token));
    assert!(!out.status.success(), "an altered audit entry verified: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("FAILED: entry {index} is not in the log anchored on-chain")), "{}", text(&out));
    // The record itself still verifies.
    let out = verify(&[&["record", id.as_str(), "--api", api.as_str()][..], &chain].concat(), Some(&patient_token));
    assert!(out.status.success(), "{}", text(&out));
}
