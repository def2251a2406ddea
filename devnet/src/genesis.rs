//! The devnet's genesis from Clarinet's `settings/Devnet.toml`: the funded
//! accounts (read by [`medanchor_wallet::accounts`], which derives their
//! keys from the mnemonics) and our contracts, deployed by the `deployer`
//! account.

use medanchor_contracts::ContractName;
use medanchor_wallet::accounts::DevnetAccount;
use medanchor_wallet::keys::TESTNET_SINGLESIG;
use medanchor_wallet::txbuild::CHAIN_ID_TESTNET;

use crate::chain::{ChainConfig, GenesisAccount};
use crate::headers::BLOCK_LIMIT;
use crate::{Error, Result};

/// The chain configuration for these accounts: all funded, both contracts
/// deployed by `deployer`, testnet chain id, 1 µSTX/byte minimum fee and
/// mainnet's block budget.
pub fn chain_config(accounts: &[DevnetAccount], genesis_time: u64) -> Result<ChainConfig> {
    let deployer = accounts
        .iter()
        .find(|a| a.name == "deployer")
        .ok_or_else(|| Error::Genesis("Devnet.toml has no `deployer` account".into()))?;
    Ok(ChainConfig {
        chain_id: CHAIN_ID_TESTNET,
        accounts: accounts
            .iter()
            .map(|a| GenesisAccount {
                name: a.name.clone(),
                address: a.key.address(TESTNET_SINGLESIG),
                balance: a.balance,
            })
            .collect(),
        genesis_deploys: ContractName::ALL
            .iter()
            .map(|c| (deployer.key.clone(), c.name().to_string(), c.source().to_string()))
            .collect(),
        min_fee_rate: 1,
        block_limit: BLOCK_LIMIT,
        genesis_time,
    })
}
