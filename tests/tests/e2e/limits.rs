//! What an anonymous or careless caller can make the node do: bodies are
//! bounded per route, a record payload's session is checked before its
//! body is read, answers never echo unbounded input, and every response —
//! errors included — carries the request id.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::System;

/// Sends `head` and `partial` (of a body announced longer) over a raw
/// connection and returns the status line of the answer, which must come
/// without the rest of the body.
async fn answer_before_body(sys: &System, head: &str, partial: &[u8]) -> String {
    answer_text(sys, head, partial).await.lines().next().unwrap_or_default().to_string()
}

/// [`answer_before_body`]'s whole answer (head and the start of the body).
/// Raw, so that nothing more than `partial` is ever sent: a client still
/// writing a body the server has refused races the server's close.
async fn answer_text(sys: &System, head: &str, partial: &[u8]) -> String {
    let addr = sys.api.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(partial).await.expect("partial body");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_sessions_come_first_and_answers_stay_small() {
    let sys = super::start().await;
    let patient = sys.principal("wallet_1");
    let host = sys.api.trim_start_matches("http://").to_string();

    // A 64 MiB record payload announced without a session: refused before
    // a byte more is read.
    let head = format!(
        "POST /v1/patients/{patient}/records HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        64 << 20
    );
    let status = answer_before_body(&sys, &head, &[0u8; 1024]).await;
    assert!(status.contains(" 401 "), "{status}");
    // The same with a forged token.
    let head = head.replace("\r\n\r\n", "\r\nAuthorization: Bearer forged.token\r\n\r\n");
    let status = answer_before_body(&sys, &head, &[0u8; 1024]).await;
    assert!(status.contains(" 401 "), "{status}");

    // Routes without a payload take 16 KiB at most. The body is sent
    // whole (raw, so the node has read all of it when it refuses: a client
    // still writing would race the node's close).
    let body = format!(r#"{{"principal":"{}"}}"#, "S".repeat(16 * 1024));
    let head = format!(
        "POST /v1/auth/challenge HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let answer = answer_text(&sys, &head, body.as_bytes()).await;
    assert!(answer.lines().next().is_some_and(|l| l.contains(" 413 ")), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("\r\nx-request-id: "),
        "rejections carry the request id too: {answer}"
    );
    assert!(answer.contains(r#""code":"body-too-large""#), "{answer}");

    // A long invalid principal gets a short answer naming it in part.
    let long = "Z".repeat(8 * 1024);
    let r = sys.http.post(format!("{}/v1/auth/challenge", sys.api)).json(&json!({ "principal": long })).send().await;
    let r = r.expect("post");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("text");
    assert!(text.len() < 1024, "{} bytes: {text}", text.len());
    assert!(text.contains("(8192 bytes)"), "{text}");
    let token = sys.sign_in("wallet_2").await;
    let (status, body) = sys.get(&format!("/v1/patients/{long}/records"), &token).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid-principal")));
    assert!(body.to_string().len() < 1024, "{body}");

    // Every answer carries a request id: successes, problems, unknown routes.
    for path in ["/openapi.json", "/v1/me", "/v1/no-such-route"] {
        let r = sys.http.get(format!("{}{path}", sys.api)).header("x-request-id", "mine").send().await.expect("get");
        let id = r.headers().get("x-request-id").map(|v| v.to_str().expect("ascii").to_string());
        assert!(id.as_deref().is_some_and(|i| i.len() == 16 && i != "mine"), "{path}: {id:?}");
    }
}

/// A signed-in provider's payload is read into one buffer and refused the
/// moment it passes the limit — announced (`Content-Length`) or streamed
/// (chunked, no length) — and a refused upload stores nothing; a payload
/// exactly at the limit is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_past_the_limit_are_refused_as_they_stream_and_store_nothing() {
    const LIMIT: usize = 256 * 1024;
    let sys = super::start_with(|c| c.max_record_bytes = LIMIT, None).await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let token = sys.sign_in("wallet_2").await;
    let host = sys.api.trim_start_matches("http://").to_string();
    let path = format!("/v1/patients/{patient}/records?record_type=lab-results");

    // Announced too long: 413 before the body is sent.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    let status = answer_before_body(&sys, &head, &[0u8; 1024]).await;
    assert!(status.contains(" 413 "), "{status}");

    // Streamed without a length, one chunk past the limit: 413 as soon as
    // the limit is passed.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // Exactly the limit in 16 KiB chunks, then one byte more: the node has
    // read everything sent when it refuses, so its close cannot race a
    // client still writing.
    let chunk = 16 * 1024;
    let mut chunked = Vec::new();
    for size in std::iter::repeat_n(chunk, LIMIT / chunk).chain([1]) {
        chunked.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        chunked.extend_from_slice(&vec![7u8; size]);
        chunked.extend_from_slice(b"\r\n");
    }
    let status = answer_before_body(&sys, &head, &chunked).await;
    assert!(status.contains(" 413 "), "{status}");

    // The JSON form is bounded by the decoded payload, not only the body.
    let over = json!({ "record_type": "lab-results", "content": "A".repeat(4 * ((LIMIT + 6) / 3)), "content_encoding": "base64" });
    let r = sys.http.post(format!("{}{path}", sys.api)).bearer_auth(&token).json(&over).send().await.expect("post");
    assert_eq!(r.status(), 413);

    // Nothing of the refused uploads was stored or anchored.
    let (status, list) = sys.get(&format!("/v1/patients/{patient}/records"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    assert_eq!(sys.state.db().pending().expect("pending").len(), 0, "no version was stored");

    // Exactly the limit, streamed without a length: taken.
    let exact = vec![9u8; LIMIT];
    let r = sys
        .http
        .post(format!("{}{path}", sys.api))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(exact)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    assert_eq!(sys.state.db().pending().expect("pending").len(), 1);
}

/// What the OpenAPI document promises, held by the handlers (each row was
/// answered otherwise before: a `limit` clamped instead of refused, a
/// schema-valid body refused, a body of any media type parsed as JSON, a
/// 422 before the 401, a 400 for the node's state, a 503 for the caller's
/// own pending transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handlers_refuse_and_accept_what_the_document_says() {
    use reqwest::Method;

    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let provider = sys.sign_in("wallet_2").await;
    let patient_token = sys.sign_in("wallet_1").await;
    let no_custody = sys.sign_in("wallet_3").await;
    let id = super::branches::create(&sys, &provider, &patient, "lab-results").await;
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");

    let records = format!("/v1/patients/{patient}/records");
    let record = format!("/v1/records/{id}");
    let json = "application/json";
    let lab = |extra: Value| {
        let mut body = json!({ "record_type": "lab-results", "content": { "v": 1 } });
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body.to_string()
    };
    // (method, path, token, content type, body, If-Match, status, code)
    type Row<'a> = (Method, String, Option<&'a str>, Option<&'a str>, String, Option<&'a str>, u16, Option<&'a str>);
    let cases: Vec<Row> = vec![
        (
            Method::GET,
            "/v1/audit/entries?limit=0".into(),
            Some(&provider),
            None,
            String::new(),
            None,
            400,
            Some("invalid-limit"),
        ),
        (
            Method::GET,
            "/v1/audit/entries?limit=1001".into(),
            Some(&provider),
            None,
            String::new(),
            None,
            400,
            Some("invalid-limit"),
        ),
        (
            Method::GET,
            "/v1/audit/entries?limit=9223372036854775808".into(),
            Some(&provider),
            None,
            String::new(),
            None,
            400,
            Some("invalid-limit"),
        ),
        (Method::GET, "/v1/audit/entries?limit=1000".into(), Some(&provider), None, String::new(), None, 200, None),
        // The JSON form uses its body's fields; the binary form's query
        // parameters, sent anyway, must still be valid.
        (
            Method::POST,
            format!("{records}?record_type="),
            Some(&provider),
            Some(json),
            lab(json!({})),
            None,
            400,
            Some("invalid-record-type"),
        ),
        (
            Method::POST,
            format!("{records}?signing=notary"),
            Some(&provider),
            Some(json),
            lab(json!({})),
            None,
            400,
            Some("invalid-signing"),
        ),
        (
            Method::POST,
            format!("{records}?confidentiality=4"),
            Some(&provider),
            Some(json),
            lab(json!({})),
            None,
            400,
            Some("invalid-confidentiality"),
        ),
        (
            Method::GET,
            "/v1/audit/proof/inclusion?index=0&size=1000000".into(),
            None,
            None,
            String::new(),
            None,
            404,
            Some("not-found"),
        ),
        (
            Method::GET,
            "/v1/audit/proof/inclusion?index=1&size=1".into(),
            None,
            None,
            String::new(),
            None,
            400,
            Some("out-of-range"),
        ),
        (
            Method::GET,
            "/v1/audit/proof/consistency?from=1&to=1000000".into(),
            None,
            None,
            String::new(),
            None,
            404,
            Some("not-found"),
        ),
        (
            Method::GET,
            "/v1/audit/proof/consistency?from=2&to=1".into(),
            None,
            None,
            String::new(),
            None,
            400,
            Some("out-of-range"),
        ),
        // A record body is JSON or the raw payload, nothing parsed on a guess.
        (
            Method::POST,
            records.clone(),
            Some(&provider),
            Some("text/plain"),
            lab(json!({})),
            None,
            415,
            Some("unsupported-media-type"),
        ),
        (
            Method::POST,
            records.clone(),
            Some(&provider),
            None,
            lab(json!({})),
            None,
            415,
            Some("unsupported-media-type"),
        ),
        (
            Method::PUT,
            record.clone(),
            Some(&provider),
            Some("text/plain"),
            lab(json!({})),
            Some("\"1\""),
            415,
            Some("unsupported-media-type"),
        ),
        // Schema-valid record bodies: null content, `json` encoding, 2.0.
        (Method::POST, records.clone(), Some(&provider), Some(json), lab(json!({ "content": null })), None, 202, None),
        (
            Method::POST,
            records.clone(),
            Some(&provider),
            Some(json),
            lab(json!({ "content_encoding": "json" })),
            None,
            202,
            None,
        ),
        (
            Method::POST,
            records.clone(),
            Some(&provider),
            Some(json),
            lab(json!({ "confidentiality": 2.0 })),
            None,
            202,
            None,
        ),
        (
            Method::POST,
            records.clone(),
            Some(&provider),
            Some(json),
            lab(json!({ "confidentiality": 2.5 })),
            None,
            400,
            Some("invalid-body"),
        ),
        // An update checks what the document constrains, though the record keeps its own.
        (
            Method::PUT,
            record.clone(),
            Some(&provider),
            Some(json),
            lab(json!({ "record_type": "x-ray" })),
            Some("\"1\""),
            400,
            Some("invalid-record-type"),
        ),
        (
            Method::PUT,
            record.clone(),
            Some(&provider),
            Some(json),
            lab(json!({ "confidentiality": 7 })),
            Some("\"1\""),
            400,
            Some("invalid-confidentiality"),
        ),
        // The node holds no key for wallet_3: not a malformed request.
        (
            Method::POST,
            records.clone(),
            Some(&no_custody),
            Some(json),
            lab(json!({})),
            None,
            403,
            Some("no-custodial-key"),
        ),
        (
            Method::POST,
            format!("{record}/finalize"),
            Some(&no_custody),
            None,
            String::new(),
            None,
            403,
            Some("no-custodial-key"),
        ),
        // Shares: 2.0 uses; a session is checked before the body.
        (
            Method::POST,
            "/v1/share/codes".into(),
            Some(&patient_token),
            Some(json),
            json!({ "data_types": ["lab-results"], "max_uses": 2.0 }).to_string(),
            None,
            201,
            None,
        ),
        (Method::POST, "/v1/share/codes".into(), None, Some(json), "[1]".into(), None, 401, Some("unauthorized")),
        (Method::POST, "/v1/share/codes".into(), None, Some("text/plain"), "x".into(), None, 401, Some("unauthorized")),
        // A null body is no body: the link is unknown, not the body wrong.
        (
            Method::POST,
            format!("/v1/share/links/{}", "A".repeat(43)),
            Some(&provider),
            Some(json),
            "null".into(),
            None,
            404,
            Some("not-found"),
        ),
    ];
    for (method, path, token, content_type, body, if_match, status, code) in cases {
        let mut request = sys.http.request(method.clone(), format!("{}{path}", sys.api)).body(body.clone());
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(c) = content_type {
            request = request.header("content-type", c);
        }
        if let Some(m) = if_match {
            request = request.header("if-match", m);
        }
        let r = request.send().await.expect("send");
        let got = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, code.and(answer["code"].as_str())),
            (status, code),
            "{method} {path} {content_type:?} {body}: {answer}"
        );
    }
}

/// A lifecycle call past the node's limit of pending transactions per
/// sender (25) is the caller's own rate: 429 with `Retry-After`, not the
/// 503 of a node that failed (found by schemathesis finalizing one record
/// over and over between two blocks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_call_past_the_pending_limit_is_429() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let token = sys.sign_in("wallet_2").await;
    let id = super::branches::create(&sys, &token, &patient, "lab-results").await;
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = sys
            .http
            .post(format!("{}/v1/records/{id}/finalize", sys.api))
            .bearer_auth(&token)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"), "429 without Retry-After");
            let body: Value = r.json().await.expect("problem");
            assert_eq!(body["code"], "rate-limited", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 25, "{statuses:?}");
    assert!(statuses[25..].iter().all(|s| *s == 429), "{statuses:?}");
}
