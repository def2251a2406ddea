//! KEK rotation over the stored records, health profiles, attachments and
//! unfinished uploads: after
//! [`Keyring::rotate`] adds a KEK version, [`rewrap_all`] moves every record
//! version's and profile version's data key to it ([`Keyring::rewrap`]). Payloads are never decrypted and blobs never
//! touched, so the anchors on-chain (SHA-256 of the blobs) stay valid.
//!
//! Crash safety: the new KEK is on disk before any data key is rewrapped,
//! and old KEK versions stay in the keyring, so at every moment each
//! stored `wrapped_key` opens under the KEK version its metadata names.
//! Versions already under the current KEK are skipped, so running again
//! after a crash finishes the job.
//!
//! Not safe beside a running API process that writes the same metadata
//! (the anchor tracker could write back an old wrapped key — still
//! readable, just not rotated): `medanchor keys rotate` runs while the API
//! is stopped, and RocksDB's lock enforces that.

use crate::db::{ApiDb, Cf, DbError, RecordMeta};
use crate::envelope::{Binding, EnvelopeError, Keyring};

/// Record versions rewritten per synced batch.
const PAGE: usize = 512;

/// Why rewrapping stopped. Versions rewrapped before the failure are
/// durable; the rest still open under their old KEK.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// Storage failed, or stored metadata does not decode.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A data key did not unwrap (wrong tenant, missing KEK version, or
    /// tampered metadata).
    #[error("record {record_id} version {version}: {source}")]
    Rewrap {
        /// The record (hex).
        record_id: String,
        /// Its version.
        version: u64,
        /// Why.
        #[source]
        source: EnvelopeError,
    },
}

/// Rewraps the data key of every record version not yet under the
/// keyring's current KEK, for `tenant` (bound into every wrapped key).
/// Returns how many versions were rewrapped.
pub fn rewrap_all(db: &ApiDb, keyring: &Keyring, tenant: &str) -> Result<usize, RotateError> {
    Ok(rewrap_pages(db, keyring, tenant, PAGE)?
        + rewrap_profiles(db, keyring, tenant, PAGE)?
        + rewrap_attachments(db, keyring, tenant, PAGE)?
        + rewrap_uploads(db, keyring, tenant)?)
}

/// Unfinished uploads' keys (the spool's, or a one-pass upload's data
/// key): an upload outlives a rotation by up to 7 days, and a retired KEK
/// must not strand it. At most 32 per uploader, so one batch.
fn rewrap_uploads(db: &ApiDb, keyring: &Keyring, tenant: &str) -> Result<usize, RotateError> {
    let current = keyring.current();
    let mut batch = db.batch();
    let mut rewrapped = 0;
    for mut row in db.uploads()? {
        if row.kek_version == current {
            continue;
        }
        let what = || format!("upload {} of record {}", row.upload_id, row.record_id);
        let wrapped =
            hex::decode(&row.wrapped_key).map_err(|_| DbError::Corrupt(format!("{}: wrapped key", what())))?;
        let binding = crate::attachments::file_binding(tenant, &row.patient, &row.record_id.0);
        let purpose = crate::uploads::key_purpose(&row.upload_id, row.direct.as_ref());
        let (new_key, version) = keyring
            .rewrap_data_key(&binding, &purpose, &wrapped, row.kek_version)
            .map_err(|source| RotateError::Rewrap { record_id: what(), version: 0, source })?;
        row.wrapped_key = hex::encode(new_key);
        row.kek_version = version;
        let id: [u8; 16] = hex::decode(&row.upload_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DbError::Corrupt(format!("{}: id", what())))?;
        let bytes = serde_json::to_vec(&row).map_err(|e| DbError::Corrupt(e.to_string()))?;
        batch.put_cf(db.cf(Cf::Attachments), crate::uploads::row_key(&id), bytes);
        rewrapped += 1;
    }
    if rewrapped > 0 {
        db.write(batch)?;
    }
    Ok(rewrapped)
}

/// The attachments' data keys, every version (bound to the record's
/// patient, read from its first version).
fn rewrap_attachments(db: &ApiDb, keyring: &Keyring, tenant: &str, page: usize) -> Result<usize, RotateError> {
    let current = keyring.current();
    let mut rewrapped = 0;
    let mut start = b"v".to_vec();
    loop {
        let rows = db.scan_page(Cf::Attachments, &start, page)?;
        let rows: Vec<_> = rows.into_iter().take_while(|(k, _)| k.starts_with(b"v")).collect();
        let Some((last, _)) = rows.last() else { break };
        start = last.clone();
        start.push(0);
        let mut batch = db.batch();
        let mut in_batch = 0;
        for (key, value) in &rows {
            let mut meta: crate::attachments::AttachmentMeta =
                serde_json::from_slice(value).map_err(|e| DbError::Corrupt(format!("attachment metadata: {e}")))?;
            if meta.kek_version == current {
                continue;
            }
            let what = || format!("attachment {} of record {}", meta.attachment_id, meta.record_id);
            let patient = db
                .record(&meta.record_id, 1)?
                .ok_or_else(|| DbError::Corrupt(format!("{}: no record version 1", what())))?
                .patient;
            let wrapped =
                hex::decode(&meta.wrapped_key).map_err(|_| DbError::Corrupt(format!("{}: wrapped key", what())))?;
            let binding = crate::attachments::file_binding(tenant, &patient, &meta.record_id.0);
            let purpose = crate::attachments::dek_purpose(&meta.attachment_id, meta.file_id());
            let (new_key, version) = keyring
                .rewrap_data_key(&binding, &purpose, &wrapped, meta.kek_version)
                .map_err(|source| RotateError::Rewrap { record_id: what(), version: meta.version, source })?;
            meta.wrapped_key = hex::encode(new_key);
            meta.kek_version = version;
            let bytes = serde_json::to_vec(&meta).map_err(|e| DbError::Corrupt(e.to_string()))?;
            batch.put_cf(db.cf(Cf::Attachments), key, bytes);
            in_batch += 1;
        }
        if in_batch > 0 {
            db.write(batch)?;
            rewrapped += in_batch;
        }
        if rows.len() < page {
            break;
        }
    }
    Ok(rewrapped)
}

/// The profiles' data keys, every stored version (and the current pointer,
/// which holds its own copy of the metadata).
fn rewrap_profiles(db: &ApiDb, keyring: &Keyring, tenant: &str, page: usize) -> Result<usize, RotateError> {
    let current = keyring.current();
    let mut rewrapped = 0;
    let mut start = Vec::new();
    loop {
        let rows = db.scan_page(Cf::Profiles, &start, page)?;
        let Some((last, _)) = rows.last() else { break };
        start = last.clone();
        start.push(0);
        let mut batch = db.batch();
        let mut in_batch = 0;
        for (key, value) in &rows {
            let mut meta: crate::profiles::ProfileMeta =
                serde_json::from_slice(value).map_err(|e| DbError::Corrupt(format!("profile metadata: {e}")))?;
            if meta.kek_version == current {
                continue;
            }
            let id = crate::profiles::profile_id(&meta.patient);
            let what = || format!("the profile of {}", meta.patient);
            let wrapped =
                hex::decode(&meta.wrapped_key).map_err(|_| DbError::Corrupt(format!("{}: wrapped key", what())))?;
            let binding = Binding { tenant, patient: &meta.patient, record_id: &id, version: meta.version };
            let (new_key, version) = keyring
                .rewrap(&binding, &wrapped, meta.kek_version)
                .map_err(|source| RotateError::Rewrap { record_id: what(), version: meta.version, source })?;
            meta.wrapped_key = hex::encode(new_key);
            meta.kek_version = version;
            let bytes = serde_json::to_vec(&meta).map_err(|e| DbError::Corrupt(e.to_string()))?;
            batch.put_cf(db.cf(Cf::Profiles), key, bytes);
            in_batch += 1;
        }
        if in_batch > 0 {
            db.write(batch)?;
            rewrapped += in_batch;
        }
        if rows.len() < page {
            break;
        }
    }
    Ok(rewrapped)
}

fn rewrap_pages(db: &ApiDb, keyring: &Keyring, tenant: &str, page: usize) -> Result<usize, RotateError> {
    let current = keyring.current();
    let mut rewrapped = 0;
    let mut start = Vec::new();
    loop {
        let rows = db.scan_page(Cf::Records, &start, page)?;
        let Some((last, _)) = rows.last() else { break };
        // The smallest key after `last`.
        start = last.clone();
        start.push(0);
        let mut batch = db.batch();
        let mut in_batch = 0;
        for (key, value) in &rows {
            let mut meta: RecordMeta =
                serde_json::from_slice(value).map_err(|e| DbError::Corrupt(format!("record metadata: {e}")))?;
            if meta.kek_version == current {
                continue;
            }
            let id: [u8; 16] =
                key.get(..16).and_then(|k| k.try_into().ok()).ok_or_else(|| DbError::Corrupt("record key".into()))?;
            let wrapped = hex::decode(&meta.wrapped_key)
                .map_err(|_| DbError::Corrupt(format!("record {} wrapped key is not hex", meta.record_id)))?;
            let binding = Binding { tenant, patient: &meta.patient, record_id: &id, version: meta.version };
            let (new_key, version) = keyring.rewrap(&binding, &wrapped, meta.kek_version).map_err(|source| {
                RotateError::Rewrap { record_id: meta.record_id.to_string(), version: meta.version, source }
            })?;
            meta.wrapped_key = hex::encode(new_key);
            meta.kek_version = version;
            let bytes = serde_json::to_vec(&meta).map_err(|e| DbError::Corrupt(e.to_string()))?;
            // Only `records` changes: the anchor status (and so `pending`)
            // is untouched.
            batch.put_cf(db.cf(Cf::Records), key, bytes);
            in_batch += 1;
        }
        if in_batch > 0 {
            db.write(batch)?;
            rewrapped += in_batch;
        }
        if rows.len() < page {
            break;
        }
    }
    Ok(rewrapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AnchorStatus;
    use crate::envelope::Sealed;

    fn store(db: &ApiDb, ring: &Keyring, tenant: &str, id: [u8; 16], version: u64, text: &str) -> Vec<u8> {
        let patient = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
        let binding = Binding { tenant, patient, record_id: &id, version };
        let sealed = ring.seal(&binding, text.as_bytes()).expect("seal");
        let meta = RecordMeta {
            record_id: medanchor_contracts::RecordId(id),
            version,
            patient: patient.into(),
            record_type: "lab-results".into(),
            data_type: "lab-results".into(),
            author: "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG".into(),
            content_type: "text/plain".into(),
            size: text.len() as u64,
            data_hash: medanchor_contracts::DataHash([version as u8; 32]),
            wrapped_key: hex::encode(&sealed.wrapped_key),
            kek_version: sealed.kek_version,
            created_ms: 1,
            status: if version == 1 { AnchorStatus::Anchored } else { AnchorStatus::Pending },
            txid: None,
            block_height: None,
            index_block_hash: None,
            failure: None,
            confidentiality: None,
            sent_ms: None,
            custodial: None,
            template: None,
        };
        db.put_record(&meta, &id).expect("put");
        sealed.blob
    }

    #[test]
    fn rotate_then_rewrap_moves_every_version_and_leaves_blobs_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("db");
        let mut ring = Keyring::ephemeral();
        // Five versions over three records: more than one page of two.
        let versions = [([1u8; 16], 1), ([1; 16], 2), ([2; 16], 1), ([3; 16], 1), ([3; 16], 2)];
        let blobs: Vec<Vec<u8>> =
            versions.iter().map(|(id, v)| store(&db, &ring, "t", *id, *v, &format!("{}-{v}", id[0]))).collect();
        let before: Vec<RecordMeta> =
            versions.iter().map(|(id, v)| db.record(id, *v).expect("read").expect("meta")).collect();
        assert!(before.iter().all(|m| m.kek_version == 1));

        assert_eq!(ring.rotate().expect("rotate"), 2);
        // The wrong tenant unwraps nothing and writes nothing.
        assert!(matches!(
            rewrap_pages(&db, &ring, "other", 2),
            Err(RotateError::Rewrap { source: EnvelopeError::Tampered, .. })
        ));
        assert_eq!(db.record(&[1; 16], 1).expect("read").expect("meta"), before[0]);

        assert_eq!(rewrap_pages(&db, &ring, "t", 2).expect("rewrap"), 5);
        for (((id, v), blob), old) in versions.iter().zip(&blobs).zip(&before) {
            let meta = db.record(id, *v).expect("read").expect("meta");
            assert_eq!(meta.kek_version, 2);
            assert_ne!(meta.wrapped_key, old.wrapped_key);
            assert_eq!(
                RecordMeta { wrapped_key: old.wrapped_key.clone(), kek_version: 1, ..meta.clone() },
                *old,
                "only the wrapped key and its KEK version change"
            );
            let sealed = Sealed {
                blob: blob.clone(),
                wrapped_key: hex::decode(&meta.wrapped_key).expect("hex"),
                kek_version: meta.kek_version,
            };
            let binding = Binding { tenant: "t", patient: &meta.patient, record_id: id, version: *v };
            assert_eq!(&**ring.open_sealed(&binding, &sealed).expect("opens"), format!("{}-{v}", id[0]).as_bytes());
        }
        // Pending versions are still pending; a second run has nothing to do.
        assert_eq!(db.pending().expect("pending"), vec![([1; 16], 2), ([3; 16], 2)]);
        assert_eq!(rewrap_all(&db, &ring, "t").expect("again"), 0);
    }

    #[test]
    fn attachments_are_rewrapped_too_and_their_keys_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("db");
        let mut ring = Keyring::ephemeral();
        let patient = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
        let id = [4u8; 16];
        store(&db, &ring, "t", id, 1, "record");
        let mut keys = Vec::new();
        for version in [1u64, 2, 3] {
            let binding = crate::attachments::file_binding("t", patient, &id);
            let file = format!("{version:032x}");
            let dk =
                ring.new_data_key(&binding, &crate::attachments::dek_purpose(&"ab".repeat(16), &file)).expect("key");
            let meta = crate::attachments::AttachmentMeta {
                record_id: medanchor_contracts::RecordId(id),
                attachment_id: "ab".repeat(16),
                version,
                object_key: format!("t/2026/12/{}/{file}", hex::encode(id)),
                size: 1,
                stored_size: 1,
                sha256: medanchor_contracts::DataHash([0; 32]),
                encoding: None,
                wrapped_key: hex::encode(&dk.wrapped),
                kek_version: dk.kek_version,
                info: String::new(),
                uploaded_by: patient.into(),
                uploaded_ms: 1,
                removed: None,
                restored_from: None,
                upload_id: None,
                storage_class: None,
            };
            let mut key = b"v".to_vec();
            key.extend_from_slice(&id);
            key.extend_from_slice(&[0xab; 16]);
            key.extend_from_slice(&version.to_be_bytes());
            let mut batch = db.batch();
            batch.put_cf(db.cf(Cf::Attachments), key, serde_json::to_vec(&meta).expect("json"));
            db.write(batch).expect("put");
            keys.push(*dk.key);
        }
        ring.rotate().expect("rotate");
        assert_eq!(rewrap_attachments(&db, &ring, "t", 2).expect("rewrap"), 3);
        for (meta, key) in db.attachments(&id).expect("read").iter().zip(&keys) {
            assert_eq!(meta.kek_version, 2);
            let binding = crate::attachments::file_binding("t", patient, &id);
            let wrapped = hex::decode(&meta.wrapped_key).expect("hex");
            let purpose = crate::attachments::dek_purpose(&meta.attachment_id, meta.file_id());
            let opened = ring.open_data_key(&binding, &purpose, &wrapped, 2).expect("opens under the new KEK");
            assert_eq!(*opened, *key, "the same data key");
        }
        assert_eq!(rewrap_attachments(&db, &ring, "t", 2).expect("again"), 0);
    }

    #[test]
    fn unfinished_uploads_keys_are_rewrapped_and_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("db");
        let mut ring = Keyring::ephemeral();
        let patient = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
        let id = [5u8; 16];
        let mut keys = Vec::new();
        for (n, direct) in [(1u8, None), (2, Some(("cd".repeat(16), "ef".repeat(16))))] {
            let upload = [n; 16];
            let uid = hex::encode(upload);
            let direct = direct.map(|(a, f)| crate::uploads::DirectPlan { attachment_id: a, file_id: f });
            let binding = crate::attachments::file_binding("t", patient, &id);
            let dk = ring.new_data_key(&binding, &crate::uploads::key_purpose(&uid, direct.as_ref())).expect("key");
            let row = crate::uploads::UploadRow {
                upload_id: uid,
                record_id: medanchor_contracts::RecordId(id),
                patient: patient.into(),
                uploader: patient.into(),
                length: 10,
                info: String::new(),
                wrapped_key: hex::encode(&dk.wrapped),
                kek_version: dk.kek_version,
                segments: 0,
                offset: 0,
                spooled: 0,
                created_ms: 1,
                touched_ms: 1,
                direct,
            };
            let mut batch = db.batch();
            batch.put_cf(
                db.cf(Cf::Attachments),
                crate::uploads::row_key(&upload),
                serde_json::to_vec(&row).expect("json"),
            );
            db.write(batch).expect("put");
            keys.push(*dk.key);
        }
        ring.rotate().expect("rotate");
        assert_eq!(rewrap_all(&db, &ring, "t").expect("rewrap"), 2);
        for (row, key) in db.uploads().expect("rows").iter().zip(&keys) {
            assert_eq!(row.kek_version, 2);
            let binding = crate::attachments::file_binding("t", patient, &id);
            let wrapped = hex::decode(&row.wrapped_key).expect("hex");
            let purpose = crate::uploads::key_purpose(&row.upload_id, row.direct.as_ref());
            assert_eq!(*ring.open_data_key(&binding, &purpose, &wrapped, 2).expect("opens"), *key, "the same key");
        }
        assert_eq!(rewrap_all(&db, &ring, "t").expect("again"), 0);
    }

    #[test]
    fn profiles_are_rewrapped_too_and_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ApiDb::open(dir.path()).expect("db");
        let mut ring = Keyring::ephemeral();
        let patient = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
        let id = crate::profiles::profile_id(patient);
        let mut blobs = Vec::new();
        for version in [1u64, 2, 3] {
            let binding = Binding { tenant: "t", patient, record_id: &id, version };
            let sealed = ring.seal(&binding, format!("profile {version}").as_bytes()).expect("seal");
            db.put_profile(&crate::profiles::ProfileMeta {
                patient: patient.into(),
                version,
                data_hash: medanchor_contracts::DataHash([version as u8; 32]),
                wrapped_key: hex::encode(&sealed.wrapped_key),
                kek_version: sealed.kek_version,
                updated_by: patient.into(),
                updated_ms: 1,
            })
            .expect("put");
            blobs.push(sealed.blob);
        }
        ring.rotate().expect("rotate");
        // Three versions and the current pointer, over pages of two.
        assert_eq!(rewrap_profiles(&db, &ring, "t", 2).expect("rewrap"), 4);
        let current = db.current_profile(patient).expect("read").expect("current");
        assert_eq!((current.version, current.kek_version), (3, 2));
        let binding = Binding { tenant: "t", patient, record_id: &id, version: 3 };
        let sealed = Sealed {
            blob: blobs[2].clone(),
            wrapped_key: hex::decode(&current.wrapped_key).expect("hex"),
            kek_version: current.kek_version,
        };
        assert_eq!(&**ring.open_sealed(&binding, &sealed).expect("opens"), b"profile 3");
        assert_eq!(rewrap_all(&db, &ring, "t").expect("again"), 0);
    }
}
