//! The embedded Stacks devnet: the Clarity VM running medanchor's contracts.
//!
//! Owns everything that touches the Clarity VM; no other crate links it.
//! Today it provides [`vm::ContractVm`], the real VM with both contracts
//! deployed, used by the contract tests and the cost report. Block
//! production, the transaction pool, RocksDB persistence and the
//! stacks-node RPC and event-observer protocols are built on top of it.
//!
//! Modules: [`vm`] (calls, burn height, costs), [`costs`] (the cost report),
//! [`wallet`] (encrypted key files, an async RPC client for any stacks-node,
//! typed contract calls — the wallet speaks only the public RPC, never the
//! chain directly).

pub mod chain;
pub mod costs;
pub mod genesis;
pub mod headers;
pub mod keys;
pub mod mempool;
pub mod node;
pub mod observer;
pub mod rpc;
pub mod store;
pub mod txbuild;
pub mod vm;
pub mod wallet;

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
    /// A key could not be read or derived (never includes the key).
    #[error("key: {0}")]
    Key(String),
    /// A transaction could not be built.
    #[error("transaction: {0}")]
    Transaction(String),
    /// The chain database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The database was written by an incompatible version.
    #[error(
        "chain database has schema {found:?}; this build reads schema 1 (remove the data directory to start over)"
    )]
    Schema {
        /// The schema found.
        found: String,
    },
    /// Genesis could not be built.
    #[error("genesis: {0}")]
    Genesis(String),
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
    /// Devnet settings could not be read.
    #[error("settings {path}: {message}")]
    Settings {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result with the devnet [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
