//! Stream encryption of attachments: the STREAM construction (Hoang,
//! Reyhanitabar, Rogaway, Vizár 2015) over AES-256-GCM, as the `aead`
//! crate's `StreamBE32` implements it.
//!
//! A file is cut into chunks of [`CHUNK`] plaintext bytes; each is sealed
//! under the file's own data key with a nonce made of a random 7-byte
//! prefix, the chunk's 32-bit counter and a last-chunk flag. So a chunk
//! moved to another place fails to open (reordering), a stream cut after
//! any chunk but the one flagged last fails to finish (truncation), and
//! nothing may follow the last chunk. Every chunk's associated data is the
//! stream's header and the caller's binding (tenant, record, file,
//! version), so a stored object opens only as the file it was written as.
//!
//! Layout:
//!
//! ```text
//! header: "MASTRM01" (8) ‖ chunk size (u32 BE) ‖ nonce prefix (7)
//! chunk*: ciphertext of CHUNK bytes ‖ tag (16)      — every chunk but the last
//! last:   ciphertext of 0..=CHUNK bytes ‖ tag (16)  — always present
//! ```
//!
//! Ciphertext offsets follow from plaintext offsets ([`sealed_len`]), so
//! a resumed upload knows where the stored stream stands and a range read
//! knows which chunks to fetch. The data key is the caller's (the service
//! wraps it under the tenant's KEK, as it does for records).

use aes_gcm::aead::stream::{DecryptorBE32, NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes each chunk adds (its tag).
pub const TAG: usize = 16;
/// The header's length.
pub const HEADER: usize = 8 + 4 + PREFIX;
/// The nonce prefix's length (12-byte GCM nonce − 4-byte counter − flag).
const PREFIX: usize = 7;
const MAGIC: &[u8; 8] = b"MASTRM01";

/// Why a stream did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Not a stream of this format (or its header was changed).
    #[error("not a medanchor stream (bad header)")]
    Header,
    /// A chunk was changed, moved, or opened under another binding or key.
    #[error("chunk {0} does not authenticate")]
    Tampered(u32),
    /// The stream ends before its last chunk.
    #[error("the stream is truncated")]
    Truncated,
    /// Bytes follow the last chunk.
    #[error("bytes follow the stream's last chunk")]
    Trailing,
    /// More chunks than the 32-bit counter numbers (256 TiB).
    #[error("the stream is too long")]
    TooLong,
}

/// The length of the sealed stream of `plaintext` bytes.
pub fn sealed_len(plaintext: u64) -> u64 {
    // The last chunk holds 1..=CHUNK bytes (0 only for an empty file).
    let chunks = plaintext.div_ceil(CHUNK as u64).max(1);
    HEADER as u64 + plaintext + chunks * TAG as u64
}

/// Where chunk `index` of a sealed stream starts.
pub fn chunk_at(index: u64) -> u64 {
    HEADER as u64 + index * (CHUNK + TAG) as u64
}

/// One stream's chunks by position: chunk `index` sealed or opened where
/// it stands. A resumable upload writes its stream across requests and
/// restarts, so it cannot keep a running counter; the caller says which
/// chunk it seals and whether it is the last.
pub struct Chunks {
    stream: StreamBE32<Aes256Gcm>,
    header: [u8; HEADER],
    aad: Vec<u8>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks").finish_non_exhaustive()
    }
}

impl Chunks {
    /// A new stream under `key`, bound to `binding`, with a random nonce
    /// prefix (its header is [`Chunks::header`]).
    pub fn new(key: &[u8; 32], binding: &[u8]) -> Chunks {
        let mut prefix = [0u8; PREFIX];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut prefix);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&(CHUNK as u32).to_be_bytes());
        header[12..].copy_from_slice(&prefix);
        Chunks::with_header(key, binding, header)
    }

    /// The stream whose header is `header` (as read back from its file).
    pub fn from_header(key: &[u8; 32], binding: &[u8], header: &[u8]) -> Result<Chunks, StreamError> {
        let header: [u8; HEADER] = header.get(..HEADER).and_then(|h| h.try_into().ok()).ok_or(StreamError::Header)?;
        if &header[..8] != MAGIC || header[8..12] != (CHUNK as u32).to_be_bytes() {
            return Err(StreamError::Header);
        }
        Ok(Chunks::with_header(key, binding, header))
    }

    fn with_header(key: &[u8; 32], binding: &[u8], header: [u8; HEADER]) -> Chunks {
        let prefix: [u8; PREFIX] = header[12..].try_into().unwrap_or_else(|_| unreachable!("HEADER - 12 == PREFIX"));
        let stream = StreamBE32::from_aead(Aes256Gcm::new(key.into()), (&prefix).into());
        Chunks { stream, aad: aad(&header, binding), header }
    }

    /// The stream's header (its first bytes).
    pub fn header(&self) -> &[u8; HEADER] {
        &self.header
    }

    /// Seals `plaintext` (a whole [`CHUNK`], or at most one for the last
    /// chunk) as chunk `index`, appending the ciphertext to `out`.
    pub fn seal(&self, index: u32, last: bool, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        if index == u32::MAX || plaintext.len() > CHUNK || (!last && plaintext.len() != CHUNK) {
            return Err(StreamError::TooLong);
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        // Sealed in place, where it lands in `out` (no copy).
        let mut tail = Tail { vec: out, start };
        self.stream.encrypt_in_place(index, last, &self.aad, &mut tail).map_err(|_| StreamError::Tampered(index))
    }

    /// Opens chunk `index` (`sealed`: its ciphertext and tag).
    pub fn open(&self, index: u32, last: bool, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        self.stream
            .decrypt(index, last, Payload { msg: sealed, aad: &self.aad })
            .map(Zeroizing::new)
            .map_err(|_| StreamError::Tampered(index))
    }
}

/// The end of a vector, from `start`, as the AEAD's in-place buffer.
struct Tail<'a> {
    vec: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..]
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..]
    }
}

impl aes_gcm::aead::Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aes_gcm::aead::Result<()> {
        self.vec.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.vec.truncate(self.start + len);
    }
}

/// Seals a stream, chunk by chunk: feed it any amount of plaintext with
/// [`Sealer::update`], collect what it returns, then [`Sealer::finish`].
pub struct Sealer {
    chunks: Chunks,
    pending: Zeroizing<Vec<u8>>,
    next: u32,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("chunks", &self.next).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A stream under `key`, bound to `binding`, with a random nonce
    /// prefix. Returns the sealer; its header is the stream's first bytes
    /// ([`Sealer::header`]).
    pub fn new(key: &[u8; 32], binding: &[u8]) -> Sealer {
        Sealer { chunks: Chunks::new(key, binding), pending: Zeroizing::new(Vec::new()), next: 0 }
    }

    /// The stream's header.
    pub fn header(&self) -> &[u8; HEADER] {
        self.chunks.header()
    }

    /// Seals every whole chunk `plaintext` completes; keeps the rest for
    /// the next call. Returns the ciphertext of the chunks sealed.
    pub fn update(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::with_capacity((self.pending.len() + plaintext.len()) / CHUNK * (CHUNK + TAG));
        self.update_into(plaintext, &mut out)?;
        Ok(out)
    }

    /// [`Sealer::update`], appending the sealed chunks to `out` (a buffer
    /// the caller reuses or hands on, instead of a fresh one per call).
    pub fn update_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        let mut input = plaintext;
        // Fill the pending chunk first, then seal whole chunks straight
        // from the input (no copy), keeping the tail.
        if !self.pending.is_empty() {
            let take = (CHUNK - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == CHUNK && !input.is_empty() {
                let chunk = std::mem::take(&mut *self.pending);
                self.seal_next(&chunk, out)?;
            }
        }
        // A full chunk is sealed only once more input follows it: the last
        // chunk must be sealed as last, and only `finish` knows which.
        while input.len() > CHUNK {
            let (chunk, rest) = input.split_at(CHUNK);
            self.seal_next(chunk, out)?;
            input = rest;
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    fn seal_next(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        if self.next == u32::MAX - 1 {
            return Err(StreamError::TooLong);
        }
        self.chunks.seal(self.next, false, chunk, out)?;
        self.next += 1;
        Ok(())
    }

    /// Seals what is left as the last chunk (possibly empty).
    pub fn finish(self) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::with_capacity(self.pending.len() + TAG);
        self.chunks.seal(self.next, true, &self.pending, &mut out)?;
        Ok(out)
    }
}

/// Opens a stream chunk by chunk: feed it ciphertext as it arrives with
/// [`Opener::update`] (the header first), then [`Opener::finish`].
pub struct Opener {
    key: Zeroizing<[u8; 32]>,
    binding: Vec<u8>,
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    buf: Vec<u8>,
    chunks: u32,
}

impl Opener {
    /// An opener under `key` for a stream bound to `binding`.
    pub fn new(key: &[u8; 32], binding: &[u8]) -> Opener {
        Opener {
            key: Zeroizing::new(*key),
            binding: binding.to_vec(),
            dec: None,
            aad: Vec::new(),
            buf: Vec::new(),
            chunks: 0,
        }
    }

    /// Opens every chunk `ciphertext` completes but the last one seen so
    /// far (which may turn out to be the stream's last). Returns the
    /// plaintext opened.
    pub fn update(&mut self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        self.buf.extend_from_slice(ciphertext);
        if self.dec.is_none() {
            if self.buf.len() < HEADER {
                return Ok(Zeroizing::new(Vec::new()));
            }
            let header: [u8; HEADER] = self.buf[..HEADER].try_into().map_err(|_| StreamError::Header)?;
            if &header[..8] != MAGIC || header[8..12] != (CHUNK as u32).to_be_bytes() {
                return Err(StreamError::Header);
            }
            let prefix: [u8; PREFIX] = header[12..].try_into().map_err(|_| StreamError::Header)?;
            let cipher = Aes256Gcm::new((&*self.key).into());
            self.dec = Some(DecryptorBE32::from_aead(cipher, (&prefix).into()));
            self.aad = aad(&header, &self.binding);
            self.buf.drain(..HEADER);
        }
        let sealed = CHUNK + TAG;
        let whole = self.buf.len().saturating_sub(1) / sealed;
        let mut out = Zeroizing::new(Vec::with_capacity(whole * CHUNK));
        // Keep at least one whole chunk back: it may be the last. Chunks
        // are opened where they stand and the rest moved down once (not
        // once per chunk: that was quadratic in the size of a file).
        let mut at = 0;
        while self.buf.len() - at > sealed {
            let dec = self.dec.as_mut().ok_or(StreamError::Header)?;
            let plain = dec
                .decrypt_next(Payload { msg: &self.buf[at..at + sealed], aad: &self.aad })
                .map_err(|_| StreamError::Tampered(self.chunks))?;
            out.extend_from_slice(&plain);
            at += sealed;
            self.chunks = self.chunks.checked_add(1).ok_or(StreamError::TooLong)?;
        }
        self.buf.drain(..at);
        Ok(out)
    }

    /// Opens the last chunk: the stream must end exactly there.
    pub fn finish(mut self) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        let dec = self.dec.take().ok_or(StreamError::Truncated)?;
        if self.buf.len() < TAG {
            return Err(StreamError::Truncated);
        }
        if self.buf.len() > CHUNK + TAG {
            return Err(StreamError::Trailing);
        }
        let chunks = self.chunks;
        dec.decrypt_last(Payload { msg: &self.buf, aad: &self.aad }).map(Zeroizing::new).map_err(|_| {
            // A full-size chunk that is not flagged last: the stream was
            // cut after it.
            if self.buf.len() == CHUNK + TAG {
                StreamError::Truncated
            } else {
                StreamError::Tampered(chunks)
            }
        })
    }
}

/// Seals a whole buffer: header, chunks, last chunk.
pub fn seal(key: &[u8; 32], binding: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StreamError> {
    let mut s = Sealer::new(key, binding);
    let mut out = s.header().to_vec();
    out.extend(s.update(plaintext)?);
    out.extend(s.finish()?);
    Ok(out)
}

/// Opens a whole sealed buffer.
pub fn open(key: &[u8; 32], binding: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
    let mut o = Opener::new(key, binding);
    let mut out = o.update(sealed)?;
    out.extend_from_slice(&o.finish()?);
    Ok(out)
}

fn aad(header: &[u8; HEADER], binding: &[u8]) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&(binding.len() as u32).to_be_bytes());
    aad.extend_from_slice(binding);
    aad
}
