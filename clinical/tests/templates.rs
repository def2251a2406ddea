//! Every built-in template: a valid record round-trips, every field's
//! violations are refused with the field named, versions coexist, and the
//! registry keeps versions append-only.

use medanchor_clinical::builtin;
use medanchor_clinical::template::{measurement, Field, FieldKind, Scope, TemplateError, MAX_ERRORS};
use medanchor_clinical::{Problem, Registry, RegistryError, Template, TemplateRef};
use medanchor_contracts::types::RecordType;
use serde_json::{json, Value};

/// A valid record of each built-in template, already in normal form.
fn samples() -> Vec<(&'static str, Value)> {
    let meds = json!([
        { "name": "Metformin", "dose": { "value": 500, "unit": "mg" }, "route": "oral", "frequency": "twice-daily",
          "start": "2026-11-02", "end": "2027-02-02", "instructions": "with meals" },
        { "name": "Salbutamol", "dose": { "value": 2, "unit": "{puff}" }, "route": "inhalation", "frequency": "as-needed" }
    ]);
    let allergies = json!([{ "substance": "Penicillin", "reaction": "hives", "severity": "moderate" }]);
    vec![
        (
            "consultation",
            json!({
                "visit_date": "2026-12-01",
                "chief_complaint": "Thirst and frequent urination",
                "history": "Three months of polyuria.",
                "diagnoses": [{ "code": "E11.9", "description": "Type 2 diabetes", "primary": true }, { "code": "I10" }],
                "medications": meds,
                "allergies": allergies,
                "plan": "Recheck HbA1c in 3 months.",
            }),
        ),
        (
            "follow-up",
            json!({ "visit_date": "2027-03-01", "previous_visit": "2026-12-01", "progress": "improved",
                    "next_visit": "2027-06-01", "notes": "HbA1c down to 6.9%" }),
        ),
        (
            "procedure",
            json!({ "procedure_date": "2026-10-10", "procedure": "Colonoscopy", "anesthesia": "sedation",
                    "indications": [{ "code": "K92.1" }], "findings": "Two small polyps removed.",
                    "outcome": "successful" }),
        ),
        (
            "lab-result",
            json!({ "collected": "2026-12-01", "laboratory": "Central Lab", "results": [
                { "test": "Glucose", "loinc": "2345-7", "value": 126, "unit": "mg/dL", "reference_range": "70-99", "flag": "high" },
                { "test": "Hemoglobin A1c", "loinc": "4548-4", "value": 7.2, "unit": "%", "flag": "high" },
                { "test": "SARS-CoV-2 RNA", "value": "not detected" }
            ] }),
        ),
        (
            "vital-signs",
            json!({
                "measured": "2026-12-01",
                "heart_rate": { "value": 72, "unit": "/min" },
                "systolic": { "value": 128, "unit": "mm[Hg]" },
                "diastolic": { "value": 82, "unit": "mm[Hg]" },
                "temperature": { "value": 98.6, "unit": "[degF]" },
                "spo2": { "value": 97, "unit": "%" },
                "respiratory_rate": { "value": 14, "unit": "/min" },
                "weight": { "value": 81.5, "unit": "kg" },
                "height": { "value": 1.78, "unit": "m" },
                "glucose": { "value": 6.1, "unit": "mmol/L" },
            }),
        ),
        (
            "discharge-summary",
            json!({
                "admitted": "2026-11-20", "discharged": "2026-11-24",
                "diagnoses": [{ "code": "J18.9", "primary": true }],
                "hospital_course": "IV antibiotics, then oral; afebrile for 48 h.",
                "discharge_medications": [{ "name": "Amoxicillin", "dose": { "value": 1, "unit": "g" },
                                            "route": "oral", "frequency": "three-times-daily" }],
                "allergies": [{ "substance": "Latex", "reaction": "rash", "severity": "mild" }],
                "disposition": "home",
            }),
        ),
        (
            "referral",
            json!({ "referral_date": "2026-12-02", "to_specialty": "Endocrinology", "urgency": "soon",
                    "reason": "Diabetes with rising HbA1c despite metformin.",
                    "diagnoses": [{ "code": "E11.65" }] }),
        ),
    ]
}

#[test]
fn every_builtin_template_is_well_formed_and_has_a_valid_record_that_round_trips() {
    let registry = Registry::builtin();
    let builtins = builtin::templates();
    assert_eq!(builtins.len(), 7);
    for (id, content) in samples() {
        let t = registry.latest(&builtin::id(id)).expect("built in");
        t.check().expect("well formed");
        let normal = t.validate(&content).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(normal, content, "{id}: normal content is kept as is");
        // Stored and read back (JSON text): the same typed content.
        let text = serde_json::to_string(&normal).expect("json");
        let back: Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(t.validate(&back).as_ref(), Ok(&normal), "{id}");
    }
    assert_eq!(samples().len(), builtins.len(), "a sample per built-in template");
}

#[test]
fn templates_map_to_the_contracts_record_types() {
    let registry = Registry::builtin();
    for (id, record_type) in [
        ("consultation", RecordType::Diagnosis),
        ("follow-up", RecordType::Diagnosis),
        ("procedure", RecordType::Procedures),
        ("lab-result", RecordType::LabResults),
        ("vital-signs", RecordType::Vitals),
        ("discharge-summary", RecordType::Diagnosis),
        ("referral", RecordType::Diagnosis),
    ] {
        assert_eq!(registry.latest(&builtin::id(id)).expect("template").record_type, record_type, "{id}");
    }
}

#[test]
fn input_is_normalised() {
    let registry = Registry::builtin();
    let t = registry.latest(&builtin::id("consultation")).expect("template");
    let content = json!({
        "visit_date": "2026-12-01",
        "chief_complaint": "  cough  ",
        "diagnoses": [{ "code": "j45909" }],
        "history": "",
        "plan": null,
    });
    let normal = t.validate(&content).expect("valid");
    assert_eq!(
        normal,
        json!({ "visit_date": "2026-12-01", "chief_complaint": "cough", "diagnoses": [{ "code": "J45.909" }] })
    );
}

/// The kind of a problem, for the table below.
fn kind(p: &Problem) -> &'static str {
    match p {
        Problem::Required => "required",
        Problem::Unknown => "unknown",
        Problem::Type(_) => "type",
        Problem::TooLong(_) => "too-long",
        Problem::Date => "date",
        Problem::NotOneOf(_) => "not-one-of",
        Problem::Code(_) => "code",
        Problem::Loinc => "loinc",
        Problem::Measure(medanchor_clinical::units::MeasureError::Unit { .. }) => "unit",
        Problem::Measure(medanchor_clinical::units::MeasureError::Implausible { .. }) => "implausible",
        Problem::Measure(medanchor_clinical::units::MeasureError::NotANumber) => "not-a-number",
        Problem::TooFew(_) => "too-few",
        Problem::TooMany(_) => "too-many",
        Problem::TwoPrimaries => "two-primaries",
        Problem::EndsBeforeStart => "ends-before-start",
        Problem::Phone => "phone",
        Problem::Email => "email",
        Problem::Range(..) => "range",
        Problem::Shape(_) => "shape",
    }
}

/// Each case: a template, a change to its valid sample (`path` set to a
/// value, or removed when `Value::Null` is given for a required field), and
/// every failing field it must be refused with.
#[test]
fn every_fields_violations_are_refused_with_the_field_named() {
    type Case = (&'static str, Vec<(&'static str, Value)>, &'static [(&'static str, &'static str)]);
    let long = "x".repeat(20_001);
    let cases: Vec<Case> = vec![
        ("consultation", vec![("visit_date", Value::Null)], &[("visit_date", "required")]),
        (
            "consultation",
            vec![("chief_complaint", Value::Null), ("diagnoses", Value::Null)],
            &[("chief_complaint", "required"), ("diagnoses", "required")],
        ),
        ("consultation", vec![("visit_date", json!("2026-02-30"))], &[("visit_date", "date")]),
        ("consultation", vec![("visit_date", json!("12/01/2026"))], &[("visit_date", "date")]),
        ("consultation", vec![("history", json!(42))], &[("history", "type")]),
        ("consultation", vec![("blood_type", json!("A+"))], &[("blood_type", "unknown")]),
        ("consultation", vec![("diagnoses", json!([]))], &[("diagnoses", "too-few")]),
        ("consultation", vec![("diagnoses", json!({ "code": "E11.9" }))], &[("diagnoses", "type")]),
        (
            "consultation",
            vec![("diagnoses", json!([{ "code": "E1" }, { "code": "1E1.9" }]))],
            &[("diagnoses[0].code", "code"), ("diagnoses[1].code", "code")],
        ),
        (
            "consultation",
            vec![("diagnoses", json!([{ "description": "no code" }]))],
            &[("diagnoses[0].code", "required")],
        ),
        (
            "consultation",
            vec![("diagnoses", json!([{ "code": "E11.9", "severity": "bad" }]))],
            &[("diagnoses[0].severity", "unknown")],
        ),
        (
            "consultation",
            vec![("diagnoses", json!([{ "code": "E11.9", "primary": true }, { "code": "I10", "primary": true }]))],
            &[("diagnoses", "two-primaries")],
        ),
        (
            "consultation",
            vec![(
                "medications",
                json!([{ "name": "X", "dose": { "value": 5, "unit": "mg" }, "route": "by-mouth", "frequency": "daily" }]),
            )],
            &[("medications[0].route", "not-one-of")],
        ),
        (
            "consultation",
            vec![(
                "medications",
                json!([{ "name": "X", "dose": { "value": 5, "unit": "tsp" }, "route": "oral", "frequency": "hourly" }]),
            )],
            &[("medications[0].dose.unit", "unit"), ("medications[0].frequency", "not-one-of")],
        ),
        (
            "consultation",
            vec![(
                "medications",
                json!([{ "dose": { "value": -5, "unit": "mg" }, "route": "oral", "frequency": "daily" }]),
            )],
            &[("medications[0].name", "required"), ("medications[0].dose.value", "not-a-number")],
        ),
        (
            "consultation",
            vec![(
                "medications",
                json!([{ "name": "X", "dose": { "unit": "mg" }, "route": "oral", "frequency": "daily" }]),
            )],
            &[("medications[0].dose.value", "type")],
        ),
        (
            "consultation",
            vec![(
                "medications",
                json!([{ "name": "X", "dose": { "value": 1, "unit": "mg" }, "route": "oral", "frequency": "daily", "start": "2026-12-01", "end": "2026-11-01" }]),
            )],
            &[("medications[0].end", "ends-before-start")],
        ),
        (
            "consultation",
            vec![(
                "allergies",
                json!([{ "substance": "Nuts", "reaction": "anaphylaxis", "severity": "fatal" }, { "substance": "Dust" }]),
            )],
            &[
                ("allergies[0].severity", "not-one-of"),
                ("allergies[1].reaction", "required"),
                ("allergies[1].severity", "required"),
            ],
        ),
        ("consultation", vec![("history", Value::String(long))], &[("history", "too-long")]),
        ("follow-up", vec![("progress", json!("better"))], &[("progress", "not-one-of")]),
        (
            "procedure",
            vec![("outcome", Value::Null), ("anesthesia", json!("spinal"))],
            &[("anesthesia", "not-one-of"), ("outcome", "required")],
        ),
        (
            "lab-result",
            vec![("results", json!([{ "test": "Glucose", "loinc": "2345-6", "value": 126 }]))],
            &[("results[0].loinc", "loinc")],
        ),
        (
            "lab-result",
            vec![("results", json!([{ "test": "Glucose", "value": [1, 2], "flag": "bad" }]))],
            &[("results[0].value", "type"), ("results[0].flag", "not-one-of")],
        ),
        (
            "lab-result",
            vec![("results", json!([{ "loinc": "2345-7" }]))],
            &[("results[0].test", "required"), ("results[0].value", "required")],
        ),
        ("vital-signs", vec![("heart_rate", measurement(720.0, "/min"))], &[("heart_rate.value", "implausible")]),
        ("vital-signs", vec![("temperature", measurement(98.6, "Cel"))], &[("temperature.value", "implausible")]),
        (
            "vital-signs",
            vec![("systolic", measurement(120.0, "mmHg")), ("spo2", measurement(101.0, "%"))],
            &[("systolic.unit", "unit"), ("spo2.value", "implausible")],
        ),
        ("vital-signs", vec![("weight", json!(81.5))], &[("weight", "type")]),
        (
            "vital-signs",
            vec![("height", json!({ "value": 178, "unit": "cm", "at": "noon" }))],
            &[("height.at", "unknown")],
        ),
        ("vital-signs", vec![("glucose", json!({ "value": "high", "unit": "mg/dL" }))], &[("glucose.value", "type")]),
        (
            "discharge-summary",
            vec![("disposition", json!("hotel")), ("hospital_course", json!("   "))],
            &[("hospital_course", "required"), ("disposition", "not-one-of")],
        ),
        (
            "referral",
            vec![("urgency", json!(1)), ("to_specialty", Value::Null)],
            &[("to_specialty", "required"), ("urgency", "not-one-of")],
        ),
    ];
    let registry = Registry::builtin();
    let samples = samples();
    for (id, changes, want) in &cases {
        let t = registry.latest(&builtin::id(id)).expect("template");
        let mut content = samples.iter().find(|(s, _)| s == id).expect("sample").1.clone();
        for (path, value) in changes {
            match value {
                Value::Null => {
                    content.as_object_mut().expect("object").remove(*path);
                }
                v => {
                    content[*path] = v.clone();
                }
            }
        }
        let errors = t.validate(&content).expect_err("refused");
        let mut got: Vec<(String, &str)> = errors.iter().map(|e| (e.path.clone(), kind(&e.problem))).collect();
        let mut want: Vec<(String, &str)> = want.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{id} with {changes:?}");
        for e in &errors {
            assert!(e.to_string().starts_with(&e.path), "messages name the field: {e}");
        }
    }
}

#[test]
fn content_that_is_not_an_object_or_floods_errors_is_bounded() {
    let registry = Registry::builtin();
    let t = registry.latest(&builtin::id("vital-signs")).expect("template");
    let errors = t.validate(&json!([1, 2])).expect_err("not an object");
    assert_eq!((errors[0].path.as_str(), kind(&errors[0].problem)), ("content", "type"));
    let flood: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("{}{i}", "k".repeat(1_000)), json!(1))).collect();
    let errors = t.validate(&Value::Object(flood)).expect_err("unknown fields");
    assert!(errors.len() <= MAX_ERRORS, "{}", errors.len());
    assert!(errors.iter().all(|e| e.path.len() <= 64), "paths are bounded");
}

#[test]
fn template_versions_coexist_and_are_append_only() {
    let mut registry = Registry::builtin();
    let v1 = registry.latest(&builtin::id("referral")).expect("v1").clone();
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.fields.push(Field {
        name: "insurance_authorization".into(),
        label: "Insurance authorization number".into(),
        required: true,
        kind: FieldKind::Text { max_len: 40 },
        default: None,
    });
    assert_eq!(registry.add(v2.clone()), Ok(TemplateRef { id: v1.id.clone(), version: 2 }));
    let record = samples().into_iter().find(|(s, _)| *s == "referral").expect("sample").1;
    // The record written with v1 is still valid under v1, and v2 names
    // what it lacks.
    let v1_again = registry.get(&TemplateRef { id: v1.id.clone(), version: 1 }).expect("v1 kept");
    assert!(v1_again.validate(&record).is_ok());
    let latest = registry.latest(&v1.id).expect("latest");
    assert_eq!(latest.version, 2);
    let errors = latest.validate(&record).expect_err("v2 needs more");
    assert_eq!(errors.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["insurance_authorization"]);

    // Versions are 1, 2, 3…; a new version keeps scope and record type.
    let mut skip = v2.clone();
    skip.version = 4;
    assert!(matches!(registry.add(skip), Err(RegistryError::Version { expected: 3, got: 4, .. })));
    let mut again = v2.clone();
    again.version = 2;
    assert!(matches!(registry.add(again), Err(RegistryError::Version { expected: 3, got: 2, .. })));
    let mut moved = v2.clone();
    moved.version = 3;
    moved.record_type = RecordType::MentalHealth;
    assert!(matches!(registry.add(moved), Err(RegistryError::Identity(_))));
    assert!(matches!(registry.get(&TemplateRef { id: v1.id.clone(), version: 9 }), Err(RegistryError::NotFound(_))));
    assert!(matches!(registry.get(&TemplateRef { id: v1.id, version: 0 }), Err(RegistryError::NotFound(_))));
}

fn usable(registry: &Registry, who: &str, specialties: &[String]) -> Vec<String> {
    registry.usable_by(who, specialties).map(|t| t.id.to_string()).collect()
}

#[test]
fn custom_templates_arrive_as_json_and_are_checked() {
    // An administrator's template, as the API would receive it.
    let custom: Template = serde_json::from_value(json!({
        "id": "cardiology-echo",
        "version": 1,
        "title": "Echocardiogram",
        "record_type": "imaging",
        "scope": { "kind": "specialty", "name": "cardiology" },
        "fields": [
            { "name": "study_date", "label": "Study date", "required": true, "kind": { "type": "date" } },
            { "name": "ejection_fraction", "label": "LVEF %", "kind": { "type": "text", "max_len": 10 } },
            { "name": "rhythm", "label": "Rhythm", "kind": { "type": "choice", "options": ["sinus", "af", "other"] },
              "default": "sinus" },
            { "name": "heart_rate", "label": "Heart rate", "kind": { "type": "measurement", "quantity": "heart-rate" } }
        ]
    }))
    .expect("a template");
    assert_eq!(custom.prefill(), json!({ "rhythm": "sinus" }));
    let mut registry = Registry::builtin();
    registry.add(custom.clone()).expect("added");
    let cardiologist = vec!["cardiology".to_string()];

    assert!(usable(&registry, "ST1", &cardiologist).contains(&"cardiology-echo".to_string()));
    assert!(!usable(&registry, "ST1", &[]).contains(&"cardiology-echo".to_string()));
    assert_eq!(usable(&registry, "ST1", &[]).len(), 7, "everyone has the built-ins");

    // A provider's saved template is theirs alone.
    let mine = Template {
        id: "my-diabetes-check".parse().expect("id"),
        scope: Scope::Provider("ST1".into()),
        ..custom.clone()
    };
    registry.add(mine).expect("saved");
    assert!(usable(&registry, "ST1", &[]).contains(&"my-diabetes-check".to_string()));
    assert!(!usable(&registry, "ST2", &[]).contains(&"my-diabetes-check".to_string()));

    // Malformed templates are refused before they are stored.
    let bad = |edit: &dyn Fn(&mut Template)| {
        let mut t = custom.clone();
        t.id = "bad".parse().expect("id");
        edit(&mut t);
        Registry::default().add(t)
    };
    let err = |e: Result<TemplateRef, RegistryError>| match e {
        Err(RegistryError::Invalid(_, e)) => e,
        other => panic!("expected invalid, got {other:?}"),
    };
    assert_eq!(err(bad(&|t| t.fields[1].name = "study_date".into())), TemplateError::FieldName("study_date".into()));
    assert_eq!(err(bad(&|t| t.fields[1].name = "LVEF".into())), TemplateError::FieldName("LVEF".into()));
    assert_eq!(
        err(bad(&|t| t.fields[2].kind = FieldKind::Choice { options: vec![] })),
        TemplateError::Options("rhythm".into())
    );
    assert!(matches!(err(bad(&|t| t.fields[2].default = Some(json!("flutter")))), TemplateError::Default(..)));
    assert_eq!(err(bad(&|t| t.fields.clear())), TemplateError::Fields);
    assert_eq!(err(bad(&|t| t.version = 0)), TemplateError::Version);
    for refused in [
        json!({ "id": "Bad Id", "version": 1, "title": "x", "record_type": "vitals", "scope": { "kind": "builtin" }, "fields": [] }),
        json!({ "id": "x", "version": 1, "title": "x", "record_type": "no-such-type", "scope": { "kind": "builtin" }, "fields": [] }),
        json!({ "id": "x", "version": 1, "title": "x", "record_type": "vitals", "scope": { "kind": "builtin" }, "fields": [], "extra": 1 }),
    ] {
        assert!(serde_json::from_value::<Template>(refused.clone()).is_err(), "{refused}");
    }
}

#[test]
fn builtin_templates_survive_a_json_round_trip() {
    for t in builtin::templates() {
        let text = serde_json::to_string(&t).expect("serialize");
        let back: Template = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, t, "{}", t.id);
    }
}

#[test]
fn prefill_gives_each_default_and_is_valid_as_far_as_it_goes() {
    let registry = Registry::builtin();
    for (id, want) in [
        ("procedure", json!({ "anesthesia": "local" })),
        ("discharge-summary", json!({ "disposition": "home" })),
        ("referral", json!({ "urgency": "routine" })),
        ("vital-signs", json!({})),
    ] {
        let t = registry.latest(&builtin::id(id)).expect("template");
        let prefill = t.prefill();
        assert_eq!(prefill, want, "{id}");
        // The defaults are valid; only the required fields without one are
        // reported.
        let errors = t.validate(&prefill).err().unwrap_or_default();
        assert!(errors.iter().all(|e| kind(&e.problem) == "required"), "{id}: {errors:?}");
        let required: Vec<&str> =
            t.fields.iter().filter(|f| f.required && f.default.is_none()).map(|f| f.name.as_str()).collect();
        assert_eq!(errors.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), required, "{id}");
    }
}

#[test]
fn whole_numbers_may_be_written_as_doubles() {
    let r: TemplateRef = serde_json::from_value(json!({ "id": "referral", "version": 2.0 })).expect("2.0 is 2");
    assert_eq!(r.version, 2);
    for refused in [json!(2.5), json!(-1), json!(4294967296u64), json!("2")] {
        assert!(
            serde_json::from_value::<TemplateRef>(json!({ "id": "referral", "version": refused })).is_err(),
            "{refused}"
        );
    }
}

#[test]
fn a_scope_has_exactly_its_two_shapes() {
    let ok = [
        (json!({ "kind": "builtin" }), Scope::Builtin),
        (json!({ "kind": "tenant" }), Scope::Tenant),
        (json!({ "kind": "specialty", "name": "cardiology" }), Scope::Specialty("cardiology".into())),
        (json!({ "kind": "provider", "name": "ST1" }), Scope::Provider("ST1".into())),
    ];
    for (wire, scope) in ok {
        assert_eq!(serde_json::from_value::<Scope>(wire.clone()).expect("scope"), scope, "{wire}");
        assert_eq!(serde_json::to_value(&scope).expect("json"), wire, "written as read");
    }
    for refused in [
        json!({ "kind": "tenant", "name": "m" }),
        json!({ "kind": "provider" }),
        json!({ "kind": "specialty", "name": "" }),
        json!({ "kind": "specialty", "name": "x".repeat(129) }),
        json!({ "kind": "hospital" }),
        json!({ "kind": "tenant", "extra": 1 }),
        json!("tenant"),
    ] {
        assert!(serde_json::from_value::<Scope>(refused.clone()).is_err(), "{refused}");
    }
}

#[test]
fn search_terms_are_the_codes_and_medication_names() {
    let registry = Registry::builtin();
    let reference = TemplateRef { id: "consultation".parse().unwrap_or_else(|e| panic!("{e}")), version: 1 };
    let t = registry.get(&reference).unwrap_or_else(|e| panic!("{e}"));
    let content =
        samples().into_iter().find(|(id, _)| *id == "consultation").map(|(_, c)| c).unwrap_or_else(|| panic!("sample"));
    let normal = t.validate(&content).unwrap_or_else(|e| panic!("{e:?}"));
    let terms = t.search_terms(&normal);
    assert_eq!(terms.diagnoses, ["E11.9", "I10"]);
    assert_eq!(terms.medications, ["Metformin", "Salbutamol"]);
    assert_eq!(t.search_terms(&json!({})), Default::default());
}
