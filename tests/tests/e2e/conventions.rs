//! Two writers racing on one version (exactly one wins), the problem+json
//! shape of axum's own rejections, and the date/height filters of a
//! patient's record list.

use serde_json::{json, Value};

use super::branches::create;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_concurrent_writers_wins_and_every_error_is_a_problem() {
    let sys = super::start().await;
    let (patient, _) = sys.consent_provider("wallet_2").await;
    let token = sys.sign_in("wallet_2").await;
    let id = create(&sys, &token, &patient, "lab-results").await;

    // Two writers who both read version 1.
    let put = |value: u64| {
        sys.http
            .put(format!("{}/v1/records/{id}", sys.api))
            .bearer_auth(&token)
            .header("if-match", "\"1\"")
            .json(&json!({ "record_type": "lab-results", "content": { "value": value } }))
            .send()
    };
    let (a, b) = tokio::join!(put(1), put(2));
    let mut statuses = vec![a.expect("put").status().as_u16(), b.expect("put").status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![202, 409], "exactly one writer wins");

    // axum's own rejections come back as problem+json too.
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            sys.http
                .post(format!("{}/v1/auth/challenge", sys.api))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
        (sys.http.get(format!("{}/v1/records/{id}?version=abc", sys.api)).bearer_auth(&token), 400),
        (sys.http.get(format!("{}/v1/no-such-route", sys.api)), 404),
        (sys.http.delete(format!("{}/v1/records/{id}", sys.api)).bearer_auth(&token), 405),
        (
            sys.http.get(format!("{}/v1/patients/{patient}/records?from_time=yesterday", sys.api)).bearer_auth(&token),
            400,
        ),
    ];
    for (request, expected) in cases {
        let r = request.send().await.expect("send");
        assert_eq!(r.status().as_u16(), expected);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.expect("problem json");
        assert_eq!(body["status"], expected);
        assert!(body["code"].is_string() && body["detail"].is_string(), "{body}");
    }

    // Date and height filters reach the index (once the record is mined).
    sys.mine().await;
    let patient = &patient;
    let list = |query: String| {
        let (sys, token) = (&sys, &token);
        async move {
            let r: Value = sys
                .http
                .get(format!("{}/v1/patients/{patient}/records?{query}", sys.api))
                .bearer_auth(token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            r["items"].as_array().map_or(0, |a| a.len())
        }
    };
    assert_eq!(list("from_time=0".into()).await, 1);
    assert_eq!(list("to_time=1".into()).await, 0);
    assert_eq!(list("from_height=100000".into()).await, 0);
}
