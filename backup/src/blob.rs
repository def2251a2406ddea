//! One stored file: compressed, then sealed.
//!
//! ```text
//! "MABLOB01" (8) ‖ salt (32) ‖ STREAM(zstd(file))
//! ```
//!
//! The STREAM ([`medanchor_storage::stream`]) is sealed under
//! `HMAC(backup key, salt)` — a fresh key per blob — and bound to the
//! blob's address, so a blob renamed to another address, cut short, with
//! chunks swapped or a byte flipped fails to open.

use std::io::{Read, Write};
use std::path::Path;

use medanchor_storage::stream::{Opener, Sealer};
use sha2::{Digest, Sha256};

use crate::key::BackupKey;
use crate::{BackupError, Result};

const MAGIC: &[u8; 8] = b"MABLOB01";
const HEADER: usize = 8 + 32;
const PIECE: usize = 1 << 20;
/// zstd's level: fast, and most of a node's bytes (ciphertext, SSTs of
/// hashes) do not compress much harder anyway.
const LEVEL: i32 = 3;

fn binding(address: &str) -> Vec<u8> {
    [&b"medanchor backup blob "[..], address.as_bytes()].concat()
}

/// The SHA-256 and size of a file.
pub fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let mut file = std::fs::File::open(path).map_err(crate::io(path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; PIECE];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(crate::io(path))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hash.finalize().into(), size))
}

/// Seals the stream it is written into, and writes the ciphertext on.
struct SealWriter<W: Write> {
    sealer: Sealer,
    out: W,
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let sealed = self.sealer.update(buf).map_err(std::io::Error::other)?;
        self.out.write_all(&sealed)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Compresses and seals `src` as blob `address` into `dst` (created,
/// synced). Returns the blob's size.
pub fn seal_file(key: &BackupKey, address: &str, src: &Path, dst: &Path) -> Result<u64> {
    let mut input = std::fs::File::open(src).map_err(crate::io(src))?;
    let out = std::fs::File::create(dst).map_err(crate::io(dst))?;
    let mut out = std::io::BufWriter::with_capacity(PIECE, out);
    let mut salt = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    let sealer = Sealer::new(&key.blob_key(&salt), &binding(address));
    out.write_all(MAGIC)
        .and_then(|()| out.write_all(&salt))
        .and_then(|()| out.write_all(sealer.header()))
        .map_err(crate::io(dst))?;
    let mut zstd = zstd::stream::write::Encoder::new(SealWriter { sealer, out }, LEVEL).map_err(crate::io(dst))?;
    std::io::copy(&mut input, &mut zstd).map_err(crate::io(src))?;
    let SealWriter { sealer, mut out } = zstd.finish().map_err(crate::io(dst))?;
    let last = sealer
        .finish()
        .map_err(|e| BackupError::Io { path: dst.display().to_string(), source: std::io::Error::other(e) })?;
    out.write_all(&last).map_err(crate::io(dst))?;
    let file =
        out.into_inner().map_err(|e| BackupError::Io { path: dst.display().to_string(), source: e.into_error() })?;
    file.sync_all().map_err(crate::io(dst))?;
    file.metadata().map(|m| m.len()).map_err(crate::io(dst))
}

/// Hashes what it is written, and passes it on.
pub struct HashWriter<W: Write> {
    hash: Sha256,
    size: u64,
    inner: W,
}

impl<W: Write> HashWriter<W> {
    /// Hashing on the way to `inner`.
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter { hash: Sha256::new(), size: 0, inner }
    }

    /// The SHA-256 and size of what was written, and the inner writer.
    pub fn finish(self) -> ([u8; 32], u64, W) {
        (self.hash.finalize().into(), self.size, self.inner)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Opens blob `address` at `path` and writes the original file into
/// `sink`. A blob that does not authenticate is [`BackupError::Tampered`]
/// (nothing written to `sink` past the last authenticated chunk).
pub fn open_blob<W: Write>(key: &BackupKey, address: &str, path: &Path, sink: W) -> Result<W> {
    let tampered = || BackupError::Tampered(address.to_string());
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::Missing(address.to_string())),
        Err(e) => return Err(crate::io(path)(e)),
    };
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).map_err(|_| tampered())?;
    if &header[..8] != MAGIC {
        return Err(tampered());
    }
    let salt: [u8; 32] = header[8..].try_into().map_err(|_| tampered())?;
    let mut opener = Opener::new(&key.blob_key(&salt), &binding(address));
    let mut zstd = zstd::stream::write::Decoder::new(sink).map_err(crate::io(path))?;
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = file.read(&mut buf).map_err(crate::io(path))?;
        if n == 0 {
            break;
        }
        let plain = opener.update(&buf[..n]).map_err(|_| tampered())?;
        zstd.write_all(&plain).map_err(|_| tampered())?;
    }
    let last = opener.finish().map_err(|_| tampered())?;
    zstd.write_all(&last).map_err(|_| tampered())?;
    zstd.flush().map_err(|_| tampered())?;
    Ok(zstd.into_inner())
}
