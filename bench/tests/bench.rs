//! `medanchor-bench devnet` at a small size: the workload is mined in full
//! with every transaction successful, and the simnet baseline runs the
//! same calls without a failure (the script refuses to report otherwise).
//! Timings are printed by the bench, never asserted here.

use std::process::Command;

#[test]
fn bench_devnet_runs_the_same_workload_on_the_node_and_in_simnet() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["devnet", "--txs", "60", "--accounts", "8", "--concurrency", "3", "--json"])
        .output()
        .expect("run medanchor-bench devnet");
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
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["devnet", "--txs", "100", "--accounts", "2", "--no-simnet"])
        .output()
        .expect("run medanchor-bench devnet");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exceed 24 pending per account"), "{stderr}");
}

/// `medanchor-bench indexer` at a small size: both ingest paths index every
/// event and end in the same state, the query phase runs each kind of
/// query, and the report names its targets. Timings are not asserted.
#[test]
fn bench_indexer_ingests_every_event_over_http_and_raw_and_times_queries() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args([
            "indexer",
            "--blocks",
            "3",
            "--events-per-block",
            "40",
            "--consents",
            "300",
            "--records",
            "300",
            "--queries",
            "50",
            "--load-events-per-block",
            "200",
            "--json",
        ])
        .output()
        .expect("run medanchor-bench indexer");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    for phase in ["ingest", "raw"] {
        let r = &report[phase];
        assert_eq!(r["blocks"], 3, "{phase}");
        assert_eq!(r["events"], 120, "{phase}");
        assert_eq!(r["events_indexed"], 120, "{phase}");
        assert_eq!(r["block_ms"]["count"], 3, "{phase}");
        assert!(r["writes"].as_u64().expect("writes") > 120, "{phase}");
        assert!(r["events_per_sec"].as_f64().expect("rate") > 0.0, "{phase}");
        assert!(r["block_ms"]["p99"].as_f64() >= r["block_ms"]["p50"].as_f64(), "{phase}");
    }
    assert_eq!(report["ingest"]["writes"], report["raw"]["writes"]);
    assert_eq!(report["same_state"], true);
    assert!(report["ratio"].as_f64().expect("ratio") > 0.0);

    let q = &report["queries"];
    assert_eq!(q["consents"], 300);
    assert_eq!(q["records"], 300);
    assert!(q["load_events"].as_u64().expect("load events") >= 600);
    assert_eq!(q["has_consent"]["count"], 50);
    let pages = q["records_page"]["count"].as_u64().expect("pages");
    assert_eq!(pages, 50 + q["records_continuations"].as_u64().expect("continuations"));
    assert!(q["records_returned"].as_u64().expect("records returned") > 0);
    assert_eq!(q["http_consent_check"]["count"], 5);
    assert_eq!(q["http_records_page"]["count"], 5);

    assert_eq!(report["targets"]["ingest_events_per_sec"], 20_000.0);
    assert_eq!(report["targets"]["max_ratio"], 2.0);
    assert_eq!(report["targets"]["query_p99_ms"], 5.0);
    for met in ["ingest_rate", "ratio", "has_consent_p99", "records_page_p99"] {
        assert!(report["met"][met].is_boolean(), "{met}");
    }
}

/// `medanchor-bench api` at a small size: every consent-checked read is
/// answered 200, the baselines and the upload are measured, and the report
/// names its targets. Timings are not asserted.
#[test]
fn bench_api_reads_every_record_with_no_errors_and_uploads() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["api", "--records", "3", "--concurrency", "4", "--seconds", "0.5", "--upload-mib", "1", "--json"])
        .output()
        .expect("run medanchor-bench api");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let reads = &report["reads"];
    assert_eq!(reads["records"], 3);
    assert_eq!(reads["concurrency"], 4);
    assert_eq!(reads["errors"], 0, "{reads}");
    assert!(reads["ok"].as_u64().expect("ok") > 0);
    assert_eq!(reads["latency_ms"]["count"], reads["ok"]);
    assert!(reads["latency_ms"]["p99"].as_f64() >= reads["latency_ms"]["p50"].as_f64());
    for k in ["aes_gcm_decrypt_mb_per_sec", "sha256_mb_per_sec", "decrypt_and_hash_ops_per_sec"] {
        assert!(report["baseline"][k].as_f64().expect(k) > 0.0, "{k}");
    }
    assert!(report["ratio"].as_f64().expect("ratio") > 0.0);
    // The storage baselines of the same run, and the ratios derived from
    // them (consistent with their parts; never compared with a timing).
    let w = &report["synced_write"];
    assert_eq!(w["latency_ms"]["count"], 2_000);
    let per_sec = w["per_sec"].as_f64().expect("synced writes/s");
    assert!(per_sec > 0.0);
    let reads_per_sync = reads["reads_per_sec"].as_f64().expect("reads/s") / per_sec;
    assert!((report["reads_per_sync"].as_f64().expect("reads per sync") - reads_per_sync).abs() < 1e-9);
    assert_eq!(report["upload"]["bytes"], 1 << 20);
    assert_eq!(report["upload"]["status"], 202);
    let u = &report["upload"];
    let raw = u["raw_mb_per_sec"].as_f64().expect("raw MB/s");
    assert!(raw > 0.0);
    assert!((u["ratio"].as_f64().expect("ratio") - u["mb_per_sec"].as_f64().expect("MB/s") / raw).abs() < 1e-9);
    assert_eq!(report["targets"]["reads_vs_crypto"], 0.15);
    assert_eq!(report["targets"]["reads_per_sync"], 1.0);
    assert_eq!(report["targets"]["read_p99_vs_p50"], 2.5);
    assert_eq!(report["targets"]["upload_vs_raw"], 0.5);
    assert_eq!(report["met"]["no_errors"], true);
    for met in ["reads_vs_crypto", "reads_per_sync", "read_p99", "upload"] {
        assert!(report["met"][met].is_boolean(), "{met}");
    }
}

/// `medanchor-bench share` at a small size: every phase runs its samples
/// (the HTTP phase through the real API, each redemption answered as
/// expected) and the report names the target. Timings are not asserted.
#[test]
fn bench_share_generates_and_redeems_among_many_active_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["share", "--codes", "900", "--samples", "50", "--json"])
        .output()
        .expect("run medanchor-bench share");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!((report["active_codes"].as_u64(), report["patients"].as_u64()), (Some(900), Some(100)));
    let phases = [
        "generate_ms",
        "redeem_ms",
        "redeem_wrong_ms",
        "check_grant_ms",
        "synced_write_ms",
        "http_redeem_ms",
        "http_redeem_wrong_ms",
    ];
    for phase in phases {
        assert_eq!(report[phase]["count"], 50, "{phase}");
        assert!(report[phase]["p99"].as_f64() >= report[phase]["p50"].as_f64(), "{phase}");
    }
    assert_eq!(report["target_p99_ms"], 5.0);
    assert_eq!(report["target_store_vs_write"], 3.0);
    assert_eq!(report["target_http_vs_write"], 8.0);
    // The ratios are their parts' (never compared with a timing).
    let base = report["synced_write_ms"]["p99"].as_f64().expect("baseline p99");
    let ratio = |phase: &str| report[phase]["p99"].as_f64().expect("p99") / base;
    assert!((report["redeem_wrong_vs_write"].as_f64().expect("ratio") - ratio("redeem_wrong_ms")).abs() < 1e-9);
    let http = ratio("http_redeem_ms").max(ratio("http_redeem_wrong_ms"));
    assert!((report["http_vs_write"].as_f64().expect("ratio") - http).abs() < 1e-9);
}

/// `medanchor-bench profile` at a small size: the provider's reads are
/// answered with the sections its consent covers, and the report names
/// its baseline and target. Timings are not asserted.
#[test]
fn bench_profile_reads_the_sections_the_chain_allows() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["profile", "--reads", "50", "--json"])
        .output()
        .expect("run medanchor-bench profile");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["reads"], 50);
    assert_eq!(report["latency_ms"]["count"], 50);
    // Medical history (4 sections) and treatment plans (2).
    assert_eq!(report["sections"], 6);
    assert!(report["synced_write"]["latency_ms"]["count"].as_u64().expect("count") > 0);
    assert_eq!(report["target_p99_ms"], 5.0);
}

/// `medanchor-bench search` at a small size: every kind of query finds
/// results through the service's index reader, next to the raw scan's
/// baseline. Timings are not asserted.
#[test]
fn bench_search_finds_results_for_every_kind_of_query() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["search", "--records", "10000", "--queries", "30", "--json"])
        .output()
        .expect("run medanchor-bench search");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["records"], 10000);
    assert!(report["keys"].as_u64().expect("keys") > 10000 * 10, "names index every prefix");
    assert_eq!(report["raw_scan_ms"]["count"], 30);
    let queries = report["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 5);
    for q in queries {
        assert_eq!(q["latency_ms"]["count"], 30, "{q}");
        let ratio = q["latency_ms"]["p99"].as_f64().expect("p99") / report["raw_scan_ms"]["p99"].as_f64().expect("raw");
        assert!((q["p99_vs_raw_scan"].as_f64().expect("ratio") - ratio).abs() < 1e-6, "{q}");
    }
    // A full page of a diagnosis code's range; with half the candidates
    // refused the search reads on, so pages stay (nearly) full.
    assert_eq!(queries[0]["mean_results"], 20.0);
    let refused = queries[1]["mean_results"].as_f64().expect("mean");
    assert!(refused > 10.0 && refused <= 20.0, "{refused}");
    assert_eq!(report["target_p99_ms"], 10.0);
}

/// `medanchor-bench attachments` at a small size: the file goes through
/// tus and back on local disk and on SeaweedFS, the PDF is compressed, and
/// every hash of the batch has a proof that checks against the on-chain
/// leaf count. Timings are not asserted.
#[test]
fn bench_attachments_uploads_downloads_on_both_backends_and_anchors_one_batch() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["attachments", "--mib", "2", "--chunk-mib", "1", "--batch", "64", "--json"])
        .output()
        .expect("run medanchor-bench attachments");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    for backend in ["local", "seaweedfs"] {
        let b = &report[backend];
        assert_eq!(b["bytes"], 2 << 20, "{backend}: {b}");
        assert_eq!(b["patches"], 2, "{backend}: {b}");
        assert!(b["stored_bytes"].as_u64().expect("stored") > 2 << 20, "sealed, not compressed: {b}");
        assert!(b["upload_mb_per_sec"].as_f64().expect("rate") > 0.0);
    }
    assert!(report["gzip_stored_ratio"].as_f64().expect("ratio") < 0.5, "the PDF was compressed: {report}");
    let batch = &report["batch"];
    assert_eq!((batch["hashes"].as_u64(), batch["verified"].as_u64()), (Some(64), Some(64)), "{batch}");
    assert_eq!(batch["on_chain_leaf_count"], 64);
    assert_eq!(batch["transactions"], 1);
}

/// `medanchor-bench export` at a small size: the records are written and
/// anchored, both exports are made through the API (the bundle holding a
/// document per record), and the baseline decrypts them. Timings are not
/// asserted.
#[test]
fn bench_export_makes_both_exports_of_every_record_and_the_decrypt_baseline() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["export", "--records", "12", "--json"])
        .output()
        .expect("run medanchor-bench export");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["records"], 12);
    assert!(report["decrypt_s"].as_f64().expect("baseline") > 0.0);
    let formats: Vec<&str> =
        report["formats"].as_array().expect("formats").iter().filter_map(|f| f["format"].as_str()).collect();
    assert_eq!(formats, vec!["pdf", "fhir"]);
    for f in report["formats"].as_array().expect("formats") {
        assert!(f["bytes"].as_u64().expect("bytes") > 1000, "{f}");
        assert_eq!(f["runs"].as_array().expect("runs").len(), 3);
    }
}

/// `medanchor-bench oversight` at a small size: the entries are appended
/// and counted, every dashboard window and the raw baseline are read, and
/// every notification reaches the receiver once (the bench refuses to
/// report otherwise). Timings are not asserted.
#[test]
fn bench_oversight_reads_the_dashboard_and_delivers_every_notification() {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor-bench"))
        .args(["oversight", "--entries", "3000", "--events", "40", "--json"])
        .output()
        .expect("run medanchor-bench oversight");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!((report["entries"].as_u64(), report["events"].as_u64()), (Some(3000), Some(40)));
    let windows: Vec<&str> =
        report["dashboard"].as_array().expect("windows").iter().filter_map(|l| l["what"].as_str()).collect();
    assert_eq!(windows, ["dashboard, 7 days", "dashboard, 30 days", "dashboard, 90 days"]);
    assert!(report["keys_read"].as_u64().expect("keys") > 100, "{report}");
    for l in report["dashboard"].as_array().expect("windows") {
        assert!(l["p99_ms"].as_f64() >= l["p50_ms"].as_f64(), "{l}");
    }
    assert!(report["delivered_per_s"].as_f64().expect("rate") > 0.0);
    assert!(report["raw_post_per_s"].as_f64().expect("baseline") > 0.0);
}
