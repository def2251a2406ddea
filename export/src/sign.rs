//! The node's export signing key: an ECDSA P-256 key and a self-signed
//! certificate for it, both derived from a 32-byte secret so the node
//! stores nothing (it derives the secret from its own). The same secret
//! and subject always give the same key *and* the same certificate bytes,
//! so a certificate published once stays the one that verifies.
//!
//! P-256 rather than Ed25519 because PDF readers (Poppler's `pdfsig`,
//! Acrobat) validate ECDSA P-256 signatures and not Ed25519 ones; the JSON
//! and CSV exports use the same key so one certificate covers every format.

use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{GeneralizedTime, SetOfVec, UtcTime, Utf8StringRef};
use x509_cert::der::oid::db::rfc4519;
use x509_cert::der::{Any, Encode};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// The `alg` of every detached signature (JOSE's name for ECDSA P-256
/// with SHA-256).
pub const ALG: &str = "ES256";

/// 2025-01-01T00:00:00Z: the certificate's fixed start of validity.
const NOT_BEFORE_SECS: u64 = 1_735_689_600;
/// 2099-12-31T23:59:59Z: its fixed end (as a GeneralizedTime, as RFC 5280
/// requires from 2050 on).
const NOT_AFTER_SECS: u64 = 4_102_444_799;

/// The keystore's password. The PKCS#12 blob only carries the key to
/// `pdf_signer` in memory and is never written anywhere, so the password
/// protects nothing; it is fixed.
pub(crate) const P12_PASSWORD: &str = "medanchor";

/// What can go wrong making the key or checking a signature.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The secret is not a valid P-256 scalar (zero or not below the
    /// group order; a derived secret is so with negligible probability).
    #[error("the secret is not a valid P-256 private key")]
    InvalidSecret,
    /// The certificate could not be built.
    #[error("cannot build the export certificate: {0}")]
    Certificate(String),
    /// The in-memory PKCS#12 keystore could not be built.
    #[error("cannot build the keystore: {0}")]
    Keystore(String),
    /// The public key given to verify with is not a P-256 SPKI PEM.
    #[error("not a P-256 public key: {0}")]
    PublicKey(String),
    /// The signature names an algorithm other than [`ALG`].
    #[error("unsupported signature algorithm {alg}")]
    UnsupportedAlgorithm {
        /// The algorithm named.
        alg: String,
    },
    /// The signature was made by another key than the one given.
    #[error("signed by key {signed_by}, not by {key_id}")]
    OtherKey {
        /// The signature's `key_id`.
        signed_by: String,
        /// The given key's id.
        key_id: String,
    },
    /// The bytes are not the ones that were signed.
    #[error("sha256 mismatch: signed {signed}, got {actual}")]
    DigestMismatch {
        /// The hash in the signature.
        signed: String,
        /// The hash of the bytes given.
        actual: String,
    },
    /// The signature field is not base64 of a DER ECDSA signature.
    #[error("malformed signature")]
    MalformedSignature,
    /// The signature does not verify with the key.
    #[error("invalid signature")]
    InvalidSignature,
}

/// The signing key of a node's exports, with its certificate.
#[derive(Clone)]
pub struct ExportKey {
    signing_key: SigningKey,
    spki_der: Vec<u8>,
    certificate_der: Vec<u8>,
    /// The key and certificate as PKCS#12 (what `pdf_signer` takes),
    /// built once: PBKDF2 is not free.
    p12: Vec<u8>,
}

impl std::fmt::Debug for ExportKey {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportKey").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

impl ExportKey {
    /// The key whose private scalar is `secret`, with a self-signed
    /// certificate whose common name is `medanchor export signing
    /// (<subject>)` (the subject is the tenant, typically).
    ///
    /// Deterministic: the validity is fixed (2025-01-01 to 2099-12-31),
    /// the serial number is derived from the public key, and ECDSA nonces
    /// are RFC 6979's.
    pub fn from_secret(secret: &[u8; 32], subject: &str) -> Result<ExportKey, Error> {
        let signing_key = SigningKey::from_bytes(secret.into()).map_err(|_| Error::InvalidSecret)?;
        let verifying_key = *signing_key.verifying_key();
        let spki_der = verifying_key.to_public_key_der().map_err(|e| Error::Certificate(e.to_string()))?.into_vec();
        let certificate_der = certificate(&signing_key, &spki_der, subject)?;
        let p12 = keystore(&signing_key, &certificate_der)?;
        Ok(ExportKey { signing_key, spki_der, certificate_der, p12 })
    }

    /// The certificate (X.509, DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The certificate as PEM (`BEGIN CERTIFICATE`).
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate_der)
    }

    /// The public key as PEM (SubjectPublicKeyInfo, `BEGIN PUBLIC KEY`):
    /// what [`verify_detached`] and `openssl dgst -verify` take.
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// The key's id: the first 16 bytes of SHA-256 of its SPKI DER, as 32
    /// lowercase hex digits.
    pub fn key_id(&self) -> String {
        key_id_of(&self.spki_der)
    }

    /// A detached signature of `bytes` (a JSON or CSV export): serialized
    /// as JSON, it is the export's `.sig` file.
    pub fn sign_detached(&self, bytes: &[u8]) -> DetachedSignature {
        let digest = Sha256::digest(bytes);
        // Signing a 32-byte prehash with a valid key cannot fail: the only
        // error p256 reports is a prehash shorter than half the field size.
        let signature: Signature =
            self.signing_key.sign_prehash(&digest).expect("a SHA-256 prehash is always long enough");
        DetachedSignature {
            alg: ALG.into(),
            key_id: self.key_id(),
            sha256: hex::encode(digest),
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
        }
    }

    /// The PKCS#12 keystore `pdf_signer` signs with, and its password.
    pub(crate) fn pkcs12(&self) -> (&[u8], &str) {
        (&self.p12, P12_PASSWORD)
    }
}

/// A detached signature of an export file (its `.sig`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedSignature {
    /// Always [`ALG`] (`ES256`).
    pub alg: String,
    /// The signing key's [`ExportKey::key_id`].
    pub key_id: String,
    /// SHA-256 of the signed bytes, lowercase hex (as `sha256sum` prints
    /// it, so a reader can compare by eye).
    pub sha256: String,
    /// Base64 of the DER ECDSA P-256 signature over that SHA-256 (what
    /// `openssl dgst -sha256 -sign` makes of the file).
    pub signature: String,
}

/// The public key (SPKI PEM) of a certificate (PEM): what detached
/// signatures are checked against when the certificate is what was
/// pinned.
pub fn public_key_pem_of(certificate_pem: &str) -> Result<String, Error> {
    use x509_cert::der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(certificate_pem.as_bytes())
        .map_err(|e| Error::PublicKey(format!("not a PEM certificate: {e}")))?;
    let der = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| Error::PublicKey(e.to_string()))?;
    Ok(pem("PUBLIC KEY", &der))
}

/// Checks that `sig` is a signature of `bytes` by the key `public_key_pem`
/// (SPKI PEM, as [`ExportKey::public_key_pem`] gives it): the algorithm,
/// the key id, the hash of the bytes, and the signature itself.
pub fn verify_detached(public_key_pem: &str, bytes: &[u8], sig: &DetachedSignature) -> Result<(), Error> {
    if sig.alg != ALG {
        return Err(Error::UnsupportedAlgorithm { alg: sig.alg.clone() });
    }
    let verifying_key =
        VerifyingKey::from_public_key_pem(public_key_pem).map_err(|e| Error::PublicKey(e.to_string()))?;
    let spki_der = verifying_key.to_public_key_der().map_err(|e| Error::PublicKey(e.to_string()))?;
    let key_id = key_id_of(spki_der.as_bytes());
    if sig.key_id != key_id {
        return Err(Error::OtherKey { signed_by: sig.key_id.clone(), key_id });
    }
    let digest = Sha256::digest(bytes);
    let actual = hex::encode(digest);
    if sig.sha256 != actual {
        return Err(Error::DigestMismatch { signed: sig.sha256.clone(), actual });
    }
    let der =
        base64::engine::general_purpose::STANDARD.decode(&sig.signature).map_err(|_| Error::MalformedSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| Error::MalformedSignature)?;
    verifying_key.verify_prehash(&digest, &signature).map_err(|_| Error::InvalidSignature)
}

fn key_id_of(spki_der: &[u8]) -> String {
    hex::encode(&Sha256::digest(spki_der)[..16])
}

fn certificate(signing_key: &SigningKey, spki_der: &[u8], subject: &str) -> Result<Vec<u8>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Certificate(e.to_string());
    let name = common_name(&format!("medanchor export signing ({subject})")).map_err(|e| err(&e))?;
    // Positive and at most 20 bytes, as RFC 5280 asks: the first 16 bytes
    // of the key's hash with the sign bit cleared.
    let mut serial = Sha256::digest(spki_der)[..16].to_vec();
    serial[0] &= 0x7f;
    let serial = SerialNumber::new(&serial).map_err(|e| err(&e))?;
    let validity = Validity {
        not_before: Time::UtcTime(
            UtcTime::from_unix_duration(Duration::from_secs(NOT_BEFORE_SECS)).map_err(|e| err(&e))?,
        ),
        not_after: Time::GeneralTime(
            GeneralizedTime::from_unix_duration(Duration::from_secs(NOT_AFTER_SECS)).map_err(|e| err(&e))?,
        ),
    };
    let spki = SubjectPublicKeyInfoOwned::from_key(*signing_key.verifying_key()).map_err(|e| err(&e))?;
    // A self-signed end-entity certificate (issuer = subject, not a CA):
    // key usage digitalSignature + nonRepudiation, which is what a
    // document signature asks of its certificate.
    let profile = Profile::Leaf { issuer: name.clone(), enable_key_agreement: false, enable_key_encipherment: false };
    let builder = CertificateBuilder::new(profile, serial, validity, name, spki, signing_key).map_err(|e| err(&e))?;
    let cert = builder.build::<DerSignature>().map_err(|e| err(&e))?;
    cert.to_der().map_err(|e| err(&e))
}

/// `CN=<cn>, O=medanchor`, built structurally: the subject comes from the
/// tenant's name, and parsing an RFC 4514 string would let a comma or an
/// `=` in it add attributes.
fn common_name(cn: &str) -> Result<Name, x509_cert::der::Error> {
    let rdn = |oid, value: &str| -> Result<RelativeDistinguishedName, x509_cert::der::Error> {
        let atv = x509_cert::attr::AttributeTypeAndValue { oid, value: Any::encode_from(&Utf8StringRef::new(value)?)? };
        Ok(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?))
    };
    Ok(RdnSequence(vec![rdn(rfc4519::O, "medanchor")?, rdn(rfc4519::CN, cn)?]))
}

fn keystore(signing_key: &SigningKey, certificate_der: &[u8]) -> Result<Vec<u8>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Keystore(e.to_string());
    let key_der = signing_key.to_pkcs8_der().map_err(|e| err(&e))?;
    let cert = p12_keystore::Certificate::from_der(certificate_der).map_err(|e| err(&e))?;
    let chain = p12_keystore::PrivateKeyChain::new(key_der.as_bytes(), b"export", vec![cert]);
    let mut ks = p12_keystore::KeyStore::new();
    ks.add_entry("export", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    // One PBKDF2 iteration: the blob never leaves memory (see P12_PASSWORD),
    // and the default 10,000 would cost time on every key load.
    ks.writer(P12_PASSWORD).encryption_iterations(1).mac_iterations(1).write().map_err(|e| err(&e))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so 64-byte chunks are whole characters.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ExportKey {
        ExportKey::from_secret(&[n; 32], "default").expect("a valid secret")
    }

    #[test]
    fn same_secret_same_key_and_certificate() {
        let (a, b) = (key(7), key(7));
        assert_eq!(a.certificate_der(), b.certificate_der());
        assert_eq!(a.public_key_pem(), b.public_key_pem());
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), 32);
        assert_ne!(a.key_id(), key(8).key_id());
        // The subject is part of the certificate, not of the key.
        let other = ExportKey::from_secret(&[7; 32], "clinic-b").expect("a valid secret");
        assert_eq!(other.key_id(), a.key_id());
        assert_ne!(other.certificate_der(), a.certificate_der());
    }

    #[test]
    fn certificate_names_the_subject_and_fixed_validity() {
        use x509_cert::der::Decode;
        let k = ExportKey::from_secret(&[7; 32], "a, CN=evil").expect("a valid secret");
        let cert = x509_cert::Certificate::from_der(k.certificate_der()).expect("DER certificate");
        let tbs = &cert.tbs_certificate;
        assert_eq!(tbs.subject, tbs.issuer);
        assert_eq!(tbs.subject.0.len(), 2, "a comma in the subject must not add an attribute");
        assert!(tbs.subject.to_string().contains("medanchor export signing (a"));
        assert_eq!(tbs.validity.not_before.to_unix_duration().as_secs(), NOT_BEFORE_SECS);
        assert_eq!(tbs.validity.not_after.to_unix_duration().as_secs(), NOT_AFTER_SECS);
        assert!(k.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(k.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }

    #[test]
    fn zero_secret_is_refused() {
        assert!(matches!(ExportKey::from_secret(&[0; 32], "default"), Err(Error::InvalidSecret)));
    }

    #[test]
    fn detached_signature_verifies() {
        let k = key(7);
        let bytes = br#"{"schema":"x","records":[]}"#;
        let sig = k.sign_detached(bytes);
        assert_eq!(sig.alg, "ES256");
        assert_eq!(sig.key_id, k.key_id());
        assert_eq!(sig.sha256, hex::encode(Sha256::digest(bytes)));
        // It survives the trip through its JSON file.
        let sig: DetachedSignature =
            serde_json::from_str(&serde_json::to_string(&sig).expect("serializes")).expect("parses");
        verify_detached(&k.public_key_pem(), bytes, &sig).expect("verifies");
    }

    #[test]
    fn detached_signature_fails_for_a_changed_byte() {
        let k = key(7);
        let bytes = b"id,date\n1,2026-01-05\n".to_vec();
        let sig = k.sign_detached(&bytes);
        let mut changed = bytes.clone();
        changed[3] ^= 1;
        assert!(matches!(verify_detached(&k.public_key_pem(), &changed, &sig), Err(Error::DigestMismatch { .. })));
        // A hash edited to match the changed bytes leaves the signature
        // over the old hash.
        let forged = DetachedSignature { sha256: hex::encode(Sha256::digest(&changed)), ..sig };
        assert!(matches!(verify_detached(&k.public_key_pem(), &changed, &forged), Err(Error::InvalidSignature)));
    }

    #[test]
    fn detached_signature_fails_for_another_key() {
        let (k, other) = (key(7), key(8));
        let bytes = b"export";
        let sig = k.sign_detached(bytes);
        assert!(matches!(verify_detached(&other.public_key_pem(), bytes, &sig), Err(Error::OtherKey { .. })));
        // Even when the key id is relabelled, the signature itself fails.
        let relabelled = DetachedSignature { key_id: other.key_id(), ..sig };
        assert!(matches!(verify_detached(&other.public_key_pem(), bytes, &relabelled), Err(Error::InvalidSignature)));
    }

    #[test]
    fn keystore_round_trips() {
        let k = key(7);
        let (p12, password) = k.pkcs12();
        let ks = p12_keystore::KeyStore::from_pkcs12(p12, password).expect("reads back");
        let (_, chain) = ks.private_key_chain().expect("has the key");
        assert_eq!(chain.chain()[0].as_der(), k.certificate_der());
    }
}
