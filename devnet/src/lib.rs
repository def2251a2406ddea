//! The embedded Stacks devnet: the Clarity VM running medanchor's contracts.
//!
//! Owns everything that touches the Clarity VM; no other crate links it.
//! Today it provides [`vm::ContractVm`], the real VM with both contracts
//! deployed, used by the contract tests and the cost report. Block
//! production, the transaction pool, RocksDB persistence and the
//! stacks-node RPC and event-observer protocols are built on top of it.
//!
//! Modules: [`vm`] (calls, burn height, costs), [`costs`] (the cost report).

pub mod costs;
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
}

/// Result with the devnet [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
