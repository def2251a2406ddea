//! The contracts' `(err uN)` codes: u100–u199 from patient-consent,
//! u200–u299 from record-management. record-management passes consent
//! failures through unchanged, so one code means one condition everywhere.

use std::fmt;

macro_rules! contract_errors {
    ($( $variant:ident = $code:literal, $constant:literal, $message:literal; )+) => {
        /// A failure a contract reports as `(err uN)`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ContractError {
            $(
                #[doc = $message]
                $variant,
            )+
        }

        impl ContractError {
            /// Every error, in code order.
            pub const ALL: &'static [ContractError] = &[$(ContractError::$variant),+];

            /// The `uN` the contract returns.
            pub fn code(self) -> u32 {
                match self { $( ContractError::$variant => $code, )+ }
            }

            /// The constant's name in the Clarity source (`ERR-…`).
            pub fn constant(self) -> &'static str {
                match self { $( ContractError::$variant => $constant, )+ }
            }

            /// What went wrong, for people.
            pub fn message(self) -> &'static str {
                match self { $( ContractError::$variant => $message, )+ }
            }

            /// The error with this code.
            pub fn from_code(code: u128) -> Option<Self> {
                match code { $( $code => Some(ContractError::$variant), )+ _ => None }
            }
        }
    };
}

contract_errors! {
    Unauthorized = 100, "ERR-UNAUTHORIZED", "the caller may not do this";
    PatientNotFound = 101, "ERR-PATIENT-NOT-FOUND", "patient is not registered";
    AlreadyRegistered = 102, "ERR-ALREADY-REGISTERED", "patient is already registered";
    PatientIdTaken = 103, "ERR-PATIENT-ID-TAKEN", "patient id is already registered to another principal";
    InvalidDataType = 104, "ERR-INVALID-DATA-TYPE", "unknown data type";
    InvalidDuration = 105, "ERR-INVALID-DURATION", "duration must be 1 to 5,259,600 burn blocks (100 years)";
    InvalidPrincipal = 106, "ERR-INVALID-PRINCIPAL", "a patient cannot be their own provider";
    NoConsent = 107, "ERR-NO-CONSENT", "no consent for this provider and data type";
    ConsentExpired = 108, "ERR-CONSENT-EXPIRED", "consent has expired";
    ConsentRevoked = 109, "ERR-CONSENT-REVOKED", "consent was revoked";
    Paused = 110, "ERR-PAUSED", "the contracts are paused";
    PatientDeceased = 111, "ERR-PATIENT-DECEASED", "patient is marked deceased";
    EmergencyNotAuthorized = 112, "ERR-EMERGENCY-NOT-AUTHORIZED", "caller is not an authorized emergency responder";
    EmergencyAlreadyActive = 113, "ERR-EMERGENCY-ALREADY-ACTIVE", "an emergency override is already active";
    NoEmergencyOverride = 114, "ERR-NO-EMERGENCY-OVERRIDE", "no emergency override to end";
    EmergencyExpired = 115, "ERR-EMERGENCY-EXPIRED", "the emergency override has expired";
    EnhancedProtection = 116, "ERR-ENHANCED-PROTECTION", "enhanced-protection data is not covered by an emergency override";
    InvalidTimeout = 117, "ERR-INVALID-TIMEOUT", "emergency timeout must be 1 to 4320 burn blocks";
    InvalidReason = 118, "ERR-INVALID-REASON", "emergency reason must be 1 to 255";
    NotPendingOwner = 119, "ERR-NOT-PENDING-OWNER", "caller is not the proposed owner";
    RecordUnauthorized = 200, "ERR-UNAUTHORIZED", "the caller may not do this to records";
    ProviderNotFound = 201, "ERR-PROVIDER-NOT-FOUND", "provider is not registered";
    ProviderExists = 202, "ERR-PROVIDER-EXISTS", "provider is already registered";
    ProviderInactive = 203, "ERR-PROVIDER-INACTIVE", "provider is deactivated";
    InvalidAccessLevel = 204, "ERR-INVALID-ACCESS-LEVEL", "access level must be read, write or admin";
    NoProviderAccess = 205, "ERR-NO-PROVIDER-ACCESS", "the patient has given this provider no access";
    ProviderAccessExpired = 206, "ERR-PROVIDER-ACCESS-EXPIRED", "the provider's access has expired";
    InsufficientAccess = 207, "ERR-INSUFFICIENT-ACCESS", "the provider's access level is too low";
    InvalidRecordType = 208, "ERR-INVALID-RECORD-TYPE", "unknown record type";
    RecordNotFound = 209, "ERR-RECORD-NOT-FOUND", "record not found";
    RecordExists = 210, "ERR-RECORD-EXISTS", "a record with this id exists";
    DuplicateHash = 211, "ERR-DUPLICATE-HASH", "this data hash is already anchored";
    VersionConflict = 212, "ERR-VERSION-CONFLICT", "the record changed since the version the writer read";
    RecordFinalized = 213, "ERR-RECORD-FINALIZED", "the record is finalized";
    RecordNotFinalized = 214, "ERR-RECORD-NOT-FINALIZED", "the record is not finalized";
    RecordNotActive = 215, "ERR-RECORD-NOT-ACTIVE", "the record is archived or purged";
    RetentionActive = 216, "ERR-RETENTION-ACTIVE", "the record's retention period has not ended";
    EmergencyViolation = 217, "ERR-EMERGENCY-VIOLATION", "an emergency override allows only reading and creating records";
    InvalidConfidentiality = 218, "ERR-INVALID-CONFIDENTIALITY", "confidentiality must be 0 to 3";
    InvalidVersion = 219, "ERR-INVALID-VERSION", "no such earlier version";
    RecordInvalidDuration = 220, "ERR-INVALID-DURATION", "duration must be 1 to 5,259,600 burn blocks (100 years)";
    RecordInvalidPrincipal = 221, "ERR-INVALID-PRINCIPAL", "a patient cannot grant access to themself";
    BatchExists = 222, "ERR-BATCH-EXISTS", "this batch root is already anchored";
    InvalidBatch = 223, "ERR-INVALID-BATCH", "leaf count and tree size must be 1 to 2^64-1";
    StaleCheckpoint = 224, "ERR-STALE-CHECKPOINT", "audit checkpoints must grow";
    NotAnchorSubmitter = 225, "ERR-NOT-ANCHOR-SUBMITTER", "only active providers and anchor operators may anchor";
    InvalidRetention = 226, "ERR-INVALID-RETENTION", "retention must be 1 to 5,259,600 burn blocks (100 years)";
    RecordNotPendingOwner = 227, "ERR-NOT-PENDING-OWNER", "caller is not the proposed owner";
    RecordNotArchived = 228, "ERR-RECORD-NOT-ARCHIVED", "only archived records may be purged";
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (err u{})", self.message(), self.code())
    }
}

impl std::error::Error for ContractError {}
