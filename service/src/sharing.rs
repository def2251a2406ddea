//! Sharing use cases: patients make, list and revoke access codes (with an
//! optional signed QR link) and lift a lock-out; providers redeem a code or
//! a link for a short-lived grant. The model and the brute-force bound are
//! in [`crate::share`]; reads through a grant are in [`crate::grants`].
//!
//! Every attempt is audited; a redemption is rate-limited per client and
//! per provider, and counted against the patient's codes when wrong.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::DataType;
use serde_json::json;

use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::records::principal_arg;
use crate::share::link::LinkPayload;
use crate::share::store::{Created, Guard, NewShare, Redeemed};
use crate::share::{Grant, Share, ShareView};
use crate::state::{Caller, Service};

/// A share made: the store's answer, and its signed QR link when asked.
#[derive(Debug)]
pub struct CreatedShare {
    /// The code (shown once), the share, and the lock-out it lifted.
    pub created: Created,
    /// The signed link for the QR (with its decryption key).
    pub link: Option<LinkPayload>,
}

/// A patient's shares and their lock state.
#[derive(Debug)]
pub struct ShareList {
    /// Every share, newest first.
    pub items: Vec<ShareView>,
    /// How many are active.
    pub active: usize,
    /// The most that may be.
    pub max_active: usize,
    /// The failed-attempt counter.
    pub guard: Guard,
}

/// What a grant gives for one data type, under the chain's rules now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeAccess {
    /// The data type.
    pub data_type: DataType,
    /// Whether reads of it through the grant are allowed now.
    pub allowed: bool,
    /// The contract's refusal when not.
    pub reason: Option<&'static str>,
}

/// A redeemed grant and what it gives.
#[derive(Debug)]
pub struct RedeemedGrant {
    /// The grant and its token.
    pub redeemed: Redeemed,
    /// Per data type it covers.
    pub access: Vec<TypeAccess>,
}

fn require_patient(s: &Service, who: &Principal) -> Result<()> {
    match s.chain.patient(who).map_err(Error::internal)? {
        Some(_) => Ok(()),
        None => Err(Error::Forbidden {
            code: "patient-required",
            detail: "only a patient registered on-chain can share their records".into(),
            reason: None,
        }),
    }
}

fn require_provider(s: &Service, who: &Principal) -> Result<()> {
    match s.chain.provider(who).map_err(Error::internal)? {
        Some(p) if p.active => Ok(()),
        Some(_) => Err(Error::Forbidden {
            code: "provider-inactive",
            detail: "the provider is deactivated on-chain".into(),
            reason: None,
        }),
        None => Err(Error::Forbidden {
            code: "provider-required",
            detail: "only a provider registered on-chain can redeem a share".into(),
            reason: None,
        }),
    }
}

/// The release document of a QR link: what the scanner learns, encrypted
/// under the QR's key — whose data, which types, until when, from which
/// node. Opaque ids only, and no record list: records are listed through
/// the grant, where the chain's rules apply at the time of reading.
fn release_document(s: &Service, share: &Share) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "v": 1,
        "share_id": share.id,
        "patient": share.patient,
        "data_types": share.data_types,
        "expires_ms": share.expires_ms,
        "issuer": s.config.public_url.trim_end_matches('/'),
    }))
    .expect("json")
}

/// The signed link of a created share.
fn link_payload(s: &Service, created: &Created, capability: &str, key: &[u8; 32]) -> LinkPayload {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine;
    let base = s.config.public_url.trim_end_matches('/');
    let mut payload = LinkPayload {
        url: format!("{base}/v1/share/links/{capability}"),
        key: B64URL.encode(key),
        exp: created.share.expires_ms / 1000,
        flag: created.share.link.as_ref().is_some_and(|l| l.passcode).then(|| "P".to_string()),
        label: "medanchor share".into(),
        v: 1,
        iss: base.to_string(),
        kid: String::new(),
        sig: None,
    };
    s.shares.keys().sign(&mut payload);
    payload
}

impl Service {
    /// A patient makes an access code (and, with `new.link`, a signed QR
    /// link). Audited, with the lock-out it lifted.
    pub async fn create_share(&self, caller: &Caller, new: NewShare) -> Result<CreatedShare> {
        let who = caller.require()?.clone();
        require_patient(self, &who)?;
        let now = self.now_ms();
        let patient = who.to_string();
        let (s2, p2) = (self.clone(), patient.clone());
        let created = tokio::task::spawn_blocking(move || {
            s2.shares.create(&p2, &new, now, &|share| release_document(&s2, share))
        })
        .await
        .map_err(Error::internal)?;
        let mut entry = caller.entry("patient", "share.create");
        entry.patient = Some(patient.clone());
        let created = self.audit_refusal(&entry, created.map_err(Error::from)).await?;
        if let Some(failures) = created.unlocked {
            let mut unlock = caller.entry("patient", "share.unlock");
            unlock.patient = Some(patient);
            unlock.reason = Some(format!("lifted by a new code after {failures} failed attempts"));
            self.audited(unlock, Ok(())).await?;
        }
        entry.share_id = Some(created.share.id.clone());
        self.audited(entry, Ok(())).await?;
        let link = created.link.as_ref().map(|(capability, key)| link_payload(self, &created, capability, key));
        Ok(CreatedShare { created, link })
    }

    /// The caller's shares and lock state.
    pub fn list_shares(&self, caller: &Caller) -> Result<ShareList> {
        let who = caller.require()?.to_string();
        let items = self.shares.list(&who, self.now_ms())?;
        let guard = self.shares.guard(&who)?;
        let active = items.iter().filter(|v| v.state == crate::share::ShareState::Active).count();
        Ok(ShareList { items, active, max_active: self.shares.policy().max_active, guard })
    }

    /// Revokes one of the caller's shares: its code, link and grants end
    /// at once. Audited.
    pub async fn revoke_share(&self, caller: &Caller, id: &str) -> Result<ShareView> {
        let who = caller.require()?.to_string();
        let now = self.now_ms();
        let (s2, w2, id) = (self.clone(), who.clone(), id.to_string());
        let revoked =
            tokio::task::spawn_blocking(move || s2.shares.revoke(&w2, &id, now)).await.map_err(Error::internal)?;
        let mut entry = caller.entry("patient", "share.revoke");
        entry.patient = Some(who);
        let share = self.audit_refusal(&entry, revoked.map_err(Error::from)).await?;
        entry.share_id = Some(share.id.clone());
        self.audited(entry, Ok(())).await?;
        Ok(share.view(now))
    }

    /// Lifts the caller's lock-out (the failures stay in the history).
    /// Audited.
    pub async fn unlock_shares(&self, caller: &Caller) -> Result<Guard> {
        let who = caller.require()?.to_string();
        let (s2, w2) = (self.clone(), who.clone());
        let guard = tokio::task::spawn_blocking(move || s2.shares.unlock(&w2)).await.map_err(Error::internal)??;
        let mut entry = caller.entry("patient", "share.unlock");
        entry.patient = Some(who);
        self.audited(entry, Ok(())).await?;
        Ok(guard)
    }

    /// A provider redeems `patient`'s 6-digit `code`. Every attempt is
    /// audited and rate-limited.
    pub async fn redeem_code(&self, caller: &Caller, patient: &str, code: &str) -> Result<RedeemedGrant> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "share.redeem");
        entry.method = Some("access_code".into());
        let patient = self.audit_refusal(&entry, principal_arg(patient, "patient")).await?;
        entry.patient = Some(patient.to_string());
        self.audit_refusal(&entry, require_provider(self, &who)).await?;
        self.limit(caller, &who, &entry).await?;
        let (s2, p, code, provider, now) =
            (self.clone(), patient.to_string(), code.to_string(), who.to_string(), self.now_ms());
        let outcome = tokio::task::spawn_blocking(move || s2.shares.redeem_code(&p, &code, &provider, now))
            .await
            .map_err(Error::internal)?;
        let redeemed = self.audit_refusal(&entry, outcome.map_err(Error::from)).await?;
        entry.share_id = Some(redeemed.grant.share_id.clone());
        self.audited(entry, Ok(())).await?;
        let access = self.effective_access(&redeemed.grant, &who)?;
        Ok(RedeemedGrant { redeemed, access })
    }

    /// A provider redeems a scanned QR link (with its passcode when the
    /// link asks for one); the grant and the release document (a compact
    /// JWE under the QR's key). Every attempt is audited and rate-limited.
    pub async fn redeem_link(
        &self,
        caller: &Caller,
        capability: &str,
        passcode: Option<&str>,
    ) -> Result<(RedeemedGrant, String)> {
        let who = caller.require()?.clone();
        let mut entry = caller.entry(self.role_of(&who)?, "share.redeem");
        entry.method = Some("qr_code".into());
        self.audit_refusal(&entry, require_provider(self, &who)).await?;
        self.limit(caller, &who, &entry).await?;
        let (s2, provider, now) = (self.clone(), who.to_string(), self.now_ms());
        let (cap, passcode) = (capability.to_string(), passcode.map(str::to_string));
        let (share, outcome) = tokio::task::spawn_blocking(move || {
            // Attribute the attempt to the patient and share even when it fails.
            let share = s2.shares.share_of_link(&cap).ok().flatten();
            (share, s2.shares.redeem_link(&cap, passcode.as_deref(), &provider, now))
        })
        .await
        .map_err(Error::internal)?;
        if let Some(share) = &share {
            entry.patient = Some(share.patient.clone());
            entry.share_id = Some(share.id.clone());
        }
        let (redeemed, release) = self.audit_refusal(&entry, outcome.map_err(Error::from)).await?;
        self.audited(entry, Ok(())).await?;
        let access = self.effective_access(&redeemed.grant, &who)?;
        Ok((RedeemedGrant { redeemed, access }, release))
    }

    /// Rate-limits one redemption attempt; a refusal is audited like any
    /// failed attempt.
    async fn limit(&self, caller: &Caller, who: &Principal, entry: &AuditEntry) -> Result<()> {
        let attempt =
            self.limiter.attempt(caller.ip.as_deref(), &who.to_string(), self.now_ms()).map_err(|(scope, wait_ms)| {
                Error::TooManyRequests {
                    detail: format!("too many redemption attempts from {}; retry later", scope.name()),
                    retry_after_s: wait_ms.div_ceil(1000).max(1),
                }
            });
        self.audit_refusal(entry, attempt).await
    }

    /// What each data type a grant covers gives right now, under the
    /// chain's rules (a broad share is reported per type it covers).
    fn effective_access(&self, grant: &Grant, provider: &Principal) -> Result<Vec<TypeAccess>> {
        let patient = principal_arg(&grant.patient, "patient")?;
        DataType::ALL
            .iter()
            .filter(|d| **d != DataType::AllStandard && grant.covers(**d))
            .map(|d| {
                let refusal = crate::grants::grant_refusal(self, &patient, provider, *d)?;
                Ok(TypeAccess { data_type: *d, allowed: refusal.is_none(), reason: refusal.map(|e| e.constant()) })
            })
            .collect()
    }
}
