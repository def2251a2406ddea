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

fn pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    for i in 0..4000 {
        b.extend_from_slice(format!("BT /F1 12 Tf 72 {i} Td (Haemoglobin A1c 5.4 percent) Tj ET\n").as_bytes());
    }
    b.extend_from_slice(b"trailer << >>\n%%EOF\n");
    b
}

fn jpeg(seed: u8) -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed));
    b.extend_from_slice(&[0xff, 0xd9]);
    b
}

async fn upload(
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
