//! Exports over HTTP against a real devnet: the patient's export in every
//! format holds the same facts (JSON and CSV read back, the FHIR Bundle
//! through two validators, the PDF through poppler and zbar), each
//! signed with the key the node publishes and anchored in a file batch
//! the chain holds; filters by date and type; a provider's export omits
//! exactly what consent withholds, and is refused when nothing is
//! readable (each branch); every export audited and a disclosure when
//! someone else takes it; bad input refused precisely.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_export::sign::{verify_detached, DetachedSignature};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::System;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Got {
    status: u16,
    bytes: Vec<u8>,
    headers: reqwest::header::HeaderMap,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    fn signature(&self) -> DetachedSignature {
        let json = base64::engine::general_purpose::STANDARD.decode(self.header("export-signature")).expect("base64");
        serde_json::from_slice(&json).expect("signature json")
    }
}

async fn export(sys: &System, token: Option<&str>, patient: &str, query: &str) -> Got {
    let mut r = sys.http.get(format!("{}/v1/patients/{patient}/export?{query}", sys.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("export");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Got { status, headers, bytes: r.bytes().await.expect("bytes").to_vec() }
}

async fn create(sys: &System, token: &str, patient: &str, body: Value) -> String {
    let (s, v) = post(sys, token, &format!("/v1/patients/{patient}/records"), body).await;
    assert!((200..300).contains(&s), "{v}");
    v["record_id"].as_str().expect("id").to_string()
}

async fn post(sys: &System, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = sys.http.post(format!("{}{path}", sys.api)).bearer_auth(token).json(&body).send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn consultation(date: &str) -> Value {
    json!({
        "record_type": "diagnosis",
        "template": { "id": "consultation", "version": 1 },
        "content": {
            "visit_date": date,
            "chief_complaint": "Thirst and fatigue",
            "diagnoses": [{ "code": "E11.9", "description": "Type 2 diabetes mellitus", "primary": true }],
            "medications": [{ "name": "Metformin", "dose": { "value": 500, "unit": "mg" }, "route": "oral", "frequency": "twice-daily" }],
            "allergies": [{ "substance": "Sulfonamides", "reaction": "Rash", "severity": "moderate" }],
        }
    })
}

fn vitals(date: &str, systolic: u32, heart_rate: u32) -> Value {
    json!({
        "record_type": "vitals",
        "template": { "id": "vital-signs", "version": 1 },
        "content": {
            "measured": date,
            "systolic": { "value": systolic, "unit": "mm[Hg]" },
            "diastolic": { "value": 85, "unit": "mm[Hg]" },
            "heart_rate": { "value": heart_rate, "unit": "/min" },
        }
    })
}

fn lab(date: &str, hba1c: f64) -> Value {
    json!({
        "record_type": "lab-results",
        "template": { "id": "lab-result", "version": 1 },
        "content": {
            "collected": date,
            "results": [{ "test": "HbA1c", "loinc": "4548-4", "value": hba1c, "unit": "%", "reference_range": "4.0-5.6", "flag": "high" }],
        }
    })
}

/// The on-chain set-up: wallet_2 a provider with consent for medical
/// history and lab results and WRITE access; wallet_3 a provider with
/// consent for lab results only. The patient's profile; four records by
/// wallet_2, anchored. Returns the tokens (patient, wallet_2, wallet_3)
/// and the record ids (consultation, vitals ×2, lab).
async fn patient_with_history(sys: &System) -> ((String, String, String), Vec<String>) {
    let patient = sys.principal("wallet_1");
    for p in ["wallet_2", "wallet_3"] {
        sys.tx(
            "deployer",
            ContractCall {
                contract: ContractName::RecordManagement,
                function: "register-provider",
                args: vec![ClarityValue::Principal(sys.principal(p)), ClarityValue::Buffer(vec![2; 32])],
            },
        )
        .await;
    }
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await;
    let (doctor_p, labs_p) = (sys.principal("wallet_2"), sys.principal("wallet_3"));
    for dt in [DataType::MedicalHistory, DataType::LabResults] {
        sys.tx("wallet_1", ContractCall::grant_consent(&doctor_p, dt, GrantDuration::UntilRevoked)).await;
    }
    sys.tx("wallet_1", ContractCall::grant_consent(&labs_p, DataType::LabResults, GrantDuration::UntilRevoked)).await;
    for p in [&doctor_p, &labs_p] {
        sys.tx(
            "wallet_1",
            ContractCall::grant_provider_access(p, AccessLevel::Write, GrantDuration::UntilRevoked).expect("call"),
        )
        .await;
    }
    let (me, doctor, labs) =
        (sys.sign_in("wallet_1").await, sys.sign_in("wallet_2").await, sys.sign_in("wallet_3").await);
    let (s, v) = {
        let r = sys
            .http
            .put(format!("{}/v1/patients/{patient}/profile", sys.api))
            .bearer_auth(&me)
            .header("if-match", "\"0\"")
            .json(&super::profiles::full_profile())
            .send()
            .await
            .expect("profile");
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
    };
    assert_eq!(s, 200, "{v}");
    let p = patient.to_string();
    let ids = vec![
        create(sys, &doctor, &p, consultation("2026-03-02")).await,
        create(sys, &doctor, &p, vitals("2026-03-02", 150, 88)).await,
        create(sys, &doctor, &p, vitals("2026-06-10", 132, 72)).await,
        create(sys, &doctor, &p, lab("2026-06-11", 7.4)).await,
    ];
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    ((me, doctor, labs), ids)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e} (scripts/test installs it)"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patients_export_holds_the_same_facts_in_every_format_signed_and_anchored() {
    use medanchor_api::file_anchors::FileAnchorer;
    let sys = super::start().await;
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-anchor-operator",
            args: vec![ClarityValue::Principal(sys.principal("faucet")), ClarityValue::Bool(true)],
        },
    )
    .await;
    let ((me, _, _), ids) = patient_with_history(&sys).await;
    let patient = sys.principal("wallet_1").to_string();
    let key: Value =
        sys.http.get(format!("{}/v1/exports/key", sys.api)).send().await.expect("key").json().await.expect("json");
    let pem = key["public_key_pem"].as_str().expect("pem").to_string();
    let dir = tempfile::tempdir().expect("tempdir");

    // JSON: every fact, signed.
    let got = export(&sys, Some(&me), &patient, "format=json").await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.bytes));
    assert_eq!(got.header("content-type"), "application/json");
    verify_detached(&pem, &got.bytes, &got.signature()).expect("the JSON's signature");
    let mut tampered = got.bytes.clone();
    tampered[10] ^= 1;
    assert!(verify_detached(&pem, &tampered, &got.signature()).is_err(), "a changed byte fails");
    let e = medanchor_export::tabular::from_json(&got.bytes).expect("an export");
    let json_id = e.id.clone();
    assert_eq!(got.header("x-export-id"), json_id);
    let mut record_ids: Vec<String> = e.records.iter().map(|r| r.id.trim_start_matches("0x").to_string()).collect();
    record_ids.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(record_ids, want, "every record");
    assert_eq!(e.patient.name.as_deref(), Some("María José García"));
    assert!(e.allergies.iter().any(|a| a.substance == "Penicillin"), "the profile's allergy");
    assert!(e.allergies.iter().any(|a| a.substance == "Sulfonamides"), "the record's allergy");
    assert!(e.conditions.iter().any(|c| c.code == "E11.9"));
    assert_eq!(e.vitals.iter().filter(|v| v.kind == medanchor_export::VitalKind::Systolic).count(), 2);
    assert_eq!(e.labs.len(), 1);
    assert_eq!(e.labs[0].value, json!(7.4));
    assert!(e.scope.withheld.is_empty());
    assert!(e.consents.len() >= 3, "the chain's consents: {:?}", e.consents);
    assert!(e.audit.iter().any(|a| a.action == "record.create"), "the accesses to the patient's data");
    assert!(e.records.iter().all(|r| r.anchor.is_some()), "every record anchored");
    assert!(e.records.windows(2).all(|w| w[0].date <= w[1].date), "by date");

    // CSV: the same facts.
    let got = export(&sys, Some(&me), &patient, "format=csv").await;
    assert_eq!(got.status, 200);
    verify_detached(&pem, &got.bytes, &got.signature()).expect("the zip's signature");
    let files = medanchor_export::tabular::read_csv_zip(&got.bytes).expect("zip");
    let mut csv_ids: Vec<String> =
        files["records.csv"].column("record_id").iter().map(|r| r.trim_start_matches("0x").to_string()).collect();
    csv_ids.sort();
    assert_eq!(csv_ids, want);
    assert_eq!(files["labs.csv"].column("value"), vec!["7.4"]);
    let mut systolic: Vec<&str> =
        files["vitals.csv"].rows.iter().filter(|r| r[1] == "systolic").map(|r| r[3].as_str()).collect();
    systolic.sort();
    assert_eq!(systolic, vec!["132", "150"]);
    assert_eq!(files["patient.csv"].column("name"), vec!["María José García"]);
    assert!(files["conditions.csv"].column("code").contains(&"E11.9"));

    // FHIR: a Bundle both validators accept.
    let got = export(&sys, Some(&me), &patient, "format=fhir").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "application/fhir+json");
    verify_detached(&pem, &got.bytes, &got.signature()).expect("the bundle's signature");
    let bundle: Value = serde_json::from_slice(&got.bytes).expect("json");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let kinds: Vec<&str> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    for kind in [
        "Patient",
        "Consent",
        "Condition",
        "MedicationStatement",
        "AllergyIntolerance",
        "Observation",
        "DocumentReference",
        "AuditEvent",
        "Provenance",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, &got.bytes).expect("write");
    let (ok, out) = run(Command::new("node").arg(root().join("scripts/fhir/validate.js")).arg(&path));
    assert!(ok, "npm fhir rejects the bundle: {out}");
    let (ok, out) =
        run(Command::new(root().join(".venv/fhir/bin/python")).arg(root().join("scripts/fhir/validate.py")).arg(&path));
    assert!(ok, "fhir.resources rejects the bundle: {out}");

    // PDF: text, QR and signature checked by the tools people use.
    let got = export(&sys, Some(&me), &patient, "format=pdf").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "application/pdf");
    assert!(got.headers.get("export-signature").is_none(), "a PDF is signed inside");
    let pdf_id = got.header("x-export-id");
    let pdf = dir.path().join("export.pdf");
    std::fs::write(&pdf, &got.bytes).expect("write");
    let (ok, text) = run(Command::new("pdftotext").arg(&pdf).arg("-"));
    assert!(ok, "{text}");
    for needle in ["María José García", "Penicillin", "E11.9", "HbA1c", "7.4"] {
        assert!(text.contains(needle), "{needle} in the PDF's text");
    }
    let (ok, sig) = run(Command::new("pdfsig").arg(&pdf));
    assert!(ok && sig.contains("Signature is Valid"), "{sig}");
    let (ok, out) = run(Command::new("pdftoppm")
        .args(["-r", "150", "-f", "1", "-l", "1", "-png"])
        .arg(&pdf)
        .arg(dir.path().join("page")));
    assert!(ok, "{out}");
    let page = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("page")))
        .expect("page 1");
    // stdout only: zbarimg may complain about D-Bus on stderr.
    let scanned =
        Command::new("zbarimg").args(["--raw", "-q"]).arg(&page).output().expect("zbarimg (scripts/test installs it)");
    assert!(scanned.status.success(), "{scanned:?}");
    let qr = String::from_utf8_lossy(&scanned.stdout).to_string();
    let verify_url = format!("http://127.0.0.1:8080/v1/exports/{pdf_id}");
    assert_eq!(qr.trim(), verify_url, "the QR leads to the export's verification record");

    // Each export's record: its hash, queued, then anchored in a batch the
    // chain holds (the anchorer as `up` runs it).
    let anon = |id: String| {
        let (http, api) = (sys.http.clone(), sys.api.clone());
        async move {
            let r = http.get(format!("{api}/v1/exports/{id}")).send().await.expect("get");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (s, v) = anon(pdf_id.clone()).await;
    assert_eq!((s, v["anchor_status"].as_str()), (200, Some("queued")), "{v}");
    assert_eq!(
        v["sha256"].as_str(),
        Some(
            hex::encode(sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                &got.bytes
            )))
            .as_str()
        )
    );
    let mut anchorer = FileAnchorer::connect(sys.state.clone(), sys.key("faucet").clone(), 100).await.expect("connect");
    anchorer.step(true).await.expect("seal and send");
    sys.mine().await;
    anchorer.step(false).await.expect("settle");
    let (_, v) = anon(pdf_id.clone()).await;
    assert_eq!(v["anchor_status"], "anchored", "{v}");
    let (_, j) = anon(json_id.clone()).await;
    assert_eq!(j["anchor_status"], "anchored", "{j}");
    assert!(j["signature"].is_string(), "the JSON export's signature is on its record");
    assert_eq!(anon("00".repeat(16)).await.0, 404);
    assert_eq!(anon("not-an-id".into()).await.0, 400);

    // Filters: dates on the clinical date, types on record types.
    let got = export(&sys, Some(&me), &patient, "format=json&from=2026-06-01&to=2026-06-10").await;
    let e = medanchor_export::tabular::from_json(&got.bytes).expect("export");
    assert_eq!(e.records.len(), 1, "only the June vitals");
    assert_eq!(e.records[0].date, "2026-06-10");
    assert_eq!(e.vitals.iter().filter(|v| v.kind == medanchor_export::VitalKind::Systolic).count(), 1);
    let got = export(&sys, Some(&me), &patient, "format=json&types=lab-results").await;
    let e = medanchor_export::tabular::from_json(&got.bytes).expect("export");
    assert_eq!(e.records.iter().map(|r| r.record_type.as_str()).collect::<Vec<_>>(), vec!["lab-results"]);
    assert!(e.vitals.is_empty());

    // Bad input: a precise 4xx, nothing made.
    for (query, status, code) in [
        ("format=docx", 400, "invalid-format"),
        ("format=json&from=2026-13-01", 400, "invalid-date"),
        ("format=json&from=2026-06-02&to=2026-06-01", 400, "invalid-range"),
        ("format=json&types=bogus", 400, "invalid-record-type"),
        ("format=json&pretty=1", 400, "invalid-query"),
    ] {
        let got = export(&sys, Some(&me), &patient, query).await;
        assert_eq!((got.status, got.json()["code"].as_str()), (status, Some(code)), "{query}: {}", got.json());
    }
    assert_eq!(export(&sys, None, &patient, "format=json").await.status, 401);
    assert_eq!(export(&sys, Some(&me), "not-a-principal", "format=json").await.status, 400);

    // Audited: every export, with its format and contents (no content).
    let auditor = sys.sign_in("faucet").await;
    let (_, entries) = sys.get("/v1/audit/entries?limit=1000", &auditor).await;
    let exports: Vec<&Value> = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["entry"])
        .filter(|e| e["action"] == "export" && e["outcome"] == "allowed")
        .collect();
    assert_eq!(exports.len(), 6, "{exports:?}");
    let detail = exports[0]["detail"].as_str().expect("detail");
    assert!(detail.contains("format=json") && detail.contains("records=4"), "{detail}");
    assert!(!detail.contains("García") && !detail.contains("HbA1c"), "no content in the log: {detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_export_omits_exactly_what_the_chain_withholds() {
    let sys = super::start().await;
    let ((me, doctor, labs), ids) = patient_with_history(&sys).await;
    let patient = sys.principal("wallet_1").to_string();
    let read = |got: &Got| medanchor_export::tabular::from_json(&got.bytes).expect("export");

    // Consent for both types: every record; the patient's own audit trail
    // is not theirs; their own consents only.
    let got = export(&sys, Some(&doctor), &patient, "format=json").await;
    assert_eq!(got.status, 200, "{}", got.json());
    let e = read(&got);
    assert_eq!(e.records.len(), 4);
    assert!(e.audit.is_empty(), "the access log is the patient's");
    assert!(e.consents.iter().all(|c| c.provider == sys.principal("wallet_2").to_string()), "{:?}", e.consents);
    assert_eq!(e.patient.name, None, "basic info is not consented");
    assert!(e.allergies.iter().any(|a| a.substance == "Penicillin"), "medical history is");

    // Consent for lab results only: the lab record, nothing of the medical
    // history (records, vitals, the profile's allergies), and the export
    // says what was withheld.
    let got = export(&sys, Some(&labs), &patient, "format=json").await;
    assert_eq!(got.status, 200, "{}", got.json());
    let e = read(&got);
    assert_eq!(e.records.iter().map(|r| r.id.trim_start_matches("0x")).collect::<Vec<_>>(), vec![ids[3].as_str()]);
    assert!(e.vitals.is_empty() && e.conditions.is_empty() && e.allergies.is_empty(), "{e:?}");
    assert_eq!(e.scope.withheld, vec!["medical-history".to_string()]);
    let fhir = export(&sys, Some(&labs), &patient, "format=fhir").await;
    let text = String::from_utf8_lossy(&fhir.bytes);
    assert!(!text.contains("E11.9") && !text.contains("Penicillin"), "nothing withheld in the bundle");
    let csv = export(&sys, Some(&labs), &patient, "format=csv").await;
    let files = medanchor_export::tabular::read_csv_zip(&csv.bytes).expect("zip");
    assert_eq!(files["records.csv"].rows.len(), 1);
    assert!(files["allergies.csv"].rows.is_empty());

    // Revoked: nothing readable, the contract's refusal.
    sys.tx("wallet_1", ContractCall::revoke_consent(&sys.principal("wallet_3"), DataType::LabResults)).await;
    let got = export(&sys, Some(&labs), &patient, "format=json").await;
    assert_eq!(got.status, 403, "{}", got.json());
    assert_eq!(got.json()["reason"]["name"], "ERR-CONSENT-REVOKED", "{}", got.json());
    // Someone who is no provider: refused.
    let stranger = sys.sign_in("deployer").await;
    let got = export(&sys, Some(&stranger), &patient, "format=json").await;
    assert_eq!(got.status, 403, "{}", got.json());

    // Break-glass: wallet_3 made an emergency responder overrides; its
    // export then holds every (standard) record and, of the profile, the
    // emergency information only — and says so in the audit entry.
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::PatientConsent,
            function: "set-emergency-responder",
            args: vec![ClarityValue::Principal(sys.principal("wallet_3")), ClarityValue::Bool(true)],
        },
    )
    .await;
    sys.tx("wallet_3", ContractCall::emergency_override(&sys.principal("wallet_1"), 1).expect("call")).await;
    let got = export(&sys, Some(&labs), &patient, "format=json").await;
    assert_eq!(got.status, 200, "{}", got.json());
    let e = read(&got);
    assert_eq!(e.records.len(), 4, "an override reads every standard record");
    assert_eq!(e.patient.name, None, "the name is not emergency information");
    assert_eq!(e.patient.blood_type.as_deref(), Some("O-"));
    assert!(e.allergies.iter().any(|a| a.substance == "Penicillin"));
    let mine = read(&export(&sys, Some(&me), &patient, "format=json").await);
    assert!(
        mine.consents
            .iter()
            .any(|c| c.purpose == "emergency" && c.active && c.provider == sys.principal("wallet_3").to_string()),
        "the patient sees the override: {:?}",
        mine.consents
    );
    let bundle: Value =
        serde_json::from_slice(&export(&sys, Some(&me), &patient, "format=fhir").await.bytes).expect("json");
    assert!(bundle.to_string().contains("ETREAT"), "the override as an ETREAT consent");

    // The provider's export is a disclosure in the patient's accounting;
    // the refused ones are audited as denied.
    let (s, report) = sys.get(&format!("/v1/audit/disclosures?patient={patient}"), &me).await;
    assert_eq!(s, 200, "{report}");
    let exported: Vec<&Value> =
        report["disclosures"].as_array().expect("rows").iter().filter(|d| d["action"] == "export").collect();
    assert_eq!(exported.len(), 5, "{exported:?}");
    assert!(exported.iter().any(|d| d["recipient"] == sys.principal("wallet_3").to_string()));
    let auditor = sys.sign_in("faucet").await;
    let (_, entries) = sys.get("/v1/audit/entries?limit=1000", &auditor).await;
    let denied = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entry"]["action"] == "export" && e["entry"]["outcome"] == "denied")
        .count();
    assert_eq!(denied, 2);
    let how: Vec<&str> = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["entry"])
        .filter(|e| {
            e["action"] == "export" && e["outcome"] == "allowed" && e["actor"] == sys.principal("wallet_3").to_string()
        })
        .filter_map(|e| e["method"].as_str())
        .collect();
    assert_eq!(how, vec!["consent", "consent", "consent", "emergency"], "how each export was let in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_reports_compute_trends_from_what_the_caller_may_read() {
    let sys = super::start().await;
    let ((_, doctor, labs), ids) = patient_with_history(&sys).await;
    let patient = sys.principal("wallet_1").to_string();
    let get = |token: String, query: &'static str| {
        let (http, api, patient) = (sys.http.clone(), sys.api.clone(), patient.clone());
        async move {
            let r = http
                .get(format!("{api}/v1/patients/{patient}/summary?{query}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("summary");
            let (status, headers) = (r.status().as_u16(), r.headers().clone());
            Got { status, headers, bytes: r.bytes().await.expect("bytes").to_vec() }
        }
    };

    // A referral over ten years, by the provider with every consent.
    let got = get(doctor.clone(), "preset=referral&window_days=3660&format=json").await;
    assert_eq!(got.status, 200, "{}", got.json());
    let s = got.json();
    assert_eq!(s["preset"], "referral");
    assert_eq!(s["encounters"].as_array().expect("encounters").len(), 4);
    assert_eq!(
        s["encounters"][0]["record_id"].as_str().map(|r| r.trim_start_matches("0x")),
        Some(ids[3].as_str()),
        "newest first"
    );
    assert_eq!(s["problems"][0]["code"], "E11.9");
    assert_eq!(s["problems"][0]["mentions"], 2, "the profile's and the consultation's");
    let indicator = |name: &str| {
        s["indicators"].as_array().expect("indicators").iter().find(|i| i["name"] == name).cloned().unwrap_or_default()
    };
    let systolic = indicator("Systolic blood pressure");
    assert_eq!((systolic["count"].as_u64(), systolic["change"].as_f64()), (Some(2), Some(-18.0)), "{systolic}");
    assert_eq!(systolic["direction"], "falling");
    assert_eq!(systolic["out_of_range"], 2, "150 and 132 are both above 129");
    let hr = indicator("Heart rate");
    assert_eq!((hr["out_of_range"].as_u64(), hr["latest"][1].as_f64()), (Some(0), Some(72.0)));
    assert_eq!(indicator("HbA1c")["latest_out_of_range"], true);
    let sig: DetachedSignature = got.signature();
    let key: Value =
        sys.http.get(format!("{}/v1/exports/key", sys.api)).send().await.expect("key").json().await.expect("json");
    verify_detached(key["public_key_pem"].as_str().expect("pem"), &got.bytes, &sig).expect("signed");

    // A short window holds nothing of March.
    let recent = get(doctor.clone(), "preset=discharge&format=json").await.json();
    assert!(recent["encounters"]
        .as_array()
        .expect("encounters")
        .iter()
        .all(|e| e["date"].as_str() > Some("2026-11-01")));

    // The lab-only provider: the HbA1c trend, no medical history at all.
    let s = get(labs.clone(), "preset=consultation&window_days=3660&format=json").await.json();
    let names: Vec<&str> =
        s["indicators"].as_array().expect("indicators").iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, vec!["HbA1c"]);
    assert!(
        s["problems"].as_array().expect("problems").is_empty()
            && s["allergies"].as_array().expect("allergies").is_empty()
    );
    assert_eq!(s["withheld"], json!(["medical-history"]));

    // The PDF: printable, signed.
    let got = get(doctor.clone(), "preset=referral&window_days=3660").await;
    assert_eq!(got.status, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = dir.path().join("summary.pdf");
    std::fs::write(&pdf, &got.bytes).expect("write");
    let (ok, text) = run(Command::new("pdftotext").arg(&pdf).arg("-"));
    assert!(ok, "{text}");
    for needle in ["Referral summary", "Penicillin", "E11.9", "HbA1c"] {
        assert!(text.contains(needle), "{needle} in the summary: {text}");
    }
    let (ok, sig) = run(Command::new("pdfsig").arg(&pdf));
    assert!(ok && sig.contains("Signature is Valid"), "{sig}");

    // Bad input.
    for (query, code) in [
        ("preset=triage", "invalid-preset"),
        ("window_days=0", "invalid-window"),
        ("window_days=99999", "invalid-window"),
        ("format=csv", "invalid-format"),
        ("preset=referral&from=2026-01-01", "invalid-query"),
    ] {
        let got = get(doctor.clone(), query).await;
        assert_eq!((got.status, got.json()["code"].as_str()), (400, Some(code)), "{query}");
    }
    // Nothing readable: refused.
    let stranger = sys.sign_in("deployer").await;
    assert_eq!(get(stranger, "format=json").await.status, 403);
}
