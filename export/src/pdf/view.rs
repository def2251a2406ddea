//! The report's data as the template reads it (`/data.json`): every
//! value already a display string, so the template only lays out.

use serde::Serialize;

use super::chart::{self, Chart};
use super::{num, unit_label};
use crate::model::{date_of_ms, instant_of_ms, Condition, Export, Measure, Medication, Source};
use crate::sign::ExportKey;

/// What is printed when a value is absent.
const NONE: &str = "—";

#[derive(Debug, Serialize)]
pub(crate) struct View {
    title: String,
    id: String,
    generated: String,
    verify_url: String,
    tenant: String,
    contracts: String,
    key_id: String,
    patient: PatientView,
    requester: String,
    role: String,
    scope: ScopeView,
    allergies: Vec<AllergyView>,
    alerts: Vec<String>,
    problems: Vec<ProblemView>,
    medications: Vec<MedicationView>,
    records: Vec<RecordView>,
    labs: Vec<LabView>,
    pub(crate) charts: Vec<Chart>,
    attachments: Vec<AttachmentView>,
    consents: Vec<ConsentView>,
    audit: Vec<AuditView>,
}

#[derive(Debug, Serialize)]
struct PatientView {
    name: String,
    principal: String,
    blood_type: String,
    phone: String,
    organ_donor: String,
    language: String,
    contacts: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ScopeView {
    dates: String,
    types: String,
    withheld: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AllergyView {
    substance: String,
    reaction: String,
    severity: String,
    /// `life-threatening` and `severe` are printed in red.
    grave: bool,
    noted: String,
}

#[derive(Debug, Serialize)]
struct ProblemView {
    code: String,
    description: String,
    primary: bool,
    noted: String,
}

#[derive(Debug, Serialize)]
struct MedicationView {
    name: String,
    regimen: String,
    period: String,
    instructions: String,
    noted: String,
}

#[derive(Debug, Serialize)]
struct RecordView {
    title: String,
    date: String,
    author: String,
    kind: String,
    id: String,
    fields: Vec<(String, String)>,
    hash: String,
    anchor_tx: String,
    anchor: String,
    replaces: Vec<String>,
    attachments: Vec<String>,
}

#[derive(Debug, Serialize)]
struct LabView {
    date: String,
    test: String,
    value: String,
    unit: String,
    range: String,
    flag: String,
    /// Flagged anything but normal: printed bold.
    abnormal: bool,
}

#[derive(Debug, Serialize)]
struct AttachmentView {
    name: String,
    media_type: String,
    size: String,
    sha256: String,
    record: String,
}

#[derive(Debug, Serialize)]
struct ConsentView {
    provider: String,
    data_types: String,
    access: String,
    purpose: String,
    status: String,
    granted: String,
    expires: String,
}

#[derive(Debug, Serialize)]
struct AuditView {
    time: String,
    actor: String,
    role: String,
    action: String,
    record: String,
    method: String,
    outcome: String,
}

pub(crate) fn view(e: &Export, key: &ExportKey) -> View {
    let or_none = |s: &Option<String>| s.clone().unwrap_or_else(|| NONE.into());
    let name = e.patient.name.clone().unwrap_or_else(|| "(name not readable)".into());
    View {
        title: format!("Patient record export: {name}"),
        id: e.id.clone(),
        generated: format!("{} UTC", instant_of_ms(e.generated_ms).get(..16).unwrap_or_default().replace('T', " ")),
        verify_url: e.issuer.verify_url.clone(),
        tenant: e.issuer.tenant.clone(),
        contracts: e.issuer.contracts.clone(),
        key_id: key.key_id(),
        patient: PatientView {
            name,
            principal: e.patient.principal.clone(),
            blood_type: or_none(&e.patient.blood_type),
            phone: or_none(&e.patient.phone),
            organ_donor: match e.patient.organ_donor {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => NONE.into(),
            },
            language: or_none(&e.patient.preferred_language),
            contacts: e
                .patient
                .emergency_contacts
                .iter()
                .map(|c| format!("{} ({}), {}", c.name, c.relationship, c.phone))
                .collect(),
        },
        requester: e.requester.principal.clone(),
        role: e.requester.role.clone(),
        scope: ScopeView {
            dates: match (&e.scope.from, &e.scope.to) {
                (None, None) => "all dates".into(),
                (Some(f), None) => format!("from {f}"),
                (None, Some(t)) => format!("up to {t}"),
                (Some(f), Some(t)) => format!("{f} to {t}"),
            },
            types: if e.scope.types.is_empty() { "all record types".into() } else { e.scope.types.join(", ") },
            withheld: e.scope.withheld.clone(),
        },
        allergies: e
            .allergies
            .iter()
            .map(|a| AllergyView {
                substance: a.substance.clone(),
                reaction: a.reaction.clone(),
                severity: a.severity.clone(),
                grave: matches!(a.severity.as_str(), "severe" | "life-threatening"),
                noted: noted_once(&a.source, a.date.as_deref()),
            })
            .collect(),
        alerts: e.alerts.clone(),
        problems: problems(&e.conditions),
        medications: medications(&e.medications),
        records: e
            .records
            .iter()
            .map(|r| RecordView {
                title: r.title.clone(),
                date: r.date.clone(),
                author: r.author.clone(),
                kind: {
                    let mut kind = vec![r.record_type.clone(), format!("v{}", r.version)];
                    kind.extend(r.status.clone());
                    if r.finalized {
                        kind.push("finalized".into());
                    }
                    kind.join(" · ")
                },
                id: r.id.clone(),
                fields: r.fields.iter().map(|f| (f.label.clone(), f.value.clone())).collect(),
                hash: r.data_hash.clone(),
                anchor_tx: r.anchor.as_ref().map(|a| a.txid.clone()).unwrap_or_default(),
                anchor: match &r.anchor {
                    Some(a) => format!("block {}", a.block_height),
                    None => "not yet anchored".into(),
                },
                replaces: r.replaces.iter().map(|v| format!("v{} {}", v.version, v.data_hash)).collect(),
                attachments: r.attachments.iter().map(|a| format!("{} ({})", a.name, size(a.size))).collect(),
            })
            .collect(),
        labs: e
            .labs
            .iter()
            .map(|l| LabView {
                date: l.date.clone(),
                test: match &l.loinc {
                    Some(code) => format!("{} (LOINC {code})", l.test),
                    None => l.test.clone(),
                },
                value: match &l.value {
                    serde_json::Value::Number(n) => n.as_f64().map(num).unwrap_or_else(|| n.to_string()),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => NONE.into(),
                    other => other.to_string(),
                },
                unit: l.unit.as_deref().map(unit_label).unwrap_or_default(),
                range: l.reference_range.clone().unwrap_or_default(),
                flag: l.flag.clone().unwrap_or_default(),
                abnormal: l.flag.as_deref().is_some_and(|f| f != "normal"),
            })
            .collect(),
        charts: chart::charts(&e.vitals),
        attachments: e
            .records
            .iter()
            .flat_map(|r| {
                r.attachments.iter().map(move |a| AttachmentView {
                    name: a.name.clone(),
                    media_type: a.media_type.clone(),
                    size: size(a.size),
                    sha256: a.sha256.clone(),
                    record: format!("{} {} ({})", r.title, r.date, r.id),
                })
            })
            .collect(),
        consents: e
            .consents
            .iter()
            .map(|c| ConsentView {
                provider: c.provider.clone(),
                data_types: c.data_types.join(", "),
                access: c.access_level.clone(),
                purpose: c.purpose.clone(),
                status: if c.active { "active".into() } else { "ended".into() },
                granted: format!("block {}", c.granted_height),
                expires: match (c.expires_height, c.expires_ms) {
                    (Some(h), Some(ms)) => format!("block {h} (about {})", date_of_ms(ms)),
                    (Some(h), None) => format!("block {h}"),
                    (None, _) => "until revoked".into(),
                },
            })
            .collect(),
        audit: e
            .audit
            .iter()
            .map(|a| AuditView {
                time: instant_of_ms(a.time_ms).get(..19).unwrap_or_default().replace('T', " "),
                actor: a.actor.clone(),
                role: a.role.clone(),
                action: a.action.clone(),
                record: a.record_id.clone().unwrap_or_default(),
                method: a.method.clone().unwrap_or_default(),
                outcome: a.outcome.clone(),
            })
            .collect(),
    }
}

/// Where one fact was noted.
fn noted_once(source: &Source, date: Option<&str>) -> String {
    match (source, date) {
        (Source::Profile, _) => "health profile".into(),
        (Source::Record { .. }, Some(d)) => format!("record of {d}"),
        (Source::Record { id, .. }, None) => format!("record {id}"),
    }
}

/// Where a fact noted many times was noted: the profile, and the span of
/// record dates.
struct Noted {
    profile: bool,
    records: usize,
    first: Option<String>,
    last: Option<String>,
}

impl Noted {
    fn new() -> Noted {
        Noted { profile: false, records: 0, first: None, last: None }
    }

    fn add(&mut self, source: &Source, date: Option<&str>) {
        match source {
            Source::Profile => self.profile = true,
            Source::Record { .. } => self.records += 1,
        }
        if let Some(d) = date {
            if self.first.as_deref().is_none_or(|f| d < f) {
                self.first = Some(d.into());
            }
            if self.last.as_deref().is_none_or(|l| d > l) {
                self.last = Some(d.into());
            }
        }
    }

    fn text(&self) -> String {
        let mut parts = Vec::new();
        if self.profile {
            parts.push("health profile".to_string());
        }
        match self.records {
            0 => {}
            1 => parts.push("1 record".into()),
            n => parts.push(format!("{n} records")),
        }
        match (&self.first, &self.last) {
            (Some(f), Some(l)) if f != l => parts.push(format!("{f} to {l}")),
            (Some(f), _) => parts.push(f.clone()),
            _ => {}
        }
        parts.join(", ")
    }
}

/// Conditions merged by code (a chronic problem is noted at every visit),
/// in order of first appearance.
fn problems(conditions: &[Condition]) -> Vec<ProblemView> {
    let mut out: Vec<(ProblemView, Noted)> = Vec::new();
    for c in conditions {
        let i = match out.iter().position(|(p, _)| p.code == c.code) {
            Some(i) => i,
            None => {
                out.push((
                    ProblemView {
                        code: c.code.clone(),
                        description: String::new(),
                        primary: false,
                        noted: String::new(),
                    },
                    Noted::new(),
                ));
                out.len() - 1
            }
        };
        let (p, noted) = &mut out[i];
        if p.description.is_empty() {
            p.description = c.description.clone().unwrap_or_default();
        }
        p.primary |= c.primary;
        noted.add(&c.source, c.date.as_deref());
    }
    out.into_iter().map(|(p, noted)| ProblemView { noted: noted.text(), ..p }).collect()
}

/// Medications merged by name and regimen, in order of first appearance.
fn medications(medications: &[Medication]) -> Vec<MedicationView> {
    let mut out: Vec<(MedicationView, Noted)> = Vec::new();
    for m in medications {
        let regimen = [m.dose.as_ref().map(dose), m.route.clone(), m.frequency.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        let period = match (&m.start, &m.end) {
            (None, None) => String::new(),
            (Some(s), None) => format!("since {s}"),
            (None, Some(e)) => format!("until {e}"),
            (Some(s), Some(e)) => format!("{s} to {e}"),
        };
        let instructions = m.instructions.clone().unwrap_or_default();
        let i = match out.iter().position(|(v, _)| {
            v.name == m.name && v.regimen == regimen && v.period == period && v.instructions == instructions
        }) {
            Some(i) => i,
            None => {
                out.push((
                    MedicationView { name: m.name.clone(), regimen, period, instructions, noted: String::new() },
                    Noted::new(),
                ));
                out.len() - 1
            }
        };
        out[i].1.add(&m.source, m.date.as_deref());
    }
    out.into_iter().map(|(m, noted)| MedicationView { noted: noted.text(), ..m }).collect()
}

fn dose(m: &Measure) -> String {
    format!("{} {}", num(m.value), unit_label(&m.unit))
}

/// A file size for people (`48,213 bytes` is `47.1 KiB`).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(48_213), "47.1 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn repeated_problems_and_medications_merge() {
        let e = crate::sample::sample(12);
        let key = ExportKey::from_secret(&[7; 32], "default").expect("a valid secret");
        let v = view(&e, &key);
        let codes: Vec<&str> = v.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["I48.91", "E11.9"]);
        assert_eq!(v.problems[1].noted, "4 records, 2026-01-05 to 2026-01-08");
        assert!(v.problems[1].primary);
        assert_eq!(v.medications.len(), 2);
        assert_eq!(v.medications[1].regimen, "500 mg · oral · bid");
    }
}
