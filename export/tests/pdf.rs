//! The clinician PDF checked with the tools a reader would use: Poppler's
//! `pdftotext`, `pdftoppm`, `pdfsig` and `pdfimages`, `qpdf`, and `zbarimg`
//! for the QR code. A missing tool fails the test: these checks are the
//! point, so they must not be skipped quietly.

use std::path::{Path, PathBuf};
use std::process::Command;

use medanchor_export::model::Export;
use medanchor_export::pdf;
use medanchor_export::sample::sample;
use medanchor_export::sign::ExportKey;

fn key() -> ExportKey {
    ExportKey::from_secret(&[42; 32], "default").expect("a valid secret")
}

/// Renders `export` into `dir/name.pdf`.
fn render(dir: &Path, name: &str, export: &Export) -> PathBuf {
    let bytes = pdf::render(export, &key()).expect("renders");
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, bytes).expect("writes the pdf");
    path
}

/// Runs `tool`: whether it succeeded, its stdout, and its stdout and
/// stderr together (for messages). A missing tool fails the test.
fn run_split(tool: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed (poppler-utils, qpdf, zbar-tools): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, all)
}

/// Runs `tool`: whether it succeeded, and its stdout and stderr together.
fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let (ok, _, all) = run_split(tool, args);
    (ok, all)
}

fn text_of(pdf: &Path) -> String {
    let (ok, text) = run("pdftotext", &["-layout", path(pdf), "-"]);
    assert!(ok, "pdftotext failed: {text}");
    text
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn pdfsig(pdf: &Path) -> String {
    run("pdfsig", &[path(pdf)]).1
}

const VALID: &str = "Signature Validation: Signature is Valid.";

#[test]
fn text_has_the_patient_allergy_diagnosis_and_lab_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let export = sample(12);
    let text = text_of(&render(dir.path(), "sample", &export));
    assert!(text.contains("Ada Lovelace"), "{text}");
    assert!(text.contains("Penicillin"));
    assert!(text.contains("Anaphylaxis"));
    assert!(text.contains("E11.9"));
    let lab = &export.labs[0];
    let value = lab.value.as_f64().expect("a numeric lab value").to_string();
    assert!(
        text.lines().any(|l| l.contains("HbA1c") && l.contains(&value) && l.contains(&lab.date)),
        "no lab row with HbA1c {value} on {}:\n{text}",
        lab.date
    );
    // The allergy box comes before the problems and the records.
    let allergy = text.find("Penicillin").expect("allergy");
    assert!(allergy < text.find("Active problems").expect("problems"));
    assert!(allergy < text.find("Consultation").expect("records"));
    assert!(text.contains(&export.id));
    assert!(text.contains(&export.records[0].data_hash));
}

#[test]
fn qr_code_on_page_one_decodes_to_the_verify_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let export = sample(12);
    let pdf = render(dir.path(), "sample", &export);
    let prefix = dir.path().join("page1");
    let (ok, out) =
        run("pdftoppm", &["-r", "150", "-f", "1", "-l", "1", "-png", "-singlefile", path(&pdf), path(&prefix)]);
    assert!(ok, "pdftoppm failed: {out}");
    let png = dir.path().join("page1.png");
    // stdout only: zbarimg may complain on stderr about D-Bus.
    let (ok, decoded, all) = run_split("zbarimg", &["--raw", "-q", path(&png)]);
    assert!(ok, "zbarimg found no code: {all}");
    assert_eq!(decoded.trim_end_matches('\n'), export.issuer.verify_url);
    // The URL is also printed, for whoever cannot scan.
    assert!(text_of(&pdf).contains(&export.issuer.verify_url));
}

#[test]
fn signature_is_valid_and_breaks_when_a_signed_byte_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let export = sample(12);
    let pdf = render(dir.path(), "sample", &export);
    let report = pdfsig(&pdf);
    assert!(report.contains(VALID), "{report}");
    let bytes = std::fs::read(&pdf).expect("reads");
    let reason = format!("/Reason (medanchor export {})", export.id);
    assert!(find(&bytes, reason.as_bytes()).is_some(), "no {reason} in the signature dictionary");

    // A byte of the original document, far from the signature: the
    // second line's binary comment (`%` and four bytes ≥ 128), which
    // readers skip, so the file still parses and only the digest differs.
    let mut bytes = bytes.clone();
    let second_line = bytes.iter().position(|&b| b == b'\n').expect("a header line") + 1;
    assert_eq!(bytes[second_line], b'%');
    assert!(bytes[second_line + 1] >= 0x80, "expected a binary comment line");
    bytes[second_line + 1] ^= 0x01;
    let tampered = dir.path().join("tampered.pdf");
    std::fs::write(&tampered, &bytes).expect("writes");
    let report = pdfsig(&tampered);
    assert!(report.contains("Signature Validation:"), "the tampered file must still parse: {report}");
    assert!(!report.contains(VALID), "{report}");

    // And a change to the visible content: the patient's name in the
    // (uncompressed) XMP metadata.
    let mut bytes = std::fs::read(&pdf).expect("reads");
    let at = find(&bytes, b"Ada Lovelace").expect("the title is in the metadata");
    bytes[at] = b'E';
    let tampered = dir.path().join("tampered-name.pdf");
    std::fs::write(&tampered, &bytes).expect("writes");
    let report = pdfsig(&tampered);
    assert!(report.contains("Signature Validation:"), "{report}");
    assert!(!report.contains(VALID), "{report}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Path-construction operators (`l`, `c`, `re`) in all content streams,
/// decompressed by qpdf.
fn path_ops(dir: &Path, pdf: &Path) -> usize {
    let qdf = dir.join(format!("{}.qdf", pdf.file_stem().and_then(|s| s.to_str()).expect("a name")));
    let (_, out) = run("qpdf", &["--qdf", "--object-streams=disable", path(pdf), path(&qdf)]);
    let bytes = std::fs::read(&qdf).unwrap_or_else(|e| panic!("qpdf wrote nothing ({e}): {out}"));
    let text = String::from_utf8_lossy(&bytes);
    text.split(['\n', '\r'])
        .filter(|line| line.ends_with(" l") || line.ends_with(" c") || line.ends_with(" re"))
        .count()
}

#[test]
fn vital_sign_charts_are_vector_graphics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let with = sample(12);
    let kinds: std::collections::BTreeSet<_> = with.vitals.iter().map(|v| v.kind).collect();
    let points_per_kind = with.vitals.len() / kinds.len();
    assert!(kinds.len() >= 5 && points_per_kind >= 4, "the sample has a trend per kind");
    let without = Export { vitals: vec![], ..with.clone() };
    let (pdf_with, pdf_without) = (render(dir.path(), "with", &with), render(dir.path(), "without", &without));

    let text = text_of(&pdf_with);
    for kind in &kinds {
        assert!(text.contains(&format!("{} trend", kind.label())), "no chart for {kind:?}:\n{text}");
    }
    assert!(!text_of(&pdf_without).contains("Heart rate trend"));

    // Each chart draws its line with one segment per interval, a dot per
    // point, and its grid: far more path operators than without charts.
    let (ops_with, ops_without) = (path_ops(dir.path(), &pdf_with), path_ops(dir.path(), &pdf_without));
    let at_least = kinds.len() * (2 * points_per_kind - 1);
    assert!(
        ops_with >= ops_without + at_least,
        "charts add {} path operators, expected ≥ {at_least}",
        ops_with - ops_without
    );

    // And nothing is a raster image: neither the charts nor the QR code.
    let (ok, list) = run("pdfimages", &["-list", path(&pdf_with)]);
    assert!(ok, "{list}");
    assert_eq!(list.lines().count(), 2, "pdfimages lists only its header, no image:\n{list}");
}

#[test]
fn hostile_text_prints_literally() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut export = sample(4);
    let name = r#"#panic("x") *]) \ $x$ <b> @ref // /* #let"#;
    export.patient.name = Some(name.into());
    export.allergies[0].substance = r#"#eval("1+1") ]"#.into();
    export.records[0].fields[1].value = "`raw` = _under_ #{\"} \\u{41}".into();
    let pdf = render(dir.path(), "hostile", &export);
    let text = text_of(&pdf);
    assert!(text.contains(name), "name not printed literally:\n{text}");
    assert!(text.contains(r#"#eval("1+1") ]"#));
    assert!(text.contains("`raw` = _under_ #{\"} \\u{41}"));
    assert!(pdfsig(&pdf).contains(VALID));
}

#[test]
fn same_export_same_bytes() {
    let export = sample(6);
    let a = pdf::render(&export, &key()).expect("renders");
    let b = pdf::render(&export, &key()).expect("renders");
    assert!(a == b, "rendering is deterministic");
}

#[test]
fn empty_export_renders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut export = sample(0);
    export.patient = Default::default();
    export.allergies.clear();
    export.alerts.clear();
    export.conditions.clear();
    export.medications.clear();
    export.consents.clear();
    export.scope.withheld = vec!["lab-results".into()];
    let pdf = render(dir.path(), "empty", &export);
    let text = text_of(&pdf);
    assert!(text.contains("None in this export."));
    assert!(text.contains("lab-results"), "withheld types are stated");
    assert!(pdfsig(&pdf).contains(VALID));
}

#[test]
fn a_thousand_records_render_and_sign() {
    let dir = tempfile::tempdir().expect("temp dir");
    let export = sample(1000);
    let started = std::time::Instant::now();
    let pdf = render(dir.path(), "large", &export);
    eprintln!("sample(1000): rendered and signed in {:?}", started.elapsed());
    assert!(pdfsig(&pdf).contains(VALID));
    let (ok, info) = run("pdfinfo", &[path(&pdf)]);
    assert!(ok, "{info}");
    let pages: usize =
        info.lines().find_map(|l| l.strip_prefix("Pages:")).and_then(|n| n.trim().parse().ok()).expect("a page count");
    assert!(pages > 20, "{pages} pages");
}

#[test]
fn verify_accepts_the_nodes_signature_and_refuses_changes_and_other_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = render(dir.path(), "export", &sample(6));
    let bytes = std::fs::read(&pdf).expect("read");
    let certificate = key().certificate_pem();
    pdf::verify(&bytes, &certificate).expect("the node's own signature");
    // Another key's certificate: valid signature, not the node's.
    let other = ExportKey::from_secret(&[7; 32], "default").expect("key");
    assert!(pdf::verify(&bytes, &other.certificate_pem()).is_err(), "another key");
    // A byte changed inside the signed range (the binary comment line).
    let mut changed = bytes.clone();
    changed[12] ^= 0x01;
    assert!(pdf::verify(&changed, &certificate).is_err(), "a changed byte");
    // Bytes appended after the signature: not the signed document.
    let mut appended = bytes.clone();
    appended.extend_from_slice(b"\n% appended\n");
    assert!(pdf::verify(&appended, &certificate).is_err(), "an appended update");
    // A PDF signed by nobody.
    assert!(pdf::verify(b"%PDF-1.7\n%%EOF\n", &certificate).is_err());
}

#[test]
fn a_summary_report_prints_its_preset_problems_and_indicators_signed() {
    use medanchor_export::summary::{build, Preset};
    let dir = tempfile::tempdir().expect("tempdir");
    let e = sample(30);
    let s = build(&e, Preset::Referral, "2026-01-01", "2026-12-31");
    let bytes = pdf::render_summary(&s, &e.issuer, &key()).expect("renders");
    let file = dir.path().join("summary.pdf");
    std::fs::write(&file, &bytes).expect("write");
    let text = text_of(&file);
    for needle in
        ["Referral summary", "Ada Lovelace", "Penicillin", "E11.9", "HbA1c", "Heart rate", "Recent encounters (5)"]
    {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    assert!(pdfsig(&file).contains(VALID), "{}", pdfsig(&file));
    pdf::verify(&bytes, &key().certificate_pem()).expect("verifies");
}
