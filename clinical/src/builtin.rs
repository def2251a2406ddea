//! The templates a node ships with, one per common visit type.
//!
//! Each maps to one of the contract's record types, which decides the
//! consent data type that governs who may read its records:
//!
//! | template | record type | consent data type |
//! |---|---|---|
//! | `consultation` | `diagnosis` | `medical-history` |
//! | `follow-up` | `diagnosis` | `medical-history` |
//! | `procedure` | `procedures` | `medical-history` |
//! | `lab-result` | `lab-results` | `lab-results` |
//! | `vital-signs` | `vitals` | `medical-history` |
//! | `discharge-summary` | `diagnosis` | `medical-history` |
//! | `referral` | `diagnosis` | `medical-history` |

use medanchor_contracts::types::RecordType;
use serde_json::Value;

use crate::template::{Field, FieldKind, Scope, Template, TemplateId, DEFAULT_TEXT_MAX};
use crate::units::Quantity;

fn field(name: &str, label: &str, required: bool, kind: FieldKind) -> Field {
    Field { name: name.into(), label: label.into(), required, kind, default: None }
}

fn text(name: &str, label: &str, required: bool) -> Field {
    field(name, label, required, FieldKind::Text { max_len: DEFAULT_TEXT_MAX })
}

fn line(name: &str, label: &str, required: bool) -> Field {
    field(name, label, required, FieldKind::Text { max_len: 200 })
}

fn date(name: &str, label: &str, required: bool) -> Field {
    field(name, label, required, FieldKind::Date)
}

fn measure(name: &str, label: &str, quantity: Quantity) -> Field {
    field(name, label, false, FieldKind::Measurement { quantity })
}

fn choice(name: &str, label: &str, required: bool, options: &[&str], default: Option<&str>) -> Field {
    Field {
        default: default.map(|d| Value::String(d.into())),
        ..field(name, label, required, FieldKind::Choice { options: options.iter().map(|o| o.to_string()).collect() })
    }
}

fn template(id: &str, title: &str, record_type: RecordType, fields: Vec<Field>) -> Template {
    Template {
        id: id.parse().unwrap_or_else(|e| panic!("built-in template id {id}: {e}")),
        version: 1,
        title: title.into(),
        record_type,
        scope: Scope::Builtin,
        fields,
    }
}

fn vitals_fields() -> Vec<Field> {
    vec![
        measure("heart_rate", "Heart rate", Quantity::HeartRate),
        measure("systolic", "Blood pressure, systolic", Quantity::SystolicPressure),
        measure("diastolic", "Blood pressure, diastolic", Quantity::DiastolicPressure),
        measure("temperature", "Temperature", Quantity::Temperature),
        measure("spo2", "Oxygen saturation (SpO₂)", Quantity::OxygenSaturation),
        measure("respiratory_rate", "Respiratory rate", Quantity::RespiratoryRate),
        measure("weight", "Weight", Quantity::Weight),
        measure("height", "Height", Quantity::Height),
        measure("glucose", "Blood glucose", Quantity::Glucose),
    ]
}

/// Every built-in template, at version 1.
pub fn templates() -> Vec<Template> {
    let visit = || date("visit_date", "Date of visit", true);
    let notes = || text("notes", "Notes", false);
    vec![
        template(
            "consultation",
            "Consultation",
            RecordType::Diagnosis,
            vec![
                visit(),
                text("chief_complaint", "Chief complaint", true),
                text("history", "History of present illness", false),
                text("examination", "Examination", false),
                field("diagnoses", "Diagnoses", true, FieldKind::Diagnoses { min: 1 }),
                field("medications", "Medications prescribed", false, FieldKind::Medications { min: 0 }),
                field("allergies", "Allergies noted", false, FieldKind::Allergies { min: 0 }),
                text("plan", "Plan", false),
                notes(),
            ],
        ),
        template(
            "follow-up",
            "Follow-up visit",
            RecordType::Diagnosis,
            vec![
                visit(),
                date("previous_visit", "Previous visit", false),
                choice("progress", "Progress", true, &["improved", "unchanged", "worse", "resolved"], None),
                field("diagnoses", "Diagnoses", false, FieldKind::Diagnoses { min: 0 }),
                field("medications", "Medication changes", false, FieldKind::Medications { min: 0 }),
                date("next_visit", "Next visit", false),
                notes(),
            ],
        ),
        template(
            "procedure",
            "Procedure",
            RecordType::Procedures,
            vec![
                date("procedure_date", "Date of procedure", true),
                line("procedure", "Procedure", true),
                field("indications", "Indications", false, FieldKind::Diagnoses { min: 0 }),
                choice(
                    "anesthesia",
                    "Anesthesia",
                    false,
                    &["none", "local", "regional", "sedation", "general"],
                    Some("local"),
                ),
                text("findings", "Findings", false),
                text("complications", "Complications", false),
                choice(
                    "outcome",
                    "Outcome",
                    true,
                    &["successful", "partially-successful", "unsuccessful", "abandoned"],
                    None,
                ),
                notes(),
            ],
        ),
        template(
            "lab-result",
            "Lab result",
            RecordType::LabResults,
            vec![
                date("collected", "Collected on", true),
                date("reported", "Reported on", false),
                line("specimen", "Specimen", false),
                line("laboratory", "Laboratory", false),
                field("results", "Results", true, FieldKind::LabResults { min: 1 }),
                notes(),
            ],
        ),
        template(
            "vital-signs",
            "Vital signs",
            RecordType::Vitals,
            std::iter::once(date("measured", "Measured on", true)).chain(vitals_fields()).chain([notes()]).collect(),
        ),
        template(
            "discharge-summary",
            "Discharge summary",
            RecordType::Diagnosis,
            vec![
                date("admitted", "Admitted on", true),
                date("discharged", "Discharged on", true),
                line("admitting_diagnosis_text", "Reason for admission", false),
                field("diagnoses", "Discharge diagnoses", true, FieldKind::Diagnoses { min: 1 }),
                text("hospital_course", "Hospital course", true),
                field("procedures_performed", "Procedures", false, FieldKind::Diagnoses { min: 0 }),
                field("discharge_medications", "Discharge medications", false, FieldKind::Medications { min: 0 }),
                field("allergies", "Allergies", false, FieldKind::Allergies { min: 0 }),
                choice(
                    "disposition",
                    "Discharged to",
                    true,
                    &[
                        "home",
                        "home-with-services",
                        "rehabilitation",
                        "skilled-nursing",
                        "another-hospital",
                        "deceased",
                    ],
                    Some("home"),
                ),
                text("follow_up", "Follow-up instructions", false),
            ],
        ),
        template(
            "referral",
            "Referral",
            RecordType::Diagnosis,
            vec![
                date("referral_date", "Date of referral", true),
                line("to_specialty", "Referred to (specialty)", true),
                line("to_provider", "Referred to (provider)", false),
                choice("urgency", "Urgency", true, &["routine", "soon", "urgent", "emergency"], Some("routine")),
                text("reason", "Reason for referral", true),
                field("diagnoses", "Working diagnoses", false, FieldKind::Diagnoses { min: 0 }),
                field("medications", "Current medications", false, FieldKind::Medications { min: 0 }),
                field("allergies", "Allergies", false, FieldKind::Allergies { min: 0 }),
                notes(),
            ],
        ),
    ]
}

/// The id of a built-in template, for callers that name one in code.
pub fn id(slug: &str) -> TemplateId {
    slug.parse().unwrap_or_else(|e| panic!("template id {slug}: {e}"))
}
