//! The patient's right to deletion over HTTP, against the real contract:
//! an archived record past its retention is purged on-chain and erased here
//! (ciphertext, keys, attachments, search entries; reads answer 410; the
//! tombstone list names it); every other case is refused with its reason —
//! retention active (with the height it becomes deletable), not archived,
//! not found, another patient's record, someone else asking, no session,
//! malformed or oversized requests — and every outcome is audited.

use medanchor_contracts::types::{AccessLevel, RecordStatus};
use medanchor_contracts::{ClarityValue, ContractName, RecordId};
use medanchor_indexer::RecordReader;
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::attachments::{jpeg, lab_record, upload};
use super::System;

fn retention(blocks: u128) -> ContractCall {
    ContractCall {
        contract: ContractName::RecordManagement,
        function: "set-retention-period",
        args: vec![ClarityValue::UInt(blocks)],
    }
}

async fn ask(sys: &System, patient: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = sys.http.post(format!("{}/v1/patients/{patient}/deletion", sys.api)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// [`ask`] while blocks are mined: the purge is the owner's transaction,
/// which the node waits to see mined.
async fn ask_mining(sys: &System, patient: &str, token: &str, body: Value) -> (u16, Value) {
    let (api, http, patient, token) = (sys.api.clone(), sys.http.clone(), patient.to_string(), token.to_string());
    let request = tokio::spawn(async move {
        let r = http
            .post(format!("{api}/v1/patients/{patient}/deletion"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("post");
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    });
    while !request.is_finished() {
        sys.mine().await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    request.await.expect("request")
}

fn outcome<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["outcomes"].as_array().expect("outcomes").iter().find(|o| o["record_id"] == id).expect("an outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_purges_what_retention_allows_erases_it_and_refuses_the_rest() {
    let tombstones = tempfile::tempdir().expect("tempdir");
    let list = tombstones.path().join("test.jsonl");
    let path = list.clone();
    let sys = super::start_with(move |c| c.tombstones = Some(path), None).await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let grant_admin = ContractCall::grant_provider_access(
        &sys.principal("wallet_2"),
        AccessLevel::Admin,
        GrantDuration::UntilRevoked,
    )
    .expect("call");
    sys.tx("wallet_1", grant_admin).await;
    let (doctor, me) = (sys.sign_in("wallet_2").await, sys.sign_in("wallet_1").await);

    // Records kept one burn block: `gone` (archived, with a file) and
    // `active` (never archived); then `kept`, under a long retention.
    sys.tx("deployer", retention(1)).await;
    let gone = lab_record(&sys, &doctor).await;
    let (s, file) = upload(&sys, Some(&doctor), &gone, "scan.jpg", "image/jpeg", jpeg(3)).await;
    assert_eq!(s, 201, "{file}");
    let active = lab_record(&sys, &doctor).await;
    sys.tx("deployer", retention(10_000)).await;
    let kept = lab_record(&sys, &doctor).await;
    let r = sys.http.post(format!("{}/v1/records/{gone}/archive", sys.api)).bearer_auth(&doctor).send().await;
    assert_eq!(r.expect("archive").status(), 202);
    sys.mine().await;
    sys.mine().await;
    let (_, before) = sys.get(&format!("/v1/records/{gone}"), &me).await;
    let hash = before["anchor"]["data_hash"].as_str().expect("hash").trim_start_matches("0x").to_string();
    let blob = sys._dir.path().join("blobs").join(&hash[..2]).join(&hash);
    assert!(blob.exists(), "the ciphertext is on disk before");
    let objects = |sys: &System| walk(&sys._dir.path().join("objects"));
    assert_eq!(objects(&sys), 1, "the attachment's object");
    let p = patient.to_string();

    // Refusals before any work.
    assert_eq!(ask(&sys, &p, None, json!({})).await.0, 401);
    let (s, a) = ask(&sys, &p, Some(&doctor), json!({})).await;
    assert_eq!((s, a["code"].as_str()), (403, Some("patient-only")), "someone else asking: {a}");
    let other = sys.principal("wallet_3").to_string();
    let (s, a) = ask(&sys, &other, Some(&me), json!({ "records": [gone] })).await;
    assert_eq!((s, a["code"].as_str()), (403, Some("patient-only")), "for another patient: {a}");
    let (s, a) = ask(&sys, &p, Some(&me), json!({ "records": ["nothex"] })).await;
    assert_eq!(s, 400, "{a}");
    let many: Vec<String> = (0..101u8).map(|i| hex::encode([i; 16])).collect();
    let (s, a) = ask(&sys, &p, Some(&me), json!({ "records": many })).await;
    assert_eq!((s, a["code"].as_str()), (400, Some("too-many-records")), "{a}");
    let (s, a) = ask(&sys, &p, Some(&me), json!({ "records": [gone], "also": 1 })).await;
    assert!((400..500).contains(&s), "unknown fields: {s} {a}");
    assert!(blob.exists() && objects(&sys) == 1, "nothing erased by a refused request");

    // The request: each record as the chain allows.
    let unknown = hex::encode([0xee; 16]);
    let (s, a) = ask_mining(&sys, &p, &me, json!({ "records": [gone, active, kept, unknown] })).await;
    assert_eq!(s, 200, "{a}");
    let o = outcome(&a, &gone);
    assert_eq!(o["outcome"], "erased", "{a}");
    assert!(o["txid"].is_string(), "the purge-record transaction: {o}");
    let o = outcome(&a, &active);
    assert_eq!((&o["outcome"], &o["reason"]), (&json!("refused"), &json!("not-archived")), "{o}");
    let o = outcome(&a, &kept);
    assert_eq!((&o["outcome"], &o["reason"]), (&json!("refused"), &json!("retention-active")), "{o}");
    let chain_kept = sys.reader.record(&kept.parse::<RecordId>().expect("id")).expect("read").expect("on chain");
    assert_eq!(o["deletable_from_height"], chain_kept.retention_until, "{o}");
    assert!(o["deletable_from_estimate_ms"].as_u64().expect("estimate") > 1_700_000_000_000, "{o}");
    let o = outcome(&a, &unknown);
    assert_eq!(o["reason"], "not-found", "{o}");

    // Purged on-chain, erased here.
    let chain_gone = sys.reader.record(&gone.parse::<RecordId>().expect("id")).expect("read").expect("on chain");
    assert_eq!(chain_gone.status, RecordStatus::Purged);
    assert!(!blob.exists(), "the ciphertext is deleted");
    assert_eq!(objects(&sys), 0, "the attachment's object is deleted");
    let raw: [u8; 16] = hex::decode(&gone).expect("hex").try_into().expect("16");
    assert!(sys.state.db().versions(&raw).expect("db").is_empty(), "metadata and wrapped keys are gone");
    for token in [&me, &doctor] {
        let (s, a) = sys.get(&format!("/v1/records/{gone}"), token).await;
        assert_eq!((s, a["code"].as_str()), (410, Some("record-erased")), "{a}");
    }
    let (s, _) = sys.get(&format!("/v1/records/{gone}/attachments"), &me).await;
    assert!(s == 404 || s == 410 || s == 200, "{s}");
    let (_, listed) = sys.get(&format!("/v1/records/{gone}/attachments"), &me).await;
    assert!(listed["attachments"].as_array().is_none_or(|a| a.is_empty()), "{listed}");
    assert_eq!(sys.get(&format!("/v1/records/{active}"), &me).await.0, 200, "refused records are untouched");
    let tombstoned = std::fs::read_to_string(&list).expect("the tombstone list");
    assert!(tombstoned.contains(&gone) && !tombstoned.contains(&active), "{tombstoned}");

    // Asked again: already purged, nothing held, no new transaction.
    let (s, a) = ask(&sys, &p, Some(&me), json!({ "records": [gone] })).await;
    assert_eq!(s, 200);
    assert_eq!(outcome(&a, &gone)["outcome"], "erased");
    assert!(outcome(&a, &gone)["txid"].is_null(), "{a}");
    // Everything of the patient's (no list): the same verdicts.
    let (s, a) = ask(&sys, &p, Some(&me), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(a["outcomes"].as_array().expect("outcomes").len(), 3, "{a}");

    // Audited: each record's outcome, and the erasure.
    let auditor = sys.sign_in("faucet").await;
    let (_, entries) = sys.get("/v1/audit/entries?limit=1000", &auditor).await;
    let seen: Vec<(String, String, String)> = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["entry"])
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("record_id"), s("outcome"))
        })
        .collect();
    for want in [
        ("record.deletion", gone.as_str(), "allowed"),
        ("record.deletion", active.as_str(), "denied"),
        ("record.deletion", kept.as_str(), "denied"),
        ("record.deletion", "", "denied"),
        ("record.erase", gone.as_str(), "allowed"),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
        assert!(seen.contains(&want), "{want:?} not audited");
    }
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}
