//! Tenants over real HTTP: one node serving `test` and `north`, each over
//! its own database, KEKs, audit log and object prefix. The provider
//! wallet_2 — a member of both, with the patient's on-chain consent — tries
//! every route of `north` with `test`'s ids (record, file, upload, link,
//! share, profile, credentials, template): each is refused (404/403) or
//! answers from `north`'s own data only, and the attempts are in `north`'s
//! audit log, never in `test`'s. Non-members get 403 (audited), a missing or
//! unknown tenant 400, and each tenant's size limit and object prefix hold.

use std::collections::BTreeSet;

use medanchor_api::app::{self, AppState};
use medanchor_api::share::link;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::System;

/// `sys` switched to a node serving `test` (its default headers name it)
/// and `north`; returns `north`'s service and a client naming it.
async fn two_tenants(sys: &mut System) -> (AppState, reqwest::Client) {
    let member = |n: &str| sys.principal(n).to_string();
    let mut config = sys.state.config().clone();
    config.tenant = "north".into();
    config.members = Some(vec![member("wallet_1"), member("wallet_2")]);
    config.admins = vec![member("deployer")];
    config.auditors = vec![member("wallet_3")];
    config.max_attachment_bytes = 60_000;
    let dir = sys._dir.path();
    let north = sys
        .state
        .open_tenant(config, &dir.join("tenants/north"), &dir.join("keys/tenants/north"))
        .expect("north opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    sys.api = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(medanchor_api::serve_tenants(
        listener,
        vec![sys.state.clone(), north.clone()],
        std::future::pending(),
    ));
    let client = |tenant: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(app::TENANT_HEADER, HeaderValue::from_static(tenant));
        reqwest::Client::builder().default_headers(headers).build().expect("client")
    };
    sys.http = client("test");
    (north, client("north"))
}

async fn call(
    http: &reqwest::Client,
    api: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method.parse().expect("method"), format!("{api}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if method == "PATCH" {
        r = r.header("tus-resumable", "1.0.0").header("upload-offset", "0");
        r = r.header("content-type", "application/offset+octet-stream").body(vec![0xffu8; 16]);
    } else if method == "HEAD" || method == "DELETE" {
        r = r.header("tus-resumable", "1.0.0");
    } else if method == "POST" && path.ends_with("/uploads") {
        r = r.header("tus-resumable", "1.0.0").header("upload-length", "1000");
        r = r.header("upload-metadata", "filename c2Nhbi5qcGc=,filetype aW1hZ2UvanBlZw==");
    } else if path.contains("/attachments?name=") {
        r = r.header("content-type", "image/jpeg").body(super::attachments::jpeg(9));
    } else if let Some(b) = body {
        if method == "PUT" {
            let first = path.ends_with("/profile") || path.ends_with("/credentials");
            r = r.header("if-match", if first { "\"0\"" } else { "\"1\"" });
        }
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What `north` must answer to a route carrying `test`'s ids.
enum Expect {
    /// 404 (this tenant holds no such thing) or 403.
    Refused,
    /// 2xx, and the body must not mention any of `test`'s ids.
    OwnOnly,
    /// A share code or link another tenant issued: as any wrong code
    /// (401 `access-code-invalid`, counted against the attempts).
    UnknownCode,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_of_one_tenant_reaches_another_tenants_data() {
    let mut sys = super::start().await;
    let (north, north_http) = two_tenants(&mut sys).await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let doctor = sys.sign_in("wallet_2").await;
    let me = sys.sign_in("wallet_1").await;
    let (north_admin, north_auditor, test_auditor) =
        (sys.sign_in("deployer").await, sys.sign_in("wallet_3").await, sys.sign_in("faucet").await);

    // `test`'s data: a record with files, an unfinished upload, a link, a
    // share with a QR, the patient's profile, the provider's credentials
    // and a template of theirs.
    let (record, pdf_id, _jpeg_id) = super::attachments::record_with_files(&sys, &doctor).await;
    let (s, link_view) = call(
        &sys.http,
        &sys.api,
        "POST",
        &format!("/v1/records/{record}/attachments/{pdf_id}/link"),
        Some(&doctor),
        None,
    )
    .await;
    assert_eq!(s, 201, "{link_view}");
    let link_path = link_view["path"].as_str().expect("path").to_string();
    assert!(link_path.ends_with("&tenant=test"), "a link names its tenant: {link_path}");
    let created = sys
        .http
        .post(format!("{}/v1/records/{record}/uploads", sys.api))
        .bearer_auth(&doctor)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .header("upload-metadata", "filename c2Nhbi5qcGc=,filetype aW1hZ2UvanBlZw==")
        .send()
        .await
        .expect("create upload");
    assert_eq!(created.status(), 201);
    let upload = created.headers()["location"].to_str().expect("location").to_string();
    let qr = super::share::a_body_qr(&sys, &me).await;
    let share_id = qr["share"].as_str().expect("share").to_string();
    let code = qr["code"].as_str().expect("code").to_string();
    let issuer: Value =
        sys.http.get(format!("{}/v1/share/issuer", sys.api)).send().await.expect("issuer").json().await.expect("json");
    let key = link::parse_issuer_key(issuer["jwk"]["x"].as_str().expect("x")).expect("key");
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let capability = link::verify(qr["content"].as_str().expect("content"), &key, now_s)
        .expect("genuine")
        .capability()
        .expect("capability")
        .to_string();
    let (s, profile) = call(
        &sys.http,
        &sys.api,
        "PUT",
        &format!("/v1/patients/{patient}/profile"),
        Some(&me),
        Some(super::profiles::full_profile()),
    )
    .await;
    assert_eq!(s, 200, "{profile}");
    let (s, _) = call(
        &sys.http,
        &sys.api,
        "PUT",
        &format!("/v1/providers/{provider}/credentials"),
        Some(&doctor),
        Some(super::credentials::document("Dr. Two", "2031-01-01")),
    )
    .await;
    assert!(s == 200 || s == 201, "credentials: {s}");
    let mine = json!({ "kind": "provider", "name": provider.to_string() });
    let (s, t) = call(
        &sys.http,
        &sys.api,
        "POST",
        "/v1/templates",
        Some(&doctor),
        Some(super::templates::custom("echo-t", 1, mine)),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let (_, read) = call(&sys.http, &sys.api, "GET", &format!("/v1/records/{record}"), Some(&doctor), None).await;
    let data_hash = read["anchor"]["data_hash"].as_str().expect("hash").trim_start_matches("0x").to_string();
    let (s, exported) =
        call(&sys.http, &sys.api, "GET", &format!("/v1/patients/{patient}/export?format=json"), Some(&me), None).await;
    assert_eq!(s, 200, "{exported}");
    let export_id = exported["id"].as_str().expect("export id").to_string();
    let (s, asked) = call(
        &sys.http,
        &sys.api,
        "POST",
        "/v1/consent-requests",
        Some(&doctor),
        Some(json!({ "patient": patient.to_string(), "data_types": ["financial"], "purpose": "billing review" })),
    )
    .await;
    assert_eq!(s, 201, "{asked}");
    let consent_request = asked["id"].as_str().expect("consent request id").to_string();
    // A flag of test's: wallet_3 refused ten times there.
    for _ in 0..10 {
        let (s, _) =
            call(&sys.http, &sys.api, "GET", &format!("/v1/records/{record}"), Some(&north_auditor), None).await;
        assert_eq!(s, 403);
    }
    let (_, flags) = call(&sys.http, &sys.api, "GET", "/v1/admin/flags", Some(&test_auditor), None).await;
    let flag = flags[0]["id"].as_str().unwrap_or_else(|| panic!("test's flag: {flags}")).to_string();
    let test_audit_before = sys.state.audit().size().expect("size");
    // Everything of `test`'s a response must not carry.
    let secrets = [
        record.clone(),
        pdf_id.clone(),
        share_id.clone(),
        upload.clone(),
        "echo-t".into(),
        "HbA1c".into(),
        flag.clone(),
        consent_request.clone(),
    ];

    // Every route of `north` with `test`'s ids, as the member wallet_2
    // (the patient, or `north`'s admin or auditor where the route is theirs).
    let (r, f) = (&record, &pdf_id);
    let today = medanchor_api::analytics::date_of_day(medanchor_ops::analytics::day_of(now_s * 1000));
    let own_link = link_path.replace("tenant=test", "tenant=north");
    let table: Vec<(&str, String, &str, Option<Value>, Expect)> = vec![
        ("GET", format!("/v1/patients/{patient}/records"), &doctor, None, Expect::OwnOnly),
        ("GET", format!("/v1/records/{r}"), &doctor, None, Expect::Refused),
        (
            "PUT",
            format!("/v1/records/{r}"),
            &doctor,
            Some(json!({ "record_type": "lab-results", "content": {} })),
            Expect::Refused,
        ),
        ("GET", format!("/v1/records/{r}/versions"), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/finalize"), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/unlock"), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/archive"), &doctor, None, Expect::Refused),
        ("GET", "/v1/audit/entries?limit=1000".into(), &north_auditor, None, Expect::OwnOnly),
        ("GET", format!("/v1/audit/disclosures?patient={patient}"), &me, None, Expect::OwnOnly),
        ("GET", format!("/v1/verify/record/{r}"), &doctor, None, Expect::Refused),
        ("GET", format!("/v1/verify/record/{r}/blob"), &doctor, None, Expect::Refused),
        ("GET", "/v1/share/codes".into(), &me, None, Expect::OwnOnly),
        ("POST", format!("/v1/share/codes/{share_id}/revoke"), &me, None, Expect::Refused),
        (
            "POST",
            "/v1/share/redeem".into(),
            &doctor,
            Some(json!({ "patient": patient.to_string(), "code": code })),
            Expect::UnknownCode,
        ),
        (
            "POST",
            format!("/v1/share/links/{capability}"),
            &doctor,
            Some(json!({ "passcode": code })),
            Expect::UnknownCode,
        ),
        ("GET", format!("/v1/patients/{patient}/profile"), &doctor, None, Expect::Refused),
        ("GET", "/v1/templates".into(), &doctor, None, Expect::OwnOnly),
        ("GET", "/v1/templates/echo-t".into(), &doctor, None, Expect::Refused),
        ("GET", format!("/v1/providers/{provider}/credentials"), &north_admin, None, Expect::Refused),
        ("GET", format!("/v1/providers/{provider}/credentials/document"), &north_admin, None, Expect::Refused),
        (
            "POST",
            format!("/v1/providers/{provider}/credentials/decision"),
            &north_admin,
            Some(json!({ "version": 1, "decision": "verify" })),
            Expect::Refused,
        ),
        ("GET", "/v1/credentials".into(), &north_admin, None, Expect::OwnOnly),
        ("GET", "/v1/search/records?medication=metformin".into(), &doctor, None, Expect::OwnOnly),
        ("GET", format!("/v1/search/records?patient={patient}"), &me, None, Expect::OwnOnly),
        ("GET", "/v1/search/patients?name=garcia".into(), &north_admin, None, Expect::OwnOnly),
        ("POST", format!("/v1/records/{r}/attachments?name=x.jpg"), &doctor, None, Expect::Refused),
        ("GET", format!("/v1/records/{r}/attachments"), &doctor, None, Expect::Refused),
        ("GET", format!("/v1/records/{r}/attachments/{f}"), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/attachments/{f}/remove"), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/attachments/{f}/link"), &doctor, None, Expect::Refused),
        ("GET", own_link.clone(), &doctor, None, Expect::Refused),
        ("POST", format!("/v1/records/{r}/attachments/{f}/restore?version=1"), &doctor, None, Expect::Refused),
        ("GET", format!("/v1/records/{r}/attachments/{f}/anchor"), &doctor, None, Expect::Refused),
        ("GET", "/v1/admin/storage/report".into(), &north_admin, None, Expect::OwnOnly),
        // An export in north holds north's data only; test's export is
        // not north's to show.
        ("GET", format!("/v1/patients/{patient}/export?format=json"), &doctor, None, Expect::OwnOnly),
        ("GET", format!("/v1/patients/{patient}/summary?format=json"), &doctor, None, Expect::OwnOnly),
        ("GET", format!("/v1/exports/{export_id}"), &doctor, None, Expect::Refused),
        // A consent request is its tenant's: north neither lists nor
        // decides test's.
        ("GET", "/v1/consent-requests?state=all".into(), &doctor, None, Expect::OwnOnly),
        ("GET", format!("/v1/consent-requests/{consent_request}"), &doctor, None, Expect::Refused),
        (
            "POST",
            format!("/v1/consent-requests/{consent_request}/approve"),
            &me,
            Some(json!({ "txids": [format!("0x{}", "ab".repeat(32))] })),
            Expect::Refused,
        ),
        ("POST", format!("/v1/consent-requests/{consent_request}/decline"), &me, Some(json!({})), Expect::Refused),
        // Backups are the node's: a further tenant's admin is refused.
        ("GET", "/v1/admin/backups".into(), &north_admin, None, Expect::Refused),
        ("POST", "/v1/admin/backups".into(), &north_admin, None, Expect::Refused),
        ("POST", "/v1/admin/backups/prune".into(), &north_admin, None, Expect::Refused),
        ("POST", "/v1/admin/backups/20261205T194500123Z-0a9f/verify".into(), &north_admin, None, Expect::Refused),
        // Oversight answers from north's counters and flags only.
        ("GET", "/v1/admin/analytics?days=30".into(), &north_auditor, None, Expect::OwnOnly),
        ("GET", format!("/v1/admin/compliance?from={today}&to={today}"), &north_admin, None, Expect::OwnOnly),
        ("GET", "/v1/admin/flags?all=true".into(), &north_admin, None, Expect::OwnOnly),
        ("GET", "/v1/admin/jobs".into(), &north_admin, None, Expect::OwnOnly),
        ("POST", format!("/v1/admin/flags/{flag}/acknowledge"), &north_admin, Some(json!({})), Expect::Refused),
        ("POST", format!("/v1/records/{r}/uploads"), &doctor, None, Expect::Refused),
        ("HEAD", upload.clone(), &doctor, None, Expect::Refused),
        ("PATCH", upload.clone(), &doctor, None, Expect::Refused),
        ("DELETE", upload.clone(), &doctor, None, Expect::Refused),
    ];
    let mut tried = BTreeSet::new();
    for (method, path, token, body, expect) in &table {
        let (status, answer) = call(&north_http, &sys.api, method, path, Some(token), body.clone()).await;
        match expect {
            Expect::Refused => {
                assert!(status == 404 || status == 403, "{method} {path} in north: {status} {answer}")
            }
            Expect::UnknownCode => {
                assert!(status == 401 || status == 404, "{method} {path} in north: {status} {answer}");
                assert!(answer["code"] == "access-code-invalid" || status == 404, "{answer}");
            }
            Expect::OwnOnly => {
                assert!((200..300).contains(&status), "{method} {path} in north: {status} {answer}");
                let text = answer.to_string();
                for s in &secrets {
                    // An audit entry may name the id the caller tried
                    // (refused); nothing else may carry it.
                    if path.starts_with("/v1/audit/entries") {
                        continue;
                    }
                    assert!(!text.contains(s.as_str()), "{method} {path} in north leaks {s}: {text}");
                }
            }
        }
        // The route template this path exercises.
        tried.insert((method.to_string(), template_of(path)));
    }
    // The same link in its own tenant still works: the refusal above was
    // the tenant's, not a broken link.
    let own = sys.http.get(format!("{}{link_path}", sys.api)).send().await.expect("link");
    assert_eq!(own.status(), 200);

    // North's audit log: every attempt with test's record is there,
    // refused; nothing test did is.
    let (_, entries) =
        call(&north_http, &sys.api, "GET", "/v1/audit/entries?limit=1000", Some(&north_auditor), None).await;
    let entries = entries["entries"].as_array().expect("entries").clone();
    let about_record: Vec<&Value> = entries.iter().filter(|e| e["entry"]["record_id"] == json!(record)).collect();
    let actions: BTreeSet<&str> = about_record.iter().filter_map(|e| e["entry"]["action"].as_str()).collect();
    assert!(about_record.len() >= 10, "north audited the attempts: {actions:?}");
    assert!(about_record.iter().all(|e| e["entry"]["outcome"] == "denied"), "{about_record:?}");
    assert!(!entries.iter().any(|e| e["entry"]["action"] == "record.create"), "test's writes are not in north's log");
    // …and test's log holds none of them (only the one own-link download).
    let test_after = sys.state.audit().size().expect("size");
    assert!(
        test_after - test_audit_before <= 2,
        "north's refusals went to test's log: {test_audit_before} → {test_after}"
    );
    let (_, test_entries) =
        call(&sys.http, &sys.api, "GET", "/v1/audit/entries?limit=1000", Some(&test_auditor), None).await;
    assert!(test_entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["entry"]["action"] != "tenant.access"));

    // Every route of the API is either in the table or carries no other
    // tenant's ids (its answer is the tenant's own by construction).
    let tenant_free: BTreeSet<(String, String)> = [
        ("POST", "/v1/auth/challenge"),
        ("POST", "/v1/auth/verify"),
        ("GET", "/v1/me"),
        ("POST", "/v1/patients/{patient}/records"),
        // The patient's own records on the (shared) chain, only ever by the
        // patient; erasure touches the serving tenant's data only.
        ("POST", "/v1/patients/{patient}/deletion"),
        // The caller's own subscription in the tenant they call (patient
        // only; no other tenant's ids).
        ("PUT", "/v1/patients/{patient}/notifications/webhook"),
        ("GET", "/v1/patients/{patient}/notifications/webhook"),
        ("DELETE", "/v1/patients/{patient}/notifications/webhook"),
        ("PUT", "/v1/patients/{patient}/notifications/preferences"),
        ("GET", "/v1/patients/{patient}/notifications/preferences"),
        ("GET", "/v1/audit/checkpoint"),
        ("GET", "/v1/audit/proof/inclusion"),
        ("GET", "/v1/audit/proof/consistency"),
        ("GET", "/v1/verify/hash/{sha256}"),
        ("GET", "/v1/audit/anchor"),
        ("POST", "/v1/share/codes"),
        ("POST", "/v1/share/unlock"),
        // A provider's request is made in the tenant it is sent to (the
        // patient is the chain's, shared; no other tenant's ids).
        ("POST", "/v1/consent-requests"),
        ("GET", "/v1/share/issuer"),
        // The tenant's own export signing key.
        ("GET", "/v1/exports/key"),
        ("PUT", "/v1/patients/{patient}/profile"),
        ("POST", "/v1/templates"),
        ("PUT", "/v1/providers/{provider}/credentials"),
        ("OPTIONS", "/v1/uploads"),
        ("GET", "/openapi.json"),
        // The node's operability routes: no tenant's ids or data.
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    let doc: Value =
        sys.http.get(format!("{}/openapi.json", sys.api)).send().await.expect("doc").json().await.expect("json");
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            let key = (method.to_uppercase(), path.clone());
            if ["PARAMETERS", "SUMMARY", "DESCRIPTION"].contains(&key.0.as_str()) {
                continue;
            }
            assert!(
                tried.contains(&key) || tenant_free.contains(&key),
                "{} {} is neither tried across tenants nor tenant-free",
                key.0,
                key.1
            );
        }
    }
    // The routes that are: the hash's on-chain anchors are the public
    // chain's, but north holds no copy; its checkpoint is its own log's.
    let (s, h) = call(&north_http, &sys.api, "GET", &format!("/v1/verify/hash/{data_hash}"), Some(&doctor), None).await;
    assert_eq!(s, 200, "{h}");
    assert!(h["api_copy"].is_null(), "north holds no copy of test's record: {h}");
    let checkpoint = |http: &reqwest::Client| {
        let http = http.clone();
        let api = sys.api.clone();
        async move { http.get(format!("{api}/v1/audit/checkpoint")).send().await.expect("cp").text().await.expect("text") }
    };
    assert_ne!(checkpoint(&north_http).await, checkpoint(&sys.http).await, "one log per tenant");

    // Membership and the tenant header.
    let (s, refused) = call(&north_http, &sys.api, "GET", "/v1/me", Some(&test_auditor), None).await;
    assert_eq!((s, refused["code"].as_str()), (403, Some("not-a-member")), "{refused}");
    let (_, entries) =
        call(&north_http, &sys.api, "GET", "/v1/audit/entries?limit=1000", Some(&north_auditor), None).await;
    assert!(
        entries["entries"].as_array().expect("entries").iter().any(|e| e["entry"]["action"] == "tenant.access"
            && e["entry"]["outcome"] == "denied"
            && e["entry"]["actor"] == json!(sys.principal("faucet").to_string())),
        "the refusal is audited in north"
    );
    let bare = reqwest::Client::new();
    for (header, status, code) in [
        (None, 400, "tenant-required"),
        (Some("south"), 400, "unknown-tenant"),
        (Some("North"), 400, "unknown-tenant"),
        (Some("test"), 200, ""),
    ] {
        let mut r = bare.get(format!("{}/v1/me", sys.api)).bearer_auth(&doctor);
        if let Some(h) = header {
            r = r.header(app::TENANT_HEADER, h);
        }
        let r = r.send().await.expect("me");
        assert_eq!(r.status().as_u16(), status, "{header:?}");
        assert!(r.headers().contains_key("x-request-id"));
        if status == 400 {
            let body: Value = r.json().await.expect("problem");
            assert_eq!(body["code"], code, "{header:?}: {body}");
        }
    }
    let r = bare.get(format!("{}{own_link}", sys.api)).header(app::TENANT_HEADER, "test").send().await.expect("link");
    assert_eq!(r.status(), 400, "a header and a link's tenant that disagree");
    let r = bare.get(format!("{}/v1/me?tenant=north", sys.api)).bearer_auth(&doctor).send().await.expect("me");
    assert_eq!(r.status(), 400, "only a signed link names its tenant in the query");
    assert_eq!(bare.get(format!("{}/openapi.json", sys.api)).send().await.expect("doc").status(), 200);

    // North's own limits and prefix: its record takes a small JPEG (kept
    // under `north/`) and refuses what `test` took.
    let (s, created) = call(
        &north_http,
        &sys.api,
        "POST",
        &format!("/v1/patients/{patient}/records"),
        Some(&doctor),
        Some(json!({ "record_type": "lab-results", "content": { "test": "ferritin" } })),
    )
    .await;
    assert_eq!(s, 202, "{created}");
    let north_record = created["record_id"].as_str().expect("id").to_string();
    sys.mine().await;
    app::track_once(&north).expect("track");
    let send = |body: Vec<u8>, name: &'static str, media: &'static str| {
        north_http
            .post(format!("{}/v1/records/{north_record}/attachments", sys.api))
            .query(&[("name", name)])
            .bearer_auth(&doctor)
            .header("content-type", media)
            .body(body)
            .send()
    };
    assert_eq!(send(super::attachments::pdf(), "report.pdf", "application/pdf").await.expect("post").status(), 413);
    assert_eq!(send(super::attachments::jpeg(3), "scan.jpg", "image/jpeg").await.expect("post").status(), 201);
    let north_objects = walk(&sys._dir.path().join("objects/north"));
    assert_eq!(north_objects, 1, "north's one file sits under its prefix");
    let (_, report) = call(&north_http, &sys.api, "GET", "/v1/admin/storage/report", Some(&north_admin), None).await;
    let tenants: Vec<&str> =
        report["tenants"].as_array().expect("tenants").iter().filter_map(|t| t["tenant"].as_str()).collect();
    assert_eq!(tenants, ["north"], "{report}");
    assert_eq!(report["tenants"][0]["objects"], 1, "{report}");
    // …and test's list of the patient's records does not show north's.
    let (_, listed) =
        call(&sys.http, &sys.api, "GET", &format!("/v1/patients/{patient}/records"), Some(&doctor), None).await;
    assert!(!listed.to_string().contains(&north_record), "{listed}");
    assert!(listed.to_string().contains(&record), "{listed}");
}

/// The route template a tried path exercises (ids replaced by the
/// template's parameter names).
fn template_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    let named: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let prev = if i > 0 { parts[i - 1] } else { "" };
            let name = match prev {
                "records" | "record" => "{id}",
                "attachments" => "{attachment}",
                "uploads" => "{upload}",
                "patients" => "{patient}",
                "providers" => "{provider}",
                "codes" if *p != "revoke" => "{id}",
                "links" => "{capability}",
                "templates" => "{id}",
                "backups" if *p != "prune" => "{id}",
                "exports" if *p != "key" => "{id}",
                "flags" => "{id}",
                "consent-requests" => "{id}",
                _ => return p.to_string(),
            };
            name.to_string()
        })
        .collect();
    named.join("/")
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}
