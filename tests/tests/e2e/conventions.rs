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
    // Versions build on what the chain has: none before the creation is
    // mined.
    let early = sys
        .http
        .put(format!("{}/v1/records/{id}", sys.api))
        .bearer_auth(&token)
        .header("if-match", "\"1\"")
        .json(&json!({ "record_type": "lab-results", "content": { "value": 0 } }))
        .send()
        .await
        .expect("put");
    assert_eq!(early.status(), 409);
    let body: Value = early.json().await.expect("json");
    assert_eq!(body["code"], "record-not-anchored", "{body}");
    sys.mine().await;

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

/// A version the chain refuses leaves the record updatable: the next
/// update builds on the chain's version and takes the refused one's slot
/// (before, every later update was sent with a version the chain never
/// had, and aborted with ERR-VERSION-CONFLICT for ever); a version still in
/// flight makes the next update wait; reads serve the anchored version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_version_leaves_the_record_updatable() {
    use medanchor_contracts::types::AccessLevel;
    use medanchor_contracts::DEPLOYER_ADDRESS;
    use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};

    let sys = super::start().await;
    let (patient, provider) = sys.consent_provider("wallet_2").await;
    let token = sys.sign_in("wallet_2").await;
    let id = create(&sys, &token, &patient, "lab-results").await;
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let put = |version: u64, value: u64| {
        sys.http
            .put(format!("{}/v1/records/{id}", sys.api))
            .bearer_auth(&token)
            .header("if-match", format!("\"{version}\""))
            .json(&json!({ "record_type": "lab-results", "content": { "value": value } }))
            .send()
    };

    // The patient revokes the provider's access in the block that mines
    // the update (a higher fee puts it first): the chain refuses version 2.
    let patient_wallet =
        Wallet::connect(sys.key("wallet_1").clone(), RpcClient::new(&sys.rpc).expect("rpc"), DEPLOYER_ADDRESS)
            .await
            .expect("wallet");
    patient_wallet.submit(&ContractCall::revoke_provider_access(&provider), Some(50_000)).await.expect("revoke");
    let r = put(1, 2).await.expect("put");
    assert_eq!(r.status(), 202);
    // Still in flight: the next update waits.
    let r = put(1, 3).await.expect("put");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "version-pending", "{body}");
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    // The patient reads (the provider has no access level now).
    let patient_token = sys.sign_in("wallet_1").await;
    let (_, v2) = sys.get(&format!("/v1/records/{id}?version=2"), &patient_token).await;
    assert_eq!(v2["anchor"]["status"], "failed", "{v2}");
    let (_, current) = sys.get(&format!("/v1/records/{id}"), &patient_token).await;
    assert_eq!((current["version"].as_u64(), &current["content"]), (Some(1), &json!({ "note": "lab-results" })));

    // Access back: the next update is version 2 again, on the chain's 1.
    sys.tx(
        "wallet_1",
        ContractCall::grant_provider_access(&provider, AccessLevel::Write, GrantDuration::UntilRevoked).expect("call"),
    )
    .await;
    let r = put(2, 4).await.expect("put");
    let body: Value = r.json().await.expect("json");
    assert_eq!((body["code"].as_str(), body["current_version"].as_u64()), (Some("version-conflict"), Some(1)));
    let r = put(1, 4).await.expect("put");
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["version"], 2, "{body}");
    sys.mine().await;
    medanchor_api::app::track_once(&sys.state).expect("track");
    let (status, read) = sys.get(&format!("/v1/records/{id}"), &token).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!((read["version"].as_u64(), &read["anchor"]["status"]), (Some(2), &json!("anchored")), "{read}");
    assert_eq!(read["content"], json!({ "value": 4 }));
}

/// Every problem code the service and the API can answer with is in
/// docs/troubleshooting.md, with what it means and what to do: a new code
/// without its entry fails here.
#[test]
fn every_error_code_is_in_the_troubleshooting_guide() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/troubleshooting.md")).expect("docs/troubleshooting.md");
    let mut codes = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for dir in ["service/src", "api/src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
    }
    // The literal after each way a code is given.
    let markers = ["code: \"", "bad(\"", "{ \"", "else { \""];
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source");
        let f = f.display().to_string();
        for line in text.lines().filter(|l| l.contains("code") || l.contains("bad(") || l.contains("=> \"")) {
            // `=> "…"` gives codes only in the error mappings (elsewhere
            // it names contract functions and the like).
            let arms = f.ends_with("error.rs") || f.ends_with("app.rs") || f.ends_with("attachments.rs");
            for m in markers.iter().chain(arms.then_some(&"=> \"")) {
                let mut rest = line;
                while let Some(at) = rest.find(m) {
                    rest = &rest[at + m.len()..];
                    let end = rest.find('"').unwrap_or(0);
                    let code = &rest[..end];
                    let looks_like_code = code.len() > 3
                        && code.contains('-')
                        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                    if looks_like_code && !line.contains("\"type\"") {
                        codes.insert(code.to_string());
                    }
                }
            }
        }
    }
    assert!(codes.len() > 80, "the scan found the codes: {codes:?}");
    let missing: Vec<&String> = codes.iter().filter(|c| !guide.contains(&format!("`{c}`"))).collect();
    assert!(missing.is_empty(), "codes without an entry in docs/troubleshooting.md: {missing:?}");
}
