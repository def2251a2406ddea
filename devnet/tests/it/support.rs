//! Shared helpers: the devnet accounts, value builders, and a chain wrapper
//! that decodes every `print` of every call with the typed decoders — so
//! every test also proves the decoders cover what the contracts emit.
#![allow(dead_code)]

use medanchor_contracts::{decode_print, ClarityValue, ContractError, ContractEvent, ContractName};
use medanchor_devnet::vm::{CallOutcome, ContractVm};

pub const PC: ContractName = ContractName::PatientConsent;
pub const RM: ContractName = ContractName::RecordManagement;
pub const DEPLOYER: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";
pub const WALLET_1: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
pub const WALLET_2: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
pub const WALLET_3: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
pub const FAUCET: &str = "STNHKEPYEPJ8ET55ZZ0M5A34J0R3N5FM2CMMMAZ6";

/// The contracts in a fresh VM.
pub struct Chain {
    pub vm: ContractVm,
}

/// A call's result with its events decoded.
#[derive(Debug)]
pub struct Outcome {
    pub raw: CallOutcome,
    pub events: Vec<ContractEvent>,
}

impl Outcome {
    pub fn result(&self) -> &ClarityValue {
        &self.raw.result
    }

    pub fn err(&self) -> Option<ContractError> {
        self.raw
            .err_code()
            .map(|c| ContractError::from_code(c).unwrap_or_else(|| panic!("undocumented error code u{c}")))
    }
}

impl Chain {
    pub fn new() -> Self {
        Chain { vm: ContractVm::new().expect("contracts deploy") }
    }

    /// Calls a function; panics on a VM failure (not on an `(err …)`), on
    /// any print the decoders reject, and on any print `encode_print` does
    /// not reproduce exactly (so the synthetic streams of the indexer tests
    /// are byte-for-byte what the contracts print).
    pub fn call(&mut self, sender: &str, c: ContractName, f: &str, args: &[ClarityValue]) -> Outcome {
        let raw = self.vm.call(sender, c, f, args).unwrap_or_else(|e| panic!("{f}: {e}"));
        let events = raw
            .prints
            .iter()
            .map(|(contract, v)| {
                let event = decode_print(*contract, v).unwrap_or_else(|e| panic!("{f}: print {v:?}: {e}"));
                assert_eq!(&medanchor_contracts::encode_print(&event), v, "{f}: encode_print does not round-trip");
                event
            })
            .collect();
        Outcome { raw, events }
    }

    /// Calls and asserts `(ok …)`; returns the inner value.
    pub fn ok(&mut self, sender: &str, c: ContractName, f: &str, args: &[ClarityValue]) -> ClarityValue {
        let out = self.call(sender, c, f, args);
        let e = out.err();
        match out.raw.result {
            ClarityValue::Response(Ok(v)) => *v,
            other => panic!("{f} by {sender}: expected ok, got {other:?} ({e:?})"),
        }
    }

    /// Calls and asserts `(err code)`, and that a failed call printed nothing.
    pub fn err(&mut self, sender: &str, c: ContractName, f: &str, args: &[ClarityValue], e: ContractError) {
        let out = self.call(sender, c, f, args);
        assert_eq!(out.err(), Some(e), "{f} by {sender}: got {:?}", out.result());
        assert!(out.events.is_empty(), "{f}: a failed call printed {:?}", out.events);
    }

    /// A read-only call's value.
    pub fn read(&mut self, c: ContractName, f: &str, args: &[ClarityValue]) -> ClarityValue {
        self.call(DEPLOYER, c, f, args).raw.result
    }

    pub fn advance(&mut self, blocks: u32) -> u32 {
        self.vm.advance_blocks(blocks)
    }

    pub fn height(&self) -> u128 {
        u128::from(self.vm.burn_height())
    }
}

pub fn u(n: u128) -> ClarityValue {
    ClarityValue::UInt(n)
}
pub fn p(s: &str) -> ClarityValue {
    ClarityValue::principal(s).expect("principal")
}
pub fn buff(b: &[u8]) -> ClarityValue {
    ClarityValue::Buffer(b.to_vec())
}
pub fn none() -> ClarityValue {
    ClarityValue::none()
}
pub fn some(v: ClarityValue) -> ClarityValue {
    ClarityValue::some(v)
}
pub fn b(v: bool) -> ClarityValue {
    ClarityValue::Bool(v)
}
pub fn ok(v: ClarityValue) -> ClarityValue {
    ClarityValue::ok(v)
}
pub fn err_v(e: ContractError) -> ClarityValue {
    ClarityValue::err(u(u128::from(e.code())))
}
/// A 16-byte record id / 32-byte hash derived from a small number.
pub fn id16(n: u8) -> ClarityValue {
    buff(&[n; 16])
}
pub fn h32(n: u8) -> ClarityValue {
    buff(&[n; 32])
}

/// A fresh testnet principal with a deterministic hash (for tests that need
/// more accounts than the devnet has; the VM takes any sender).
pub fn account(n: u32) -> String {
    use medanchor_contracts::principal::{StandardPrincipal, VERSION_TESTNET_SINGLESIG};
    let mut hash160 = [0x5a; 20];
    hash160[..4].copy_from_slice(&n.to_be_bytes());
    StandardPrincipal { version: VERSION_TESTNET_SINGLESIG, hash160 }.to_string()
}

/// The tuple field `name` of an optional/some tuple value.
pub fn field(v: &ClarityValue, name: &str) -> ClarityValue {
    let inner = match v {
        ClarityValue::Optional(Some(inner)) => &**inner,
        ClarityValue::Response(Ok(inner)) => &**inner,
        other => other,
    };
    match inner {
        ClarityValue::Tuple(map) => map.get(name).cloned().unwrap_or_else(|| panic!("no field {name} in {v:?}")),
        other => panic!("not a tuple: {other:?}"),
    }
}
