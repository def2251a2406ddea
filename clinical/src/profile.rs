//! The patient health profile: what a patient keeps about themselves
//! (name and phone, allergies, conditions, medications, contacts,
//! insurance, preferences),
//! the consent data type each part falls under, the part emergency
//! responders may see, and how complete it is.
//!
//! The profile is validated like a record from a template (it is one:
//! [`schema`]); who may read which part is the chain's decision, made by
//! the service per [`Section`]'s data type.

use medanchor_contracts::types::{DataType, RecordType};
use serde_json::{Map, Value};

use crate::template::{Field, FieldKind, Scope, Template};

/// The blood groups a profile may name.
pub const BLOOD_TYPES: [&str; 8] = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];

/// One part of the profile: its field, the consent data type that governs
/// who reads it, and whether an emergency responder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// The field's name.
    pub field: &'static str,
    /// Who may read it: a provider with consent (and access) for this type.
    pub data_type: DataType,
    /// Part of the emergency information (allergies, medications, blood
    /// type, alerts, emergency contacts — nothing else).
    pub emergency: bool,
}

/// Every section, in form order.
pub const SECTIONS: [Section; 14] = [
    Section { field: "full_name", data_type: DataType::BasicInfo, emergency: false },
    Section { field: "phone", data_type: DataType::BasicInfo, emergency: false },
    Section { field: "allergies", data_type: DataType::MedicalHistory, emergency: true },
    Section { field: "chronic_conditions", data_type: DataType::MedicalHistory, emergency: false },
    Section { field: "current_medications", data_type: DataType::TreatmentPlans, emergency: true },
    Section { field: "blood_type", data_type: DataType::MedicalHistory, emergency: true },
    Section { field: "medical_alerts", data_type: DataType::MedicalHistory, emergency: true },
    Section { field: "emergency_contacts", data_type: DataType::BasicInfo, emergency: true },
    Section { field: "organ_donor", data_type: DataType::BasicInfo, emergency: false },
    Section { field: "preferred_language", data_type: DataType::BasicInfo, emergency: false },
    Section { field: "communication_preference", data_type: DataType::BasicInfo, emergency: false },
    Section { field: "preferred_pharmacy", data_type: DataType::TreatmentPlans, emergency: false },
    Section { field: "insurance_provider", data_type: DataType::Financial, emergency: false },
    Section { field: "insurance_member_id", data_type: DataType::Financial, emergency: false },
];

/// The profile's schema, as a template (validated the same way; never
/// offered for records).
pub fn schema() -> Template {
    let f = |name: &str, label: &str, kind: FieldKind| Field {
        name: name.into(),
        label: label.into(),
        required: false,
        kind,
        default: None,
    };
    let choice = |options: &[&str]| FieldKind::Choice { options: options.iter().map(|o| o.to_string()).collect() };
    Template {
        id: "patient-profile".parse().unwrap_or_else(|e| panic!("profile id: {e}")),
        version: 1,
        title: "Health profile".into(),
        record_type: RecordType::BasicInfo,
        scope: Scope::Builtin,
        fields: vec![
            f("full_name", "Full name", FieldKind::Text { max_len: 200 }),
            f("phone", "Phone", FieldKind::Phone),
            f("allergies", "Allergies", FieldKind::Allergies { min: 0 }),
            f("chronic_conditions", "Chronic conditions", FieldKind::Diagnoses { min: 0 }),
            f("current_medications", "Current medications", FieldKind::Medications { min: 0 }),
            f("blood_type", "Blood type", choice(&BLOOD_TYPES)),
            f("medical_alerts", "Medical alerts", FieldKind::Tags { min: 0 }),
            f("emergency_contacts", "Emergency contacts", FieldKind::Contacts { min: 0 }),
            f("organ_donor", "Organ donor", FieldKind::Boolean),
            f("preferred_language", "Preferred language", FieldKind::Text { max_len: 64 }),
            f("communication_preference", "How to reach you", choice(&["email", "sms", "phone", "mail", "portal"])),
            f("preferred_pharmacy", "Preferred pharmacy", FieldKind::Text { max_len: 200 }),
            f("insurance_provider", "Insurance provider", FieldKind::Text { max_len: 200 }),
            f("insurance_member_id", "Insurance member id", FieldKind::Text { max_len: 64 }),
        ],
    }
}

/// How complete a profile is: the share of sections filled, in percent,
/// and the ones still missing (in form order).
pub fn completeness(profile: &Value) -> (u8, Vec<&'static str>) {
    let filled = |field: &str| match profile.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    let missing: Vec<&'static str> = SECTIONS.iter().map(|s| s.field).filter(|f| !filled(f)).collect();
    let done = SECTIONS.len() - missing.len();
    ((done * 100 / SECTIONS.len()) as u8, missing)
}

/// The parts of `profile` whose section `keep` accepts.
pub fn only(profile: &Value, keep: impl Fn(&Section) -> bool) -> Value {
    let mut out = Map::new();
    for s in SECTIONS.iter().filter(|s| keep(s)) {
        if let Some(v) = profile.get(s.field) {
            out.insert(s.field.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_field_has_exactly_one_section() {
        let schema = schema();
        schema.check().expect("well formed");
        let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        let sections: Vec<&str> = SECTIONS.iter().map(|s| s.field).collect();
        assert_eq!(fields, sections);
        let emergency: Vec<&str> = SECTIONS.iter().filter(|s| s.emergency).map(|s| s.field).collect();
        assert_eq!(
            emergency,
            ["allergies", "current_medications", "blood_type", "medical_alerts", "emergency_contacts"]
        );
    }

    #[test]
    fn completeness_counts_filled_sections() {
        assert_eq!(completeness(&json!({})).0, 0);
        let some = json!({ "blood_type": "O+", "allergies": [], "organ_donor": false, "preferred_language": " " });
        let (percent, missing) = completeness(&some);
        assert_eq!(percent, (2 * 100 / 14) as u8);
        assert!(missing.contains(&"allergies") && missing.contains(&"preferred_language"));
        assert!(!missing.contains(&"blood_type") && !missing.contains(&"organ_donor"));
    }

    #[test]
    fn profiles_are_validated_with_every_field_named() {
        let schema = schema();
        let ok = json!({
            "blood_type": "AB-",
            "emergency_contacts": [{ "name": "Ana", "relationship": "sister", "phone": "+1 (555) 010-2030", "email": "ana@example.org" }],
            "medical_alerts": ["pacemaker", "anticoagulated"],
        });
        assert_eq!(schema.validate(&ok), Ok(ok.clone()));
        let bad = json!({
            "blood_type": "C+",
            "emergency_contacts": [{ "name": "Ana", "relationship": "sister", "phone": "call me", "email": "ana@" }],
            "medical_alerts": [7],
            "shoe_size": 42,
        });
        let mut paths: Vec<String> = schema.validate(&bad).expect_err("refused").into_iter().map(|e| e.path).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "blood_type",
                "emergency_contacts[0].email",
                "emergency_contacts[0].phone",
                "medical_alerts[0]",
                "shoe_size"
            ]
        );
    }

    #[test]
    fn only_keeps_the_accepted_sections() {
        let p = json!({ "blood_type": "O+", "insurance_provider": "Acme", "allergies": [] });
        assert_eq!(only(&p, |s| s.emergency), json!({ "blood_type": "O+", "allergies": [] }));
        assert_eq!(only(&p, |s| s.data_type == DataType::Financial), json!({ "insurance_provider": "Acme" }));
    }
}
