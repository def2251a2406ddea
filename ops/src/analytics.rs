//! Analytics counters, maintained on write: what each audit entry adds to
//! the per-day counts the dashboard reads, to each provider's activity, and
//! to the windows the anomaly rules look at ([`crate::anomaly`]).
//!
//! Everything is keyed bytes in one ordered key-value space ([`Kv`]; the
//! service's is a RocksDB family written in the audit entry's own batch,
//! the tests' a `BTreeMap`), so a dashboard is a handful of short range
//! reads whatever the log's size, and a recount is a replay of the log
//! through [`record`] into an empty space.
//!
//! | key | value | what |
//! |---|---|---|
//! | `c` ‖ day (u32 BE) ‖ metric ‖ 0 ‖ dimension | u64 BE | tenant-wide count per UTC day; dimension empty (total), `type:<record type>`, `dx:<ICD-10 category>`, `action:<action>` |
//! | `p` ‖ provider ‖ 0 ‖ day ‖ metric | u64 BE | one provider's count per day |
//! | `h` ‖ provider ‖ 0 ‖ hour (u8) | u64 BE | the provider's accesses by UTC hour, all time (their usual hours) |
//! | `s` ‖ provider ‖ 0 ‖ day ‖ `n`/`e`/`g` ‖ patient | entry index (u64 BE) | a patient the provider touched that day (`e`: read enhanced-protection data of; `g`: accessed under an emergency override); the first entry |
//! | `r` ‖ window ‖ 0 ‖ subject | JSON ring of (ms, index) | recent denials / failed sign-ins of one principal or address |
//! | `f` ‖ day ‖ rule ‖ 0 ‖ subject | [`crate::anomaly::Flag`] JSON | one flag per rule, subject and day |
//!
//! No content is counted: actions, outcomes, record types, diagnosis
//! categories (three-character ICD-10 codes of the version written or
//! read, handed over by the service beside the entry, never in its leaf)
//! and principals. Days and hours are UTC.

use serde::{Deserialize, Serialize};

use crate::notify::Facts;

/// A day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of unix ms `ms`.
pub fn day_of(ms: u64) -> u32 {
    (ms / DAY_MS) as u32
}

/// The UTC hour of unix ms `ms`.
pub fn hour_of(ms: u64) -> u8 {
    ((ms % DAY_MS) / 3_600_000) as u8
}

/// Metric names, in the dashboard's order.
pub mod metric {
    /// Audit entries written (every action).
    pub const ENTRIES: &str = "entries";
    /// Records created (first versions).
    pub const RECORDS_CREATED: &str = "records.created";
    /// New versions of records.
    pub const RECORDS_UPDATED: &str = "records.updated";
    /// Record reads that released data.
    pub const RECORDS_READ: &str = "records.read";
    /// Share codes and links made.
    pub const SHARES_CREATED: &str = "shares.created";
    /// Shares redeemed by providers.
    pub const SHARES_REDEEMED: &str = "shares.redeemed";
    /// Share redemption lock-outs (brute force stopped).
    pub const SHARE_LOCKOUTS: &str = "shares.lockouts";
    /// Emergency (break-glass) accesses; for a provider, patients so
    /// accessed per day (one override, many reads of one chart).
    pub const EMERGENCY: &str = "emergency";
    /// Refused attempts (any action).
    pub const DENIED: &str = "denied";
    /// Failed sign-ins.
    pub const SIGN_IN_FAILED: &str = "sign-in.failed";
    /// Exports made.
    pub const EXPORTS: &str = "exports";
    /// Provider metric: distinct patients touched that day.
    pub const PATIENTS: &str = "patients";
    /// Provider metric: distinct patients whose enhanced-protection data
    /// (mental health, genetic) was read that day.
    pub const ENHANCED_PATIENTS: &str = "enhanced-patients";
    /// Provider metric: writes (creations and updates).
    pub const WRITES: &str = "writes";
    /// Provider metric: reads.
    pub const READS: &str = "reads";

    /// The tenant-wide metrics, in order.
    pub const DAILY: [&str; 11] = [
        ENTRIES,
        RECORDS_CREATED,
        RECORDS_UPDATED,
        RECORDS_READ,
        SHARES_CREATED,
        SHARES_REDEEMED,
        SHARE_LOCKOUTS,
        EMERGENCY,
        DENIED,
        SIGN_IN_FAILED,
        EXPORTS,
    ];

    /// A provider's metrics, in order.
    pub const PROVIDER: [&str; 6] = [READS, WRITES, PATIENTS, EMERGENCY, DENIED, ENHANCED_PATIENTS];
}

/// What the store knows of an entry's record, beyond the entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The record's type, when the entry names a stored record.
    pub record_type: Option<&'a str>,
    /// Whether the record's data type has enhanced protection.
    pub enhanced: bool,
    /// Diagnosis codes of the version a create or update wrote.
    pub diagnoses: &'a [String],
}

/// Why a key-value space failed (the service's database, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("analytics store: {0}")]
pub struct KvError(pub String);

/// Keys and values, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An ordered key-value space the counters live in. `put` must be seen by
/// later `get`s of the same pass (the service overlays its pending batch).
pub trait Kv {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key`.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Every key with `prefix`, in order, with values.
    fn scan(&self, prefix: &[u8]) -> Result<Pairs, KvError>;
}

/// An in-memory space (tests, recounts).
impl Kv for std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(std::collections::BTreeMap::get(self, key).cloned())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.insert(key, value);
    }
    fn scan(&self, prefix: &[u8]) -> Result<Pairs, KvError> {
        Ok(self
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Key of a tenant-wide count.
pub fn day_key(day: u32, metric: &str, dim: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + metric.len() + dim.len());
    k.push(b'c');
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(metric.as_bytes());
    k.push(0);
    k.extend_from_slice(dim.as_bytes());
    k
}

/// Splits a [`day_key`] into day, metric and dimension.
pub fn parse_day_key(k: &[u8]) -> Option<(u32, &str, &str)> {
    let rest = k.strip_prefix(b"c")?;
    let day = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let rest = std::str::from_utf8(&rest[4..]).ok()?;
    let (metric, dim) = rest.split_once('\0')?;
    Some((day, metric, dim))
}

fn principal_prefix(tag: u8, p: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + p.len() + 8);
    k.push(tag);
    k.extend_from_slice(p.as_bytes());
    k.push(0);
    k
}

/// Key of a provider's count.
pub fn provider_key(provider: &str, day: u32, metric: &str) -> Vec<u8> {
    let mut k = principal_prefix(b'p', provider);
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(metric.as_bytes());
    k
}

/// Splits a [`provider_key`].
pub fn parse_provider_key(k: &[u8]) -> Option<(&str, u32, &str)> {
    let rest = k.strip_prefix(b"p")?;
    let zero = rest.iter().position(|b| *b == 0)?;
    let provider = std::str::from_utf8(&rest[..zero]).ok()?;
    let rest = &rest[zero + 1..];
    let day = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    Some((provider, day, std::str::from_utf8(&rest[4..]).ok()?))
}

/// Key of a provider's accesses at `hour`.
pub fn hour_key(provider: &str, hour: u8) -> Vec<u8> {
    let mut k = principal_prefix(b'h', provider);
    k.push(hour);
    k
}

/// Which patients of a provider's day a marker set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Touched (read or written).
    Any,
    /// Enhanced-protection data read.
    Enhanced,
    /// Accessed under an emergency override.
    Emergency,
}

/// Prefix of the patients a provider touched on `day`, of one [`Seen`] set.
pub fn seen_prefix(provider: &str, day: u32, set: Seen) -> Vec<u8> {
    let mut k = principal_prefix(b's', provider);
    k.extend_from_slice(&day.to_be_bytes());
    k.push(match set {
        Seen::Any => b'n',
        Seen::Enhanced => b'e',
        Seen::Emergency => b'g',
    });
    k
}

/// Key of a window's ring for `subject`.
pub fn ring_key(window: &str, subject: &str) -> Vec<u8> {
    let mut k = principal_prefix(b'r', window);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// Reads a u64 counter.
pub fn get_count(kv: &impl Kv, key: &[u8]) -> Result<u64, KvError> {
    Ok(kv.get(key)?.and_then(|v| v.try_into().ok().map(u64::from_be_bytes)).unwrap_or(0))
}

fn bump(kv: &mut impl Kv, key: Vec<u8>) -> Result<u64, KvError> {
    let n = get_count(kv, &key)? + 1;
    kv.put(key, n.to_be_bytes().to_vec());
    Ok(n)
}

/// Actions that read a record's content.
const READ_ACTIONS: &[&str] = &["record.read", "attachment.download", "attachment.link-download"];

/// Marks `patient` seen by `provider` on `day`; whether they are new that
/// day.
fn see(kv: &mut impl Kv, provider: &str, day: u32, patient: &str, set: Seen, index: u64) -> Result<bool, KvError> {
    let mut key = seen_prefix(provider, day, set);
    key.extend_from_slice(patient.as_bytes());
    if kv.get(&key)?.is_some() {
        return Ok(false);
    }
    kv.put(key, index.to_be_bytes().to_vec());
    Ok(true)
}

/// What [`record`] found new about an entry, for the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Novelty {
    /// A patient the provider had not touched that day.
    pub new_patient: bool,
    /// A patient whose enhanced-protection data the provider had not read
    /// that day.
    pub new_enhanced_patient: bool,
}

/// Adds entry `f`'s counts to `kv`. Deterministic in the entry, its
/// context and what `kv` holds: a replay of the log into an empty space
/// gives the same counters.
pub fn count(kv: &mut impl Kv, f: &Facts<'_>, ctx: &Context<'_>) -> Result<Novelty, KvError> {
    use metric::*;
    let day = day_of(f.time_ms);
    let allowed = f.outcome == "allowed";
    let daily = |kv: &mut _, m: &str, dim: String| bump(kv, day_key(day, m, &dim)).map(|_| ());
    daily(kv, ENTRIES, String::new())?;
    let typed = |m: &str| ctx.record_type.map(|t| (m.to_string(), format!("type:{t}")));
    let mut by_type = Vec::new();
    let mut by_dx: Vec<&str> = Vec::new();
    if allowed {
        match f.action {
            "record.create" => {
                daily(kv, RECORDS_CREATED, String::new())?;
                by_type.extend(typed(RECORDS_CREATED));
                by_dx.push(RECORDS_CREATED);
            }
            "record.update" => {
                daily(kv, RECORDS_UPDATED, String::new())?;
                by_type.extend(typed(RECORDS_UPDATED));
            }
            "record.read" => {
                daily(kv, RECORDS_READ, String::new())?;
                by_type.extend(typed(RECORDS_READ));
                by_dx.push(RECORDS_READ);
            }
            "share.create" => daily(kv, SHARES_CREATED, String::new())?,
            "share.redeem" => daily(kv, SHARES_REDEEMED, String::new())?,
            "export" => daily(kv, EXPORTS, String::new())?,
            _ => {}
        }
        if f.method == Some("emergency") {
            daily(kv, EMERGENCY, String::new())?;
        }
    } else if f.outcome == "denied" {
        daily(kv, DENIED, String::new())?;
        daily(kv, DENIED, format!("action:{}", f.action))?;
        if f.action == "auth.sign-in" {
            daily(kv, SIGN_IN_FAILED, String::new())?;
        }
        if f.reason == Some("access-codes-locked") {
            daily(kv, SHARE_LOCKOUTS, String::new())?;
        }
    }
    for (m, dim) in by_type {
        daily(kv, &m, dim)?;
    }
    // Diagnoses by ICD-10 category, once per category per entry.
    let mut cats: Vec<&str> = ctx.diagnoses.iter().filter_map(|d| d.get(..3)).collect();
    cats.sort_unstable();
    cats.dedup();
    for m in by_dx {
        for c in &cats {
            daily(kv, m, format!("dx:{c}"))?;
        }
    }

    let mut novelty = Novelty::default();
    if f.role != "provider" {
        return Ok(novelty);
    }
    let p = f.actor;
    if !allowed {
        if f.outcome == "denied" {
            bump(kv, provider_key(p, day, DENIED))?;
        }
        return Ok(novelty);
    }
    let (read, write) = (READ_ACTIONS.contains(&f.action), matches!(f.action, "record.create" | "record.update"));
    if read {
        bump(kv, provider_key(p, day, READS))?;
    }
    if write {
        bump(kv, provider_key(p, day, WRITES))?;
    }
    if read || write {
        bump(kv, hour_key(p, hour_of(f.time_ms)))?;
        if let Some(patient) = f.patient.filter(|pt| *pt != p) {
            if see(kv, p, day, patient, Seen::Any, f.index)? {
                bump(kv, provider_key(p, day, PATIENTS))?;
                novelty.new_patient = true;
            }
            // Overrides are counted per patient and day: one break-glass
            // episode is many reads of one chart.
            if f.method == Some("emergency") && see(kv, p, day, patient, Seen::Emergency, f.index)? {
                bump(kv, provider_key(p, day, EMERGENCY))?;
            }
            if read && ctx.enhanced && see(kv, p, day, patient, Seen::Enhanced, f.index)? {
                bump(kv, provider_key(p, day, ENHANCED_PATIENTS))?;
                novelty.new_enhanced_patient = true;
            }
        }
    }
    Ok(novelty)
}

/// A ring of recent (ms, entry index) events of one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring(pub Vec<(u64, u64)>);

/// The most events a ring keeps (above every threshold a rule may be set
/// to count within a window).
pub const RING: usize = 64;

/// Pushes an event on `subject`'s `window` ring, dropping events older
/// than `keep_ms`; returns the ring.
pub fn push_ring(
    kv: &mut impl Kv,
    window: &str,
    subject: &str,
    at_ms: u64,
    index: u64,
    keep_ms: u64,
) -> Result<Ring, KvError> {
    let key = ring_key(window, subject);
    let mut ring: Ring = match kv.get(&key)? {
        Some(v) => serde_json::from_slice(&v).map_err(|e| KvError(e.to_string()))?,
        None => Ring::default(),
    };
    ring.0.retain(|(t, _)| at_ms.saturating_sub(*t) <= keep_ms);
    ring.0.push((at_ms, index));
    if ring.0.len() > RING {
        let cut = ring.0.len() - RING;
        ring.0.drain(..cut);
    }
    kv.put(key, serde_json::to_vec(&ring).map_err(|e| KvError(e.to_string()))?);
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn facts<'a>(actor: &'a str, role: &'a str, action: &'a str, outcome: &'a str, ms: u64) -> Facts<'a> {
        Facts {
            index: ms,
            actor,
            role,
            action,
            patient: Some("P1"),
            record_id: Some("ab"),
            method: Some("consent"),
            outcome,
            time_ms: ms,
            reason: None,
            ip_hash: None,
            detail: None,
        }
    }

    #[test]
    fn keys_round_trip_and_sort_by_day() {
        assert_eq!(
            parse_day_key(&day_key(7, "records.read", "type:lab-result")),
            Some((7, "records.read", "type:lab-result"))
        );
        assert!(day_key(7, "z", "") < day_key(8, "a", ""));
        assert_eq!(parse_provider_key(&provider_key("SP1", 9, "reads")), Some(("SP1", 9, "reads")));
        assert_eq!(day_of(DAY_MS * 3 + 5), 3);
        assert_eq!(hour_of(DAY_MS + 3 * 3_600_000 + 1), 3);
    }

    #[test]
    fn an_entry_counts_where_it_belongs() {
        let dx = vec!["F32.9".to_string(), "F32.1".to_string(), "E11.9".to_string()];
        let ctx = Context { record_type: Some("mental-health"), enhanced: true, diagnoses: &dx };
        let mut kv = BTreeMap::new();
        let n = count(&mut kv, &facts("DOC", "provider", "record.create", "allowed", 10), &ctx).expect("count");
        assert_eq!(n, Novelty { new_patient: true, new_enhanced_patient: false }, "a write is not an enhanced read");
        let n = count(&mut kv, &facts("DOC", "provider", "record.read", "allowed", 11), &ctx).expect("count");
        assert_eq!(n, Novelty { new_patient: false, new_enhanced_patient: true });
        count(&mut kv, &facts("DOC", "provider", "record.read", "denied", 12), &ctx).expect("count");
        count(&mut kv, &facts("P1", "patient", "record.read", "allowed", 13), &ctx).expect("count");
        let c = |m: &str, d: &str| get_count(&kv, &day_key(0, m, d)).expect("get");
        assert_eq!(c("entries", ""), 4);
        assert_eq!(c("records.created", "dx:F32"), 1, "one count per category, not per code");
        assert_eq!(c("records.created", "dx:E11"), 1);
        assert_eq!(c("records.read", "dx:F32"), 2, "the read of a diagnosed record counts its categories");
        assert_eq!(c("records.read", ""), 2);
        assert_eq!(c("records.read", "type:mental-health"), 2);
        assert_eq!(c("denied", "action:record.read"), 1);
        let p = |m: &str| get_count(&kv, &provider_key("DOC", 0, m)).expect("get");
        assert_eq!(
            [p("reads"), p("writes"), p("patients"), p("enhanced-patients"), p("denied"), p("emergency")],
            [1, 1, 1, 1, 1, 0]
        );
        assert_eq!(get_count(&kv, &hour_key("DOC", 0)).expect("get"), 2);
    }

    #[test]
    fn rings_keep_the_window_and_a_bound() {
        let mut kv = BTreeMap::new();
        for i in 0..100 {
            push_ring(&mut kv, "deny", "SP1", 1_000 + i, i, 10_000).expect("push");
        }
        let r = push_ring(&mut kv, "deny", "SP1", 1_200, 100, 10_000).expect("push");
        assert_eq!(r.0.len(), RING);
        let r = push_ring(&mut kv, "deny", "SP1", 50_000, 101, 10_000).expect("push");
        assert_eq!(r.0, vec![(50_000, 101)], "old events fall out");
    }
}
