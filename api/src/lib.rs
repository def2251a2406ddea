//! The HTTP API: envelope-encrypted off-chain records, consent-gated reads,
//! wallet sign-in and the tamper-evident audit log.
//!
//! Not built yet: this crate is the reserved place in the workspace. It
//! will depend on the indexer's read traits, never on the Clarity VM.
