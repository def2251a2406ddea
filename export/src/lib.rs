//! Exports of a patient's data: what the service hands over
//! ([`model::Export`], already filtered by the chain's rule) rendered as a
//! signed PDF for clinicians, a FHIR R4 `Bundle`, JSON with a documented
//! schema, or CSV files in a zip — and the signatures that let anyone
//! check an export offline.
//!
//! This crate knows nothing of stores, HTTP or who may read what: the
//! service decides what goes in, and this crate only renders it.

pub mod fhir;
pub mod model;
pub mod pdf;
pub mod sample;
pub mod sign;
pub mod summary;
pub mod tabular;

pub use model::*;
