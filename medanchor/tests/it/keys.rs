//! `medanchor keys rotate` as a process over an API database and keyring
//! written the way `medanchor up` writes them (`api/db`, `keys/`,
//! tenant `default`).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use medanchor_api::db::{AnchorStatus, ApiDb, RecordMeta};
use medanchor_api::envelope::{Binding, Keyring, Sealed};

const PATIENT: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const ID: [u8; 16] = [7; 16];

fn rotate(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["keys", "rotate", "--keys-dir"])
        .arg(dir.join("keys"))
        .arg("--api-data-dir")
        .arg(dir.join("api"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run medanchor keys rotate")
}

/// Seals one record version under KEK 1 and stores its metadata; returns
/// the blob (kept here: the command never reads or writes blobs).
fn seed(dir: &Path) -> Vec<u8> {
    let keyring = Keyring::open(&dir.join("keys")).expect("keyring");
    assert_eq!(keyring.current(), 1);
    let db = ApiDb::open(&dir.join("api").join("db")).expect("db");
    let binding = Binding { tenant: "default", patient: PATIENT, record_id: &ID, version: 1 };
    let sealed = keyring.seal(&binding, b"HbA1c 5.4%").expect("seal");
    let meta = RecordMeta {
        record_id: medanchor_contracts::RecordId(ID),
        version: 1,
        patient: PATIENT.into(),
        record_type: "lab-results".into(),
        data_type: "lab-results".into(),
        author: "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG".into(),
        content_type: "text/plain".into(),
        size: 10,
        data_hash: medanchor_contracts::DataHash([1; 32]),
        wrapped_key: hex::encode(&sealed.wrapped_key),
        kek_version: sealed.kek_version,
        created_ms: 1,
        status: AnchorStatus::Anchored,
        txid: None,
        block_height: None,
        index_block_hash: None,
        failure: None,
        confidentiality: None,
        sent_ms: None,
        custodial: None,
        template: None,
    };
    db.put_record(&meta, &ID).expect("put");
    sealed.blob
}

#[test]
fn rotate_rewraps_stored_keys_and_refuses_a_running_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = seed(dir.path());

    // While another process holds the database (as `medanchor up` does),
    // the command refuses before creating a KEK.
    {
        let _held = ApiDb::open(&dir.path().join("api").join("db")).expect("db");
        let out = rotate(dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("stop medanchor up first"), "{stderr}");
        assert!(!dir.path().join("keys").join("kek-2.key").exists(), "no KEK created while the API runs");
    }

    let out = rotate(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("record versions rewrapped: 1"), "{stdout}");
    assert!(stdout.contains("KEK versions held: 2 (1, 2)"), "{stdout}");
    for kek in ["kek-1.key", "kek-2.key"] {
        let key = std::fs::read_to_string(dir.path().join("keys").join(kek)).expect("key");
        assert!(!stdout.contains(key.trim()), "key material printed");
    }

    let db = ApiDb::open(&dir.path().join("api").join("db")).expect("db");
    let meta = db.record(&ID, 1).expect("read").expect("meta");
    assert_eq!(meta.kek_version, 2);
    let keyring = Keyring::open(&dir.path().join("keys")).expect("keyring");
    let sealed = Sealed { blob, wrapped_key: hex::decode(&meta.wrapped_key).expect("hex"), kek_version: 2 };
    let binding = Binding { tenant: "default", patient: PATIENT, record_id: &ID, version: 1 };
    assert_eq!(&**keyring.open_sealed(&binding, &sealed).expect("opens under KEK 2"), b"HbA1c 5.4%");
    drop(db);

    // A path with no database is refused, not created.
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["keys", "rotate", "--keys-dir"])
        .arg(dir.path().join("keys"))
        .arg("--api-data-dir")
        .arg(dir.path().join("typo"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(!dir.path().join("typo").exists());
}
