//! Sharing through the real API, devnet and indexer: a patient makes an
//! access code with a QR link; a provider with no on-chain consent redeems
//! the code (after a wrong guess) and the QR (decoded from its PNG by a
//! real QR decoder, `zbarimg`), reads exactly the shared types, loses
//! access on revocation and expiry (time injected), and the patient sees
//! every use and failure in their access history. Then the limits: rate
//! limits with `Retry-After`, and parallel guessing against the caps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use medanchor_api::app;
use medanchor_api::share::limits::{Rate, RateLimits};
use medanchor_api::share::link;
use medanchor_contracts::types::DataType;
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::{start_with, System};

const HOUR: u64 = 3_600_000;

/// A clock the test moves: system time plus an offset.
pub(super) fn manual_clock() -> (app::Clock, Arc<AtomicU64>) {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let clock: app::Clock = Arc::new(move || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as u64
            + o.load(Ordering::SeqCst)
    });
    (clock, offset)
}

impl System {
    pub(super) async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        grant: Option<&str>,
    ) -> Answer {
        let url = format!("{}{path}", self.api);
        let mut r = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        if let Some(g) = grant {
            r = r.header(app::GRANT_HEADER, g);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().expect("ascii").to_string());
        let (retry_after, www_authenticate) = (header("retry-after"), header("www-authenticate"));
        Answer { status, retry_after, www_authenticate, body: r.json().await.unwrap_or(Value::Null) }
    }

    /// `POST /v1/share/codes` (as a patient).
    pub(super) async fn make_share(&self, token: &str, body: Value) -> Answer {
        self.send("POST", "/v1/share/codes", token, Some(body), None).await
    }

    /// `POST /v1/share/redeem` (as a provider).
    pub(super) async fn redeem(
        &self,
        token: &str,
        patient: impl std::fmt::Display,
        code: impl std::fmt::Display,
    ) -> Answer {
        let body = json!({ "patient": patient.to_string(), "code": code.to_string() });
        self.send("POST", "/v1/share/redeem", token, Some(body), None).await
    }

    /// A record of `record_type` for wallet_1, written and anchored.
    pub(super) async fn write_record(&self, token: &str, record_type: &str) -> String {
        let id = super::branches::create(self, token, &self.principal("wallet_1"), record_type).await;
        self.mine().await;
        app::track_once(&self.state).expect("track");
        id
    }

    pub(super) async fn register_provider(&self, name: &str) {
        self.tx(
            "deployer",
            ContractCall {
                contract: ContractName::RecordManagement,
                function: "register-provider",
                args: vec![ClarityValue::Principal(self.principal(name)), ClarityValue::Buffer(vec![3; 32])],
            },
        )
        .await;
    }
}

#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    retry_after: Option<String>,
    www_authenticate: Option<String>,
    pub(super) body: Value,
}

/// Decodes a PNG with zbarimg (Debian `zbar-tools`, installed by the test
/// command).
fn zbarimg(png: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qr.png");
    std::fs::write(&path, png).expect("write png");
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output()
        .expect("zbarimg runs (scripts/test installs zbar-tools)");
    assert!(out.status.success(), "zbarimg found no QR code: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim_end_matches('\n').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_shares_by_code_and_qr_and_sees_every_use() {
    let (clock, offset) = manual_clock();
    let sys = start_with(|c| c.public_url = "https://records.example-clinic.test".into(), Some(clock)).await;
    let (patient, writer) = sys.consent_provider("wallet_2").await;
    sys.tx("wallet_1", ContractCall::grant_consent(&writer, DataType::MentalHealth, GrantDuration::UntilRevoked)).await;
    sys.register_provider("wallet_3").await;
    let (writer_token, reader_token, patient_token) =
        (sys.sign_in("wallet_2").await, sys.sign_in("wallet_3").await, sys.sign_in("wallet_1").await);
    let lab = sys.write_record(&writer_token, "lab-results").await;
    let mental = sys.write_record(&writer_token, "mental-health").await;

    // The reader has no on-chain consent.
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, None).await;
    assert_eq!((a.status, a.body["reason"]["name"].as_str()), (403, Some("ERR-NO-CONSENT")));

    // Only a registered patient shares; bad requests are precise.
    let bad = [
        (json!({ "data_types": ["lab-results"] }), &reader_token, 403, "patient-required"),
        (json!({ "data_types": ["x-rays"] }), &patient_token, 400, "invalid-data-type"),
        (json!({ "data_types": ["lab-results"], "duration": "2h" }), &patient_token, 400, "invalid-duration"),
        (json!({ "data_types": [] }), &patient_token, 400, "invalid-share"),
        (json!({ "data_types": ["lab-results"], "passcode": true }), &patient_token, 400, "invalid-share"),
        (json!({ "data_types": ["lab-results"], "max_uses": 0 }), &patient_token, 400, "invalid-share"),
        (json!({ "data_types": ["lab-results"], "colour": "red" }), &patient_token, 422, "invalid-request"),
    ];
    for (body, token, status, code) in bad {
        let a = sys.make_share(token, body.clone()).await;
        assert_eq!((a.status, a.body["code"].as_str()), (status, Some(code)), "{body}: {}", a.body);
    }

    // A code for all standard types, 6 h, two uses, with a passcode QR.
    let a = sys
        .make_share(
            &patient_token,
            json!({ "data_types": ["all-standard"], "duration": "6h", "max_uses": 2, "qr": true, "passcode": true }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let code = a.body["code"].as_str().expect("code").to_string();
    let share_id = a.body["share"]["id"].as_str().expect("id").to_string();
    assert_eq!(code.len(), 6);
    let list = sys.send("GET", "/v1/share/codes", &patient_token, None, None).await;
    assert_eq!((list.body["active"].as_u64(), list.body["items"][0]["passcode"].as_bool()), (Some(1), Some(true)));

    // A wrong guess, then the right code.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let a = sys.redeem(&reader_token, &patient, wrong).await;
    assert_eq!(
        (a.status, a.body["code"].as_str(), a.body["remaining_attempts"].as_u64()),
        (401, Some("access-code-invalid"), Some(9))
    );
    assert_eq!(a.www_authenticate.as_deref(), Some("AccessCode realm=\"medanchor\""));
    let a = sys.redeem(&writer_token, "nobody", &code).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("invalid-principal")));
    let a = sys.redeem(&patient_token, &patient, &code).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("provider-required")), "patients do not redeem");
    let a = sys.redeem(&reader_token, &patient, &code).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let grant = a.body["grant"].as_str().expect("grant").to_string();
    assert_eq!(a.body["method"], "access_code");
    let access = a.body["access"].as_array().expect("access");
    let types: Vec<&str> = access.iter().map(|t| t["data_type"].as_str().expect("type")).collect();
    assert_eq!(
        types,
        ["basic-info", "medical-history", "lab-results", "treatment-plans", "financial", "emergency-contacts"],
        "all-standard: every standard type, no enhanced one"
    );
    assert!(access.iter().all(|t| t["allowed"] == true), "{access:?}");

    // Through the grant: the lab result, not the mental-health record
    // (a broad share never covers enhanced types), and only for this reader.
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some(&grant)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["content"], json!({ "note": "lab-results" }));
    let a = sys.send("GET", &format!("/v1/records/{mental}"), &reader_token, None, Some(&grant)).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("outside-share-scope")), "{}", a.body);
    let listed = sys.send("GET", &format!("/v1/patients/{patient}/records"), &reader_token, None, Some(&grant)).await;
    let ids: Vec<&str> =
        listed.body["items"].as_array().expect("items").iter().map(|r| r["record_id"].as_str().expect("id")).collect();
    assert_eq!(ids, vec![format!("0x{lab}")], "{}", listed.body);
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &writer_token, None, Some(&grant)).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("grant-refused")), "another provider's grant");
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some("not-a-grant")).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("grant-refused")));

    // The QR: decoded from the PNG by a real decoder, checked offline
    // against the pinned issuer key, redeemed with the code as passcode.
    let qr = &a_body_qr(&sys, &patient_token).await;
    let png = base64::engine::general_purpose::STANDARD.decode(qr["png_base64"].as_str().expect("png")).expect("b64");
    assert!(qr["version"].as_i64().expect("version") <= 22, "a QR phones read at a glance: {}", qr["version"]);
    let scanned = zbarimg(&png);
    assert_eq!(scanned, qr["content"].as_str().expect("content"));
    let issuer = sys
        .http
        .get(format!("{}/v1/share/issuer", sys.api))
        .send()
        .await
        .expect("get")
        .json::<Value>()
        .await
        .expect("json");
    let key = link::parse_issuer_key(issuer["jwk"]["x"].as_str().expect("x")).expect("key");
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let payload = link::verify(&scanned, &key, now_s).expect("genuine and unexpired");
    assert_eq!(payload.iss, "https://records.example-clinic.test");
    assert!(payload.needs_passcode());
    assert!(!scanned.contains(&patient.to_string()), "the QR carries no patient identifier");
    let capability = payload.capability().expect("capability").to_string();
    let path = format!("/v1/share/links/{capability}");
    let a = sys.send("POST", &path, &reader_token, Some(json!({})), None).await;
    assert_eq!((a.status, a.body["code"].as_str()), (401, Some("passcode-required")));
    let (qr_code, qr_share) = (qr["code"].as_str().expect("code"), qr["share"].as_str().expect("id"));
    let a = sys.send("POST", &path, &reader_token, Some(json!({ "passcode": qr_code })), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["method"], "qr_code");
    let release = link::jwe_decrypt(&payload.release_key().expect("key"), a.body["release"].as_str().expect("jwe"))
        .expect("decrypts only with the QR's key");
    let release: Value = serde_json::from_slice(&release).expect("json");
    assert_eq!(
        (&release["share_id"], &release["patient"], &release["data_types"]),
        (&json!(qr_share), &json!(patient.to_string()), &json!(["lab-results"]))
    );
    assert!(release.get("records").is_none(), "records are listed through the grant, under the chain's rules");
    let qr_grant = a.body["grant"].as_str().expect("grant").to_string();
    let listed =
        sys.send("GET", &format!("/v1/patients/{patient}/records"), &reader_token, None, Some(&qr_grant)).await;
    let ids: Vec<&str> =
        listed.body["items"].as_array().expect("items").iter().map(|r| r["record_id"].as_str().expect("id")).collect();
    assert_eq!(ids, vec![format!("0x{lab}")], "the scope, not the enhanced record");
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some(&qr_grant)).await;
    assert_eq!(a.status, 200);
    // Single use: the link is used up.
    let a = sys.send("POST", &path, &reader_token, Some(json!({ "passcode": qr_code })), None).await;
    assert_eq!((a.status, a.body["code"].as_str()), (410, Some("share-inactive")), "{}", a.body);

    // Revocation ends the first share's grant at once.
    let a = sys.send("POST", &format!("/v1/share/codes/{share_id}/revoke"), &patient_token, None, None).await;
    assert_eq!((a.status, a.body["state"].as_str()), (200, Some("revoked")));
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some(&grant)).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("grant-refused")));
    let a = sys.send("POST", &format!("/v1/share/codes/{share_id}/revoke"), &reader_token, None, None).await;
    assert_eq!(a.status, 404, "only the patient revokes their shares");

    // An on-chain revocation wins over a code: the writer loses lab-results
    // on-chain; a code for lab-results does not bring it back.
    sys.tx("wallet_1", ContractCall::revoke_consent(&writer, DataType::LabResults)).await;
    let a = sys.make_share(&patient_token, json!({ "data_types": ["lab-results"], "duration": "1h" })).await;
    let code2 = a.body["code"].as_str().expect("code").to_string();
    let a = sys.redeem(&writer_token, &patient, &code2).await;
    assert_eq!(
        a.body["access"][0],
        json!({ "data_type": "lab-results", "allowed": false, "reason": "ERR-CONSENT-REVOKED" })
    );
    let writer_grant = a.body["grant"].as_str().expect("grant").to_string();
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &writer_token, None, Some(&writer_grant)).await;
    assert_eq!((a.status, a.body["reason"]["name"].as_str()), (403, Some("ERR-CONSENT-REVOKED")));

    // Expiry, time moved rather than slept: the 1 h share and its grant end.
    let a = sys.make_share(&patient_token, json!({ "data_types": ["lab-results"], "duration": "1h" })).await;
    let code3 = a.body["code"].as_str().expect("code").to_string();
    let a = sys.redeem(&reader_token, &patient, &code3).await;
    let short_grant = a.body["grant"].as_str().expect("grant").to_string();
    assert_eq!(
        sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some(&short_grant)).await.status,
        200
    );
    offset.store(HOUR, Ordering::SeqCst);
    let a = sys.send("GET", &format!("/v1/records/{lab}"), &reader_token, None, Some(&short_grant)).await;
    assert_eq!((a.status, a.body["detail"].as_str()), (403, Some("the access grant is unknown or expired")));
    let list = sys.send("GET", "/v1/share/codes", &patient_token, None, None).await;
    let states: Vec<&str> =
        list.body["items"].as_array().expect("items").iter().map(|i| i["state"].as_str().expect("state")).collect();
    assert_eq!(states, vec!["revoked", "used_up", "expired", "expired"], "{}", list.body);
    assert_eq!(list.body["active"], 0);

    // The background job sweeps what can no longer be redeemed: all four
    // (the used-up share's grant, 1 h long, has ended too).
    // The scheduler runs it on the service's clock, moved on a period.
    let scheduler = sys.state.scheduler("e2e");
    assert!(scheduler.tick().await.is_empty(), "a new job waits a period");
    offset.store(HOUR + 61_000, Ordering::SeqCst);
    let ran: Vec<&str> = scheduler.tick().await.into_iter().filter(|(_, o)| o.is_ok()).map(|(n, _)| n).collect();
    assert!(ran.contains(&"share-sweep"), "{ran:?}");
    let list = sys.send("GET", "/v1/share/codes", &patient_token, None, None).await;
    let left = list.body["items"].as_array().expect("items").len();
    assert_eq!(left, 0, "expired, used-up and revoked shares are swept once their grants have ended");

    // The patient's access history shows every use and failure.
    let history = sys.send("GET", "/v1/audit/entries?limit=1000", &patient_token, None, None).await;
    let entries: Vec<&Value> =
        history.body["entries"].as_array().expect("entries").iter().map(|e| &e["entry"]).collect();
    let seen = |action: &str, outcome: &str, method: Option<&str>, reason: Option<&str>| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["outcome"] == outcome
                && e["method"].as_str() == method
                && e["reason"].as_str() == reason
        })
    };
    let expected = [
        ("share.create", "allowed", None, None),
        ("share.redeem", "denied", Some("access_code"), Some("access-code-invalid")),
        ("share.redeem", "allowed", Some("access_code"), None),
        ("record.read", "allowed", Some("access_code"), None),
        ("record.read", "denied", None, Some("outside-share-scope")),
        ("record.list", "allowed", Some("access_code"), None),
        ("share.redeem", "denied", Some("qr_code"), Some("passcode-required")),
        ("share.redeem", "allowed", Some("qr_code"), None),
        ("record.read", "allowed", Some("qr_code"), None),
        ("share.revoke", "allowed", None, None),
        ("share.create", "denied", None, Some("invalid-share")),
        ("record.read", "denied", None, Some("ERR-CONSENT-REVOKED")),
        ("record.read", "denied", None, Some("grant-refused")),
    ];
    for (action, outcome, method, reason) in expected {
        assert!(seen(action, outcome, method, reason), "no {action} {outcome} {method:?} {reason:?} in {entries:#?}");
    }
    let read = entries
        .iter()
        .find(|e| e["action"] == "record.read" && e["method"] == "access_code")
        .expect("a read through the code");
    assert_eq!(read["share_id"], share_id.as_str());
    assert_eq!(read["actor"], sys.principal("wallet_3").to_string());
}

/// Makes a single-use QR share for lab results; returns its QR object with
/// the code and share id added.
pub(super) async fn a_body_qr(sys: &System, patient_token: &str) -> Value {
    let a = sys
        .make_share(
            patient_token,
            json!({ "data_types": ["lab-results"], "single_use": true, "qr": true, "passcode": true }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let mut qr = a.body["qr"].clone();
    qr["code"] = a.body["code"].clone();
    qr["share"] = a.body["share"]["id"].clone();
    qr
}

/// A patient (wallet_1) with one lab-results code, and the provider
/// wallet_3 registered; returns (system, patient, code, provider token,
/// patient token, clock offset).
async fn one_code(limits: RateLimits) -> (System, String, String, String, String, Arc<AtomicU64>) {
    let (clock, offset) = manual_clock();
    let sys = start_with(|c| c.share_limits = limits, Some(clock)).await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    sys.register_provider("wallet_3").await;
    let (provider_token, patient_token) = (sys.sign_in("wallet_3").await, sys.sign_in("wallet_1").await);
    let a = sys.make_share(&patient_token, json!({ "data_types": ["lab-results"] })).await;
    let code = a.body["code"].as_str().expect("code").to_string();
    (sys, patient.to_string(), code, provider_token, patient_token, offset)
}

/// A wrong code (never `code`), the `i`-th of many.
fn wrong_code(code: &str, i: u32) -> String {
    format!("{:06}", (code.parse::<u32>().expect("digits") + 1 + i) % 1_000_000)
}

const OPEN: Rate = Rate { burst: 1_000, per_minute: 60_000 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_and_are_audited() {
    let tight = Rate { burst: 3, per_minute: 6 };
    let (sys, patient, code, token, patient_token, offset) =
        one_code(RateLimits { per_ip: OPEN, per_principal: tight, global: OPEN }).await;
    let guess = json!({ "patient": patient, "code": wrong_code(&code, 0) });
    // Three attempts a burst, six a minute, for this principal.
    for remaining in [9, 8, 7] {
        let a = sys.send("POST", "/v1/share/redeem", &token, Some(guess.clone()), None).await;
        assert_eq!((a.status, a.body["remaining_attempts"].as_u64()), (401, Some(remaining)), "{}", a.body);
    }
    let a = sys.send("POST", "/v1/share/redeem", &token, Some(guess.clone()), None).await;
    assert_eq!((a.status, a.body["code"].as_str(), a.retry_after.as_deref()), (429, Some("rate-limited"), Some("10")));
    assert_eq!(a.body["retry_after"], 10);
    offset.store(10_000, Ordering::SeqCst);
    let a = sys.send("POST", "/v1/share/redeem", &token, Some(guess.clone()), None).await;
    assert_eq!((a.status, a.body["remaining_attempts"].as_u64()), (401, Some(6)), "refilled after Retry-After");
    // The global limit refuses everyone alike.
    let (sys2, patient2, code2, token2, _, _) =
        one_code(RateLimits { per_ip: OPEN, per_principal: OPEN, global: Rate { burst: 1, per_minute: 1 } }).await;
    let guess2 = json!({ "patient": patient2, "code": wrong_code(&code2, 0) });
    assert_eq!(sys2.send("POST", "/v1/share/redeem", &token2, Some(guess2.clone()), None).await.status, 401);
    let a = sys2.send("POST", "/v1/share/redeem", &token2, Some(guess2), None).await;
    assert_eq!((a.status, a.retry_after.as_deref()), (429, Some("60")));

    let history = sys.send("GET", "/v1/audit/entries?limit=1000", &patient_token, None, None).await;
    let reasons: Vec<&str> = history.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entry"]["action"] == "share.redeem")
        .filter_map(|e| e["entry"]["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["access-code-invalid"; 3].into_iter().chain(["rate-limited", "access-code-invalid"]).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_over_http_never_pass_the_caps() {
    let (sys, patient, code, token, patient_token, _) =
        one_code(RateLimits { per_ip: OPEN, per_principal: OPEN, global: OPEN }).await;
    // 40 concurrent wrong guesses: exactly the patient's cap (10) is
    // evaluated — the 5th burns the code, the 10th locks — the rest are
    // refused unevaluated.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (http, url, token) = (sys.http.clone(), format!("{}/v1/share/redeem", sys.api), token.clone());
            let body = json!({ "patient": patient, "code": wrong_code(&code, i) });
            tokio::spawn(async move {
                let r = http.post(url).bearer_auth(token).json(&body).send().await.expect("post");
                (r.status().as_u16(), r.json::<Value>().await.expect("json"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    let count = |code: &str| answers.iter().filter(|(s, b)| *s == 401 && b["code"] == code).count();
    assert_eq!(count("access-code-invalid"), 9, "{answers:#?}");
    assert_eq!(count("access-codes-locked"), 31, "{answers:#?}");
    let list = sys.send("GET", "/v1/share/codes", &patient_token, None, None).await;
    assert_eq!((list.body["locked"].as_bool(), list.body["failures"].as_u64()), (Some(true), Some(10)));
    assert_eq!(
        (list.body["items"][0]["state"].as_str(), list.body["items"][0]["failures"].as_u64()),
        (Some("burned"), Some(5))
    );
    // Even the right code is refused while locked. The patient's next code
    // lifts the lock (and says so); `unlock` does it without a new code.
    let a = sys.redeem(&token, &patient, &code).await;
    assert_eq!(
        (a.status, a.body["code"].as_str(), a.body["remaining_attempts"].as_u64()),
        (401, Some("access-codes-locked"), Some(0))
    );
    let a = sys.make_share(&patient_token, json!({ "data_types": ["lab-results"] })).await;
    assert_eq!((a.status, a.body["unlocked_after_failures"].as_u64()), (201, Some(10)), "{}", a.body);
    let fresh = a.body["code"].as_str().expect("code").to_string();
    assert_eq!(sys.redeem(&token, &patient, &fresh).await.status, 200);
    let a = sys.send("POST", "/v1/share/unlock", &patient_token, None, None).await;
    assert_eq!((a.body["locked"].as_bool(), a.body["lifetime_failures"].as_u64()), (Some(false), Some(10)));
    let history = sys.send("GET", "/v1/audit/entries?limit=1000", &patient_token, None, None).await;
    let denied = history.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entry"]["action"] == "share.redeem" && e["entry"]["outcome"] == "denied")
        .count();
    assert_eq!(denied, 41, "every attempt audited");
}
