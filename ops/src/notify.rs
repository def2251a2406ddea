//! Notification events: who did what to which of the patient's data, when
//! — never the content (no PHI: the action, the record's opaque id and its
//! data type, the actor's principal and role).

use serde::{Deserialize, Serialize};

/// One thing a patient is told about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Stable across retries (`audit-{index}`): receivers de-duplicate on it.
    pub id: String,
    /// `access` (someone else read or wrote their data), `emergency` (a
    /// break-glass access), `consent-expiring` (a consent they gave ends
    /// within 24 hours), `share-lockout` (their access codes locked
    /// after repeated wrong guesses), `profile` (their health profile
    /// changed, by anyone), `restore` (a write of theirs was lost when the
    /// node was restored from a backup), `erased` (a record deleted at
    /// their request) or `consent-request` (a provider asks for their
    /// consent: which data types and for how long, never the purpose).
    pub kind: String,
    /// Whose data.
    pub patient: String,
    /// Who acted.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// What (`record.read`, `record.create`, `attachment.download`, …).
    pub action: String,
    /// How access was allowed (`consent`, `emergency`, `access_code`,
    /// `qr_code`).
    pub method: Option<String>,
    /// The record (opaque id), when one.
    pub record_id: Option<String>,
    /// Unix ms.
    pub at_ms: u64,
    /// What else the message needs (a reminder's provider, data type and
    /// end; a consent request's id, data types and period); never content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The facts of an audit entry a notification is derived from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The entry's index in the log.
    pub index: u64,
    /// Who acted.
    pub actor: &'a str,
    /// Their role.
    pub role: &'a str,
    /// The action.
    pub action: &'a str,
    /// Whose data.
    pub patient: Option<&'a str>,
    /// The record.
    pub record_id: Option<&'a str>,
    /// How access was allowed.
    pub method: Option<&'a str>,
    /// `allowed`, `denied`, `error`.
    pub outcome: &'a str,
    /// Unix ms.
    pub time_ms: u64,
    /// Why refused or failed (a contract error name or a problem code).
    pub reason: Option<&'a str>,
    /// The keyed hash of the client's address.
    pub ip_hash: Option<&'a str>,
    /// The entry's detail.
    pub detail: Option<&'a str>,
}

/// Actions on a patient's data that they are told about when someone else
/// performs them.
const NOTIFIED: &[&str] = &[
    "record.read",
    "record.create",
    "record.update",
    "record.finalize",
    "record.unlock",
    "record.archive",
    "attachment.upload",
    "attachment.download",
    "attachment.remove",
    "profile.read",
    "share.redeem",
];

/// The event an audit entry means for its patient, if any: an allowed
/// action of [`NOTIFIED`] by anyone but the patient (an emergency access is
/// its own kind); a record of theirs lost in a restore; a record erased;
/// a provider's request for their consent.
pub fn event(f: &Facts<'_>) -> Option<Event> {
    let patient = f.patient?;
    let kind = match f.action {
        "backup.record-lost" => "restore",
        "record.erase" => "erased",
        "consent-request.create" if f.outcome == "allowed" && f.actor != patient => "consent-request",
        "share.redeem" if f.outcome == "denied" && f.reason == Some("access-codes-locked") => "share-lockout",
        // Even the patient's own change: a stolen session changing the
        // emergency contacts must not go unnoticed.
        "profile.update" if f.outcome == "allowed" => "profile",
        "consent.expiring" => "consent-expiring",
        _ if f.outcome != "allowed" || f.actor == patient || !NOTIFIED.contains(&f.action) => return None,
        _ if f.method == Some("emergency") => "emergency",
        _ => "access",
    };
    Some(Event {
        id: format!("audit-{}", f.index),
        kind: kind.into(),
        patient: patient.into(),
        actor: f.actor.into(),
        role: f.role.into(),
        action: f.action.into(),
        method: f.method.map(str::to_string),
        record_id: f.record_id.map(str::to_string),
        at_ms: f.time_ms,
        detail: f.detail.map(str::to_string),
    })
}

impl Event {
    /// Told at once whatever the patient's digest setting: a break-glass
    /// access, a lock-out of their codes.
    pub fn urgent(&self) -> bool {
        matches!(self.kind.as_str(), "emergency" | "share-lockout")
    }

    /// One line of a message: when, who, what — no content.
    pub fn line(&self) -> String {
        let secs = (self.at_ms / 1000) as i64;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400);
        let what = match self.kind.as_str() {
            "share-lockout" => {
                "your access codes were locked after repeated wrong codes; unlock them when you share again".to_string()
            }
            "profile" => format!("your health profile was changed by {} ({})", self.actor, self.role),
            "restore" => "a record written for you was lost when the node was restored from a backup".to_string(),
            "erased" => "a record was erased at your request".to_string(),
            "consent-request" => format!(
                "{} ({}) asks for your consent: {}; approve it in your wallet or decline it among your consent requests",
                self.actor,
                self.role,
                self.detail.as_deref().unwrap_or("see your consent requests")
            ),
            "consent-expiring" => format!(
                "a consent you gave ends within 24 hours: {}; renew it if the care goes on",
                self.detail.as_deref().unwrap_or("see your consents")
            ),
            kind => format!(
                "{} ({}) — {}{}{}",
                self.actor,
                self.role,
                self.action,
                self.record_id.as_deref().map(|r| format!(" record {r}")).unwrap_or_default(),
                if kind == "emergency" {
                    " — EMERGENCY ACCESS (break-glass)".to_string()
                } else {
                    self.method.as_deref().map(|m| format!(" by {m}")).unwrap_or_default()
                }
            ),
        };
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC  {what}", t / 3600, t / 60 % 60)
    }
}

/// How often a patient is e-mailed about their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    /// Each event as it happens.
    #[default]
    Immediate,
    /// One message per hour with the hour's events.
    Hourly,
    /// One message per day (UTC).
    Daily,
}

impl Digest {
    /// When an event at `at_ms` is sent: at once when urgent or the
    /// patient wants each, else at the end of its hour or day.
    pub fn due_ms(self, at_ms: u64, urgent: bool) -> u64 {
        let period = match (self, urgent) {
            (_, true) | (Digest::Immediate, _) => return at_ms,
            (Digest::Hourly, _) => 3_600_000,
            (Digest::Daily, _) => 86_400_000,
        };
        (at_ms / period + 1) * period
    }
}

/// A message about `events` (one patient's, oldest first): its subject and
/// plain-text body. No content: who, when, which action on which opaque
/// record.
pub fn message(events: &[Event]) -> (String, String) {
    let urgent = events.iter().any(Event::urgent);
    let subject = match (events.len(), urgent) {
        (1, true) if events[0].kind == "emergency" => "medanchor: an emergency access to your records".to_string(),
        (1, true) => "medanchor: your access codes were locked".to_string(),
        (1, false) if events[0].kind == "consent-request" => "medanchor: a provider asks for your consent".to_string(),
        (1, false) => "medanchor: activity on your records".to_string(),
        (n, true) => format!("medanchor: {n} events on your records, one urgent"),
        (n, false) => format!("medanchor: {n} events on your records"),
    };
    let mut body = String::from("What happened to your medical data on this node (times in UTC):\n\n");
    for e in events {
        body.push_str("  ");
        body.push_str(&e.line());
        body.push('\n');
    }
    body.push_str(
        "\nIf you do not recognise an access, review your consents and contact the hospital's privacy office.\n\
         You can change how often you are told in your notification settings.\n",
    );
    (subject, body)
}

/// The message id of a message about `events`: the same events give the
/// same id, so a message sent again after a crash is one message to a
/// receiver that de-duplicates (RFC 5322 `Message-ID`).
pub fn message_id(events: &[Event], domain: &str) -> String {
    let first = events.first().map_or("none", |e| e.id.as_str());
    let last = events.last().map_or("none", |e| e.id.as_str());
    format!("<{first}.{last}.{}@{domain}>", events.len())
}

/// (year, month, day) of a day number (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// When a delivery that failed `attempts` times is tried again: 2^n
/// seconds from 2 s, at most an hour apart.
pub fn backoff_ms(attempts: u32) -> u64 {
    1000u64.saturating_mul(1u64 << attempts.min(12)).min(3_600_000)
}

/// Deliveries given up after this many failures (about a day of tries).
pub const MAX_ATTEMPTS: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(actor: &'a str, action: &'a str, outcome: &'a str, method: Option<&'a str>) -> Facts<'a> {
        Facts {
            index: 7,
            actor,
            role: "provider",
            action,
            patient: Some("SP1PATIENT"),
            record_id: Some("ab"),
            method,
            outcome,
            time_ms: 1,
            reason: None,
            ip_hash: None,
            detail: None,
        }
    }

    #[test]
    fn only_others_allowed_actions_on_the_patients_data_notify() {
        for (f, want) in [
            (facts("SP2DOC", "record.read", "allowed", Some("consent")), Some("access")),
            (facts("SP2DOC", "record.read", "allowed", Some("emergency")), Some("emergency")),
            (facts("SP2DOC", "record.create", "allowed", None), Some("access")),
            (facts("SP1PATIENT", "record.read", "allowed", Some("self")), None),
            (facts("SP2DOC", "record.read", "denied", None), None),
            (facts("SP2DOC", "auth.sign-in", "allowed", None), None),
            (Facts { patient: None, ..facts("SP2DOC", "record.read", "allowed", None) }, None),
            (facts("node", "backup.record-lost", "error", None), Some("restore")),
            (facts("node", "record.erase", "allowed", None), Some("erased")),
            (Facts { patient: None, ..facts("node", "backup.record-lost", "error", None) }, None),
        ] {
            assert_eq!(event(&f).map(|e| e.kind), want.map(str::to_string), "{f:?}");
        }
        assert_eq!(event(&facts("SP2DOC", "record.read", "allowed", None)).expect("event").id, "audit-7");
    }

    #[test]
    fn lockouts_and_profile_changes_notify_and_digests_wait_for_their_period() {
        let mut locked = facts("SP2DOC", "share.redeem", "denied", None);
        locked.reason = Some("access-codes-locked");
        assert_eq!(event(&locked).map(|e| e.kind), Some("share-lockout".into()));
        locked.reason = Some("access-code-invalid");
        assert_eq!(event(&locked), None, "a wrong code alone is not a lock-out");
        let own = facts("SP1PATIENT", "profile.update", "allowed", None);
        assert_eq!(event(&own).map(|e| e.kind), Some("profile".into()), "even the patient's own change");

        // A provider's consent request: who asks for what, never why.
        let mut asked = facts("SP2DOC", "consent-request.create", "allowed", None);
        asked.record_id = None;
        asked.detail = Some("request 0a0b for lab-results (until revoked)");
        let e = event(&asked).expect("a request notifies");
        assert_eq!((e.kind.as_str(), e.urgent()), ("consent-request", false));
        assert!(e.line().ends_with(
            "SP2DOC (provider) asks for your consent: request 0a0b for lab-results (until revoked); \
             approve it in your wallet or decline it among your consent requests"
        ));
        assert_eq!(message(std::slice::from_ref(&e)).0, "medanchor: a provider asks for your consent");
        for (actor, outcome) in [("SP2DOC", "denied"), ("SP1PATIENT", "allowed")] {
            assert_eq!(event(&facts(actor, "consent-request.create", outcome, None)), None, "{actor} {outcome}");
        }
        let decided = facts("SP1PATIENT", "consent-request.approve", "allowed", None);
        assert_eq!(event(&decided), None, "the patient's own decision");

        let hour = 3_600_000;
        assert_eq!(Digest::Immediate.due_ms(5 * hour + 7, false), 5 * hour + 7);
        assert_eq!(Digest::Hourly.due_ms(5 * hour + 7, false), 6 * hour);
        assert_eq!(Digest::Hourly.due_ms(5 * hour, false), 6 * hour);
        assert_eq!(Digest::Daily.due_ms(5 * hour, false), 24 * hour);
        assert_eq!(Digest::Daily.due_ms(5 * hour, true), 5 * hour, "urgent: at once");

        let mut e = event(&facts("SP2DOC", "record.read", "allowed", Some("emergency"))).expect("event");
        e.at_ms = 1_764_979_200_000; // 2025-12-06 00:00 UTC
        assert!(e.urgent());
        assert_eq!(
            e.line(),
            "2025-12-06 00:00 UTC  SP2DOC (provider) — record.read record ab — EMERGENCY ACCESS (break-glass)"
        );
        let (subject, body) = message(std::slice::from_ref(&e));
        assert_eq!(subject, "medanchor: an emergency access to your records");
        assert!(body.contains(&e.line()));
        assert_eq!(message_id(std::slice::from_ref(&e), "node.example"), "<audit-7.audit-7.1@node.example>");
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!([backoff_ms(0), backoff_ms(1), backoff_ms(2)], [1000, 2000, 4000]);
        assert_eq!(backoff_ms(12), 3_600_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
