//! Upgrades keep data: a data directory written by a released `medanchor`
//! (`tests/fixtures/datadir-v1`, made by `make-datadir-v1.sh`) is opened
//! by this build's `up`, its API database migrated forward (schema 1 → 2),
//! and the same records, consents, chain and audit log are served as the
//! release served them (`datadir-v1.manifest.json`, captured from the
//! running release) — and the node goes on working.

use std::path::Path;

use medanchor_api::db::{ApiDb, SCHEMA_VERSION};
use medanchor_api::merkle::checkpoint::verify_note;
use medanchor_api::merkle::proof::verify_consistency;
use serde_json::Value;

use super::verify::{free_port, rt, sign_in, up_log, Ports, Up};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

fn hash(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str.trim_start_matches("0x")).expect("hex").try_into().expect("32 bytes")
}

#[test]
fn a_release_data_directory_is_migrated_and_served_the_same() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("datadir-v1.manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures.join("datadir-v1"), dir.path());
    // The release left schema 1.
    {
        let raw = rocksdb_schema(&dir.path().join("api/db"));
        assert_eq!(raw.as_deref(), Some("1"), "the fixture is a schema-1 store");
    }
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let up = Up::start(dir.path(), &ports);
    let api = ports.api();
    let http = reqwest::Client::new();
    rt().block_on(async {
        let get = |path: String, token: String| {
            let http = http.clone();
            let api = api.clone();
            async move {
                let r = http.get(format!("{api}{path}")).bearer_auth(token).send().await.expect("get");
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        // The chain is the release's chain, and goes on.
        let info: Value =
            http.get(format!("{}/v2/info", ports.rpc())).send().await.expect("info").json().await.expect("json");
        let height = info["stacks_tip_height"].as_u64().expect("height");
        assert!(height >= manifest["chain_height"].as_u64().expect("manifest height"), "{info}");

        // The same records, versions, anchors and decrypted contents.
        let patient = sign_in(&api, "wallet_1").await;
        let records = manifest["records"].as_array().expect("records");
        assert!(!records.is_empty());
        let (status, list) =
            get(format!("/v1/patients/{}/records", manifest["patient"].as_str().expect("p")), patient.clone()).await;
        assert_eq!(status, 200, "{list}");
        for want in records {
            let id = want["record_id"].as_str().expect("id");
            assert!(
                list["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .any(|r| r["record_id"].as_str().map(|r| r.trim_start_matches("0x"))
                        == Some(id.trim_start_matches("0x"))),
                "{id} listed: {list}"
            );
            let (status, got) = get(format!("/v1/records/{id}?version={}", want["version"]), patient.clone()).await;
            assert_eq!(status, 200, "{got}\n{}", up_log(dir.path()));
            assert_eq!(got["record_type"], want["record_type"]);
            assert_eq!(got["anchor"]["data_hash"], want["data_hash"]);
            assert_eq!(got["anchor"]["txid"], want["txid"]);
            assert_eq!(got["anchor"]["status"], "anchored");
            let content: Value = serde_json::from_str(want["content"].as_str().expect("content")).expect("json");
            assert_eq!(got["content"], content, "record {id}");
        }

        // The same audit log: every leaf the release served, in order, a
        // consistency proof from the release's signed checkpoint to today's
        // head, and that checkpoint verifies under the node's key (the log
        // kept its identity).
        let auditor = sign_in(&api, "faucet").await;
        let (_, log) = get("/v1/audit/entries?limit=1000".into(), auditor.clone()).await;
        let old_size = manifest["audit"]["size"].as_u64().expect("size");
        let leaves: Vec<&Value> = log["entries"].as_array().expect("entries").iter().map(|e| &e["leaf"]).collect();
        let want: Vec<&Value> = manifest["audit"]["leaves"].as_array().expect("leaves").iter().collect();
        assert_eq!(&leaves[..want.len()], &want[..], "the release's entries, unchanged");
        let new_size = log["size"].as_u64().expect("size");
        assert!(new_size > old_size, "this session's sign-ins and reads were appended");
        let anchor: Value =
            http.get(format!("{api}/v1/audit/anchor")).send().await.expect("anchor").json().await.expect("json");
        let key_name = anchor["checkpoint"]["key_name"].as_str().expect("key name");
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&hash(anchor["checkpoint"]["public_key"].as_str().expect("key")))
                .expect("key");
        let old = verify_note(manifest["checkpoint"].as_str().expect("checkpoint"), key_name, &key)
            .expect("the release's checkpoint verifies under the upgraded node's key");
        assert_eq!(old.size, old_size);
        let note = http.get(format!("{api}/v1/audit/checkpoint")).send().await.expect("cp").text().await.expect("text");
        let new = verify_note(&note, key_name, &key).expect("today's checkpoint");
        let (_, proof) =
            get(format!("/v1/audit/proof/consistency?from={old_size}&to={}", new.size), auditor.clone()).await;
        let proof: Vec<[u8; 32]> =
            proof["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hex"))).collect();
        verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
            .expect("today's log extends the release's");

        // Per-patient history, served by the migrated index.
        let (status, mine) = get("/v1/audit/entries?limit=1000".into(), patient.clone()).await;
        assert_eq!(status, 200);
        assert!(!mine["entries"].as_array().expect("entries").is_empty(), "{mine}");
    });
    up.kill();
    let db = ApiDb::open(&dir.path().join("api/db")).expect("reopen after the upgrade");
    assert_eq!(db.schema_version().expect("version"), Some(SCHEMA_VERSION), "migrated forward and stamped");
}

/// The API database's schema stamp, read without migrating.
fn rocksdb_schema(path: &Path) -> Option<String> {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("families");
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, &names, false).expect("open");
    let meta = db.cf_handle("meta").expect("meta");
    db.get_cf(meta, b"schema").expect("get").map(|v| String::from_utf8_lossy(&v).into_owned())
}
