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
    /// break-glass access), `restore` (a write of theirs was lost when the
    /// node was restored from a backup) or `erased` (a record deleted at
    /// their request).
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
/// its own kind); a record of theirs lost in a restore; a record erased.
pub fn event(f: &Facts<'_>) -> Option<Event> {
    let patient = f.patient?;
    let kind = match f.action {
        "backup.record-lost" => "restore",
        "record.erase" => "erased",
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
    })
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
    fn backoff_doubles_to_an_hour() {
        assert_eq!([backoff_ms(0), backoff_ms(1), backoff_ms(2)], [1000, 2000, 4000]);
        assert_eq!(backoff_ms(12), 3_600_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
