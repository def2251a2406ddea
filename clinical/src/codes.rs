//! Coded vocabulary: ICD-10-CM diagnosis codes, medication routes and
//! frequencies, allergy severities, lab-result flags.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not an ICD-10-CM code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not 3 to 7 characters (without the dot).
    #[error("an ICD-10-CM code has 3 to 7 characters, e.g. E11.9")]
    Length,
    /// The category (first three characters) is malformed.
    #[error("an ICD-10-CM category is a letter, a digit, then a digit or letter (e.g. E11, C4A)")]
    Category,
    /// A character after the category is not a letter or digit, or the dot
    /// is misplaced.
    #[error("after the category come a dot and 1 to 4 letters or digits (e.g. S72.001A)")]
    Subcategory,
}

/// An ICD-10-CM diagnosis code, in its printed form (`E11.9`): upper case,
/// with the dot after the three-character category.
///
/// The check is structural (the code system's syntax); whether a code is
/// billable in a given year is a question for the CMS tables, which a
/// node must not need the network to answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Icd10Cm(String);

impl Icd10Cm {
    /// The code, e.g. `E11.9`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-character category, e.g. `E11`.
    pub fn category(&self) -> &str {
        &self.0[..3]
    }
}

impl FromStr for Icd10Cm {
    type Err = CodeError;

    /// Takes either case, with or without the dot (`e119`, `E11.9`).
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let s = s.trim();
        let (head, tail) = match s.split_once('.') {
            Some((h, t)) if h.len() == 3 && !t.is_empty() => (h, t),
            Some(_) => return Err(CodeError::Subcategory),
            None => (s.get(..3).ok_or(CodeError::Length)?, s.get(3..).unwrap_or("")),
        };
        if head.len() + tail.len() > 7 || head.len() < 3 {
            return Err(CodeError::Length);
        }
        let h: Vec<char> = head.chars().map(|c| c.to_ascii_uppercase()).collect();
        let category_ok = h.len() == 3
            && h[0].is_ascii_uppercase()
            && h[1].is_ascii_digit()
            && (h[2].is_ascii_digit() || h[2].is_ascii_uppercase());
        if !category_ok {
            return Err(CodeError::Category);
        }
        if !tail.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CodeError::Subcategory);
        }
        let mut code: String = h.into_iter().collect();
        if !tail.is_empty() {
            code.push('.');
            code.push_str(&tail.to_ascii_uppercase());
        }
        Ok(Icd10Cm(code))
    }
}

impl fmt::Display for Icd10Cm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Icd10Cm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Icd10Cm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A closed vocabulary of kebab-case names.
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Its name.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value with this name.
            pub fn from_name(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.name() == s)
            }

            /// Every name, for error messages and forms.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.name()).collect()
            }
        }
    };
}

names! {
    /// How a medication is given.
    Route {
        /// By mouth.
        Oral = "oral",
        /// Under the tongue.
        Sublingual = "sublingual",
        /// Into a vein.
        Intravenous = "intravenous",
        /// Into a muscle.
        Intramuscular = "intramuscular",
        /// Under the skin.
        Subcutaneous = "subcutaneous",
        /// On the skin.
        Topical = "topical",
        /// Through the skin, by patch.
        Transdermal = "transdermal",
        /// Breathed in.
        Inhalation = "inhalation",
        /// Into the nose.
        Nasal = "nasal",
        /// Into the eye.
        Ophthalmic = "ophthalmic",
        /// Into the ear.
        Otic = "otic",
        /// Rectally.
        Rectal = "rectal",
        /// Vaginally.
        Vaginal = "vaginal",
    }
}

names! {
    /// How often a medication is taken.
    Frequency {
        /// A single dose.
        Once = "once",
        /// Once a day.
        Daily = "daily",
        /// Twice a day.
        TwiceDaily = "twice-daily",
        /// Three times a day.
        ThreeTimesDaily = "three-times-daily",
        /// Four times a day.
        FourTimesDaily = "four-times-daily",
        /// Every 4 hours.
        Every4Hours = "every-4-hours",
        /// Every 6 hours.
        Every6Hours = "every-6-hours",
        /// Every 8 hours.
        Every8Hours = "every-8-hours",
        /// Every 12 hours.
        Every12Hours = "every-12-hours",
        /// At bedtime.
        AtBedtime = "at-bedtime",
        /// Once a week.
        Weekly = "weekly",
        /// Once a month.
        Monthly = "monthly",
        /// As needed.
        AsNeeded = "as-needed",
    }
}

names! {
    /// How severe an allergic reaction is.
    Severity {
        /// Mild.
        Mild = "mild",
        /// Moderate.
        Moderate = "moderate",
        /// Severe.
        Severe = "severe",
        /// Life-threatening (anaphylaxis).
        LifeThreatening = "life-threatening",
    }
}

names! {
    /// A lab result against its reference range.
    LabFlag {
        /// Within range.
        Normal = "normal",
        /// Below range.
        Low = "low",
        /// Above range.
        High = "high",
        /// Critically out of range.
        Critical = "critical",
        /// Not interpretable against a range.
        Abnormal = "abnormal",
    }
}

/// Whether `s` is a LOINC code's syntax: 1 to 7 digits, a hyphen, and the
/// mod-10 check digit, which must match (e.g. `2345-7`).
pub fn is_loinc(s: &str) -> bool {
    let Some((body, check)) = s.split_once('-') else { return false };
    if body.is_empty() || body.len() > 7 || check.len() != 1 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(check) = check.chars().next().and_then(|c| c.to_digit(10)) else { return false };
    // LOINC's check digit is the Luhn (mod 10) digit of the body.
    let mut sum = 0;
    for (i, d) in body.bytes().rev().map(|b| u32::from(b - b'0')).enumerate() {
        sum += if i % 2 == 0 {
            let twice = d * 2;
            twice / 10 + twice % 10
        } else {
            d
        };
    }
    (10 - sum % 10) % 10 == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10cm_codes_parse_to_one_printed_form() {
        let cases: &[(&str, Result<&str, CodeError>)] = &[
            ("E11.9", Ok("E11.9")),
            ("e119", Ok("E11.9")),
            ("I10", Ok("I10")),
            ("C4A.0", Ok("C4A.0")),
            ("S72.001A", Ok("S72.001A")),
            ("T81.4XXA", Ok("T81.4XXA")),
            ("U07.1", Ok("U07.1")),
            (" j45.909 ", Ok("J45.909")),
            ("E1", Err(CodeError::Length)),
            ("", Err(CodeError::Length)),
            ("S72.001AB", Err(CodeError::Length)),
            ("1E1.9", Err(CodeError::Category)),
            ("EE1.9", Err(CodeError::Category)),
            ("E11.", Err(CodeError::Subcategory)),
            ("E1.19", Err(CodeError::Subcategory)),
            ("E11.9-", Err(CodeError::Subcategory)),
            ("E11 9", Err(CodeError::Subcategory)),
        ];
        for (input, want) in cases {
            let got = input.parse::<Icd10Cm>().map(|c| c.to_string());
            assert_eq!(got.as_deref().map_err(Clone::clone), want.clone(), "{input:?}");
        }
        assert_eq!("S72.001A".parse::<Icd10Cm>().map(|c| c.category().to_string()), Ok("S72".into()));
    }

    #[test]
    fn loinc_check_digits_are_verified() {
        for ok in ["2345-7", "4548-4", "718-7", "2160-0", "8867-4"] {
            assert!(is_loinc(ok), "{ok}");
        }
        for bad in ["2345-6", "2345", "-7", "23a5-7", "12345678-1", "2345-77"] {
            assert!(!is_loinc(bad), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for r in Route::ALL {
            assert_eq!(Route::from_name(r.name()), Some(*r));
        }
        assert_eq!(Severity::from_name("fatal"), None);
        assert_eq!(Frequency::names().len(), Frequency::ALL.len());
    }
}
