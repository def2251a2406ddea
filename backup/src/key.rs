//! The backup key: 32 random bytes in a file of its own (0600), kept apart
//! from the data directory and from the KEKs. Every blob's sealing key
//! and every blob address derive from it.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{BackupError, Result};

/// A backup (or recovery) key.
pub struct BackupKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BackupKey {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

impl BackupKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> BackupKey {
        BackupKey(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> BackupKey {
        let mut k = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut k);
        BackupKey::from_bytes(k)
    }

    /// The key in `path` (64 hex digits).
    pub fn load(path: &Path) -> Result<BackupKey> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(crate::io(path))?);
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| BackupError::Key(format!("{}: not hex", path.display())))?,
        );
        let key: [u8; 32] =
            bytes[..].try_into().map_err(|_| BackupError::Key(format!("{}: not 32 bytes", path.display())))?;
        Ok(BackupKey::from_bytes(key))
    }

    /// The key in `path`, created (0600, synced) if there is none.
    pub fn load_or_create(path: &Path) -> Result<BackupKey> {
        if path.exists() {
            return BackupKey::load(path);
        }
        let key = BackupKey::generate();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(crate::io(dir))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(path).map_err(crate::io(path))?;
        let text = Zeroizing::new(hex::encode(&key.0[..]));
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(crate::io(path))?;
        file.sync_all().map_err(crate::io(path))?;
        Ok(key)
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..]).unwrap_or_else(|_| unreachable!("any length"));
        mac.update(domain);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The sealing key of a blob with `salt`.
    pub(crate) fn blob_key(&self, salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.mac(b"medanchor backup blob key v1", salt))
    }

    /// Where a file whose SHA-256 is `sha256` is stored: a keyed MAC, so
    /// equal files share a blob but the address says nothing of the file.
    pub fn address(&self, sha256: &[u8; 32]) -> String {
        hex::encode(self.mac(b"medanchor backup address v1", sha256))
    }
}
