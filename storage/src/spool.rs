//! The spool of resumable uploads: the bytes of an unfinished upload,
//! encrypted, on local disk, until the upload completes.
//!
//! Every acknowledged chunk must survive a crash, yet nothing may sit in
//! plaintext. Each piece the node receives is appended as one AEAD
//! segment under the upload's own key:
//!
//! ```text
//! segment: ciphertext length (u32 BE) ‖ nonce (12, random) ‖ AES-256-GCM ciphertext ‖ tag
//! associated data: "medanchor spool v1" ‖ upload id ‖ segment index ‖ plaintext offset ‖ plaintext length
//! ```
//!
//! So a segment moved (reordering), dropped (truncation: the committed
//! [`Position`] counts segments and bytes), changed, or copied into
//! another upload fails to open. Nonces are random rather than counted
//! because a crash can leave a written but uncommitted segment that the
//! next append overwrites with other bytes at the same index: a counter
//! would then repeat a nonce under one key.
//!
//! The spool only appends and reads; what is acknowledged is the caller's
//! [`Position`], committed elsewhere after [`Writer::sync`]. A writer
//! opened at a position first cuts whatever a crash left beyond it.
//!
//! A file that will not be compressed need not be spooled and then sealed
//! again: its upload is written straight as the final object's STREAM
//! ([`crate::stream`]) in `{id}.stream`, whole chunks only, under the
//! attachment's own data key ([`StreamWriter`]). The partial chunk at the
//! end of each piece is the caller's to keep (sealed, with the committed
//! chunk count), and the last chunk is sealed once the length is reached;
//! the completed file is then the object itself, byte for byte.
//!
//! STREAM's nonces are counted, so a chunk position must never be sealed
//! twice with different bytes under one prefix. A chunk written but not
//! committed (a piece refused for its checksum, or cut by a crash after
//! the write) may be followed by other bytes at the same position, so a
//! writer that finds more than the committed chunks in the file reseals
//! the committed ones under a fresh prefix before anything is appended.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::stream::{self, Chunks};

const SEALED_CHUNK: usize = stream::CHUNK + stream::TAG;
const DOMAIN: &[u8] = b"medanchor spool v1";
/// The largest plaintext of one segment.
pub const MAX_SEGMENT: usize = 4 << 20;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Reading or writing the spool file.
    #[error("spool i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A segment does not open where it stands (changed, moved, foreign),
    /// or the file is shorter than its committed position.
    #[error("the spooled upload is damaged at segment {0}")]
    Damaged(u64),
}

/// How far an upload's spool stands: what was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Segments written.
    pub segments: u64,
    /// Plaintext bytes they hold (the upload's offset).
    pub offset: u64,
    /// Bytes of the spool file they take.
    pub bytes: u64,
}

/// A directory of spool files, one per upload (named by its id).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool in `dir` (created).
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool { dir: dir.to_path_buf() })
    }

    fn path(&self, upload: &[u8; 16]) -> PathBuf {
        self.dir.join(format!("{}.spool", hex(upload)))
    }

    /// Where `upload`'s stream file is (the completed object, once its
    /// last chunk is in).
    pub fn stream_path(&self, upload: &[u8; 16]) -> PathBuf {
        self.dir.join(format!("{}.stream", hex(upload)))
    }

    /// Creates `upload`'s stream file holding the header of a fresh
    /// stream under `key`, bound to `binding` (synced, with its directory
    /// entry).
    pub fn create_stream(&self, upload: &[u8; 16], key: &[u8; 32], binding: &[u8]) -> Result<(), SpoolError> {
        let chunks = Chunks::new(key, binding);
        let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(self.stream_path(upload))?;
        file.write_all(chunks.header())?;
        file.sync_data()?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// A writer appending chunks to `upload`'s stream, which holds
    /// `committed` chunks. Anything beyond them is cut; if there was
    /// anything, the committed chunks are resealed under a fresh nonce
    /// prefix first (see the module's notes).
    pub fn stream_writer(
        &self,
        upload: &[u8; 16],
        key: &[u8; 32],
        binding: &[u8],
        committed: u32,
    ) -> Result<StreamWriter, SpoolError> {
        let path = self.stream_path(upload);
        let want = stream::chunk_at(u64::from(committed));
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        if len < want {
            return Err(SpoolError::Damaged(u64::from(committed)));
        }
        let mut header = [0u8; stream::HEADER];
        file.read_exact(&mut header)?;
        let chunks = Chunks::from_header(key, binding, &header).map_err(|_| SpoolError::Damaged(0))?;
        let resealed = len > want;
        if resealed {
            drop(file);
            self.reseal(upload, key, binding, &chunks, committed)?;
            file = OpenOptions::new().read(true).write(true).open(&path)?;
            file.read_exact(&mut header)?;
        }
        let chunks = Chunks::from_header(key, binding, &header).map_err(|_| SpoolError::Damaged(0))?;
        file.seek(SeekFrom::Start(want))?;
        Ok(StreamWriter {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            chunks,
            next: committed,
            scratch: Vec::with_capacity(SEALED_CHUNK),
            resealed,
        })
    }

    /// Rewrites the first `committed` chunks under a fresh prefix, into a
    /// new file renamed over the old one (a crash leaves one or the other).
    fn reseal(
        &self,
        upload: &[u8; 16],
        key: &[u8; 32],
        binding: &[u8],
        old: &Chunks,
        committed: u32,
    ) -> Result<(), SpoolError> {
        let path = self.stream_path(upload);
        let tmp = path.with_extension("reseal");
        let fresh = Chunks::new(key, binding);
        let mut src = std::io::BufReader::with_capacity(1 << 20, File::open(&path)?);
        src.seek(SeekFrom::Start(stream::HEADER as u64))?;
        let mut dst = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        dst.write_all(fresh.header())?;
        let mut sealed = vec![0u8; SEALED_CHUNK];
        let mut out = Vec::with_capacity(SEALED_CHUNK);
        for index in 0..committed {
            src.read_exact(&mut sealed).map_err(|_| SpoolError::Damaged(u64::from(index)))?;
            let plain = old.open(index, false, &sealed).map_err(|_| SpoolError::Damaged(u64::from(index)))?;
            out.clear();
            fresh.seal(index, false, &plain, &mut out).map_err(|_| SpoolError::Damaged(u64::from(index)))?;
            dst.write_all(&out)?;
        }
        let file = dst.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Chunk `index` of `upload`'s stream, opened (the first bytes of a
    /// file, to check its type).
    pub fn stream_chunk(
        &self,
        upload: &[u8; 16],
        key: &[u8; 32],
        binding: &[u8],
        index: u32,
        last: bool,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, SpoolError> {
        let mut file = File::open(self.stream_path(upload))?;
        let mut header = [0u8; stream::HEADER];
        file.read_exact(&mut header)?;
        let chunks = Chunks::from_header(key, binding, &header).map_err(|_| SpoolError::Damaged(0))?;
        file.seek(SeekFrom::Start(stream::chunk_at(u64::from(index))))?;
        let mut sealed = vec![0u8; len.min(stream::CHUNK) + stream::TAG];
        file.read_exact(&mut sealed).map_err(|_| SpoolError::Damaged(u64::from(index)))?;
        chunks.open(index, last, &sealed).map_err(|_| SpoolError::Damaged(u64::from(index)))
    }

    /// A writer appending to `upload`'s spool at `at` (its committed
    /// position): anything beyond it is cut first.
    pub fn writer(&self, upload: &[u8; 16], key: &[u8; 32], at: Position) -> Result<Writer, SpoolError> {
        let path = self.path(upload);
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        if len < at.bytes {
            return Err(SpoolError::Damaged(at.segments));
        }
        if len > at.bytes {
            file.set_len(at.bytes)?;
        }
        if at.bytes == 0 {
            // A new file: its directory entry must survive a crash too.
            sync_dir(&self.dir)?;
        }
        file.seek(SeekFrom::Start(at.bytes))?;
        Ok(Writer {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            cipher: Aes256Gcm::new(key.into()),
            upload: *upload,
            at,
        })
    }

    /// The plaintext of `upload`'s spool up to `at`, every segment checked.
    ///
    /// Each segment is read straight into its place in the result and
    /// opened there (no second buffer: a 50 MB file is held once).
    pub fn read(&self, upload: &[u8; 16], key: &[u8; 32], at: Position) -> Result<Zeroizing<Vec<u8>>, SpoolError> {
        use aes_gcm::aead::AeadInPlace;
        let mut file = std::io::BufReader::with_capacity(64 * 1024, File::open(self.path(upload))?);
        let cipher = Aes256Gcm::new(key.into());
        let mut out = Zeroizing::new(Vec::with_capacity(at.offset as usize + MAX_SEGMENT + TAG));
        let mut consumed = 0u64;
        for index in 0..at.segments {
            let damaged = || SpoolError::Damaged(index);
            let mut len = [0u8; 4];
            file.read_exact(&mut len).map_err(|_| damaged())?;
            let len = u32::from_be_bytes(len) as usize;
            if !(NONCE + TAG..=NONCE + MAX_SEGMENT + TAG).contains(&len) {
                return Err(damaged());
            }
            let mut nonce = [0u8; NONCE];
            file.read_exact(&mut nonce).map_err(|_| damaged())?;
            let plain_len = len - NONCE - TAG;
            let start = out.len();
            out.resize(start + plain_len, 0);
            file.read_exact(&mut out[start..]).map_err(|_| damaged())?;
            let mut tag = [0u8; TAG];
            file.read_exact(&mut tag).map_err(|_| damaged())?;
            let aad = aad(upload, index, start as u64, plain_len as u64);
            cipher
                .decrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut out[start..], (&tag).into())
                .map_err(|_| damaged())?;
            consumed += (4 + len) as u64;
        }
        if consumed != at.bytes || out.len() as u64 != at.offset {
            return Err(SpoolError::Damaged(at.segments));
        }
        Ok(out)
    }

    /// Deletes `upload`'s spool and stream files (absent is fine).
    pub fn remove(&self, upload: &[u8; 16]) -> std::io::Result<()> {
        let path = self.stream_path(upload);
        for p in [self.path(upload), path.with_extension("reseal"), path] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The uploads that have a spool file.
    pub fn list(&self) -> std::io::Result<Vec<[u8; 16]>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = [".spool", ".stream", ".reseal"].iter().find_map(|s| name.strip_suffix(s)) else {
                continue;
            };
            let mut b = [0u8; 16];
            if id.len() == 32
                && (0..16).all(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).map(|v| b[i] = v).is_ok())
            {
                out.push(b);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Appends segments to one upload's spool.
pub struct Writer {
    file: std::io::BufWriter<File>,
    cipher: Aes256Gcm,
    upload: [u8; 16],
    at: Position,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("at", &self.at).finish_non_exhaustive()
    }
}

impl Writer {
    /// Seals `plaintext` (at most [`MAX_SEGMENT`] bytes; nothing for an
    /// empty piece) as the next segment and writes it (not yet synced).
    pub fn push(&mut self, plaintext: &[u8]) -> Result<(), SpoolError> {
        if plaintext.is_empty() {
            return Ok(());
        }
        assert!(plaintext.len() <= MAX_SEGMENT, "a segment holds at most MAX_SEGMENT bytes");
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad(&self.upload, self.at.segments, self.at.offset, plaintext.len() as u64);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| SpoolError::Damaged(self.at.segments))?;
        self.file.write_all(&((NONCE + ct.len()) as u32).to_be_bytes())?;
        self.file.write_all(&nonce)?;
        self.file.write_all(&ct)?;
        self.at.segments += 1;
        self.at.offset += plaintext.len() as u64;
        self.at.bytes += (4 + NONCE + ct.len()) as u64;
        Ok(())
    }

    /// Where the writer stands (including unsynced segments).
    pub fn position(&self) -> Position {
        self.at
    }

    /// Makes every pushed segment durable; returns the position to commit.
    pub fn sync(&mut self) -> Result<Position, SpoolError> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        Ok(self.at)
    }
}

/// Appends sealed chunks to one upload's stream file.
pub struct StreamWriter {
    file: std::io::BufWriter<File>,
    chunks: Chunks,
    next: u32,
    scratch: Vec<u8>,
    resealed: bool,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter").field("next", &self.next).finish_non_exhaustive()
    }
}

impl StreamWriter {
    /// Seals `plaintext` as the next chunk (a whole [`stream::CHUNK`], or
    /// the last one) and writes it (not yet synced).
    pub fn push(&mut self, plaintext: &[u8], last: bool) -> Result<(), SpoolError> {
        self.scratch.clear();
        let index = self.next;
        self.chunks
            .seal(index, last, plaintext, &mut self.scratch)
            .map_err(|_| SpoolError::Damaged(u64::from(index)))?;
        self.file.write_all(&self.scratch)?;
        self.next += 1;
        Ok(())
    }

    /// Whether opening this writer resealed the stream (its bytes, from
    /// the header on, are not what they were: anything sent of them is
    /// stale).
    pub fn resealed(&self) -> bool {
        self.resealed
    }

    /// Chunks written (including unsynced ones).
    pub fn chunks(&self) -> u32 {
        self.next
    }

    /// Makes every pushed chunk durable; returns the chunk count to commit.
    pub fn sync(&mut self) -> Result<u32, SpoolError> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        Ok(self.next)
    }
}

fn aad(upload: &[u8; 16], index: u64, offset: u64, len: u64) -> Vec<u8> {
    [DOMAIN, upload, &index.to_be_bytes(), &offset.to_be_bytes(), &len.to_be_bytes()].concat()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
