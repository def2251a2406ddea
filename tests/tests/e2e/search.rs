//! Search over HTTP against a real devnet: records by diagnosis,
//! medication, provider, type, date and patient name; patients by name,
//! phone and blood group; every result filtered by the chain's rules
//! (each refusal branch: no consent, consent for another data type, no
//! basic-info for a name search, revoked, a stranger, an override); cursors
//! bound to caller and query; bad input refused precisely; and none of the
//! words searched for anywhere in the API database's files.

use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

fn consultation(codes: &[&str], meds: &[&str]) -> Value {
    json!({
        "record_type": "diagnosis",
        "template": { "id": "consultation", "version": 1 },
        "content": {
            "visit_date": "2026-12-01",
            "chief_complaint": "Follow-up",
            "diagnoses": codes.iter().map(|c| json!({ "code": c })).collect::<Vec<_>>(),
            "medications": meds.iter().map(|m| json!({ "name": m, "dose": { "value": 5, "unit": "mg" }, "route": "oral", "frequency": "daily" })).collect::<Vec<_>>(),
        }
    })
}

async fn create(sys: &System, token: &str, patient: &str, body: &Value) -> String {
    let r = sys
        .http
        .post(format!("{}/v1/patients/{patient}/records", sys.api))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{v}");
    v["record_id"].as_str().expect("id").to_string()
}

/// The record ids (bare hex) of a search, all pages, `limit` per page.
async fn ids(sys: &System, token: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(c) => format!("/v1/search/records?{query}&cursor={c}"),
            None => format!("/v1/search/records?{query}"),
        };
        let (status, page) = sys.get(&path, token).await;
        assert_eq!(status, 200, "{path}: {page}");
        for item in page["items"].as_array().expect("items") {
            out.push(item["record_id"].as_str().expect("id").trim_start_matches("0x").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("paging never ended");
}

async fn patients(sys: &System, token: &str, query: &str) -> Vec<String> {
    let (status, page) = sys.get(&format!("/v1/search/patients?{query}"), token).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").iter().map(|i| i["patient"].as_str().expect("p").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_what_the_chain_lets_the_caller_read_and_stores_no_plaintext() {
    let sys = super::start().await;
    let (patient, provider, stranger_p) =
        (sys.principal("wallet_1"), sys.principal("wallet_2"), sys.principal("wallet_3"));
    let p = patient.to_string();
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
        },
    )
    .await;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::MedicalHistory, GrantDuration::UntilRevoked))
        .await;
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked).expect("call"),
    )
    .await;
    let me = sys.sign_in("wallet_1").await;
    let doctor = sys.sign_in("wallet_2").await;
    let stranger = sys.sign_in("wallet_3").await;

    // The patient's profile gives the name, phone and blood group.
    let r = sys
        .http
        .put(format!("{}/v1/patients/{p}/profile", sys.api))
        .bearer_auth(&me)
        .header("if-match", "\"0\"")
        .json(&json!({ "full_name": "María José Quistgaard", "phone": "+1 (415) 555-0134", "blood_type": "O-" }))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);

    let diabetic = create(&sys, &doctor, &p, &consultation(&["E11.9"], &["Hydroxychloroquine"])).await;
    let hypertensive = create(&sys, &doctor, &p, &consultation(&["I10", "E11.9"], &["Lisinopril"])).await;
    let opaque = create(&sys, &doctor, &p, &json!({ "record_type": "vitals", "content": { "note": "E11.9" } })).await;
    sys.mine().await;

    // The provider with consent: by code (dot optional), medication,
    // provider, type; newest first; highlights.
    assert_eq!(ids(&sys, &doctor, "diagnosis=E11.9").await, [hypertensive.clone(), diabetic.clone()]);
    assert_eq!(ids(&sys, &doctor, "diagnosis=e119&medication=lisinopril").await, std::slice::from_ref(&hypertensive));
    assert_eq!(ids(&sys, &doctor, "medication=HYDROXYCHLOROQUINE").await, std::slice::from_ref(&diabetic));
    assert_eq!(ids(&sys, &doctor, &format!("provider={provider}&limit=1")).await.len(), 3, "paged one by one");
    assert_eq!(ids(&sys, &doctor, "record_type=vitals").await, std::slice::from_ref(&opaque));
    assert_eq!(ids(&sys, &doctor, "diagnosis=E11.9&from=2000-01-01&to=2000-12-31").await, Vec::<String>::new());
    assert_eq!(ids(&sys, &doctor, "diagnosis=E11.9&from=2020-01-01").await.len(), 2);
    let (_, page) = sys.get("/v1/search/records?medication=lisinopril", &doctor).await;
    assert_eq!(
        page["items"][0]["highlights"],
        json!([{ "field": "medication", "text": "Lisinopril", "ranges": [[0, 10]] }])
    );

    // A name search needs the patient's basic information too.
    assert_eq!(ids(&sys, &doctor, "patient_name=mar%20quist").await, Vec::<String>::new(), "no basic-info consent");
    sys.tx("wallet_1", ContractCall::grant_consent(&provider, DataType::BasicInfo, GrantDuration::UntilRevoked)).await;
    assert_eq!(ids(&sys, &doctor, "patient_name=mar%20quist").await.len(), 3);
    let (_, page) = sys.get("/v1/search/records?patient_name=quist&diagnosis=I10", &doctor).await;
    assert_eq!(
        page["items"][0]["highlights"],
        json!([
            { "field": "patient_name", "text": "María José Quistgaard", "ranges": [[13, 23]] },
            { "field": "diagnosis", "text": "I10", "ranges": [[0, 3]] }
        ])
    );
    assert_eq!(patients(&sys, &doctor, "name=jos").await, std::slice::from_ref(&p));
    assert_eq!(patients(&sys, &doctor, "phone=14155550134").await, std::slice::from_ref(&p));
    assert_eq!(patients(&sys, &doctor, "blood_group=o-").await, std::slice::from_ref(&p), "medical-history consent");
    assert_eq!(patients(&sys, &doctor, "name=jos&blood_group=A%2B").await, Vec::<String>::new());

    // The patient finds their own; a stranger finds nothing, by any field.
    assert_eq!(ids(&sys, &me, "diagnosis=E11.9").await.len(), 2);
    assert_eq!(patients(&sys, &me, "name=maria").await, std::slice::from_ref(&p));
    for q in ["diagnosis=E11.9", "patient_name=maria", "medication=lisinopril", &format!("patient={p}")] {
        assert_eq!(ids(&sys, &stranger, q).await, Vec::<String>::new(), "{q}");
    }
    assert_eq!(patients(&sys, &stranger, "name=maria").await, Vec::<String>::new());

    // Consent for one data type does not reach another's records.
    sys.tx("wallet_1", ContractCall::revoke_consent(&provider, DataType::MedicalHistory)).await;
    assert_eq!(ids(&sys, &doctor, "diagnosis=E11.9").await, Vec::<String>::new(), "revoked");
    assert_eq!(patients(&sys, &doctor, "blood_group=O-").await, Vec::<String>::new());
    assert_eq!(patients(&sys, &doctor, "name=maria").await, std::slice::from_ref(&p), "basic-info still granted");

    // An emergency override: the responder (a registered provider, as
    // `get-record` wants of any reader but the patient) finds the records
    // and the blood group, not the name.
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(stranger_p.clone()), ClarityValue::Buffer(vec![3; 32])],
        },
    )
    .await;
    assert_eq!(ids(&sys, &stranger, "diagnosis=E11.9").await, Vec::<String>::new(), "registered, no consent");
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::PatientConsent,
            function: "set-emergency-responder",
            args: vec![ClarityValue::Principal(stranger_p.clone()), ClarityValue::Bool(true)],
        },
    )
    .await;
    sys.tx("wallet_3", ContractCall::emergency_override(&patient, 1).expect("call")).await;
    assert_eq!(ids(&sys, &stranger, "diagnosis=E11.9").await.len(), 2, "override");
    assert_eq!(patients(&sys, &stranger, "blood_group=O-").await, std::slice::from_ref(&p));
    assert_eq!(
        patients(&sys, &stranger, "name=maria").await,
        Vec::<String>::new(),
        "a name is not emergency information"
    );
    assert_eq!(ids(&sys, &stranger, "patient_name=maria").await, Vec::<String>::new());

    // A renamed patient is found by the new name only.
    let r = sys
        .http
        .put(format!("{}/v1/patients/{p}/profile", sys.api))
        .bearer_auth(&me)
        .header("if-match", "\"1\"")
        .json(&json!({ "full_name": "Marie Zanetti", "blood_type": "O-" }))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    assert_eq!(ids(&sys, &me, "patient_name=quist").await, Vec::<String>::new());
    assert_eq!(ids(&sys, &me, "patient_name=zan").await.len(), 3);
    assert_eq!(patients(&sys, &me, "phone=14155550134").await, Vec::<String>::new(), "the phone was removed");

    // Cursors are bound to their caller and query; bad input is refused.
    let (_, page) = sys.get("/v1/search/records?diagnosis=E11.9&limit=1", &me).await;
    let cursor = page["next_cursor"].as_str().expect("a next page").to_string();
    assert_eq!(sys.get(&format!("/v1/search/records?diagnosis=E11.9&limit=1&cursor={cursor}"), &me).await.0, 200);
    for (token, q) in [(&doctor, "diagnosis=E11.9"), (&me, "diagnosis=I10")] {
        let (status, body) = sys.get(&format!("/v1/search/records?{q}&limit=1&cursor={cursor}"), token).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid-cursor")), "{body}");
    }
    for (q, code) in [
        ("", "search-empty"),
        ("diagnosis=...", "search-empty"),
        ("diagnosis=I10&limit=0", "invalid-limit"),
        ("diagnosis=I10&limit=101", "invalid-limit"),
        ("diagnosis=I10&from=2026-02-30", "invalid-date"),
        ("diagnosis=I10&from=2026-12-02&to=2026-12-01", "invalid-range"),
        ("record_type=gossip", "invalid-record-type"),
        ("provider=nobody", "invalid-principal"),
        ("diagnosis=I10&cursor=AAAA", "invalid-cursor"),
    ] {
        let (status, body) = sys.get(&format!("/v1/search/records?{q}"), &me).await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{q}: {body}");
    }
    let long = "a".repeat(201);
    assert_eq!(sys.get(&format!("/v1/search/patients?name={long}"), &me).await.0, 400);
    let r = sys.http.get(format!("{}/v1/search/records?diagnosis=I10", sys.api)).send().await.expect("get");
    assert_eq!(r.status(), 401);

    // Searches are audited per patient in the results, as disclosures.
    let (status, disclosures) = sys.get(&format!("/v1/audit/disclosures?patient={p}"), &me).await;
    assert_eq!(status, 200, "{disclosures}");
    let text = disclosures.to_string();
    assert!(text.contains("record.search") && text.contains("patient.search"), "{text}");

    // None of the words searched for is anywhere in the database's files.
    let db = sys.state.db().raw();
    db.flush().expect("flush");
    let dir = sys.state.db().raw().path().to_path_buf();
    let mut haystack = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            haystack.extend(std::fs::read(&path).expect("read"));
        }
    }
    // A word that is all hex digits ("e119") also turns up inside the hex
    // the database keeps (wrapped keys, hashes: one in 65,536 positions),
    // so for such a word only a match standing alone counts — a leak would
    // be a term ("e119" in quotes, in a key), not part of a run of hex.
    let is_hex = |b: u8| b.is_ascii_hexdigit();
    let found = |n: &str| {
        let hexy = n.bytes().all(is_hex);
        haystack.windows(n.len()).enumerate().any(|(i, w)| {
            let inside_hex =
                (i > 0 && is_hex(haystack[i - 1])) || haystack.get(i + n.len()).copied().is_some_and(is_hex);
            w == n.as_bytes() && !(hexy && inside_hex)
        })
    };
    assert!(found("record.search"), "the scan sees what is there (audit entries)");
    for word in [
        "Quistgaard",
        "quistgaard",
        "Zanetti",
        "zanetti",
        "Hydroxychloroquine",
        "hydroxychloroquine",
        "Lisinopril",
        "lisinopril",
        "14155550134",
        "E11.9",
        "e119",
    ] {
        assert!(!found(word), "{word:?} is in the API database's files");
    }
}
