//! Stacks keys: BIP-39 mnemonics, BIP-32 derivation on Stacks' path
//! `m/44'/5757'/0'/0/<index>`, and the addresses keys control.
//!
//! Written against the specifications (BIP-32, BIP-39, SIP-005 addresses)
//! rather than a wallet library, so the devnet and the wallet derive
//! exactly what Clarinet, Leather and stacks.js derive — the devnet
//! accounts of `settings/Devnet.toml` are the test vectors.

use std::fmt;

use clarity_repl::clarity::address::AddressHashMode;
use clarity_repl::clarity::stacks_common::types::chainstate::StacksAddress;
use clarity_repl::clarity::util::secp256k1::{Secp256k1PrivateKey, Secp256k1PublicKey};
use hmac::{Hmac, Mac};
use secp256k1::{Message, PublicKey, Scalar, Secp256k1, SecretKey};
use sha2::{Digest, Sha256, Sha512};

use crate::{Error, Result};

/// Address version of testnet single-sig addresses (`ST…`), used by devnets.
pub const TESTNET_SINGLESIG: u8 = 26;
/// Address version of mainnet single-sig addresses (`SP…`).
pub const MAINNET_SINGLESIG: u8 = 22;

const HARDENED: u32 = 0x8000_0000;

/// A secp256k1 key that signs Stacks transactions. Its `Debug` and
/// `Display` never show the secret.
#[derive(Clone)]
pub struct StacksKey {
    secret: [u8; 32],
}

impl fmt::Debug for StacksKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StacksKey({})", self.address(TESTNET_SINGLESIG))
    }
}

impl StacksKey {
    /// From a hex secret key: 32 bytes, or 33 with the trailing `01` that
    /// marks a compressed public key (the form Clarinet and stacks.js print).
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim()).map_err(|_| Error::Key("secret key is not hex".into()))?;
        let secret = match bytes.len() {
            32 => &bytes[..],
            33 if bytes[32] == 1 => &bytes[..32],
            _ => return Err(Error::Key("secret key must be 32 bytes (or 33 ending in 01)".into())),
        };
        SecretKey::from_slice(secret).map_err(|_| Error::Key("secret key is out of range".into()))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(secret);
        Ok(StacksKey { secret: out })
    }

    /// The account at `index` of a BIP-39 mnemonic (empty passphrase), on
    /// Stacks' derivation path `m/44'/5757'/0'/0/index`.
    pub fn from_mnemonic(mnemonic: &str, index: u32) -> Result<Self> {
        let mnemonic = bip39::Mnemonic::parse_normalized(mnemonic.trim())
            .map_err(|e| Error::Key(format!("invalid mnemonic: {e}")))?;
        let seed = mnemonic.to_seed("");
        derive(&seed, &[44 | HARDENED, 5757 | HARDENED, HARDENED, 0, index])
    }

    /// Signs `message` the way Stacks wallets sign messages (stacks.js
    /// `signMessageHashRsv` over [`message_hash`]): 65 bytes `r ‖ s ‖ v`,
    /// as hex.
    pub fn sign_message(&self, message: &[u8]) -> String {
        let sk = SecretKey::from_slice(&self.secret).expect("validated at construction");
        let msg = Message::from_slice(&message_hash(message)).expect("a SHA-256 digest is 32 bytes");
        let (id, rs) = Secp256k1::signing_only().sign_ecdsa_recoverable(&msg, &sk).serialize_compact();
        let mut rsv = rs.to_vec();
        rsv.push(id.to_i32() as u8);
        hex::encode(rsv)
    }

    /// The secret as 33-byte hex with the compressed marker, as wallets
    /// export it.
    pub fn to_hex(&self) -> String {
        format!("{}01", hex::encode(self.secret))
    }

    /// The compressed public key.
    pub fn public_key(&self) -> [u8; 33] {
        let secp = Secp256k1::signing_only();
        let sk = SecretKey::from_slice(&self.secret).expect("validated at construction");
        PublicKey::from_secret_key(&secp, &sk).serialize()
    }

    /// The single-sig (P2PKH) address with this version byte.
    pub fn address(&self, version: u8) -> StacksAddress {
        let pk = Secp256k1PublicKey::from_slice(&self.public_key()).expect("a valid compressed key");
        StacksAddress::from_public_keys(version, &AddressHashMode::SerializeP2PKH, 1, &vec![pk])
            .expect("one key, one signature")
    }

    /// The key in the form the transaction signer takes.
    pub fn to_private_key(&self) -> Secp256k1PrivateKey {
        let mut key = Secp256k1PrivateKey::from_slice(&self.secret).expect("validated at construction");
        key.set_compress_public(true);
        key
    }
}

/// The prefix Stacks wallets put before a message they sign.
pub const MESSAGE_PREFIX: &[u8] = b"\x17Stacks Signed Message:\n";

/// The hash a Stacks wallet signs for `message`:
/// `sha256(prefix ‖ CompactSize(len) ‖ message)`.
pub fn message_hash(message: &[u8]) -> [u8; 32] {
    let mut encoded = MESSAGE_PREFIX.to_vec();
    let n = message.len();
    // Bitcoin's CompactSize, which stacks.js uses for the length.
    match n {
        0..=0xfc => encoded.push(n as u8),
        0xfd..=0xffff => {
            encoded.push(0xfd);
            encoded.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            encoded.push(0xfe);
            encoded.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            encoded.push(0xff);
            encoded.extend_from_slice(&(n as u64).to_le_bytes());
        }
    }
    encoded.extend_from_slice(message);
    Sha256::digest(&encoded).into()
}

/// BIP-32 private derivation along `path`.
fn derive(seed: &[u8], path: &[u32]) -> Result<StacksKey> {
    let secp = Secp256k1::signing_only();
    let mut mac = Hmac::<Sha512>::new_from_slice(b"Bitcoin seed").expect("hmac takes any key length");
    mac.update(seed);
    let i = mac.finalize().into_bytes();
    let mut key = SecretKey::from_slice(&i[..32]).map_err(|_| Error::Key("unusable seed".into()))?;
    let mut chain_code: [u8; 32] = i[32..].try_into().expect("64-byte hmac");
    for &index in path {
        let mut mac = Hmac::<Sha512>::new_from_slice(&chain_code).expect("hmac takes any key length");
        if index & HARDENED != 0 {
            mac.update(&[0]);
            mac.update(&key.secret_bytes());
        } else {
            mac.update(&PublicKey::from_secret_key(&secp, &key).serialize());
        }
        mac.update(&index.to_be_bytes());
        let i = mac.finalize().into_bytes();
        let tweak: [u8; 32] = i[..32].try_into().expect("64-byte hmac");
        let tweak = Scalar::from_be_bytes(tweak).map_err(|_| Error::Key("invalid derivation step".into()))?;
        key = key.add_tweak(&tweak).map_err(|_| Error::Key("invalid derivation step".into()))?;
        chain_code = i[32..].try_into().expect("64-byte hmac");
    }
    Ok(StacksKey { secret: key.secret_bytes() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clarinet's devnet accounts: mnemonic → (secret key, address).
    const DEVNET: &[(&str, &str, &str)] = &[
        (
            "twice kind fence tip hidden tilt action fragile skin nothing glory cousin green tomorrow spring wrist shed math olympic multiply hip blue scout claw",
            "753b7cc01a1a2e86221266a154af739463fce51219d97e4f856cd7200c3bd2a601",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
        ),
        (
            "sell invite acquire kitten bamboo drastic jelly vivid peace spawn twice guilt pave pen trash pretty park cube fragile unaware remain midnight betray rebuild",
            "7287ba251d44a4d3fd9276c88ce34c5c52a038955511cccaf77e61068649c17801",
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5",
        ),
        (
            "hold excess usual excess ring elephant install account glad dry fragile donkey gaze humble truck breeze nation gasp vacuum limb head keep delay hospital",
            "530d9f61984c888536871c6573073bdfc0058896dc1adfe9a6a10dfacadc209101",
            "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG",
        ),
        (
            "cycle puppy glare enroll cost improve round trend wrist mushroom scorpion tower claim oppose clever elephant dinosaur eight problem before frozen dune wagon high",
            "d655b2523bcd65e34889725c73064feb17ceb796831c0e111ba1a552b0f31b3901",
            "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC",
        ),
    ];

    #[test]
    fn devnet_mnemonics_derive_the_listed_keys_and_addresses() {
        for (mnemonic, secret, address) in DEVNET {
            let key = StacksKey::from_mnemonic(mnemonic, 0).expect("mnemonic");
            assert_eq!(key.to_hex(), *secret);
            assert_eq!(key.address(TESTNET_SINGLESIG).to_string(), *address);
            let from_hex = StacksKey::from_hex(secret).expect("hex");
            assert_eq!(from_hex.address(TESTNET_SINGLESIG).to_string(), *address);
        }
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["", "zz", "00", &"ff".repeat(32), &format!("{}02", "11".repeat(32))] {
            let err = StacksKey::from_hex(bad).expect_err(bad).to_string();
            assert!(bad.len() < 8 || !err.contains(bad), "{err}");
        }
        assert!(StacksKey::from_mnemonic("not a mnemonic", 0).is_err());
        let debug = format!("{:?}", StacksKey::from_hex(DEVNET[0].1).expect("hex"));
        assert!(!debug.contains(&DEVNET[0].1[..16]), "{debug}");
    }
}
