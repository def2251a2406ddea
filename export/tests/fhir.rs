//! The FHIR R4 export checked by two independent validators that know the
//! R4 (4.0.1) specification: FHIR.js (npm `fhir`, in tests/js) and the
//! pydantic models of PyPI `fhir.resources` (in .venv/fhir). Both must
//! accept what `fhir::bundle` renders, and both must reject a bundle broken
//! on purpose, so an accepting validator is known to be looking.
//!
//! The tools are installed by scripts/test (`ensure_node_modules`,
//! `ensure_fhir_validator` in scripts/lib.sh); without them the test fails
//! and says which function installs what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use medanchor_export::fhir::bundle;
use medanchor_export::model::*;
use medanchor_export::sample::sample;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

#[derive(Clone, Copy, Debug)]
enum Validator {
    FhirJs,
    FhirResources,
}

const VALIDATORS: [Validator; 2] = [Validator::FhirJs, Validator::FhirResources];

/// Runs one validator on a file: whether it accepted it, and what it said.
fn run(validator: Validator, file: &Path) -> (bool, String) {
    let root = root();
    let mut command = match validator {
        Validator::FhirJs => {
            let package = root.join("tests/js/node_modules/fhir/package.json");
            assert!(
                package.exists(),
                "FHIR.js (npm `fhir`) is not installed in tests/js: run `source scripts/lib.sh && ensure_node_modules` \
                 (scripts/test does)"
            );
            let mut c = Command::new("node");
            c.arg(root.join("scripts/fhir/validate.js"));
            c
        }
        Validator::FhirResources => {
            let python = root.join(".venv/fhir/bin/python3");
            assert!(
                python.exists(),
                "fhir.resources is not installed in .venv/fhir: run `source scripts/lib.sh && ensure_fhir_validator` \
                 (scripts/test does)"
            );
            let mut c = Command::new(python);
            c.arg(root.join("scripts/fhir/validate.py"));
            c
        }
    };
    let out = command.arg(file).output().unwrap_or_else(|e| panic!("{validator:?} did not run: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        _ => panic!("{validator:?} failed to run ({}):\n{text}", out.status),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, bundle: &Value) -> PathBuf {
    let path = dir.path().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(bundle).expect("json")).expect("write the bundle");
    path
}

/// Both validators accept the bundle.
fn check_accepted(name: &str, bundle: &Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(&dir, name, bundle);
    for v in VALIDATORS {
        let (accepted, output) = run(v, &file);
        assert!(accepted, "{v:?} rejects the {name} bundle:\n{output}");
    }
}

/// Both validators reject the bundle, and say where.
fn check_rejected(name: &str, bundle: &Value, element: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(&dir, name, bundle);
    for v in VALIDATORS {
        let (accepted, output) = run(v, &file);
        assert!(!accepted, "{v:?} accepts the {name} bundle:\n{output}");
        assert!(output.contains(element), "{v:?} rejects the {name} bundle without naming {element}:\n{output}");
    }
}

fn resource_mut<'b>(bundle: &'b mut Value, resource_type: &str) -> &'b mut Value {
    bundle["entry"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["resourceType"] == resource_type)
        .unwrap_or_else(|| panic!("no {resource_type} in the bundle"))
}

#[test]
fn the_sample_export_is_valid_r4() {
    check_accepted("sample", &bundle(&sample(12)));
}

#[test]
fn a_partial_export_without_consents_or_audit_is_valid_r4() {
    let mut e = sample(12);
    e.scope.withheld = vec!["lab-results".into()];
    e.records.retain(|r| r.data_type != "lab-results");
    e.labs.clear();
    e.consents.clear();
    e.audit.clear();
    let b = bundle(&e);
    assert_eq!(b["meta"]["security"][0]["code"], "REDACTED");
    check_accepted("partial", &b);
}

/// Values as authors and the chain may leave them — not dates, empty text,
/// codes with spaces, a lab value in words or missing, a file too large for
/// R4's `Attachment.size` — still make a valid bundle.
#[test]
fn awkward_values_still_make_valid_r4() {
    let mut e = sample(6);
    e.patient.name = Some(" ".into());
    e.patient.preferred_language = Some("Brazilian Portuguese".into());
    e.patient.emergency_contacts.push(Contact {
        name: String::new(),
        relationship: "sister".into(),
        phone: String::new(),
    });
    e.allergies[0].severity = "unknown".into();
    e.allergies[0].reaction = String::new();
    e.allergies.push(Allergy {
        substance: "Latex".into(),
        reaction: "Rash".into(),
        severity: "mild".into(),
        source: Source::Record { id: e.records[0].id.clone(), version: e.records[0].version },
        date: Some("2026-02-30".into()),
    });
    e.alerts.push("   ".into());
    e.conditions[0].code = "I48 .91".into();
    e.conditions[0].date = Some("spring 2025".into());
    e.medications[0].end = Some("2026-01-01".into());
    e.medications[0].start = Some("2025".into());
    e.medications[0].dose = Some(Measure { value: 2.5, unit: "tablet(s) per day".into() });
    e.records[0].content = json!("Seen today. Plain text record.");
    e.records[0].content_type = "text/plain".into();
    e.records[0].template = None;
    e.records[0].status = Some("archived".into());
    e.records[0].anchor = None;
    e.records[0].attachments[0].size = 5_000_000_000;
    e.records[1].author = e.patient.principal.clone();
    e.records[1].anchor.as_mut().expect("anchored").block_hash = None;
    e.vitals.retain(|v| !(v.kind == VitalKind::Diastolic && v.record_id == e.records[1].id));
    e.vitals[0].date = "not recorded".into();
    let lab = e.labs[0].clone();
    e.labs.push(LabResult { value: json!("positive"), unit: None, flag: Some("critical".into()), ..lab.clone() });
    e.labs.push(LabResult { value: Value::Null, flag: Some("unusual".into()), reference_range: None, ..lab.clone() });
    e.labs.push(LabResult { value: json!(true), loinc: Some("not a code ".into()), ..lab.clone() });
    e.labs.push(LabResult { value: json!({ "a": 1 }), unit: Some("10*3/uL".into()), ..lab });
    e.consents[0].access_level = "admin".into();
    e.consents[0].expires_ms = None;
    e.consents[0].expires_height = None;
    e.consents[1].access_level = "owner-only".into();
    e.audit.push(AuditEvent {
        index: 99,
        time_ms: e.generated_ms,
        actor: "ST3AM1A56AK2C1XAFJ4115ZSV26EB49BVQ10MGCS0".into(),
        role: String::new(),
        action: "share.redeem".into(),
        record_id: Some("0xffffffffffffffffffffffffffffffff".into()),
        method: Some("emergency".into()),
        outcome: "no-consent".into(),
    });
    e.audit.push(AuditEvent {
        index: 100,
        time_ms: e.generated_ms,
        actor: e.patient.principal.clone(),
        role: "patient".into(),
        action: "odd action".into(),
        record_id: None,
        method: None,
        outcome: "allowed".into(),
    });
    e.scope.withheld = vec!["medical-history".into(), "not a code ".into()];
    check_accepted("awkward", &bundle(&e));
}

#[test]
fn the_validators_reject_an_observation_without_status() {
    let mut b = bundle(&sample(3));
    resource_mut(&mut b, "Observation").as_object_mut().expect("object").remove("status");
    check_rejected("observation-without-status", &b, "status");
}

#[test]
fn the_validators_reject_a_condition_status_written_as_a_string() {
    let mut b = bundle(&sample(3));
    resource_mut(&mut b, "Condition")["clinicalStatus"] = json!("active");
    check_rejected("condition-status-as-string", &b, "clinicalStatus");
}
