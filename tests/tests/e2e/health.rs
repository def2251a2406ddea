//! Operability over HTTP: `/healthz`; `/readyz` with each check, ready
//! in front of a live node and not ready once the node stops answering;
//! `/metrics` read by the Prometheus project's own text-format parser
//! (PyPI `prometheus_client`), its counters matching the requests made and
//! its gauges matching the node's state; the scraper's token when one is
//! configured.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The venv `python3` with `prometheus_client` (`scripts/lib.sh`
/// `ensure_prometheus_parser`, which `scripts/test` runs too).
fn parser() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/lib.sh && ensure_prometheus_parser")
        .current_dir(&root)
        .output()
        .expect("bash");
    assert!(out.status.success(), "ensure_prometheus_parser: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// The exposition parsed by `prometheus_client`: every sample as
/// {name, labels, value}, and the families' types.
fn parse(python: &std::path::Path, text: &str) -> (Vec<Value>, Value) {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples, types = [], {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps({"samples": samples, "types": types}))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes()).expect("write");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("parse");
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    (v["samples"].as_array().expect("samples").clone(), v["types"].clone())
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_parse_as_prometheus_text() {
    let python = parser();
    let sys = super::start().await;
    let r = sys.http.get(format!("{}/healthz", sys.api)).send().await.expect("healthz");
    assert_eq!((r.status().as_u16(), r.text().await.expect("text")), (200, "ok\n".to_string()));
    let r = sys.http.get(format!("{}/readyz", sys.api)).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.expect("json");
    let names: Vec<&str> =
        ready["checks"].as_array().expect("checks").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["node", "index", "database", "objects"], "{ready}");

    // Requests whose counts the metrics must show: three sign-in
    // challenges and a route that does not exist.
    for _ in 0..3 {
        let r = sys.http.post(format!("{}/v1/auth/challenge", sys.api)).json(&serde_json::json!({})).send().await;
        let _ = r.expect("challenge");
    }
    let r = sys.http.get(format!("{}/v1/no-such-route", sys.api)).send().await.expect("404");
    assert_eq!(r.status(), 404);
    let challenge_status = sys
        .http
        .post(format!("{}/v1/auth/challenge", sys.api))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("challenge")
        .status()
        .as_u16()
        .to_string();

    let r = sys.http.get(format!("{}/metrics", sys.api)).send().await.expect("metrics");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/plain"));
    let text = r.text().await.expect("text");
    let (samples, types) = parse(&python, &text);
    assert_eq!(types["medanchor_http_requests"], "counter", "{types}");
    assert_eq!(types["medanchor_http_request_duration_seconds"], "histogram", "{types}");
    // The recorder is the process's: other tests' systems add to it, so
    // at least what this test made.
    let challenges = sample(
        &samples,
        "medanchor_http_requests_total",
        &[("route", "/v1/auth/challenge"), ("status", &challenge_status)],
    );
    assert!(challenges.is_some_and(|n| n >= 4.0), "{challenges:?}\n{text}");
    assert!(sample(&samples, "medanchor_http_requests_total", &[("route", "-"), ("status", "404")])
        .is_some_and(|n| n >= 1.0));
    assert!(!text.contains("no-such-route"), "paths never become labels, only templates");
    let le_inf = sample(
        &samples,
        "medanchor_http_request_duration_seconds_bucket",
        &[("route", "/v1/auth/challenge"), ("le", "+Inf")],
    );
    assert!(le_inf.is_some_and(|n| n >= 4.0), "{le_inf:?}");
    let audit = sys.state.audit().size().expect("size") as f64;
    assert_eq!(sample(&samples, "medanchor_audit_entries", &[]), Some(audit));
    let tip = sys.node.lock().chain.tip().height as f64;
    assert_eq!(sample(&samples, "medanchor_node_tip_height", &[]), Some(tip));
    assert_eq!(sample(&samples, "medanchor_index_lag_blocks", &[]), Some(0.0));
    assert_eq!(sample(&samples, "medanchor_node_up", &[]), Some(1.0));
    assert_eq!(sample(&samples, "medanchor_backup_alerts", &[]), Some(0.0));
    for job in ["notifications", "share-sweep", "credential-expiry", "attachment-cleanup", "consent-reminders"] {
        assert_eq!(sample(&samples, "medanchor_job_failing", &[("job", job)]), Some(0.0), "{job}");
    }
    for channel in ["webhook", "email"] {
        assert_eq!(sample(&samples, "medanchor_outbox_depth", &[("channel", channel)]), Some(0.0), "{channel}");
        assert_eq!(sample(&samples, "medanchor_outbox_given_up", &[("channel", channel)]), Some(0.0), "{channel}");
    }
    assert_eq!(sample(&samples, "medanchor_share_lockouts_today", &[]), Some(0.0));
    for kind in ["anomaly", "security"] {
        assert_eq!(sample(&samples, "medanchor_open_flags", &[("kind", kind)]), Some(0.0), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_scraper_token_is_required_and_a_dead_node_is_not_ready() {
    use sha2::Digest;
    let token: [u8; 32] = sha2::Sha256::digest(b"scrape-me").into();
    let sys = super::start_with(move |c| c.metrics_token_sha256 = Some(token), None).await;
    let get = |t: Option<&'static str>| {
        let mut r = sys.http.get(format!("{}/metrics", sys.api));
        if let Some(t) = t {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(get(None).await.expect("metrics").status(), 401, "even on loopback, once a token is set");
    assert_eq!(get(Some("scrape-me?")).await.expect("metrics").status(), 401);
    assert_eq!(get(Some("scrape-me")).await.expect("metrics").status(), 200);

    // A node that stops answering: not ready, and the check says so.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let state = sys.state.with_node(medanchor_wallet::RpcClient::new(&format!("http://{addr}")).expect("rpc"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(medanchor_api::serve(listener, state, std::future::pending()));
    let r = sys.http.get(format!("{api}/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json");
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.starts_with("not ready: node: "), "the failing check is named: {body}");
    assert!(!detail.contains("database"), "only the failing checks: {body}");
}
