//! `medanchor-bench indexer`: event ingest through the HTTP observer
//! endpoint versus the same writes straight into RocksDB, and query
//! latency over a large index.
//!
//! Three measurements, one run:
//! 1. **Ingest.** `--blocks` synthetic `/new_block` payloads of
//!    `--events-per-block` contract events each (a realistic mix:
//!    registrations, consent grants and revocations with expiries, provider
//!    access grants, records created, updated and accessed), serialized up
//!    front and POSTed one at a time to the indexer's real HTTP server, as
//!    stacks-node does: the next block is sent only once the previous one
//!    was answered 200, i.e. durably committed.
//! 2. **Raw RocksDB baseline.** The exact writes those blocks produced
//!    (recorded beforehand, untimed, by ingesting them into a scratch index)
//!    written into a fresh database with the same column families and
//!    options, one synced `WriteBatch` per block. The two alternate in
//!    rounds of 20 blocks, so that both see the same conditions (other load
//!    on the machine, the disk's background writes); each rate is events
//!    over the time spent in its own rounds. The final states of both
//!    databases are compared.
//! 3. **Queries at scale.** An index loaded (through `Indexer::ingest`,
//!    untimed) with `--consents` consents and `--records` records, then
//!    `--queries` random `has-consent` checks and paginated, filtered record
//!    listings through the Rust read API, and a tenth as many over HTTP.
//!
//! Numbers are reported next to their targets, never asserted: the command
//! fails only if a block is not ingested.

use crate::latency::{latency, Latency};
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use medanchor_contracts::events::{ConsentEvent, RecordEvent};
use medanchor_contracts::principal::{Principal, StandardPrincipal, VERSION_TESTNET_SINGLESIG};
use medanchor_contracts::types::{AccessLevel, AccessMethod, DataType, RecordType, DEFAULT_RETENTION_BLOCKS};
use medanchor_contracts::{ContractEvent, DEPLOYER_ADDRESS};
use medanchor_indexer::payload::NewBlock;
use medanchor_indexer::query::{IndexReader, PageRequest, RecordFilter};
use medanchor_indexer::schema::Cf;
use medanchor_indexer::store::IndexDb;
use medanchor_indexer::synth::{SynthBlock, SynthTx};
use medanchor_indexer::{ConsentReader, Indexer, IndexerConfig, Outcome, RecordReader};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// Target ingest rate through HTTP, with a synced commit per block.
const TARGET_EVENTS_PER_SEC: f64 = 20_000.0;
/// Target ratio raw RocksDB events/s ÷ HTTP ingest events/s.
const TARGET_RATIO: f64 = 2.0;
/// Target 99th-percentile query latency.
const TARGET_P99_MS: f64 = 5.0;
/// Records a listing page asks for.
const PAGE: usize = 50;
/// Blocks per round when HTTP ingest and raw writes alternate.
const ROUND: usize = 20;

/// Options of `medanchor-bench indexer`.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexerBenchArgs {
    /// Blocks POSTed to the observer endpoint (and written raw).
    #[arg(long, default_value_t = 400)]
    pub blocks: usize,
    /// Contract events in each of those blocks.
    #[arg(long, default_value_t = 500)]
    pub events_per_block: usize,
    /// Consents in the index the queries run against.
    #[arg(long, default_value_t = 1_000_000)]
    pub consents: usize,
    /// Records in that index.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Queries of each kind timed through the Rust API (a tenth as many
    /// over HTTP); 0 skips loading the large index.
    #[arg(long, default_value_t = 20_000)]
    pub queries: usize,
    /// Events per block when loading the large index (untimed; bigger
    /// blocks load faster).
    #[arg(long, default_value_t = 10_000)]
    pub load_events_per_block: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct IndexerBenchReport {
    /// Ingest through `POST /new_block`.
    pub ingest: IngestResult,
    /// The same writes straight into RocksDB.
    pub raw: IngestResult,
    /// raw events/s ÷ HTTP events/s.
    pub ratio: f64,
    /// Whether both databases ended up with identical contents.
    pub same_state: bool,
    /// Query latencies over the large index (absent with `--queries 0`).
    pub queries: Option<QueryResult>,
    /// The targets the numbers are compared with.
    pub targets: Targets,
    /// Which targets were met.
    pub met: Met,
}

/// One ingest measurement.
#[derive(Debug, Serialize)]
pub struct IngestResult {
    /// Blocks written, each one synced batch.
    pub blocks: usize,
    /// Contract events they carried.
    pub events: usize,
    /// Events found in the `events` family afterwards.
    pub events_indexed: usize,
    /// Key writes (puts and deletes) across all batches.
    pub writes: usize,
    /// Time spent ingesting: from sending a round's first block to the
    /// answer to its last (or writing its batches), summed over the rounds.
    pub seconds: f64,
    /// events / seconds.
    pub events_per_sec: f64,
    /// Per-block latency (send to 200, or the synced batch write).
    pub block_ms: Latency,
}

/// Query latencies over the large index.
#[derive(Debug, Serialize)]
pub struct QueryResult {
    /// Consents indexed.
    pub consents: usize,
    /// Records indexed.
    pub records: usize,
    /// Patients registered.
    pub patients: usize,
    /// Providers registered.
    pub providers: usize,
    /// Events ingested to build the index.
    pub load_events: usize,
    /// Time that took (not a measured figure: large blocks, no HTTP).
    pub load_seconds: f64,
    /// `ConsentReader::has_consent`.
    pub has_consent: Latency,
    /// How many of those answered true.
    pub has_consent_allowed: usize,
    /// `RecordReader::records`, limit 50, filtered by provider or record
    /// type; first pages and cursor continuations alike.
    pub records_page: Latency,
    /// How many of those pages were cursor continuations.
    pub records_continuations: usize,
    /// Records those pages returned.
    pub records_returned: usize,
    /// `GET /v1/consent/check` (the same evaluation over HTTP).
    pub http_consent_check: Latency,
    /// `GET /v1/patients/{p}/records?limit=50&…`.
    pub http_records_page: Latency,
}

/// The targets.
#[derive(Debug, Serialize)]
pub struct Targets {
    /// Minimum ingest rate.
    pub ingest_events_per_sec: f64,
    /// Maximum raw ÷ HTTP ratio.
    pub max_ratio: f64,
    /// Maximum p99 of each query through the Rust API.
    pub query_p99_ms: f64,
}

/// Which targets were met.
#[derive(Debug, Serialize)]
pub struct Met {
    /// Ingest rate.
    pub ingest_rate: bool,
    /// Within the ratio.
    pub ratio: bool,
    /// `has-consent` p99 (None without queries).
    pub has_consent_p99: Option<bool>,
    /// Record page p99 (None without queries).
    pub records_page_p99: Option<bool>,
}

/// Runs the benchmark and prints its report.
pub fn run(args: IndexerBenchArgs) -> anyhow::Result<()> {
    if args.blocks == 0 || args.events_per_block == 0 || args.load_events_per_block == 0 {
        bail!("--blocks, --events-per-block and --load-events-per-block must be positive");
    }
    let config = IndexerConfig::for_deployer(DEPLOYER_ADDRESS);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::tempdir()?;

    // The workload, serialized up front.
    eprintln!("generating {} blocks of {} events", args.blocks, args.events_per_block);
    let mut gen = Gen::new(&config, 0x6d65_6461_6e63_686f);
    let bodies: Vec<Bytes> = (0..args.blocks)
        .map(|_| {
            for _ in 0..args.events_per_block {
                let event = gen.mixed_event();
                gen.push(event);
            }
            Bytes::from(gen.finish_block().to_bytes())
        })
        .collect();

    // The writes each block produces, recorded on a scratch index.
    eprintln!("recording the writes of each block on a scratch index");
    let batches = {
        let scratch = Indexer::open(&work.path().join("scratch"), config.clone())?;
        let mut batches = Vec::with_capacity(bodies.len());
        for body in &bodies {
            let row = scratch.block_row(&NewBlock::parse(body)?)?;
            let (outcome, mut recorded) = scratch.ingest_recorded(row)?;
            if !matches!(outcome, Outcome::Applied { .. }) || recorded.len() != 1 {
                bail!("scratch ingest: unexpected outcome {outcome:?}");
            }
            batches.extend(recorded.pop());
        }
        batches
    };
    let _ = std::fs::remove_dir_all(work.path().join("scratch"));
    let writes: usize = batches.iter().map(Vec::len).sum();
    let events = args.blocks * args.events_per_block;

    // 1 and 2, interleaved by rounds of a few blocks, so that both see the
    // same conditions (other load on the machine, the disk's background
    // writes) rather than one of them getting the quieter spell.
    eprintln!("ingesting {events} events over HTTP and writing the same {writes} keys straight into RocksDB");
    let indexer = Indexer::open(&work.path().join("http"), config.clone())?;
    let db = IndexDb::open(&work.path().join("raw"))?;
    let server = runtime.block_on(Server::start(indexer.clone()))?;
    let client = reqwest::Client::new();
    let (mut http_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let (mut http_latencies, mut raw_latencies) = (Vec::new(), Vec::new());
    for (round, (bodies, batches)) in bodies.chunks(ROUND).zip(batches.chunks(ROUND)).enumerate() {
        let start = Instant::now();
        runtime.block_on(post_blocks(&client, &server.observer, round * ROUND, bodies, &mut http_latencies))?;
        http_time += start.elapsed();
        let start = Instant::now();
        for batch in batches {
            let t = Instant::now();
            db.write_all(batch)?;
            raw_latencies.push(t.elapsed());
        }
        raw_time += start.elapsed();
    }
    runtime.block_on(server.stop())?;
    drop(bodies);
    drop(batches);
    let (http_state, raw_state) = (digest(indexer.db())?, digest(&db)?);
    let result = |seconds: f64, state: &StateDigest, latencies| IngestResult {
        blocks: args.blocks,
        events,
        events_indexed: state.events,
        writes,
        seconds,
        events_per_sec: events as f64 / seconds,
        block_ms: latency(latencies),
    };
    let ingest = result(http_time.as_secs_f64(), &http_state, http_latencies);
    let raw = result(raw_time.as_secs_f64(), &raw_state, raw_latencies);
    drop(indexer);
    drop(db);
    let _ = std::fs::remove_dir_all(work.path().join("http"));
    let _ = std::fs::remove_dir_all(work.path().join("raw"));

    // 3. Queries at scale.
    let queries =
        if args.queries > 0 { Some(query_bench(&args, &config, &work.path().join("large"), &runtime)?) } else { None };

    let ratio = raw.events_per_sec / ingest.events_per_sec;
    let met = Met {
        ingest_rate: ingest.events_per_sec >= TARGET_EVENTS_PER_SEC,
        ratio: ratio <= TARGET_RATIO,
        has_consent_p99: queries.as_ref().map(|q| q.has_consent.p99 < TARGET_P99_MS),
        records_page_p99: queries.as_ref().map(|q| q.records_page.p99 < TARGET_P99_MS),
    };
    let report = IndexerBenchReport {
        ingest,
        raw,
        ratio,
        same_state: http_state == raw_state,
        queries,
        targets: Targets {
            ingest_events_per_sec: TARGET_EVENTS_PER_SEC,
            max_ratio: TARGET_RATIO,
            query_p99_ms: TARGET_P99_MS,
        },
        met,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if !report.same_state {
        bail!("the raw baseline did not reproduce the indexed state: the comparison is invalid");
    }
    Ok(())
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_report(r: &IndexerBenchReport) {
    let i = &r.ingest;
    println!(
        "ingest: {} blocks x {} events = {} events, {} key writes, one synced batch per block",
        i.blocks,
        i.events / i.blocks.max(1),
        i.events,
        i.writes
    );
    println!(
        "  HTTP /new_block      {:>9.0} events/s  block p50 {:>6.2} ms  p99 {:>6.2} ms   target >= {:.0} events/s: {}",
        i.events_per_sec,
        i.block_ms.p50,
        i.block_ms.p99,
        r.targets.ingest_events_per_sec,
        yes_no(r.met.ingest_rate)
    );
    println!(
        "  raw RocksDB batches  {:>9.0} events/s  block p50 {:>6.2} ms  p99 {:>6.2} ms",
        r.raw.events_per_sec, r.raw.block_ms.p50, r.raw.block_ms.p99
    );
    println!(
        "  ratio raw / HTTP     {:>9.2}x   target <= {:.0}x: {}   identical final state: {}",
        r.ratio,
        r.targets.max_ratio,
        yes_no(r.met.ratio),
        r.same_state
    );
    if let Some(q) = &r.queries {
        println!(
            "queries: {} consents, {} records, {} patients, {} providers ({} events loaded in {:.0} s)",
            q.consents, q.records, q.patients, q.providers, q.load_events, q.load_seconds
        );
        let line = |name: &str, l: &Latency, target: Option<bool>| {
            let verdict = match target {
                Some(met) => format!("   target p99 < {:.0} ms: {}", r.targets.query_p99_ms, yes_no(met)),
                None => String::new(),
            };
            println!(
                "  {name:<28} n={:<6} p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms{verdict}",
                l.count, l.p50, l.p99, l.max
            );
        };
        line("has-consent (Rust API)", &q.has_consent, r.met.has_consent_p99);
        line("records page (Rust API)", &q.records_page, r.met.records_page_p99);
        line("consent check (HTTP)", &q.http_consent_check, None);
        line("records page (HTTP)", &q.http_records_page, None);
        println!(
            "  ({} of {} consent checks allowed; {} of {} pages were cursor continuations, {} records returned)",
            q.has_consent_allowed,
            q.has_consent.count,
            q.records_continuations,
            q.records_page.count,
            q.records_returned
        );
    }
}

/// The indexer's HTTP servers, on loopback ports: the observer endpoints
/// and the query routes.
struct Server {
    observer: String,
    query: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(indexer: Indexer) -> anyhow::Result<Server> {
        let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let query = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (observer_url, query_url) =
            (format!("http://{}", observer.local_addr()?), format!("http://{}", query.local_addr()?));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(medanchor_indexer::server::serve(indexer, None, observer, query, async move {
            let _ = stopped.await;
        }));
        Ok(Server { observer: observer_url, query: query_url, stop, task })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("indexer server task")??;
        Ok(())
    }
}

/// POSTs `bodies` (blocks `first`, `first + 1`, …) to `/new_block` in
/// order, each once the previous one was answered, as stacks-node does.
async fn post_blocks(
    client: &reqwest::Client,
    base: &str,
    first: usize,
    bodies: &[Bytes],
    latencies: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    let url = format!("{base}/new_block");
    for (i, body) in (first..).zip(bodies) {
        let t = Instant::now();
        let resp = client.post(&url).header("content-type", "application/json").body(body.clone()).send().await?;
        let status = resp.status();
        let answer = resp.bytes().await?;
        latencies.push(t.elapsed());
        if !status.is_success() {
            bail!("block {i} refused ({status}): {}", String::from_utf8_lossy(&answer));
        }
        let answer: serde_json::Value = serde_json::from_slice(&answer).context("/new_block answer")?;
        if answer["result"] != "applied" {
            bail!("block {i} not applied: {answer}");
        }
    }
    Ok(())
}

/// A summary of a database's contents: equal summaries mean (up to a
/// 64-bit hash collision) equal contents.
#[derive(Debug, PartialEq, Eq)]
struct StateDigest {
    keys: Vec<usize>,
    hash: u64,
    events: usize,
}

fn digest(db: &IndexDb) -> anyhow::Result<StateDigest> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut keys = Vec::new();
    for &cf in Cf::ALL {
        let all = db.dump(cf)?;
        keys.push(all.len());
        all.hash(&mut hasher);
    }
    let events = keys[Cf::ALL.iter().position(|c| *c == Cf::Events).unwrap_or_default()];
    Ok(StateDigest { keys, hash: hasher.finish(), events })
}

/// The burn height of Stacks block `height` (one Stacks block per burn
/// block, as before Nakamoto).
fn burn_height(height: u64) -> u64 {
    1_000 + height
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn record_id(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&splitmix(n).to_be_bytes());
    id[8..].copy_from_slice(&splitmix(n ^ 0x5bd1_e995).to_be_bytes());
    id
}

fn patient_id(n: u64) -> [u8; 32] {
    let mut id = [0u8; 32];
    for (i, chunk) in id.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix(n.wrapping_mul(4).wrapping_add(i as u64) ^ 0x7061_7469).to_be_bytes());
    }
    id
}

struct PatientState {
    principal: Principal,
    /// Next history seq.
    seq: u64,
}

struct RecordState {
    patient: u32,
    version: u64,
}

/// Which contract printed an event.
#[derive(Clone, Copy)]
enum Contract {
    Consent,
    Records,
}

/// Synthetic chain activity with consistent state: history seqs follow
/// each patient, revocations and record updates refer to what exists.
struct Gen {
    rng: ChaCha20Rng,
    consent_contract: String,
    records_contract: String,
    patients: Vec<PatientState>,
    providers: Vec<Principal>,
    /// Consents granted and not revoked: (patient, provider, data type),
    /// as a list to draw from and a set to look up.
    active: Vec<(u32, u32, DataType)>,
    active_set: HashSet<(u32, u32, DataType)>,
    records: Vec<RecordState>,
    /// Height of the block being built.
    height: u64,
    parent: [u8; 32],
    txs: Vec<SynthTx>,
    tx_count: u64,
}

impl Gen {
    fn new(config: &IndexerConfig, seed: u64) -> Gen {
        Gen {
            rng: ChaCha20Rng::seed_from_u64(seed),
            consent_contract: config.consent_contract.clone(),
            records_contract: config.records_contract.clone(),
            patients: Vec::new(),
            providers: Vec::new(),
            active: Vec::new(),
            active_set: HashSet::new(),
            records: Vec::new(),
            height: 1,
            parent: [0; 32],
            txs: Vec::new(),
            tx_count: 0,
        }
    }

    fn at(&self) -> u64 {
        burn_height(self.height)
    }

    fn principal(&mut self) -> Principal {
        let mut hash160 = [0u8; 20];
        self.rng.fill_bytes(&mut hash160);
        Principal::Standard(StandardPrincipal { version: VERSION_TESTNET_SINGLESIG, hash160 })
    }

    fn hash32(&mut self) -> [u8; 32] {
        let mut h = [0u8; 32];
        self.rng.fill_bytes(&mut h);
        h
    }

    /// One transaction printing `event`.
    fn push(&mut self, (contract, event): (Contract, ContractEvent)) {
        self.tx_count += 1;
        let mut txid = [0u8; 32];
        for (i, chunk) in txid.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&splitmix(self.tx_count.wrapping_mul(4).wrapping_add(i as u64)).to_be_bytes());
        }
        let contract = match contract {
            Contract::Consent => self.consent_contract.clone(),
            Contract::Records => self.records_contract.clone(),
        };
        self.txs.push(SynthTx { txid, status: "success", events: vec![(contract, event)] });
    }

    fn finish_block(&mut self) -> SynthBlock {
        let id = medanchor_indexer::synth::id(&format!("bench-block-{}", self.height));
        let block = SynthBlock {
            height: self.height,
            id,
            parent: self.parent,
            burn_block_height: self.at(),
            time: 1_700_000_000 + self.height * 600,
            txs: std::mem::take(&mut self.txs),
        };
        self.parent = id;
        self.height += 1;
        block
    }

    fn register_provider(&mut self) -> (Contract, ContractEvent) {
        let provider = self.principal();
        self.providers.push(provider.clone());
        let event = RecordEvent::ProviderRegistered { provider, credential_hash: self.hash32(), at: self.at() };
        (Contract::Records, ContractEvent::RecordManagement(event))
    }

    fn register_patient(&mut self) -> (Contract, ContractEvent) {
        let patient = self.principal();
        let n = self.patients.len() as u64;
        self.patients.push(PatientState { principal: patient.clone(), seq: 1 });
        let physician = (!self.providers.is_empty() && self.rng.gen_bool(0.5))
            .then(|| self.providers[self.rng.gen_range(0..self.providers.len())].clone());
        let contact = self.rng.gen_bool(0.3).then(|| self.principal());
        let event = ConsentEvent::PatientRegistered {
            patient,
            patient_id: patient_id(n),
            emergency_contact: contact,
            primary_physician: physician,
            seq: 0,
            at: self.at(),
        };
        (Contract::Consent, ContractEvent::PatientConsent(event))
    }

    fn next_seq(&mut self, patient: u32) -> u64 {
        let p = &mut self.patients[patient as usize];
        p.seq += 1;
        p.seq - 1
    }

    /// Most consents run for days to a year; some for a few blocks, so that
    /// expired ones exist.
    fn expiry(&mut self) -> Option<u64> {
        let at = self.at();
        match self.rng.gen_range(0..10) {
            0..=2 => None,
            3 => Some(at + self.rng.gen_range(1..=200)),
            _ => Some(at + 144 * self.rng.gen_range(1..=365)),
        }
    }

    fn grant(&mut self, patient: u32, provider: u32, data_type: DataType) -> (Contract, ContractEvent) {
        let seq = self.next_seq(patient);
        let event = ConsentEvent::ConsentGranted {
            patient: self.patients[patient as usize].principal.clone(),
            provider: self.providers[provider as usize].clone(),
            data_type,
            expires_at: self.expiry(),
            seq,
            at: self.at(),
        };
        (Contract::Consent, ContractEvent::PatientConsent(event))
    }

    fn revoke(&mut self, patient: u32, provider: u32, data_type: DataType) -> (Contract, ContractEvent) {
        let seq = self.next_seq(patient);
        let event = ConsentEvent::ConsentRevoked {
            patient: self.patients[patient as usize].principal.clone(),
            provider: self.providers[provider as usize].clone(),
            data_type,
            seq,
            at: self.at(),
        };
        (Contract::Consent, ContractEvent::PatientConsent(event))
    }

    fn create_record(&mut self, patient: u32, provider: u32) -> (Contract, ContractEvent) {
        let n = self.records.len() as u64;
        self.records.push(RecordState { patient, version: 1 });
        let record_type = RecordType::ALL[self.rng.gen_range(0..RecordType::ALL.len())];
        let at = self.at();
        let event = RecordEvent::RecordCreated {
            record_id: record_id(n),
            patient: self.patients[patient as usize].principal.clone(),
            record_type,
            data_type: record_type.data_type(),
            data_hash: self.hash32(),
            encryption_key_id: Some(self.hash32()),
            confidentiality: self.rng.gen_range(0..=3),
            created_by: self.providers[provider as usize].clone(),
            access: AccessMethod::Consent,
            retention_until: at + DEFAULT_RETENTION_BLOCKS,
            at,
        };
        (Contract::Records, ContractEvent::RecordManagement(event))
    }

    fn random_patient(&mut self) -> u32 {
        self.rng.gen_range(0..self.patients.len()) as u32
    }

    fn random_provider(&mut self) -> u32 {
        self.rng.gen_range(0..self.providers.len()) as u32
    }

    /// One event of the ingest mix; state it needs is created first.
    fn mixed_event(&mut self) -> (Contract, ContractEvent) {
        if self.providers.len() < 20 {
            return self.register_provider();
        }
        if self.patients.len() < 20 {
            return self.register_patient();
        }
        let at = self.at();
        match self.rng.gen_range(0..100) {
            0..=9 => self.register_patient(),
            10..=11 => self.register_provider(),
            12..=41 => {
                let (patient, provider) = (self.random_patient(), self.random_provider());
                let data_type = DataType::ALL[self.rng.gen_range(0..DataType::ALL.len())];
                if self.active_set.insert((patient, provider, data_type)) {
                    self.active.push((patient, provider, data_type));
                }
                self.grant(patient, provider, data_type)
            }
            42..=46 if !self.active.is_empty() => {
                let (patient, provider, data_type) = self.active.swap_remove(self.rng.gen_range(0..self.active.len()));
                self.active_set.remove(&(patient, provider, data_type));
                self.revoke(patient, provider, data_type)
            }
            47..=54 => {
                let (patient, provider) = (self.random_patient(), self.random_provider());
                let level = [AccessLevel::Read, AccessLevel::Write, AccessLevel::Admin][self.rng.gen_range(0..3)];
                let expires_at = self.expiry();
                let event = RecordEvent::ProviderAccessGranted {
                    patient: self.patients[patient as usize].principal.clone(),
                    provider: self.providers[provider as usize].clone(),
                    access_level: level,
                    expires_at,
                    at,
                };
                (Contract::Records, ContractEvent::RecordManagement(event))
            }
            55..=79 => {
                let (patient, provider) = (self.random_patient(), self.random_provider());
                self.create_record(patient, provider)
            }
            80..=89 if !self.records.is_empty() => {
                let n = self.rng.gen_range(0..self.records.len());
                let updated_by = self.random_provider();
                let record = &mut self.records[n];
                record.version += 1;
                let (patient, version) = (record.patient, record.version);
                let event = RecordEvent::RecordUpdated {
                    record_id: record_id(n as u64),
                    patient: self.patients[patient as usize].principal.clone(),
                    version,
                    data_hash: self.hash32(),
                    encryption_key_id: Some(self.hash32()),
                    updated_by: self.providers[updated_by as usize].clone(),
                    at,
                };
                (Contract::Records, ContractEvent::RecordManagement(event))
            }
            90..=99 if !self.records.is_empty() => {
                let n = self.rng.gen_range(0..self.records.len());
                let accessor = self.random_provider();
                let record = &self.records[n];
                let event = RecordEvent::RecordAccessed {
                    record_id: record_id(n as u64),
                    patient: self.patients[record.patient as usize].principal.clone(),
                    accessor: self.providers[accessor as usize].clone(),
                    access: AccessMethod::Consent,
                    version: record.version,
                    at,
                };
                (Contract::Records, ContractEvent::RecordManagement(event))
            }
            _ => {
                let (patient, provider) = (self.random_patient(), self.random_provider());
                self.create_record(patient, provider)
            }
        }
    }
}

/// The large index: `patients` patients with about ten consents each (to
/// distinct provider/data-type pairs; one in twenty later revoked), and
/// records of which a fifth belong to the 1% "chronic" patients, so that
/// some listings span several pages.
struct LoadPlan {
    consents: usize,
    records: usize,
    patients: usize,
    providers: usize,
    registered_providers: usize,
    registered_patients: usize,
    step: usize,
    queue: VecDeque<(Contract, ContractEvent)>,
}

impl LoadPlan {
    fn new(consents: usize, records: usize) -> LoadPlan {
        let patients = (consents / 10).max(1);
        let providers = (patients / 50).clamp(20, 2_000);
        LoadPlan {
            consents,
            records,
            patients,
            providers,
            registered_providers: 0,
            registered_patients: 0,
            step: 0,
            queue: VecDeque::new(),
        }
    }

    /// The provider a patient granted first (records are mostly theirs).
    fn base_provider(&self, patient: usize) -> usize {
        (splitmix(patient as u64) % self.providers as u64) as usize
    }

    /// The (patient, provider, data type) of grant `g`.
    fn grant_key(&self, g: usize) -> (usize, usize, DataType) {
        let patient = g % self.patients;
        let j = g / self.patients;
        let provider = (self.base_provider(patient) + j) % self.providers;
        (patient, provider, DataType::ALL[j % DataType::ALL.len()])
    }

    /// The patient owning record `r`.
    fn record_patient(&self, r: usize, rng: &mut ChaCha20Rng) -> usize {
        if r % 5 == 0 {
            rng.gen_range(0..(self.patients / 100).max(1))
        } else {
            rng.gen_range(0..self.patients)
        }
    }

    fn next(&mut self, gen: &mut Gen) -> Option<(Contract, ContractEvent)> {
        if let Some(e) = self.queue.pop_front() {
            return Some(e);
        }
        if self.registered_providers < self.providers {
            self.registered_providers += 1;
            return Some(gen.register_provider());
        }
        if self.registered_patients < self.patients {
            self.registered_patients += 1;
            return Some(gen.register_patient());
        }
        while self.step < self.consents.max(self.records) {
            let s = self.step;
            self.step += 1;
            if s < self.consents {
                let (patient, provider, data_type) = self.grant_key(s);
                let e = gen.grant(patient as u32, provider as u32, data_type);
                self.queue.push_back(e);
                if s % 20 == 19 {
                    let e = gen.revoke(patient as u32, provider as u32, data_type);
                    self.queue.push_back(e);
                }
            }
            if s < self.records {
                let patient = self.record_patient(s, &mut gen.rng);
                let provider = (self.base_provider(patient) + s % 3) % self.providers;
                let e = gen.create_record(patient as u32, provider as u32);
                self.queue.push_back(e);
            }
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
        }
        None
    }
}

fn query_bench(
    args: &IndexerBenchArgs,
    config: &IndexerConfig,
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<QueryResult> {
    let indexer = Indexer::open(dir, config.clone())?;
    let mut plan = LoadPlan::new(args.consents, args.records);
    let total = plan.providers + plan.patients + args.consents + args.consents / 20 + args.records;
    eprintln!(
        "loading {} consents and {} records ({} events in blocks of {}) through Indexer::ingest",
        args.consents, args.records, total, args.load_events_per_block
    );

    // Generation and JSON on one thread, ingest on this one.
    let (tx, rx) = mpsc::sync_channel::<anyhow::Result<(usize, medanchor_indexer::schema::BlockRow)>>(2);
    let load_per_block = args.load_events_per_block;
    let reader_indexer = indexer.clone();
    let producer = std::thread::spawn(move || {
        let mut gen = Gen::new(&IndexerConfig::for_deployer(DEPLOYER_ADDRESS), 0x6c6f_6164);
        loop {
            let mut n = 0;
            while n < load_per_block {
                let Some(e) = plan.next(&mut gen) else { break };
                gen.push(e);
                n += 1;
            }
            if n == 0 {
                return (gen, plan);
            }
            let body = gen.finish_block().to_bytes();
            let row = NewBlock::parse(&body)
                .and_then(|b| reader_indexer.block_row(&b))
                .map(|row| (n, row))
                .map_err(anyhow::Error::from);
            if tx.send(row).is_err() {
                return (gen, plan);
            }
        }
    });
    let start = Instant::now();
    let mut loaded = 0;
    let mut reported = 0;
    for item in rx {
        let (n, row) = item?;
        let outcome = indexer.ingest(row)?;
        if !matches!(outcome, Outcome::Applied { .. }) {
            bail!("loading: unexpected outcome {outcome:?}");
        }
        loaded += n;
        if loaded * 20 / total.max(1) > reported {
            reported = loaded * 20 / total.max(1);
            let secs = start.elapsed().as_secs_f64();
            eprintln!("  {loaded}/{total} events, {secs:.0} s, {:.0} events/s", loaded as f64 / secs);
        }
    }
    let load_seconds = start.elapsed().as_secs_f64();
    let (gen, plan) = producer.join().map_err(|_| anyhow::anyhow!("load generator panicked"))?;

    // Query inputs, drawn before timing.
    let mut rng = ChaCha20Rng::seed_from_u64(0x7175_6572);
    let consent_queries: Vec<(Principal, Principal, u8)> = (0..args.queries)
        .map(|i| {
            if i % 2 == 0 && plan.consents > 0 {
                // A granted consent (broad grants checked through a standard type).
                let (patient, provider, dt) = plan.grant_key(rng.gen_range(0..plan.consents));
                let dt = if dt == DataType::AllStandard { DataType::LabResults } else { dt };
                (gen.patients[patient].principal.clone(), gen.providers[provider].clone(), dt.code())
            } else {
                let patient = rng.gen_range(0..gen.patients.len());
                let provider = rng.gen_range(0..gen.providers.len());
                (gen.patients[patient].principal.clone(), gen.providers[provider].clone(), rng.gen_range(1..=8))
            }
        })
        .collect();
    // Listings of patients chosen in proportion to their records.
    let record_queries: Vec<(Principal, RecordFilter)> = (0..args.queries)
        .map(|i| {
            let patient = if gen.records.is_empty() {
                rng.gen_range(0..gen.patients.len())
            } else {
                gen.records[rng.gen_range(0..gen.records.len())].patient as usize
            };
            let filter = if i % 2 == 0 {
                RecordFilter {
                    provider: Some(gen.providers[plan.base_provider(patient)].clone()),
                    ..Default::default()
                }
            } else {
                let t = RecordType::ALL[rng.gen_range(0..RecordType::ALL.len())];
                RecordFilter { record_type: Some(t), ..Default::default() }
            };
            (gen.patients[patient].principal.clone(), filter)
        })
        .collect();

    eprintln!("timing {} has-consent checks and {} record listings", args.queries, args.queries);
    let reader = IndexReader::new(indexer.db().clone());
    let mut consent_times = Vec::with_capacity(consent_queries.len());
    let mut allowed = 0;
    for (patient, provider, dt) in &consent_queries {
        let t = Instant::now();
        let ok = reader.has_consent(patient, provider, *dt)?;
        consent_times.push(t.elapsed());
        allowed += usize::from(ok);
    }
    let mut page_times = Vec::with_capacity(record_queries.len() * 2);
    let (mut continuations, mut returned) = (0, 0);
    for (patient, filter) in &record_queries {
        let mut page = PageRequest { cursor: None, limit: Some(PAGE) };
        // The first page and, when there is one, the next.
        for n in 0..2 {
            let t = Instant::now();
            let got = reader.records(patient, filter, &page)?;
            page_times.push(t.elapsed());
            continuations += n;
            returned += got.items.len();
            match got.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
    }

    let sample = (args.queries / 10).max(1);
    eprintln!("timing {sample} of each over HTTP");
    let (http_consent, http_records) =
        runtime.block_on(http_queries(indexer.clone(), &consent_queries[..sample.min(consent_queries.len())], {
            &record_queries[..sample.min(record_queries.len())]
        }))?;

    Ok(QueryResult {
        consents: args.consents,
        records: args.records,
        patients: plan.patients,
        providers: plan.providers,
        load_events: loaded,
        load_seconds,
        has_consent: latency(consent_times),
        has_consent_allowed: allowed,
        records_page: latency(page_times),
        records_continuations: continuations,
        records_returned: returned,
        http_consent_check: http_consent,
        http_records_page: http_records,
    })
}

async fn http_queries(
    indexer: Indexer,
    consents: &[(Principal, Principal, u8)],
    records: &[(Principal, RecordFilter)],
) -> anyhow::Result<(Latency, Latency)> {
    let server = Server::start(indexer).await?;
    let base = server.query.clone();
    let result = async {
        let client = reqwest::Client::new();
        let get = |url: String| {
            let client = client.clone();
            async move {
                let t = Instant::now();
                let resp = client.get(&url).send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                let elapsed = t.elapsed();
                if !status.is_success() {
                    bail!("GET {url}: {status} {}", String::from_utf8_lossy(&body));
                }
                Ok::<_, anyhow::Error>(elapsed)
            }
        };
        let mut consent_times = Vec::with_capacity(consents.len());
        for (patient, provider, dt) in consents {
            let url = format!("{base}/v1/consent/check?patient={patient}&provider={provider}&data_type={dt}");
            consent_times.push(get(url).await?);
        }
        let mut record_times = Vec::with_capacity(records.len());
        for (patient, filter) in records {
            let query = match (&filter.provider, filter.record_type) {
                (Some(p), _) => format!("provider={p}"),
                (None, Some(t)) => format!("type={t}"),
                (None, None) => String::new(),
            };
            let url = format!("{base}/v1/patients/{patient}/records?limit={PAGE}&{query}");
            record_times.push(get(url).await?);
        }
        Ok((latency(consent_times), latency(record_times)))
    }
    .await;
    server.stop().await?;
    result
}
