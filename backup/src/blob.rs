//! One stored file: compressed, then sealed.
//!
//! ```text
//! "MABLOB02" (8) ‖ salt (32) ‖ nonce prefix (19) ‖ STREAM(zstd(file))
//! ```
//!
//! The STREAM ([`crate::stream`]: XChaCha20-Poly1305, 64 KiB chunks, the
//! `age` format's construction) is sealed under `HMAC(backup key, salt)` —
//! a fresh key per blob — and bound to the blob's address, so a blob
//! renamed to another address, cut short, with chunks swapped or a byte
//! flipped fails to open. Blobs of the first format (`MABLOB01`: the
//! storage crate's STREAM over AES-256-GCM) still open.

use std::io::{Read, Write};
use std::path::Path;

use crate::stream::{Opener, Sealer, PREFIX};
use sha2::{Digest, Sha256};

use crate::key::BackupKey;
use crate::{BackupError, Result};

const MAGIC: &[u8; 8] = b"MABLOB02";
const MAGIC_V1: &[u8; 8] = b"MABLOB01";
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
    /// Reused for each write's sealed chunks.
    sealed: Vec<u8>,
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sealed.clear();
        self.sealer.update(buf, &mut self.sealed).map_err(std::io::Error::other)?;
        self.out.write_all(&self.sealed)?;
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
    let mut prefix = [0u8; PREFIX];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut prefix);
    let sealer = Sealer::new(&key.blob_key(&salt), &prefix, &binding(address));
    out.write_all(MAGIC)
        .and_then(|()| out.write_all(&salt))
        .and_then(|()| out.write_all(&prefix))
        .map_err(crate::io(dst))?;
    let writer = SealWriter { sealer, out, sealed: Vec::with_capacity(PIECE) };
    let mut zstd = zstd::stream::write::Encoder::new(writer, LEVEL).map_err(crate::io(dst))?;
    std::io::copy(&mut input, &mut zstd).map_err(crate::io(src))?;
    let SealWriter { sealer, mut out, .. } = zstd.finish().map_err(crate::io(dst))?;
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
    let mut magic = [0u8; 8];
    let mut salt = [0u8; 32];
    file.read_exact(&mut magic).and_then(|()| file.read_exact(&mut salt)).map_err(|_| tampered())?;
    let blob_key = key.blob_key(&salt);
    let mut zstd = zstd::stream::write::Decoder::new(sink).map_err(crate::io(path))?;
    let mut buf = vec![0u8; PIECE];
    if &magic == MAGIC_V1 {
        // The first format: the storage crate's STREAM (AES-256-GCM).
        let mut opener = medanchor_storage::stream::Opener::new(&blob_key, &binding(address));
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
    } else if &magic == MAGIC {
        let mut prefix = [0u8; PREFIX];
        file.read_exact(&mut prefix).map_err(|_| tampered())?;
        let mut opener = Opener::new(&blob_key, &prefix, &binding(address));
        let mut plain = Vec::with_capacity(PIECE + 64 * 1024);
        loop {
            let n = file.read(&mut buf).map_err(crate::io(path))?;
            if n == 0 {
                break;
            }
            plain.clear();
            opener.update(&buf[..n], &mut plain).map_err(|_| tampered())?;
            zstd.write_all(&plain).map_err(|_| tampered())?;
        }
        let last = opener.finish().map_err(|_| tampered())?;
        zstd.write_all(&last).map_err(|_| tampered())?;
    } else {
        return Err(tampered());
    }
    zstd.flush().map_err(|_| tampered())?;
    Ok(zstd.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob of the first format (the storage crate's AES-256-GCM STREAM)
    /// still opens; the current format is what `seal_file` writes.
    #[test]
    fn both_formats_open_and_the_current_one_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = BackupKey::generate();
        let file: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let src = dir.path().join("src");
        std::fs::write(&src, &file).expect("src");

        let current = dir.path().join("current");
        seal_file(&key, "addr", &src, &current).expect("seal");
        assert_eq!(&std::fs::read(&current).expect("read")[..8], MAGIC);
        assert_eq!(open_blob(&key, "addr", &current, Vec::new()).expect("open"), file);
        assert!(matches!(open_blob(&key, "other", &current, Vec::new()), Err(BackupError::Tampered(_))));

        let salt = [3u8; 32];
        let mut sealer = medanchor_storage::stream::Sealer::new(&key.blob_key(&salt), &binding("addr"));
        let mut old = [&MAGIC_V1[..], &salt, sealer.header()].concat();
        let compressed = zstd::encode_all(&file[..], LEVEL).expect("zstd");
        old.extend(sealer.update(&compressed).expect("seal"));
        old.extend(sealer.finish().expect("finish"));
        let v1 = dir.path().join("v1");
        std::fs::write(&v1, &old).expect("v1");
        assert_eq!(open_blob(&key, "addr", &v1, Vec::new()).expect("open v1"), file);
        let n = old.len();
        old[n - 5] ^= 1;
        std::fs::write(&v1, &old).expect("v1");
        assert!(matches!(open_blob(&key, "addr", &v1, Vec::new()), Err(BackupError::Tampered(_))));
    }
}
