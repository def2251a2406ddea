//! Exports of a patient's data (PDF, JSON, CSV, FHIR R4): the facts
//! gathered under the one rule, handed to `medanchor-export` to render,
//! signed with the node's export key, their SHA-256 queued for the batch
//! anchorer, recorded for verification, and audited once.
//!
//! Who gets what: the patient everything (their profile, every record,
//! the consents, the accesses to their data); anyone else exactly the
//! records whose reading the chain allows them right now — each record
//! decided by [`Service::authorize_on_record`], as a read of it would be —
//! and the profile sections the one rule gives them; the data types it
//! refused are named in the export (`scope.withheld`) so the reader knows
//! it is partial. An export by someone else is a disclosure.

use std::collections::BTreeSet;

use medanchor_clinical::units::Quantity;
use medanchor_clinical::{FieldKind, Template};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessMethod, DataType, RecordType};
use medanchor_contracts::ContractError;
use medanchor_contracts::RecordId;
use medanchor_export::model as m;
use medanchor_export::sign::{DetachedSignature, ExportKey};
pub use medanchor_export::summary::Preset;
use medanchor_indexer::query::{ConsentState, PageRequest, RecordFilter};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authz::Operation;
use crate::db::{AnchorStatus, Cf};
use crate::error::{Error, Result};
use crate::state::{Caller, Service};

/// An export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A signed PDF for clinicians.
    Pdf,
    /// The export as JSON (schema [`m::SCHEMA`]), with a detached signature.
    Json,
    /// CSV files in a zip, with a detached signature.
    Csv,
    /// An HL7 FHIR R4 `Bundle` (JSON), with a detached signature.
    Fhir,
}

impl Format {
    /// Its name in requests.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Fhir => "fhir",
        }
    }

    /// The media type served.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Json => "application/json",
            Format::Csv => "application/zip",
            Format::Fhir => "application/fhir+json",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Json => "json",
            Format::Csv => "zip",
            Format::Fhir => "fhir.json",
        }
    }

    fn parse(s: &str) -> Result<Format> {
        match s {
            "pdf" => Ok(Format::Pdf),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "fhir" => Ok(Format::Fhir),
            _ => Err(Error::bad("invalid-format", "format must be pdf, json, csv or fhir")),
        }
    }
}

/// What an export covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// The format.
    pub format: Format,
    /// First clinical date (inclusive), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last clinical date (inclusive).
    pub to: Option<String>,
    /// Only these record types (empty: all).
    pub types: Vec<RecordType>,
}

/// The longest `types` list taken (every record type, repeated, fits).
const MAX_TYPES_LEN: usize = 1000;

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

impl ExportRequest {
    /// From a request's `format`, `from`, `to` and `types` (comma
    /// separated record types), each refused precisely.
    pub fn parse(format: Option<&str>, from: Option<&str>, to: Option<&str>, types: Option<&str>) -> Result<Self> {
        let format = Format::parse(format.unwrap_or("pdf"))?;
        let date = |name: &str, v: Option<&str>| -> Result<Option<String>> {
            match v {
                None => Ok(None),
                Some(d) if is_date(d) => Ok(Some(d.to_string())),
                Some(_) => Err(Error::bad("invalid-date", format!("{name} must be a date, YYYY-MM-DD"))),
            }
        };
        let (from, to) = (date("from", from)?, date("to", to)?);
        if let (Some(f), Some(t)) = (&from, &to) {
            if f > t {
                return Err(Error::bad("invalid-range", "from is after to"));
            }
        }
        let mut parsed = Vec::new();
        // Exactly `type(,type)*`: no empty item, no spaces (the document's
        // pattern).
        if types.is_some_and(|t| t.len() > MAX_TYPES_LEN) {
            return Err(Error::bad("invalid-type", format!("types is at most {MAX_TYPES_LEN} characters")));
        }
        for t in types.map(|t| t.split(',')).into_iter().flatten() {
            let rt = crate::records::parse_record_type(t)?;
            if !parsed.contains(&rt) {
                parsed.push(rt);
            }
        }
        Ok(ExportRequest { format, from, to, types: parsed })
    }

    fn covers(&self, date: &str, record_type: RecordType) -> bool {
        self.from.as_deref().is_none_or(|f| date >= f)
            && self.to.as_deref().is_none_or(|t| date <= t)
            && (self.types.is_empty() || self.types.contains(&record_type))
    }
}

/// A provider summary report's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRequest {
    /// Which report.
    pub preset: Preset,
    /// The window: the last this many days.
    pub window_days: u32,
    /// `pdf` or `json`.
    pub format: Format,
}

/// The longest window a summary looks back over (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3_660;

impl SummaryRequest {
    /// From a request's `preset`, `window_days` and `format`, each
    /// refused precisely.
    pub fn parse(preset: Option<&str>, window_days: Option<&str>, format: Option<&str>) -> Result<Self> {
        let preset = Preset::parse(preset.unwrap_or("referral"))
            .ok_or_else(|| Error::bad("invalid-preset", "preset must be referral, consultation or discharge"))?;
        let window_days = match window_days {
            None => preset.default_window_days(),
            Some(d) => match d.parse::<u32>() {
                Ok(n @ 1..=MAX_WINDOW_DAYS) => n,
                _ => {
                    return Err(Error::bad(
                        "invalid-window",
                        format!("window_days must be a whole number from 1 to {MAX_WINDOW_DAYS}"),
                    ))
                }
            },
        };
        let format = match format.unwrap_or("pdf") {
            "pdf" => Format::Pdf,
            "json" => Format::Json,
            _ => return Err(Error::bad("invalid-format", "a summary's format is pdf or json")),
        };
        Ok(SummaryRequest { preset, window_days, format })
    }
}

/// A rendered export.
#[derive(Debug)]
pub struct Exported {
    /// Its id (32 hex digits).
    pub id: String,
    /// Its format.
    pub format: Format,
    /// The file.
    pub bytes: Vec<u8>,
    /// Its SHA-256 (queued for anchoring).
    pub sha256: [u8; 32],
    /// The detached signature (every format but PDF, which carries its own).
    pub signature: Option<DetachedSignature>,
    /// How many records it holds.
    pub records: usize,
    /// The data types withheld from the requester.
    pub withheld: Vec<String>,
}

/// What the node keeps about an export, for its verification page: no
/// patient, no content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRow {
    /// Its id.
    pub id: String,
    /// Its format.
    pub format: Format,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// When it was made (unix ms).
    pub created_ms: u64,
    /// The requester's role.
    pub requester_role: String,
    /// The signing key's id.
    pub key_id: String,
    /// The detached signature (JSON, as served with the export), for
    /// every format but PDF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

const EXPORT_ROW: &[u8] = b"export/";

fn row_key(id: &str) -> Vec<u8> {
    [EXPORT_ROW, id.as_bytes()].concat()
}

/// The facts of one record version, drawn from its content.
#[derive(Default)]
struct Drawn {
    date: Option<String>,
    fields: Vec<m::Field>,
    allergies: Vec<m::Allergy>,
    conditions: Vec<m::Condition>,
    medications: Vec<m::Medication>,
    vitals: Vec<(m::VitalKind, m::Measure)>,
    labs: Vec<m::LabResult>,
}

fn vital_of(q: Quantity) -> Option<m::VitalKind> {
    Some(match q {
        Quantity::HeartRate => m::VitalKind::HeartRate,
        Quantity::SystolicPressure => m::VitalKind::Systolic,
        Quantity::DiastolicPressure => m::VitalKind::Diastolic,
        Quantity::Temperature => m::VitalKind::Temperature,
        Quantity::OxygenSaturation => m::VitalKind::Spo2,
        Quantity::RespiratoryRate => m::VitalKind::RespiratoryRate,
        Quantity::Weight => m::VitalKind::Weight,
        Quantity::Height => m::VitalKind::Height,
        Quantity::Glucose => m::VitalKind::Glucose,
        Quantity::Dose => return None,
    })
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn measure(v: &Value) -> Option<m::Measure> {
    Some(m::Measure { value: v.get("value")?.as_f64()?, unit: s(v, "unit")? })
}

fn number(v: f64) -> String {
    // 72 rather than 72.0; 36.6 as written.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn measure_text(v: &Value) -> String {
    measure(v).map(|q| format!("{} {}", number(q.value), q.unit)).unwrap_or_default()
}

/// Reads the structured content of a version written with `template`:
/// its labelled lines in form order, and the facts its kinds of field
/// hold (any template's, not only the built-in ones).
fn draw(template: &Template, content: &Value, source: &m::Source) -> Drawn {
    let mut d = Drawn::default();
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for f in &template.fields {
        let Some(v) = content.get(&f.name).filter(|v| !v.is_null()) else { continue };
        let text = match &f.kind {
            FieldKind::Date => {
                let t = v.as_str().unwrap_or_default().to_string();
                if d.date.is_none() && !t.is_empty() {
                    d.date = Some(t.clone());
                }
                t
            }
            FieldKind::Measurement { quantity } => {
                if let (Some(kind), Some(q)) = (vital_of(*quantity), measure(v)) {
                    d.vitals.push((kind, q));
                }
                measure_text(v)
            }
            FieldKind::Diagnoses { .. } => items(v)
                .iter()
                .map(|e| {
                    let code = s(e, "code").unwrap_or_default();
                    let description = s(e, "description");
                    let primary = e.get("primary").and_then(Value::as_bool).unwrap_or(false);
                    d.conditions.push(m::Condition {
                        code: code.clone(),
                        description: description.clone(),
                        primary,
                        date: None,
                        source: source.clone(),
                    });
                    let mut t = code;
                    if let Some(desc) = description {
                        t.push(' ');
                        t.push_str(&desc);
                    }
                    if primary {
                        t.push_str(" (primary)");
                    }
                    t
                })
                .collect::<Vec<_>>()
                .join("; "),
            FieldKind::Medications { .. } => items(v)
                .iter()
                .map(|e| {
                    let med = m::Medication {
                        name: s(e, "name").unwrap_or_default(),
                        dose: e.get("dose").and_then(measure),
                        route: s(e, "route"),
                        frequency: s(e, "frequency"),
                        start: s(e, "start"),
                        end: s(e, "end"),
                        instructions: s(e, "instructions"),
                        date: None,
                        source: source.clone(),
                    };
                    let t = [
                        Some(med.name.clone()),
                        e.get("dose").map(measure_text),
                        med.route.clone(),
                        med.frequency.clone(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                    d.medications.push(med);
                    t
                })
                .collect::<Vec<_>>()
                .join("; "),
            FieldKind::Allergies { .. } => items(v)
                .iter()
                .map(|e| {
                    let a = m::Allergy {
                        substance: s(e, "substance").unwrap_or_default(),
                        reaction: s(e, "reaction").unwrap_or_default(),
                        severity: s(e, "severity").unwrap_or_default(),
                        source: source.clone(),
                        date: None,
                    };
                    let t = format!("{}: {} ({})", a.substance, a.reaction, a.severity);
                    d.allergies.push(a);
                    t
                })
                .collect::<Vec<_>>()
                .join("; "),
            FieldKind::LabResults { .. } => items(v)
                .iter()
                .map(|e| {
                    let value = e.get("value").cloned().unwrap_or(Value::Null);
                    let l = m::LabResult {
                        test: s(e, "test").unwrap_or_default(),
                        loinc: s(e, "loinc"),
                        value: value.clone(),
                        unit: s(e, "unit"),
                        reference_range: s(e, "reference_range"),
                        flag: s(e, "flag"),
                        date: String::new(),
                        record_id: String::new(),
                        version: 0,
                    };
                    let shown = match &value {
                        Value::Number(n) => n.as_f64().map(number).unwrap_or_default(),
                        Value::String(t) => t.clone(),
                        _ => String::new(),
                    };
                    let mut t = [Some(l.test.clone()), Some(shown), l.unit.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    if let Some(r) = &l.reference_range {
                        t.push_str(&format!(" ({r})"));
                    }
                    if let Some(fl) = &l.flag {
                        t.push_str(&format!(" {fl}"));
                    }
                    d.labs.push(l);
                    t
                })
                .collect::<Vec<_>>()
                .join("; "),
            FieldKind::Boolean => if v.as_bool() == Some(true) { "yes" } else { "no" }.into(),
            FieldKind::Tags { .. } => {
                items(v).iter().filter_map(|t| t.as_str().map(str::to_string)).collect::<Vec<_>>().join("; ")
            }
            FieldKind::Contacts { .. } => items(v)
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}) {}",
                        s(c, "name").unwrap_or_default(),
                        s(c, "relationship").unwrap_or_default(),
                        s(c, "phone").unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            },
        };
        if !text.is_empty() {
            d.fields.push(m::Field { label: f.label.clone(), value: text });
        }
    }
    d
}

impl Service {
    /// The node's export signing key (P-256, derived from the node's
    /// secret per tenant; the same on every start).
    pub fn export_key(&self) -> Result<&ExportKey> {
        let made = self.export_key.get_or_init(|| {
            ExportKey::from_secret(&self.export_secret, &format!("medanchor export signing ({})", self.config.tenant))
                .map_err(|e| e.to_string())
        });
        made.as_ref().map_err(|e| Error::internal(format!("the export key: {e}")))
    }

    /// The export `id`'s row, for its verification page (anyone: it
    /// holds a hash, a format and a time, nothing about the patient).
    pub fn export_row(&self, id: &str) -> Result<ExportRow> {
        let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !valid {
            return Err(Error::bad("invalid-export-id", "an export id is 32 lowercase hex digits"));
        }
        let bytes = self.db.get(Cf::Meta, &row_key(id))?.ok_or_else(|| Error::NotFound(format!("export {id}")))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::internal(format!("stored export row: {e}")))
    }

    /// Exports `patient`'s data as `caller` may read it now, in the
    /// requested format: audited (action `export`), a disclosure when the
    /// caller is not the patient, its hash queued for anchoring.
    pub async fn export(&self, caller: &Caller, patient: &Principal, req: ExportRequest) -> Result<Exported> {
        self.produce(caller, patient, req, None).await
    }

    /// A provider summary report (`req.preset`) over the last
    /// `req.window_days`: computed from the export the caller may have, so
    /// it holds no more than the chain lets them read; audited and
    /// anchored as an export.
    pub async fn summary(&self, caller: &Caller, patient: &Principal, req: SummaryRequest) -> Result<Exported> {
        let now = self.now_ms();
        let to = m::date_of_ms(now);
        let from = m::date_of_ms(now.saturating_sub(u64::from(req.window_days) * 86_400_000));
        let export = ExportRequest { format: req.format, from: Some(from), to: Some(to), types: vec![] };
        self.produce(caller, patient, export, Some(req.preset)).await
    }

    async fn produce(
        &self,
        caller: &Caller,
        patient: &Principal,
        req: ExportRequest,
        summary: Option<Preset>,
    ) -> Result<Exported> {
        let who = caller.require()?.clone();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "export");
        entry.patient = Some(patient.to_string());
        let (s2, p2, w2, r2) = (self.clone(), patient.clone(), who.clone(), req.clone());
        let gathered =
            tokio::task::spawn_blocking(move || s2.gather(&p2, &w2, role, &r2)).await.map_err(Error::internal)?;
        let (mut export, method) = self.audit_refusal(&entry, gathered).await?;
        entry.method = Some(method.to_string());
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        export.id = hex::encode(id);
        export.issuer.verify_url = format!("{}/v1/exports/{}", self.config.public_url.trim_end_matches('/'), export.id);
        let key = self.export_key()?.clone();
        let format = req.format;
        let (records, withheld) = (export.records.len(), export.scope.withheld.clone());
        let (from, to) = (req.from.clone().unwrap_or_default(), req.to.clone().unwrap_or_default());
        let rendered = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Option<DetachedSignature>)> {
            let pdf_error = |e: medanchor_export::pdf::Error| Error::internal(format!("pdf: {e}"));
            let bytes = match (summary, format) {
                (Some(preset), Format::Pdf) => {
                    let report = medanchor_export::summary::build(&export, preset, &from, &to);
                    medanchor_export::pdf::render_summary(&report, &export.issuer, &key).map_err(pdf_error)?
                }
                (Some(preset), _) => {
                    let report = medanchor_export::summary::build(&export, preset, &from, &to);
                    serde_json::to_vec_pretty(&report).map_err(|e| Error::internal(format!("summary: {e}")))?
                }
                (None, Format::Pdf) => medanchor_export::pdf::render(&export, &key).map_err(pdf_error)?,
                (None, Format::Json) => medanchor_export::tabular::to_json(&export),
                (None, Format::Csv) => {
                    medanchor_export::tabular::to_csv_zip(&export).map_err(|e| Error::internal(format!("csv: {e}")))?
                }
                (None, Format::Fhir) => serde_json::to_vec_pretty(&medanchor_export::fhir::bundle(&export))
                    .map_err(|e| Error::internal(format!("fhir: {e}")))?,
            };
            let signature = (format != Format::Pdf).then(|| key.sign_detached(&bytes));
            Ok((bytes, signature))
        })
        .await
        .map_err(Error::internal)?;
        let (bytes, signature) = match rendered {
            Ok(r) => r,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let row = ExportRow {
            id: hex::encode(id),
            format,
            sha256: hex::encode(sha256),
            created_ms: self.now_ms(),
            requester_role: role.to_string(),
            key_id: self.export_key()?.key_id(),
            signature: signature.as_ref().map(|sig| serde_json::to_string(sig).unwrap_or_default()),
        };
        // The row and the anchoring queue entry in one synced write: a
        // served export is always verifiable, and its hash always anchored.
        let mut batch = self.db.batch();
        batch.put_cf(
            self.db.cf(Cf::Meta),
            row_key(&row.id),
            serde_json::to_vec(&row).map_err(|e| Error::internal(e.to_string()))?,
        );
        self.queue_file_hash(&mut batch, &sha256)?;
        self.db.write(batch)?;
        entry.detail = Some(format!(
            "export {}{} format={} from={} to={} types={} records={} withheld={} sha256={}",
            row.id,
            summary.map(|p| format!(" summary={}", p.name())).unwrap_or_default(),
            format.name(),
            req.from.as_deref().unwrap_or("-"),
            req.to.as_deref().unwrap_or("-"),
            if req.types.is_empty() {
                "all".to_string()
            } else {
                req.types.iter().map(|t| t.name()).collect::<Vec<_>>().join(",")
            },
            records,
            if withheld.is_empty() { "-".to_string() } else { withheld.join(",") },
            row.sha256
        ));
        self.audited(entry, Ok(())).await?;
        Ok(Exported { id: row.id, format, bytes, sha256, signature, records, withheld })
    }
}

impl Service {
    /// Everything `who` may have of `patient`'s data for `req`, decided
    /// record by record by the one rule. A caller who may read nothing at
    /// all is refused with the contract's reason.
    fn gather(
        &self,
        patient: &Principal,
        who: &Principal,
        role: &str,
        req: &ExportRequest,
    ) -> Result<(m::Export, &'static str)> {
        let own = patient == who;
        let mut export = m::Export {
            schema: m::SCHEMA.into(),
            id: String::new(),
            generated_ms: self.now_ms(),
            issuer: m::Issuer {
                tenant: self.config.tenant.clone(),
                verify_url: String::new(),
                contracts: self.config.contracts.clone(),
            },
            requester: m::Requester { principal: who.to_string(), role: role.to_string() },
            scope: m::Scope {
                from: req.from.clone(),
                to: req.to.clone(),
                types: req.types.iter().map(|t| t.name().to_string()).collect(),
                withheld: vec![],
            },
            patient: m::Patient { principal: patient.to_string(), ..Default::default() },
            allergies: vec![],
            alerts: vec![],
            conditions: vec![],
            medications: vec![],
            records: vec![],
            vitals: vec![],
            labs: vec![],
            consents: vec![],
            audit: vec![],
        };
        // May the caller read anything of this patient's? Asked of every
        // data type, as `check-consent` would be; none is the contract's
        // refusal that says most (a revoked or expired consent before one
        // never given).
        let mut method = if own { "self" } else { "" };
        if !own {
            let mut refusal: Option<Error> = None;
            // `all-standard` is a grant's scope, never a type data has.
            for dt in DataType::ALL.iter().filter(|d| **d != DataType::AllStandard) {
                match self.authorize_at(Operation::Read, patient, who, *dt) {
                    Ok(how) => {
                        if method.is_empty() || how == AccessMethod::Emergency {
                            method = how.name();
                        }
                    }
                    Err(e @ Error::Forbidden { .. }) => {
                        let never =
                            |e: &Error| matches!(e, Error::Forbidden { reason: Some(ContractError::NoConsent), .. });
                        if refusal.as_ref().is_none_or(|r| never(r) && !never(&e)) {
                            refusal = Some(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if method.is_empty() {
                return Err(refusal.unwrap_or_else(|| Error::internal("no data type decided")));
            }
        }
        let mut withheld = BTreeSet::new();
        // The profile: the sections the one rule gives (none is no
        // refusal of the export: records may still be readable).
        match self.profile_access(patient, who) {
            Ok((_, sections)) => {
                if let Some((_, content)) = self.open_profile(&patient.to_string())? {
                    let visible = medanchor_clinical::profile::only(&content, |s| sections.contains(&s.field));
                    self.profile_facts(&visible, &mut export);
                }
            }
            Err(Error::Forbidden { .. }) => {}
            Err(e) => return Err(e),
        }
        // Records: every one the chain lists for the patient that this
        // tenant holds, each decided as a read of it would be (its status
        // asserts included).
        let mut page = PageRequest { cursor: None, limit: Some(medanchor_indexer::query::MAX_PAGE) };
        loop {
            let listed = self.chain.records(patient, &RecordFilter::default(), &page).map_err(Error::internal)?;
            for r in listed.items {
                if !self.db.holds_record(&r.record_id.0)? || self.is_erased(&r.record_id.0)? {
                    continue;
                }
                if !req.types.is_empty() && !req.types.contains(&r.record_type) {
                    continue;
                }
                let meta = self.current(&r.record_id)?;
                match self.authorize_on_record(Operation::Read, &r.record_id, &meta, who) {
                    Ok(_) => {}
                    Err(Error::Forbidden { .. }) => {
                        withheld.insert(meta.data_type.clone());
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                self.export_record(&r.record_id, meta, r.status.name(), r.finalized, req, &mut export)?;
            }
            match listed.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        export.scope.withheld = withheld.into_iter().collect();
        self.consent_facts(patient, who, role, &mut export)?;
        if own || role == "auditor" {
            self.audit_facts(patient, &mut export)?;
        }
        sort_facts(&mut export);
        Ok((export, method))
    }

    fn profile_facts(&self, p: &Value, e: &mut m::Export) {
        e.patient.name = s(p, "full_name");
        e.patient.phone = s(p, "phone");
        e.patient.blood_type = s(p, "blood_type");
        e.patient.organ_donor = p.get("organ_donor").and_then(Value::as_bool);
        e.patient.preferred_language = s(p, "preferred_language");
        let items = |k: &str| p.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        e.patient.emergency_contacts = items("emergency_contacts")
            .iter()
            .map(|c| m::Contact {
                name: s(c, "name").unwrap_or_default(),
                relationship: s(c, "relationship").unwrap_or_default(),
                phone: s(c, "phone").unwrap_or_default(),
            })
            .collect();
        e.alerts = items("medical_alerts").iter().filter_map(|t| t.as_str().map(str::to_string)).collect();
        let schema = medanchor_clinical::profile::schema();
        let drawn = draw(&schema, p, &m::Source::Profile);
        e.allergies.extend(drawn.allergies);
        e.conditions.extend(drawn.conditions);
        e.medications.extend(drawn.medications);
    }

    fn export_record(
        &self,
        id: &RecordId,
        meta: crate::db::RecordMeta,
        status: &str,
        finalized: bool,
        req: &ExportRequest,
        e: &mut m::Export,
    ) -> Result<()> {
        let record_type: RecordType = crate::records::parse_record_type(&meta.record_type)?;
        let source = m::Source::Record { id: id.to_string(), version: meta.version };
        let plaintext = self.open_version(&meta)?;
        let template = meta.template.as_ref().and_then(|t| self.registry().get(t).ok().cloned());
        let (drawn, content, title) = match (&template, meta.content_type.as_str()) {
            (Some(t), "application/json") => {
                let content: Value = serde_json::from_slice(&plaintext).unwrap_or(Value::Null);
                (draw(t, &content, &source), content, t.title.clone())
            }
            (_, ct) if ct.starts_with("text/") => {
                let text = String::from_utf8_lossy(&plaintext).into_owned();
                let fields = vec![m::Field { label: "Text".into(), value: text.clone() }];
                (Drawn { fields, ..Default::default() }, Value::String(text), record_type.name().to_string())
            }
            (_, "application/json") => {
                let content: Value = serde_json::from_slice(&plaintext).unwrap_or(Value::Null);
                let fields = vec![m::Field { label: "Content".into(), value: content.to_string() }];
                (Drawn { fields, ..Default::default() }, content, record_type.name().to_string())
            }
            (_, ct) => {
                let fields = vec![m::Field { label: "Content".into(), value: format!("{} bytes of {ct}", meta.size) }];
                (Drawn { fields, ..Default::default() }, Value::Null, record_type.name().to_string())
            }
        };
        let date = drawn.date.clone().unwrap_or_else(|| m::date_of_ms(meta.created_ms));
        if !req.covers(&date, record_type) {
            return Ok(());
        }
        let rid = id.to_string();
        for mut a in drawn.allergies {
            a.date = Some(date.clone());
            e.allergies.push(a);
        }
        for mut c in drawn.conditions {
            c.date = Some(date.clone());
            e.conditions.push(c);
        }
        for mut md in drawn.medications {
            md.date = Some(date.clone());
            e.medications.push(md);
        }
        for (kind, measure) in drawn.vitals {
            e.vitals.push(m::Vital {
                kind,
                measure,
                date: date.clone(),
                record_id: rid.clone(),
                version: meta.version,
            });
        }
        for mut l in drawn.labs {
            l.date = date.clone();
            l.record_id = rid.clone();
            l.version = meta.version;
            e.labs.push(l);
        }
        let replaces = self
            .db
            .versions(id)?
            .into_iter()
            .filter(|v| v.version < meta.version && v.status == AnchorStatus::Anchored)
            .rev()
            .map(|v| m::VersionRef { version: v.version, data_hash: v.data_hash.to_string(), created_ms: v.created_ms })
            .collect();
        // The newest version of each file, unless removed.
        let mut attachments: Vec<m::AttachmentRef> = Vec::new();
        let mut newest: std::collections::BTreeMap<String, crate::attachments::AttachmentMeta> = Default::default();
        for a in self.db.attachments(&id.0)? {
            newest.insert(a.attachment_id.clone(), a);
        }
        for (_, a) in newest.into_iter().filter(|(_, a)| a.removed.is_none()) {
            let opened = self.open_info(&meta.patient, a)?;
            attachments.push(m::AttachmentRef {
                id: opened.meta.attachment_id.clone(),
                version: opened.meta.version,
                name: opened.info.name,
                media_type: opened.info.media_type,
                size: opened.meta.size,
                sha256: opened.meta.sha256.to_string(),
                uploaded_ms: opened.meta.uploaded_ms,
            });
        }
        e.records.push(m::Record {
            id: rid,
            version: meta.version,
            record_type: meta.record_type.clone(),
            data_type: meta.data_type.clone(),
            template: meta.template.as_ref().map(|t| format!("{}@{}", t.id, t.version)),
            title,
            date,
            author: meta.author.clone(),
            created_ms: meta.created_ms,
            content_type: meta.content_type.clone(),
            fields: drawn.fields,
            content,
            data_hash: meta.data_hash.to_string(),
            anchor: match (&meta.txid, meta.block_height) {
                (Some(txid), Some(h)) if meta.status == AnchorStatus::Anchored => Some(m::Anchor {
                    txid: txid.to_string(),
                    block_height: h,
                    block_hash: meta.index_block_hash.as_ref().map(|b| b.to_string()),
                }),
                _ => None,
            },
            status: Some(status.to_string()),
            finalized,
            replaces,
            attachments,
        });
        Ok(())
    }

    /// The consents the chain holds: all of them for the patient, an
    /// auditor and an admin; a provider only their own.
    fn consent_facts(&self, patient: &Principal, who: &Principal, role: &str, e: &mut m::Export) -> Result<()> {
        let everyone = patient == who || role == "auditor" || role == "admin";
        let me = who.to_string();
        // A provider's access level, read once however many data types
        // they hold consent for.
        let mut levels: std::collections::BTreeMap<String, String> = Default::default();
        for c in self.chain.consents(patient).map_err(Error::internal)? {
            if !everyone && c.provider != me {
                continue;
            }
            let level = match levels.get(&c.provider) {
                Some(l) => l.clone(),
                None => {
                    let l = self
                        .chain
                        .provider_access(patient, &crate::records::principal_arg(&c.provider, "provider")?)
                        .map_err(Error::internal)?
                        .map(|a| a.level.to_string())
                        .unwrap_or_else(|| "read".into());
                    levels.insert(c.provider.clone(), l.clone());
                    l
                }
            };
            e.consents.push(m::Consent {
                provider: c.provider.clone(),
                data_types: vec![c.data_type.to_string()],
                access_level: level,
                active: c.state == ConsentState::Active,
                granted_height: c.granted_at,
                expires_height: c.expires_at,
                expires_ms: None,
                purpose: "treatment".into(),
            });
        }
        for p in levels.into_keys() {
            let provider = crate::records::principal_arg(&p, "provider")?;
            if let Some(o) = self.chain.emergency_override(patient, &provider).map_err(Error::internal)? {
                e.consents.push(m::Consent {
                    provider: o.provider,
                    data_types: vec![],
                    access_level: "read".into(),
                    active: o.active,
                    granted_height: o.started_at,
                    expires_height: Some(o.expires_at),
                    expires_ms: None,
                    purpose: "emergency".into(),
                });
            }
        }
        Ok(())
    }

    /// The accesses to the patient's data, from the log's per-patient
    /// index (bounded: the newest [`MAX_AUDIT`]).
    fn audit_facts(&self, patient: &Principal, e: &mut m::Export) -> Result<()> {
        let size = self.audit.size().map_err(Error::internal)?;
        let p = patient.to_string();
        let mut from = 0;
        loop {
            let page = self.audit.patient_entries(&p, from, 1000, size).map_err(Error::internal)?;
            let Some((last, _)) = page.last() else { break };
            from = last + 1;
            let full = page.len() == 1000;
            for (index, a) in page {
                e.audit.push(m::AuditEvent {
                    index,
                    time_ms: a.time_ms,
                    actor: a.actor,
                    role: a.role,
                    action: a.action,
                    record_id: a.record_id.map(|r| format!("0x{r}")),
                    method: a.method,
                    outcome: match a.reason {
                        Some(r) if a.outcome != "allowed" => format!("{}: {r}", a.outcome),
                        _ => a.outcome,
                    },
                });
            }
            if !full {
                break;
            }
        }
        if e.audit.len() > MAX_AUDIT {
            e.audit.drain(..e.audit.len() - MAX_AUDIT);
        }
        Ok(())
    }
}

/// The most audit entries an export carries (the newest).
pub const MAX_AUDIT: usize = 100_000;

fn sort_facts(e: &mut m::Export) {
    e.records.sort_by(|a, b| (&a.date, a.created_ms, &a.id).cmp(&(&b.date, b.created_ms, &b.id)));
    e.vitals.sort_by(|a, b| (&a.date, a.kind, &a.record_id).cmp(&(&b.date, b.kind, &b.record_id)));
    e.labs.sort_by(|a, b| (&a.date, &a.test, &a.record_id).cmp(&(&b.date, &b.test, &b.record_id)));
    let by_date = |d: &Option<String>| d.clone().unwrap_or_default();
    e.conditions.sort_by_key(|c| by_date(&c.date));
    e.medications.sort_by_key(|c| by_date(&c.date));
    e.allergies.sort_by_key(|c| by_date(&c.date));
}
