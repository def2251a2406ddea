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
    let addr = sys.api.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(partial).await.expect("partial body");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string()
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

    // Routes without a payload take 16 KiB at most.
    let big = json!({ "principal": "S".repeat(64 * 1024) });
    let r = sys.http.post(format!("{}/v1/auth/challenge", sys.api)).json(&big).send().await.expect("post");
    assert_eq!(r.status(), 413);
    assert!(r.headers().contains_key("x-request-id"), "rejections carry the request id too");
    let body: Value = r.json().await.expect("problem");
    assert_eq!(body["code"], "body-too-large", "{body}");

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
