//! `medanchor export` and `medanchor verify export` against a running
//! `up`: the patient exports as JSON (with its signature beside it) and as
//! PDF; once `up`'s file anchorer has put their hashes on-chain, `verify
//! export` checks each offline — signature, the export's record, the
//! batch proof against `get-batch` — and refuses a copy with one byte
//! changed, a signature from elsewhere, and a key that is not the node's.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::upload_crash::{consenting_provider, new_record};
use super::verify::{address, free_port, rt, sign_in, up_log, verify, Ports, Up};

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn exports_are_written_with_their_signature_and_verified_against_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let _up = Up::start(&root, &ports);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let me = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let doctor = sign_in(&api, "wallet_2").await;
        new_record(&reqwest::Client::new(), &api, &doctor).await;
        sign_in(&api, "wallet_1").await
    });
    // Wait for the record's anchor (the export lists what the chain lists).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed: Value = rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{api}/v1/patients/{}/records", address("wallet_1")))
                .bearer_auth(&me)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json")
        });
        if listed["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the record was not anchored: {}", up_log(&root));
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = |name: &str| root.join(name).display().to_string();
    let export = |format: &str, file: &str| {
        Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["export", &address("wallet_1"), "--format", format, "--out", &out(file), "--api", &api])
            .env("MEDANCHOR_API_TOKEN", &me)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run medanchor export")
    };
    let json = export("json", "mine.json");
    assert!(json.status.success(), "{}", text(&json));
    assert!(root.join("mine.json.sig").exists(), "the signature beside it: {}", text(&json));
    let pdf = export("pdf", "mine.pdf");
    assert!(pdf.status.success(), "{}", text(&pdf));
    assert!(!root.join("mine.pdf.sig").exists(), "a PDF is signed inside");
    // Refused precisely, nothing written.
    let bad = export("docx", "bad.docx");
    assert!(!bad.status.success() && text(&bad).contains("HTTP 400"), "{}", text(&bad));
    assert!(!root.join("bad.docx").exists());

    // Anchored by `up`'s file anchorer (a batch every 10 s), then verified.
    let check = |file: &str, extra: &[&str]| {
        let mut args = vec!["export", file, "--api", &api, "--node", &rpc];
        args.extend_from_slice(extra);
        verify(&args, None)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let json_path = out("mine.json");
    loop {
        let o = check(&json_path, &[]);
        if o.status.success() {
            assert!(text(&o).contains("VERIFIED: file 0x"), "{}", text(&o));
            break;
        }
        assert!(text(&o).contains("NOT ANCHORED"), "only waiting may fail: {}", text(&o));
        assert!(Instant::now() < deadline, "never anchored: {}\n{}", text(&o), up_log(&root));
        std::thread::sleep(Duration::from_secs(1));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let pdf_path = out("mine.pdf");
    loop {
        let o = check(&pdf_path, &[]);
        if o.status.success() {
            assert!(text(&o).contains("signed:   the PDF"), "{}", text(&o));
            break;
        }
        assert!(text(&o).contains("NOT ANCHORED"), "only waiting may fail: {}", text(&o));
        assert!(Instant::now() < deadline, "never anchored: {}", text(&o));
        std::thread::sleep(Duration::from_secs(1));
    }

    // One byte changed: the signature fails (and the hash would not be the
    // recorded one).
    let json_id: Value = serde_json::from_slice(&std::fs::read(root.join("mine.json")).expect("json")).expect("json");
    let json_id = json_id["id"].as_str().expect("id").to_string();
    for (file, at) in [("mine.json", 40usize), ("mine.pdf", 600)] {
        let mut bytes = std::fs::read(root.join(file)).expect("read");
        bytes[at] ^= 0x20;
        let copy = format!("tampered-{file}");
        std::fs::write(root.join(&copy), &bytes).expect("write");
        if file.ends_with(".json") {
            std::fs::copy(root.join("mine.json.sig"), root.join(format!("{copy}.sig"))).expect("sig");
        }
        let o = check(&out(&copy), &["--id", &json_id]);
        assert!(!o.status.success() && text(&o).contains("MISMATCH"), "{copy}: {}", text(&o));
    }
    // A key that is not the node's.
    let other = medanchor_export::sign::ExportKey::from_secret(&[9; 32], "someone else").expect("key");
    std::fs::write(root.join("other.pem"), other.certificate_pem()).expect("pem");
    let o = check(&json_path, &["--key", &out("other.pem")]);
    assert!(!o.status.success() && text(&o).contains("MISMATCH"), "{}", text(&o));
    // The node's key pinned: verified without asking the API for it.
    let key: Value = rt.block_on(async {
        reqwest::get(format!("{api}/v1/exports/key")).await.expect("key").json().await.expect("json")
    });
    std::fs::write(root.join("node.pem"), key["certificate_pem"].as_str().expect("pem")).expect("pem");
    for file in [&json_path, &pdf_path] {
        let o = check(file, &["--key", &out("node.pem")]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = check(&pdf_path, &["--key", &out("other.pem")]);
    assert!(!o.status.success() && text(&o).contains("MISMATCH"), "another key's certificate: {}", text(&o));
}
