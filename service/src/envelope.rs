//! Envelope encryption of record payloads.
//!
//! Each record version gets a fresh random 256-bit data key (DEK). The
//! payload is sealed with AES-256-GCM under the DEK; the DEK is sealed
//! ("wrapped") with AES-256-GCM under a versioned key-encryption key
//! (KEK). Both seals bind the same associated data — tenant, patient,
//! record id and version — so a ciphertext or a wrapped key moved to
//! another record, patient or version fails to open instead of decrypting
//! under the wrong identity.
//!
//! What is stored and anchored: the blob is `nonce (12) ‖ ciphertext ‖ tag
//! (16)`; the anchor on-chain is SHA-256 of exactly those bytes, so an
//! auditor can check integrity without any key, and the chain learns
//! nothing about the plaintext (a hash of a short plaintext could be
//! brute-forced; a hash of ciphertext under a random key cannot).
//!
//! KEKs rotate: [`Keyring::rotate`] adds a version, new DEKs are wrapped
//! under it, old versions stay to unwrap old DEKs, and [`Keyring::rewrap`]
//! moves a DEK to the newest KEK without touching the payload. Key bytes
//! are zeroized on drop and never formatted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// Why sealing or opening failed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The ciphertext, the wrapped key or the associated data was altered,
    /// or belongs to another record.
    #[error("payload does not authenticate (tampered, or not this record's)")]
    Tampered,
    /// The KEK version that wrapped this DEK is not in the keyring.
    #[error("key-encryption key version {0} is not in the keyring")]
    UnknownKek(u32),
    /// The keyring directory could not be read or written.
    #[error("keyring {path}: {message}")]
    Keyring {
        /// The directory.
        path: String,
        /// What failed (no key bytes).
        message: String,
    },
}

/// Who a payload belongs to: bound into both seals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The deployment (one node may serve several organisations).
    pub tenant: &'a str,
    /// The patient's principal.
    pub patient: &'a str,
    /// The record id.
    pub record_id: &'a [u8; 16],
    /// The record version.
    pub version: u64,
}

impl Binding<'_> {
    /// The associated data of a seal for `purpose` under this binding.
    pub fn aad(&self, purpose: &str) -> Vec<u8> {
        // Length-prefixed fields: no two bindings encode alike.
        let mut out = Vec::new();
        for part in [purpose.as_bytes(), self.tenant.as_bytes(), self.patient.as_bytes(), self.record_id] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }
}

/// A fresh data key and its wrapped form ([`Keyring::new_data_key`]).
pub struct DataKey {
    /// The key.
    pub key: Zeroizing<[u8; 32]>,
    /// The key wrapped under the KEK.
    pub wrapped: Vec<u8>,
    /// The KEK's version.
    pub kek_version: u32,
}

/// A sealed payload: the blob to store, and the wrapped DEK to keep beside
/// it (in the API's database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `nonce ‖ ciphertext ‖ tag`: stored write-once; SHA-256 of it is the anchor.
    pub blob: Vec<u8>,
    /// The DEK sealed under the KEK: `nonce ‖ ciphertext ‖ tag`.
    pub wrapped_key: Vec<u8>,
    /// Which KEK wrapped it.
    pub kek_version: u32,
}

/// A payload sealed in place: the caller's buffer now holds the ciphertext;
/// the stored blob is `nonce ‖ buffer ‖ tag` ([`SealedInPlace::parts`]),
/// byte for byte what [`Keyring::seal`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInPlace {
    /// The payload's nonce (the blob's first 12 bytes).
    pub nonce: [u8; 12],
    /// The GCM tag (the blob's last 16 bytes).
    pub tag: [u8; 16],
    /// The DEK sealed under the KEK: `nonce ‖ ciphertext ‖ tag`.
    pub wrapped_key: Vec<u8>,
    /// Which KEK wrapped it.
    pub kek_version: u32,
}

impl SealedInPlace {
    /// The blob as its three parts around `ciphertext` (the sealed buffer).
    pub fn parts<'a>(&'a self, ciphertext: &'a [u8]) -> [&'a [u8]; 3] {
        [&self.nonce, ciphertext, &self.tag]
    }
}

/// The KEK versions, loaded from a key directory kept apart from the data.
pub struct Keyring {
    dir: Option<PathBuf>,
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("versions", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

/// `nonce ‖ ciphertext ‖ tag` in one buffer sized once: a large payload
/// costs one fresh allocation, not two (fresh pages are the dominant cost
/// of sealing tens of MiB).
fn seal_with(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + plaintext.len() + 16);
    out.extend_from_slice(&[0u8; 12]);
    out.extend_from_slice(plaintext);
    let (nonce, tag) = seal_in_place_with(key, &mut out[12..], aad);
    out[..12].copy_from_slice(&nonce);
    out.extend_from_slice(&tag);
    out
}

/// Encrypts `buf` in place under `key` with a fresh nonce; the nonce and tag.
fn seal_in_place_with(key: &[u8; 32], buf: &mut [u8], aad: &[u8]) -> ([u8; 12], [u8; 16]) {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, buf)
        .expect("AES-GCM encryption only fails past 64 GiB");
    (nonce, tag.into())
}

fn open_with(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < 12 + 16 {
        return Err(EnvelopeError::Tampered);
    }
    let (nonce, ct) = sealed.split_at(12);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| EnvelopeError::Tampered)
}

impl Keyring {
    /// A keyring held only in memory (tests, benchmarks) with one KEK.
    pub fn ephemeral() -> Keyring {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(k.as_mut());
        Keyring { dir: None, keys: BTreeMap::from([(1, k)]) }
    }

    /// Loads `dir/kek-<version>.key` files (hex), creating version 1 if
    /// the directory is empty. Files are written 0600.
    pub fn open(dir: &Path) -> Result<Keyring, EnvelopeError> {
        let err = |message: String| EnvelopeError::Keyring { path: dir.display().to_string(), message };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| err(e.to_string()))? {
            let entry = entry.map_err(|e| err(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix("kek-").and_then(|n| n.strip_suffix(".key")) else { continue };
            let version: u32 = version.parse().map_err(|_| err(format!("{name}: version is not a number")))?;
            let text = Zeroizing::new(std::fs::read_to_string(entry.path()).map_err(|e| err(e.to_string()))?);
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), key.as_mut())
                .map_err(|_| err(format!("{name} is not 32 bytes of hex")))?;
            keys.insert(version, key);
        }
        let mut ring = Keyring { dir: Some(dir.to_path_buf()), keys };
        if ring.keys.is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    /// The newest KEK version.
    pub fn current(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// Every version held.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Adds a new KEK version (persisted first, if the keyring has a
    /// directory) and makes it current. Returns it.
    pub fn rotate(&mut self) -> Result<u32, EnvelopeError> {
        let version = self.current() + 1;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut());
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("kek-{version}.key"));
            let err = |message: String| EnvelopeError::Keyring { path: path.display().to_string(), message };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(|e| err(e.to_string()))?;
            let text = Zeroizing::new(hex::encode(AsRef::<[u8]>::as_ref(&key)));
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| err(e.to_string()))?;
            file.sync_all().map_err(|e| err(e.to_string()))?;
        }
        self.keys.insert(version, key);
        Ok(version)
    }

    fn kek(&self, version: u32) -> Result<&[u8; 32], EnvelopeError> {
        self.keys.get(&version).map(|k| &**k).ok_or(EnvelopeError::UnknownKek(version))
    }

    /// Seals `plaintext` for `binding` with a fresh DEK under the current KEK.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Sealed, EnvelopeError> {
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(dek.as_mut());
        let blob = seal_with(&dek, plaintext, &binding.aad("payload"));
        let kek_version = self.current();
        let wrapped_key = seal_with(self.kek(kek_version)?, dek.as_ref(), &binding.aad("dek"));
        Ok(Sealed { blob, wrapped_key, kek_version })
    }

    /// [`Keyring::seal`] without a copy: `buf` (the plaintext) becomes the
    /// ciphertext. For large payloads, whose fresh buffers cost more than
    /// the cipher.
    pub fn seal_in_place(&self, binding: &Binding<'_>, buf: &mut [u8]) -> Result<SealedInPlace, EnvelopeError> {
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(dek.as_mut());
        let kek_version = self.current();
        let kek = self.kek(kek_version)?;
        let (nonce, tag) = seal_in_place_with(&dek, buf, &binding.aad("payload"));
        let wrapped_key = seal_with(kek, dek.as_ref(), &binding.aad("dek"));
        Ok(SealedInPlace { nonce, tag, wrapped_key, kek_version })
    }

    fn unwrap_dek(
        &self,
        binding: &Binding<'_>,
        wrapped: &[u8],
        kek_version: u32,
    ) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let dek = Zeroizing::new(open_with(self.kek(kek_version)?, wrapped, &binding.aad("dek"))?);
        let mut out = Zeroizing::new([0u8; 32]);
        if dek.len() != 32 {
            return Err(EnvelopeError::Tampered);
        }
        out.copy_from_slice(&dek);
        Ok(out)
    }

    /// A fresh data key for a payload sealed elsewhere (an attachment's
    /// stream), wrapped under the current KEK for `binding` and `purpose`.
    pub fn new_data_key(&self, binding: &Binding<'_>, purpose: &str) -> Result<DataKey, EnvelopeError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut());
        let kek_version = self.current();
        let wrapped = seal_with(self.kek(kek_version)?, key.as_ref(), &binding.aad(purpose));
        Ok(DataKey { key, wrapped, kek_version })
    }

    /// The data key [`Keyring::new_data_key`] wrapped.
    pub fn open_data_key(
        &self,
        binding: &Binding<'_>,
        purpose: &str,
        wrapped: &[u8],
        kek_version: u32,
    ) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let dek = Zeroizing::new(open_with(self.kek(kek_version)?, wrapped, &binding.aad(purpose))?);
        <[u8; 32]>::try_from(&dek[..]).map(Zeroizing::new).map_err(|_| EnvelopeError::Tampered)
    }

    /// Seals a small value under a data key (an attachment's name and type).
    pub fn seal_small(dek: &[u8; 32], plaintext: &[u8], binding: &Binding<'_>, purpose: &str) -> Vec<u8> {
        seal_with(dek, plaintext, &binding.aad(purpose))
    }

    /// Opens what [`Keyring::seal_small`] sealed.
    pub fn open_small(
        dek: &[u8; 32],
        sealed: &[u8],
        binding: &Binding<'_>,
        purpose: &str,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        Ok(Zeroizing::new(open_with(dek, sealed, &binding.aad(purpose))?))
    }

    /// Opens a sealed payload.
    pub fn open_sealed(&self, binding: &Binding<'_>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let dek = self.unwrap_dek(binding, &sealed.wrapped_key, sealed.kek_version)?;
        Ok(Zeroizing::new(open_with(&dek, &sealed.blob, &binding.aad("payload"))?))
    }

    /// Re-wraps a data key of [`Keyring::new_data_key`] under the current
    /// KEK. Returns the new wrapped key and its KEK version.
    pub fn rewrap_data_key(
        &self,
        binding: &Binding<'_>,
        purpose: &str,
        wrapped: &[u8],
        kek_version: u32,
    ) -> Result<(Vec<u8>, u32), EnvelopeError> {
        let key = self.open_data_key(binding, purpose, wrapped, kek_version)?;
        let current = self.current();
        Ok((seal_with(self.kek(current)?, key.as_ref(), &binding.aad(purpose)), current))
    }

    /// Re-wraps a DEK under the current KEK without decrypting the payload.
    /// Returns the new wrapped key and its KEK version.
    pub fn rewrap(
        &self,
        binding: &Binding<'_>,
        wrapped: &[u8],
        kek_version: u32,
    ) -> Result<(Vec<u8>, u32), EnvelopeError> {
        let dek = self.unwrap_dek(binding, wrapped, kek_version)?;
        let current = self.current();
        Ok((seal_with(self.kek(current)?, dek.as_ref(), &binding.aad("dek")), current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(patient: &'a str, id: &'a [u8; 16], version: u64) -> Binding<'a> {
        Binding { tenant: "t", patient, record_id: id, version }
    }

    #[test]
    fn round_trip_and_every_substitution_fails() {
        let ring = Keyring::ephemeral();
        let id = [1u8; 16];
        let b = binding("ST1", &id, 1);
        let sealed = ring.seal(&b, b"blood pressure 120/80").expect("seal");
        assert_eq!(&**ring.open_sealed(&b, &sealed).expect("open"), b"blood pressure 120/80");
        assert!(!sealed.blob.windows(5).any(|w| w == b"blood"), "plaintext must not appear in the blob");
        let other_id = [2u8; 16];
        let wrong: Vec<Binding<'_>> = vec![
            binding("ST2", &id, 1),
            binding("ST1", &other_id, 1),
            binding("ST1", &id, 2),
            Binding { tenant: "u", ..b.clone() },
        ];
        for w in &wrong {
            assert_eq!(ring.open_sealed(w, &sealed), Err(EnvelopeError::Tampered), "{w:?}");
        }
        for i in [0, 12, sealed.blob.len() - 1] {
            let mut t = sealed.clone();
            t.blob[i] ^= 1;
            assert_eq!(ring.open_sealed(&b, &t), Err(EnvelopeError::Tampered), "blob byte {i}");
        }
        let mut t = sealed.clone();
        t.wrapped_key[20] ^= 1;
        assert_eq!(ring.open_sealed(&b, &t), Err(EnvelopeError::Tampered));
        let mut t = sealed.clone();
        t.blob.truncate(10);
        assert_eq!(ring.open_sealed(&b, &t), Err(EnvelopeError::Tampered));
        // Same plaintext twice: different DEKs, different blobs.
        assert_ne!(ring.seal(&b, b"x").expect("seal").blob, ring.seal(&b, b"x").expect("seal").blob);
    }

    /// Sealing in place stores exactly the format `seal` does: the blob of
    /// its parts opens with `open_sealed`, under the same binding only.
    #[test]
    fn sealing_in_place_is_the_same_format() {
        let ring = Keyring::ephemeral();
        let id = [3u8; 16];
        let b = binding("ST1", &id, 4);
        for plaintext in [&b""[..], b"x", &[7u8; 100_000][..]] {
            let mut buf = plaintext.to_vec();
            let sealed = ring.seal_in_place(&b, &mut buf).expect("seal in place");
            assert!(plaintext.len() < 16 || buf != plaintext, "the buffer holds ciphertext now");
            let blob = sealed.parts(&buf).concat();
            assert_eq!(blob.len(), 12 + plaintext.len() + 16);
            let stored = Sealed { blob, wrapped_key: sealed.wrapped_key.clone(), kek_version: sealed.kek_version };
            assert_eq!(&**ring.open_sealed(&b, &stored).expect("open"), plaintext);
            let other = binding("ST1", &id, 5);
            assert_eq!(ring.open_sealed(&other, &stored), Err(EnvelopeError::Tampered));
        }
    }

    #[test]
    fn rotation_keeps_old_records_readable_and_rewrap_moves_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = [3u8; 16];
        let b = binding("ST1", &id, 1);
        let sealed = {
            let ring = Keyring::open(dir.path()).expect("open");
            assert_eq!(ring.current(), 1);
            ring.seal(&b, b"old").expect("seal")
        };
        let mut ring = Keyring::open(dir.path()).expect("reopen");
        assert_eq!(ring.rotate().expect("rotate"), 2);
        let ring = Keyring::open(dir.path()).expect("reopen");
        assert_eq!(ring.versions(), vec![1, 2]);
        assert_eq!(&**ring.open_sealed(&b, &sealed).expect("old record"), b"old");
        let (wrapped, version) = ring.rewrap(&b, &sealed.wrapped_key, sealed.kek_version).expect("rewrap");
        assert_eq!(version, 2);
        let moved = Sealed { wrapped_key: wrapped, kek_version: 2, ..sealed.clone() };
        assert_eq!(&**ring.open_sealed(&b, &moved).expect("rewrapped"), b"old");
        assert_eq!(moved.blob, sealed.blob, "rewrapping never touches the payload");
        let gone = Sealed { kek_version: 9, ..sealed };
        assert_eq!(ring.open_sealed(&b, &gone), Err(EnvelopeError::UnknownKek(9)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("kek-2.key")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{ring:?}").contains(&std::fs::read_to_string(dir.path().join("kek-1.key")).expect("key")));
    }
}
