//! Operations below the service layer: what a patient notification says,
//! how a webhook delivery is signed and checked, and when a failed one is
//! tried again; the analytics counters each audit entry adds to, and the
//! anomaly and security rules checked on it; when a periodic job is due
//! and who holds it. The outbox's storage and the
//! delivery loop live in the service, and the counters are kept in a
//! key-value space the service provides (its database, in the audit
//! entry's own batch); this crate knows no store and no HTTP.

pub mod analytics;
pub mod anomaly;
pub mod notify;
pub mod schedule;
pub mod webhook;
