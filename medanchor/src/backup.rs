//! `medanchor backup`: backups of a stopped node's data directories.
//!
//! `create` captures every directory under `--root` (the devnet's chain,
//! the indexer, the API: stores through RocksDB checkpoints, files as they
//! are) as the `data` set under the backup key, and the KEK directory as
//! the `keys` set under the recovery key when one is given (kept offline
//! by the operator: the backup key alone never opens a data key). Both
//! manifests are signed with the node's key. `verify` opens every blob,
//! restores into a scratch directory and compares every store's state
//! digest; `restore` does the same into an empty directory; `prune` keeps
//! `--retain-days` (and always the newest verified backup).
//!
//! The stores are opened to be checkpointed, so a running node's stores
//! are refused (RocksDB's lock): stop `medanchor up` first.

use crate::progress::ProgressBar;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use ed25519_dalek::{SigningKey, VerifyingKey};
use medanchor_api::app::AppState;
use medanchor_api::backups::{BackupControl, BackupRun, BackupSummary};
use medanchor_api::scheduler::{JobFn, JobFuture, JobSpec};
use medanchor_backup::key::BackupKey;
use medanchor_backup::target::Target;
use medanchor_backup::Source;
use medanchor_storage::backend::{Backend, BackendConfig};
use std::sync::Arc;

/// `medanchor backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Backs up the node's data (and, with `--recovery-key`, its KEKs).
    Create(CreateArgs),
    /// Lists the backups in a target.
    List(TargetArgs),
    /// Verifies a backup: signature, every blob, and a restore into a
    /// scratch directory with every store's state compared.
    Verify(VerifyArgs),
    /// Restores a backup into an empty directory.
    Restore(RestoreArgs),
    /// Removes backups past their retention (never the newest verified).
    Prune(PruneArgs),
    /// The recovery drill of docs/RECOVERY.md, on scratch directories: the
    /// newest data backup (and keys backup) restored and verified, `up`
    /// started on them on spare ports, its answers checked (the node's key,
    /// the chain), then stopped; every step timed against the 4-hour
    /// recovery time objective.
    Drill(DrillArgs),
}

/// Options of `backup drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The recovery key, to restore the newest `keys` backup too; without
    /// it the live `--keys-dir` is copied.
    #[arg(long)]
    recovery_key: Option<PathBuf>,
    /// The node's KEK directory (its `session.key` is the pinned key).
    #[arg(long, default_value = ".medanchor/keys")]
    keys_dir: PathBuf,
    /// The node's public key (hex), if the keys directory is not at hand.
    #[arg(long)]
    node_key: Option<String>,
    /// Keep the scratch directory afterwards.
    #[arg(long)]
    keep: bool,
}

/// Where backups go, and the key that seals them.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The target directory (another disk, a mounted share).
    #[arg(long, default_value = ".medanchor-backups")]
    to: PathBuf,
    /// The backup key (created on the first backup, 0600); keep it apart
    /// from the data directory and from the KEKs.
    #[arg(long, default_value = ".medanchor-backup.key")]
    key: PathBuf,
    /// The set: `data`, or `keys` (sealed under the recovery key).
    #[arg(long, default_value = "data")]
    set: String,
    #[command(flatten)]
    remote: RemoteArgs,
}

/// A second location: an S3-compatible bucket.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Also keep backups in this S3 bucket, under `backups/` (credentials
    /// from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, never
    /// arguments). `create` copies each backup there after the local one;
    /// `verify` and `restore` with `--from-s3` fetch it from there.
    #[arg(long)]
    pub backup_s3_bucket: Option<String>,
    /// The S3-compatible server; without it, AWS itself.
    #[arg(long, requires = "backup_s3_bucket")]
    pub backup_s3_endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long, default_value = "us-east-1")]
    pub backup_s3_region: String,
}

impl RemoteArgs {
    fn backend(&self) -> anyhow::Result<Option<Backend>> {
        let Some(bucket) = &self.backup_s3_bucket else { return Ok(None) };
        let config = BackendConfig::S3 {
            endpoint: self.backup_s3_endpoint.clone(),
            bucket: bucket.clone(),
            region: self.backup_s3_region.clone(),
            credentials: None,
        };
        Ok(Some(Backend::open(&config)?))
    }
}

const REMOTE: &str = "backups";

fn remote_blob(address: &str) -> String {
    format!("{REMOTE}/blobs/{}/{address}", address.get(..2).unwrap_or("00"))
}

/// Copies backup `id` from the local target to `remote`: the blobs it
/// lacks (same size: already there), then the manifest (after its blobs).
/// Returns the blobs and bytes sent.
pub async fn replicate(target: &Target, id: &str, remote: &Backend) -> anyhow::Result<(usize, u64)> {
    let signed = target.manifest(id)?;
    let (mut blobs, mut bytes) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for f in &signed.manifest.files {
        if !seen.insert(f.blob.as_str()) {
            continue;
        }
        let local = target.blob_path(&f.blob);
        let len = std::fs::metadata(&local).with_context(|| format!("{}", local.display()))?.len();
        if remote.size_raw(&remote_blob(&f.blob)).await? == Some(len) {
            continue;
        }
        let data = std::fs::read(&local).with_context(|| format!("{}", local.display()))?;
        remote.put_raw(&remote_blob(&f.blob), data.into()).await?;
        blobs += 1;
        bytes += len;
    }
    let manifest = serde_json::to_vec_pretty(&signed)?;
    remote.put_raw(&format!("{REMOTE}/manifests/{id}.json"), manifest.into()).await?;
    Ok((blobs, bytes))
}

/// Fetches backup `id` from `remote` into the local target (what it
/// lacks), to be verified or restored there.
pub async fn fetch(remote: &Backend, id: &str, target: &Target) -> anyhow::Result<usize> {
    if !medanchor_backup::manifest::safe_relative(id) || id.contains('/') {
        bail!("{id:?} is not a backup id");
    }
    let bytes = remote.get_raw(&format!("{REMOTE}/manifests/{id}.json")).await.context("the manifest")?;
    let signed: medanchor_backup::manifest::Signed = serde_json::from_slice(&bytes).context("the manifest")?;
    let mut fetched = 0;
    for f in &signed.manifest.files {
        if target.has_blob(&f.blob) {
            continue;
        }
        let data = remote.get_raw(&remote_blob(&f.blob)).await?;
        target.put_blob(&f.blob, |tmp| {
            let io =
                |e: std::io::Error| medanchor_backup::BackupError::Io { path: tmp.display().to_string(), source: e };
            let mut file = std::fs::File::create(tmp).map_err(io)?;
            std::io::Write::write_all(&mut file, &data).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(data.len() as u64)
        })?;
        fetched += 1;
    }
    target.put_manifest(&signed)?;
    Ok(fetched)
}

/// Options of `backup create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The directory holding the node's data directories (as `up`'s
    /// defaults: `devnet/`, `indexer/`, `api/`, `keys/`).
    #[arg(long, default_value = ".medanchor")]
    root: PathBuf,
    /// The KEK directory (never part of the `data` set).
    #[arg(long, default_value = ".medanchor/keys")]
    keys_dir: PathBuf,
    /// Also back up the KEK directory, sealed under this recovery key
    /// (created if missing; keep it offline).
    #[arg(long)]
    recovery_key: Option<PathBuf>,
}

/// Options of `backup verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The backup's id (`backup list`).
    id: String,
    #[command(flatten)]
    target: TargetArgs,
    /// The node's public key (hex) the manifest must be signed with;
    /// default: the one in `--keys-dir`'s `session.key`, if present.
    #[arg(long)]
    node_key: Option<String>,
    /// The KEK directory (for the node's key).
    #[arg(long, default_value = ".medanchor/keys")]
    keys_dir: PathBuf,
    /// Fetch the backup from the S3 bucket (`--backup-s3-bucket`) into
    /// `--to` first.
    #[arg(long, requires = "backup_s3_bucket")]
    from_s3: bool,
}

/// Options of `backup restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    verify: VerifyArgs,
    /// Where to restore (must not exist, or be empty).
    #[arg(long)]
    into: PathBuf,
    /// Leave a source out (repeatable): `--without devnet` keeps the
    /// chain you have — the network, which went on after the backup —
    /// and restores the node's own data against it.
    #[arg(long)]
    without: Vec<String>,
    /// The attachments' bucket (as `up --s3-bucket`): the objects the
    /// backup holds are put back where the bucket lacks them (credentials
    /// from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The attachments' S3-compatible server.
    #[arg(long, requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The attachments' bucket region.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
}

/// Options of `backup prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Keep every backup this many days.
    #[arg(long, default_value_t = 30)]
    retain_days: u64,
    /// Beyond that, keep the newest backup of each of this many weeks.
    #[arg(long, default_value_t = 8)]
    keep_weekly: usize,
    /// And of each of this many calendar months.
    #[arg(long, default_value_t = 12)]
    keep_monthly: usize,
}

/// Runs a `backup` subcommand.
pub fn run(command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Create(args) => create(&args),
        BackupCommand::List(args) => list(&args),
        BackupCommand::Verify(args) => verify(&args),
        BackupCommand::Restore(args) => restore(&args),
        BackupCommand::Prune(args) => prune(&args),
        BackupCommand::Drill(args) => drill(&args),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The node's signing key: its secret (`session.key`, 64 hex digits),
/// as the API signs audit checkpoints with it.
fn node_key(keys_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = keys_dir.join("session.key");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the node's key {} (has the node run?)", path.display()))?;
    let secret: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} is not 32 bytes of hex", path.display()))?;
    Ok(SigningKey::from_bytes(&secret))
}

fn trusted(args: &VerifyArgs) -> anyhow::Result<Option<VerifyingKey>> {
    if let Some(hex_key) = &args.node_key {
        let bytes: [u8; 32] =
            hex::decode(hex_key).ok().and_then(|b| b.try_into().ok()).context("--node-key is 64 hex digits")?;
        return Ok(Some(VerifyingKey::from_bytes(&bytes).context("--node-key is not an Ed25519 key")?));
    }
    if args.keys_dir.join("session.key").exists() {
        return Ok(Some(node_key(&args.keys_dir)?.verifying_key()));
    }
    eprintln!("warning: no --node-key and no node key in {}: the manifest is checked against the key it names (integrity, not origin)", args.keys_dir.display());
    Ok(None)
}

fn set_key(target: &TargetArgs, create: bool) -> anyhow::Result<BackupKey> {
    let key = if create { BackupKey::load_or_create(&target.key) } else { BackupKey::load(&target.key) };
    key.with_context(|| format!("the backup key {}", target.key.display()))
}

fn create(args: &CreateArgs) -> anyhow::Result<()> {
    let keys_dir = std::fs::canonicalize(&args.keys_dir).unwrap_or_else(|_| args.keys_dir.clone());
    let mut sources = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&args.root)
        .with_context(|| format!("reading {}", args.root.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let dir = e.path();
        let same_as_keys = std::fs::canonicalize(&dir).is_ok_and(|d| d == keys_dir);
        if e.file_type()?.is_dir() && !same_as_keys {
            sources.push(Source { name: e.file_name().to_string_lossy().into_owned(), dir });
        }
    }
    if sources.is_empty() {
        bail!("{} holds no data directory", args.root.display());
    }
    let signer = node_key(&args.keys_dir)?;
    let target = Target::open(&args.target.to)?;
    let start = std::time::Instant::now();
    let bar = ProgressBar::new("backing up");
    let (_, created) = medanchor_backup::create_with_objects(
        &sources,
        &[],
        &[],
        &target,
        &set_key(&args.target, true)?,
        &signer,
        &args.target.set,
        now_ms(),
        &|p| bar.show(p.done, p.total),
    )
    .context("backing up (is `medanchor up` stopped?)")?;
    bar.finish();
    println!(
        "backup {} ({}): {} files, {} bytes from {} stores and files; {} new blobs ({} bytes) in {:.1} s",
        created.id,
        args.target.set,
        created.files,
        created.bytes,
        created.stores,
        created.new_blobs,
        created.new_blob_bytes,
        start.elapsed().as_secs_f64()
    );
    let mut ids = vec![created.id.clone()];
    if let Some(recovery) = &args.recovery_key {
        let key =
            BackupKey::load_or_create(recovery).with_context(|| format!("the recovery key {}", recovery.display()))?;
        let sources = [Source { name: "keys".into(), dir: args.keys_dir.clone() }];
        let (_, keys) = medanchor_backup::create(&sources, &[], &target, &key, &signer, "keys", now_ms())?;
        println!("backup {} (keys, under the recovery key): {} files", keys.id, keys.files);
        ids.push(keys.id);
    }
    // The second location: its failure fails this command, loudly, after
    // the local copy is complete.
    if let Some(remote) = args.target.remote.backend()? {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        for id in &ids {
            let (blobs, bytes) = rt.block_on(replicate(&target, id, &remote)).with_context(|| {
                format!("copying backup {id} to {} (the local copy is complete)", remote.describe())
            })?;
            println!("backup {id} copied to {}: {blobs} blobs ({bytes} bytes) sent", remote.describe());
        }
    }
    Ok(())
}

fn list(args: &TargetArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.to)?;
    for s in medanchor_backup::list(&target)? {
        let verified = s.verified_ms.map_or_else(|| "not verified".to_string(), |ms| format!("verified at {ms}"));
        println!("{}  {:<4}  {} files  {} bytes  {verified}", s.id, s.set, s.files, s.bytes);
    }
    Ok(())
}

fn scratch_beside(target: &Path) -> PathBuf {
    target.join(format!(".verify-{:08x}", rand_u32()))
}

fn rand_u32() -> u32 {
    // Unique enough for a scratch name: time and pid.
    (now_ms() as u32) ^ std::process::id().rotate_left(16)
}

/// With `--from-s3`, fetches the backup into the local target first.
fn fetch_if_asked(args: &VerifyArgs, target: &Target) -> anyhow::Result<()> {
    if !args.from_s3 {
        return Ok(());
    }
    let remote = args.target.remote.backend()?.context("--from-s3 needs --backup-s3-bucket")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let n = rt
        .block_on(fetch(&remote, &args.id, target))
        .with_context(|| format!("fetching {} from {}", args.id, remote.describe()))?;
    println!("fetched backup {} from {} ({n} blobs)", args.id, remote.describe());
    Ok(())
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target.to)?;
    fetch_if_asked(args, &target)?;
    let key = set_key(&args.target, false)?;
    let trusted = trusted(args)?;
    let v =
        medanchor_backup::verify(&target, &args.id, &key, trusted.as_ref(), &scratch_beside(&args.target.to), now_ms())
            .with_context(|| format!("backup {} does not verify", args.id))?;
    println!(
        "backup {} verifies: {} files, {} bytes, {} stores in their captured state",
        v.id, v.files, v.bytes, v.stores
    );
    Ok(())
}

fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.verify.target.to)?;
    fetch_if_asked(&args.verify, &target)?;
    let key = set_key(&args.verify.target, false)?;
    let trusted = trusted(&args.verify)?;
    let v =
        medanchor_backup::restore_except(&target, &args.verify.id, &key, trusted.as_ref(), &args.into, &args.without)
            .with_context(|| format!("restoring backup {}", args.verify.id))?;
    println!(
        "restored backup {} into {}: {} files, {} bytes, {} stores in their captured state",
        v.id,
        args.into.display(),
        v.files,
        v.bytes,
        v.stores
    );
    let held_objects = std::fs::read_dir(&args.into)?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with(BUCKET_SOURCE));
    match (&args.s3_bucket, held_objects) {
        (Some(bucket), true) => {
            let config = BackendConfig::S3 {
                endpoint: args.s3_endpoint.clone(),
                bucket: bucket.clone(),
                region: args.s3_region.clone(),
                credentials: None,
            };
            let store = Backend::open(&config)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (put, there) = rt.block_on(push_objects(&args.into, &store))?;
            println!("attachments: {put} objects put back into {}, {there} were there", store.describe());
        }
        (None, true) => println!(
            "attachments: the backup's bucket objects are under {}/{BUCKET_SOURCE}*; put them back with `--s3-bucket` \
             (or restore `--without` them if the bucket survived)",
            args.into.display()
        ),
        (_, false) => {}
    }
    if let Some(marker) = mark_restored(&args.into, &v)? {
        println!("the node reconciles with the chain on its next start ({})", marker.display());
    }
    Ok(())
}

/// Leaves the marker that makes the next `up` reconcile the restored data
/// with the chain: the backup, and the backup point on the chain (the
/// restored index's height). Written atomically; `None` when no API data
/// was restored.
fn mark_restored(root: &Path, v: &medanchor_backup::Verified) -> anyhow::Result<Option<PathBuf>> {
    use medanchor_api::backups::{RestoreMarker, RESTORE_MARKER};
    use medanchor_indexer::ChainReader;
    let api = root.join("api");
    if !api.is_dir() {
        return Ok(None);
    }
    let index_dir = root.join("indexer");
    let index_height = if index_dir.is_dir() {
        let index = crate::indexer::open(&index_dir, medanchor_contracts::DEPLOYER_ADDRESS, 10_000)?;
        medanchor_indexer::query::IndexReader::new(index.db().clone()).status()?.tip_height
    } else {
        None
    };
    let marker = RestoreMarker { backup: v.id.clone(), captured_ms: v.created_ms, index_height, restored_ms: now_ms() };
    let path = api.join(RESTORE_MARKER);
    let tmp = api.join(format!(".{RESTORE_MARKER}.tmp"));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(&marker)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(&api)?.sync_all()?;
    Ok(Some(path))
}

fn prune(args: &PruneArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target.to)?;
    let retention =
        medanchor_backup::Retention { days: args.retain_days, weekly: args.keep_weekly, monthly: args.keep_monthly };
    let p = medanchor_backup::prune(&target, &args.target.set, retention, now_ms())?;
    println!("removed {} backups ({}) and {} blobs no backup holds", p.backups.len(), p.backups.join(", "), p.blobs);
    Ok(())
}

/// `up`'s scheduled backups (`--backup-every-secs`, daily by default).
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// Seconds between backups of the running node (0: none).
    #[arg(long, default_value_t = 86_400)]
    pub backup_every_secs: u64,
    /// Where `up`'s backups go.
    #[arg(long, default_value = ".medanchor-backups")]
    pub backup_to: PathBuf,
    /// The backup key (created on the first backup, 0600).
    #[arg(long, default_value = ".medanchor-backup.key")]
    pub backup_key: PathBuf,
    /// Days every backup is kept (the newest verified one always is);
    /// beyond that, the newest of each of 8 weeks and 12 months.
    #[arg(long, default_value_t = 30)]
    pub backup_retain_days: u64,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// What a running node backs up: its data directories, and the handles of
/// the stores it holds open.
pub struct Running {
    /// The data directories (`devnet`, `indexer`, `api`).
    pub sources: Vec<Source>,
    /// The KEK directory (its `session.key` signs the manifests).
    pub keys_dir: PathBuf,
    /// The devnet's chain.
    pub node: medanchor_devnet::node::Node,
    /// The index.
    pub index: medanchor_indexer::ingest::Indexer,
    /// Every tenant's service (its database).
    pub tenants: Vec<medanchor_api::app::AppState>,
}

/// One backup of the running node: every store checkpointed through its
/// own handle (writers are not paused), then its files; verified (opened,
/// restored into a scratch directory, every store's state compared), then
/// old backups pruned, then copied to the bucket if one is configured.
/// A failed copy does not fail the backup (the local one stands): it is
/// returned apart, to be raised as an alert of its own.
pub fn backup_running(
    running: &Running,
    args: &ScheduleArgs,
) -> anyhow::Result<(medanchor_backup::Created, u64, Option<anyhow::Error>)> {
    let chain = |into: &Path| running.node.lock().chain.db().checkpoint(into).map_err(|e| e.to_string());
    let index = |into: &Path| running.index.db().checkpoint(into).map_err(|e| e.to_string());
    let mut live = vec![
        medanchor_backup::LiveStore { dir: running.node.lock().chain.db().path().to_path_buf(), checkpoint: &chain },
        medanchor_backup::LiveStore { dir: running.index.db().path().to_path_buf(), checkpoint: &index },
    ];
    let tenants: Vec<_> = running
        .tenants
        .iter()
        .map(|s| (s.database_dir().to_path_buf(), move |into: &Path| s.checkpoint_database(into)))
        .collect();
    for (dir, checkpoint) in &tenants {
        live.push(medanchor_backup::LiveStore { dir: dir.clone(), checkpoint });
    }
    let signer = node_key(&running.keys_dir)?;
    let target = Target::open(&args.backup_to)?;
    let key = BackupKey::load_or_create(&args.backup_key)
        .with_context(|| format!("the backup key {}", args.backup_key.display()))?;
    let handle = tokio::runtime::Handle::current();
    let buckets: Vec<BucketObjects> = running
        .tenants
        .iter()
        .map(|s| BucketObjects {
            name: format!("{BUCKET_SOURCE}{}", s.config().tenant),
            service: s.clone(),
            handle: handle.clone(),
            store: Default::default(),
        })
        .collect();
    let objects: Vec<&dyn medanchor_backup::ObjectSource> =
        buckets.iter().map(|b| b as &dyn medanchor_backup::ObjectSource).collect();
    let (_, created) = medanchor_backup::create_with_objects(
        &running.sources,
        &live,
        &objects,
        &target,
        &key,
        &signer,
        "data",
        now_ms(),
        &|_| {},
    )?;
    let scratch = scratch_beside(&args.backup_to);
    medanchor_backup::verify(&target, &created.id, &key, Some(&signer.verifying_key()), &scratch, now_ms())
        .with_context(|| format!("backup {} does not verify", created.id))?;
    let pruned = medanchor_backup::prune(&target, "data", retention(args), now_ms())?;
    // The second location fails on its own: the local backup stands.
    let copy = match args.remote.backend()? {
        None => None,
        Some(remote) => match tokio::runtime::Handle::current().block_on(replicate(&target, &created.id, &remote)) {
            Ok((blobs, bytes)) => {
                tracing::info!(id = %created.id, blobs, bytes, to = remote.describe(), "backup copied");
                None
            }
            Err(e) => Some(e.context(format!("copying backup {} to {}", created.id, remote.describe()))),
        },
    };
    Ok((created, pruned.backups.len() as u64, copy))
}

/// Where a tenant's bucket objects go in a backup: `s3-objects-{tenant}/`
/// then the object's key.
const BUCKET_SOURCE: &str = "s3-objects-";

/// A tenant's attachments in its bucket, as a backup captures them (after
/// the stores' checkpoints): the keys its metadata names, each fetched
/// only when no earlier backup holds it.
struct BucketObjects {
    name: String,
    service: AppState,
    handle: tokio::runtime::Handle,
    store: std::sync::OnceLock<Arc<Backend>>,
}

impl medanchor_backup::ObjectSource for BucketObjects {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&self) -> Result<Vec<(String, u64)>, String> {
        match self.service.bucket_objects().map_err(|e| e.to_string())? {
            None => Ok(Vec::new()),
            Some(bucket) => {
                let _ = self.store.set(bucket.store);
                Ok(bucket.objects)
            }
        }
    }

    fn fetch(&self, key: &str, into: &Path) -> Result<(), String> {
        let store = self.store.get().ok_or("fetch before list")?;
        let bytes = self.handle.block_on(store.get_raw(key)).map_err(|e| e.to_string())?;
        std::fs::write(into, &bytes).map_err(|e| format!("{}: {e}", into.display()))
    }
}

/// After a restore: puts the bucket objects the backup held
/// (`s3-objects-{tenant}/KEY` under `root`) back into `store` where it
/// lacks them (same key and size: already there), then removes them from
/// `root`. Returns (objects put, objects already there).
async fn push_objects(root: &Path, store: &Backend) -> anyhow::Result<(usize, usize)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                walk(&e.path(), out)?;
            } else {
                out.push(e.path());
            }
        }
        Ok(())
    }
    let (mut put, mut there) = (0, 0);
    for e in std::fs::read_dir(root)? {
        let dir = e?.path();
        if !dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with(BUCKET_SOURCE)) {
            continue;
        }
        let mut files = Vec::new();
        walk(&dir, &mut files)?;
        for file in files {
            let key = file.strip_prefix(&dir)?.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            let len = std::fs::metadata(&file)?.len();
            if store.size_raw(&key).await? == Some(len) {
                there += 1;
                continue;
            }
            store.put_raw(&key, std::fs::read(&file)?.into()).await.with_context(|| format!("putting {key}"))?;
            put += 1;
        }
        std::fs::remove_dir_all(&dir)?;
    }
    Ok((put, there))
}

fn retention(args: &ScheduleArgs) -> medanchor_backup::Retention {
    medanchor_backup::Retention { days: args.backup_retain_days, weekly: 8, monthly: 12 }
}

/// The running node's backups, as the service's [`BackupControl`]: the
/// scheduler and the admin routes run the same jobs, one at a time.
pub struct NodeBackups {
    running: Running,
    args: ScheduleArgs,
    busy: std::sync::Mutex<()>,
}

impl NodeBackups {
    /// The backups of `running`, configured by `args`.
    pub fn new(running: Running, args: ScheduleArgs) -> NodeBackups {
        NodeBackups { running, args, busy: std::sync::Mutex::new(()) }
    }

    fn one_at_a_time(&self) -> Result<std::sync::MutexGuard<'_, ()>, String> {
        self.busy.try_lock().map_err(|_| "another backup job is running; try again when it ends".to_string())
    }

    fn run(kind: &str, backup: Option<String>, started: std::time::Instant, detail: String) -> BackupRun {
        BackupRun {
            kind: kind.into(),
            backup,
            at_ms: now_ms(),
            seconds: started.elapsed().as_secs_f64(),
            outcome: "ok".into(),
            detail,
        }
    }

    /// `create`, and the copy to the bucket as a run of its own (kind
    /// `copy`) when one is configured.
    fn create_and_copy(&self) -> Result<(BackupRun, Option<BackupRun>), String> {
        let _one = self.one_at_a_time()?;
        let started = std::time::Instant::now();
        let (c, pruned, copy) = backup_running(&self.running, &self.args).map_err(|e| format!("{e:#}"))?;
        let run = Self::run(
            "create",
            Some(c.id.clone()),
            started,
            format!(
                "{} files, {} bytes from {} stores and files; {} new blobs ({} bytes stored); verified; {pruned} expired backups pruned",
                c.files, c.bytes, c.stores, c.new_blobs, c.new_blob_bytes
            ),
        );
        let copy = self.args.remote.backup_s3_bucket.as_ref().map(|bucket| {
            let mut r = Self::run("copy", Some(c.id.clone()), started, format!("copied to bucket {bucket}"));
            if let Some(e) = &copy {
                r.outcome = "failed".into();
                r.detail = format!("its copy failed: {e:#} (the local backup is complete)");
            }
            r
        });
        Ok((run, copy))
    }
}

impl BackupControl for NodeBackups {
    fn targets(&self) -> Vec<String> {
        let mut t = vec![self.args.backup_to.display().to_string()];
        if let Some(bucket) = &self.args.remote.backup_s3_bucket {
            t.push(format!("s3://{bucket}/{REMOTE}/"));
        }
        t
    }

    fn schedule(&self) -> (u64, u64) {
        (self.args.backup_every_secs, self.args.backup_retain_days)
    }

    fn list(&self) -> Result<Vec<BackupSummary>, String> {
        let target = Target::open(&self.args.backup_to).map_err(|e| e.to_string())?;
        let list = medanchor_backup::list(&target).map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .map(|s| BackupSummary {
                id: s.id,
                set: s.set,
                created_ms: s.created_ms,
                files: s.files as u64,
                bytes: s.bytes,
                verified_ms: s.verified_ms,
            })
            .collect())
    }

    fn create(&self) -> Result<(BackupRun, Option<BackupRun>), String> {
        self.create_and_copy()
    }

    fn verify(&self, id: &str) -> Result<BackupRun, String> {
        let _one = self.one_at_a_time()?;
        let started = std::time::Instant::now();
        let target = Target::open(&self.args.backup_to).map_err(|e| e.to_string())?;
        let key = BackupKey::load(&self.args.backup_key).map_err(|e| e.to_string())?;
        let signer = node_key(&self.running.keys_dir).map_err(|e| format!("{e:#}"))?;
        let v = medanchor_backup::verify(
            &target,
            id,
            &key,
            Some(&signer.verifying_key()),
            &scratch_beside(&self.args.backup_to),
            now_ms(),
        )
        .map_err(|e| format!("backup {id} does not verify: {e}"))?;
        Ok(Self::run(
            "verify",
            Some(id.into()),
            started,
            format!("{} files, {} bytes, {} stores in their captured state", v.files, v.bytes, v.stores),
        ))
    }

    fn prune(&self) -> Result<BackupRun, String> {
        let _one = self.one_at_a_time()?;
        let started = std::time::Instant::now();
        let target = Target::open(&self.args.backup_to).map_err(|e| e.to_string())?;
        let p = medanchor_backup::prune(&target, "data", retention(&self.args), now_ms()).map_err(|e| e.to_string())?;
        Ok(Self::run(
            "prune",
            None,
            started,
            format!(
                "removed {} backups ({}) and {} blobs no backup holds",
                p.backups.len(),
                p.backups.join(", "),
                p.blobs
            ),
        ))
    }
}

/// The scheduled backup as a job of the first tenant's scheduler (`None`
/// when `--backup-every-secs` is 0): made and verified, copied to the
/// bucket when one is configured, off the async threads. Every run is
/// recorded by the service (`GET /v1/admin/backups`): a failure — of the
/// backup, or of its copy — is an alert until a run of its kind succeeds,
/// and fails the job (`GET /v1/admin/jobs`). A backup due while the node
/// was down is made once when it starts.
pub fn backup_job(backups: Arc<NodeBackups>, service: AppState) -> Option<(JobSpec, JobFn)> {
    if backups.args.backup_every_secs == 0 {
        return None;
    }
    let spec = JobSpec {
        name: "backup",
        every_ms: backups.args.backup_every_secs.saturating_mul(1000),
        // A backup of a large node takes minutes; a killed one is taken
        // over after six hours.
        lease_ms: 6 * 3_600_000,
    };
    let run: JobFn = Arc::new(move || -> JobFuture {
        let (backups, service) = (backups.clone(), service.clone());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let b = backups.clone();
            let runs = match tokio::task::spawn_blocking(move || b.create_and_copy()).await {
                Ok(Ok((run, copy))) => std::iter::once(run).chain(copy).collect(),
                Ok(Err(detail)) => vec![failed_run("create", started, detail)],
                Err(e) => vec![failed_run("create", started, format!("the backup task died: {e}"))],
            };
            for run in &runs {
                if let Err(e) = medanchor_api::backups::note_run(&service, run).await {
                    tracing::error!(error = %e, "recording a backup run");
                }
            }
            let failed: Vec<String> =
                runs.iter().filter(|r| r.outcome == "failed").map(|r| format!("{}: {}", r.kind, r.detail)).collect();
            if failed.is_empty() {
                Ok(runs.iter().map(|r| format!("{} {}", r.kind, r.detail)).collect::<Vec<_>>().join("; "))
            } else {
                Err(failed.join("; "))
            }
        })
    });
    Some((spec, run))
}

fn failed_run(kind: &str, started: std::time::Instant, detail: String) -> BackupRun {
    let mut run = NodeBackups::run(kind, None, started, detail);
    run.outcome = "failed".into();
    run
}

/// On the first start after a restore (the marker `restore` leaves in the
/// API's data directory): once the node answers, reconciles the restored
/// data with the chain (the index caught up before the API started),
/// prints the report, and removes the marker. `audit_log` is the principal
/// the default tenant's audit log is anchored under.
pub fn spawn_reconciliation(api_dir: &Path, tenants: Vec<AppState>, rpc: String, audit_log: Option<String>) {
    use medanchor_api::backups::{RestoreMarker, RESTORE_MARKER};
    let path = api_dir.join(RESTORE_MARKER);
    let marker: RestoreMarker = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::error!(marker = %path.display(), error = %e, "reading the restore marker: not reconciled");
            return;
        }
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(marker = %path.display(), error = %e, "the restore marker does not parse: not reconciled");
                return;
            }
        },
    };
    println!("  restored from backup {}: reconciling with the chain…", marker.backup);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for _ in 0..240 {
            if http.get(format!("{rpc}/v2/info")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        match medanchor_api::backups::reconcile(&tenants, &marker, audit_log.as_deref()).await {
            Ok(r) => {
                println!(
                    "reconciled backup {} with the chain at height {}: {} of {} on-chain records held; lost: {} records, {} records' newer versions; {} pending anchors re-tracked; audit log: {:?}",
                    r.backup,
                    r.chain_height,
                    r.records_held,
                    r.records_on_chain,
                    r.lost_records.len(),
                    r.lost_versions.len(),
                    r.pending_versions,
                    r.audit
                );
                for l in &r.lost_records {
                    println!(
                        "  lost record {} (patient {}, created at height {}, version {})",
                        l.record_id, l.patient, l.created_height, l.version
                    );
                }
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::error!(marker = %path.display(), error = %e, "removing the restore marker");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "RECONCILIATION FAILED: the restore marker stays; the next start tries again")
            }
        }
    });
}

/// The recovery time objective of docs/RECOVERY.md.
const RTO: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

fn spare_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn newest(target: &Target, set: &str) -> anyhow::Result<Option<String>> {
    Ok(medanchor_backup::list(target)?.into_iter().filter(|s| s.set == set).map(|s| s.id).next_back())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn drill(args: &DrillArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let target = Target::open(&args.target.to)?;
    let verify = VerifyArgs {
        id: String::new(),
        target: TargetArgs {
            to: args.target.to.clone(),
            key: args.target.key.clone(),
            set: "data".into(),
            remote: args.target.remote.clone(),
        },
        node_key: args.node_key.clone(),
        keys_dir: args.keys_dir.clone(),
        from_s3: false,
    };
    let pinned =
        trusted(&verify)?.context("the drill needs the node's key: --node-key, or --keys-dir with session.key")?;
    let id = newest(&target, "data")?.context("no data backup in the target")?;
    let scratch = args.target.to.join(format!(".drill-{:08x}", rand_u32()));
    let root = scratch.join("node");
    let result = (|| -> anyhow::Result<()> {
        // 1. Restore and verify the data (every file, every store).
        let t = std::time::Instant::now();
        let key = set_key(&args.target, false)?;
        let v = medanchor_backup::restore(&target, &id, &key, Some(&pinned), &root)?;
        println!(
            "1. restored and verified backup {id}: {} files, {} bytes, {} stores ({:.1} s)",
            v.files,
            v.bytes,
            v.stores,
            t.elapsed().as_secs_f64()
        );
        // 2. The keys: from their backup under the recovery key, or copied.
        let t = std::time::Instant::now();
        match &args.recovery_key {
            Some(recovery) => {
                let keys_id = newest(&target, "keys")?.context("no keys backup in the target")?;
                let rkey =
                    BackupKey::load(recovery).with_context(|| format!("the recovery key {}", recovery.display()))?;
                let into = scratch.join("keys-restore");
                medanchor_backup::restore(&target, &keys_id, &rkey, Some(&pinned), &into)?;
                std::fs::rename(into.join("keys"), root.join("keys"))?;
                println!(
                    "2. restored keys backup {keys_id} under the recovery key ({:.1} s)",
                    t.elapsed().as_secs_f64()
                );
            }
            None => {
                copy_dir(&args.keys_dir, &root.join("keys"))?;
                println!("2. keys copied from {} (no --recovery-key)", args.keys_dir.display());
            }
        }
        // 3. The node on the restored directories, on spare ports.
        let t = std::time::Instant::now();
        let (rpc, api) = (spare_port()?, spare_port()?);
        let log = std::fs::File::create(scratch.join("up.log"))?;
        let mut up = std::process::Command::new(std::env::current_exe()?)
            .arg("up")
            .args(["--data-dir", &root.join("devnet").display().to_string()])
            .args(["--indexer-data-dir", &root.join("indexer").display().to_string()])
            .args(["--api-data-dir", &root.join("api").display().to_string()])
            .args(["--keys-dir", &root.join("keys").display().to_string()])
            .args(["--rpc-bind", &format!("127.0.0.1:{rpc}")])
            .args(["--indexer-bind", "127.0.0.1:0", "--indexer-query-bind", "127.0.0.1:0"])
            .args(["--api-bind", &format!("127.0.0.1:{api}")])
            .args(["--backup-every-secs", "0"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting up on the restored directories")?;
        let checked = check_serving(rpc, api, &pinned);
        let _ = up.kill();
        let _ = up.wait();
        let (tip, audit) = checked.with_context(|| {
            format!("the restored node did not serve (its log: {})", scratch.join("up.log").display())
        })?;
        println!("3. up served the restored data: chain tip {tip}, audit log of {audit} entries signed by the pinned key ({:.1} s)", t.elapsed().as_secs_f64());
        Ok(())
    })();
    if !args.keep {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result?;
    let total = started.elapsed();
    println!(
        "drill passed in {:.1} s, within the recovery time objective of {} h{}",
        total.as_secs_f64(),
        RTO.as_secs() / 3600,
        if args.keep { format!(" (kept in {})", scratch.display()) } else { String::new() }
    );
    Ok(())
}

/// Waits (up to two minutes) for the restored node to answer: the
/// devnet's tip, and the API's audit log signed by the pinned key.
fn check_serving(rpc: u16, api: u16, pinned: &VerifyingKey) -> anyhow::Result<(u64, u64)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut last = anyhow::anyhow!("no answer");
        for _ in 0..480 {
            let answer = async {
                let info: serde_json::Value = http
                    .get(format!("http://127.0.0.1:{rpc}/v2/info"))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let anchor: serde_json::Value = http
                    .get(format!("http://127.0.0.1:{api}/v1/audit/anchor"))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                anyhow::Ok((info, anchor))
            }
            .await;
            match answer {
                Ok((info, anchor)) => {
                    let key = anchor["checkpoint"]["public_key"].as_str().unwrap_or_default();
                    if key != hex::encode(pinned.as_bytes()) {
                        bail!("the restored node signs with {key}, not the pinned key");
                    }
                    let tip = info["stacks_tip_height"].as_u64().context("no stacks_tip_height")?;
                    return Ok((tip, anchor["size"].as_u64().unwrap_or(0)));
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        Err(last)
    })
}
