//! medanchor's Clarity contracts, as Rust sees them.
//!
//! Owns the contract sources (embedded from `contracts/*.clar`), their names,
//! the vocabulary they share with the rest of the system ([`types`]), their
//! error codes ([`errors`]), the Clarity wire format ([`value`],
//! [`principal`]) and typed decoders for every event they print
//! ([`events`], documented in `contracts/EVENTS.md`).
//!
//! Reading order: [`value`] → [`principal`] → [`types`] → [`errors`] →
//! [`events`].
//!
//! Deliberately absent: the Clarity VM (only `medanchor-devnet` links it) and
//! any IO. The indexer decodes events with this crate without knowing how
//! they were produced.

pub mod errors;
pub mod events;
pub mod hash;
#[cfg(feature = "openapi")]
mod openapi;
pub mod principal;
pub mod schema;
pub mod types;
pub mod value;

pub use errors::ContractError;
pub use events::{decode_print, decode_raw_print, encode_print, ContractEvent};
pub use hash::{BlockHash, DataHash, ParseHashError, RecordId, Txid};
pub use principal::Principal;
pub use value::ClarityValue;

/// The Clarinet devnet deployer, which deploys both contracts on our devnet
/// (`settings/Devnet.toml`).
pub const DEPLOYER_ADDRESS: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";

/// One of medanchor's two contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContractName {
    /// `patient-consent`.
    PatientConsent,
    /// `record-management` (calls patient-consent, so it deploys second).
    RecordManagement,
}

impl ContractName {
    /// Both contracts, in deployment order.
    pub const ALL: [ContractName; 2] = [ContractName::PatientConsent, ContractName::RecordManagement];

    /// The contract name on-chain.
    pub fn name(self) -> &'static str {
        match self {
            ContractName::PatientConsent => "patient-consent",
            ContractName::RecordManagement => "record-management",
        }
    }

    /// The Clarity source.
    pub fn source(self) -> &'static str {
        match self {
            ContractName::PatientConsent => include_str!("../contracts/patient-consent.clar"),
            ContractName::RecordManagement => include_str!("../contracts/record-management.clar"),
        }
    }

    /// The contract with this on-chain name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for ContractName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A malformed Clarity value, address or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a value.
    #[error("input ends inside a value (at byte {0})")]
    UnexpectedEnd(usize),
    /// Bytes remained after the value.
    #[error("{0} bytes after the value")]
    TrailingBytes(usize),
    /// An unknown type prefix.
    #[error("unknown type prefix {prefix:#04x} at byte {at}")]
    UnknownType {
        /// The prefix byte.
        prefix: u8,
        /// Its offset.
        at: usize,
    },
    /// Nesting beyond Clarity's limit.
    #[error("value nested deeper than 32")]
    TooDeep,
    /// A value over Clarity's 1 MiB limit.
    #[error("value of {0} bytes exceeds the 1 MiB limit")]
    TooLarge(usize),
    /// A principal version byte of 32 or more.
    #[error("invalid principal version {0}")]
    InvalidPrincipalVersion(u8),
    /// An invalid contract or field name.
    #[error("invalid contract or field name")]
    InvalidName,
    /// A tuple with a field twice.
    #[error("tuple has a duplicate field")]
    DuplicateField,
    /// A string whose bytes its type does not allow.
    #[error("invalid string contents")]
    InvalidString,
    /// Not hex.
    #[error("invalid hex: {0}")]
    Hex(String),
    /// Not a valid c32check address.
    #[error("invalid Stacks address {0:?}")]
    InvalidAddress(String),
    /// An unknown name for a coded enumeration.
    #[error("unknown {kind} {name:?} (expected one of: {expected})")]
    UnknownName {
        /// Which enumeration.
        kind: &'static str,
        /// What was given.
        name: String,
        /// The accepted names.
        expected: String,
    },
}

/// A `print` value that is not one of our events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The raw value did not decode.
    #[error("raw value: {0}")]
    Codec(CodecError),
    /// The print is not a tuple.
    #[error("print value is not a tuple")]
    NotATuple,
    /// No `event` name.
    #[error("print tuple has no event name")]
    MissingName,
    /// An event name the decoders do not know.
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    /// A schema version the decoders do not read.
    #[error("event {event:?} has schema {schema}, expected 1")]
    UnsupportedSchema {
        /// Event name.
        event: String,
        /// Its schema version.
        schema: u128,
    },
    /// A field is missing.
    #[error("event {event:?} lacks field {field:?}")]
    MissingField {
        /// Event name.
        event: String,
        /// Field name.
        field: &'static str,
    },
    /// A field has the wrong type or an out-of-range value.
    #[error("event {event:?} field {field:?} is not a {expected}")]
    WrongType {
        /// Event name.
        event: String,
        /// Field name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// Fields the decoder does not know.
    #[error("event {event:?} has {fields} fields, the decoder knows {known}")]
    UnexpectedFields {
        /// Event name.
        event: String,
        /// Fields present.
        fields: usize,
        /// Fields read.
        known: usize,
    },
}

#[cfg(test)]
mod tests {
    //! The Rust vocabulary must say exactly what the Clarity sources say.
    use super::*;
    use crate::types::{DataType, RecordType};

    /// `(define-constant NAME VALUE)` pairs of a source.
    fn constants(source: &str) -> Vec<(String, String)> {
        source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("(define-constant "))
            .filter_map(|rest| {
                let (name, value) = rest.split_once(' ')?;
                let value = value.split(";;").next()?.trim().strip_suffix(')')?.trim();
                Some((name.to_string(), value.to_string()))
            })
            .collect()
    }

    #[test]
    fn error_codes_match_the_contracts() {
        let mut from_source: Vec<(u32, String)> = Vec::new();
        for contract in ContractName::ALL {
            for (name, value) in constants(contract.source()) {
                if let Some(code) = value.strip_prefix("(err u").and_then(|v| v.strip_suffix(')')) {
                    let code: u32 = code.parse().expect("numeric error code");
                    // record-management re-declares ERR-PAUSED with patient-consent's code.
                    if !from_source.iter().any(|(c, _)| *c == code) {
                        from_source.push((code, name));
                    }
                }
            }
        }
        from_source.sort();
        let from_rust: Vec<(u32, String)> =
            ContractError::ALL.iter().map(|e| (e.code(), e.constant().to_string())).collect();
        assert_eq!(from_rust, from_source);
    }

    #[test]
    fn limits_match_the_contracts() {
        use crate::types::{MAX_DURATION_BLOCKS, MAX_EMERGENCY_REASON};
        for contract in ContractName::ALL {
            let consts = constants(contract.source());
            let max = consts.iter().find(|(n, _)| n == "MAX-DURATION").map(|(_, v)| v.clone());
            assert_eq!(max, Some(format!("u{MAX_DURATION_BLOCKS}")), "{contract}");
        }
        let consts = constants(ContractName::PatientConsent.source());
        let reason = consts.iter().find(|(n, _)| n == "MAX-EMERGENCY-REASON").map(|(_, v)| v.clone());
        assert_eq!(reason, Some(format!("u{MAX_EMERGENCY_REASON}")));
    }

    #[test]
    fn data_type_codes_match_patient_consent() {
        let consts = constants(ContractName::PatientConsent.source());
        for dt in DataType::ALL {
            let name = format!("DATA-TYPE-{}", dt.name().to_uppercase());
            let value = consts.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
            assert_eq!(value, Some(format!("u{}", dt.code())), "{name}");
        }
    }

    #[test]
    fn record_type_mapping_matches_record_management() {
        let consts = constants(ContractName::RecordManagement.source());
        let list = &consts.iter().find(|(n, _)| n == "RECORD-TYPE-DATA-TYPES").expect("mapping constant").1;
        let codes: Vec<u8> = list
            .trim_start_matches("(list ")
            .trim_end_matches(')')
            .split_whitespace()
            .map(|c| c.trim_start_matches('u').parse().expect("uint"))
            .collect();
        let rust: Vec<u8> = RecordType::ALL.iter().map(|rt| rt.data_type().code()).collect();
        assert_eq!(codes, rust);
    }

    #[test]
    fn every_printed_event_name_has_a_decoder() {
        for (contract, names) in [
            (ContractName::PatientConsent, events::CONSENT_EVENT_NAMES),
            (ContractName::RecordManagement, events::RECORD_EVENT_NAMES),
        ] {
            let source = contract.source();
            let printed: std::collections::BTreeSet<&str> = source
                .split("event: \"")
                .skip(1)
                .chain(source.split("\"record-").skip(1).map(|_| ""))
                .filter_map(|rest| rest.split('"').next())
                .filter(|name| !name.is_empty())
                .collect();
            for name in &printed {
                assert!(names.contains(name), "{contract} prints {name:?}, which has no decoder");
            }
            for name in names {
                assert!(source.contains(&format!("\"{name}\"")), "{contract} never prints {name:?}");
            }
        }
    }
}
