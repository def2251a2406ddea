//! The Clarity VM with medanchor's contracts deployed: call public and
//! read-only functions as any principal, advance the burn height, and get
//! back the result, the `print` events and the execution cost.
//!
//! This runs the real Clarity VM (`clarity-vm` 2.1, through
//! `clarity_repl::repl::Session`) with cost tracking against the boot cost
//! contracts, so results and costs are those a Stacks node computes for the
//! same calls. `Session` re-parses each call from source text; it is the
//! right tool for contract tests and cost reports, not for block production.

use clarity_repl::clarity::stacks_common::types::StacksEpochId;
use clarity_repl::clarity::vm::costs::ExecutionCost;
use clarity_repl::clarity::vm::events::StacksTransactionEvent;
use clarity_repl::clarity::vm::{ClarityVersion, EvaluationResult, Value};
use clarity_repl::repl::{ClarityCodeSource, ClarityContract, ContractDeployer, Session, SessionSettings};
use medanchor_contracts::value::ClarityValue;
use medanchor_contracts::{ContractName, DEPLOYER_ADDRESS};

use crate::{Error, Result};

/// Boot contracts the cost tracker needs (the cost functions in force in
/// epoch 2.4 are `costs-3`; the others are loaded because the cost voting
/// contract refers to them).
const BOOT_CONTRACTS: &[&str] = &["costs", "costs-2", "costs-3", "cost-voting", "pox", "pox-2", "pox-3"];

/// The outcome of one contract call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The function's return value (a response for public functions).
    pub result: ClarityValue,
    /// The values of the `print` events the call emitted, in order, with the
    /// contract that printed each. Empty when the call returned `(err …)`:
    /// the VM rolls back a failed call's events, as on Stacks.
    pub prints: Vec<(ContractName, ClarityValue)>,
    /// What the call cost, as the VM measured it.
    pub cost: Cost,
}

impl CallOutcome {
    /// Whether a public function returned `(ok …)`.
    pub fn is_ok(&self) -> bool {
        matches!(self.result, ClarityValue::Response(Ok(_)))
    }

    /// The `uN` of an `(err uN)` result, if that is what the call returned.
    pub fn err_code(&self) -> Option<u128> {
        match &self.result {
            ClarityValue::Response(Err(inner)) => match **inner {
                ClarityValue::UInt(code) => Some(code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Execution cost in the five dimensions Stacks meters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    /// Runtime units.
    pub runtime: u64,
    /// Number of reads from the chain state.
    pub read_count: u64,
    /// Bytes read from the chain state.
    pub read_length: u64,
    /// Number of writes to the chain state.
    pub write_count: u64,
    /// Bytes written to the chain state.
    pub write_length: u64,
}

impl Cost {
    /// A mainnet block's budget since Stacks 2.1.
    pub const MAINNET_BLOCK_LIMIT: Cost = Cost {
        runtime: 5_000_000_000,
        read_count: 15_000,
        read_length: 100_000_000,
        write_count: 15_000,
        write_length: 15_000_000,
    };

    /// How many calls of this cost fit in `limit`, and which dimension
    /// runs out first.
    pub fn fits_in(&self, limit: &Cost) -> (u64, &'static str) {
        let dims = [
            ("runtime", self.runtime, limit.runtime),
            ("read_count", self.read_count, limit.read_count),
            ("read_length", self.read_length, limit.read_length),
            ("write_count", self.write_count, limit.write_count),
            ("write_length", self.write_length, limit.write_length),
        ];
        dims.iter()
            .filter(|(_, used, _)| *used > 0)
            .map(|(name, used, cap)| (cap / used, *name))
            .min()
            .unwrap_or((u64::MAX, "none"))
    }
}

impl From<&ExecutionCost> for Cost {
    fn from(c: &ExecutionCost) -> Self {
        Cost {
            runtime: c.runtime,
            read_count: c.read_count,
            read_length: c.read_length,
            write_count: c.write_count,
            write_length: c.write_length,
        }
    }
}

/// A Clarity VM holding medanchor's contracts, deployed by the Clarinet
/// devnet deployer.
pub struct ContractVm {
    session: Session,
    /// The current height (the session only reports it through `&mut`).
    height: u32,
}

impl std::fmt::Debug for ContractVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContractVm").field("burn_height", &self.burn_height()).finish()
    }
}

impl ContractVm {
    /// Boots the VM at epoch 2.4 and deploys both contracts.
    pub fn new() -> Result<Self> {
        let settings = SessionSettings {
            include_boot_contracts: BOOT_CONTRACTS.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut session = Session::new(settings);
        session.load_boot_contracts();
        session.update_epoch(StacksEpochId::Epoch24);
        // `burn-block-height` is the burn height of the parent block, and
        // the session's burn heights equal its Stacks heights; mining one
        // block first makes the burn height advance by one with every block
        // from here on (at heights 0 and 1 it would read 0 both times).
        let height = session.advance_chain_tip(1);
        let mut vm = ContractVm { session, height };
        for contract in ContractName::ALL {
            vm.deploy(DEPLOYER_ADDRESS, contract.name(), contract.source())?;
        }
        Ok(vm)
    }

    /// Deploys a Clarity 2 contract as `deployer`.
    pub fn deploy(&mut self, deployer: &str, name: &str, source: &str) -> Result<()> {
        let contract = ClarityContract {
            code_source: ClarityCodeSource::ContractInMemory(source.to_string()),
            name: name.to_string(),
            deployer: ContractDeployer::Address(deployer.to_string()),
            clarity_version: ClarityVersion::Clarity2,
            epoch: StacksEpochId::Epoch24,
        };
        let result = self.session.deploy_contract(&contract, None, false, None, &mut None).map_err(|diagnostics| {
            Error::Deploy {
                contract: name.to_string(),
                diagnostics: diagnostics.iter().map(|d| d.message.clone()).collect(),
            }
        })?;
        let warnings: Vec<String> = result.diagnostics.iter().map(|d| d.message.clone()).collect();
        if !warnings.is_empty() {
            return Err(Error::Deploy { contract: name.to_string(), diagnostics: warnings });
        }
        Ok(())
    }

    /// Calls `function` of one of our contracts as `sender` (the
    /// transaction's sender and the contract caller).
    pub fn call(
        &mut self,
        sender: &str,
        contract: ContractName,
        function: &str,
        args: &[ClarityValue],
    ) -> Result<CallOutcome> {
        let contract_id = format!("{DEPLOYER_ADDRESS}.{}", contract.name());
        let args: Vec<String> = args.iter().map(to_source).collect();
        let (execution, _) = self
            .session
            .invoke_contract_call(&contract_id, function, &args, sender, String::new())
            .map_err(|diagnostics| Error::Call {
                function: function.to_string(),
                diagnostics: diagnostics.iter().map(|d| d.message.clone()).collect(),
            })?;
        // The session keeps a coverage and a cost report per call; nobody
        // reads them here, and they would grow without bound.
        self.session.coverage_reports.clear();
        self.session.costs_reports.clear();
        let result = match &execution.result {
            EvaluationResult::Snippet(snippet) => from_vm(&snippet.result)?,
            EvaluationResult::Contract(_) => {
                return Err(Error::Call {
                    function: function.to_string(),
                    diagnostics: vec!["call evaluated as a contract".to_string()],
                })
            }
        };
        let mut prints = Vec::new();
        for event in &execution.events {
            if let StacksTransactionEvent::SmartContractEvent(data) = event {
                let printer = ContractName::from_name(&data.key.0.name.to_string()).ok_or_else(|| Error::Call {
                    function: function.to_string(),
                    diagnostics: vec![format!("print from unknown contract {}", data.key.0)],
                })?;
                prints.push((printer, from_vm(&data.value)?));
            }
        }
        let cost = execution.cost.as_ref().map(|c| Cost::from(&c.total)).unwrap_or_default();
        Ok(CallOutcome { result, prints, cost })
    }

    /// Mines `count` empty blocks; each advances `burn-block-height` by one.
    /// Returns the new burn height.
    pub fn advance_blocks(&mut self, count: u32) -> u32 {
        self.height = self.session.advance_chain_tip(count);
        self.burn_height()
    }

    /// The `burn-block-height` the next call sees: the burn height of the
    /// parent block, which the session keeps equal to its Stacks height.
    pub fn burn_height(&self) -> u32 {
        self.height - 1
    }
}

/// Converts a VM value to our wire-level value through the consensus
/// serialization, the same bytes a node puts in `raw_value`.
pub fn from_vm(value: &Value) -> Result<ClarityValue> {
    let mut bytes = Vec::new();
    value.serialize_write(&mut bytes).map_err(|e| Error::Codec(e.to_string()))?;
    ClarityValue::deserialize(&bytes).map_err(|e| Error::Codec(e.to_string()))
}

/// Renders a value as Clarity source, for the session's call syntax.
fn to_source(value: &ClarityValue) -> String {
    match value {
        ClarityValue::Int(i) => i.to_string(),
        ClarityValue::UInt(u) => format!("u{u}"),
        ClarityValue::Bool(b) => b.to_string(),
        ClarityValue::Buffer(bytes) => format!("0x{}", hex::encode(bytes)),
        ClarityValue::StringAscii(s) => format!("{s:?}"),
        ClarityValue::StringUtf8(s) => format!("u{s:?}"),
        ClarityValue::Principal(p) => format!("'{p}"),
        ClarityValue::Optional(None) => "none".to_string(),
        ClarityValue::Optional(Some(v)) => format!("(some {})", to_source(v)),
        ClarityValue::Response(Ok(v)) => format!("(ok {})", to_source(v)),
        ClarityValue::Response(Err(v)) => format!("(err {})", to_source(v)),
        ClarityValue::List(items) => {
            let items: Vec<String> = items.iter().map(to_source).collect();
            format!("(list {})", items.join(" "))
        }
        ClarityValue::Tuple(fields) => {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", to_source(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}
