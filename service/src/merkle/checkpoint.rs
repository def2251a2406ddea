//! Signed tree heads: C2SP `tlog-checkpoint` bodies in C2SP `signed-note`
//! envelopes, signed with Ed25519.
//!
//! ```text
//! medanchor.example/audit
//! 8
//! XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
//!
//! — medanchor.example/audit <base64(key id || Ed25519 signature)>
//! ```
//!
//! The format is the one transparency-log witnesses and monitors already
//! speak (<https://c2sp.org/tlog-checkpoint>, <https://c2sp.org/signed-note>),
//! so our checkpoints can be cosigned and audited with existing tools.
//!
//! Parsing is strict where the specifications allow it: the body must be
//! exactly origin, size and root (we never write extension lines, so one is a
//! sign of tampering or of someone else's log), every signature line must be
//! well formed, and nothing may follow the last one. Signature lines from
//! other keys (witness cosignatures) are skipped, as the signed-note
//! specification requires.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::Hash;

/// The signed-note signature type byte of Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// Starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The most signature lines a note may carry. The signed-note specification
/// requires accepting at least 16; a bound keeps a hostile note from making us
/// decode an unbounded number of lines.
pub const MAX_SIGNATURES: usize = 16;

/// A tree head: the log's identity, its size and its root at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, conventionally a schema-less URL such as
    /// `medanchor.example/audit`.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 9162 root hash of the tree of `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn to_note_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root))
    }
}

/// Why a checkpoint could not be signed or a note could not be verified.
///
/// Every variant of [`verify_note`] is the note's fault (a client error);
/// [`sign`]'s variants are the caller's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The key name is empty or contains a space, a control character or `+`.
    #[error("key name {name:?} is empty or contains a space, a control character or '+'")]
    InvalidKeyName {
        /// The rejected name.
        name: String,
    },
    /// The origin is empty or contains a control character (such as a newline).
    #[error("origin {origin:?} is empty or contains a control character")]
    InvalidOrigin {
        /// The rejected origin.
        origin: String,
    },
    /// The note contains an ASCII control character other than newline.
    #[error("note contains control character {character:?} at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the character in the note.
        offset: usize,
        /// The character.
        character: char,
    },
    /// The note does not end with a newline: something follows the last line.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line before its signatures")]
    MissingSeparator,
    /// The blank line is not followed by any signature line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has {count} signature lines, more than the {max} accepted")]
    TooManySignatures {
        /// The number of signature lines.
        count: usize,
        /// [`MAX_SIGNATURES`].
        max: usize,
    },
    /// A line after the blank line is not `— <key name> <base64>`.
    #[error("line {line} is not a signature line")]
    MalformedSignatureLine {
        /// The 1-based line number within the note.
        line: usize,
    },
    /// A signature line's base64 is invalid or too short to hold a key id.
    #[error("the signature on line {line} is not base64 of a key id and a signature")]
    InvalidSignatureEncoding {
        /// The 1-based line number within the note.
        line: usize,
    },
    /// No signature line has the expected key name and key id (wrong key,
    /// wrong name, or not signed by us at all).
    #[error("no signature from key {key_name:?} (id {key_id})")]
    NoSignatureFromKey {
        /// The expected key name.
        key_name: String,
        /// The expected key id, in hex.
        key_id: String,
    },
    /// A signature line names the expected key but does not verify.
    #[error("the signature from key {key_name:?} does not verify")]
    BadSignature {
        /// The expected key name.
        key_name: String,
    },
    /// The signed text is not exactly the three checkpoint lines.
    #[error("checkpoint has {got} lines; exactly 3 (origin, size, root) are accepted")]
    WrongLineCount {
        /// The number of lines in the text.
        got: usize,
    },
    /// The size line is not a canonical decimal `u64`.
    #[error("tree size {line:?} is not a decimal u64 without sign or leading zeros")]
    InvalidSize {
        /// The size line.
        line: String,
    },
    /// The root line is not the canonical base64 of 32 bytes.
    #[error("root hash {line:?} is not the canonical base64 of 32 bytes")]
    InvalidRoot {
        /// The root line.
        line: String,
    },
}

/// The signed-note key id of an Ed25519 key:
/// `SHA-256(key name || 0x0A || 0x01 || public key)[..4]`.
pub fn key_id(key_name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(key_name.as_bytes())
        .chain_update([b'\n', ED25519_TYPE])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Signs `checkpoint` as the full note: its text, a blank line and one
/// signature line for `key_name`.
///
/// Fails only on inputs that would not parse back: an invalid key name or an
/// origin that is empty or holds a control character (a newline in the origin
/// would forge extra lines).
pub fn sign(checkpoint: &Checkpoint, key_name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
    check_key_name(key_name)?;
    let origin = &checkpoint.origin;
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(CheckpointError::InvalidOrigin { origin: origin.clone() });
    }
    Ok(sign_text(&checkpoint.to_note_text(), key_name, key))
}

/// Verifies `note`'s signature by `key` under `key_name` and returns the
/// checkpoint it carries.
///
/// The caller must still check that the origin is the log it expects: the
/// signature only says who signed, not for which log.
pub fn verify_note(note: &str, key_name: &str, key: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
    // The text is parsed only after its signature verifies: the signed-note
    // specification says unverified text must be ignored.
    let text = open(note, key_name, key)?;
    parse_text(text)
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if is_key_name(name) {
        Ok(())
    } else {
        Err(CheckpointError::InvalidKeyName { name: name.to_owned() })
    }
}

/// Key names are non-empty and hold no Unicode space or `+` (signed-note);
/// control characters could not appear in a valid note either.
fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// Signs any note text (which must end in a newline).
fn sign_text(text: &str, key_name: &str, key: &SigningKey) -> String {
    let signature = key.sign(text.as_bytes());
    let mut blob = Vec::with_capacity(4 + Signature::BYTE_SIZE);
    blob.extend_from_slice(&key_id(key_name, &key.verifying_key()));
    blob.extend_from_slice(&signature.to_bytes());
    format!("{text}\n{SIGNATURE_PREFIX}{key_name} {}\n", STANDARD.encode(blob))
}

/// Checks a signed note's envelope and its signature by `key`, returning the
/// signed text (including its final newline).
fn open<'a>(note: &'a str, key_name: &str, key: &VerifyingKey) -> Result<&'a str, CheckpointError> {
    check_key_name(key_name)?;
    if let Some((offset, character)) = note.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        return Err(CheckpointError::ControlCharacter { offset, character });
    }
    if !note.ends_with('\n') {
        return Err(CheckpointError::MissingFinalNewline);
    }
    // The text ends at the last blank line; it keeps its own final newline.
    let separator = note.rfind("\n\n").ok_or(CheckpointError::MissingSeparator)?;
    let (text, signatures) = (&note[..=separator], &note[separator + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(CheckpointError::NoSignatures);
    };
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(CheckpointError::TooManySignatures { count: lines.len(), max: MAX_SIGNATURES });
    }

    let id = key_id(key_name, key);
    // Line numbers for errors: the text's lines, the blank line, then these.
    let first_line = text.matches('\n').count() + 2;
    let mut verified = 0;
    for (line, signature_line) in (first_line..).zip(lines) {
        let (name, encoded) = signature_line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .filter(|(name, _)| is_key_name(name))
            .ok_or(CheckpointError::MalformedSignatureLine { line })?;
        let blob = STANDARD.decode(encoded).map_err(|_| CheckpointError::InvalidSignatureEncoding { line })?;
        let Some((blob_id, signature)) = blob.split_first_chunk::<4>().filter(|(_, sig)| !sig.is_empty()) else {
            return Err(CheckpointError::InvalidSignatureEncoding { line });
        };
        // Another key's signature (a witness, a rotated key): not ours to judge.
        if name != key_name || *blob_id != id {
            continue;
        }
        let bad = || CheckpointError::BadSignature { key_name: key_name.to_owned() };
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        // Strict verification also rejects small-order keys and non-canonical
        // signatures, so one checkpoint has exactly one valid signature per
        // key.
        key.verify_strict(text.as_bytes(), &signature).map_err(|_| bad())?;
        verified += 1;
    }
    if verified == 0 {
        return Err(CheckpointError::NoSignatureFromKey { key_name: key_name.to_owned(), key_id: hex::encode(id) });
    }
    Ok(text)
}

/// Parses a verified note text as exactly origin, size and root.
fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
    let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(text).split('\n').collect();
    let [origin, size, root] = lines[..] else {
        return Err(CheckpointError::WrongLineCount { got: lines.len() });
    };
    if origin.is_empty() {
        return Err(CheckpointError::InvalidOrigin { origin: origin.to_owned() });
    }
    Ok(Checkpoint { origin: origin.to_owned(), size: parse_size(size)?, root: parse_root(root)? })
}

/// Decimal without sign or leading zeros, as tlog-checkpoint requires; Rust's
/// `u64::from_str` alone would also take `+8` and `008`.
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let invalid = || CheckpointError::InvalidSize { line: line.to_owned() };
    let canonical =
        !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(invalid());
    }
    line.parse().map_err(|_| invalid())
}

/// Standard base64 of exactly 32 bytes, canonical: the engine rejects
/// non-zero padding bits and missing or extra padding, so every root has
/// exactly one accepted spelling.
fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let invalid = || CheckpointError::InvalidRoot { line: line.to_owned() };
    let bytes = STANDARD.decode(line).map_err(|_| invalid())?;
    bytes.try_into().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{h, RFC_ROOTS};
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (its package documentation
    // and note_test.go): key "PeterNeumann", whose signer and verifier keys
    // are `PRIVATE+KEY+PeterNeumann+c74f20a3+<GO_SIGNER>` and
    // `PeterNeumann+c74f20a3+<GO_VERIFIER>`, each base64 of the type byte 0x01
    // and the 32-byte Ed25519 seed or public key. Ed25519 is deterministic, so
    // our signer must reproduce the Go note byte for byte.
    const GO_SIGNER: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n\
        \n\
        \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    const NAME: &str = "medanchor.example/audit";

    fn go_key_material(encoded: &str) -> [u8; 32] {
        let bytes = STANDARD.decode(encoded).expect("test base64");
        let (kind, key) = bytes.split_first().expect("non-empty");
        assert_eq!(*kind, ED25519_TYPE);
        key.try_into().expect("32-byte key")
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint { origin: NAME.to_owned(), size: 8, root: h(RFC_ROOTS[8]) }
    }

    /// The test key's note for the test checkpoint.
    fn note() -> String {
        sign(&checkpoint(), NAME, &key(1)).expect("valid checkpoint")
    }

    /// A note signed by the test key over an arbitrary text, to reach the
    /// body parser with texts `sign` would never produce.
    fn signed(text: &str) -> String {
        sign_text(text, NAME, &key(1))
    }

    /// The only caller of `verify_note` in these tests.
    fn check(note: &str, key_name: &str, key: &VerifyingKey, want: Result<Checkpoint, CheckpointError>) {
        assert_eq!(verify_note(note, key_name, key), want, "note:\n{note}");
    }

    fn bad_signature() -> Result<Checkpoint, CheckpointError> {
        Err(CheckpointError::BadSignature { key_name: NAME.to_owned() })
    }

    #[test]
    fn go_sumdb_note_vector() {
        let signer = SigningKey::from_bytes(&go_key_material(GO_SIGNER));
        let verifier = VerifyingKey::from_bytes(&go_key_material(GO_VERIFIER)).expect("valid key");
        assert_eq!(signer.verifying_key(), verifier);
        assert_eq!(hex::encode(key_id("PeterNeumann", &verifier)), "c74f20a3");
        assert_eq!(sign_text(GO_TEXT, "PeterNeumann", &signer), GO_NOTE);
        assert_eq!(open(GO_NOTE, "PeterNeumann", &verifier), Ok(GO_TEXT));
        assert_eq!(
            open(&GO_NOTE.replace("cryptography", "cryptographY"), "PeterNeumann", &verifier),
            Err(CheckpointError::BadSignature { key_name: "PeterNeumann".into() })
        );
        // Correctly signed, but two lines of prose are not a checkpoint.
        check(GO_NOTE, "PeterNeumann", &verifier, Err(CheckpointError::WrongLineCount { got: 2 }));
    }

    #[test]
    fn round_trip() {
        let vk = key(1).verifying_key();
        let empty = Checkpoint { origin: "log".into(), size: 0, root: h(RFC_ROOTS[0]) };
        let largest = Checkpoint { origin: "a/b/c".into(), size: u64::MAX, root: [0xff; 32] };
        for checkpoint in [checkpoint(), empty, largest] {
            let note = sign(&checkpoint, NAME, &key(1)).expect("sign");
            check(&note, NAME, &vk, Ok(checkpoint));
        }
    }

    #[test]
    fn note_layout() {
        let note = note();
        let (text, signature_line) = note.split_once("\n\n").expect("blank line");
        assert_eq!(text, "medanchor.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=");
        let encoded = signature_line.strip_prefix("\u{2014} medanchor.example/audit ").expect("prefix");
        let blob = STANDARD.decode(encoded.strip_suffix('\n').expect("final newline")).expect("base64");
        assert_eq!(blob.len(), 4 + 64);
        assert_eq!(blob[..4], key_id(NAME, &key(1).verifying_key()));
    }

    #[test]
    fn tampering_and_wrong_keys_are_rejected() {
        let (vk, note) = (key(1).verifying_key(), note());
        let other_root = STANDARD.encode(h(RFC_ROOTS[7]));
        let root = STANDARD.encode(h(RFC_ROOTS[8]));
        check(&note.replace("\n8\n", "\n9\n"), NAME, &vk, bad_signature());
        check(&note.replace(&root, &other_root), NAME, &vk, bad_signature());
        check(&note.replacen("medanchor.example/audit\n", "medanchor.example/other\n", 1), NAME, &vk, bad_signature());

        let no_signature = |name: &str, vk: &VerifyingKey| {
            Err(CheckpointError::NoSignatureFromKey {
                key_name: name.to_owned(),
                key_id: hex::encode(key_id(name, vk)),
            })
        };
        let other = key(2).verifying_key();
        check(&note, NAME, &other, no_signature(NAME, &other));
        check(&note, "other.example/log", &vk, no_signature("other.example/log", &vk));

        // Our name and our key id, but another key's signature.
        let forged = sign(&checkpoint(), NAME, &key(2)).expect("sign");
        let (_, forged_blob) = forged.trim_end().rsplit_once(' ').expect("signature");
        let mut blob = STANDARD.decode(forged_blob).expect("base64");
        blob[..4].copy_from_slice(&key_id(NAME, &vk));
        check(&forged.replace(forged_blob, &STANDARD.encode(&blob)), NAME, &vk, bad_signature());
        // Our key id, a truncated signature.
        let (_, blob) = note.trim_end().rsplit_once(' ').expect("signature");
        check(&note.replace(blob, &blob[..blob.len() - 4]), NAME, &vk, bad_signature());
    }

    #[test]
    fn envelope_is_parsed_strictly() {
        use CheckpointError::*;
        let (vk, note) = (key(1).verifying_key(), note());
        let (body, signature_line) = note.split_once("\n\n").expect("blank line");
        let (body, signature_line) = (format!("{body}\n"), signature_line.to_owned());
        let witness = sign(&checkpoint(), "witness.example/w1", &key(3)).expect("sign");
        let (_, witness_line) = witness.split_once("\n\n").expect("blank line");

        let cases: Vec<(&str, String, Result<Checkpoint, CheckpointError>)> = vec![
            // Lines added, removed or moved.
            ("unsigned extension line", format!("{body}extension\n\n{signature_line}"), bad_signature()),
            ("prepended line", format!("garbage\n{note}"), bad_signature()),
            ("prepended blank line", format!("\n{note}"), bad_signature()),
            ("two blank lines", format!("{body}\n\n{signature_line}"), bad_signature()),
            ("no blank line", format!("{body}{signature_line}"), Err(MissingSeparator)),
            ("no signature line", format!("{body}\n"), Err(NoSignatures)),
            ("line after the signature", format!("{note}garbage\n"), Err(MalformedSignatureLine { line: 6 })),
            ("blank line after the signature", format!("{note}\n"), Err(NoSignatures)),
            ("text after the final newline", format!("{note}garbage"), Err(MissingFinalNewline)),
            ("no final newline", note.trim_end().to_owned(), Err(MissingFinalNewline)),
            // Characters that change meaning in other parsers.
            ("CRLF line endings", note.replace('\n', "\r\n"), Err(ControlCharacter { offset: 23, character: '\r' })),
            (
                "tab in the origin",
                note.replacen("audit", "au\tdit", 1),
                Err(ControlCharacter { offset: 20, character: '\t' }),
            ),
            // Signature lines.
            ("ASCII dash", note.replace('\u{2014}', "-"), Err(MalformedSignatureLine { line: 5 })),
            (
                "no signature",
                note.replace(&signature_line, "\u{2014} medanchor.example/audit\n"),
                Err(MalformedSignatureLine { line: 5 }),
            ),
            (
                "key name with '+'",
                note.replace("\u{2014} medanchor", "\u{2014} medanchor+"),
                Err(MalformedSignatureLine { line: 5 }),
            ),
            (
                "bad base64",
                note.replace(" medanchor.example/audit ", " medanchor.example/audit !!"),
                Err(InvalidSignatureEncoding { line: 5 }),
            ),
            (
                "double space",
                note.replace(" medanchor.example/audit ", " medanchor.example/audit  "),
                Err(InvalidSignatureEncoding { line: 5 }),
            ),
            ("key id only", format!("{body}\n\u{2014} {NAME} AAAAAA==\n"), Err(InvalidSignatureEncoding { line: 5 })),
            (
                "too many signatures",
                format!("{body}\n{}", witness_line.repeat(MAX_SIGNATURES) + &signature_line),
                Err(TooManySignatures { count: MAX_SIGNATURES + 1, max: MAX_SIGNATURES }),
            ),
            // Other keys' signatures are skipped, ours may repeat.
            ("witness cosignature after ours", format!("{note}{witness_line}"), Ok(checkpoint())),
            ("witness cosignature before ours", format!("{body}\n{witness_line}{signature_line}"), Ok(checkpoint())),
            ("our signature twice", format!("{note}{signature_line}"), Ok(checkpoint())),
            ("only a witness", witness.clone(), no_signature_from_us(&vk)),
            // Correctly signed texts that are not checkpoints.
            ("signed extension line", signed(&format!("{body}extension\n")), Err(WrongLineCount { got: 4 })),
            ("signed without root", signed("medanchor.example/audit\n8\n"), Err(WrongLineCount { got: 2 })),
            ("signed empty origin", signed(&body.replacen(NAME, "", 1)), Err(InvalidOrigin { origin: String::new() })),
        ];
        for (desc, note, want) in cases {
            assert_eq!(verify_note(&note, NAME, &vk), want, "{desc}:\n{note}");
        }
    }

    fn no_signature_from_us(vk: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
        Err(CheckpointError::NoSignatureFromKey { key_name: NAME.to_owned(), key_id: hex::encode(key_id(NAME, vk)) })
    }

    #[test]
    fn size_and_root_lines_are_canonical() {
        let vk = key(1).verifying_key();
        let root = STANDARD.encode(h(RFC_ROOTS[8]));
        for size in ["08", "+8", "-1", "", " 8", "8 ", "0x8", "1_000", "18446744073709551616", "\u{0668}"] {
            let text = format!("{NAME}\n{size}\n{root}\n");
            let want = Err(CheckpointError::InvalidSize { line: size.to_owned() });
            check(&signed(&text), NAME, &vk, want);
        }
        let zeros = STANDARD.encode([0u8; 32]);
        // Same 32 bytes but with a padding bit set: decodes leniently elsewhere.
        let noncanonical = zeros.replace("A=", "B=");
        let short = STANDARD.encode([0u8; 31]);
        let long = STANDARD.encode([0u8; 33]);
        let unpadded = zeros.trim_end_matches('=').to_owned();
        let url_safe = STANDARD.encode([0xfb; 32]).replace('+', "-").replace('/', "_");
        for root in [noncanonical, short, long, unpadded, url_safe, String::new(), format!("{zeros} ")] {
            let text = format!("{NAME}\n8\n{root}\n");
            check(&signed(&text), NAME, &vk, Err(CheckpointError::InvalidRoot { line: root }));
        }
    }

    #[test]
    fn sign_refuses_what_would_not_parse_back() {
        for name in ["", "has space", "has+plus", "tab\tname", "nbsp\u{a0}name"] {
            let got = sign(&checkpoint(), name, &key(1));
            assert_eq!(got, Err(CheckpointError::InvalidKeyName { name: name.to_owned() }));
            let got = verify_note(&note(), name, &key(1).verifying_key());
            assert_eq!(got, Err(CheckpointError::InvalidKeyName { name: name.to_owned() }));
        }
        for origin in ["", "two\nlines", "cr\r", "nul\0"] {
            let checkpoint = Checkpoint { origin: origin.to_owned(), ..checkpoint() };
            let got = sign(&checkpoint, NAME, &key(1));
            assert_eq!(got, Err(CheckpointError::InvalidOrigin { origin: origin.to_owned() }));
        }
    }
}
