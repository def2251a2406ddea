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
use medanchor_storage::backend::Backend;
use medanchor_storage::keys::{ObjectKey, Tenant};
use medanchor_storage::sniff::{self, FileKind, Refusal};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::authz::Operation;
use crate::db::{Cf, DbError};
use crate::envelope::{Binding, Keyring};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// Largest attachment by default (bytes).
pub const DEFAULT_MAX_BYTES: usize = 50 * 1024 * 1024;
/// Longest file name, in characters.
pub const MAX_NAME: usize = 255;
/// Most files (names) per record, and versions per file.
pub const MAX_FILES: usize = 200;

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
        let who = caller.require()?.clone();
        let meta = self.current(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "attachment.upload");
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(id.bare_hex());
        let allowed = self.authorize_on_record(Operation::Update, id, &meta, &who);
        let method = self.audit_refusal(&entry, allowed).await?;
        entry.method = Some(method.name().to_string());
        let name = name.trim();
        let checked = check_name(name).and_then(|()| {
            if bytes.len() > self.config.max_attachment_bytes {
                return Err(Error::TooLarge(self.config.max_attachment_bytes));
            }
            sniff::check(media_type, name, &bytes).map_err(refusal)
        });
        let kind = self.audit_refusal(&entry, checked).await?;
        let objects = self.objects()?.clone();
        let tenant = self.tenant_name()?;
        let created_ms = self.db.record(id, 1)?.map_or(meta.created_ms, |m| m.created_ms);
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let mac = self.name_mac(id, name);
        let attachment_id = match self.db.get(Cf::Attachments, &name_key(id, &mac))? {
            Some(a) => a.try_into().map_err(|_| Error::internal("stored attachment id"))?,
            None => {
                let files = self.db.attachments(id)?.iter().filter(|m| m.version == 1).count();
                if files >= MAX_FILES {
                    let full = Error::State {
                        code: "attachment-limit",
                        detail: format!("at most {MAX_FILES} files per record"),
                    };
                    return self.audited(entry, Err(full)).await;
                }
                let mut a = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut a);
                a
            }
        };
        let versions: Vec<AttachmentMeta> =
            self.db.attachments(id)?.into_iter().filter(|m| m.attachment_id == hex::encode(attachment_id)).collect();
        let version = versions.last().map_or(1, |m| m.version + 1);
        if version as usize > MAX_FILES {
            let full =
                Error::State { code: "attachment-limit", detail: format!("at most {MAX_FILES} versions per file") };
            return self.audited(entry, Err(full)).await;
        }
        entry.version = Some(version);
        let (encoded, encoding) = encode(kind, bytes.as_slice())?;
        let size = bytes.len() as u64;
        drop(bytes);
        let mut file_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut file_id);
        let key = ObjectKey::new(tenant, created_ms, id.0, file_id);
        let aid = hex::encode(attachment_id);
        let binding = Binding { tenant: &self.config.tenant, patient: &meta.patient, record_id: &id.0, version };
        let crate::envelope::DataKey { key: dek, wrapped, kek_version } = self
            .keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .new_data_key(&binding, &format!("attachment-dek {aid}"))
            .map_err(Error::internal)?;
        let stream_binding = binding.aad(&format!("attachment {aid}"));
        let stored = async {
            let mut up = objects.sealed_upload(&key, &dek, &stream_binding).await?;
            for piece in encoded.chunks(1 << 20) {
                up.write(piece).await?;
            }
            up.finish().await
        }
        .await
        .map_err(|e| Error::Unavailable(format!("storing the file: {e}")));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let info = FileInfo { name: name.to_string(), media_type: kind.media_type().to_string() };
        let sealed_info = Keyring::seal_small(
            &dek,
            &serde_json::to_vec(&info).map_err(Error::internal)?,
            &binding,
            &format!("attachment-info {aid}"),
        );
        let record = AttachmentMeta {
            record_id: *id,
            attachment_id: aid,
            version,
            object_key: key.to_string(),
            size,
            stored_size: stored.size,
            sha256: DataHash(stored.sha256),
            encoding,
            wrapped_key: hex::encode(wrapped),
            kek_version,
            info: hex::encode(sealed_info),
            uploaded_by: who.to_string(),
            uploaded_ms: self.now_ms(),
            removed: None,
        };
        let mut batch = self.db.batch();
        let cf = self.db.cf(Cf::Attachments);
        batch.put_cf(
            cf,
            version_key(id, &attachment_id, version),
            serde_json::to_vec(&record).map_err(Error::internal)?,
        );
        batch.put_cf(cf, name_key(id, &mac), attachment_id);
        self.db.write(batch)?;
        self.audited(entry, Ok(())).await?;
        Ok(Attachment { meta: record, info })
    }

    /// The attachments of record `id` (every version), for a reader of
    /// the record.
    pub async fn list_attachments(&self, caller: &Caller, id: &RecordId) -> Result<Vec<Attachment>> {
        let who = caller.require()?.clone();
        let meta = self.current(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "attachment.list");
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(id.bare_hex());
        let method = self.audit_refusal(&entry, self.authorize_on_record(Operation::Read, id, &meta, &who)).await?;
        entry.method = Some(method.name().to_string());
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
    ) -> Result<Download> {
        let who = caller.require()?.clone();
        let meta = self.current(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "attachment.download");
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(id.bare_hex());
        let method = self.audit_refusal(&entry, self.authorize_on_record(Operation::Read, id, &meta, &who)).await?;
        entry.method = Some(method.name().to_string());
        let aid = hex::encode(attachment);
        let versions: Vec<AttachmentMeta> =
            self.db.attachments(id)?.into_iter().filter(|m| m.attachment_id == aid).collect();
        let found = match version {
            Some(v) => versions.into_iter().find(|m| m.version == v),
            None => versions.into_iter().last(),
        };
        let result = match found {
            None => Err(Error::NotFound(format!("attachment {aid} of record {id}"))),
            Some(m) if m.removed.is_some() => {
                Err(Error::Gone { code: "attachment-removed", detail: "this attachment was removed".into() })
            }
            Some(m) => {
                entry.version = Some(m.version);
                self.open_file(&meta.patient, m).await
            }
        };
        self.audited(entry, result).await
    }

    /// Marks every version of an attachment removed (kept until the
    /// record's retention ends): the caller needs write access.
    pub async fn remove_attachment(&self, caller: &Caller, id: &RecordId, attachment: &[u8; 16]) -> Result<u64> {
        let who = caller.require()?.clone();
        let meta = self.current(id)?;
        let mut entry = caller.entry(self.role_of(&who)?, "attachment.remove");
        entry.patient = Some(meta.patient.clone());
        entry.record_id = Some(id.bare_hex());
        let method = self.audit_refusal(&entry, self.authorize_on_record(Operation::Update, id, &meta, &who)).await?;
        entry.method = Some(method.name().to_string());
        let lock = self.record_lock(id);
        let _one_writer = lock.lock().await;
        let aid = hex::encode(attachment);
        let now = self.now_ms();
        let mut batch = self.db.batch();
        let mut marked = 0;
        for mut m in self.db.attachments(id)?.into_iter().filter(|m| m.attachment_id == aid) {
            if m.removed.is_none() {
                m.removed = Some((who.to_string(), now));
                let value = serde_json::to_vec(&m).map_err(Error::internal)?;
                batch.put_cf(self.db.cf(Cf::Attachments), version_key(id, attachment, m.version), value);
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

    fn binding_key(&self, patient: &str, m: &AttachmentMeta) -> Result<Zeroizing<[u8; 32]>> {
        let binding = Binding { tenant: &self.config.tenant, patient, record_id: &m.record_id.0, version: m.version };
        let wrapped = hex::decode(&m.wrapped_key).map_err(Error::internal)?;
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .open_data_key(&binding, &format!("attachment-dek {}", m.attachment_id), &wrapped, m.kek_version)
            .map_err(Error::internal)
    }

    fn open_info(&self, patient: &str, meta: AttachmentMeta) -> Result<Attachment> {
        let dek = self.binding_key(patient, &meta)?;
        let binding =
            Binding { tenant: &self.config.tenant, patient, record_id: &meta.record_id.0, version: meta.version };
        let sealed = hex::decode(&meta.info).map_err(Error::internal)?;
        let plain = Keyring::open_small(&dek, &sealed, &binding, &format!("attachment-info {}", meta.attachment_id))
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
        let binding = Binding { tenant: &self.config.tenant, patient, record_id: &m.record_id.0, version: m.version };
        let plain =
            medanchor_storage::stream::open(&dek, &binding.aad(&format!("attachment {}", m.attachment_id)), &sealed)
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

fn check_name(name: &str) -> Result<()> {
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

fn refusal(r: Refusal) -> Error {
    match r.status() {
        415 => Error::Unsupported { code: "unsupported-attachment", detail: r.to_string() },
        _ => Error::bad("attachment-extension", r.to_string()),
    }
}

/// The bytes to seal: gzip when the kind compresses and it saves space.
fn encode(kind: FileKind, bytes: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Option<String>)> {
    if kind.compressible() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 2), flate2::Compression::fast());
        gz.write_all(bytes).map_err(Error::internal)?;
        let packed = Zeroizing::new(gz.finish().map_err(Error::internal)?);
        if packed.len() < bytes.len() {
            return Ok((packed, Some("gzip".into())));
        }
    }
    Ok((Zeroizing::new(bytes.to_vec()), None))
}
