//! `medanchor-bench oversight`: the analytics dashboard over a large audit
//! log, and the notification outbox's delivery rate.
//!
//! 1. A million audit entries (90 days of a hospital's accesses: reads,
//!    writes, refusals, sign-ins, shares, break-glass, over stored records
//!    of every type) are appended through the audit log — counted on write
//!    as the node counts them. Then the dashboard over 7, 30 and 90 days
//!    is read repeatedly (p50, p99); the baseline, in the same run, reads
//!    the very keys the 90-day dashboard reads, raw, without decoding or
//!    summing them. Target: p99 < 100 ms.
//! 2. Events for a subscribed patient are delivered by the notifier to a
//!    webhook receiver on loopback (signed, de-duplicated by id); the
//!    baseline POSTs as many bodies to the same receiver, as many in
//!    flight, with one client.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use medanchor_api::analytics;
use medanchor_api::audit::{AuditEntry, AuditLog};
use medanchor_api::db::{AnchorStatus, ApiDb, Cf, RecordMeta};
use medanchor_contracts::{DataHash, RecordId};
use medanchor_ops::analytics::{day_key, day_of};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The target for a dashboard read at a million entries, milliseconds.
const TARGET_MS: f64 = 100.0;
/// Reads per measured window.
const READS: usize = 300;
/// Deliveries in flight, as the notifier has them.
const IN_FLIGHT: usize = 16;

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct OversightBenchArgs {
    /// Audit entries appended before the dashboard is read.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u64,
    /// Notifications delivered through the outbox.
    #[arg(long, default_value_t = 2_000)]
    pub events: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Latencies of one kind of read.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// What was read.
    pub what: String,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct OversightBenchReport {
    /// Audit entries in the log.
    pub entries: u64,
    /// Appending them (counted on write), entries per second.
    pub append_per_s: f64,
    /// Counter keys the 90-day dashboard reads.
    pub keys_read: usize,
    /// Dashboard reads over 7, 30 and 90 days.
    pub dashboard: Vec<Latency>,
    /// Baseline: the 90-day dashboard's keys read raw.
    pub raw_keys: Latency,
    /// 90-day p99 ÷ raw p99.
    pub ratio_p99: f64,
    /// p99 of every window under the target.
    pub met: bool,
    /// Notifications delivered (each once at the receiver).
    pub events: u64,
    /// Delivery through the outbox, events per second.
    pub delivered_per_s: f64,
    /// Baseline: as many bodies POSTed to the same receiver, 16 in flight,
    /// one client, per second.
    pub raw_post_per_s: f64,
    /// delivered ÷ raw.
    pub delivery_ratio: f64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latency(what: &str, mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency { what: what.into(), p50_ms: percentile(&ms, 0.5), p99_ms: percentile(&ms, 0.99) }
}

const TYPES: [(&str, &str); 6] = [
    ("lab-results", "lab-results"),
    ("diagnosis", "medical-history"),
    ("vitals", "medical-history"),
    ("medications", "treatment-plans"),
    ("mental-health", "mental-health"),
    ("imaging", "lab-results"),
];

fn record(i: u32) -> RecordMeta {
    let (record_type, data_type) = TYPES[i as usize % TYPES.len()];
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    RecordMeta {
        record_id: RecordId(id),
        version: 1,
        patient: format!("SPPATIENT{}", i % 5_000),
        record_type: record_type.into(),
        data_type: data_type.into(),
        author: format!("SPDOC{}", i % 200),
        content_type: "application/json".into(),
        size: 1,
        data_hash: DataHash([0; 32]),
        wrapped_key: String::new(),
        kek_version: 1,
        created_ms: 0,
        status: AnchorStatus::Anchored,
        txid: None,
        block_height: None,
        index_block_hash: None,
        failure: None,
        confidentiality: None,
        template: None,
        sent_ms: None,
        custodial: None,
    }
}

/// One entry of a hospital's day, over the 90 days before `now_ms`.
fn entry(rng: &mut ChaCha8Rng, now_ms: u64) -> AuditEntry {
    let at = now_ms - rng.gen_range(0..90 * 86_400_000u64);
    let doctor = rng.gen_range(0..200u32);
    let r: u32 = rng.gen_range(0..20_000);
    let roll = rng.gen_range(0..100);
    let (action, outcome) = match roll {
        0..=59 => ("record.read", "allowed"),
        60..=74 => ("record.create", "allowed"),
        75..=79 => ("record.update", "allowed"),
        80..=84 => ("record.read", "denied"),
        85..=89 => ("auth.sign-in", "allowed"),
        90..=91 => ("auth.sign-in", "denied"),
        92..=94 => ("share.create", "allowed"),
        95..=96 => ("share.redeem", "allowed"),
        97 => ("export", "allowed"),
        _ => ("record.list", "allowed"),
    };
    let mut e = AuditEntry::system(action, at);
    e.actor = format!("SPDOC{doctor}");
    e.role = "provider".into();
    e.outcome = outcome.into();
    if outcome == "denied" {
        e.reason = Some("ERR-NO-CONSENT".into());
    }
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&r.to_be_bytes());
    e.record_id = Some(hex::encode(id));
    e.patient = Some(format!("SPPATIENT{}", r % 5_000));
    e.method = Some(if rng.gen_bool(0.002) { "emergency" } else { "consent" }.into());
    if action == "record.create" && rng.gen_bool(0.5) {
        e.diagnoses = vec![["E11.9", "I10", "J45.909", "F32.1", "M54.5"][rng.gen_range(0..5)].into()];
    }
    e.ip_hash = Some(format!("{:032x}", doctor));
    e
}

/// Appends `n` entries with many writers in flight (as requests are), so
/// commits batch; returns entries per second.
async fn fill(log: &AuditLog, n: u64, now_ms: u64) -> anyhow::Result<f64> {
    const WRITERS: u64 = 512;
    let started = Instant::now();
    // Hidden when stderr is not a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(Some(n), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("appending [{bar:30}] {pos}/{len} entries  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (log, done, bar) = (log.clone(), done.clone(), bar.clone());
        let count = n / WRITERS + u64::from(w < n % WRITERS);
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(w);
            for _ in 0..count {
                log.append(entry(&mut rng, now_ms)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                bar.inc(1);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    bar.finish_and_clear();
    anyhow::ensure!(done.load(std::sync::atomic::Ordering::Relaxed) == n, "not every entry was appended");
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn dashboard_part(entries: u64) -> anyhow::Result<(f64, usize, Vec<Latency>, Latency)> {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(ApiDb::open(dir.path())?);
    for i in 0..20_000 {
        let m = record(i);
        db.put_record(&m, &m.record_id.0)?;
    }
    let now_ms = now_ms();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    eprintln!("appending {entries} audit entries (counted on write)…");
    let append_per_s = rt.block_on(async {
        let log = AuditLog::start(db.clone());
        let rate = fill(&log, entries, now_ms).await?;
        log.close().await;
        Ok::<_, anyhow::Error>(rate)
    })?;
    let size = analytics::stored(&db)?.len();
    anyhow::ensure!(size > 0, "no counters");
    let today = day_of(now_ms);
    let mut dashboard = Vec::new();
    for days in [7u32, 30, 90] {
        let mut ms = Vec::with_capacity(READS);
        for i in 0..READS + 20 {
            let started = Instant::now();
            let d = analytics::dashboard_of(&db, today, days, 5)?;
            if i >= 20 {
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::ensure!(d.series.iter().any(|s| s.total > 0), "an empty dashboard");
        }
        dashboard.push(latency(&format!("dashboard, {days} days"), ms));
    }
    // The raw baseline: the same ranges the 90-day dashboard reads.
    let (start, end) = (today - 89, today + 1);
    let c_range = (day_key(start.min(today - 13), "", ""), day_key(end, "", ""));
    let f_range = ([&b"f"[..], &(today - 6).to_be_bytes()].concat(), [&b"f"[..], &end.to_be_bytes()].concat());
    let mut ms = Vec::with_capacity(READS);
    let mut keys = 0;
    for i in 0..READS + 20 {
        let started = Instant::now();
        keys = db.scan_range(Cf::Analytics, &c_range.0, &c_range.1)?.len()
            + db.scan_range(Cf::Analytics, &f_range.0, &f_range.1)?.len();
        if i >= 20 {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let raw = latency("raw read of the same keys", ms);
    Ok((append_per_s, keys, dashboard, raw))
}

/// What the webhook receiver saw.
#[derive(Default)]
struct Received {
    ids: HashSet<String>,
    posts: u64,
}

async fn receiver() -> anyhow::Result<(String, Arc<Mutex<Received>>)> {
    let seen = Arc::new(Mutex::new(Received::default()));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, _body: axum::body::Bytes| {
            let seen = s2.clone();
            async move {
                let id = headers.get("medanchor-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                s.posts += 1;
                if !id.is_empty() {
                    s.ids.insert(id);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

async fn delivery_part(events: u64) -> anyhow::Result<(f64, f64)> {
    let sys = crate::api::start_with(|c| c.webhook_allow_private = true).await?;
    sys.tx("wallet_1", medanchor_wallet::ContractCall::register_patient([1; 32], None, None)).await?;
    let patient = sys.principal("wallet_1")?;
    let me = sys.sign_in("wallet_1").await?;
    let (url, seen) = receiver().await?;
    let r = sys
        .http
        .put(format!("{}/v1/patients/{patient}/notifications/webhook", sys.api))
        .bearer_auth(&me)
        .json(&serde_json::json!({ "webhook_url": url }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "subscribe: {}", r.status());
    // Events: a provider's reads of the patient's records, audited.
    let log = sys.state.audit().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tasks = Vec::new();
    for _ in 0..events {
        let mut e = entry(&mut rng, now_ms());
        (e.action, e.outcome, e.reason, e.patient) =
            ("record.read".into(), "allowed".into(), None, Some(patient.to_string()));
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(e).await }));
    }
    for t in tasks {
        t.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let depth = sys.state.outbox_depth()?;
    anyhow::ensure!(depth == events, "the outbox holds {depth} of {events} events");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while sys.state.outbox_depth()? > 0 {
        let (_, failed) = sys.state.deliver_once(&http).await?;
        anyhow::ensure!(failed == 0, "a delivery failed");
        if started.elapsed() > Duration::from_secs(600) {
            bail!("delivery did not finish in 10 minutes");
        }
    }
    let delivered_per_s = events as f64 / started.elapsed().as_secs_f64();
    {
        let s = seen.lock().unwrap_or_else(|p| p.into_inner());
        anyhow::ensure!(s.ids.len() as u64 == events, "the receiver saw {} distinct of {events}", s.ids.len());
    }
    // Baseline: as many bodies of the same size POSTed to the same
    // receiver, as many in flight as the notifier has, one client.
    let body = bytes::Bytes::from(vec![b'x'; 300]);
    let started = Instant::now();
    let statuses: Vec<_> = futures::stream::iter(0..events)
        .map(|i| {
            let r = http.post(&url).header("medanchor-event-id", format!("raw-{i}")).body(body.clone());
            async move { r.send().await.map(|r| r.status()) }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for status in statuses {
        anyhow::ensure!(status?.is_success(), "a raw post failed");
    }
    let raw_post_per_s = events as f64 / started.elapsed().as_secs_f64();
    Ok((delivered_per_s, raw_post_per_s))
}

/// Runs both parts and prints the report.
pub fn run(args: OversightBenchArgs) -> anyhow::Result<()> {
    if args.entries == 0 || args.events == 0 {
        bail!("--entries and --events must be positive");
    }
    let (append_per_s, keys_read, dashboard, raw_keys) = dashboard_part(args.entries)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    eprintln!("delivering {} notifications through the outbox…", args.events);
    let (delivered_per_s, raw_post_per_s) = rt.block_on(delivery_part(args.events)).context("delivery")?;
    let p99_90 = dashboard.last().map_or(0.0, |l| l.p99_ms);
    let report = OversightBenchReport {
        entries: args.entries,
        append_per_s,
        keys_read,
        met: dashboard.iter().all(|l| l.p99_ms < TARGET_MS),
        ratio_p99: p99_90 / raw_keys.p99_ms.max(1e-9),
        dashboard,
        raw_keys,
        events: args.events,
        delivered_per_s,
        raw_post_per_s,
        delivery_ratio: delivered_per_s / raw_post_per_s.max(1e-9),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "oversight: {} audit entries (appended at {:.0}/s, counted on write); the 90-day dashboard reads {} keys",
        report.entries, report.append_per_s, report.keys_read
    );
    println!(
        "baseline, this run: {}  p50 {:.3} ms  p99 {:.3} ms",
        report.raw_keys.what, report.raw_keys.p50_ms, report.raw_keys.p99_ms
    );
    for l in &report.dashboard {
        println!(
            "  {:<20} p50 {:>8.3} ms  p99 {:>8.3} ms  ÷ raw p99 {:>6.1}  target p99 < {TARGET_MS:.0} ms: {}",
            l.what,
            l.p50_ms,
            l.p99_ms,
            l.p99_ms / report.raw_keys.p99_ms.max(1e-9),
            if l.p99_ms < TARGET_MS { "met" } else { "MISSED" }
        );
    }
    println!(
        "outbox: {} notifications delivered at {:.0}/s (signed, each once at the receiver); raw POSTs, {IN_FLIGHT} in flight: {:.0}/s; ratio {:.2}",
        report.events, report.delivered_per_s, report.raw_post_per_s, report.delivery_ratio
    );
    Ok(())
}
