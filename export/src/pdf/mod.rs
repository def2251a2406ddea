//! The clinician PDF: an [`Export`] typeset with typst and signed (PAdES
//! B-B) with the node's [`ExportKey`].
//!
//! The template (`report.typ`) is fixed; the export reaches it only as
//! data — a JSON file it reads with `json()` — so no patient text is ever
//! parsed as typst markup (a name like `#panic()` prints as written). The
//! JSON is a view made for reading (`view.rs`): dates, units and numbers
//! already formatted, repeated problems and medications merged, so the
//! template stays a layout and does no arithmetic.
//!
//! Output is deterministic: the document date and the signing time are
//! the export's `generated_ms`, the PDF's identifier derives from the
//! export id, and ECDSA nonces are RFC 6979's.

mod chart;
mod summary;
mod view;
mod world;

pub use summary::render_summary;

use typst::foundations::{Datetime, Smart};
use typst_layout::PagedDocument;

use crate::model::Export;
use crate::sign::ExportKey;

const TEMPLATE: &str = include_str!("report.typ");

/// Room for the CMS signature beyond the certificate: the signed
/// attributes, the algorithm identifiers and the ECDSA signature take
/// well under 1 KiB. pdf_signer's default (30,000 bytes, 60 KB of hex)
/// is sized for timestamp tokens, which B-B does not carry.
const SIGNATURE_SLACK: usize = 1536;

/// What can go wrong rendering the PDF.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The report's data could not be prepared (a bug, not bad input: any
    /// export serializes).
    #[error("cannot prepare the report data: {0}")]
    Data(String),
    /// typst refused the document (a template bug: the export's text is
    /// data to it, never markup).
    #[error("typesetting failed: {0}")]
    Typeset(String),
    /// typst could not write the PDF.
    #[error("pdf export failed: {0}")]
    Pdf(String),
    /// The PDF could not be signed, or its signature not checked.
    #[error("pdf signature: {0}")]
    Sign(#[from] pdf_signer::Error),
    /// The PDF's signature does not verify.
    #[error("{0}")]
    Verify(String),
}

/// The export as a signed PDF for clinicians: the patient's header and
/// the verification QR code on the first page, allergies and alerts
/// first, then problems, medications, the records by date, lab results,
/// vital-sign trend charts, attachments, consents and the access log —
/// signed with `key` so any PDF reader can tell it was not altered.
pub fn render(export: &Export, key: &ExportKey) -> Result<Vec<u8>, Error> {
    let pdf = typeset(export, key)?;
    sign(export, key, &pdf)
}

/// The unsigned PDF.
fn typeset(export: &Export, key: &ExportKey) -> Result<Vec<u8>, Error> {
    let view = view::view(export, key);
    let mut files = vec![
        ("/data.json".to_string(), serde_json::to_vec(&view).map_err(|e| Error::Data(e.to_string()))?),
        ("/qr.svg".to_string(), qr_svg(&export.issuer.verify_url)?.into_bytes()),
    ];
    files.extend(view.charts.iter().map(|c| (c.file.clone(), c.svg.clone().into_bytes())));
    typeset_source(TEMPLATE, files, &export.id, export.generated_ms)
}

/// `template` typeset over the virtual `files`, dated `generated_ms`, its
/// PDF identifier derived from the export `id`.
fn typeset_source(
    template: &str,
    files: Vec<(String, Vec<u8>)>,
    id: &str,
    generated_ms: u64,
) -> Result<Vec<u8>, Error> {
    let generated = datetime_of_ms(generated_ms);
    let world = world::ReportWorld::new(template, files, generated.map(|(date, _)| date)).map_err(Error::Data)?;
    let document = typst::compile::<PagedDocument>(&world).output;
    // typst memoizes into a process-wide cache, which only pays off when
    // the same document is compiled again (an editor); a node renders
    // different exports, and keeping even a few renders' entries grew the
    // heap by ~120 MB per 1,000-record render. Clearing it costs nothing
    // measurable and keeps a render's peak at ~280 MB.
    typst::comemo::evict(0);
    let document = document.map_err(|errors| Error::Typeset(messages(&errors)))?;
    let options = typst_pdf::PdfOptions {
        // A stable identifier: the PDF's /ID derives from the export's id
        // rather than from the title (which is the patient's name).
        ident: Smart::Custom(format!("medanchor-export-{id}")),
        creator: Smart::Custom(Some("medanchor".into())),
        timestamp: generated.map(|(_, at)| typst_pdf::Timestamp::new_utc(at)),
        // Untagged: the structure tree more than doubles the time (1,000
        // records: ~1 s → ~2 s) and makes the file six times larger
        // (0.6 → 3.7 MB). The text stays extractable and searchable.
        tagged: false,
        ..Default::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|errors| Error::Pdf(messages(&errors)))
}

/// Adds the PAdES signature (an incremental update, so the typeset bytes
/// stay as they are).
fn sign(export: &Export, key: &ExportKey, pdf: &[u8]) -> Result<Vec<u8>, Error> {
    sign_as(&export.id, &export.issuer.tenant, export.generated_ms, key, pdf)
}

/// The signature of export `id`: its reason names the export (what
/// `medanchor verify export` reads the id from).
fn sign_as(id: &str, tenant: &str, generated_ms: u64, key: &ExportKey, pdf: &[u8]) -> Result<Vec<u8>, Error> {
    let (p12, password) = key.pkcs12();
    let reason = format!("medanchor export {id}");
    let options = pdf_signer::SignOptions {
        signature_capacity: key.certificate_der().len() + SIGNATURE_SLACK,
        reason: Some(reason.clone()),
        location: Some(reason),
        name: Some(format!("medanchor export signing ({tenant})")),
        // The claimed signing time is the export's, so the same export
        // signs to the same bytes.
        signing_time: Some(pdf_date(generated_ms)),
        ..Default::default()
    };
    Ok(pdf_signer::sign_pdf_bytes(pdf, p12, password, &options)?)
}

/// Checks a PDF's signatures against the node's certificate (PEM, as
/// `GET /v1/exports/key` publishes it): every signature valid, made with
/// that certificate, and covering the whole file.
pub fn verify(pdf: &[u8], certificate_pem: &str) -> Result<(), Error> {
    let roots = pdf_signer::TrustStore::from_pem(certificate_pem.as_bytes())?;
    let report = pdf_signer::verify_pdf_bytes_with_roots(pdf, &roots)?;
    if report.signatures.is_empty() {
        return Err(Error::Verify("the PDF carries no signature".into()));
    }
    if let Some(bad) = report.signatures.iter().find(|s| !s.valid) {
        return Err(Error::Verify(format!("a signature is not valid: {}", bad.detail)));
    }
    if !report.document_intact() || report.signatures.iter().any(|s| !s.covers_whole_document) {
        return Err(Error::Verify("the file was changed after it was signed".into()));
    }
    if !report.all_trusted() {
        return Err(Error::Verify("the signature was not made with the node's export key".into()));
    }
    Ok(())
}

fn qr_svg(url: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Data(format!("verify url does not fit a qr code: {e}")))?;
    // One user unit per module; typst scales the image to its box.
    Ok(code.render::<qrcode::render::svg::Color>().module_dimensions(1, 1).quiet_zone(true).build())
}

/// The export's instant as a typst date (for `today`) and date-time (for
/// the PDF's metadata).
fn datetime_of_ms(ms: u64) -> Option<(Datetime, Datetime)> {
    let iso = crate::model::instant_of_ms(ms);
    let n = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<u32>().ok());
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let (y, mo, d, h, mi, s) = (i32::try_from(y).ok()?, mo as u8, d as u8, h as u8, mi as u8, s as u8);
    Some((Datetime::from_ymd(y, mo, d)?, Datetime::from_ymd_hms(y, mo, d, h, mi, s)?))
}

/// `D:YYYYMMDDHHmmSSZ`, a PDF date.
fn pdf_date(ms: u64) -> String {
    let iso = crate::model::instant_of_ms(ms);
    let digits: String = iso.chars().take(19).filter(char::is_ascii_digit).collect();
    format!("D:{digits}Z")
}

fn messages(diagnostics: &[typst::diag::SourceDiagnostic]) -> String {
    diagnostics.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; ")
}

/// A number as a clinician reads it: no float noise (`36.900000000000006`
/// is `36.9`), no trailing `.0`.
pub(crate) fn num(v: f64) -> String {
    let rounded = (v * 1e6).round() / 1e6;
    if rounded == 0.0 {
        // Avoids printing `-0`.
        return "0".into();
    }
    format!("{rounded}")
}

/// A UCUM code as printed on a chart (`mm[Hg]` → `mmHg`, `Cel` → `°C`).
pub(crate) fn unit_label(ucum: &str) -> String {
    match ucum {
        "mm[Hg]" => "mmHg".into(),
        "Cel" => "°C".into(),
        "[degF]" => "°F".into(),
        "[lb_av]" => "lb".into(),
        "[in_i]" => "in".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_without_float_noise() {
        assert_eq!(num(36.6 + 0.3), "36.9");
        assert_eq!(num(500.0), "500");
        assert_eq!(num(-0.0000001), "0");
        assert_eq!(num(0.0004), "0.0004");
    }

    #[test]
    fn dates_of_the_export() {
        assert_eq!(pdf_date(1_796_428_799_999), "D:20261204235959Z");
        let (date, at) = datetime_of_ms(1_796_428_799_999).expect("a valid instant");
        assert_eq!(date, Datetime::from_ymd(2026, 12, 4).expect("a date"));
        assert_eq!(at, Datetime::from_ymd_hms(2026, 12, 4, 23, 59, 59).expect("a date-time"));
    }
}
