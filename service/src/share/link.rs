//! The QR link: a SMART Health Link–style payload signed by the node, and
//! the JWE that carries what it releases.
//!
//! Content: `shlink:/` + base64url(JSON) — the SHL payload fields (`url`,
//! `key`, `exp`, `flag`, `label`, `v`) plus the node's identity (`iss`,
//! its base URL; `kid`, the RFC 7638 thumbprint of its Ed25519 key) and
//! `sig`, an Ed25519 signature over the payload's canonical JSON without
//! `sig`. A scanner that has pinned the node's key once
//! (`GET /v1/share/issuer`) checks genuineness and expiry offline
//! ([`verify`]); SHL viewers ignore the extra fields.
//!
//! `url` ends in the 256-bit capability; `key` is a fresh 256-bit key that
//! exists only in the QR: the release document the link unlocks is stored
//! by the node only as a compact JWE (`alg: dir`, `enc: A256GCM`) under it
//! ([`jwe_encrypt`], [`jwe_decrypt`]). Nothing in the payload is PHI.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The content prefix of a SMART Health Link.
pub const SHLINK_PREFIX: &str = "shlink:/";

/// Why a link or a JWE was refused. Never echoes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a `shlink:/` payload, or its JSON is malformed.
    #[error("not a medanchor share link: {0}")]
    Malformed(&'static str),
    /// Signed by another key than the pinned one.
    #[error("the link was issued by key {found}, not by the pinned issuer key {expected}")]
    WrongIssuer {
        /// The pinned key's thumbprint.
        expected: String,
        /// The link's `kid`.
        found: String,
    },
    /// The signature does not verify: the link was altered or forged.
    #[error("the link's signature does not verify (altered or forged)")]
    BadSignature,
    /// Past its expiry.
    #[error("the link expired at {exp} (unix seconds)")]
    Expired {
        /// When.
        exp: u64,
    },
    /// The JWE is malformed, or does not decrypt under the key.
    #[error("the release cannot be decrypted: {0}")]
    Decrypt(&'static str),
}

/// The node's sharing keys, derived from its secret with domain separation:
/// the code MAC key and the link-signing Ed25519 key are independent of
/// each other and of every other use of the secret.
pub struct ShareKeys {
    mac_key: [u8; 32],
    signing: SigningKey,
}

impl std::fmt::Debug for ShareKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        write!(f, "ShareKeys(kid {})", self.kid())
    }
}

impl ShareKeys {
    /// Derives both keys from the node's 32-byte secret.
    pub fn derive(secret: &[u8; 32]) -> ShareKeys {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(label);
            h.update(secret);
            h.finalize().into()
        };
        ShareKeys {
            mac_key: derive(b"medanchor/share/code-mac/v1\0"),
            signing: SigningKey::from_bytes(&derive(b"medanchor/share/link-signing/v1\0")),
        }
    }

    /// The MAC key for codes.
    pub(crate) fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// The public key scanners pin.
    pub fn issuer_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Its RFC 7638 thumbprint.
    pub fn kid(&self) -> String {
        kid(&self.issuer_key())
    }

    /// Signs `payload` (its `iss`/`kid` set by the caller; `sig` replaced).
    pub fn sign(&self, payload: &mut LinkPayload) {
        payload.kid = self.kid();
        payload.sig = None;
        let sig = self.signing.sign(&payload.canonical());
        payload.sig = Some(B64URL.encode(sig.to_bytes()));
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 key (`OKP`, `Ed25519`).
pub fn kid(key: &VerifyingKey) -> String {
    let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, B64URL.encode(key.as_bytes()));
    B64URL.encode(Sha256::digest(jwk.as_bytes()))
}

/// Parses a pinned issuer key: 32 bytes as base64url (the `x` of its JWK)
/// or hex.
pub fn parse_issuer_key(s: &str) -> Result<VerifyingKey, String> {
    let s = s.trim();
    let bytes = B64URL
        .decode(s)
        .ok()
        .filter(|b| b.len() == 32)
        .or_else(|| hex::decode(s).ok())
        .ok_or("the issuer key is not 32 bytes of base64url or hex")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "the issuer key is not 32 bytes")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "the issuer key is not an Ed25519 public key".to_string())
}

/// The link's payload. The signed bytes are its JSON without `sig`: the
/// fields in this order, no whitespace, every string printable ASCII
/// without `"` or `\` (so no escaping) — reproducible byte for byte in
/// any language (`JSON.stringify` of the parsed object minus `sig`).
/// Unknown fields are refused, so nothing unsigned rides along.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPayload {
    /// Where the capability is redeemed: `{iss}/v1/share/links/{capability}`.
    pub url: String,
    /// The release document's key, base64url (32 bytes).
    pub key: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// `P` when the 6-digit code is required as a passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// A label for the viewer (no PHI).
    pub label: String,
    /// SHL payload version.
    pub v: u8,
    /// The issuing node (its base URL).
    pub iss: String,
    /// The issuer key's RFC 7638 thumbprint.
    pub kid: String,
    /// Ed25519 signature over the canonical JSON without `sig`, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl LinkPayload {
    /// The signed bytes: the JSON without `sig`.
    fn canonical(&self) -> Vec<u8> {
        let unsigned = LinkPayload { sig: None, ..self.clone() };
        serde_json::to_vec(&unsigned).expect("payloads serialize")
    }

    /// The QR content: `shlink:/…`.
    pub fn encode(&self) -> String {
        format!("{SHLINK_PREFIX}{}", B64URL.encode(serde_json::to_vec(self).expect("payloads serialize")))
    }

    /// Parses QR content: `shlink:/…`, optionally behind a viewer URL
    /// (`https://viewer.example/#shlink:/…`).
    pub fn decode(content: &str) -> Result<LinkPayload, LinkError> {
        let content = content.trim();
        let at = content.find(SHLINK_PREFIX).ok_or(LinkError::Malformed("no shlink:/ prefix"))?;
        let b64 = &content[at + SHLINK_PREFIX.len()..];
        let json = B64URL.decode(b64).map_err(|_| LinkError::Malformed("the payload is not base64url"))?;
        let payload: LinkPayload =
            serde_json::from_slice(&json).map_err(|_| LinkError::Malformed("the payload is not a link's JSON"))?;
        let plain = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        let strings = [&payload.url, &payload.key, &payload.label, &payload.iss, &payload.kid];
        if !strings.into_iter().chain(payload.flag.as_ref()).chain(payload.sig.as_ref()).all(|s| plain(s)) {
            return Err(LinkError::Malformed("a field is not plain ASCII"));
        }
        Ok(payload)
    }

    /// The capability: the last segment of `url`.
    pub fn capability(&self) -> Option<&str> {
        self.url.rsplit_once("/v1/share/links/").map(|(_, c)| c).filter(|c| !c.is_empty() && !c.contains('/'))
    }

    /// Whether the code is required as a passcode.
    pub fn needs_passcode(&self) -> bool {
        self.flag.as_deref().is_some_and(|f| f.contains('P'))
    }

    /// The release key.
    pub fn release_key(&self) -> Result<[u8; 32], LinkError> {
        B64URL
            .decode(&self.key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or(LinkError::Malformed("key is not 32 bytes of base64url"))
    }
}

/// Checks scanned content offline: issued by `issuer` (pinned), unaltered,
/// unexpired at `now_s`. Returns the payload.
pub fn verify(content: &str, issuer: &VerifyingKey, now_s: u64) -> Result<LinkPayload, LinkError> {
    let payload = LinkPayload::decode(content)?;
    let expected = kid(issuer);
    if payload.kid != expected {
        return Err(LinkError::WrongIssuer { expected, found: payload.kid });
    }
    let sig = payload
        .sig
        .as_deref()
        .and_then(|s| B64URL.decode(s).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or(LinkError::BadSignature)?;
    issuer.verify(&payload.canonical(), &Signature::from_bytes(&sig)).map_err(|_| LinkError::BadSignature)?;
    if now_s >= payload.exp {
        return Err(LinkError::Expired { exp: payload.exp });
    }
    payload.release_key()?;
    Ok(payload)
}

/// The JWE protected header (RFC 7516 compact serialization).
const JWE_HEADER: &str = r#"{"alg":"dir","enc":"A256GCM","cty":"application/json"}"#;

/// Encrypts `plaintext` under `key` as a compact JWE, `alg: dir`,
/// `enc: A256GCM` (the AAD is the encoded protected header).
pub fn jwe_encrypt(key: &[u8; 32], plaintext: &[u8]) -> String {
    let header = B64URL.encode(JWE_HEADER);
    let mut iv = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&iv), Payload { msg: plaintext, aad: header.as_bytes() })
        .expect("AES-GCM encrypts any length we produce");
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    format!("{header}..{}.{}.{}", B64URL.encode(iv), B64URL.encode(ct), B64URL.encode(tag))
}

/// Decrypts a compact JWE made by [`jwe_encrypt`] (or any `dir`/`A256GCM`
/// JWE).
pub fn jwe_decrypt(key: &[u8; 32], jwe: &str) -> Result<Vec<u8>, LinkError> {
    let parts: Vec<&str> = jwe.trim().split('.').collect();
    let [header, encrypted_key, iv, ct, tag] = parts[..] else {
        return Err(LinkError::Decrypt("not a compact JWE (five parts)"));
    };
    let h: serde_json::Value = B64URL
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(LinkError::Decrypt("malformed header"))?;
    if h["alg"] != "dir" || h["enc"] != "A256GCM" {
        return Err(LinkError::Decrypt("not alg dir / enc A256GCM"));
    }
    if h.get("zip").is_some() || h.get("crit").is_some() {
        return Err(LinkError::Decrypt("zip and crit are not supported"));
    }
    if !encrypted_key.is_empty() {
        return Err(LinkError::Decrypt("alg dir has no encrypted key"));
    }
    let decode = |s: &str| B64URL.decode(s).map_err(|_| LinkError::Decrypt("a part is not base64url"));
    let iv = decode(iv)?;
    if iv.len() != 12 {
        return Err(LinkError::Decrypt("the IV is not 96 bits"));
    }
    let mut sealed = decode(ct)?;
    let tag = decode(tag)?;
    if tag.len() != 16 {
        return Err(LinkError::Decrypt("the tag is not 128 bits"));
    }
    sealed.extend_from_slice(&tag);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: header.as_bytes() })
        .map_err(|_| LinkError::Decrypt("wrong key, or the JWE was altered"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(keys: &ShareKeys, exp: u64, flag: Option<&str>) -> LinkPayload {
        let mut p = LinkPayload {
            url: format!("http://127.0.0.1:8080/v1/share/links/{}", B64URL.encode([9u8; 32])),
            key: B64URL.encode([7u8; 32]),
            exp,
            flag: flag.map(str::to_string),
            label: "medanchor share".into(),
            v: 1,
            iss: "http://127.0.0.1:8080".into(),
            kid: String::new(),
            sig: None,
        };
        keys.sign(&mut p);
        p
    }

    #[test]
    fn a_signed_link_verifies_offline_until_it_expires() {
        let keys = ShareKeys::derive(&[3; 32]);
        let p = payload(&keys, 1_000, Some("P"));
        let content = p.encode();
        assert!(content.starts_with("shlink:/"));
        let back = verify(&content, &keys.issuer_key(), 999).expect("verifies");
        assert_eq!(back, p);
        assert!(back.needs_passcode());
        assert_eq!(back.capability(), Some(B64URL.encode([9u8; 32]).as_str()));
        // Behind a viewer URL too.
        assert_eq!(verify(&format!("https://viewer.example/#{content}"), &keys.issuer_key(), 0), Ok(p.clone()));
        assert_eq!(verify(&content, &keys.issuer_key(), 1_000), Err(LinkError::Expired { exp: 1_000 }));
    }

    #[test]
    fn altered_forged_and_foreign_links_are_refused() {
        let keys = ShareKeys::derive(&[3; 32]);
        let other = ShareKeys::derive(&[4; 32]);
        let p = payload(&keys, 1_000, Some("P"));
        // Another node's link: refused by kid before the signature.
        let foreign = payload(&other, 1_000, None).encode();
        assert!(matches!(verify(&foreign, &keys.issuer_key(), 0), Err(LinkError::WrongIssuer { .. })));
        // Each field changed after signing.
        type Alteration = Box<dyn Fn(&mut LinkPayload)>;
        let alterations: Vec<(&str, Alteration)> = vec![
            ("exp", Box::new(|p| p.exp += 86_400)),
            ("url", Box::new(|p| p.url.push('x'))),
            ("key", Box::new(|p| p.key = B64URL.encode([8u8; 32]))),
            ("flag dropped", Box::new(|p| p.flag = None)),
            ("flag changed", Box::new(|p| p.flag = Some("L".into()))),
            ("label", Box::new(|p| p.label.push('!'))),
            ("iss", Box::new(|p| p.iss = "http://evil.example".into())),
            ("sig", Box::new(|p| p.sig = Some(B64URL.encode([0u8; 64])))),
            ("no sig", Box::new(|p| p.sig = None)),
        ];
        for (what, alter) in alterations {
            let mut q = p.clone();
            alter(&mut q);
            assert_eq!(verify(&q.encode(), &keys.issuer_key(), 0), Err(LinkError::BadSignature), "{what}");
        }
        // An unsigned extra field, or a field that would need escaping.
        let mut extra: serde_json::Value = serde_json::to_value(&p).expect("json");
        extra["note"] = "unsigned".into();
        let extra = format!("shlink:/{}", B64URL.encode(extra.to_string()));
        let mut quoted = p.clone();
        quoted.label = "a \"quoted\" label".into();
        for bad in ["", "shlink:/", "shlink:/!!!", "https://x/#shlink:/e30", &extra, &quoted.encode()] {
            assert!(matches!(verify(bad, &keys.issuer_key(), 0), Err(LinkError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_domain_separated_and_never_printed() {
        let keys = ShareKeys::derive(&[3; 32]);
        assert_ne!(keys.mac_key(), &keys.signing.to_bytes());
        let debug = format!("{keys:?}");
        assert!(!debug.contains(&hex::encode(keys.mac_key())));
        assert!(!debug.contains(&hex::encode(keys.signing.to_bytes())));
        assert_eq!(parse_issuer_key(&B64URL.encode(keys.issuer_key().as_bytes())), Ok(keys.issuer_key()));
        assert_eq!(parse_issuer_key(&hex::encode(keys.issuer_key().as_bytes())), Ok(keys.issuer_key()));
        assert!(parse_issuer_key("abc").is_err());
    }

    /// RFC 8037 §A.3: the thumbprint of the RFC 8037 example Ed25519 key.
    #[test]
    fn kid_is_the_rfc_7638_thumbprint() {
        let x = B64URL.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").expect("x");
        let key = VerifyingKey::from_bytes(&x.try_into().expect("32")).expect("key");
        assert_eq!(kid(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwe_round_trips_and_detects_tampering() {
        let key = [5u8; 32];
        let jwe = jwe_encrypt(&key, br#"{"records":[]}"#);
        assert_eq!(jwe.split('.').count(), 5);
        assert_eq!(jwe.split('.').nth(1), Some(""), "alg dir: empty encrypted key");
        assert_eq!(jwe_decrypt(&key, &jwe).expect("decrypts"), br#"{"records":[]}"#);
        assert_eq!(jwe_decrypt(&[6u8; 32], &jwe), Err(LinkError::Decrypt("wrong key, or the JWE was altered")));
        let mut parts: Vec<String> = jwe.split('.').map(str::to_string).collect();
        parts[3] = B64URL.encode(b"tampered ciphertext");
        assert!(jwe_decrypt(&key, &parts.join(".")).is_err());
        assert_eq!(jwe_decrypt(&key, "a.b.c"), Err(LinkError::Decrypt("not a compact JWE (five parts)")));
    }
}
