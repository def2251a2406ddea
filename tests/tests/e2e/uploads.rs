//! Resumable uploads (tus 1.0) over HTTP against a real devnet: the
//! protocol's answers, a connection dropped mid-piece and resumed from the
//! node's offset (the file byte-identical), every refusal (no session,
//! stranger, patient, other uploader, wrong version, offset, checksum,
//! overrun, content type, early content check, limits), cancelling one
//! upload of several, consent revoked mid-upload, abandonment after 7 days
//! (spool deleted), and tus-js-client — the reference client — unchanged.

use std::io::Write as _;
use std::sync::atomic::Ordering;

use base64::Engine;
use medanchor_contracts::types::DataType;
use medanchor_wallet::ContractCall;
use serde_json::Value;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::attachments::lab_record;
use super::System;

const MIB: usize = 1 << 20;

fn jpeg(len: usize, seed: u8) -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..len - 13).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed));
    b.extend_from_slice(&[0xff, 0xd9]);
    b
}

/// A client that opens a connection per request. The node may close a
/// connection after refusing a request whose body it did not read (as
/// HTTP allows); a pooled connection reused at that moment fails with
/// `IncompleteMessage` on the client's side — a race of the test's
/// client, not of the protocol under test.
fn no_reuse() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client")
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Tus<'a> {
    sys: &'a System,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn offset(&self) -> u64 {
        self.header("upload-offset").and_then(|v| v.parse().ok()).expect("Upload-Offset")
    }
}

impl Tus<'_> {
    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    async fn create(&self, token: Option<&str>, record: &str, length: usize, name: &str, media: &str) -> Reply {
        let mut req = no_reuse()
            .post(format!("{}/v1/records/{record}/uploads", self.sys.api))
            .header("tus-resumable", "1.0.0")
            .header("upload-length", length.to_string())
            .header("upload-metadata", format!("filename {},filetype {}", b64(name), b64(media)));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn patch(&self, token: &str, location: &str, offset: u64, body: Vec<u8>, checksum: Option<String>) -> Reply {
        let mut req = no_reuse()
            .patch(format!("{}{location}", self.sys.api))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body);
        if let Some(c) = checksum {
            req = req.header("upload-checksum", c);
        }
        self.send(req).await
    }

    async fn head(&self, token: &str, location: &str) -> Reply {
        let req =
            no_reuse().head(format!("{}{location}", self.sys.api)).bearer_auth(token).header("tus-resumable", "1.0.0");
        self.send(req).await
    }

    async fn delete(&self, token: &str, location: &str) -> Reply {
        let req = no_reuse()
            .delete(format!("{}{location}", self.sys.api))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0");
        self.send(req).await
    }

    /// Sends a PATCH's headers (for `declared` bytes) and only `sent` of
    /// them, then drops the connection.
    async fn patch_then_drop(&self, token: &str, location: &str, offset: u64, declared: usize, sent: &[u8]) {
        let addr = self.sys.api.trim_start_matches("http://").to_string();
        let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n\
             Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).await.expect("headers");
        conn.write_all(sent).await.expect("part of the body");
        conn.flush().await.expect("flush");
        drop(conn);
    }
}

async fn download(sys: &System, token: &str, record: &str, attachment: &str) -> Vec<u8> {
    let r = sys
        .http
        .get(format!("{}/v1/records/{record}/attachments/{attachment}", sys.api))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("bytes").to_vec()
}

fn spool_files(sys: &System) -> usize {
    std::fs::read_dir(sys._dir.path().join("api").join("uploads"))
        .or_else(|_| std::fs::read_dir(sys._dir.path().join("uploads")))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_resumes_from_the_nodes_offset_and_every_refusal_is_precise() {
    let (clock, offset) = super::share::manual_clock();
    let sys = super::start_with(|c| c.max_attachment_bytes = 8 * MIB, Some(clock)).await;
    let (_patient, provider) = sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let stranger = sys.sign_in("wallet_3").await;
    let record = lab_record(&sys, &doctor).await;
    let tus = Tus { sys: &sys };

    // What the server speaks.
    let r = tus.send(sys.http.request(reqwest::Method::OPTIONS, format!("{}/v1/uploads", sys.api))).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-extension"), Some("creation,expiration,checksum,termination"));
    assert_eq!(r.header("tus-max-size"), Some(&*(8 * MIB).to_string()));
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256"));

    // Creation refusals.
    let file = jpeg(3 * MIB + 12_345, 7);
    for (token, length, name, media, want, code) in [
        (None, file.len(), "mri.jpg", "image/jpeg", 401, "unauthorized"),
        (Some(&stranger), file.len(), "mri.jpg", "image/jpeg", 403, "access-denied"),
        (Some(&me), file.len(), "mri.jpg", "image/jpeg", 403, "access-denied"),
        (Some(&doctor), 8 * MIB + 1, "mri.jpg", "image/jpeg", 413, "body-too-large"),
        (Some(&doctor), file.len(), "mri.txt", "text/plain", 415, "unsupported-attachment"),
        (Some(&doctor), file.len(), "mri.png", "image/jpeg", 400, "attachment-extension"),
        (Some(&doctor), file.len(), "", "image/jpeg", 400, "invalid-file-name"),
    ] {
        let r = tus.create(token.map(String::as_str), &record, length, name, media).await;
        if want == 403 {
            assert_eq!(r.status, 403, "{:?}", r.body);
            assert!(r.body["reason"]["name"].is_string(), "the contract's refusal: {}", r.body);
            continue;
        }
        assert_eq!((r.status, r.body["code"].as_str()), (want, Some(code)), "{name} {length}: {}", r.body);
    }
    let r = tus.create(Some(&doctor), &"ab".repeat(16), 10, "x.jpg", "image/jpeg").await;
    assert_eq!(r.status, 404, "an unknown record");
    let no_version = no_reuse()
        .post(format!("{}/v1/records/{record}/uploads", sys.api))
        .bearer_auth(&doctor)
        .header("upload-length", "10")
        .header("upload-metadata", format!("filename {}", b64("x.jpg")));
    let r = tus.send(no_version.try_clone().expect("clone")).await;
    assert_eq!((r.status, r.header("tus-version")), (412, Some("1.0.0")));
    let r = tus.send(no_version.header("tus-resumable", "0.2.2")).await;
    assert_eq!(r.status, 412, "another protocol version");
    let no_length = no_reuse()
        .post(format!("{}/v1/records/{record}/uploads", sys.api))
        .bearer_auth(&doctor)
        .header("tus-resumable", "1.0.0")
        .header("upload-metadata", format!("filename {}", b64("x.jpg")));
    assert_eq!(tus.send(no_length).await.status, 400);
    assert_eq!(spool_files(&sys), 0, "no refusal left anything");

    // An upload: the first piece, then a piece whose connection drops.
    let r = tus.create(Some(&doctor), &record, file.len(), "mri.jpg", "image/jpeg").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert!(r.header("upload-expires").is_some_and(|e| e.ends_with("GMT")));
    let location = r.header("location").expect("Location").to_string();
    assert!(location.starts_with("/v1/uploads/"), "{location}");
    let r = tus.head(&doctor, &location).await;
    assert_eq!((r.status, r.offset(), r.header("upload-length")), (200, 0, Some(&*file.len().to_string())));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = tus.patch(&doctor, &location, 0, file[..MIB].to_vec(), None).await;
    assert_eq!((r.status, r.offset()), (204, MIB as u64));
    tus.patch_then_drop(&doctor, &location, MIB as u64, file.len() - MIB, &file[MIB..MIB + 3 * MIB / 2]).await;
    // The node kept every byte that arrived: HEAD waits for the piece's
    // handling to finish (one piece at a time) and says how far it got.
    let mut resumed_at = MIB as u64;
    for _ in 0..100 {
        resumed_at = tus.head(&doctor, &location).await.offset();
        if resumed_at > MIB as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(resumed_at > MIB as u64 && resumed_at <= (MIB + 3 * MIB / 2) as u64, "kept what arrived: {resumed_at}");

    // Refusals of a piece; none moves the offset.
    let at = resumed_at as usize;
    let sha1 = |b: &[u8]| format!("sha1 {}", base64::engine::general_purpose::STANDARD.encode(sha1_digest(b)));
    let piece = file[at..at + 1000].to_vec();
    for (token, offset, body, checksum, want, code) in [
        (&doctor, 0, piece.clone(), None, 409, "upload-offset"),
        (&doctor, resumed_at, piece.clone(), Some(sha1(b"something else")), 460, "checksum-mismatch"),
        (&doctor, resumed_at, piece.clone(), Some("md5 AAAA".to_string()), 400, "checksum-algorithm"),
        (&doctor, resumed_at, piece.clone(), Some("sha1 !!".to_string()), 400, "invalid-checksum"),
        (&doctor, resumed_at, vec![0; file.len() - at + 1], None, 400, "upload-overrun"),
        (&stranger, resumed_at, piece.clone(), None, 404, "not-found"),
        (&me, resumed_at, piece.clone(), None, 404, "not-found"),
    ] {
        let r = tus.patch(token, &location, offset, body, checksum).await;
        assert_eq!((r.status, r.body["code"].as_str()), (want, Some(code)), "{:?}", r.body);
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    }
    let wrong_type = no_reuse()
        .patch(format!("{}{location}", sys.api))
        .bearer_auth(&doctor)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/octet-stream")
        .header("upload-offset", resumed_at.to_string())
        .body(piece.clone());
    assert_eq!(tus.send(wrong_type).await.status, 415);
    assert_eq!(tus.head(&doctor, &location).await.offset(), resumed_at, "nothing refused moved the offset");
    assert_eq!(tus.head(&stranger, &location).await.status, 404, "only the uploader sees it");

    // Resumed: a checksummed piece, then the rest; the last completes it.
    let r = tus.patch(&doctor, &location, resumed_at, piece.clone(), Some(sha1(&piece))).await;
    assert_eq!((r.status, r.offset()), (204, resumed_at + 1000));
    let rest = file[at + 1000..].to_vec();
    let sha256 = format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&rest)));
    let r = tus.patch(&doctor, &location, resumed_at + 1000, rest, Some(sha256)).await;
    assert_eq!((r.status, r.offset()), (204, file.len() as u64), "{:?}", r.body);
    let attachment = r.header("medanchor-attachment-id").expect("the attachment").to_string();
    assert_eq!(r.header("medanchor-attachment-version"), Some("1"));
    assert!(download(&sys, &me, &record, &attachment).await == file, "byte-identical after the interruption");
    assert_eq!(tus.head(&doctor, &location).await.status, 404, "a completed upload is gone");
    assert_eq!(spool_files(&sys), 0, "its spool too");

    // The first bytes are checked as they arrive: a PNG sent as a PDF.
    let r = tus.create(Some(&doctor), &record, 4096, "scan.pdf", "application/pdf").await;
    let wrong = r.header("location").expect("Location").to_string();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(2048, 0);
    let r = tus.patch(&doctor, &wrong, 0, png, None).await;
    assert_eq!((r.status, r.body["code"].as_str()), (415, Some("unsupported-attachment")), "{:?}", r.body);
    assert_eq!(tus.head(&doctor, &wrong).await.status, 404, "refused and deleted");

    // Several uploads to one record: cancelling one leaves the others.
    let a = tus.create(Some(&doctor), &record, 300_000, "a.jpg", "image/jpeg").await;
    let b = tus.create(Some(&doctor), &record, 300_000, "b.jpg", "image/jpeg").await;
    let (a, b) = (a.header("location").expect("a").to_string(), b.header("location").expect("b").to_string());
    let (fa, fb) = (jpeg(300_000, 1), jpeg(300_000, 2));
    assert_eq!(tus.patch(&doctor, &a, 0, fa[..100_000].to_vec(), None).await.status, 204);
    assert_eq!(tus.patch(&doctor, &b, 0, fb[..100_000].to_vec(), None).await.status, 204);
    assert_eq!(tus.delete(&stranger, &a).await.status, 404, "not theirs to cancel");
    assert_eq!(tus.delete(&doctor, &a).await.status, 204);
    assert_eq!(tus.head(&doctor, &a).await.status, 404);
    assert_eq!(tus.patch(&doctor, &a, 100_000, fa[100_000..].to_vec(), None).await.status, 404);
    let r = tus.patch(&doctor, &b, 100_000, fb[100_000..].to_vec(), None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let b_id = r.header("medanchor-attachment-id").expect("b completed").to_string();
    assert!(download(&sys, &me, &record, &b_id).await == fb);

    // Consent revoked mid-upload: the next piece is refused, the offset kept.
    let c = tus.create(Some(&doctor), &record, 200_000, "c.jpg", "image/jpeg").await;
    let c = c.header("location").expect("c").to_string();
    let fc = jpeg(200_000, 3);
    assert_eq!(tus.patch(&doctor, &c, 0, fc[..50_000].to_vec(), None).await.status, 204);
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults)).await;
    let r = tus.patch(&doctor, &c, 50_000, fc[50_000..].to_vec(), None).await;
    assert_eq!((r.status, r.body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{:?}", r.body);
    assert_eq!(tus.head(&doctor, &c).await.offset(), 50_000);
    sys.tx(
        "wallet_1",
        ContractCall::grant_consent(&provider, DataType::LabResults, medanchor_wallet::GrantDuration::UntilRevoked),
    )
    .await;

    // Abandoned: after 7 days untouched it is gone (410), then swept.
    assert_eq!(sys.state.sweep_uploads().await.expect("sweep"), 0, "nothing is abandoned yet");
    assert_eq!(spool_files(&sys), 1, "c's spool");
    offset.store(7 * 24 * 3_600_000 + 60_000, Ordering::SeqCst);
    let r = tus.head(&doctor, &c).await;
    assert_eq!(r.status, 410);
    assert_eq!(sys.state.sweep_uploads().await.expect("sweep"), 1);
    assert_eq!(tus.head(&doctor, &c).await.status, 404);
    assert_eq!(spool_files(&sys), 0, "the abandoned spool is deleted");
    offset.store(0, Ordering::SeqCst);

    // The spool holds no plaintext: a file's bytes never sit there in clear.
    let d = tus.create(Some(&doctor), &record, 200_000, "d.jpg", "image/jpeg").await;
    let d = d.header("location").expect("d").to_string();
    let fd = jpeg(200_000, 4);
    assert_eq!(tus.patch(&doctor, &d, 0, fd[..150_000].to_vec(), None).await.status, 204);
    let dir = std::fs::read_dir(sys._dir.path().join("uploads")).expect("spool dir");
    for f in dir {
        let stored = std::fs::read(f.expect("entry").path()).expect("read");
        assert!(!stored.windows(64).any(|w| w == &fd[1000..1064]), "plaintext in the spool");
        assert!(!stored.windows(4).any(|w| w == b"JFIF"), "plaintext in the spool");
    }
}

fn sha1_digest(b: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(b).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_uploads_to_the_node_unchanged() {
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js.join("node_modules/tus-js-client").exists(),
        "tests/js has no node_modules: run ./scripts/test (or `npm install` in tests/js)"
    );
    let sys = super::start_with(|c| c.max_attachment_bytes = 8 * MIB, None).await;
    sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let record = lab_record(&sys, &doctor).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // In chunks (several PATCHes) and whole (one).
    for (chunk, seed) in [(MIB + 7, 5u8), (0, 6)] {
        let file = jpeg(5 * MIB / 2, seed);
        let path = dir.path().join(format!("upload-{seed}.jpg"));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&file)).expect("write");
        let endpoint = format!("{}/v1/records/{record}/uploads", sys.api);
        let out = tokio::process::Command::new("node")
            .arg("tus-upload.mjs")
            .args([&endpoint, &doctor, path.to_str().expect("utf-8"), "knee mri.jpg", "image/jpeg", &chunk.to_string()])
            .current_dir(&js)
            .output()
            .await
            .expect("run node");
        assert!(out.status.success(), "tus-js-client failed: {}", String::from_utf8_lossy(&out.stderr));
        let result: Value = serde_json::from_slice(&out.stdout).expect("json");
        let attachment = result["attachment"].as_str().expect("the attachment id").to_string();
        assert!(download(&sys, &me, &record, &attachment).await == file, "byte-identical (chunk {chunk})");
    }
    let (_, list) = sys.get(&format!("/v1/records/{record}/attachments"), &me).await;
    let versions: Vec<u64> =
        list["items"].as_array().expect("items").iter().map(|i| i["version"].as_u64().expect("v")).collect();
    assert_eq!(versions, vec![1, 2], "the same name twice: two versions of one file");
}

async fn download_version(sys: &System, token: &str, record: &str, attachment: &str, version: u64) -> Vec<u8> {
    let path = format!("{}/v1/records/{record}/attachments/{attachment}?version={version}", sys.api);
    let r = sys.http.get(path).bearer_auth(token).send().await.expect("get");
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("bytes").to_vec()
}

fn object_files(sys: &System) -> usize {
    let mut stack = vec![sys._dir.path().join("objects")];
    let mut n = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten() {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                n += 1;
            }
        }
    }
    n
}

/// JPEG and PNG are sealed into their final stream as they arrive (one
/// pass). Sizes around the chunk boundary round-trip; two uploads of one
/// new name started together both land, as versions 1 and 2 of one
/// attachment (the second was bound to an id the name did not get, so it
/// is stored the two-pass way); content refused at completion leaves no
/// object, no spool and no version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_uploads_round_trip_race_for_a_name_and_refuse_late_content() {
    use medanchor_storage::stream::{sealed_len, CHUNK};
    let sys = super::start_with(|c| c.max_attachment_bytes = 8 * MIB, None).await;
    sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let record = lab_record(&sys, &doctor).await;
    let tus = Tus { sys: &sys };
    let items = |list: &Value| -> Vec<(String, u64, u64)> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                let id = i["attachment_id"].as_str().expect("id").to_string();
                (id, i["version"].as_u64().expect("v"), i["stored_size"].as_u64().expect("stored"))
            })
            .collect()
    };

    // Around the chunk size: only a tail, one whole last chunk, a chunk
    // and a byte, exactly two chunks, several chunks and a tail; sent in
    // pieces that do not fall on chunk boundaries.
    for (i, len) in [500, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 777].into_iter().enumerate() {
        let file = jpeg(len, 40 + i as u8);
        let r = tus.create(Some(&doctor), &record, len, &format!("size-{len}.jpg"), "image/jpeg").await;
        let location = r.header("location").expect("Location").to_string();
        let mut at = 0;
        let mut last = None;
        while at < len {
            let end = (at + 40_000 + at % 7).min(len);
            last = Some(tus.patch(&doctor, &location, at as u64, file[at..end].to_vec(), None).await);
            at = end;
        }
        let r = last.expect("a piece");
        assert_eq!((r.status, r.offset()), (204, len as u64), "{len}: {:?}", r.body);
        let id = r.header("medanchor-attachment-id").expect("completed").to_string();
        assert!(download(&sys, &me, &record, &id).await == file, "{len}: byte-identical");
        let (_, list) = sys.get(&format!("/v1/records/{record}/attachments"), &me).await;
        let stored = items(&list).into_iter().find(|(a, _, _)| *a == id).expect("listed").2;
        assert_eq!(stored, sealed_len(len as u64), "{len}: the stream, stored as it was sealed");
    }
    assert_eq!(spool_files(&sys), 0);

    // Two uploads of one new name, both started before either completes.
    let (f1, f2) = (jpeg(3 * CHUNK + 5, 1), jpeg(2 * CHUNK + 9, 2));
    let u1 = tus.create(Some(&doctor), &record, f1.len(), "xray.jpg", "image/jpeg").await;
    let u2 = tus.create(Some(&doctor), &record, f2.len(), "xray.jpg", "image/jpeg").await;
    let (u1, u2) = (u1.header("location").expect("u1").to_string(), u2.header("location").expect("u2").to_string());
    assert_eq!(tus.patch(&doctor, &u2, 0, f2[..CHUNK + 3].to_vec(), None).await.status, 204);
    let r1 = tus.patch(&doctor, &u1, 0, f1.clone(), None).await;
    assert_eq!(r1.header("medanchor-attachment-version"), Some("1"), "{:?}", r1.body);
    let r2 = tus.patch(&doctor, &u2, (CHUNK + 3) as u64, f2[CHUNK + 3..].to_vec(), None).await;
    assert_eq!(r2.header("medanchor-attachment-version"), Some("2"), "{:?}", r2.body);
    let id = r1.header("medanchor-attachment-id").expect("id").to_string();
    assert_eq!(r2.header("medanchor-attachment-id"), Some(id.as_str()), "one file name, one attachment");
    assert!(download_version(&sys, &me, &record, &id, 1).await == f1);
    assert!(download_version(&sys, &me, &record, &id, 2).await == f2);
    // A third, of the name that now exists: one pass again, version 3.
    let f3 = jpeg(CHUNK + 100, 3);
    let u3 = tus.create(Some(&doctor), &record, f3.len(), "xray.jpg", "image/jpeg").await;
    let r3 = tus.patch(&doctor, u3.header("location").expect("u3"), 0, f3.clone(), None).await;
    assert_eq!(r3.header("medanchor-attachment-version"), Some("3"), "{:?}", r3.body);
    assert!(download(&sys, &me, &record, &id).await == f3);

    // A PNG whose first piece is too short for the early check, then JPEG
    // bytes: refused at completion (415), and nothing stays behind.
    let objects = object_files(&sys);
    let (_, before) = sys.get(&format!("/v1/records/{record}/attachments"), &me).await;
    let fake = jpeg(2 * CHUNK + 50, 9);
    let r = tus.create(Some(&doctor), &record, fake.len(), "scan.png", "image/png").await;
    let location = r.header("location").expect("Location").to_string();
    assert_eq!(tus.patch(&doctor, &location, 0, fake[..100].to_vec(), None).await.status, 204);
    let r = tus.patch(&doctor, &location, 100, fake[100..].to_vec(), None).await;
    assert_eq!((r.status, r.body["code"].as_str()), (415, Some("unsupported-attachment")), "{:?}", r.body);
    assert_eq!(tus.head(&doctor, &location).await.status, 404, "refused and deleted");
    assert_eq!(spool_files(&sys), 0, "no spool or stream left");
    assert_eq!(object_files(&sys), objects, "no object stored");
    let (_, after) = sys.get(&format!("/v1/records/{record}/attachments"), &me).await;
    assert_eq!(items(&after), items(&before), "no version");
}
