//! `medanchor-bench api`: consent-checked, decrypted record reads through
//! the API over real HTTP, next to raw AES-256-GCM and SHA-256 throughput
//! measured in the same run, and the upload of one large payload.
//!
//! The set-up (untimed) is the API's end-to-end harness: an in-process
//! devnet node mining on demand, the indexer fed by its event-observer
//! stream, and the API on loopback with its real RocksDB, blob directory and
//! keyring. The provider is registered, the patient registers and grants
//! consent and WRITE access, each by a signed transaction; the provider
//! signs in with a Stacks message signature, creates `--records` records of
//! 16 KiB through the API (custodial signing) and they are mined and
//! anchored.
//!
//! Then, one run:
//! 1. **Reads.** `--concurrency` clients, each with its own connection, loop
//!    on `GET /v1/records/{id}` for `--seconds`: every read is a session
//!    check, a consent check at the indexer's tip, a blob read verified
//!    against its hash, a DEK unwrap and an AES-256-GCM decrypt, and a
//!    durable audit entry before the response. Every answer must be 200.
//! 2. **Baselines**, on this machine in this run: AES-256-GCM decryption
//!    and SHA-256 of 16 KiB buffers, single-threaded, with the crates the API
//!    uses; one small synced write to the API's own RocksDB (what every
//!    audited read waits for, at least once per group of reads); and the
//!    raw work an upload cannot avoid — AES-256-GCM encryption, SHA-256 and
//!    a synced file write of the same bytes, in the API's data directory.
//! 3. **Upload.** One `--upload-mib` payload POSTed as a binary body
//!    (`application/octet-stream`), from sending the request to the 202.
//!
//! Every target is a ratio to a baseline of the same run, so it means the
//! same on a fast disk and a slow one (fsync latency differs ~7× between
//! machines of one kind). Numbers are reported next to their targets, never
//! asserted: the command fails only if the set-up fails.

use crate::latency::{latency, Latency};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use medanchor_api::app::{self, ApiConfig, AppState, Custody};
use medanchor_contracts::types::{AccessLevel, DataType};
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_indexer::query::IndexReader;
use medanchor_indexer::{ChainReader, Indexer, IndexerConfig};
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, GrantDuration, RpcClient, Wallet};
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Target: reads/s at least this share of one core's raw decrypt + hash of
/// a record (the API adds HTTP, the session, the consent check, the blob
/// read and the durable audit entry, on two cores shared with the load
/// generator).
const TARGET_READS_VS_CRYPTO: f64 = 0.15;
/// Target: the read p99 at most this many times the read p50 (closed loop:
/// the p50 is the queue; the tail must not grow behind syncs).
const TARGET_READ_P99_VS_P50: f64 = 2.5;
/// Target: reads/s at least this many times the synced writes/s of one
/// writer — the audit log's group commit must carry several reads per sync.
const TARGET_READS_PER_SYNC: f64 = 1.0;
/// Target: upload MB/s at least this share of the raw encrypt + hash +
/// synced write of the same bytes.
const TARGET_UPLOAD_VS_RAW: f64 = 0.5;
/// Synced writes timed for the baseline.
const SYNCED_WRITES: usize = 2_000;
/// Size of each record read.
const RECORD_BYTES: usize = 16 * 1024;
/// Records created between two mined blocks (the mempool takes at most 25
/// pending transactions per account).
const CREATE_BATCH: usize = 20;
/// How long each single-threaded crypto baseline runs.
const BASELINE_TIME: Duration = Duration::from_millis(1000);

/// Options of `medanchor-bench api`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiBenchArgs {
    /// Records of 16 KiB created (and then read round-robin).
    #[arg(long, default_value_t = 200)]
    pub records: usize,
    /// Concurrent client connections reading.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long the reads run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Size of the uploaded payload in MiB (0 skips the upload).
    #[arg(long, default_value_t = 50)]
    pub upload_mib: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct ApiBenchReport {
    /// Consent-checked decrypted reads.
    pub reads: ReadResult,
    /// Raw single-threaded crypto on 16 KiB buffers.
    pub baseline: Baseline,
    /// One small synced write to the API's RocksDB, one writer.
    pub synced_write: SyncedWrite,
    /// reads/s ÷ the single-threaded raw crypto rate (decrypt + hash) of
    /// one 16 KiB record.
    pub ratio: f64,
    /// reads/s ÷ synced writes/s: reads carried per sync by the group
    /// commit.
    pub reads_per_sync: f64,
    /// read p99 ÷ read p50.
    pub read_p99_vs_p50: f64,
    /// The large upload (absent with `--upload-mib 0`).
    pub upload: Option<UploadResult>,
    /// The targets the numbers are compared with.
    pub targets: Targets,
    /// Which targets were met.
    pub met: Met,
}

/// The read measurement.
#[derive(Debug, Serialize)]
pub struct ReadResult {
    /// Records read round-robin.
    pub records: usize,
    /// Plaintext bytes per record.
    pub record_bytes: usize,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Wall time of the run.
    pub seconds: f64,
    /// Reads answered 200 with the full record.
    pub ok: u64,
    /// Reads answered otherwise, or failed in transport.
    pub errors: u64,
    /// The first few error descriptions.
    pub error_samples: Vec<String>,
    /// ok / seconds.
    pub reads_per_sec: f64,
    /// Latency of the successful reads.
    pub latency_ms: Latency,
}

/// Raw crypto throughput, single-threaded.
#[derive(Debug, Serialize)]
pub struct Baseline {
    /// AES-256-GCM decryption (with the record's associated data), MB/s.
    pub aes_gcm_decrypt_mb_per_sec: f64,
    /// The same as 16 KiB operations per second.
    pub aes_gcm_decrypt_ops_per_sec: f64,
    /// SHA-256, MB/s.
    pub sha256_mb_per_sec: f64,
    /// The same as 16 KiB operations per second.
    pub sha256_ops_per_sec: f64,
    /// One decrypt plus one hash of 16 KiB (what each read must do at least),
    /// per second on one core.
    pub decrypt_and_hash_ops_per_sec: f64,
}

/// The synced-write baseline.
#[derive(Debug, Serialize)]
pub struct SyncedWrite {
    /// Latency of one 256-byte synced write.
    pub latency_ms: Latency,
    /// Writes per second, one after another.
    pub per_sec: f64,
}

/// The upload measurement.
#[derive(Debug, Serialize)]
pub struct UploadResult {
    /// Plaintext bytes.
    pub bytes: usize,
    /// From sending the request to the 202.
    pub seconds: f64,
    /// bytes / seconds / 10^6.
    pub mb_per_sec: f64,
    /// The HTTP status (202 expected).
    pub status: u16,
    /// Baseline: AES-256-GCM encryption, SHA-256 and a synced file write
    /// of the same bytes in the API's data directory, MB/s.
    pub raw_mb_per_sec: f64,
    /// mb_per_sec ÷ raw_mb_per_sec.
    pub ratio: f64,
}

/// The targets, each a ratio to a baseline of the same run.
#[derive(Debug, Serialize)]
pub struct Targets {
    /// Minimum reads/s ÷ one core's decrypt + hash ops/s.
    pub reads_vs_crypto: f64,
    /// Minimum reads/s ÷ synced writes/s.
    pub reads_per_sync: f64,
    /// Maximum read p99 ÷ read p50.
    pub read_p99_vs_p50: f64,
    /// Minimum upload MB/s ÷ raw encrypt + hash + synced write MB/s.
    pub upload_vs_raw: f64,
}

/// Which targets were met.
#[derive(Debug, Serialize)]
pub struct Met {
    /// Reads per second against the crypto baseline.
    pub reads_vs_crypto: bool,
    /// Reads per second against the synced write.
    pub reads_per_sync: bool,
    /// Read p99 against the p50.
    pub read_p99: bool,
    /// Every read answered 200.
    pub no_errors: bool,
    /// Upload throughput (false when skipped).
    pub upload: bool,
}

/// The running system and the signed-in provider.
pub(crate) struct System {
    node: Node,
    pub(crate) api: String,
    pub(crate) rpc: String,
    accounts: Vec<DevnetAccount>,
    pub(crate) state: AppState,
    reader: IndexReader,
    pub(crate) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl System {
    /// The API's data directory.
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub(crate) fn key(&self, name: &str) -> anyhow::Result<&StacksKey> {
        Ok(&self.accounts.iter().find(|a| a.name == name).with_context(|| format!("no devnet account {name}"))?.key)
    }

    pub(crate) fn principal(&self, name: &str) -> anyhow::Result<medanchor_contracts::principal::Principal> {
        self.key(name)?.address(TESTNET_SINGLESIG).to_string().parse().map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    /// Mines one block and waits for the indexer to reach it.
    pub(crate) async fn mine(&self) -> anyhow::Result<()> {
        self.node.mine_blocks(1, 0).await?;
        let tip = self.node.lock().chain.tip().height;
        for _ in 0..2000 {
            if self.reader.status()?.tip_height == Some(tip) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("the indexer did not reach block {tip}")
    }

    /// Sends `call` signed by `name`, mines it and checks it succeeded.
    pub(crate) async fn tx(&self, name: &str, call: ContractCall) -> anyhow::Result<()> {
        let wallet = Wallet::connect(self.key(name)?.clone(), RpcClient::new(&self.rpc)?, DEPLOYER_ADDRESS).await?;
        let sent = wallet.submit(&call, None).await?;
        self.mine().await?;
        let outcome = wallet.wait(&sent.txid, Duration::from_secs(30)).await?;
        anyhow::ensure!(outcome.is_success(), "{} failed: {}", call.function, outcome.status);
        Ok(())
    }

    /// Signs in as `name` the way a Stacks wallet does; returns the token.
    pub(crate) async fn sign_in(&self, name: &str) -> anyhow::Result<String> {
        Ok(medanchor_wallet::sign_in(&self.http, &self.api, self.key(name)?).await?)
    }
}

/// Starts node, indexer and API on loopback, as the API's e2e tests do.
async fn start() -> anyhow::Result<System> {
    start_with(|_| {}).await
}

/// [`start`] with the API's configuration adjusted.
pub(crate) async fn start_with(configure: impl FnOnce(&mut ApiConfig)) -> anyhow::Result<System> {
    let dir = tempfile::tempdir()?;
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml")?;
    let index = Indexer::open(&dir.path().join("index"), IndexerConfig::for_deployer(DEPLOYER_ADDRESS))?;
    let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let observer_addr = observer.local_addr()?.to_string();
    tokio::spawn(medanchor_indexer::server::serve_observer(index.clone(), observer, std::future::pending()));

    let mut config = NodeConfig::new(dir.path().join("devnet"), accounts.clone());
    config.block_interval = None;
    config.observers = vec![observer_addr];
    let node = Node::open(config)?;
    let rpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rpc = format!("http://{}", rpc_listener.local_addr()?);
    tokio::spawn(node.clone().run(rpc_listener, std::future::pending()));

    let reader = IndexReader::new(index.db().clone());
    let mut custody = Custody::default();
    custody.insert(accounts.iter().find(|a| a.name == "wallet_2").context("no wallet_2")?.key.clone());
    let mut api_config = ApiConfig::new("bench", DEPLOYER_ADDRESS);
    configure(&mut api_config);
    let state = AppState::open(
        api_config,
        dir.path(),
        &dir.path().join("keys"),
        None,
        Arc::new(reader.clone()),
        RpcClient::new(&rpc)?,
        custody,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", api_listener.local_addr()?);
    tokio::spawn(medanchor_api::serve(api_listener, state.clone(), std::future::pending()));
    let sys = System { node, api, rpc, accounts, state, reader, http: reqwest::Client::new(), _dir: dir };
    sys.mine().await?;
    Ok(sys)
}

/// The on-chain set-up every bench shares, each step a signed
/// transaction: the owner registers `wallet_2` as a provider, `wallet_1`
/// registers as a patient and gives it consent for `data_types` and the
/// access `level`, until revoked.
pub(crate) async fn consenting_provider(
    sys: &System,
    data_types: &[DataType],
    level: AccessLevel,
) -> anyhow::Result<()> {
    let provider = sys.principal("wallet_2")?;
    sys.tx(
        "deployer",
        ContractCall {
            contract: ContractName::RecordManagement,
            function: "register-provider",
            args: vec![ClarityValue::Principal(provider.clone()), ClarityValue::Buffer(vec![2; 32])],
        },
    )
    .await?;
    sys.tx("wallet_1", ContractCall::register_patient([1; 32], None, None)).await?;
    for dt in data_types {
        sys.tx("wallet_1", ContractCall::grant_consent(&provider, *dt, GrantDuration::UntilRevoked)).await?;
    }
    sys.tx("wallet_1", ContractCall::grant_provider_access(&provider, level, GrantDuration::UntilRevoked)?).await
}

/// On-chain set-up, sign-in and the records; returns the provider's token
/// and the record ids.
pub(crate) async fn prepare(sys: &System, records: usize) -> anyhow::Result<(String, Vec<String>)> {
    let patient = sys.principal("wallet_1")?;
    consenting_provider(sys, &[DataType::LabResults], AccessLevel::Write).await?;
    let token = sys.sign_in("wallet_2").await?;

    let mut ids = Vec::with_capacity(records);
    let mut payload = vec![0u8; RECORD_BYTES];
    let mut first = None;
    while ids.len() < records {
        for _ in 0..CREATE_BATCH.min(records - ids.len()) {
            rand::thread_rng().fill_bytes(&mut payload);
            if first.is_none() {
                first = Some(payload.clone());
            }
            let r = sys
                .http
                .post(format!("{}/v1/patients/{patient}/records", sys.api))
                .bearer_auth(&token)
                .header("content-type", "application/octet-stream")
                .query(&[("record_type", "lab-results")])
                .body(payload.clone())
                .send()
                .await?;
            let status = r.status();
            let body: Value = r.json().await?;
            anyhow::ensure!(status.as_u16() == 202, "creating a record: {status} {body}");
            ids.push(body["record_id"].as_str().context("record_id")?.to_string());
        }
        sys.mine().await?;
    }
    // Wait until every version is anchored.
    for _ in 0..200 {
        let state = sys.state.clone();
        tokio::task::spawn_blocking(move || app::track_once(&state)).await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let (db, _) = sys.state.keys();
        if db.pending()?.is_empty() {
            // One read back, checked byte for byte against what was sent.
            if let (Some(id), Some(sent)) = (ids.first(), first) {
                let r: Value = sys
                    .http
                    .get(format!("{}/v1/records/{id}", sys.api))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                let content = r["content"].as_str().with_context(|| format!("read back: {r}"))?;
                anyhow::ensure!(
                    r["content_encoding"] == "base64" && B64.decode(content)? == sent,
                    "a record read back differs from what was written"
                );
            }
            return Ok((token, ids));
        }
        sys.mine().await?;
    }
    bail!("records were not anchored")
}

/// What one reading client saw.
#[derive(Default)]
struct ClientTally {
    latencies: Vec<Duration>,
    errors: u64,
    samples: Vec<String>,
}

/// `concurrency` clients reading round-robin until `seconds` pass.
/// `urls` (parsed once, not per request) must not be empty.
async fn read_load(urls: Vec<reqwest::Url>, token: &str, concurrency: usize, seconds: f64) -> ReadResult {
    let records = urls.len();
    let urls = Arc::new(urls);
    let auth = Arc::new(format!("Bearer {token}"));
    // Every client connects and reads once (untimed) before the clock
    // starts: the run measures reads over established keep-alive
    // connections, not 256 simultaneous TCP handshakes.
    let ready = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let (urls, auth, ready, mut start_rx) = (urls.clone(), auth.clone(), ready.clone(), start_rx.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = ClientTally::default();
            // One client per task: its own keep-alive connection.
            let http = match reqwest::Client::builder().pool_max_idle_per_host(1).build() {
                Ok(h) => h,
                Err(e) => {
                    tally.errors += 1;
                    tally.samples.push(e.to_string());
                    ready.wait().await;
                    return tally;
                }
            };
            let warm = async {
                http.get(urls[c % urls.len()].clone())
                    .header("authorization", auth.as_str())
                    .send()
                    .await?
                    .bytes()
                    .await
            }
            .await;
            if let Err(e) = warm {
                tally.errors += 1;
                tally.samples.push(format!("warm-up: {e}"));
            }
            ready.wait().await;
            let deadline = match start_rx.wait_for(Option::is_some).await {
                Ok(start) => start.unwrap_or_else(Instant::now) + Duration::from_secs_f64(seconds),
                Err(_) => return tally,
            };
            let mut i = c;
            while Instant::now() < deadline {
                let url = &urls[i % urls.len()];
                i += 1;
                let t = Instant::now();
                let result = async {
                    let r = http.get(url.clone()).header("authorization", auth.as_str()).send().await?;
                    let status = r.status();
                    let body = r.bytes().await?;
                    Ok::<_, reqwest::Error>((status, body))
                }
                .await;
                match result {
                    Ok((status, body)) if status.as_u16() == 200 && body.len() > RECORD_BYTES => {
                        tally.latencies.push(t.elapsed())
                    }
                    Ok((status, body)) => {
                        tally.errors += 1;
                        if tally.samples.len() < 3 {
                            tally
                                .samples
                                .push(format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
                        }
                    }
                    Err(e) => {
                        tally.errors += 1;
                        if tally.samples.len() < 3 {
                            tally.samples.push(e.to_string());
                        }
                    }
                }
            }
            tally
        }));
    }
    drop(start_rx);
    ready.wait().await;
    let start = Instant::now();
    let _ = start_tx.send(Some(start));
    let mut latencies = Vec::new();
    let (mut errors, mut samples) = (0, Vec::new());
    for t in tasks {
        match t.await {
            Ok(tally) => {
                latencies.extend(tally.latencies);
                errors += tally.errors;
                samples.extend(tally.samples);
            }
            Err(e) => {
                errors += 1;
                samples.push(e.to_string());
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    samples.truncate(5);
    let ok = latencies.len() as u64;
    ReadResult {
        records,
        record_bytes: RECORD_BYTES,
        concurrency,
        seconds: elapsed,
        ok,
        errors,
        error_samples: samples,
        reads_per_sec: ok as f64 / elapsed.max(1e-9),
        latency_ms: latency(latencies),
    }
}

/// Single-threaded AES-256-GCM decryption and SHA-256 of 16 KiB buffers.
fn baseline() -> anyhow::Result<Baseline> {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    let mut plain = vec![0u8; RECORD_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    rand::thread_rng().fill_bytes(&mut nonce);
    rand::thread_rng().fill_bytes(&mut plain);
    let aad = b"bench-tenant/bench-patient/record/1";
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sealed =
        cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad }).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rate = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < BASELINE_TIME {
            for _ in 0..64 {
                f()?;
            }
            n += 64;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    };
    let aes_ops = rate(&mut || {
        let out = cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed, aad })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        std::hint::black_box(out);
        Ok(())
    })?;
    let sha_ops = rate(&mut || {
        std::hint::black_box(Sha256::digest(std::hint::black_box(&sealed)));
        Ok(())
    })?;
    let mb = |ops: f64| ops * RECORD_BYTES as f64 / 1e6;
    Ok(Baseline {
        aes_gcm_decrypt_mb_per_sec: mb(aes_ops),
        aes_gcm_decrypt_ops_per_sec: aes_ops,
        sha256_mb_per_sec: mb(sha_ops),
        sha256_ops_per_sec: sha_ops,
        decrypt_and_hash_ops_per_sec: 1.0 / (1.0 / aes_ops + 1.0 / sha_ops),
    })
}

/// One large binary upload.
async fn upload(sys: &System, token: &str, mib: usize) -> anyhow::Result<UploadResult> {
    let patient = sys.principal("wallet_1")?;
    let mut payload = vec![0u8; mib << 20];
    rand::thread_rng().fill_bytes(&mut payload);
    let plain_copy = payload.clone();
    let dir = sys._dir.path();
    let bytes = payload.len();
    let url = format!("{}/v1/patients/{patient}/records?record_type=lab-results", sys.api);
    let http = reqwest::Client::new();
    let start = Instant::now();
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(payload)
        .send()
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    let status = r.status().as_u16();
    let body = r.text().await?;
    anyhow::ensure!(status == 202, "upload answered {status}: {body}");
    let raw_seconds = seal_and_store(dir, &plain_copy)?;
    let mb_per_sec = bytes as f64 / seconds.max(1e-9) / 1e6;
    let raw_mb_per_sec = bytes as f64 / raw_seconds.max(1e-9) / 1e6;
    Ok(UploadResult { bytes, seconds, mb_per_sec, status, raw_mb_per_sec, ratio: mb_per_sec / raw_mb_per_sec })
}

/// The work an upload cannot avoid, raw: AES-256-GCM encryption, SHA-256
/// of the ciphertext, and a synced write of it (file and directory) in
/// `dir`; the seconds it took.
pub(crate) fn seal_and_store(dir: &std::path::Path, plain: &[u8]) -> anyhow::Result<f64> {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut key);
    rand::thread_rng().fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = dir.join("bench-raw-upload");
    let start = Instant::now();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: b"bench" })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::hint::black_box(Sha256::digest(&sealed));
    let mut f = std::fs::File::create(&path)?;
    std::io::Write::write_all(&mut f, &sealed)?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    let seconds = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(seconds)
}

/// One writer's small synced writes to the API's own database.
pub(crate) fn synced_writes(db: &medanchor_api::db::ApiDb) -> anyhow::Result<SyncedWrite> {
    use medanchor_api::db::Cf;
    let mut samples = Vec::with_capacity(SYNCED_WRITES);
    let start = Instant::now();
    for i in 0..SYNCED_WRITES {
        let t = Instant::now();
        let mut batch = db.batch();
        batch.put_cf(db.cf(Cf::Meta), format!("bench-synced-{i}"), [0u8; 256]);
        db.write(batch).map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(t.elapsed());
    }
    let per_sec = SYNCED_WRITES as f64 / start.elapsed().as_secs_f64().max(1e-9);
    Ok(SyncedWrite { latency_ms: latency(samples), per_sec })
}

/// Runs the benchmark.
pub fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    if args.records == 0 || args.concurrency == 0 || args.seconds <= 0.0 {
        bail!("--records, --concurrency and --seconds must be positive");
    }
    let server = tokio::runtime::Builder::new_multi_thread().thread_name("api-server").enable_all().build()?;
    // The load generator runs on its own runtime so that its tasks do not
    // queue behind the server's (both share the machine's cores).
    let clients = tokio::runtime::Builder::new_multi_thread().thread_name("bench-client").enable_all().build()?;
    eprintln!("starting devnet node, indexer and API on loopback");
    let sys = server.block_on(start())?;
    eprintln!("on-chain set-up, sign-in, creating {} records of {} KiB", args.records, RECORD_BYTES / 1024);
    let (token, ids) = server.block_on(prepare(&sys, args.records))?;

    eprintln!("reading for {} s over {} connections", args.seconds, args.concurrency);
    let urls = ids
        .iter()
        .map(|id| reqwest::Url::parse(&format!("{}/v1/records/{id}", sys.api)))
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!urls.is_empty(), "no records to read");
    let reads = clients.block_on(read_load(urls, &token, args.concurrency, args.seconds));
    eprintln!("raw crypto baselines");
    let baseline = baseline()?;
    let upload = match args.upload_mib {
        0 => None,
        mib => {
            eprintln!("uploading {mib} MiB");
            Some(clients.block_on(upload(&sys, &token, mib))?)
        }
    };
    eprintln!("synced-write baseline ({SYNCED_WRITES} writes)");
    let synced_write = synced_writes(sys.state.db())?;
    let ratio = reads.reads_per_sec / baseline.decrypt_and_hash_ops_per_sec.max(1e-9);
    let reads_per_sync = reads.reads_per_sec / synced_write.per_sec.max(1e-9);
    let read_p99_vs_p50 =
        if reads.latency_ms.p50 > 0.0 { reads.latency_ms.p99 / reads.latency_ms.p50 } else { f64::INFINITY };
    let met = Met {
        reads_vs_crypto: ratio >= TARGET_READS_VS_CRYPTO,
        reads_per_sync: reads_per_sync >= TARGET_READS_PER_SYNC,
        read_p99: reads.latency_ms.count > 0 && read_p99_vs_p50 <= TARGET_READ_P99_VS_P50,
        no_errors: reads.errors == 0,
        upload: upload.as_ref().is_some_and(|u| u.ratio >= TARGET_UPLOAD_VS_RAW),
    };
    let report = ApiBenchReport {
        reads,
        baseline,
        synced_write,
        ratio,
        reads_per_sync,
        read_p99_vs_p50,
        upload,
        targets: Targets {
            reads_vs_crypto: TARGET_READS_VS_CRYPTO,
            reads_per_sync: TARGET_READS_PER_SYNC,
            read_p99_vs_p50: TARGET_READ_P99_VS_P50,
            upload_vs_raw: TARGET_UPLOAD_VS_RAW,
        },
        met,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    drop(sys);
    server.shutdown_timeout(Duration::from_secs(1));
    clients.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_report(r: &ApiBenchReport) {
    let (x, b, w) = (&r.reads, &r.baseline, &r.synced_write);
    println!(
        "reads: GET /v1/records/{{id}}, {} records of {} KiB, {} connections, {:.1} s (consent at the tip, decrypt, durable audit entry)",
        x.records,
        x.record_bytes / 1024,
        x.concurrency,
        x.seconds
    );
    println!("  {:>9.0} reads/s  ({} ok, {} errors)", x.reads_per_sec, x.ok, x.errors);
    println!(
        "  latency p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        x.latency_ms.p50, x.latency_ms.p99, x.latency_ms.max
    );
    for s in &x.error_samples {
        println!("  error: {s}");
    }
    println!("baselines, this machine, this run:");
    println!(
        "  AES-256-GCM decrypt {:>8.0} MB/s = {:>8.0} ops/s (one core, 16 KiB)",
        b.aes_gcm_decrypt_mb_per_sec, b.aes_gcm_decrypt_ops_per_sec
    );
    println!("  SHA-256             {:>8.0} MB/s = {:>8.0} ops/s", b.sha256_mb_per_sec, b.sha256_ops_per_sec);
    println!("  decrypt + hash                       {:>8.0} ops/s", b.decrypt_and_hash_ops_per_sec);
    println!(
        "  synced 256 B write to the API's RocksDB: p50 {:.3} ms  p99 {:.3} ms  = {:.0} writes/s (one writer)",
        w.latency_ms.p50, w.latency_ms.p99, w.per_sec
    );
    if let Some(u) = &r.upload {
        println!("  raw encrypt + hash + synced write of the upload's bytes: {:.0} MB/s", u.raw_mb_per_sec);
    }
    println!("targets (ratios to the baselines above):");
    println!(
        "  reads/s ÷ decrypt+hash ops/s   {:>7.3}  target >= {:.2}: {}",
        r.ratio,
        r.targets.reads_vs_crypto,
        yes_no(r.met.reads_vs_crypto)
    );
    println!(
        "  reads/s ÷ synced writes/s      {:>7.3}  target >= {:.2}: {}",
        r.reads_per_sync,
        r.targets.reads_per_sync,
        yes_no(r.met.reads_per_sync)
    );
    println!(
        "  read p99 ÷ p50                 {:>7.3}  target <= {:.2}: {}",
        r.read_p99_vs_p50,
        r.targets.read_p99_vs_p50,
        yes_no(r.met.read_p99)
    );
    println!("  every read answered 200                 {}", yes_no(r.met.no_errors));
    match &r.upload {
        Some(u) => println!(
            "  upload {:.1} MiB binary POST to 202 in {:.3} s = {:.0} MB/s; ÷ raw {:>6.3}  target >= {:.2}: {}",
            u.bytes as f64 / (1u64 << 20) as f64,
            u.seconds,
            u.mb_per_sec,
            u.ratio,
            r.targets.upload_vs_raw,
            yes_no(r.met.upload)
        ),
        None => println!("  upload: skipped (--upload-mib 0)"),
    }
}
