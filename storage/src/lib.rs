//! Attachments' storage concerns, below the service layer and knowing
//! nothing about who may read what.
//!
//! - [`sniff`] — which files a record may carry (PDF, JPEG, PNG, DICOM,
//!   DOC, DOCX), checked by declared media type, file-name extension and
//!   content signature, with the precise reason for a refusal;
//! - [`stream`] — STREAM over AES-256-GCM: files sealed chunk by chunk so
//!   truncation, reordering and tampering are detected, bound to their
//!   tenant, record, file and version;
//! - [`keys`] — object keys `{tenant}/{yyyy}/{mm}/{record-id}/{file-id}`:
//!   ids, never file names;
//! - [`backend`] — the object store (local disk or S3-compatible, by
//!   configuration) through `object_store`: write-once puts, reads by
//!   range, per-tenant listing, and sealed multipart uploads hashed on
//!   the way;
//! - [`links`] — signed download links: one file version, one principal,
//!   an expiry, under the node's HMAC key;
//! - [`lifecycle`] — a bucket's lifecycle rules per tenant prefix (archive
//!   transition, abort of incomplete multipart uploads), applied and read
//!   back with SigV4-signed requests;
//! - [`spool`] — the durable, encrypted spool of resumable uploads:
//!   chunks appended as AEAD segments bound to upload, index and offset.

pub mod backend;
pub mod keys;
pub mod lifecycle;
pub mod links;
pub mod sniff;
pub mod spool;
pub mod stream;

pub use sniff::{check, FileKind, Refusal};
