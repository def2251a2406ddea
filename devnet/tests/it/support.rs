//! Shared helpers: principals of the devnet accounts and value builders.
#![allow(dead_code)]

use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_devnet::vm::{CallOutcome, ContractVm};

pub const PC: ContractName = ContractName::PatientConsent;
pub const RM: ContractName = ContractName::RecordManagement;
pub const DEPLOYER: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";
pub const WALLET_1: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
pub const WALLET_2: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
pub const WALLET_3: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
pub const FAUCET: &str = "STNHKEPYEPJ8ET55ZZ0M5A34J0R3N5FM2CMMMAZ6";

pub struct Chain {
    pub vm: ContractVm,
}

impl Chain {
    pub fn new() -> Self {
        Chain {
            vm: ContractVm::new().expect("contracts deploy"),
        }
    }

    pub fn call(
        &mut self,
        sender: &str,
        c: ContractName,
        f: &str,
        args: &[ClarityValue],
    ) -> CallOutcome {
        self.vm
            .call(sender, c, f, args)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
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
