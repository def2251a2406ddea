//! What an export holds: the facts the service hands over, already limited
//! to what the requester may read. Every renderer (PDF, FHIR, JSON, CSV)
//! works from this one value, so the formats cannot disagree.
//!
//! The JSON export *is* this value serialized (schema
//! [`SCHEMA`]): fields are only ever added, and a consumer ignores what it
//! does not know. Dates are ISO 8601 (`YYYY-MM-DD`), instants are unix
//! milliseconds, hashes and ids `0x`-prefixed lowercase hex.

use serde::{Deserialize, Serialize};

/// The JSON export's schema identifier (its documentation:
/// `docs/export-schema.md`).
pub const SCHEMA: &str = "https://medanchor.invalid/schema/export/v1";

/// One export of one patient's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// [`SCHEMA`].
    pub schema: String,
    /// The export's id (32 hex digits): the verification QR names it.
    pub id: String,
    /// When it was made (unix ms).
    pub generated_ms: u64,
    /// The node (tenant) that made it, and where it is verified.
    pub issuer: Issuer,
    /// Who asked for it.
    pub requester: Requester,
    /// What was asked for.
    pub scope: Scope,
    /// Whose data it is.
    pub patient: Patient,
    /// Allergies: the profile's, then those noted in records.
    pub allergies: Vec<Allergy>,
    /// The profile's medical alerts.
    pub alerts: Vec<String>,
    /// Problems: the profile's chronic conditions and the records'
    /// diagnoses.
    pub conditions: Vec<Condition>,
    /// Medications: the profile's current ones and those in records.
    pub medications: Vec<Medication>,
    /// Records (their current version), oldest first by clinical date.
    pub records: Vec<Record>,
    /// Vital signs from vital-sign records, oldest first.
    pub vitals: Vec<Vital>,
    /// Lab results from lab records, oldest first.
    pub labs: Vec<LabResult>,
    /// The consent the chain holds for this patient (empty when the
    /// requester may not see it).
    pub consents: Vec<Consent>,
    /// Accesses to the patient's data (the audit log; only in the
    /// patient's own export).
    pub audit: Vec<AuditEvent>,
}

/// Who made the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issuer {
    /// The tenant's id.
    pub tenant: String,
    /// The address the verification QR leads to (the export's page on
    /// the node: its SHA-256 and anchor).
    pub verify_url: String,
    /// The contract deployer (`SP…`/`ST…`), whose contracts hold the
    /// anchors.
    pub contracts: String,
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requester {
    /// Their principal.
    pub principal: String,
    /// `patient`, `provider`, `auditor` or `admin`.
    pub role: String,
}

/// What was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// First clinical date included (inclusive).
    pub from: Option<String>,
    /// Last clinical date included (inclusive).
    pub to: Option<String>,
    /// The record types asked for; empty is every type.
    pub types: Vec<String>,
    /// The consent data types the chain withheld from the requester (so a
    /// reader knows the export is partial, and why).
    pub withheld: Vec<String>,
}

/// The patient's header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Patient {
    /// Their principal.
    pub principal: String,
    /// Full name (profile), when readable.
    pub name: Option<String>,
    /// Phone (profile), when readable.
    pub phone: Option<String>,
    /// Blood group (profile), when readable.
    pub blood_type: Option<String>,
    /// Organ donor (profile), when readable.
    pub organ_donor: Option<bool>,
    /// Preferred language (profile), when readable.
    pub preferred_language: Option<String>,
    /// Emergency contacts (profile), when readable.
    pub emergency_contacts: Vec<Contact>,
}

/// An emergency contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Relationship.
    pub relationship: String,
    /// Phone.
    pub phone: String,
}

/// Where a fact came from: the profile, or a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// The patient's health profile.
    Profile,
    /// A record version.
    Record {
        /// The record's id.
        id: String,
        /// Its version.
        version: u64,
    },
}

/// An allergy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allergy {
    /// The substance.
    pub substance: String,
    /// The reaction.
    pub reaction: String,
    /// `mild`, `moderate`, `severe` or `life-threatening`.
    pub severity: String,
    /// Where it was noted.
    pub source: Source,
    /// When (clinical date), if from a record.
    pub date: Option<String>,
}

/// A problem or diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// ICD-10-CM code (`E11.9`).
    pub code: String,
    /// Its description as written.
    pub description: Option<String>,
    /// The visit's primary diagnosis.
    pub primary: bool,
    /// Clinical date it was recorded on.
    pub date: Option<String>,
    /// Where it was noted.
    pub source: Source,
}

/// A medication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    /// Its name.
    pub name: String,
    /// The dose.
    pub dose: Option<Measure>,
    /// Route (`oral`, …).
    pub route: Option<String>,
    /// Frequency (`bid`, …).
    pub frequency: Option<String>,
    /// Start date.
    pub start: Option<String>,
    /// End date.
    pub end: Option<String>,
    /// Instructions.
    pub instructions: Option<String>,
    /// Clinical date of the record it was noted in.
    pub date: Option<String>,
    /// Where it was noted.
    pub source: Source,
}

/// A value with its UCUM unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// The number.
    pub value: f64,
    /// UCUM code (`mm[Hg]`, `/min`, `Cel`, `mg`).
    pub unit: String,
}

/// A record's current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The record's id (`0x` + 32 hex).
    pub id: String,
    /// The version exported (the record's current one).
    pub version: u64,
    /// The contract's record type (`diagnosis`, `lab-results`, …).
    pub record_type: String,
    /// The consent data type that governs it.
    pub data_type: String,
    /// The template it was written with (`consultation@1`).
    pub template: Option<String>,
    /// A title: the template's, or the record type.
    pub title: String,
    /// The clinical date (visit, collection, measurement…); else the day
    /// it was written.
    pub date: String,
    /// Who wrote this version.
    pub author: String,
    /// When this version was written (unix ms).
    pub created_ms: u64,
    /// The content's media type.
    pub content_type: String,
    /// The content as labelled lines, in form order (what a reader sees).
    pub fields: Vec<Field>,
    /// The structured content as stored (its normal form), or the text of
    /// a plain-text record; `null` for other content.
    pub content: serde_json::Value,
    /// SHA-256 of the stored ciphertext: the hash anchored on-chain.
    pub data_hash: String,
    /// The anchoring transaction, once mined.
    pub anchor: Option<Anchor>,
    /// The record's on-chain lifecycle (`active`, `archived`, …), and
    /// whether it is finalized.
    pub status: Option<String>,
    /// Finalized on-chain.
    pub finalized: bool,
    /// Earlier versions this one replaces, newest first.
    pub replaces: Vec<VersionRef>,
    /// Files attached to it.
    pub attachments: Vec<AttachmentRef>,
}

/// One labelled line of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The template's label.
    pub label: String,
    /// The value as text.
    pub value: String,
}

/// Where a version is anchored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// The transaction (`0x` + 64 hex).
    pub txid: String,
    /// The Stacks block height.
    pub block_height: u64,
    /// The index block hash, when known.
    pub block_hash: Option<String>,
}

/// An earlier version of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRef {
    /// Its number.
    pub version: u64,
    /// Its anchored hash.
    pub data_hash: String,
    /// When it was written (unix ms).
    pub created_ms: u64,
}

/// A file attached to a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The attachment's id.
    pub id: String,
    /// Its version.
    pub version: u64,
    /// The file's name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// The original file's size.
    pub size: u64,
    /// SHA-256 of the stored (encrypted) object: the hash anchored in a
    /// batch on-chain.
    pub sha256: String,
    /// When it was uploaded (unix ms).
    pub uploaded_ms: u64,
}

/// Which vital sign a measurement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VitalKind {
    /// Heart rate.
    HeartRate,
    /// Systolic blood pressure.
    Systolic,
    /// Diastolic blood pressure.
    Diastolic,
    /// Body temperature.
    Temperature,
    /// Oxygen saturation.
    Spo2,
    /// Respiratory rate.
    RespiratoryRate,
    /// Body weight.
    Weight,
    /// Body height.
    Height,
    /// Blood glucose.
    Glucose,
}

impl VitalKind {
    /// Every kind, in display order.
    pub const ALL: [VitalKind; 9] = [
        VitalKind::HeartRate,
        VitalKind::Systolic,
        VitalKind::Diastolic,
        VitalKind::Temperature,
        VitalKind::Spo2,
        VitalKind::RespiratoryRate,
        VitalKind::Weight,
        VitalKind::Height,
        VitalKind::Glucose,
    ];

    /// The vital-signs template's field name.
    pub fn field(self) -> &'static str {
        match self {
            VitalKind::HeartRate => "heart_rate",
            VitalKind::Systolic => "systolic",
            VitalKind::Diastolic => "diastolic",
            VitalKind::Temperature => "temperature",
            VitalKind::Spo2 => "spo2",
            VitalKind::RespiratoryRate => "respiratory_rate",
            VitalKind::Weight => "weight",
            VitalKind::Height => "height",
            VitalKind::Glucose => "glucose",
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            VitalKind::HeartRate => "Heart rate",
            VitalKind::Systolic => "Systolic blood pressure",
            VitalKind::Diastolic => "Diastolic blood pressure",
            VitalKind::Temperature => "Body temperature",
            VitalKind::Spo2 => "Oxygen saturation",
            VitalKind::RespiratoryRate => "Respiratory rate",
            VitalKind::Weight => "Body weight",
            VitalKind::Height => "Body height",
            VitalKind::Glucose => "Blood glucose",
        }
    }

    /// The LOINC code of the observation (FHIR's vital-signs profile
    /// where it names one).
    pub fn loinc(self) -> &'static str {
        match self {
            VitalKind::HeartRate => "8867-4",
            VitalKind::Systolic => "8480-6",
            VitalKind::Diastolic => "8462-4",
            VitalKind::Temperature => "8310-5",
            VitalKind::Spo2 => "59408-5",
            VitalKind::RespiratoryRate => "9279-1",
            VitalKind::Weight => "29463-7",
            VitalKind::Height => "8302-2",
            VitalKind::Glucose => "2339-0",
        }
    }

    /// The normal adult range in `unit`, when one applies (for
    /// out-of-range flags; `None` for units it is not stated in).
    pub fn normal_range(self, unit: &str) -> Option<(f64, f64)> {
        match (self, unit) {
            (VitalKind::HeartRate, "/min") => Some((60.0, 100.0)),
            (VitalKind::Systolic, "mm[Hg]") => Some((90.0, 129.0)),
            (VitalKind::Diastolic, "mm[Hg]") => Some((60.0, 84.0)),
            (VitalKind::Temperature, "Cel") => Some((36.1, 37.5)),
            (VitalKind::Temperature, "[degF]") => Some((97.0, 99.5)),
            (VitalKind::Spo2, "%") => Some((95.0, 100.0)),
            (VitalKind::RespiratoryRate, "/min") => Some((12.0, 20.0)),
            (VitalKind::Glucose, "mg/dL") => Some((70.0, 140.0)),
            (VitalKind::Glucose, "mmol/L") => Some((3.9, 7.8)),
            _ => None,
        }
    }
}

/// One vital-sign measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vital {
    /// Which one.
    pub kind: VitalKind,
    /// Its value.
    pub measure: Measure,
    /// When it was measured (clinical date).
    pub date: String,
    /// The record it is in.
    pub record_id: String,
    /// That record's version.
    pub version: u64,
}

/// One lab result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabResult {
    /// The test's name.
    pub test: String,
    /// Its LOINC code, when given.
    pub loinc: Option<String>,
    /// A number, or a text (`positive`).
    pub value: serde_json::Value,
    /// Its unit (UCUM), when given.
    pub unit: Option<String>,
    /// The reference range as written.
    pub reference_range: Option<String>,
    /// `low`, `high`, `critical`, `normal`, `abnormal`.
    pub flag: Option<String>,
    /// When collected.
    pub date: String,
    /// The record it is in.
    pub record_id: String,
    /// That record's version.
    pub version: u64,
}

/// One consent grant the chain holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// The provider it is given to.
    pub provider: String,
    /// The data types it covers.
    pub data_types: Vec<String>,
    /// `read`, `write` or `admin`.
    pub access_level: String,
    /// Whether it is in force at the tip.
    pub active: bool,
    /// The burn-block height it was granted at.
    pub granted_height: u64,
    /// The burn-block height it ends at (none: until revoked).
    pub expires_height: Option<u64>,
    /// The instant it ends, estimated from the heights (unix ms).
    pub expires_ms: Option<u64>,
    /// The purpose recorded (`treatment`; `emergency` for break-glass).
    pub purpose: String,
}

/// One access to the patient's data (an audit log entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Its index in the audit log.
    pub index: u64,
    /// When (unix ms).
    pub time_ms: u64,
    /// Who acted.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// What they did (`record.read`, …).
    pub action: String,
    /// On which record.
    pub record_id: Option<String>,
    /// How they were let in (`consent`, `emergency`, `share`, `owner`).
    pub method: Option<String>,
    /// `allowed`, or the refusal's code.
    pub outcome: String,
}

/// `YYYY-MM-DD` of a unix-millisecond instant (UTC).
pub fn date_of_ms(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a unix-millisecond instant.
pub fn instant_of_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, mi, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{}T{h:02}:{mi:02}:{s:02}.{:03}Z", date_of_ms(ms), ms % 1000)
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_instants() {
        for (ms, date, instant) in [
            (0, "1970-01-01", "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29", "2000-02-29T00:00:00.000Z"),
            (1_796_428_799_999, "2026-12-04", "2026-12-04T23:59:59.999Z"),
        ] {
            assert_eq!(date_of_ms(ms), date);
            assert_eq!(instant_of_ms(ms), instant);
        }
    }
}
