//! `medanchor-bench export`: a patient's export of `--records` structured
//! records (consultations, vital signs and lab results in turn, written
//! through the API and anchored on an in-process devnet) as a signed PDF
//! and as a FHIR R4 Bundle, through the API over HTTP as the patient asks
//! for it — every record decided by the one rule, decrypted, drawn,
//! rendered, signed, recorded and audited — next to the baseline of the
//! same run: decrypting the same records' current versions straight from
//! the blob store with the keyring (no decision, no rendering).
//!
//! The target is < 2 s for 1,000 records per format (the seed asks
//! < 30 s). Numbers are reported, never asserted.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medanchor_api::blob::{BlobStore, LocalDir};
use medanchor_api::envelope::{Binding, Sealed};
use medanchor_contracts::types::{AccessLevel, DataType};
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::System;

/// The target per export, seconds.
const TARGET_S: f64 = 2.0;
/// Records created per mined block.
const CREATE_BATCH: usize = 25;
/// Timed runs per format (the median is reported).
const RUNS: usize = 3;

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportBenchArgs {
    /// Records of the patient's (a third each consultations, vital signs
    /// and lab results).
    #[arg(long, default_value_t = 1_000)]
    pub records: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One format's export.
#[derive(Debug, Serialize)]
pub struct FormatReport {
    /// `pdf` or `fhir`.
    pub format: &'static str,
    /// Median of the runs, seconds (request to last byte).
    pub seconds: f64,
    /// Every run, seconds.
    pub runs: Vec<f64>,
    /// The file's size.
    pub bytes: usize,
    /// seconds ÷ the baseline's.
    pub vs_decrypt: f64,
    /// Under the target.
    pub met: bool,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct ExportBenchReport {
    /// Records exported.
    pub records: usize,
    /// Baseline: decrypting every record's current version (median of the
    /// runs), seconds.
    pub decrypt_s: f64,
    /// The exports.
    pub formats: Vec<FormatReport>,
    /// The target, seconds.
    pub target_s: f64,
}

fn body(i: usize) -> Value {
    let day = format!("2026-{:02}-{:02}", 1 + (i / 28) % 12, 1 + i % 28);
    match i % 3 {
        0 => json!({
            "record_type": "diagnosis",
            "template": { "id": "consultation", "version": 1 },
            "content": {
                "visit_date": day,
                "chief_complaint": "Follow-up of type 2 diabetes",
                "examination": "Alert, well perfused. Feet: intact sensation.",
                "diagnoses": [{ "code": "E11.9", "description": "Type 2 diabetes mellitus", "primary": true }, { "code": "I10" }],
                "medications": [{ "name": "Metformin", "dose": { "value": 500, "unit": "mg" }, "route": "oral", "frequency": "twice-daily" }],
                "plan": "Continue metformin; recheck HbA1c in three months.",
            }
        }),
        1 => json!({
            "record_type": "vitals",
            "template": { "id": "vital-signs", "version": 1 },
            "content": {
                "measured": day,
                "heart_rate": { "value": 60 + i % 30, "unit": "/min" },
                "systolic": { "value": 115 + i % 40, "unit": "mm[Hg]" },
                "diastolic": { "value": 70 + i % 20, "unit": "mm[Hg]" },
                "temperature": { "value": 36.5, "unit": "Cel" },
                "weight": { "value": 70 + i % 9, "unit": "kg" },
            }
        }),
        _ => json!({
            "record_type": "lab-results",
            "template": { "id": "lab-result", "version": 1 },
            "content": {
                "collected": day,
                "results": [
                    { "test": "HbA1c", "loinc": "4548-4", "value": 6.0 + (i % 20) as f64 / 10.0, "unit": "%", "reference_range": "4.0-5.6", "flag": "high" },
                    { "test": "Creatinine", "loinc": "2160-0", "value": 0.9, "unit": "mg/dL" },
                ],
            }
        }),
    }
}

/// The patient with consent given to wallet_2 (medical history, lab
/// results; WRITE), and `records` records written by it, anchored.
async fn prepare(sys: &System, records: usize) -> anyhow::Result<Vec<String>> {
    let patient = sys.principal("wallet_1")?;
    crate::api::consenting_provider(sys, &[DataType::MedicalHistory, DataType::LabResults], AccessLevel::Write).await?;
    let token = sys.sign_in("wallet_2").await?;
    let mut ids = Vec::with_capacity(records);
    while ids.len() < records {
        for _ in 0..CREATE_BATCH.min(records - ids.len()) {
            let r = sys
                .http
                .post(format!("{}/v1/patients/{patient}/records", sys.api))
                .bearer_auth(&token)
                .json(&body(ids.len()))
                .send()
                .await?;
            let status = r.status();
            let v: Value = r.json().await?;
            anyhow::ensure!(status.is_success(), "creating a record: {status} {v}");
            ids.push(v["record_id"].as_str().context("record_id")?.to_string());
        }
        sys.mine().await?;
    }
    for _ in 0..200 {
        let state = sys.state.clone();
        tokio::task::spawn_blocking(move || medanchor_api::app::track_once(&state))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if sys.state.keys().0.pending()?.is_empty() {
            return Ok(ids);
        }
        sys.mine().await?;
    }
    bail!("records were not anchored")
}

/// The baseline: every record's newest version read from the blob store
/// and decrypted with the keyring.
fn decrypt_all(sys: &System, ids: &[String]) -> anyhow::Result<(Duration, usize)> {
    let blobs = LocalDir::open(&sys.data_dir().join("blobs"))?;
    let (db, keyring) = sys.state.keys();
    let keyring = keyring.read().map_err(|_| anyhow::anyhow!("keyring lock"))?;
    let started = Instant::now();
    let mut bytes = 0;
    for id in ids {
        let rid: [u8; 16] = hex::decode(id)?.try_into().map_err(|_| anyhow::anyhow!("record id"))?;
        let meta = db.versions(&rid)?.pop().context("a version")?;
        let blob = blobs.get(&meta.data_hash)?.context("the blob")?;
        let sealed = Sealed { blob, wrapped_key: hex::decode(&meta.wrapped_key)?, kek_version: meta.kek_version };
        let binding = Binding { tenant: "bench", patient: &meta.patient, record_id: &rid, version: meta.version };
        bytes += keyring.open_sealed(&binding, &sealed)?.len();
    }
    Ok((started.elapsed(), bytes))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark.
pub fn run(args: ExportBenchArgs) -> anyhow::Result<()> {
    if args.records == 0 {
        bail!("--records must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(async {
        let sys = crate::api::start_with(|_| {}).await?;
        eprintln!("writing {} records through the API and anchoring them…", args.records);
        let ids = prepare(&sys, args.records).await?;
        let patient = sys.principal("wallet_1")?;
        let token = sys.sign_in("wallet_1").await?;
        let mut decrypts = Vec::new();
        for _ in 0..RUNS {
            let (took, bytes) = decrypt_all(&sys, &ids)?;
            anyhow::ensure!(bytes > 0, "nothing decrypted");
            decrypts.push(took.as_secs_f64());
        }
        let decrypt_s = median(decrypts);
        let mut formats = Vec::new();
        for format in ["pdf", "fhir"] {
            let mut runs = Vec::new();
            let mut size = 0;
            for _ in 0..RUNS {
                let started = Instant::now();
                let r = sys
                    .http
                    .get(format!("{}/v1/patients/{patient}/export?format={format}", sys.api))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                let status = r.status();
                let bytes = r.bytes().await?;
                runs.push(started.elapsed().as_secs_f64());
                anyhow::ensure!(status.is_success(), "export {format}: {status}");
                size = bytes.len();
                if format == "fhir" {
                    let v: Value = serde_json::from_slice(&bytes)?;
                    let docs = v["entry"]
                        .as_array()
                        .context("entries")?
                        .iter()
                        .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
                        .count();
                    anyhow::ensure!(docs >= ids.len(), "the bundle holds {docs} documents for {} records", ids.len());
                }
            }
            let seconds = median(runs.clone());
            formats.push(FormatReport {
                format,
                seconds,
                runs,
                bytes: size,
                vs_decrypt: seconds / decrypt_s.max(1e-9),
                met: seconds < TARGET_S,
            });
        }
        Ok::<_, anyhow::Error>(ExportBenchReport { records: ids.len(), decrypt_s, formats, target_s: TARGET_S })
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("export: a patient's {} records through GET /v1/patients/{{p}}/export (median of {RUNS})", report.records);
    println!("baseline, this run: decrypt the same records' current versions  {:.3} s", report.decrypt_s);
    for f in &report.formats {
        println!(
            "  {:<5} {:>7.3} s  ({:>9} bytes)  ÷ decrypt {:>7.1}  target < {TARGET_S:.0} s: {}",
            f.format,
            f.seconds,
            f.bytes,
            f.vs_decrypt,
            if f.met { "met" } else { "MISSED" }
        );
    }
    Ok(())
}
