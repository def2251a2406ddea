//! Which attachments are accepted: a file's declared media type, its
//! name's extension and its content signature must all name the same
//! allowed kind. A renamed file of another type, or a file whose bytes are
//! not what it claims, is refused with the precise reason.

use std::fmt;

/// The kinds of file a record may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// PDF.
    Pdf,
    /// JPEG image.
    Jpeg,
    /// PNG image.
    Png,
    /// DICOM (Part 10 file: preamble, then `DICM` at offset 128).
    Dicom,
    /// Word 97–2003 (an OLE compound file with a `WordDocument` stream).
    Doc,
    /// Word 2007+ (a zip with `[Content_Types].xml` and `word/` parts).
    Docx,
}

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 6] =
        [FileKind::Pdf, FileKind::Jpeg, FileKind::Png, FileKind::Dicom, FileKind::Doc, FileKind::Docx];

    /// The media type it is declared as.
    pub fn media_type(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
            FileKind::Dicom => "application/dicom",
            FileKind::Doc => "application/msword",
            FileKind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
    }

    /// The file-name extensions it may have (lower case, no dot).
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileKind::Pdf => &["pdf"],
            FileKind::Jpeg => &["jpg", "jpeg"],
            FileKind::Png => &["png"],
            FileKind::Dicom => &["dcm", "dicom"],
            FileKind::Doc => &["doc"],
            FileKind::Docx => &["docx"],
        }
    }

    /// Whether compressing it usually saves space (text-like formats do;
    /// JPEG and PNG are compressed already).
    pub fn compressible(self) -> bool {
        !matches!(self, FileKind::Jpeg | FileKind::Png)
    }

    /// Whether its signature is in its first 132 bytes (so a resumable
    /// upload can be refused after its first piece); a zip or OLE file's
    /// is in its directory, which may be anywhere.
    pub fn has_leading_signature(self) -> bool {
        matches!(self, FileKind::Pdf | FileKind::Jpeg | FileKind::Png | FileKind::Dicom)
    }

    /// The kind a media type (parameters ignored) declares.
    pub fn from_media_type(media_type: &str) -> Option<FileKind> {
        let m = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        FileKind::ALL.into_iter().find(|k| k.media_type() == m)
    }

    /// What `bytes` are, by their content signature.
    pub fn detect(bytes: &[u8]) -> Option<FileKind> {
        if bytes.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileKind::Jpeg)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(FileKind::Png)
        } else if bytes.get(128..132) == Some(b"DICM") {
            Some(FileKind::Dicom)
        } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            ole_has_stream(bytes, "WordDocument").then_some(FileKind::Doc)
        } else if bytes.starts_with(b"PK\x03\x04") {
            let names = zip_names(bytes)?;
            let has = |p: &dyn Fn(&str) -> bool| names.iter().any(|n| p(n));
            (has(&|n| n == "[Content_Types].xml") && has(&|n| n.starts_with("word/"))).then_some(FileKind::Docx)
        } else {
            None
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// Why a file is refused. Each names what was expected; none echoes more
/// than a bounded piece of the caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The declared media type is not one a record may carry (415).
    #[error("media type {0:?} is not accepted; send one of {accepted}", accepted = accepted())]
    UnsupportedType(String),
    /// The file name's extension does not fit the declared type (400).
    #[error("a {kind} file is named .{expected}, not {got:?}", expected = kind.extensions().join(" or ."))]
    Extension {
        /// The declared kind.
        kind: FileKind,
        /// The name's extension, if any.
        got: String,
    },
    /// The bytes are not what the declared type says (415): a renamed
    /// file of another type, or not a file of any accepted type.
    #[error("the content is {}, not the declared {declared}", detected.map_or_else(|| "of no accepted type".to_string(), |k| k.to_string()))]
    Content {
        /// The declared kind.
        declared: FileKind,
        /// What the bytes are, if anything accepted.
        detected: Option<FileKind>,
    },
}

fn accepted() -> String {
    FileKind::ALL.iter().map(|k| k.media_type()).collect::<Vec<_>>().join(", ")
}

impl Refusal {
    /// The HTTP status that fits: 415 for a type the node does not take
    /// (declared or actual), 400 for a name that contradicts its type.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::UnsupportedType(_) | Refusal::Content { .. } => 415,
            Refusal::Extension { .. } => 400,
        }
    }
}

/// Checks a file: its declared media type, its name and its first bytes
/// (the whole file is not needed: every signature checked here is in the
/// first bytes, or, for a zip, in its central directory — pass the whole
/// file for DOCX).
pub fn check(media_type: &str, file_name: &str, bytes: &[u8]) -> Result<FileKind, Refusal> {
    let declared = check_declared(media_type, file_name)?;
    match FileKind::detect(bytes) {
        Some(k) if k == declared => Ok(k),
        detected => Err(Refusal::Content { declared, detected }),
    }
}

/// Checks what can be checked before the content arrives: the declared
/// media type is accepted and the name's extension fits it.
pub fn check_declared(media_type: &str, file_name: &str) -> Result<FileKind, Refusal> {
    let declared = FileKind::from_media_type(media_type)
        .ok_or_else(|| Refusal::UnsupportedType(media_type.chars().take(100).collect()))?;
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !declared.extensions().contains(&ext.as_str()) {
        return Err(Refusal::Extension { kind: declared, got: ext.chars().take(16).collect() });
    }
    Ok(declared)
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2).map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The entry names of a zip, from its central directory (found from the
/// end-of-central-directory record); None if it is not a well-formed zip.
fn zip_names(b: &[u8]) -> Option<Vec<String>> {
    // The EOCD is 22 bytes plus a comment of at most 64 KiB, at the end.
    let earliest = b.len().saturating_sub(22 + 0xFFFF);
    let eocd = (earliest..=b.len().checked_sub(22)?).rev().find(|&i| b[i..].starts_with(b"PK\x05\x06"))?;
    let entries = u16_at(b, eocd + 10)?;
    let mut at = u32_at(b, eocd + 16)?;
    let mut names = Vec::with_capacity(entries.min(1024));
    for _ in 0..entries.min(10_000) {
        if !b.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let (name_len, extra, comment) = (u16_at(b, at + 28)?, u16_at(b, at + 30)?, u16_at(b, at + 32)?);
        let name = b.get(at + 46..at + 46 + name_len)?;
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra + comment;
    }
    Some(names)
}

/// Whether an OLE compound file's first directory sector names `stream`.
fn ole_has_stream(b: &[u8], stream: &str) -> bool {
    let Some(shift) = u16_at(b, 30) else { return false };
    if !(9..=12).contains(&shift) {
        return false;
    }
    let sector = 1usize << shift;
    let Some(first_dir) = u32_at(b, 48) else { return false };
    let start = (first_dir + 1) * sector;
    let want: Vec<u8> = stream.encode_utf16().flat_map(u16::to_le_bytes).collect();
    (0..sector / 128).any(|i| {
        let entry = start + i * 128;
        match (b.get(entry..entry + 64), u16_at(b, entry + 64)) {
            // The name's length counts its terminating NUL.
            (Some(name), Some(len)) => len == want.len() + 2 && name.starts_with(&want),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf() -> Vec<u8> {
        b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec()
    }

    fn jpeg() -> Vec<u8> {
        vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9]
    }

    fn png() -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        b.extend_from_slice(&[0, 0, 0, 13]);
        b.extend_from_slice(b"IHDR");
        b
    }

    fn dicom() -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(&[2, 0, 0, 0, b'U', b'L', 4, 0]);
        b
    }

    /// A minimal compound file: header (512-byte sectors, directory at
    /// sector 0) and a directory with Root Entry and `stream`.
    fn ole(stream: &str) -> Vec<u8> {
        let mut b = vec![0u8; 512 * 2];
        b[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
        b[30..32].copy_from_slice(&9u16.to_le_bytes());
        b[48..52].copy_from_slice(&0u32.to_le_bytes());
        for (i, name) in ["Root Entry", stream].iter().enumerate() {
            let entry = 512 + i * 128;
            let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            b[entry..entry + utf16.len()].copy_from_slice(&utf16);
            b[entry + 64..entry + 66].copy_from_slice(&((utf16.len() + 2) as u16).to_le_bytes());
        }
        b
    }

    /// A stored (uncompressed) zip of `names`, each with a little content.
    fn zip(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = out.len() as u32;
            let data = b"<x/>";
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            // Extra and comment lengths, disk, internal and external attributes.
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn docx() -> Vec<u8> {
        zip(&["[Content_Types].xml", "_rels/.rels", "word/document.xml"])
    }

    fn sample(kind: FileKind) -> (Vec<u8>, &'static str) {
        match kind {
            FileKind::Pdf => (pdf(), "referral.pdf"),
            FileKind::Jpeg => (jpeg(), "wound.JPG"),
            FileKind::Png => (png(), "ecg.png"),
            FileKind::Dicom => (dicom(), "chest.dcm"),
            FileKind::Doc => (ole("WordDocument"), "letter.doc"),
            FileKind::Docx => (docx(), "letter.docx"),
        }
    }

    #[test]
    fn each_kind_passes_and_every_renamed_file_of_another_kind_is_refused() {
        for kind in FileKind::ALL {
            let (bytes, name) = sample(kind);
            assert_eq!(check(kind.media_type(), name, &bytes), Ok(kind), "{kind}");
            assert_eq!(FileKind::detect(&bytes), Some(kind), "{kind}");
            for other in FileKind::ALL.into_iter().filter(|o| *o != kind) {
                // Another kind's bytes, declared and named as this kind.
                let (theirs, _) = sample(other);
                let got = check(kind.media_type(), name, &theirs);
                assert_eq!(got, Err(Refusal::Content { declared: kind, detected: Some(other) }), "{other} as {kind}");
                assert_eq!(got.map_err(|e| e.status()), Err(415));
            }
        }
    }

    #[test]
    fn refusals_are_precise() {
        // (declared media type, file name, bytes, verdict)
        type Case = (&'static str, &'static str, Vec<u8>, Result<FileKind, Refusal>);
        let cases: &[Case] = &[
            ("application/pdf; charset=binary", "a.PDF", pdf(), Ok(FileKind::Pdf)),
            ("text/plain", "a.txt", b"hello".to_vec(), Err(Refusal::UnsupportedType("text/plain".into()))),
            ("application/pdf", "a.exe", pdf(), Err(Refusal::Extension { kind: FileKind::Pdf, got: "exe".into() })),
            (
                "application/pdf",
                "no-extension",
                pdf(),
                Err(Refusal::Extension { kind: FileKind::Pdf, got: String::new() }),
            ),
            (
                "application/pdf",
                "a.pdf",
                b"MZ\x90\x00".to_vec(),
                Err(Refusal::Content { declared: FileKind::Pdf, detected: None }),
            ),
            // An OLE file that is not a Word document (a spreadsheet).
            (
                "application/msword",
                "a.doc",
                ole("Workbook"),
                Err(Refusal::Content { declared: FileKind::Doc, detected: None }),
            ),
            // A zip that is not a Word document.
            (
                FileKind::Docx.media_type(),
                "a.docx",
                zip(&["[Content_Types].xml", "xl/workbook.xml"]),
                Err(Refusal::Content { declared: FileKind::Docx, detected: None }),
            ),
            // A truncated zip (no central directory).
            (
                FileKind::Docx.media_type(),
                "a.docx",
                docx()[..40].to_vec(),
                Err(Refusal::Content { declared: FileKind::Docx, detected: None }),
            ),
            (
                FileKind::Dicom.media_type(),
                "a.dcm",
                vec![0u8; 100],
                Err(Refusal::Content { declared: FileKind::Dicom, detected: None }),
            ),
        ];
        for (media_type, name, bytes, want) in cases {
            assert_eq!(&check(media_type, name, bytes), want, "{media_type} {name}");
        }
        assert_eq!(check("text/plain", "a.txt", b"").map_err(|e| e.status()), Err(415));
        assert_eq!(check("application/pdf", "a.exe", &pdf()).map_err(|e| e.status()), Err(400));
        let long = "x".repeat(10_000);
        let message = check(&long, "a", b"").expect_err("refused").to_string();
        assert!(message.len() < 600, "bounded: {}", message.len());
    }

    #[test]
    fn only_text_like_kinds_are_compressed() {
        let compressed: Vec<FileKind> = FileKind::ALL.into_iter().filter(|k| k.compressible()).collect();
        assert_eq!(compressed, [FileKind::Pdf, FileKind::Dicom, FileKind::Doc, FileKind::Docx]);
    }
}
