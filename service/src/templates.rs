//! Structured records: the templates a caller may write with, and the
//! check that structured content is what its template says.
//!
//! The templates and their validation are `medanchor-clinical`'s; this
//! module decides which a caller sees and applies them to a record's
//! payload. A template fixes a record type, so the chain's consent rules
//! govern structured content exactly as any other: validation runs before
//! authorization only to refuse a malformed form cheaply, never instead of
//! it.

use medanchor_clinical::{Template, TemplateId, TemplateRef};
use medanchor_contracts::types::RecordType;

use crate::error::{echo, Error, Result};
use crate::records::Payload;
use crate::state::{Caller, Service};

/// Structured content is parsed into a tree to be validated; a tree costs
/// many times its text, so structured content is bounded well below the
/// payload limit (a long discharge summary is tens of KiB).
pub const MAX_STRUCTURED: usize = 256 * 1024;

/// A template id from a request.
pub fn template_id_arg(s: &str) -> Result<TemplateId> {
    s.parse().map_err(|e: String| Error::bad("invalid-template-id", format!("template {}: {e}", echo(s))))
}

impl Service {
    /// The latest version of every template `caller` may write with.
    pub fn templates(&self, caller: &Caller) -> Result<Vec<Template>> {
        let who = caller.require()?.to_string();
        Ok(self.templates.usable_by(&who, &[]).cloned().collect())
    }

    /// One template, at `version` or its latest; one a caller may not use
    /// is not found (its existence is not theirs to learn).
    pub fn template(&self, caller: &Caller, id: &TemplateId, version: Option<u32>) -> Result<Template> {
        let who = caller.require()?.to_string();
        let found = match version {
            Some(v) => self.templates.get(&TemplateRef { id: id.clone(), version: v }),
            None => self.templates.latest(id),
        };
        let template = found.map_err(|_| Error::NotFound(format!("template {id}")))?;
        if !self.templates.usable_by(&who, &[]).any(|t| t.id == template.id) {
            return Err(Error::NotFound(format!("template {id}")));
        }
        Ok(template.clone())
    }

    /// The payload to store: unchanged without a template; with one, its
    /// JSON content validated against the template (every failing field
    /// reported) and replaced by its normal form. The template's record
    /// type must be the record's.
    pub(crate) fn structured(&self, payload: Payload, record_type: RecordType) -> Result<Payload> {
        let Some(reference) = &payload.template else { return Ok(payload) };
        let template = self.templates.get(reference).map_err(|_| {
            Error::bad("unknown-template", format!("no template {} version {}", reference.id, reference.version))
        })?;
        if template.record_type != record_type {
            return Err(Error::bad(
                "record-type-mismatch",
                format!(
                    "template {} writes {} records, not {}",
                    template.id,
                    template.record_type.name(),
                    record_type.name()
                ),
            ));
        }
        if payload.content_type != "application/json" {
            return Err(Error::bad("invalid-content", "structured content is JSON (content_encoding json)"));
        }
        if payload.bytes.len() > MAX_STRUCTURED {
            return Err(Error::TooLarge(MAX_STRUCTURED));
        }
        let content: serde_json::Value = serde_json::from_slice(&payload.bytes)
            .map_err(|e| Error::bad("invalid-content", format!("content is not JSON: {e}")))?;
        let normal = template
            .validate(&content)
            .map_err(|errors| Error::Content(errors.into_iter().map(|e| (e.path, e.problem.to_string())).collect()))?;
        let bytes = serde_json::to_vec(&normal).map_err(Error::internal)?;
        Ok(Payload { bytes, ..payload })
    }
}
