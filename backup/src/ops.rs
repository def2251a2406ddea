//! Create, verify, restore, list and prune.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::blob::{self, HashWriter};
use crate::capture;
use crate::key::BackupKey;
use crate::manifest::{FileEntry, Manifest, Signed, StoreDigest, FORMAT};
use crate::target::{sync_dir, Target};
use crate::{BackupError, Result};

/// A directory to back up, under a name (the first component of every
/// path captured from it).
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name in the backup (`devnet`, `indexer`, `api`, `keys`).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
}

/// What a backup stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The backup's id.
    pub id: String,
    /// Files captured.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs written by this backup (the rest were there already).
    pub new_blobs: usize,
    /// Bytes those blobs take in the target (compressed, sealed).
    pub new_blob_bytes: u64,
    /// Stores captured through a checkpoint.
    pub stores: usize,
}

const SCRATCH: &str = ".backup-ckpt-";

/// A store a running process holds open: captured through its own handle
/// (opening it again would be refused by its lock).
pub struct LiveStore<'a> {
    /// Its directory.
    pub dir: PathBuf,
    /// Writes a checkpoint of it into the given directory (absent; on the
    /// same file system).
    pub checkpoint: &'a (dyn Fn(&Path) -> std::result::Result<(), String> + Sync),
}

impl std::fmt::Debug for LiveStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Objects kept outside the backed-up directories (an S3 bucket's
/// attachments): listed after the stores are checkpointed, so every object
/// the captured metadata names is listed (objects are written before the
/// metadata that names them, and never rewritten). An object an earlier
/// backup of the set holds — same path, same size: a key is written once —
/// is not fetched again (incremental); the others are fetched into a
/// scratch file, sealed like any file, and removed.
pub trait ObjectSource {
    /// Its name in the backup: objects land under `{name}/{key}`.
    fn name(&self) -> &str;
    /// Every object to capture: (key, size).
    fn list(&self) -> std::result::Result<Vec<(String, u64)>, String>;
    /// Writes one object to `into`.
    fn fetch(&self, key: &str, into: &Path) -> std::result::Result<(), String>;
}

/// Every store under `dir`: (path in the backup, directory).
fn find_stores(rel: &str, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    if capture::is_store(dir) {
        out.push((rel.to_string(), dir.to_path_buf()));
        return Ok(());
    }
    for e in sorted(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(SCRATCH) && e.file_type().map_err(crate::io(&e.path()))?.is_dir() {
            find_stores(&format!("{rel}/{name}"), &e.path(), out)?;
        }
    }
    Ok(())
}

fn sorted(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(crate::io(dir))?.collect::<std::io::Result<_>>().map_err(crate::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Every plain file under `dir` but the stores' (captured from their
/// checkpoints instead) and scratch directories.
/// A temporary name of the node's atomic writers (a dot, then `.tmp`).
fn is_in_flight(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp")
}

fn plain_files(rel: &str, dir: &Path, stores: &HashSet<PathBuf>, files: &mut Vec<(String, PathBuf)>) -> Result<()> {
    // A source may be a store itself (the devnet's and the indexer's data
    // directories are).
    if stores.contains(dir) {
        return Ok(());
    }
    for e in sorted(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let kind = e.file_type().map_err(crate::io(&path))?;
        let child = format!("{rel}/{name}");
        // A writer's temporary file (`.{name}.tmp-{pid}`, renamed into
        // place once synced) is a write in flight, not state: what it
        // becomes is named by metadata captured after it exists, and it
        // may be renamed away before it is read.
        if name.starts_with(SCRATCH) || stores.contains(&path) || is_in_flight(&name) {
            continue;
        }
        if kind.is_dir() {
            plain_files(&child, &path, stores, files)?;
        } else if kind.is_file() {
            files.push((child, path));
        }
    }
    Ok(())
}

/// What to capture, at one point in time: every store checkpointed first
/// (into scratch directories beside them — hard links need the same file
/// system — listed in `scratch` for the caller to delete), then the other
/// files listed. A file is written before the metadata that names it is
/// committed, so everything a checkpoint names is on disk when the files
/// are listed after it (files written later are extra, never missing).
fn capture_sources(
    sources: &[Source],
    live: &[LiveStore<'_>],
    files: &mut Vec<(String, PathBuf)>,
    digests: &mut Vec<StoreDigest>,
    scratch: &mut Vec<PathBuf>,
) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut stores = Vec::new();
    for s in sources {
        if !crate::manifest::safe_relative(&s.name) || s.name.contains('/') {
            return Err(BackupError::Manifest(format!("source name {:?}", s.name)));
        }
        find_stores(&s.name, &s.dir, &mut stores)?;
    }
    let mut store_dirs = HashSet::new();
    for (rel, dir) in &stores {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // A checkpoint a crash left behind holds old files alive: gone
        // first (one backup of a node runs at a time).
        if let Some(parent) = dir.parent() {
            for e in sorted(parent)? {
                if e.file_name().to_string_lossy().starts_with(&format!("{SCRATCH}{name}-")) {
                    std::fs::remove_dir_all(e.path()).map_err(crate::io(&e.path()))?;
                }
            }
        }
        let ckpt = dir.with_file_name(format!("{SCRATCH}{name}-{:08x}", rand::random::<u32>()));
        scratch.push(ckpt.clone());
        let here = canonical(dir);
        match live.iter().find(|l| canonical(&l.dir) == here) {
            Some(l) => (l.checkpoint)(&ckpt)
                .map_err(|message| BackupError::Store { path: dir.display().to_string(), message })?,
            None => capture::checkpoint(dir, &ckpt)?,
        }
        digests.push(StoreDigest { path: rel.clone(), families: capture::digest(&ckpt)? });
        list_files(rel, &ckpt, files, &|name| name == "LOCK" || name.starts_with("LOG"))?;
        store_dirs.insert(dir.clone());
    }
    for s in sources {
        plain_files(&s.name, &s.dir, &store_dirs, files)?;
    }
    files.sort();
    Ok(())
}

fn list_files(rel: &str, dir: &Path, files: &mut Vec<(String, PathBuf)>, skip: &dyn Fn(&str) -> bool) -> Result<()> {
    for e in sorted(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !skip(&name) && e.file_type().map_err(crate::io(&e.path()))?.is_file() {
            files.push((format!("{rel}/{name}"), e.path()));
        }
    }
    Ok(())
}

/// A backup id: the capture's UTC time (sorts) and a random suffix.
fn backup_id(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let (y, m, d) = medanchor_storage::keys::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}{:03}Z-{:04x}",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        now_ms % 1000,
        rand::random::<u16>()
    )
}

/// Backs up `sources` into `target` as set `set`, every blob sealed under
/// `key`, the manifest signed by `signer`. Stores are captured through
/// checkpoints (through `live`'s handles for the stores a running node
/// holds); a blob already in the target is not written again.
pub fn create(
    sources: &[Source],
    live: &[LiveStore<'_>],
    target: &Target,
    key: &BackupKey,
    signer: &SigningKey,
    set: &str,
    now_ms: u64,
) -> Result<(Signed, Created)> {
    create_with_objects(sources, live, &[], target, key, signer, set, now_ms, &|_| {})
}

/// How far a backup is: bytes of the directories' files hashed and stored
/// so far, of how many (objects from an [`ObjectSource`] are counted as
/// they are fetched, so the total grows then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes done.
    pub done: u64,
    /// Bytes known so far.
    pub total: u64,
}

/// [`create`], with the objects of `objects` captured after the stores,
/// and `progress` told after each file.
#[allow(clippy::too_many_arguments)]
pub fn create_with_objects(
    sources: &[Source],
    live: &[LiveStore<'_>],
    objects: &[&dyn ObjectSource],
    target: &Target,
    key: &BackupKey,
    signer: &SigningKey,
    set: &str,
    now_ms: u64,
    progress: &dyn Fn(Progress),
) -> Result<(Signed, Created)> {
    let (mut files, mut stores, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let walked = capture_sources(sources, live, &mut files, &mut stores, &mut scratch);
    let total: u64 = files.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut at = Progress { done: 0, total };
    let mut tell = |bytes: u64, grows: bool| {
        at.done += bytes;
        if grows {
            at.total += bytes;
        }
        progress(at);
    };
    let stored = walked.and_then(|()| store_files(&files, target, key, &mut |b| tell(b, false)));
    for dir in &scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let (mut entries, mut new_blobs, mut new_blob_bytes) = stored?;
    for source in objects {
        let (e, n, b) = store_objects(*source, sources, target, key, set, &mut |b| tell(b, true))?;
        entries.extend(e);
        new_blobs += n;
        new_blob_bytes += b;
    }
    let manifest = Manifest {
        format: FORMAT,
        id: backup_id(now_ms),
        set: set.to_string(),
        created_ms: now_ms,
        node_key: String::new(),
        files: entries,
        stores,
    };
    let signed = Signed::sign(manifest, signer)?;
    target.put_manifest(&signed)?;
    let m = &signed.manifest;
    let created = Created {
        id: m.id.clone(),
        files: m.files.len(),
        bytes: m.bytes(),
        new_blobs,
        new_blob_bytes,
        stores: m.stores.len(),
    };
    Ok((signed, created))
}

fn store_files(
    files: &[(String, PathBuf)],
    target: &Target,
    key: &BackupKey,
    tell: &mut dyn FnMut(u64),
) -> Result<(Vec<FileEntry>, usize, u64)> {
    let (mut entries, mut new_blobs, mut new_bytes) = (Vec::with_capacity(files.len()), 0, 0);
    for (rel, path) in files {
        let (sha, size) = blob::hash_file(path)?;
        let address = key.address(&sha);
        if !target.has_blob(&address) {
            new_bytes += target.put_blob(&address, |tmp| blob::seal_file(key, &address, path, tmp))?;
            new_blobs += 1;
        }
        entries.push(FileEntry { path: rel.clone(), size, sha256: hex::encode(sha), blob: address });
        tell(size);
    }
    Ok((entries, new_blobs, new_bytes))
}

fn store_objects(
    source: &dyn ObjectSource,
    sources: &[Source],
    target: &Target,
    key: &BackupKey,
    set: &str,
    tell: &mut dyn FnMut(u64),
) -> Result<(Vec<FileEntry>, usize, u64)> {
    let name = source.name();
    if !crate::manifest::safe_relative(name) || name.contains('/') || sources.iter().any(|s| s.name == name) {
        return Err(BackupError::Manifest(format!("object source name {name:?}")));
    }
    // What the newest backup of the set holds under this source.
    let mut held = std::collections::HashMap::new();
    if let Some(newest) = list(target)?.into_iter().rfind(|s| s.set == set) {
        for f in target.manifest(&newest.id)?.manifest.files {
            if f.path.starts_with(&format!("{name}/")) {
                held.insert(f.path.clone(), f);
            }
        }
    }
    let listed = source.list().map_err(|message| BackupError::Store { path: name.to_string(), message })?;
    let scratch = target.root().join(format!(".fetch-{:08x}", rand::random::<u32>()));
    let (mut entries, mut new_blobs, mut new_bytes) = (Vec::with_capacity(listed.len()), 0, 0);
    let result = (|| {
        for (object, size) in listed {
            let path = format!("{name}/{object}");
            if !crate::manifest::safe_relative(&path) {
                return Err(BackupError::Manifest(format!("object key {object:?}")));
            }
            if let Some(f) = held.get(&path).filter(|f| f.size == size && target.has_blob(&f.blob)) {
                entries.push(f.clone());
                tell(size);
                continue;
            }
            source.fetch(&object, &scratch).map_err(|message| BackupError::Store { path: path.clone(), message })?;
            let (e, n, b) = store_files(&[(path, scratch.clone())], target, key, tell)?;
            entries.extend(e);
            new_blobs += n;
            new_bytes += b;
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&scratch);
    result.map(|()| (entries, new_blobs, new_bytes))
}

/// What a verification checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The backup.
    pub id: String,
    /// Files opened and compared.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Stores restored, opened and found in their captured state.
    pub stores: usize,
    /// When the backup was captured (unix ms).
    pub created_ms: u64,
}

/// Verifies backup `id`: the manifest's signature (under `trusted`, the
/// node's key, when given), every blob opened and compared with the
/// manifest, and the whole backup restored into `scratch` (which must not
/// exist; removed afterwards) with every store opened and its state
/// digest compared with the one captured. Marks the backup verified.
pub fn verify(
    target: &Target,
    id: &str,
    key: &BackupKey,
    trusted: Option<&VerifyingKey>,
    scratch: &Path,
    now_ms: u64,
) -> Result<Verified> {
    let restored = restore(target, id, key, trusted, scratch);
    let _ = std::fs::remove_dir_all(scratch);
    let verified = restored?;
    target.mark_verified(id, now_ms)?;
    Ok(verified)
}

/// Restores backup `id` into `into`, which must not exist or be empty: a
/// restore never overwrites. Every file is written to a sibling directory
/// first, checked against the manifest, synced; every store is opened and
/// its digest compared; only then is the directory renamed into place.
pub fn restore(
    target: &Target,
    id: &str,
    key: &BackupKey,
    trusted: Option<&VerifyingKey>,
    into: &Path,
) -> Result<Verified> {
    restore_except(target, id, key, trusted, into, &[])
}

/// [`restore`] without the sources named in `skip` (e.g. the chain, when
/// the network it stands for survived the loss and is newer than any
/// backup of it). Naming a source the backup does not hold is an error: a
/// typo must not restore what the operator meant to keep.
pub fn restore_except(
    target: &Target,
    id: &str,
    key: &BackupKey,
    trusted: Option<&VerifyingKey>,
    into: &Path,
    skip: &[String],
) -> Result<Verified> {
    if into.exists() && std::fs::read_dir(into).map_err(crate::io(into))?.next().is_some() {
        return Err(BackupError::NotEmpty(into.display().to_string()));
    }
    let signed = target.manifest(id)?;
    let mut manifest = signed.verify(trusted)?.clone();
    let source_of = |path: &str| path.split('/').next().unwrap_or_default().to_string();
    for s in skip {
        if !manifest.files.iter().any(|f| &source_of(&f.path) == s) {
            return Err(BackupError::Manifest(format!("backup {id} holds no source {s:?} to leave out")));
        }
    }
    manifest.files.retain(|f| !skip.contains(&source_of(&f.path)));
    manifest.stores.retain(|st| !skip.contains(&source_of(&st.path)));
    let manifest = &manifest;
    let name = into.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "restore".into());
    let staging = into.with_file_name(format!(".{name}.restoring-{:08x}", rand::random::<u32>()));
    let result = restore_into(target, manifest, key, &staging);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        return result;
    }
    if into.exists() {
        std::fs::remove_dir(into).map_err(crate::io(into))?;
    }
    std::fs::rename(&staging, into).map_err(crate::io(into))?;
    if let Some(parent) = into.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    result
}

fn restore_into(target: &Target, manifest: &Manifest, key: &BackupKey, staging: &Path) -> Result<Verified> {
    let mut dirs = HashSet::new();
    for f in &manifest.files {
        let dest = staging.join(&f.path);
        let dir = dest.parent().unwrap_or(staging).to_path_buf();
        if dirs.insert(dir.clone()) {
            std::fs::create_dir_all(&dir).map_err(crate::io(&dir))?;
        }
        let file = std::fs::File::create(&dest).map_err(crate::io(&dest))?;
        let sink = HashWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let (sha, size, out) = blob::open_blob(key, &f.blob, &target.blob_path(&f.blob), sink)?.finish();
        if hex::encode(sha) != f.sha256 || size != f.size {
            return Err(BackupError::Mismatch {
                path: f.path.clone(),
                what: format!("restored {size} bytes that do not hash as the manifest says"),
            });
        }
        let file = out.into_inner().map_err(|e| BackupError::Io { path: f.path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(crate::io(&dest))?;
    }
    for dir in &dirs {
        sync_dir(dir)?;
    }
    for store in &manifest.stores {
        let restored = capture::digest(&staging.join(&store.path))?;
        for (family, captured) in &store.families {
            let got = restored.get(family);
            if got != Some(captured) {
                return Err(BackupError::Digest {
                    store: store.path.clone(),
                    family: family.clone(),
                    captured: format!("{} keys, {}", captured.keys, captured.sha256),
                    restored: got.map_or("absent".into(), |g| format!("{} keys, {}", g.keys, g.sha256)),
                });
            }
        }
    }
    Ok(Verified {
        id: manifest.id.clone(),
        files: manifest.files.len(),
        bytes: manifest.bytes(),
        stores: manifest.stores.len(),
        created_ms: manifest.created_ms,
    })
}

/// A backup, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Its id.
    pub id: String,
    /// Its set.
    pub set: String,
    /// Unix ms of the capture.
    pub created_ms: u64,
    /// Files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// When it last verified.
    pub verified_ms: Option<u64>,
}

/// Every backup in `target`, oldest first (manifests not checked here:
/// `verify` does that).
pub fn list(target: &Target) -> Result<Vec<Summary>> {
    target
        .ids()?
        .into_iter()
        .map(|id| {
            let m = target.manifest(&id)?.manifest;
            Ok(Summary {
                verified_ms: target.verified_ms(&id),
                id,
                set: m.set.clone(),
                created_ms: m.created_ms,
                files: m.files.len(),
                bytes: m.bytes(),
            })
        })
        .collect()
}

/// What a prune removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Backups removed.
    pub backups: Vec<String>,
    /// Blobs no remaining backup holds, removed.
    pub blobs: usize,
}

/// How long backups are kept: every backup for `days`, and beyond that
/// the newest of each of the last `weekly` weeks and `monthly` calendar
/// months (UTC) that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days every backup is kept.
    pub days: u64,
    /// Weeks (of 7 days from the epoch) whose newest backup is kept.
    pub weekly: usize,
    /// Calendar months whose newest backup is kept.
    pub monthly: usize,
}

impl Retention {
    /// Every backup for `days`, no tiers.
    pub fn days(days: u64) -> Retention {
        Retention { days, weekly: 0, monthly: 0 }
    }
}

/// The newest backup of each of the last `count` buckets, `bucket` giving
/// a backup's (oldest first in `backups`).
fn newest_per_bucket(backups: &[&Summary], count: usize, bucket: impl Fn(u64) -> i64) -> HashSet<String> {
    let mut newest: std::collections::BTreeMap<i64, &str> = std::collections::BTreeMap::new();
    for s in backups {
        newest.insert(bucket(s.created_ms), &s.id);
    }
    newest.values().rev().take(count).map(|id| id.to_string()).collect()
}

/// Removes the backups of set `set` that `retention` no longer keeps at
/// `now_ms` — never the newest verified one, nor the newest one — then
/// every blob no remaining backup (of any set) holds, and leftover
/// temporaries.
pub fn prune(target: &Target, set: &str, retention: Retention, now_ms: u64) -> Result<Pruned> {
    let all = list(target)?;
    let ours: Vec<&Summary> = all.iter().filter(|s| s.set == set).collect();
    let mut keep: HashSet<String> = ours.last().map(|s| s.id.clone()).into_iter().collect();
    keep.extend(ours.iter().rev().find(|s| s.verified_ms.is_some()).map(|s| s.id.clone()));
    const DAY: u64 = 86_400_000;
    keep.extend(newest_per_bucket(&ours, retention.weekly, |ms| (ms / (7 * DAY)) as i64));
    keep.extend(newest_per_bucket(&ours, retention.monthly, |ms| {
        let (y, m, _) = medanchor_storage::keys::civil_from_days((ms / DAY) as i64);
        y * 12 + m
    }));
    let mut removed = Vec::new();
    for s in &ours {
        if !keep.contains(&s.id) && s.created_ms.saturating_add(retention.days.saturating_mul(DAY)) < now_ms {
            target.remove_manifest(&s.id)?;
            removed.push(s.id.clone());
        }
    }
    let mut held = HashSet::new();
    for id in target.ids()? {
        held.extend(target.manifest(&id)?.manifest.files.into_iter().map(|f| f.blob));
    }
    let (blobs, temps) = target.blobs()?;
    let mut swept = 0;
    for b in blobs.iter().filter(|b| !held.contains(*b)) {
        target.remove_blob(b)?;
        swept += 1;
    }
    for t in temps {
        let _ = std::fs::remove_file(t);
    }
    Ok(Pruned { backups: removed, blobs: swept })
}

#[cfg(test)]
mod in_flight_tests {
    use super::*;

    #[test]
    fn writers_temporary_files_are_not_captured() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("5e23"), b"blob").expect("write");
        std::fs::write(dir.path().join(".5e24.tmp-1830"), b"half").expect("write");
        std::fs::write(dir.path().join(".tmp-ab-01"), b"half").expect("write");
        let mut files = Vec::new();
        plain_files("api", dir.path(), &HashSet::new(), &mut files).expect("list");
        assert_eq!(files.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(), vec!["api/5e23"]);
    }
}
