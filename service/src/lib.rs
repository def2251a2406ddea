//! The node's use cases, below every front end: the HTTP API
//! (`medanchor-api`) and the portal, exports and jobs to come call this
//! crate; it knows nothing of HTTP, HTML or JSON views.
//!
//! In reading order: [`state`] (the [`Service`] every use case runs on,
//! and the request's [`Caller`]), [`authz`] (the one authorization rule,
//! equal to the contract's), [`records`] (create, read, update, versions,
//! list and lifecycle, each authorized and audited once), [`grants`]
//! (share grants, within the chain's rules), [`anchor`] (versions anchored
//! on-chain, sent again and settled from what the chain shows), [`auth`]
//! (Stacks message signatures, sign-in challenges, Ed25519 session
//! tokens), [`envelope`] (AES-256-GCM data keys wrapped by versioned KEKs,
//! bound to tenant/patient/record/version), [`blob`] (write-once,
//! content-addressed ciphertext store), [`db`] (record metadata,
//! challenges, the audit log's storage), [`merkle`] (RFC 6962/9162 trees,
//! proofs, C2SP checkpoints), [`audit`] (the group-committed Merkle log),
//! [`disclosures`] (the HIPAA accounting of disclosures, from the audit
//! log), [`rotate`] (rewrapping stored data keys after a KEK rotation),
//! [`templates`] (structured records: which templates a caller may use,
//! content validated against its template), [`share`] (6-digit access codes and signed QR links, with their
//! brute-force bound), [`consent_requests`] (providers ask patients for
//! consent; the patient's wallet grants it on-chain), [`anchoring`] (the audit log's root on-chain),
//! [`evidence`] (a version's stored ciphertext hashed again, its chain
//! version and anchors, for every front end that verifies), and
//! [`error`] (the one error type; the API maps it to HTTP).
//!
//! The service reads the chain through the indexer's read traits (and
//! [`anchoring`] reads its own on-chain audit head through the node's
//! read-only calls) and writes to it only through signed transactions
//! ([`medanchor_wallet`]); it never links the devnet or executes Clarity.

pub mod analytics;
pub mod anchor;
pub mod anchoring;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod backups;
pub mod blob;
pub mod consent_requests;
pub mod credentials;
pub mod db;
pub mod deletion;
pub mod disclosures;
pub mod envelope;
pub mod error;
pub mod evidence;
pub mod exports;
pub mod file_anchors;
pub mod grants;
pub mod merkle;
pub mod notify;
pub mod profiles;
pub mod records;
pub mod rotate;
pub mod scheduler;
pub mod search;
pub mod share;
pub mod sharing;
pub mod sign_in;
pub mod state;
pub mod storage_report;
pub mod templates;
pub mod uploads;

pub use error::{Error, Result};
/// Where attachments are stored (local disk or S3-compatible), as the
/// service's configuration names it.
pub use medanchor_storage::backend::BackendConfig;
pub use state::{Caller, ChainView, Clock, Config, Custody, Service};
