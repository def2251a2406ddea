//! The node's HTTP interface: stacks-node's RPC (`/v2/…`), the two Hiro
//! API routes wallets poll (`/extended/v1/…`), and devnet controls
//! (`/devnet/…`). Shapes follow stacks-node so `@stacks/transactions` and
//! other clients work unchanged.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::vm::types::{PrincipalData, QualifiedContractIdentifier};
use clarity_repl::clarity::vm::Value;
use serde::Deserialize;
use serde_json::json;

use crate::chain::TxStatus;
use crate::node::Node;

/// A transaction is at most 2 MiB on Stacks; leave room for JSON hex.
const MAX_BODY: usize = 5 * 1024 * 1024;

/// The routes.
pub fn router(node: Node) -> Router {
    Router::new()
        .route("/v2/info", get(info))
        .route("/v2/accounts/{principal}", get(account))
        .route("/v2/transactions", post(submit))
        .route("/v2/contracts/call-read/{addr}/{name}/{function}", post(call_read))
        .route("/v2/map_entry/{addr}/{name}/{map}", post(map_entry))
        .route("/v2/data_var/{addr}/{name}/{var}", get(data_var))
        .route("/v2/contracts/interface/{addr}/{name}", get(interface))
        .route("/v2/contracts/source/{addr}/{name}", get(source))
        .route("/v2/fees/transfer", get(fee_rate))
        .route("/v2/fees/transaction", post(fee_estimate))
        .route("/extended/v1/tx/{txid}", get(tx_status))
        .route("/extended/v1/address/{addr}/nonces", get(nonces))
        .route("/extended/v1/block/by_height/{height}", get(block_by_height))
        .route("/devnet/mine", post(mine))
        .route("/devnet/advance-burn", post(advance_burn))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(node)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "rpc storage failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "the node's database failed")
}

/// A contract id from path segments; the error is the 400 to send back
/// (boxed: a response is large).
fn contract_id(addr: &str, name: &str) -> Result<QualifiedContractIdentifier, Box<Response>> {
    let issuer = PrincipalData::parse_standard_principal(addr)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, format!("{addr:?} is not a Stacks address"))))?;
    let name = name
        .to_string()
        .try_into()
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, format!("{name:?} is not a contract name"))))?;
    Ok(QualifiedContractIdentifier::new(issuer, name))
}

fn value_hex(v: &Value) -> String {
    let mut bytes = Vec::new();
    v.consensus_serialize(&mut bytes).expect("writing to a Vec cannot fail");
    format!("0x{}", hex::encode(bytes))
}

fn parse_value(hex_str: &str) -> Result<Value, String> {
    let bytes = hex::decode(hex_str.trim_start_matches("0x")).map_err(|_| format!("{hex_str:?} is not hex"))?;
    Value::consensus_deserialize(&mut bytes.as_slice()).map_err(|e| format!("not a Clarity value: {e}"))
}

async fn info(State(node): State<Node>) -> Response {
    let state = node.lock();
    let tip = state.chain.tip();
    let tip_hash = hex::encode(tip.block_hash);
    let ch = hex::encode(tip.consensus_hash);
    let genesis = state.chain.block(0).ok().flatten().map(|b| hex::encode(b.header.index_block_hash));
    Json(json!({
        "peer_version": 0xfacade01u32,
        "pox_consensus": ch,
        "burn_block_height": tip.burn_block_height,
        "stable_pox_consensus": ch,
        "stable_burn_block_height": tip.burn_block_height,
        "server_version": format!("medanchor-devnet/{} (Clarity 2, epoch 2.4)", env!("CARGO_PKG_VERSION")),
        "network_id": state.chain.config().chain_id,
        "parent_network_id": 3_669_344_250u32,
        "stacks_tip_height": tip.height,
        "stacks_tip": tip_hash,
        "stacks_tip_consensus_hash": ch,
        "index_block_hash": hex::encode(tip.index_block_hash),
        "genesis_chainstate_hash": genesis,
        "unanchored_tip": null,
        "unanchored_seq": null,
        "tenure_height": tip.height,
        "exit_at_block_height": null,
        "is_fully_synced": true,
        "node_public_key": null,
        "node_public_key_hash": null,
        "mempool_size": state.mempool.len(),
    }))
    .into_response()
}

async fn account(State(node): State<Node>, Path(principal): Path<String>) -> Response {
    let principal = match PrincipalData::parse(&principal) {
        Ok(p) => p,
        Err(_) => return error(StatusCode::BAD_REQUEST, format!("{principal:?} is not a principal")),
    };
    let state = node.lock();
    match state.chain.account(&principal) {
        Ok((balance, nonce)) => Json(json!({
            "balance": format!("0x{balance:032x}"),
            "locked": format!("0x{:032x}", 0),
            "unlock_height": 0,
            "nonce": nonce,
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct TxJson {
    tx: String,
}

async fn submit(State(node): State<Node>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let raw = if is_json {
        match serde_json::from_slice::<TxJson>(&body)
            .map_err(|e| e.to_string())
            .and_then(|t| hex::decode(t.tx.trim_start_matches("0x")).map_err(|e| e.to_string()))
        {
            Ok(raw) => raw,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": "transaction rejected", "reason": "Deserialization",
                        "reason_data": { "message": format!("body must be {{\"tx\": \"<hex>\"}}: {e}") }, "txid": null })),
                )
                    .into_response()
            }
        }
    } else {
        body.to_vec()
    };
    let txid = crate::chain::Candidate::decode(&raw).ok().map(|c| hex::encode(c.txid()));
    let node2 = node.clone();
    let result = tokio::task::spawn_blocking(move || node2.submit(&raw)).await;
    match result {
        Ok(Ok(txid)) => Json(json!(hex::encode(txid))).into_response(),
        Ok(Err(rejection)) => {
            let mut data = rejection.data.clone().unwrap_or_else(|| json!({}));
            data["message"] = json!(rejection.detail);
            (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "transaction rejected",
                    "reason": rejection.reason,
                    "reason_data": data,
                    "txid": txid,
                })),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct CallRead {
    sender: String,
    arguments: Vec<String>,
}

async fn call_read(
    State(node): State<Node>,
    Path((addr, name, function)): Path<(String, String, String)>,
    body: Result<Json<CallRead>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{sender, arguments}}: {e}")),
    };
    let id = match contract_id(&addr, &name) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let sender = match PrincipalData::parse(&body.sender) {
        Ok(p) => p,
        Err(_) => return error(StatusCode::BAD_REQUEST, format!("sender {:?} is not a principal", body.sender)),
    };
    let args: Result<Vec<Value>, String> = body.arguments.iter().map(|a| parse_value(a)).collect();
    let args = match args {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let result =
        tokio::task::spawn_blocking(move || node.lock().chain.call_read_only(&sender, &id, &function, &args)).await;
    match result {
        Ok(Ok(Ok(v))) => Json(json!({ "okay": true, "result": value_hex(&v) })).into_response(),
        Ok(Ok(Err(cause))) => Json(json!({ "okay": false, "cause": cause })).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn map_entry(
    State(node): State<Node>,
    Path((addr, name, map)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let id = match contract_id(&addr, &name) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let key_hex: String = match serde_json::from_slice(&body) {
        Ok(k) => k,
        Err(_) => return error(StatusCode::BAD_REQUEST, "body must be a JSON string holding the key's hex"),
    };
    let key = match parse_value(&key_hex) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match node.lock().chain.map_entry(&id, &map, &key) {
        Ok(Some(v)) => Json(json!({ "data": value_hex(&v) })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no map {map} in {id} (or the key does not fit it)")),
        Err(e) => internal(e),
    }
}

async fn data_var(State(node): State<Node>, Path((addr, name, var)): Path<(String, String, String)>) -> Response {
    let id = match contract_id(&addr, &name) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match node.lock().chain.data_var(&id, &var) {
        Ok(Some(v)) => Json(json!({ "data": value_hex(&v) })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no data var {var} in {id}")),
        Err(e) => internal(e),
    }
}

async fn interface(State(node): State<Node>, Path((addr, name)): Path<(String, String)>) -> Response {
    let id = match contract_id(&addr, &name) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match node.lock().chain.contract_analysis(&id) {
        Ok(Some(analysis)) => {
            let iface =
                clarity_repl::clarity::vm::analysis::contract_interface_builder::build_contract_interface(&analysis);
            Json(serde_json::to_value(iface).unwrap_or(serde_json::Value::Null)).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no contract {id}")),
        Err(e) => internal(e),
    }
}

async fn source(State(node): State<Node>, Path((addr, name)): Path<(String, String)>) -> Response {
    let id = match contract_id(&addr, &name) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let state = node.lock();
    match (state.chain.contract_source(&id), state.chain.contract_height(&id)) {
        (Ok(Some(src)), Ok(height)) => {
            Json(json!({ "source": src, "publish_height": height.unwrap_or(0), "proof": "" })).into_response()
        }
        (Ok(None), _) => error(StatusCode::NOT_FOUND, format!("no contract {id}")),
        (Err(e), _) | (_, Err(e)) => internal(e),
    }
}

async fn fee_rate(State(node): State<Node>) -> Response {
    Json(json!(node.lock().chain.config().min_fee_rate)).into_response()
}

#[derive(Deserialize)]
struct FeeRequest {
    transaction_payload: String,
    estimated_len: Option<u64>,
}

async fn fee_estimate(
    State(node): State<Node>,
    body: Result<Json<FeeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("body must be {{transaction_payload, estimated_len}}: {e}"))
        }
    };
    let payload_len = match hex::decode(body.transaction_payload.trim_start_matches("0x")) {
        Ok(b) => b.len() as u64,
        Err(_) => return error(StatusCode::BAD_REQUEST, "transaction_payload is not hex"),
    };
    // A signed single-sig transaction is the payload plus ~180 bytes of
    // header and authorization.
    let len = body.estimated_len.unwrap_or(0).max(payload_len + 180);
    let rate = node.lock().chain.config().min_fee_rate.max(1);
    let estimations: Vec<_> =
        [1u64, 2, 3].iter().map(|m| json!({ "fee_rate": (rate * m) as f64, "fee": len * rate * m })).collect();
    Json(json!({
        "estimated_cost": { "read_count": 0, "read_length": 0, "runtime": 0, "write_count": 0, "write_length": 0 },
        "estimated_cost_scalar": len,
        "cost_scalar_change_by_byte": 0.0,
        "estimations": estimations,
    }))
    .into_response()
}

async fn tx_status(State(node): State<Node>, Path(txid): Path<String>) -> Response {
    let bytes = match hex::decode(txid.trim_start_matches("0x")).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(b) => b,
        None => return error(StatusCode::BAD_REQUEST, format!("{txid:?} is not a 32-byte hex txid")),
    };
    let state = node.lock();
    let location = match state.chain.tx_location(&bytes) {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let tx_id = format!("0x{}", hex::encode(bytes));
    match location {
        Some((height, index)) => {
            let block = match state.chain.block(height) {
                Ok(Some(b)) => b,
                Ok(None) => return internal("indexed block missing"),
                Err(e) => return internal(e),
            };
            let Some(r) = block.receipts.get(index as usize) else { return internal("indexed receipt missing") };
            let repr = hex::decode(&r.raw_result[2..])
                .ok()
                .and_then(|b| Value::consensus_deserialize(&mut b.as_slice()).ok())
                .map(|v| v.to_string())
                .unwrap_or_default();
            Json(json!({
                "tx_id": tx_id,
                "tx_status": r.status.as_str(),
                "tx_result": { "hex": r.raw_result, "repr": repr },
                "block_height": height,
                "block_hash": format!("0x{}", hex::encode(block.header.block_hash)),
                "index_block_hash": format!("0x{}", hex::encode(block.header.index_block_hash)),
                "burn_block_height": block.header.burn_block_height,
                "tx_index": index,
                "sender_address": r.sender,
                "nonce": r.nonce,
                "fee_rate": r.fee.to_string(),
                "is_unanchored": false,
                "canonical": true,
                "vm_error": r.vm_error,
                "event_count": r.events.len(),
                "success": r.status == TxStatus::Success,
            }))
            .into_response()
        }
        None if state.mempool.contains(&bytes) => {
            Json(json!({ "tx_id": tx_id, "tx_status": "pending" })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("could not find transaction by ID {tx_id}")),
    }
}

async fn nonces(State(node): State<Node>, Path(addr): Path<String>) -> Response {
    let principal = match PrincipalData::parse(&addr) {
        Ok(p) => p,
        Err(_) => return error(StatusCode::BAD_REQUEST, format!("{addr:?} is not a principal")),
    };
    let state = node.lock();
    let next = match state.chain.account(&principal) {
        Ok((_, n)) => n,
        Err(e) => return internal(e),
    };
    let last_mempool = state.mempool.last_nonce(&principal.to_string());
    Json(json!({
        "last_mempool_tx_nonce": last_mempool,
        "last_executed_tx_nonce": next.checked_sub(1),
        "possible_next_nonce": last_mempool.map_or(next, |n| (n + 1).max(next)),
        "detected_missing_nonces": [],
        "detected_mempool_nonces": [],
    }))
    .into_response()
}

async fn block_by_height(State(node): State<Node>, Path(height): Path<u64>) -> Response {
    match node.lock().chain.block(height) {
        Ok(Some(b)) => Json(json!({
            "height": b.header.height,
            "hash": format!("0x{}", hex::encode(b.header.block_hash)),
            "index_block_hash": format!("0x{}", hex::encode(b.header.index_block_hash)),
            "parent_index_block_hash": format!("0x{}", hex::encode(b.header.parent_index_block_hash)),
            "burn_block_height": b.header.burn_block_height,
            "burn_block_time": b.header.burn_block_time,
            "canonical": true,
            "txs": b.receipts.iter().map(|r| r.txid.clone()).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no block at height {height}")),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct Count {
    blocks: Option<u32>,
}

async fn mine(State(node): State<Node>, Query(q): Query<Count>) -> Response {
    let count = q.blocks.unwrap_or(1);
    if !(1..=1000).contains(&count) {
        return error(StatusCode::BAD_REQUEST, "blocks must be 1 to 1000");
    }
    match node.mine_blocks(count, 0).await {
        Ok(headers) => Json(json!({
            "mined": headers.iter().map(|h| json!({ "height": h.height, "burn_block_height": h.burn_block_height,
                "index_block_hash": format!("0x{}", hex::encode(h.index_block_hash)) })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn advance_burn(State(node): State<Node>, Query(q): Query<Count>) -> Response {
    let count = q.blocks.unwrap_or(1);
    if !(1..=1_000_000).contains(&count) {
        return error(StatusCode::BAD_REQUEST, "blocks must be 1 to 1000000");
    }
    // The burn height a transaction sees is its parent's, so the jump is
    // mined into a block right away and reads see it at once.
    match node.mine_blocks(1, count.saturating_sub(node.config().burn_blocks_per_block)).await {
        Ok(headers) => {
            Json(json!({ "burn_block_height": headers.last().map(|h| h.burn_block_height) })).into_response()
        }
        Err(e) => internal(e),
    }
}
