//! The HTTP API: envelope-encrypted off-chain records, consent-gated reads,
//! wallet sign-in and the tamper-evident audit log.
//!
//! Under construction: [`merkle`] (RFC 6962 / 9162 Merkle trees, proofs and
//! signed checkpoints) is the first piece. The API depends on the indexer's
//! read traits, never on the Clarity VM.

pub mod merkle;
