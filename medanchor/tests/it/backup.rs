//! `medanchor backup` on a real node's directories: refused while `up`
//! holds its stores; after a `kill -9`, the data set and the keys set (under
//! the recovery key) are backed up, listed and verified; the node's
//! directory is wiped; both are restored, and `up` on the restored
//! directory serves the same record and the same attachment, to the same
//! sessions' keys. A second backup of unchanged data stores almost nothing.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::upload_crash::{consenting_provider, download, new_record, upload_jpeg};
use super::verify::{free_port, rt, sign_in, Ports, Up};

fn backup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medanchor")).arg("backup").args(args).output().expect("run medanchor backup")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The id a `backup create` line names (`backup ID (set): …`).
fn ids(stdout: &str) -> Vec<String> {
    stdout.lines().filter_map(|l| l.strip_prefix("backup ")?.split_whitespace().next().map(str::to_string)).collect()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

async fn read_record(api: &str, token: &str, record: &str) -> Value {
    for _ in 0..200 {
        let r = reqwest::Client::new().get(format!("{api}/v1/records/{record}")).bearer_auth(token).send().await;
        if let Ok(r) = r {
            if r.status() == 200 {
                return r.json().await.expect("json");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("record {record} never readable");
}

/// The record once its version is anchored.
async fn read_anchored(api: &str, token: &str, record: &str) -> Value {
    for _ in 0..300 {
        let r = read_record(api, token, record).await;
        if r["anchor"]["status"] == "anchored" {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("record {record} never anchored");
}

/// `up` on the restored directory `root` (fresh ports): the node, its
/// API's URL, and the patient's session.
fn start_restored(rt: &tokio::runtime::Runtime, root: &Path) -> (Up, String, String) {
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let up = Up::start(root, &ports);
    let me = rt.block_on(sign_in(&api, "wallet_1"));
    (up, api, me)
}

#[test]
fn a_node_backed_up_wiped_and_restored_serves_the_same_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key, recovery) =
        (dir.path().join("backups"), dir.path().join("backup.key"), dir.path().join("recovery.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let up = Up::start(&root, &ports);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let file: Vec<u8> =
        [&[0xff, 0xd8, 0xff, 0xe0][..], &(0..300_000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>()].concat();
    let (record, attachment, before) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let token = sign_in(&api, "wallet_2").await;
        let http = reqwest::Client::new();
        let record = new_record(&http, &api, &token).await;
        let attachment = upload_jpeg(&http, &api, &token, &record, "knee.jpg", &file).await;
        let me = sign_in(&api, "wallet_1").await;
        (record.clone(), attachment, read_anchored(&api, &me, &record).await)
    });
    let (root_s, keys_s, to_s, key_s) = (p(&root), p(&root.join("keys")), p(&targets), p(&key));
    let create = |extra: &[&str]| {
        let mut args = vec!["create", "--root", &root_s, "--keys-dir", &keys_s, "--to", &to_s, "--key", &key_s];
        args.extend_from_slice(extra);
        backup(&args)
    };

    // While `up` holds the stores: refused, nothing written.
    let refused = create(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by a running node"), "{refused:?}");
    assert!(std::fs::read_dir(targets.join("manifests")).map(|d| d.count()).unwrap_or(0) == 0);

    // Stopped hard (kill -9): the stores recover from their logs.
    up.kill();
    let recovery_arg = p(&recovery);
    let out = ok(&create(&["--recovery-key", &recovery_arg]));
    let created = ids(&out);
    assert_eq!(created.len(), 2, "{out}");
    let (data_id, keys_id) = (created[0].clone(), created[1].clone());
    // Again, unchanged: only the stores' small MANIFEST/OPTIONS/CURRENT files are new.
    let again = ok(&create(&[]));
    assert!(again.contains(" new blobs ("), "{again}");
    let list = ok(&backup(&["list", "--to", &to_s]));
    assert_eq!(list.lines().count(), 3, "{list}");
    let v = ok(&backup(&["verify", &data_id, "--to", &to_s, "--key", &key_s, "--keys-dir", &keys_s]));
    assert!(v.contains("stores in their captured state"), "{v}");
    // The drill: both sets restored on scratch directories, `up` started
    // on them, its chain and its key checked, stopped, cleaned up.
    let drill =
        ok(&backup(&["drill", "--to", &to_s, "--key", &key_s, "--recovery-key", &recovery_arg, "--keys-dir", &keys_s]));
    assert!(drill.contains("3. up served the restored data") && drill.contains("drill passed"), "{drill}");
    assert!(!std::fs::read_dir(&targets).expect("target").any(|e| e
        .expect("e")
        .file_name()
        .to_string_lossy()
        .starts_with(".drill-")));
    // The keys set does not open with the backup key.
    let wrong = backup(&["verify", &keys_id, "--to", &to_s, "--key", &key_s, "--set", "keys"]);
    assert!(!wrong.status.success(), "the backup key opens no KEK");

    // The disk is lost.
    // The node's published key, which the operator pins (the keys
    // directory is gone with the disk).
    let node_key = std::fs::read_to_string(root.join("keys/session.key")).expect("the node's key");
    let secret: [u8; 32] = hex::decode(node_key.trim()).expect("hex").try_into().expect("32");
    let public = hex::encode(ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key().to_bytes());
    std::fs::remove_dir_all(&root).expect("wipe");
    let pin = ["--node-key", public.as_str(), "--to", to_s.as_str()];
    let forged = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes());
    let wrong_node =
        backup(&["restore", &data_id, "--into", &p(&root), "--to", &to_s, "--key", &key_s, "--node-key", &forged]);
    assert!(!wrong_node.status.success(), "a manifest not signed by the pinned key is refused");
    assert!(!root.exists(), "and nothing restored");
    ok(&backup(&[&["restore", &data_id, "--into", &p(&root), "--key", &key_s][..], &pin].concat()));
    let keys_into = dir.path().join("keys-restored");
    ok(&backup(&[&["restore", &keys_id, "--into", &p(&keys_into), "--key", &recovery_arg][..], &pin].concat()));
    std::fs::rename(keys_into.join("keys"), root.join("keys")).expect("keys into place");
    assert_eq!(std::fs::read_to_string(root.join("keys/session.key")).expect("key"), node_key, "the node's identity");
    // A restore never overwrites.
    let over = backup(&["restore", &data_id, "--into", &p(&root), "--to", &to_s, "--key", &key_s]);
    assert!(!over.status.success() && String::from_utf8_lossy(&over.stderr).contains("never overwrites"));

    // The node on the restored directory serves the same data.
    let (_up, api, me) = start_restored(&rt, &root);
    rt.block_on(async {
        // Read at once, then once the tracker has looked at the restored
        // chain again: the same version, anchored in the same block.
        let first = read_record(&api, &me, &record).await;
        assert_eq!(first["content"], before["content"]);
        let after = read_anchored(&api, &me, &record).await;
        assert_eq!(after["content"], before["content"]);
        assert_eq!(after["anchor"], before["anchor"], "the same anchored version");
        let got = download(&reqwest::Client::new(), &api, &me, &record, &attachment).await;
        assert!(got == file, "the attachment, byte for byte");
    });
}

/// `up` backs itself up while serving: every store through its own
/// handle (no pause, no stop), verified after each run. The node is then
/// killed, its data directories lost, and the newest backup restored: the
/// record written before it is served again.
#[test]
fn up_backs_itself_up_while_serving_and_the_backup_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key) = (dir.path().join("backups"), dir.path().join("backup.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let (to_s, key_s) = (p(&targets), p(&key));
    let up = Up::start_with(&root, &ports, &["--backup-every-secs", "1", "--backup-to", &to_s, "--backup-key", &key_s]);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    // Backups in the target: (id, verified?).
    let backups = || -> Vec<(String, bool)> {
        let mut ids: Vec<(String, bool)> = std::fs::read_dir(targets.join("manifests"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .filter(|id| !id.starts_with('.'))
            .map(|id| {
                let v = targets.join("manifests").join(format!("{id}.verified")).exists();
                (id, v)
            })
            .collect();
        ids.sort();
        ids
    };
    let (record, before, id) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let token = sign_in(&api, "wallet_2").await;
        let record = new_record(&reqwest::Client::new(), &api, &token).await;
        let me = sign_in(&api, "wallet_1").await;
        let before = read_anchored(&api, &me, &record).await;
        // The second backup finished after this point started after it:
        // it holds the anchored record. Writes go on meanwhile.
        let seen: Vec<String> = backups().into_iter().map(|(id, _)| id).collect();
        let mut id = None;
        for _ in 0..600 {
            new_record(&reqwest::Client::new(), &api, &token).await;
            let fresh: Vec<(String, bool)> = backups().into_iter().filter(|(i, _)| !seen.contains(i)).collect();
            if fresh.len() >= 2 && fresh[1].1 {
                id = Some(fresh[1].0.clone());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        (record, before, id.expect("a verified backup while serving"))
    });
    assert!(!super::verify::up_log(&root).contains("BACKUP FAILED"), "{}", super::verify::up_log(&root));
    up.kill();
    // The data directories are lost; the keys were kept apart.
    let restored = dir.path().join("restored");
    ok(&backup(&[
        "restore",
        &id,
        "--into",
        &p(&restored),
        "--to",
        &to_s,
        "--key",
        &key_s,
        "--keys-dir",
        &p(&root.join("keys")),
    ]));
    std::fs::rename(root.join("keys"), restored.join("keys")).expect("keys");
    std::fs::remove_dir_all(&root).expect("wipe");
    let (_up, api, me) = start_restored(&rt, &restored);
    rt.block_on(async {
        let after = read_anchored(&api, &me, &record).await;
        assert_eq!((&after["content"], &after["anchor"]), (&before["content"], &before["anchor"]));
    });
}

/// A second location: `backup create --backup-s3-bucket` copies each
/// backup to a real S3 server (SeaweedFS on loopback, which checks
/// signatures) after the local copy; with the local target lost, `restore
/// --from-s3` fetches it and the node serves again. With the server down,
/// the local backup is still made and the command fails loudly.
#[test]
fn backups_are_copied_to_s3_and_restored_from_there_and_a_down_bucket_fails_only_its_copy() {
    let server = super::upload_crash::seaweed::Seaweed::start();
    let endpoint = server.endpoint.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key) = (dir.path().join("backups"), dir.path().join("backup.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let up = Up::start(&root, &ports);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let (record, before) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let token = sign_in(&api, "wallet_2").await;
        let record = new_record(&reqwest::Client::new(), &api, &token).await;
        let me = sign_in(&api, "wallet_1").await;
        let before = read_anchored(&api, &me, &record).await;
        (record, before)
    });
    up.kill();
    let (root_s, keys_s, to_s, key_s) = (p(&root), p(&root.join("keys")), p(&targets), p(&key));
    let s3 = ["--backup-s3-bucket", super::upload_crash::seaweed::BUCKET, "--backup-s3-endpoint", endpoint.as_str()];
    let with_s3 = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .arg("backup")
            .args(args)
            .args(s3)
            .env("AWS_ACCESS_KEY_ID", super::upload_crash::seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", super::upload_crash::seaweed::SECRET_KEY)
            .output()
            .expect("run medanchor backup")
    };
    let out = ok(&with_s3(&["create", "--root", &root_s, "--keys-dir", &keys_s, "--to", &to_s, "--key", &key_s]));
    let id = ids(&out).into_iter().next().expect("an id");
    assert!(out.contains(&format!("backup {id} copied to s3 bucket")), "{out}");
    // The local target is lost too; the bucket has it.
    std::fs::remove_dir_all(&targets).expect("lose the local target");
    let keys = root.join("keys");
    let kept = dir.path().join("keys-kept");
    std::fs::rename(&keys, &kept).expect("keep the keys");
    std::fs::remove_dir_all(&root).expect("wipe");
    let kept_s = p(&kept);
    ok(&with_s3(&[
        "restore",
        &id,
        "--into",
        &root_s,
        "--to",
        &to_s,
        "--key",
        &key_s,
        "--keys-dir",
        &kept_s,
        "--from-s3",
    ]));
    std::fs::rename(&kept, &keys).expect("keys back");
    let (up, api2, me) = start_restored(&rt, &root);
    rt.block_on(async {
        let after = read_anchored(&api2, &me, &record).await;
        assert_eq!((&after["content"], &after["anchor"]), (&before["content"], &before["anchor"]));
    });
    up.kill();
    // The bucket's server is down: the local backup is made, the command
    // fails, naming the copy.
    drop(server);
    let out = with_s3(&["create", "--root", &root_s, "--keys-dir", &keys_s, "--to", &to_s, "--key", &key_s]);
    assert!(!out.status.success(), "a failed copy fails the command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the local copy is complete"), "{stderr}");
    let made = ids(&String::from_utf8_lossy(&out.stdout)).into_iter().next().expect("the local backup was made");
    ok(&backup(&["verify", &made, "--to", &to_s, "--key", &key_s, "--keys-dir", &keys_s]));
}

/// A lab record for wallet_1 with its own content; its id.
async fn numbered_record(http: &reqwest::Client, api: &str, token: &str, n: usize) -> String {
    let patient = super::verify::address("wallet_1");
    let r = http
        .post(format!("{api}/v1/patients/{patient}/records"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "record_type": "lab-results", "content": { "study": format!("load-{n}") } }))
        .send()
        .await
        .expect("post");
    // 202: stored, its anchor pending (the usual answer); 201: anchored.
    assert!([201, 202].contains(&r.status().as_u16()), "{:?}", r.text().await);
    r.json::<Value>().await.expect("json")["record_id"].as_str().expect("id").to_string()
}

/// A webhook receiver on loopback (plain HTTP/1.1, one request per
/// connection): every body it was POSTed, as JSON.
pub(super) fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    receiver_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
}

/// [`receiver`] on `listener`.
pub(super) fn receiver_on(listener: std::net::TcpListener) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufRead, Read, Write};
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    bodies.lock().expect("lock").push(v);
                }
            }
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// The admin's view of the backups (`GET /v1/admin/backups`).
async fn status(api: &str, admin: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{api}/v1/admin/backups")).bearer_auth(admin).send().await.expect("get");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// The recovery drill of the issue, under a steady write load: a
/// provider writes records without pause while an admin asks the running
/// node for a backup (`POST /v1/admin/backups`). Then `kill -9`, and the
/// node's directory is lost — all but the chain, which stands for the
/// network and goes on. Restored `--without devnet`, the node reconciles
/// with the chain on start: every write acknowledged before the backup
/// began is served and anchored; every record anchored after it ended is
/// listed as lost, by id, in the report and in the patient's audit
/// trail, and the patient's webhook is told of each; nothing listed was
/// never written.
#[test]
fn a_drill_under_write_load_keeps_every_write_before_the_backup_and_lists_those_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key) = (dir.path().join("backups"), dir.path().join("backup.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let (to_s, key_s) = (p(&targets), p(&key));
    let schedule =
        ["--backup-every-secs", "0", "--backup-to", &to_s, "--backup-key", &key_s, "--webhook-allow-private"];
    let up = Up::start_with(&root, &ports, &schedule);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let (hook, notified) = receiver();
    // (record, content number, acknowledged at)
    type Acked = Vec<(String, usize, std::time::Instant)>;
    let (acked, started, ended, backup_id) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let token = sign_in(&api, "wallet_2").await;
        let admin = sign_in(&api, "deployer").await;
        // The patient listens (the subscription is in the backup).
        let me = sign_in(&api, "wallet_1").await;
        let patient = super::verify::address("wallet_1");
        let r = reqwest::Client::new()
            .put(format!("{api}/v1/patients/{patient}/notifications/webhook"))
            .bearer_auth(&me)
            .json(&serde_json::json!({ "webhook_url": hook }))
            .send()
            .await
            .expect("subscribe");
        assert_eq!(r.status(), 200);
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Acked::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (acked, stop, api, token) = (acked.clone(), stop.clone(), api.clone(), token.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = numbered_record(&http, &api, &token, n).await;
                    acked.lock().expect("lock").push((id, n, std::time::Instant::now()));
                    n += 1;
                }
            })
        };
        while acked.lock().expect("lock").len() < 4 {
            assert!(!writer.is_finished(), "the writer stopped");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let started = std::time::Instant::now();
        let r = reqwest::Client::new()
            .post(format!("{api}/v1/admin/backups"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("post");
        let ended = std::time::Instant::now();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let run: Value = r.json().await.expect("json");
        assert_eq!(run["outcome"], "ok", "{run}");
        let backup_id = run["backup"].as_str().expect("the backup's id").to_string();
        // Writes go on after the backup, until three more are anchored.
        let me = sign_in(&api, "wallet_1").await;
        loop {
            let after: Vec<String> =
                acked.lock().expect("lock").iter().filter(|a| a.2 > ended).map(|a| a.0.clone()).collect();
            if after.len() >= 3 {
                read_anchored(&api, &me, &after[2]).await;
                break;
            }
            assert!(!writer.is_finished(), "the writer stopped");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.await.expect("writer");
        let acked = acked.lock().expect("lock").clone();
        (acked, started, ended, backup_id)
    });
    // Anchored on the chain before the kill: what the network knows.
    let anchored = |id: &str| {
        rt.block_on(async {
            let me = sign_in(&api, "wallet_1").await;
            read_record(&api, &me, id).await["anchor"]["status"] == "anchored"
        })
    };
    let after: Vec<&(String, usize, std::time::Instant)> =
        acked.iter().filter(|a| a.2 > ended && anchored(&a.0)).collect();
    assert!(after.len() >= 3, "writes anchored after the backup");
    up.kill();

    // The disk is lost; the chain (the network) and the keys (kept apart)
    // are not.
    let (chain, keys) = (dir.path().join("chain-kept"), dir.path().join("keys-kept"));
    std::fs::rename(root.join("devnet"), &chain).expect("the chain goes on");
    std::fs::rename(root.join("keys"), &keys).expect("keys kept apart");
    std::fs::remove_dir_all(&root).expect("rm -rf");
    let (root_s, keys_s) = (p(&root), p(&keys));
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", &backup_id, "--into", &root_s, "--to", &to_s, "--key", &key_s];
        args.extend_from_slice(&["--keys-dir", &keys_s]);
        args.extend_from_slice(extra);
        backup(&args)
    };
    let typo = restore(&["--without", "devnt"]);
    assert!(!typo.status.success() && String::from_utf8_lossy(&typo.stderr).contains("no source \"devnt\""));
    assert!(!root.exists(), "a refused restore writes nothing");
    let out = ok(&restore(&["--without", "devnet"]));
    assert!(out.contains("reconciles with the chain on its next start"), "{out}");
    assert!(!root.join("devnet").exists(), "the chain was left out");
    std::fs::rename(&chain, root.join("devnet")).expect("chain");
    std::fs::rename(&keys, root.join("keys")).expect("keys");

    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let _up = Up::start_with(&root, &ports, &schedule);
    rt.block_on(async {
        let admin = sign_in(&api, "deployer").await;
        let mut report = Value::Null;
        for _ in 0..600 {
            report = status(&api, &admin).await["reconciliation"].clone();
            if !report.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(report["backup"], backup_id.as_str(), "{report}");
        assert!(!root.join("api").join("restored.json").exists(), "the marker is removed once reconciled");
        let lost: Vec<&str> = report["lost_records"]
            .as_array()
            .expect("lost")
            .iter()
            .map(|r| r["record_id"].as_str().expect("id"))
            .collect();
        // Nothing invented: every record listed was written and acknowledged.
        for id in &lost {
            assert!(acked.iter().any(|a| a.0 == *id), "{id} listed as lost but never written");
        }
        assert!(report["lost_records"].as_array().expect("lost").iter().all(|r| r["after_backup"] == true), "{report}");
        // Every write acknowledged after the backup and anchored is listed.
        for a in &after {
            assert!(lost.contains(&a.0.as_str()), "{} anchored after the backup, not listed: {report}", a.0);
        }
        let me = sign_in(&api, "wallet_1").await;
        // Every write acknowledged before the backup began is served,
        // with its content, and anchored (the ones pending at the backup
        // point are settled from the chain).
        let before: Vec<_> = acked.iter().filter(|a| a.2 < started).collect();
        assert!(before.len() >= 4);
        for (id, n, _) in before.iter().map(|a| (&a.0, a.1, a.2)) {
            let r = read_anchored(&api, &me, id).await;
            assert_eq!(r["content"]["study"], format!("load-{n}"), "{id}");
            assert!(!lost.contains(&id.as_str()));
        }
        // The writes during the backup: each either held or listed, never both.
        for a in acked.iter().filter(|a| a.2 >= started && a.2 <= ended) {
            let held = reqwest::Client::new()
                .get(format!("{api}/v1/records/{}", a.0))
                .bearer_auth(&me)
                .send()
                .await
                .expect("get")
                .status()
                == 200;
            assert!(held != lost.contains(&a.0.as_str()), "{} during the backup: held {held}", a.0);
        }
        let audit = report["audit"]["state"].as_str().expect("audit state");
        assert!(audit == "behind" || audit == "matches", "{report}");
        // The patient's audit trail names each lost record.
        let entries: Value = reqwest::Client::new()
            .get(format!("{api}/v1/audit/entries?limit=1000"))
            .bearer_auth(&me)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let named: Vec<&str> = entries["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["entry"]["action"] == "backup.record-lost" || e["action"] == "backup.record-lost")
            .filter_map(|e| e["entry"]["record_id"].as_str().or(e["record_id"].as_str()))
            .collect();
        for id in &lost {
            assert!(named.contains(id), "{id} not in the patient's audit trail: {entries}");
        }
        // …and the patient's webhook is told of each.
        for _ in 0..300 {
            let told = notified.lock().expect("lock").iter().filter(|e| e["kind"] == "restore").count();
            if told >= lost.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let told: Vec<String> = notified
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["kind"] == "restore")
            .filter_map(|e| e["record_id"].as_str().map(str::to_string))
            .collect();
        for id in &lost {
            assert!(told.iter().any(|t| t == id), "{id}: the patient was not told ({told:?})");
        }
    });
    assert!(super::verify::up_log(&root).contains("RESTORE LOST WRITES"));
}

/// The admin routes: every refusal branch (no session, a patient, an
/// auditor, a malformed id, an unknown backup); then a backup whose
/// second location answers only errors (the bucket's endpoint is a server
/// that is no S3): the local backup is made and verified, the request
/// fails 503 naming the copy, and the copy stands as an alert in the
/// admin's view and as a `backup.failed` audit entry until a copy
/// succeeds; verify and prune work on the local target.
#[test]
fn backup_routes_refuse_all_but_admins_and_a_failed_copy_is_an_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key) = (dir.path().join("backups"), dir.path().join("backup.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let (to_s, key_s) = (p(&targets), p(&key));
    let args = [
        "--backup-every-secs",
        "0",
        "--backup-to",
        &to_s,
        "--backup-key",
        &key_s,
        "--backup-s3-bucket",
        "medanchor-backups",
        "--backup-s3-endpoint",
        &api,
    ];
    let _up = Up::start_env(&root, &ports, &args, &[("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")]);
    rt().block_on(async {
        let http = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str, token: Option<&str>| {
            let mut r = http.request(method, format!("{api}{path}"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let (patient, auditor, admin) =
            (sign_in(&api, "wallet_1").await, sign_in(&api, "faucet").await, sign_in(&api, "deployer").await);
        use reqwest::Method;
        let routes = [
            (Method::GET, "/v1/admin/backups"),
            (Method::POST, "/v1/admin/backups"),
            (Method::POST, "/v1/admin/backups/prune"),
            (Method::POST, "/v1/admin/backups/20261205T194500123Z-0a9f/verify"),
        ];
        for (method, path) in &routes {
            for (who, token, status) in
                [("nobody", None, 401), ("a patient", Some(&patient), 403), ("an auditor", Some(&auditor), 403)]
            {
                let r = call(method.clone(), path, token.map(String::as_str)).await.expect("call");
                assert_eq!(r.status(), status, "{who} {method} {path}");
            }
        }
        assert!(!targets.join("manifests").exists(), "no refused call made a backup");
        for (path, status) in [
            ("/v1/admin/backups/..%2F..%2Fetc/verify", 400),
            ("/v1/admin/backups/20261205T194500123Z-0A9F/verify", 400),
            ("/v1/admin/backups/20261205T194500123Z-0a9f/verify", 404),
        ] {
            let r = call(Method::POST, path, Some(&admin)).await.expect("call");
            assert_eq!(r.status(), status, "{path}");
        }
        let empty = status(&api, &admin).await;
        assert_eq!(empty["backups"], serde_json::json!([]));
        assert_eq!(empty["alerts"], serde_json::json!([]));
        assert!(empty["reconciliation"].is_null(), "this node was never restored");

        let r = call(Method::POST, "/v1/admin/backups", Some(&admin)).await.expect("call");
        assert_eq!(r.status(), 503);
        let problem: Value = r.json().await.expect("json");
        assert!(problem["detail"].as_str().unwrap_or_default().contains("the local backup is complete"), "{problem}");
        let s = status(&api, &admin).await;
        let backups = s["backups"].as_array().expect("backups");
        assert_eq!(backups.len(), 1, "{s}");
        assert!(backups[0]["verified_ms"].is_u64(), "the local backup was verified: {s}");
        let id = backups[0]["id"].as_str().expect("id").to_string();
        let alerts = s["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 1, "{s}");
        assert_eq!((&alerts[0]["kind"], &alerts[0]["backup"]), (&Value::from("copy"), &Value::from(id.as_str())));
        assert_eq!(s["outcomes"]["last_ok"]["create"]["backup"], id.as_str(), "{s}");
        assert_eq!(s["targets"][1], "s3://medanchor-backups/backups/");

        let r = call(Method::POST, &format!("/v1/admin/backups/{id}/verify"), Some(&admin)).await.expect("call");
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.expect("json")["outcome"], "ok");
        let r = call(Method::POST, "/v1/admin/backups/prune", Some(&admin)).await.expect("call");
        assert_eq!(r.status(), 200);
        assert!(r.json::<Value>().await.expect("json")["detail"]
            .as_str()
            .expect("detail")
            .starts_with("removed 0 backups"));
        assert_eq!(
            status(&api, &admin).await["backups"].as_array().expect("backups").len(),
            1,
            "the newest verified stays"
        );

        let entries: Value = call(Method::GET, "/v1/audit/entries?limit=1000", Some(&auditor))
            .await
            .expect("call")
            .json()
            .await
            .expect("json");
        let actions: Vec<(String, String)> = entries["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                let e = if e["entry"].is_object() { &e["entry"] } else { e };
                (
                    e["action"].as_str().unwrap_or_default().to_string(),
                    e["outcome"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for want in [
            ("backup.failed", "error"),
            ("backup.create", "error"),
            ("backup.verify", "allowed"),
            ("backup.status", "denied"),
        ] {
            assert!(actions.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {actions:?}");
        }
    });
    assert!(super::verify::up_log(&root).contains("BACKUP ALERT"));
}

/// Attachments in a bucket (SeaweedFS on loopback) are part of the
/// running node's backup: each object the metadata names is fetched into
/// the backup at its point in time. The bucket is then damaged (the object
/// overwritten) and the node's disk lost; `restore --s3-bucket` puts the
/// backup's object back, and the restored node serves the attachment byte
/// for byte.
#[test]
fn a_running_backup_holds_the_buckets_attachments_and_restore_puts_them_back() {
    use super::upload_crash::seaweed;
    let server = seaweed::Seaweed::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key) = (dir.path().join("backups"), dir.path().join("backup.key"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let (to_s, key_s) = (p(&targets), p(&key));
    let s3 = ["--s3-bucket", seaweed::BUCKET, "--s3-endpoint", server.endpoint.as_str()];
    let env = [("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)];
    let args = [&s3[..], &["--backup-every-secs", "0", "--backup-to", &to_s, "--backup-key", &key_s]].concat();
    let up = Up::start_env(&root, &ports, &args, &env);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let file: Vec<u8> =
        [&[0xff, 0xd8, 0xff, 0xe0][..], &(0..200_000u32).map(|i| (i * 13) as u8).collect::<Vec<_>>()].concat();
    let (record, attachment, id) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let token = sign_in(&api, "wallet_2").await;
        let http = reqwest::Client::new();
        let record = new_record(&http, &api, &token).await;
        let attachment = upload_jpeg(&http, &api, &token, &record, "knee.jpg", &file).await;
        let admin = sign_in(&api, "deployer").await;
        let r = http.post(format!("{api}/v1/admin/backups")).bearer_auth(&admin).send().await.expect("post");
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let run: Value = r.json().await.expect("json");
        (record, attachment, run["backup"].as_str().expect("id").to_string())
    });
    up.kill();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(targets.join("manifests").join(format!("{id}.json"))).expect("manifest"))
            .expect("json");
    let objects: Vec<String> = manifest["manifest"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str()?.strip_prefix("s3-objects-default/").map(str::to_string))
        .collect();
    assert_eq!(objects.len(), 1, "the attachment's object is in the backup: {objects:?}");
    // The bucket is damaged: the object overwritten.
    let store = medanchor_storage::backend::Backend::open(&medanchor_storage::backend::BackendConfig::S3 {
        endpoint: Some(server.endpoint.clone()),
        bucket: seaweed::BUCKET.into(),
        region: "us-east-1".into(),
        credentials: Some((seaweed::ACCESS_KEY.into(), seaweed::SECRET_KEY.into())),
    })
    .expect("store");
    rt.block_on(store.put_raw(&objects[0], b"ransom".to_vec().into())).expect("overwrite");
    // The disk is lost; the keys were kept apart.
    let keys = dir.path().join("keys-kept");
    std::fs::rename(root.join("keys"), &keys).expect("keys");
    std::fs::remove_dir_all(&root).expect("rm -rf");
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["backup", "restore", &id, "--into", &p(&root), "--to", &to_s, "--key", &key_s, "--keys-dir", &p(&keys)])
        .args(s3)
        .envs(env)
        .output()
        .expect("restore");
    let out = ok(&out);
    assert!(out.contains("attachments: 1 objects put back"), "{out}");
    assert!(!root.join("s3-objects-default").exists(), "the objects went back to the bucket, not into the node");
    std::fs::rename(&keys, root.join("keys")).expect("keys back");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let _up = Up::start_env(&root, &ports, &args, &env);
    rt.block_on(async {
        let me = sign_in(&api, "wallet_1").await;
        let got = download(&reqwest::Client::new(), &api, &me, &record, &attachment).await;
        assert!(got == file, "the attachment, byte for byte, from the bucket");
    });
}

/// A deletion made after a backup stays made when that backup is restored
/// — even with the devnet's chain restored from it too, so that the chain
/// itself no longer says "purged": the tombstone list, kept apart from the
/// data directory and the backups, is replayed before the node serves.
#[test]
fn a_record_deleted_after_a_backup_stays_erased_when_the_backup_is_restored() {
    use super::verify::tx;
    use medanchor_contracts::types::AccessLevel;
    use medanchor_contracts::{ClarityValue, ContractName};
    use medanchor_wallet::{ContractCall, GrantDuration};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    std::fs::create_dir_all(&root).expect("root");
    let (targets, key, tombstones) =
        (dir.path().join("backups"), dir.path().join("backup.key"), dir.path().join("tombstones"));
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let (rpc, api) = (ports.rpc(), ports.api());
    let (to_s, key_s, tomb_s) = (p(&targets), p(&key), p(&tombstones));
    let args = ["--backup-every-secs", "0", "--backup-to", &to_s, "--backup-key", &key_s, "--tombstones-dir", &tomb_s];
    let up = Up::start_with(&root, &ports, &args);
    let node = medanchor_wallet::RpcClient::new(&rpc).expect("rpc");
    let rt = rt();
    let (record, id) = rt.block_on(async {
        consenting_provider(&node, &rpc, &root).await;
        let provider: medanchor_contracts::Principal = super::verify::address("wallet_2").parse().expect("p");
        let admin_access =
            ContractCall::grant_provider_access(&provider, AccessLevel::Admin, GrantDuration::UntilRevoked);
        tx(&rpc, "wallet_1", admin_access.expect("call")).await;
        let one_block = ContractCall {
            contract: ContractName::RecordManagement,
            function: "set-retention-period",
            args: vec![ClarityValue::UInt(1)],
        };
        tx(&rpc, "deployer", one_block).await;
        let http = reqwest::Client::new();
        let doctor = sign_in(&api, "wallet_2").await;
        let record = new_record(&http, &api, &doctor).await;
        let me = sign_in(&api, "wallet_1").await;
        read_anchored(&api, &me, &record).await;
        let r = http.post(format!("{api}/v1/records/{record}/archive")).bearer_auth(&doctor).send().await;
        assert_eq!(r.expect("archive").status(), 202);
        for _ in 0..300 {
            if read_record(&api, &me, &record).await["status"] == "archived" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let admin = sign_in(&api, "deployer").await;
        let r = http.post(format!("{api}/v1/admin/backups")).bearer_auth(&admin).send().await.expect("backup");
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.expect("json")["backup"].as_str().expect("id").to_string();
        // Deleted after the backup.
        let patient = super::verify::address("wallet_1");
        let r = http
            .post(format!("{api}/v1/patients/{patient}/deletion"))
            .bearer_auth(&me)
            .json(&serde_json::json!({ "records": [record] }))
            .send()
            .await
            .expect("deletion");
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.expect("json");
        assert_eq!(answer["outcomes"][0]["outcome"], "erased", "{answer}");
        let r = http.get(format!("{api}/v1/records/{record}")).bearer_auth(&me).send().await.expect("read");
        assert_eq!(r.status(), 410);
        (record, id)
    });
    up.kill();
    // The whole node directory is lost and restored from the backup —
    // chain included: on it the record is archived again, not purged.
    let keys = dir.path().join("keys-kept");
    std::fs::rename(root.join("keys"), &keys).expect("keys");
    std::fs::remove_dir_all(&root).expect("rm -rf");
    let keys_s = p(&keys);
    ok(&backup(&["restore", &id, "--into", &p(&root), "--to", &to_s, "--key", &key_s, "--keys-dir", &keys_s]));
    std::fs::rename(&keys, root.join("keys")).expect("keys back");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let _up = Up::start_with(&root, &ports, &args);
    rt.block_on(async {
        let me = sign_in(&api, "wallet_1").await;
        let r = reqwest::Client::new().get(format!("{api}/v1/records/{record}")).bearer_auth(&me).send().await;
        assert_eq!(r.expect("read").status(), 410, "the deletion was replayed before the node served");
    });
    assert!(super::verify::up_log(&root).contains("erased again records the tombstone list names"));
}
