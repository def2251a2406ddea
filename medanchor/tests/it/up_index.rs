//! `medanchor up` always starts: an index that does not belong to the
//! devnet's chain (built from another chain, or left at a forged block by
//! an older build) is moved aside and rebuilt from the devnet's stored
//! blocks, with a warning, instead of refusing to start.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medanchor_contracts::DEPLOYER_ADDRESS;
use medanchor_indexer::synth::{id, SynthBlock};
use medanchor_indexer::{Indexer, IndexerConfig, Outcome};
use serde_json::Value;

use super::verify::free_port;

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log(root: &Path) -> String {
    std::fs::read_to_string(root.join("up.log")).unwrap_or_default()
}

/// An index of six blocks of some other chain, closed again.
fn foreign_index(dir: &Path) {
    let index = Indexer::open(dir, IndexerConfig::for_deployer(DEPLOYER_ADDRESS)).expect("index");
    for h in 0..6u64 {
        let block = SynthBlock {
            height: h,
            id: id(&format!("elsewhere-{h}")),
            parent: if h == 0 { [0xff; 32] } else { id(&format!("elsewhere-{}", h - 1)) },
            burn_block_height: 100 + h,
            time: 1_700_000_000 + 600 * h,
            txs: Vec::new(),
        };
        let outcome = index.ingest_json(&block.to_bytes()).expect("ingest");
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    }
}

#[test]
fn up_rebuilds_an_index_from_another_chain_instead_of_refusing_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let index_dir = root.join("indexer");
    foreign_index(&index_dir);

    let (rpc, observer, query, api) = (free_port(), free_port(), free_port(), free_port());
    let logfile = std::fs::File::create(root.join("up.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .arg("up")
        .args(["--data-dir", &root.join("devnet").display().to_string()])
        .args(["--indexer-data-dir", &index_dir.display().to_string()])
        .args(["--api-data-dir", &root.join("api").display().to_string()])
        .args(["--keys-dir", &root.join("keys").display().to_string()])
        .args(["--rpc-bind", &format!("127.0.0.1:{rpc}")])
        .args(["--indexer-observer-bind", &format!("127.0.0.1:{observer}")])
        .args(["--indexer-query-bind", &format!("127.0.0.1:{query}")])
        .args(["--api-bind", &format!("127.0.0.1:{api}")])
        .args(["--block-time-ms", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(logfile)
        .spawn()
        .expect("spawn medanchor up");
    let mut up = Up(child);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let http = reqwest::Client::new();
    let get = |url: String| -> Option<Value> {
        rt.block_on(async { http.get(&url).send().await.ok()?.error_for_status().ok()?.json().await.ok() })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(exit) = up.0.try_wait().expect("try_wait") {
            panic!("medanchor up exited ({exit}) instead of starting:\n{}", log(root));
        }
        let node = get(format!("http://127.0.0.1:{rpc}/v2/info"));
        let status = get(format!("http://127.0.0.1:{query}/v1/status"));
        let api_up = rt.block_on(http.get(format!("http://127.0.0.1:{api}/v1/audit/anchor")).send()).is_ok();
        if let (Some(_), Some(status), true) = (node, status, api_up) {
            break status;
        }
        assert!(Instant::now() < deadline, "medanchor up did not start:\n{}", log(root));
        std::thread::sleep(Duration::from_millis(100));
    };

    // The index is the devnet's now: its tip is the devnet's block.
    let height = status["tip_height"].as_u64().unwrap_or_else(|| panic!("no tip: {status}"));
    let block = get(format!("http://127.0.0.1:{rpc}/extended/v1/block/by_height/{height}")).expect("devnet block");
    assert_eq!(status["tip_index_block_hash"], block["index_block_hash"], "{status}");
    // The old index was kept beside it, and the log says so.
    let aside: Vec<String> = std::fs::read_dir(root)
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("indexer.aside-"))
        .collect();
    assert_eq!(aside.len(), 1, "the foreign index was not moved aside: {aside:?}");
    let kept = Indexer::open(&root.join(&aside[0]), IndexerConfig::for_deployer(DEPLOYER_ADDRESS)).expect("reopen");
    let tip = kept.db().get(medanchor_indexer::schema::Cf::Meta, medanchor_indexer::schema::meta::TIP).expect("tip");
    assert_eq!(tip, Some(id("elsewhere-5").to_vec()), "the moved index is not the foreign one");
    let text = log(root);
    assert!(text.contains("is not this devnet's") && text.contains(&aside[0]), "no warning in the log:\n{text}");

    // And it follows the chain from there.
    rt.block_on(http.post(format!("http://127.0.0.1:{rpc}/devnet/mine?blocks=2")).send()).expect("mine");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get(format!("http://127.0.0.1:{query}/v1/status")).expect("status");
        if status["tip_height"].as_u64() == Some(height + 2) {
            break;
        }
        assert!(Instant::now() < deadline, "the rebuilt index does not follow the devnet: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
