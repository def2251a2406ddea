//! Building and signing Stacks transactions (SIP-005) — single-sig P2PKH,
//! what a wallet does, and M-of-N multi-sig P2SH. Used by the devnet's
//! genesis, the wallet and tests.

use clarity_repl::clarity::address::AddressHashMode;
use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::stacks_common::types::chainstate::StacksAddress;
use clarity_repl::clarity::util::secp256k1::Secp256k1PublicKey;
use clarity_repl::clarity::vm::types::PrincipalData;
use clarity_repl::clarity::vm::{ClarityName, ClarityVersion, ContractName, Value};
use clarity_repl::codec::{
    StacksString, StacksTransaction, StacksTransactionSigner, TokenTransferMemo, TransactionAnchorMode,
    TransactionAuth, TransactionContractCall, TransactionPayload, TransactionPostCondition,
    TransactionPostConditionMode, TransactionSmartContract, TransactionVersion,
};

use crate::keys::StacksKey;
use crate::{Error, Result};

/// The chain id of testnet and of Clarinet's (and our) devnet.
pub const CHAIN_ID_TESTNET: u32 = 0x8000_0000;

/// What a transaction does.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Call a public function.
    ContractCall {
        /// The deployer.
        address: StacksAddress,
        /// The contract name.
        contract: String,
        /// The function.
        function: String,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// Deploy a Clarity 2 contract.
    Deploy {
        /// The contract name.
        name: String,
        /// Its source.
        source: String,
    },
    /// Move STX.
    Transfer {
        /// Who gets them.
        recipient: PrincipalData,
        /// How many micro-STX.
        amount: u64,
    },
}

/// Transaction options beyond the payload.
#[derive(Debug, Clone)]
pub struct TxOptions {
    /// The origin's nonce.
    pub nonce: u64,
    /// The fee in micro-STX.
    pub fee: u64,
    /// The chain id.
    pub chain_id: u32,
    /// Post-condition mode (stacks.js defaults to deny).
    pub mode: TransactionPostConditionMode,
    /// Post-conditions.
    pub post_conditions: Vec<TransactionPostCondition>,
}

impl TxOptions {
    /// Testnet, deny mode, no post-conditions.
    pub fn new(nonce: u64, fee: u64) -> Self {
        TxOptions {
            nonce,
            fee,
            chain_id: CHAIN_ID_TESTNET,
            mode: TransactionPostConditionMode::Deny,
            post_conditions: Vec::new(),
        }
    }
}

/// Builds and signs a single-sig transaction.
pub fn sign(key: &StacksKey, payload: Payload, options: &TxOptions) -> Result<StacksTransaction> {
    let auth = TransactionAuth::from_p2pkh(&key.to_private_key())
        .ok_or_else(|| Error::Transaction("cannot build a spending condition for this key".into()))?;
    let mut signer = StacksTransactionSigner::new(&unsigned(auth, payload, options)?);
    signer.sign_origin(&key.to_private_key()).map_err(|e| Error::Transaction(format!("signing failed: {e}")))?;
    signer.get_tx().ok_or_else(|| Error::Transaction("signature incomplete".into()))
}

/// Builds a sponsored single-sig transaction: `origin` signs what it does,
/// `sponsor` pays the fee (`options.fee`) with its own nonce
/// (`sponsor_nonce`), as Stacks sponsored transactions work (the origin
/// signs first over an empty sponsor condition, then the sponsor).
pub fn sign_sponsored(
    origin: &StacksKey,
    sponsor: &StacksKey,
    sponsor_nonce: u64,
    payload: Payload,
    options: &TxOptions,
) -> Result<StacksTransaction> {
    let condition = |key: &StacksKey| -> Result<clarity_repl::codec::TransactionSpendingCondition> {
        let pubkey = public_keys(std::slice::from_ref(key))?.remove(0);
        clarity_repl::codec::TransactionSpendingCondition::new_singlesig_p2pkh(pubkey)
            .ok_or_else(|| Error::Transaction("cannot build a spending condition for this key".into()))
    };
    let auth = TransactionAuth::Sponsored(
        condition(origin)?,
        clarity_repl::codec::TransactionSpendingCondition::new_initial_sighash(),
    );
    let mut signer = StacksTransactionSigner::new(&unsigned(auth, payload, options)?);
    signer.sign_origin(&origin.to_private_key()).map_err(|e| Error::Transaction(format!("signing failed: {e}")))?;
    let mut paying = condition(sponsor)?;
    paying.set_nonce(sponsor_nonce);
    paying.set_tx_fee(options.fee);
    let mut signer = StacksTransactionSigner::new_sponsor(&signer.get_tx_incomplete(), paying)
        .map_err(|e| Error::Transaction(format!("sponsoring failed: {e}")))?;
    signer.sign_sponsor(&sponsor.to_private_key()).map_err(|e| Error::Transaction(format!("signing failed: {e}")))?;
    signer.get_tx().ok_or_else(|| Error::Transaction("signature incomplete".into()))
}

/// The P2SH address of an M-of-N multi-sig account (keys in order).
pub fn multisig_address(keys: &[StacksKey], required: u16, version: u8) -> Result<StacksAddress> {
    StacksAddress::from_public_keys(
        version,
        &AddressHashMode::SerializeP2SH,
        usize::from(required),
        &public_keys(keys)?,
    )
    .ok_or_else(|| Error::Transaction("not a valid multi-sig key set".into()))
}

fn public_keys(keys: &[StacksKey]) -> Result<Vec<Secp256k1PublicKey>> {
    keys.iter()
        .map(|k| {
            Secp256k1PublicKey::from_slice(&k.public_key())
                .map_err(|e| Error::Transaction(format!("invalid public key: {e}")))
        })
        .collect()
}

/// Builds an M-of-N multi-sig P2SH transaction from `keys` (in the
/// account's order), signed by those whose `signs` entry is true and
/// carrying the others' public keys, as Stacks multi-sig wallets do.
/// Stacks accepts it only with exactly `required` signatures.
pub fn sign_multisig(
    keys: &[StacksKey],
    signs: &[bool],
    required: u16,
    payload: Payload,
    options: &TxOptions,
) -> Result<StacksTransaction> {
    if keys.len() != signs.len() {
        return Err(Error::Transaction("one signing flag per key".into()));
    }
    let pubkeys = public_keys(keys)?;
    let condition = clarity_repl::codec::TransactionSpendingCondition::new_multisig_p2sh(required, pubkeys.clone())
        .ok_or_else(|| Error::Transaction("not a valid multi-sig key set".into()))?;
    let mut signer = StacksTransactionSigner::new(&unsigned(TransactionAuth::Standard(condition), payload, options)?);
    // The protocol checks the count itself; a wallet may build a short
    // transaction (for the node to refuse).
    signer.disable_checks();
    for ((key, pubkey), signs) in keys.iter().zip(&pubkeys).zip(signs) {
        if *signs { signer.sign_origin(&key.to_private_key()) } else { signer.append_origin(pubkey) }
            .map_err(|e| Error::Transaction(format!("signing failed: {e}")))?;
    }
    Ok(signer.tx.clone())
}

/// The transaction before any signature.
fn unsigned(auth: TransactionAuth, payload: Payload, options: &TxOptions) -> Result<StacksTransaction> {
    let payload = match payload {
        Payload::ContractCall { address, contract, function, args } => {
            TransactionPayload::ContractCall(TransactionContractCall {
                address,
                contract_name: ContractName::try_from(contract)
                    .map_err(|e| Error::Transaction(format!("invalid contract name: {e}")))?,
                function_name: ClarityName::try_from(function)
                    .map_err(|e| Error::Transaction(format!("invalid function name: {e}")))?,
                function_args: args,
            })
        }
        Payload::Deploy { name, source } => TransactionPayload::SmartContract(
            TransactionSmartContract {
                name: ContractName::try_from(name)
                    .map_err(|e| Error::Transaction(format!("invalid contract name: {e}")))?,
                code_body: StacksString::from_string(&source)
                    .ok_or_else(|| Error::Transaction("contract source is not printable ASCII".into()))?,
            },
            Some(ClarityVersion::Clarity2),
        ),
        Payload::Transfer { recipient, amount } => {
            TransactionPayload::TokenTransfer(recipient, amount, TokenTransferMemo([0; 34]))
        }
    };
    let version = if options.chain_id == 1 { TransactionVersion::Mainnet } else { TransactionVersion::Testnet };
    let mut tx = StacksTransaction::new(version, auth, payload);
    tx.chain_id = options.chain_id;
    tx.anchor_mode = TransactionAnchorMode::Any;
    tx.post_condition_mode = options.mode;
    tx.post_conditions = options.post_conditions.clone();
    tx.set_origin_nonce(options.nonce);
    tx.set_tx_fee(options.fee);
    Ok(tx)
}

/// The consensus serialization of a transaction.
pub fn serialize(tx: &StacksTransaction) -> Vec<u8> {
    let mut bytes = Vec::new();
    tx.consensus_serialize(&mut bytes).expect("writing to a Vec cannot fail");
    bytes
}
