//! The export as an HL7 FHIR R4 (4.0.1) `Bundle` of type `collection`: one
//! JSON value another system can import, built by hand with `serde_json`
//! (a typed FHIR model crate would be a heavy dependency for the dozen
//! resource shapes written here; the two offline validators run by
//! `tests/fhir.rs` prove the shapes instead).
//!
//! Every entry's `fullUrl` is a `urn:uuid:` derived from the export's id,
//! the entry's kind and its position, so the same export renders to the
//! same bytes, and resources point at each other by those `fullUrl`s only:
//! the bundle resolves on its own, with no server behind it.
//!
//! What maps where:
//! - the patient's header → `Patient`; every other principal named as a
//!   provider or an author → one `Practitioner` each;
//! - allergies → `AllergyIntolerance`, alerts → `Flag`, conditions →
//!   `Condition`, medications → `MedicationStatement`;
//! - records → `DocumentReference` (plus one, `superseded`, per earlier
//!   version it replaces, and one per attachment), and a `Provenance` per
//!   anchored record naming the anchoring transaction;
//! - the blood group, vitals (systolic and diastolic of one measurement
//!   as one blood-pressure panel) and lab results → `Observation`;
//! - consents → `Consent`, the audit log → `AuditEvent`.
//!
//! Facts FHIR R4 has no element for (the organ-donor flag, the export's
//! requester and date range) are left out rather than carried in
//! extensions a reader would not know.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{
    date_of_ms, instant_of_ms, AuditEvent, Consent, Export, LabResult, Measure, Record, Source, Vital, VitalKind,
};

/// The FHIR version the bundle conforms to.
pub const FHIR_VERSION: &str = "4.0.1";

// Our own identifier and code systems. They live under `medanchor.invalid`
// (the namespace the JSON export's schema already uses) rather than under a
// domain we do not own: a FHIR system URI names whoever defines the values.

/// Identifier system of Stacks principals (patient, providers, authors and
/// audit actors): the value is the principal (`SP…`/`ST…`).
pub const PRINCIPAL_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/stacks-principal";
/// Identifier system of the SHA-256 of a stored ciphertext (a record
/// version's or an attachment's): the hash anchored on-chain, `0x` + 64 hex.
/// Not `Attachment.hash`, which R4 defines as the SHA-1 of the plaintext.
pub const CIPHERTEXT_SHA256_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/ciphertext-sha256";
/// Identifier system of Stacks transaction ids (`0x` + 64 hex).
pub const TXID_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/stacks-txid";
/// Identifier system of record ids.
pub const RECORD_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/record";
/// Identifier system of record versions: `<record id>@<version>`.
pub const RECORD_VERSION_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/record-version";
/// Identifier system of attachment ids.
pub const ATTACHMENT_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/attachment";
/// Identifier system of attachment versions: `<attachment id>@<version>`.
pub const ATTACHMENT_VERSION_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/attachment-version";
/// Identifier system of nodes (tenants), the observers of audit events.
pub const TENANT_SYSTEM: &str = "https://medanchor.invalid/fhir/sid/tenant";
/// Code system of the consent data types (`medical-history`, …): a
/// `Consent` provision's `class`, a `DocumentReference`'s `category`, and
/// the bundle's tags for withheld types.
pub const DATA_TYPE_SYSTEM: &str = "https://medanchor.invalid/fhir/CodeSystem/data-type";
/// Code system of the contract's record types (`diagnosis`, …).
pub const RECORD_TYPE_SYSTEM: &str = "https://medanchor.invalid/fhir/CodeSystem/record-type";
/// Code system of record templates (`consultation@1`).
pub const TEMPLATE_SYSTEM: &str = "https://medanchor.invalid/fhir/CodeSystem/template";
/// Code system of a record's on-chain lifecycle (`active`, `archived`, …).
pub const RECORD_STATUS_SYSTEM: &str = "https://medanchor.invalid/fhir/CodeSystem/record-status";
/// Code system of audit-log actions (`record.read`, …).
pub const AUDIT_ACTION_SYSTEM: &str = "https://medanchor.invalid/fhir/CodeSystem/audit-action";
/// Base of the policy URIs naming how an accessor was let in: an audit
/// event agent's `policy` is this followed by the method (`consent`,
/// `emergency`, `share`, `owner`).
pub const ACCESS_POLICY_BASE: &str = "https://medanchor.invalid/fhir/access-policy/";

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const BCP47: &str = "urn:ietf:bcp:47";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
const FLAG_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/flag-category";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const CONSENT_ACTION: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
const PROVENANCE_PARTICIPANT: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const AUDIT_ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";

/// The export as a FHIR R4 `Bundle` (`type: collection`). Deterministic:
/// the same export renders to the same value.
pub fn bundle(export: &Export) -> Value {
    Builder::new(export).build()
}

/// One JSON object under construction; empty values are never written,
/// because FHIR forbids empty strings, arrays and objects.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn resource(resource_type: &str) -> Obj {
        Obj::default().set("resourceType", resource_type)
    }

    fn set(mut self, key: &str, value: impl Into<Value>) -> Obj {
        let value = value.into();
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Obj {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }
}

impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Object(o.0)
    }
}

/// Where one record's resources are.
struct RecordUrls {
    current: String,
    /// One per entry of `replaces`, in its order (newest first).
    replaced: Vec<String>,
    attachments: Vec<String>,
}

struct Builder<'a> {
    export: &'a Export,
    counters: HashMap<&'static str, usize>,
    entries: Vec<Value>,
    patient: String,
    /// Principal → the `Patient` or `Practitioner` standing for it.
    people: HashMap<&'a str, String>,
    practitioners: Vec<(&'a str, String)>,
    /// Parallel to `export.records`.
    record_urls: Vec<RecordUrls>,
    /// (record id, version) → index in `export.records`.
    record_index: HashMap<(&'a str, u64), usize>,
    /// Record id → index in `export.records` (audit entries name no version;
    /// the export holds only current versions).
    current_index: HashMap<&'a str, usize>,
}

impl<'a> Builder<'a> {
    /// Allocates every `fullUrl` that other resources point at first, so
    /// resources can be written in the model's order.
    fn new(export: &'a Export) -> Builder<'a> {
        let mut b = Builder {
            export,
            counters: HashMap::new(),
            entries: Vec::new(),
            patient: String::new(),
            people: HashMap::new(),
            practitioners: Vec::new(),
            record_urls: Vec::new(),
            record_index: HashMap::new(),
            current_index: HashMap::new(),
        };
        b.patient = b.alloc("Patient");
        b.people.insert(&export.patient.principal, b.patient.clone());
        let principals = export.consents.iter().map(|c| &c.provider).chain(export.records.iter().map(|r| &r.author));
        for principal in principals {
            if principal.trim().is_empty() || b.people.contains_key(principal.as_str()) {
                continue;
            }
            let url = b.alloc("Practitioner");
            b.people.insert(principal, url.clone());
            b.practitioners.push((principal, url));
        }
        for (i, r) in export.records.iter().enumerate() {
            let urls = RecordUrls {
                current: b.alloc("DocumentReference/record"),
                replaced: r.replaces.iter().map(|_| b.alloc("DocumentReference/replaced")).collect(),
                attachments: r.attachments.iter().map(|_| b.alloc("DocumentReference/attachment")).collect(),
            };
            b.record_urls.push(urls);
            b.record_index.entry((&r.id, r.version)).or_insert(i);
            b.current_index.entry(&r.id).or_insert(i);
        }
        b
    }

    fn alloc(&mut self, kind: &'static str) -> String {
        let n = self.counters.entry(kind).or_insert(0);
        let index = *n;
        *n += 1;
        entry_url(&self.export.id, kind, index)
    }

    fn push(&mut self, full_url: String, resource: Obj) {
        self.entries.push(json!({ "fullUrl": full_url, "resource": Value::from(resource) }));
    }

    fn add(&mut self, kind: &'static str, resource: Obj) {
        let url = self.alloc(kind);
        self.push(url, resource);
    }

    fn patient_ref(&self) -> Value {
        reference(&self.patient)
    }

    /// A reference to the person behind a principal: by `fullUrl` when the
    /// bundle has them, always with the principal as identifier.
    fn person_ref(&self, principal: &str) -> Value {
        let identifier = principal_identifier(principal);
        match self.people.get(principal) {
            Some(url) => json!({ "reference": url, "identifier": identifier }),
            None => json!({ "identifier": identifier }),
        }
    }

    fn record_of(&self, source: &Source) -> Option<&'a Record> {
        match source {
            Source::Profile => None,
            Source::Record { id, version } => self.record_by_version(id, *version),
        }
    }

    fn record_by_version(&self, id: &str, version: u64) -> Option<&'a Record> {
        self.record_index.get(&(id, version)).map(|&i| &self.export.records[i])
    }

    fn record_url(&self, id: &str, version: u64) -> Option<Value> {
        self.record_index.get(&(id, version)).map(|&i| reference(&self.record_urls[i].current))
    }

    fn build(mut self) -> Value {
        let e = self.export;
        let patient = self.patient_resource();
        self.push(self.patient.clone(), patient);
        for (principal, url) in self.practitioners.clone() {
            let p = Obj::resource("Practitioner").set("identifier", json!([principal_identifier(principal)]));
            self.push(url, p);
        }
        for a in &e.allergies {
            let r = self.allergy(a);
            self.add("AllergyIntolerance", r);
        }
        for alert in &e.alerts {
            if let Some(text) = text(alert) {
                let flag = Obj::resource("Flag")
                    .set("status", "active")
                    .set("category", json!([concept(FLAG_CATEGORY, "clinical", "Clinical")]))
                    .set("code", json!({ "text": text }))
                    .set("subject", self.patient_ref());
                self.add("Flag", flag);
            }
        }
        for c in &e.conditions {
            let r = self.condition(c);
            self.add("Condition", r);
        }
        for m in &e.medications {
            let r = self.medication(m);
            self.add("MedicationStatement", r);
        }
        for (i, r) in e.records.iter().enumerate() {
            self.record(i, r);
        }
        if let Some(group) = e.patient.blood_type.as_deref().and_then(text) {
            let obs = Obj::resource("Observation")
                .set("status", "final")
                .set("category", json!([concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")]))
                .set(
                    "code",
                    json!({
                        "coding": [coding(LOINC, "882-1", "ABO and Rh group [Type] in Blood")],
                        "text": "Blood group",
                    }),
                )
                .set("subject", self.patient_ref())
                .set("valueString", group);
            self.add("Observation/blood-group", obs);
        }
        self.vitals();
        for lab in &e.labs {
            let r = self.lab(lab);
            self.add("Observation/lab", r);
        }
        for c in &e.consents {
            let r = self.consent(c);
            self.add("Consent", r);
        }
        for a in &e.audit {
            let r = self.audit_event(a);
            self.add("AuditEvent", r);
        }

        let withheld: Vec<Value> =
            e.scope.withheld.iter().filter(|t| code_ok(t)).map(|t| coding(DATA_TYPE_SYSTEM, t, "withheld")).collect();
        // A partial export says so in the standard vocabulary (the
        // `REDACTED` security label), and which data types are missing in
        // ours.
        let meta = if withheld.is_empty() {
            Obj::default()
        } else {
            Obj::default()
                .set("security", json!([coding(OBSERVATION_VALUE, "REDACTED", "redacted")]))
                .set("tag", withheld)
        };
        Obj::resource("Bundle")
            .set("meta", meta)
            .set("identifier", json!({ "system": "urn:ietf:rfc:3986", "value": export_urn(&e.id) }))
            .set("type", "collection")
            .set("timestamp", instant_of_ms(e.generated_ms))
            .set("entry", self.entries)
            .into()
    }

    fn patient_resource(&self) -> Obj {
        let p = &self.export.patient;
        let contacts: Vec<Value> = p
            .emergency_contacts
            .iter()
            .filter_map(|c| {
                let name = text(&c.name);
                let phone = text(&c.phone);
                // pat-1: a contact needs details (a name, telecom, address or
                // organization), not only a relationship.
                if name.is_none() && phone.is_none() {
                    return None;
                }
                let relationship = text(&c.relationship).map(|r| json!([{ "text": r }]));
                Some(
                    Obj::default()
                        .opt("relationship", relationship)
                        .opt("name", name.map(|n| json!({ "text": n })))
                        .opt("telecom", phone.map(|p| json!([{ "system": "phone", "value": p }])))
                        .into(),
                )
            })
            .collect();
        let language = p.preferred_language.as_deref().and_then(text).map(|lang| {
            // Only a BCP 47 tag can be a code; a language written out
            // (`English`) stays text.
            let coded = Obj::default().set("text", lang);
            let coded = if is_language_tag(lang) {
                coded.set("coding", json!([{ "system": BCP47, "code": lang }]))
            } else {
                coded
            };
            json!([{ "language": Value::from(coded) }])
        });
        Obj::resource("Patient")
            .set("identifier", json!([principal_identifier(&p.principal)]))
            .opt("name", p.name.as_deref().and_then(text).map(|n| json!([{ "text": n }])))
            .opt("telecom", p.phone.as_deref().and_then(text).map(|n| json!([{ "system": "phone", "value": n }])))
            .set("contact", contacts)
            .opt("communication", language)
    }

    fn allergy(&self, a: &crate::model::Allergy) -> Obj {
        // R4 reaction severity has three levels; life-threatening is the
        // top one, and stays visible as the reaction's description.
        let (severity, criticality) = match a.severity.as_str() {
            "mild" => (Some("mild"), "low"),
            "moderate" => (Some("moderate"), "low"),
            "severe" => (Some("severe"), "high"),
            "life-threatening" => (Some("severe"), "high"),
            // An unknown grade is not a claim of low risk.
            _ => (None, "unable-to-assess"),
        };
        let reaction = text(&a.reaction).map(|manifestation| {
            let r = Obj::default()
                .set("manifestation", json!([{ "text": manifestation }]))
                .opt("severity", severity)
                .opt("description", (a.severity == "life-threatening").then_some("Life-threatening"));
            json!([Value::from(r)])
        });
        let record = self.record_of(&a.source);
        Obj::resource("AllergyIntolerance")
            .set("clinicalStatus", concept(ALLERGY_CLINICAL, "active", "Active"))
            .set("verificationStatus", concept(ALLERGY_VERIFICATION, "confirmed", "Confirmed"))
            .set("criticality", criticality)
            .set("code", json!({ "text": text(&a.substance).unwrap_or("Unknown substance") }))
            .set("patient", self.patient_ref())
            .opt("recordedDate", a.date.as_deref().and_then(fhir_date))
            .opt("recorder", record.map(|r| self.person_ref(&r.author)))
            .opt("reaction", reaction)
    }

    fn condition(&self, c: &crate::model::Condition) -> Obj {
        let description = c.description.as_deref().and_then(text);
        let code = code_ok(&c.code).then(|| {
            let coding = Obj::default().set("system", ICD10CM).set("code", c.code.as_str()).opt("display", description);
            json!([Value::from(coding)])
        });
        let text = description.or_else(|| text(&c.code)).unwrap_or("Unknown condition");
        let (category, category_display) = match c.source {
            Source::Profile => ("problem-list-item", "Problem List Item"),
            Source::Record { .. } => ("encounter-diagnosis", "Encounter Diagnosis"),
        };
        let record = self.record_of(&c.source);
        let evidence = record.and_then(|r| self.record_url(&r.id, r.version)).map(|d| json!([{ "detail": [d] }]));
        Obj::resource("Condition")
            .set("clinicalStatus", concept(CONDITION_CLINICAL, "active", "Active"))
            .set("verificationStatus", concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"))
            .set("category", json!([concept(CONDITION_CATEGORY, category, category_display)]))
            .set("code", Obj::default().opt("coding", code).set("text", text))
            .set("subject", self.patient_ref())
            .opt("recordedDate", c.date.as_deref().and_then(fhir_date))
            .opt("recorder", record.map(|r| self.person_ref(&r.author)))
            .opt("evidence", evidence)
            // R4 Condition has no "primary" flag (that is Encounter's
            // diagnosis rank, and there is no Encounter here).
            .opt("note", c.primary.then(|| json!([{ "text": "Primary diagnosis of the visit" }])))
    }

    fn medication(&self, m: &crate::model::Medication) -> Obj {
        let today = date_of_ms(self.export.generated_ms);
        let end = m.end.as_deref().and_then(fhir_date);
        // Dates compare as text: both are ISO 8601, most significant first.
        let status = if end.is_some_and(|end| end < today.as_str()) { "completed" } else { "active" };
        let period = Obj::default().opt("start", m.start.as_deref().and_then(fhir_date)).opt("end", end);
        let dose = m.dose.as_ref().and_then(quantity);
        let sig: Vec<String> = [
            m.dose.as_ref().map(|d| format!("{} {}", number_text(d.value), d.unit)),
            m.route.clone(),
            m.frequency.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
        let dosage = Obj::default()
            .set("text", sig.join(" "))
            .opt("patientInstruction", m.instructions.as_deref().and_then(text))
            .opt("timing", m.frequency.as_deref().and_then(text).map(|f| json!({ "code": { "text": f } })))
            .opt("route", m.route.as_deref().and_then(text).map(|r| json!({ "text": r })))
            .opt("doseAndRate", dose.map(|q| json!([{ "doseQuantity": q }])));
        let record = self.record_of(&m.source);
        // The profile's list is the current one as of the export.
        let asserted = match m.date.as_deref().and_then(fhir_date) {
            Some(d) => d.to_owned(),
            None => instant_of_ms(self.export.generated_ms),
        };
        Obj::resource("MedicationStatement")
            .set("status", status)
            .set("medicationCodeableConcept", json!({ "text": text(&m.name).unwrap_or("Unknown medication") }))
            .set("subject", self.patient_ref())
            .set("effectivePeriod", period)
            .set("dateAsserted", asserted)
            .opt("informationSource", record.map(|r| self.person_ref(&r.author)))
            .opt("derivedFrom", record.and_then(|r| self.record_url(&r.id, r.version)).map(|d| json!([d])))
            .set("dosage", json!([Value::from(dosage)]))
    }

    /// A record's `DocumentReference`, the `superseded` ones of the earlier
    /// versions it replaces, its attachments', and its anchor's
    /// `Provenance`.
    fn record(&mut self, i: usize, r: &Record) {
        let urls = &self.record_urls[i];
        let current = urls.current.clone();
        let replaced = urls.replaced.clone();
        let attachments = urls.attachments.clone();
        let kind_type = {
            let template = r.template.as_deref().filter(|t| code_ok(t));
            Obj::default()
                .opt("coding", template.map(|t| json!([{ "system": TEMPLATE_SYSTEM, "code": t }])))
                .set("text", text(&r.title).unwrap_or("Record"))
        };
        let category: Vec<Value> = [(RECORD_TYPE_SYSTEM, &r.record_type), (DATA_TYPE_SYSTEM, &r.data_type)]
            .into_iter()
            .filter(|(_, code)| code_ok(code))
            .map(|(system, code)| json!({ "coding": [{ "system": system, "code": code }] }))
            .collect();
        let meta = r
            .status
            .as_deref()
            .filter(|s| code_ok(s))
            .map(|s| json!({ "tag": [{ "system": RECORD_STATUS_SYSTEM, "code": s }] }));
        let created = instant_of_ms(r.created_ms);
        // Each version replaces the one before it: the current version the
        // newest earlier one, that one the next, and so on.
        let replaces = |to: Option<&String>| to.map(|t| json!([{ "code": "replaces", "target": reference(t) }]));
        let mut content = vec![json!({ "attachment": Value::from(
            Obj::default()
                .opt("contentType", Some(r.content_type.as_str()).filter(|c| code_ok(c)))
                .opt("data", content_data(&r.content))
                .set("title", text(&r.title).unwrap_or("Record"))
                .set("creation", created.as_str()),
        ) })];
        // The labelled lines as a reader sees them, next to the content as
        // stored.
        let lines: String = r
            .fields
            .iter()
            .filter(|f| !f.label.trim().is_empty() || !f.value.trim().is_empty())
            .map(|f| format!("{}: {}\n", f.label, f.value))
            .collect();
        if !lines.is_empty() {
            content.push(json!({ "attachment": {
                "contentType": "text/plain; charset=utf-8",
                "data": base64::engine::general_purpose::STANDARD.encode(lines.as_bytes()),
                "title": format!("{} (as read)", text(&r.title).unwrap_or("Record")),
                "creation": created,
            } }));
        }
        let period = fhir_date(&r.date).map(|d| json!({ "period": { "start": d, "end": d } }));
        let doc = Obj::resource("DocumentReference")
            .opt("meta", meta)
            .set("masterIdentifier", identifier(RECORD_VERSION_SYSTEM, &format!("{}@{}", r.id, r.version)))
            .set(
                "identifier",
                json!([identifier(RECORD_SYSTEM, &r.id), identifier(CIPHERTEXT_SHA256_SYSTEM, &r.data_hash)]),
            )
            .set("status", "current")
            // R4 docStatus: `final` is "complete and verified … any
            // subsequent updates would be on a new version"; a record not
            // finalized on-chain may still be amended in place.
            .set("docStatus", if r.finalized { "final" } else { "preliminary" })
            .set("type", kind_type.0.clone())
            .set("category", category.clone())
            .set("subject", self.patient_ref())
            .set("date", created.as_str())
            .opt("author", text(&r.author).map(|a| json!([self.person_ref(a)])))
            .opt("relatesTo", replaces(replaced.first()))
            .set("content", content)
            .opt("context", period);
        self.push(current.clone(), doc);

        for (j, (v, url)) in r.replaces.iter().zip(&replaced).enumerate() {
            let creation = instant_of_ms(v.created_ms);
            let doc = Obj::resource("DocumentReference")
                .set("masterIdentifier", identifier(RECORD_VERSION_SYSTEM, &format!("{}@{}", r.id, v.version)))
                .set(
                    "identifier",
                    json!([identifier(RECORD_SYSTEM, &r.id), identifier(CIPHERTEXT_SHA256_SYSTEM, &v.data_hash)]),
                )
                .set("status", "superseded")
                .set("type", kind_type.0.clone())
                .set("category", category.clone())
                .set("subject", self.patient_ref())
                .set("date", creation.as_str())
                .opt("relatesTo", replaces(replaced.get(j + 1)))
                // Only its anchored hash is exported, not its content: the
                // attachment says which version it was.
                .set(
                    "content",
                    json!([{ "attachment": {
                        "title": format!("{} (version {})", text(&r.title).unwrap_or("Record"), v.version),
                        "creation": creation,
                    } }]),
                );
            self.push(url.clone(), doc);
        }

        for (a, url) in r.attachments.iter().zip(attachments) {
            let name = text(&a.name).unwrap_or("Attachment");
            let uploaded = instant_of_ms(a.uploaded_ms);
            let attachment = Obj::default()
                .opt("contentType", Some(a.media_type.as_str()).filter(|c| code_ok(c)))
                // R4 `Attachment.size` is an unsignedInt (at most 2^31-1):
                // a larger file's size cannot be written.
                .opt("size", i32::try_from(a.size).ok())
                .set("title", name)
                .set("creation", uploaded.as_str());
            let doc = Obj::resource("DocumentReference")
                .set("masterIdentifier", identifier(ATTACHMENT_VERSION_SYSTEM, &format!("{}@{}", a.id, a.version)))
                .set(
                    "identifier",
                    json!([identifier(ATTACHMENT_SYSTEM, &a.id), identifier(CIPHERTEXT_SHA256_SYSTEM, &a.sha256)]),
                )
                .set("status", "current")
                .set("type", json!({ "text": "Attachment" }))
                .set("subject", self.patient_ref())
                .set("date", uploaded.as_str())
                .set("description", name)
                .set("content", json!([{ "attachment": Value::from(attachment) }]))
                .set("context", json!({ "related": [reference(&current)] }));
            self.push(url, doc);
        }

        if let Some(anchor) = &r.anchor {
            // R4 has no element for a ledger anchor. The anchoring
            // transaction is the evidence this version's ciphertext existed
            // then, so it is cited as the Provenance's entity (role `source`),
            // by identifier, as nothing in the bundle stands for it.
            let display = match &anchor.block_hash {
                Some(hash) => format!(
                    "Stacks transaction anchoring the ciphertext SHA-256 {}, in block {} ({hash})",
                    r.data_hash, anchor.block_height
                ),
                None => format!(
                    "Stacks transaction anchoring the ciphertext SHA-256 {}, in block {}",
                    r.data_hash, anchor.block_height
                ),
            };
            let (operation, operation_display) =
                if r.version <= 1 { ("CREATE", "create") } else { ("UPDATE", "revise") };
            let agent = Obj::default()
                .set("type", concept(PROVENANCE_PARTICIPANT, "author", "Author"))
                .set("who", self.person_ref(&r.author));
            let provenance = Obj::resource("Provenance")
                .set("target", json!([reference(&current)]))
                .set("recorded", created.as_str())
                .set("activity", concept(DATA_OPERATION, operation, operation_display))
                .set("agent", json!([Value::from(agent)]))
                .set(
                    "entity",
                    json!([{
                        "role": "source",
                        "what": { "identifier": identifier(TXID_SYSTEM, &anchor.txid), "display": display },
                    }]),
                );
            self.add("Provenance", provenance);
        }
    }

    /// Vital signs, a measurement's systolic and diastolic pressures as one
    /// blood-pressure panel (the shape of R4's vital-signs profile, so a
    /// reader finds the pair together) and other kinds one each.
    fn vitals(&mut self) {
        type Key<'v> = (&'v str, u64, &'v str);
        let key = |v: &'a Vital| -> Key<'a> { (&v.record_id, v.version, &v.date) };
        // Diastolic readings not yet paired, per measurement, in order.
        let mut diastolic: HashMap<Key<'a>, VecDeque<usize>> = HashMap::new();
        let vitals: &'a [Vital] = &self.export.vitals;
        for (i, v) in vitals.iter().enumerate() {
            if v.kind == VitalKind::Diastolic {
                diastolic.entry(key(v)).or_default().push_back(i);
            }
        }
        let mut partner = vec![None; vitals.len()];
        let mut paired = vec![false; vitals.len()];
        for (i, v) in vitals.iter().enumerate() {
            if v.kind == VitalKind::Systolic {
                if let Some(j) = diastolic.get_mut(&key(v)).and_then(VecDeque::pop_front) {
                    partner[i] = Some(j);
                    paired[j] = true;
                }
            }
        }
        for (i, v) in vitals.iter().enumerate() {
            if paired[i] {
                continue;
            }
            let obs = self.vital_base(v);
            let obs = match partner[i] {
                Some(j) => obs
                    .set(
                        "code",
                        json!({
                            "coding": [coding(LOINC, "85354-9", "Blood pressure panel with all children optional")],
                            "text": "Blood pressure",
                        }),
                    )
                    .set("component", json!([vital_component(v), vital_component(&vitals[j])])),
                None => {
                    let obs = obs.set("code", vital_code(v.kind));
                    match quantity(&v.measure) {
                        Some(q) => obs.set("valueQuantity", q),
                        None => obs.set("dataAbsentReason", concept(DATA_ABSENT, "not-a-number", "Not a Number (NaN)")),
                    }
                }
            };
            self.add("Observation/vital", obs);
        }
    }

    fn vital_base(&self, v: &Vital) -> Obj {
        Obj::resource("Observation")
            .set("status", "final")
            .set("category", json!([concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")]))
            .set("subject", self.patient_ref())
            .opt("effectiveDateTime", fhir_date(&v.date))
            .opt("derivedFrom", self.record_url(&v.record_id, v.version).map(|d| json!([d])))
    }

    fn lab(&self, lab: &LabResult) -> Obj {
        let loinc = lab.loinc.as_deref().filter(|c| code_ok(c)).map(|c| json!([{ "system": LOINC, "code": c }]));
        let name = text(&lab.test).unwrap_or("Lab result");
        let obs = Obj::resource("Observation")
            .set("status", "final")
            .set("category", json!([concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")]))
            .set("code", Obj::default().opt("coding", loinc).set("text", name))
            .set("subject", self.patient_ref())
            .opt("effectiveDateTime", fhir_date(&lab.date));
        let unit = lab.unit.as_deref().and_then(text);
        // obs-6: a value, or the reason there is none — never both.
        let obs = match &lab.value {
            Value::Number(n) => {
                let q = Obj::default().set("value", Value::Number(n.clone()));
                let q = match unit {
                    Some(u) if code_ok(u) => q.set("unit", u).set("system", UCUM).set("code", u),
                    Some(u) => q.set("unit", u),
                    None => q,
                };
                obs.set("valueQuantity", q)
            }
            Value::Bool(b) => obs.set("valueBoolean", *b),
            Value::String(s) if !s.trim().is_empty() => {
                let s = match unit {
                    Some(u) => format!("{} {u}", s.trim()),
                    None => s.trim().to_owned(),
                };
                obs.set("valueString", s)
            }
            Value::Null | Value::String(_) => obs.set("dataAbsentReason", concept(DATA_ABSENT, "unknown", "Unknown")),
            other => obs.set("valueString", other.to_string()),
        };
        let interpretation = lab.flag.as_deref().and_then(text).map(|flag| {
            let coded = match flag {
                "low" => Some(("L", "Low")),
                "high" => Some(("H", "High")),
                "normal" => Some(("N", "Normal")),
                "abnormal" => Some(("A", "Abnormal")),
                // The flag does not say which way: critical abnormal, not
                // critically high (HH) or low (LL).
                "critical" => Some(("AA", "Critical abnormal")),
                _ => None,
            };
            let c = Obj::default()
                .opt("coding", coded.map(|(code, display)| json!([coding(INTERPRETATION, code, display)])))
                .set("text", flag);
            json!([Value::from(c)])
        });
        obs.opt("interpretation", interpretation)
            // obs-3: a range needs a low, a high or a text.
            .opt("referenceRange", lab.reference_range.as_deref().and_then(text).map(|t| json!([{ "text": t }])))
            .opt("derivedFrom", self.record_url(&lab.record_id, lab.version).map(|d| json!([d])))
    }

    fn consent(&self, c: &Consent) -> Obj {
        let actions: Vec<Value> = match c.access_level.as_str() {
            "read" => vec!["access"],
            "write" => vec!["access", "collect", "correct"],
            "admin" => vec!["access", "collect", "correct", "disclose"],
            _ => vec![],
        }
        .into_iter()
        .map(|code| concept(CONSENT_ACTION, code, code))
        .collect();
        let actions = if actions.is_empty() {
            text(&c.access_level).map(|t| vec![json!({ "text": t })]).unwrap_or_default()
        } else {
            actions
        };
        let (purpose, purpose_display) =
            if c.purpose == "emergency" { ("ETREAT", "Emergency Treatment") } else { ("TREAT", "treatment") };
        let classes: Vec<Value> = c
            .data_types
            .iter()
            .filter(|t| code_ok(t))
            .map(|t| json!({ "system": DATA_TYPE_SYSTEM, "code": t }))
            .collect();
        let provision = Obj::default()
            .set("type", "permit")
            .opt("period", c.expires_ms.map(|ms| json!({ "end": instant_of_ms(ms) })))
            .set(
                "actor",
                // R4's SecurityRoleType (an extensible binding) holds
                // `IRCP` among the ParticipationType codes, not `PRCP`.
                json!([{
                    "role": concept(PARTICIPATION_TYPE, "IRCP", "information recipient"),
                    "reference": self.person_ref(&c.provider),
                }]),
            )
            .set("action", actions)
            .set("purpose", json!([coding(ACT_REASON, purpose, purpose_display)]))
            .set("class", classes);
        // ppc-1 asks for a policy or a policy rule: the rule is the grant
        // as the chain holds it, which R4 has no coded value for.
        let ends = match c.expires_height {
            Some(h) => format!("ending at burn block {h}"),
            None => "until revoked".to_owned(),
        };
        let rule = format!(
            "Granted on the Stacks chain (contract {}.patient-consent) at burn block {}, {ends}; access {}, purpose {}",
            self.export.issuer.contracts, c.granted_height, c.access_level, c.purpose
        );
        Obj::resource("Consent")
            .set("status", if c.active { "active" } else { "inactive" })
            .set("scope", concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"))
            .set("category", json!([concept(LOINC, "59284-0", "Patient Consent")]))
            // ppc-2: a privacy consent names its patient.
            .set("patient", self.patient_ref())
            .set("performer", json!([self.patient_ref()]))
            .set("policyRule", json!({ "text": rule }))
            .set("provision", provision)
    }

    fn audit_event(&self, a: &AuditEvent) -> Obj {
        let (action, interaction) = audit_action(&a.action);
        let subtype: Vec<Value> = interaction
            .map(|(code, display)| coding(RESTFUL_INTERACTION, code, display))
            .into_iter()
            .chain(code_ok(&a.action).then(|| json!({ "system": AUDIT_ACTION_SYSTEM, "code": a.action })))
            .collect();
        let allowed = a.outcome == "allowed";
        // How they were let in is the policy that authorized the access
        // (`agent.policy`), not a purpose of use.
        let policy = a
            .method
            .as_deref()
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .map(|m| json!([format!("{ACCESS_POLICY_BASE}{m}")]));
        let purpose = (a.method.as_deref() == Some("emergency"))
            .then(|| json!([concept(ACT_REASON, "ETREAT", "Emergency Treatment")]));
        let agent = Obj::default()
            .opt("role", text(&a.role).map(|r| json!([{ "text": r }])))
            .set("who", self.person_ref(&a.actor))
            .set("requestor", true)
            .opt("policy", policy);
        let mut entities = vec![json!({
            "what": self.patient_ref(),
            "type": coding(AUDIT_ENTITY_TYPE, "1", "Person"),
            "role": coding(OBJECT_ROLE, "1", "Patient"),
        })];
        if let Some(id) = a.record_id.as_deref().and_then(text) {
            let what = match self.current_index.get(id) {
                Some(&i) => {
                    json!({ "reference": self.record_urls[i].current, "identifier": identifier(RECORD_SYSTEM, id) })
                }
                None => json!({ "identifier": identifier(RECORD_SYSTEM, id) }),
            };
            entities.push(json!({
                "what": what,
                "type": coding(AUDIT_ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
            }));
        }
        let tenant = &self.export.issuer.tenant;
        Obj::resource("AuditEvent")
            .set("type", coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"))
            .set("subtype", subtype)
            .set("action", action)
            .set("recorded", instant_of_ms(a.time_ms))
            // 4 is R4's "minor failure" — a refusal is the requester's doing,
            // not a failure of the node (8, 12).
            .set("outcome", if allowed { "0" } else { "4" })
            .opt("outcomeDesc", (!allowed).then(|| text(&a.outcome)).flatten())
            .opt("purposeOfEvent", purpose)
            .set("agent", json!([Value::from(agent)]))
            .set(
                "source",
                json!({
                    "site": tenant,
                    "observer": { "identifier": identifier(TENANT_SYSTEM, tenant), "display": format!("medanchor node {tenant}") },
                }),
            )
            .set("entity", entities)
    }
}

fn vital_code(kind: VitalKind) -> Value {
    let mut codings = vec![coding(LOINC, kind.loinc(), kind.label())];
    // R4's vital-signs profile names oxygen saturation 2708-6; pulse
    // oximetry's own code (the model's) is kept beside it.
    if kind == VitalKind::Spo2 {
        codings.insert(0, coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"));
    }
    json!({ "coding": codings, "text": kind.label() })
}

fn vital_component(v: &Vital) -> Value {
    let c = Obj::default().set("code", vital_code(v.kind));
    let c = match quantity(&v.measure) {
        Some(q) => c.set("valueQuantity", q),
        None => c.set("dataAbsentReason", concept(DATA_ABSENT, "not-a-number", "Not a Number (NaN)")),
    };
    c.into()
}

/// The R4 `action` (C/R/U/D/E) of an audit-log action, and its RESTful
/// interaction where one fits, by the action's verb (`record.read` → read).
fn audit_action(action: &str) -> (&'static str, Option<(&'static str, &'static str)>) {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "read" | "download" | "link-download" | "proof" | "csv" | "log" | "disclosures" | "svg" | "png" | "redeem" => {
            ("R", Some(("read", "read")))
        }
        "search" | "list" => ("R", Some(("search-type", "search-type"))),
        "versions" => ("R", Some(("history-instance", "history-instance"))),
        "create" | "upload" | "upload-start" => ("C", Some(("create", "create"))),
        "update" | "finalize" | "archive" | "unlock" | "link" | "restore" => ("U", Some(("update", "update"))),
        "deletion" | "erase" | "remove" | "purge" | "revoke" | "upload-cancel" => ("D", Some(("delete", "delete"))),
        _ => ("E", None),
    }
}

/// The `fullUrl` of an entry: a UUID from the SHA-256 of the export's id,
/// the entry's kind and its index among that kind, formatted as an RFC 9562
/// version 8 (custom) UUID. Deterministic, and distinct between exports.
fn entry_url(export_id: &str, kind: &str, index: usize) -> String {
    let mut h = Sha256::new();
    h.update(b"medanchor fhir entry\0");
    h.update(export_id.as_bytes());
    h.update(b"\0");
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(index.to_string().as_bytes());
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("urn:uuid:{}", uuid_text(&b))
}

/// The export's id (32 hex digits) as a `urn:uuid:`, so the bundle's
/// identifier is the id the verification QR names; any other id is hashed
/// into one.
fn export_urn(id: &str) -> String {
    let hex = id.strip_prefix("0x").unwrap_or(id).to_ascii_lowercase();
    let mut b = [0u8; 16];
    match hex::decode(&hex) {
        Ok(bytes) if bytes.len() == 16 => b.copy_from_slice(&bytes),
        _ => {
            let digest = Sha256::digest(id.as_bytes());
            b.copy_from_slice(&digest[..16]);
            b[6] = (b[6] & 0x0f) | 0x80;
            b[8] = (b[8] & 0x3f) | 0x80;
        }
    }
    format!("urn:uuid:{}", uuid_text(&b))
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn reference(url: &str) -> Value {
    json!({ "reference": url })
}

fn identifier(system: &str, value: &str) -> Value {
    json!({ "system": system, "value": value })
}

fn principal_identifier(principal: &str) -> Value {
    identifier(PRINCIPAL_SYSTEM, principal)
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

/// A UCUM quantity; `None` for a value JSON cannot carry (NaN, infinity).
fn quantity(m: &Measure) -> Option<Value> {
    let value = serde_json::Number::from_f64(m.value)?;
    let q = Obj::default().set("value", Value::Number(value));
    let q = match text(&m.unit) {
        Some(u) if code_ok(u) => q.set("unit", u).set("system", UCUM).set("code", u),
        Some(u) => q.set("unit", u),
        None => q,
    };
    Some(q.into())
}

/// A number as people write it (`5`, not `5.0`).
fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The stored content as an attachment's data: the text of a plain-text
/// record, the JSON of a structured one (serde_json writes its keys
/// sorted, so the bytes are stable).
fn content_data(content: &Value) -> Option<String> {
    let bytes = match content {
        Value::Null => return None,
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A FHIR string: trimmed, and `None` when nothing is left (R4 forbids
/// empty strings).
fn text(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// Whether `s` may be a FHIR `code`: no leading, trailing or repeated
/// whitespace.
fn code_ok(s: &str) -> bool {
    !s.is_empty() && s.split(' ').all(|part| !part.is_empty() && !part.chars().any(char::is_whitespace))
}

/// A BCP 47 language tag's shape (`en`, `pt-BR`).
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `s` when it is a FHIR `date` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real
/// calendar day): dates come from what authors wrote, and one that is not a
/// date is left out rather than making the whole bundle invalid.
fn fhir_date(s: &str) -> Option<&str> {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = s.split('-').collect();
    let year = parts.first().filter(|y| digits(y, 4))?;
    let year: u32 = year.parse().ok()?;
    if year == 0 || parts.len() > 3 {
        return None;
    }
    if let Some(month) = parts.get(1) {
        if !digits(month, 2) {
            return None;
        }
        let month: u32 = month.parse().ok()?;
        if !(1..=12).contains(&month) {
            return None;
        }
        if let Some(day) = parts.get(2) {
            if !digits(day, 2) {
                return None;
            }
            let day: u32 = day.parse().ok()?;
            let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
            let last = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if !(1..=last).contains(&day) {
                return None;
            }
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::sample::sample;

    fn resources(b: &Value) -> Vec<&Value> {
        b["entry"].as_array().expect("entries").iter().map(|e| &e["resource"]).collect()
    }

    fn counts(b: &Value) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in resources(b) {
            *counts.entry(r["resourceType"].as_str().expect("resourceType").to_owned()).or_insert(0) += 1;
        }
        counts
    }

    fn references<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("reference", Value::String(s)) => out.push(s),
                        _ => references(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn deterministic_and_distinct_per_export() {
        let e = sample(12);
        let a = serde_json::to_string(&bundle(&e)).expect("json");
        assert_eq!(a, serde_json::to_string(&bundle(&e)).expect("json"));
        let mut other = e.clone();
        other.id = "00000000000000000000000000000001".into();
        let b = bundle(&other);
        assert_eq!(b["identifier"]["value"], "urn:uuid:00000000-0000-0000-0000-000000000001");
        let urls = |b: &Value| -> HashSet<String> {
            b["entry"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| e["fullUrl"].as_str().expect("url").to_owned())
                .collect()
        };
        assert!(urls(&bundle(&e)).is_disjoint(&urls(&b)));
    }

    #[test]
    fn bundle_header() {
        let e = sample(3);
        let b = bundle(&e);
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "collection");
        assert_eq!(b["timestamp"], instant_of_ms(e.generated_ms));
        assert_eq!(b["identifier"]["system"], "urn:ietf:rfc:3986");
        assert_eq!(b["identifier"]["value"], "urn:uuid:5d41402a-bc4b-2a76-b971-9d911017c592");
        assert!(b.get("meta").is_none(), "a complete export carries no redaction label");
    }

    #[test]
    fn counts_match_the_model() {
        let e = sample(12);
        let b = bundle(&e);
        let bp_pairs = e.vitals.iter().filter(|v| v.kind == VitalKind::Systolic).count();
        let mut expected = BTreeMap::new();
        expected.insert("Patient".to_owned(), 1);
        expected.insert("Practitioner".to_owned(), 1);
        expected.insert("AllergyIntolerance".to_owned(), e.allergies.len());
        expected.insert("Flag".to_owned(), e.alerts.len());
        expected.insert("Condition".to_owned(), e.conditions.len());
        expected.insert("MedicationStatement".to_owned(), e.medications.len());
        expected.insert(
            "DocumentReference".to_owned(),
            e.records.iter().map(|r| 1 + r.replaces.len() + r.attachments.len()).sum(),
        );
        expected.insert("Provenance".to_owned(), e.records.iter().filter(|r| r.anchor.is_some()).count());
        // The blood group, every vital with a systolic/diastolic pair as one,
        // and the labs.
        expected.insert("Observation".to_owned(), 1 + e.vitals.len() - bp_pairs + e.labs.len());
        expected.insert("Consent".to_owned(), e.consents.len());
        expected.insert("AuditEvent".to_owned(), e.audit.len());
        assert_eq!(counts(&b), expected);
    }

    #[test]
    fn blood_pressure_is_one_panel() {
        let e = sample(12);
        let b = bundle(&e);
        let panels: Vec<&Value> =
            resources(&b).into_iter().filter(|r| r["code"]["coding"][0]["code"] == "85354-9").collect();
        let systolic: Vec<&Vital> = e.vitals.iter().filter(|v| v.kind == VitalKind::Systolic).collect();
        assert_eq!(panels.len(), systolic.len());
        for (panel, s) in panels.iter().zip(systolic) {
            let d = e
                .vitals
                .iter()
                .find(|v| v.kind == VitalKind::Diastolic && v.record_id == s.record_id)
                .expect("a diastolic beside it");
            let c = panel["component"].as_array().expect("components");
            assert_eq!(c.len(), 2);
            assert_eq!(c[0]["code"]["coding"][0]["code"], "8480-6");
            assert_eq!(c[0]["valueQuantity"]["value"], s.measure.value);
            assert_eq!(c[1]["code"]["coding"][0]["code"], "8462-4");
            assert_eq!(c[1]["valueQuantity"]["value"], d.measure.value);
            assert_eq!(c[1]["valueQuantity"]["code"], "mm[Hg]");
            assert!(panel.get("valueQuantity").is_none(), "obs-7: the panel itself has no value");
            assert_eq!(panel["effectiveDateTime"], s.date.as_str());
        }
        // No systolic or diastolic reading is left on its own.
        assert!(!resources(&b).iter().any(|r| {
            let code = &r["code"]["coding"][0]["code"];
            code == "8480-6" || code == "8462-4"
        }));
    }

    #[test]
    fn an_unpaired_systolic_stands_alone() {
        let mut e = sample(2);
        e.vitals.retain(|v| v.kind != VitalKind::Diastolic);
        let b = bundle(&e);
        let alone: Vec<&Value> =
            resources(&b).into_iter().filter(|r| r["code"]["coding"][0]["code"] == "8480-6").collect();
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0]["valueQuantity"]["unit"], "mm[Hg]");
    }

    #[test]
    fn every_reference_resolves_and_full_urls_are_unique_uuids() {
        let b = bundle(&sample(12));
        let urls: Vec<&str> =
            b["entry"].as_array().expect("entries").iter().map(|e| e["fullUrl"].as_str().expect("url")).collect();
        let set: HashSet<&str> = urls.iter().copied().collect();
        assert_eq!(set.len(), urls.len(), "bdl-7: fullUrls are unique");
        for url in &urls {
            let uuid = url.strip_prefix("urn:uuid:").expect("urn:uuid");
            assert_eq!(uuid.len(), 36);
            assert!(uuid.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
            assert_eq!(&uuid[14..15], "8", "version 8");
        }
        let mut refs = Vec::new();
        references(&b, &mut refs);
        assert!(refs.len() > 100);
        for r in refs {
            assert!(set.contains(r), "{r} resolves to no entry");
        }
    }

    #[test]
    fn documents_carry_the_anchored_hash_and_versions() {
        let e = sample(12);
        let b = bundle(&e);
        let docs: Vec<&Value> =
            resources(&b).into_iter().filter(|r| r["resourceType"] == "DocumentReference").collect();
        let r = &e.records[1];
        let doc = docs
            .iter()
            .find(|d| d["masterIdentifier"]["value"] == format!("{}@{}", r.id, r.version))
            .expect("the record's document");
        assert_eq!(doc["identifier"][1], json!({ "system": CIPHERTEXT_SHA256_SYSTEM, "value": r.data_hash }));
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["docStatus"], "preliminary");
        let earlier = doc["relatesTo"][0]["target"]["reference"].as_str().expect("replaces");
        let entry = b["entry"].as_array().expect("entries").iter().find(|e| e["fullUrl"] == earlier).expect("entry");
        assert_eq!(entry["resource"]["status"], "superseded");
        assert_eq!(entry["resource"]["identifier"][1]["value"], r.replaces[0].data_hash);
        let attachment =
            docs.iter().find(|d| d["identifier"][0]["system"] == ATTACHMENT_SYSTEM).expect("the attachment's document");
        assert_eq!(attachment["content"][0]["attachment"]["size"], 48_213);
        assert_eq!(attachment["identifier"][1]["value"], e.records[0].attachments[0].sha256);
    }

    #[test]
    fn withheld_types_label_the_bundle() {
        let mut e = sample(3);
        e.scope.withheld = vec!["lab-results".into()];
        let b = bundle(&e);
        assert_eq!(b["meta"]["security"][0]["code"], "REDACTED");
        assert_eq!(
            b["meta"]["tag"][0],
            json!({ "system": DATA_TYPE_SYSTEM, "code": "lab-results", "display": "withheld" })
        );
    }

    #[test]
    fn what_fhir_cannot_hold_is_left_out() {
        let b = bundle(&awkward());
        let rs = resources(&b);
        let condition = rs.iter().find(|r| r["resourceType"] == "Condition").expect("condition");
        assert!(condition.get("recordedDate").is_none());
        assert!(condition["code"].get("coding").is_none());
        assert_eq!(condition["code"]["text"], "Atrial fibrillation");
        let med = rs.iter().find(|r| r["resourceType"] == "MedicationStatement").expect("medication");
        assert!(med.get("effectivePeriod").is_none());
        let patient = rs[0];
        assert!(patient.get("name").is_none());
        assert!(patient.get("contact").is_none(), "pat-1: a contact without details is left out");
        let lab = rs.iter().find(|r| r["code"]["coding"][0]["code"] == "4548-4").expect("the lab result");
        assert_eq!(lab["dataAbsentReason"]["coding"][0]["code"], "unknown");
        assert!(lab.get("referenceRange").is_none());
        let attachment =
            rs.iter().find(|d| d["identifier"][0]["system"] == ATTACHMENT_SYSTEM).expect("the attachment's document");
        assert!(attachment["content"][0]["attachment"].get("size").is_none());
    }

    /// An export with values FHIR cannot hold as they are.
    fn awkward() -> Export {
        let mut e = sample(3);
        e.conditions[0].date = Some("2026-02-30".into());
        e.conditions[0].code = "E11  .9".into();
        e.medications[0].start = Some("last spring".into());
        e.records[0].attachments[0].size = u64::from(u32::MAX);
        e.patient.name = Some("  ".into());
        e.patient.emergency_contacts[0].name = String::new();
        e.patient.emergency_contacts[0].phone = String::new();
        e.labs[0].value = Value::Null;
        e.labs[0].reference_range = Some(" ".into());
        e
    }

    /// The R4 invariants (FHIRPath constraints) neither validator in
    /// tests/fhir.rs evaluates: they are checked here instead.
    #[test]
    fn r4_invariants_the_validators_do_not_check() {
        for e in [sample(12), awkward()] {
            let b = bundle(&e);
            for r in resources(&b) {
                match r["resourceType"].as_str().expect("resourceType") {
                    "Patient" => {
                        for c in r["contact"].as_array().into_iter().flatten() {
                            assert!(c.get("name").is_some() || c.get("telecom").is_some(), "pat-1: {c}");
                        }
                    }
                    "Consent" => {
                        assert!(r.get("policy").is_some() || r.get("policyRule").is_some(), "ppc-1: {r}");
                        assert!(r.get("patient").is_some(), "ppc-2..5: {r}");
                    }
                    "Observation" => {
                        let valued = r.as_object().expect("object").keys().any(|k| k.starts_with("value"));
                        assert!(!(valued && r.get("dataAbsentReason").is_some()), "obs-6: {r}");
                        assert!(valued || r.get("dataAbsentReason").is_some() || r.get("component").is_some());
                        for range in r["referenceRange"].as_array().into_iter().flatten() {
                            assert!(range.get("text").is_some() || range.get("low").is_some(), "obs-3: {range}");
                        }
                    }
                    "DocumentReference" => {
                        for c in r["content"].as_array().expect("content") {
                            if let Some(size) = c["attachment"].get("size") {
                                assert!(size.as_u64().is_some_and(|s| s <= i32::MAX as u64), "unsignedInt: {size}");
                            }
                            if c["attachment"].get("data").is_some() {
                                assert!(c["attachment"].get("contentType").is_some(), "att-1: {c}");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn dates() {
        for ok in ["2026", "2026-02", "2024-02-29", "2026-12-31"] {
            assert_eq!(fhir_date(ok), Some(ok));
        }
        for bad in ["", "0000", "2026-13", "2025-02-29", "2026-1-05", "2026-01-05T10:00", "26-01-05"] {
            assert_eq!(fhir_date(bad), None, "{bad}");
        }
    }
}
