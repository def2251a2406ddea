//! Operations below the service layer: what a patient notification says,
//! how a webhook delivery is signed and checked, and when a failed one is
//! tried again. The outbox's storage (rows written in the audit log's own
//! commit) and the delivery loop live in the service; this crate knows no
//! store and no HTTP.

pub mod notify;
pub mod webhook;
