//! A provider's credential document: what a patient reads before granting
//! consent, what an admin verifies, and what the chain commits to.
//!
//! The document is typed ([`Credential`]); [`Credential::parse`] checks it
//! and answers the normal form or every failing field by its path (the
//! same [`FieldError`] records use). Its [`Credential::canonical`] bytes —
//! the normal form as compact JSON, fields in declaration order — are what
//! the SHA-256 commitment on-chain covers, so anyone holding the bytes the
//! API serves can recompute the hash and compare it with the contract's
//! `get-provider` without trusting the node.
//!
//! [`Credential::expired`] names the dated items (the licence and each
//! certification) past their expiry on a given day: the node's expiry job
//! uses it to move a verified credential to `expired`.
//!
//! Deliberately absent: who may write or verify (the service decides),
//! the verification state (the service keeps it per version) and chain
//! transactions.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::template::{is_email, is_phone, parse_date, FieldError, Problem};

/// Longest short text (names, numbers, institutions).
pub const SHORT: usize = 200;
/// Most entries in one list.
pub const MAX_ENTRIES: usize = 50;
/// Largest photo, decoded.
pub const MAX_PHOTO_BYTES: usize = 256 * 1024;
/// Largest credential document, as sent.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// A provider's credentials, in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credential {
    /// The full name the licence is issued to.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// The licence to practise.
    pub license: License,
    /// Specializations (e.g. "Cardiology").
    #[serde(default)]
    pub specializations: Vec<String>,
    /// Board certifications and the like, each with its expiry.
    #[serde(default)]
    pub certifications: Vec<Certification>,
    /// The medical school.
    #[serde(default)]
    pub medical_school: Option<Education>,
    /// The residency.
    #[serde(default)]
    pub residency: Option<Education>,
    /// Years in practice.
    #[serde(default)]
    pub years_of_experience: Option<u8>,
    /// Areas of expertise.
    #[serde(default)]
    pub expertise: Vec<String>,
    /// Hospital affiliations and departments.
    #[serde(default)]
    pub affiliations: Vec<Affiliation>,
    /// A photo (PNG or JPEG).
    #[serde(default)]
    pub photo: Option<Photo>,
    /// How patients reach the provider's practice.
    #[serde(default)]
    pub contact: Option<Contact>,
}

/// A licence to practise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct License {
    /// The licence number.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub number: String,
    /// Who issued it (a state board, a national register).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub issuer: String,
    /// The last day it is valid (`YYYY-MM-DD`), if it expires.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    #[serde(default)]
    pub expires: Option<String>,
}

/// A certification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certification {
    /// What it certifies.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// Who issued it.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub issuer: String,
    /// The last day it is valid (`YYYY-MM-DD`).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub expires: String,
}

/// A school or a training programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Education {
    /// The institution.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub institution: String,
    /// The year completed.
    #[serde(default)]
    pub year: Option<u16>,
}

/// A hospital affiliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Affiliation {
    /// The hospital.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub hospital: String,
    /// The department, if any.
    #[serde(default)]
    pub department: Option<String>,
}

/// A photo, inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Photo {
    /// `image/png` or `image/jpeg`, matching the bytes.
    pub media_type: String,
    /// The image, standard base64.
    pub data: String,
}

/// Contact details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// An e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// A phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

impl Credential {
    /// Parses and checks a document: the normal form (text trimmed, lists
    /// without blank or repeated entries) or every failing field.
    pub fn parse(bytes: &[u8]) -> Result<Credential, Vec<FieldError>> {
        let one = |path: &str, problem| vec![FieldError { path: path.into(), problem }];
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(one("", Problem::TooLong(MAX_DOCUMENT_BYTES)));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|_| one("", Problem::Type("a JSON object")))?;
        // serde names only the first problem and in its own words; the
        // shape check goes first so its message names the field.
        let mut c: Credential = serde_json::from_value(value).map_err(|e| one("", Problem::Shape(e.to_string())))?;
        let mut errors = Vec::new();
        let mut text = |s: &mut String, path: &str, required: bool| {
            *s = s.trim().to_string();
            if required && s.is_empty() {
                errors.push(FieldError { path: path.into(), problem: Problem::Required });
            } else if s.chars().count() > SHORT {
                errors.push(FieldError { path: path.into(), problem: Problem::TooLong(SHORT) });
            }
        };
        text(&mut c.name, "name", true);
        text(&mut c.license.number, "license.number", true);
        text(&mut c.license.issuer, "license.issuer", true);
        for (i, cert) in c.certifications.iter_mut().enumerate() {
            text(&mut cert.name, &format!("certifications[{i}].name"), true);
            text(&mut cert.issuer, &format!("certifications[{i}].issuer"), true);
        }
        for (field, e) in [("medical_school", &mut c.medical_school), ("residency", &mut c.residency)] {
            if let Some(e) = e {
                text(&mut e.institution, &format!("{field}.institution"), true);
            }
        }
        for (i, a) in c.affiliations.iter_mut().enumerate() {
            text(&mut a.hospital, &format!("affiliations[{i}].hospital"), true);
            if let Some(d) = &mut a.department {
                text(d, &format!("affiliations[{i}].department"), false);
            }
        }
        for (field, list) in [("specializations", &mut c.specializations), ("expertise", &mut c.expertise)] {
            let mut seen = Vec::new();
            for (i, s) in list.iter_mut().enumerate() {
                text(s, &format!("{field}[{i}]"), false);
                if !s.is_empty() && !seen.iter().any(|t: &String| t.eq_ignore_ascii_case(s)) {
                    seen.push(s.clone());
                }
            }
            *list = seen;
        }
        let counts = [
            ("specializations", c.specializations.len()),
            ("certifications", c.certifications.len()),
            ("expertise", c.expertise.len()),
            ("affiliations", c.affiliations.len()),
        ];
        for (field, n) in counts {
            if n > MAX_ENTRIES {
                errors.push(FieldError { path: field.into(), problem: Problem::TooMany(MAX_ENTRIES) });
            }
        }
        let mut date = |s: &mut String, path: String| {
            *s = s.trim().to_string();
            if parse_date(s).is_none() {
                errors.push(FieldError { path, problem: Problem::Date });
            }
        };
        if let Some(e) = &mut c.license.expires {
            date(e, "license.expires".into());
        }
        for (i, cert) in c.certifications.iter_mut().enumerate() {
            date(&mut cert.expires, format!("certifications[{i}].expires"));
        }
        for (field, e) in [("medical_school", &c.medical_school), ("residency", &c.residency)] {
            if let Some(year) = e.as_ref().and_then(|e| e.year) {
                if !(1900..=2200).contains(&year) {
                    errors.push(FieldError { path: format!("{field}.year"), problem: Problem::Range(1900, 2200) });
                }
            }
        }
        if c.years_of_experience.is_some_and(|y| y > 80) {
            errors.push(FieldError { path: "years_of_experience".into(), problem: Problem::Range(0, 80) });
        }
        if let Some(contact) = &mut c.contact {
            if let Some(email) = &mut contact.email {
                *email = email.trim().to_string();
                if !is_email(email) {
                    errors.push(FieldError { path: "contact.email".into(), problem: Problem::Email });
                }
            }
            if let Some(phone) = &mut contact.phone {
                *phone = phone.trim().to_string();
                if !is_phone(phone) {
                    errors.push(FieldError { path: "contact.phone".into(), problem: Problem::Phone });
                }
            }
        }
        if let Some(photo) = &c.photo {
            if let Err(problem) = photo.check() {
                errors.push(FieldError { path: "photo".into(), problem });
            }
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }

    /// The bytes the on-chain commitment covers: the normal form as
    /// compact JSON, fields in declaration order.
    pub fn canonical(&self) -> Vec<u8> {
        // A struct of strings, numbers, options and vectors: serializing
        // cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The dated items past their last valid day on `today` (`licence`,
    /// `certifications[i]`), in document order.
    pub fn expired(&self, today: (i32, u32, u32)) -> Vec<String> {
        let past = |d: &str| parse_date(d).is_some_and(|d| d < today);
        let mut out = Vec::new();
        if self.license.expires.as_deref().is_some_and(past) {
            out.push("license".to_string());
        }
        for (i, c) in self.certifications.iter().enumerate() {
            if past(&c.expires) {
                out.push(format!("certifications[{i}]"));
            }
        }
        out
    }
}

impl Photo {
    fn check(&self) -> Result<(), Problem> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.data.as_bytes())
            .map_err(|_| Problem::Type("base64 image data"))?;
        if bytes.len() > MAX_PHOTO_BYTES {
            return Err(Problem::TooLong(MAX_PHOTO_BYTES));
        }
        let png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
        let jpeg = bytes.starts_with(&[0xff, 0xd8, 0xff]);
        match self.media_type.as_str() {
            "image/png" if png => Ok(()),
            "image/jpeg" if jpeg => Ok(()),
            "image/png" | "image/jpeg" => Err(Problem::Type("an image whose bytes match its media type")),
            _ => Err(Problem::NotOneOf(vec!["image/png".into(), "image/jpeg".into()])),
        }
    }
}

/// The civil date (proleptic Gregorian, UTC) of a unix time in
/// milliseconds: the day expiry is judged on.
pub fn utc_date(unix_ms: u64) -> (i32, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix_ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}
