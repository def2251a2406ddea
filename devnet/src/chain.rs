//! The devnet chain: genesis, transaction validation and execution in the
//! Clarity VM, block production, persistence, and read-only queries.
//!
//! Block production is a pure step — [`Chain::mine_block`] takes candidate
//! transactions and returns the block, what waits and what was dropped — so
//! tests step blocks by hand; the node drives it with a timer.
//!
//! Execution follows Stacks: a transaction pays its fee and uses its nonce
//! whatever its payload does; a contract call that returns `(err …)` is
//! mined with status `abort_by_response` and its state changes and events
//! rolled back; a post-condition violation aborts the payload the same way
//! (`abort_by_post_condition`); a runtime error is mined as
//! `abort_by_response` with `(err none)` and a `vm_error`. A transaction
//! that would overflow the block budget waits for the next block.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::rusqlite::Connection;
use clarity_repl::clarity::stacks_common::types::chainstate::{StacksAddress, StacksBlockId};
use clarity_repl::clarity::vm::analysis::{self, AnalysisDatabase, ContractAnalysis};
use clarity_repl::clarity::vm::ast::{self, ASTRules};
use clarity_repl::clarity::vm::contexts::{AssetMap, AssetMapEntry, Environment, OwnedEnvironment};
use clarity_repl::clarity::vm::contracts::Contract;
use clarity_repl::clarity::vm::costs::cost_functions::ClarityCostFunction;
use clarity_repl::clarity::vm::costs::{runtime_cost, CostTracker, ExecutionCost, LimitedCostTracker};
use clarity_repl::clarity::vm::database::ClarityDatabase;
use clarity_repl::clarity::vm::errors::{CheckErrors, Error as VmError, InterpreterError};
use clarity_repl::clarity::vm::events::StacksTransactionEvent;
use clarity_repl::clarity::vm::types::{AssetIdentifier, BuffData, PrincipalData, QualifiedContractIdentifier};
use clarity_repl::clarity::vm::{ClarityVersion, SymbolicExpression, Value};
use clarity_repl::codec::{
    NonfungibleConditionCode, PostConditionPrincipal, StacksTransaction, TransactionPayload, TransactionPostCondition,
    TransactionPostConditionMode, TransactionVersion,
};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::txbuild::{self, CHAIN_ID_TESTNET};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::headers::{Header, HeaderIndex, BLOCK_LIMIT, EPOCH};
use crate::store::{BlockStore, ChainDb, Overlay, CF_BLOCKS, CF_BLOCK_IDS, CF_META, CF_TXS};
use crate::vm::Cost;
use crate::{Error, Result};

/// The id the VM sees for the block under construction.
const OPEN_TIP: StacksBlockId = StacksBlockId([0xff; 32]);
/// The boot address of testnet (`ST000000000000000000002AMW42H`).
const BOOT_CONTRACTS: &[&str] = &["costs", "costs-2", "costs-3", "cost-voting"];

/// A funded genesis account.
#[derive(Debug, Clone)]
pub struct GenesisAccount {
    /// The account's name in Devnet.toml.
    pub name: String,
    /// Its address.
    pub address: StacksAddress,
    /// Its balance in micro-STX.
    pub balance: u128,
}

/// What a chain is built from.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Chain id transactions must carry.
    pub chain_id: u32,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Contracts deployed at genesis as real transactions: (deployer key,
    /// name, source). They are mined in block 1.
    pub genesis_deploys: Vec<(StacksKey, String, String)>,
    /// Minimum fee rate in micro-STX per byte.
    pub min_fee_rate: u64,
    /// The block budget.
    pub block_limit: ExecutionCost,
    /// Unix time of genesis.
    pub genesis_time: u64,
}

/// How a mined transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Committed.
    Success,
    /// The contract returned `(err …)` or a runtime error occurred.
    AbortByResponse,
    /// A post-condition failed.
    AbortByPostCondition,
}

impl TxStatus {
    /// The status string stacks-node uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Success => "success",
            TxStatus::AbortByResponse => "abort_by_response",
            TxStatus::AbortByPostCondition => "abort_by_post_condition",
        }
    }
}

/// A mined transaction: what the RPC and the event observers report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// `0x`-prefixed txid.
    pub txid: String,
    /// Position in the block.
    pub tx_index: u32,
    /// Outcome.
    pub status: TxStatus,
    /// The result as `0x` Clarity hex.
    pub raw_result: String,
    /// The transaction as `0x` hex.
    pub raw_tx: String,
    /// Events in stacks-node's JSON shape (empty unless committed).
    pub events: Vec<serde_json::Value>,
    /// What the transaction cost.
    pub execution_cost: Cost,
    /// For deploys: the contract's interface.
    pub contract_interface: Option<serde_json::Value>,
    /// The VM's error, for runtime failures.
    pub vm_error: Option<String>,
    /// The origin address.
    pub sender: String,
    /// The origin nonce.
    pub nonce: u64,
    /// The fee paid.
    pub fee: u64,
}

/// A block as stored and served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredBlock {
    /// Its header.
    pub header: Header,
    /// Its transactions, in order.
    pub receipts: Vec<Receipt>,
    /// Total execution cost.
    pub cost: Cost,
}

/// A transaction offered for a block.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The decoded transaction.
    pub tx: StacksTransaction,
    /// Its bytes as received.
    pub raw: Vec<u8>,
}

impl Candidate {
    /// Decodes raw bytes; they must hold exactly one transaction.
    pub fn decode(raw: &[u8]) -> std::result::Result<Candidate, Rejection> {
        let mut cursor = raw;
        let tx = StacksTransaction::consensus_deserialize(&mut cursor)
            .map_err(|e| Rejection::new(RejectReason::Deserialization, e.to_string()))?;
        if !cursor.is_empty() {
            return Err(Rejection::new(RejectReason::Deserialization, format!("{} trailing bytes", cursor.len())));
        }
        Ok(Candidate { tx, raw: raw.to_vec() })
    }

    /// The txid (SHA-512/256 of the bytes).
    pub fn txid(&self) -> [u8; 32] {
        self.tx.txid().0
    }
}

/// Why a transaction is refused (stacks-node's reason names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RejectReason {
    /// Not a transaction.
    Deserialization,
    /// The signature does not verify.
    SignatureValidation,
    /// Wrong chain id or network version.
    BadTransactionVersion,
    /// Nonce already used.
    BadNonce,
    /// Fee below the minimum.
    FeeTooLow,
    /// Balance below fee (+ amount).
    NotEnoughFunds,
    /// Unknown contract.
    NoSuchContract,
    /// Unknown or non-public function.
    NoSuchPublicFunction,
    /// Arguments do not type-check.
    BadFunctionArgument,
    /// Contract name taken.
    ContractAlreadyExists,
    /// Coinbase and other miner-only payloads.
    NoCoinbaseViaMempool,
    /// Transfer to oneself.
    #[serde(rename = "TransferRecipientCannotEqualSender")]
    TransferRecipientIsSender,
    /// Zero transfer.
    TransferAmountMustBePositive,
    /// Costs more than a whole block allows.
    TooExpensive,
    /// Too many pending transactions from one account, or a full pool.
    TooMuchChaining,
    /// The node's database failed while checking.
    ServerFailureDatabase,
    /// Invalid for another reason (stacks-node's catch-all, with a message).
    ServerFailureOther,
}

/// A refused transaction with details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason.
    pub reason: RejectReason,
    /// Human detail (also `reason_data.message`).
    pub detail: String,
    /// Structured `reason_data` as stacks-node sends it, when it has one.
    pub data: Option<serde_json::Value>,
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::new(RejectReason::ServerFailureDatabase, e.to_string())
    }
}

impl Rejection {
    /// A rejection without structured data.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection { reason, detail: detail.into(), data: None }
    }
}

/// The result of mining one block.
#[derive(Debug)]
pub struct Mined {
    /// The block.
    pub block: StoredBlock,
    /// Candidates left for a later block (future nonce, block full).
    pub deferred: Vec<Candidate>,
    /// Candidates that can never be mined, with why.
    pub dropped: Vec<(Candidate, Rejection)>,
}

enum Applied {
    Included(Receipt),
    Deferred,
    Dropped(Rejection),
}

/// The chain: RocksDB state, headers, and the VM over them.
pub struct Chain {
    db: ChainDb,
    headers: HeaderIndex,
    side_store: Connection,
    config: ChainConfig,
    /// Deployed contracts, parsed once. The VM stores a contract as JSON
    /// and parses it on every call, which costs more than executing a
    /// typical call; a deployed contract never changes and the devnet never
    /// forks, so a parsed copy stays valid for the life of the chain.
    contracts: RefCell<ContractCache>,
}

/// Contracts by id (see [`Chain`]'s `contracts`).
type ContractCache = HashMap<QualifiedContractIdentifier, Arc<Contract>>;

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("height", &self.headers.len()).finish()
    }
}

impl Chain {
    /// Opens the chain at `path`, running genesis if it is new.
    pub fn open(path: &Path, config: ChainConfig) -> Result<Chain> {
        let db = ChainDb::open(path)?;
        let side_store = Connection::open_in_memory().map_err(|e| Error::Storage(e.to_string()))?;
        let mut chain =
            Chain { db, headers: HeaderIndex::default(), side_store, config, contracts: RefCell::default() };
        let mut height = 0u64;
        while let Some(bytes) = chain.db.get(CF_BLOCKS, &height.to_be_bytes())? {
            let block: StoredBlock = serde_json::from_slice(&bytes).map_err(|e| Error::Storage(e.to_string()))?;
            chain.headers.push(block.header);
            height += 1;
        }
        if chain.headers.is_empty() {
            chain.genesis()?;
        }
        Ok(chain)
    }

    /// The configuration.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The tip header.
    pub fn tip(&self) -> &Header {
        self.headers.tip().expect("genesis exists once the chain is open")
    }

    /// A stored block by height.
    pub fn block(&self, height: u64) -> Result<Option<StoredBlock>> {
        match self.db.get(CF_BLOCKS, &height.to_be_bytes())? {
            None => Ok(None),
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| Error::Storage(e.to_string()))?)),
        }
    }

    /// Where a transaction was mined: (block height, index).
    pub fn tx_location(&self, txid: &[u8; 32]) -> Result<Option<(u64, u32)>> {
        Ok(self.db.get(CF_TXS, txid)?.map(|v| {
            let height = u64::from_be_bytes(v[..8].try_into().expect("12-byte entry"));
            let index = u32::from_be_bytes(v[8..12].try_into().expect("12-byte entry"));
            (height, index)
        }))
    }

    /// The database, for other persisted parts of the node (observer queue).
    pub fn db(&self) -> &ChainDb {
        &self.db
    }

    fn genesis(&mut self) -> Result<()> {
        let mut overlay = Overlay::default();
        {
            let mut store = BlockStore::new(&self.db, &mut overlay, &self.headers.ids, OPEN_TIP, &self.side_store);
            let boot = clarity_repl::clarity::boot_util::boot_code_addr(false);
            for (name, source) in clarity_repl::repl::boot::STACKS_BOOT_CODE_TESTNET.iter() {
                if !BOOT_CONTRACTS.contains(name) {
                    continue;
                }
                let id = QualifiedContractIdentifier::new(boot.into(), (*name).into());
                let version = if *name == "costs-3" { ClarityVersion::Clarity2 } else { ClarityVersion::Clarity1 };
                deploy_free(&mut store, &self.headers, &id, source, version)?;
            }
            let mut db = ClarityDatabase::new(&mut store, &self.headers, &self.headers);
            db.begin();
            db.set_clarity_epoch_version(EPOCH);
            for account in &self.config.accounts {
                let principal = PrincipalData::from(account.address);
                let mut snapshot = db.get_stx_balance_snapshot_genesis(&principal);
                snapshot.credit(account.balance);
                snapshot.save();
                db.increment_ustx_liquid_supply(account.balance)
                    .map_err(|e| Error::Storage(format!("liquid supply: {e}")))?;
            }
            db.commit();
            if let Some(failure) = store.failure.take() {
                return Err(Error::Storage(failure));
            }
        }
        let header = Header::seal(0, None, 0, self.config.genesis_time, &[]);
        self.commit_block(overlay, StoredBlock { header, receipts: Vec::new(), cost: Cost::default() })?;

        // The contracts are deployed by real signed transactions in block 1,
        // so observers see them exactly as they would on any network.
        let mut candidates = Vec::new();
        let mut nonces = std::collections::HashMap::new();
        for (key, name, source) in self.config.genesis_deploys.clone() {
            let nonce = nonces.entry(key.to_hex()).or_insert(0u64);
            let payload = txbuild::Payload::Deploy { name, source };
            let mut options = txbuild::TxOptions::new(*nonce, 0);
            options.chain_id = self.config.chain_id;
            let unsigned = txbuild::sign(&key, payload.clone(), &options)?;
            options.fee = txbuild::serialize(&unsigned).len() as u64 * self.config.min_fee_rate.max(1);
            let tx = txbuild::sign(&key, payload, &options)?;
            let raw = txbuild::serialize(&tx);
            candidates.push(Candidate { tx, raw });
            *nonce += 1;
        }
        if !candidates.is_empty() {
            let mined = self.mine_block(candidates, 1, self.config.genesis_time)?;
            if let Some((_, rejection)) = mined.dropped.first() {
                return Err(Error::Genesis(rejection.detail.clone()));
            }
            if let Some(failed) = mined.block.receipts.iter().find(|r| r.status != TxStatus::Success) {
                return Err(Error::Genesis(format!("deploy failed: {:?}", failed.vm_error)));
            }
        }
        Ok(())
    }

    /// Checks a transaction against the tip state, as a node does before
    /// admitting it to the mempool. Future nonces are admitted; they wait.
    pub fn validate(&self, candidate: &Candidate) -> std::result::Result<(), Rejection> {
        let tx = &candidate.tx;
        let testnet = tx.version == TransactionVersion::Testnet;
        if tx.chain_id != self.config.chain_id || testnet != (self.config.chain_id != 1) {
            return Err(Rejection::new(
                RejectReason::BadTransactionVersion,
                format!("chain id {:#x} / version {:?} is not this network's", tx.chain_id, tx.version),
            ));
        }
        tx.verify().map_err(|e| Rejection::new(RejectReason::SignatureValidation, e.to_string()))?;
        let min_fee = candidate.raw.len() as u64 * self.config.min_fee_rate;
        if tx.get_tx_fee() < min_fee {
            let mut r =
                Rejection::new(RejectReason::FeeTooLow, format!("fee {} below the minimum {min_fee}", tx.get_tx_fee()));
            r.data = Some(serde_json::json!({ "expected": min_fee, "actual": tx.get_tx_fee() }));
            return Err(r);
        }
        let origin = PrincipalData::from(tx.origin_address());
        let payer = tx.sponsor_address().map(PrincipalData::from).unwrap_or_else(|| origin.clone());
        let (_, nonce) = self.account(&origin)?;
        if tx.get_origin_nonce() < nonce {
            let mut r = Rejection::new(
                RejectReason::BadNonce,
                format!("nonce {} already used; next is {nonce}", tx.get_origin_nonce()),
            );
            r.data = Some(serde_json::json!({
                "expected": nonce, "actual": tx.get_origin_nonce(), "principal": origin.to_string(), "is_origin": true
            }));
            return Err(r);
        }
        // A sponsored transaction spends the sponsor's nonce too; without
        // this check one sponsor signature could be replayed (and the
        // sponsor's nonce moved back).
        if let (Some(sponsor), Some(sponsor_nonce)) = (tx.sponsor_address(), tx.auth.get_sponsor_nonce()) {
            let sponsor = PrincipalData::from(sponsor);
            let (_, next) = self.account(&sponsor)?;
            if sponsor_nonce < next {
                let mut r = Rejection::new(
                    RejectReason::BadNonce,
                    format!("sponsor nonce {sponsor_nonce} already used; next is {next}"),
                );
                r.data = Some(serde_json::json!({
                    "expected": next, "actual": sponsor_nonce, "principal": sponsor.to_string(), "is_origin": false
                }));
                return Err(r);
            }
        }
        let (balance, _) = self.account(&payer)?;
        let spend = u128::from(tx.get_tx_fee())
            + match &tx.payload {
                TransactionPayload::TokenTransfer(_, amount, _) if payer == origin => u128::from(*amount),
                _ => 0,
            };
        if balance < spend {
            let mut r = Rejection::new(RejectReason::NotEnoughFunds, format!("needs {spend}, has {balance}"));
            r.data = Some(
                serde_json::json!({ "expected": format!("0x{spend:032x}"), "actual": format!("0x{balance:032x}") }),
            );
            return Err(r);
        }
        match &tx.payload {
            TransactionPayload::TokenTransfer(recipient, amount, _) => {
                // As Stacks: a transfer moves exactly what it says, so
                // post-conditions make it invalid (and the post-condition
                // mode does not apply to it).
                if !tx.post_conditions.is_empty() {
                    return Err(Rejection::new(
                        RejectReason::ServerFailureOther,
                        "Invalid Stacks transaction: TokenTransfer transactions do not support post-conditions",
                    ));
                }
                if *recipient == origin {
                    return Err(Rejection::new(RejectReason::TransferRecipientIsSender, "recipient is the sender"));
                }
                if *amount == 0 {
                    return Err(Rejection::new(RejectReason::TransferAmountMustBePositive, "amount is zero"));
                }
            }
            TransactionPayload::ContractCall(call) => {
                let id = QualifiedContractIdentifier::new(call.address.into(), call.contract_name.clone());
                self.check_call(&id, call.function_name.as_str(), &call.function_args)?;
            }
            TransactionPayload::SmartContract(contract, version) => {
                if version.is_some_and(|v| v > ClarityVersion::Clarity2) {
                    return Err(Rejection::new(RejectReason::Deserialization, "only Clarity 1 and 2 are supported"));
                }
                let id = QualifiedContractIdentifier::new(origin_standard(tx), contract.name.clone());
                if self.contract_source(&id)?.is_some() {
                    return Err(Rejection::new(RejectReason::ContractAlreadyExists, format!("{id} exists")));
                }
            }
            TransactionPayload::Coinbase(..) | TransactionPayload::PoisonMicroblock(..) => {
                return Err(Rejection::new(RejectReason::NoCoinbaseViaMempool, "miner-only payload"));
            }
        }
        Ok(())
    }

    fn check_call(
        &self,
        id: &QualifiedContractIdentifier,
        function: &str,
        args: &[Value],
    ) -> std::result::Result<(), Rejection> {
        let contract = self
            .contract(id)
            .map_err(|e| Rejection::new(RejectReason::ServerFailureDatabase, e.to_string()))?
            .ok_or_else(|| Rejection::new(RejectReason::NoSuchContract, format!("{id} does not exist")))?;
        let Some(func) = contract.contract_context.lookup_function(function).filter(|f| f.is_public()) else {
            return Err(Rejection::new(
                RejectReason::NoSuchPublicFunction,
                format!("{id} has no public function {function}"),
            ));
        };
        let params = func.get_arg_types();
        if params.len() != args.len() {
            return Err(Rejection::new(
                RejectReason::BadFunctionArgument,
                format!("{function} takes {} arguments, got {}", params.len(), args.len()),
            ));
        }
        for (i, (param, arg)) in params.iter().zip(args).enumerate() {
            if !param.admits(&EPOCH, arg).unwrap_or(false) {
                return Err(Rejection::new(
                    RejectReason::BadFunctionArgument,
                    format!("argument {} of {function} must be {param}", i + 1),
                ));
            }
        }
        Ok(())
    }

    /// Runs `f` against the tip state in a throwaway overlay.
    fn read<T>(&self, f: impl FnOnce(&mut BlockStore<'_>) -> T) -> Result<T> {
        let mut overlay = Overlay::default();
        let mut store = BlockStore::new(&self.db, &mut overlay, &self.headers.ids, OPEN_TIP, &self.side_store);
        let out = f(&mut store);
        match store.failure.take() {
            Some(failure) => Err(Error::Storage(failure)),
            None => Ok(out),
        }
    }

    /// A deployed contract, parsed (cached; see the `contracts` field).
    pub fn contract(&self, id: &QualifiedContractIdentifier) -> Result<Option<Arc<Contract>>> {
        if let Some(c) = self.contracts.borrow().get(id) {
            return Ok(Some(c.clone()));
        }
        let loaded = self.read(|store| load_contract(store, &self.headers, id))?.map_err(Error::Storage)?;
        if let Some(c) = &loaded {
            self.contracts.borrow_mut().insert(id.clone(), c.clone());
        }
        Ok(loaded)
    }

    /// (unlocked balance, next nonce) of an account at the tip.
    pub fn account(&self, principal: &PrincipalData) -> Result<(u128, u64)> {
        self.read(|store| {
            let mut db = ClarityDatabase::new(store, &self.headers, &self.headers);
            db.begin();
            let balance = db.get_stx_balance_snapshot(principal).get_available_balance();
            let nonce = db.get_account_nonce(principal);
            db.roll_back();
            (balance, nonce)
        })
    }

    /// A deployed contract's source, if it exists.
    pub fn contract_source(&self, id: &QualifiedContractIdentifier) -> Result<Option<String>> {
        self.read(|store| {
            let mut db = ClarityDatabase::new(store, &self.headers, &self.headers);
            db.begin();
            let src = db.get_contract_src(id);
            db.roll_back();
            src
        })
    }

    /// A contract's analysis (for its interface), if it exists.
    pub fn contract_analysis(&self, id: &QualifiedContractIdentifier) -> Result<Option<ContractAnalysis>> {
        self.read(|store| {
            let mut adb = AnalysisDatabase::new(store);
            adb.begin();
            let analysis = adb.load_contract(id, &EPOCH);
            adb.roll_back();
            analysis
        })
    }

    /// A data variable's current value (`None` if the contract or
    /// variable does not exist).
    pub fn data_var(&self, id: &QualifiedContractIdentifier, name: &str) -> Result<Option<Value>> {
        self.read(|store| {
            let mut db = ClarityDatabase::new(store, &self.headers, &self.headers);
            db.begin();
            let v = db.lookup_variable_unknown_descriptor(id, name).ok();
            db.roll_back();
            v
        })
    }

    /// A map entry as a serialized optional, as `/v2/map_entry` returns it
    /// (`None` if the contract or map does not exist).
    pub fn map_entry(&self, id: &QualifiedContractIdentifier, map: &str, key: &Value) -> Result<Option<Value>> {
        self.read(|store| {
            let mut db = ClarityDatabase::new(store, &self.headers, &self.headers);
            db.begin();
            let v = db.fetch_entry_unknown_descriptor(id, map, key).ok();
            db.roll_back();
            v
        })
    }

    /// The height a contract was deployed at.
    pub fn contract_height(&self, id: &QualifiedContractIdentifier) -> Result<Option<u32>> {
        self.read(|store| {
            let key = clarity_repl::clarity::vm::database::clarity_store::make_contract_hash_key(id);
            clarity_repl::clarity::vm::database::ClarityBackingStore::get(store, &key)
                .and_then(|c| u32::from_str_radix(&c[c.len().saturating_sub(8)..], 16).ok())
        })
    }

    // The VM's error type is large and not ours to box.
    #[allow(clippy::result_large_err)]
    /// Calls a read-only function at the tip (what `/v2/contracts/call-read`
    /// does); state changes are discarded.
    pub fn call_read_only(
        &self,
        sender: &PrincipalData,
        id: &QualifiedContractIdentifier,
        function: &str,
        args: &[Value],
    ) -> Result<std::result::Result<Value, String>> {
        self.execute_at_tip(sender, id, function, args, true)
    }

    // The VM's error type is large and not ours to box.
    #[allow(clippy::result_large_err)]
    /// What a transaction from `sender` calling the public `function` would
    /// return if it ran on the tip's state now — at the tip's burn height,
    /// as read-only calls see it — with every change discarded. Not a
    /// stacks-node route: the contract's own answer for tests that compare
    /// the API's authorization with it (Clarinet's simnet offers the same).
    pub fn simulate_public(
        &self,
        sender: &PrincipalData,
        id: &QualifiedContractIdentifier,
        function: &str,
        args: &[Value],
    ) -> Result<std::result::Result<Value, String>> {
        self.execute_at_tip(sender, id, function, args, false)
    }

    // The VM's error type is large and not ours to box.
    #[allow(clippy::result_large_err)]
    fn execute_at_tip(
        &self,
        sender: &PrincipalData,
        id: &QualifiedContractIdentifier,
        function: &str,
        args: &[Value],
        read_only: bool,
    ) -> Result<std::result::Result<Value, String>> {
        self.read(|store| {
            let mut db = ClarityDatabase::new(store, &self.headers, &self.headers);
            let tracker = match LimitedCostTracker::new(false, self.config.chain_id, BLOCK_LIMIT, &mut db, EPOCH) {
                Ok(t) => t,
                Err(e) => return Err(format!("cost tracker: {e:?}")),
            };
            let mut env = OwnedEnvironment::new_cost_limited(false, self.config.chain_id, db, tracker, EPOCH);
            let args: Vec<SymbolicExpression> = args.iter().cloned().map(SymbolicExpression::atom_value).collect();
            env.execute_in_env(sender.clone(), None, None, |e| e.execute_contract(id, function, &args, read_only))
                .map(|(v, _, _)| v)
                .map_err(|e| e.to_string())
        })
    }

    /// Mines one block on the tip: `candidates` in order (callers order by
    /// fee and nonce), with the burn height advanced by `burn_advance`.
    pub fn mine_block(&mut self, candidates: Vec<Candidate>, burn_advance: u32, timestamp: u64) -> Result<Mined> {
        let parent = self.tip().clone();
        let mut overlay = Overlay::default();
        let mut receipts = Vec::new();
        let mut deferred = Vec::new();
        let mut dropped = Vec::new();
        let mut included = Vec::new();
        let total;
        {
            let mut store = BlockStore::new(&self.db, &mut overlay, &self.headers.ids, OPEN_TIP, &self.side_store);
            let mut tracker = {
                let mut db = ClarityDatabase::new(&mut store, &self.headers, &self.headers);
                LimitedCostTracker::new(false, self.config.chain_id, self.config.block_limit.clone(), &mut db, EPOCH)
                    .map_err(|e| Error::Storage(format!("cost tracker: {e:?}")))?
            };
            let mut full = false;
            for candidate in candidates {
                if full {
                    deferred.push(candidate);
                    continue;
                }
                let tx_index = receipts.len() as u32;
                let applied = apply(
                    &mut store,
                    &self.headers,
                    &mut tracker,
                    &self.config,
                    &mut self.contracts.borrow_mut(),
                    &candidate,
                    tx_index,
                );
                if let Some(failure) = store.failure.take() {
                    // Contracts cached from this block's writes were never
                    // committed.
                    self.contracts.borrow_mut().clear();
                    return Err(Error::Storage(failure));
                }
                match applied.inspect_err(|_| self.contracts.borrow_mut().clear())? {
                    Applied::Included(receipt) => {
                        included.push(candidate.txid());
                        receipts.push(receipt);
                    }
                    Applied::Deferred => {
                        // A full block stops here; a future nonce just waits.
                        full = remaining_is_low(&tracker, &self.config.block_limit);
                        deferred.push(candidate);
                    }
                    Applied::Dropped(rejection) => dropped.push((candidate, rejection)),
                }
            }
            total = tracker.get_total();
        }
        let header = Header::seal(
            parent.height + 1,
            Some(&parent),
            parent.burn_block_height + burn_advance,
            timestamp,
            &included,
        );
        let block = StoredBlock { header, receipts, cost: Cost::from(&total) };
        self.commit_block(overlay, block.clone()).inspect_err(|_| self.contracts.borrow_mut().clear())?;
        Ok(Mined { block, deferred, dropped })
    }

    fn commit_block(&mut self, overlay: Overlay, block: StoredBlock) -> Result<()> {
        let mut batch = WriteBatch::default();
        overlay.write_to(&self.db, &mut batch);
        let height = block.header.height.to_be_bytes();
        let json = serde_json::to_vec(&block).map_err(|e| Error::Storage(e.to_string()))?;
        batch.put_cf(self.db.cf(CF_BLOCKS), height, json);
        batch.put_cf(self.db.cf(CF_BLOCK_IDS), block.header.index_block_hash, height);
        for receipt in &block.receipts {
            let txid = hex::decode(&receipt.txid[2..]).map_err(|e| Error::Storage(e.to_string()))?;
            let mut loc = height.to_vec();
            loc.extend_from_slice(&receipt.tx_index.to_be_bytes());
            batch.put_cf(self.db.cf(CF_TXS), txid, loc);
        }
        batch.put_cf(self.db.cf(CF_META), b"tip", height);
        self.db.write(batch)?;
        self.headers.push(block.header);
        Ok(())
    }
}

fn remaining_is_low(tracker: &LimitedCostTracker, limit: &ExecutionCost) -> bool {
    // Once any dimension is over 95% used, treat the block as full rather
    // than trying every remaining candidate against it.
    let used = tracker.get_total();
    let pairs = [
        (used.runtime, limit.runtime),
        (used.read_count, limit.read_count),
        (used.read_length, limit.read_length),
        (used.write_count, limit.write_count),
        (used.write_length, limit.write_length),
    ];
    pairs.iter().any(|(u, l)| *u * 100 > *l * 95)
}

fn origin_standard(tx: &StacksTransaction) -> clarity_repl::clarity::vm::types::StandardPrincipalData {
    let addr = tx.origin_address();
    clarity_repl::clarity::vm::types::StandardPrincipalData(addr.version, addr.bytes.0)
}

fn is_cost_error(e: &VmError) -> bool {
    matches!(
        e,
        VmError::Unchecked(CheckErrors::CostOverflow) | VmError::Unchecked(CheckErrors::CostBalanceExceeded(..))
    )
}

/// Deploys a boot contract without a cost budget (genesis only).
fn deploy_free(
    store: &mut BlockStore<'_>,
    headers: &HeaderIndex,
    id: &QualifiedContractIdentifier,
    source: &str,
    version: ClarityVersion,
) -> Result<()> {
    let fail = |e: String| Error::Genesis(format!("{id}: {e}"));
    let mut cost = LimitedCostTracker::new_free();
    let mut ast = ast::build_ast_with_rules(id, source, &mut cost, version, EPOCH, ASTRules::PrecheckSize)
        .map_err(|e| fail(e.to_string()))?;
    {
        // Type-checks and saves the analysis (`save_contract`), as a
        // deploy does.
        let mut adb = AnalysisDatabase::new(store);
        analysis::run_analysis(
            id,
            &mut ast.expressions,
            &mut adb,
            true,
            LimitedCostTracker::new_free(),
            EPOCH,
            version,
        )
        .map_err(|(e, _)| fail(e.to_string()))?;
    }
    let db = ClarityDatabase::new(store, headers, headers);
    let mut env = OwnedEnvironment::new_free(false, CHAIN_ID_TESTNET, db, EPOCH);
    env.initialize_contract_from_ast(id.clone(), version, &ast, source, None).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Executes one candidate in the block under construction.
// The VM's error type is large and not ours to box.
#[allow(clippy::result_large_err)]
fn apply(
    store: &mut BlockStore<'_>,
    headers: &HeaderIndex,
    tracker: &mut LimitedCostTracker,
    config: &ChainConfig,
    contracts: &mut ContractCache,
    candidate: &Candidate,
    tx_index: u32,
) -> Result<Applied> {
    let tx = &candidate.tx;
    let txid = format!("0x{}", hex::encode(candidate.txid()));
    let origin = PrincipalData::from(tx.origin_address());
    let payer = tx.sponsor_address().map(PrincipalData::from).unwrap_or_else(|| origin.clone());
    let fee = tx.get_tx_fee();
    let nonce = tx.get_origin_nonce();

    if matches!(tx.payload, TransactionPayload::TokenTransfer(..)) && !tx.post_conditions.is_empty() {
        // Refused at admission; never mined (as Stacks).
        return Ok(Applied::Dropped(Rejection::new(
            RejectReason::ServerFailureOther,
            "Invalid Stacks transaction: TokenTransfer transactions do not support post-conditions",
        )));
    }

    // Deploys are parsed and type-checked before execution (as Stacks does);
    // a contract that fails analysis is mined as a failed transaction.
    let mut deploy: Option<(QualifiedContractIdentifier, ClarityVersion, String, std::result::Result<_, String>)> =
        None;
    if let TransactionPayload::SmartContract(contract, version) = &tx.payload {
        let version = version.unwrap_or(ClarityVersion::Clarity2);
        let id = QualifiedContractIdentifier::new(origin_standard(tx), contract.name.clone());
        let source = contract.code_body.to_string();
        let mut cost = tracker.clone();
        let analysed = ast::build_ast_with_rules(&id, &source, &mut cost, version, EPOCH, ASTRules::PrecheckSize)
            .map_err(|e| e.to_string())
            .and_then(|mut ast| {
                let mut adb = AnalysisDatabase::new(store);
                adb.begin();
                let exists = adb.has_contract(&id);
                let result = analysis::run_analysis(&id, &mut ast.expressions, &mut adb, false, cost, EPOCH, version);
                adb.roll_back();
                if exists {
                    return Err(format!("contract {id} already exists"));
                }
                result.map(|a| (ast, a)).map_err(|(e, _)| e.to_string())
            });
        deploy = Some((id, version, source, analysed));
    }

    // The called contract, parsed once (it may have been deployed earlier
    // in this very block: then it is read through the block's overlay).
    let called = match &tx.payload {
        TransactionPayload::ContractCall(call) => {
            let id = QualifiedContractIdentifier::new(call.address.into(), call.contract_name.clone());
            match contracts.get(&id) {
                Some(c) => Some((id, Some(c.clone()))),
                None => {
                    let loaded = load_contract(store, headers, &id).map_err(Error::Storage)?;
                    if let Some(c) = &loaded {
                        contracts.insert(id.clone(), c.clone());
                    }
                    Some((id, loaded))
                }
            }
        }
        _ => None,
    };

    // Cloning the tracker would copy the cost contracts' code; the total
    // is all that has to be restored.
    let total_before = tracker.get_total();
    let mut db = ClarityDatabase::new(store, headers, headers);
    db.begin(); // the whole transaction
    let expected = db.get_account_nonce(&origin);
    if nonce > expected {
        db.roll_back();
        return Ok(Applied::Deferred);
    }
    if nonce < expected {
        db.roll_back();
        return Ok(Applied::Dropped(Rejection::new(
            RejectReason::BadNonce,
            format!("nonce {nonce} already used; next is {expected}"),
        )));
    }
    // The sponsor's nonce, as the origin's: a later one waits, a used one
    // is dropped.
    if let (Some(sponsor), Some(sponsor_nonce)) = (tx.sponsor_address(), tx.auth.get_sponsor_nonce()) {
        let next = db.get_account_nonce(&PrincipalData::from(sponsor));
        if sponsor_nonce > next {
            db.roll_back();
            return Ok(Applied::Deferred);
        }
        if sponsor_nonce < next {
            db.roll_back();
            return Ok(Applied::Dropped(Rejection::new(
                RejectReason::BadNonce,
                format!("sponsor nonce {sponsor_nonce} already used; next is {next}"),
            )));
        }
    }
    let available = db.get_stx_balance_snapshot(&payer).get_available_balance();
    if available < u128::from(fee) {
        db.roll_back();
        return Ok(Applied::Dropped(Rejection::new(
            RejectReason::NotEnoughFunds,
            format!("fee {fee} exceeds balance {available}"),
        )));
    }
    {
        let mut snapshot = db.get_stx_balance_snapshot(&payer);
        snapshot.debit(u128::from(fee));
        snapshot.save();
    }
    db.set_account_nonce(&origin, nonce + 1);
    if let (Some(sponsor), Some(sponsor_nonce)) = (tx.sponsor_address(), tx.auth.get_sponsor_nonce()) {
        db.set_account_nonce(&PrincipalData::from(sponsor), sponsor_nonce + 1);
    }

    db.begin(); // the payload
    let taken = std::mem::replace(tracker, LimitedCostTracker::new_free());
    let mut env = OwnedEnvironment::new_cost_limited(false, config.chain_id, db, taken, EPOCH);
    let mut interface = None;
    let outcome: std::result::Result<(Value, AssetMap, Vec<StacksTransactionEvent>), VmError> = match &tx.payload {
        TransactionPayload::TokenTransfer(recipient, amount, memo) => {
            let memo = BuffData { data: memo.0.to_vec() };
            env.execute_in_env(origin.clone(), None, None, |e| {
                e.stx_transfer(&origin, recipient, u128::from(*amount), &memo)
            })
        }
        TransactionPayload::ContractCall(call) => match &called {
            Some((id, Some(contract))) => {
                env.execute_in_env(origin.clone(), tx.sponsor_address().map(PrincipalData::from), None, |e| {
                    call_public(e, id, contract, call.function_name.as_str(), &call.function_args)
                })
            }
            _ => Err(CheckErrors::NoSuchContract(call.contract_name.to_string()).into()),
        },
        TransactionPayload::SmartContract(..) => match &deploy {
            Some((id, version, source, Ok((ast, analysis)))) => {
                interface = Some(analysis::contract_interface_builder::build_contract_interface(analysis));
                env.initialize_contract_from_ast(id.clone(), *version, ast, source, None)
                    .map(|((), assets, events)| (Value::okay_true(), assets, events))
            }
            Some((_, _, _, Err(e))) => Err(VmError::Interpreter(InterpreterError::InterpreterError(e.clone()))),
            None => unreachable!("deploy analysed above"),
        },
        TransactionPayload::Coinbase(..) | TransactionPayload::PoisonMicroblock(..) => {
            Err(VmError::Interpreter(InterpreterError::InterpreterError("miner-only payload".into())))
        }
    };
    let (mut db, used) = env.destruct().expect("the environment is back at top level");
    *tracker = used;

    let (status, result, events, vm_error) = match outcome {
        Err(e) if is_cost_error(&e) => {
            db.roll_back();
            db.roll_back();
            tracker.set_total(total_before);
            tracker.reset_memory();
            // Alone in a fresh block it could never fit: drop it.
            let fresh = tracker.get_total() == ExecutionCost::zero();
            return Ok(if fresh {
                Applied::Dropped(Rejection::new(RejectReason::TooExpensive, "exceeds the block budget"))
            } else {
                Applied::Deferred
            });
        }
        Err(e) => {
            db.roll_back();
            (TxStatus::AbortByResponse, Value::err_none(), Vec::new(), Some(e.to_string()))
        }
        Ok((value, assets, events)) => {
            let checked = !matches!(tx.payload, TransactionPayload::TokenTransfer(..));
            if checked && !post_conditions_hold(tx, &origin, &assets) {
                db.roll_back();
                (TxStatus::AbortByPostCondition, value, Vec::new(), None)
            } else {
                let committed = !matches!(&value, Value::Response(r) if !r.committed);
                if committed {
                    db.commit();
                    (TxStatus::Success, value, events, None)
                } else {
                    db.roll_back();
                    (TxStatus::AbortByResponse, value, Vec::new(), None)
                }
            }
        }
    };
    db.commit(); // fee, nonce and (if committed) the payload
    drop(db);
    if status == TxStatus::Success {
        if let Some((id, _, _, Ok((_, analysis)))) = &deploy {
            let mut adb = AnalysisDatabase::new(store);
            adb.begin();
            adb.insert_contract(id, analysis).map_err(|e| Error::Storage(format!("saving analysis: {e}")))?;
            adb.commit();
        }
    }
    tracker.reset_memory();
    let cost = {
        let mut c = tracker.get_total();
        c.sub(&total_before).map_err(|e| Error::Storage(format!("cost: {e:?}")))?;
        c
    };
    let mut raw_result = Vec::new();
    result.consensus_serialize(&mut raw_result).map_err(|e| Error::Storage(e.to_string()))?;
    let event_txid = TxidHex(txid.clone());
    let events = events.iter().enumerate().map(|(i, e)| e.json_serialize(i, &event_txid, true)).collect();
    Ok(Applied::Included(Receipt {
        txid,
        tx_index,
        status,
        raw_result: format!("0x{}", hex::encode(raw_result)),
        raw_tx: format!("0x{}", hex::encode(&candidate.raw)),
        events,
        execution_cost: Cost::from(&cost),
        contract_interface: interface.map(|i| serde_json::to_value(i).unwrap_or(serde_json::Value::Null)),
        vm_error,
        sender: tx.origin_address().to_string(),
        nonce,
        fee,
    }))
}

/// Reads and parses a contract through `store` (`Ok(None)` if it does not
/// exist; `Err` if its stored form is unreadable).
fn load_contract(
    store: &mut BlockStore<'_>,
    headers: &HeaderIndex,
    id: &QualifiedContractIdentifier,
) -> std::result::Result<Option<Arc<Contract>>, String> {
    let mut db = ClarityDatabase::new(store, headers, headers);
    db.begin();
    let contract = if db.has_contract(id) {
        db.get_contract(id).map(|c| Some(Arc::new(c))).map_err(|e| format!("loading {id}: {e}"))
    } else {
        Ok(None)
    };
    db.roll_back();
    contract
}

/// Calls a public function of an already parsed contract: what the VM's
/// `Environment::execute_contract` does for a top-level call (same cost
/// charged for loading the contract, same memory accounting, same checks),
/// minus parsing the contract again.
#[allow(clippy::result_large_err)]
fn call_public(
    env: &mut Environment<'_, '_, '_>,
    id: &QualifiedContractIdentifier,
    contract: &Contract,
    function: &str,
    args: &[Value],
) -> std::result::Result<Value, VmError> {
    let size = env.global_context.database.get_contract_size(id)?;
    runtime_cost(ClarityCostFunction::LoadContract, env, size)?;
    env.add_memory(size)?;
    let result = (|| {
        let func = contract
            .contract_context
            .lookup_function(function)
            .ok_or_else(|| CheckErrors::UndefinedFunction(function.to_string()))?;
        if !func.is_public() {
            return Err(CheckErrors::NoSuchPublicFunction(id.to_string(), function.to_string()).into());
        }
        let identifier = func.get_identifier();
        if env.call_stack.contains(&identifier) {
            return Err(CheckErrors::CircularReference(vec![identifier.to_string()]).into());
        }
        env.call_stack.insert(&identifier, true);
        let result = env.execute_function_as_transaction(&func, args, Some(&contract.contract_context));
        env.call_stack.remove(&identifier, true)?;
        result
    })();
    env.drop_memory(size);
    result
}

/// Prints a txid the way the VM's event JSON expects (`0x…`).
struct TxidHex(String);

impl std::fmt::Debug for TxidHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_start_matches("0x"))
    }
}

/// Evaluates the transaction's post-conditions against what moved.
/// In deny mode, every asset movement must be covered by a condition.
fn post_conditions_hold(tx: &StacksTransaction, origin: &PrincipalData, assets: &AssetMap) -> bool {
    let principal_of = |p: &PostConditionPrincipal| -> PrincipalData {
        match p {
            PostConditionPrincipal::Origin => origin.clone(),
            PostConditionPrincipal::Standard(a) => PrincipalData::from(*a),
            PostConditionPrincipal::Contract(a, name) => {
                PrincipalData::Contract(QualifiedContractIdentifier::new((*a).into(), name.clone()))
            }
        }
    };
    let mut covered: Vec<(PrincipalData, Option<AssetIdentifier>)> = Vec::new();
    for pc in &tx.post_conditions {
        let ok = match pc {
            TransactionPostCondition::STX(p, code, amount) => {
                let who = principal_of(p);
                let sent = assets.get_stx(&who).unwrap_or(0) + assets.get_stx_burned(&who).unwrap_or(0);
                covered.push((who, None));
                code.check(u128::from(*amount), sent)
            }
            TransactionPostCondition::Fungible(p, info, code, amount) => {
                let who = principal_of(p);
                let asset = asset_id(info);
                let sent = assets.get_fungible_tokens(&who, &asset).unwrap_or(0);
                covered.push((who, Some(asset)));
                code.check(u128::from(*amount), sent)
            }
            TransactionPostCondition::Nonfungible(p, info, value, code) => {
                let who = principal_of(p);
                let asset = asset_id(info);
                let sent = assets.get_nonfungible_tokens(&who, &asset).is_some_and(|vs| vs.contains(value));
                covered.push((who, Some(asset)));
                match code {
                    NonfungibleConditionCode::Sent => sent,
                    NonfungibleConditionCode::NotSent => !sent,
                }
            }
        };
        if !ok {
            return false;
        }
    }
    if tx.post_condition_mode == TransactionPostConditionMode::Allow {
        return true;
    }
    for (principal, entries) in assets.clone().to_table() {
        for (asset, entry) in entries {
            let key = match entry {
                AssetMapEntry::STX(_) | AssetMapEntry::Burn(_) => None,
                AssetMapEntry::Token(_) | AssetMapEntry::Asset(_) => Some(asset),
            };
            if !covered.iter().any(|(p, a)| *p == principal && *a == key) {
                return false;
            }
        }
    }
    true
}

fn asset_id(info: &clarity_repl::codec::AssetInfo) -> AssetIdentifier {
    AssetIdentifier {
        contract_identifier: QualifiedContractIdentifier::new(info.contract_address.into(), info.contract_name.clone()),
        asset_name: info.asset_name.clone(),
    }
}
