//! The accounting of disclosures (HIPAA §164.528): for one patient, every
//! time someone other than the patient read or wrote their data, with the
//! date, the recipient, what was disclosed (never the content) and why.
//!
//! The report is derived from the audit log, not kept beside it, so it
//! cannot disagree with what the log proves: each row carries its audit
//! index, and an inclusion proof of that index against a signed checkpoint
//! (`GET /v1/audit/proof/inclusion`) shows the row is in the log everyone
//! else sees.
//!
//! A disclosure is an audit entry that
//! - concerns the patient (`patient` is theirs),
//! - was `allowed` (a refused attempt disclosed nothing),
//! - was made by someone else (the patient reading their own chart is not
//!   a disclosure), and
//! - reads or writes patient data: `record.read`, `record.versions`,
//!   `record.create`, `record.update` (listing is left out: it returns
//!   the chain's public record index, not data the API holds).
//!
//! [`rows`] is the pure part (entries → rows, tested below); [`scan`]
//! feeds it from the log; [`to_csv`] renders CSV (RFC 4180); the API
//! renders JSON.

use std::collections::HashMap;

use medanchor_contracts::principal::Principal;
use serde::Serialize;

use crate::audit::{AuditEntry, AuditLog};
use crate::db::ApiDb;
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// The actions that read or write patient data.
pub const DISCLOSING_ACTIONS: [&str; 12] = [
    "record.read",
    "record.versions",
    "record.create",
    "record.update",
    "profile.read",
    "record.search",
    "patient.search",
    "attachment.list",
    "attachment.download",
    "attachment.link-download",
    "attachment.upload",
    "export",
];

/// How far back the report goes by default: HIPAA §164.528(a) gives the
/// patient the disclosures of the six years before the request.
pub const DEFAULT_YEARS: i64 = 6;

/// Entries read from the log per step of the scan (bounds memory, not time).
const SCAN_PAGE: u64 = 1024;

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/csv; charset=utf-8`, RFC 4180, with a header row.
    Csv,
}

/// A validated `GET /v1/audit/disclosures` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// Whose disclosures.
    pub patient: Principal,
    /// Start of the range, Unix seconds, inclusive.
    pub from_s: u64,
    /// End of the range, Unix seconds, inclusive.
    pub to_s: u64,
    /// JSON or CSV.
    pub format: Format,
}

/// The last second of year 9999 (the largest `from` / `to`).
pub const MAX_SECONDS: u64 = 253_402_300_799;

impl ReportRequest {
    /// Reads `patient` (default: the caller), `from` / `to` (Unix seconds;
    /// default: the six years up to now) and `format` (`json` | `csv`).
    pub fn parse(q: &HashMap<String, String>, caller: &Principal, now_s: u64) -> Result<ReportRequest> {
        let patient = match q.get("patient") {
            Some(p) => p.parse().map_err(|_| {
                Error::bad("invalid-principal", format!("patient {} is not a Stacks principal", crate::error::echo(p)))
            })?,
            None => caller.clone(),
        };
        // Up to the end of year 9999: the dates are printed as ISO 8601
        // and compared in milliseconds, neither of which may overflow.
        let seconds = |k: &str| -> Result<Option<u64>> {
            q.get(k)
                .map(|v| v.parse::<u64>().ok().filter(|s| *s <= MAX_SECONDS))
                .map(|v| v.ok_or(()))
                .transpose()
                .map_err(|_| {
                    Error::bad("invalid-parameter", format!("{k} must be Unix seconds, at most {MAX_SECONDS}"))
                })
        };
        let to_s = seconds("to")?.unwrap_or(now_s);
        let from_s = match seconds("from")? {
            Some(f) => f,
            None => years_before(to_s, DEFAULT_YEARS),
        };
        if from_s > to_s {
            return Err(Error::bad("invalid-range", format!("from ({from_s}) is after to ({to_s})")));
        }
        let format = match q.get("format").map(String::as_str) {
            None | Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some(other) => {
                return Err(Error::bad(
                    "invalid-format",
                    format!("format {} is not `json` or `csv`", crate::error::echo(other)),
                ))
            }
        };
        Ok(ReportRequest { patient, from_s, to_s, format })
    }

    fn contains(&self, time_ms: u64) -> bool {
        let s = time_ms / 1000;
        self.from_s <= s && s <= self.to_s
    }
}

/// The role in which `caller` may request `patient`'s accounting, or
/// `None`: the patient themself, auditors and admins only (the report
/// names every provider who saw the patient's data, so it is itself
/// sensitive).
pub fn requester_role(caller: &str, patient: &str, auditors: &[String], admins: &[String]) -> Option<&'static str> {
    if admins.iter().any(|a| a == caller) {
        Some("admin")
    } else if auditors.iter().any(|a| a == caller) {
        Some("auditor")
    } else if caller == patient {
        Some("patient")
    } else {
        None
    }
}

/// A record's kind, from the API's record metadata (the audit entry holds
/// only the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKind {
    /// Record type name, e.g. `lab-results`.
    pub record_type: String,
    /// Consent data type name.
    pub data_type: String,
}

/// One line of the accounting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disclosure {
    /// The audit index: prove the line with an inclusion proof.
    pub index: u64,
    /// When, ISO 8601 UTC.
    pub date: String,
    /// Who received the data (principal).
    pub recipient: String,
    /// In which role.
    pub recipient_role: String,
    /// The audit action.
    pub action: String,
    /// Record type, if the record is known.
    pub record_type: Option<String>,
    /// Consent data type, if the record is known.
    pub data_type: Option<String>,
    /// Record id (hex).
    pub record_id: Option<String>,
    /// Record version.
    pub version: Option<u64>,
    /// What was disclosed, in words (no content).
    pub description: String,
    /// Why it was allowed.
    pub purpose: String,
}

/// Whether `e` is a disclosure of `patient`'s data (see the module docs).
pub fn is_disclosure(e: &AuditEntry, patient: &str) -> bool {
    e.outcome == "allowed"
        && e.patient.as_deref() == Some(patient)
        && e.actor != patient
        && DISCLOSING_ACTIONS.contains(&e.action.as_str())
}

/// The purpose of a disclosure, from how `check-consent` allowed it.
pub fn purpose(method: Option<&str>) -> String {
    match method {
        Some("consent") => "treatment (patient consent)".into(),
        Some("emergency") => "emergency treatment (break-glass)".into(),
        Some("access_code") => "patient-shared access code".into(),
        Some("qr_code") => "patient-shared QR link".into(),
        Some("self") => "the patient's own access".into(),
        Some(other) => format!("other ({other})"),
        None => "not recorded".into(),
    }
}

fn describe(e: &AuditEntry, kind: Option<&RecordKind>) -> String {
    let what = match kind {
        Some(k) => format!("{} record (data type {})", k.record_type, k.data_type),
        None => "record (type unknown to this node)".into(),
    };
    let version = e.version.map_or(String::new(), |v| format!(", version {v}"));
    match e.action.as_str() {
        "record.read" => format!("read the content of a {what}{version}"),
        "record.versions" => format!("read the version history (metadata only) of a {what}"),
        "record.create" => format!("created a {what}{version}"),
        "record.update" => format!("updated a {what}{version}"),
        "profile.read" => format!("read parts of the health profile{version}"),
        "attachment.list" => format!("listed the files of a {what}"),
        "attachment.download" => format!("downloaded a file of a {what}{version}"),
        "attachment.link-download" => format!("downloaded a file of a {what}{version} through a signed link"),
        "attachment.upload" => format!("attached a file to a {what}{version}"),
        "export" => format!("exported the data they may read ({})", e.detail.as_deref().unwrap_or("no detail")),
        other => format!("{other} on a {what}{version}"),
    }
}

/// The accounting for `req.patient` over `entries` (index, entry), in log
/// order. `kinds` maps record ids to their kinds; a missing id is
/// reported as of unknown type rather than dropped — the disclosure
/// happened whatever this node still knows about the record.
pub fn rows(
    entries: impl IntoIterator<Item = (u64, AuditEntry)>,
    req: &ReportRequest,
    kinds: &HashMap<String, RecordKind>,
) -> Vec<Disclosure> {
    let patient = req.patient.to_string();
    entries
        .into_iter()
        .filter(|(_, e)| is_disclosure(e, &patient) && req.contains(e.time_ms))
        .map(|(index, e)| {
            let kind = e.record_id.as_ref().and_then(|id| kinds.get(id));
            Disclosure {
                index,
                date: iso8601(e.time_ms),
                description: describe(&e, kind),
                purpose: purpose(e.method.as_deref()),
                record_type: kind.map(|k| k.record_type.clone()),
                data_type: kind.map(|k| k.data_type.clone()),
                recipient: e.actor,
                recipient_role: e.role,
                action: e.action,
                record_id: e.record_id,
                version: e.version,
            }
        })
        .collect()
}

/// A computed report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The request it answers.
    pub request: ReportRequest,
    /// The log size scanned: every row's index is below it, so proofs
    /// against any checkpoint of at least this size cover the report.
    pub log_size: u64,
    /// The lines, in log order.
    pub rows: Vec<Disclosure>,
}

/// Builds the report from the log and the record metadata: a range read
/// of the log's per-patient index (`audit_by_patient`), so its cost grows
/// with the patient's entries, not with the log.
pub fn scan(log: &AuditLog, db: &ApiDb, req: &ReportRequest) -> Result<Report> {
    let size = log.size().map_err(Error::internal)?;
    let patient = req.patient.to_string();
    let mut hits = Vec::new();
    let mut from = 0;
    loop {
        let page = log.patient_entries(&patient, from, SCAN_PAGE as usize, size).map_err(Error::internal)?;
        let Some((last, _)) = page.last() else { break };
        from = last + 1;
        let full = page.len() == SCAN_PAGE as usize;
        for (i, e) in page {
            if is_disclosure(&e, &patient) && req.contains(e.time_ms) {
                hits.push((i, e));
            }
        }
        if !full {
            break;
        }
    }
    let mut kinds = HashMap::new();
    for id in hits.iter().filter_map(|(_, e)| e.record_id.as_ref()) {
        if kinds.contains_key(id) {
            continue;
        }
        let Some(raw) = hex::decode(id).ok().and_then(|b| <[u8; 16]>::try_from(b).ok()) else { continue };
        // Type and data type are fixed at creation: any version will do.
        if let Some(m) = db.versions(&raw).map_err(Error::internal)?.into_iter().next() {
            kinds.insert(id.clone(), RecordKind { record_type: m.record_type, data_type: m.data_type });
        }
    }
    Ok(Report { rows: rows(hits, req, &kinds), request: req.clone(), log_size: size })
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 11] = [
    "index",
    "date",
    "recipient",
    "recipient_role",
    "action",
    "record_type",
    "data_type",
    "record_id",
    "version",
    "purpose",
    "description",
];

/// One RFC 4180 field: quoted when it holds a comma, a quote or a line
/// break, with quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The rows as RFC 4180 CSV (CRLF line ends, header row first).
pub fn to_csv(rows: &[Disclosure]) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    for r in rows {
        let fields = [
            r.index.to_string(),
            r.date.clone(),
            r.recipient.clone(),
            r.recipient_role.clone(),
            r.action.clone(),
            r.record_type.clone().unwrap_or_default(),
            r.data_type.clone().unwrap_or_default(),
            r.record_id.clone().unwrap_or_default(),
            r.version.map(|v| v.to_string()).unwrap_or_default(),
            r.purpose.clone(),
            r.description.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

impl Service {
    /// Audit log entries from index `from` (at most `limit`, capped at
    /// 1,000) and the log's size: every entry for auditors and admins;
    /// for anyone else, the entries about their own data (a range read of
    /// the per-patient index).
    pub fn audit_entries(&self, caller: &Caller, from: u64, limit: u64) -> Result<(Vec<(u64, AuditEntry)>, u64)> {
        let me = caller.require()?.to_string();
        let limit = limit.min(1000);
        let all = self.config.auditors.contains(&me) || self.config.admins.contains(&me);
        let size = self.audit.size().map_err(Error::internal)?;
        let entries = if all {
            self.audit.entries(from, limit)
        } else {
            self.audit.patient_entries(&me, from, limit as usize, size)
        }
        .map_err(Error::internal)?;
        Ok((entries, size))
    }

    /// The accounting of disclosures `req` asks for: for the patient
    /// themself, auditors and admins only. Audited.
    pub async fn disclosures(&self, caller: &Caller, req: ReportRequest) -> Result<Report> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry("none", "audit.disclosures");
        entry.patient = Some(req.patient.to_string());
        let role =
            requester_role(&who.to_string(), &req.patient.to_string(), &self.config.auditors, &self.config.admins);
        let Some(role) = role else {
            let e = Error::Forbidden {
                code: "not-permitted",
                detail: "only the patient, auditors and admins may request an accounting of disclosures".into(),
                reason: None,
            };
            return self.audited(entry, Err(e)).await;
        };
        entry.role = role.into();
        let s2 = self.clone();
        let report =
            tokio::task::spawn_blocking(move || scan(&s2.audit, &s2.db, &req)).await.map_err(Error::internal)?;
        self.audited(entry, report).await
    }
}

// ------------------------------------------------------------- dates (UTC)

use medanchor_storage::keys::civil_from_days;

/// (year, month, day) → days since 1970-01-01 (inverse of
/// [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds as ISO 8601 UTC, e.g. `2025-03-01T12:00:00.250Z`.
pub fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", t / 3600, t / 60 % 60, t % 60, ms % 1000)
}

/// The same time of day `years` calendar years before `unix_s` (29
/// February becomes 28 February), clamped at the epoch.
pub fn years_before(unix_s: u64, years: i64) -> u64 {
    let secs = unix_s as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let d = if m == 2 && d == 29 { 28 } else { d };
    let days = days_from_civil(y - years, m, d);
    u64::try_from(days * 86_400 + secs.rem_euclid(86_400)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
    const PROVIDER: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
    const OTHER_PATIENT: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
    const ID: &str = "000102030405060708090a0b0c0d0e0f";

    fn entry(actor: &str, action: &str, outcome: &str, method: Option<&str>, time_s: u64) -> AuditEntry {
        AuditEntry {
            time_ms: time_s * 1000 + 250,
            actor: actor.into(),
            role: if actor == PATIENT { "patient".into() } else { "provider".into() },
            action: action.into(),
            patient: Some(PATIENT.into()),
            record_id: Some(ID.into()),
            version: Some(2),
            method: method.map(str::to_string),
            share_id: None,
            outcome: outcome.into(),
            reason: None,
            client_ip: Some("10.0.0.1".into()),
            user_agent: Some("secret-agent".into()),
            ip_hash: None,
            request_id: "r".into(),
            detail: None,
            diagnoses: Vec::new(),
        }
    }

    fn request(from_s: u64, to_s: u64) -> ReportRequest {
        ReportRequest { patient: PATIENT.parse().expect("principal"), from_s, to_s, format: Format::Json }
    }

    #[test]
    fn which_entries_are_disclosures_and_why() {
        let other = {
            let mut e = entry(PROVIDER, "record.read", "allowed", Some("consent"), 100);
            e.patient = Some(OTHER_PATIENT.into());
            e
        };
        // (entry, expected purpose if it is a disclosure)
        let table: Vec<(AuditEntry, Option<&str>)> = vec![
            (entry(PROVIDER, "record.read", "allowed", Some("consent"), 100), Some("treatment (patient consent)")),
            (
                entry(PROVIDER, "record.read", "allowed", Some("emergency"), 100),
                Some("emergency treatment (break-glass)"),
            ),
            (entry(PROVIDER, "record.read", "allowed", Some("access_code"), 100), Some("patient-shared access code")),
            (entry(PROVIDER, "record.versions", "allowed", Some("consent"), 100), Some("treatment (patient consent)")),
            (entry(PROVIDER, "record.create", "allowed", Some("consent"), 100), Some("treatment (patient consent)")),
            (
                entry(PROVIDER, "record.update", "allowed", Some("emergency"), 100),
                Some("emergency treatment (break-glass)"),
            ),
            (entry(PROVIDER, "record.read", "allowed", Some("future-method"), 100), Some("other (future-method)")),
            (entry(PROVIDER, "record.read", "allowed", None, 100), Some("not recorded")),
            // Refused or failed: nothing was disclosed.
            (entry(PROVIDER, "record.read", "denied", None, 100), None),
            (entry(PROVIDER, "record.read", "error", Some("consent"), 100), None),
            // The patient's own access is not a disclosure.
            (entry(PATIENT, "record.read", "allowed", Some("self"), 100), None),
            // Not a read or write of patient data.
            (entry(PROVIDER, "record.list", "allowed", None, 100), None),
            (entry(PROVIDER, "auth.sign-in", "allowed", None, 100), None),
            // Another patient's data.
            (other, None),
            // Outside the range [50, 200].
            (entry(PROVIDER, "record.read", "allowed", Some("consent"), 49), None),
            (entry(PROVIDER, "record.read", "allowed", Some("consent"), 201), None),
            // The range's ends are inclusive (to the second).
            (entry(PROVIDER, "record.read", "allowed", Some("consent"), 50), Some("treatment (patient consent)")),
            (entry(PROVIDER, "record.read", "allowed", Some("consent"), 200), Some("treatment (patient consent)")),
        ];
        let kinds = HashMap::from([(
            ID.to_string(),
            RecordKind { record_type: "lab-results".into(), data_type: "lab-results".into() },
        )]);
        let entries: Vec<(u64, AuditEntry)> =
            table.iter().enumerate().map(|(i, (e, _))| (i as u64, e.clone())).collect();
        let report = rows(entries, &request(50, 200), &kinds);
        let expected: Vec<(u64, &str)> =
            table.iter().enumerate().filter_map(|(i, (_, p))| p.map(|p| (i as u64, p))).collect();
        let got: Vec<(u64, &str)> = report.iter().map(|r| (r.index, r.purpose.as_str())).collect();
        assert_eq!(got, expected);
        let first = &report[0];
        assert_eq!(first.date, "1970-01-01T00:01:40.250Z");
        assert_eq!((first.recipient.as_str(), first.recipient_role.as_str()), (PROVIDER, "provider"));
        assert_eq!(first.record_type.as_deref(), Some("lab-results"));
        assert_eq!(first.description, "read the content of a lab-results record (data type lab-results), version 2");
        // No client details leave the log through the report.
        let json = serde_json::to_string(&report).expect("json");
        assert!(!json.contains("secret-agent") && !json.contains("10.0.0.1"));
        // An unknown record is still reported.
        let unknown = rows(vec![(7, table[0].0.clone())], &request(50, 200), &HashMap::new());
        assert_eq!(unknown[0].record_type, None);
        assert!(unknown[0].description.contains("type unknown"), "{}", unknown[0].description);
    }

    #[test]
    fn parameters_defaults_and_refusals() {
        let caller: Principal = PROVIDER.parse().expect("principal");
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let now = 1_740_830_400; // 2025-03-01T12:00:00Z
        let r = ReportRequest::parse(&q(&[("patient", PATIENT)]), &caller, now).expect("ok");
        assert_eq!((r.patient.to_string().as_str(), r.to_s, r.format), (PATIENT, now, Format::Json));
        assert_eq!(iso8601(r.from_s * 1000), "2019-03-01T12:00:00.000Z", "six calendar years back");
        let r = ReportRequest::parse(&q(&[]), &caller, now).expect("ok");
        assert_eq!(r.patient, caller, "the caller's own report by default");
        let r = ReportRequest::parse(&q(&[("from", "10"), ("to", "20"), ("format", "csv")]), &caller, now).expect("ok");
        assert_eq!((r.from_s, r.to_s, r.format), (10, 20, Format::Csv));
        for (pairs, code) in [
            (vec![("from", "21"), ("to", "20")], "invalid-range"),
            (vec![("patient", "not-a-principal")], "invalid-principal"),
            (vec![("format", "xml")], "invalid-format"),
            (vec![("from", "-1")], "invalid-parameter"),
            (vec![("to", "yesterday")], "invalid-parameter"),
            (vec![("to", "9223372036854775807")], "invalid-parameter"),
            (vec![("from", "253402300800")], "invalid-parameter"),
        ] {
            let e = ReportRequest::parse(&q(&pairs), &caller, now).expect_err("refused");
            assert!(matches!(e, Error::BadRequest { .. }), "{pairs:?}");
            assert_eq!(e.code(), code, "{pairs:?}");
        }
    }

    #[test]
    fn who_may_ask() {
        let auditors = vec!["AUD".to_string()];
        let admins = vec!["ADM".to_string()];
        assert_eq!(requester_role("P", "P", &auditors, &admins), Some("patient"));
        assert_eq!(requester_role("AUD", "P", &auditors, &admins), Some("auditor"));
        assert_eq!(requester_role("ADM", "P", &auditors, &admins), Some("admin"));
        assert_eq!(requester_role("Q", "P", &auditors, &admins), None);
    }

    #[test]
    fn csv_is_rfc_4180() {
        let mut row = Disclosure {
            index: 3,
            date: iso8601(0),
            recipient: PROVIDER.into(),
            recipient_role: "provider".into(),
            action: "record.read".into(),
            record_type: None,
            data_type: None,
            record_id: Some(ID.into()),
            version: Some(1),
            description: "a, \"quoted\"\nthing".into(),
            purpose: "treatment (patient consent)".into(),
        };
        let csv = to_csv(std::slice::from_ref(&row));
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next(), Some(CSV_HEADER.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "3,1970-01-01T00:00:00.000Z,{PROVIDER},provider,record.read,,,{ID},1,treatment (patient consent),\"a, \"\"quoted\"\"\nthing\""
                )
                .as_str()
            )
        );
        assert_eq!(lines.next(), Some(""), "every record ends with CRLF");
        row.description = "plain".into();
        assert!(to_csv(&[row]).ends_with(",plain\r\n"));
    }

    #[test]
    fn dates() {
        for (ms, iso) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(iso8601(ms), iso);
        }
        // 2024-02-29 → 2018-02-28, same time of day.
        assert_eq!(iso8601(years_before(1_709_251_199, 6) * 1000), "2018-02-28T23:59:59.000Z");
        assert_eq!(years_before(100, 6), 0, "clamped at the epoch");
        for days in [-1000, 0, 59, 60, 365, 11_016, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
