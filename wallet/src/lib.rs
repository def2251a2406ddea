//! The wallet: keys, transactions and the public RPC — everything a client
//! needs to act on the chain, and nothing of the chain itself.
//!
//! Reading order: [`keys`] (BIP-39/BIP-32 keys and their addresses) →
//! [`accounts`] (Devnet.toml's named accounts) → [`txbuild`] (build and
//! sign SIP-005 transactions) → [`keyfile`] (a key encrypted under a
//! passphrase) → [`actions`] (typed contract calls, durations, names) →
//! [`client`] (the public RPC) → [`Wallet`] (nonce, fee, sign, broadcast,
//! wait) and [`Reader`] (read-only calls); [`sign_in`] signs in to a
//! medanchor API with the key.
//!
//! The wallet knows the chain only through stacks-node's RPC and the two
//! Hiro routes wallets poll, so it works against our devnet and a testnet
//! node alike. It links clarity-repl for the transaction codec (types,
//! serialization, signing) and never executes Clarity; it has no storage
//! and serves nothing. It never logs or reports key material or
//! passphrases. The devnet uses [`keys`], [`accounts`] and [`txbuild`] for
//! its genesis; the API will use [`Wallet`] for custodial provider keys.

pub mod accounts;
pub mod actions;
pub mod client;
pub mod keyfile;
pub mod keys;
pub mod sign_in;
pub mod txbuild;

use std::time::Duration;

use medanchor_contracts::principal::StandardPrincipal;
use medanchor_contracts::types::{AccessMethod, DataType};
use medanchor_contracts::{ClarityValue, ContractError, ContractName, Principal, Txid};
pub use zeroize::Zeroizing;

use crate::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};
use crate::keys::{StacksKey, MAINNET_SINGLESIG, TESTNET_SINGLESIG};
use crate::txbuild::{serialize, sign, TxOptions};
pub use actions::{ContractCall, GrantDuration};
pub use client::{RpcClient, TxOutcome};
pub use keyfile::{KdfParams, KeyFile};
pub use sign_in::sign_in;

/// Errors of the wallet crate. No message ever includes key material or a
/// passphrase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key could not be read or derived (never includes the key).
    #[error("key: {0}")]
    Key(String),
    /// A transaction could not be built.
    #[error("transaction: {0}")]
    Transaction(String),
    /// A Clarity value did not round-trip through the wire format.
    #[error("clarity value codec: {0}")]
    Codec(String),
    /// A key file could not be read, written or decrypted (never includes
    /// key material or the passphrase).
    #[error("key file: {0}")]
    KeyFile(String),
    /// A node could not be reached, or answered something unexpected.
    #[error("rpc: {0}")]
    Rpc(String),
    /// The node refused a transaction; `reason` and `reason_data` are the
    /// node's own words, verbatim.
    #[error("transaction rejected by the node: {reason} {reason_data}")]
    Rejected {
        /// stacks-node's rejection reason (`BadNonce`, `FeeTooLow`, …).
        reason: String,
        /// Its `reason_data` as JSON text.
        reason_data: String,
    },
    /// A wallet argument is invalid (caught before anything is signed).
    #[error("{0}")]
    Invalid(String),
    /// Devnet settings (Devnet.toml) could not be read.
    #[error("settings {path}: {message}")]
    Settings {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Result with the wallet [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a key comes from.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// Account `index` of a BIP-39 mnemonic on `m/44'/5757'/0'/0/index`.
    Mnemonic {
        /// The words.
        phrase: &'a str,
        /// The account index.
        index: u32,
    },
    /// A hex secret key (32 bytes, or 33 ending in `01`).
    Hex(&'a str),
    /// A named account of the embedded Devnet.toml (public test keys).
    DevnetAccount(&'a str),
}

/// The key a source names.
pub fn import_key(source: KeySource<'_>) -> Result<StacksKey> {
    match source {
        KeySource::Mnemonic { phrase, index } => StacksKey::from_mnemonic(phrase, index),
        KeySource::Hex(hex) => StacksKey::from_hex(hex),
        KeySource::DevnetAccount(name) => {
            let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "embedded Devnet.toml")?;
            let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
            accounts.iter().find(|a| a.name == name).map(|a| a.key.clone()).ok_or_else(|| {
                Error::Invalid(format!("no devnet account {name:?} (the accounts are {})", names.join(", ")))
            })
        }
    }
}

/// A fresh 24-word BIP-39 mnemonic from 256 bits of OS randomness.
pub fn generate_mnemonic() -> Zeroizing<String> {
    let mut entropy = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, entropy.as_mut());
    let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_ref()).expect("32 bytes is a valid entropy length");
    Zeroizing::new(mnemonic.to_string())
}

/// The testnet (`ST…`) address of a key: the one key files record.
pub fn testnet_address(key: &StacksKey) -> String {
    key.address(TESTNET_SINGLESIG).to_string()
}

/// A transaction the node accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Its txid.
    pub txid: Txid,
    /// The nonce it used.
    pub nonce: u64,
    /// The fee it pays, in micro-STX.
    pub fee: u64,
}

/// A key connected to a node and to the contracts' deployer.
#[derive(Debug)]
pub struct Wallet {
    key: StacksKey,
    client: RpcClient,
    contracts: StandardPrincipal,
    chain_id: u32,
    address: String,
}

impl Wallet {
    /// Asks the node for its chain id (which also picks the address
    /// version: mainnet `SP…` or testnet `ST…`). `contracts` is the address
    /// that deployed our contracts.
    pub async fn connect(key: StacksKey, client: RpcClient, contracts: &str) -> Result<Wallet> {
        let contracts = parse_deployer(contracts)?;
        let info = client.info().await?;
        let version = if info.network_id == 1 { MAINNET_SINGLESIG } else { TESTNET_SINGLESIG };
        let address = key.address(version).to_string();
        Ok(Wallet { key, client, contracts, chain_id: info.network_id, address })
    }

    /// The address transactions are sent from.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The node client.
    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// Signs and broadcasts `call` with the next nonce. The fee is `fee`,
    /// or the transaction's length times the node's fee rate.
    pub async fn submit(&self, call: &ContractCall, fee: Option<u64>) -> Result<Submitted> {
        let nonce = self.client.next_nonce(&self.address).await?;
        let payload = call.payload(&self.contracts)?;
        let options = |fee| TxOptions { chain_id: self.chain_id, ..TxOptions::new(nonce, fee) };
        let fee = match fee {
            Some(f) => f,
            None => {
                let rate = self.client.fee_rate().await?.max(1);
                // The fee is a fixed-width field: its value does not change
                // the length.
                let probe = serialize(&sign(&self.key, payload.clone(), &options(0))?);
                (probe.len() as u64).saturating_mul(rate)
            }
        };
        let raw = serialize(&sign(&self.key, payload, &options(fee))?);
        let txid = self.client.broadcast(&raw).await?;
        tracing::debug!(%txid, nonce, fee, function = call.function, "broadcast");
        Ok(Submitted { txid, nonce, fee })
    }

    /// Waits until the transaction is mined (or dropped), polling every
    /// half second, up to `timeout`.
    pub async fn wait(&self, txid: &Txid, timeout: Duration) -> Result<TxOutcome> {
        self.client.wait_for_tx(txid, timeout, Duration::from_millis(500)).await
    }
}

fn parse_deployer(s: &str) -> Result<StandardPrincipal> {
    s.trim().parse().map_err(|e| Error::Invalid(format!("contracts address: {e}")))
}

/// A consent entry (`get-consent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    /// Burn height of the grant.
    pub granted_at: u128,
    /// Burn height at which it expires; `None` until revoked.
    pub expires_at: Option<u128>,
    /// Burn height of the revocation.
    pub revoked_at: Option<u128>,
    /// Its consent-history sequence number.
    pub seq: u128,
}

/// Read-only calls of our contracts through a node.
#[derive(Debug, Clone)]
pub struct Reader {
    client: RpcClient,
    contracts: StandardPrincipal,
}

impl Reader {
    /// A reader of the contracts deployed by `contracts`.
    pub fn new(client: RpcClient, contracts: &str) -> Result<Self> {
        Ok(Reader { client, contracts: parse_deployer(contracts)? })
    }

    async fn read(
        &self,
        contract: ContractName,
        function: &str,
        sender: &Principal,
        args: &[ClarityValue],
    ) -> Result<ClarityValue> {
        self.client
            .call_read_only(&self.contracts.to_string(), contract.name(), function, &sender.to_string(), args)
            .await
    }

    /// `check-consent`: how `accessor` may read `data_type` of `patient`
    /// now, or the contract's reason why not. `data_type` must be
    /// concrete (not `all-standard`).
    pub async fn check_consent(
        &self,
        patient: &Principal,
        accessor: &Principal,
        data_type: DataType,
    ) -> Result<std::result::Result<AccessMethod, ContractError>> {
        if data_type == DataType::AllStandard {
            return Err(Error::Invalid(
                "check-consent asks about one concrete data type, not all-standard; name one (e.g. lab-results)".into(),
            ));
        }
        let args = [
            ClarityValue::Principal(patient.clone()),
            ClarityValue::Principal(accessor.clone()),
            ClarityValue::UInt(data_type.code().into()),
        ];
        let value = self.read(ContractName::PatientConsent, "check-consent", patient, &args).await?;
        let unexpected = || Error::Rpc(format!("check-consent returned {value:?}"));
        match &value {
            ClarityValue::Response(Ok(inner)) => match **inner {
                ClarityValue::UInt(m) => AccessMethod::from_code(m).map(Ok).ok_or_else(unexpected),
                _ => Err(unexpected()),
            },
            ClarityValue::Response(Err(_)) => client::contract_error(&value).map(Err).ok_or_else(unexpected),
            _ => Err(unexpected()),
        }
    }

    /// `get-consent`: the stored entry for (patient, provider, data type).
    pub async fn get_consent(
        &self,
        patient: &Principal,
        provider: &Principal,
        data_type: DataType,
    ) -> Result<Option<ConsentEntry>> {
        let args = [
            ClarityValue::Principal(patient.clone()),
            ClarityValue::Principal(provider.clone()),
            ClarityValue::UInt(data_type.code().into()),
        ];
        let value = self.read(ContractName::PatientConsent, "get-consent", patient, &args).await?;
        let unexpected = || Error::Rpc(format!("get-consent returned {value:?}"));
        let tuple = match &value {
            ClarityValue::Optional(None) => return Ok(None),
            ClarityValue::Optional(Some(inner)) => match &**inner {
                ClarityValue::Tuple(map) => map,
                _ => return Err(unexpected()),
            },
            _ => return Err(unexpected()),
        };
        let uint = |name: &str| match tuple.get(name) {
            Some(ClarityValue::UInt(n)) => Some(*n),
            _ => None,
        };
        let opt_uint = |name: &str| match tuple.get(name) {
            Some(ClarityValue::Optional(None)) => Some(None),
            Some(ClarityValue::Optional(Some(v))) => match **v {
                ClarityValue::UInt(n) => Some(Some(n)),
                _ => None,
            },
            _ => None,
        };
        Ok(Some(ConsentEntry {
            granted_at: uint("granted-at").ok_or_else(unexpected)?,
            expires_at: opt_uint("expires-at").ok_or_else(unexpected)?,
            revoked_at: opt_uint("revoked-at").ok_or_else(unexpected)?,
            seq: uint("seq").ok_or_else(unexpected)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Devnet.toml's accounts with the address its comments list.
    fn listed_accounts() -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut name = None;
        let mut mnemonic = None;
        for line in DEFAULT_DEVNET_TOML.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("[accounts.").and_then(|l| l.strip_suffix(']')) {
                name = Some(n.to_string());
            } else if let Some(m) = line.strip_prefix("mnemonic = \"").and_then(|l| l.strip_suffix('"')) {
                mnemonic = Some(m.to_string());
            } else if let Some(a) = line.strip_prefix("# stx_address: ") {
                let (n, m) = (name.take().expect("section"), mnemonic.take().expect("mnemonic"));
                out.push((n, m, a.to_string()));
            }
        }
        out
    }

    #[test]
    fn every_devnet_account_imports_at_its_listed_address() {
        let accounts = listed_accounts();
        assert!(accounts.len() >= 5, "Devnet.toml lists {} accounts", accounts.len());
        for (name, mnemonic, address) in &accounts {
            let by_mnemonic = import_key(KeySource::Mnemonic { phrase: mnemonic, index: 0 }).expect("mnemonic");
            assert_eq!(testnet_address(&by_mnemonic), *address, "{name} by mnemonic");
            let by_name = import_key(KeySource::DevnetAccount(name)).expect("by name");
            assert_eq!(testnet_address(&by_name), *address, "{name} by name");
            let by_hex = import_key(KeySource::Hex(&by_mnemonic.to_hex())).expect("hex");
            assert_eq!(testnet_address(&by_hex), *address, "{name} by hex");
        }
        let err = import_key(KeySource::DevnetAccount("wallet_99")).expect_err("unknown").to_string();
        assert!(err.contains("wallet_1"), "{err}");
    }

    #[test]
    fn generated_mnemonics_are_24_words_and_derive() {
        let a = generate_mnemonic();
        let b = generate_mnemonic();
        assert_eq!(a.split_whitespace().count(), 24);
        assert_ne!(*a, *b);
        let key = import_key(KeySource::Mnemonic { phrase: &a, index: 0 }).expect("derive");
        assert!(testnet_address(&key).starts_with("ST"));
        let other = import_key(KeySource::Mnemonic { phrase: &a, index: 1 }).expect("derive");
        assert_ne!(testnet_address(&key), testnet_address(&other));
    }
}
