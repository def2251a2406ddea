//! End-to-end tests of the whole system over real HTTP on loopback.
//!
//! Empty until the devnet node, indexer and API exist; the contract tests
//! that run today live in `devnet/tests/it` (real Clarity VM) and
//! `contracts/tests` (Clarinet SDK simnet).
