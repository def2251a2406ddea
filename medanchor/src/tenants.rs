//! The tenants a node serves, from a TOML file (`medanchor up --tenants`,
//! `medanchor storage apply-lifecycle --tenants`, `medanchor keys rotate
//! --tenant`).
//!
//! Every node serves the tenant `default` (its data and keys at the roots
//! of `--api-data-dir` and `--keys-dir`, as before tenants existed); each
//! further tenant lives under `tenants/{id}/` of both, with its own
//! database, KEKs, audit log and upload spool, and its own prefix in the
//! shared object store. Membership is configuration: a tenant that lists
//! `members` serves only them, its `admins` and its `auditors`.
//!
//! ```toml
//! [[tenant]]
//! id = "north"
//! members = ["ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG"]
//! admins = ["ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC"]
//! max_attachment_mb = 20
//! retention_days = 3650
//! storage_class = "STANDARD_IA"
//! [tenant.lifecycle]
//! archive_after_days = 90
//! archive_class = "GLACIER"
//! abort_multipart_after_days = 7
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use medanchor_api::app::ApiConfig;
use medanchor_contracts::principal::Principal;
use serde::Deserialize;

/// The tenant every node serves; its data and keys sit at the roots.
pub const DEFAULT_TENANT: &str = "default";

/// A tenants file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    /// The tenants (`[[tenant]]`).
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantSpec>,
}

/// One tenant's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Its id: the object-key prefix and the `X-Tenant-ID` value.
    pub id: String,
    /// Who may use it (principals); absent: anyone.
    pub members: Option<Vec<String>>,
    /// Its administrators.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Its auditors.
    #[serde(default)]
    pub auditors: Vec<String>,
    /// Its largest attachment, in MB (10^6 bytes).
    pub max_attachment_mb: Option<usize>,
    /// How long removed attachments are kept, in days.
    pub retention_days: Option<u64>,
    /// Bytes past which its storage is reported as over threshold.
    pub storage_alert_bytes: Option<u64>,
    /// The storage class new objects are written in.
    pub storage_class: Option<String>,
    /// Its bucket lifecycle rules (`storage apply-lifecycle`).
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

/// A tenant's lifecycle rules on S3.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Days after which objects move to `archive_class`.
    pub archive_after_days: u32,
    /// The archive storage class.
    pub archive_class: String,
    /// Days after which an incomplete multipart upload is aborted.
    pub abort_multipart_after_days: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { archive_after_days: 90, archive_class: "GLACIER".into(), abort_multipart_after_days: 7 }
    }
}

/// S3's storage classes (a typo would otherwise reach the store).
const CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
];

impl TenantsFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<TenantsFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: TenantsFile = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        file.check().with_context(|| format!("{}", path.display()))?;
        Ok(file)
    }

    /// Ids valid as object prefixes and unique, principals that parse,
    /// known storage classes, sane lifecycle days.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.tenants {
            if t.id.parse::<medanchor_storage::keys::Tenant>().is_err() {
                bail!("tenant {:?}: {}", t.id, medanchor_storage::keys::TenantError);
            }
            if !seen.insert(t.id.as_str()) {
                bail!("tenant {:?} is listed twice", t.id);
            }
            let people = t.members.iter().flatten().chain(&t.admins).chain(&t.auditors);
            for p in people {
                p.parse::<Principal>()
                    .map_err(|e| anyhow::anyhow!("tenant {:?}: {p:?} is not a principal: {e}", t.id))?;
            }
            let classes = t.storage_class.iter().chain(std::iter::once(&t.lifecycle.archive_class));
            for c in classes {
                if !CLASSES.contains(&c.as_str()) {
                    bail!("tenant {:?}: unknown storage class {c:?} (one of {})", t.id, CLASSES.join(", "));
                }
            }
            if t.lifecycle.archive_after_days == 0 || t.lifecycle.abort_multipart_after_days == 0 {
                bail!("tenant {:?}: lifecycle days start at 1", t.id);
            }
            if t.max_attachment_mb == Some(0) || t.retention_days == Some(0) {
                bail!("tenant {:?}: max_attachment_mb and retention_days start at 1", t.id);
            }
        }
        Ok(())
    }

    /// The spec of tenant `id`, if the file has one.
    pub fn get(&self, id: &str) -> Option<&TenantSpec> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// Every tenant's lifecycle: `default` first (from the file, or the
    /// defaults), then the file's others.
    pub fn lifecycles(&self) -> Vec<(String, Lifecycle)> {
        let default = self.get(DEFAULT_TENANT).map_or_else(Lifecycle::default, |t| t.lifecycle.clone());
        std::iter::once((DEFAULT_TENANT.to_string(), default))
            .chain(self.tenants.iter().filter(|t| t.id != DEFAULT_TENANT).map(|t| (t.id.clone(), t.lifecycle.clone())))
            .collect()
    }
}

impl TenantSpec {
    /// `config` (the node's base configuration) for this tenant. A tenant
    /// other than `default` gets only the admins and auditors it names.
    pub fn apply(&self, config: &mut ApiConfig) {
        config.tenant = self.id.clone();
        if self.id != DEFAULT_TENANT {
            config.admins.clear();
            config.auditors.clear();
        }
        config.admins.extend(self.admins.iter().cloned());
        config.auditors.extend(self.auditors.iter().cloned());
        config.members = self.members.clone();
        if let Some(mb) = self.max_attachment_mb {
            config.max_attachment_bytes = mb.saturating_mul(1_000_000);
        }
        if let Some(days) = self.retention_days {
            config.attachment_retention = Duration::from_secs(days.saturating_mul(86_400));
        }
        if let Some(bytes) = self.storage_alert_bytes {
            config.storage_alert_bytes = Some(bytes);
        }
        if let Some(class) = &self.storage_class {
            config.storage_class = class.clone();
        }
    }
}

/// Where tenant `id` keeps its data and keys under the node's directories.
pub fn dirs(data_dir: &Path, keys_dir: &Path, id: &str) -> (PathBuf, PathBuf) {
    if id == DEFAULT_TENANT {
        (data_dir.to_path_buf(), keys_dir.to_path_buf())
    } else {
        (data_dir.join("tenants").join(id), keys_dir.join("tenants").join(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";

    #[test]
    fn files_are_checked() {
        let ok = format!(
            "[[tenant]]\nid = \"north\"\nmembers = [\"{P}\"]\nmax_attachment_mb = 2\nstorage_class = \"STANDARD_IA\"\n\
             [tenant.lifecycle]\narchive_after_days = 30\n"
        );
        let file: TenantsFile = toml::from_str(&ok).expect("parses");
        file.check().expect("valid");
        let north = file.get("north").expect("north");
        assert_eq!(north.lifecycle.archive_after_days, 30);
        assert_eq!(north.lifecycle.archive_class, "GLACIER", "defaults fill the rest");
        let mut config = ApiConfig::new("default", P);
        config.admins = vec!["node-admin".into()];
        north.apply(&mut config);
        assert_eq!(
            (config.tenant.as_str(), config.max_attachment_bytes, config.storage_class.as_str()),
            ("north", 2_000_000, "STANDARD_IA")
        );
        assert!(config.admins.is_empty(), "another tenant's admins are its own");
        assert_eq!(file.lifecycles().iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["default", "north"]);

        let bad = [
            ("[[tenant]]\nid = \"North\"\n", "lowercase"),
            ("[[tenant]]\nid = \"a\"\n[[tenant]]\nid = \"a\"\n", "twice"),
            ("[[tenant]]\nid = \"a\"\nmembers = [\"wallet_1\"]\n", "not a principal"),
            ("[[tenant]]\nid = \"a\"\nstorage_class = \"COLD\"\n", "unknown storage class"),
            ("[[tenant]]\nid = \"a\"\n[tenant.lifecycle]\narchive_after_days = 0\n", "start at 1"),
            ("[[tenant]]\nid = \"a\"\nmax_attachment_mb = 0\n", "start at 1"),
        ];
        for (text, why) in bad {
            let err = toml::from_str::<TenantsFile>(text).map_err(anyhow::Error::new).and_then(|f| f.check());
            let err = format!("{:#}", err.expect_err(text));
            assert!(err.contains(why), "{text}: {err}");
        }
        assert!(toml::from_str::<TenantsFile>("[[tenant]]\nid = \"a\"\nkek = \"x\"\n").is_err(), "unknown fields");
    }

    #[test]
    fn default_keeps_the_root_directories() {
        let (d, k) = (Path::new("/d"), Path::new("/k"));
        assert_eq!(dirs(d, k, "default"), (d.to_path_buf(), k.to_path_buf()));
        assert_eq!(dirs(d, k, "north"), (d.join("tenants/north"), k.join("tenants/north")));
    }
}
