//! `medanchor-bench devnet`: signed `grant-consent` transactions submitted
//! over HTTP to a real devnet node, measured from submission to the block
//! arriving at an event observer, against the same workload through
//! Clarinet's simnet in the same run.
//!
//! What is inside the measurement: HTTP, decoding, signature checks,
//! mempool admission, execution in the Clarity VM, the synced RocksDB
//! commit of every block and delivery to an observer. What is not: signing
//! (wallets do that before they submit) and the patients' registration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use clarity_repl::clarity::vm::types::{BuffData, PrincipalData, SequenceData};
use clarity_repl::clarity::vm::Value;
use medanchor_contracts::{ContractName, DEPLOYER_ADDRESS};
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::txbuild::{serialize, sign, Payload, TxOptions};
use rand::{RngCore, SeedableRng};
use serde::Serialize;
use tokio::sync::Notify;

/// Options of `medanchor-bench devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetBenchArgs {
    /// Number of `grant-consent` transactions measured.
    #[arg(long, default_value_t = 10_000)]
    pub txs: usize,
    /// Number of patient accounts sending them (each may have at most 24
    /// pending, stacks-node's chaining limit being 25).
    #[arg(long, default_value_t = 500)]
    pub accounts: usize,
    /// Concurrent HTTP submitters.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Milliseconds between blocks. Each block holds at most ~1,150
    /// `grant-consent` calls under mainnet's budget (read count), so the
    /// block time caps throughput; the default keeps the cap well above
    /// what the node can execute.
    #[arg(long, default_value_t = 50)]
    pub block_time_ms: u64,
    /// Skip the Clarinet simnet baseline.
    #[arg(long)]
    pub no_simnet: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct DevnetBenchReport {
    /// Transactions measured.
    pub txs: usize,
    /// Sending accounts.
    pub accounts: usize,
    /// Concurrent submitters.
    pub concurrency: usize,
    /// Block interval used.
    pub block_time_ms: u64,
    /// Accepted by `POST /v2/transactions`, per second (first submit to last acceptance).
    pub accepted_tx_per_sec: f64,
    /// Mined, committed and delivered to the observer, per second (first submit to last block).
    pub mined_tx_per_sec: f64,
    /// Submit-to-mined latency percentiles in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Blocks the workload spanned.
    pub blocks: usize,
    /// Transactions whose result was not `(ok …)` (must be 0).
    pub failed: usize,
    /// The simnet baseline, if run.
    pub simnet: Option<SimnetResult>,
    /// mined_tx_per_sec / simnet calls_per_sec.
    pub ratio: Option<f64>,
}

/// The simnet script's output.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct SimnetResult {
    /// Calls timed.
    pub calls: usize,
    /// Seconds they took.
    pub seconds: f64,
    /// Calls per second.
    pub calls_per_sec: f64,
    /// Calls that did not return `(ok …)`.
    pub failed: usize,
}

/// One measured transaction.
struct Grant {
    raw: Vec<u8>,
    txid: String,
    patient: usize,
    provider: usize,
    data_type: u128,
    duration: Option<u128>,
}

/// Blocks seen by the bench's event observer: txid → (arrival, status).
#[derive(Default)]
struct Observed {
    mined: Mutex<HashMap<String, (Instant, bool)>>,
    blocks: Mutex<Vec<(u64, usize)>>,
    changed: Notify,
}

async fn new_block(State(seen): State<Arc<Observed>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let Ok(block) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let txs = block["transactions"].as_array().cloned().unwrap_or_default();
    {
        let mut mined = seen.mined.lock().unwrap_or_else(|p| p.into_inner());
        for tx in &txs {
            if let Some(txid) = tx["txid"].as_str() {
                mined.insert(txid.to_string(), (at, tx["status"] == "success"));
            }
        }
    }
    let height = block["block_height"].as_u64().unwrap_or(0);
    seen.blocks.lock().unwrap_or_else(|p| p.into_inner()).push((height, txs.len()));
    seen.changed.notify_waiters();
    StatusCode::OK
}

/// Runs the benchmark and prints its report.
pub fn run(args: DevnetBenchArgs) -> anyhow::Result<()> {
    if args.accounts < 2 {
        bail!("--accounts must be at least 2 (patients grant to each other)");
    }
    if args.txs == 0 || args.concurrency == 0 {
        bail!("--txs and --concurrency must be positive");
    }
    if args.txs > args.accounts * 24 {
        bail!("{} transactions from {} accounts exceed 24 pending per account; add accounts", args.txs, args.accounts);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut report = runtime.block_on(devnet(&args))?;
    if !args.no_simnet {
        let simnet =
            simnet(&args).context("simnet baseline (needs `npm install` in contracts/, done by scripts/test)")?;
        report.ratio = Some(report.mined_tx_per_sec / simnet.calls_per_sec);
        report.simnet = Some(simnet);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.failed > 0 {
        bail!("{} transactions did not succeed", report.failed);
    }
    Ok(())
}

fn print_report(r: &DevnetBenchReport) {
    println!(
        "devnet: {} signed grant-consent txs from {} accounts, {} submitters, {} ms blocks",
        r.txs, r.accounts, r.concurrency, r.block_time_ms
    );
    println!("  accepted              {:>10.0} tx/s", r.accepted_tx_per_sec);
    println!("  mined and committed   {:>10.0} tx/s  ({} blocks)", r.mined_tx_per_sec, r.blocks);
    println!("  submit-to-mined       p50 {:.1} ms  p99 {:.1} ms", r.latency_p50_ms, r.latency_p99_ms);
    if let (Some(s), Some(ratio)) = (&r.simnet, r.ratio) {
        println!(
            "simnet (@stacks/clarinet-sdk): {} calls in {:.2} s = {:.0} calls/s",
            s.calls, s.seconds, s.calls_per_sec
        );
        println!("ratio mined tx/s / simnet calls/s: {ratio:.1}x (target >= 10x)");
    }
}

/// Bench accounts: deterministic keys so runs are comparable.
fn bench_accounts(n: usize) -> anyhow::Result<Vec<DevnetAccount>> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6d65_6461_6e63_686f);
    let mut accounts = parse_accounts(DEFAULT_DEVNET_TOML, "embedded Devnet.toml")?;
    for i in 0..n {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let key = StacksKey::from_hex(&hex::encode(secret))?;
        accounts.push(DevnetAccount { name: format!("bench_{i}"), key, balance: 1_000_000_000 });
    }
    Ok(accounts)
}

fn patient_id(i: usize) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    id[8] = 0xbe;
    id
}

fn call(key: &StacksKey, nonce: u64, function: &str, args: Vec<Value>) -> anyhow::Result<Vec<u8>> {
    let payload = Payload::ContractCall {
        address: PrincipalData::parse_standard_principal(DEPLOYER_ADDRESS)?.into(),
        contract: ContractName::PatientConsent.name().to_string(),
        function: function.to_string(),
        args,
    };
    Ok(serialize(&sign(key, payload, &TxOptions::new(nonce, 2_000))?))
}

fn buff(bytes: &[u8]) -> Value {
    Value::Sequence(SequenceData::Buffer(BuffData { data: bytes.to_vec() }))
}

async fn devnet(args: &DevnetBenchArgs) -> anyhow::Result<DevnetBenchReport> {
    let accounts = bench_accounts(args.accounts)?;
    let patients: Vec<&DevnetAccount> = accounts.iter().filter(|a| a.name.starts_with("bench_")).collect();

    // The event observer the node delivers blocks to.
    let seen = Arc::new(Observed::default());
    let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let observer_addr = observer.local_addr()?;
    let app = Router::new()
        .route("/new_block", post(new_block))
        .fallback(|| async { StatusCode::OK })
        .layer(DefaultBodyLimit::disable())
        .with_state(seen.clone());
    let observer_task = tokio::spawn(async move { axum::serve(observer, app).await });

    let dir = tempfile::tempdir()?;
    let mut config = NodeConfig::new(dir.path().join("devnet"), accounts.clone());
    config.block_interval = Some(Duration::from_millis(args.block_time_ms.max(1)));
    config.observers = vec![observer_addr.to_string()];
    let node = Node::open(config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rpc = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node_task = tokio::spawn(node.run(listener, async move {
        let _ = stop_rx.await;
    }));

    let result = async {
        let client = reqwest::Client::new();
        // Setup (not measured): every patient registers.
        let registrations: Vec<(String, Vec<u8>)> = patients
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let raw =
                    call(&p.key, 0, "register-patient", vec![buff(&patient_id(i)), Value::none(), Value::none()])?;
                Ok((txid_of(&raw)?, raw))
            })
            .collect::<anyhow::Result<_>>()?;
        submit_all(&client, rpc, &registrations, args.concurrency).await?;
        wait_mined(&seen, registrations.iter().map(|(t, _)| t.as_str()), Duration::from_secs(120)).await?;
        if let Some(t) = registrations.iter().find(|(t, _)| !seen_ok(&seen, t)) {
            bail!("registration {} failed", t.0);
        }

        // The measured workload, signed up front as wallets would.
        let grants = grants(&patients, args.txs)?;
        let batch: Vec<(String, Vec<u8>)> = grants.iter().map(|g| (g.txid.clone(), g.raw.clone())).collect();
        let first_block = seen.blocks.lock().unwrap_or_else(|p| p.into_inner()).len();
        let start = Instant::now();
        let submitted = submit_all(&client, rpc, &batch, args.concurrency).await?;
        let accepted_at = Instant::now();
        wait_mined(&seen, batch.iter().map(|(t, _)| t.as_str()), Duration::from_secs(600)).await?;

        let mined = seen.mined.lock().unwrap_or_else(|p| p.into_inner());
        let mut latencies: Vec<f64> = Vec::with_capacity(batch.len());
        let mut last = start;
        let mut failed = 0;
        for (txid, sent) in &submitted {
            let (at, ok) = mined[txid];
            last = last.max(at);
            failed += usize::from(!ok);
            latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        let blocks = seen.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let blocks = blocks[first_block..].iter().filter(|(_, n)| *n > 0).count();
        Ok(DevnetBenchReport {
            txs: args.txs,
            accounts: args.accounts,
            concurrency: args.concurrency,
            block_time_ms: args.block_time_ms,
            accepted_tx_per_sec: batch.len() as f64 / (accepted_at - start).as_secs_f64(),
            mined_tx_per_sec: batch.len() as f64 / (last - start).as_secs_f64(),
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p99_ms: percentile(&latencies, 0.99),
            blocks,
            failed,
            simnet: None,
            ratio: None,
        })
    }
    .await;

    let _ = stop_tx.send(());
    node_task.await.context("node task")??;
    observer_task.abort();
    result
}

fn seen_ok(seen: &Observed, txid: &str) -> bool {
    seen.mined.lock().unwrap_or_else(|p| p.into_inner()).get(txid).is_some_and(|(_, ok)| *ok)
}

fn txid_of(raw: &[u8]) -> anyhow::Result<String> {
    let candidate = medanchor_devnet::chain::Candidate::decode(raw).map_err(|r| anyhow::anyhow!(r.detail))?;
    Ok(format!("0x{}", hex::encode(candidate.txid())))
}

/// `n` grants: round-robin over patients (so nonces rise together), each to
/// another bench account, data types and durations varied.
fn grants(patients: &[&DevnetAccount], n: usize) -> anyhow::Result<Vec<Grant>> {
    (0..n)
        .map(|i| {
            let patient = i % patients.len();
            let nonce = 1 + (i / patients.len()) as u64;
            let provider = (patient + 1 + i / patients.len()) % patients.len();
            let provider = if provider == patient { (provider + 1) % patients.len() } else { provider };
            let data_type = (i % 8) as u128;
            let duration = (i % 3 != 0).then(|| 144 * (1 + i as u128 % 30));
            let duration_arg = match duration {
                None => Value::none(),
                Some(blocks) => Value::some(Value::UInt(blocks))?,
            };
            let provider_principal = PrincipalData::from(patients[provider].key.address(TESTNET_SINGLESIG));
            let raw = call(
                &patients[patient].key,
                nonce,
                "grant-consent",
                vec![Value::Principal(provider_principal), Value::UInt(data_type), duration_arg],
            )?;
            Ok(Grant { txid: txid_of(&raw)?, raw, patient, provider, data_type, duration })
        })
        .collect()
}

/// Posts every transaction with `concurrency` submitters; returns when each
/// was accepted, with the instant its submission started.
async fn submit_all(
    client: &reqwest::Client,
    rpc: SocketAddr,
    txs: &[(String, Vec<u8>)],
    concurrency: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let queue = Arc::new(Mutex::new(txs.iter().cloned().enumerate().collect::<Vec<_>>().into_iter()));
    let url = format!("http://{rpc}/v2/transactions");
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((i, (txid, raw))) = next else { break };
                let at = Instant::now();
                let resp =
                    client.post(&url).header("content-type", "application/octet-stream").body(raw).send().await?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    bail!("transaction {txid} refused ({status}): {}", resp.text().await.unwrap_or_default());
                }
                sent.push((i, txid, at));
            }
            Ok(sent)
        }));
    }
    let mut all = Vec::with_capacity(txs.len());
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(i, _, _)| *i);
    Ok(all.into_iter().map(|(_, txid, at)| (txid, at)).collect())
}

async fn wait_mined<'a>(
    seen: &Observed,
    txids: impl Iterator<Item = &'a str> + Clone,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let changed = seen.changed.notified();
        let missing = {
            let mined = seen.mined.lock().unwrap_or_else(|p| p.into_inner());
            txids.clone().filter(|t| !mined.contains_key(*t)).count()
        };
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{missing} transactions not mined after {timeout:?}");
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs the same workload through Clarinet's simnet (Node.js).
fn simnet(args: &DevnetBenchArgs) -> anyhow::Result<SimnetResult> {
    let accounts = bench_accounts(args.accounts)?;
    let patients: Vec<&DevnetAccount> = accounts.iter().filter(|a| a.name.starts_with("bench_")).collect();
    let grants = grants(&patients, args.txs)?;
    let addresses: Vec<String> = patients.iter().map(|p| p.key.address(TESTNET_SINGLESIG).to_string()).collect();
    let input = serde_json::json!({
        "patients": addresses,
        "patient_ids": (0..patients.len()).map(|i| hex::encode(patient_id(i))).collect::<Vec<_>>(),
        "providers": addresses,
        "grants": grants.iter().map(|g| {
            serde_json::json!([g.patient, g.provider, g.data_type as u64, g.duration.map(|d| d as u64)])
        }).collect::<Vec<_>>(),
    });
    let contracts = contracts_dir()?;
    let mut child = std::process::Command::new("node")
        .arg("bench/simnet-grant-consent.mjs")
        .current_dir(&contracts)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting node")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("simnet stdin")?;
        stdin.write_all(&serde_json::to_vec(&input)?)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("simnet script failed ({})", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let result: SimnetResult =
        serde_json::from_str(line.lines().last().unwrap_or_default()).context("simnet script output")?;
    if result.failed > 0 {
        bail!("{} simnet calls failed: the workloads differ", result.failed);
    }
    Ok(result)
}

fn contracts_dir() -> anyhow::Result<std::path::PathBuf> {
    // The source tree's contracts/ (the bench is run from a checkout).
    let candidates = [Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts"), Path::new("contracts").to_path_buf()];
    candidates
        .into_iter()
        .find(|p| p.join("bench/simnet-grant-consent.mjs").exists() && p.join("node_modules").exists())
        .context("contracts/ with node_modules not found; run `npm install` in contracts/")
}
