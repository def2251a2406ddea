//! Backups against real RocksDB stores and files on disk: a backup
//! restores byte for byte with every store in its captured state; the next
//! backup stores only what changed; a store held by a running process is
//! refused; every kind of tampering (a flipped byte, a removed blob,
//! chunks swapped, a blob under another address, a forged or re-signed
//! manifest, a path leaving the directory) is caught by `verify` and
//! refused by `restore`; a restore never overwrites; prune keeps the
//! newest verified backup and sweeps only unheld blobs.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use medanchor_backup::key::BackupKey;
use medanchor_backup::manifest::Signed;
use medanchor_backup::target::Target;
use medanchor_backup::{create, list, prune, restore, verify, BackupError, Retention, Source};

const DAY: u64 = 86_400_000;

struct Fixture {
    dir: tempfile::TempDir,
    key: BackupKey,
    node: SigningKey,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Fixture { dir, key: BackupKey::generate(), node: SigningKey::from_bytes(&[7; 32]) };
        std::fs::create_dir_all(f.data().join("objects/t/2026/12")).expect("dirs");
        f
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn target(&self) -> Target {
        Target::open(&self.dir.path().join("target")).expect("target")
    }

    fn sources(&self) -> Vec<Source> {
        vec![Source { name: "api".into(), dir: self.data() }]
    }

    fn backup(&self, now: u64) -> medanchor_backup::Created {
        create(&self.sources(), &[], &self.target(), &self.key, &self.node, "data", now).expect("create").1
    }

    fn scratch(&self) -> PathBuf {
        self.dir.path().join(format!("scratch-{}", rand::random::<u32>()))
    }
}

fn write_store(dir: &Path, rows: std::ops::Range<u32>) {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let db = rocksdb::DB::open_cf(&opts, dir, ["default", "records"]).expect("open");
    let cf = db.cf_handle("records").expect("cf");
    for i in rows {
        db.put_cf(&cf, format!("record-{i:06}"), vec![(i % 251) as u8; 300]).expect("put");
    }
    db.flush_cf(&cf).expect("flush");
}

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).expect("under").display().to_string(),
                    std::fs::read(&p).expect("read"),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_backup_restores_byte_for_byte_and_the_next_one_stores_only_changes() {
    let f = Fixture::new();
    write_store(&f.data().join("db"), 0..2000);
    let object: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(f.data().join("objects/t/2026/12/obj1"), &object).expect("object");
    std::fs::write(f.data().join("audit.log"), b"entry 1\n").expect("log");

    let first = f.backup(DAY);
    assert_eq!(first.stores, 1);
    assert_eq!(first.new_blobs, first.files, "a first backup stores every file");
    // Restored: every plain file byte for byte, the store's state equal.
    let into = f.scratch();
    let v = restore(&f.target(), &first.id, &f.key, Some(&f.node.verifying_key()), &into).expect("restore");
    assert_eq!((v.files, v.stores), (first.files, 1));
    let restored = files_under(&into.join("api"));
    let original = files_under(&f.data());
    let plain = |files: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        files.iter().filter(|(p, _)| !p.starts_with("db/")).cloned().collect()
    };
    assert_eq!(plain(&restored), plain(&original));
    assert_eq!(
        medanchor_backup::capture::digest(&into.join("api/db")).expect("digest"),
        medanchor_backup::capture::digest(&f.data().join("db")).expect("digest"),
        "the restored store holds the captured state"
    );
    // The target holds ciphertext only.
    for (_, bytes) in files_under(f.target().root()) {
        assert!(!bytes.windows(64).any(|w| w == &object[1000..1064]), "plaintext in the target");
        assert!(!bytes.windows(10).any(|w| w == b"record-000"), "plaintext in the target");
    }

    // Unchanged: nothing new. One changed file and a few more rows: only
    // those blobs (and the store's changed files) are written.
    // Unchanged: opening a store for its checkpoint rewrites its small
    // MANIFEST and OPTIONS files; no SST and no object is stored again.
    let same = f.backup(2 * DAY);
    assert!(same.new_blobs <= 3 && same.new_blob_bytes < 64 * 1024, "{same:?}");
    // (The write-ahead log keeps its bytes under a new number: the same
    // blob.)
    let blobs = |id: &str| -> Vec<String> {
        let m = f.target().manifest(id).expect("manifest").manifest;
        let small = ["MANIFEST", "OPTIONS", "CURRENT"];
        let mut b: Vec<String> =
            m.files.into_iter().filter(|e| !small.iter().any(|s| e.path.contains(s))).map(|e| e.blob).collect();
        b.sort();
        b
    };
    assert_eq!(blobs(&first.id), blobs(&same.id), "every other file is the same blob");
    std::fs::write(f.data().join("audit.log"), b"entry 1\nentry 2\n").expect("log");
    write_store(&f.data().join("db"), 2000..2010);
    let next = f.backup(3 * DAY);
    assert!(next.new_blobs >= 2 && next.new_blobs < next.files, "{next:?}");
    assert!(next.new_blob_bytes < 1_000_000, "the 3 MB object is not stored again: {next:?}");
    let v = verify(&f.target(), &next.id, &f.key, Some(&f.node.verifying_key()), &f.scratch(), 3 * DAY).expect("v");
    assert_eq!(v.id, next.id);
    assert_eq!(
        list(&f.target()).expect("list").iter().map(|s| s.verified_ms.is_some()).collect::<Vec<_>>(),
        [false, false, true]
    );
}

/// A source that is a store itself (as the devnet's and the indexer's
/// data directories are) is captured from its checkpoint only, through a
/// live handle when one is given.
#[test]
fn a_source_that_is_a_store_is_captured_once_through_its_live_handle() {
    let f = Fixture::new();
    let store = f.dir.path().join("indexer");
    write_store(&store, 0..100);
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &store, ["default", "records"]).expect("open");
    let checkpoint = |into: &Path| {
        rocksdb::checkpoint::Checkpoint::new(&db).and_then(|c| c.create_checkpoint(into)).map_err(|e| e.to_string())
    };
    let live = [medanchor_backup::LiveStore { dir: store.clone(), checkpoint: &checkpoint }];
    let sources = [Source { name: "indexer".into(), dir: store.clone() }];
    let (signed, _) = create(&sources, &live, &f.target(), &f.key, &f.node, "data", DAY).expect("create while open");
    let paths: Vec<&str> = signed.manifest.files.iter().map(|e| e.path.as_str()).collect();
    let unique: std::collections::HashSet<&&str> = paths.iter().collect();
    assert_eq!(unique.len(), paths.len(), "each file once: {paths:?}");
    assert_eq!(signed.manifest.stores.len(), 1);
    assert_eq!(signed.manifest.stores[0].path, "indexer");
    assert_eq!(signed.manifest.stores[0].families["records"].keys, 100);
    // Written on while captured: the backup holds the state at its checkpoint.
    let cf = db.cf_handle("records").expect("cf");
    db.put_cf(&cf, "record-999999", b"after").expect("put");
    let into = f.scratch();
    restore(&f.target(), &signed.manifest.id, &f.key, Some(&f.node.verifying_key()), &into).expect("restore");
    let digest = medanchor_backup::capture::digest(&into.join("indexer")).expect("digest");
    assert_eq!(digest["records"].keys, 100, "the captured state, not the later write");
}

#[test]
fn a_store_held_by_a_running_process_is_refused() {
    let f = Fixture::new();
    write_store(&f.data().join("db"), 0..10);
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), f.data().join("db"), ["default", "records"]);
    let _held = db.expect("open");
    // A checkpoint a crash left behind is cleaned up by the next backup.
    let stale = f.data().join(".backup-ckpt-db-0badc0de");
    std::fs::create_dir_all(&stale).expect("stale");
    std::fs::write(stale.join("000001.sst"), b"old").expect("stale file");
    let r = create(&f.sources(), &[], &f.target(), &f.key, &f.node, "data", DAY);
    assert!(matches!(r, Err(BackupError::InUse(_))), "{r:?}");
    assert!(!stale.exists(), "the leftover checkpoint is gone");
    assert!(list(&f.target()).expect("list").is_empty(), "no manifest");
    let leftovers: Vec<_> = std::fs::read_dir(f.data()).expect("dir").filter_map(|e| e.ok()).collect();
    assert!(leftovers.iter().all(|e| !e.file_name().to_string_lossy().starts_with(".backup-ckpt")));
}

/// Tampering of every kind: `verify` fails, `restore` refuses and leaves
/// nothing behind.
#[test]
fn tampering_of_every_kind_is_caught_and_restore_refuses() {
    let f = Fixture::new();
    write_store(&f.data().join("db"), 0..500);
    // Random: it does not compress, so its blob spans several chunks.
    let mut big = vec![0u8; 400_000];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut big);
    std::fs::write(f.data().join("objects/t/2026/12/obj"), &big).expect("object");
    let id = f.backup(DAY).id;
    let target = f.target();
    let trusted = f.node.verifying_key();
    let signed = target.manifest(&id).expect("manifest");
    let big_blob = signed.manifest.files.iter().find(|e| e.path.ends_with("obj")).expect("obj").blob.clone();
    let small_blob = signed.manifest.files.iter().find(|e| e.path.ends_with("CURRENT")).expect("CURRENT").blob.clone();
    let path = target.blob_path(&big_blob);
    let good = std::fs::read(&path).expect("blob");
    let manifest_path = target.root().join("manifests").join(format!("{id}.json"));
    let good_manifest = std::fs::read(&manifest_path).expect("manifest");

    let check = |what: &str, expect: &dyn Fn(&BackupError) -> bool| {
        let r = verify(&target, &id, &f.key, Some(&trusted), &f.scratch(), DAY);
        assert!(r.as_ref().is_err_and(expect), "{what}: verify said {r:?}");
        let into = f.scratch();
        let r = restore(&target, &id, &f.key, Some(&trusted), &into);
        assert!(r.as_ref().is_err_and(expect), "{what}: restore said {r:?}");
        assert!(!into.exists(), "{what}: a refused restore leaves nothing");
    };
    let tampered = |e: &BackupError| matches!(e, BackupError::Tampered(_));

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    std::fs::write(&path, &flipped).expect("write");
    check("a flipped byte", &tampered);

    // Two whole chunks of the stream swapped (header 40 + 19, chunks of
    // 64 KiB + 16).
    let (start, chunk) = (40 + 19, 65_536 + 16);
    assert!(good.len() > start + 3 * chunk, "the blob spans several chunks");
    let mut swapped = good.clone();
    swapped[start..start + 2 * chunk]
        .copy_from_slice(&[&good[start + chunk..start + 2 * chunk], &good[start..start + chunk]].concat());
    std::fs::write(&path, &swapped).expect("write");
    check("reordered chunks", &tampered);

    std::fs::write(&path, &good[..good.len() - 100]).expect("write");
    check("a truncated blob", &tampered);

    // Another blob of the same key copied over it.
    std::fs::copy(target.blob_path(&small_blob), &path).expect("copy");
    check("another blob at this address", &tampered);

    std::fs::remove_file(&path).expect("remove");
    check("a removed blob", &|e| matches!(e, BackupError::Missing(_)));
    std::fs::write(&path, &good).expect("restore the blob");

    // The manifest: changed after signing; re-signed by another key; a
    // path that leaves the directory (signed by the node, still refused).
    let mut forged: Signed = serde_json::from_slice(&good_manifest).expect("json");
    forged.manifest.files[0].size += 1;
    std::fs::write(&manifest_path, serde_json::to_vec(&forged).expect("json")).expect("write");
    check("a changed manifest", &|e| matches!(e, BackupError::Signature(_)));
    let resigned = Signed::sign(forged.manifest.clone(), &SigningKey::from_bytes(&[8; 32])).expect("sign");
    std::fs::write(&manifest_path, serde_json::to_vec(&resigned).expect("json")).expect("write");
    check("a manifest signed by another key", &|e| matches!(e, BackupError::Signature(_)));
    let mut escaping: Signed = serde_json::from_slice(&good_manifest).expect("json");
    escaping.manifest.files[0].path = "api/../../etc/passwd".into();
    let escaping = Signed::sign(escaping.manifest, &f.node).expect("sign");
    std::fs::write(&manifest_path, serde_json::to_vec(&escaping).expect("json")).expect("write");
    check("a path leaving the directory", &|e| matches!(e, BackupError::Manifest(_)));
    std::fs::write(&manifest_path, &good_manifest).expect("restore the manifest");

    // Intact again: verifies; another backup key opens nothing.
    verify(&target, &id, &f.key, Some(&trusted), &f.scratch(), DAY).expect("intact");
    let other = verify(&target, &id, &BackupKey::generate(), Some(&trusted), &f.scratch(), DAY);
    assert!(matches!(other, Err(BackupError::Tampered(_))), "{other:?}");
    // A restore never overwrites.
    let occupied = f.scratch();
    std::fs::create_dir_all(&occupied).expect("dir");
    std::fs::write(occupied.join("newer"), b"x").expect("write");
    let r = restore(&target, &id, &f.key, Some(&trusted), &occupied);
    assert!(matches!(r, Err(BackupError::NotEmpty(_))), "{r:?}");
    assert_eq!(std::fs::read(occupied.join("newer")).expect("kept"), b"x");
}

#[test]
fn prune_keeps_the_newest_verified_backup_and_sweeps_only_unheld_blobs() {
    let f = Fixture::new();
    let target = f.target();
    let mut ids = Vec::new();
    for day in 1..=5u64 {
        std::fs::write(f.data().join(format!("day-{day}")), format!("only on day {day}")).expect("write");
        std::fs::write(f.data().join("shared"), b"the same every day").expect("write");
        if day > 1 {
            std::fs::remove_file(f.data().join(format!("day-{}", day - 1))).expect("rm");
        }
        ids.push(f.backup(day * DAY).id);
        if day == 2 {
            verify(&target, &ids[1], &f.key, None, &f.scratch(), day * DAY).expect("verify");
        }
    }
    // 30-day retention on day 10: nothing is old enough.
    assert!(prune(&target, "data", Retention::days(30), 10 * DAY).expect("prune").backups.is_empty());
    // 2-day retention on day 6: days 1..3 are expired, but day 2 is the
    // newest verified one and stays; day 5 is the newest.
    let pruned = prune(&target, "data", Retention::days(2), 6 * DAY).expect("prune");
    assert_eq!(pruned.backups, vec![ids[0].clone(), ids[2].clone()]);
    assert_eq!(pruned.blobs, 2, "day 1's and day 3's own files; the shared one is held");
    let left: Vec<String> = list(&target).expect("list").into_iter().map(|s| s.id).collect();
    assert_eq!(left, vec![ids[1].clone(), ids[3].clone(), ids[4].clone()]);
    for id in &left {
        verify(&target, id, &f.key, None, &f.scratch(), 6 * DAY).expect("what is left still verifies");
    }
}

/// Tiers: every backup for the retention period, then the newest of each
/// of the last weeks and months; the rest go (a clock moved over 200 days
/// of daily backups).
#[test]
fn retention_tiers_keep_weekly_and_monthly_backups_past_the_daily_window() {
    let f = Fixture::new();
    let target = f.target();
    std::fs::write(f.data().join("file"), b"the same every day").expect("write");
    // Daily from 2026-01-01 (day 20454 since the epoch) for 200 days.
    let start = 20_454 * DAY;
    let mut ids = Vec::new();
    for day in 0..200 {
        ids.push(f.backup(start + day * DAY + 3_600_000).id);
    }
    let now = start + 200 * DAY;
    let pruned = prune(&target, "data", Retention { days: 30, weekly: 8, monthly: 6 }, now).expect("prune");
    let kept: Vec<String> = list(&target).expect("list").into_iter().map(|s| s.id).collect();
    assert_eq!(kept.len() + pruned.backups.len(), 200);
    let kept_days: std::collections::BTreeSet<usize> =
        ids.iter().enumerate().filter(|(_, id)| kept.contains(id)).map(|(d, _)| d).collect();
    // Expected: the last 30 days (day 170's backup, at 01:00, is 29 d 23 h
    // old), the newest backup of each of the last 8 weeks, and of each of
    // the last 6 months: July (day 199), June 30 (180), May 31 (150), April
    // 30 (119), March 31 (89), February 28 (58) — not January 31 (30).
    let ms = |d: usize| start + d as u64 * DAY + 3_600_000;
    let mut weeks = std::collections::BTreeMap::new();
    for d in 0..200 {
        weeks.insert(ms(d) / (7 * DAY), d);
    }
    let mut expected: std::collections::BTreeSet<usize> = (170..200).collect();
    expected.extend(weeks.values().rev().take(8));
    expected.extend([199, 180, 150, 119, 89, 58]);
    assert_eq!(kept_days, expected);
    assert!(!kept_days.contains(&30) && !kept_days.contains(&0));
    // Everything left still verifies.
    for id in kept.iter().rev().take(3) {
        verify(&target, id, &f.key, None, &f.scratch(), now).expect("verifies");
    }
}

/// A bucket as an [`ObjectSource`]: a directory standing for it (the
/// node's S3 bucket in `medanchor/tests/it/backup.rs`), counting fetches.
struct Bucket {
    dir: PathBuf,
    fetched: std::cell::Cell<usize>,
}

impl medanchor_backup::ObjectSource for Bucket {
    fn name(&self) -> &str {
        "objects-s3"
    }

    fn list(&self) -> Result<Vec<(String, u64)>, String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            let len = e.metadata().map_err(|e| e.to_string())?.len();
            out.push((format!("t/2026/12/{}", e.file_name().to_string_lossy()), len));
        }
        out.sort();
        Ok(out)
    }

    fn fetch(&self, key: &str, into: &Path) -> Result<(), String> {
        self.fetched.set(self.fetched.get() + 1);
        let name = key.rsplit('/').next().ok_or("key")?;
        std::fs::copy(self.dir.join(name), into).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Objects outside the data directory are captured with it, each fetched
/// only when no earlier backup holds it, restored under the source's name,
/// and checked like every file; a key that would leave the directory is
/// refused.
#[test]
fn objects_outside_the_directories_are_captured_once_and_restored() {
    let f = Fixture::new();
    write_store(&f.data().join("db"), 0..10);
    let bucket = Bucket { dir: f.dir.path().join("bucket"), fetched: Default::default() };
    std::fs::create_dir_all(&bucket.dir).expect("bucket");
    std::fs::write(bucket.dir.join("a"), vec![1u8; 200_000]).expect("a");
    std::fs::write(bucket.dir.join("b"), b"bbb").expect("b");
    let make = |now: u64| {
        let seen = std::cell::Cell::new(medanchor_backup::Progress { done: 0, total: 0 });
        let made = medanchor_backup::create_with_objects(
            &f.sources(),
            &[],
            &[&bucket],
            &f.target(),
            &f.key,
            &f.node,
            "data",
            now,
            &|p| {
                assert!(p.done >= seen.get().done && p.done <= p.total, "{p:?}");
                seen.set(p);
            },
        );
        let last = seen.get();
        assert!(last.done == last.total && last.total > 200_000, "progress ends at its total: {last:?}");
        made.expect("create").1
    };
    let first = make(DAY);
    assert_eq!(bucket.fetched.get(), 2);
    std::fs::write(bucket.dir.join("c"), b"ccc").expect("c");
    let second = make(2 * DAY);
    assert_eq!(bucket.fetched.get(), 3, "only the new object is fetched");
    assert_eq!(second.files, first.files + 1);
    let into = f.scratch();
    restore(&f.target(), &second.id, &f.key, Some(&f.node.verifying_key()), &into).expect("restore");
    for (name, want) in [("a", vec![1u8; 200_000]), ("b", b"bbb".to_vec()), ("c", b"ccc".to_vec())] {
        assert_eq!(std::fs::read(into.join("objects-s3/t/2026/12").join(name)).expect("object"), want, "{name}");
    }
    // A changed object under a kept key (never written by the node; here
    // to prove the check bites) is caught by size, fetched again.
    std::fs::write(bucket.dir.join("b"), b"bbbb").expect("b");
    make(3 * DAY);
    assert_eq!(bucket.fetched.get(), 4);
    // A key with `..` is refused, nothing written.
    struct Escaping;
    impl medanchor_backup::ObjectSource for Escaping {
        fn name(&self) -> &str {
            "objects-s3"
        }
        fn list(&self) -> Result<Vec<(String, u64)>, String> {
            Ok(vec![("../../etc/passwd".into(), 1)])
        }
        fn fetch(&self, _: &str, _: &Path) -> Result<(), String> {
            panic!("never fetched")
        }
    }
    let before = list(&f.target()).expect("list").len();
    let refused = medanchor_backup::create_with_objects(
        &f.sources(),
        &[],
        &[&Escaping],
        &f.target(),
        &f.key,
        &f.node,
        "data",
        4 * DAY,
        &|_| {},
    );
    assert!(matches!(refused, Err(BackupError::Manifest(_))), "{refused:?}");
    assert_eq!(list(&f.target()).expect("list").len(), before);
}
