//! Clarinet's `settings/Devnet.toml` accounts: named mnemonics turned into
//! keys. The devnet funds them at genesis; the wallet imports them by name
//! (`--devnet-account wallet_1`). Public test keys only.

use std::path::Path;

use serde::Deserialize;

use crate::keys::StacksKey;
use crate::{Error, Result};

/// Clarinet's default devnet settings, embedded so the binary runs anywhere.
pub const DEFAULT_DEVNET_TOML: &str = include_str!("../../contracts/settings/Devnet.toml");

#[derive(Debug, Deserialize)]
struct Settings {
    accounts: std::collections::BTreeMap<String, AccountSettings>,
}

#[derive(Debug, Deserialize)]
struct AccountSettings {
    mnemonic: String,
    // TOML integers are 64-bit; every STX balance fits (the total supply is
    // below 2^64 micro-STX).
    balance: u64,
}

/// A devnet account with its key (public test keys only).
#[derive(Debug, Clone)]
pub struct DevnetAccount {
    /// Its name (`deployer`, `wallet_1`, …).
    pub name: String,
    /// Its key.
    pub key: StacksKey,
    /// Its balance at genesis.
    pub balance: u128,
}

/// Parses Devnet.toml text; `origin` names it in errors.
pub fn parse_accounts(text: &str, origin: &str) -> Result<Vec<DevnetAccount>> {
    let settings: Settings =
        toml::from_str(text).map_err(|e| Error::Settings { path: origin.to_string(), message: e.to_string() })?;
    settings
        .accounts
        .into_iter()
        .map(|(name, a)| {
            let key = StacksKey::from_mnemonic(&a.mnemonic, 0)
                .map_err(|e| Error::Settings { path: origin.to_string(), message: format!("account {name}: {e}") })?;
            Ok(DevnetAccount { name, key, balance: u128::from(a.balance) })
        })
        .collect()
}

/// Reads a Devnet.toml file.
pub fn load_accounts(path: &Path) -> Result<Vec<DevnetAccount>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Settings { path: path.display().to_string(), message: e.to_string() })?;
    parse_accounts(&text, &path.display().to_string())
}
