//! The HTTP server over real loopback HTTP: the observer endpoints, the
//! query routes' shapes and pagination, and precise 400s and 404s.
//!
//! Expected bodies are JSON *subsets*: every field the table names must
//! match, fields it leaves out are not checked.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessLevel, DataType, RecordType};
use serde_json::{json, Value};

use crate::support::{config, principal, BlockBuilder, Chain, Server, TestIndex};

fn patient() -> Principal {
    principal("http-patient")
}
fn other_patient() -> Principal {
    principal("http-patient-2")
}
fn lab() -> Principal {
    principal("http-lab")
}
fn clinic() -> Principal {
    principal("http-clinic")
}
fn stranger() -> Principal {
    principal("http-stranger")
}

/// The records the chain creates, in creation order.
struct Records {
    /// Lab results by the lab (A2): updated twice and finalized.
    r1: [u8; 16],
    /// Vitals by the lab (A2).
    r2: [u8; 16],
    /// Lab results by the clinic (A3).
    r3: [u8; 16],
    /// Lab results by the lab (A4).
    r4: [u8; 16],
    /// Imaging by the lab (A4).
    r5: [u8; 16],
}

/// G registers both providers (the lab is a responder); A1 registers two
/// patients; A2..A4 grant, revoke, create and update; A5 is empty.
fn chain() -> (Chain, Records) {
    let mut chain = Chain::with_genesis("G", |b| {
        b.register_provider(&lab());
        b.register_provider(&clinic());
        b.responder(&lab(), true);
    });
    chain.add("A1", "G", |b| {
        b.register_patient(&patient());
        b.register_patient(&other_patient());
    });
    let mut ids = Vec::new();
    chain.add("A2", "A1", |b| {
        b.grant(&patient(), &lab(), DataType::LabResults, None);
        b.grant(&patient(), &clinic(), DataType::AllStandard, Some(150));
        ids.push(b.create_record(&patient(), &lab(), RecordType::LabResults));
        ids.push(b.create_record(&patient(), &lab(), RecordType::Vitals));
    });
    let r1 = ids[0];
    chain.add("A3", "A2", |b| {
        b.revoke(&patient(), &clinic(), DataType::AllStandard);
        b.update_record(&r1, &lab());
        ids.push(b.create_record(&patient(), &clinic(), RecordType::LabResults));
        b.access(&patient(), &lab(), AccessLevel::Write, None);
        b.grant(&other_patient(), &lab(), DataType::BasicInfo, None);
    });
    chain.add("A4", "A3", |b: &mut BlockBuilder| {
        b.update_record(&r1, &lab());
        b.finalize_record(&r1, &lab());
        ids.push(b.create_record(&patient(), &lab(), RecordType::LabResults));
        ids.push(b.create_record(&patient(), &lab(), RecordType::Imaging));
        b.emergency(&patient(), &lab(), 104 + 432);
    });
    chain.add("A5", "A4", |_| {});
    let records = Records { r1: ids[0], r2: ids[1], r3: ids[2], r4: ids[3], r5: ids[4] };
    (chain, records)
}

/// Sorts consent views as the index scans them.
fn by_provider_key(mut views: Vec<Value>) -> Value {
    views.sort_by_key(|v| {
        let provider: Principal = v["provider"].as_str().expect("provider").parse().expect("principal");
        medanchor_indexer::schema::principal_key(&provider)
    });
    Value::Array(views)
}

fn h(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Whether `got` has every field of `want` (recursively; arrays must have
/// the same length and match element by element).
fn matches(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, v)| g.get(k).is_some_and(|gv| matches(gv, v))),
        (Value::Array(g), Value::Array(w)) => g.len() == w.len() && g.iter().zip(w).all(|(a, b)| matches(a, b)),
        _ => got == want,
    }
}

/// GETs each path and checks its status and body; the only caller of the
/// query routes in this module besides pagination.
async fn check(server: &Server, table: &[(String, u16, Value)]) {
    for (path, status, want) in table {
        let (got_status, got) = server.get(path).await;
        assert_eq!(got_status, *status, "GET {path}: {got}");
        assert!(matches(&got, want), "GET {path}:\n got  {got:#}\n want {want:#}");
    }
}

/// Follows `next_cursor` from `path` (which must already carry a query
/// string); returns every page's items.
async fn walk(server: &Server, path: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = server.get(&url).await;
        assert_eq!(status, 200, "GET {url}: {page}");
        pages.push(page["items"].as_array().expect("items").clone());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages.len() < 100, "pagination of {path} does not end");
    }
    pages
}

/// A server over an index of [`chain`], delivered through `POST /new_block`.
async fn served() -> (TestIndex, Server, Records) {
    let (chain, records) = chain();
    let index = TestIndex::new(config(10_000));
    let server = Server::start(index.indexer.clone()).await;
    // A4 before A3: buffered, then connected.
    let deliveries = [
        ("G", json!({"result": "applied", "height": 0, "reorg_depth": 0, "connected": 0})),
        ("A1", json!({"result": "applied", "height": 1, "reorg_depth": 0, "connected": 0})),
        ("A2", json!({"result": "applied", "height": 2, "reorg_depth": 0, "connected": 0})),
        ("A4", json!({"result": "buffered"})),
        ("A3", json!({"result": "applied", "height": 3, "reorg_depth": 0, "connected": 1})),
        ("A3", json!({"result": "duplicate"})),
        ("A5", json!({"result": "applied", "height": 5, "reorg_depth": 0, "connected": 0})),
    ];
    for (label, want) in deliveries {
        let (status, got) = server.post("/new_block", chain.block(label).to_bytes()).await;
        assert_eq!((status, got), (200, want), "POST /new_block {label}");
    }
    (index, server, records)
}

#[tokio::test]
async fn new_block_answers_200_with_the_outcome_and_400_for_malformed_bodies() {
    let (_index, server, _) = served().await;
    let (chain, _) = chain();
    let valid: Value = chain.block("A5").to_json();
    let mut bad_hash = valid.clone();
    bad_hash["index_block_hash"] = json!("0x1234");
    let mut bad_parent = valid.clone();
    bad_parent["parent_index_block_hash"] = json!(format!("0x{}", "zz".repeat(32)));
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove("burn_block_height");
    let mut bad_txid = valid.clone();
    bad_txid["transactions"] = json!([{ "txid": "nope", "tx_index": 0, "status": "success" }]);
    let table: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/new_block", b"{not json".to_vec(), "bad payload: /new_block"),
        ("/new_block", b"".to_vec(), "bad payload: /new_block"),
        ("/new_block", b"[]".to_vec(), "bad payload: /new_block"),
        ("/new_block", serde_json::to_vec(&missing).expect("json"), "burn_block_height"),
        ("/new_block", serde_json::to_vec(&bad_hash).expect("json"), "index_block_hash must be 32 bytes of hex"),
        (
            "/new_block",
            serde_json::to_vec(&bad_parent).expect("json"),
            "parent_index_block_hash must be 32 bytes of hex",
        ),
        ("/new_block", serde_json::to_vec(&bad_txid).expect("json"), "txid must be 32 bytes of hex"),
        ("/new_burn_block", b"{\"burn_block_height\": 5}".to_vec(), "bad payload: /new_burn_block"),
        ("/new_burn_block", b"{\"burn_block_hash\": \"0x00\", \"burn_block_height\": 5}".to_vec(), "burn_block_hash"),
    ];
    for (path, body, message) in table {
        let (status, got) = server.post(path, body.clone()).await;
        assert_eq!(status, 400, "POST {path} {}: {got}", String::from_utf8_lossy(&body));
        let error = got["error"].as_str().unwrap_or_else(|| panic!("POST {path}: no JSON error in {got}"));
        assert!(error.contains(message), "POST {path}: {error:?} does not mention {message:?}");
    }
    // Nothing of that reached the index.
    let (_, status) = server.get("/v1/status").await;
    assert_eq!((status["tip_height"].clone(), status["buffered_blocks"].clone()), (json!(5), json!(0)));
}

#[tokio::test]
async fn query_routes_answer_with_the_right_shapes() {
    let (_index, server, r) = served().await;
    let (chain, _) = chain();
    let (p, p2, lab, clinic) = (patient(), other_patient(), lab(), clinic());
    let r1_v2 = BlockBuilder::data_hash(&r.r1, 2);
    let table: Vec<(String, u16, Value)> = vec![
        (
            "/v1/status".into(),
            200,
            json!({
                "tip_height": 5,
                "tip_index_block_hash": h(&chain.id("A5")),
                "tip_burn_block_height": 105,
                "tip_time": chain.block("A5").time,
                "last_burn_block_height": null,
                "buffered_blocks": 0,
            }),
        ),
        (
            format!("/v1/patients/{p}"),
            200,
            json!({
                "patient": p.to_string(),
                "emergency_mental_health": false,
                "deceased": false,
                "registered_at": 101,
                "updated_at": 104,
                "history_len": 5,
            }),
        ),
        (
            format!("/v1/patients/{p}/consents"),
            200,
            // In key order: by the provider's principal key.
            by_provider_key(vec![
                json!({ "provider": lab.to_string(), "data_type": "lab-results", "data_type_code": 3, "state": "active", "seq": 1, "granted_at": 102, "expires_at": null, "revoked_at": null, "block_height": 2 }),
                json!({ "provider": clinic.to_string(), "data_type": "all-standard", "data_type_code": 0, "state": "revoked", "seq": 2, "expires_at": 150, "revoked_at": 103 }),
            ]),
        ),
        (
            format!("/v1/consent/check?patient={p}&provider={lab}&data_type=lab-results"),
            200,
            json!({ "allowed": true, "method": "consent", "error": null, "burn_block_height": 105 }),
        ),
        (
            format!("/v1/consent/check?patient={p}&provider={clinic}&data_type=basic-info"),
            200,
            json!({ "allowed": false, "method": null, "error": { "code": 109, "name": "ERR-CONSENT-REVOKED" } }),
        ),
        (
            // Codes are accepted for data types too; mental health needs
            // the patient's preference under an override.
            format!("/v1/consent/check?patient={p}&provider={lab}&data_type=5"),
            200,
            json!({ "allowed": false, "error": { "code": 116, "name": "ERR-ENHANCED-PROTECTION" } }),
        ),
        (
            format!("/v1/consent/check?patient={p}&provider={lab}&data_type=all-standard"),
            200,
            json!({ "allowed": false, "error": { "code": 104 } }),
        ),
        (
            format!("/v1/records/{}", h(&r.r1)),
            200,
            json!({
                "record_id": h(&r.r1),
                "patient": p.to_string(),
                "record_type": "lab-results",
                "data_type": "lab-results",
                "data_hash": h(&BlockBuilder::data_hash(&r.r1, 3)),
                "created_by": lab.to_string(),
                "created_at": 102,
                "created_height": 2,
                "version": 3,
                "updated_at": 104,
                "status": "active",
                "finalized": true,
            }),
        ),
        // Bare hex works as well as 0x hex.
        (
            format!("/v1/records/{}", hex::encode(r.r2)),
            200,
            json!({ "record_type": "vitals", "version": 1, "finalized": false }),
        ),
        (
            format!("/v1/records/{}/versions", h(&r.r1)),
            200,
            json!([
                { "version": 1, "change": "created", "data_hash": h(&BlockBuilder::data_hash(&r.r1, 1)), "block_height": 2, "index_block_hash": h(&chain.id("A2")) },
                { "version": 2, "change": "updated", "data_hash": h(&r1_v2), "block_height": 3, "author": lab.to_string() },
                { "version": 3, "change": "updated", "block_height": 4 },
            ]),
        ),
        (
            format!("/v1/anchors/{}", h(&r1_v2)),
            200,
            json!([{ "data_hash": h(&r1_v2), "record_id": h(&r.r1), "version": 2, "anchored_by": lab.to_string(), "at": 103, "block_height": 3, "index_block_hash": h(&chain.id("A3")) }]),
        ),
        (
            format!("/v1/providers/{lab}"),
            200,
            json!({ "provider": lab.to_string(), "active": true, "registered_at": 100, "emergency_responder": true, "anchor_operator": false }),
        ),
        (format!("/v1/records/{}", h(&r.r3)), 200, json!({ "created_by": clinic.to_string(), "created_height": 3 })),
        (format!("/v1/providers/{clinic}"), 200, json!({ "emergency_responder": false })),
        (
            format!("/v1/patients/{p}/access/{lab}"),
            200,
            json!({ "provider": lab.to_string(), "level": "write", "granted_at": 103, "expires_at": null, "active": true }),
        ),
        (
            format!("/v1/patients/{p}/overrides/{lab}"),
            200,
            json!({ "provider": lab.to_string(), "started_at": 104, "expires_at": 104 + 432, "seq": 4, "active": true }),
        ),
        (
            format!("/v1/patients/{p2}/history"),
            200,
            json!({ "items": [{ "seq": 0, "action": "registered" }, { "seq": 1, "action": "granted", "data_type": "basic-info" }], "next_cursor": null }),
        ),
    ];
    check(&server, &table).await;
}

#[tokio::test]
async fn paginated_routes_walk_every_page() {
    let (_index, server, r) = served().await;
    let (p, lab, clinic) = (patient(), lab(), clinic());

    // History: 5 entries in pages of 2.
    let pages = walk(&server, &format!("/v1/patients/{p}/history?limit=2")).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let actions: Vec<Value> = pages.concat().iter().map(|e| json!([e["seq"], e["action"]])).collect();
    assert_eq!(
        actions,
        [
            json!([0, "registered"]),
            json!([1, "granted"]),
            json!([2, "granted"]),
            json!([3, "revoked"]),
            json!([4, "emergency-started"])
        ]
    );
    // A limit that divides the list exactly ends without an empty page.
    let sizes: Vec<usize> =
        walk(&server, &format!("/v1/patients/{p}/history?limit=5")).await.iter().map(Vec::len).collect();
    assert_eq!(sizes, [5]);

    // Records with filters; (query, expected ids in order, expected page sizes).
    let ids = |list: &[[u8; 16]]| list.iter().map(|id| json!(h(id))).collect::<Vec<_>>();
    let mut by_height_12 = vec![r.r1, r.r2];
    by_height_12.sort();
    let mut by_height_4 = vec![r.r4, r.r5];
    by_height_4.sort();
    let all: Vec<[u8; 16]> = [by_height_12.clone(), vec![r.r3], by_height_4.clone()].concat();
    let table: Vec<(String, Vec<[u8; 16]>, Vec<usize>)> = vec![
        (format!("/v1/patients/{p}/records?limit=2"), all.clone(), vec![2, 2, 1]),
        (format!("/v1/patients/{p}/records?limit=500"), all.clone(), vec![5]),
        (format!("/v1/patients/{p}/records?type=lab-results&provider={lab}&limit=1"), vec![r.r1, r.r4], vec![1, 1]),
        (format!("/v1/patients/{p}/records?type=lab-results&limit=2"), vec![r.r1, r.r3, r.r4], vec![2, 1]),
        (format!("/v1/patients/{p}/records?provider={clinic}&limit=1"), vec![r.r3], vec![1]),
        (format!("/v1/patients/{p}/records?type=imaging&limit=50"), vec![r.r5], vec![1]),
        (format!("/v1/patients/{p}/records?type=genetic-data&limit=3"), vec![], vec![0]),
        (format!("/v1/patients/{p}/records?from_height=3&to_height=3&limit=3"), vec![r.r3], vec![1]),
        (format!("/v1/patients/{p}/records?from_height=4&limit=1"), by_height_4, vec![1, 1]),
    ];
    for (path, want, sizes) in table {
        let pages = walk(&server, &path).await;
        let got: Vec<Value> = pages.concat().iter().map(|rec| rec["record_id"].clone()).collect();
        assert_eq!(got, ids(&want), "{path}");
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), sizes, "{path}");
    }

    // The lab's activity: 2 creations (A2), an update (A3), an update, a
    // finalization, 2 creations and an override (A4), in chain order.
    let pages = walk(&server, &format!("/v1/providers/{lab}/activity?limit=3")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    let events: Vec<Value> = pages.concat().iter().map(|a| json!([a["event"], a["block_height"]])).collect();
    let want = [
        ("record-created", 2),
        ("record-created", 2),
        ("record-updated", 3),
        ("record-updated", 4),
        ("record-finalized", 4),
        ("record-created", 4),
        ("record-created", 4),
        ("emergency-override-started", 4),
    ];
    assert_eq!(events, want.iter().map(|(e, h)| json!([e, h])).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_input_gets_precise_400s_and_unknown_ids_404() {
    let (_index, server, _) = served().await;
    let (p, p2, lab, q) = (patient(), other_patient(), lab(), stranger());
    // Cursors issued by other queries.
    let history_cursor = server.get(&format!("/v1/patients/{p}/history?limit=1")).await.1["next_cursor"]
        .as_str()
        .expect("history cursor")
        .to_string();
    let records_cursor = server.get(&format!("/v1/patients/{p}/records?limit=1")).await.1["next_cursor"]
        .as_str()
        .expect("records cursor")
        .to_string();
    // The patient is the actor of their own consent events.
    let activity_cursor = server.get(&format!("/v1/providers/{p}/activity?limit=1")).await.1["next_cursor"]
        .as_str()
        .expect("activity cursor")
        .to_string();

    let table: Vec<(String, u16, &str)> = vec![
        ("/v1/patients/not-a-principal".into(), 400, "patient \"not-a-principal\" is not a Stacks principal"),
        ("/v1/patients/SP000/consents".into(), 400, "is not a Stacks principal"),
        (format!("/v1/patients/{p}x/history"), 400, "is not a Stacks principal"),
        ("/v1/providers/ST1/activity".into(), 400, "is not a Stacks principal"),
        (format!("/v1/consent/check?patient=nobody&provider={lab}&data_type=3"), 400, "patient \"nobody\" is not"),
        (format!("/v1/consent/check?patient={p}&provider=nobody&data_type=3"), 400, "provider \"nobody\" is not"),
        (
            format!("/v1/consent/check?patient={p}&provider={lab}&data_type=dental"),
            400,
            "data_type \"dental\" is not one of",
        ),
        (format!("/v1/consent/check?patient={p}&provider={lab}&data_type=9"), 400, "data_type \"9\" is not one of"),
        (format!("/v1/consent/check?patient={p}&provider={lab}"), 400, "query parameter data_type is required"),
        (format!("/v1/consent/check?provider={lab}&data_type=3"), 400, "query parameter patient is required"),
        ("/v1/records/zz".into(), 400, "record id must be 16 bytes of hex"),
        (format!("/v1/records/0x{}", "ab".repeat(15)), 400, "record id must be 16 bytes of hex"),
        ("/v1/records/0xnothex/versions".into(), 400, "record id must be 16 bytes of hex"),
        ("/v1/anchors/0x1234".into(), 400, "data hash must be 32 bytes of hex"),
        ("/v1/batches/xyz".into(), 400, "root must be 32 bytes of hex"),
        ("/v1/txs/0x".into(), 400, "txid must be 32 bytes of hex"),
        (format!("/v1/patients/{p}/history?limit=0"), 400, "limit must be at least 1"),
        (format!("/v1/patients/{p}/history?limit=1000"), 400, "limit must be at most 500"),
        (format!("/v1/patients/{p}/records?limit=0"), 400, "limit must be at least 1"),
        (format!("/v1/providers/{lab}/activity?limit=1000"), 400, "limit must be at most 500"),
        (format!("/v1/patients/{p}/history?limit=-1"), 400, "limit must be a non-negative integer"),
        (format!("/v1/patients/{p}/records?from_height=soon"), 400, "from_height must be a non-negative integer"),
        (format!("/v1/patients/{p}/records?type=x-ray"), 400, "type \"x-ray\" is not a record type"),
        (format!("/v1/patients/{p}/records?provider=nobody"), 400, "provider \"nobody\" is not"),
        (format!("/v1/patients/{p}/history?cursor=zz"), 400, "cursor is not one this index issued"),
        (format!("/v1/patients/{p2}/history?cursor={history_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/patients/{p}/records?cursor={history_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/providers/{p}/activity?cursor={history_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/patients/{p}/history?cursor={records_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/providers/{p}/activity?cursor={records_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/patients/{p}/history?cursor={activity_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/patients/{p}/records?cursor={activity_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/providers/{lab}/activity?cursor={activity_cursor}"), 400, "cursor belongs to another query"),
        (format!("/v1/patients/{q}"), 404, "patient not found"),
        (format!("/v1/providers/{q}"), 404, "provider not found"),
        (format!("/v1/records/0x{}", "00".repeat(16)), 404, "record not found"),
        (format!("/v1/records/0x{}/versions", "00".repeat(16)), 404, "record not found"),
        (format!("/v1/anchors/0x{}", "00".repeat(32)), 404, "anchor not found"),
        (format!("/v1/batches/0x{}", "00".repeat(32)), 404, "batch not found"),
        (format!("/v1/txs/0x{}", "00".repeat(32)), 404, "transaction not found"),
        (format!("/v1/patients/{p}/overrides/{q}"), 404, "emergency override not found"),
        (format!("/v1/patients/{p2}/access/{lab}"), 404, "provider access not found"),
    ];
    for (path, status, message) in table {
        let (got_status, got) = server.get(&path).await;
        assert_eq!(got_status, status, "GET {path}: {got}");
        let error = got["error"].as_str().unwrap_or_else(|| panic!("GET {path}: no JSON error in {got}"));
        assert!(error.contains(message), "GET {path}: {error:?} does not mention {message:?}");
    }
    // The cursors themselves work where they were issued.
    let (status, _) = server.get(&format!("/v1/patients/{p}/history?cursor={history_cursor}")).await;
    assert_eq!(status, 200);
}

/// The observer endpoints and the query routes never share a port: a
/// query client cannot post blocks, and the node's endpoint answers no
/// queries.
#[tokio::test]
async fn the_observer_and_query_ports_serve_only_their_own_routes() {
    let (_index, server, _) = served().await;
    let (chain, _) = chain();
    let observer_paths = [
        "/new_block",
        "/new_burn_block",
        "/new_mempool_tx",
        "/drop_mempool_tx",
        "/new_microblocks",
        "/attachments/new",
    ];
    for path in observer_paths {
        let (status, got) = server.post_to(&server.query, path, chain.block("A5").to_bytes()).await;
        assert!(status == 404 || status == 405, "POST {path} on the query port: {status} {got}");
        let (status, _) = server.post_to(&server.observer, path, b"{}".to_vec()).await;
        assert!(status == 200 || status == 400, "POST {path} on the observer port: {status}");
    }
    let p = patient();
    for path in ["/v1/status".to_string(), format!("/v1/patients/{p}"), format!("/v1/patients/{p}/consents")] {
        let (status, got) = server.get_from(&server.observer, &path).await;
        assert!(status == 404 || status == 405, "GET {path} on the observer port: {status} {got}");
        let (status, _) = server.get_from(&server.query, &path).await;
        assert_eq!(status, 200, "GET {path} on the query port");
    }
}

#[test]
fn the_observer_may_listen_on_loopback_and_private_networks_only() {
    let table = [
        ("127.0.0.1", true),
        ("127.8.9.10", true),
        ("::1", true),
        ("10.0.0.5", true),
        ("172.16.0.1", true),
        ("172.31.255.254", true),
        ("192.168.1.20", true),
        ("fd12:3456::1", true),
        ("::ffff:10.1.2.3", true),
        ("::ffff:127.0.0.1", true),
        ("0.0.0.0", false),
        ("::", false),
        ("172.32.0.1", false),
        ("100.64.0.1", false),
        ("169.254.169.254", false),
        ("8.8.8.8", false),
        ("fe80::1", false),
        ("2001:db8::1", false),
        ("::ffff:8.8.8.8", false),
    ];
    for (ip, allowed) in table {
        let addr: std::net::IpAddr = ip.parse().expect("ip");
        assert_eq!(medanchor_indexer::server::observer_bind_allowed(addr), allowed, "{ip}");
    }
}
