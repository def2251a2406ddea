//! Attachments' storage concerns, below the service layer and knowing
//! nothing about who may read what.
//!
//! Today: [`sniff`] — which files a record may carry (PDF, JPEG, PNG,
//! DICOM, DOC, DOCX), checked by declared media type, file-name extension
//! and content signature, with the precise reason for a refusal. The
//! object-store backends, the per-tenant key layout, stream encryption and
//! signed links (issue "Attachments on object storage") build here next.

pub mod sniff;

pub use sniff::{check, FileKind, Refusal};
