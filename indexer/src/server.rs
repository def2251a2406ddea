//! HTTP, on two listeners that never share routes:
//!
//! - [`observer_router`]: the event-observer endpoints a stacks-node POSTs
//!   to. This is trusted input — a block that links is applied whatever it
//!   says (a forged `consent-granted` print is a grant) — so it has no
//!   authentication of its own and must be reachable only by the node:
//!   loopback, or a private network ([`observer_bind_allowed`]), as
//!   stacks-node's observers are meant to be.
//! - [`query_router`]: the read-only query routes (`/v1/…`) over the read
//!   traits; nothing there writes.
//!
//! Observer replies follow the node's retry contract: 200 only once the
//! block is durably committed, 400 for a payload that can never be
//! ingested, 5xx for failures worth retrying. [`status_of`] is the one
//! place indexer errors become HTTP statuses.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{DataType, RecordType};
use medanchor_contracts::{DataHash, ParseHashError, RecordId, Txid};
use serde_json::json;

use crate::payload::hex_bytes;
use crate::query::{ChainReader, ConsentReader, IndexReader, PageRequest, RecordFilter, RecordReader};
use crate::{Error, Indexer, Outcome};

/// Bodies up to 500 MB: a genesis block is ~80 MB, Hiro allows 500 MB.
pub const MAX_BODY: usize = 500 * 1024 * 1024;

/// The state of the query routes: a reader, never the writer.
#[derive(Clone)]
struct AppState {
    reader: IndexReader,
    node_rpc: Option<String>,
    http: reqwest::Client,
}

/// The HTTP status of an indexer error.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Payload(_) | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::BufferFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Storage(_)
        | Error::Corrupt(_)
        | Error::Invariant(_)
        | Error::ReorgTooDeep { .. }
        | Error::Schema { .. }
        | Error::Replay { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

struct HttpError(Error);

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "indexer request failed");
        }
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

type HttpResult<T> = Result<T, HttpError>;

/// The event-observer routes, for the node alone: `/new_block`,
/// `/new_burn_block`, and the notifications the index ignores. No query
/// route is served here.
pub fn observer_router(indexer: Indexer) -> Router {
    Router::new()
        .route("/new_block", post(new_block))
        .route("/new_burn_block", post(new_burn_block))
        .route("/new_mempool_tx", post(accepted))
        .route("/drop_mempool_tx", post(accepted))
        .route("/new_microblocks", post(accepted))
        .route("/attachments/new", post(accepted))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(indexer)
}

/// The read-only query routes (`/v1/…`). `node_rpc` (a stacks-node RPC
/// base URL) lets `/v1/status` report how far the index lags behind the
/// node.
pub fn query_router(reader: IndexReader, node_rpc: Option<String>) -> Router {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap_or_default();
    let state = AppState { reader, node_rpc, http };
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/txs/{txid}", get(transaction))
        .route("/v1/consent/check", get(check_consent))
        .route("/v1/patients/{patient}", get(patient))
        .route("/v1/patients/{patient}/consents", get(consents))
        .route("/v1/patients/{patient}/history", get(history))
        .route("/v1/patients/{patient}/records", get(records))
        .route("/v1/patients/{patient}/overrides/{provider}", get(emergency_override))
        .route("/v1/patients/{patient}/access/{provider}", get(access))
        .route("/v1/records/{id}", get(record))
        .route("/v1/records/{id}/versions", get(versions))
        .route("/v1/anchors/{hash}", get(anchors))
        .route("/v1/batches/{root}", get(batch))
        .route("/v1/providers/{provider}", get(provider))
        .route("/v1/providers/{provider}/activity", get(activity))
        .with_state(state)
}

/// Whether the observer endpoints may listen on `ip` without
/// `--observer-allow-public`: loopback, or a private network (IPv4
/// 10/8, 172.16/12, 192.168/16; IPv6 unique-local fc00::/7). Not the
/// unspecified address (every interface, public ones included) and not
/// link-local or shared (CGNAT) space, which are not networks you control.
pub fn observer_bind_allowed(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    }
}

/// Serves the observer routes on `observer` and the query routes on
/// `query` until `shutdown` resolves.
pub async fn serve(
    indexer: Indexer,
    node_rpc: Option<String>,
    observer: tokio::net::TcpListener,
    query: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let when_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let reader = IndexReader::new(indexer.db().clone());
    let observing = axum::serve(observer, observer_router(indexer))
        .with_graceful_shutdown(when_stopped(stopped.clone()))
        .into_future();
    let answering =
        axum::serve(query, query_router(reader, node_rpc)).with_graceful_shutdown(when_stopped(stopped)).into_future();
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let ((), observed, answered) = tokio::join!(signal, observing, answering);
    observed.and(answered)
}

/// Serves the observer routes alone on `listener` until `shutdown`
/// resolves (when the index is read in-process, not over HTTP).
pub async fn serve_observer(
    indexer: Indexer,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, observer_router(indexer)).with_graceful_shutdown(shutdown).await
}

async fn accepted() -> StatusCode {
    StatusCode::OK
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> crate::Result<T> + Send + 'static) -> HttpResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HttpError(Error::Storage(format!("ingest task: {e}"))))?
        .map_err(HttpError)
}

async fn new_block(State(indexer): State<Indexer>, body: Bytes) -> HttpResult<Json<serde_json::Value>> {
    let outcome = blocking(move || indexer.ingest_json(&body)).await?;
    Ok(Json(match outcome {
        Outcome::Applied { height, reorg_depth, connected } => {
            json!({ "result": "applied", "height": height, "reorg_depth": reorg_depth, "connected": connected })
        }
        Outcome::Duplicate => json!({ "result": "duplicate" }),
        Outcome::Buffered => json!({ "result": "buffered" }),
    }))
}

async fn new_burn_block(State(indexer): State<Indexer>, body: Bytes) -> HttpResult<StatusCode> {
    blocking(move || indexer.ingest_burn_block(&body)).await?;
    Ok(StatusCode::OK)
}

fn principal(field: &str, s: &str) -> crate::Result<Principal> {
    Principal::from_str(s).map_err(|_| Error::BadRequest(format!("{field} {s:?} is not a Stacks principal")))
}

fn data_type(s: &str) -> crate::Result<u8> {
    DataType::from_str(s).map(|d| d.code()).map_err(|_| {
        let names: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
        Error::BadRequest(format!("data_type {s:?} is not one of {} (or their codes)", names.join(", ")))
    })
}

fn number(q: &HashMap<String, String>, name: &str) -> crate::Result<Option<u64>> {
    q.get(name)
        .map(|v| v.parse::<u64>().map_err(|_| Error::BadRequest(format!("{name} must be a non-negative integer"))))
        .transpose()
}

fn page(q: &HashMap<String, String>) -> crate::Result<PageRequest> {
    Ok(PageRequest { cursor: q.get("cursor").cloned(), limit: number(q, "limit")?.map(|n| n as usize) })
}

fn required<'a>(q: &'a HashMap<String, String>, name: &str) -> crate::Result<&'a str> {
    q.get(name).map(String::as_str).ok_or_else(|| Error::BadRequest(format!("query parameter {name} is required")))
}

fn found<T: serde::Serialize>(what: &str, v: Option<T>) -> Response {
    match v {
        Some(v) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("{what} not found") }))).into_response(),
    }
}

async fn status(State(s): State<AppState>) -> HttpResult<Json<serde_json::Value>> {
    let reader = s.reader.clone();
    let status = blocking(move || reader.status()).await?;
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    if let Some(node) = &s.node_rpc {
        let tip = async {
            let info: serde_json::Value = s.http.get(format!("{node}/v2/info")).send().await?.json().await?;
            Ok::<_, reqwest::Error>(info["stacks_tip_height"].as_u64())
        }
        .await;
        match tip {
            Ok(Some(node_tip)) => {
                body["node_tip_height"] = json!(node_tip);
                body["lag_blocks"] = json!(node_tip.saturating_sub(status.tip_height.unwrap_or(0)));
            }
            _ => body["node_error"] = json!(format!("{node} did not answer /v2/info")),
        }
    }
    Ok(Json(body))
}

async fn transaction(State(s): State<AppState>, Path(txid): Path<String>) -> HttpResult<Response> {
    let txid: Txid = typed_arg("txid", &txid)?;
    let reader = s.reader.clone();
    Ok(found("transaction", blocking(move || reader.transaction(&txid)).await?))
}

async fn check_consent(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> HttpResult<Response> {
    let patient = principal("patient", required(&q, "patient")?)?;
    let provider = principal("provider", required(&q, "provider")?)?;
    let dt = data_type(required(&q, "data_type")?)?;
    let reader = s.reader.clone();
    let check = blocking(move || reader.check_consent(&patient, &provider, dt)).await?;
    Ok(Json(check).into_response())
}

async fn patient(State(s): State<AppState>, Path(p): Path<String>) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let reader = s.reader.clone();
    Ok(found("patient", blocking(move || reader.patient(&p)).await?))
}

async fn consents(State(s): State<AppState>, Path(p): Path<String>) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let reader = s.reader.clone();
    Ok(Json(blocking(move || reader.consents(&p)).await?).into_response())
}

async fn history(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let page = page(&q)?;
    let reader = s.reader.clone();
    Ok(Json(blocking(move || reader.consent_history(&p, &page)).await?).into_response())
}

async fn records(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let filter = RecordFilter {
        record_type: q
            .get("type")
            .map(|t| RecordType::from_str(t).map_err(|_| Error::BadRequest(format!("type {t:?} is not a record type"))))
            .transpose()?,
        provider: q.get("provider").map(|v| principal("provider", v)).transpose()?,
        from_height: number(&q, "from_height")?,
        to_height: number(&q, "to_height")?,
        from_time: number(&q, "from_time")?,
        to_time: number(&q, "to_time")?,
    };
    let page = page(&q)?;
    let reader = s.reader.clone();
    Ok(Json(blocking(move || reader.records(&p, &filter, &page)).await?).into_response())
}

async fn emergency_override(State(s): State<AppState>, Path((p, v)): Path<(String, String)>) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let v = principal("provider", &v)?;
    let reader = s.reader.clone();
    Ok(found("emergency override", blocking(move || reader.emergency_override(&p, &v)).await?))
}

async fn access(State(s): State<AppState>, Path((p, v)): Path<(String, String)>) -> HttpResult<Response> {
    let p = principal("patient", &p)?;
    let v = principal("provider", &v)?;
    let reader = s.reader.clone();
    Ok(found("provider access", blocking(move || reader.provider_access(&p, &v)).await?))
}

/// A typed path argument; the error names the argument, never echoes it.
fn typed_arg<T: std::str::FromStr<Err = ParseHashError>>(what: &str, s: &str) -> crate::Result<T> {
    s.parse().map_err(|e: ParseHashError| {
        Error::BadRequest(format!("{what} must be {} bytes of hex, got {} characters", e.bytes(), e.input_len()))
    })
}

fn record_id(s: &str) -> crate::Result<RecordId> {
    typed_arg("record id", s)
}

async fn record(State(s): State<AppState>, Path(id): Path<String>) -> HttpResult<Response> {
    let id = record_id(&id)?;
    let reader = s.reader.clone();
    Ok(found("record", blocking(move || reader.record(&id)).await?))
}

async fn versions(State(s): State<AppState>, Path(id): Path<String>) -> HttpResult<Response> {
    let id = record_id(&id)?;
    let reader = s.reader.clone();
    let versions = blocking(move || reader.versions(&id)).await?;
    Ok(if versions.is_empty() { found::<()>("record", None) } else { Json(versions).into_response() })
}

async fn anchors(State(s): State<AppState>, Path(hash): Path<String>) -> HttpResult<Response> {
    let hash: DataHash = typed_arg("data hash", &hash)?;
    let reader = s.reader.clone();
    let anchors = blocking(move || reader.anchors(&hash)).await?;
    Ok(if anchors.is_empty() { found::<()>("anchor", None) } else { Json(anchors).into_response() })
}

async fn batch(State(s): State<AppState>, Path(root): Path<String>) -> HttpResult<Response> {
    let root: [u8; 32] = hex_bytes("root", &root).map_err(|e| Error::BadRequest(e.to_string()))?;
    let reader = s.reader.clone();
    Ok(found("batch", blocking(move || reader.batch(&root)).await?))
}

async fn provider(State(s): State<AppState>, Path(p): Path<String>) -> HttpResult<Response> {
    let p = principal("provider", &p)?;
    let reader = s.reader.clone();
    Ok(found("provider", blocking(move || reader.provider(&p)).await?))
}

async fn activity(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> HttpResult<Response> {
    let p = principal("principal", &p)?;
    let page = page(&q)?;
    let reader = s.reader.clone();
    Ok(Json(blocking(move || reader.activity(&p, &page)).await?).into_response())
}
