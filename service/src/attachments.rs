//! Attachments: files a record carries (PDF, JPEG, PNG, DICOM, DOC, DOCX),
//! on the object store, encrypted as streams, versioned, and released only
//! as the chain allows.
//!
//! Attaching takes write access to the record's data type (the rule of
//! `update-record`); listing and downloading take read access (the rule
//! of `get-record`: the patient, a provider with consent and access, an
//! active emergency override). Every attempt is audited; a download is a
//! disclosure.
//!
//! A file is checked by declared media type, extension and content
//! signature (`medanchor_storage::sniff`), gzip-compressed when its kind
//! compresses and that saves space, sealed chunk by chunk under a fresh
//! data key (wrapped by the tenant's KEK, bound to tenant, patient,
//! record, attachment and version) and written once under
//! `{tenant}/{yyyy}/{mm}/{record-id}/{file-id}`. Its name and media type
//! are sealed too: the metadata holds ids, sizes, the ciphertext's
//! SHA-256 and a keyed MAC of the name (so a second upload of the same name
//! becomes the next version without decrypting anything). Removal marks
//! the versions; nothing is deleted early.

use bytes::Bytes;
use medanchor_contracts::{DataHash, RecordId};
use medanchor_storage::backend::{Backend, Stored};
use medanchor_storage::keys::{ObjectKey, Tenant};
use medanchor_storage::sniff::{self, FileKind, Refusal};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use medanchor_contracts::principal::Principal;

use crate::audit::AuditEntry;
use crate::authz::Operation;
use crate::db::{Cf, DbError, RecordMeta};
use crate::envelope::{Binding, Keyring};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// Largest attachment by default (bytes).
pub const DEFAULT_MAX_BYTES: usize = 50 * 1024 * 1024;
/// Longest file name, in characters.
pub const MAX_NAME: usize = 255;
/// Most files (names) per record, and versions per file.
pub const MAX_FILES: usize = 200;
/// How long a removed attachment is kept before it is purged: six years,
/// HIPAA's retention of documentation.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(6 * 366 * 24 * 3600);

/// What the database keeps about one attachment version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    /// The record.
    pub record_id: RecordId,
    /// The attachment (the same for every version of one file name).
    pub attachment_id: String,
    /// From 1.
    pub version: u64,
    /// Where the ciphertext is.
    pub object_key: String,
    /// The original file's size.
    pub size: u64,
    /// Bytes stored (ciphertext).
    pub stored_size: u64,
    /// SHA-256 of the stored ciphertext.
    pub sha256: DataHash,
    /// `gzip` when the file was compressed before sealing.
    pub encoding: Option<String>,
    /// The wrapped data key, hex.
    pub wrapped_key: String,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// The sealed `{name, media_type}`, hex.
    pub info: String,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// Unix milliseconds.
    pub uploaded_ms: u64,
    /// Who marked it removed, and when (unix ms).
    pub removed: Option<(String, u64)>,
    /// The version this one restored (it shares that version's object).
    #[serde(default)]
    pub restored_from: Option<u64>,
    /// The resumable upload it was completed from.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// The object's storage class when not the store's standard one.
    #[serde(default)]
    pub storage_class: Option<String>,
}

impl AttachmentMeta {
    /// The object's file id (the last segment of its key): what its data
    /// key, stream and sealed info are bound to, so restoring a version
    /// reuses the object without re-encrypting it.
    pub fn file_id(&self) -> &str {
        self.object_key.rsplit('/').next().unwrap_or_default()
    }
}

/// The key-wrapping context of an attachment's data key: bound to its
/// tenant, patient and record (version 0: a file's key serves every
/// version that points at its object) and, by purpose, to the attachment
/// and file.
pub(crate) fn dek_purpose(attachment_id: &str, file_id: &str) -> String {
    format!("attachment-dek {attachment_id} {file_id}")
}

pub(crate) fn stream_label(attachment_id: &str, file_id: &str) -> String {
    format!("attachment {attachment_id} {file_id}")
}

fn info_label(attachment_id: &str, file_id: &str) -> String {
    format!("attachment-info {attachment_id} {file_id}")
}

/// The binding of every key, stream and sealed name of a record's files.
pub(crate) fn file_binding<'a>(tenant: &'a str, patient: &'a str, record: &'a [u8; 16]) -> Binding<'a> {
    Binding { tenant, patient, record_id: record, version: 0 }
}

/// A file a one-pass upload sealed as its final stream
/// ([`Service::attach_sealed`]).
pub(crate) struct SealedFile<'a> {
    /// As uploaded.
    pub name: &'a str,
    /// As declared.
    pub media_type: &'a str,
    /// The file's first bytes (its content signature).
    pub first: &'a [u8],
    /// The file's size.
    pub size: u64,
    /// The attachment the stream is bound to.
    pub attachment_id: [u8; 16],
    /// The file (object) id it is bound to.
    pub file_id: [u8; 16],
    /// The stream, complete.
    pub path: &'a std::path::Path,
    /// Its data key, and that key wrapped for [`dek_purpose`].
    pub dek: &'a [u8; 32],
    /// The wrapped data key.
    pub wrapped: Vec<u8>,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// The upload it completes.
    pub upload: &'a str,
}

/// What a new attachment version is made of, once its file is stored.
struct NewVersion<'a> {
    who: &'a Principal,
    patient: &'a str,
    id: &'a RecordId,
    mac: [u8; 16],
    attachment_id: [u8; 16],
    version: u64,
    file_id: [u8; 16],
    key: ObjectKey,
    size: u64,
    encoding: Option<String>,
    wrapped: Vec<u8>,
    kek_version: u32,
    dek: &'a [u8; 32],
    info: FileInfo,
    upload: Option<&'a str>,
}

/// The sealed part of an attachment's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file's name as uploaded.
    pub name: String,
    /// Its media type.
    pub media_type: String,
}

/// An attachment version as a reader sees it.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The stored metadata.
    pub meta: AttachmentMeta,
    /// Name and media type, decrypted for the reader.
    pub info: FileInfo,
}

/// A downloaded file.
#[derive(Debug)]
pub struct Download {
    /// Which version.
    pub attachment: Attachment,
    /// The original bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

fn version_key(record: &[u8; 16], attachment: &[u8; 16], version: u64) -> Vec<u8> {
    [&b"v"[..], record, attachment, &version.to_be_bytes()].concat()
}

impl crate::db::ApiDb {
    /// Adds to `batch` the deletion of every attachment row of `record`
    /// (versions and names): its erasure.
    pub(crate) fn drop_attachment_rows(&self, batch: &mut rocksdb::WriteBatch, record: &[u8; 16]) -> Result<()> {
        for prefix in [&b"v"[..], &b"n"[..]] {
            for (k, _) in self.scan(Cf::Attachments, &[prefix, record].concat())? {
                batch.delete_cf(self.cf(Cf::Attachments), k);
            }
        }
        Ok(())
    }
}

fn name_key(record: &[u8; 16], mac: &[u8; 16]) -> Vec<u8> {
    [&b"n"[..], record, mac].concat()
}

fn hex16(s: &str) -> Result<[u8; 16]> {
    let b = hex::decode(s).map_err(|_| Error::bad("invalid-attachment-id", "an attachment id is 32 hex digits"))?;
    b.try_into().map_err(|_| Error::bad("invalid-attachment-id", "an attachment id is 32 hex digits"))
}

/// An attachment id from its hex form.
pub fn attachment_id_arg(s: &str) -> Result<[u8; 16]> {
    hex16(s)
}

impl crate::db::ApiDb {
    /// Every version of every attachment of a record, by attachment then
    /// version.
    pub fn attachments(&self, record: &[u8; 16]) -> std::result::Result<Vec<AttachmentMeta>, DbError> {
        self.scan(Cf::Attachments, &[&b"v"[..], record].concat())?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("attachment: {e}"))))
            .collect()
    }
}

impl Service {
    fn objects(&self) -> Result<&Backend> {
        self.objects.as_deref().ok_or_else(|| Error::Unavailable("this node has no object store".into()))
    }

    fn tenant_name(&self) -> Result<Tenant> {
        self.config.tenant.parse().map_err(|_| Error::internal("the configured tenant is not a valid object prefix"))
    }

    fn name_mac(&self, record: &[u8; 16], name: &str) -> [u8; 16] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.attachment_names[..])
            .unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(record);
        mac.update(name.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        out
    }

    /// Attaches `bytes` to record `id` as `name` (a new version when the
    /// record has a file of that name): the caller needs write access to
    /// the record's data type.
    pub async fn upload_attachment(
        &self,
        caller: &Caller,
        id: &RecordId,
        name: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        self.attach(caller, id, name, media_type, bytes, None).await
    }

    /// The attach rule: the record's current metadata and the audit entry
    /// of an `action` by `caller`, once write access to the record's data
    /// type is established (a refusal is audited).
    pub(crate) async fn attach_access(
        &self,
        caller: &Caller,
        id: &RecordId,
        action: &str,
    ) -> Result<(Principal, RecordMeta, AuditEntry)> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, action);
        entry.record_id = Some(id.bare_hex());
        // Audited when this tenant holds no such record (another's id).
        let meta = self.audit_refusal(&entry, self.current(id)).await?;
        entry.patient = Some(meta.patient.clone());
        let allowed = self.authorize_on_record(Operation::Update, id, &meta, &who);
        let method = self.audit_refusal(&entry, allowed).await?;
        entry.method = Some(method.name().to_string());
        Ok((who, meta, entry))
    }

    /// Attaches a whole file; `upload` names the resumable upload it
    /// completes (its row goes in the same batch as the new version, so a
    /// completed upload is never completed twice).
    pub(crate) async fn attach(
        &self,
        caller: &Caller,
        id: &RecordId,
        name: &str,
        media_type: &str,
        bytes: Vec<u8>,
        upload: Option<&str>,
    ) -> Result<Attachment> {
        let (who, meta, mut entry) = self.attach_access(caller, id, "attachment.upload").await?;
        let name = name.trim();
        let checked = self.check_file(name, media_type, bytes.len() as u64, &bytes);
        let kind = self.audit_refusal(&entry, checked).await?;
        let objects = self.objects()?.clone();
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let mac = self.name_mac(id, name);
        let (attachment_id, version) = match self.next_version(id, &mac, None) {
            Ok(v) => v,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        entry.version = Some(version);
        let size = bytes.len() as u64;
        // Moved, not copied: a 50 MB file is held once.
        let (encoded, encoding) = encode(kind, bytes)?;
        let mut file_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut file_id);
        let key = self.object_key(id, &meta, file_id)?;
        let aid = hex::encode(attachment_id);
        let fid = hex::encode(file_id);
        let binding = file_binding(&self.config.tenant, &meta.patient, &id.0);
        let crate::envelope::DataKey { key: dek, wrapped, kek_version } = self
            .keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .new_data_key(&binding, &dek_purpose(&aid, &fid))
            .map_err(Error::internal)?;
        let stream_binding = binding.aad(&stream_label(&aid, &fid));
        let stored = async {
            let class = Some(self.config.storage_class.as_str());
            let mut up = objects.sealed_upload_in(&key, &dek, &stream_binding, class).await?;
            if let Err(e) = up.write(&encoded).await {
                // Nothing partial stays behind.
                let _ = up.abort().await;
                return Err(e);
            }
            up.finish().await
        }
        .await
        .map_err(|e| Error::Unavailable(format!("storing the file: {e}")));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let version = NewVersion {
            who: &who,
            patient: &meta.patient,
            id,
            mac,
            attachment_id,
            version,
            file_id,
            key,
            size,
            encoding,
            wrapped,
            kek_version,
            dek: &dek,
            info: FileInfo { name: name.to_string(), media_type: kind.media_type().to_string() },
            upload,
        };
        self.commit_version(entry, version, stored).await
    }

    /// Completes a one-pass upload ([`crate::uploads`]): the file is
    /// already sealed, under its attachment's data key, as the final
    /// stream at `file.path`, so it is only checked (the rule, the name,
    /// the size, the content signature from its first bytes) and stored
    /// as it is. `None` when the file name has meanwhile become another
    /// attachment (another upload of the same new name completed first):
    /// the stream is bound to the attachment it was started as, so the
    /// caller stores the plaintext the two-pass way instead.
    pub(crate) async fn attach_sealed(
        &self,
        caller: &Caller,
        id: &RecordId,
        file: SealedFile<'_>,
    ) -> Result<Option<Attachment>> {
        let (who, meta, mut entry) = self.attach_access(caller, id, "attachment.upload").await?;
        let name = file.name.trim();
        let checked = self.check_file(name, file.media_type, file.size, file.first);
        let kind = self.audit_refusal(&entry, checked).await?;
        if kind.compressible() {
            return Err(Error::internal("a compressible type was uploaded in one pass"));
        }
        let objects = self.objects()?.clone();
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let mac = self.name_mac(id, name);
        let (attachment_id, version) = match self.next_version(id, &mac, Some(file.attachment_id)) {
            Ok(v) => v,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        if attachment_id != file.attachment_id {
            return Ok(None);
        }
        entry.version = Some(version);
        let key = self.object_key(id, &meta, file.file_id)?;
        let class = Some(self.config.storage_class.as_str());
        // The parts sent while the file arrived, if any (taken only now:
        // a refusal above leaves them for the upload's deletion to abort).
        let parts = crate::uploads::upload_id_arg(file.upload)
            .ok()
            .and_then(|u| self.file_parts.lock().unwrap_or_else(|p| p.into_inner()).remove(&u));
        let stored = match objects.put_file(&key, file.path, class, parts).await {
            Ok(s) => s,
            Err(e) => return self.audited(entry, Err(Error::Unavailable(format!("storing the file: {e}")))).await,
        };
        let version = NewVersion {
            who: &who,
            patient: &meta.patient,
            id,
            mac,
            attachment_id,
            version,
            file_id: file.file_id,
            key,
            size: file.size,
            encoding: None,
            wrapped: file.wrapped,
            kek_version: file.kek_version,
            dek: file.dek,
            info: FileInfo { name: name.to_string(), media_type: kind.media_type().to_string() },
            upload: Some(file.upload),
        };
        self.commit_version(entry, version, stored).await.map(Some)
    }

    /// Where file `file_id` of record `id` is stored:
    /// `{tenant}/{yyyy}/{mm}/{record}/{file}`, by the record's creation.
    pub(crate) fn object_key(&self, id: &RecordId, meta: &RecordMeta, file_id: [u8; 16]) -> Result<ObjectKey> {
        let created_ms = self.db.record(id, 1)?.map_or(meta.created_ms, |m| m.created_ms);
        Ok(ObjectKey::new(self.tenant_name()?, created_ms, id.0, file_id))
    }

    /// The checks of a file before it is stored: its name, its size, and
    /// its declared type against its extension and its content (`bytes`:
    /// the whole file, or at least its first bytes for a type whose
    /// signature leads).
    fn check_file(&self, name: &str, media_type: &str, size: u64, bytes: &[u8]) -> Result<FileKind> {
        check_name(name)?;
        if size > self.config.max_attachment_bytes as u64 {
            return Err(Error::TooLarge(self.config.max_attachment_bytes));
        }
        sniff::check(media_type, name, bytes).map_err(refusal)
    }

    /// Writes a stored file's new version (with its name's attachment
    /// id, the end of the upload it completes, and its hash queued for
    /// anchoring) in one batch, and audits it. The caller holds the
    /// record's lock.
    async fn commit_version(&self, entry: AuditEntry, v: NewVersion<'_>, stored: Stored) -> Result<Attachment> {
        let aid = hex::encode(v.attachment_id);
        let fid = hex::encode(v.file_id);
        let binding = file_binding(&self.config.tenant, v.patient, &v.id.0);
        let sealed_info = Keyring::seal_small(
            v.dek,
            &serde_json::to_vec(&v.info).map_err(Error::internal)?,
            &binding,
            &info_label(&aid, &fid),
        );
        let record = AttachmentMeta {
            record_id: *v.id,
            attachment_id: aid,
            version: v.version,
            object_key: v.key.to_string(),
            size: v.size,
            stored_size: stored.size,
            sha256: DataHash(stored.sha256),
            encoding: v.encoding,
            wrapped_key: hex::encode(v.wrapped),
            kek_version: v.kek_version,
            info: hex::encode(sealed_info),
            uploaded_by: v.who.to_string(),
            uploaded_ms: self.now_ms(),
            removed: None,
            restored_from: None,
            upload_id: v.upload.map(str::to_string),
            storage_class: stored.class.clone(),
        };
        let mut batch = self.db.batch();
        self.put_version(&mut batch, &record, &v.attachment_id)?;
        batch.put_cf(self.db.cf(Cf::Attachments), name_key(v.id, &v.mac), v.attachment_id);
        if let Some(upload) = v.upload {
            crate::uploads::finish_in(self, &mut batch, upload);
        }
        // Anchored with the next batch (written with the version: a stored
        // file is never left out of anchoring).
        self.queue_file_hash(&mut batch, &stored.sha256)?;
        self.db.write(batch)?;
        self.audited(entry, Ok(())).await?;
        Ok(Attachment { meta: record, info: v.info })
    }

    /// The attachment a file named `name` on record `id` would be now
    /// (its name's, or a fresh id): what a one-pass upload binds its
    /// stream to.
    pub(crate) fn attachment_id_for(&self, id: &RecordId, name: &str) -> Result<[u8; 16]> {
        match self.db.get(Cf::Attachments, &name_key(id, &self.name_mac(id, name.trim())))? {
            Some(a) => a.try_into().map_err(|_| Error::internal("stored attachment id")),
            None => {
                let mut a = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut a);
                Ok(a)
            }
        }
    }

    /// The attachment id for the file named by `mac` on record `id`, and
    /// the version an upload of it becomes (the caller holds the record's
    /// lock). A name not seen before gets `fresh` (what a one-pass upload
    /// was bound to when it started), or a new id.
    fn next_version(&self, id: &RecordId, mac: &[u8; 16], fresh: Option<[u8; 16]>) -> Result<([u8; 16], u64)> {
        let attachment_id = match self.db.get(Cf::Attachments, &name_key(id, mac))? {
            Some(a) => a.try_into().map_err(|_| Error::internal("stored attachment id"))?,
            None => {
                let files = self.db.attachments(id)?.iter().filter(|m| m.version == 1).count();
                if files >= MAX_FILES {
                    return Err(Error::State {
                        code: "attachment-limit",
                        detail: format!("at most {MAX_FILES} files per record"),
                    });
                }
                fresh.unwrap_or_else(|| {
                    let mut a = [0u8; 16];
                    rand::thread_rng().fill_bytes(&mut a);
                    a
                })
            }
        };
        let version = self.versions_of(id, &attachment_id)?.last().map_or(1, |m| m.version + 1);
        if version as usize > MAX_FILES {
            return Err(Error::State {
                code: "attachment-limit",
                detail: format!("at most {MAX_FILES} versions per file"),
            });
        }
        Ok((attachment_id, version))
    }

    fn versions_of(&self, id: &RecordId, attachment: &[u8; 16]) -> Result<Vec<AttachmentMeta>> {
        let aid = hex::encode(attachment);
        Ok(self.db.attachments(id)?.into_iter().filter(|m| m.attachment_id == aid).collect())
    }

    fn put_version(&self, batch: &mut rocksdb::WriteBatch, m: &AttachmentMeta, attachment: &[u8; 16]) -> Result<()> {
        let value = serde_json::to_vec(m).map_err(Error::internal)?;
        batch.put_cf(self.db.cf(Cf::Attachments), version_key(&m.record_id, attachment, m.version), value);
        Ok(())
    }

    /// The read rule for a record's files, with its audit entry: on the
    /// chain's rule or through a share grant.
    async fn file_access(
        &self,
        caller: &Caller,
        id: &RecordId,
        grant: Option<&str>,
        action: &str,
    ) -> Result<(RecordMeta, AuditEntry)> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, action);
        entry.record_id = Some(id.bare_hex());
        // Audited when this tenant holds no such record (another's id).
        let meta = self.audit_refusal(&entry, self.current(id)).await?;
        entry.patient = Some(meta.patient.clone());
        match self.read_access(id, &meta, &who, grant)? {
            Ok((method, share_id)) => {
                entry.method = Some(method);
                entry.share_id = share_id;
                Ok((meta, entry))
            }
            Err((e, share_id)) => {
                entry.share_id = share_id;
                self.audited(entry, Err(e)).await
            }
        }
    }

    /// The attachments of record `id` (every version), for a reader of
    /// the record (on the chain's rule, or through a share grant).
    pub async fn list_attachments(
        &self,
        caller: &Caller,
        id: &RecordId,
        grant: Option<&str>,
    ) -> Result<Vec<Attachment>> {
        let (meta, entry) = self.file_access(caller, id, grant, "attachment.list").await?;
        let list = self.db.attachments(id)?.into_iter().map(|m| self.open_info(&meta.patient, m)).collect();
        self.audited(entry, list).await
    }

    /// One version (default: the latest) of an attachment, decrypted, for
    /// a reader of the record. A removed version is gone (410).
    pub async fn download_attachment(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        version: Option<u64>,
        grant: Option<&str>,
    ) -> Result<Download> {
        self.download_as(caller, id, attachment, version, grant, "attachment.download").await
    }

    async fn download_as(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        version: Option<u64>,
        grant: Option<&str>,
        action: &str,
    ) -> Result<Download> {
        let (meta, mut entry) = self.file_access(caller, id, grant, action).await?;
        let aid = hex::encode(attachment);
        let found = match (version, self.versions_of(id, attachment)) {
            (_, Err(e)) => Err(e),
            (Some(v), Ok(versions)) => Ok(versions.into_iter().find(|m| m.version == v)),
            (None, Ok(versions)) => Ok(versions.into_iter().last()),
        };
        let result = match found {
            Err(e) => Err(e),
            Ok(None) => Err(Error::NotFound(format!("attachment {aid} of record {id}"))),
            Ok(Some(m)) if m.removed.is_some() => {
                Err(Error::Gone { code: "attachment-removed", detail: "this attachment was removed".into() })
            }
            Ok(Some(m)) => {
                entry.version = Some(m.version);
                self.open_file(&meta.patient, m).await
            }
        };
        self.audited(entry, result).await
    }

    /// One version (default: the latest) of an attachment, for a reader of
    /// the record; the access is audited as `action`.
    pub(crate) async fn attachment_version(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        version: Option<u64>,
        action: &str,
    ) -> Result<AttachmentMeta> {
        let (_meta, mut entry) = self.file_access(caller, id, None, action).await?;
        let versions = self.versions_of(id, attachment)?;
        let found = match version {
            Some(v) => versions.into_iter().find(|m| m.version == v),
            None => versions.into_iter().last(),
        };
        let result =
            found.ok_or_else(|| Error::NotFound(format!("attachment {} of record {id}", hex::encode(attachment))));
        if let Ok(m) = &result {
            entry.version = Some(m.version);
        }
        self.audited(entry, result).await
    }

    /// Restores version `from` of an attachment as its next version (the
    /// same object: nothing is re-encrypted); the caller needs write
    /// access. A removed version cannot be restored.
    pub async fn restore_attachment(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        from: u64,
    ) -> Result<Attachment> {
        let (who, meta, mut entry) = self.attach_access(caller, id, "attachment.restore").await?;
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let aid = hex::encode(attachment);
        let versions = self.versions_of(id, attachment)?;
        let next = versions.last().map_or(1, |m| m.version + 1);
        let source = versions.iter().find(|m| m.version == from).cloned();
        let checked = match source {
            None => Err(Error::NotFound(format!("version {from} of attachment {aid} of record {id}"))),
            Some(m) if m.removed.is_some() => {
                Err(Error::Gone { code: "attachment-removed", detail: "a removed version cannot be restored".into() })
            }
            Some(_) if next as usize > MAX_FILES => {
                Err(Error::State { code: "attachment-limit", detail: format!("at most {MAX_FILES} versions per file") })
            }
            Some(m) => Ok(m),
        };
        let source = self.audit_refusal(&entry, checked).await?;
        entry.version = Some(next);
        let restored = AttachmentMeta {
            version: next,
            uploaded_by: who.to_string(),
            uploaded_ms: self.now_ms(),
            removed: None,
            restored_from: Some(from),
            upload_id: None,
            ..source
        };
        let mut batch = self.db.batch();
        self.put_version(&mut batch, &restored, attachment)?;
        self.db.write(batch)?;
        self.audited(entry, Ok(())).await?;
        self.open_info(&meta.patient, restored)
    }

    /// Marks every version of an attachment removed (kept until the
    /// retention ends, then purged by [`Service::purge_attachments`]): the
    /// caller needs write access.
    pub async fn remove_attachment(&self, caller: &Caller, id: &RecordId, attachment: &[u8; 16]) -> Result<u64> {
        let (who, _meta, entry) = self.attach_access(caller, id, "attachment.remove").await?;
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let aid = hex::encode(attachment);
        let now = self.now_ms();
        let mut batch = self.db.batch();
        let mut marked = 0;
        for mut m in self.versions_of(id, attachment)? {
            if m.removed.is_none() {
                m.removed = Some((who.to_string(), now));
                self.put_version(&mut batch, &m, attachment)?;
                marked += 1;
            }
        }
        let result =
            if marked == 0 { Err(Error::NotFound(format!("attachment {aid} of record {id}"))) } else { Ok(()) };
        if result.is_ok() {
            self.db.write(batch)?;
        }
        self.audited(entry, result).await?;
        Ok(marked)
    }

    /// Deletes attachment versions removed longer ago than the retention
    /// (their metadata, and their object once no kept version points at
    /// it). Returns the versions purged. Run by a job.
    pub async fn purge_attachments(&self) -> Result<usize> {
        let cutoff = self.now_ms().saturating_sub(self.config.attachment_retention.as_millis() as u64);
        let all = self.db.scan(Cf::Attachments, b"v")?;
        let mut metas = Vec::with_capacity(all.len());
        for (_, v) in all {
            metas.push(serde_json::from_slice::<AttachmentMeta>(&v).map_err(Error::internal)?);
        }
        let mut purged = 0;
        for m in metas.iter().filter(|m| m.removed.as_ref().is_some_and(|(_, at)| *at <= cutoff)) {
            let lock = self.record_lock(&m.record_id);
            let _one_writer = lock.lock().await;
            let attachment = hex16(&m.attachment_id)?;
            // Another version restored from this one (or this from it)
            // shares the object: it stays while any of them is kept.
            let shared = self
                .versions_of(&m.record_id, &attachment)?
                .iter()
                .any(|o| o.version != m.version && o.object_key == m.object_key);
            if !shared {
                let key = ObjectKey::parse(&m.object_key).ok_or_else(|| Error::internal("stored object key"))?;
                self.objects()?.delete(&key).await.map_err(|e| Error::Unavailable(format!("{e}")))?;
            }
            let mut batch = self.db.batch();
            batch.delete_cf(self.db.cf(Cf::Attachments), version_key(&m.record_id, &attachment, m.version));
            self.db.write(batch)?;
            let mut entry = AuditEntry::system("attachment.purge", self.now_ms());
            entry.record_id = Some(m.record_id.bare_hex());
            entry.version = Some(m.version);
            self.audited(entry, Ok(())).await?;
            purged += 1;
        }
        Ok(purged)
    }

    fn binding_key(&self, patient: &str, m: &AttachmentMeta) -> Result<Zeroizing<[u8; 32]>> {
        let binding = file_binding(&self.config.tenant, patient, &m.record_id.0);
        let wrapped = hex::decode(&m.wrapped_key).map_err(Error::internal)?;
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .open_data_key(&binding, &dek_purpose(&m.attachment_id, m.file_id()), &wrapped, m.kek_version)
            .map_err(Error::internal)
    }

    pub(crate) fn open_info(&self, patient: &str, meta: AttachmentMeta) -> Result<Attachment> {
        let dek = self.binding_key(patient, &meta)?;
        let binding = file_binding(&self.config.tenant, patient, &meta.record_id.0);
        let sealed = hex::decode(&meta.info).map_err(Error::internal)?;
        let plain = Keyring::open_small(&dek, &sealed, &binding, &info_label(&meta.attachment_id, meta.file_id()))
            .map_err(Error::internal)?;
        let info = serde_json::from_slice(&plain).map_err(Error::internal)?;
        Ok(Attachment { meta, info })
    }

    async fn open_file(&self, patient: &str, meta: AttachmentMeta) -> Result<Download> {
        let attachment = self.open_info(patient, meta)?;
        let m = &attachment.meta;
        let key = ObjectKey::parse(&m.object_key).ok_or_else(|| Error::internal("stored object key"))?;
        let sealed: Bytes = self.objects()?.get(&key).await.map_err(|e| Error::Unavailable(format!("{e}")))?;
        let dek = self.binding_key(patient, m)?;
        let binding = file_binding(&self.config.tenant, patient, &m.record_id.0);
        let plain =
            medanchor_storage::stream::open(&dek, &binding.aad(&stream_label(&m.attachment_id, m.file_id())), &sealed)
                .map_err(|e| Error::internal(format!("attachment {}: {e}", m.attachment_id)))?;
        let bytes = match m.encoding.as_deref() {
            Some("gzip") => {
                use std::io::Read;
                let mut out = Zeroizing::new(Vec::with_capacity(m.size as usize));
                flate2::read::GzDecoder::new(&plain[..]).read_to_end(&mut out).map_err(Error::internal)?;
                out
            }
            _ => plain,
        };
        Ok(Download { attachment, bytes })
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && !name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        && name != "."
        && name != "..";
    ok.then_some(()).ok_or_else(|| {
        Error::bad(
            "invalid-file-name",
            format!("a file name is 1 to {MAX_NAME} characters, without slashes or control characters"),
        )
    })
}

pub(crate) fn refusal(r: Refusal) -> Error {
    match r.status() {
        415 => Error::Unsupported { code: "unsupported-attachment", detail: r.to_string() },
        _ => Error::bad("attachment-extension", r.to_string()),
    }
}

/// The bytes to seal: gzip when the kind compresses and it saves space.
fn encode(kind: FileKind, bytes: Vec<u8>) -> Result<(Zeroizing<Vec<u8>>, Option<String>)> {
    let bytes = Zeroizing::new(bytes);
    if kind.compressible() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 2), flate2::Compression::fast());
        gz.write_all(&bytes).map_err(Error::internal)?;
        let packed = Zeroizing::new(gz.finish().map_err(Error::internal)?);
        if packed.len() < bytes.len() {
            return Ok((packed, Some("gzip".into())));
        }
    }
    Ok((bytes, None))
}

/// A signed download link's parts (the front end makes the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The version it names.
    pub version: u64,
    /// Unix ms after which it is refused.
    pub expires_ms: u64,
    /// The principal whose access it carries.
    pub principal: String,
    /// The HMAC, hex.
    pub signature: String,
}

impl Service {
    /// A link to one version (default: the latest) of an attachment, valid
    /// [`medanchor_storage::links::LIFETIME_MS`], carrying the caller's
    /// access: whoever holds it reads the file as the caller could, and
    /// only while the caller still could.
    pub async fn attachment_link(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        version: Option<u64>,
    ) -> Result<Link> {
        let (_meta, mut entry) = self.file_access(caller, id, None, "attachment.link").await?;
        let versions = self.versions_of(id, attachment)?;
        let found = match version {
            Some(v) => versions.into_iter().find(|m| m.version == v),
            None => versions.into_iter().last(),
        };
        let result = match found {
            None => Err(Error::NotFound(format!("attachment {} of record {id}", hex::encode(attachment)))),
            Some(m) if m.removed.is_some() => {
                Err(Error::Gone { code: "attachment-removed", detail: "this attachment was removed".into() })
            }
            Some(m) => Ok(m.version),
        };
        let version = self.audit_refusal(&entry, result).await?;
        entry.version = Some(version);
        let claims = medanchor_storage::links::Claims {
            record: id.0,
            attachment: *attachment,
            version,
            expires_ms: self.now_ms() + medanchor_storage::links::LIFETIME_MS,
            principal: caller.require()?.to_string(),
        };
        let signature = hex::encode(medanchor_storage::links::sign(&self.link_key, &claims));
        self.audited(entry, Ok(())).await?;
        Ok(Link { version, expires_ms: claims.expires_ms, principal: claims.principal, signature })
    }

    /// Downloads through a signed link: the signature (constant time) and
    /// the expiry are checked before anything else; then the principal it
    /// carries must still be allowed to read the record. Audited as that
    /// principal's download by link.
    pub async fn download_by_link(
        &self,
        caller: &Caller,
        id: &RecordId,
        attachment: &[u8; 16],
        link: &Link,
    ) -> Result<Download> {
        let sig = hex::decode(&link.signature).unwrap_or_default();
        let claims = medanchor_storage::links::Claims {
            record: id.0,
            attachment: *attachment,
            version: link.version,
            expires_ms: link.expires_ms,
            principal: link.principal.clone(),
        };
        let checked = medanchor_storage::links::verify(&self.link_key, &claims, &sig, self.now_ms());
        let principal = match checked {
            Ok(()) => link.principal.parse::<Principal>().map_err(|_| Error::internal("a signed principal"))?,
            Err(e) => {
                let code = match e {
                    medanchor_storage::links::LinkError::Invalid => "link-invalid",
                    medanchor_storage::links::LinkError::Expired => "link-expired",
                };
                let mut entry = caller.entry("none", "attachment.link-download");
                entry.record_id = Some(id.bare_hex());
                return self.audited(entry, Err(Error::Forbidden { code, detail: e.to_string(), reason: None })).await;
            }
        };
        let bearer = Caller { principal: Some(principal), presented_token: false, ..caller.clone() };
        self.download_as(&bearer, id, attachment, Some(link.version), None, "attachment.link-download").await
    }
}
