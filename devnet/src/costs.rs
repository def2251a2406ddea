//! The cost report: what each public function of our contracts costs on
//! its success path, measured by the Clarity VM's cost tracker, and how
//! many such calls fit in one mainnet block.
//!
//! The scenario below drives every public function once through a
//! realistic history (a provider registered, a patient registered with a
//! consent, a record created and updated, …) and keeps the first successful
//! call of each. Costs include what Stacks charges for loading the called
//! contract (and, for record-management, patient-consent), which is most
//! of `read_length`.

use medanchor_contracts::{ClarityValue, ContractName, DEPLOYER_ADDRESS};

use crate::vm::{ContractVm, Cost};
use crate::{Error, Result};

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CostLine {
    /// The contract.
    pub contract: &'static str,
    /// The public function.
    pub function: &'static str,
    /// What one successful call cost.
    pub cost: Cost,
    /// How many such calls fit in a mainnet block.
    pub per_block: u64,
    /// The block-budget dimension that runs out first.
    pub limited_by: &'static str,
}

const PATIENT: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const PROVIDER: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
const RESPONDER: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
const OPERATOR: &str = "STNHKEPYEPJ8ET55ZZ0M5A34J0R3N5FM2CMMMAZ6";

fn u(n: u128) -> ClarityValue {
    ClarityValue::UInt(n)
}
fn p(s: &str) -> ClarityValue {
    ClarityValue::principal(s).expect("a valid built-in address")
}
fn buf(byte: u8, len: usize) -> ClarityValue {
    ClarityValue::Buffer(vec![byte; len])
}
fn b(v: bool) -> ClarityValue {
    ClarityValue::Bool(v)
}

/// Runs the scenario and returns one line per public function, in the
/// order they ran.
pub fn cost_report() -> Result<Vec<CostLine>> {
    use ContractName::{PatientConsent as PC, RecordManagement as RM};
    let none = ClarityValue::none;
    let some = ClarityValue::some;
    let steps: Vec<(&str, ContractName, &'static str, Vec<ClarityValue>)> = vec![
        (DEPLOYER_ADDRESS, RM, "register-provider", vec![p(PROVIDER), buf(0xa1, 32)]),
        (DEPLOYER_ADDRESS, RM, "register-provider", vec![p(RESPONDER), buf(0xa2, 32)]),
        (DEPLOYER_ADDRESS, RM, "set-provider-active", vec![p(RESPONDER), b(true)]),
        (DEPLOYER_ADDRESS, RM, "set-provider-credential", vec![p(PROVIDER), buf(0xa3, 32)]),
        (DEPLOYER_ADDRESS, RM, "set-anchor-operator", vec![p(OPERATOR), b(true)]),
        (DEPLOYER_ADDRESS, RM, "set-retention-period", vec![u(1)]),
        (DEPLOYER_ADDRESS, PC, "set-emergency-responder", vec![p(RESPONDER), b(true)]),
        (DEPLOYER_ADDRESS, PC, "set-emergency-timeout", vec![u(432)]),
        (PATIENT, PC, "register-patient", vec![buf(1, 32), none(), some(p(PROVIDER))]),
        (PATIENT, PC, "grant-consent", vec![p(PROVIDER), u(2), some(u(4320))]),
        (PATIENT, PC, "grant-consent", vec![p(RESPONDER), u(1), none()]),
        (PATIENT, PC, "revoke-consent", vec![p(RESPONDER), u(1)]),
        (PATIENT, PC, "update-patient-preferences", vec![none(), some(p(PROVIDER)), b(false), b(false)]),
        (PATIENT, RM, "grant-provider-access", vec![p(PROVIDER), u(2), none()]),
        (PATIENT, RM, "grant-provider-access", vec![p(RESPONDER), u(0), none()]),
        (PATIENT, RM, "revoke-provider-access", vec![p(RESPONDER)]),
        (PROVIDER, RM, "create-record", vec![buf(1, 16), p(PATIENT), u(3), buf(0x11, 32), some(buf(0xee, 32)), u(1)]),
        (PROVIDER, RM, "get-record", vec![buf(1, 16)]),
        (PROVIDER, RM, "update-record", vec![buf(1, 16), u(1), buf(0x12, 32), some(buf(0xee, 32))]),
        (PROVIDER, RM, "rollback-record", vec![buf(1, 16), u(2), u(1)]),
        (PROVIDER, RM, "finalize-record", vec![buf(1, 16)]),
        (PROVIDER, RM, "unlock-record", vec![buf(1, 16)]),
        (PROVIDER, RM, "archive-record", vec![buf(1, 16)]),
        (RESPONDER, PC, "emergency-override", vec![p(PATIENT), u(1)]),
        (RESPONDER, PC, "end-emergency-override", vec![p(PATIENT), p(RESPONDER)]),
        (OPERATOR, RM, "anchor-batch", vec![buf(0xb0, 32), u(1000)]),
        (OPERATOR, RM, "anchor-audit-root", vec![u(1000), buf(0xc0, 32)]),
        (DEPLOYER_ADDRESS, RM, "purge-record", vec![buf(1, 16)]),
        (PROVIDER, PC, "set-deceased", vec![p(PATIENT), b(false)]),
        (DEPLOYER_ADDRESS, PC, "pause", vec![]),
        (DEPLOYER_ADDRESS, PC, "unpause", vec![]),
        (DEPLOYER_ADDRESS, PC, "propose-owner", vec![p(OPERATOR)]),
        (OPERATOR, PC, "accept-ownership", vec![]),
        (DEPLOYER_ADDRESS, RM, "propose-owner", vec![p(OPERATOR)]),
        (OPERATOR, RM, "accept-ownership", vec![]),
    ];

    let mut vm = ContractVm::new()?;
    let mut lines: Vec<CostLine> = Vec::new();
    for (sender, contract, function, args) in steps {
        if function == "purge-record" {
            // Retention was set to one block above; let it pass.
            vm.advance_blocks(2);
        }
        let outcome = vm.call(sender, contract, function, &args)?;
        if !outcome.is_ok() {
            return Err(Error::Call {
                function: function.to_string(),
                diagnostics: vec![format!("cost scenario step failed: {:?}", outcome.result)],
            });
        }
        if lines.iter().any(|l| l.contract == contract.name() && l.function == function) {
            continue;
        }
        let (per_block, limited_by) = outcome.cost.fits_in(&Cost::MAINNET_BLOCK_LIMIT);
        lines.push(CostLine { contract: contract.name(), function, cost: outcome.cost, per_block, limited_by });
    }
    Ok(lines)
}
