//! The fixed-size identifiers that cross crate boundaries: a record id, a
//! record's data hash, a transaction id and an index block hash.
//!
//! Each is its own type so one cannot be passed where another is meant, and
//! each has one parser and one text form: `0x` and 64 lowercase hex digits,
//! the form stacks-node's event observer and the API use. The parser also
//! takes the bare 64 digits (stacks-node's RPC answers txids without `0x`,
//! and stores written before these types existed hold bare data hashes).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a hex identifier of the expected size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {digits} hex digits (optionally 0x-prefixed), got {len} characters")]
pub struct ParseHashError {
    digits: usize,
    len: usize,
}

impl ParseHashError {
    /// The size the identifier has, in bytes.
    pub fn bytes(&self) -> usize {
        self.digits / 2
    }

    /// How many characters the refused text had.
    pub fn input_len(&self) -> usize {
        self.len
    }
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseHashError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    match hex::decode_to_slice(digits, &mut out) {
        Ok(()) => Ok(out),
        // The length, never the text: it may be unbounded caller input.
        Err(_) => Err(ParseHashError { digits: 2 * N, len: s.len() }),
    }
}

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $n:literal, $pattern:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            /// The 2·N hex digits without the `0x` prefix.
            pub fn bare_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl From<[u8; $n]> for $name {
            fn from(bytes: [u8; $n]) -> Self {
                $name(bytes)
            }
        }

        // The stores and the Clarity encoding key by the raw bytes.
        impl std::ops::Deref for $name {
            type Target = [u8; $n];
            fn deref(&self) -> &[u8; $n] {
                &self.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<$name> for [u8; $n] {
            fn from(h: $name) -> Self {
                h.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex(s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        // The API document's schema: the parser's language (it prints the
        // `0x`, lowercase form, which the pattern includes).
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::pattern_schema(
                    concat!(stringify!($name), ": ", $n, " bytes of hex, `0x` optional on input, either case"),
                    $pattern,
                    &$name([0xab; $n]).to_string(),
                )
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

hex_id! {
    /// A record's id: 16 bytes the creator chooses, the key of the
    /// contract's `records` map.
    RecordId, 16, "^(0x)?[0-9a-fA-F]{32}$"
}

hex_id! {
    /// SHA-256 of a stored ciphertext: what `create-record` and
    /// `update-record` anchor on-chain.
    DataHash, 32, "^(0x)?[0-9a-fA-F]{64}$"
}

hex_id! {
    /// A Stacks transaction id.
    Txid, 32, "^(0x)?[0-9a-fA-F]{64}$"
}

hex_id! {
    /// A Stacks index block hash (a block's identity across forks).
    BlockHash, 32, "^(0x)?[0-9a-fA-F]{64}$"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_form_and_a_lenient_parser() {
        let h = DataHash([0xab; 32]);
        let text = format!("0x{}", "ab".repeat(32));
        assert_eq!(h.to_string(), text);
        for accepted in [text.clone(), "ab".repeat(32), "AB".repeat(32)] {
            assert_eq!(accepted.parse::<DataHash>(), Ok(h), "{accepted}");
        }
        for refused in
            ["", "0x", "ab", &"ab".repeat(33), &format!("0x{}", "zz".repeat(32)), &format!("0X{}", "ab".repeat(32))]
        {
            assert!(refused.parse::<Txid>().is_err(), "{refused}");
        }
        assert_eq!(serde_json::to_string(&h).expect("serializes"), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<DataHash>(&format!("\"{}\"", "ab".repeat(32))).expect("bare hex parses"), h);
        assert!(serde_json::from_str::<BlockHash>("\"0x12\"").is_err());
        assert_eq!(
            "0x000102030405060708090a0b0c0d0e0f".parse::<RecordId>().map(|r| r.bare_hex()).as_deref(),
            Ok("000102030405060708090a0b0c0d0e0f")
        );
        assert!("ab".repeat(32).parse::<RecordId>().is_err(), "a hash is not a record id");
    }

    #[test]
    fn errors_never_echo_the_input() {
        let long = "x".repeat(10_000);
        let err = long.parse::<Txid>().expect_err("not a txid").to_string();
        assert!(err.len() < 100, "{err}");
    }
}
