//! Notifications survive `kill -9`: a provider reads a patient's record
//! while the patient's webhook receiver is down; the node is killed before
//! any delivery succeeds; after a restart (the receiver back on the same
//! address) the event arrives — its row was in the audit entry's own
//! commit — under its stable id. And `--log-format json` writes JSON
//! lines with the request id on a request's lines.

use std::time::Duration;

use serde_json::Value;

use super::backup::receiver_on;
use super::upload_crash::{consenting_provider, new_record};
use super::verify::{address, free_port, rt, sign_in, Ports, Up};

#[test]
fn a_notification_queued_before_a_kill_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let up = Up::start_with(&root, &ports, &["--webhook-allow-private"]);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    // The receiver's address, with nothing listening yet.
    let hook_port = free_port();
    let url = format!("http://127.0.0.1:{hook_port}/hook");
    let record = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let me = sign_in(&api, "wallet_1").await;
        let patient = address("wallet_1");
        let r = reqwest::Client::new()
            .put(format!("{api}/v1/patients/{patient}/notifications/webhook"))
            .bearer_auth(&me)
            .json(&serde_json::json!({ "webhook_url": url }))
            .send()
            .await
            .expect("subscribe");
        assert_eq!(r.status(), 200);
        let doctor = sign_in(&api, "wallet_2").await;
        new_record(&reqwest::Client::new(), &api, &doctor).await
    });
    up.kill();

    // The receiver is back; so is the node.
    let listener = std::net::TcpListener::bind(("127.0.0.1", hook_port)).expect("the receiver's port");
    let (_, got) = receiver_on(listener);
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let _up = Up::start_with(&root, &ports, &["--webhook-allow-private"]);
    let mut created: Vec<Value> = Vec::new();
    for _ in 0..300 {
        created = got
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["action"] == "record.create" && e["record_id"] == record.as_str())
            .cloned()
            .collect();
        if !created.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!created.is_empty(), "the write's notification arrived after the restart: {:?}", got.lock().expect("lock"));
    let ids: std::collections::BTreeSet<&str> = created.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one event, under one id (a receiver de-duplicates any repeat on it)");
    assert!(ids.iter().all(|id| id.starts_with("audit-")));
}

/// `--log-format json`: every line `up` logs is a JSON object, and a
/// request's access line carries the request id its answer names.
#[test]
fn json_logs_carry_the_request_id_on_every_request_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let _up = Up::start_with(&root, &ports, &["--log-format", "json"]);
    let id = rt().block_on(async {
        let r = reqwest::Client::new().get(format!("{api}/v1/no-such-route")).send().await.expect("get");
        assert_eq!(r.status(), 404);
        r.headers()["x-request-id"].to_str().expect("id").to_string()
    });
    let mut found = None;
    for _ in 0..100 {
        let log = super::verify::up_log(&root);
        let lines: Vec<Value> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        found = lines.into_iter().find(|l| l["span"]["request_id"] == id.as_str());
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = found.expect("the request's access line");
    assert_eq!(line["fields"]["message"], "answered", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
}
