//! Object keys: `{tenant}/{yyyy}/{mm}/{record-id}/{file-id}`.
//!
//! Ids only, never a file name (a file name is PHI: "hiv-test.pdf"). The
//! tenant prefix is what per-tenant lifecycle rules and reports match on;
//! the year and month (UTC, of the record's creation) spread a tenant's
//! objects and let lifecycle rules and reports work by age; the record id
//! groups a record's files. A file's versions are separate files (a new
//! file id each), so an object is written once and never overwritten.

use std::fmt;

/// A tenant's name: what its keys start with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

/// Why a name is not a tenant's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant is 1 to 63 characters: lowercase letters, digits and hyphens, starting with a letter or digit")]
pub struct TenantError;

impl std::str::FromStr for Tenant {
    type Err = TenantError;

    fn from_str(s: &str) -> Result<Tenant, TenantError> {
        let ok = (1..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        ok.then(|| Tenant(s.to_string())).ok_or(TenantError)
    }
}

impl Tenant {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of every key of this tenant (`{tenant}/`).
    pub fn prefix(&self) -> String {
        format!("{}/", self.0)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one stored file lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The tenant.
    pub tenant: Tenant,
    /// The year (UTC) of the record's creation.
    pub year: u16,
    /// The month, 1 to 12.
    pub month: u8,
    /// The record.
    pub record_id: [u8; 16],
    /// The file (one id per stored version).
    pub file_id: [u8; 16],
}

impl ObjectKey {
    /// The key of `file_id` of `record_id`, created at `created_ms` (unix
    /// milliseconds).
    pub fn new(tenant: Tenant, created_ms: u64, record_id: [u8; 16], file_id: [u8; 16]) -> ObjectKey {
        let (year, month) = year_month(created_ms);
        ObjectKey { tenant, year, month, record_id, file_id }
    }

    /// A key from its path.
    pub fn parse(path: &str) -> Option<ObjectKey> {
        let mut parts = path.split('/');
        let tenant = parts.next()?.parse().ok()?;
        let year = parts.next().filter(|y| y.len() == 4)?.parse().ok()?;
        let month = parts.next().filter(|m| m.len() == 2)?.parse().ok().filter(|m| (1..=12).contains(m))?;
        let id = |s: Option<&str>| -> Option<[u8; 16]> {
            let s =
                s.filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))?;
            let mut out = [0u8; 16];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
            }
            Some(out)
        };
        let (record_id, file_id) = (id(parts.next())?, id(parts.next())?);
        parts.next().is_none().then_some(ObjectKey { tenant, year, month, record_id, file_id })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:04}/{:02}/", self.tenant, self.year, self.month)?;
        for b in self.record_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("/")?;
        for b in self.file_id {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The UTC year and month of a unix time in milliseconds.
fn year_month(unix_ms: u64) -> (u16, u8) {
    let (y, m, _) = civil_from_days((unix_ms / 86_400_000) as i64);
    (y as u16, m as u8)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`; no date crate for one function).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_tenant_month_record_and_file_and_parse_back() {
        let t: Tenant = "st-marys".parse().unwrap_or_else(|e| panic!("{e}"));
        // 2026-12-05T10:00:00Z.
        let k = ObjectKey::new(t.clone(), 1_796_464_800_000, [0xab; 16], [0x01; 16]);
        let s = k.to_string();
        assert_eq!(s, format!("st-marys/2026/12/{}/{}", "ab".repeat(16), "01".repeat(16)));
        assert_eq!(ObjectKey::parse(&s), Some(k));
        assert!(s.starts_with(&t.prefix()));
        for (ms, ym) in [
            (0u64, (1970, 1)),
            (951_782_400_000, (2000, 2)),
            (1_798_761_599_999, (2026, 12)),
            (1_798_761_600_000, (2027, 1)),
        ] {
            assert_eq!(year_month(ms), ym, "{ms}");
        }
    }

    #[test]
    fn malformed_tenants_and_keys_are_refused() {
        for bad in ["", "-a", "A", "a b", "a/b", "ä", &"a".repeat(64)] {
            assert_eq!(bad.parse::<Tenant>(), Err(TenantError), "{bad:?}");
        }
        let good = format!("t/2026/12/{}/{}", "ab".repeat(16), "01".repeat(16));
        assert!(ObjectKey::parse(&good).is_some());
        for bad in [
            good.replace("/12/", "/13/"),
            good.replace("/2026/", "/26/"),
            good.replace("ab", "AB"),
            format!("{good}/extra"),
            good.replace("t/", "T/"),
            good[..good.len() - 2].to_string(),
        ] {
            assert_eq!(ObjectKey::parse(&bad), None, "{bad}");
        }
    }
}
