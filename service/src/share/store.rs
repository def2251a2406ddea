//! Shares, codes, grants and failure counters in the API's RocksDB.
//!
//! | family | key | value | invariant |
//! |---|---|---|---|
//! | `shares` | share id (16) | [`Share`] JSON | the code only as its keyed MAC; the QR release only as JWE |
//! | `share_index` | patient ‖ 0 ‖ share id | empty | one row per stored share of the patient |
//! | `share_links` | SHA-256(capability) | share id | only for shares made with a QR link |
//! | `share_grants` | SHA-256(grant token) | [`Grant`] JSON | never outlives its share's expiry |
//! | `share_guards` | patient | failure counter JSON | never decreases except by the patient's unlock |
//!
//! These families belong to the API database ([`crate::db`]) and carry its
//! schema version: a change to their layout is a step of
//! [`crate::db::MIGRATIONS`].
//!
//! Every change is one synced batch, and every redemption — right or
//! wrong — runs under the patient's lock, so parallel guesses are counted
//! one by one and a crash never loses a counted failure.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use medanchor_contracts::types::DataType;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::link::{jwe_encrypt, ShareKeys};
use super::ShareDuration;
use crate::db::{ApiDb, Cf, DbError};

/// The brute-force policy (see the bound in [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Digits in a code (6; tests shrink it to measure an attacker's odds).
    pub digits: u32,
    /// Failures a code survives (F_c).
    pub code_max_failures: u32,
    /// Failures per patient before redemption locks (F_p).
    pub patient_max_failures: u32,
    /// Live codes per patient (A).
    pub max_active: usize,
    /// How long a redemption's grant lasts (never past its share's expiry).
    pub grant_ttl_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { digits: 6, code_max_failures: 5, patient_max_failures: 10, max_active: 10, grant_ttl_ms: 3_600_000 }
    }
}

impl Policy {
    /// The size of the code space, D.
    pub fn space(&self) -> u64 {
        10u64.pow(self.digits)
    }

    /// The bound of [`super`] on an attacker's chance to redeem any code
    /// of one patient within one lock cycle in which the patient made
    /// `codes` codes: each code absorbs at most F_c wrong guesses and the
    /// patient at most F_p, each guess matching at most A live codes, so
    /// P ≤ min(F_c · codes, F_p · A) / (D − F_p).
    pub fn success_bound(&self, codes: u64) -> f64 {
        let exposures = (u64::from(self.code_max_failures) * codes)
            .min(u64::from(self.patient_max_failures) * self.max_active as u64);
        exposures as f64 / (self.space() - u64::from(self.patient_max_failures)) as f64
    }
}

/// Largest `max_uses`.
pub const MAX_USES_LIMIT: u32 = 1_000;

/// A share as stored. (Its `Debug` leaves out the code's MAC.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Random id (hex, 16 bytes).
    pub id: String,
    /// Whose data.
    pub patient: String,
    /// What it covers.
    pub data_types: Vec<DataType>,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms.
    pub expires_ms: u64,
    /// One redemption only.
    pub single_use: bool,
    /// At most this many redemptions.
    pub max_uses: Option<u32>,
    /// Redemptions so far.
    pub uses: u32,
    /// Wrong guesses counted against it.
    pub failures: u32,
    /// When the patient revoked it.
    pub revoked_ms: Option<u64>,
    /// Burned by failures.
    pub burned: bool,
    /// The latest expiry of its grants (the sweeper keeps a used share
    /// until then, so its grants can still be checked against it).
    pub grants_until_ms: u64,
    /// HMAC-SHA256(node key, patient ‖ code), hex.
    code_mac: String,
    /// The QR link, if one was made.
    pub link: Option<LinkState>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("id", &self.id)
            .field("patient", &self.patient)
            .field("data_types", &self.data_types)
            .field("expires_ms", &self.expires_ms)
            .field("uses", &self.uses)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// A share's QR link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// SHA-256 of the capability, hex.
    pub capability_hash: String,
    /// Whether the code is required as a passcode.
    pub passcode: bool,
    /// The release document, a compact JWE under the QR's key.
    pub release: String,
}

/// Where a share stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    /// Redeemable.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked by the patient.
    Revoked,
    /// Every allowed use taken.
    UsedUp,
    /// Too many wrong guesses.
    Burned,
}

impl ShareState {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            ShareState::Active => "active",
            ShareState::Expired => "expired",
            ShareState::Revoked => "revoked",
            ShareState::UsedUp => "used_up",
            ShareState::Burned => "burned",
        }
    }
}

/// A share as the patient sees it (no MAC, no release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareView {
    /// Share id (hex).
    pub id: String,
    /// Whose data.
    pub patient: String,
    /// Data types covered.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub data_types: Vec<DataType>,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms.
    pub expires_ms: u64,
    /// Where it stands.
    pub state: ShareState,
    /// One redemption only.
    pub single_use: bool,
    /// Redemption cap.
    pub max_uses: Option<u32>,
    /// Redemptions so far.
    pub uses: u32,
    /// Wrong guesses counted against it.
    pub failures: u32,
    /// Whether a QR link was made.
    pub qr: bool,
    /// Whether the QR link needs the code as passcode.
    pub passcode: bool,
}

impl Share {
    fn uses_limit(&self) -> Option<u32> {
        if self.single_use {
            Some(1)
        } else {
            self.max_uses
        }
    }

    /// Where it stands at `now_ms`.
    pub fn state(&self, now_ms: u64) -> ShareState {
        if self.revoked_ms.is_some() {
            ShareState::Revoked
        } else if self.burned {
            ShareState::Burned
        } else if self.uses_limit().is_some_and(|l| self.uses >= l) {
            ShareState::UsedUp
        } else if now_ms >= self.expires_ms {
            ShareState::Expired
        } else {
            ShareState::Active
        }
    }

    /// The patient's view.
    pub fn view(&self, now_ms: u64) -> ShareView {
        ShareView {
            id: self.id.clone(),
            patient: self.patient.clone(),
            data_types: self.data_types.clone(),
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            state: self.state(now_ms),
            single_use: self.single_use,
            max_uses: self.max_uses,
            uses: self.uses,
            failures: self.failures,
            qr: self.link.is_some(),
            passcode: self.link.as_ref().is_some_and(|l| l.passcode),
        }
    }
}

/// What a redemption yields: access to one patient's data of some types,
/// for one provider, for a short while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The share redeemed.
    pub share_id: String,
    /// Whose data.
    pub patient: String,
    /// Who may use it (the redeeming provider).
    pub provider: String,
    /// Data types covered.
    pub data_types: Vec<DataType>,
    /// `access_code` or `qr_code` (the audit method).
    pub method: String,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms.
    pub expires_ms: u64,
}

impl Grant {
    /// Whether it covers `data_type` (a broad `all-standard` never covers
    /// the enhanced-protection types, as on-chain).
    pub fn covers(&self, data_type: DataType) -> bool {
        self.data_types.iter().any(|g| g.covers(data_type))
    }
}

/// A patient's failure counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Failures since the patient last unlocked.
    pub failures: u32,
    /// Failures ever.
    pub lifetime_failures: u64,
    /// Redemption locked (F_p reached).
    pub locked: bool,
}

/// Why a sharing operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
    /// No such share, link or grant (for this caller).
    #[error("{0} not found")]
    NotFound(String),
    /// The patient has A live codes.
    #[error("you already have {0} active codes (the limit); revoke one first")]
    TooManyActive(usize),
    /// Wrong code or passcode; `remaining` wrong guesses are left before
    /// the codes burn or redemption locks.
    #[error("the code is not valid for this patient ({remaining} attempts left)")]
    WrongCode {
        /// Attempts left.
        remaining: u32,
    },
    /// A QR link that needs its code as passcode was presented without it.
    #[error("this link needs the 6-digit code as passcode ({remaining} attempts left)")]
    PasscodeRequired {
        /// Attempts left.
        remaining: u32,
    },
    /// Redemption for this patient is locked after too many failures.
    #[error("redemption of this patient's codes is locked after {0} failed attempts; the patient must unlock it")]
    Locked(u32),
    /// The link's share is no longer redeemable.
    #[error("this share is {}", .0.name())]
    Inactive(ShareState),
    /// A grant that is unknown, expired, revoked or someone else's.
    #[error("the access grant {0}")]
    GrantRefused(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a patient asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    /// Data types (at least one; enhanced ones only by name).
    pub data_types: Vec<DataType>,
    /// Lifetime.
    pub duration: ShareDuration,
    /// One redemption only.
    pub single_use: bool,
    /// At most this many redemptions.
    pub max_uses: Option<u32>,
    /// Make a QR link; `Some(true)`: the code is its passcode.
    pub link: Option<bool>,
}

/// A created share with its secrets, shown to the patient once.
pub struct Created {
    /// The share.
    pub share: Share,
    /// The 6-digit code.
    pub code: String,
    /// The link's capability (base64url) and release key, when made.
    pub link: Option<(String, [u8; 32])>,
    /// Set when making it lifted a lock-out: the failures that had locked.
    pub unlocked: Option<u32>,
}

/// A successful redemption.
pub struct Redeemed {
    /// The grant token (shown once; stored only hashed).
    pub token: String,
    /// The grant.
    pub grant: Grant,
    /// The share after this use.
    pub share: Share,
}

// Secrets never reach a Debug string (logs, panics).
impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created").field("share", &self.share.id).field("code", &"<redacted>").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Redeemed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redeemed").field("grant", &self.grant).field("token", &"<redacted>").finish_non_exhaustive()
    }
}

/// Builds the release document of a new share's QR link.
pub type ReleaseFn<'a> = &'a dyn Fn(&Share) -> Vec<u8>;

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn corrupt(what: &str) -> ShareError {
    ShareError::Db(DbError::Corrupt(what.into()))
}

/// Lock stripes: redemptions of one patient serialize; of different
/// patients mostly not. Fixed, so guessing at many patients cannot grow it.
const STRIPES: usize = 256;

/// The share store.
pub struct ShareStore {
    db: Arc<ApiDb>,
    keys: ShareKeys,
    policy: Policy,
    stripes: Vec<Mutex<()>>,
}

impl std::fmt::Debug for ShareStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareStore").field("keys", &self.keys).field("policy", &self.policy).finish()
    }
}

impl ShareStore {
    /// A store over `db`.
    pub fn new(db: Arc<ApiDb>, keys: ShareKeys, policy: Policy) -> ShareStore {
        ShareStore { db, keys, policy, stripes: (0..STRIPES).map(|_| Mutex::new(())).collect() }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keys (for signing links).
    pub fn keys(&self) -> &ShareKeys {
        &self.keys
    }

    fn lock(&self, patient: &str) -> std::sync::MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        patient.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn mac(&self, patient: &str, code: &str) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.keys.mac_key()).expect("HMAC takes any key length");
        m.update(b"medanchor/share/code/v1\0");
        m.update(patient.as_bytes());
        m.update(b"\0");
        m.update(code.as_bytes());
        m.finalize().into_bytes().into()
    }

    fn index_key(patient: &str, id: &[u8]) -> Vec<u8> {
        let mut k = patient.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(id);
        k
    }

    fn put_share(&self, batch: &mut rocksdb::WriteBatch, share: &Share) -> Result<(), ShareError> {
        let id = hex::decode(&share.id).map_err(|_| corrupt("share id"))?;
        batch.put_cf(self.db.cf(Cf::Shares), &id, serde_json::to_vec(share).expect("shares serialize"));
        Ok(())
    }

    /// A share by id.
    pub fn share(&self, id: &str) -> Result<Option<Share>, ShareError> {
        let Some(key) = hex::decode(id).ok().filter(|k| k.len() == 16) else { return Ok(None) };
        self.db.get(Cf::Shares, &key)?.map(|v| serde_json::from_slice(&v).map_err(|_| corrupt("share"))).transpose()
    }

    /// Every stored share of `patient` (any state), oldest first.
    pub fn shares_of(&self, patient: &str) -> Result<Vec<Share>, ShareError> {
        let mut prefix = patient.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for (k, _) in self.db.scan(Cf::ShareIndex, &prefix)? {
            if let Some(s) = self.share(&hex::encode(&k[prefix.len()..]))? {
                out.push(s);
            }
        }
        out.sort_by_key(|s| s.created_ms);
        Ok(out)
    }

    /// The patient's failure counter.
    pub fn guard(&self, patient: &str) -> Result<Guard, ShareError> {
        Ok(self
            .db
            .get(Cf::ShareGuards, patient.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|_| corrupt("guard")))
            .transpose()?
            .unwrap_or_default())
    }

    /// Makes a share for `patient` at `now_ms`; `release` builds the QR
    /// link's release document (encrypted here under the link's key).
    pub fn create(
        &self,
        patient: &str,
        req: &NewShare,
        now_ms: u64,
        release: ReleaseFn<'_>,
    ) -> Result<Created, ShareError> {
        if req.data_types.is_empty() {
            return Err(ShareError::Invalid("name at least one data type".into()));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(d) = req.data_types.iter().find(|d| !seen.insert(**d)) {
            return Err(ShareError::Invalid(format!("data type {d} is named twice")));
        }
        match req.max_uses {
            Some(0) => return Err(ShareError::Invalid("max_uses must be at least 1".into())),
            Some(n) if n > MAX_USES_LIMIT => {
                return Err(ShareError::Invalid(format!("max_uses must be at most {MAX_USES_LIMIT}")))
            }
            Some(n) if req.single_use && n != 1 => {
                return Err(ShareError::Invalid("single_use conflicts with max_uses > 1".into()))
            }
            _ => {}
        }
        let _guard = self.lock(patient);
        // Making a code is the patient's own act and ends a lock-out, as
        // `unlock` does (the bound counts per code made; a guesser cannot
        // start a new cycle): a lock-out by a stranger costs the patient
        // their live codes, never the ability to share.
        let mut guard = self.guard(patient)?;
        let unlocked = guard.locked.then_some(guard.failures);
        guard.failures = 0;
        guard.locked = false;
        let live: Vec<Share> =
            self.shares_of(patient)?.into_iter().filter(|s| s.state(now_ms) == ShareState::Active).collect();
        if live.len() >= self.policy.max_active {
            return Err(ShareError::TooManyActive(self.policy.max_active));
        }
        let space = 10u32.pow(self.policy.digits);
        if live.len() as u64 >= u64::from(space) {
            return Err(ShareError::Invalid("no distinct code is left in this code space".into()));
        }
        let mut rng = rand::rngs::OsRng;
        // Distinct among the patient's live codes, so one guess can match
        // at most one code.
        let (code, mac) = loop {
            let code = format!("{:0width$}", rng.gen_range(0..space), width = self.policy.digits as usize);
            let mac = self.mac(patient, &code);
            if !live.iter().any(|s| hex::decode(&s.code_mac).is_ok_and(|m| m == mac)) {
                break (code, mac);
            }
        };
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut share = Share {
            id: hex::encode(id),
            patient: patient.to_string(),
            data_types: req.data_types.clone(),
            created_ms: now_ms,
            expires_ms: now_ms + req.duration.millis(),
            single_use: req.single_use,
            max_uses: req.max_uses,
            uses: 0,
            failures: 0,
            revoked_ms: None,
            burned: false,
            grants_until_ms: 0,
            code_mac: hex::encode(mac),
            link: None,
        };
        let mut batch = self.db.batch();
        let mut link = None;
        if let Some(passcode) = req.link {
            let (mut capability, mut key) = ([0u8; 32], [0u8; 32]);
            rng.fill_bytes(&mut capability);
            rng.fill_bytes(&mut key);
            let hash = sha256(&capability);
            share.link = Some(LinkState {
                capability_hash: hex::encode(hash),
                passcode,
                release: jwe_encrypt(&key, &release(&share)),
            });
            batch.put_cf(self.db.cf(Cf::ShareLinks), hash, id);
            link = Some((B64URL.encode(capability), key));
        }
        self.put_share(&mut batch, &share)?;
        batch.put_cf(self.db.cf(Cf::ShareIndex), Self::index_key(patient, &id), []);
        batch.put_cf(self.db.cf(Cf::ShareGuards), patient.as_bytes(), serde_json::to_vec(&guard).expect("json"));
        self.db.write(batch)?;
        Ok(Created { share, code, link, unlocked })
    }

    /// The patient's shares: all stored (the sweeper removes dead ones).
    pub fn list(&self, patient: &str, now_ms: u64) -> Result<Vec<ShareView>, ShareError> {
        Ok(self.shares_of(patient)?.iter().map(|s| s.view(now_ms)).collect())
    }

    /// Revokes one of `patient`'s shares (idempotent); its grants end at
    /// once.
    pub fn revoke(&self, patient: &str, id: &str, now_ms: u64) -> Result<Share, ShareError> {
        let _guard = self.lock(patient);
        let mut share = self
            .share(id)?
            .filter(|s| s.patient == patient)
            .ok_or_else(|| ShareError::NotFound(format!("share {id}")))?;
        if share.revoked_ms.is_none() {
            share.revoked_ms = Some(now_ms);
            let mut batch = self.db.batch();
            self.put_share(&mut batch, &share)?;
            self.db.write(batch)?;
        }
        Ok(share)
    }

    /// Lifts a lock-out: the patient has seen the failures.
    pub fn unlock(&self, patient: &str) -> Result<Guard, ShareError> {
        let _guard = self.lock(patient);
        let mut guard = self.guard(patient)?;
        guard.failures = 0;
        guard.locked = false;
        let mut batch = self.db.batch();
        batch.put_cf(self.db.cf(Cf::ShareGuards), patient.as_bytes(), serde_json::to_vec(&guard).expect("json"));
        self.db.write(batch)?;
        Ok(guard)
    }

    fn check_code_format(&self, code: &str) -> Result<(), ShareError> {
        let digits = self.policy.digits as usize;
        if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ShareError::Invalid(format!("a code is exactly {digits} digits")));
        }
        Ok(())
    }

    /// Counts one failure against `patient` and against `targets` (the
    /// live shares the guess could have matched), burning and locking at
    /// the caps. Returns the attempts left before the patient locks and,
    /// when there were targets, before the first of them burns. Caller
    /// holds the lock.
    fn fail(&self, patient: &str, targets: Vec<Share>, now_ms: u64) -> Result<(u32, Option<u32>), ShareError> {
        let p = self.policy;
        let mut guard = self.guard(patient)?;
        guard.failures = guard.failures.saturating_add(1);
        guard.lifetime_failures += 1;
        if guard.failures >= p.patient_max_failures {
            guard.locked = true;
        }
        let mut batch = self.db.batch();
        let mut least: Option<u32> = None;
        // A lock burns every live code, not only the targets.
        let targets = if guard.locked {
            self.shares_of(patient)?.into_iter().filter(|s| s.state(now_ms) == ShareState::Active).collect()
        } else {
            targets
        };
        for mut s in targets {
            s.failures = s.failures.saturating_add(1);
            if s.failures >= p.code_max_failures || guard.locked {
                s.burned = true;
            }
            let left = p.code_max_failures.saturating_sub(s.failures);
            least = Some(least.map_or(left, |l| l.min(left)));
            self.put_share(&mut batch, &s)?;
        }
        batch.put_cf(self.db.cf(Cf::ShareGuards), patient.as_bytes(), serde_json::to_vec(&guard).expect("json"));
        self.db.write(batch)?;
        Ok((p.patient_max_failures.saturating_sub(guard.failures), least))
    }

    /// Issues a grant for `share` to `provider` and records the use.
    fn grant(&self, mut share: Share, provider: &str, method: &str, now_ms: u64) -> Result<Redeemed, ShareError> {
        let mut token = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token);
        let grant = Grant {
            share_id: share.id.clone(),
            patient: share.patient.clone(),
            provider: provider.to_string(),
            data_types: share.data_types.clone(),
            method: method.to_string(),
            created_ms: now_ms,
            expires_ms: (now_ms + self.policy.grant_ttl_ms).min(share.expires_ms),
        };
        share.uses += 1;
        share.grants_until_ms = share.grants_until_ms.max(grant.expires_ms);
        let mut batch = self.db.batch();
        self.put_share(&mut batch, &share)?;
        batch.put_cf(self.db.cf(Cf::ShareGrants), sha256(&token), serde_json::to_vec(&grant).expect("json"));
        self.db.write(batch)?;
        Ok(Redeemed { token: B64URL.encode(token), grant, share })
    }

    /// Redeems `patient`'s `code` for `provider`.
    pub fn redeem_code(&self, patient: &str, code: &str, provider: &str, now_ms: u64) -> Result<Redeemed, ShareError> {
        self.check_code_format(code)?;
        let _guard = self.lock(patient);
        let guard = self.guard(patient)?;
        if guard.locked {
            return Err(ShareError::Locked(guard.failures));
        }
        let mac = self.mac(patient, code);
        let live: Vec<Share> =
            self.shares_of(patient)?.into_iter().filter(|s| s.state(now_ms) == ShareState::Active).collect();
        // Every live MAC compared, in constant time each.
        let mut hit = None;
        for (i, s) in live.iter().enumerate() {
            let stored = hex::decode(&s.code_mac).map_err(|_| corrupt("code mac"))?;
            if bool::from(stored.ct_eq(&mac[..])) {
                hit = Some(i);
            }
        }
        match hit {
            Some(i) => {
                let share = live.into_iter().nth(i).expect("index from enumerate");
                self.grant(share, provider, "access_code", now_ms)
            }
            None => {
                // Only the patient-level count is told: whether (or how
                // many) live codes the patient has stays unknown to a
                // guesser.
                let (remaining, _) = self.fail(patient, live, now_ms)?;
                if remaining == 0 {
                    return Err(ShareError::Locked(self.policy.patient_max_failures));
                }
                Err(ShareError::WrongCode { remaining })
            }
        }
    }

    /// The share a QR link's capability (base64url) opens, if any.
    pub fn share_of_link(&self, capability: &str) -> Result<Option<Share>, ShareError> {
        let cap = B64URL
            .decode(capability)
            .ok()
            .filter(|c| c.len() == 32)
            .ok_or_else(|| ShareError::Invalid("a link capability is 32 bytes of base64url".into()))?;
        match self.db.get(Cf::ShareLinks, &sha256(&cap))? {
            Some(id) => self.share(&hex::encode(id)),
            None => Ok(None),
        }
    }

    /// Redeems a QR link's capability (base64url) for `provider`, with the
    /// code as passcode when the link needs one.
    pub fn redeem_link(
        &self,
        capability: &str,
        passcode: Option<&str>,
        provider: &str,
        now_ms: u64,
    ) -> Result<(Redeemed, String), ShareError> {
        let share = self.share_of_link(capability)?.ok_or_else(|| ShareError::NotFound("share link".into()))?;
        let (id, patient) = (share.id, share.patient);
        if let Some(p) = passcode {
            self.check_code_format(p)?;
        }
        let _guard = self.lock(&patient);
        // Re-read under the lock.
        let share = self.share(&id)?.ok_or_else(|| ShareError::NotFound("share link".into()))?;
        let link = share.link.clone().ok_or_else(|| corrupt("link row without link"))?;
        match share.state(now_ms) {
            ShareState::Active => {}
            other => return Err(ShareError::Inactive(other)),
        }
        let guard = self.guard(&patient)?;
        if guard.locked {
            return Err(ShareError::Locked(guard.failures));
        }
        if link.passcode {
            let remaining = self
                .policy
                .code_max_failures
                .saturating_sub(share.failures)
                .min(self.policy.patient_max_failures.saturating_sub(guard.failures));
            let Some(passcode) = passcode else { return Err(ShareError::PasscodeRequired { remaining }) };
            let stored = hex::decode(&share.code_mac).map_err(|_| corrupt("code mac"))?;
            if !bool::from(stored.ct_eq(&self.mac(&patient, passcode)[..])) {
                // The link's holder knows the share exists: it is told the
                // share's own count too.
                let (patient_left, code_left) = self.fail(&patient, vec![share], now_ms)?;
                if patient_left == 0 {
                    return Err(ShareError::Locked(self.policy.patient_max_failures));
                }
                return Err(ShareError::WrongCode { remaining: code_left.unwrap_or(0).min(patient_left) });
            }
        }
        let redeemed = self.grant(share, provider, "qr_code", now_ms)?;
        Ok((redeemed, link.release))
    }

    /// The grant behind `token`, for `provider`, at `now_ms`, with its
    /// share: refused when unknown, expired, someone else's, or its share
    /// was revoked or burned.
    pub fn check_grant(&self, token: &str, provider: &str, now_ms: u64) -> Result<Grant, ShareError> {
        let t = B64URL
            .decode(token.trim())
            .ok()
            .filter(|t| t.len() == 32)
            .ok_or(ShareError::GrantRefused("is malformed (32 bytes of base64url)"))?;
        let grant: Grant = self
            .db
            .get(Cf::ShareGrants, &sha256(&t))?
            .map(|v| serde_json::from_slice(&v).map_err(|_| corrupt("grant")))
            .transpose()?
            .ok_or(ShareError::GrantRefused("is unknown or expired"))?;
        if now_ms >= grant.expires_ms {
            return Err(ShareError::GrantRefused("is unknown or expired"));
        }
        if grant.provider != provider {
            return Err(ShareError::GrantRefused("was issued to another provider"));
        }
        match self.share(&grant.share_id)?.map(|s| s.state(now_ms)) {
            Some(ShareState::Revoked) => Err(ShareError::GrantRefused("was revoked by the patient")),
            Some(ShareState::Burned) => Err(ShareError::GrantRefused("ended: its code was burned by failed attempts")),
            None => Err(ShareError::GrantRefused("is unknown or expired")),
            Some(_) => Ok(grant),
        }
    }

    /// The background clean-up: deletes shares that can no longer be
    /// redeemed (expired, used up, revoked, burned) once no grant can
    /// refer to them, their index and link rows, and expired grants.
    /// Returns (shares, grants) deleted.
    pub fn sweep(&self, now_ms: u64) -> Result<(usize, usize), ShareError> {
        let dead = |s: &Share| {
            let state = s.state(now_ms);
            state != ShareState::Active
                && (matches!(state, ShareState::Revoked | ShareState::Burned) || now_ms >= s.grants_until_ms)
        };
        // Candidates from a scan; each deleted under its patient's lock
        // after a re-read, so a redemption in flight never writes back a
        // share the sweeper just removed.
        let mut candidates = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = self.db.scan_page(Cf::Shares, &start, 1_000)?;
            let Some((last, _)) = page.last() else { break };
            start = last.clone();
            start.push(0);
            for (_, v) in &page {
                let s: Share = serde_json::from_slice(v).map_err(|_| corrupt("share"))?;
                if dead(&s) {
                    candidates.push((s.patient, s.id));
                }
            }
        }
        let mut shares = 0;
        for (patient, id) in candidates {
            let _guard = self.lock(&patient);
            let Some(s) = self.share(&id)?.filter(|s| dead(s)) else { continue };
            let key = hex::decode(&s.id).map_err(|_| corrupt("share id"))?;
            let mut batch = self.db.batch();
            batch.delete_cf(self.db.cf(Cf::Shares), &key);
            batch.delete_cf(self.db.cf(Cf::ShareIndex), Self::index_key(&s.patient, &key));
            if let Some(l) = &s.link {
                let hash = hex::decode(&l.capability_hash).map_err(|_| corrupt("capability hash"))?;
                batch.delete_cf(self.db.cf(Cf::ShareLinks), hash);
            }
            self.db.write(batch)?;
            shares += 1;
        }
        let grants = self.delete_where(Cf::ShareGrants, |_, value| {
            let g: Grant = serde_json::from_slice(value).map_err(|_| corrupt("grant"))?;
            Ok(now_ms >= g.expires_ms)
        })?;
        Ok((shares, grants))
    }

    /// Walks `cf` a page at a time and deletes the rows `dead` picks; one
    /// synced batch per page. Returns how many were deleted.
    fn delete_where(
        &self,
        cf: Cf,
        mut dead: impl FnMut(&[u8], &[u8]) -> Result<bool, ShareError>,
    ) -> Result<usize, ShareError> {
        let (mut deleted, mut start) = (0, Vec::new());
        loop {
            let page = self.db.scan_page(cf, &start, 1_000)?;
            let Some((last, _)) = page.last() else { return Ok(deleted) };
            start = last.clone();
            start.push(0);
            let mut batch = self.db.batch();
            for (k, v) in &page {
                if dead(k, v)? {
                    batch.delete_cf(self.db.cf(cf), k);
                    deleted += 1;
                }
            }
            self.db.write(batch)?;
        }
    }
}
