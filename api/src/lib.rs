//! The HTTP API: envelope-encrypted off-chain records, consent-gated reads,
//! wallet sign-in and the tamper-evident audit log.
//!
//! In reading order: [`auth`] (Stacks message signatures, Ed25519 session
//! tokens), [`envelope`] (AES-256-GCM data keys wrapped by versioned KEKs,
//! bound to tenant/patient/record/version), [`blob`] (write-once,
//! content-addressed ciphertext store), [`db`] (record metadata,
//! challenges, the audit log's storage), [`merkle`] (RFC 6962/9162 trees,
//! proofs, C2SP checkpoints), [`audit`] (the group-committed Merkle log),
//! [`error`] (`ApiError` → problem+json), [`app`] (routes and the anchor
//! tracker), [`disclosures`] (the HIPAA accounting of disclosures, from
//! the audit log), [`rotate`] (rewrapping stored data keys after a KEK
//! rotation), [`share`] (6-digit access codes and signed QR links, with
//! their brute-force bound), [`openapi`] (the OpenAPI document, generated from the
//! handlers).
//!
//! The API reads the chain through the indexer's read traits (and
//! [`anchoring`] reads its own on-chain audit head through the node's
//! read-only calls) and writes to it only through signed transactions
//! ([`medanchor_wallet`]); it never links the devnet or executes Clarity.
//! [`anchoring`] puts the audit log's root on-chain periodically.

pub mod anchoring;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod blob;
pub mod db;
pub mod disclosures;
pub mod envelope;
pub mod error;
pub mod merkle;
pub mod openapi;
pub mod rotate;
pub mod share;
