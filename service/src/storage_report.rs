//! What the object store holds, for admins: bytes and objects per tenant
//! and storage class, growth per month, an estimated monthly cost from a
//! configurable price table, and the tenants over their alert threshold.
//!
//! Computed from the node's own metadata (every attachment version it
//! wrote, each object counted once however many versions point at it;
//! removed versions count until they are purged), not from listing the
//! bucket: the metadata is what the node answers for, and a listing of a
//! large bucket costs money on S3. Unfinished uploads sit in the local
//! spool, not the store, and are reported apart.

use std::collections::{BTreeMap, HashSet};

use crate::attachments::AttachmentMeta;
use crate::db::Cf;
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// The storage class of an object no lifecycle rule moved.
pub const STANDARD: &str = "STANDARD";

/// Price per GB-month (10^9 bytes) of each storage class, USD: AWS S3's
/// list prices (us-east-1, first tier) as defaults; configurable.
pub fn default_prices() -> BTreeMap<String, f64> {
    [(STANDARD, 0.023), ("STANDARD_IA", 0.0125), ("GLACIER_IR", 0.004), ("GLACIER", 0.0036), ("DEEP_ARCHIVE", 0.00099)]
        .into_iter()
        .map(|(c, p)| (c.to_string(), p))
        .collect()
}

/// One storage class of one tenant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassUsage {
    /// The class.
    pub class: String,
    /// Objects.
    pub objects: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Estimated cost per month, USD.
    pub monthly_cost: f64,
}

/// What one month added.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthUsage {
    /// `yyyy-mm` (UTC) of the uploads.
    pub month: String,
    /// Objects written that month (still stored).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One tenant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantUsage {
    /// The tenant (the objects' key prefix).
    pub tenant: String,
    /// Objects stored.
    pub objects: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Of which removed and awaiting their purge.
    pub removed_bytes: u64,
    /// By storage class.
    pub classes: Vec<ClassUsage>,
    /// By month of upload, oldest first.
    pub months: Vec<MonthUsage>,
    /// Estimated cost per month, USD.
    pub monthly_cost: f64,
    /// The alert threshold, bytes.
    pub threshold_bytes: Option<u64>,
    /// Whether `bytes` passed it.
    pub over_threshold: bool,
}

/// The report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageReport {
    /// Unix ms.
    pub generated_ms: u64,
    /// The store (no secret).
    pub store: String,
    /// Per tenant.
    pub tenants: Vec<TenantUsage>,
    /// Unfinished uploads in the local spool: count and bytes received.
    pub spooled_uploads: u64,
    /// Their bytes.
    pub spooled_bytes: u64,
}

/// `yyyy-mm` of unix ms (UTC), by the civil-from-days algorithm.
fn month_of(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

/// Builds the report from attachment versions (pure: the tests feed it).
pub fn report(
    metas: &[AttachmentMeta],
    prices: &BTreeMap<String, f64>,
    threshold: Option<u64>,
    only: Option<&str>,
) -> Vec<TenantUsage> {
    let mut seen = HashSet::new();
    let mut tenants: BTreeMap<String, TenantUsage> = BTreeMap::new();
    let mut classes: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut months: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    // A restored version points at its source's object: one object,
    // counted once, kept if any version pointing at it is kept.
    let kept: HashSet<&str> = metas.iter().filter(|m| m.removed.is_none()).map(|m| m.object_key.as_str()).collect();
    for m in metas {
        if !seen.insert(m.object_key.as_str()) {
            continue;
        }
        let tenant = m.object_key.split('/').next().unwrap_or_default().to_string();
        if only.is_some_and(|t| t != tenant) {
            continue;
        }
        let class = m.storage_class.clone().unwrap_or_else(|| STANDARD.to_string());
        let t = tenants.entry(tenant.clone()).or_insert_with(|| TenantUsage {
            tenant: tenant.clone(),
            objects: 0,
            bytes: 0,
            removed_bytes: 0,
            classes: Vec::new(),
            months: Vec::new(),
            monthly_cost: 0.0,
            threshold_bytes: threshold,
            over_threshold: false,
        });
        t.objects += 1;
        t.bytes += m.stored_size;
        if !kept.contains(m.object_key.as_str()) {
            t.removed_bytes += m.stored_size;
        }
        let c = classes.entry((tenant.clone(), class)).or_default();
        c.0 += 1;
        c.1 += m.stored_size;
        let mo = months.entry((tenant, month_of(m.uploaded_ms))).or_default();
        mo.0 += 1;
        mo.1 += m.stored_size;
    }
    for ((tenant, class), (objects, bytes)) in classes {
        let price = prices.get(&class).or_else(|| prices.get(STANDARD)).copied().unwrap_or(0.0);
        let monthly_cost = bytes as f64 / 1e9 * price;
        if let Some(t) = tenants.get_mut(&tenant) {
            t.monthly_cost += monthly_cost;
            t.classes.push(ClassUsage { class, objects, bytes, monthly_cost });
        }
    }
    for ((tenant, month), (objects, bytes)) in months {
        if let Some(t) = tenants.get_mut(&tenant) {
            t.months.push(MonthUsage { month, objects, bytes });
        }
    }
    tenants
        .into_values()
        .map(|mut t| {
            t.over_threshold = t.threshold_bytes.is_some_and(|limit| t.bytes > limit);
            t
        })
        .collect()
}

impl Service {
    /// The storage report (admins), for one tenant or all; audited. A
    /// tenant over its threshold is logged as a warning for the operators.
    pub async fn storage_report(&self, caller: &Caller, tenant: Option<&str>) -> Result<StorageReport> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let entry = caller.entry(role, "storage.report");
        if role != "admin" {
            let refused = Error::Forbidden {
                code: "admin-only",
                detail: "the storage report is for admins".into(),
                reason: None,
            };
            return self.audited(entry, Err(refused)).await;
        }
        let mut metas = Vec::new();
        for (_, v) in self.db.scan(Cf::Attachments, b"v")? {
            metas.push(serde_json::from_slice::<AttachmentMeta>(&v).map_err(Error::internal)?);
        }
        let tenants = report(&metas, &self.config.storage_prices, self.config.storage_alert_bytes, tenant);
        for t in tenants.iter().filter(|t| t.over_threshold) {
            tracing::warn!(tenant = %t.tenant, bytes = t.bytes, threshold = ?t.threshold_bytes, "tenant over its storage threshold");
        }
        let uploads = self.db.uploads()?;
        let report = StorageReport {
            generated_ms: self.now_ms(),
            store: self.objects.as_ref().map_or_else(|| "none".into(), |o| o.describe().to_string()),
            tenants,
            spooled_uploads: uploads.len() as u64,
            spooled_bytes: uploads.iter().map(|u| u.offset).sum(),
        };
        self.audited(entry, Ok(report)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medanchor_contracts::{DataHash, RecordId};

    fn meta(key: &str, size: u64, uploaded_ms: u64, removed: bool, class: Option<&str>) -> AttachmentMeta {
        AttachmentMeta {
            record_id: RecordId([1; 16]),
            attachment_id: "ab".repeat(16),
            version: 1,
            object_key: key.into(),
            size,
            stored_size: size,
            sha256: DataHash([0; 32]),
            encoding: None,
            wrapped_key: String::new(),
            kek_version: 1,
            info: String::new(),
            uploaded_by: "p".into(),
            uploaded_ms,
            removed: removed.then(|| ("p".to_string(), 1)),
            restored_from: None,
            upload_id: None,
            storage_class: class.map(str::to_string),
        }
    }

    #[test]
    fn months_are_utc_calendar_months() {
        for (ms, want) in [
            (0, "1970-01"),
            (1_764_547_200_000, "2025-12"),
            (1_767_225_599_999, "2025-12"),
            (1_767_225_600_000, "2026-01"),
            (951_782_400_000, "2000-02"),
        ] {
            assert_eq!(month_of(ms), want, "{ms}");
        }
    }

    #[test]
    fn objects_count_once_by_tenant_class_and_month_with_costs_and_thresholds() {
        let jan = 1_767_225_600_000; // 2026-01-01
        let feb = jan + 31 * 86_400_000;
        let metas = vec![
            meta("a/2026/01/r/f1", 2_000_000_000, jan, false, None),
            // A restored version of f1: the same object.
            meta("a/2026/01/r/f1", 2_000_000_000, feb, false, None),
            meta("a/2026/01/r/f2", 1_000_000_000, feb, true, Some("GLACIER")),
            meta("b/2026/02/r/f3", 500, feb, false, None),
        ];
        let prices = default_prices();
        let all = report(&metas, &prices, Some(2_500_000_000), None);
        assert_eq!(all.len(), 2);
        let a = &all[0];
        assert_eq!((a.tenant.as_str(), a.objects, a.bytes, a.removed_bytes), ("a", 2, 3_000_000_000, 1_000_000_000));
        assert_eq!(
            a.classes.iter().map(|c| (c.class.as_str(), c.objects)).collect::<Vec<_>>(),
            vec![("GLACIER", 1), ("STANDARD", 1)]
        );
        assert!((a.monthly_cost - (2.0 * 0.023 + 1.0 * 0.0036)).abs() < 1e-9, "{}", a.monthly_cost);
        assert_eq!(
            a.months.iter().map(|m| (m.month.as_str(), m.bytes)).collect::<Vec<_>>(),
            vec![("2026-01", 2_000_000_000), ("2026-02", 1_000_000_000)]
        );
        assert!(a.over_threshold);
        assert!(!all[1].over_threshold);
        let only_b = report(&metas, &prices, None, Some("b"));
        assert_eq!((only_b.len(), only_b[0].bytes, only_b[0].over_threshold), (1, 500, false));
        assert!(report(&metas, &prices, None, Some("c")).is_empty());
    }
}
