//! A resumable upload survives `kill -9` of the node: pieces acknowledged
//! before the crash are all there after the restart (HEAD says so), a
//! piece cut by the crash keeps at most what arrived, and the upload
//! resumes from the node's offset to a byte-identical attachment — whose
//! stored object `medanchor verify file --attachment` then checks against
//! the batch root `up` anchored on-chain. And `up --s3-bucket …` keeps
//! attachments on a real S3-compatible server (SeaweedFS on loopback).

use std::io::Write as _;
use std::time::Duration;

use base64::Engine;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient};
use serde_json::{json, Value};

use super::verify::{address, free_port, operator_authorized, rt, sign_in, tx, Ports, Up};

const MIB: usize = 1 << 20;

fn file() -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..6 * MIB).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 11) as u8));
    b.extend_from_slice(&[0xff, 0xd9]);
    b
}

/// wallet_1 a patient, wallet_2 a provider it consents to and gives WRITE
/// access, each by a signed transaction to `up`'s devnet.
pub(super) async fn consenting_provider(node: &RpcClient, rpc: &str, root: &std::path::Path) {
    operator_authorized(node, root).await;
    let provider: medanchor_contracts::Principal = address("wallet_2").parse().expect("principal");
    tx(rpc, "wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    let register = ContractCall {
        contract: ContractName::RecordManagement,
        function: "register-provider",
        args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
    };
    tx(rpc, "deployer", register).await;
    tx(rpc, "wallet_1", ContractCall::grant_consent(&provider, DataType::LabResults, GrantDuration::UntilRevoked))
        .await;
    let access = ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked);
    tx(rpc, "wallet_1", access.expect("call")).await;
}

/// A lab record for wallet_1 written by the caller of `token`; its id.
pub(super) async fn new_record(http: &reqwest::Client, api: &str, token: &str) -> String {
    let r: Value = http
        .post(format!("{api}/v1/patients/{}/records", address("wallet_1")))
        .bearer_auth(token)
        .json(&json!({ "record_type": "lab-results", "content": { "study": "knee" } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    r["record_id"].as_str().expect("id").to_string()
}

/// Attaches `file` to `record` as JPEG `name` in one request (201); its
/// attachment id.
pub(super) async fn upload_jpeg(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    record: &str,
    name: &str,
    file: &[u8],
) -> String {
    let r = http
        .post(format!("{api}/v1/records/{record}/attachments"))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(file.to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["attachment_id"].as_str().expect("id").to_string()
}

/// An attachment's bytes, as the reader of `token` downloads them.
pub(super) async fn download(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    record: &str,
    attachment: &str,
) -> Vec<u8> {
    let r = http.get(format!("{api}/v1/records/{record}/attachments/{attachment}")).bearer_auth(token).send().await;
    r.expect("get").bytes().await.expect("bytes").to_vec()
}

async fn head(http: &reqwest::Client, url: &str, token: &str) -> (u16, u64) {
    let r = http.head(url).bearer_auth(token).header("tus-resumable", "1.0.0").send().await.expect("head");
    let offset = r.headers().get("upload-offset").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    (r.status().as_u16(), offset)
}

async fn patch(http: &reqwest::Client, url: &str, token: &str, offset: u64, body: Vec<u8>) -> reqwest::Response {
    http.patch(url)
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(body)
        .send()
        .await
        .expect("patch")
}

#[test]
fn kill_9_mid_upload_loses_no_acknowledged_piece_and_the_upload_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let up = Up::start(root, &ports);
    let node = RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let file = file();

    let (record, location, acknowledged) = rt.block_on(async {
        consenting_provider(&node, &rpc, root).await;
        let http = reqwest::Client::new();
        let token = sign_in(&api, "wallet_2").await;
        let record = new_record(&http, &api, &token).await;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let r = http
            .post(format!("{api}/v1/records/{record}/uploads"))
            .bearer_auth(&token)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", file.len().to_string())
            .header("upload-metadata", format!("filename {},filetype {}", b64("knee.jpg"), b64("image/jpeg")))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let location = format!("{api}{}", r.headers()["location"].to_str().expect("ascii"));
        // Two acknowledged pieces.
        let mut offset = 0u64;
        for _ in 0..2 {
            let r =
                patch(&http, &location, &token, offset, file[offset as usize..offset as usize + MIB].to_vec()).await;
            assert_eq!(r.status(), 204);
            offset = r.headers()["upload-offset"].to_str().expect("ascii").parse().expect("offset");
        }
        // A third piece in flight when the node dies: its headers and part
        // of its body are sent on a raw connection that stays open.
        let addr = api.trim_start_matches("http://").to_string();
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        let head_lines = format!(
            "PATCH {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n\
             Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {}\r\n\r\n",
            location.trim_start_matches(&api),
            file.len() as u64 - offset
        );
        conn.write_all(head_lines.as_bytes()).expect("headers");
        conn.write_all(&file[offset as usize..offset as usize + MIB / 2]).expect("part of the piece");
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::mem::forget(conn);
        (record, location, offset)
    });

    up.kill();
    let _up = Up::start(root, &ports);

    rt.block_on(async {
        let http = reqwest::Client::new();
        let token = sign_in(&api, "wallet_2").await;
        let (status, offset) = head(&http, &location, &token).await;
        assert_eq!(status, 200, "the upload survived the crash");
        assert!(offset >= acknowledged, "no acknowledged byte lost: {offset} < {acknowledged}");
        assert!(offset <= acknowledged + (MIB / 2) as u64, "nothing beyond what arrived: {offset}");
        let r = patch(&http, &location, &token, offset, file[offset as usize..].to_vec()).await;
        assert_eq!(r.status(), 204);
        let attachment = r.headers()["medanchor-attachment-id"].to_str().expect("ascii").to_string();
        let me = sign_in(&api, "wallet_1").await;
        let got = download(&http, &api, &me, &record, &attachment).await;
        assert!(got == file, "byte-identical after the crash and resume");

        // `up` anchors the file's hash in a batch; `verify file` checks the
        // stored object against the on-chain root through its proof.
        let anchor_url = format!("{api}/v1/records/{record}/attachments/{attachment}/anchor");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let a: Value =
                http.get(&anchor_url).bearer_auth(&me).send().await.expect("get").json().await.expect("json");
            if a["status"] == "anchored" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never anchored: {a}\n{}", super::verify::up_log(root));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let object = objects(&root.join("api").join("objects")).pop().expect("the stored object");
        let args = |path: &str| {
            vec![
                "file".to_string(),
                path.to_string(),
                "--record".into(),
                record.clone(),
                "--attachment".into(),
                attachment.clone(),
                "--api".into(),
                api.clone(),
                "--node".into(),
                rpc.clone(),
            ]
        };
        let run = |path: &str| {
            let a = args(path);
            super::verify::verify(&a.iter().map(String::as_str).collect::<Vec<_>>(), Some(&me))
        };
        let out = run(object.to_str().expect("utf-8"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("VERIFIED: file 0x") && stdout.contains("leaf 0 of 1"), "{stdout}");
        // A changed copy of the object does not verify.
        let mut changed = std::fs::read(&object).expect("read");
        changed[40] ^= 1;
        let copy = root.join("changed.bin");
        std::fs::write(&copy, &changed).expect("write");
        let out = run(copy.to_str().expect("utf-8"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!out.status.success() && stdout.contains("MISMATCH"), "{stdout}");

        // The storage report through the CLI, as an admin (`up` makes the
        // devnet deployer one); a provider is refused.
        let admin = sign_in(&api, "deployer").await;
        let report = |token: &str, json: bool| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_medanchor"));
            c.args(["storage", "report", "--api", &api]).env("MEDANCHOR_API_TOKEN", token);
            if json {
                c.arg("--json");
            }
            c.output().expect("run medanchor storage report")
        };
        let out = report(&admin, true);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(r["tenants"][0]["objects"], 1, "{r}");
        assert!(r["tenants"][0]["bytes"].as_u64().expect("bytes") > file.len() as u64, "sealed: {r}");
        let out = report(&admin, false);
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 objects"), "{}", String::from_utf8_lossy(&out.stdout));
        let out = report(&token, false);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("403"));
    });
}

fn objects(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("objects dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The storage test's SeaweedFS harness (`weed mini` on loopback), shared,
/// not copied.
#[path = "../../../storage/tests/support/mod.rs"]
#[allow(dead_code)]
pub(super) mod seaweed;

#[test]
fn up_keeps_attachments_on_an_s3_server_when_told_to() {
    let server = seaweed::Seaweed::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let _up = Up::start_env(
        root,
        &ports,
        &["--s3-bucket", seaweed::BUCKET, "--s3-endpoint", &server.endpoint],
        &[("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)],
    );
    let node = RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let file = file();
    rt.block_on(async {
        consenting_provider(&node, &rpc, root).await;
        let http = reqwest::Client::new();
        let token = sign_in(&api, "wallet_2").await;
        let record = new_record(&http, &api, &token).await;
        let attachment = upload_jpeg(&http, &api, &token, &record, "knee.jpg", &file).await;
        let me = sign_in(&api, "wallet_1").await;
        let got = download(&http, &api, &me, &record, &attachment).await;
        assert!(got == file, "byte-identical from the S3 server");
        // On the server, not on local disk; the report names the store.
        assert!(!root.join("api").join("objects").exists() || objects(&root.join("api").join("objects")).is_empty());
        let admin = sign_in(&api, "deployer").await;
        let report: Value = http
            .get(format!("{api}/v1/admin/storage/report"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("report")
            .json()
            .await
            .expect("json");
        assert_eq!(report["store"], format!("s3 bucket {} at {}", seaweed::BUCKET, server.endpoint), "{report}");
        assert_eq!(report["tenants"][0]["objects"], 1, "{report}");

        // A tus upload of several parts: the node sends whole parts to the
        // server while later pieces arrive. A piece refused for running
        // past the length, after enough of it was sealed to make a part,
        // makes the node reseal the stream: the parts sent are dropped and
        // the file still arrives byte-identical.
        let big: Vec<u8> = file.iter().chain(file.iter()).chain(file.iter()).copied().collect();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let r = http
            .post(format!("{api}/v1/records/{record}/uploads"))
            .bearer_auth(&token)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", big.len().to_string())
            .header("upload-metadata", format!("filename {},filetype {}", b64("spine.jpg"), b64("image/jpeg")))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let location = format!("{api}{}", r.headers()["location"].to_str().expect("ascii"));
        let mut offset = 0usize;
        let mut attachment = None;
        let mut refused = false;
        while offset < big.len() {
            if !refused && offset >= 9 * MIB {
                refused = true;
                let r = patch(&http, &location, &token, offset as u64, vec![0; big.len() - offset + 1]).await;
                assert_eq!(r.status(), 400, "an overrun");
            }
            let end = (offset + 3 * MIB).min(big.len());
            let r = patch(&http, &location, &token, offset as u64, big[offset..end].to_vec()).await;
            assert_eq!(r.status(), 204);
            offset = r.headers()["upload-offset"].to_str().expect("ascii").parse().expect("offset");
            attachment = r.headers().get("medanchor-attachment-id").map(|v| v.to_str().expect("ascii").to_string());
        }
        let attachment = attachment.expect("the last piece completed the upload");
        assert!(download(&http, &api, &me, &record, &attachment).await == big, "byte-identical through parts");
    });
}
