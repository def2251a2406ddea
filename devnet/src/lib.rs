//! The embedded Stacks devnet: the Clarity VM running medanchor's contracts.
//!
//! Owns everything that executes Clarity; no other crate runs the VM (the
//! wallet links clarity-repl only for the transaction codec).
//! Today it provides [`vm::ContractVm`], the real VM with both contracts
//! deployed, used by the contract tests and the cost report. Block
//! production, the transaction pool, RocksDB persistence and the
//! stacks-node RPC and event-observer protocols are built on top of it.
//!
//! Modules: [`vm`] (calls, burn height, costs), [`costs`] (the cost report).
//!
//! Keys, transaction signing and Devnet.toml's accounts come from
//! `medanchor-wallet`, which this crate uses for its genesis; the wallet
//! itself reaches a node only over the public RPC, never the chain
//! directly, and does not depend on this crate (only its tests do).

pub mod chain;
pub mod costs;
pub mod genesis;
pub mod headers;
pub mod mempool;
pub mod migrate;
pub mod node;
pub mod observer;
pub mod rpc;
pub mod store;
pub mod vm;

/// Errors of the devnet crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A contract failed to parse, type-check or initialise.
    #[error("deploying {contract} failed: {}", diagnostics.join("; "))]
    Deploy {
        /// Contract name.
        contract: String,
        /// The VM's diagnostics.
        diagnostics: Vec<String>,
    },
    /// A call could not be evaluated (a runtime error, not an `(err …)`).
    #[error("calling {function} failed: {}", diagnostics.join("; "))]
    Call {
        /// Function name.
        function: String,
        /// The VM's diagnostics.
        diagnostics: Vec<String>,
    },
    /// A VM value did not round-trip through the wire format.
    #[error("clarity value codec: {0}")]
    Codec(String),
    /// The chain database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The database was written by a newer build, or its version stamp is
    /// not a version: refused, never opened ([`migrate`]).
    #[error(
        "chain database has schema {found}; this build reads schemas 1 to {} (a newer medanchor wrote it: \
         run that one, or remove the data directory to start over)",
        migrate::SCHEMA_VERSION
    )]
    Schema {
        /// The stamp found.
        found: String,
    },
    /// Genesis could not be built.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A key, a transaction or Devnet.toml failed in the wallet crate (its
    /// message unchanged).
    #[error(transparent)]
    Wallet(#[from] medanchor_wallet::Error),
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result with the devnet [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
