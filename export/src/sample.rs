//! A rich, deterministic export for the renderers' tests and for sizing
//! (`records` visits of every kind). Not used by the node.

use crate::model::*;

const PATIENT: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
const PROVIDER: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
const DAY_MS: u64 = 86_400_000;
/// 2026-01-05.
const START_MS: u64 = 1_767_571_200_000;

fn hex32(n: u64) -> String {
    format!("0x{n:032x}")
}

fn hash(n: u64) -> String {
    format!("0x{n:064x}")
}

/// An export with a profile, consents, an audit trail and `records`
/// records cycling through consultations, vital signs and lab results.
pub fn sample(records: usize) -> Export {
    let mut e = Export {
        schema: SCHEMA.into(),
        id: "5d41402abc4b2a76b9719d911017c592".into(),
        generated_ms: START_MS + 400 * DAY_MS,
        issuer: Issuer {
            tenant: "default".into(),
            verify_url: "http://127.0.0.1:8080/v1/exports/5d41402abc4b2a76b9719d911017c592".into(),
            contracts: "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM".into(),
        },
        requester: Requester { principal: PATIENT.into(), role: "patient".into() },
        scope: Scope { from: None, to: None, types: vec![], withheld: vec![] },
        patient: Patient {
            principal: PATIENT.into(),
            name: Some("Ada Lovelace".into()),
            phone: Some("+44 20 7946 0000".into()),
            blood_type: Some("O-".into()),
            organ_donor: Some(true),
            preferred_language: Some("en".into()),
            emergency_contacts: vec![Contact {
                name: "Mary Somerville".into(),
                relationship: "friend".into(),
                phone: "+44 20 7946 0001".into(),
            }],
        },
        allergies: vec![Allergy {
            substance: "Penicillin".into(),
            reaction: "Anaphylaxis".into(),
            severity: "life-threatening".into(),
            source: Source::Profile,
            date: None,
        }],
        alerts: vec!["Anticoagulated: on warfarin".into()],
        conditions: vec![Condition {
            code: "I48.91".into(),
            description: Some("Atrial fibrillation".into()),
            primary: false,
            date: None,
            source: Source::Profile,
        }],
        medications: vec![Medication {
            name: "Warfarin".into(),
            dose: Some(Measure { value: 5.0, unit: "mg".into() }),
            route: Some("oral".into()),
            frequency: Some("daily".into()),
            start: Some("2025-06-01".into()),
            end: None,
            instructions: Some("INR target 2–3".into()),
            date: None,
            source: Source::Profile,
        }],
        records: vec![],
        vitals: vec![],
        labs: vec![],
        consents: vec![
            Consent {
                provider: PROVIDER.into(),
                data_types: vec!["medical-history".into(), "lab-results".into()],
                access_level: "write".into(),
                active: true,
                granted_height: 120,
                expires_height: Some(52_680),
                expires_ms: Some(START_MS + 365 * DAY_MS),
                purpose: "treatment".into(),
            },
            Consent {
                provider: PROVIDER.into(),
                data_types: vec!["medical-history".into()],
                access_level: "read".into(),
                active: false,
                granted_height: 90,
                expires_height: Some(96),
                expires_ms: Some(START_MS),
                purpose: "emergency".into(),
            },
        ],
        audit: vec![],
    };
    for i in 0..records as u64 {
        let date = date_of_ms(START_MS + i * DAY_MS / 3);
        let id = hex32(i + 1);
        let mut r = Record {
            id: id.clone(),
            version: 1 + i % 2,
            record_type: String::new(),
            data_type: String::new(),
            template: None,
            title: String::new(),
            date: date.clone(),
            author: PROVIDER.into(),
            created_ms: START_MS + i * DAY_MS / 3,
            content_type: "application/json".into(),
            fields: vec![],
            content: serde_json::Value::Null,
            data_hash: hash(0xa000 + i),
            anchor: Some(Anchor { txid: hash(0xb000 + i), block_height: 10 + i, block_hash: Some(hash(0xc000 + i)) }),
            status: Some("active".into()),
            finalized: i % 5 == 0,
            replaces: if i % 2 == 1 {
                vec![VersionRef { version: 1, data_hash: hash(0xd000 + i), created_ms: START_MS }]
            } else {
                vec![]
            },
            attachments: vec![],
        };
        let source = Source::Record { id: id.clone(), version: r.version };
        match i % 3 {
            0 => {
                r.record_type = "diagnosis".into();
                r.data_type = "medical-history".into();
                r.template = Some("consultation@1".into());
                r.title = "Consultation".into();
                r.fields = vec![
                    Field { label: "Date of visit".into(), value: date.clone() },
                    Field { label: "Chief complaint".into(), value: "Palpitations and fatigue".into() },
                    Field { label: "Diagnoses".into(), value: "E11.9 Type 2 diabetes mellitus (primary)".into() },
                    Field { label: "Medications prescribed".into(), value: "Metformin 500 mg oral bid".into() },
                ];
                r.content = serde_json::json!({
                    "visit_date": date,
                    "chief_complaint": "Palpitations and fatigue",
                    "diagnoses": [{"code": "E11.9", "description": "Type 2 diabetes mellitus", "primary": true}],
                    "medications": [{"name": "Metformin", "dose": {"value": 500, "unit": "mg"}, "route": "oral", "frequency": "bid"}],
                });
                e.conditions.push(Condition {
                    code: "E11.9".into(),
                    description: Some("Type 2 diabetes mellitus".into()),
                    primary: true,
                    date: Some(date.clone()),
                    source: source.clone(),
                });
                e.medications.push(Medication {
                    name: "Metformin".into(),
                    dose: Some(Measure { value: 500.0, unit: "mg".into() }),
                    route: Some("oral".into()),
                    frequency: Some("bid".into()),
                    start: None,
                    end: None,
                    instructions: None,
                    date: Some(date.clone()),
                    source,
                });
                if i == 0 {
                    r.attachments.push(AttachmentRef {
                        id: "8f14e45fceea167a5a36dedd4bea2543".into(),
                        version: 1,
                        name: "ecg-2026-01-05.pdf".into(),
                        media_type: "application/pdf".into(),
                        size: 48_213,
                        sha256: hash(0xe000),
                        uploaded_ms: START_MS,
                    });
                }
            }
            1 => {
                r.record_type = "vitals".into();
                r.data_type = "medical-history".into();
                r.template = Some("vital-signs@1".into());
                r.title = "Vital signs".into();
                let wobble = (i % 7) as f64;
                let values = [
                    (VitalKind::HeartRate, 70.0 + wobble * 3.0, "/min"),
                    (VitalKind::Systolic, 128.0 + wobble * 2.0, "mm[Hg]"),
                    (VitalKind::Diastolic, 82.0 + wobble, "mm[Hg]"),
                    (VitalKind::Temperature, 36.6 + wobble / 10.0, "Cel"),
                    (VitalKind::Weight, 68.0 - wobble / 4.0, "kg"),
                ];
                r.fields = std::iter::once(Field { label: "Measured on".into(), value: date.clone() })
                    .chain(values.iter().map(|(k, v, u)| Field { label: k.label().into(), value: format!("{v} {u}") }))
                    .collect();
                let mut content = serde_json::Map::new();
                content.insert("measured".into(), date.clone().into());
                for (k, v, u) in values {
                    content.insert(k.field().into(), serde_json::json!({"value": v, "unit": u}));
                    e.vitals.push(Vital {
                        kind: k,
                        measure: Measure { value: v, unit: u.into() },
                        date: date.clone(),
                        record_id: id.clone(),
                        version: r.version,
                    });
                }
                r.content = content.into();
            }
            _ => {
                r.record_type = "lab-results".into();
                r.data_type = "lab-results".into();
                r.template = Some("lab-result@1".into());
                r.title = "Lab result".into();
                let hba1c = 6.5 + (i % 5) as f64 / 10.0;
                r.fields = vec![
                    Field { label: "Collected on".into(), value: date.clone() },
                    Field { label: "Results".into(), value: format!("HbA1c {hba1c} % (4.0–5.6) high") },
                ];
                r.content = serde_json::json!({
                    "collected": date,
                    "results": [{"test": "HbA1c", "loinc": "4548-4", "value": hba1c, "unit": "%", "reference_range": "4.0–5.6", "flag": "high"}],
                });
                e.labs.push(LabResult {
                    test: "HbA1c".into(),
                    loinc: Some("4548-4".into()),
                    value: serde_json::json!(hba1c),
                    unit: Some("%".into()),
                    reference_range: Some("4.0–5.6".into()),
                    flag: Some("high".into()),
                    date: date.clone(),
                    record_id: id.clone(),
                    version: r.version,
                });
            }
        }
        e.audit.push(AuditEvent {
            index: i,
            time_ms: START_MS + i * DAY_MS / 3 + 60_000,
            actor: PROVIDER.into(),
            role: "provider".into(),
            action: "record.read".into(),
            record_id: Some(id),
            method: Some("consent".into()),
            outcome: "allowed".into(),
        });
        e.records.push(r);
    }
    e
}
