//! Clinical content: what a structured record may hold, and the check that
//! it does.
//!
//! A [`Template`] is a versioned, typed schema for one kind of visit
//! (consultation, vital signs, discharge summary, …). A record written from
//! it names the template and version it was written with
//! ([`TemplateRef`]); [`Template::validate`] checks a record's content
//! against it and answers either the typed, normalised content or every
//! failing field by its path ([`FieldError`]) — never just the first, so a
//! form can mark all of them at once.
//!
//! The vocabulary the fields use lives in [`codes`] (ICD-10-CM diagnosis
//! codes, medication routes and frequencies, allergy severities) and
//! [`units`] (UCUM units, conversions, and the plausible ranges of vital
//! signs and other measurements).
//!
//! Reading order: [`codes`] → [`units`] → [`template`] → [`builtin`] →
//! [`registry`] → [`profile`] (the patient health profile, a template with
//! a consent data type per section) → [`credentials`] (a provider's
//! credential document, whose canonical bytes the chain commits to) →
//! [`search`] (blind indexes: records and patients found by keyed tokens,
//! never by plaintext at rest).
//!
//! Deliberately absent: who may read or write a record (the chain decides,
//! through the service layer), storage, encryption and HTTP. A template's
//! [`Template::record_type`] is the contract's record type, which is how
//! the chain's consent rules reach structured content.

pub mod builtin;
pub mod codes;
pub mod credentials;
pub mod profile;
pub mod registry;
pub mod search;
pub mod template;
pub mod units;

pub use registry::{Registry, RegistryError};
pub use template::{Field, FieldError, FieldKind, Problem, Template, TemplateId, TemplateRef};
