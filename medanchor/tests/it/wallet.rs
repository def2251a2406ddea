//! `medanchor wallet` end to end: the CLI as a process against
//! `medanchor devnet` as a process, over loopback HTTP.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "correct horse battery staple";
/// wallet_1 of Devnet.toml (public test key).
const WALLET_1_MNEMONIC: &str = "sell invite acquire kitten bamboo drastic jelly vivid peace spawn twice guilt pave pen trash pretty park cube fragile unaware remain midnight betray rebuild";
const WALLET_1: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const WALLET_2: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";

struct Devnet {
    child: Child,
    base: String,
}

impl Devnet {
    fn start(data_dir: &Path) -> Devnet {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["devnet", "--data-dir"])
            .arg(data_dir)
            .args(["--rpc-bind", &format!("127.0.0.1:{port}"), "--block-time-ms", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn medanchor devnet");
        let devnet = Devnet { child, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "devnet did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        devnet
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `medanchor wallet ARGS…` with the passphrase and wallet_1's
/// mnemonic in the environment.
fn wallet(args: &[&str], passphrase: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .arg("wallet")
        .args(args)
        .env("MEDANCHOR_PASSPHRASE", passphrase)
        .env("W1_MNEMONIC", WALLET_1_MNEMONIC)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run medanchor wallet")
}

/// One CLI step: its arguments, whether it must succeed, and text its
/// output (stdout + stderr) must contain.
struct Step {
    args: Vec<String>,
    ok: bool,
    contains: Vec<&'static str>,
}

fn step(args: &[&str], ok: bool, contains: &[&'static str]) -> Step {
    Step { args: args.iter().map(|s| s.to_string()).collect(), ok, contains: contains.to_vec() }
}

fn run_steps(steps: &[Step], common: &[String]) {
    for (i, s) in steps.iter().enumerate() {
        let mut args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        // Options go after the subcommand path, which ends at the first `--`.
        let at = args.iter().position(|a| a.starts_with("--")).unwrap_or(args.len());
        let tail = args.split_off(at);
        args.extend(common.iter().map(String::as_str));
        args.extend(tail);
        let out = wallet(&args, PASSPHRASE);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.success(), s.ok, "step {i} `wallet {}`:\n{text}", args.join(" "));
        for needle in &s.contains {
            assert!(text.contains(needle), "step {i} `wallet {}`: no {needle:?} in\n{text}", args.join(" "));
        }
        assert!(!text.contains(PASSPHRASE), "step {i} printed the passphrase");
    }
}

#[test]
fn patient_registers_grants_checks_and_revokes_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(&dir.path().join("chain"));
    let patient_key = dir.path().join("keys/patient.json");
    let provider_key = dir.path().join("keys/provider.json");
    let patient_key = patient_key.to_str().expect("utf-8 path");
    let provider_key = provider_key.to_str().expect("utf-8 path");

    // Keys: wallet_1 from its mnemonic, wallet_2 by its devnet name.
    let imported = wallet(&["import", "--key-file", patient_key, "--mnemonic-env", "W1_MNEMONIC"], PASSPHRASE);
    assert!(imported.status.success(), "{imported:?}");
    assert!(String::from_utf8_lossy(&imported.stdout).contains(WALLET_1));
    let again = wallet(&["import", "--key-file", patient_key, "--devnet-account", "wallet_1"], PASSPHRASE);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));
    let imported = wallet(&["import", "--key-file", provider_key, "--devnet-account", "wallet_2"], PASSPHRASE);
    assert!(imported.status.success(), "{imported:?}");
    let address = wallet(&["address", "--key-file", patient_key], "");
    assert_eq!(String::from_utf8_lossy(&address.stdout).trim(), WALLET_1, "no passphrase needed");
    let key_text = std::fs::read_to_string(patient_key).expect("key file");
    assert!(!key_text.contains("7287ba251d44a4d3"), "secret key in clear");

    let as_patient = vec!["--key-file".to_string(), patient_key.to_string(), "--node".into(), devnet.base.clone()];
    let as_provider = vec!["--key-file".to_string(), provider_key.to_string(), "--node".into(), devnet.base.clone()];
    let grant = ["grant", "--provider", WALLET_2, "--type", "lab-results", "--for", "48h"];
    let check = ["check", "--patient", WALLET_1, "--provider", WALLET_2, "--type", "lab-results"];

    run_steps(
        &[
            step(&["balance"], true, &["100000000.000000 STX"]),
            // Not registered yet: mined, aborted, the contract's error named.
            step(&grant, false, &["abort_by_response", "ERR-PATIENT-NOT-FOUND", "block"]),
            step(&["register"], true, &["status    success", "patient id", "result    (ok true)"]),
            step(&grant, true, &["status    success", "block", "(ok u1)"]),
            step(&check, true, &["allowed", "consent"]),
            step(&["check", "--provider", WALLET_2, "--type", "mental-health"], false, &["ERR-NO-CONSENT"]),
            step(&["consents", "--provider", WALLET_2, "--json"], true, &["\"data_type\":\"lab-results\""]),
            step(&["revoke", "--provider", WALLET_2, "--type", "lab-results"], true, &["status    success"]),
            step(&check, false, &["denied", "ERR-CONSENT-REVOKED"]),
            step(&["revoke", "--provider", WALLET_2, "--type", "lab-results"], false, &["ERR-CONSENT-REVOKED"]),
            // Rejected before signing: nothing reaches the node.
            step(&["grant", "--provider", WALLET_2, "--type", "lab-results", "--for", "0h"], false, &["zero"]),
            step(&["grant", "--provider", WALLET_2, "--type", "labs", "--for", "1h"], false, &["lab-results"]),
            step(&["access", "grant", "--provider", WALLET_2, "--level", "emergency"], false, &["never granted"]),
            // wallet_2 is no registered provider in record-management.
            step(
                &["access", "grant", "--provider", WALLET_2, "--level", "read", "--for", "30d"],
                false,
                &["ERR-PROVIDER-NOT-FOUND"],
            ),
        ],
        &as_patient,
    );

    // The consent list shows the grant's expiry: 48 h = 288 burn blocks.
    let out = wallet(
        &["consents", "--key-file", patient_key, "--node", &devnet.base, "--provider", WALLET_2, "--json"],
        PASSPHRASE,
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lab = list["consents"].as_array().expect("rows").iter().find(|r| r["data_type"] == "lab-results").expect("row");
    let granted: u64 = lab["granted_at"].as_str().expect("granted").parse().expect("number");
    let expires: u64 = lab["expires_at"].as_str().expect("expires").parse().expect("number");
    assert_eq!(expires - granted, 288);
    assert!(lab["revoked_at"].is_string(), "{lab}");

    run_steps(
        &[
            // A provider creating a record for a patient who gave no consent.
            step(
                &["record", "create", "--patient", WALLET_1, "--type", "vitals", "--hash", &"ab".repeat(32)],
                false,
                &["record id", "ERR-NO-CONSENT"],
            ),
            step(&["register", "--no-wait", "--json"], true, &["\"status\":\"submitted\"", "\"txid\":\"0x"]),
        ],
        &as_provider,
    );

    let wrong = wallet(&["register", "--key-file", patient_key, "--node", &devnet.base], "not the passphrase");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase or corrupted key file"), "{wrong:?}");
}
