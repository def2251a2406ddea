//! `medanchor indexer` as a process under `kill -9`: blocks are delivered
//! as stacks-node delivers them, the process is killed at random moments
//! (often in the middle of a delivery, between receipt and commit), and
//! after each restart everything is delivered again. No acknowledged block
//! may be lost, re-delivery must change nothing, and the final index must
//! equal, byte for byte, one that was never interrupted.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medanchor_contracts::events::ConsentEvent;
use medanchor_contracts::principal::{Principal, StandardPrincipal};
use medanchor_contracts::types::DataType;
use medanchor_contracts::{ContractEvent, DEPLOYER_ADDRESS};
use medanchor_indexer::schema::Cf;
use medanchor_indexer::synth::{id, SynthBlock, SynthTx};
use medanchor_indexer::{Indexer, IndexerConfig};
use rand::{Rng, SeedableRng};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn person(i: u8) -> Principal {
    Principal::Standard(StandardPrincipal { version: 26, hash160: [i; 20] })
}

/// A linear chain: every block registers a patient and has earlier
/// patients grant consents.
fn chain(len: u64) -> Vec<SynthBlock> {
    let consent = format!("{DEPLOYER_ADDRESS}.patient-consent");
    let mut seqs: Vec<u64> = Vec::new();
    (0..len)
        .map(|h| {
            let mut events = Vec::new();
            let patient = seqs.len() as u8;
            events.push(ContractEvent::PatientConsent(ConsentEvent::PatientRegistered {
                patient: person(patient),
                patient_id: id(&format!("patient-{patient}")),
                emergency_contact: None,
                primary_physician: None,
                seq: 0,
                at: h,
            }));
            seqs.push(1);
            for p in 0..seqs.len().min(4) {
                let seq = seqs[p];
                seqs[p] += 1;
                events.push(ContractEvent::PatientConsent(ConsentEvent::ConsentGranted {
                    patient: person(p as u8),
                    provider: person(200 + (h % 7) as u8),
                    data_type: DataType::ALL[1 + (h as usize % 8)],
                    expires_at: (h % 2 == 0).then_some(h + 50),
                    seq,
                    at: h,
                }));
            }
            SynthBlock {
                height: h,
                id: id(&format!("block-{h}")),
                parent: id(&format!("block-{}", h.wrapping_sub(1))),
                burn_block_height: 100 + h,
                time: 1_700_000_000 + h * 600,
                txs: vec![SynthTx {
                    txid: id(&format!("tx-{h}")),
                    status: "success",
                    events: events.into_iter().map(|e| (consent.clone(), e)).collect(),
                }],
            }
        })
        .collect()
}

struct Process {
    child: Child,
    /// The observer endpoints.
    base: String,
    /// The query routes.
    query: String,
}

impl Process {
    fn start(dir: &Path) -> Process {
        let (port, query) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["indexer", "--data-dir"])
            .arg(dir)
            .args(["--observer-bind", &format!("127.0.0.1:{port}")])
            .args(["--query-bind", &format!("127.0.0.1:{query}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn medanchor indexer");
        Process { child, base: format!("http://127.0.0.1:{port}"), query: format!("http://127.0.0.1:{query}") }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every derived column family's keys and values, by family name.
type Dump = BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>;

fn derived(index: &Indexer) -> Dump {
    Cf::ALL.iter().filter(|cf| cf.is_derived()).map(|cf| (cf.name(), index.db().dump(*cf).expect("dump"))).collect()
}

#[test]
fn kill_9_during_delivery_loses_no_acknowledged_block_and_redelivery_changes_nothing() {
    let blocks = chain(80);
    let bodies: Vec<Vec<u8>> = blocks.iter().map(|b| b.to_bytes()).collect();
    let work = tempfile::tempdir().expect("tempdir");
    let config = IndexerConfig::for_deployer(DEPLOYER_ADDRESS);
    let reference = Indexer::open(&work.path().join("reference"), config.clone()).expect("index");
    for body in &bodies {
        reference.ingest_json(body).expect("ingest");
    }

    let dir = work.path().join("crashing");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let http = reqwest::Client::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut acked: Option<u64> = None;
    let mut kills = 0;
    for cycle in 0..5 {
        let mut process = Process::start(&dir);
        let status_url = format!("{}/v1/status", process.query);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status: serde_json::Value = loop {
            if let Ok(r) = rt.block_on(http.get(&status_url).send()) {
                break rt.block_on(r.json()).expect("status json");
            }
            assert!(Instant::now() < deadline, "indexer did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(h) = acked {
            let tip = status["tip_height"].as_u64().expect("a tip after acknowledged blocks");
            assert!(tip >= h, "block {h} was acknowledged but the restarted index ends at {tip}");
        }
        // Deliver everything again from the start, as a node that lost its
        // cursor would; in all but the last cycle, kill at a random moment.
        // Kill during one of the next few new blocks; the chain is long
        // enough that there are always some left (a kill that lands after
        // its block was acknowledged lets a few more through).
        let next_new = acked.map_or(0, |h| h + 1);
        let kill_at = (cycle < 4 && next_new + 8 < bodies.len() as u64).then(|| rng.gen_range(next_new..next_new + 8));
        for (i, body) in bodies.iter().enumerate() {
            let i = i as u64;
            if Some(i) == kill_at {
                let pid = process.child.id();
                let delay = Duration::from_micros(rng.gen_range(0..3_000));
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                });
            }
            let sent = rt.block_on(http.post(format!("{}/new_block", process.base)).body(body.clone()).send());
            match sent {
                Ok(r) if r.status() == 200 => acked = Some(acked.map_or(i, |a| a.max(i))),
                Ok(r) => panic!("block {i} refused: {}", r.status()),
                Err(_) if kill_at.is_some() => break,
                Err(e) => panic!("block {i}: {e}"),
            }
        }
        if kill_at.is_some() {
            let _ = process.child.wait();
            kills += 1;
        } else {
            assert_eq!(acked, Some(bodies.len() as u64 - 1));
        }
        drop(process);
    }
    assert!(kills >= 3, "only {kills} kills happened");
    let survived = Indexer::open(&dir, config).expect("reopen");
    assert_eq!(derived(&survived), derived(&reference), "the crashed index differs from an uninterrupted one");
}

/// The observer endpoint is trusted input: `medanchor indexer` refuses to
/// serve it on an address anyone could reach unless told to, and never on
/// the query address.
#[test]
fn the_indexer_refuses_a_public_observer_address_and_a_shared_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["indexer", "--data-dir", &data])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run medanchor indexer")
    };
    let cases: [(&[&str], &str); 3] = [
        (&["--observer-bind", "0.0.0.0:0", "--query-bind", "127.0.0.1:0"], "--observer-allow-public"),
        (&["--observer-bind", "[::]:0", "--query-bind", "127.0.0.1:0"], "neither loopback nor private"),
        (&["--observer-bind", "127.0.0.1:3999"], "must differ"),
    ];
    for (args, message) in cases {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{args:?}: {stderr}");
    }
    // Allowed when asked for (the process then serves until killed).
    let (observer, query) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["indexer", "--data-dir", &data, "--observer-allow-public"])
        .args(["--observer-bind", &format!("0.0.0.0:{observer}"), "--query-bind", &format!("127.0.0.1:{query}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn medanchor indexer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", query)).is_err() {
        assert!(child.try_wait().expect("try_wait").is_none(), "--observer-allow-public did not start it");
        assert!(Instant::now() < deadline, "the indexer did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
