//! `medanchor bench devnet` at a small size: the workload is mined in full
//! with every transaction successful, and the simnet baseline runs the
//! same calls without a failure (the script refuses to report otherwise).
//! Timings are printed by the bench, never asserted here.

use std::process::Command;

#[test]
fn bench_devnet_runs_the_same_workload_on_the_node_and_in_simnet() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["bench", "devnet", "--txs", "60", "--accounts", "8", "--concurrency", "3", "--json"])
        .output()
        .expect("run medanchor bench devnet");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["txs"], 60);
    assert_eq!(report["failed"], 0);
    assert!(report["blocks"].as_u64().expect("blocks") >= 1);
    assert!(report["mined_tx_per_sec"].as_f64().expect("rate") > 0.0);
    assert!(report["latency_p99_ms"].as_f64() >= report["latency_p50_ms"].as_f64());
    assert_eq!(report["simnet"]["calls"], 60);
    assert_eq!(report["simnet"]["failed"], 0);
    assert!(report["ratio"].as_f64().expect("ratio") > 0.0);
}

#[test]
fn bench_devnet_refuses_more_pending_transactions_than_accounts_allow() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["bench", "devnet", "--txs", "100", "--accounts", "2", "--no-simnet"])
        .output()
        .expect("run medanchor bench devnet");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exceed 24 pending per account"), "{stderr}");
}
