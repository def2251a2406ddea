//! Resumable uploads (the tus 1.0 protocol's model; its HTTP framing is
//! the API's): a file sent in pieces, any of which may be interrupted, and
//! resumed from the offset the node acknowledged — across restarts.
//!
//! Creating an upload takes the attach rule (write access to the record's
//! data type) and checks what can be checked before any byte: the name,
//! the declared type against the extension, the length against the limit.
//! Each piece is appended to the encrypted spool
//! ([`medanchor_storage::spool`]) under the upload's own key (wrapped by
//! the KEK) and synced before its new offset is committed, so an
//! acknowledged offset never loses a byte and a crash mid-piece resumes
//! from the last acknowledged one. A piece with a checksum counts only
//! if it matches. The first bytes are checked against the declared type
//! as soon as they arrive. When the last byte is in, the upload becomes an
//! attachment through the same path as a whole-file upload (the rule again,
//! the content check, compression, the object store); the new version and
//! the removal of the upload's row go in one batch, so an upload completes
//! once. Only the uploader sees or changes an upload; an upload untouched
//! for [`ABANDONED_AFTER`] is deleted by the sweep.
//!
//! A type that is never compressed (JPEG, PNG) is uploaded in **one
//! pass**: its attachment and file ids and its data key are chosen when
//! the upload is created, and each piece is sealed straight into the
//! final STREAM ([`medanchor_storage::spool::StreamWriter`]): whole chunks
//! to the stream file, the partial chunk at the end sealed into the
//! database with the committed offset (one batch). The last chunk is
//! sealed when the last byte is in, and the file is then stored as it is
//! (linked into a local store, or sent to S3 from the file), with no
//! second encryption and no second copy. Should the name have become
//! another attachment in the meantime, the stream is opened and stored
//! the two-pass way.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use medanchor_contracts::RecordId;
use medanchor_storage::sniff::{self, FileKind};
use medanchor_storage::spool::{Position, Spool, MAX_SEGMENT};
use medanchor_storage::stream::{self, CHUNK};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::attachments::{check_name, dek_purpose, file_binding, refusal, stream_label, Attachment, FileInfo};
use crate::db::{Cf, DbError};
use crate::envelope::Keyring;
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// An upload nobody touched for this long is deleted (7 days).
pub const ABANDONED_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;
/// The same, as a duration.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_millis(ABANDONED_AFTER_MS);
/// Unfinished uploads one principal may hold at once.
pub const MAX_OPEN_PER_UPLOADER: usize = 32;
/// Bytes a file's first check needs (DICOM's `DICM` ends at 132).
const FIRST_BYTES: usize = 132;

/// What the database keeps about an unfinished upload (no name: that is
/// sealed in `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRow {
    /// The upload (hex).
    pub upload_id: String,
    /// The record it attaches to.
    pub record_id: RecordId,
    /// The record's patient.
    pub patient: String,
    /// Who created it (the only one who sees or changes it).
    pub uploader: String,
    /// The file's declared length.
    pub length: u64,
    /// The sealed `{name, media_type}`, hex.
    pub info: String,
    /// The spool key, wrapped by the KEK, hex.
    pub wrapped_key: String,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// Segments committed.
    pub segments: u64,
    /// Bytes received and acknowledged.
    pub offset: u64,
    /// Spool bytes committed.
    pub spooled: u64,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms of the last piece (or the creation).
    pub touched_ms: u64,
    /// Uploaded in one pass: the attachment and file it is sealed as
    /// (`segments` then counts the stream's committed chunks).
    #[serde(default)]
    pub direct: Option<DirectPlan>,
}

/// The attachment and file a one-pass upload is sealed as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectPlan {
    /// The attachment (hex): its name's when the upload started, or new.
    pub attachment_id: String,
    /// The file, the object's last key segment (hex).
    pub file_id: String,
}

impl UploadRow {
    fn position(&self) -> Position {
        Position { segments: self.segments, offset: self.offset, bytes: self.spooled }
    }

    /// When the upload will be deleted unless touched again.
    pub fn expires_ms(&self) -> u64 {
        self.touched_ms.saturating_add(ABANDONED_AFTER_MS)
    }
}

/// Where an upload stands, for its uploader.
#[derive(Debug, Clone)]
pub struct UploadState {
    /// The upload id (hex).
    pub upload_id: String,
    /// The record.
    pub record_id: RecordId,
    /// Bytes acknowledged.
    pub offset: u64,
    /// The file's length.
    pub length: u64,
    /// When it is deleted unless touched (unix ms).
    pub expires_ms: u64,
    /// The attachment it became, once complete.
    pub completed: Option<Attachment>,
}

/// A checksum of one piece (tus's `Upload-Checksum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-1 (every tus server must take it).
    Sha1([u8; 20]),
    /// SHA-256.
    Sha256([u8; 32]),
}

impl Checksum {
    /// The algorithms taken, as tus names them.
    pub const ALGORITHMS: &'static str = "sha1,sha256";

    /// A checksum from its algorithm's name and its digest.
    pub fn new(algorithm: &str, digest: &[u8]) -> Result<Checksum> {
        let bad = || Error::bad("invalid-checksum", "a sha1 digest is 20 bytes, a sha256 digest 32");
        match algorithm {
            "sha1" => Ok(Checksum::Sha1(digest.try_into().map_err(|_| bad())?)),
            "sha256" => Ok(Checksum::Sha256(digest.try_into().map_err(|_| bad())?)),
            other => Err(Error::bad(
                "checksum-algorithm",
                format!("checksum algorithm {:?} is not taken; use one of {}", truncate(other), Self::ALGORITHMS),
            )),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn of(c: &Checksum) -> Hasher {
        match c {
            Checksum::Sha1(_) => Hasher::Sha1(sha1::Sha1::new()),
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
        }
    }

    fn matches(self, c: &Checksum) -> bool {
        use subtle::ConstantTimeEq;
        match (self, c) {
            (Hasher::Sha1(h), Checksum::Sha1(d)) => h.finalize().ct_eq(d).into(),
            (Hasher::Sha256(h), Checksum::Sha256(d)) => h.finalize().ct_eq(d).into(),
            _ => false,
        }
    }
}

/// What an upload's key is wrapped for: the spool's own key, or (one
/// pass) the attachment's data key.
pub(crate) fn key_purpose(upload: &str, direct: Option<&DirectPlan>) -> String {
    match direct {
        Some(d) => dek_purpose(&d.attachment_id, &d.file_id),
        None => format!("upload-spool {upload}"),
    }
}

pub(crate) fn row_key(upload: &[u8; 16]) -> Vec<u8> {
    [&b"u"[..], upload].concat()
}

/// A one-pass upload's partial last chunk, sealed.
fn tail_key(upload: &[u8; 16]) -> Vec<u8> {
    [&b"t"[..], upload].concat()
}

fn tail_label(upload: &str, chunks: u64) -> String {
    format!("upload-tail {upload} {chunks}")
}

/// Removes upload `upload`'s row in `batch` (the batch that writes the
/// attachment it became).
pub(crate) fn finish_in(s: &Service, batch: &mut rocksdb::WriteBatch, upload: &str) {
    if let Ok(id) = upload_id_arg(upload) {
        batch.delete_cf(s.db.cf(Cf::Attachments), row_key(&id));
        batch.delete_cf(s.db.cf(Cf::Attachments), tail_key(&id));
    }
}

/// Where the bytes of a piece go.
enum Sink {
    /// The spool: segments of up to [`MAX_SEGMENT`] bytes.
    Spool { writer: medanchor_storage::spool::Writer, buf: Vec<u8> },
    /// The final stream: whole chunks sealed as they complete, the rest
    /// kept for the next piece.
    Stream { writer: medanchor_storage::spool::StreamWriter, tail: zeroize::Zeroizing<Vec<u8>>, length: u64 },
}

impl Sink {
    /// Bytes received, committed or not.
    fn received(&self) -> u64 {
        match self {
            Sink::Spool { writer, buf } => writer.position().offset + buf.len() as u64,
            Sink::Stream { writer, tail, .. } => u64::from(writer.chunks()) * CHUNK as u64 + tail.len() as u64,
        }
    }

    fn take(&mut self, mut rest: &[u8]) -> Result<()> {
        match self {
            Sink::Spool { writer, buf } => {
                while !rest.is_empty() {
                    let take = (MAX_SEGMENT - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == MAX_SEGMENT {
                        writer.push(buf).map_err(Error::internal)?;
                        buf.clear();
                    }
                }
            }
            Sink::Stream { writer, tail, length, .. } => {
                // A chunk is sealed once whole, unless it is the file's
                // last: that one is sealed, flagged, at completion.
                let sealable =
                    |w: &medanchor_storage::spool::StreamWriter| (u64::from(w.chunks()) + 1) * (CHUNK as u64) < *length;
                if !tail.is_empty() {
                    let take = (CHUNK - tail.len()).min(rest.len());
                    tail.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if tail.len() == CHUNK && sealable(writer) {
                        writer.push(tail, false).map_err(Error::internal)?;
                        tail.clear();
                    }
                }
                while rest.len() >= CHUNK && tail.is_empty() && sealable(writer) {
                    writer.push(&rest[..CHUNK], false).map_err(Error::internal)?;
                    rest = &rest[CHUNK..];
                }
                tail.extend_from_slice(rest);
            }
        }
        Ok(())
    }
}

/// An upload id from its hex form.
pub fn upload_id_arg(s: &str) -> Result<[u8; 16]> {
    let bad = || Error::bad("invalid-upload-id", "an upload id is 32 hex digits");
    hex::decode(s).map_err(|_| bad())?.try_into().map_err(|_| bad())
}

impl crate::db::ApiDb {
    /// Every unfinished upload.
    pub fn uploads(&self) -> std::result::Result<Vec<UploadRow>, DbError> {
        self.scan(Cf::Attachments, b"u")?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(format!("upload: {e}"))))
            .collect()
    }
}

impl Service {
    fn spool(&self) -> Result<&Spool> {
        self.spool.as_deref().ok_or_else(|| Error::Unavailable("this node has no upload spool".into()))
    }

    /// The upload's key: the spool's own, or (one pass) the attachment's
    /// data key.
    fn spool_key(&self, row: &UploadRow) -> Result<zeroize::Zeroizing<[u8; 32]>> {
        let binding = file_binding(&self.config.tenant, &row.patient, &row.record_id.0);
        let wrapped = hex::decode(&row.wrapped_key).map_err(Error::internal)?;
        let purpose = key_purpose(&row.upload_id, row.direct.as_ref());
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .open_data_key(&binding, &purpose, &wrapped, row.kek_version)
            .map_err(Error::internal)
    }

    /// What a one-pass upload's stream is bound to.
    fn stream_binding(&self, row: &UploadRow, plan: &DirectPlan) -> Vec<u8> {
        file_binding(&self.config.tenant, &row.patient, &row.record_id.0)
            .aad(&stream_label(&plan.attachment_id, &plan.file_id))
    }

    /// A one-pass upload's committed partial chunk.
    fn upload_tail(&self, row: &UploadRow, key: &[u8; 32]) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let upload = upload_id_arg(&row.upload_id)?;
        let Some(sealed) = self.db.get(Cf::Attachments, &tail_key(&upload))? else {
            return Ok(zeroize::Zeroizing::new(Vec::new()));
        };
        let binding = file_binding(&self.config.tenant, &row.patient, &row.record_id.0);
        Keyring::open_small(key, &sealed, &binding, &tail_label(&row.upload_id, row.segments)).map_err(Error::internal)
    }

    fn upload_info(&self, row: &UploadRow, key: &[u8; 32]) -> Result<FileInfo> {
        let binding = file_binding(&self.config.tenant, &row.patient, &row.record_id.0);
        let sealed = hex::decode(&row.info).map_err(Error::internal)?;
        let plain = Keyring::open_small(key, &sealed, &binding, &format!("upload-info {}", row.upload_id))
            .map_err(Error::internal)?;
        serde_json::from_slice(&plain).map_err(Error::internal)
    }

    fn put_upload(&self, row: &UploadRow) -> Result<()> {
        let id = upload_id_arg(&row.upload_id)?;
        let mut batch = self.db.batch();
        batch.put_cf(self.db.cf(Cf::Attachments), row_key(&id), serde_json::to_vec(row).map_err(Error::internal)?);
        self.db.write(batch)?;
        Ok(())
    }

    /// The upload's row, for its uploader only (anyone else: not found);
    /// an abandoned one is gone.
    fn own_upload(&self, caller: &Caller, upload: &[u8; 16]) -> Result<UploadRow> {
        let who = caller.require()?.to_string();
        let not_found = || Error::NotFound(format!("upload {}", hex::encode(upload)));
        let row: UploadRow = match self.db.get(Cf::Attachments, &row_key(upload))? {
            Some(v) => serde_json::from_slice(&v).map_err(Error::internal)?,
            None => return Err(not_found()),
        };
        if row.uploader != who {
            return Err(not_found());
        }
        if self.now_ms() > row.expires_ms() {
            return Err(Error::Gone { code: "upload-expired", detail: "the upload was abandoned; start again".into() });
        }
        Ok(row)
    }

    /// Starts a resumable upload of a `length`-byte file named `name` of
    /// type `media_type` to record `id`.
    pub async fn create_upload(
        &self,
        caller: &Caller,
        id: &RecordId,
        length: u64,
        name: &str,
        media_type: &str,
    ) -> Result<UploadState> {
        let (who, meta, entry) = self.attach_access(caller, id, "attachment.upload-start").await?;
        let name = name.trim();
        let checked = check_name(name).and_then(|()| {
            if length > self.config.max_attachment_bytes as u64 {
                return Err(Error::TooLarge(self.config.max_attachment_bytes));
            }
            sniff::check_declared(media_type, name).map_err(refusal)
        });
        let kind = self.audit_refusal(&entry, checked).await?;
        let me = who.to_string();
        let open = self.db.uploads()?.iter().filter(|u| u.uploader == me).count();
        if open >= MAX_OPEN_PER_UPLOADER {
            let full = Error::State {
                code: "upload-limit",
                detail: format!("at most {MAX_OPEN_PER_UPLOADER} unfinished uploads at once; finish or cancel one"),
            };
            return self.audited(entry, Err(full)).await;
        }
        let mut upload = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut upload);
        let uid = hex::encode(upload);
        let binding = file_binding(&self.config.tenant, &meta.patient, &id.0);
        // A type never compressed is sealed as its final stream as it
        // arrives (one pass); the others are spooled, then compressed.
        let direct = if kind.compressible() {
            None
        } else {
            let mut file_id = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut file_id);
            Some(DirectPlan {
                attachment_id: hex::encode(self.attachment_id_for(id, name)?),
                file_id: hex::encode(file_id),
            })
        };
        let purpose = key_purpose(&uid, direct.as_ref());
        let crate::envelope::DataKey { key, wrapped, kek_version } = self
            .keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .new_data_key(&binding, &purpose)
            .map_err(Error::internal)?;
        let info = FileInfo { name: name.to_string(), media_type: kind.media_type().to_string() };
        let sealed_info = Keyring::seal_small(
            &key,
            &serde_json::to_vec(&info).map_err(Error::internal)?,
            &binding,
            &format!("upload-info {uid}"),
        );
        let now = self.now_ms();
        let mut row = UploadRow {
            upload_id: uid,
            record_id: *id,
            patient: meta.patient.clone(),
            uploader: me,
            length,
            info: hex::encode(sealed_info),
            wrapped_key: hex::encode(wrapped),
            kek_version,
            segments: 0,
            offset: 0,
            spooled: 0,
            created_ms: now,
            touched_ms: now,
            direct,
        };
        if let Some(plan) = &row.direct {
            // The stream file first: a row never names a missing file (a
            // file without its row is swept).
            let binding = self.stream_binding(&row, plan);
            self.spool()?.create_stream(&upload, &key, &binding).map_err(Error::internal)?;
            row.spooled = stream::HEADER as u64;
        }
        self.put_upload(&row)?;
        self.audited(entry, Ok(())).await?;
        Ok(state(&row, None))
    }

    /// Where an upload stands (tus `HEAD`). An upload whose every byte is
    /// in but which a crash kept from completing completes now.
    pub async fn upload_status(&self, caller: &Caller, upload: &[u8; 16]) -> Result<UploadState> {
        let lock = self.record_lock(upload);
        let _one_piece = lock.lock().await;
        let row = self.own_upload(caller, upload)?;
        if row.offset == row.length {
            return self.complete_upload(caller, row).await;
        }
        Ok(state(&row, None))
    }

    /// Appends a piece at `offset` (tus `PATCH`): every byte of `body`
    /// that arrives is spooled and acknowledged — unless the piece has a
    /// `checksum`, which must then match all of it, or it runs past the
    /// file's length. The last piece completes the upload.
    pub async fn upload_piece<S, E>(
        &self,
        caller: &Caller,
        upload: &[u8; 16],
        offset: u64,
        checksum: Option<Checksum>,
        body: S,
    ) -> Result<UploadState>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        // One piece of an upload at a time (keyed by the upload's id in
        // the per-id lock table: ids are random 128-bit values).
        let lock = self.record_lock(upload);
        let _one_piece = lock.lock().await;
        let mut row = self.own_upload(caller, upload)?;
        if offset != row.offset {
            return Err(Error::State {
                code: "upload-offset",
                detail: format!("the upload stands at offset {}, not {offset}", row.offset),
            });
        }
        // The chain's rule again: consent revoked mid-upload stops it.
        let who = caller.require()?.clone();
        let meta = self.current(&row.record_id)?;
        self.authorize_on_record(crate::authz::Operation::Update, &row.record_id, &meta, &who)?;
        let key = self.spool_key(&row)?;
        let spool = self.spool()?;
        let mut resealed = false;
        let mut sink = match &row.direct {
            None => Sink::Spool {
                writer: spool.writer(upload, &key, row.position()).map_err(Error::internal)?,
                buf: Vec::with_capacity(MAX_SEGMENT.min((row.length - row.offset) as usize)),
            },
            Some(plan) => {
                let chunks = u32::try_from(row.segments).map_err(Error::internal)?;
                let binding = self.stream_binding(&row, plan);
                let writer = spool.stream_writer(upload, &key, &binding, chunks).map_err(Error::internal)?;
                resealed = writer.resealed();
                Sink::Stream { writer, tail: self.upload_tail(&row, &key)?, length: row.length }
            }
        };
        let mut hasher = checksum.as_ref().map(Hasher::of);
        let mut first = Vec::new();
        let mut overrun = false;
        let mut interrupted = None;
        let mut body = std::pin::pin!(body);
        while let Some(item) = body.next().await {
            let bytes = match item {
                Ok(b) => b,
                Err(e) => {
                    interrupted = Some(e.to_string());
                    break;
                }
            };
            if sink.received() + bytes.len() as u64 > row.length {
                overrun = true;
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&bytes);
            }
            if row.offset == 0 && first.len() < FIRST_BYTES {
                first.extend_from_slice(&bytes[..bytes.len().min(FIRST_BYTES - first.len())]);
            }
            sink.take(&bytes)?;
        }
        if overrun {
            // Nothing of this piece counts; the spool is cut back to the
            // committed position by the next writer.
            return Err(Error::bad(
                "upload-overrun",
                format!("the piece runs past the file's length of {} bytes", row.length),
            ));
        }
        if let (Some(c), Some(h)) = (checksum.as_ref(), hasher) {
            if interrupted.is_some() {
                return Err(Error::bad("upload-interrupted", "the piece was cut off before its checksum could match"));
            }
            if !h.matches(c) {
                return Err(Error::State {
                    code: "checksum-mismatch",
                    detail: "the piece does not match its Upload-Checksum; nothing of it was kept".into(),
                });
            }
        }
        // Durable before it is acknowledged: the file synced, then the
        // position (and a one-pass upload's partial chunk) committed.
        let mut batch = self.db.batch();
        let at = match sink {
            Sink::Spool { mut writer, buf } => {
                writer.push(&buf).map_err(Error::internal)?;
                writer.sync().map_err(Error::internal)?
            }
            Sink::Stream { mut writer, tail, .. } => {
                let chunks = u64::from(writer.sync().map_err(Error::internal)?);
                let cf = self.db.cf(Cf::Attachments);
                if tail.is_empty() {
                    batch.delete_cf(cf, tail_key(upload));
                } else {
                    let binding = file_binding(&self.config.tenant, &row.patient, &row.record_id.0);
                    let sealed = Keyring::seal_small(&key, &tail, &binding, &tail_label(&row.upload_id, chunks));
                    batch.put_cf(cf, tail_key(upload), sealed);
                }
                Position {
                    segments: chunks,
                    offset: chunks * CHUNK as u64 + tail.len() as u64,
                    bytes: stream::chunk_at(chunks),
                }
            }
        };
        // The first bytes against the declared type, before a large file
        // is spooled in full (zip-based types are checked at the end).
        if row.offset == 0 && (first.len() >= FIRST_BYTES || at.offset == row.length) {
            let info = self.upload_info(&row, &key)?;
            let declared = FileKind::from_media_type(&info.media_type);
            let mismatch =
                declared.filter(|k| k.has_leading_signature()).is_some_and(|k| FileKind::detect(&first) != Some(k));
            if mismatch {
                let e = sniff::check(&info.media_type, &info.name, &first).err().map(refusal).unwrap_or_else(|| {
                    Error::Unsupported {
                        code: "unsupported-attachment",
                        detail: "the content is not the declared type".into(),
                    }
                });
                self.drop_upload(upload)?;
                return Err(e);
            }
        }
        if let Some(why) = interrupted.as_deref() {
            tracing::info!(upload = %row.upload_id, received = at.offset - row.offset, why, "piece interrupted; kept what arrived");
        }
        row.segments = at.segments;
        row.offset = at.offset;
        row.spooled = at.bytes;
        row.touched_ms = self.now_ms();
        let id = upload_id_arg(&row.upload_id)?;
        batch.put_cf(self.db.cf(Cf::Attachments), row_key(&id), serde_json::to_vec(&row).map_err(Error::internal)?);
        self.db.write(batch)?;
        if let Some(plan) = &row.direct {
            if row.offset < row.length {
                self.send_parts(&row, plan, &meta, resealed).await;
            }
        }
        if row.offset == row.length {
            return self.complete_upload(caller, row).await;
        }
        Ok(state(&row, None))
    }

    /// Every byte is in: the upload becomes an attachment (or, refused,
    /// is deleted — nothing partial stays behind). The caller holds the
    /// upload's lock.
    async fn complete_upload(&self, caller: &Caller, row: UploadRow) -> Result<UploadState> {
        let upload = upload_id_arg(&row.upload_id)?;
        let key = self.spool_key(&row)?;
        let info = self.upload_info(&row, &key)?;
        let result = match &row.direct {
            Some(plan) => self.complete_direct(caller, &row, plan, &key, &info).await,
            None => {
                let mut spooled = self.spool()?.read(&upload, &key, row.position()).map_err(Error::internal)?;
                // Moved out, not copied (`attach` holds it as `Zeroizing` too).
                let bytes = std::mem::take(&mut *spooled);
                self.attach(caller, &row.record_id, &info.name, &info.media_type, bytes, Some(&row.upload_id)).await
            }
        };
        match result {
            Ok(attachment) => {
                let _ = self.spool()?.remove(&upload);
                Ok(state(&row, Some(attachment)))
            }
            // The store or the node could not take it now: the upload
            // stays, and completes on the next HEAD or empty PATCH.
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => Err(e),
            Err(e) => {
                self.drop_upload(&upload)?;
                Err(e)
            }
        }
    }

    /// A one-pass upload's completion: the last chunk sealed into the
    /// stream, which is then stored as it is.
    async fn complete_direct(
        &self,
        caller: &Caller,
        row: &UploadRow,
        plan: &DirectPlan,
        key: &[u8; 32],
        info: &FileInfo,
    ) -> Result<Attachment> {
        let upload = upload_id_arg(&row.upload_id)?;
        let spool = self.spool()?;
        let binding = self.stream_binding(row, plan);
        let chunks = u32::try_from(row.segments).map_err(Error::internal)?;
        let tail = self.upload_tail(row, key)?;
        if row.segments * CHUNK as u64 + tail.len() as u64 != row.length {
            return Err(Error::internal("a one-pass upload's committed chunks and tail do not make its length"));
        }
        let first = match chunks {
            0 => tail.clone(),
            _ => spool.stream_chunk(&upload, key, &binding, 0, false, CHUNK).map_err(Error::internal)?,
        };
        let mut writer = spool.stream_writer(&upload, key, &binding, chunks).map_err(Error::internal)?;
        if writer.resealed() {
            // What was sent of the stream is stale.
            let stale = self.file_parts.lock().unwrap_or_else(|p| p.into_inner()).remove(&upload);
            if let Some(stale) = stale {
                stale.abort().await;
            }
        }
        writer.push(&tail, true).map_err(Error::internal)?;
        writer.sync().map_err(Error::internal)?;
        drop(writer);
        let wrapped = hex::decode(&row.wrapped_key).map_err(Error::internal)?;
        let ids = |s: &str| -> Result<[u8; 16]> {
            hex::decode(s).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| Error::internal("a stored id"))
        };
        let path = spool.stream_path(&upload);
        let file = crate::attachments::SealedFile {
            name: &info.name,
            media_type: &info.media_type,
            first: &first,
            size: row.length,
            attachment_id: ids(&plan.attachment_id)?,
            file_id: ids(&plan.file_id)?,
            path: &path,
            dek: key,
            wrapped,
            kek_version: row.kek_version,
            upload: &row.upload_id,
        };
        if let Some(done) = self.attach_sealed(caller, &row.record_id, file).await? {
            return Ok(done);
        }
        // The name became another attachment meanwhile: the plaintext,
        // the two-pass way.
        let sealed = std::fs::read(&path).map_err(Error::internal)?;
        let mut bytes = stream::open(key, &binding, &sealed).map_err(Error::internal)?;
        let bytes = std::mem::take(&mut *bytes);
        self.attach(caller, &row.record_id, &info.name, &info.media_type, bytes, Some(&row.upload_id)).await
    }

    /// Sends a one-pass upload's new whole parts to an S3 store while the
    /// next piece arrives (nothing on local disk, where the finished file
    /// is linked). Best effort: what fails here is sent at completion.
    async fn send_parts(&self, row: &UploadRow, plan: &DirectPlan, meta: &crate::db::RecordMeta, resealed: bool) {
        let Ok(upload) = upload_id_arg(&row.upload_id) else { return };
        let (Some(objects), Ok(spool)) = (self.objects.as_deref(), self.spool()) else { return };
        let taken = self.file_parts.lock().unwrap_or_else(|p| p.into_inner()).remove(&upload);
        let parts = match taken {
            // The stream was resealed: what was sent of it is stale.
            Some(stale) if resealed => {
                stale.abort().await;
                None
            }
            other => other,
        };
        let parts = match parts {
            Some(p) => Some(p),
            None => {
                let Ok(file_id) = hex::decode(&plan.file_id).map(<[u8; 16]>::try_from) else { return };
                let Ok(Ok(key)) = file_id.map(|f| self.object_key(&row.record_id, meta, f)) else { return };
                match objects.start_file(&key, Some(&self.config.storage_class)).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(upload = %row.upload_id, error = %e, "could not start sending parts; the file goes whole at completion");
                        None
                    }
                }
            }
        };
        let Some(mut parts) = parts else { return };
        match parts.advance(&spool.stream_path(&upload), stream::chunk_at(row.segments)).await {
            Ok(()) => {
                self.file_parts.lock().unwrap_or_else(|p| p.into_inner()).insert(upload, parts);
            }
            Err(e) => {
                tracing::warn!(upload = %row.upload_id, error = %e, "sending parts failed; the file goes whole at completion");
                parts.abort().await;
            }
        }
    }

    fn drop_upload(&self, upload: &[u8; 16]) -> Result<()> {
        if let Some(parts) = self.file_parts.lock().unwrap_or_else(|p| p.into_inner()).remove(upload) {
            tokio::spawn(parts.abort());
        }
        let mut batch = self.db.batch();
        batch.delete_cf(self.db.cf(Cf::Attachments), row_key(upload));
        batch.delete_cf(self.db.cf(Cf::Attachments), tail_key(upload));
        self.db.write(batch)?;
        self.spool()?.remove(upload).map_err(Error::internal)
    }

    /// Cancels an upload (tus termination): its spool and row are deleted;
    /// other uploads go on.
    pub async fn cancel_upload(&self, caller: &Caller, upload: &[u8; 16]) -> Result<()> {
        let lock = self.record_lock(upload);
        let _one_piece = lock.lock().await;
        let row = self.own_upload(caller, upload)?;
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "attachment.upload-cancel");
        entry.patient = Some(row.patient.clone());
        entry.record_id = Some(row.record_id.bare_hex());
        self.drop_upload(upload)?;
        self.audited(entry, Ok(())).await
    }

    /// Deletes uploads untouched for [`ABANDONED_AFTER`], and spool files
    /// no upload owns (a crash between deleting a row and its file).
    /// Returns how many uploads were deleted. Run by a job.
    pub async fn sweep_uploads(&self) -> Result<usize> {
        let now = self.now_ms();
        let rows = self.db.uploads()?;
        let mut swept = 0;
        for row in &rows {
            if now > row.expires_ms() {
                let upload = upload_id_arg(&row.upload_id)?;
                let lock = self.record_lock(&upload);
                let _one_piece = lock.lock().await;
                self.drop_upload(&upload)?;
                let mut entry = crate::audit::AuditEntry::system("attachment.upload-abandoned", now);
                entry.patient = Some(row.patient.clone());
                entry.record_id = Some(row.record_id.bare_hex());
                self.audited(entry, Ok(())).await?;
                swept += 1;
            }
        }
        let live: std::collections::HashSet<String> = self.db.uploads()?.into_iter().map(|r| r.upload_id).collect();
        for orphan in self.spool()?.list().map_err(Error::internal)? {
            if !live.contains(&hex::encode(orphan)) {
                let lock = self.record_lock(&orphan);
                let _one_piece = lock.lock().await;
                // Checked again under the lock: a create may have raced.
                if self.db.get(Cf::Attachments, &row_key(&orphan))?.is_none() {
                    self.spool()?.remove(&orphan).map_err(Error::internal)?;
                }
            }
        }
        Ok(swept)
    }
}

fn state(row: &UploadRow, completed: Option<Attachment>) -> UploadState {
    UploadState {
        upload_id: row.upload_id.clone(),
        record_id: row.record_id,
        offset: row.offset,
        length: row.length,
        expires_ms: row.expires_ms(),
        completed,
    }
}
