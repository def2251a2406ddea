//! `medanchor-bench backup`: a backup and a verified restore of a data set
//! shaped like a node's (a RocksDB store of record metadata and sealed
//! payloads, and attachment objects — ciphertext, so it barely
//! compresses), next to the raw work measured in the same run.
//!
//! 1. **data set**: `--gib` GiB: `--store-share` of it as rows in a RocksDB
//!    store (1 KiB values, random), the rest as 50 MiB random files.
//! 2. **backup** (`medanchor_backup::create`): the store checkpointed and
//!    digested, every file hashed, compressed (zstd 3), sealed (STREAM,
//!    XChaCha20-Poly1305) and written synced as a blob; the manifest signed.
//! 3. **incremental**: the same again, unchanged (hashes only).
//! 4. **verified restore** (`medanchor_backup::restore` into an empty
//!    directory): every blob opened, every file hashed against the
//!    manifest and synced, the store opened and its digest compared.
//! 5. **raw baseline**: every file of the same data set read, compressed
//!    (zstd 3), encrypted (XChaCha20-Poly1305, one key) and written to one synced
//!    file, on one core.
//!
//! Targets (ratios to the same run, and the seed's absolute floor): backup
//! ≥ 70 % of the raw baseline; ≥ 34 MB/s (10 GB in under 5 minutes).
//! Reported, never asserted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use medanchor_backup::key::BackupKey;
use medanchor_backup::target::Target;
use medanchor_backup::Source;
use rand::RngCore;

const TARGET_RATIO: f64 = 0.7;
const TARGET_MB_S: f64 = 34.0;
const FILE: usize = 50 << 20;

/// Options of `medanchor-bench backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupBenchArgs {
    /// The data set's size, GiB.
    #[arg(long, default_value_t = 2.0)]
    pub gib: f64,
    /// Of which in the RocksDB store.
    #[arg(long, default_value_t = 0.1)]
    pub store_share: f64,
    /// Where to put the data set, the target and the restore (default: a
    /// temporary directory under /var/tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct BackupBenchReport {
    /// Bytes in the data set.
    pub bytes: u64,
    /// Files captured.
    pub files: usize,
    /// Backup, MB/s of data-set bytes.
    pub backup_mb_per_sec: f64,
    /// Backup, seconds.
    pub backup_s: f64,
    /// Bytes the target holds after it.
    pub stored_bytes: u64,
    /// The incremental backup of the unchanged set, seconds.
    pub incremental_s: f64,
    /// Blobs it wrote.
    pub incremental_new_blobs: usize,
    /// Verified restore, seconds.
    pub restore_s: f64,
    /// Verified restore, MB/s.
    pub restore_mb_per_sec: f64,
    /// Raw zstd + XChaCha20-Poly1305 + synced write, MB/s.
    pub raw_mb_per_sec: f64,
    /// Backup ÷ raw.
    pub ratio: f64,
    /// Target ratio.
    pub target_ratio: f64,
    /// Target MB/s.
    pub target_mb_per_sec: f64,
}

fn mb(bytes: u64, s: f64) -> f64 {
    bytes as f64 / s.max(1e-9) / 1e6
}

fn make_data_set(root: &Path, args: &BackupBenchArgs) -> anyhow::Result<()> {
    let total = (args.gib * (1u64 << 30) as f64) as u64;
    let store_bytes = (total as f64 * args.store_share) as u64;
    let mut rng = rand::thread_rng();
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, root.join("db"))?;
    let mut value = vec![0u8; 1024];
    let mut batch = rocksdb::WriteBatch::default();
    for i in 0..store_bytes / 1024 {
        rng.fill_bytes(&mut value);
        batch.put(format!("record/{i:012}"), &value);
        if batch.len() == 10_000 {
            db.write(std::mem::take(&mut batch))?;
        }
    }
    db.write(batch)?;
    db.flush()?;
    drop(db);
    let objects = root.join("objects");
    std::fs::create_dir_all(&objects)?;
    let mut left = total.saturating_sub(store_bytes);
    let mut buf = vec![0u8; FILE];
    let mut n = 0;
    while left > 0 {
        let len = (left as usize).min(FILE);
        rng.fill_bytes(&mut buf[..len]);
        std::fs::write(objects.join(format!("object-{n:04}")), &buf[..len])?;
        left -= len as u64;
        n += 1;
    }
    Ok(())
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Every file read, zstd-compressed, XChaCha20-Poly1305-encrypted (1 MiB
/// messages: the backup's cipher without its chunking) and appended to
/// one synced file; seconds and bytes.
fn raw_baseline(data: &Path, out: &Path) -> anyhow::Result<(f64, u64)> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let mut all = Vec::new();
    files(data, &mut all)?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&[7u8; 32].into());
    let start = Instant::now();
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut bytes = 0u64;
    let mut counter = 0u64;
    for path in &all {
        let mut compressed = Vec::new();
        {
            let mut z = zstd_encoder(&mut compressed)?;
            let mut f = std::fs::File::open(path)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                z.write_all(&buf[..n])?;
            }
            z.finish()?;
        }
        for piece in compressed.chunks(1 << 20) {
            counter += 1;
            let mut nonce = [0u8; 24];
            nonce[..8].copy_from_slice(&counter.to_be_bytes());
            let sealed = cipher.encrypt((&nonce).into(), piece).map_err(|_| anyhow::anyhow!("encrypt"))?;
            sink.write_all(&sealed)?;
        }
    }
    sink.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((start.elapsed().as_secs_f64(), bytes))
}

fn zstd_encoder<W: Write>(w: W) -> std::io::Result<zstd::stream::write::Encoder<'static, W>> {
    zstd::stream::write::Encoder::new(w, 3)
}

fn du(dir: &Path) -> u64 {
    let mut all = Vec::new();
    let _ = files(dir, &mut all);
    all.iter().filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum()
}

/// Runs the benchmark.
pub fn run(args: BackupBenchArgs) -> anyhow::Result<()> {
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir_in("/var/tmp").or_else(|_| tempfile::tempdir())?,
    };
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    eprintln!("making a {:.1} GiB data set in {}", args.gib, data.display());
    make_data_set(&data, &args)?;
    let key = BackupKey::generate();
    let node = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let target = Target::open(&tmp.path().join("target"))?;
    let sources = [Source { name: "api".into(), dir: data.clone() }];
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);

    eprintln!("backup");
    let start = Instant::now();
    let (_, created) =
        medanchor_backup::create(&sources, &[], &target, &key, &node, "data", now()).context("backup")?;
    let backup_s = start.elapsed().as_secs_f64();
    let stored_bytes = du(target.root());

    eprintln!("incremental backup of the unchanged set");
    let start = Instant::now();
    let (_, again) = medanchor_backup::create(&sources, &[], &target, &key, &node, "data", now()).context("again")?;
    let incremental_s = start.elapsed().as_secs_f64();

    eprintln!("verified restore");
    let into = tmp.path().join("restored");
    let start = Instant::now();
    let restored =
        medanchor_backup::restore(&target, &created.id, &key, Some(&node.verifying_key()), &into).context("restore")?;
    let restore_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(restored.bytes == created.bytes, "restored {} of {} bytes", restored.bytes, created.bytes);
    std::fs::remove_dir_all(&into)?;

    eprintln!("raw zstd + XChaCha20-Poly1305 + synced write");
    let (raw_s, raw_bytes) = raw_baseline(&data, &tmp.path().join("raw.out"))?;
    let report = BackupBenchReport {
        bytes: created.bytes,
        files: created.files,
        backup_mb_per_sec: mb(created.bytes, backup_s),
        backup_s,
        stored_bytes,
        incremental_s,
        incremental_new_blobs: again.new_blobs,
        restore_s,
        restore_mb_per_sec: mb(restored.bytes, restore_s),
        raw_mb_per_sec: mb(raw_bytes, raw_s),
        ratio: mb(created.bytes, backup_s) / mb(raw_bytes, raw_s).max(1e-9),
        target_ratio: TARGET_RATIO,
        target_mb_per_sec: TARGET_MB_S,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        let r = &report;
        println!(
            "backup: a {:.2} GB data set ({} files; a RocksDB store and 50 MiB objects)",
            r.bytes as f64 / 1e9,
            r.files
        );
        println!(
            "  backup {:.1} MB/s ({:.1} s; {:.2} GB stored)   raw zstd + XChaCha20-Poly1305 + synced write {:.1} MB/s",
            r.backup_mb_per_sec,
            r.backup_s,
            r.stored_bytes as f64 / 1e9,
            r.raw_mb_per_sec
        );
        println!("  backup ÷ raw {:.3}  target >= {:.2}: {}", r.ratio, r.target_ratio, met(r.ratio >= r.target_ratio));
        println!(
            "  backup {:.1} MB/s  target >= {:.0} MB/s (10 GB in 5 min): {}",
            r.backup_mb_per_sec,
            r.target_mb_per_sec,
            met(r.backup_mb_per_sec >= r.target_mb_per_sec)
        );
        println!(
            "  incremental backup of the unchanged set: {:.1} s, {} new blobs",
            r.incremental_s, r.incremental_new_blobs
        );
        println!(
            "  verified restore (every file hashed, the store's digest compared): {:.1} s, {:.1} MB/s",
            r.restore_s, r.restore_mb_per_sec
        );
    }
    Ok(())
}
