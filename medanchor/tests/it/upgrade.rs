//! Upgrades keep data: the data directory a released `medanchor up` wrote
//! (`tests/fixtures/datadir-v1`, see `datadir_v1.rs`) is opened by this
//! build's `up` — every store migrated forward in place, none rebuilt —
//! and serves what the release served (`datadir-v1.manifest.json`,
//! captured from the running release): the chain, every record version
//! with its anchor and decrypted content, consents as the chain and the
//! indexer answer them, shares, and the audit log (the same leaves, the
//! release's signed checkpoint extended by a consistency proof, inclusion
//! proofs of every old entry, the on-chain head it had anchored). Then the
//! upgraded system goes on working: writes anchor, consent changes reach
//! the indexer, the log is anchored again on-chain.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use medanchor_api::merkle::{self, verify_consistency, verify_inclusion, verify_note, Hash, MemoryStore};
use medanchor_contracts::types::DataType;
use medanchor_wallet::{ContractCall, GrantDuration};
use serde_json::{json, Value};

use super::datadir_v1::{
    addr, anchored, copy_fixture, create, manifest_path, until, update, Cast, Client, System, CHECKED_TYPES,
};
use super::verify::{rt, tx, verify};

/// A store's `meta`/`schema` stamp, read without opening it through our
/// code (so without migrating it).
fn stamp(path: &Path) -> Option<String> {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("families");
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, &names, false).expect("open");
    let meta = db.cf_handle("meta").expect("meta");
    db.get_cf(&meta, b"schema").expect("get").map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn hash(hex_str: &str) -> Hash {
    hex::decode(hex_str.trim_start_matches("0x")).expect("hex").try_into().expect("32 bytes")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
}

/// The root of the tree of the first `size` leaves, computed here.
fn root_of(leaves: &[Value], size: usize) -> Hash {
    let mut tree = MemoryStore::new();
    for (i, leaf) in leaves[..size].iter().enumerate() {
        let h = merkle::leaf_hash(leaf.as_str().expect("leaf").as_bytes());
        for (level, index, node) in merkle::append(i as u64, h, &tree).expect("append") {
            tree.insert(level, index, node);
        }
    }
    merkle::root(size as u64, &tree).expect("root")
}

/// The fields of a share that no time or sweep changes.
fn share_fields(s: &Value) -> Value {
    let mut s = s.clone();
    s.as_object_mut().expect("share").remove("state");
    s
}

#[test]
fn a_v1_data_directory_is_migrated_in_place_and_served_the_same() {
    let m: Value = serde_json::from_slice(&std::fs::read(manifest_path()).expect("manifest")).expect("manifest JSON");
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("datadir");
    copy_fixture(&root);
    for store in ["devnet/chain", "indexer", "api/db"] {
        assert_eq!(stamp(&root.join(store)).as_deref(), Some("1"), "the release stamped {store} schema 1");
    }
    let cast = Cast::new();
    for (name, key) in cast.patients().into_iter().chain(cast.providers()) {
        assert_eq!(m["accounts"][name], addr(key), "{name} is the fixture's");
    }

    let system = System::start(Path::new(env!("CARGO_BIN_EXE_medanchor")), &root, &work.path().join("up.log"));
    // Migrated in place: `up` moves an index it cannot open aside and
    // rebuilds it, which would hide a failed migration.
    let aside: Vec<_> = std::fs::read_dir(&root)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".aside-"))
        .collect();
    assert!(aside.is_empty(), "the index was rebuilt, not migrated: {aside:?}\n{}", system.log());
    let log = system.log();
    for store in ["the api database", "the index"] {
        assert!(log.contains(&format!("migrating {store}")), "{store} migrated on open:\n{log}");
    }

    let c = Client::new(&system);
    let (old_size, new_size, new_root) = rt().block_on(async {
        // The chain: the release's blocks, and it goes on from them.
        let height = m["chain"]["height"].as_u64().expect("height");
        for block in m["chain"]["blocks"].as_array().expect("blocks") {
            let (status, b) = c.node(&format!("/extended/v1/block/by_height/{}", block["height"])).await;
            assert_eq!((status, &b), (200, block), "block {}", block["height"]);
        }
        until("the chain to go on", || async {
            let (_, info) = c.node("/v2/info").await;
            (info["stacks_tip_height"].as_u64().expect("height") > height).then_some(())
        })
        .await;

        // Records: the same ids, versions, anchors and decrypted contents,
        // read by their patients.
        for (name, key) in cast.patients() {
            let token = c.sign_in(key).await;
            let p = addr(key);
            let (status, list) = c.get(&format!("/v1/patients/{p}/records?limit=100"), &token).await;
            assert_eq!(status, 200, "{list}");
            let mut ids: Vec<&str> =
                list["items"].as_array().expect("items").iter().map(|r| r["record_id"].as_str().expect("id")).collect();
            ids.sort_unstable();
            let want: Vec<&str> = m["patients"][name]["record_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_str().expect("id"))
                .collect();
            assert_eq!(ids, want, "{name}'s records");
            // The search index, built at the first open for the records the
            // release stored before it existed, finds the same ones.
            let (status, found) = c.get(&format!("/v1/search/records?patient={p}&limit=100"), &token).await;
            assert_eq!(status, 200, "{found}");
            let mut found: Vec<&str> = found["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|r| r["record_id"].as_str().expect("id"))
                .collect();
            found.sort_unstable();
            assert_eq!(found, want, "{name}'s records, searched");
            for record in m["records"].as_array().expect("records").iter().filter(|r| r["patient"] == p) {
                let id = record["record_id"].as_str().expect("id");
                let (_, current) = c.get(&format!("/v1/records/{id}"), &token).await;
                for field in ["record_type", "data_type", "status", "finalized"] {
                    assert_eq!(current[field], record[field], "record {id}: {field}");
                }
                assert_eq!(current["version"], record["current_version"], "record {id}");
                let (_, versions) = c.get(&format!("/v1/records/{id}/versions"), &token).await;
                let listed: Vec<&Value> =
                    versions.as_array().expect("versions").iter().map(|v| &v["version"]).collect();
                let wanted: Vec<&Value> =
                    record["versions"].as_array().expect("versions").iter().map(|v| &v["version"]).collect();
                assert_eq!(listed, wanted, "record {id}: versions");
                for want in record["versions"].as_array().expect("versions") {
                    let (status, got) = c.get(&format!("/v1/records/{id}?version={}", want["version"]), &token).await;
                    assert_eq!(status, 200, "{got}");
                    for field in ["author", "content_type", "size", "content", "content_encoding"] {
                        assert_eq!(got[field], want[field], "record {id} v{}: {field}", want["version"]);
                    }
                    for field in ["status", "data_hash", "txid", "block_height"] {
                        assert_eq!(
                            got["anchor"][field], want["anchor"][field],
                            "record {id} v{}: anchor {field}",
                            want["version"]
                        );
                    }
                }
            }
        }

        // Consents: the chain and the indexer give the release's answers.
        let reader = medanchor_wallet::Reader::new(
            medanchor_wallet::RpcClient::new(&system.rpc).expect("rpc"),
            medanchor_contracts::DEPLOYER_ADDRESS,
        )
        .expect("reader");
        for want in m["consents"].as_array().expect("consents") {
            let (p, q, dt) = (
                want["patient"].as_str().expect("p"),
                want["provider"].as_str().expect("q"),
                want["data_type"].as_str().expect("dt"),
            );
            let data_type: DataType = dt.parse().expect("data type");
            let chain = match reader
                .check_consent(&p.parse().expect("p"), &q.parse().expect("q"), data_type)
                .await
                .expect("check")
            {
                Ok(method) => method.name().to_string(),
                Err(e) => e.constant().to_string(),
            };
            assert_eq!(chain, want["chain"], "the chain: {p} {q} {dt}");
            let (_, index) = c.index(&format!("/v1/consent/check?patient={p}&provider={q}&data_type={dt}")).await;
            for field in ["allowed", "method"] {
                assert_eq!(index[field], want["indexer"][field], "the indexer: {p} {q} {dt}: {index}");
            }
            assert_eq!(index["error"]["name"], want["indexer"]["error"]["name"], "the indexer: {p} {q} {dt}: {index}");
        }
        for (name, key) in cast.patients() {
            let p = addr(key);
            let (_, consents) = c.index(&format!("/v1/patients/{p}/consents")).await;
            assert_eq!(consents, m["patients"][name]["consents"], "{name}'s consents in the index");
            let (_, history) = c.index(&format!("/v1/patients/{p}/history?limit=100")).await;
            assert_eq!(history, m["patients"][name]["history"], "{name}'s consent history in the index");
        }
        assert_eq!(CHECKED_TYPES.len() * 4, m["consents"].as_array().expect("consents").len());

        // Shares: every live one listed as it was; the dead ones (revoked,
        // burned, expired) listed as they were or swept, as the sweeper
        // does at start; the brute-force counters kept.
        let now = now_ms();
        for (name, key) in cast.patients() {
            let token = c.sign_in(key).await;
            let (status, got) = c.get("/v1/share/codes", &token).await;
            assert_eq!(status, 200, "{got}");
            let want = &m["patients"][name]["shares"];
            for field in ["failures", "locked", "lifetime_failures", "max_active"] {
                assert_eq!(got[field], want[field], "{name}'s shares: {field}");
            }
            let items = got["items"].as_array().expect("items");
            for w in want["items"].as_array().expect("items") {
                let live = w["state"] == "active" && now < w["expires_ms"].as_u64().expect("expiry");
                match items.iter().find(|g| g["id"] == w["id"]) {
                    Some(g) => {
                        assert_eq!(share_fields(g), share_fields(w), "share {}", w["id"]);
                        let state = if live {
                            "active"
                        } else if w["state"] == "active" {
                            "expired"
                        } else {
                            w["state"].as_str().expect("state")
                        };
                        assert_eq!(g["state"], state, "share {}", w["id"]);
                    }
                    None => assert!(!live, "live share {} of {name} is gone: {got}", w["id"]),
                }
            }
            assert!(
                items.iter().all(|g| want["items"].as_array().expect("items").iter().any(|w| w["id"] == g["id"])),
                "{got}"
            );
        }

        // The audit log: the release's leaves unchanged and first; its
        // signed checkpoint verifies under the upgraded node's key and is
        // extended by today's; every old entry proves at today's size; the
        // head the release had anchored on-chain is the root of its first
        // entries; each patient still sees their entries (the per-patient
        // index migration).
        let auditor = c.sign_in(&cast.auditor).await;
        let (_, log) = c.get("/v1/audit/entries?limit=1000", &auditor).await;
        let leaves: Vec<Value> =
            log["entries"].as_array().expect("entries").iter().map(|e| e["leaf"].clone()).collect();
        let old_leaves = m["audit"]["leaves"].as_array().expect("leaves");
        let old_size = m["audit"]["size"].as_u64().expect("size");
        assert_eq!(old_leaves.len() as u64, old_size);
        assert_eq!(&leaves[..old_leaves.len()], &old_leaves[..], "the release's entries, unchanged");
        let (_, anchor) = c.public("/v1/audit/anchor").await;
        let key_name = anchor["checkpoint"]["key_name"].as_str().expect("key name");
        assert_eq!(anchor["checkpoint"], m["audit"]["anchor"]["checkpoint"], "the log kept its identity");
        assert_eq!(anchor["log"], m["audit"]["anchor"]["log"]);
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&hash(anchor["checkpoint"]["public_key"].as_str().expect("key")))
                .expect("key");
        let old = verify_note(m["audit"]["checkpoint"].as_str().expect("checkpoint"), key_name, &key)
            .expect("the release's checkpoint verifies under the upgraded node's key");
        assert_eq!(old.size, old_size);
        assert_eq!(old.root, root_of(old_leaves, old_leaves.len()), "the release's root is its leaves'");
        let head = &m["audit"]["anchor"]["head"];
        let head_size = head["tree_size"].as_u64().expect("head size") as usize;
        assert_eq!(hex::encode(root_of(old_leaves, head_size)), head["root"], "the on-chain head the release anchored");
        let note = c.text("/v1/audit/checkpoint").await;
        let new = verify_note(&note, key_name, &key).expect("today's checkpoint");
        assert!(new.size >= old_size);
        let (_, proof) = c.get(&format!("/v1/audit/proof/consistency?from={old_size}&to={}", new.size), &auditor).await;
        let proof: Vec<Hash> =
            proof["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hex"))).collect();
        verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
            .expect("today's log extends the release's");
        for (i, leaf) in old_leaves.iter().enumerate() {
            let (status, p) = c.get(&format!("/v1/audit/proof/inclusion?index={i}&size={}", new.size), &auditor).await;
            assert_eq!(status, 200, "{p}");
            let path: Vec<Hash> =
                p["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hex"))).collect();
            let leaf_hash = merkle::leaf_hash(leaf.as_str().expect("leaf").as_bytes());
            verify_inclusion(&leaf_hash, i as u64, new.size, &path, &new.root).expect("an old entry proves today");
        }
        for (name, key) in cast.patients() {
            let token = c.sign_in(key).await;
            let (_, mine) = c.get("/v1/audit/entries?limit=1000", &token).await;
            let seen: Vec<u64> =
                mine["entries"].as_array().expect("entries").iter().map(|e| e["index"].as_u64().expect("i")).collect();
            let want: Vec<u64> = m["audit"]["visible_to"][name]
                .as_array()
                .expect("indices")
                .iter()
                .map(|i| i.as_u64().expect("i"))
                .collect();
            assert_eq!(&seen[..want.len()], &want[..], "{name}'s entries");
            assert!(seen[want.len()..].iter().all(|&i| i >= old_size), "{name}: only new entries after the old ones");
        }
        (old_size, new.size, new.root)
    });
    assert!(new_size >= old_size && new_root != [0; 32]);

    // It goes on working: a new record and a new version anchor, a consent
    // change reaches the indexer and the API, the log is anchored again.
    rt().block_on(async {
        let records = m["records"].as_array().expect("records");
        let r4 = records
            .iter()
            .find(|r| r["patient"] == addr(&cast.patient_2) && r["record_type"] == "lab-results")
            .expect("patient 2's lab result");
        let (id, version) = (r4["record_id"].as_str().expect("id"), r4["current_version"].as_u64().expect("version"));
        let ta = c.sign_in(&cast.provider_a).await;
        update(&c, &ta, id, version, "lab-results", json!({ "test": "TSH", "value": 2.0, "unit": "mIU/L" })).await;
        let p2 = addr(&cast.patient_2);
        let new_id = create(&c, &ta, &p2, "lab-results", json!({ "test": "T4", "value": 1.2, "unit": "ng/dL" })).await;
        anchored(&c, &ta, &new_id, 1).await;
        let t2 = c.sign_in(&cast.patient_2).await;
        let (status, got) = c.get(&format!("/v1/records/{new_id}"), &t2).await;
        assert_eq!((status, &got["content"]), (200, &json!({ "test": "T4", "value": 1.2, "unit": "ng/dL" })), "{got}");

        // Patient 1 grants provider_b lab results again (revoked in the
        // release): provider_b reads the record it wrote.
        let provider_b = addr(&cast.provider_b).parse().expect("principal");
        tx(
            &system.rpc,
            "wallet_1",
            ContractCall::grant_consent(&provider_b, DataType::LabResults, GrantDuration::UntilRevoked),
        )
        .await;
        let tb = c.sign_in(&cast.provider_b).await;
        let r3 = records
            .iter()
            .find(|r| r["patient"] == addr(&cast.patient_1) && r["versions"][0]["author"] == addr(&cast.provider_b))
            .expect("provider_b's record");
        let id = r3["record_id"].as_str().expect("id").to_string();
        until("provider_b's consent back in the index", || async {
            let (status, _) = c.get(&format!("/v1/records/{id}"), &tb).await;
            (status == 200).then_some(())
        })
        .await;
    });
    // The operator anchors the upgraded log: once the on-chain head is
    // past the release's size, an entry the release wrote proves under it
    // (`medanchor verify audit` reads the head from the node itself).
    let patient_token = rt().block_on(async {
        until("the upgraded log anchored on-chain", || async {
            let (_, anchor) = c.public("/v1/audit/anchor").await;
            (anchor["head"]["tree_size"].as_u64().is_some_and(|n| n > old_size)).then_some(())
        })
        .await;
        c.sign_in(&cast.patient_1).await
    });
    let first = m["audit"]["visible_to"]["patient_1"][0].as_u64().expect("index").to_string();
    let args = ["audit", "--api", system.api.as_str(), "--node", system.rpc.as_str(), "--index", first.as_str()];
    let out = verify(&args, Some(&patient_token));
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    system.stop();

    // Every store now carries this build's version.
    let want = [
        ("devnet/chain", medanchor_devnet::store::SCHEMA_VERSION),
        ("indexer", medanchor_indexer::schema::SCHEMA_VERSION),
        ("api/db", medanchor_api::db::SCHEMA_VERSION),
    ];
    for (store, version) in want {
        assert_eq!(stamp(&root.join(store)), Some(version.to_string()), "{store} stamped at this build's version");
    }
}
