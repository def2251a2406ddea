//! Structured records: the templates a caller may write with, the ones
//! people add, and the check that structured content is what its template
//! says.
//!
//! The templates and their validation are `medanchor-clinical`'s; this
//! module decides who sees and adds which, keeps the added ones, and
//! applies a template to a record's payload. A template fixes a record
//! type, so the chain's consent rules govern structured content exactly as
//! any other: validation runs before authorization only to refuse a
//! malformed form cheaply, never instead of it.

use medanchor_clinical::template::Scope;
use medanchor_clinical::{Template, TemplateId, TemplateRef};
use medanchor_contracts::types::RecordType;

use crate::error::{echo, Error, Result};
use crate::records::Payload;
use crate::state::{Caller, Service};

/// Structured content is parsed into a tree to be validated; a tree costs
/// many times its text, so structured content is bounded well below the
/// payload limit (a long discharge summary is tens of KiB).
pub const MAX_STRUCTURED: usize = 256 * 1024;
/// Most templates one owner (the tenant, a specialty, a provider) may add.
pub const MAX_TEMPLATES_PER_OWNER: usize = 100;
/// Most versions of one template.
pub const MAX_VERSIONS: u32 = 100;

/// A template id from a request.
pub fn template_id_arg(s: &str) -> Result<TemplateId> {
    s.parse().map_err(|e: String| Error::bad("invalid-template-id", format!("template {}: {e}", echo(s))))
}

impl Service {
    pub(crate) fn registry(&self) -> std::sync::RwLockReadGuard<'_, medanchor_clinical::Registry> {
        self.templates.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the templates people added (at open).
    pub(crate) fn load_templates(&self) -> Result<()> {
        let mut registry = medanchor_clinical::Registry::builtin();
        for t in self.db.templates()? {
            let id = t.id.clone();
            registry.add(t).map_err(|e| Error::internal(format!("stored template {id}: {e}")))?;
        }
        *self.templates.write().unwrap_or_else(|p| p.into_inner()) = registry;
        Ok(())
    }

    /// What `who` sees: admins every template; others the built-in ones,
    /// the tenant's, their specialties' and their own.
    fn visible(&self, who: &str, template: &Template) -> bool {
        self.config.admins.iter().any(|a| a == who)
            || match &template.scope {
                Scope::Builtin | Scope::Tenant => true,
                Scope::Specialty(s) => self.config.specialties.get(who).is_some_and(|mine| mine.contains(s)),
                Scope::Provider(p) => p == who,
            }
    }

    /// The latest version of every template `caller` may write with.
    pub fn templates(&self, caller: &Caller) -> Result<Vec<Template>> {
        let who = caller.require()?.to_string();
        let registry = self.registry();
        Ok(registry.latest_all().filter(|t| self.visible(&who, t)).cloned().collect())
    }

    /// One template, at `version` or its latest; one a caller may not see
    /// is not found (its existence is not theirs to learn).
    pub fn template(&self, caller: &Caller, id: &TemplateId, version: Option<u32>) -> Result<Template> {
        let who = caller.require()?.to_string();
        let registry = self.registry();
        let found = match version {
            Some(v) => registry.get(&TemplateRef { id: id.clone(), version: v }),
            None => registry.latest(id),
        };
        match found {
            Ok(t) if self.visible(&who, t) => Ok(t.clone()),
            _ => Err(Error::NotFound(format!("template {id}"))),
        }
    }

    /// Adds a template (or its next version): administrators add the
    /// tenant's and specialties' templates, an active provider their own;
    /// nobody adds a built-in one. Checked, stored (synced), then usable;
    /// audited.
    pub async fn add_template(&self, caller: &Caller, template: Template) -> Result<TemplateRef> {
        let who = caller.require()?.clone();
        let who_s = who.to_string();
        let role = self.role_of(&who)?;
        let mut entry = caller.entry(role, "template.add");
        let forbidden = |detail: &str| Error::Forbidden { code: "template-scope", detail: detail.into(), reason: None };
        let allowed = match &template.scope {
            Scope::Builtin => Err(forbidden("built-in templates ship with the node")),
            Scope::Tenant | Scope::Specialty(_) if role == "admin" => Ok(()),
            Scope::Tenant | Scope::Specialty(_) => {
                Err(forbidden("only administrators add the tenant's and specialties' templates"))
            }
            Scope::Provider(p) if *p == who_s && role == "provider" => {
                match self.chain.provider(&who).map_err(Error::internal)? {
                    Some(view) if view.active => Ok(()),
                    _ => Err(forbidden("only an active provider saves templates")),
                }
            }
            Scope::Provider(_) => Err(forbidden("a provider saves templates for themselves only")),
        };
        self.audit_refusal(&entry, allowed).await?;
        entry.reason = Some(format!("{} version {}", template.id, template.version));
        let _one_writer = self.template_writer.lock().await;
        let mut next = self.registry().clone();
        let same_owner = next.latest_all().filter(|t| t.scope == template.scope && t.id != template.id).count();
        let result = if template.version > MAX_VERSIONS || same_owner >= MAX_TEMPLATES_PER_OWNER {
            Err(Error::State {
                code: "template-limit",
                detail: format!(
                    "at most {MAX_TEMPLATES_PER_OWNER} templates per owner and {MAX_VERSIONS} versions of each"
                ),
            })
        } else {
            next.add(template.clone()).map_err(|e| match e {
                medanchor_clinical::RegistryError::Invalid(..) => Error::bad("invalid-template", e.to_string()),
                other => Error::State { code: "template-version", detail: other.to_string() },
            })
        };
        let reference = match result {
            Ok(r) => r,
            Err(e) => return self.audited(entry, Err(e)).await,
        };
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.put_template(&template)).await.map_err(Error::internal)??;
        *self.templates.write().unwrap_or_else(|p| p.into_inner()) = next;
        self.audited(entry, Ok(reference)).await
    }

    /// The payload to store: unchanged without a template; with one, its
    /// JSON content validated against the template (every failing field
    /// reported) and replaced by its normal form. The template's record
    /// type must be the record's.
    pub(crate) fn structured(&self, payload: Payload, record_type: RecordType) -> Result<Payload> {
        let Some(reference) = &payload.template else { return Ok(payload) };
        let registry = self.registry();
        let template = registry.get(reference).map_err(|_| {
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
        drop(registry);
        Ok(Payload { bytes, ..payload })
    }
}
