//! The indexer: mirrors the contracts' events from the stacks-node event
//! stream into RocksDB (consent state and history, records and versions,
//! anchors). Idempotent, re-org safe, replayable.
//!
//! Not built yet: this crate is the reserved place in the workspace. It
//! will depend on `medanchor-contracts` for event decoding and never on the
//! Clarity VM or the devnet.
