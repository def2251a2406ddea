//! The OpenAPI document against the running system: schemathesis (PyPI)
//! generates requests from `/openapi.json` — valid ones and invalid ones,
//! every route — sends them to the real API (devnet, indexer and API
//! wired as in every e2e test, over loopback) with a real session, and
//! checks every answer against the document: no server error, only
//! documented statuses, content types, headers and bodies; schema-valid
//! requests accepted, schema-invalid ones refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::branches::create;

/// The repository's root (this crate is `tests/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// The pinned schemathesis, installed by `scripts/lib.sh`'s
/// `ensure_schemathesis` (which `scripts/test` runs too) when missing.
fn schemathesis() -> PathBuf {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/lib.sh && ensure_schemathesis")
        .current_dir(repo_root())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "installing schemathesis failed (scripts/lib.sh ensure_schemathesis; `scripts/test` runs it too):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    assert!(path.is_file(), "ensure_schemathesis named {path:?}, which does not exist");
    path
}

/// Runs `command` to its end or until `limit`, its output in `dir`;
/// returns whether it exited 0 and what it printed.
fn run_to_end(mut command: Command, dir: &Path, limit: Duration) -> (bool, String) {
    let log = dir.join("schemathesis.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .spawn()
        .expect("schemathesis starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            child.kill().expect("kill");
            child.wait().expect("reap");
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) => (s.success(), format!("{s}, after {:?}\n{printed}", start.elapsed())),
        None => (false, format!("still running after {limit:?}: killed\n{printed}")),
    }
}

/// What one run is given: the API, a session, the principals the system
/// knows (the hooks hand them to the generator beside random ones).
struct Run<'a> {
    api: &'a str,
    token: &'a str,
    principals: &'a [String],
    records: &'a [String],
    hashes: &'a [String],
}

/// Runs schemathesis once, as the session's principal; (whether it
/// passed, its report).
async fn schemathesis_run(schemathesis: &Path, run: Run<'_>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let mut command = Command::new(schemathesis);
    command
        .env("SCHEMATHESIS_HOOKS", here.join("openapi_hooks.py"))
        .env("MEDANCHOR_PRINCIPALS", run.principals.join(","))
        .env("MEDANCHOR_RECORDS", run.records.join(","))
        .env("MEDANCHOR_HASHES", run.hashes.join(","))
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", run.api)])
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", run.token)])
        .args(["--seed", "1", "--max-examples", "100", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color"]);
    let dir_path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || run_to_end(command, &dir_path, Duration::from_secs(900))).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    let schemathesis = schemathesis();
    let sys = super::start().await;

    // A little data, so that reads, versions, lists and the audit log have
    // something to serve: a consenting patient, a provider with WRITE
    // access, one anchored record.
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let provider_token = sys.sign_in("wallet_2").await;
    let patient_token = sys.sign_in("wallet_1").await;
    let id = create(&sys, &provider_token, &patient, "lab-results").await;
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let (status, record) = sys.get(&format!("/v1/records/{id}"), &provider_token).await;
    assert_eq!(status, 200, "{record}");
    let hash = record["anchor"]["data_hash"].as_str().expect("data hash").to_string();
    let (principals, records, hashes) = (vec![patient.to_string(), provider.to_string()], vec![id], vec![hash]);

    // As the provider (custodial: this node holds wallet_2's key), then as
    // the patient, whose routes (shares, their own disclosures) differ.
    let mut failed = Vec::new();
    for (who, token) in [("provider", &provider_token), ("patient", &patient_token)] {
        let (ok, report) = schemathesis_run(
            &schemathesis,
            Run { api: &sys.api, token, principals: &principals, records: &records, hashes: &hashes },
        )
        .await;
        // The closing line (counts and time); the whole report on failure.
        let summary = report.lines().rev().find(|l| l.starts_with("===")).unwrap_or("no summary");
        println!("schemathesis as the {who}: {summary}");
        if !ok {
            failed.push(format!("==== as the {who}\n{report}"));
        }
    }
    assert!(failed.is_empty(), "schemathesis found failures:\n{}", failed.join("\n"));
}
