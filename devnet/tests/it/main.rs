//! Contract tests in the real Clarity VM.

mod script;
mod support;
