//! Key files: one Stacks secret key, encrypted at rest with a passphrase.
//!
//! ```json
//! { "version": 1, "address": "ST…",
//!   "kdf": { "algorithm": "argon2id", "version": 19, "m_cost_kib": 65536,
//!            "t_cost": 3, "p_cost": 1, "salt": "<16 bytes hex>" },
//!   "cipher": { "algorithm": "xchacha20-poly1305", "nonce": "<24 bytes hex>",
//!               "ciphertext": "<hex>" } }
//! ```
//!
//! The passphrase goes through Argon2id (memory-hard, so guessing costs
//! memory as well as time) into a 32-byte key for XChaCha20-Poly1305; its
//! 24-byte random nonce never repeats in practice, even when a file is
//! rewritten with the same passphrase. The address is authenticated as
//! associated data, so a file whose address was edited fails to decrypt
//! instead of showing one address and signing with another. Files are
//! written with mode 0600 and never silently overwritten.

use std::io::Write;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::StacksKey;
use crate::{Error, Result};

/// The format version this build writes and reads.
pub const KEY_FILE_VERSION: u32 = 1;
/// The one message for a failed decryption: a wrong passphrase and a
/// modified file are indistinguishable by design.
pub const WRONG_PASSPHRASE: &str = "wrong passphrase or corrupted key file";

const KDF_NAME: &str = "argon2id";
const CIPHER_NAME: &str = "xchacha20-poly1305";
const AAD_PREFIX: &str = "medanchor-wallet/v1 address=";
/// Upper bounds on the KDF parameters a file may ask for, so a crafted
/// file cannot make `open` allocate gigabytes or spin for hours.
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommended setting
    /// with one lane (the CLI derives one key per command, well under a
    /// second with optimised dependencies).
    fn default() -> Self {
        KdfParams { m_cost_kib: 64 * 1024, t_cost: 3, p_cost: 1 }
    }
}

/// The file as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Format version ([`KEY_FILE_VERSION`]).
    pub version: u32,
    /// The address the key controls (authenticated, not secret).
    pub address: String,
    /// How the encryption key is derived from the passphrase.
    pub kdf: KdfSection,
    /// The encrypted secret key.
    pub cipher: CipherSection,
}

/// The `kdf` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KdfSection {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Argon2 version (19 = 0x13).
    pub version: u32,
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// The `cipher` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CipherSection {
    /// Always `xchacha20-poly1305`.
    pub algorithm: String,
    /// 24 random bytes, hex.
    pub nonce: String,
    /// The secret key (33-byte wallet form as hex text) plus the 16-byte tag, hex.
    pub ciphertext: String,
}

fn aad(address: &str) -> Vec<u8> {
    format!("{AAD_PREFIX}{address}").into_bytes()
}

fn derive_key(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    if params.m_cost_kib > MAX_M_COST_KIB || params.t_cost > MAX_T_COST || params.p_cost > MAX_P_COST {
        return Err(Error::KeyFile("key derivation parameters are out of range".into()));
    }
    let params = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| Error::KeyFile(format!("invalid key derivation parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| Error::KeyFile(format!("key derivation failed: {e}")))?;
    Ok(key)
}

impl KeyFile {
    /// Encrypts `key` under `passphrase`; `address` is the address shown
    /// for it (and bound to the ciphertext).
    pub fn encrypt(key: &StacksKey, address: &str, passphrase: &str, params: KdfParams) -> Result<KeyFile> {
        if passphrase.is_empty() {
            return Err(Error::KeyFile("the passphrase must not be empty".into()));
        }
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let enc_key = derive_key(passphrase, &salt, params)?;
        let plaintext = Zeroizing::new(key.to_hex());
        let cipher = XChaCha20Poly1305::new(enc_key.as_ref().into());
        let aad = aad(address);
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: &aad })
            .map_err(|_| Error::KeyFile("encryption failed".into()))?;
        Ok(KeyFile {
            version: KEY_FILE_VERSION,
            address: address.to_string(),
            kdf: KdfSection {
                algorithm: KDF_NAME.into(),
                version: 0x13,
                m_cost_kib: params.m_cost_kib,
                t_cost: params.t_cost,
                p_cost: params.p_cost,
                salt: hex::encode(salt),
            },
            cipher: CipherSection {
                algorithm: CIPHER_NAME.into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        })
    }

    /// Decrypts the key. A wrong passphrase and any modification of the
    /// file give the same error, [`WRONG_PASSPHRASE`].
    pub fn decrypt(&self, passphrase: &str) -> Result<StacksKey> {
        if self.version != KEY_FILE_VERSION {
            return Err(Error::KeyFile(format!(
                "unsupported key file version {} (this build reads {KEY_FILE_VERSION})",
                self.version
            )));
        }
        if self.kdf.algorithm != KDF_NAME || self.kdf.version != 0x13 || self.cipher.algorithm != CIPHER_NAME {
            return Err(Error::KeyFile(format!(
                "unsupported algorithms {} v{} / {} (expected {KDF_NAME} v19 / {CIPHER_NAME})",
                self.kdf.algorithm, self.kdf.version, self.cipher.algorithm
            )));
        }
        let corrupted = || Error::KeyFile(WRONG_PASSPHRASE.into());
        let salt = hex::decode(&self.kdf.salt).map_err(|_| corrupted())?;
        let nonce = hex::decode(&self.cipher.nonce).map_err(|_| corrupted())?;
        let ciphertext = hex::decode(&self.cipher.ciphertext).map_err(|_| corrupted())?;
        if salt.len() < 8 || nonce.len() != 24 {
            return Err(corrupted());
        }
        let params = KdfParams { m_cost_kib: self.kdf.m_cost_kib, t_cost: self.kdf.t_cost, p_cost: self.kdf.p_cost };
        let enc_key = derive_key(passphrase, &salt, params)?;
        let cipher = XChaCha20Poly1305::new(enc_key.as_ref().into());
        let aad = aad(&self.address);
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad })
                .map_err(|_| corrupted())?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| corrupted())?;
        let key = StacksKey::from_hex(text).map_err(|_| corrupted())?;
        // The AEAD already binds the address; this catches a file written
        // for the other network's address version.
        let matches = [crate::keys::TESTNET_SINGLESIG, crate::keys::MAINNET_SINGLESIG]
            .iter()
            .any(|v| key.address(*v).to_string() == self.address);
        if !matches {
            return Err(corrupted());
        }
        Ok(key)
    }

    /// Reads a key file (without decrypting it).
    pub fn read(path: &Path) -> Result<KeyFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::KeyFile(format!(
                    "{} does not exist (create one with `medanchor wallet new` or `wallet import`)",
                    path.display()
                ))
            } else {
                Error::KeyFile(format!("reading {}: {e}", path.display()))
            }
        })?;
        serde_json::from_str(&text).map_err(|e| Error::KeyFile(format!("{} is not a key file: {e}", path.display())))
    }

    /// Writes the file with mode 0600, creating its directory (mode 0700)
    /// if needed. An existing file is replaced only with `force`, and then
    /// atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path, force: bool) -> Result<()> {
        let io = |what: &str, e: std::io::Error| Error::KeyFile(format!("{what} {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir).map_err(|e| io("creating the directory of", e))?;
            }
        }
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::KeyFile(format!("serializing the key file: {e}")))?;
        text.push('\n');
        if !force {
            // create_new: fails if the file exists, with no window between
            // a check and the write.
            let mut file = open_private(path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::KeyFile(format!("{} already exists (use --force to replace it)", path.display()))
                } else {
                    io("creating", e)
                }
            })?;
            file.write_all(text.as_bytes()).map_err(|e| io("writing", e))?;
            return file.sync_all().map_err(|e| io("syncing", e));
        }
        let mut suffix = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
        let tmp = std::path::PathBuf::from(tmp_name);
        let result = (|| {
            let mut file = open_private(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| io("replacing", e))
    }
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TESTNET_SINGLESIG;

    /// Cheap parameters: these tests exercise the format, not the cost.
    const FAST: KdfParams = KdfParams { m_cost_kib: 256, t_cost: 1, p_cost: 1 };
    const SECRET: &str = "7287ba251d44a4d3fd9276c88ce34c5c52a038955511cccaf77e61068649c17801";

    fn sealed() -> (StacksKey, KeyFile) {
        let key = StacksKey::from_hex(SECRET).expect("key");
        let address = key.address(TESTNET_SINGLESIG).to_string();
        let file = KeyFile::encrypt(&key, &address, "correct horse", FAST).expect("encrypt");
        (key, file)
    }

    #[test]
    fn round_trip_through_disk_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/wallet.json");
        let (key, file) = sealed();
        file.write(&path, false).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&SECRET[..16]), "secret in clear: {text}");
        let back = KeyFile::read(&path).expect("read back");
        assert_eq!(back, file);
        assert_eq!(back.decrypt("correct horse").expect("decrypt").to_hex(), key.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Never overwritten silently; replaced with force.
        let err = file.write(&path, false).expect_err("exists").to_string();
        assert!(err.contains("--force"), "{err}");
        let (_, other) = sealed();
        other.write(&path, true).expect("force");
        assert_eq!(KeyFile::read(&path).expect("read"), other);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir")).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    }

    #[test]
    fn wrong_passphrase_and_tampering_give_one_clear_error() {
        let (_, file) = sealed();
        let flip = |s: &str| {
            let mut b = hex::decode(s).expect("hex");
            b[0] ^= 1;
            hex::encode(b)
        };
        let mut cases: Vec<(&str, KeyFile, &str)> = vec![("wrong passphrase", file.clone(), "Correct horse")];
        let mut f = file.clone();
        f.address = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG".into();
        cases.push(("address swapped", f, "correct horse"));
        let mut f = file.clone();
        f.cipher.ciphertext = flip(&f.cipher.ciphertext);
        cases.push(("ciphertext flipped", f, "correct horse"));
        let mut f = file.clone();
        f.cipher.nonce = flip(&f.cipher.nonce);
        cases.push(("nonce flipped", f, "correct horse"));
        let mut f = file.clone();
        f.kdf.salt = flip(&f.kdf.salt);
        cases.push(("salt flipped", f, "correct horse"));
        let mut f = file.clone();
        f.kdf.t_cost = 2;
        cases.push(("kdf cost changed", f, "correct horse"));
        let mut f = file.clone();
        f.cipher.ciphertext.truncate(10);
        cases.push(("ciphertext truncated", f, "correct horse"));
        for (name, f, pass) in cases {
            let err = f.decrypt(pass).expect_err(name).to_string();
            assert_eq!(err, format!("key file: {WRONG_PASSPHRASE}"), "{name}");
        }
        let mut f = file.clone();
        f.kdf.m_cost_kib = u32::MAX;
        assert!(f.decrypt("correct horse").expect_err("huge kdf").to_string().contains("out of range"));
        let mut f = file;
        f.version = 2;
        assert!(f.decrypt("correct horse").expect_err("version").to_string().contains("version 2"));
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let key = StacksKey::from_hex(SECRET).expect("key");
        assert!(KeyFile::encrypt(&key, "ST1", "", FAST).is_err());
    }

    #[test]
    fn default_parameters_decrypt() {
        let key = StacksKey::from_hex(SECRET).expect("key");
        let address = key.address(TESTNET_SINGLESIG).to_string();
        let file = KeyFile::encrypt(&key, &address, "pw", KdfParams::default()).expect("encrypt");
        assert_eq!(file.kdf.m_cost_kib, 65536);
        assert_eq!(file.decrypt("pw").expect("decrypt").to_hex(), SECRET);
    }
}
