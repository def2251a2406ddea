//! Sign-in with a Stacks key, and the node's session tokens.
//!
//! 1. The API issues a challenge: a human-readable message naming the
//!    domain, the principal, a random single-use nonce and an expiry
//!    ([`Challenge::message`]).
//! 2. The wallet signs it the way Stacks wallets sign messages:
//!    `sha256("\x17Stacks Signed Message:\n" ‖ varint(len) ‖ message)`,
//!    a recoverable secp256k1 signature as 65 bytes `r ‖ s ‖ v` (stacks.js
//!    `signMessageHashRsv`).
//! 3. The API recovers the public key, derives the address and accepts the
//!    sign-in only if it is the challenged principal ([`verify_signature`]).
//! 4. It returns a short-lived session token signed with the node's Ed25519
//!    key ([`SessionKey::issue`]); every request presents it.
//!
//! Roles are not in the token: they come from the chain (through the
//! indexer) and from configuration at each request, so revoking a role
//! takes effect at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use medanchor_contracts::principal::{Principal, StandardPrincipal};
use ripemd::Ripemd160;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, Secp256k1};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a sign-in or a token was refused. Messages never echo secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The signature is not 65 bytes of hex, or does not recover a key.
    #[error("signature is malformed: {0}")]
    MalformedSignature(&'static str),
    /// It recovers a key of another principal.
    #[error("signature was made by {actual}, not by {expected}")]
    WrongSigner {
        /// The challenged principal.
        expected: String,
        /// The recovered one.
        actual: String,
    },
    /// The nonce is not one this node issued (or was altered).
    #[error("unknown challenge")]
    UnknownChallenge,
    /// The token is malformed, forged or expired.
    #[error("session token is {0}")]
    BadToken(&'static str),
}

// The message format lives with the wallet that signs it; the API checks
// against the same definition.
pub use medanchor_wallet::keys::{message_hash, MESSAGE_PREFIX};

/// The single-sig address of a compressed public key.
pub fn address_of(public_key: &[u8; 33], version: u8) -> Principal {
    let hash160: [u8; 20] = Ripemd160::digest(Sha256::digest(public_key)).into();
    Principal::Standard(StandardPrincipal { version, hash160 })
}

/// Checks that `signature_hex` (`r ‖ s ‖ v`, 65 bytes) over `message` was
/// made by `expected`'s key.
pub fn verify_signature(message: &[u8], signature_hex: &str, expected: &Principal) -> Result<(), AuthError> {
    let Principal::Standard(expected_std) = expected else {
        return Err(AuthError::WrongSigner { expected: expected.to_string(), actual: "a contract".into() });
    };
    let bytes = hex::decode(signature_hex.trim().trim_start_matches("0x"))
        .map_err(|_| AuthError::MalformedSignature("not hex"))?;
    let bytes: [u8; 65] = bytes.try_into().map_err(|_| AuthError::MalformedSignature("not 65 bytes (r ‖ s ‖ v)"))?;
    let id =
        RecoveryId::from_i32(i32::from(bytes[64])).map_err(|_| AuthError::MalformedSignature("bad recovery id"))?;
    let sig = RecoverableSignature::from_compact(&bytes[..64], id)
        .map_err(|_| AuthError::MalformedSignature("bad r or s"))?;
    let hash = Message::from_slice(&message_hash(message)).map_err(|_| AuthError::MalformedSignature("hash"))?;
    let key = Secp256k1::verification_only()
        .recover_ecdsa(&hash, &sig)
        .map_err(|_| AuthError::MalformedSignature("does not recover a public key"))?;
    let actual = address_of(&key.serialize(), expected_std.version);
    if &actual != expected {
        return Err(AuthError::WrongSigner { expected: expected.to_string(), actual: actual.to_string() });
    }
    Ok(())
}

/// A sign-in challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Who asks (the API's configured domain).
    pub domain: String,
    /// Who must sign.
    pub principal: String,
    /// Random, single use (hex).
    pub nonce: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

impl Challenge {
    /// The text the wallet shows and signs.
    pub fn message(&self) -> String {
        format!(
            "{} asks you to sign in with your Stacks account:\n{}\n\nNonce: {}\nIssued At: {}\nExpires At: {}",
            self.domain, self.principal, self.nonce, self.issued_at, self.expires_at
        )
    }
}

/// The label of the session-token key ([`SessionKey::for_node`]).
const SESSION_LABEL: &[u8] = b"medanchor session tokens v1";

/// A key for one purpose, derived from the node's secret and separated
/// from every other use of it by `label` (HMAC-SHA256).
pub fn derive_key(secret: &[u8; 32], label: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// Issues sign-in challenges without storing them. An unauthenticated
/// caller asks for a challenge; were it stored, anyone could grow the
/// database at will. The nonce carries its own id, times and principal
/// under a MAC of the node's, so the node stores only the ids of
/// challenges that were *used* by a valid signature (single use), and only
/// until they expire.
///
/// Nonce: `hex(id[16] ‖ issued_at u64 ‖ expires_at u64 ‖ tag[16])` then
/// the principal; `tag` = HMAC-SHA256(key, domain ‖ 0 ‖ principal ‖ 0 ‖ id
/// ‖ issued_at ‖ expires_at), first 16 bytes.
pub struct ChallengeKey {
    key: [u8; 32],
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

/// Hex digits before the principal in a nonce.
const NONCE_HEX: usize = 2 * (16 + 8 + 8 + 16);

impl ChallengeKey {
    /// The key derived from the node's secret, apart from every other use
    /// of it by its label.
    pub fn derive(secret: &[u8; 32]) -> Self {
        ChallengeKey { key: derive_key(secret, b"medanchor sign-in challenge v1") }
    }

    fn tag(&self, domain: &str, principal: &str, id: &[u8; 16], issued_at: u64, expires_at: u64) -> [u8; 16] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        for part in [domain.as_bytes(), &[0], principal.as_bytes(), &[0], id] {
            mac.update(part);
        }
        mac.update(&issued_at.to_be_bytes());
        mac.update(&expires_at.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// A challenge for `principal` with the random `id`.
    pub fn issue(&self, domain: &str, principal: &Principal, id: [u8; 16], issued_at: u64, ttl_s: u64) -> Challenge {
        let principal = principal.to_string();
        let expires_at = issued_at + ttl_s;
        let tag = self.tag(domain, &principal, &id, issued_at, expires_at);
        let mut raw = Vec::with_capacity(NONCE_HEX / 2);
        raw.extend_from_slice(&id);
        raw.extend_from_slice(&issued_at.to_be_bytes());
        raw.extend_from_slice(&expires_at.to_be_bytes());
        raw.extend_from_slice(&tag);
        let nonce = format!("{}{principal}", hex::encode(raw));
        Challenge { domain: domain.into(), principal, nonce, issued_at, expires_at }
    }

    /// The challenge a nonce stands for, with its id, if this node issued
    /// it for `domain` (expiry is the caller's to check: an expired
    /// challenge is reported as such).
    pub fn open(&self, domain: &str, nonce: &str) -> Result<([u8; 16], Challenge), AuthError> {
        let unknown = AuthError::UnknownChallenge;
        if nonce.len() <= NONCE_HEX || nonce.len() > NONCE_HEX + 200 || !nonce.is_char_boundary(NONCE_HEX) {
            return Err(unknown);
        }
        let (digits, principal) = nonce.split_at(NONCE_HEX);
        let raw = hex::decode(digits).map_err(|_| AuthError::UnknownChallenge)?;
        let id: [u8; 16] = raw[..16].try_into().map_err(|_| AuthError::UnknownChallenge)?;
        let number = |r: &[u8]| r.try_into().map(u64::from_be_bytes).map_err(|_| AuthError::UnknownChallenge);
        let (issued_at, expires_at) = (number(&raw[16..24])?, number(&raw[24..32])?);
        let expected = self.tag(domain, principal, &id, issued_at, expires_at);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &raw[32..48])) {
            return Err(unknown);
        }
        let challenge = Challenge {
            domain: domain.into(),
            principal: principal.into(),
            nonce: nonce.into(),
            issued_at,
            expires_at,
        };
        Ok((id, challenge))
    }
}

/// What a session token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The signed-in principal.
    pub sub: String,
    /// Issued (unix seconds).
    pub iat: u64,
    /// Expires (unix seconds).
    pub exp: u64,
    /// Token id (for audit entries).
    pub jti: String,
}

/// The node's session-token key.
pub struct SessionKey {
    key: SigningKey,
    /// The public half, derived once: deriving it is a scalar
    /// multiplication, too dear to repeat on every request.
    public: VerifyingKey,
    /// Tokens whose signature already verified, with their claims: the
    /// Ed25519 check of the same bytes under the same key cannot change, so
    /// it is done once per token, not on every request (expiry is still
    /// checked every time). Only verified tokens enter; bounded by
    /// [`VERIFIED_CACHE_MAX`].
    verified: std::sync::Mutex<std::collections::HashMap<String, Claims>>,
}

/// Verified tokens remembered at most (the cache is emptied when full).
const VERIFIED_CACHE_MAX: usize = 16_384;

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "SessionKey({})", hex::encode(self.public.as_bytes()))
    }
}

impl SessionKey {
    /// From 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        SessionKey { public: key.verifying_key(), key, verified: Default::default() }
    }

    /// The session key of a node whose secret is `root`: derived from it
    /// under its own label, apart from the checkpoint key (the root itself).
    pub fn for_node(root: &[u8; 32]) -> Self {
        SessionKey::from_bytes(&derive_key(root, SESSION_LABEL))
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// The signing key (for audit checkpoints).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// A token `base64url(claims JSON) . base64url(Ed25519 signature)`.
    pub fn issue(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let sig = self.key.sign(body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// Checks a token's signature and expiry at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let cached = self.verified.lock().unwrap_or_else(|p| p.into_inner()).get(token).cloned();
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token)?;
                let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= VERIFIED_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(token.to_string(), claims.clone());
                claims
            }
        };
        if now >= claims.exp {
            return Err(AuthError::BadToken("expired"));
        }
        Ok(claims)
    }

    /// A token's claims, if this key signed it (expiry not checked).
    fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let (body, sig) = token.split_once('.').ok_or(AuthError::BadToken("malformed"))?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| AuthError::BadToken("malformed"))?;
        let sig: [u8; 64] = sig.try_into().map_err(|_| AuthError::BadToken("malformed"))?;
        self.public
            .verify(body.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| AuthError::BadToken("not signed by this node"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::BadToken("malformed"))?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::SecretKey;

    fn sign(secret: &[u8; 32], message: &[u8]) -> (String, Principal) {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(secret).expect("key");
        let msg = Message::from_slice(&message_hash(message)).expect("hash");
        let (id, compact) = secp.sign_ecdsa_recoverable(&msg, &sk).serialize_compact();
        let mut rsv = compact.to_vec();
        rsv.push(id.to_i32() as u8);
        let pk = secp256k1::PublicKey::from_secret_key(&secp, &sk).serialize();
        (hex::encode(rsv), address_of(&pk, 26))
    }

    /// Produced by `@stacks/transactions` 7.6 (`signMessageHashRsv`) for
    /// the key 0x07…07 and the message "sign in" (tests/js).
    const STACKS_JS_SIGNATURE: &str = "f02d46d33cdfb84a44e96d9aa54461a209fe7d6493277ebae0f7e10e442c5020\
                                       64828fd8a7b1cbba214b29530c403f891a0d7057f1d084a1156a0b4456589e5400";

    #[test]
    fn stacks_js_known_answers() {
        assert_eq!(
            hex::encode(message_hash(b"sign in")),
            "e725ae2d9d4eea64768910f47a229ec459ba8390582c476bbe404bae6657f890"
        );
        let signer: Principal = "ST2HWDCFE994XKWNF7CW055T78KXTJ90P9B4HHQDZ".parse().expect("address");
        let sig: String = STACKS_JS_SIGNATURE.split_whitespace().collect();
        assert_eq!(verify_signature(b"sign in", &sig, &signer), Ok(()));
        // A 300-byte message gets a 3-byte CompactSize length.
        let long = vec![b'a'; 300];
        let mut enc = MESSAGE_PREFIX.to_vec();
        enc.extend_from_slice(&[0xfd, 0x2c, 0x01]);
        enc.extend_from_slice(&long);
        assert_eq!(message_hash(&long), <[u8; 32]>::from(Sha256::digest(&enc)));
    }

    #[test]
    fn a_signature_verifies_only_for_its_signer_and_message() {
        let (sig, who) = sign(&[7; 32], b"sign in");
        assert_eq!(verify_signature(b"sign in", &sig, &who), Ok(()));
        let (_, other) = sign(&[8; 32], b"sign in");
        assert!(matches!(verify_signature(b"sign in", &sig, &other), Err(AuthError::WrongSigner { .. })));
        assert!(matches!(verify_signature(b"sign in!", &sig, &who), Err(AuthError::WrongSigner { .. })));
        let cases: &[(&str, &str)] =
            &[("zz", "not hex"), ("00", "not 65 bytes (r ‖ s ‖ v)"), (&sig[..128], "not 65 bytes (r ‖ s ‖ v)")];
        for (bad, why) in cases {
            assert_eq!(verify_signature(b"sign in", bad, &who), Err(AuthError::MalformedSignature(why)));
        }
        let mut bad_v = sig.clone();
        bad_v.replace_range(128.., "07");
        assert!(matches!(verify_signature(b"sign in", &bad_v, &who), Err(AuthError::MalformedSignature(_))));
    }

    #[test]
    fn tokens_expire_and_cannot_be_forged() {
        let key = SessionKey::from_bytes(&[1; 32]);
        let claims = Claims { sub: "ST1".into(), iat: 100, exp: 200, jti: "t1".into() };
        let token = key.issue(&claims);
        assert_eq!(key.verify(&token, 150), Ok(claims.clone()));
        assert_eq!(key.verify(&token, 200), Err(AuthError::BadToken("expired")));
        let other = SessionKey::from_bytes(&[2; 32]);
        assert_eq!(other.verify(&token, 150), Err(AuthError::BadToken("not signed by this node")));
        // A changed body with the old signature.
        let (_, sig) = token.split_once('.').expect("dot");
        let forged_claims = Claims { sub: "ST2".into(), ..claims };
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json")));
        assert_eq!(key.verify(&forged, 150), Err(AuthError::BadToken("not signed by this node")));
        assert_eq!(key.verify("garbage", 150), Err(AuthError::BadToken("malformed")));
        assert!(!format!("{key:?}").contains(&hex::encode([1u8; 32])));
    }

    #[test]
    fn session_tokens_and_checkpoints_never_share_a_key() {
        let root = [9u8; 32];
        let session = SessionKey::for_node(&root);
        let checkpoint = SigningKey::from_bytes(&root).verifying_key();
        assert_ne!(session.verifying_key(), checkpoint);
        // A token's signature does not verify under the checkpoint key.
        let claims = Claims { sub: "ST1".into(), iat: 1, exp: 2, jti: "j".into() };
        let token = session.issue(&claims);
        assert!(SessionKey::from_bytes(&root).verify(&token, 1).is_err(), "the root key rejects a session token");
        assert!(session.verify(&token, 1).is_ok());
    }
}
