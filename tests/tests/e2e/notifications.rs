//! Patient notifications over real HTTP: a patient subscribes a webhook
//! (a real receiver on loopback that fails its first three deliveries);
//! a provider reads and writes the patient's record; each event arrives,
//! signed under the secret the patient was shown, at least once, and is
//! counted once by its id; nothing of the content is in it; the patient's
//! own reads notify nothing; every refusal of the subscription routes
//! (no session, someone else, a bad URL, a private address the node does
//! not allow) holds.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use medanchor_ops::webhook;
use serde_json::{json, Value};

use super::System;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Deliveries received: (event id, signature header, body).
pub(super) type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A webhook receiver on loopback answering 500 to its first `fail`
/// requests, then 200.
pub(super) async fn receiver(fail: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = Arc::new(Mutex::new(0usize));
    let (g, s) = (got.clone(), seen.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                let mut n = s.lock().expect("lock");
                *n += 1;
                if *n <= fail {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                g.lock().expect("lock").push((
                    h(webhook::EVENT_ID_HEADER),
                    h(webhook::SIGNATURE_HEADER),
                    body.to_vec(),
                ));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn put(sys: &System, patient: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = sys.http.put(format!("{}/v1/patients/{patient}/notifications/webhook", sys.api)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("put");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_signed_events_at_least_once_without_content() {
    let sys = super::start_with(|c| c.webhook_allow_private = true, None).await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let (doctor, me) = (sys.sign_in("wallet_2").await, sys.sign_in("wallet_1").await);
    let p = patient.to_string();
    let (url, got) = receiver(3).await;

    // Refusals.
    assert_eq!(put(&sys, &p, None, json!({ "webhook_url": url })).await.0, 401);
    let (s, a) = put(&sys, &p, Some(&doctor), json!({ "webhook_url": url })).await;
    assert_eq!((s, a["code"].as_str()), (403, Some("patient-only")), "{a}");
    for bad in ["ftp://x.org/", "https://u:p@x.org/", "nope"] {
        let (s, a) = put(&sys, &p, Some(&me), json!({ "webhook_url": bad })).await;
        assert_eq!((s, a["code"].as_str()), (400, Some("invalid-webhook")), "{bad}: {a}");
    }
    let r = sys.http.get(format!("{}/v1/patients/{p}/notifications/webhook", sys.api)).bearer_auth(&me).send().await;
    assert_eq!(r.expect("get").status(), 404, "nothing subscribed yet");

    let (s, sub) = put(&sys, &p, Some(&me), json!({ "webhook_url": url })).await;
    assert_eq!(s, 200, "{sub}");
    let secret = hex::decode(sub["secret"].as_str().expect("the secret, once")).expect("hex");
    let (_, shown) = sys.get(&format!("/v1/patients/{p}/notifications/webhook"), &me).await;
    assert!(shown["secret"].is_null() && shown["webhook_url"] == url.as_str(), "{shown}");

    // The provider writes and reads; the patient reads (nothing for that).
    let content = "HbA1c 6.1% — confidential";
    let r: Value = sys
        .http
        .post(format!("{}/v1/patients/{p}/records", sys.api))
        .bearer_auth(&doctor)
        .json(&json!({ "record_type": "lab-results", "content": { "note": content } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = r["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &doctor).await.0, 200);
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &me).await.0, 200);

    // Delivered through three failures: each pass on a clock moved past
    // the backoff (an hour at most), never slept through.
    let http = reqwest::Client::new();
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let o = offset.clone();
    let later = sys.state.clone().with_clock(Arc::new(move || now_ms() + o.load(std::sync::atomic::Ordering::SeqCst)));
    let mut passes = 0;
    while got.lock().expect("lock").len() < 2 {
        assert!(passes < 10, "not delivered after {passes} passes");
        later.deliver_once(&http).await.expect("pass");
        offset.fetch_add(3_600_000, std::sync::atomic::Ordering::SeqCst);
        passes += 1;
    }
    assert!(passes >= 3, "the receiver refused the first three deliveries");
    let got = got.lock().expect("lock").clone();
    let now = (now_ms() + offset.load(std::sync::atomic::Ordering::SeqCst)) / 1000;
    let mut kinds = Vec::new();
    for (event_id, signature, body) in &got {
        webhook::verify(&secret, signature, body, now, 12 * 3600).expect("signed under the patient's secret");
        let e: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(&e["id"], event_id, "the header names the body's event");
        assert_eq!(e["patient"], p.as_str());
        assert_eq!(e["record_id"], id.as_str());
        assert!(!String::from_utf8_lossy(body).contains("HbA1c"), "no content in a notification");
        kinds.push(e["action"].as_str().expect("action").to_string());
    }
    kinds.sort();
    assert_eq!(kinds, ["record.create", "record.read"], "the provider's two actions, not the patient's own read");
    let ids: std::collections::BTreeSet<&String> = got.iter().map(|g| &g.0).collect();
    assert_eq!(ids.len(), got.len(), "each event delivered once it was accepted");
    assert_eq!(sys.state.outbox_depth().expect("depth"), 0, "the outbox is empty");

    // Unsubscribed: nothing more is queued.
    let r = sys.http.delete(format!("{}/v1/patients/{p}/notifications/webhook", sys.api)).bearer_auth(&me).send().await;
    assert_eq!(r.expect("delete").status(), 204);
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &doctor).await.0, 200);
    assert_eq!(sys.state.outbox_depth().expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_allows_no_private_addresses_never_calls_one() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let (doctor, me) = (sys.sign_in("wallet_2").await, sys.sign_in("wallet_1").await);
    let p = patient.to_string();
    let (url, got) = receiver(0).await;
    assert_eq!(put(&sys, &p, Some(&me), json!({ "webhook_url": url })).await.0, 200);
    let id = super::attachments::lab_record(&sys, &doctor).await;
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &doctor).await.0, 200);
    let (delivered, failed) = sys.state.deliver_once(&reqwest::Client::new()).await.expect("pass");
    assert_eq!((delivered, failed), (0, 2), "refused before any connection");
    assert!(got.lock().expect("lock").is_empty(), "the loopback receiver was never called");
    let (_, shown) = sys.get(&format!("/v1/patients/{p}/notifications/webhook"), &me).await;
    assert_eq!(shown["pending"], 2, "kept for retries: {shown}");
}

/// A message's text with its quoted-printable body decoded (soft line
/// breaks joined, `=XX` bytes restored).
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An SMTP server on loopback (aiosmtpd with its Maildir handler), killed
/// on drop.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(port: u16, maildir: tempfile::TempDir) -> SmtpSink {
        for d in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.path().join(d)).expect("maildir");
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::process::Command::new("bash")
            .args(["-c", "source scripts/lib.sh && ensure_smtp_sink"])
            .current_dir(&root)
            .output()
            .expect("bash");
        assert!(out.status.success(), "ensure_smtp_sink: {}", String::from_utf8_lossy(&out.stderr));
        let python = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
        let mut child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return SmtpSink { child, port, maildir };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not listen on {port}");
    }

    /// Every message received, as text, de-duplicated by `Message-ID` (as
    /// a mail system does).
    fn messages(&self) -> Vec<String> {
        let mut by_id = std::collections::BTreeMap::new();
        let new = self.maildir.path().join("new");
        for e in std::fs::read_dir(&new).into_iter().flatten().flatten() {
            let text = decode_quoted_printable(&std::fs::read_to_string(e.path()).expect("message"));
            let id = text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).unwrap_or("").to_string();
            by_id.insert(id, text);
        }
        by_id.into_values().collect()
    }

    fn files(&self) -> usize {
        std::fs::read_dir(self.maildir.path().join("new")).map_or(0, |d| d.count())
    }

    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.maildir, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// E-mail notifications against a real SMTP server: the patient's
/// settings (each refusal branch), an hourly digest that waits for its
/// hour and then holds both events in one message (no content), an
/// immediate one for a profile change, a server that is down (the message
/// waits and goes out once it is back, under the same `Message-ID`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_out_as_an_hourly_digest_or_at_once_and_waits_out_a_down_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let sink = SmtpSink::start(port, tempfile::tempdir().expect("maildir"));
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let o = offset.clone();
    let clock: medanchor_api::app::Clock = Arc::new(move || now_ms() + o.load(std::sync::atomic::Ordering::SeqCst));
    let smtp = medanchor_api::notify::Smtp {
        url: format!("smtp://127.0.0.1:{}", sink.port),
        from: "medanchor <notifications@medanchor.localhost>".into(),
    };
    let sys = super::start_with(move |c| c.smtp = Some(smtp), Some(clock)).await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let (doctor, me) = (sys.sign_in("wallet_2").await, sys.sign_in("wallet_1").await);
    let p = patient.to_string();
    let prefs = |token: Option<&str>, body: Value| {
        let (sys, p, token) = (&sys, p.clone(), token.map(str::to_string));
        async move {
            let mut r = sys.http.put(format!("{}/v1/patients/{p}/notifications/preferences", sys.api)).json(&body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.expect("put");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Refusals, then the settings.
    assert_eq!(prefs(None, json!({ "email": "me@example.org" })).await.0, 401);
    let (s, a) = prefs(Some(&doctor), json!({ "email": "me@example.org" })).await;
    assert_eq!((s, a["code"].as_str()), (403, Some("patient-only")), "{a}");
    for (body, code) in [
        (json!({ "email": "not an address" }), "invalid-email"),
        (json!({ "email": format!("{}@example.org", "a".repeat(250)) }), "invalid-email"),
        (json!({ "email": "me@example.org", "digest": "weekly" }), "invalid-digest"),
    ] {
        let (s, a) = prefs(Some(&me), body.clone()).await;
        assert_eq!((s, a["code"].as_str()), (400, Some(code)), "{body}: {a}");
    }
    let (s, set) = prefs(Some(&me), json!({ "email": "patient@example.org", "digest": "hourly" })).await;
    assert_eq!((s, set), (200, json!({ "email": "patient@example.org", "digest": "hourly" })));
    let (_, shown) = sys.get(&format!("/v1/patients/{p}/notifications/preferences"), &me).await;
    assert_eq!(shown["digest"], "hourly");
    let (s, _) = sys.get(&format!("/v1/patients/{p}/notifications/preferences"), &doctor).await;
    assert_eq!(s, 403);

    // The provider writes and reads: two events, held for the hour.
    let content = "HbA1c 6.1% — confidential";
    let r: Value = sys
        .http
        .post(format!("{}/v1/patients/{p}/records", sys.api))
        .bearer_auth(&doctor)
        .json(&json!({ "record_type": "lab-results", "content": { "note": content } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = r["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &doctor).await.0, 200);
    assert_eq!(sys.state.mail_depth().expect("depth"), 2);
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (0, 0), "not before the hour ends");
    offset.store(3_600_000, std::sync::atomic::Ordering::SeqCst);
    let pass = sys.state.deliver_mail_once().await.expect("pass");
    let rows = sys.state.db().scan(medanchor_api::db::Cf::Meta, b"notify/mail/").expect("rows");
    let kept: Vec<String> = rows.iter().map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect();
    assert_eq!(pass, (1, 0), "one digest: {kept:?}");
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (0, 0), "sent once");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert!(m.contains("To: patient@example.org"), "{m}");
    assert!(m.contains("Subject: medanchor: 2 events on your records"), "{m}");
    let bare = id.trim_start_matches("0x");
    assert!(m.contains("record.create") && m.contains("record.read") && m.contains(bare), "{m}");
    assert!(!m.contains("HbA1c") && !m.contains("confidential"), "no content in e-mail: {m}");

    // Immediate: the next event goes at once. The server is down first:
    // the message waits, and goes out when it is back (backoff passed).
    let (s, _) = prefs(Some(&me), json!({ "email": "patient@example.org", "digest": "immediate" })).await;
    assert_eq!(s, 200);
    let maildir = sink.stop();
    assert_eq!(sys.get(&format!("/v1/records/{id}"), &doctor).await.0, 200);
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (0, 1), "the server is down");
    assert_eq!(sys.state.mail_depth().expect("depth"), 1, "kept for the next try");
    let sink = SmtpSink::start(port, maildir);
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (0, 0), "waits for its backoff");
    offset.store(3_600_000 + 5_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (1, 0));
    let messages = sink.messages();
    assert_eq!((messages.len(), sink.files()), (2, 2), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("Subject: medanchor: activity on your records")), "{messages:?}");
    assert_eq!(sys.state.mail_depth().expect("depth"), 0);

    // A consent that ends within a day: the hourly reminder job announces
    // it once (through the scheduler, on the moved clock).
    let provider = sys.principal("wallet_2");
    sys.tx(
        "wallet_1",
        medanchor_wallet::ContractCall::grant_consent(
            &provider,
            medanchor_contracts::types::DataType::TreatmentPlans,
            medanchor_wallet::GrantDuration::Blocks(100),
        ),
    )
    .await;
    // The reminder job alone (the deliveries are driven by hand here).
    let mut scheduler = sys.state.bare_scheduler("e2e");
    for (spec, run) in sys.state.standard_jobs().into_iter().filter(|(s, _)| s.name == "consent-reminders") {
        scheduler.add(spec, run);
    }
    assert!(scheduler.tick().await.is_empty(), "registered");
    offset.store(2 * 3_600_000 + 10_000, std::sync::atomic::Ordering::SeqCst);
    let ran = scheduler.tick().await;
    let reminders: Vec<&Result<String, String>> =
        ran.iter().filter(|(n, _)| *n == "consent-reminders").map(|(_, o)| o).collect();
    assert_eq!(reminders, [&Ok("1 consent reminders".to_string())], "{ran:?}");
    assert_eq!(sys.state.deliver_mail_once().await.expect("pass"), (1, 0));
    let reminder = sink.messages().into_iter().find(|m| m.contains("ends within 24 hours")).expect("the reminder");
    assert!(reminder.contains(&provider.to_string()) && reminder.contains("treatment-plans"), "{reminder}");
    offset.store(3 * 3_600_000 + 20_000, std::sync::atomic::Ordering::SeqCst);
    let again = scheduler.tick().await;
    assert!(again.contains(&("consent-reminders", Ok("0 consent reminders".to_string()))), "once: {again:?}");
}
