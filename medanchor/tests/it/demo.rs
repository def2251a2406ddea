//! `medanchor demo` against `medanchor up`, both as processes on free
//! loopback ports: every step of the story must behave (exit 0). Then the
//! `medanchor share` commands against the same node, for both roles: a QR
//! made by the patient is written as PNG, read back by a real QR decoder
//! (`zbarimg`), checked offline and redeemed by a provider.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::verify::{free_port, up_log, Ports, Up};

fn medanchor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medanchor")).args(args).env("RUST_LOG", "warn").output().expect("run medanchor")
}

/// Runs `medanchor share …` as `account` (if any) against `api`; returns
/// its JSON output, failing the test on a non-zero exit.
fn share(api: &str, account: Option<&str>, args: &[&str]) -> Value {
    let out = share_raw(api, account, args);
    assert!(
        out.status.success(),
        "share {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into()))
}

fn share_raw(api: &str, account: Option<&str>, args: &[&str]) -> Output {
    let mut all = vec!["share"];
    all.extend_from_slice(args);
    if let Some(a) = account {
        all.extend_from_slice(&["--devnet-account", a, "--api", api]);
    }
    medanchor(&all)
}

fn zbarimg(png: &Path) -> String {
    let out = Command::new("zbarimg").args(["--raw", "-q"]).arg(png).output().expect("zbarimg (zbar-tools)");
    assert!(out.status.success(), "zbarimg read no QR code from {}", png.display());
    String::from_utf8(out.stdout).expect("utf-8").trim_end().to_string()
}

#[test]
fn demo_then_the_share_commands_run_against_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let _up = Up::start(dir.path(), &ports);
    let out = medanchor(&["demo", "--node", &ports.rpc(), "--api", &ports.api()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}\nup log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        up_log(dir.path())
    );
    for step in ["ERR-CONSENT-REVOKED", "VERIFIED", "tampering detected", "through the grant", "demo complete"] {
        assert!(stdout.contains(step), "{step:?} missing from:\n{stdout}");
    }

    // The patient (wallet_1, registered by the demo) makes a QR share.
    let api = ports.api();
    let png = dir.path().join("share.png");
    let svg = dir.path().join("share.svg");
    let (png_s, svg_s) = (png.display().to_string(), svg.display().to_string());
    let made = share(
        &api,
        Some("wallet_1"),
        &["create", "--types", "lab-results", "--duration", "1h", "--max-uses", "2", "--qr", "--passcode"]
            .into_iter()
            .chain(["--png", &png_s, "--svg", &svg_s, "--json"])
            .collect::<Vec<_>>(),
    );
    let code = made["code"].as_str().expect("code").to_string();
    let id = made["share"]["id"].as_str().expect("id").to_string();
    let content = zbarimg(&png);
    assert_eq!(content, made["qr_content"].as_str().expect("content"), "the PNG decodes to the link");
    assert!(std::fs::read_to_string(&svg).expect("svg").contains("<svg"));

    // Offline verification against the pinned key; forgeries and expiry fail.
    let issuer = share(&api, None, &["issuer", "--api", &api, "--json"]);
    let key = issuer["jwk"]["x"].as_str().expect("key").to_string();
    let ok = share(&api, None, &["verify", &content, "--issuer-key", &key, "--json"]);
    assert_eq!(ok["valid"], true);
    let mut tampered = content.clone();
    let mid = tampered.len() / 2;
    let c = if &tampered[mid..=mid] == "A" { "B" } else { "A" };
    tampered.replace_range(mid..=mid, c);
    let exp = ok["exp"].as_u64().expect("exp").to_string();
    let other_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    for (what, args) in [
        ("tampered", vec!["verify", tampered.as_str(), "--issuer-key", key.as_str()]),
        ("another issuer", vec!["verify", content.as_str(), "--issuer-key", other_key]),
        ("expired", vec!["verify", content.as_str(), "--issuer-key", key.as_str(), "--now", exp.as_str()]),
    ] {
        let out = share_raw(&api, None, &args);
        assert!(!out.status.success(), "{what} verified");
    }

    // The provider (wallet_3, registered by the demo) opens the QR with the
    // code as passcode: the release (decrypted with the QR's key) names the
    // patient and the scope; the grant lists the demo's lab record.
    let opened =
        share(&api, Some("wallet_3"), &["open", &content, "--passcode", &code, "--issuer-key", &key, "--json"]);
    assert_eq!(opened["release"]["data_types"], serde_json::json!(["lab-results"]));
    assert_eq!(opened["release"]["patient"], opened["patient"]);
    let record = opened["records"][0]["record_id"].as_str().expect("a record through the grant").to_string();
    // A wrong code: refused with the attempts left; the right one: a grant.
    let patient = opened["patient"].as_str().expect("patient").to_string();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let out = share_raw(&api, Some("wallet_3"), &["redeem", "--patient", &patient, "--code", wrong]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("attempts left"), "{}", String::from_utf8_lossy(&out.stderr));
    let redeemed = share(&api, Some("wallet_3"), &["redeem", "--patient", &patient, "--code", &code, "--json"]);
    let grant = redeemed["grant"].as_str().expect("grant").to_string();
    let read = share(&api, Some("wallet_3"), &["read", "--grant", &grant, &record]);
    assert_eq!(read["content"]["test"], "HbA1c", "{read}");

    // Two uses: used up. Revoked: the grant ends.
    let list = share(&api, Some("wallet_1"), &["list", "--json"]);
    let mine = list["items"].as_array().expect("items").iter().find(|i| i["id"] == id.as_str()).expect("listed");
    assert_eq!(
        (mine["state"].as_str(), mine["uses"].as_u64(), mine["failures"].as_u64()),
        (Some("used_up"), Some(2), Some(1))
    );
    share(&api, Some("wallet_1"), &["revoke", &id, "--json"]);
    let out = share_raw(&api, Some("wallet_3"), &["read", "--grant", &grant, &record]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"), "{}", String::from_utf8_lossy(&out.stderr));
}
