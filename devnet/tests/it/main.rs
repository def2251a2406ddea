//! Contract tests in the real Clarity VM.

mod consent_model;
mod model;
mod script;
mod support;
