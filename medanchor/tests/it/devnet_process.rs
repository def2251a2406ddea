//! `medanchor devnet` as a process: crash safety under `kill -9`, and
//! compatibility with stacks.js (`@stacks/transactions` v7).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clarity_repl::clarity::vm::Value;
use medanchor_wallet::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::TESTNET_SINGLESIG;
use medanchor_wallet::txbuild::{serialize, sign, Payload, TxOptions};
use serde_json::Value as Json;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Devnet {
    child: Child,
    base: String,
}

impl Devnet {
    fn start(data_dir: &Path, block_ms: u64) -> Devnet {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["devnet", "--data-dir"])
            .arg(data_dir)
            .args(["--rpc-bind", &format!("127.0.0.1:{port}"), "--block-time-ms", &block_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn medanchor devnet");
        let devnet = Devnet { child, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&format!("{}/v2/info", devnet.base)).is_none() {
            assert!(Instant::now() < deadline, "devnet did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        devnet
    }

    fn kill9(mut self) {
        // SIGKILL: no shutdown path runs.
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn get(url: &str) -> Option<Json> {
    rt().block_on(async {
        let r = reqwest::get(url).await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    })
}

fn post_tx(base: &str, raw: Vec<u8>) -> u16 {
    rt().block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/v2/transactions"))
            .header("content-type", "application/octet-stream")
            .body(raw)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

/// A block reported mined (visible over RPC) survives `kill -9` at any
/// moment, with the same hash; the node continues from it.
#[test]
fn kill_9_loses_no_block_that_was_reported_mined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
    let deployer = accounts.iter().find(|a| a.name == "deployer").expect("deployer").key.address(TESTNET_SINGLESIG);
    let mut reported: Vec<(u64, String)> = Vec::new();
    let mut nonce = 0u64;
    for round in 0..3 {
        let devnet = Devnet::start(dir.path(), 20);
        // Keep the node busy: a stream of transactions while blocks are mined.
        let sender = accounts.iter().find(|a| a.name == "wallet_1").expect("wallet_1");
        for _ in 0..5 {
            let payload = Payload::ContractCall {
                address: deployer,
                contract: "record-management".into(),
                function: "anchor-batch".into(),
                args: vec![Value::buff_from(vec![nonce as u8 + 1; 32]).expect("buff"), Value::UInt(1)],
            };
            let tx = sign(&sender.key, payload, &TxOptions::new(nonce, 1000)).expect("sign");
            assert_eq!(post_tx(&devnet.base, serialize(&tx)), 200);
            nonce += 1;
        }
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        let tip =
            get(&format!("{}/v2/info", devnet.base)).expect("info")["stacks_tip_height"].as_u64().expect("height");
        for h in 0..=tip {
            let b = get(&format!("{}/extended/v1/block/by_height/{h}", devnet.base)).expect("reported block");
            let hash = b["index_block_hash"].as_str().expect("hash").to_string();
            match reported.iter().find(|(rh, _)| *rh == h) {
                Some((_, old)) => assert_eq!(*old, hash, "block {h} changed"),
                None => reported.push((h, hash)),
            }
        }
        devnet.kill9();
    }
    let devnet = Devnet::start(dir.path(), 0);
    for (h, hash) in &reported {
        let b = get(&format!("{}/extended/v1/block/by_height/{h}", devnet.base))
            .unwrap_or_else(|| panic!("block {h} lost"));
        assert_eq!(b["index_block_hash"].as_str(), Some(hash.as_str()), "block {h}");
    }
    assert!(reported.len() > 3, "the node mined blocks between kills");
}

/// stacks.js v7 (what browser wallets build on), against our RPC, fee and
/// nonce fetched by the library: a contract call accepted, mined, readable;
/// an STX transfer mined and paid.
#[test]
fn stacks_js_builds_signs_broadcasts_and_reads_against_the_devnet() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    assert!(
        js.join("node_modules/@stacks/transactions").exists(),
        "tests/js has no node_modules: run ./scripts/test (or `npm install` in tests/js)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(dir.path(), 200);
    let out = Command::new("node")
        .arg("stacks-transactions-compat.mjs")
        .current_dir(&js)
        .env("BASE_URL", &devnet.base)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "stacks.js script failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Json = serde_json::from_slice(&out.stdout).expect("json line");
    assert_eq!(result["tx_status"], "success", "{result}");
    assert_eq!(result["history_length"], "1", "{result}");
    assert!(result["fee"].as_str().expect("fee").parse::<u64>().expect("number") > 0);
    // An STX transfer with the library's defaults (Deny mode, no
    // post-conditions) moves the STX, as on Stacks.
    assert_eq!(
        (&result["transfer_status"], &result["received"]),
        (&serde_json::json!("success"), &serde_json::json!("12345")),
        "{result}"
    );
}
