//! Signing: sign-in challenges and contract calls.
//!
//! Two wallets sign. A browser wallet (Leather, Xverse: the
//! `@stacks/connect` request API, driven by `assets/portal.js`) signs in the
//! browser; the node only sees the signature or the txid. On the devnet
//! the node also offers a development wallet for Devnet.toml's accounts
//! (public test keys), which signs here, so the portal works without an
//! extension; it exists only when `up` runs its own devnet.
//!
//! Either way the transaction goes to the chain and the page follows it
//! until mined: the portal never treats a submitted call as done.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::{ContractName, Txid};
use medanchor_service::sign_in::Session as ServiceSession;
use medanchor_service::{Caller, Service};
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::{ContractCall, Wallet};

use crate::error::PortalError;

/// A development-wallet account.
#[derive(Clone)]
pub struct DevAccount {
    /// Devnet.toml's name (`wallet_1`, `deployer`, …).
    pub name: String,
    /// Its testnet address.
    pub address: String,
    /// Its key (a public test key).
    pub key: StacksKey,
}

impl DevAccount {
    /// The development wallet's accounts from Devnet.toml's.
    pub fn from_devnet(accounts: &[medanchor_wallet::accounts::DevnetAccount]) -> Vec<DevAccount> {
        accounts
            .iter()
            .map(|a| DevAccount {
                name: a.name.clone(),
                address: a.key.address(TESTNET_SINGLESIG).to_string(),
                key: a.key.clone(),
            })
            .collect()
    }
}

/// Signs in as `account` with the development wallet: asks the service
/// for a challenge, signs it as a Stacks wallet signs messages, and
/// presents it — the same path a browser wallet's signature takes.
pub async fn dev_sign_in(
    service: &Service,
    caller: &Caller,
    account: &DevAccount,
) -> Result<ServiceSession, PortalError> {
    let principal: Principal = account.address.parse().map_err(PortalError::internal)?;
    let challenge = service.challenge(&principal)?;
    let signature = account.key.sign_message(challenge.message.as_bytes());
    Ok(service.sign_in(caller, &challenge.nonce, &signature).await?)
}

/// Signs `call` with the development account and broadcasts it to the
/// node; the txid to follow.
pub async fn dev_submit(service: &Service, account: &DevAccount, call: &ContractCall) -> Result<Txid, PortalError> {
    let wallet = Wallet::connect(account.key.clone(), service.node().clone(), &service.config().contracts).await?;
    let submitted = wallet.submit(call, None).await?;
    tracing::info!(function = call.function, txid = %submitted.txid, "development wallet submitted a call");
    Ok(submitted.txid)
}

/// A contract call as a browser wallet's `stx_callContract` takes it:
/// `contract` (`ADDRESS.NAME`), `functionName`, `functionArgs` (Clarity
/// values, serialized, hex) and deny-mode post-conditions (the call may
/// move no asset).
pub fn browser_call(service: &Service, call: &ContractCall) -> serde_json::Value {
    serde_json::json!({
        "contract": format!("{}.{}", service.config().contracts, call.contract.name()),
        "functionName": call.function,
        "functionArgs": call.args.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
        "postConditionMode": "deny",
        "postConditions": [],
    })
}

/// Where a transaction stands, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxState {
    /// Not mined yet (or not yet seen by the node).
    Pending,
    /// Mined and applied, and the portal's index has it.
    Done {
        /// The block.
        height: u64,
    },
    /// Mined, but the contract refused it (the error's name), or dropped.
    Failed(String),
}

/// The state of `txid`: the node's word for pending and failed, the
/// index's for done (so the next page already shows its effect).
pub async fn tx_state(service: &Service, txid: &Txid) -> Result<TxState, PortalError> {
    let (s2, t2) = (service.clone(), *txid);
    let indexed = tokio::task::spawn_blocking(move || s2.chain().transaction(&t2))
        .await
        .map_err(PortalError::internal)?
        .map_err(PortalError::internal)?;
    if let Some(tx) = indexed {
        return Ok(if tx.status == "success" {
            TxState::Done { height: tx.block_height }
        } else {
            let value = medanchor_contracts::ClarityValue::from_hex(&tx.raw_result).ok();
            let why = value
                .as_ref()
                .and_then(medanchor_wallet::client::contract_error)
                .map_or(tx.status.clone(), |e| e.constant().to_string());
            TxState::Failed(why)
        });
    }
    match service.node().tx_status(txid).await? {
        Some(o) if o.is_dropped() => Ok(TxState::Failed(o.status)),
        Some(o) if !o.is_pending() && !o.is_success() => {
            Ok(TxState::Failed(o.contract_error().map_or(o.status.clone(), |e| e.constant().to_string())))
        }
        _ => Ok(TxState::Pending),
    }
}

/// The contract a call goes to, in words.
pub fn contract_label(c: ContractName) -> &'static str {
    match c {
        ContractName::PatientConsent => "consent contract",
        ContractName::RecordManagement => "records contract",
    }
}
