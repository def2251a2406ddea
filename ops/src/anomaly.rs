//! Anomaly and security rules over the audit stream: each entry is counted
//! ([`crate::analytics::count`]) and then checked against explained,
//! tunable rules ([`Rules`]); a rule that fires raises (or adds to) one
//! [`Flag`] per rule, subject and UTC day, naming the numbers and the
//! audit entries behind it. Flags live in the same key space as the
//! counters, written in the entry's own batch.
//!
//! | rule | kind | fires when |
//! |---|---|---|
//! | `distinct-patients` | anomaly | a provider touches more distinct patients in a day than `distinct_factor` × their own mean over active days of the last `baseline_days` (at least `distinct_min`); `new_provider_distinct` while they have fewer than `baseline_min_days` active days |
//! | `off-hours` | anomaly | a provider with `off_hours_min_history` accesses reads or writes at an hour that, with its neighbours, holds under `off_hours_share` of them |
//! | `break-glass` | anomaly | a provider's emergency overrides (distinct patients per day) reach `break_glass` within `break_glass_days` days |
//! | `enhanced-protection` | anomaly | a provider reads enhanced-protection data (mental health, genetic) of more distinct patients in a day than `enhanced_factor` × their mean (at least `enhanced_min`) |
//! | `repeated-denials` | security | `denials` refusals of one principal (or one address, when anonymous) within `denials_window_ms` |
//! | `failed-sign-ins` | security | `sign_in_failures` failed sign-ins from one address (or for one principal) within `sign_in_window_ms` |
//! | `share-lockout` | security | a patient's share codes lock after repeated wrong guesses |
//! | `tampering` | security | a verification or read found stored data that does not match its hash or does not authenticate |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analytics::{self, day_of, get_count, hour_of, metric, provider_key, Context, Kv, KvError, Novelty, Seen};
use crate::notify::Facts;

/// The rules' thresholds (tunable per node: `[anomaly]` in the
/// configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// `distinct-patients`: how many times the provider's own daily mean.
    pub distinct_factor: f64,
    /// `distinct-patients`: never below this many patients.
    pub distinct_min: u64,
    /// `distinct-patients`: the threshold while a provider has no baseline.
    pub new_provider_distinct: u64,
    /// Days of history a baseline is taken over.
    pub baseline_days: u32,
    /// Active days a baseline needs.
    pub baseline_min_days: u32,
    /// `off-hours`: accesses a provider needs before their hours count.
    pub off_hours_min_history: u64,
    /// `off-hours`: the share of accesses (hour ± 1) under which an hour is
    /// unusual.
    pub off_hours_share: f64,
    /// `break-glass`: emergency accesses that raise a flag…
    pub break_glass: u64,
    /// … within this many days.
    pub break_glass_days: u32,
    /// `enhanced-protection`: how many times the provider's own mean.
    pub enhanced_factor: f64,
    /// `enhanced-protection`: never below this many patients.
    pub enhanced_min: u64,
    /// `enhanced-protection`: the threshold while a provider has no baseline.
    pub new_provider_enhanced: u64,
    /// `repeated-denials`: refusals that raise a flag…
    pub denials: usize,
    /// … within this window.
    pub denials_window_ms: u64,
    /// `failed-sign-ins`: failures that raise a flag…
    pub sign_in_failures: usize,
    /// … within this window.
    pub sign_in_window_ms: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            distinct_factor: 3.0,
            distinct_min: 15,
            new_provider_distinct: 40,
            baseline_days: 28,
            baseline_min_days: 5,
            off_hours_min_history: 200,
            off_hours_share: 0.005,
            break_glass: 3,
            break_glass_days: 7,
            enhanced_factor: 3.0,
            enhanced_min: 4,
            new_provider_enhanced: 20,
            denials: 10,
            denials_window_ms: 10 * 60_000,
            sign_in_failures: 5,
            sign_in_window_ms: 5 * 60_000,
        }
    }
}

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Unusual use by someone allowed (oversight).
    Anomaly,
    /// An attack or a fault of the stores (security alert).
    Security,
}

/// An admin's acknowledgement of a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// When (unix ms).
    pub at_ms: u64,
    /// Why, in their words (bounded by the caller).
    pub note: Option<String>,
}

/// The most audit entries a flag lists.
pub const MAX_ENTRIES: usize = 50;

/// One rule that fired for one subject on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Opaque id (hex of its key).
    pub id: String,
    /// The rule.
    pub rule: String,
    /// Anomaly or security.
    pub kind: Kind,
    /// Whom it is about: a principal, `ip:<keyed hash>`, or a record.
    pub subject: String,
    /// The UTC day (days since 1970-01-01).
    pub day: u32,
    /// When it first and last fired (unix ms).
    pub first_ms: u64,
    /// When it last fired.
    pub last_ms: u64,
    /// How many entries fired it.
    pub occurrences: u64,
    /// The rule and the numbers, in words.
    pub explanation: String,
    /// The numbers the rule compared, at the last firing.
    pub numbers: BTreeMap<String, f64>,
    /// The audit entries behind it (at most [`MAX_ENTRIES`]).
    pub entries: Vec<u64>,
    /// Set once an admin has looked at it.
    pub acknowledged: Option<Ack>,
}

/// Key of a flag: `f` ‖ day ‖ rule ‖ 0 ‖ subject.
pub fn flag_key(day: u32, rule: &str, subject: &str) -> Vec<u8> {
    let mut k = vec![b'f'];
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(rule.as_bytes());
    k.push(0);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// The key a flag id names (`None` for anything not a flag id).
pub fn key_of_id(id: &str) -> Option<Vec<u8>> {
    let rest = hex::decode(id).ok().filter(|r| r.len() > 5 && r.len() < 1024)?;
    Some([&b"f"[..], &rest].concat())
}

fn id_of_key(key: &[u8]) -> String {
    hex::encode(&key[1..])
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    rule: &'static str,
    kind: Kind,
    subject: String,
    explanation: String,
    numbers: Vec<(&'static str, f64)>,
    entries: Vec<u64>,
}

/// The provider's mean of `metric` over the active days (any patient
/// touched) among the `days` before `day`, and how many were active.
fn baseline(kv: &impl Kv, provider: &str, day: u32, days: u32, m: &str) -> Result<(f64, u32), KvError> {
    let (mut sum, mut active) = (0u64, 0u32);
    for d in day.saturating_sub(days)..day {
        if get_count(kv, &provider_key(provider, d, metric::PATIENTS))? > 0 {
            active += 1;
            sum += get_count(kv, &provider_key(provider, d, m))?;
        }
    }
    Ok((if active == 0 { 0.0 } else { sum as f64 / active as f64 }, active))
}

/// The entries that first touched each patient the provider saw on `day`.
fn seen_entries(kv: &impl Kv, provider: &str, day: u32, set: Seen) -> Result<Vec<u64>, KvError> {
    let mut out: Vec<u64> = kv
        .scan(&analytics::seen_prefix(provider, day, set))?
        .into_iter()
        .filter_map(|(_, v)| v.try_into().ok().map(u64::from_be_bytes))
        .collect();
    out.sort_unstable();
    out.truncate(MAX_ENTRIES);
    Ok(out)
}

/// Who a refusal is attributed to: the principal, else the address.
fn subject_of(f: &Facts<'_>) -> String {
    match (f.actor, f.ip_hash) {
        ("anonymous" | "", Some(ip)) => format!("ip:{ip}"),
        (actor, _) => actor.to_string(),
    }
}

fn evaluate(
    kv: &mut impl Kv,
    f: &Facts<'_>,
    ctx: &Context<'_>,
    n: Novelty,
    r: &Rules,
) -> Result<Vec<Finding>, KvError> {
    let mut out = Vec::new();
    let day = day_of(f.time_ms);
    if f.outcome == "denied" {
        let subject = subject_of(f);
        let ring = analytics::push_ring(kv, "deny", &subject, f.time_ms, f.index, r.denials_window_ms)?;
        if ring.0.len() >= r.denials {
            out.push(Finding {
                rule: "repeated-denials",
                kind: Kind::Security,
                explanation: format!(
                    "{} refusals of {subject} within {} min (threshold {})",
                    ring.0.len(),
                    r.denials_window_ms / 60_000,
                    r.denials
                ),
                subject,
                numbers: vec![("refusals", ring.0.len() as f64), ("threshold", r.denials as f64)],
                entries: ring.0.iter().map(|(_, i)| *i).collect(),
            });
        }
        if f.action == "auth.sign-in" {
            // From one address (guessing many accounts), and for one
            // principal (one account guessed from many addresses).
            let mut subjects = vec![f.actor.to_string()];
            subjects.extend(f.ip_hash.map(|ip| format!("ip:{ip}")));
            for subject in subjects {
                let ring = analytics::push_ring(kv, "sign-in", &subject, f.time_ms, f.index, r.sign_in_window_ms)?;
                if ring.0.len() >= r.sign_in_failures {
                    out.push(Finding {
                        rule: "failed-sign-ins",
                        kind: Kind::Security,
                        explanation: format!(
                            "{} failed sign-ins for {subject} within {} min (threshold {})",
                            ring.0.len(),
                            r.sign_in_window_ms / 60_000,
                            r.sign_in_failures
                        ),
                        subject,
                        numbers: vec![("failures", ring.0.len() as f64), ("threshold", r.sign_in_failures as f64)],
                        entries: ring.0.iter().map(|(_, i)| *i).collect(),
                    });
                }
            }
        }
        if f.reason == Some("access-codes-locked") {
            let patient = f.patient.unwrap_or("unknown");
            out.push(Finding {
                rule: "share-lockout",
                kind: Kind::Security,
                explanation: format!(
                    "redemption of {patient}'s share codes is locked after repeated wrong codes; the last attempt was by {}",
                    subject_of(f)
                ),
                subject: patient.to_string(),
                numbers: vec![],
                entries: vec![f.index],
            });
        }
    }
    if f.reason == Some("integrity-failure") {
        let subject = f.record_id.map_or_else(|| "store".to_string(), |r| format!("record:{r}"));
        out.push(Finding {
            rule: "tampering",
            kind: Kind::Security,
            explanation: format!(
                "{} found stored data that does not match its hash or does not authenticate ({subject})",
                f.action
            ),
            subject,
            numbers: vec![],
            entries: vec![f.index],
        });
    }
    if f.role != "provider" || f.outcome != "allowed" {
        return Ok(out);
    }
    let p = f.actor;
    if n.new_patient {
        let today = get_count(kv, &provider_key(p, day, metric::PATIENTS))?;
        let (mean, active) = baseline(kv, p, day, r.baseline_days, metric::PATIENTS)?;
        let threshold = if active >= r.baseline_min_days {
            r.distinct_min.max((r.distinct_factor * mean).ceil() as u64)
        } else {
            r.new_provider_distinct
        };
        if today >= threshold {
            out.push(Finding {
                rule: "distinct-patients",
                kind: Kind::Anomaly,
                subject: p.to_string(),
                explanation: format!(
                    "{today} distinct patients today against a mean of {mean:.1} over {active} active days (threshold {threshold})"
                ),
                numbers: vec![
                    ("patients_today", today as f64),
                    ("baseline_mean", mean),
                    ("active_days", f64::from(active)),
                    ("threshold", threshold as f64),
                ],
                entries: seen_entries(kv, p, day, Seen::Any)?,
            });
        }
    }
    if n.new_enhanced_patient {
        let today = get_count(kv, &provider_key(p, day, metric::ENHANCED_PATIENTS))?;
        let (mean, active) = baseline(kv, p, day, r.baseline_days, metric::ENHANCED_PATIENTS)?;
        let threshold = if active >= r.baseline_min_days {
            r.enhanced_min.max((r.enhanced_factor * mean).ceil() as u64)
        } else {
            r.new_provider_enhanced
        };
        if today >= threshold {
            out.push(Finding {
                rule: "enhanced-protection",
                kind: Kind::Anomaly,
                subject: p.to_string(),
                explanation: format!(
                    "enhanced-protection data ({}) of {today} distinct patients today against a mean of {mean:.1} (threshold {threshold})",
                    ctx.record_type.unwrap_or("mental health, genetic")
                ),
                numbers: vec![
                    ("patients_today", today as f64),
                    ("baseline_mean", mean),
                    ("threshold", threshold as f64),
                ],
                entries: seen_entries(kv, p, day, Seen::Enhanced)?,
            });
        }
    }
    let touches = matches!(
        f.action,
        "record.read" | "record.create" | "record.update" | "attachment.download" | "attachment.link-download"
    );
    if touches {
        let hour = hour_of(f.time_ms);
        let mut hist = [0u64; 24];
        for (h, slot) in hist.iter_mut().enumerate() {
            *slot = get_count(kv, &analytics::hour_key(p, h as u8))?;
        }
        // Before this access.
        let total = hist.iter().sum::<u64>().saturating_sub(1);
        let near = (hist[usize::from((hour + 23) % 24)] + hist[usize::from(hour)] + hist[usize::from((hour + 1) % 24)])
            .saturating_sub(1);
        if total >= r.off_hours_min_history && (near as f64) < r.off_hours_share * total as f64 {
            out.push(Finding {
                rule: "off-hours",
                kind: Kind::Anomaly,
                subject: p.to_string(),
                explanation: format!(
                    "{} at {hour:02}:00 UTC; {near} of the provider's {total} earlier accesses were within an hour of it (under {:.1}%)",
                    f.action,
                    r.off_hours_share * 100.0
                ),
                numbers: vec![("hour", f64::from(hour)), ("near", near as f64), ("history", total as f64)],
                entries: vec![f.index],
            });
        }
    }
    if f.method == Some("emergency") {
        let mut total = 0;
        for d in day.saturating_sub(r.break_glass_days - 1)..=day {
            total += get_count(kv, &provider_key(p, d, metric::EMERGENCY))?;
        }
        if total >= r.break_glass {
            out.push(Finding {
                rule: "break-glass",
                kind: Kind::Anomaly,
                subject: p.to_string(),
                explanation: format!(
                    "{total} emergency overrides (patients opened by break-glass) in {} days (threshold {})",
                    r.break_glass_days, r.break_glass
                ),
                numbers: vec![("emergency_accesses", total as f64), ("threshold", r.break_glass as f64)],
                entries: vec![f.index],
            });
        }
    }
    Ok(out)
}

/// Counts entry `f` and checks it against the rules: the flags it raised
/// or added to, as stored.
pub fn record(kv: &mut impl Kv, f: &Facts<'_>, ctx: &Context<'_>, rules: &Rules) -> Result<Vec<Flag>, KvError> {
    let novelty = analytics::count(kv, f, ctx)?;
    let findings = evaluate(kv, f, ctx, novelty, rules)?;
    let day = day_of(f.time_ms);
    let mut flags = Vec::with_capacity(findings.len());
    for finding in findings {
        let key = flag_key(day, finding.rule, &finding.subject);
        let numbers = finding.numbers.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let flag = match kv.get(&key)? {
            Some(bytes) => {
                let mut flag: Flag = serde_json::from_slice(&bytes).map_err(|e| KvError(e.to_string()))?;
                flag.last_ms = f.time_ms;
                flag.occurrences += 1;
                flag.explanation = finding.explanation;
                flag.numbers = numbers;
                for i in finding.entries {
                    if flag.entries.len() < MAX_ENTRIES && !flag.entries.contains(&i) {
                        flag.entries.push(i);
                    }
                }
                flag
            }
            None => {
                let mut entries = finding.entries;
                entries.truncate(MAX_ENTRIES);
                Flag {
                    id: id_of_key(&key),
                    rule: finding.rule.into(),
                    kind: finding.kind,
                    subject: finding.subject,
                    day,
                    first_ms: f.time_ms,
                    last_ms: f.time_ms,
                    occurrences: 1,
                    explanation: finding.explanation,
                    numbers,
                    entries,
                    acknowledged: None,
                }
            }
        };
        kv.put(key, serde_json::to_vec(&flag).map_err(|e| KvError(e.to_string()))?);
        flags.push(flag);
    }
    Ok(flags)
}

#[cfg(test)]
mod tests;
