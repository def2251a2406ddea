//! STREAM (Hoang, Reyhanitabar, Rogaway and Vizár's online authenticated
//! encryption) over XChaCha20-Poly1305 in 64 KiB chunks — the construction
//! of the `age` format, with a 24-byte nonce: a random 19-byte prefix, a
//! 32-bit big-endian chunk counter and a last-chunk flag. A chunk cut off,
//! dropped, repeated or moved, or a stream cut at a chunk boundary, does
//! not open. Each blob has a key of its own, so prefixes never meet.

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Poly1305's tag, per chunk.
pub const TAG: usize = 16;
/// The nonce prefix stored with the stream.
pub const PREFIX: usize = 19;

/// A chunk did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a chunk does not authenticate")]
pub struct Unauthentic;

/// Seals what it is given, chunk by chunk.
pub struct Sealer {
    enc: Option<EncryptorBE32<XChaCha20Poly1305>>,
    buf: Vec<u8>,
    aad: Vec<u8>,
}

impl Sealer {
    /// A stream under `key` with nonce prefix `prefix`, every chunk bound
    /// to `aad`.
    pub fn new(key: &[u8; 32], prefix: &[u8; PREFIX], aad: &[u8]) -> Sealer {
        let aead = XChaCha20Poly1305::new(key.into());
        Sealer {
            enc: Some(EncryptorBE32::from_aead(aead, prefix.into())),
            buf: Vec::with_capacity(2 * CHUNK),
            aad: aad.to_vec(),
        }
    }

    /// Seals every chunk `data` completes into `out`; a full chunk waits
    /// until more comes (the last chunk is flagged as such).
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Unauthentic> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while self.buf.len() - start > CHUNK {
            let enc = self.enc.as_mut().ok_or(Unauthentic)?;
            let sealed = enc
                .encrypt_next(Payload { msg: &self.buf[start..start + CHUNK], aad: &self.aad })
                .map_err(|_| Unauthentic)?;
            out.extend_from_slice(&sealed);
            start += CHUNK;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Seals the rest as the last chunk (possibly empty).
    pub fn finish(mut self) -> Result<Vec<u8>, Unauthentic> {
        let enc = self.enc.take().ok_or(Unauthentic)?;
        enc.encrypt_last(Payload { msg: &self.buf, aad: &self.aad }).map_err(|_| Unauthentic)
    }
}

/// Opens a stream, chunk by chunk.
pub struct Opener {
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    buf: Vec<u8>,
    aad: Vec<u8>,
}

impl Opener {
    /// The opener of a [`Sealer`]'s stream.
    pub fn new(key: &[u8; 32], prefix: &[u8; PREFIX], aad: &[u8]) -> Opener {
        let aead = XChaCha20Poly1305::new(key.into());
        Opener {
            dec: Some(DecryptorBE32::from_aead(aead, prefix.into())),
            buf: Vec::with_capacity(2 * (CHUNK + TAG)),
            aad: aad.to_vec(),
        }
    }

    /// Opens every chunk `data` completes (a full one waits: it may be the
    /// last) and appends its plaintext to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Unauthentic> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while self.buf.len() - start > CHUNK + TAG {
            let dec = self.dec.as_mut().ok_or(Unauthentic)?;
            let plain = dec
                .decrypt_next(Payload { msg: &self.buf[start..start + CHUNK + TAG], aad: &self.aad })
                .map_err(|_| Unauthentic)?;
            out.extend_from_slice(&plain);
            start += CHUNK + TAG;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Opens the last chunk.
    pub fn finish(mut self) -> Result<Vec<u8>, Unauthentic> {
        let dec = self.dec.take().ok_or(Unauthentic)?;
        dec.decrypt_last(Payload { msg: &self.buf, aad: &self.aad }).map_err(|_| Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(data: &[u8], step: usize) -> Vec<u8> {
        let mut s = Sealer::new(&[1; 32], &[2; PREFIX], b"aad");
        let mut out = Vec::new();
        for piece in data.chunks(step.max(1)) {
            s.update(piece, &mut out).expect("seal");
        }
        out.extend(s.finish().expect("finish"));
        out
    }

    fn open(sealed: &[u8], step: usize) -> Result<Vec<u8>, Unauthentic> {
        let mut o = Opener::new(&[1; 32], &[2; PREFIX], b"aad");
        let mut out = Vec::new();
        for piece in sealed.chunks(step.max(1)) {
            o.update(piece, &mut out)?;
        }
        out.extend(o.finish()?);
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_boundary_and_catches_every_change() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            for step in [1000, CHUNK, 3 * CHUNK] {
                let sealed = seal(&data, step);
                assert_eq!(sealed.len(), len + TAG * (len / CHUNK + usize::from(len % CHUNK != 0 || len == 0)));
                assert_eq!(open(&sealed, 777).expect("open"), data, "{len} by {step}");
            }
        }
        let data = vec![9u8; 3 * CHUNK + 5];
        let sealed = seal(&data, 4096);
        let mut flipped = sealed.clone();
        flipped[CHUNK + 3] ^= 1;
        let c = CHUNK + TAG;
        let mut swapped = sealed.clone();
        swapped[..c].copy_from_slice(&sealed[c..2 * c]);
        swapped[c..2 * c].copy_from_slice(&sealed[..c]);
        for (what, bad) in [
            ("a flipped byte", flipped),
            ("two chunks swapped", swapped),
            ("cut at a chunk boundary", sealed[..3 * c].to_vec()),
            ("cut inside a chunk", sealed[..sealed.len() - 3].to_vec()),
            ("a chunk dropped", [&sealed[..c], &sealed[2 * c..]].concat()),
        ] {
            assert_eq!(open(&bad, 5000), Err(Unauthentic), "{what}");
        }
        let mut other = Opener::new(&[1; 32], &[2; PREFIX], b"other aad");
        let mut out = Vec::new();
        let refused = other.update(&sealed, &mut out).and_then(|()| other.finish().map(|_| ()));
        assert_eq!(refused, Err(Unauthentic), "bound to its aad");
    }
}
