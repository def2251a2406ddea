//! Analytics and oversight: the counters and flags of
//! [`medanchor_ops::analytics`] and [`medanchor_ops::anomaly`], kept in the
//! `analytics` family and written **in each audit entry's own batch**
//! (`audit::commit`), so they never lag or lead the log; and what admins
//! and auditors read of them — the dashboard (per-day counts, trends, open
//! alerts), providers' activity (a compliance report, JSON or CSV), and the
//! flags, which an admin acknowledges (audited).
//!
//! Nothing here scans the log: a dashboard over 90 days reads at most
//! 90 days × the metrics' keys, whatever the log's size. A diagnosis
//! category counted fewer than [`Config::analytics_min_cell`] times in the
//! window is not shown (only how many such categories were left out), so
//! the dashboard cannot be joined with the audit log to learn one
//! patient's diagnosis.

use std::collections::{BTreeMap, HashMap};

use medanchor_contracts::types::DataType;
use medanchor_ops::analytics::{
    self as counters, day_key, day_of, metric, parse_day_key, parse_provider_key, Context, Kv, KvError,
};
use medanchor_ops::anomaly::{self, Flag, Rules};
use rocksdb::WriteBatch;
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::db::{ApiDb, Cf, DbError};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// The counters' key space over the database and the batch being built:
/// reads see the batch's own earlier writes.
pub(crate) struct BatchKv<'a> {
    db: &'a ApiDb,
    batch: &'a mut WriteBatch,
    pending: &'a mut HashMap<Vec<u8>, Vec<u8>>,
}

impl<'a> BatchKv<'a> {
    pub(crate) fn new(db: &'a ApiDb, batch: &'a mut WriteBatch, pending: &'a mut HashMap<Vec<u8>, Vec<u8>>) -> Self {
        BatchKv { db, batch, pending }
    }
}

impl Kv for BatchKv<'_> {
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.pending.get(key) {
            return Ok(Some(v.clone()));
        }
        self.db.get(Cf::Analytics, key).map_err(|e| KvError(e.to_string()))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(self.db.cf(Cf::Analytics), &key, &value);
        self.pending.insert(key, value);
    }

    fn scan(&self, prefix: &[u8]) -> std::result::Result<counters::Pairs, KvError> {
        let mut all: BTreeMap<Vec<u8>, Vec<u8>> =
            self.db.scan(Cf::Analytics, prefix).map_err(|e| KvError(e.to_string()))?.into_iter().collect();
        for (k, v) in self.pending.iter().filter(|(k, _)| k.starts_with(prefix)) {
            all.insert(k.clone(), v.clone());
        }
        Ok(all.into_iter().collect())
    }
}

/// What the store knows of an entry's record: its type and whether its
/// data type has enhanced protection (from the record's metadata, which
/// is written before the entry that reports it).
fn context_of(db: &ApiDb, entry: &AuditEntry) -> std::result::Result<(Option<String>, bool), DbError> {
    let Some(id) = entry.record_id.as_deref().and_then(|h| hex::decode(h).ok()) else { return Ok((None, false)) };
    let Ok(id) = <[u8; 16]>::try_from(id) else { return Ok((None, false)) };
    Ok(match db.record(&id, 1)? {
        Some(meta) => {
            let enhanced = meta.data_type.parse::<DataType>().is_ok_and(DataType::is_enhanced);
            (Some(meta.record_type), enhanced)
        }
        None => (None, false),
    })
}

/// Counts `entry` (index `index`) and checks the rules, into `kv`; the
/// flags it raised or added to.
pub(crate) fn record_entry(
    db: &ApiDb,
    kv: &mut impl Kv,
    entry: &AuditEntry,
    index: u64,
    rules: &Rules,
) -> std::result::Result<Vec<Flag>, DbError> {
    let (record_type, enhanced) = context_of(db, entry)?;
    let ctx = Context { record_type: record_type.as_deref(), enhanced, diagnoses: &entry.diagnoses };
    anomaly::record(kv, &entry.facts(index), &ctx, rules).map_err(|e| DbError::Storage(e.to_string()))
}

/// `meta` key: how many entries (from index 0) the counters cover.
const COUNTED: &[u8] = b"analytics_counted";

/// Counts the entries a log written before the counters existed holds:
/// the schema 4 → 5 migration (resumable: each batch of counts is written
/// with how far it got). Diagnosis categories are not in the log and
/// start with this version.
pub(crate) fn count_log(db: &ApiDb) -> std::result::Result<(), DbError> {
    let size = crate::audit::size_of(db)?;
    let mut done = db
        .get(Cf::Meta, COUNTED)?
        .map(|v| v.try_into().map(u64::from_be_bytes).map_err(|_| DbError::Corrupt("analytics counted".into())))
        .transpose()?
        .unwrap_or(0);
    let rules = Rules::default();
    while done < size {
        let end = size.min(done + 10_000);
        let mut batch = db.batch();
        let mut pending = HashMap::new();
        let mut kv = BatchKv::new(db, &mut batch, &mut pending);
        for i in done..end {
            if let Some(entry) = crate::audit::read_entry(db, i)? {
                record_entry(db, &mut kv, &entry, i, &rules)?;
            }
        }
        batch.put_cf(db.cf(Cf::Meta), COUNTED, end.to_be_bytes());
        db.write(batch)?;
        done = end;
    }
    Ok(())
}

/// Marks the counters as covering `size` entries (in the audit commit).
pub(crate) fn mark_counted(db: &ApiDb, batch: &mut WriteBatch, size: u64) {
    batch.put_cf(db.cf(Cf::Meta), COUNTED, size.to_be_bytes());
}

/// The counters a replay of the whole log gives, from nothing: what the
/// stored counters must equal (diagnosis counts aside: they are not in
/// the log). For checks and tests.
pub fn recount(db: &ApiDb) -> std::result::Result<BTreeMap<Vec<u8>, Vec<u8>>, DbError> {
    let mut kv = BTreeMap::new();
    let rules = Rules::default();
    for i in 0..crate::audit::size_of(db)? {
        if let Some(entry) = crate::audit::read_entry(db, i)? {
            record_entry(db, &mut kv, &entry, i, &rules)?;
        }
    }
    Ok(kv)
}

/// The stored counters, in the same form as [`recount`].
pub fn stored(db: &ApiDb) -> std::result::Result<BTreeMap<Vec<u8>, Vec<u8>>, DbError> {
    Ok(db.scan(Cf::Analytics, b"")?.into_iter().collect())
}

// ------------------------------------------------------------- answers

/// One metric per day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    /// The metric (`records.created`, `records.read`, `shares.created`,
    /// `emergency`, `denied`, …).
    pub metric: String,
    /// Over the window.
    pub total: u64,
    /// One count per day, oldest first.
    pub per_day: Vec<u64>,
}

/// A count under one dimension (record type, diagnosis category, action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Count {
    /// The metric.
    pub metric: String,
    /// The record type, ICD-10 category or action.
    pub key: String,
    /// Over the window.
    pub count: u64,
}

/// Week over week.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trend {
    /// The metric.
    pub metric: String,
    /// The last 7 days (today included).
    pub this_week: u64,
    /// The 7 days before.
    pub last_week: u64,
    /// (this − last) / last; absent when last week had none.
    pub change: Option<f64>,
}

/// The analytics dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dashboard {
    /// Days covered (today included).
    pub days: u32,
    /// The first day (UTC, `YYYY-MM-DD`).
    pub from: String,
    /// The last day (today, UTC).
    pub to: String,
    /// Per-day counts of each metric.
    pub series: Vec<Series>,
    /// Records created, updated and read, by record type.
    pub by_record_type: Vec<Count>,
    /// Records created and read, by ICD-10 category (three characters):
    /// only categories counted at least `min_cell` times.
    pub by_diagnosis: Vec<Count>,
    /// Categories left out for counting fewer than `min_cell`.
    pub diagnoses_suppressed: u64,
    /// The smallest count shown by diagnosis.
    pub min_cell: u64,
    /// Refusals by action.
    pub denied_by_action: Vec<Count>,
    /// This week against last.
    pub trends: Vec<Trend>,
    /// Flags of the last 7 days not yet acknowledged, newest first (at
    /// most 50).
    pub alerts: Vec<FlagView>,
    /// How many flags of the last 7 days are open.
    pub open_alerts: u64,
}

/// A flag as admins and auditors see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagView {
    /// Opaque id (acknowledge it by this).
    pub id: String,
    /// The rule (`distinct-patients`, `off-hours`, `break-glass`,
    /// `enhanced-protection`, `repeated-denials`, `failed-sign-ins`,
    /// `share-lockout`, `tampering`).
    pub rule: String,
    /// `anomaly` (unusual use) or `security` (an attack or a fault).
    pub kind: String,
    /// Whom it is about: a principal, `ip:<keyed hash>`, `record:<id>`.
    pub subject: String,
    /// The day (UTC).
    pub day: String,
    /// First and last firing (unix ms).
    pub first_ms: u64,
    /// Last firing.
    pub last_ms: u64,
    /// Entries that fired it.
    pub occurrences: u64,
    /// The rule and its numbers, in words.
    pub explanation: String,
    /// The numbers compared.
    pub numbers: BTreeMap<String, f64>,
    /// Audit entries behind it (indices; at most 50).
    pub entries: Vec<u64>,
    /// Who acknowledged it, when, why.
    pub acknowledged_by: Option<String>,
    /// When (unix ms).
    pub acknowledged_ms: Option<u64>,
    /// Their note.
    pub note: Option<String>,
}

impl From<Flag> for FlagView {
    fn from(f: Flag) -> Self {
        let ack = f.acknowledged;
        FlagView {
            id: f.id,
            rule: f.rule,
            kind: match f.kind {
                anomaly::Kind::Anomaly => "anomaly".into(),
                anomaly::Kind::Security => "security".into(),
            },
            subject: f.subject,
            day: date_of_day(f.day),
            first_ms: f.first_ms,
            last_ms: f.last_ms,
            occurrences: f.occurrences,
            explanation: f.explanation,
            numbers: f.numbers,
            entries: f.entries,
            acknowledged_by: ack.as_ref().map(|a| a.by.clone()),
            acknowledged_ms: ack.as_ref().map(|a| a.at_ms),
            note: ack.and_then(|a| a.note),
        }
    }
}

/// One provider's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderDay {
    /// The day (UTC).
    pub day: String,
    /// Reads of records and attachments.
    pub reads: u64,
    /// Records created and updated.
    pub writes: u64,
    /// Distinct patients touched.
    pub patients: u64,
    /// Emergency overrides (patients opened by break-glass).
    pub emergency: u64,
    /// Refused attempts.
    pub denied: u64,
    /// Distinct patients whose enhanced-protection data was read.
    pub enhanced_patients: u64,
}

/// One provider over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderActivity {
    /// The provider.
    pub provider: String,
    /// Reads over the period.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// Distinct patients over the whole period.
    pub patients: u64,
    /// Emergency overrides.
    pub emergency: u64,
    /// Refusals.
    pub denied: u64,
    /// Flags raised about them in the period.
    pub flags: u64,
    /// Days with activity, oldest first.
    pub days: Vec<ProviderDay>,
}

/// The compliance report: every provider's activity and the flags of a
/// period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceReport {
    /// First day (UTC).
    pub from: String,
    /// Last day (UTC).
    pub to: String,
    /// Providers with activity, by principal.
    pub providers: Vec<ProviderActivity>,
    /// Flags raised in the period, oldest first.
    pub flags: Vec<FlagView>,
}

impl ComplianceReport {
    /// CSV: one row per provider and day (with the day's flags), then one
    /// row per flag. Cells that a spreadsheet would run as a formula are
    /// quoted with a leading apostrophe.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("provider,day,reads,writes,patients,emergency,denied,enhanced_patients,flags\n");
        for p in &self.providers {
            for d in &p.days {
                let flags: Vec<&str> = self
                    .flags
                    .iter()
                    .filter(|f| f.subject == p.provider && f.day == d.day)
                    .map(|f| f.rule.as_str())
                    .collect();
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    cell(&p.provider),
                    d.day,
                    d.reads,
                    d.writes,
                    d.patients,
                    d.emergency,
                    d.denied,
                    d.enhanced_patients,
                    cell(&flags.join(" "))
                ));
            }
        }
        out
    }
}

fn cell(s: &str) -> String {
    let guarded = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    if guarded.contains([',', '"', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// `YYYY-MM-DD` of a day number.
pub fn date_of_day(day: u32) -> String {
    let (y, m, d) = medanchor_storage::keys::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of `YYYY-MM-DD`.
pub fn day_of_date(s: &str) -> Option<u32> {
    let (y, m, d) = medanchor_clinical::template::parse_date(s)?;
    u32::try_from(crate::disclosures::days_from_civil(i64::from(y), i64::from(m), i64::from(d))).ok()
}

/// Longest report period.
pub const MAX_REPORT_DAYS: u32 = 366;

/// Longest note on an acknowledgement.
pub const MAX_NOTE: usize = 1000;

/// The dashboard over `days` up to `today`, from the counters alone.
pub fn dashboard_of(db: &ApiDb, today: u32, days: u32, min_cell: u64) -> std::result::Result<Dashboard, DbError> {
    let first = today + 1 - days;
    // Trends need two weeks whatever the window.
    let scan_from = first.min(today.saturating_sub(13));
    let mut series: BTreeMap<&str, Vec<u64>> = metric::DAILY.iter().map(|m| (*m, vec![0; days as usize])).collect();
    let mut week = BTreeMap::<&str, (u64, u64)>::new();
    let mut dims = BTreeMap::<(String, String), u64>::new();
    for (k, v) in db.scan_range(Cf::Analytics, &day_key(scan_from, "", ""), &day_key(today + 1, "", ""))? {
        let (Some((day, m, dim)), Ok(v)) = (parse_day_key(&k), <[u8; 8]>::try_from(v.as_slice())) else { continue };
        let n = u64::from_be_bytes(v);
        let Some(name) = metric::DAILY.iter().find(|x| **x == m) else { continue };
        if dim.is_empty() {
            let w = week.entry(name).or_default();
            if day + 7 > today {
                w.0 += n;
            } else if day + 14 > today {
                w.1 += n;
            }
            if day >= first {
                series.get_mut(name).expect("every daily metric")[(day - first) as usize] = n;
            }
        } else if day >= first {
            *dims.entry((m.to_string(), dim.to_string())).or_default() += n;
        }
    }
    let mut by_record_type = Vec::new();
    let mut by_diagnosis = Vec::new();
    let mut denied_by_action = Vec::new();
    let mut diagnoses_suppressed = 0;
    for ((m, dim), count) in dims {
        let (kind, key) = dim.split_once(':').unwrap_or(("", &dim));
        let c = Count { metric: m.clone(), key: key.to_string(), count };
        match kind {
            "type" => by_record_type.push(c),
            "dx" if count >= min_cell => by_diagnosis.push(c),
            "dx" => diagnoses_suppressed += 1,
            "action" => denied_by_action.push(c),
            _ => {}
        }
    }
    let trends = metric::DAILY
        .iter()
        .map(|m| {
            let (this_week, last_week) = week.get(m).copied().unwrap_or_default();
            let change = (last_week > 0).then(|| (this_week as f64 - last_week as f64) / last_week as f64);
            Trend { metric: m.to_string(), this_week, last_week, change }
        })
        .collect();
    let open = flags_between(db, today.saturating_sub(6), today)?
        .into_iter()
        .filter(|f| f.acknowledged.is_none())
        .collect::<Vec<_>>();
    let open_alerts = open.len() as u64;
    let mut alerts: Vec<FlagView> = open.into_iter().map(FlagView::from).collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.last_ms));
    alerts.truncate(50);
    Ok(Dashboard {
        days,
        from: date_of_day(first),
        to: date_of_day(today),
        series: metric::DAILY
            .iter()
            .map(|m| {
                let per_day = series.remove(m).unwrap_or_default();
                Series { metric: m.to_string(), total: per_day.iter().sum(), per_day }
            })
            .collect(),
        by_record_type,
        by_diagnosis,
        diagnoses_suppressed,
        min_cell,
        denied_by_action,
        trends,
        alerts,
        open_alerts,
    })
}

/// Flags of days `from..=to`, oldest day first.
fn flags_between(db: &ApiDb, from: u32, to: u32) -> std::result::Result<Vec<Flag>, DbError> {
    let start = [&b"f"[..], &from.to_be_bytes()].concat();
    let end = [&b"f"[..], &(to + 1).to_be_bytes()].concat();
    db.scan_range(Cf::Analytics, &start, &end)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| DbError::Corrupt(e.to_string())))
        .collect()
}

/// Open (unacknowledged) flags of the last 7 days: (anomalies, security
/// alerts).
pub fn open_flags(db: &ApiDb) -> std::result::Result<(u64, u64), DbError> {
    let today = day_of(crate::state::now_ms());
    let open = flags_between(db, today.saturating_sub(6), today)?.into_iter().filter(|f| f.acknowledged.is_none());
    Ok(open.fold((0, 0), |(a, s), f| match f.kind {
        anomaly::Kind::Anomaly => (a + 1, s),
        anomaly::Kind::Security => (a, s + 1),
    }))
}

/// Today's count of a tenant-wide metric (for `/metrics`).
pub fn today_count(db: &ApiDb, metric: &str) -> std::result::Result<u64, DbError> {
    let key = day_key(day_of(crate::state::now_ms()), metric, "");
    Ok(db.get(Cf::Analytics, &key)?.and_then(|v| v.try_into().ok().map(u64::from_be_bytes)).unwrap_or(0))
}

/// Every provider's activity over `from..=to` and the period's flags.
pub fn compliance_of(db: &ApiDb, from: u32, to: u32) -> std::result::Result<ComplianceReport, DbError> {
    let mut providers: BTreeMap<String, BTreeMap<u32, ProviderDay>> = BTreeMap::new();
    for (k, v) in db.scan(Cf::Analytics, b"p")? {
        let (Some((provider, day, m)), Ok(v)) = (parse_provider_key(&k), <[u8; 8]>::try_from(v.as_slice())) else {
            continue;
        };
        if day < from || day > to {
            continue;
        }
        let n = u64::from_be_bytes(v);
        let d = providers.entry(provider.to_string()).or_default().entry(day).or_insert_with(|| ProviderDay {
            day: date_of_day(day),
            reads: 0,
            writes: 0,
            patients: 0,
            emergency: 0,
            denied: 0,
            enhanced_patients: 0,
        });
        match m {
            metric::READS => d.reads = n,
            metric::WRITES => d.writes = n,
            metric::PATIENTS => d.patients = n,
            metric::EMERGENCY => d.emergency = n,
            metric::DENIED => d.denied = n,
            metric::ENHANCED_PATIENTS => d.enhanced_patients = n,
            _ => {}
        }
    }
    let flags: Vec<FlagView> = flags_between(db, from, to)?.into_iter().map(FlagView::from).collect();
    let mut out = Vec::with_capacity(providers.len());
    for (provider, days) in providers {
        // Distinct over the period: the union of the days' patient sets.
        let mut seen = std::collections::BTreeSet::new();
        for day in days.keys() {
            for (k, _) in db.scan(Cf::Analytics, &counters::seen_prefix(&provider, *day, counters::Seen::Any))? {
                seen.insert(k[counters::seen_prefix(&provider, *day, counters::Seen::Any).len()..].to_vec());
            }
        }
        let days: Vec<ProviderDay> = days.into_values().collect();
        out.push(ProviderActivity {
            reads: days.iter().map(|d| d.reads).sum(),
            writes: days.iter().map(|d| d.writes).sum(),
            patients: seen.len() as u64,
            emergency: days.iter().map(|d| d.emergency).sum(),
            denied: days.iter().map(|d| d.denied).sum(),
            flags: flags.iter().filter(|f| f.subject == provider).count() as u64,
            provider,
            days,
        });
    }
    Ok(ComplianceReport { from: date_of_day(from), to: date_of_day(to), providers: out, flags })
}

impl Service {
    /// Admins and auditors; an audited refusal for anyone else.
    async fn oversight(&self, caller: &Caller, action: &str, admin_only: bool) -> Result<AuditEntry> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let entry = caller.entry(role, action);
        let allowed = role == "admin" || (!admin_only && role == "auditor");
        if !allowed {
            let refused = Error::Forbidden {
                code: if admin_only { "admin-only" } else { "oversight-only" },
                detail: if admin_only {
                    "only admins acknowledge flags".into()
                } else {
                    "analytics and oversight are for admins and auditors".into()
                },
                reason: None,
            };
            return self.audited(entry, Err(refused)).await;
        }
        Ok(entry)
    }

    /// The dashboard over the last `days` days (1 to 366). Admins and
    /// auditors; audited.
    pub async fn dashboard(&self, caller: &Caller, days: u32) -> Result<Dashboard> {
        let entry = self.oversight(caller, "analytics.dashboard", false).await?;
        let result = async {
            if !(1..=MAX_REPORT_DAYS).contains(&days) {
                return Err(Error::bad("invalid-days", format!("days must be 1 to {MAX_REPORT_DAYS}")));
            }
            // Entries are stamped by the system clock; so is today.
            let (s, today) = (self.clone(), day_of(crate::state::now_ms()));
            let min_cell = self.config.analytics_min_cell;
            tokio::task::spawn_blocking(move || dashboard_of(&s.db, today, days, min_cell))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)
        }
        .await;
        self.audited(entry, result).await
    }

    /// Providers' activity and the flags of `from..=to` (`YYYY-MM-DD`,
    /// UTC; at most 366 days). Admins and auditors; audited.
    pub async fn compliance_report(&self, caller: &Caller, from: &str, to: &str) -> Result<ComplianceReport> {
        let mut entry = self.oversight(caller, "analytics.compliance", false).await?;
        let result = async {
            let bad = |what: &str| Error::bad("invalid-date", format!("{what} must be a date, YYYY-MM-DD"));
            let from = day_of_date(from).ok_or_else(|| bad("from"))?;
            let to = day_of_date(to).ok_or_else(|| bad("to"))?;
            if from > to || to - from >= MAX_REPORT_DAYS {
                return Err(Error::bad(
                    "invalid-range",
                    format!("from must not be after to, and the period at most {MAX_REPORT_DAYS} days"),
                ));
            }
            let s = self.clone();
            tokio::task::spawn_blocking(move || compliance_of(&s.db, from, to))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)
        }
        .await;
        if let Ok(r) = &result {
            entry.detail =
                Some(format!("{}..{}: {} providers, {} flags", r.from, r.to, r.providers.len(), r.flags.len()));
        }
        self.audited(entry, result).await
    }

    /// Flags of the last `days` days (open ones only unless `all`), newest
    /// first, at most 500. Admins and auditors; audited.
    pub async fn flags(&self, caller: &Caller, days: u32, all: bool) -> Result<Vec<FlagView>> {
        let entry = self.oversight(caller, "analytics.flags", false).await?;
        let result = async {
            if !(1..=MAX_REPORT_DAYS).contains(&days) {
                return Err(Error::bad("invalid-days", format!("days must be 1 to {MAX_REPORT_DAYS}")));
            }
            let today = day_of(crate::state::now_ms());
            let mut flags: Vec<FlagView> = flags_between(&self.db, today + 1 - days, today)?
                .into_iter()
                .filter(|f| all || f.acknowledged.is_none())
                .map(FlagView::from)
                .collect();
            flags.sort_by_key(|a| std::cmp::Reverse(a.last_ms));
            flags.truncate(500);
            Ok(flags)
        }
        .await;
        self.audited(entry, result).await
    }

    /// An admin acknowledges flag `id`, with an optional note. Audited
    /// (`flag.acknowledge`, the flag's rule and subject in the detail).
    pub async fn acknowledge_flag(&self, caller: &Caller, id: &str, note: Option<&str>) -> Result<FlagView> {
        let mut entry = self.oversight(caller, "flag.acknowledge", true).await?;
        let who = caller.require()?.to_string();
        let result = async {
            if note.is_some_and(|n| n.len() > MAX_NOTE) {
                return Err(Error::bad("invalid-note", format!("at most {MAX_NOTE} bytes")));
            }
            let key =
                anomaly::key_of_id(id).ok_or_else(|| Error::NotFound(format!("flag {}", crate::error::echo(id))))?;
            // Serialized with the audit writer's read-modify-write of the
            // same flag: the acknowledgement goes through the log's commit.
            let ack = anomaly::Ack { by: who, at_ms: self.now_ms(), note: note.map(str::to_string) };
            let flag = self.audit.acknowledge(key, ack).await.map_err(Error::internal)?;
            flag.map(FlagView::from).ok_or_else(|| Error::NotFound(format!("flag {}", crate::error::echo(id))))
        }
        .await;
        if let Ok(f) = &result {
            entry.detail = Some(format!("{} {} {}", f.rule, f.subject, f.day));
        }
        self.audited(entry, result).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use medanchor_contracts::{DataHash, RecordId};
    use proptest::prelude::*;

    use super::*;
    use crate::audit::AuditLog;
    use crate::db::{AnchorStatus, RecordMeta};

    const TYPES: [(&str, &str); 3] =
        [("lab-result", "lab-results"), ("mental-health", "mental-health"), ("genetic-data", "genetic")];

    fn meta(i: u8) -> RecordMeta {
        let (record_type, data_type) = TYPES[usize::from(i) % TYPES.len()];
        RecordMeta {
            record_id: RecordId([i; 16]),
            version: 1,
            patient: format!("SPPAT{}", i % 5),
            record_type: record_type.into(),
            data_type: data_type.into(),
            author: "SPDOC0".into(),
            content_type: "application/json".into(),
            size: 1,
            data_hash: DataHash([0; 32]),
            wrapped_key: String::new(),
            kek_version: 1,
            created_ms: 0,
            status: AnchorStatus::Pending,
            txid: None,
            block_height: None,
            index_block_hash: None,
            failure: None,
            confidentiality: None,
            template: None,
            sent_ms: None,
            custodial: None,
        }
    }

    /// One random audit entry: who (providers, patients, anonymous
    /// callers from a few addresses), what, how it ended, when (over three
    /// weeks, at any hour), about which stored record.
    fn entry() -> impl Strategy<Value = AuditEntry> {
        let actions = prop::sample::select(vec![
            "record.read",
            "record.create",
            "record.update",
            "attachment.download",
            "share.create",
            "share.redeem",
            "auth.sign-in",
            "export",
            "verify.blob",
        ]);
        let outcomes = prop::sample::select(vec!["allowed", "allowed", "allowed", "denied", "error"]);
        let reasons = prop::sample::select(vec!["ERR-NO-CONSENT", "access-codes-locked", "integrity-failure"]);
        let methods = prop::sample::select(vec!["consent", "emergency", "access_code"]);
        (0u8..4, actions, outcomes, reasons, methods, 0u64..21 * 86_400_000, 0u8..12, 0u8..3, 0u8..6).prop_map(
            |(who, action, outcome, reason, method, at, record, ip, patient)| {
                let (actor, role) = match who {
                    0 | 1 => (format!("SPDOC{who}"), "provider"),
                    2 => (format!("SPPAT{}", patient % 5), "patient"),
                    _ => ("anonymous".to_string(), "anonymous"),
                };
                let mut e = AuditEntry::system(action, 1_700_000_000_000 + at);
                e.actor = actor;
                e.role = role.into();
                e.outcome = outcome.into();
                e.reason = (outcome != "allowed").then(|| reason.into());
                e.method = Some(method.into());
                // Records 0..10 are stored (their type is known); 10, 11 are not.
                e.record_id = Some(hex::encode([record; 16]));
                e.patient = Some(format!("SPPAT{patient}"));
                e.ip_hash = Some(format!("{ip:032x}"));
                e
            },
        )
    }

    fn without_diagnoses(kv: BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
        kv.into_iter().filter(|(k, _)| !parse_day_key(k).is_some_and(|(_, _, dim)| dim.starts_with("dx:"))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// After a random workload appended concurrently (so commits batch
        /// entries of many requests), the stored counters and flags equal a
        /// recount from the log; and a log whose counters are wiped (a store
        /// written before them) is counted to the same values on open.
        #[test]
        fn counters_equal_a_recount_from_the_log(
            mut entries in prop::collection::vec(entry(), 1..400),
            diagnosed in prop::collection::vec(prop::sample::select(vec!["E11.9", "F32.1", "I10"]), 0..20),
        ) {
            entries.sort_by_key(|e| e.time_ms);
            // Diagnoses ride on creations only, and never reach the log.
            let creations = entries.iter_mut().filter(|e| e.action == "record.create" && e.outcome == "allowed");
            for (e, dx) in creations.zip(&diagnosed) {
                e.diagnoses = vec![dx.to_string()];
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
            let dir = tempfile::tempdir().expect("tempdir");
            let expected_dx = entries.iter().filter(|e| !e.diagnoses.is_empty()).count() as u64;
            runtime.block_on(async {
                let db = Arc::new(ApiDb::open(dir.path()).expect("open"));
                for i in 0..10 {
                    db.put_record(&meta(i), &[i; 16]).expect("record");
                }
                let log = AuditLog::start(db.clone());
                // In order of time within each of four writers, interleaved.
                let mut writers = Vec::new();
                for chunk in entries.chunks(entries.len().div_ceil(4)) {
                    let (log, chunk) = (log.clone(), chunk.to_vec());
                    writers.push(tokio::spawn(async move {
                        for e in chunk {
                            log.append(e).await.expect("append");
                        }
                    }));
                }
                for w in writers {
                    w.await.expect("writer");
                }
                log.close().await;
            });
            let db = ApiDb::open(dir.path()).expect("reopen");
            let stored_all = stored(&db).expect("stored");
            let dx: u64 = stored_all
                .iter()
                .filter(|(k, _)| parse_day_key(k).is_some_and(|(_, m, dim)| m == metric::RECORDS_CREATED && dim.starts_with("dx:")))
                .map(|(_, v)| u64::from_be_bytes(v[..].try_into().expect("u64")))
                .sum();
            prop_assert_eq!(dx, expected_dx);
            let recounted = recount(&db).expect("recount");
            // The log's order is the order entries were counted in, so a
            // replay gives every counter, marker, window and flag again.
            prop_assert_eq!(without_diagnoses(stored_all.clone()), without_diagnoses(recounted.clone()));
            prop_assert!(stored_all.keys().any(|k| k[0] == b'c'));

            // Wipe the counters and go back to schema 4: the migration
            // counts the log again, to the recount exactly (same order).
            for k in stored_all.keys() {
                db.raw().delete_cf(db.cf(Cf::Analytics), k).expect("delete");
            }
            db.raw().delete_cf(db.cf(Cf::Meta), COUNTED).expect("delete");
            db.stamp(4).expect("stamp");
            drop(db);
            let db = ApiDb::open(dir.path()).expect("migrate");
            prop_assert_eq!(without_diagnoses(stored(&db).expect("stored")), without_diagnoses(recounted));
        }
    }
}
