//! The templates a node knows, by id and version, and who may use each.
//!
//! Versions are append-only: a template is changed by adding its next
//! version, and every version stays readable, because records name the
//! version they were written with and are validated and shown with it.

use std::collections::BTreeMap;

use crate::template::{Scope, Template, TemplateError, TemplateId, TemplateRef};

/// Why a template cannot be added or found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The template is malformed.
    #[error("template {0}: {1}")]
    Invalid(TemplateId, TemplateError),
    /// Not the next version of its id (versions are 1, 2, 3, …).
    #[error("template {id}: the next version is {expected}, not {got}")]
    Version {
        /// The template.
        id: TemplateId,
        /// The version it would have to be.
        expected: u32,
        /// The version given.
        got: u32,
    },
    /// A new version may not change the template's scope or record type:
    /// that would move existing records under another consent rule.
    #[error("template {0}: a new version keeps its scope and record type")]
    Identity(TemplateId),
    /// No such template or version.
    #[error("no template {0}")]
    NotFound(String),
}

/// Templates by id, each with all its versions in order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    templates: BTreeMap<TemplateId, Vec<Template>>,
}

impl Registry {
    /// A registry of the built-in templates.
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        for t in crate::builtin::templates() {
            if let Err(e) = r.add(t) {
                // A built-in template is code: a bad one is a bug, caught by
                // the tests of this module.
                panic!("built-in template: {e}");
            }
        }
        r
    }

    /// Adds a template's next version (1 for a new id), after checking it.
    pub fn add(&mut self, template: Template) -> Result<TemplateRef, RegistryError> {
        template.check().map_err(|e| RegistryError::Invalid(template.id.clone(), e))?;
        let versions = self.templates.entry(template.id.clone()).or_default();
        let expected = versions.len() as u32 + 1;
        if template.version != expected {
            return Err(RegistryError::Version { id: template.id, expected, got: template.version });
        }
        if let Some(first) = versions.first() {
            if first.scope != template.scope || first.record_type != template.record_type {
                return Err(RegistryError::Identity(template.id));
            }
        }
        let reference = template.reference();
        versions.push(template);
        Ok(reference)
    }

    /// One version of a template.
    pub fn get(&self, reference: &TemplateRef) -> Result<&Template, RegistryError> {
        self.templates
            .get(&reference.id)
            .and_then(|v| v.get((reference.version as usize).checked_sub(1)?))
            .ok_or_else(|| RegistryError::NotFound(format!("{} version {}", reference.id, reference.version)))
    }

    /// A template's latest version.
    pub fn latest(&self, id: &TemplateId) -> Result<&Template, RegistryError> {
        self.templates.get(id).and_then(|v| v.last()).ok_or_else(|| RegistryError::NotFound(id.to_string()))
    }

    /// The latest version of every template.
    pub fn latest_all(&self) -> impl Iterator<Item = &Template> {
        self.templates.values().filter_map(|v| v.last())
    }

    /// The latest version of every template `provider` (a principal, in
    /// `specialties`) may use: built-in, the tenant's, their specialties'
    /// and their own.
    pub fn usable_by<'a>(&'a self, provider: &'a str, specialties: &'a [String]) -> impl Iterator<Item = &'a Template> {
        self.templates.values().filter_map(|v| v.last()).filter(move |t| match &t.scope {
            Scope::Builtin | Scope::Tenant => true,
            Scope::Specialty(s) => specialties.contains(s),
            Scope::Provider(p) => p == provider,
        })
    }
}
