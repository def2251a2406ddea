//! Webhook signatures, as the established conventions do them (Stripe,
//! Svix): `Medanchor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the subscription's secret>`. The timestamp bounds
//! replays; the receiver checks the signature before it trusts the body,
//! and de-duplicates on `Medanchor-Event-Id`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "medanchor-signature";
/// The event id header (receivers de-duplicate on it).
pub const EVENT_ID_HEADER: &str = "medanchor-event-id";

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=…,v1=…`.
    #[error("malformed signature header")]
    Malformed,
    /// Outside the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &[u8], t: u64, body: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The header value signing `body` at unix second `t`.
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

/// Checks a header value against `body` at unix second `now`, accepting
/// timestamps within `tolerance_s`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: u64, tolerance_s: u64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<u64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > tolerance_s {
        return Err(SignatureError::Stale);
    }
    let want = mac(secret, t, body);
    if sigs.iter().any(|s| bool::from(subtle::ConstantTimeEq::ct_eq(&s[..], &want[..]))) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_every_change_is_caught() {
        let (secret, body) = (b"whsec", br#"{"id":"audit-1"}"#);
        let header = sign(secret, 1_000, body);
        assert_eq!(verify(secret, &header, body, 1_100, 300), Ok(()));
        for (secret, header, body, now, want) in [
            (&b"other"[..], header.clone(), &body[..], 1_100, SignatureError::Mismatch),
            (&secret[..], header.clone(), &br#"{"id":"audit-2"}"#[..], 1_100, SignatureError::Mismatch),
            (&secret[..], header.replace("t=1000", "t=1001"), &body[..], 1_100, SignatureError::Mismatch),
            (&secret[..], header.clone(), &body[..], 2_000, SignatureError::Stale),
            (&secret[..], "v1=00".to_string(), &body[..], 1_100, SignatureError::Malformed),
            (&secret[..], "t=1000".to_string(), &body[..], 1_100, SignatureError::Malformed),
        ] {
            assert_eq!(verify(secret, &header, body, now, 300), Err(want), "{header}");
        }
    }
}
