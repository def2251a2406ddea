//! Stacks principals and their c32check text form (`ST…`, `SP…`,
//! `ST….contract-name`).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::CodecError;

const C32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Address version of mainnet single-signature addresses (`SP…`).
pub const VERSION_MAINNET_SINGLESIG: u8 = 22;
/// Address version of testnet single-signature addresses (`ST…`).
pub const VERSION_TESTNET_SINGLESIG: u8 = 26;
/// Address version of mainnet multi-signature addresses (`SM…`).
pub const VERSION_MAINNET_MULTISIG: u8 = 20;
/// Address version of testnet multi-signature addresses (`SN…`).
pub const VERSION_TESTNET_MULTISIG: u8 = 21;

/// A standard principal: address version and HASH160 of the public key(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StandardPrincipal {
    /// Address version (22 `SP`, 26 `ST`, …); below 32.
    pub version: u8,
    /// HASH160 of the key or script.
    pub hash160: [u8; 20],
}

/// A principal: a standard account or a contract.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// An account.
    Standard(StandardPrincipal),
    /// A contract, identified by its deployer and name.
    Contract(StandardPrincipal, String),
}

impl Principal {
    /// The deploying or owning account.
    pub fn issuer(&self) -> &StandardPrincipal {
        match self {
            Principal::Standard(p) | Principal::Contract(p, _) => p,
        }
    }
}

impl fmt::Display for StandardPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = self.hash160.to_vec();
        payload.extend_from_slice(&checksum(self.version, &self.hash160));
        write!(f, "S{}{}", C32[usize::from(self.version & 31)] as char, c32_encode(&payload))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Standard(p) => write!(f, "{p}"),
            Principal::Contract(p, name) => write!(f, "{p}.{name}"),
        }
    }
}

impl FromStr for StandardPrincipal {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CodecError::InvalidAddress(s.to_string());
        let rest = s.strip_prefix('S').ok_or_else(bad)?;
        let mut chars = rest.chars();
        let version = chars.next().and_then(c32_digit).ok_or_else(bad)?;
        let payload = c32_decode(chars.as_str()).ok_or_else(bad)?;
        if payload.len() != 24 {
            return Err(bad());
        }
        let mut hash160 = [0u8; 20];
        hash160.copy_from_slice(&payload[..20]);
        if payload[20..] != checksum(version, &hash160) {
            return Err(bad());
        }
        Ok(StandardPrincipal { version, hash160 })
    }
}

impl FromStr for Principal {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix('\'').unwrap_or(s);
        match s.split_once('.') {
            None => Ok(Principal::Standard(s.parse()?)),
            Some((addr, name)) => {
                if !is_contract_name(name) {
                    return Err(CodecError::InvalidAddress(s.to_string()));
                }
                Ok(Principal::Contract(addr.parse()?, name.to_string()))
            }
        }
    }
}

impl serde::Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Clarity contract names: 1–40 characters (128 on the wire, but the
/// network's rule for new deploys is 40), a letter first, then letters,
/// digits, `-` and `_`.
pub fn is_contract_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

fn checksum(version: u8, hash160: &[u8; 20]) -> [u8; 4] {
    let mut data = Vec::with_capacity(21);
    data.push(version);
    data.extend_from_slice(hash160);
    let twice = Sha256::digest(Sha256::digest(&data));
    let mut out = [0u8; 4];
    out.copy_from_slice(&twice[..4]);
    out
}

fn c32_digit(c: char) -> Option<u8> {
    // Crockford-style normalisation, as c32check does.
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'L' | 'I' => '1',
        c => c,
    };
    C32.iter().position(|&d| d as char == c).map(|p| p as u8)
}

/// Base-32 encoding of a big-endian number, keeping one `0` per leading
/// zero byte (c32check's rule).
fn c32_encode(input: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(input.len() * 8 / 5 + 2);
    let mut carry: u16 = 0;
    let mut carry_bits: u32 = 0;
    for &byte in input.iter().rev() {
        carry |= u16::from(byte) << carry_bits;
        carry_bits += 8;
        while carry_bits >= 5 {
            out.push(C32[usize::from(carry & 31)]);
            carry >>= 5;
            carry_bits -= 5;
        }
    }
    if carry_bits > 0 {
        out.push(C32[usize::from(carry & 31)]);
    }
    while out.last() == Some(&b'0') {
        out.pop();
    }
    for &byte in input {
        if byte != 0 {
            break;
        }
        out.push(b'0');
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

fn c32_decode(input: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = input.chars().map(c32_digit).collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len() * 5 / 8 + 1);
    let mut carry: u16 = 0;
    let mut carry_bits: u32 = 0;
    for &d in digits.iter().rev() {
        carry |= u16::from(d) << carry_bits;
        carry_bits += 5;
        if carry_bits >= 8 {
            out.push((carry & 0xff) as u8);
            carry >>= 8;
            carry_bits -= 8;
        }
    }
    if carry_bits > 0 && carry != 0 {
        out.push(carry as u8);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    for &d in &digits {
        if d != 0 {
            break;
        }
        out.push(0);
    }
    out.reverse();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_addresses_round_trip() {
        for addr in [
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5",
            "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG",
            "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC",
            "STNHKEPYEPJ8ET55ZZ0M5A34J0R3N5FM2CMMMAZ6",
            "SP000000000000000000002Q6VF78",
        ] {
            let p: StandardPrincipal = addr.parse().expect(addr);
            assert_eq!(p.to_string(), addr);
        }
    }

    #[test]
    fn boot_address_is_all_zero_hash() {
        let p: StandardPrincipal = "SP000000000000000000002Q6VF78".parse().expect("boot address");
        assert_eq!(p, StandardPrincipal { version: VERSION_MAINNET_SINGLESIG, hash160: [0; 20] });
    }

    #[test]
    fn bad_checksum_and_garbage_are_rejected() {
        for bad in [
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGN",
            "",
            "S",
            "XT1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZG!",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.1abc",
        ] {
            assert!(bad.parse::<Principal>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn contract_principal_parses() {
        let p: Principal = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.patient-consent".parse().expect("contract");
        assert!(matches!(&p, Principal::Contract(_, name) if name == "patient-consent"));
        assert_eq!(p.to_string(), "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.patient-consent");
    }
}
