//! `medanchor-bench profile`: reads of a patient health profile over HTTP
//! by a provider whose consent covers part of it — a session check, the one
//! rule decided per section's data type at the indexer's tip, a decrypt, and
//! a durable audit entry — against a bare synced RocksDB write measured in
//! the same run (each read waits on one, in the audit log's group commit).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medanchor_contracts::types::{AccessLevel, DataType};
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{start_with, synced_writes, SyncedWrite};
use crate::latency::{latency, Latency};

/// The target: a profile read's p99, in milliseconds.
const TARGET_P99_MS: f64 = 5.0;

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileBenchArgs {
    /// Reads, one after another over one keep-alive connection.
    #[arg(long, default_value_t = 2_000)]
    pub reads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct ProfileBenchReport {
    /// Reads measured.
    pub reads: usize,
    /// Sections each read released (the provider's consent covers part).
    pub sections: usize,
    /// Read latency.
    pub latency_ms: Latency,
    /// Baseline: one synced 256 B write to the API's RocksDB.
    pub synced_write: SyncedWrite,
    /// p99 ÷ the synced write's p99.
    pub p99_vs_synced_write: f64,
    /// The target p99 (ms).
    pub target_p99_ms: f64,
    /// Whether the p99 is under it.
    pub met: bool,
}

/// Runs the benchmark.
pub fn run(args: ProfileBenchArgs) -> anyhow::Result<()> {
    if args.reads == 0 {
        bail!("--reads must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(measure(args.reads))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let l = &report.latency_ms;
        println!(
            "profile reads: GET /v1/patients/{{p}}/profile by a provider (consent for 2 of 4 data types), {} reads, one connection",
            report.reads
        );
        println!("  {} sections released per read", report.sections);
        println!("  latency p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms", l.p50, l.p99, l.max);
        let w = &report.synced_write.latency_ms;
        println!("baseline, this machine, this run: synced 256 B write p50 {:.3} ms  p99 {:.3} ms", w.p50, w.p99);
        println!("  read p99 ÷ synced write p99   {:>7.2}", report.p99_vs_synced_write);
        println!(
            "  read p99 {:.3} ms  target < {:.1} ms: {}",
            l.p99,
            report.target_p99_ms,
            if report.met { "met" } else { "MISSED" }
        );
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn measure(reads: usize) -> anyhow::Result<ProfileBenchReport> {
    eprintln!("starting devnet node, indexer and API on loopback");
    let sys = start_with(|_| {}).await?;
    let patient = sys.principal("wallet_1")?;
    crate::api::consenting_provider(&sys, &[DataType::MedicalHistory, DataType::TreatmentPlans], AccessLevel::Read)
        .await?;
    let patient_token = sys.sign_in("wallet_1").await?;
    let provider_token = sys.sign_in("wallet_2").await?;
    let url = format!("{}/v1/patients/{patient}/profile", sys.api);
    let profile = json!({
        "allergies": [{ "substance": "Penicillin", "reaction": "hives", "severity": "severe" }],
        "chronic_conditions": [{ "code": "E11.9" }, { "code": "I10" }],
        "current_medications": [
            { "name": "Metformin", "dose": { "value": 500, "unit": "mg" }, "route": "oral", "frequency": "twice-daily" },
            { "name": "Lisinopril", "dose": { "value": 10, "unit": "mg" }, "route": "oral", "frequency": "daily" }
        ],
        "blood_type": "O-",
        "medical_alerts": ["anticoagulated"],
        "emergency_contacts": [{ "name": "Ana", "relationship": "sister", "phone": "+1 555 010 2030" }],
        "organ_donor": true,
        "preferred_language": "es",
        "communication_preference": "sms",
        "preferred_pharmacy": "Main St Pharmacy",
        "insurance_provider": "Acme Health",
        "insurance_member_id": "AC-123",
    });
    let r = sys.http.put(&url).bearer_auth(&patient_token).header("if-match", "\"0\"").json(&profile).send().await?;
    anyhow::ensure!(r.status().as_u16() == 200, "writing the profile: {} {}", r.status(), r.text().await?);

    eprintln!("reading the profile {reads} times");
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let first: Value = http.get(&url).bearer_auth(&provider_token).send().await?.json().await?;
    let sections = first["sections"].as_array().context("sections")?.len();
    anyhow::ensure!(first["access"] == "consent" && sections > 0, "the provider's read: {first}");
    let mut samples = Vec::with_capacity(reads);
    for _ in 0..reads {
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&provider_token).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        anyhow::ensure!(status.as_u16() == 200 && body.len() > 100, "a read failed: {status}");
        samples.push(t.elapsed());
    }
    let latency_ms = latency(samples);
    eprintln!("synced-write baseline");
    let synced_write = synced_writes(sys.state.db())?;
    let p99_vs_synced_write = latency_ms.p99 / synced_write.latency_ms.p99.max(1e-9);
    let met = latency_ms.p99 < TARGET_P99_MS;
    Ok(ProfileBenchReport {
        reads,
        sections,
        latency_ms,
        synced_write,
        p99_vs_synced_write,
        target_p99_ms: TARGET_P99_MS,
        met,
    })
}
