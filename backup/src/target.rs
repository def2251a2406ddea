//! Where backups are kept: a directory (local disk, another disk, a
//! mounted share).
//!
//! ```text
//! blobs/{aa}/{address}    sealed files, shared by every backup that holds them
//! manifests/{id}.json     signed manifests
//! manifests/{id}.verified written when a verification of the backup passed
//! ```
//!
//! Everything is written to a temporary name, synced, and renamed: a crash
//! leaves whole blobs and manifests or none (and temporaries that the
//! next prune deletes).

use std::path::{Path, PathBuf};

use crate::manifest::Signed;
use crate::{BackupError, Result};

/// A backup target directory.
#[derive(Debug, Clone)]
pub struct Target {
    root: PathBuf,
}

impl Target {
    /// The target at `root` (created).
    pub fn open(root: &Path) -> Result<Target> {
        for d in [root.join("blobs"), root.join("manifests")] {
            std::fs::create_dir_all(&d).map_err(crate::io(&d))?;
        }
        Ok(Target { root: root.to_path_buf() })
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `address` is.
    pub fn blob_path(&self, address: &str) -> PathBuf {
        self.root.join("blobs").join(address.get(..2).unwrap_or("00")).join(address)
    }

    /// Whether blob `address` is stored.
    pub fn has_blob(&self, address: &str) -> bool {
        self.blob_path(address).is_file()
    }

    /// Writes blob `address` with `write` (given a temporary path to fill
    /// and sync), then renames it into place.
    pub fn put_blob(&self, address: &str, write: impl FnOnce(&Path) -> Result<u64>) -> Result<u64> {
        let dest = self.blob_path(address);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(crate::io(&dir))?;
        let tmp = dir.join(format!(".tmp-{address}-{:08x}", rand::random::<u32>()));
        let size = match write(&tmp) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &dest).map_err(crate::io(&dest))?;
        sync_dir(&dir)?;
        Ok(size)
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join("manifests").join(format!("{id}.json"))
    }

    /// Stores a signed manifest (after its blobs: a manifest never names
    /// a blob that is not there).
    pub fn put_manifest(&self, signed: &Signed) -> Result<()> {
        let path = self.manifest_path(&signed.manifest.id);
        let bytes = serde_json::to_vec_pretty(signed).map_err(|e| BackupError::Manifest(e.to_string()))?;
        write_synced(&path, &bytes)
    }

    /// The signed manifest of backup `id` (not yet verified).
    pub fn manifest(&self, id: &str) -> Result<Signed> {
        if !crate::manifest::safe_relative(id) || id.contains('/') {
            return Err(BackupError::NotFound(id.to_string()));
        }
        let path = self.manifest_path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::NotFound(id.to_string())),
            Err(e) => return Err(crate::io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| BackupError::Manifest(format!("{id}: {e}")))
    }

    /// The ids of every backup, oldest first.
    pub fn ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join("manifests");
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .map_err(crate::io(&dir))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .filter(|id| !id.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Records that backup `id` verified at `at_ms`.
    pub fn mark_verified(&self, id: &str, at_ms: u64) -> Result<()> {
        write_synced(&self.root.join("manifests").join(format!("{id}.verified")), at_ms.to_string().as_bytes())
    }

    /// When backup `id` last verified, if it ever did.
    pub fn verified_ms(&self, id: &str) -> Option<u64> {
        std::fs::read_to_string(self.root.join("manifests").join(format!("{id}.verified"))).ok()?.trim().parse().ok()
    }

    /// Deletes backup `id`'s manifest (its blobs go with the next sweep).
    pub fn remove_manifest(&self, id: &str) -> Result<()> {
        for p in [self.manifest_path(id), self.root.join("manifests").join(format!("{id}.verified"))] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(crate::io(&p)(e)),
                _ => {}
            }
        }
        sync_dir(&self.root.join("manifests"))
    }

    /// Every stored blob's address, and leftover temporaries.
    pub fn blobs(&self) -> Result<(Vec<String>, Vec<PathBuf>)> {
        let (mut blobs, mut temps) = (Vec::new(), Vec::new());
        let root = self.root.join("blobs");
        for dir in std::fs::read_dir(&root).map_err(crate::io(&root))? {
            let dir = dir.map_err(crate::io(&root))?.path();
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).map_err(crate::io(&dir))? {
                let f = f.map_err(crate::io(&dir))?;
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    temps.push(f.path());
                } else {
                    blobs.push(name);
                }
            }
        }
        Ok((blobs, temps))
    }

    /// Deletes blob `address`.
    pub fn remove_blob(&self, address: &str) -> Result<()> {
        let p = self.blob_path(address);
        std::fs::remove_file(&p).map_err(crate::io(&p))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{:08x}", rand::random::<u32>()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(crate::io(&tmp))?;
        f.write_all(bytes).map_err(crate::io(&tmp))?;
        f.sync_all().map_err(crate::io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(crate::io(path))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(crate::io(dir))
}
