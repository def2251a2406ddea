//! Typed contract calls: one constructor per public function the wallet
//! offers, taking the contracts' vocabulary ([`DataType`], [`AccessLevel`],
//! [`RecordType`]) and validated durations, so that everything the
//! contracts would reject for its shape is rejected here, before anything
//! is signed. What only the chain can decide (is the patient registered?)
//! comes back as the transaction's `(err uN)`.

use std::path::Path;

use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::stacks_common::types::chainstate::StacksAddress;
use clarity_repl::clarity::stacks_common::util::hash::Hash160;
use clarity_repl::clarity::vm::Value;
use medanchor_contracts::principal::StandardPrincipal;
use medanchor_contracts::types::{
    AccessLevel, DataType, RecordType, BURN_BLOCKS_PER_DAY, BURN_BLOCKS_PER_HOUR, MAX_DURATION_BLOCKS,
    MAX_EMERGENCY_REASON,
};
use medanchor_contracts::{ClarityValue, ContractName, Principal};
use sha2::{Digest, Sha256};

use crate::txbuild::Payload;
use crate::{Error, Result};

/// Highest record confidentiality level (`MAX-CONFIDENTIALITY`).
pub const MAX_CONFIDENTIALITY: u8 = 3;

/// How long a consent or provider access lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantDuration {
    /// Until revoked (`none` on-chain).
    UntilRevoked,
    /// This many burn blocks from the block the grant is mined in;
    /// always 1 to [`MAX_DURATION_BLOCKS`].
    Blocks(u64),
}

impl GrantDuration {
    /// A duration in burn blocks, checked against the contracts' limits.
    pub fn blocks(blocks: u64) -> Result<Self> {
        if blocks == 0 {
            return Err(Error::Invalid(
                "a duration of zero is rejected by the contracts; use at least 1h (6 burn blocks), or `none` for until revoked".into(),
            ));
        }
        if blocks > MAX_DURATION_BLOCKS {
            return Err(Error::Invalid(format!(
                "a duration of {blocks} burn blocks exceeds the contracts' maximum of {MAX_DURATION_BLOCKS} (100 years)"
            )));
        }
        Ok(GrantDuration::Blocks(blocks))
    }

    /// The `(optional uint)` argument.
    pub fn to_value(self) -> ClarityValue {
        match self {
            GrantDuration::UntilRevoked => ClarityValue::none(),
            GrantDuration::Blocks(b) => ClarityValue::some(ClarityValue::UInt(u128::from(b))),
        }
    }
}

impl std::str::FromStr for GrantDuration {
    type Err = Error;

    /// `none` (until revoked), or a whole number with a unit: `h` hours
    /// (6 burn blocks each, as the contracts count), `d` days (144), `b`
    /// burn blocks. `48h`, `30d`, `12b`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(GrantDuration::UntilRevoked);
        }
        let syntax = || {
            Error::Invalid(format!(
                "invalid duration {s:?}: use a whole number with h (hours), d (days) or b (burn blocks), e.g. 48h or 30d, or `none` for until revoked"
            ))
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(syntax)?;
        let (number, unit) = s.split_at(split);
        let per_unit = match unit {
            "h" => BURN_BLOCKS_PER_HOUR,
            "d" => BURN_BLOCKS_PER_DAY,
            "b" => 1,
            _ => return Err(syntax()),
        };
        if number.is_empty() {
            return Err(syntax());
        }
        // A number too large for u64 is certainly above the maximum.
        let blocks = number.parse::<u64>().ok().and_then(|n| n.checked_mul(per_unit)).unwrap_or(u64::MAX);
        GrantDuration::blocks(blocks).map_err(|e| Error::Invalid(format!("duration {s:?}: {e}")))
    }
}

/// A data type by name (`lab-results`, `mental-health`, … or code), with
/// `all` for the broad grant `all-standard`.
pub fn parse_data_type(s: &str) -> Result<DataType> {
    if s == "all" {
        return Ok(DataType::AllStandard);
    }
    s.parse().map_err(|e| Error::Invalid(format!("data type: {e} (or `all`)")))
}

/// An access level a patient can grant: `read`, `write` or `admin`.
pub fn parse_access_level(s: &str) -> Result<AccessLevel> {
    match s.parse::<AccessLevel>() {
        Ok(AccessLevel::Emergency) => {
            Err(Error::Invalid("the emergency level is never granted; use read, write or admin".into()))
        }
        Ok(level) => Ok(level),
        Err(e) => Err(Error::Invalid(format!("access level: {e}"))),
    }
}

/// A record type by name (`lab-results`, `imaging`, …) or code.
pub fn parse_record_type(s: &str) -> Result<RecordType> {
    s.parse().map_err(|e| Error::Invalid(format!("record type: {e}")))
}

/// A principal (`ST…` or `ST….contract`).
pub fn parse_principal(s: &str) -> Result<Principal> {
    s.trim().parse().map_err(|e| Error::Invalid(format!("principal: {e}")))
}

fn parse_bytes<const N: usize>(s: &str, what: &str) -> Result<[u8; N]> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x"))
        .map_err(|_| Error::Invalid(format!("{what} must be {N} bytes of hex")))?;
    bytes.try_into().map_err(|b: Vec<u8>| Error::Invalid(format!("{what} must be {N} bytes of hex, not {}", b.len())))
}

/// A 32-byte hash (or patient id, or key id) from hex.
pub fn parse_hash32(s: &str, what: &str) -> Result<[u8; 32]> {
    parse_bytes(s, what)
}

/// A 16-byte record id from hex.
pub fn parse_record_id(s: &str) -> Result<[u8; 16]> {
    parse_bytes(s, "record id")
}

/// 16 random bytes: a fresh record id.
pub fn new_record_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    id
}

/// 32 random bytes: a fresh opaque patient id.
pub fn new_patient_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    id
}

/// SHA-256 of a file's bytes (the record anchor of its ciphertext).
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::Invalid(format!("reading {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::Invalid(format!("reading {}: {e}", path.display())))?;
    Ok(hasher.finalize().into())
}

/// A call of a public function of one of our contracts.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractCall {
    /// The contract.
    pub contract: ContractName,
    /// The function.
    pub function: &'static str,
    /// Its arguments.
    pub args: Vec<ClarityValue>,
}

fn principal(p: &Principal) -> ClarityValue {
    ClarityValue::Principal(p.clone())
}

fn optional<T>(v: Option<T>, f: impl FnOnce(T) -> ClarityValue) -> ClarityValue {
    v.map_or_else(ClarityValue::none, |v| ClarityValue::some(f(v)))
}

impl ContractCall {
    fn new(contract: ContractName, function: &'static str, args: Vec<ClarityValue>) -> Self {
        ContractCall { contract, function, args }
    }

    /// `patient-consent.register-patient`: the caller becomes a patient.
    pub fn register_patient(
        patient_id: [u8; 32],
        emergency_contact: Option<&Principal>,
        primary_physician: Option<&Principal>,
    ) -> Self {
        Self::new(
            ContractName::PatientConsent,
            "register-patient",
            vec![
                ClarityValue::Buffer(patient_id.to_vec()),
                optional(emergency_contact, principal),
                optional(primary_physician, principal),
            ],
        )
    }

    /// `patient-consent.grant-consent`.
    pub fn grant_consent(provider: &Principal, data_type: DataType, duration: GrantDuration) -> Self {
        Self::new(
            ContractName::PatientConsent,
            "grant-consent",
            vec![principal(provider), ClarityValue::UInt(data_type.code().into()), duration.to_value()],
        )
    }

    /// `patient-consent.revoke-consent`.
    pub fn revoke_consent(provider: &Principal, data_type: DataType) -> Self {
        Self::new(
            ContractName::PatientConsent,
            "revoke-consent",
            vec![principal(provider), ClarityValue::UInt(data_type.code().into())],
        )
    }

    /// `patient-consent.emergency-override`, by a responder; `reason` is a
    /// code from 1 to 255.
    pub fn emergency_override(patient: &Principal, reason: u8) -> Result<Self> {
        if reason == 0 {
            return Err(Error::Invalid(format!("the emergency reason must be 1 to {MAX_EMERGENCY_REASON}")));
        }
        Ok(Self::new(
            ContractName::PatientConsent,
            "emergency-override",
            vec![principal(patient), ClarityValue::UInt(reason.into())],
        ))
    }

    /// `patient-consent.end-emergency-override`.
    pub fn end_emergency_override(patient: &Principal, provider: &Principal) -> Self {
        Self::new(ContractName::PatientConsent, "end-emergency-override", vec![principal(patient), principal(provider)])
    }

    /// `record-management.grant-provider-access`; the emergency level is
    /// refused.
    pub fn grant_provider_access(provider: &Principal, level: AccessLevel, duration: GrantDuration) -> Result<Self> {
        if level == AccessLevel::Emergency {
            return Err(Error::Invalid("the emergency level is never granted; use read, write or admin".into()));
        }
        Ok(Self::new(
            ContractName::RecordManagement,
            "grant-provider-access",
            vec![principal(provider), ClarityValue::UInt(level.code().into()), duration.to_value()],
        ))
    }

    /// `record-management.revoke-provider-access`.
    pub fn revoke_provider_access(provider: &Principal) -> Self {
        Self::new(ContractName::RecordManagement, "revoke-provider-access", vec![principal(provider)])
    }

    /// `record-management.create-record`, by a provider.
    pub fn create_record(
        record_id: [u8; 16],
        patient: &Principal,
        record_type: RecordType,
        data_hash: [u8; 32],
        encryption_key_id: Option<[u8; 32]>,
        confidentiality: u8,
    ) -> Result<Self> {
        if confidentiality > MAX_CONFIDENTIALITY {
            return Err(Error::Invalid(format!("confidentiality must be 0 to {MAX_CONFIDENTIALITY}")));
        }
        Ok(Self::new(
            ContractName::RecordManagement,
            "create-record",
            vec![
                ClarityValue::Buffer(record_id.to_vec()),
                principal(patient),
                ClarityValue::UInt(record_type.code().into()),
                ClarityValue::Buffer(data_hash.to_vec()),
                optional(encryption_key_id, |k| ClarityValue::Buffer(k.to_vec())),
                ClarityValue::UInt(confidentiality.into()),
            ],
        ))
    }

    /// `record-management.update-record`: a new version on top of
    /// `expected_version` (optimistic concurrency).
    pub fn update_record(
        record_id: [u8; 16],
        expected_version: u64,
        data_hash: [u8; 32],
        encryption_key_id: Option<[u8; 32]>,
    ) -> Self {
        Self::new(
            ContractName::RecordManagement,
            "update-record",
            vec![
                ClarityValue::Buffer(record_id.to_vec()),
                ClarityValue::UInt(expected_version.into()),
                ClarityValue::Buffer(data_hash.to_vec()),
                optional(encryption_key_id, |k| ClarityValue::Buffer(k.to_vec())),
            ],
        )
    }

    /// The transaction payload, for contracts deployed by `deployer`.
    pub fn payload(&self, deployer: &StandardPrincipal) -> Result<Payload> {
        let args = self
            .args
            .iter()
            .map(|a| {
                Value::consensus_deserialize(&mut a.serialize().as_slice())
                    .map_err(|e| Error::Codec(format!("argument of {}: {e}", self.function)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Payload::ContractCall {
            address: StacksAddress { version: deployer.version, bytes: Hash160(deployer.hash160) },
            contract: self.contract.name().to_string(),
            function: self.function.to_string(),
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let max = MAX_DURATION_BLOCKS;
        let table: &[(&str, Option<GrantDuration>)] = &[
            ("48h", Some(GrantDuration::Blocks(288))),
            ("1h", Some(GrantDuration::Blocks(6))),
            ("30d", Some(GrantDuration::Blocks(4320))),
            ("1d", Some(GrantDuration::Blocks(144))),
            ("12b", Some(GrantDuration::Blocks(12))),
            (" 2h ", Some(GrantDuration::Blocks(12))),
            ("none", Some(GrantDuration::UntilRevoked)),
            ("NONE", Some(GrantDuration::UntilRevoked)),
            ("876600h", Some(GrantDuration::Blocks(max))), // 100 years of 365.25 days
            ("36525d", Some(GrantDuration::Blocks(max))),
            ("5259600b", Some(GrantDuration::Blocks(max))),
            // Rejected before anything is signed:
            ("0h", None),
            ("0d", None),
            ("0b", None),
            ("876601h", None),
            ("36526d", None),
            ("5259601b", None),
            ("99999999999999999999d", None),
            ("48", None),
            ("h", None),
            ("-1h", None),
            ("1.5h", None),
            ("48 h", None),
            ("2w", None),
            ("", None),
        ];
        for (input, expected) in table {
            let got = input.parse::<GrantDuration>();
            match expected {
                Some(d) => assert_eq!(got.as_ref().ok(), Some(d), "{input:?}: {got:?}"),
                None => assert!(got.is_err(), "{input:?} accepted as {got:?}"),
            }
        }
        let zero = "0h".parse::<GrantDuration>().expect_err("zero").to_string();
        assert!(zero.contains("zero"), "{zero}");
        let long = "36526d".parse::<GrantDuration>().expect_err("long").to_string();
        assert!(long.contains("maximum of 5259600"), "{long}");
    }

    #[test]
    fn names() {
        assert_eq!(parse_data_type("all").expect("all"), DataType::AllStandard);
        assert_eq!(parse_data_type("lab-results").expect("lab"), DataType::LabResults);
        assert_eq!(parse_data_type("mental-health").expect("mh"), DataType::MentalHealth);
        assert!(parse_data_type("labs").expect_err("labs").to_string().contains("lab-results"));
        assert_eq!(parse_access_level("write").expect("write"), AccessLevel::Write);
        assert!(parse_access_level("emergency").is_err());
        assert!(parse_access_level("owner").is_err());
        assert_eq!(parse_record_type("imaging").expect("imaging"), RecordType::Imaging);
        assert!(parse_record_id("00").is_err());
        assert_eq!(parse_record_id(&format!("0x{}", "ab".repeat(16))).expect("id"), [0xab; 16]);
    }

    #[test]
    fn calls_encode_the_contract_arguments() {
        let provider = parse_principal("ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG").expect("principal");
        let call = ContractCall::grant_consent(&provider, DataType::LabResults, "48h".parse().expect("48h"));
        assert_eq!(call.function, "grant-consent");
        assert_eq!(call.args[1], ClarityValue::UInt(3));
        assert_eq!(call.args[2], ClarityValue::some(ClarityValue::UInt(288)));
        let deployer: StandardPrincipal = medanchor_contracts::DEPLOYER_ADDRESS.parse().expect("deployer");
        match call.payload(&deployer).expect("payload") {
            Payload::ContractCall { address, contract, function, args } => {
                assert_eq!(address.to_string(), medanchor_contracts::DEPLOYER_ADDRESS);
                assert_eq!((contract.as_str(), function.as_str()), ("patient-consent", "grant-consent"));
                assert_eq!(args[1], Value::UInt(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(ContractCall::emergency_override(&provider, 0).is_err());
        assert!(ContractCall::grant_provider_access(&provider, AccessLevel::Emergency, GrantDuration::UntilRevoked)
            .is_err());
        assert!(ContractCall::create_record([1; 16], &provider, RecordType::Vitals, [2; 32], None, 4).is_err());
    }
}
