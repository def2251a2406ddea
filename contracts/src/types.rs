//! The contracts' vocabulary: data types, record types, access levels and
//! the other small enumerations, with the codes the contracts use and the
//! names the CLI and the API use.

use std::fmt;
use std::str::FromStr;

use crate::CodecError;

/// Defines a `u8`-coded enumeration with stable kebab-case names.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $text:literal; )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code the contracts use.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The value with this contract code.
            pub fn from_code(code: u128) -> Option<Self> {
                match code {
                    $( $code => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The stable name used by the CLI and the API.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = CodecError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s || s.parse::<u128>().ok() == Some(u128::from(v.code())))
                    .ok_or_else(|| CodecError::UnknownName {
                        kind: stringify!($name),
                        name: s.to_string(),
                        expected: Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
                    })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        // The API document's schema: exactly the names above, so the
        // document cannot drift from the contracts.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::names_schema(
                    concat!("The contracts' ", stringify!($name), " names"),
                    Self::ALL.iter().map(|v| v.name()),
                )
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(concat!(stringify!($name), "Name"))
            }
        }
    };
}

coded_enum! {
    /// The consent data types of patient-consent. `AllStandard` is the
    /// broad grant: every type except the enhanced-protection ones.
    DataType {
        /// Broad grant over all standard (non-enhanced) types.
        AllStandard = 0, "all-standard";
        /// Demographics and contact details.
        BasicInfo = 1, "basic-info";
        /// Diagnoses, procedures.
        MedicalHistory = 2, "medical-history";
        /// Tests and imaging.
        LabResults = 3, "lab-results";
        /// Medications and care plans.
        TreatmentPlans = 4, "treatment-plans";
        /// Psychological data (enhanced protection).
        MentalHealth = 5, "mental-health";
        /// Genetic testing (enhanced protection).
        Genetic = 6, "genetic";
        /// Billing and insurance.
        Financial = 7, "financial";
        /// Emergency contacts and medical alerts.
        EmergencyContacts = 8, "emergency-contacts";
    }
}

impl DataType {
    /// Mental health and genetic data: never covered by a broad grant, and
    /// by an emergency override only where the patient allows it.
    pub fn is_enhanced(self) -> bool {
        matches!(self, DataType::MentalHealth | DataType::Genetic)
    }

    /// Whether a grant for `self` allows access to `requested`.
    pub fn covers(self, requested: DataType) -> bool {
        self == requested
            || (self == DataType::AllStandard && requested != DataType::AllStandard && !requested.is_enhanced())
    }
}

coded_enum! {
    /// The 13 record types of record-management.
    RecordType {
        /// Demographic basics.
        BasicInfo = 1, "basic-info";
        /// Vital signs.
        Vitals = 2, "vitals";
        /// Diagnoses.
        Diagnosis = 3, "diagnosis";
        /// Medications.
        Medications = 4, "medications";
        /// Laboratory results.
        LabResults = 5, "lab-results";
        /// Imaging studies.
        Imaging = 6, "imaging";
        /// Procedures.
        Procedures = 7, "procedures";
        /// Allergies.
        Allergies = 8, "allergies";
        /// Immunizations.
        Immunizations = 9, "immunizations";
        /// Mental health notes.
        MentalHealth = 10, "mental-health";
        /// Genetic data.
        GeneticData = 11, "genetic-data";
        /// Insurance.
        Insurance = 12, "insurance";
        /// Emergency contacts.
        EmergencyContacts = 13, "emergency-contacts";
    }
}

impl RecordType {
    /// The consent data type a record of this type falls under — the same
    /// table as `RECORD-TYPE-DATA-TYPES` in record-management.
    pub fn data_type(self) -> DataType {
        match self {
            RecordType::BasicInfo => DataType::BasicInfo,
            RecordType::Vitals
            | RecordType::Diagnosis
            | RecordType::Procedures
            | RecordType::Allergies
            | RecordType::Immunizations => DataType::MedicalHistory,
            RecordType::Medications => DataType::TreatmentPlans,
            RecordType::LabResults | RecordType::Imaging => DataType::LabResults,
            RecordType::MentalHealth => DataType::MentalHealth,
            RecordType::GeneticData => DataType::Genetic,
            RecordType::Insurance => DataType::Financial,
            RecordType::EmergencyContacts => DataType::EmergencyContacts,
        }
    }
}

coded_enum! {
    /// Access levels of record-management. `Emergency` is never granted; it
    /// is the level of a provider acting under an emergency override.
    AccessLevel {
        /// Read records.
        Read = 0, "read";
        /// Read, create, update, roll back and finalize records.
        Write = 1, "write";
        /// Write, plus archive and unlock.
        Admin = 2, "admin";
        /// Read and create under an active emergency override.
        Emergency = 3, "emergency";
    }
}

coded_enum! {
    /// How an access was allowed (`check-consent`'s `ok` value).
    AccessMethod {
        /// The patient acting on their own data.
        SelfAccess = 0, "self";
        /// A consent the patient granted.
        Consent = 1, "consent";
        /// An active emergency override.
        Emergency = 2, "emergency";
    }
}

coded_enum! {
    /// Record status.
    RecordStatus {
        /// Current and writable.
        Active = 1, "active";
        /// Archived: kept, no longer written.
        Archived = 2, "archived";
        /// Retention over: the off-chain ciphertext may be deleted.
        Purged = 3, "purged";
    }
}

coded_enum! {
    /// How a record version came to be.
    ChangeKind {
        /// The first version.
        Created = 1, "created";
        /// A new hash from `update-record`.
        Updated = 2, "updated";
        /// An earlier version's hash made current again.
        RolledBack = 3, "rolled-back";
    }
}

coded_enum! {
    /// Actions in a patient's consent history.
    HistoryAction {
        /// The patient registered (always seq 0).
        Registered = 1, "registered";
        /// A consent was granted.
        Granted = 2, "granted";
        /// A consent was revoked.
        Revoked = 3, "revoked";
        /// An emergency override started.
        EmergencyStarted = 4, "emergency-started";
        /// An emergency override was ended.
        EmergencyEnded = 5, "emergency-ended";
        /// Preferences changed.
        PreferencesUpdated = 6, "preferences-updated";
        /// Deceased status was set or cleared.
        DeceasedSet = 7, "deceased-set";
    }
}

/// Burn blocks per hour: one Bitcoin block every ~10 minutes.
pub const BURN_BLOCKS_PER_HOUR: u64 = 6;
/// Burn blocks per day.
pub const BURN_BLOCKS_PER_DAY: u64 = 24 * BURN_BLOCKS_PER_HOUR;
/// Longest consent or provider-access duration the contracts accept
/// (`MAX-DURATION`): 100 years of 365.25 days.
pub const MAX_DURATION_BLOCKS: u64 = 100 * 36525 * BURN_BLOCKS_PER_DAY / 100;
/// Largest emergency reason code (`MAX-EMERGENCY-REASON`); codes are 1 to this.
pub const MAX_EMERGENCY_REASON: u8 = 255;
/// Default emergency-override timeout: 72 hours.
pub const DEFAULT_EMERGENCY_TIMEOUT_BLOCKS: u64 = 72 * BURN_BLOCKS_PER_HOUR;
/// Default record retention: 30 years of 365.25 days.
pub const DEFAULT_RETENTION_BLOCKS: u64 = 30 * 36525 * 24 * BURN_BLOCKS_PER_HOUR / 100;

/// Converts a wall-clock duration to burn blocks, rounding up so a consent
/// never ends before the time the patient chose.
pub fn seconds_to_burn_blocks(seconds: u64, seconds_per_block: u64) -> u64 {
    seconds.div_ceil(seconds_per_block.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for dt in DataType::ALL {
            assert_eq!(dt.name().parse::<DataType>().expect("name"), *dt);
            assert_eq!(DataType::from_code(u128::from(dt.code())), Some(*dt));
        }
        for rt in RecordType::ALL {
            assert_eq!(rt.name().parse::<RecordType>().expect("name"), *rt);
        }
        assert_eq!("5".parse::<DataType>().expect("code"), DataType::MentalHealth);
        assert!("mental".parse::<DataType>().is_err());
    }

    #[test]
    fn broad_grant_never_covers_enhanced_types() {
        for requested in DataType::ALL.iter().copied().filter(|d| *d != DataType::AllStandard) {
            assert_eq!(DataType::AllStandard.covers(requested), !requested.is_enhanced(), "{requested}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(DEFAULT_EMERGENCY_TIMEOUT_BLOCKS, 432);
        assert_eq!(DEFAULT_RETENTION_BLOCKS, 1_577_880);
        assert_eq!(BURN_BLOCKS_PER_DAY, 144);
        assert_eq!(MAX_DURATION_BLOCKS, 5_259_600);
        assert_eq!(seconds_to_burn_blocks(3600, 600), 6);
        assert_eq!(seconds_to_burn_blocks(3601, 600), 7);
    }
}
