//! The indexer: mirrors medanchor's contract events from the stacks-node
//! event-observer stream into RocksDB — consent state and history,
//! providers and access levels, records with every version, anchors —
//! and answers queries from there.
//!
//! It consumes only the public event-observer protocol (never the chain,
//! never the VM), so it runs the same behind the embedded devnet and behind
//! a real stacks-node. Delivery is at least once; the effect is exactly
//! once (a known block changes nothing), re-orgs roll back through per-block
//! undo logs, and every block is one synced RocksDB batch.
//!
//! Modules in reading order: [`payload`] (what the node sends), [`schema`]
//! (the on-disk layout, in one place), [`store`] (RocksDB and the undo-
//! recording [`store::Stage`]), [`migrate`] (the schema version and the
//! steps from older ones), `apply` (event → derived state),
//! [`ingest`] ([`Indexer`]: duplicates, orphans, re-orgs), [`query`] (the
//! read traits the API depends on), [`server`] (HTTP), [`replay`] (Hiro
//! TSV event logs).

mod apply;
pub mod ingest;
pub mod migrate;
pub mod payload;
pub mod query;
pub mod replay;
pub mod schema;
pub mod server;
pub mod store;
pub mod synth;

pub use ingest::{Indexer, IndexerConfig, Outcome};
pub use query::{AccessFacts, AccessReader, ChainReader, ConsentReader, ProviderAccess, RecordReader, RecordState};

/// Errors of the indexer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A payload is malformed (the sender's fault: HTTP 400).
    #[error("bad payload: {0}")]
    Payload(String),
    /// A query argument is invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// RocksDB failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Stored bytes do not decode.
    #[error("corrupt index: {0}")]
    Corrupt(String),
    /// The event stream contradicts the index (a gap or a bug).
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// The buffer of blocks waiting for their parents is full (HTTP 503:
    /// worth retrying once they connect).
    #[error("{kept} blocks are already waiting for their parents; retry once they connect")]
    BufferFull {
        /// Blocks buffered.
        kept: usize,
    },
    /// A re-org deeper than the undo logs kept.
    #[error("re-org of depth {depth} is deeper than the {kept} blocks of undo kept; rebuild with `medanchor indexer replay`")]
    ReorgTooDeep {
        /// Blocks to roll back.
        depth: u64,
        /// Undo depth configured.
        kept: u64,
    },
    /// The database was written by a newer build, or its version stamp is
    /// not a version: refused, never opened ([`migrate`]).
    #[error(
        "index database has schema {found}; this build reads schemas 1 to {} (a newer medanchor wrote it: run \
         that one, or rebuild the index with `medanchor indexer replay`)",
        migrate::SCHEMA_VERSION
    )]
    Schema {
        /// The stamp found.
        found: String,
    },
    /// A replay file could not be read.
    #[error("replay {path}: {message}")]
    Replay {
        /// The file.
        path: String,
        /// What is wrong (with the line number).
        message: String,
    },
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result with the indexer [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
