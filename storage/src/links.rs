//! Signed download links: what a link grants, bound by an HMAC the node
//! alone can make.
//!
//! A link names one file version of one record, the principal it was
//! issued to and the moment it stops working; the node's link key MACs
//! all of them together, so changing any part (another file, a later
//! expiry, someone else) makes the signature fail. The MAC is checked in
//! constant time before the expiry, and both before any other work. What
//! the bearer may read is decided again when the link is used: a link
//! never outlives the consent behind it (that is the service's part).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a link works.
pub const LIFETIME_MS: u64 = 15 * 60 * 1000;
/// The signature's length (HMAC-SHA-256).
pub const SIG_LEN: usize = 32;
const DOMAIN: &[u8] = b"medanchor attachment link v1";

/// What a link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The record.
    pub record: [u8; 16],
    /// The attachment.
    pub attachment: [u8; 16],
    /// The attachment's version.
    pub version: u64,
    /// Unix milliseconds after which the link is refused.
    pub expires_ms: u64,
    /// The principal the link was issued to (whose access is checked when
    /// it is used).
    pub principal: String,
}

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature does not match what the link names.
    #[error("the link's signature does not match (a changed or foreign link)")]
    Invalid,
    /// Past its expiry.
    #[error("the link expired")]
    Expired,
}

fn mac(key: &[u8; 32], c: &Claims) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    m.update(DOMAIN);
    m.update(&c.record);
    m.update(&c.attachment);
    m.update(&c.version.to_be_bytes());
    m.update(&c.expires_ms.to_be_bytes());
    // Length-prefixed: the principal is the only variable-length part.
    m.update(&(c.principal.len() as u64).to_be_bytes());
    m.update(c.principal.as_bytes());
    m
}

/// The signature of `claims` under `key`.
pub fn sign(key: &[u8; 32], claims: &Claims) -> [u8; SIG_LEN] {
    mac(key, claims).finalize().into_bytes().into()
}

/// Checks `sig` over `claims` (constant time), then the expiry against
/// `now_ms`.
pub fn verify(key: &[u8; 32], claims: &Claims, sig: &[u8], now_ms: u64) -> Result<(), LinkError> {
    mac(key, claims).verify_slice(sig).map_err(|_| LinkError::Invalid)?;
    if now_ms > claims.expires_ms {
        return Err(LinkError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            record: [1; 16],
            attachment: [2; 16],
            version: 3,
            expires_ms: 1_000_000,
            principal: "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5".into(),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let key = [7; 32];
        let sig = sign(&key, &claims());
        assert_eq!(verify(&key, &claims(), &sig, 999_999), Ok(()));
        assert_eq!(verify(&key, &claims(), &sig, 1_000_000), Ok(()), "valid through its last millisecond");
        assert_eq!(verify(&key, &claims(), &sig, 1_000_001), Err(LinkError::Expired));
    }

    #[test]
    fn every_changed_part_is_refused() {
        let key = [7; 32];
        let sig = sign(&key, &claims());
        type Change = fn(&mut Claims);
        let changes: [(&str, Change); 5] = [
            ("record", |c| c.record[15] ^= 1),
            ("attachment", |c| c.attachment[0] ^= 1),
            ("version", |c| c.version += 1),
            ("expiry", |c| c.expires_ms += 1),
            ("principal", |c| c.principal.push('X')),
        ];
        for (what, change) in changes {
            let mut c = claims();
            change(&mut c);
            assert_eq!(verify(&key, &c, &sig, 0), Err(LinkError::Invalid), "a changed {what}");
        }
        assert_eq!(verify(&[8; 32], &claims(), &sig, 0), Err(LinkError::Invalid), "another node's key");
        assert_eq!(verify(&key, &claims(), &sig[..31], 0), Err(LinkError::Invalid), "a cut signature");
        // An expired link with a bad signature says "invalid": nothing is
        // told about links the node did not make.
        let mut c = claims();
        c.version = 9;
        assert_eq!(verify(&key, &c, &sig, u64::MAX), Err(LinkError::Invalid));
    }
}
