//! Contract tests in the real Clarity VM.

mod chain;
mod consent_model;
mod model;
mod node_rpc;
mod record_matrix;
mod script;
mod support;
