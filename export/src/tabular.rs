//! The JSON export (the [`Export`] value itself, schema [`SCHEMA`]) and the
//! CSV export: one file per kind of fact in a zip.
//!
//! CSV cells a spreadsheet would run as a formula (text starting with `=`,
//! `+`, `-`, `@`, a tab or a carriage return) are written with a leading
//! `'` (OWASP's advice against CSV injection); [`read_csv_zip`] removes it
//! again, so numbers such as `-3.5` are written as they are and every
//! value reads back unchanged.

use std::io::{Read, Write};

use crate::model::*;

/// What can go wrong reading or writing the tabular formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JSON did not parse as an export of this schema.
    #[error("not a medanchor export: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON names another schema.
    #[error("export schema {0} is not {SCHEMA}")]
    Schema(String),
    /// The zip could not be written or read.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// A CSV file could not be written or read.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// Writing to memory failed (never, in practice).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The JSON export: the value, pretty-printed (people open these).
pub fn to_json(export: &Export) -> Vec<u8> {
    // Serializing plain structs to memory cannot fail.
    serde_json::to_vec_pretty(export).unwrap_or_default()
}

/// A JSON export read back; refused when it names another schema.
pub fn from_json(bytes: &[u8]) -> Result<Export, Error> {
    let export: Export = serde_json::from_slice(bytes)?;
    if export.schema != SCHEMA {
        return Err(Error::Schema(export.schema));
    }
    Ok(export)
}

/// The CSV files, in the order they are written.
pub const CSV_FILES: [&str; 8] = [
    "patient.csv",
    "allergies.csv",
    "conditions.csv",
    "medications.csv",
    "records.csv",
    "vitals.csv",
    "labs.csv",
    "audit.csv",
];

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn source(s: &Source) -> (String, String) {
    match s {
        Source::Profile => ("profile".into(), String::new()),
        Source::Record { id, version } => (id.clone(), version.to_string()),
    }
}

/// Guards a cell against formula execution (see the module's comment).
fn cell(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    if risky || s.starts_with('\'') {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn uncell(s: &str) -> String {
    s.strip_prefix('\'').unwrap_or(s).to_string()
}

/// One CSV file: its name, header and rows.
type Sheet = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// Each CSV file's header and rows.
fn tables(e: &Export) -> Vec<Sheet> {
    let p = &e.patient;
    let patient = vec![vec![
        p.principal.clone(),
        text(&p.name),
        text(&p.phone),
        text(&p.blood_type),
        p.organ_donor.map(|b| b.to_string()).unwrap_or_default(),
        text(&p.preferred_language),
        e.alerts.join("; "),
        e.id.clone(),
        instant_of_ms(e.generated_ms),
        e.requester.principal.clone(),
        e.requester.role.clone(),
        text(&e.scope.from),
        text(&e.scope.to),
        e.scope.types.join(" "),
        e.scope.withheld.join(" "),
    ]];
    let allergies = e
        .allergies
        .iter()
        .map(|a| {
            let (rid, rv) = source(&a.source);
            vec![a.substance.clone(), a.reaction.clone(), a.severity.clone(), text(&a.date), rid, rv]
        })
        .collect();
    let conditions = e
        .conditions
        .iter()
        .map(|c| {
            let (rid, rv) = source(&c.source);
            vec![c.code.clone(), text(&c.description), c.primary.to_string(), text(&c.date), rid, rv]
        })
        .collect();
    let medications = e
        .medications
        .iter()
        .map(|m| {
            let (rid, rv) = source(&m.source);
            vec![
                m.name.clone(),
                m.dose.as_ref().map(|d| d.value.to_string()).unwrap_or_default(),
                m.dose.as_ref().map(|d| d.unit.clone()).unwrap_or_default(),
                text(&m.route),
                text(&m.frequency),
                text(&m.start),
                text(&m.end),
                text(&m.instructions),
                text(&m.date),
                rid,
                rv,
            ]
        })
        .collect();
    let records = e
        .records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.version.to_string(),
                r.date.clone(),
                r.record_type.clone(),
                r.data_type.clone(),
                text(&r.template),
                r.title.clone(),
                r.author.clone(),
                instant_of_ms(r.created_ms),
                r.data_hash.clone(),
                r.anchor.as_ref().map(|a| a.txid.clone()).unwrap_or_default(),
                r.anchor.as_ref().map(|a| a.block_height.to_string()).unwrap_or_default(),
                text(&r.status),
                r.finalized.to_string(),
                r.fields.iter().map(|f| format!("{}: {}", f.label, f.value)).collect::<Vec<_>>().join("\n"),
                r.attachments.iter().map(|a| format!("{} sha256={}", a.name, a.sha256)).collect::<Vec<_>>().join("\n"),
            ]
        })
        .collect();
    let vitals = e
        .vitals
        .iter()
        .map(|v| {
            vec![
                v.date.clone(),
                serde_json::to_value(v.kind).ok().and_then(|k| k.as_str().map(str::to_string)).unwrap_or_default(),
                v.kind.loinc().into(),
                v.measure.value.to_string(),
                v.measure.unit.clone(),
                v.record_id.clone(),
                v.version.to_string(),
            ]
        })
        .collect();
    let labs = e
        .labs
        .iter()
        .map(|l| {
            vec![
                l.date.clone(),
                l.test.clone(),
                text(&l.loinc),
                match &l.value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                text(&l.unit),
                text(&l.reference_range),
                text(&l.flag),
                l.record_id.clone(),
                l.version.to_string(),
            ]
        })
        .collect();
    let audit = e
        .audit
        .iter()
        .map(|a| {
            vec![
                a.index.to_string(),
                instant_of_ms(a.time_ms),
                a.actor.clone(),
                a.role.clone(),
                a.action.clone(),
                text(&a.record_id),
                text(&a.method),
                a.outcome.clone(),
            ]
        })
        .collect();
    vec![
        (
            "patient.csv",
            vec![
                "principal",
                "name",
                "phone",
                "blood_type",
                "organ_donor",
                "preferred_language",
                "alerts",
                "export_id",
                "generated",
                "requester",
                "requester_role",
                "from",
                "to",
                "types",
                "withheld",
            ],
            patient,
        ),
        ("allergies.csv", vec!["substance", "reaction", "severity", "date", "record_id", "record_version"], allergies),
        ("conditions.csv", vec!["code", "description", "primary", "date", "record_id", "record_version"], conditions),
        (
            "medications.csv",
            vec![
                "name",
                "dose",
                "dose_unit",
                "route",
                "frequency",
                "start",
                "end",
                "instructions",
                "date",
                "record_id",
                "record_version",
            ],
            medications,
        ),
        (
            "records.csv",
            vec![
                "record_id",
                "version",
                "date",
                "record_type",
                "data_type",
                "template",
                "title",
                "author",
                "created",
                "data_hash",
                "anchor_txid",
                "anchor_height",
                "status",
                "finalized",
                "fields",
                "attachments",
            ],
            records,
        ),
        ("vitals.csv", vec!["date", "kind", "loinc", "value", "unit", "record_id", "record_version"], vitals),
        (
            "labs.csv",
            vec!["date", "test", "loinc", "value", "unit", "reference_range", "flag", "record_id", "record_version"],
            labs,
        ),
        ("audit.csv", vec!["index", "time", "actor", "role", "action", "record_id", "method", "outcome"], audit),
    ]
}

/// The CSV export: [`CSV_FILES`] in one zip (deflated; entries dated
/// 1980-01-01 so the same export gives the same bytes).
pub fn to_csv_zip(export: &Export) -> Result<Vec<u8>, Error> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, header, rows) in tables(export) {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        w.write_record(&header)?;
        for row in rows {
            w.write_record(row.iter().map(|c| cell(c)))?;
        }
        let bytes = w.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        zip.start_file(name, options)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// One CSV file of an export: its header and rows, the formula guard
/// removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, as text.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The values of column `name`.
    pub fn column(&self, name: &str) -> Vec<&str> {
        match self.header.iter().position(|h| h == name) {
            Some(i) => self.rows.iter().map(|r| r.get(i).map(String::as_str).unwrap_or_default()).collect(),
            None => vec![],
        }
    }
}

/// Reads a CSV export back: file name → table.
pub fn read_csv_zip(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, Table>, Error> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        let name = file.name()?.to_string();
        let mut text = Vec::new();
        // Bounded: a zip bomb stops at 256 MiB per file.
        (&mut file).take(256 << 20).read_to_end(&mut text)?;
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_slice());
        let header = r.headers()?.iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|row| row.map(|row| row.iter().map(uncell).collect()))
            .collect::<Result<Vec<Vec<String>>, csv::Error>>()?;
        out.insert(name, Table { header, rows });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sample;

    #[test]
    fn json_round_trips_and_names_its_schema() {
        let e = sample(9);
        let back = from_json(&to_json(&e)).expect("parse");
        assert_eq!(back, e);
        let mut other = e.clone();
        other.schema = "https://example.invalid/other".into();
        assert!(matches!(from_json(&to_json(&other)), Err(Error::Schema(_))));
    }

    #[test]
    fn csv_holds_every_fact_once_and_reads_back() {
        let mut e = sample(9);
        // Cells a spreadsheet would execute, and a negative number.
        e.patient.name = Some("=HYPERLINK(\"http://x\")".into());
        e.alerts.push("@SUM(A1)".into());
        e.vitals[0].measure.value = -3.5;
        let zip = to_csv_zip(&e).expect("zip");
        assert_eq!(zip, to_csv_zip(&e).expect("zip"), "deterministic");
        let files = read_csv_zip(&zip).expect("read");
        assert_eq!(files.keys().map(String::as_str).collect::<Vec<_>>().len(), CSV_FILES.len());
        let raw = {
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip.as_slice())).expect("zip");
            let mut s = String::new();
            z.by_name("patient.csv").expect("patient").read_to_string(&mut s).expect("read");
            s
        };
        assert!(raw.contains("'=HYPERLINK"), "the formula is guarded: {raw}");
        let patient = &files["patient.csv"];
        assert_eq!(patient.column("name"), vec!["=HYPERLINK(\"http://x\")"]);
        assert!(patient.column("alerts")[0].ends_with("@SUM(A1)"));
        assert_eq!(files["records.csv"].rows.len(), e.records.len());
        assert_eq!(
            files["records.csv"].column("record_id"),
            e.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(files["vitals.csv"].rows.len(), e.vitals.len());
        assert_eq!(files["vitals.csv"].column("value")[0], "-3.5");
        assert_eq!(files["labs.csv"].rows.len(), e.labs.len());
        assert_eq!(files["medications.csv"].rows.len(), e.medications.len());
        assert_eq!(files["audit.csv"].rows.len(), e.audit.len());
        assert_eq!(files["allergies.csv"].column("substance"), vec!["Penicillin"]);
    }
}
