//! The HTTP application: the state, the route table, the request context
//! (`Caller`), the one error mapping for rejections, and the anchor
//! tracker. The routes live by topic: `sign_in`, `records`,
//! `audit_log`, `verify` (trust-us views), `share` (access codes and
//! QR links).
//!
//! Every request acts as its real caller: the session token names the
//! principal, roles come from the chain (through the indexer) and from
//! configuration at each request, and every access attempt to patient
//! data — allowed or refused — is appended to the audit log before the
//! response is sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::{Json, Router};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::ContractError;
use medanchor_indexer::{AccessReader, ChainReader, ConsentReader, RecordReader};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::RpcClient;
use rand::RngCore;
use serde_json::json;

use crate::audit::{AuditEntry, AuditLog};
use crate::auth::SessionKey;
use crate::blob::BlobStore;
use crate::db::{AnchorStatus, ApiDb};
use crate::envelope::Keyring;
use crate::error::{ApiError, ApiResult};

pub(crate) mod audit_log;
pub(crate) mod records;
pub(crate) mod share;
pub(crate) mod sign_in;
pub(crate) mod verify;

pub use share::{spawn_share_sweeper, GRANT_HEADER};

/// The indexer's read traits, as one object.
pub trait ChainView: AccessReader + ChainReader + ConsentReader + RecordReader + Send + Sync {}
impl<T: AccessReader + ChainReader + ConsentReader + RecordReader + Send + Sync> ChainView for T {}

/// How the API runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bound into every ciphertext (one node may serve several tenants).
    pub tenant: String,
    /// Named in sign-in challenges.
    pub domain: String,
    /// Largest record payload, in bytes.
    pub max_record_bytes: usize,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Challenge lifetime.
    pub challenge_ttl: Duration,
    /// Principals with the auditor role.
    pub auditors: Vec<String>,
    /// Principals with the admin role.
    pub admins: Vec<String>,
    /// The deployer of the contracts.
    pub contracts: String,
    /// The API's public base URL: QR links point here and name it as
    /// their issuer.
    pub public_url: String,
    /// The brute-force policy for access codes.
    pub share_policy: crate::share::Policy,
    /// Redemption rate limits.
    pub share_limits: crate::share::limits::RateLimits,
}

impl ApiConfig {
    /// Defaults for `tenant` and the devnet's contracts.
    pub fn new(tenant: &str, contracts: &str) -> Self {
        ApiConfig {
            tenant: tenant.into(),
            domain: "medanchor.localhost".into(),
            max_record_bytes: 64 << 20,
            session_ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(300),
            auditors: Vec::new(),
            admins: Vec::new(),
            contracts: contracts.into(),
            public_url: "http://127.0.0.1:8080".into(),
            share_policy: Default::default(),
            share_limits: Default::default(),
        }
    }
}

/// Provider keys the node holds for hospital systems (custodial signing),
/// with one lock per key so its nonces go out in order.
#[derive(Default)]
pub struct Custody {
    keys: HashMap<String, (StacksKey, Arc<tokio::sync::Mutex<()>>)>,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody").field("principals", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl Custody {
    /// Adds a key; returns its principal.
    pub fn insert(&mut self, key: StacksKey) -> String {
        let principal = key.address(medanchor_wallet::keys::TESTNET_SINGLESIG).to_string();
        self.keys.insert(principal.clone(), (key, Arc::default()));
        principal
    }

    /// Whether the node signs for `principal`.
    pub fn holds(&self, principal: &str) -> bool {
        self.keys.contains_key(principal)
    }
}

/// One async lock per record id.
type RecordLocks = HashMap<[u8; 16], Arc<tokio::sync::Mutex<()>>>;

/// Everything a request needs.
#[derive(Clone)]
pub struct AppState {
    config: Arc<ApiConfig>,
    db: Arc<ApiDb>,
    blobs: Arc<dyn BlobStore>,
    keyring: Arc<RwLock<Keyring>>,
    session: Arc<SessionKey>,
    /// Signs the audit log's checkpoints: the node's secret itself.
    checkpoint: Arc<ed25519_dalek::SigningKey>,
    challenges: Arc<crate::auth::ChallengeKey>,
    /// Keys the audit log's client-address hashes.
    ip_key: Arc<[u8; 32]>,
    chain: Arc<dyn ChainView>,
    audit: AuditLog,
    node: RpcClient,
    custody: Arc<Custody>,
    /// One lock per record id, so concurrent updates serialize.
    record_locks: Arc<std::sync::Mutex<RecordLocks>>,
    shares: Arc<crate::share::ShareStore>,
    limiter: Arc<crate::share::limits::Limiter>,
    clock: Clock,
}

/// Unix milliseconds now: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("tenant", &self.config.tenant).finish()
    }
}

impl AppState {
    /// Assembles the state (the audit writer starts on the current runtime).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ApiConfig,
        db: Arc<ApiDb>,
        blobs: Arc<dyn BlobStore>,
        keyring: Keyring,
        session: SessionKey,
        chain: Arc<dyn ChainView>,
        node: RpcClient,
        custody: Custody,
    ) -> AppState {
        let audit = AuditLog::start(db.clone());
        // The sharing keys derive from the node's secret, separated from
        // its session and checkpoint signatures by domain.
        // The node's secret signs audit checkpoints directly (the log's
        // long-term identity, which auditors pin); every other use gets a
        // key derived from it under its own label, so a session token can
        // never pass for a checkpoint signature or the other way round.
        let root = session.signing_key().to_bytes();
        let checkpoint = Arc::new(session.signing_key().clone());
        let session = SessionKey::for_node(&root);
        let share_keys = crate::share::link::ShareKeys::derive(&root);
        let shares = Arc::new(crate::share::ShareStore::new(db.clone(), share_keys, config.share_policy));
        let limiter = Arc::new(crate::share::limits::Limiter::new(config.share_limits));
        let challenges = Arc::new(crate::auth::ChallengeKey::derive(&root));
        let ip_key = Arc::new(crate::auth::derive_key(&root, b"medanchor audit ip-hash v1"));
        AppState {
            config: Arc::new(config),
            db,
            blobs,
            keyring: Arc::new(RwLock::new(keyring)),
            session: Arc::new(session),
            checkpoint,
            challenges,
            ip_key,
            chain,
            audit,
            node,
            custody: Arc::new(custody),
            record_locks: Arc::default(),
            shares,
            limiter,
            clock: Arc::new(now_ms),
        }
    }

    /// The same state on another clock (tests move time instead of
    /// sleeping; sessions keep the system clock).
    pub fn with_clock(mut self, clock: Clock) -> AppState {
        self.clock = clock;
        self
    }

    /// Now, on this state's clock (unix ms).
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// The audit log's keyed hash of a client address.
    fn ip_hash(&self, ip: std::net::IpAddr) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.ip_key[..]).expect("any key length");
        mac.update(ip.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Sweeps used sign-in challenges past their expiry (returns how many)
    /// and drops the per-record locks no request holds, so neither grows
    /// with the number of sign-ins or records ever touched.
    pub fn housekeeping(&self) -> Result<usize, crate::db::DbError> {
        self.record_locks.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, lock| Arc::strong_count(lock) > 1);
        // Challenges run on the system clock, as sessions do.
        self.db.sweep_challenges(now_ms() / 1000)
    }

    /// Locks held right now per record (for tests of the pruning).
    pub fn record_lock_count(&self) -> usize {
        self.record_locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The share store.
    pub fn shares(&self) -> &crate::share::ShareStore {
        &self.shares
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The record database and the keyring, for maintenance such as KEK
    /// rotation ([`crate::rotate::rewrap_all`]) in tests and tools.
    pub fn keys(&self) -> (&ApiDb, &RwLock<Keyring>) {
        (&self.db, &self.keyring)
    }

    /// What the audit anchor task needs: the node, the contracts' deployer
    /// and the API database.
    pub(crate) fn anchor_parts(&self) -> (&RpcClient, &str, &Arc<ApiDb>) {
        (&self.node, &self.config.contracts, &self.db)
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// An HTTP method the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

impl Verb {
    /// The method's name.
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
        }
    }

    fn route<H, T>(self, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        match self {
            Verb::Get => get(handler),
            Verb::Post => post(handler),
            Verb::Put => put(handler),
        }
    }
}

/// Every route the API serves: (method, path, handler). [`router`] is
/// built from this list alone, and the OpenAPI test checks the document
/// against it, so a route cannot be served undocumented.
pub(crate) fn routes() -> Vec<(Verb, &'static str, MethodRouter<AppState>)> {
    use Verb::{Get, Post, Put};
    vec![
        (Post, "/v1/auth/challenge", Post.route(sign_in::challenge)),
        (Post, "/v1/auth/verify", Post.route(sign_in::sign_in)),
        (Get, "/v1/me", Get.route(sign_in::me)),
        (Post, "/v1/patients/{patient}/records", Post.route(records::create_record)),
        (Get, "/v1/patients/{patient}/records", Get.route(records::list_records)),
        (Get, "/v1/records/{id}", Get.route(records::read_record)),
        (Put, "/v1/records/{id}", Put.route(records::update_record)),
        (Get, "/v1/records/{id}/versions", Get.route(records::record_versions)),
        (Post, "/v1/records/{id}/finalize", Post.route(records::finalize_record)),
        (Post, "/v1/records/{id}/unlock", Post.route(records::unlock_record)),
        (Post, "/v1/records/{id}/archive", Post.route(records::archive_record)),
        (Get, "/v1/audit/entries", Get.route(audit_log::audit_entries)),
        (Get, "/v1/audit/disclosures", Get.route(audit_log::audit_disclosures)),
        (Get, "/v1/audit/checkpoint", Get.route(audit_log::audit_checkpoint)),
        (Get, "/v1/audit/proof/inclusion", Get.route(audit_log::inclusion_proof)),
        (Get, "/v1/audit/proof/consistency", Get.route(audit_log::consistency_proof)),
        (Get, "/v1/verify/record/{id}", Get.route(verify::verify_record)),
        (Get, "/v1/verify/record/{id}/blob", Get.route(verify::record_blob)),
        (Get, "/v1/verify/hash/{sha256}", Get.route(verify::verify_hash)),
        (Get, "/v1/audit/anchor", Get.route(verify::audit_anchor)),
        (Post, "/v1/share/codes", Post.route(share::create_share)),
        (Get, "/v1/share/codes", Get.route(share::list_shares)),
        (Post, "/v1/share/codes/{id}/revoke", Post.route(share::revoke_share)),
        (Post, "/v1/share/unlock", Post.route(share::unlock_shares)),
        (Post, "/v1/share/redeem", Post.route(share::redeem_code)),
        (Post, "/v1/share/links/{capability}", Post.route(share::redeem_link)),
        (Get, "/v1/share/issuer", Get.route(share::issuer)),
        (Get, "/openapi.json", Get.route(crate::openapi::openapi_json)),
    ]
}

/// The routes.
pub fn router(state: AppState) -> Router {
    // A record body may hold a payload (base64 inflates it by a third);
    // nothing else the API takes is larger than a few hundred bytes.
    let payload_limit = state.config.max_record_bytes * 4 / 3 + 64 * 1024;
    routes()
        .into_iter()
        .fold(Router::new(), |r, (verb, path, handler)| {
            let handler = if carries_payload(verb, path) {
                // The session is checked before the body is read: an
                // anonymous caller cannot make the node buffer a payload.
                handler
                    .layer(DefaultBodyLimit::max(payload_limit))
                    .layer(axum::middleware::from_fn_with_state(state.clone(), session_first))
            } else {
                handler.layer(DefaultBodyLimit::max(SMALL_BODY))
            };
            r.route(path, handler)
        })
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(axum::middleware::map_response(problem_for_rejections))
        .layer(axum::middleware::from_fn(request_context))
        .with_state(state)
}

/// Gives every request an id — in `X-Request-Id` on every response, errors
/// and rejections included, in its audit entries, and on every log line of
/// its handling (a tracing span). A client's own `X-Request-Id` is
/// replaced: audit entries carry only ids the node made. The span names
/// the route's template, never the path (a share link's path is a secret).
async fn request_context(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let id = random_hex(8);
    let value = HeaderValue::from_str(&id).expect("hex is a valid header value");
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or("-", |m| m.as_str()).to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// The request-id header.
const REQUEST_ID: &str = "x-request-id";

/// The body limit of every route that takes no record payload.
pub const SMALL_BODY: usize = 16 * 1024;

/// Routes whose body is a record payload (create, update).
fn carries_payload(verb: Verb, path: &str) -> bool {
    matches!((verb, path), (Verb::Post, "/v1/patients/{patient}/records") | (Verb::Put, "/v1/records/{id}"))
}

/// Refuses a request without a valid session before its body is read.
async fn session_first(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let caller = Caller::from(&state, request.headers(), None);
    match caller.require(request.headers()) {
        Ok(_) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// axum's own extractor rejections (malformed JSON, an oversized body, a
/// bad query string) answer in plain text; give them the same
/// problem+json shape as every other error, keeping their status and
/// message.
async fn problem_for_rejections(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; a larger body is not a rejection.
    let detail = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::NOT_FOUND => "not-found",
        s if s.is_server_error() => "internal",
        _ => "invalid-request",
    };
    let body = json!({
        "type": format!("https://medanchor.dev/problems/{code}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "code": code,
        "detail": if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { detail },
    });
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    for name in ["x-request-id", "retry-after"] {
        if let Some(v) = parts.headers.get(name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

/// Starts the anchor tracker: pending versions move to `anchored` or
/// `failed` as the indexer sees their transactions.
pub fn spawn_tracker(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let s = state.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || track_once(&s))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::error!(error = %e, "anchor tracker failed");
            }
            match resend_once(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "sent pending versions again"),
                Err(e) => tracing::error!(error = %e, "anchor resender failed"),
            }
        }
    })
}

/// How long after a broadcast the resender asks the node about it again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How long a version the node refused for now (no txid) waits.
pub const RETRY_QUEUED_AFTER: Duration = Duration::from_secs(1);

/// One pass of the resender, run after [`track_once`] by the tracker task.
///
/// A pending version this node signs for (its author's key is in custody)
/// whose transaction the node does not have — never sent (a crash, an
/// unreachable node), refused for now (the sender's chain of pending
/// transactions at the node's limit), or lost (a restarted node forgets its
/// mempool) — is signed again with the next nonce and sent. Sending twice
/// is harmless: the tracker settles a version from what the chain shows
/// (this version with our hash → anchored), and whichever copy is mined
/// second aborts. A version refused for good is `failed`. Returns how many
/// were sent.
pub async fn resend_once(state: &AppState) -> ApiResult<usize> {
    let now = now_ms();
    let mut sent = 0;
    let mut full: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (id, version) in state.db.pending().map_err(ApiError::internal)? {
        let Some(mut meta) = state.db.record(&id, version).map_err(ApiError::internal)? else { continue };
        let ours = meta.custodial.unwrap_or(meta.txid.is_some());
        if meta.status != AnchorStatus::Pending
            || !ours
            || !state.custody.holds(&meta.author)
            || full.contains(&meta.author)
        {
            continue;
        }
        // A version refused for now is retried soon; one sent (or being
        // sent by its request right now) gets time to reach the node.
        let (since, wait) = match (meta.sent_ms, &meta.txid) {
            (Some(t), None) => (t, RETRY_QUEUED_AFTER),
            (Some(t), Some(_)) => (t, RESEND_AFTER),
            (None, _) => (meta.created_ms, RESEND_AFTER),
        };
        if now.saturating_sub(since) < wait.as_millis() as u64 {
            continue;
        }
        if let Some(txid) = &meta.txid {
            match state.node.tx_status(txid).await {
                // Known to the node (in its mempool or mined): the tracker
                // settles it.
                Ok(Some(tx)) if !tx.status.starts_with("dropped") => {
                    meta.sent_ms = Some(now);
                    state.db.put_record(&meta, &id).map_err(ApiError::internal)?;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "asking the node about a pending transaction");
                    continue;
                }
            }
        }
        let author: Principal = meta.author.parse().map_err(ApiError::internal)?;
        let call = records::anchoring_call(&meta)?;
        let outcome = records::broadcast(state, &author, &call).await;
        match &outcome {
            records::Sent::Accepted(_) => sent += 1,
            records::Sent::Later(_) | records::Sent::Unreachable(_) => {
                full.insert(meta.author.clone());
            }
            _ => {}
        }
        records::settle_broadcast(&mut meta, outcome);
        state.db.put_record(&meta, &id).map_err(ApiError::internal)?;
    }
    Ok(sent)
}

/// One pass of the tracker.
///
/// Recovery rule. A version's metadata and ciphertext are durable before
/// its transaction exists, so a crash (or an unreachable node) between
/// store and mine leaves a `pending` version, never an anchor without its
/// payload. The chain decides what happens to it, whoever broadcast the
/// call (this node before a crash, a restarted node, the provider's
/// wallet):
/// - the chain shows this version with our data hash → `anchored`;
/// - the chain shows this version with another hash → `failed` (the
///   record moved on without it; a retry is a new version);
/// - our txid was mined with an `(err …)` → `failed`, with the contract's
///   error name;
/// - nothing on-chain yet (no txid, or a txid not yet mined) → stays
///   `pending`, and GET reports it so; a broadcast the node explicitly
///   rejected is `failed` at once (in `anchor`), since it can never be mined.
pub fn track_once(state: &AppState) -> ApiResult<usize> {
    let mut settled = 0;
    for (id, version) in state.db.pending().map_err(ApiError::internal)? {
        let Some(mut meta) = state.db.record(&id, version).map_err(ApiError::internal)? else { continue };
        // The chain's view of this record version (works for both signing
        // paths: the wallet path may never tell us its txid).
        let onchain = state.chain.versions(&id).map_err(ApiError::internal)?.into_iter().find(|v| v.version == version);
        if let Some(v) = onchain {
            if v.data_hash == format!("0x{}", meta.data_hash) {
                meta.status = AnchorStatus::Anchored;
                meta.txid = Some(v.txid);
                meta.block_height = Some(v.block_height);
                meta.index_block_hash = Some(v.index_block_hash);
            } else {
                meta.status = AnchorStatus::Failed;
                meta.failure = Some("another payload was anchored as this version".into());
            }
        } else if let Some(txid) = &meta.txid {
            let txid_bytes: [u8; 32] =
                match hex::decode(txid.trim_start_matches("0x")).ok().and_then(|b| b.try_into().ok()) {
                    Some(t) => t,
                    None => continue,
                };
            match state.chain.transaction(&txid_bytes).map_err(ApiError::internal)? {
                Some(tx) if tx.status != "success" => {
                    meta.status = AnchorStatus::Failed;
                    meta.failure = Some(failure_reason(&tx.raw_result));
                }
                _ => continue,
            }
        } else {
            continue;
        }
        state.db.put_record(&meta, &id).map_err(ApiError::internal)?;
        settled += 1;
    }
    Ok(settled)
}

/// `(err uN)` → the contract's error name.
fn failure_reason(raw_result: &str) -> String {
    medanchor_contracts::ClarityValue::from_hex(raw_result)
        .ok()
        .and_then(|v| match v {
            medanchor_contracts::ClarityValue::Response(Err(inner)) => match *inner {
                medanchor_contracts::ClarityValue::UInt(code) => {
                    ContractError::from_code(code).map(|e| e.constant().to_string())
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| format!("transaction failed ({raw_result})"))
}

// ------------------------------------------------------------ request context

/// Who is calling, from where.
#[derive(Debug, Clone)]
struct Caller {
    principal: Option<Principal>,
    request_id: String,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The keyed hash of `ip` the audit log keeps.
    ip_hash: Option<String>,
}

impl Caller {
    fn from(state: &AppState, headers: &HeaderMap, addr: Option<SocketAddr>) -> Caller {
        let principal = headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|t| state.session.verify(t, now_ms() / 1000).ok())
            .and_then(|c| c.sub.parse().ok());
        Caller {
            principal,
            // Set by `request_context` for every routed request.
            request_id: headers
                .get(REQUEST_ID)
                .and_then(|h| h.to_str().ok())
                .map_or_else(|| random_hex(8), str::to_string),
            ip: addr.map(|a| a.ip().to_string()),
            ip_hash: addr.map(|a| state.ip_hash(a.ip())),
            user_agent: headers.get("user-agent").and_then(|h| h.to_str().ok()).map(|ua| {
                // Bounded before it is copied anywhere (audit entries keep it).
                let mut cut = ua.len().min(crate::audit::MAX_FIELD);
                while !ua.is_char_boundary(cut) {
                    cut -= 1;
                }
                ua[..cut].to_string()
            }),
        }
    }

    fn require(&self, headers: &HeaderMap) -> ApiResult<&Principal> {
        match &self.principal {
            Some(p) => Ok(p),
            None if headers.contains_key("authorization") => {
                Err(ApiError::Unauthorized("the session token is invalid or expired; sign in again".into()))
            }
            None => Err(ApiError::Unauthorized("sign in first: Authorization: Bearer <token>".into())),
        }
    }

    fn entry(&self, role: &str, action: &str) -> AuditEntry {
        AuditEntry {
            time_ms: now_ms(),
            actor: self.principal.as_ref().map_or("anonymous".into(), |p| p.to_string()),
            role: role.into(),
            action: action.into(),
            patient: None,
            record_id: None,
            version: None,
            method: None,
            share_id: None,
            outcome: "allowed".into(),
            reason: None,
            client_ip: None,
            user_agent: self.user_agent.clone(),
            ip_hash: self.ip_hash.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

fn role_of(state: &AppState, p: &Principal) -> ApiResult<&'static str> {
    let s = p.to_string();
    if state.config.admins.contains(&s) {
        return Ok("admin");
    }
    if state.config.auditors.contains(&s) {
        return Ok("auditor");
    }
    if state.chain.provider(p).map_err(ApiError::internal)?.is_some() {
        return Ok("provider");
    }
    if state.chain.patient(p).map_err(ApiError::internal)?.is_some() {
        return Ok("patient");
    }
    Ok("none")
}

fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn principal_arg(s: &str, what: &str) -> ApiResult<Principal> {
    s.parse().map_err(|_| {
        ApiError::bad("invalid-principal", format!("{what} {} is not a Stacks principal", crate::error::echo(s)))
    })
}

fn record_id_arg(s: &str) -> ApiResult<[u8; 16]> {
    hex::decode(s.trim_start_matches("0x")).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
        ApiError::bad("invalid-record-id", format!("record id {} is not 16 bytes of hex", crate::error::echo(s)))
    })
}

/// An optional non-negative integer query parameter.
fn optional_number(q: &HashMap<String, String>, k: &str) -> ApiResult<Option<u64>> {
    q.get(k)
        .map(|v| {
            v.parse().map_err(|_| ApiError::bad("invalid-parameter", format!("{k} must be a non-negative integer")))
        })
        .transpose()
}

/// A required non-negative integer query parameter.
fn required_number(q: &HashMap<String, String>, k: &str) -> ApiResult<u64> {
    q.get(k)
        .ok_or_else(|| ApiError::bad("missing-parameter", format!("{k} is required")))?
        .parse()
        .map_err(|_| ApiError::bad("invalid-parameter", format!("{k} must be a number")))
}
