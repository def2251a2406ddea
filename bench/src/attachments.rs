//! `medanchor-bench attachments`: a large file through the node's
//! resumable (tus) upload and its download, on local disk and on a real
//! SeaweedFS, next to the raw work measured in the same run; and one batch
//! of many file hashes anchored in one transaction, every proof checked.
//!
//! Per backend (the API's e2e harness: devnet, indexer, API on loopback;
//! the provider registered with consent and write access; one record):
//! 1. **tus upload** of `--mib` MiB typed `image/jpeg` (random bytes behind
//!    a JPEG signature: nothing to compress) — `POST` then `PATCH`es of
//!    `--chunk-mib`: one pass, each piece sealed (STREAM, AES-256-GCM)
//!    straight into the final stream file and synced before it is
//!    acknowledged; on S3 its whole parts sent while the next piece
//!    arrives; the last one checks the content, seals the last chunk,
//!    hashes the stream and stores it (linked and synced on local disk,
//!    the remaining parts on S3). Timed from the `POST` to the last `204`.
//!    The store is warmed first (a fresh SeaweedFS takes its first write
//!    several times slower; whichever measurement came first would pay).
//! 2. **download** of the same file (`GET`, decrypted, compared).
//! 3. **raw store**: `object_store` putting and getting the same number of
//!    bytes (no encryption, no HTTP), through the same backend.
//! 4. On local disk, **raw crypto + synced write**: AES-256-GCM, SHA-256
//!    and a synced file write of the bytes, one core.
//! 5. **gzip path** (local disk): a `--mib` MiB PDF of text, compressed
//!    before sealing.
//!
//! Then **batch anchoring**: `--batch` file hashes queued, sealed into one
//! RFC 6962 tree, sent as one `anchor-batch`, mined, settled; every proof
//! built and checked against the root read from the chain (`get-batch`).
//!
//! Targets are ratios to baselines of the same run; numbers are reported,
//! never asserted (the command fails only if the work itself fails).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medanchor_api::file_anchors::{BatchStatus, FileAnchorer};
use medanchor_api::merkle;
use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};
use medanchor_storage::backend::{Backend, BackendConfig};
use medanchor_storage::keys::ObjectKey;
use rand::RngCore;
use serde::Serialize;

use crate::api::System;

/// Target: tus upload MB/s at least this share of raw encrypt + hash +
/// synced write on local disk.
const TARGET_LOCAL_VS_RAW: f64 = 0.5;
/// Target: tus upload MB/s at least this share of the raw store's put on
/// SeaweedFS.
const TARGET_S3_VS_RAW: f64 = 0.7;

/// Options of `medanchor-bench attachments`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttachmentsBenchArgs {
    /// The file's size in MiB.
    #[arg(long, default_value_t = 50)]
    pub mib: usize,
    /// Bytes per PATCH, in MiB.
    #[arg(long, default_value_t = 8)]
    pub chunk_mib: usize,
    /// File hashes in the anchored batch.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Skip SeaweedFS (local disk only).
    #[arg(long)]
    pub no_s3: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print when each PATCH was acknowledged (where the time goes).
    #[arg(long)]
    pub trace: bool,
}

/// One backend's numbers.
#[derive(Debug, Serialize)]
pub struct BackendResult {
    /// `local` or `seaweedfs`.
    pub backend: String,
    /// File bytes.
    pub bytes: usize,
    /// PATCH requests sent.
    pub patches: usize,
    /// tus upload, POST to the last 204, MB/s.
    pub upload_mb_per_sec: f64,
    /// Download (GET, decrypted), MB/s.
    pub download_mb_per_sec: f64,
    /// object_store put of the same bytes, MB/s.
    pub raw_put_mb_per_sec: f64,
    /// object_store get, MB/s.
    pub raw_get_mb_per_sec: f64,
    /// Stored bytes (ciphertext).
    pub stored_bytes: u64,
}

/// The batch anchoring numbers.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    /// Hashes in the batch.
    pub hashes: usize,
    /// Seal (tree, one synced write) and send, seconds.
    pub seal_and_send_s: f64,
    /// Transactions the batch took.
    pub transactions: usize,
    /// The root, hex.
    pub root: String,
    /// The leaf count the chain holds for it.
    pub on_chain_leaf_count: u64,
    /// Building every proof, seconds.
    pub proofs_s: f64,
    /// Checking every proof against the on-chain root, seconds.
    pub verify_s: f64,
    /// Proofs that checked.
    pub verified: usize,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct AttachmentsBenchReport {
    /// Local disk.
    pub local: BackendResult,
    /// SeaweedFS (absent with `--no-s3`).
    pub seaweedfs: Option<BackendResult>,
    /// Raw AES-256-GCM + SHA-256 + synced write of the bytes on local disk,
    /// MB/s.
    pub raw_crypto_synced_mb_per_sec: f64,
    /// The gzip path: a PDF of text through tus, MB/s of original bytes.
    pub gzip_upload_mb_per_sec: f64,
    /// Its stored size ÷ its size.
    pub gzip_stored_ratio: f64,
    /// Local upload ÷ raw crypto + synced write.
    pub local_ratio: f64,
    /// SeaweedFS upload ÷ raw store put.
    pub s3_ratio: Option<f64>,
    /// The batch.
    pub batch: BatchResult,
    /// Targets.
    pub target_local_vs_raw: f64,
    /// Targets.
    pub target_s3_vs_raw: f64,
}

fn mb(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds.max(1e-9) / 1e6
}

fn jpeg(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut b);
    b[..11].copy_from_slice(&[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0]);
    let n = b.len();
    b[n - 2..].copy_from_slice(&[0xff, 0xd9]);
    b
}

fn pdf(len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    let mut i = 0u64;
    while b.len() < len - 32 {
        b.extend_from_slice(
            format!("BT /F1 12 Tf 72 {i} Td (Serum creatinine {} umol/L) Tj ET\n", 60 + i % 50).as_bytes(),
        );
        i += 1;
    }
    b.extend_from_slice(b"trailer << >>\n%%EOF\n");
    b
}

/// A tus upload of `file` to `record`; (seconds, PATCHes, attachment id).
async fn tus_upload(
    sys: &System,
    token: &str,
    record: &str,
    file: &[u8],
    name: &str,
    media: &str,
    args: &AttachmentsBenchArgs,
) -> anyhow::Result<(f64, usize, String)> {
    let (chunk, trace) = (args.chunk_mib << 20, args.trace);
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let start = Instant::now();
    let r = sys
        .http
        .post(format!("{}/v1/records/{record}/uploads", sys.api))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", file.len().to_string())
        .header("upload-metadata", format!("filename {},filetype {}", b64(name), b64(media)))
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 201, "create: {} {}", r.status(), r.text().await?);
    let location = format!("{}{}", sys.api, r.headers()["location"].to_str()?);
    let (mut offset, mut patches, mut attachment) = (0usize, 0usize, None);
    while offset < file.len() {
        let end = (offset + chunk).min(file.len());
        let r = sys
            .http
            .patch(&location)
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(file[offset..end].to_vec())
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 204, "patch: {} {}", r.status(), r.text().await?);
        offset = r.headers()["upload-offset"].to_str()?.parse()?;
        attachment = r.headers().get("medanchor-attachment-id").map(|v| v.to_str().map(str::to_string)).transpose()?;
        patches += 1;
        if trace {
            eprintln!("  patch {patches} done at {:.3}s", start.elapsed().as_secs_f64());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((seconds, patches, attachment.context("the last PATCH named no attachment")?))
}

async fn measure(
    sys: &System,
    token: &str,
    reader: &str,
    record: &str,
    name: &str,
    config: &BackendConfig,
    args: &AttachmentsBenchArgs,
) -> anyhow::Result<BackendResult> {
    let file = jpeg(args.mib << 20);
    // Both measured on a warm store: a fresh SeaweedFS takes its first
    // write several times slower (it grows a volume), whichever comes
    // first would pay for it.
    let backend = Backend::open(config)?;
    let warm = ObjectKey::parse(&format!("bench/2026/12/{}/{}", "ef".repeat(16), "01".repeat(16))).context("key")?;
    backend.put_new(&warm, bytes::Bytes::from(file.clone())).await?;
    backend.delete(&warm).await?;
    let (seconds, patches, attachment) = tus_upload(sys, token, record, &file, "scan.jpg", "image/jpeg", args).await?;
    let start = Instant::now();
    let got = sys
        .http
        .get(format!("{}/v1/records/{record}/attachments/{attachment}", sys.api))
        .bearer_auth(reader)
        .send()
        .await?
        .bytes()
        .await?;
    let download_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(got.as_ref() == file.as_slice(), "the download differs from the upload");
    let list: serde_json::Value = sys
        .http
        .get(format!("{}/v1/records/{record}/attachments", sys.api))
        .bearer_auth(reader)
        .send()
        .await?
        .json()
        .await?;
    let stored_bytes = list["items"]
        .as_array()
        .and_then(|i| i.iter().find(|a| a["attachment_id"] == attachment.as_str()))
        .and_then(|a| a["stored_size"].as_u64())
        .context("stored size")?;
    // The raw store: the same number of bytes, put and got.
    let key =
        ObjectKey::parse(&format!("bench/2026/12/{}/{}", "ab".repeat(16), "cd".repeat(16))).context("object key")?;
    let raw = bytes::Bytes::from(file);
    let start = Instant::now();
    backend.put_new(&key, raw.clone()).await?;
    let put_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let back = backend.get(&key).await?;
    let get_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(back.len() == raw.len(), "raw get returned {} bytes", back.len());
    backend.delete(&key).await?;
    Ok(BackendResult {
        backend: name.into(),
        bytes: raw.len(),
        patches,
        upload_mb_per_sec: mb(raw.len(), seconds),
        download_mb_per_sec: mb(raw.len(), download_s),
        raw_put_mb_per_sec: mb(raw.len(), put_s),
        raw_get_mb_per_sec: mb(raw.len(), get_s),
        stored_bytes,
    })
}

/// The record, the provider's token, the patient's token.
async fn prepare(sys: &System) -> anyhow::Result<(String, String, String)> {
    let (token, ids) = crate::api::prepare(sys, 1).await?;
    let reader = sys.sign_in("wallet_1").await?;
    Ok((ids.first().context("a record")?.clone(), token, reader))
}

async fn batch(sys: &System, hashes: usize) -> anyhow::Result<BatchResult> {
    sys.tx(
        "deployer",
        medanchor_wallet::ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-anchor-operator",
            args: vec![ClarityValue::Principal(sys.principal("faucet")?), ClarityValue::Bool(true)],
        },
    )
    .await?;
    let leaves: Vec<[u8; 32]> = (0..hashes)
        .map(|_| {
            let mut h = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut h);
            h
        })
        .collect();
    sys.state.queue_file_hashes(&leaves).map_err(|e| anyhow::anyhow!("{e}"))?;
    let operator = sys.key("faucet")?.clone();
    let mut anchorer =
        FileAnchorer::connect(sys.state.clone(), operator, hashes).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();
    let sent = anchorer.step(true).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let seal_and_send_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(sent.len() == 1 && sent[0].leaves.len() == hashes, "one batch of every hash");
    let root: [u8; 32] = hex::decode(&sent[0].root)?.try_into().map_err(|_| anyhow::anyhow!("root"))?;
    sys.mine().await?;
    anchorer.step(false).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let row = sys.state.file_batch(&root).map_err(|e| anyhow::anyhow!("{e}"))?.context("the batch")?;
    anyhow::ensure!(row.status == BatchStatus::Anchored, "the batch did not settle anchored");
    // The root as the chain holds it, read from the node.
    let node = medanchor_wallet::RpcClient::new(&sys.rpc)?;
    let v = node
        .call_read_only(
            DEPLOYER_ADDRESS,
            ContractName::RecordManagement.name(),
            "get-batch",
            DEPLOYER_ADDRESS,
            &[ClarityValue::Buffer(root.to_vec())],
        )
        .await?;
    let ClarityValue::Optional(Some(t)) = v else { bail!("get-batch: the root is not on-chain") };
    let ClarityValue::Tuple(t) = *t else { bail!("get-batch: not a tuple") };
    let Some(ClarityValue::UInt(on_chain)) = t.get("leaf-count") else { bail!("get-batch: no leaf-count") };
    let on_chain = *on_chain as u64;
    let start = Instant::now();
    let proofs = sys.state.batch_proofs(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
    let proofs_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut verified = 0;
    for p in &proofs {
        anyhow::ensure!(p.tree_size == on_chain, "a proof for another tree size");
        merkle::verify_inclusion(&merkle::leaf_hash(&p.sha256), p.leaf_index, p.tree_size, &p.path, &root)
            .map_err(|e| anyhow::anyhow!("proof {}: {e}", p.leaf_index))?;
        verified += 1;
    }
    let verify_s = start.elapsed().as_secs_f64();
    let mut sorted = leaves.clone();
    sorted.sort();
    anyhow::ensure!(proofs.iter().map(|p| p.sha256).eq(sorted), "every queued hash has its proof");
    Ok(BatchResult {
        hashes,
        seal_and_send_s,
        transactions: 1,
        root: hex::encode(root),
        on_chain_leaf_count: on_chain,
        proofs_s,
        verify_s,
        verified,
    })
}

/// The storage tests' SeaweedFS harness (`weed mini` on loopback, the
/// pinned build `scripts/lib.sh ensure_seaweedfs` installs), shared, not
/// copied.
#[path = "../../storage/tests/support/mod.rs"]
mod seaweed;

/// Runs the benchmark.
pub fn run(args: AttachmentsBenchArgs) -> anyhow::Result<()> {
    if args.mib == 0 || args.chunk_mib == 0 || args.batch == 0 {
        bail!("--mib, --chunk-mib and --batch must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let limit = (args.mib + 1) << 20;
    let batch_max = args.batch;
    eprintln!("local disk: starting devnet node, indexer and API on loopback");
    let sys = rt.block_on(crate::api::start_with(|c| {
        c.max_attachment_bytes = limit;
        c.batch_max = batch_max;
    }))?;
    let local_config = BackendConfig::Local { root: sys.data_dir().join("objects") };
    let (local, gzip_mb, gzip_ratio, batch) = rt.block_on(async {
        let (record, token, reader) = prepare(&sys).await?;
        // First, while the queue holds only the bench's hashes.
        eprintln!("batch anchoring: {} hashes", args.batch);
        let batch = batch(&sys, args.batch).await?;
        eprintln!("local disk: tus upload, download and raw store of {} MiB", args.mib);
        let local = measure(&sys, &token, &reader, &record, "local", &local_config, &args).await?;
        eprintln!("local disk: the gzip path ({} MiB PDF)", args.mib);
        let text = pdf(args.mib << 20);
        let (seconds, _, id) = tus_upload(&sys, &token, &record, &text, "labs.pdf", "application/pdf", &args).await?;
        let list: serde_json::Value = sys
            .http
            .get(format!("{}/v1/records/{record}/attachments", sys.api))
            .bearer_auth(&reader)
            .send()
            .await?
            .json()
            .await?;
        let stored = list["items"]
            .as_array()
            .and_then(|i| i.iter().find(|a| a["attachment_id"] == id.as_str()))
            .and_then(|a| a["stored_size"].as_u64())
            .context("stored size")?;
        Ok::<_, anyhow::Error>((local, mb(text.len(), seconds), stored as f64 / text.len() as f64, batch))
    })?;
    eprintln!("raw AES-256-GCM + SHA-256 + synced write");
    let raw = jpeg(args.mib << 20);
    let raw_s = crate::api::seal_and_store(sys.data_dir(), &raw)?;
    let raw_mb = mb(raw.len(), raw_s);
    drop(sys);

    let seaweedfs = if args.no_s3 {
        None
    } else {
        let server = seaweed::Seaweed::start();
        let config = BackendConfig::S3 {
            endpoint: Some(server.endpoint.clone()),
            bucket: seaweed::BUCKET.into(),
            region: "us-east-1".into(),
            credentials: Some((seaweed::ACCESS_KEY.into(), seaweed::SECRET_KEY.into())),
        };
        eprintln!("SeaweedFS at {}: starting another node", server.endpoint);
        let c2 = config.clone();
        let sys = rt.block_on(crate::api::start_with(move |c| {
            c.max_attachment_bytes = limit;
            c.attachments = Some(c2);
        }))?;
        let result = rt.block_on(async {
            let (record, token, reader) = prepare(&sys).await?;
            eprintln!("SeaweedFS: tus upload, download and raw store of {} MiB", args.mib);
            measure(&sys, &token, &reader, &record, "seaweedfs", &config, &args).await
        })?;
        drop(sys);
        drop(server);
        Some(result)
    };
    let report = AttachmentsBenchReport {
        local_ratio: local.upload_mb_per_sec / raw_mb.max(1e-9),
        s3_ratio: seaweedfs.as_ref().map(|s| s.upload_mb_per_sec / s.raw_put_mb_per_sec.max(1e-9)),
        local,
        seaweedfs,
        raw_crypto_synced_mb_per_sec: raw_mb,
        gzip_upload_mb_per_sec: gzip_mb,
        gzip_stored_ratio: gzip_ratio,
        batch,
        target_local_vs_raw: TARGET_LOCAL_VS_RAW,
        target_s3_vs_raw: TARGET_S3_VS_RAW,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_report(r: &AttachmentsBenchReport) {
    let mib = r.local.bytes as f64 / (1u64 << 20) as f64;
    println!("attachments: a {mib:.0} MiB JPEG-typed file (no compression) through tus, then downloaded");
    for b in std::iter::once(&r.local).chain(r.seaweedfs.as_ref()) {
        println!(
            "  {:<10} tus upload {:>7.1} MB/s ({} PATCHes)  download {:>7.1} MB/s  | raw object_store put {:>7.1} MB/s  get {:>7.1} MB/s",
            b.backend, b.upload_mb_per_sec, b.patches, b.download_mb_per_sec, b.raw_put_mb_per_sec, b.raw_get_mb_per_sec
        );
    }
    println!("  raw AES-256-GCM + SHA-256 + synced write, one core: {:.1} MB/s", r.raw_crypto_synced_mb_per_sec);
    println!(
        "  local: upload ÷ raw crypto + synced write {:.3}  target >= {:.2}: {}",
        r.local_ratio,
        r.target_local_vs_raw,
        met(r.local_ratio >= r.target_local_vs_raw)
    );
    if let Some(s) = r.s3_ratio {
        println!(
            "  SeaweedFS: upload ÷ raw put {:.3}  target >= {:.2}: {}",
            s,
            r.target_s3_vs_raw,
            met(s >= r.target_s3_vs_raw)
        );
    }
    println!(
        "  gzip path: a {mib:.0} MiB PDF of text through tus {:.1} MB/s, stored at {:.1}% of its size",
        r.gzip_upload_mb_per_sec,
        r.gzip_stored_ratio * 100.0
    );
    let b = &r.batch;
    println!(
        "batch anchoring: {} hashes in {} transaction (root {}…, on-chain leaf-count {}): seal + send {:.3} s, \
         every proof built {:.3} s, checked against the on-chain root {:.3} s ({} of {} verified)",
        b.hashes,
        b.transactions,
        &b.root[..16],
        b.on_chain_leaf_count,
        b.seal_and_send_s,
        b.proofs_s,
        b.verify_s,
        b.verified,
        b.hashes
    );
}
