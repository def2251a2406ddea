//! The patient health profile: kept by the patient, encrypted like a
//! record, versioned with optimistic concurrency, and released part by part
//! as the chain allows.
//!
//! Each part of the profile falls under a consent data type
//! ([`medanchor_clinical::profile::SECTIONS`]). A reader other than the
//! patient gets exactly the parts whose data type the one authorization
//! rule lets them read right now — or, under an active emergency override,
//! the emergency information and nothing else. A reader allowed no part is
//! refused with the contract's error, audited, and learns nothing of
//! whether a profile exists.

use medanchor_clinical::profile::{self, Section, SECTIONS};
use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::{AccessMethod, DataType};
use medanchor_contracts::DataHash;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authz::Operation;
use crate::envelope::{Binding, Sealed};
use crate::error::{Error, Result};
use crate::state::{now_ms, Caller, Service};

/// What the database keeps about one profile version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The patient.
    pub patient: String,
    /// From 1.
    pub version: u64,
    /// SHA-256 of the stored ciphertext.
    pub data_hash: DataHash,
    /// The wrapped data key, hex.
    pub wrapped_key: String,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// Who wrote it (the patient).
    pub updated_by: String,
    /// Unix milliseconds.
    pub updated_ms: u64,
}

/// How a reader sees a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileAccess {
    /// The patient: everything.
    Owner,
    /// A provider: the parts their consent covers.
    Consent,
    /// A responder under an active override: the emergency information.
    Emergency,
}

impl ProfileAccess {
    /// `owner`, `consent` or `emergency`.
    pub fn name(self) -> &'static str {
        match self {
            ProfileAccess::Owner => "owner",
            ProfileAccess::Consent => "consent",
            ProfileAccess::Emergency => "emergency",
        }
    }
}

/// A profile as one reader may see it.
#[derive(Debug, Clone)]
pub struct ProfileRead {
    /// The version (0: none written yet; only the patient sees that).
    pub version: u64,
    /// The parts this reader may see.
    pub content: Value,
    /// The sections released.
    pub sections: Vec<&'static str>,
    /// How the reader was allowed.
    pub access: ProfileAccess,
    /// Completeness in percent and what is missing (the patient only).
    pub completeness: Option<(u8, Vec<&'static str>)>,
    /// When it was written (unix ms).
    pub updated_ms: Option<u64>,
}

/// The id a profile's envelope is bound to: derived from the patient, so a
/// profile's ciphertext opens only as that patient's profile.
pub(crate) fn profile_id(patient: &str) -> [u8; 16] {
    let digest = Sha256::digest([b"medanchor patient profile v1\0".as_slice(), patient.as_bytes()].concat());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

impl Service {
    /// Reads `patient`'s profile as `caller` may see it.
    pub async fn read_profile(&self, caller: &Caller, patient: &Principal) -> Result<ProfileRead> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "profile.read");
        entry.patient = Some(patient.to_string());
        let (s2, p2, w2) = (self.clone(), patient.clone(), who.clone());
        let decided =
            tokio::task::spawn_blocking(move || s2.profile_access(&p2, &w2)).await.map_err(Error::internal)?;
        let (access, allowed) = self.audit_refusal(&entry, decided).await?;
        entry.method = Some(access.name().to_string());
        let (s2, p2) = (self.clone(), patient.to_string());
        let stored = tokio::task::spawn_blocking(move || s2.open_profile(&p2)).await.map_err(Error::internal)?;
        let result = match stored {
            Ok(Some((meta, content))) => {
                let keep = |s: &Section| allowed.contains(&s.field);
                let visible = profile::only(&content, keep);
                let sections = SECTIONS.iter().filter(|s| keep(s)).map(|s| s.field).collect();
                entry.version = Some(meta.version);
                Ok(ProfileRead {
                    version: meta.version,
                    completeness: (access == ProfileAccess::Owner).then(|| profile::completeness(&content)),
                    content: visible,
                    sections,
                    access,
                    updated_ms: Some(meta.updated_ms),
                })
            }
            Ok(None) if access == ProfileAccess::Owner => Ok(ProfileRead {
                version: 0,
                content: Value::Object(Default::default()),
                sections: allowed,
                access,
                completeness: Some(profile::completeness(&Value::Null)),
                updated_ms: None,
            }),
            Ok(None) => Err(Error::NotFound(format!("the profile of {patient}"))),
            Err(e) => Err(e),
        };
        self.audited(entry, result).await
    }

    /// How `who` may read `patient`'s profile, and which sections: the
    /// patient all; under an active override the emergency sections; else
    /// the sections whose data type the one rule allows. None allowed is
    /// the contract's refusal: of the first data type in section order,
    /// unless a later one says more than "no consent".
    pub(crate) fn profile_access(
        &self,
        patient: &Principal,
        who: &Principal,
    ) -> Result<(ProfileAccess, Vec<&'static str>)> {
        if patient == who {
            return Ok((ProfileAccess::Owner, SECTIONS.iter().map(|s| s.field).collect()));
        }
        let mut types: Vec<DataType> = Vec::new();
        for s in &SECTIONS {
            if !types.contains(&s.data_type) {
                types.push(s.data_type);
            }
        }
        let mut allowed = Vec::new();
        let mut emergency = false;
        let mut first_refusal = None;
        for dt in types {
            match self.authorize_at(Operation::Read, patient, who, dt) {
                Ok(AccessMethod::Emergency) => emergency = true,
                Ok(_) => allowed.push(dt),
                // The refusal that says most: a consent revoked or
                // expired beats one never given (a section's data type
                // the caller never asked for).
                Err(e) => {
                    let never = |e: &Error| {
                        matches!(
                            e,
                            Error::Forbidden { reason: Some(medanchor_contracts::ContractError::NoConsent), .. }
                        )
                    };
                    if first_refusal.as_ref().is_none_or(|f| never(f) && !never(&e)) {
                        first_refusal = Some(e);
                    }
                }
            }
        }
        if emergency {
            // An override releases the emergency information only, even
            // where the responder also holds consent for more.
            return Ok((ProfileAccess::Emergency, SECTIONS.iter().filter(|s| s.emergency).map(|s| s.field).collect()));
        }
        if allowed.is_empty() {
            return Err(first_refusal.unwrap_or_else(|| Error::internal("no data type decided")));
        }
        Ok((
            ProfileAccess::Consent,
            SECTIONS.iter().filter(|s| allowed.contains(&s.data_type)).map(|s| s.field).collect(),
        ))
    }

    /// The current profile version, decrypted.
    pub(crate) fn open_profile(&self, patient: &str) -> Result<Option<(ProfileMeta, Value)>> {
        let Some(meta) = self.db.current_profile(patient)? else { return Ok(None) };
        let blob = self
            .blobs
            .get(&meta.data_hash)
            .map_err(Error::internal)?
            .ok_or_else(|| Error::internal(format!("profile blob {} is missing", meta.data_hash)))?;
        let id = profile_id(patient);
        let binding = Binding { tenant: &self.config.tenant, patient, record_id: &id, version: meta.version };
        let wrapped_key = hex::decode(&meta.wrapped_key).map_err(|_| Error::internal("stored wrapped key"))?;
        let sealed = Sealed { blob, wrapped_key, kek_version: meta.kek_version };
        let plaintext = self
            .keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .open_sealed(&binding, &sealed)
            .map_err(Error::internal)?;
        let content =
            serde_json::from_slice(&plaintext).map_err(|e| Error::internal(format!("stored profile: {e}")))?;
        Ok(Some((meta, content)))
    }

    /// Writes a new version of `patient`'s profile: the patient only, on the
    /// version they read (`expected`, 0 before the first); validated with
    /// every failing field named; encrypted, stored synced, audited.
    pub async fn write_profile(
        &self,
        caller: &Caller,
        patient: &Principal,
        expected: u64,
        content: &[u8],
    ) -> Result<ProfileRead> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "profile.update");
        entry.patient = Some(patient.to_string());
        let owner = if who != *patient {
            Err(Error::Forbidden {
                code: "profile-owner",
                detail: "a health profile is written by its patient only".into(),
                reason: None,
            })
        } else {
            match self.chain.patient(patient).map_err(Error::internal)? {
                Some(_) => Ok(()),
                None => Err(Error::denied(medanchor_contracts::ContractError::PatientNotFound)),
            }
        };
        self.audit_refusal(&entry, owner).await?;
        let content: Value = serde_json::from_slice(content)
            .map_err(|e| Error::bad("invalid-content", format!("the profile is not JSON: {e}")))?;
        let normal = profile::schema()
            .validate(&content)
            .map_err(|errors| Error::Content(errors.into_iter().map(|e| (e.path, e.problem.to_string())).collect()))?;
        let id = profile_id(&patient.to_string());
        let lock = self.record_lock(&id);
        let _one_writer = lock.lock().await;
        let current = self.db.current_profile(&patient.to_string())?.map_or(0, |m| m.version);
        entry.version = Some(current + 1);
        if expected != current {
            let stale = Error::Conflict {
                precondition: false,
                detail: format!("version {expected} is not the current version"),
                current_version: current,
            };
            return self.audited(entry, Err(stale)).await;
        }
        let (s2, p2) = (self.clone(), patient.to_string());
        let meta = tokio::task::spawn_blocking(move || s2.store_profile(&p2, current + 1, &normal))
            .await
            .map_err(Error::internal)??;
        let result = Ok(ProfileRead {
            version: meta.version,
            completeness: None,
            content: Value::Null,
            sections: Vec::new(),
            access: ProfileAccess::Owner,
            updated_ms: Some(meta.updated_ms),
        });
        let written = self.audited(entry, result).await?;
        // Answer with what the patient now reads.
        let (s2, p2) = (self.clone(), patient.to_string());
        let (meta, content) = tokio::task::spawn_blocking(move || s2.open_profile(&p2))
            .await
            .map_err(Error::internal)??
            .ok_or_else(|| Error::internal("the profile just written is missing"))?;
        Ok(ProfileRead {
            version: meta.version,
            completeness: Some(profile::completeness(&content)),
            sections: SECTIONS.iter().map(|s| s.field).collect(),
            content,
            ..written
        })
    }

    fn store_profile(&self, patient: &str, version: u64, content: &Value) -> Result<ProfileMeta> {
        let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(content).map_err(Error::internal)?);
        let id = profile_id(patient);
        let binding = Binding { tenant: &self.config.tenant, patient, record_id: &id, version };
        let sealed = self
            .keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .seal(&binding, &plaintext)
            .map_err(Error::internal)?;
        let hash = self.blobs.put(&sealed.blob).map_err(Error::internal)?;
        let meta = ProfileMeta {
            patient: patient.to_string(),
            version,
            data_hash: DataHash(hash),
            wrapped_key: hex::encode(&sealed.wrapped_key),
            kek_version: sealed.kek_version,
            updated_by: patient.to_string(),
            updated_ms: now_ms(),
        };
        // The profile and its search entries (name, phone, blood group,
        // and the name on the patient's records) in one synced batch.
        let mut batch = self.db.batch();
        self.db.put_profile_in(&mut batch, &meta)?;
        let _one_index_writer = self.index_stripes.lock(patient);
        self.index_patient(&mut batch, patient, content)?;
        self.db.write(batch)?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_ids_are_per_patient() {
        assert_ne!(super::profile_id("ST1"), super::profile_id("ST2"));
        assert_eq!(super::profile_id("ST1"), super::profile_id("ST1"));
    }
}
