//! Sharing at the clinic desk: 6-digit access codes and signed QR links.
//!
//! A patient makes a **share**: a scope (consent data types), a lifetime
//! (1 h, 6 h, 24 h or 7 days), optionally single-use or capped at N uses.
//! It is redeemed either by reading out its 6-digit **code** (bound to the
//! patient: the provider presents patient + code) or by scanning its **QR
//! link** ([`link`], SMART Health Links style: a 256-bit capability, the
//! node's identity and an Ed25519 signature checkable offline; optionally
//! protected by the same code as a passcode). A redemption by a signed-in,
//! active on-chain provider yields a short-lived **grant** ([`Grant`]) for
//! that patient and those types; every read through it is audited with
//! method `access_code` or `qr_code` and the share's id.
//!
//! A wrong guess is answered with the attempts left before the patient
//! locks — never with anything about the patient's codes, so guessing
//! tells nobody whether a patient has a live code. (A QR passcode's holder
//! already knows its share, and is told the share's own count too.)
//!
//! What the node stores ([`store`]): the code only as
//! `HMAC-SHA256(node key, patient ‖ code)`, compared in constant time; the
//! capability only as its SHA-256; grants only by the SHA-256 of their
//! token; the QR's release document (share id, patient, scope, expiry,
//! issuer) only encrypted (JWE `dir`/`A256GCM`) under a key that exists
//! only in the QR.
//!
//! # Brute force: the bound
//!
//! A guess names a patient and a 6-digit code; it succeeds only if it
//! equals one of that patient's live codes. Let D = 10⁶ (the code space),
//! F_c = [`Policy::code_max_failures`] (5), F_p =
//! [`Policy::patient_max_failures`] (10) and A = [`Policy::max_active`]
//! (10). The store enforces, persistently and serially per patient:
//!
//! 1. every failed guess against a patient counts against **each** of the
//!    patient's live codes; a code with F_c failures is burned;
//! 2. the patient's failures since their last unlock are capped at F_p,
//!    after which every live code is burned and redemption is locked until
//!    the patient unlocks it or makes a new code (deliberate acts, with the
//!    failures in their access history; a guesser cannot end a cycle);
//! 3. at most A codes are live per patient, and codes are drawn uniformly
//!    (no modulo bias) from a CSPRNG, distinct among the patient's live
//!    codes.
//!
//! So any one code is exposed to at most F_c wrong guesses in its life:
//! P(a given code falls) ≤ F_c / (D − F_c) ≈ **5 × 10⁻⁶**. Per patient and
//! lock cycle an attacker gets at most F_p wrong guesses, each matching at
//! most A codes, and the N codes the patient made absorb at most F_c each:
//! P(any of the patient's codes falls) ≤ min(F_c · N, F_p · A) / (D − F_p)
//! ≤ **10⁻⁴** ([`Policy::success_bound`]) — NIST SP 800-63B's bound for a
//! 100-attempt cap on one short secret. Spraying many patients is bounded by time instead: the
//! per-principal and per-IP limiters ([`limits`]) allow 10 attempts a
//! minute, the global limiter caps the node, and each attempt needs a
//! signed-in provider that is registered and active on-chain. The
//! `share` tests check both caps, including under parallel guessing and
//! across a restart, and measure the success rate of an optimal attacker
//! against a reduced code space.

pub mod limits;
pub mod link;
pub mod qr;
pub mod store;

#[cfg(test)]
mod tests;

pub use store::{Created, Grant, NewShare, Policy, Redeemed, Share, ShareError, ShareState, ShareStore, ShareView};

/// How long a code lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ShareDuration {
    /// One hour.
    #[serde(rename = "1h")]
    OneHour,
    /// Six hours.
    #[serde(rename = "6h")]
    SixHours,
    /// 24 hours (the default).
    #[serde(rename = "24h")]
    #[default]
    OneDay,
    /// Seven days.
    #[serde(rename = "7d")]
    SevenDays,
}

impl ShareDuration {
    /// Every duration, shortest first.
    pub const ALL: [ShareDuration; 4] =
        [ShareDuration::OneHour, ShareDuration::SixHours, ShareDuration::OneDay, ShareDuration::SevenDays];

    /// In milliseconds.
    pub fn millis(self) -> u64 {
        const HOUR: u64 = 3_600_000;
        match self {
            ShareDuration::OneHour => HOUR,
            ShareDuration::SixHours => 6 * HOUR,
            ShareDuration::OneDay => 24 * HOUR,
            ShareDuration::SevenDays => 7 * 24 * HOUR,
        }
    }

    /// The name used in requests (`1h`, `6h`, `24h`, `7d`).
    pub fn name(self) -> &'static str {
        match self {
            ShareDuration::OneHour => "1h",
            ShareDuration::SixHours => "6h",
            ShareDuration::OneDay => "24h",
            ShareDuration::SevenDays => "7d",
        }
    }
}

impl std::str::FromStr for ShareDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ShareDuration::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("duration {} is not one of 1h, 6h, 24h, 7d", crate::error::echo(s)))
    }
}
