//! Attachments over HTTP against a real devnet and the object store on
//! disk: upload (checked, compressed when it helps, sealed), versions by
//! name, list, download of the original bytes, removal; every refusal
//! branch (no session, a stranger, the patient writing, consent revoked,
//! wrong type, contradicting extension, too large, bad name, unknown
//! record, removed); no plaintext or file name in the store; a changed
//! object refused.

use medanchor_contracts::types::DataType;
use medanchor_wallet::ContractCall;
use serde_json::Value;

use super::System;

pub(super) fn pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    for i in 0..4000 {
        b.extend_from_slice(format!("BT /F1 12 Tf 72 {i} Td (Haemoglobin A1c 5.4 percent) Tj ET\n").as_bytes());
    }
    b.extend_from_slice(b"trailer << >>\n%%EOF\n");
    b
}

pub(super) fn jpeg(seed: u8) -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed));
    b.extend_from_slice(&[0xff, 0xd9]);
    b
}

pub(super) async fn upload(
    sys: &System,
    token: Option<&str>,
    record: &str,
    name: &str,
    media: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = sys
        .http
        .post(format!("{}/v1/records/{record}/attachments", sys.api))
        .query(&[("name", name)])
        .header("content-type", media)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn download(sys: &System, token: &str, path: &str) -> (u16, Vec<u8>, String) {
    let r = sys.http.get(format!("{}{path}", sys.api)).bearer_auth(token).send().await.expect("get");
    let status = r.status().as_u16();
    let disposition =
        r.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, r.bytes().await.expect("bytes").to_vec(), disposition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_checked_sealed_versioned_and_released_only_as_the_chain_allows() {
    let sys = super::start_with(|c| c.max_attachment_bytes = 1 << 20, None).await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let stranger = sys.sign_in("wallet_3").await;
    let r: Value = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(&doctor)
        .json(&serde_json::json!({ "record_type": "lab-results", "content": { "test": "HbA1c" } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let record = r["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");

    // A PDF compresses; a JPEG does not; the same name is the next version.
    let report = pdf();
    let (status, first) =
        upload(&sys, Some(&doctor), &record, "hba1c report.pdf", "application/pdf", report.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["encoding"], "gzip");
    assert!(first["stored_size"].as_u64() < first["size"].as_u64(), "{first}");
    let pdf_id = first["attachment_id"].as_str().expect("id").to_string();
    let (status, photo) = upload(&sys, Some(&doctor), &record, "wound.jpg", "image/jpeg", jpeg(1)).await;
    assert_eq!(status, 201, "{photo}");
    assert!(photo.get("encoding").is_none(), "{photo}");
    let photo_id = photo["attachment_id"].as_str().expect("id").to_string();
    let (status, second) =
        upload(&sys, Some(&doctor), &record, "wound.jpg", "image/jpeg; charset=binary", jpeg(2)).await;
    assert_eq!((status, second["version"].as_u64()), (201, Some(2)), "{second}");
    assert_eq!(second["attachment_id"], photo["attachment_id"]);

    // Refusals, each precise; nothing is stored by any of them.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    for (token, name, media, body, want, code) in [
        (None, "x.pdf", "application/pdf", report.clone(), 401, "unauthorized"),
        (Some(&stranger), "x.pdf", "application/pdf", report.clone(), 403, "access-denied"),
        (Some(&me), "x.pdf", "application/pdf", report.clone(), 403, "access-denied"),
        (Some(&doctor), "scan.pdf", "application/pdf", png.clone(), 415, "unsupported-attachment"),
        (Some(&doctor), "notes.txt", "text/plain", b"hello".to_vec(), 415, "unsupported-attachment"),
        (Some(&doctor), "report.png", "application/pdf", report.clone(), 400, "attachment-extension"),
        (Some(&doctor), "a/b.pdf", "application/pdf", report.clone(), 400, "invalid-file-name"),
        (
            Some(&doctor),
            "big.pdf",
            "application/pdf",
            [b"%PDF-".to_vec(), vec![b' '; 1 << 20]].concat(),
            413,
            "body-too-large",
        ),
    ] {
        let (status, body) = upload(&sys, token.map(String::as_str), &record, name, media, body).await;
        if want == 403 {
            // The contract's refusal, named.
            assert_eq!(status, 403, "{body}");
            assert!(body["reason"]["name"].is_string(), "{body}");
            continue;
        }
        assert_eq!((status, body["code"].as_str()), (want, Some(code)), "{name} {media}: {body}");
    }
    let (status, _) = upload(&sys, Some(&doctor), &"ab".repeat(16), "x.pdf", "application/pdf", report.clone()).await;
    assert_eq!(status, 404, "an unknown record");

    // Listing and downloading: the patient and the provider; not a stranger.
    let list_path = format!("/v1/records/{record}/attachments");
    let (status, list) = sys.get(&list_path, &me).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<(&str, u64)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["name"].as_str().expect("name"), i["version"].as_u64().expect("v")))
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&("hba1c report.pdf", 1)) && names.contains(&("wound.jpg", 2)), "{names:?}");
    assert_eq!(sys.get(&list_path, &stranger).await.0, 403);
    let (status, bytes, disposition) = download(&sys, &me, &format!("{list_path}/{pdf_id}")).await;
    assert_eq!(status, 200);
    assert!(bytes == report, "the original bytes");
    assert_eq!(disposition, "attachment; filename*=UTF-8''hba1c%20report.pdf");
    let (_, latest, _) = download(&sys, &doctor, &format!("{list_path}/{photo_id}")).await;
    assert!(latest == jpeg(2), "the latest version");
    let (_, older, _) = download(&sys, &doctor, &format!("{list_path}/{photo_id}?version=1")).await;
    assert!(older == jpeg(1), "an earlier version by number");
    assert_eq!(download(&sys, &stranger, &format!("{list_path}/{pdf_id}")).await.0, 403);
    assert_eq!(download(&sys, &me, &format!("{list_path}/{}", "00".repeat(16))).await.0, 404);
    assert_eq!(download(&sys, &me, &format!("{list_path}/nothex")).await.0, 400);

    // The store: ciphertext under tenant/yyyy/mm/record/file, no plaintext,
    // no file name.
    let objects = sys._dir.path().join("objects");
    let mut files = Vec::new();
    let mut stack = vec![objects.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        let rel = f.strip_prefix(&objects).expect("under objects").to_string_lossy().into_owned();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!((parts.len(), parts[0], parts[3]), (5, "test", record.as_str()), "{rel}");
        let stored = std::fs::read(f).expect("read");
        for needle in [&b"Haemoglobin"[..], b"JFIF", b"hba1c", b"wound"] {
            assert!(!stored.windows(needle.len()).any(|w| w == needle), "{rel} holds {needle:?}");
        }
    }
    assert!(!files.iter().any(|f| f.to_string_lossy().contains("wound")), "no file name in a key");

    // A changed object is refused, not served.
    let victim = files.iter().find(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0) < 40_000).expect("the pdf");
    let mut stored = std::fs::read(victim).expect("read");
    let original = stored.clone();
    stored[100] ^= 1;
    std::fs::write(victim, &stored).expect("tamper");
    assert_eq!(download(&sys, &me, &format!("{list_path}/{pdf_id}")).await.0, 500);
    std::fs::write(victim, &original).expect("restore");
    assert_eq!(download(&sys, &me, &format!("{list_path}/{pdf_id}")).await.0, 200);

    // Revoked consent: the provider can no longer read or attach.
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults)).await;
    let (status, body) = sys.get(&list_path, &doctor).await;
    assert_eq!((status, body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{body}");
    assert_eq!(download(&sys, &doctor, &format!("{list_path}/{pdf_id}")).await.0, 403);
    assert_eq!(upload(&sys, Some(&doctor), &record, "late.pdf", "application/pdf", report.clone()).await.0, 403);
    sys.tx(
        "wallet_1",
        ContractCall::grant_consent(&provider, DataType::LabResults, medanchor_wallet::GrantDuration::UntilRevoked),
    )
    .await;

    // Removal: a stranger cannot; the provider marks it; it is gone (410)
    // but still listed, marked.
    let remove = |token: String| {
        let url = format!("{}{list_path}/{photo_id}/remove", sys.api);
        let http = sys.http.clone();
        async move { http.post(url).bearer_auth(token).send().await.expect("post").status().as_u16() }
    };
    assert_eq!(remove(stranger.clone()).await, 403);
    assert_eq!(remove(doctor.clone()).await, 200);
    assert_eq!(remove(doctor.clone()).await, 404, "nothing left to mark");
    assert_eq!(download(&sys, &me, &format!("{list_path}/{photo_id}")).await.0, 410);
    let (_, list) = sys.get(&list_path, &me).await;
    let removed = list["items"].as_array().expect("items").iter().filter(|i| i["removed_ms"].is_u64()).count();
    assert_eq!(removed, 2, "both versions marked, none deleted: {list}");

    // Downloads are disclosures in the patient's accounting.
    let (_, disclosures) = sys.get(&format!("/v1/audit/disclosures?patient={patient}"), &me).await;
    assert!(disclosures.to_string().contains("attachment.download"), "{disclosures}");
}

/// A lab-results record for wallet_1 written by `doctor`, mined and
/// anchored; its id.
pub(super) async fn lab_record(sys: &System, doctor: &str) -> String {
    let patient = sys.principal("wallet_1");
    let r: Value = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(doctor)
        .json(&serde_json::json!({ "record_type": "lab-results", "content": { "test": "HbA1c" } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let record = r["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    record
}

/// A lab record by wallet_2 for wallet_1 with one PDF and two versions of a
/// JPEG: (record, pdf id, jpeg id).
pub(super) async fn record_with_files(sys: &System, doctor: &str) -> (String, String, String) {
    let record = lab_record(sys, doctor).await;
    let (s, a) = upload(sys, Some(doctor), &record, "report.pdf", "application/pdf", pdf()).await;
    assert_eq!(s, 201, "{a}");
    let (s, b) = upload(sys, Some(doctor), &record, "scan.jpg", "image/jpeg", jpeg(1)).await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = upload(sys, Some(doctor), &record, "scan.jpg", "image/jpeg", jpeg(2)).await;
    assert_eq!(s, 201);
    (record, a["attachment_id"].as_str().expect("id").into(), b["attachment_id"].as_str().expect("id").into())
}

/// `path` with the last digit of its signature changed.
fn flip_sig(path: &str) -> String {
    let at = path.find("&sig=").expect("sig") + "&sig=".len() + 63;
    let digit = if &path[at..at + 1] == "0" { "1" } else { "0" };
    format!("{}{digit}{}", &path[..at], &path[at + 1..])
}

async fn anonymous(sys: &System, path: &str) -> (u16, Vec<u8>, Value) {
    let r = sys.http.get(format!("{}{path}", sys.api)).send().await.expect("get");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("bytes").to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, bytes, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_expire_and_follow_consent_versions_restore_grants_read_and_removal_purges_after_retention() {
    let (clock, offset) = super::share::manual_clock();
    let sys = super::start_with(|c| c.attachment_retention = std::time::Duration::from_secs(86_400), Some(clock)).await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let stranger = sys.sign_in("wallet_3").await;
    let (record, pdf_id, jpg_id) = record_with_files(&sys, &doctor).await;
    let files = format!("/v1/records/{record}/attachments");
    let post = |path: String, token: String| {
        let http = sys.http.clone();
        let url = format!("{}{path}", sys.api);
        async move {
            let r = http.post(url).bearer_auth(token).send().await.expect("post");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A link: made by a reader, used without a session, the bytes back.
    let (status, link) = post(format!("{files}/{pdf_id}/link"), doctor.clone()).await;
    assert_eq!(status, 201, "{link}");
    let path = link["path"].as_str().expect("path").to_string();
    assert!(link["url"].as_str().expect("url").ends_with(&path));
    assert_eq!(anonymous(&sys, &path).await.1, pdf(), "the original bytes through the link");
    let (status, latest_link) = post(format!("{files}/{jpg_id}/link"), me.clone()).await;
    assert_eq!((status, latest_link["version"].as_u64()), (201, Some(2)), "the latest version by default");
    // Refusals of making one.
    assert_eq!(post(format!("{files}/{pdf_id}/link"), stranger.clone()).await.0, 403);
    assert_eq!(post(format!("{files}/{}/link", "00".repeat(16)), doctor.clone()).await.0, 404);
    assert_eq!(post(format!("{files}/{jpg_id}/link?version=9"), doctor.clone()).await.0, 404);
    assert_eq!(sys.http.post(format!("{}{files}/{pdf_id}/link", sys.api)).send().await.expect("post").status(), 401);

    // Every change to a link is refused: another file, another version, a
    // later expiry, someone else, a flipped signature, parts missing.
    let other_file = path.replace(&pdf_id, &jpg_id);
    let expires = link["expires_ms"].as_u64().expect("expires");
    let tampered = [
        (other_file, "link-invalid"),
        (path.replace("version=1", "version=2"), "link-invalid"),
        (path.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3_600_000)), "link-invalid"),
        (path.replace(&provider.to_string(), &sys.principal("wallet_3").to_string()), "link-invalid"),
        (flip_sig(&path), "link-invalid"),
    ];
    for (bad, code) in tampered {
        let (status, _, body) = anonymous(&sys, &bad).await;
        assert_eq!((status, body["code"].as_str()), (403, Some(code)), "{bad}: {body}");
    }
    let (status, _, body) = anonymous(&sys, &path[..path.find("&sig=").expect("sig")]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid-link")), "{body}");

    // Consent revoked: the link dies with it; granted again, it works.
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::LabResults)).await;
    let (status, _, body) = anonymous(&sys, &path).await;
    assert_eq!((status, body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")), "{body}");
    sys.tx(
        "wallet_1",
        ContractCall::grant_consent(&provider, DataType::LabResults, medanchor_wallet::GrantDuration::UntilRevoked),
    )
    .await;
    assert_eq!(anonymous(&sys, &path).await.0, 200);
    // Past its 15 minutes: refused.
    offset.store(15 * 60 * 1000 + 1000, std::sync::atomic::Ordering::SeqCst);
    let (status, _, body) = anonymous(&sys, &path).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("link-expired")), "{body}");
    offset.store(0, std::sync::atomic::Ordering::SeqCst);

    // Restore: version 1 of the scan becomes version 3, the same bytes;
    // only a writer restores.
    assert_eq!(post(format!("{files}/{jpg_id}/restore?version=1"), me.clone()).await.0, 403, "the patient reads only");
    assert_eq!(post(format!("{files}/{jpg_id}/restore?version=1"), stranger.clone()).await.0, 403);
    assert_eq!(post(format!("{files}/{jpg_id}/restore?version=7"), doctor.clone()).await.0, 404);
    assert_eq!(post(format!("{files}/{jpg_id}/restore"), doctor.clone()).await.0, 400);
    let (status, restored) = post(format!("{files}/{jpg_id}/restore?version=1"), doctor.clone()).await;
    assert_eq!((status, restored["version"].as_u64(), restored["restored_from"].as_u64()), (201, Some(3), Some(1)));
    assert_eq!(restored["name"], "scan.jpg");
    let (_, latest, _) = download(&sys, &me, &format!("{files}/{jpg_id}")).await;
    assert!(latest == jpeg(1), "the restored bytes are the latest");

    // A share grant reads files as it reads records: a provider with no
    // on-chain consent, within the share's types only.
    sys.register_provider("wallet_3").await;
    let shared = sys
        .send("POST", "/v1/share/codes", &me, Some(serde_json::json!({ "data_types": ["lab-results"] })), None)
        .await;
    assert_eq!(shared.status, 201, "{}", shared.body);
    let code = shared.body["code"].as_str().expect("code").to_string();
    let redeemed = sys.redeem(&stranger, &patient, &code).await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let grant = redeemed.body["grant"].as_str().expect("grant").to_string();
    let with_grant = |path: String, g: &'static str| {
        let http = sys.http.clone();
        let url = format!("{}{path}", sys.api);
        let (token, grant) = (stranger.clone(), if g.is_empty() { grant.clone() } else { g.to_string() });
        async move {
            let r = http
                .get(url)
                .bearer_auth(token)
                .header(medanchor_api::app::GRANT_HEADER, grant)
                .send()
                .await
                .expect("get");
            (r.status().as_u16(), r.bytes().await.expect("bytes").to_vec())
        }
    };
    assert_eq!(with_grant(files.clone(), "").await.0, 200);
    let (status, bytes) = with_grant(format!("{files}/{pdf_id}"), "").await;
    assert!(status == 200 && bytes == pdf(), "a download through the grant");
    assert_eq!(with_grant(format!("{files}/{pdf_id}"), "not-a-grant").await.0, 403, "an unknown grant");
    assert_eq!(download(&sys, &stranger, &format!("{files}/{pdf_id}")).await.0, 403, "no grant, no consent");
    let disclosures = sys.get(&format!("/v1/audit/disclosures?patient={patient}"), &me).await.1.to_string();
    assert!(disclosures.contains("attachment.link-download"), "link uses are disclosures: {disclosures}");

    // Removal keeps everything until the retention ends; then the purge
    // deletes the versions and their objects — but an object a kept
    // version still points at stays.
    let objects = |sys: &System| {
        let mut n = 0;
        let mut stack = vec![sys._dir.path().join("objects")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    n += 1
                }
            }
        }
        n
    };
    assert_eq!(objects(&sys), 3, "three objects: the restore made none");
    assert_eq!(post(format!("{files}/{pdf_id}/remove"), doctor.clone()).await.0, 200);
    assert_eq!(sys.state.purge_attachments().await.expect("purge"), 0, "kept through the retention");
    offset.store(86_400_000 + 1000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sys.state.purge_attachments().await.expect("purge"), 1);
    assert_eq!(objects(&sys), 2, "the removed PDF's object is gone");
    let (_, list) = sys.get(&files, &me).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 3, "the scan's three versions remain: {list}");
    assert_eq!(download(&sys, &me, &format!("{files}/{pdf_id}")).await.0, 404, "purged");
    assert_eq!(sys.state.purge_attachments().await.expect("purge"), 0, "purging again changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_hashes_are_anchored_in_batches_with_proofs_that_lead_to_the_on_chain_root() {
    use medanchor_api::file_anchors::{FileAnchor, FileAnchorer};
    use medanchor_api::merkle;
    use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};

    let sys = super::start_with(|c| c.batch_max = 2, None).await;
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-anchor-operator",
            args: vec![ClarityValue::Principal(sys.principal("faucet")), ClarityValue::Bool(true)],
        },
    )
    .await;
    sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let stranger = sys.sign_in("wallet_3").await;
    let (record, pdf_id, jpg_id) = record_with_files(&sys, &doctor).await;
    let files = format!("/v1/records/{record}/attachments");

    // Queued until a batch is sealed.
    let (status, a) = sys.get(&format!("{files}/{pdf_id}/anchor"), &me).await;
    assert_eq!((status, a["status"].as_str()), (200, Some("queued")), "{a}");
    assert_eq!(sys.get(&format!("{files}/{pdf_id}/anchor"), &stranger).await.0, 403);
    assert_eq!(sys.get(&format!("{files}/{}/anchor", "00".repeat(16)), &me).await.0, 404);

    // Three hashes, at most two per batch: a full batch goes without the
    // timer; the third waits for it.
    let mut anchorer = FileAnchorer::connect(sys.state.clone(), sys.key("faucet").clone(), 2).await.expect("connect");
    let sent = anchorer.step(false).await.expect("step");
    assert_eq!(sent.iter().map(|b| b.leaves.len()).collect::<Vec<_>>(), vec![2], "the full batch only");
    sys.mine().await;
    let sent = anchorer.step(true).await.expect("step");
    assert_eq!(sent.iter().map(|b| b.leaves.len()).collect::<Vec<_>>(), vec![1], "the timer seals the rest");
    sys.mine().await;
    assert!(anchorer.step(false).await.expect("settle").is_empty(), "nothing left to send");

    let node = medanchor_wallet::RpcClient::new(&sys.rpc).expect("rpc");
    let (_, list) = sys.get(&files, &me).await;
    let mut roots = std::collections::HashSet::new();
    for item in list["items"].as_array().expect("items") {
        let (id, version) = (item["attachment_id"].as_str().expect("id"), item["version"].as_u64().expect("v"));
        let (status, a) = sys.get(&format!("{files}/{id}/anchor?version={version}"), &me).await;
        assert_eq!((status, a["status"].as_str()), (200, Some("anchored")), "{a}");
        // The proof, checked here: the file's hash → the root …
        let sha: [u8; 32] = hex::decode(a["sha256"].as_str().expect("sha").trim_start_matches("0x"))
            .expect("hex")
            .try_into()
            .expect("32");
        let root: [u8; 32] = hex::decode(a["root"].as_str().expect("root")).expect("hex").try_into().expect("32");
        let path: Vec<[u8; 32]> = a["path"]
            .as_array()
            .expect("path")
            .iter()
            .map(|h| hex::decode(h.as_str().expect("h")).expect("hex").try_into().expect("32"))
            .collect();
        let (index, size) = (a["leaf_index"].as_u64().expect("i"), a["tree_size"].as_u64().expect("n"));
        merkle::verify_inclusion(&merkle::leaf_hash(&sha), index, size, &path, &root).expect("the proof holds");
        let mut wrong = sha;
        wrong[0] ^= 1;
        assert!(merkle::verify_inclusion(&merkle::leaf_hash(&wrong), index, size, &path, &root).is_err());
        // … and the root is the chain's, with the leaf count the proof
        // claims (read from the node, not the API).
        let v = node
            .call_read_only(
                DEPLOYER_ADDRESS,
                ContractName::RecordManagement.name(),
                "get-batch",
                DEPLOYER_ADDRESS,
                &[ClarityValue::Buffer(root.to_vec())],
            )
            .await
            .expect("get-batch");
        let ClarityValue::Optional(Some(t)) = v else { panic!("the root is not on-chain: {v:?}") };
        let ClarityValue::Tuple(t) = *t else { panic!("shape") };
        assert_eq!(t.get("leaf-count"), Some(&ClarityValue::UInt(u128::from(size))));
        roots.insert(root);
    }
    assert_eq!(roots.len(), 2, "two batches");

    // A restored version shares its object: nothing new to anchor.
    let r = sys
        .http
        .post(format!("{}{files}/{jpg_id}/restore?version=1", sys.api))
        .bearer_auth(&doctor)
        .send()
        .await
        .expect("restore");
    assert_eq!(r.status(), 201);
    assert!(sys.state.queued_file_hashes(10).expect("queue").is_empty());
    let sha = sys.state.db().attachments(&hex::decode(&record).expect("hex").try_into().expect("16")).expect("db")[0]
        .sha256
        .0;
    assert!(matches!(sys.state.file_anchor(&sha).expect("anchor"), Some(FileAnchor::Batched(_))));
    let _ = pdf_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_report_counts_each_object_once_with_costs_and_thresholds_for_admins_only() {
    use medanchor_contracts::DEPLOYER_ADDRESS;
    let sys = super::start_with(
        |c| {
            c.admins = vec![DEPLOYER_ADDRESS.to_string()];
            c.storage_alert_bytes = Some(100_000);
        },
        None,
    )
    .await;
    sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let admin = sys.sign_in("deployer").await;
    let (record, _pdf_id, jpg_id) = record_with_files(&sys, &doctor).await;
    let files = format!("/v1/records/{record}/attachments");
    let restored = sys
        .http
        .post(format!("{}{files}/{jpg_id}/restore?version=1", sys.api))
        .bearer_auth(&doctor)
        .send()
        .await
        .expect("restore");
    assert_eq!(restored.status(), 201);
    let (_, list) = sys.get(&files, &me).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 4, "four versions");
    // Three objects: the restored version shares its source's.
    let stored: u64 =
        items.iter().filter(|i| i["restored_from"].is_null()).map(|i| i["stored_size"].as_u64().expect("size")).sum();

    let (status, report) = sys.get("/v1/admin/storage/report", &admin).await;
    assert_eq!(status, 200, "{report}");
    let t = &report["tenants"][0];
    assert_eq!(
        (t["tenant"].as_str(), t["objects"].as_u64(), t["bytes"].as_u64()),
        (Some("test"), Some(3), Some(stored)),
        "{report}"
    );
    assert_eq!(t["classes"][0]["class"], "STANDARD");
    assert_eq!(t["months"].as_array().expect("months").len(), 1, "{report}");
    let cost = t["monthly_cost"].as_f64().expect("cost");
    assert!((cost - stored as f64 / 1e9 * 0.023).abs() < 1e-12, "{cost}");
    assert_eq!(t["over_threshold"], true, "past 100,000 bytes: {report}");
    assert_eq!(report["spooled_uploads"], 0);
    let (status, other) = sys.get("/v1/admin/storage/report?tenant=elsewhere", &admin).await;
    assert_eq!((status, other["tenants"].as_array().map(Vec::len)), (200, Some(0)));
    // Admins only.
    let (status, body) = sys.get("/v1/admin/storage/report", &doctor).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("admin-only")), "{body}");
    assert_eq!(sys.get("/v1/admin/storage/report", &me).await.0, 403);
    let anonymous = sys.http.get(format!("{}/v1/admin/storage/report", sys.api)).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
}
