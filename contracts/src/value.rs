//! Clarity values and their consensus wire format (SIP-005), the bytes a
//! node sends as `raw_value` / `raw_result` and takes as call-read
//! arguments.
//!
//! Type prefixes: 0 int, 1 uint (16-byte big-endian), 2 buff, 3 true,
//! 4 false, 5 standard principal, 6 contract principal, 7 ok, 8 err,
//! 9 none, 10 some, 11 list, 12 tuple, 13 string-ascii, 14 string-utf8.

use std::collections::BTreeMap;

use crate::principal::{is_contract_name, Principal, StandardPrincipal};
use crate::CodecError;

/// Clarity's limit on a value's serialized size (1 MiB).
pub const MAX_VALUE_SIZE: usize = 1024 * 1024;
/// Clarity's limit on type nesting.
pub const MAX_DEPTH: usize = 32;

/// A Clarity value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClarityValue {
    /// `int`, signed 128-bit.
    Int(i128),
    /// `uint`, unsigned 128-bit.
    UInt(u128),
    /// `bool`.
    Bool(bool),
    /// `(buff N)`.
    Buffer(Vec<u8>),
    /// `(string-ascii N)`.
    StringAscii(String),
    /// `(string-utf8 N)`.
    StringUtf8(String),
    /// `principal`.
    Principal(Principal),
    /// `(optional T)`.
    Optional(Option<Box<ClarityValue>>),
    /// `(response T E)`.
    Response(Result<Box<ClarityValue>, Box<ClarityValue>>),
    /// `(list N T)`.
    List(Vec<ClarityValue>),
    /// A tuple; field names in Clarity's (byte) order.
    Tuple(BTreeMap<String, ClarityValue>),
}

impl ClarityValue {
    /// `(some v)`.
    pub fn some(v: ClarityValue) -> Self {
        ClarityValue::Optional(Some(Box::new(v)))
    }

    /// `none`.
    pub fn none() -> Self {
        ClarityValue::Optional(None)
    }

    /// `(ok v)`.
    pub fn ok(v: ClarityValue) -> Self {
        ClarityValue::Response(Ok(Box::new(v)))
    }

    /// `(err v)`.
    pub fn err(v: ClarityValue) -> Self {
        ClarityValue::Response(Err(Box::new(v)))
    }

    /// A principal from its text form.
    pub fn principal(s: &str) -> Result<Self, CodecError> {
        Ok(ClarityValue::Principal(s.parse()?))
    }

    /// A tuple from `(name, value)` pairs.
    pub fn tuple<I: IntoIterator<Item = (S, ClarityValue)>, S: Into<String>>(fields: I) -> Self {
        ClarityValue::Tuple(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The consensus serialization.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// The consensus serialization as `0x`-prefixed hex.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.serialize()))
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ClarityValue::Int(i) => {
                out.push(0);
                out.extend_from_slice(&i.to_be_bytes());
            }
            ClarityValue::UInt(u) => {
                out.push(1);
                out.extend_from_slice(&u.to_be_bytes());
            }
            ClarityValue::Buffer(b) => {
                out.push(2);
                write_len(out, b.len());
                out.extend_from_slice(b);
            }
            ClarityValue::Bool(true) => out.push(3),
            ClarityValue::Bool(false) => out.push(4),
            ClarityValue::Principal(Principal::Standard(p)) => {
                out.push(5);
                write_standard(out, p);
            }
            ClarityValue::Principal(Principal::Contract(p, name)) => {
                out.push(6);
                write_standard(out, p);
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
            }
            ClarityValue::Response(Ok(v)) => {
                out.push(7);
                v.write(out);
            }
            ClarityValue::Response(Err(v)) => {
                out.push(8);
                v.write(out);
            }
            ClarityValue::Optional(None) => out.push(9),
            ClarityValue::Optional(Some(v)) => {
                out.push(10);
                v.write(out);
            }
            ClarityValue::List(items) => {
                out.push(11);
                write_len(out, items.len());
                for item in items {
                    item.write(out);
                }
            }
            ClarityValue::Tuple(fields) => {
                out.push(12);
                write_len(out, fields.len());
                for (name, value) in fields {
                    out.push(name.len() as u8);
                    out.extend_from_slice(name.as_bytes());
                    value.write(out);
                }
            }
            ClarityValue::StringAscii(s) => {
                out.push(13);
                write_len(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            ClarityValue::StringUtf8(s) => {
                out.push(14);
                write_len(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// Decodes exactly one value occupying all of `bytes`.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_VALUE_SIZE {
            return Err(CodecError::TooLarge(bytes.len()));
        }
        let mut reader = Reader { bytes, pos: 0 };
        let value = reader.value(0)?;
        if reader.pos != bytes.len() {
            return Err(CodecError::TrailingBytes(bytes.len() - reader.pos));
        }
        Ok(value)
    }

    /// Decodes `0x`-prefixed (or bare) hex.
    pub fn from_hex(s: &str) -> Result<Self, CodecError> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(s).map_err(|e| CodecError::Hex(e.to_string()))?;
        Self::deserialize(&bytes)
    }
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    // Lengths above u32 cannot occur for values under MAX_VALUE_SIZE.
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

fn write_standard(out: &mut Vec<u8>, p: &StandardPrincipal) {
    out.push(p.version);
    out.extend_from_slice(&p.hash160);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(CodecError::UnexpectedEnd(self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn sixteen(&mut self) -> Result<[u8; 16], CodecError> {
        let mut out = [0u8; 16];
        out.copy_from_slice(self.take(16)?);
        Ok(out)
    }

    fn standard(&mut self) -> Result<StandardPrincipal, CodecError> {
        let version = self.byte()?;
        if version >= 32 {
            return Err(CodecError::InvalidPrincipalVersion(version));
        }
        let mut hash160 = [0u8; 20];
        hash160.copy_from_slice(self.take(20)?);
        Ok(StandardPrincipal { version, hash160 })
    }

    fn name(&mut self, len: usize) -> Result<String, CodecError> {
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| CodecError::InvalidName)?;
        Ok(s.to_string())
    }

    fn value(&mut self, depth: usize) -> Result<ClarityValue, CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::TooDeep);
        }
        let at = self.pos;
        Ok(match self.byte()? {
            0 => ClarityValue::Int(i128::from_be_bytes(self.sixteen()?)),
            1 => ClarityValue::UInt(u128::from_be_bytes(self.sixteen()?)),
            2 => {
                let len = self.u32()?;
                ClarityValue::Buffer(self.take(len)?.to_vec())
            }
            3 => ClarityValue::Bool(true),
            4 => ClarityValue::Bool(false),
            5 => ClarityValue::Principal(Principal::Standard(self.standard()?)),
            6 => {
                let issuer = self.standard()?;
                let len = usize::from(self.byte()?);
                let name = self.name(len)?;
                if !is_contract_name(&name) {
                    return Err(CodecError::InvalidName);
                }
                ClarityValue::Principal(Principal::Contract(issuer, name))
            }
            7 => ClarityValue::Response(Ok(Box::new(self.value(depth + 1)?))),
            8 => ClarityValue::Response(Err(Box::new(self.value(depth + 1)?))),
            9 => ClarityValue::Optional(None),
            10 => ClarityValue::Optional(Some(Box::new(self.value(depth + 1)?))),
            11 => {
                let count = self.u32()?;
                // Every item takes at least one byte: a count beyond the
                // remaining input is malformed, and must not size an
                // allocation.
                if count > self.bytes.len() - self.pos {
                    return Err(CodecError::UnexpectedEnd(self.pos));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                ClarityValue::List(items)
            }
            12 => {
                let count = self.u32()?;
                if count > self.bytes.len() - self.pos {
                    return Err(CodecError::UnexpectedEnd(self.pos));
                }
                let mut fields = BTreeMap::new();
                for _ in 0..count {
                    let len = usize::from(self.byte()?);
                    let name = self.name(len)?;
                    if name.is_empty() {
                        return Err(CodecError::InvalidName);
                    }
                    let value = self.value(depth + 1)?;
                    if fields.insert(name, value).is_some() {
                        return Err(CodecError::DuplicateField);
                    }
                }
                ClarityValue::Tuple(fields)
            }
            13 => {
                let len = self.u32()?;
                let raw = self.take(len)?;
                // The VM's rule for string-ascii contents.
                let allowed = |b: &u8| b.is_ascii_alphanumeric() || b.is_ascii_punctuation() || b.is_ascii_whitespace();
                if !raw.iter().all(allowed) {
                    return Err(CodecError::InvalidString);
                }
                ClarityValue::StringAscii(String::from_utf8_lossy(raw).into_owned())
            }
            14 => {
                let len = self.u32()?;
                let raw = self.take(len)?;
                let s = std::str::from_utf8(raw).map_err(|_| CodecError::InvalidString)?;
                ClarityValue::StringUtf8(s.to_string())
            }
            prefix => return Err(CodecError::UnknownType { prefix, at }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: ClarityValue, hex: &str) {
        assert_eq!(value.to_hex(), hex, "serialize {value:?}");
        assert_eq!(ClarityValue::from_hex(hex).expect("decode"), value, "deserialize {hex}");
    }

    #[test]
    fn known_encodings() {
        check(ClarityValue::UInt(1), "0x0100000000000000000000000000000001");
        check(ClarityValue::Int(-1), "0x00ffffffffffffffffffffffffffffffff");
        check(ClarityValue::Bool(true), "0x03");
        check(ClarityValue::none(), "0x09");
        check(ClarityValue::err(ClarityValue::UInt(35)), "0x080100000000000000000000000000000023");
        // From a real stacks-node block (shared/fixtures: nakamoto_failed_contract_calls).
        check(ClarityValue::err(ClarityValue::Int(35)), "0x080000000000000000000000000000000023");
        check(ClarityValue::ok(ClarityValue::Bool(true)), "0x0703");
        check(ClarityValue::Buffer(vec![0xde, 0xad]), "0x0200000002dead");
        check(ClarityValue::StringAscii("hi".into()), "0x0d000000026869");
        check(
            ClarityValue::tuple([("b", ClarityValue::Bool(false)), ("a", ClarityValue::none())]),
            "0x0c00000002016109016204",
        );
        check(
            ClarityValue::principal("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM").expect("addr"),
            "0x051a6d78de7b0625dfbfc16c3a8a5735f6dc3dc3f2ce",
        );
    }

    #[test]
    fn real_print_from_a_node_round_trips() {
        // A signers-voting print from shared/fixtures (nakamoto_contract_call_prints).
        let raw = "0x0c00000004056576656e740d0000001d617070726f7665642d6167677265676174652d7075626c69632d6b6579\
                   036b6579020000002102a052a6a960056c6be81db74ce305458282bd9fca103b8681debdf549b54982d40c7265\
                   776172642d6379636c65010000000000000000000000000000000d05726f756e640100000000000000000000000000000001";
        let value = ClarityValue::from_hex(raw).expect("decodes");
        let ClarityValue::Tuple(fields) = &value else { panic!("not a tuple: {value:?}") };
        assert_eq!(fields.get("event"), Some(&ClarityValue::StringAscii("approved-aggregate-public-key".into())));
        assert_eq!(fields.get("reward-cycle"), Some(&ClarityValue::UInt(13)));
        assert_eq!(value.to_hex(), raw.replace(' ', ""));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for hex in [
            "0x",
            "0x01",
            "0x0f",
            "0x02ffffffff",
            "0x0bffffffff",
            "0x0cffffffff",
            "0x0300",
            "0x0c000000010009",
            "0x0c00000002016103016103",
            "0x0d0000000180",
            "0x0e00000001ff",
            "0x05ff0000000000000000000000000000000000000000",
        ] {
            assert!(ClarityValue::from_hex(hex).is_err(), "{hex} accepted");
        }
        let deep = "0a".repeat(40) + "09";
        assert!(matches!(ClarityValue::from_hex(&deep), Err(CodecError::TooDeep)));
    }

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        fn principal() -> impl Strategy<Value = Principal> {
            let standard =
                (0u8..32, any::<[u8; 20]>()).prop_map(|(version, hash160)| StandardPrincipal { version, hash160 });
            prop_oneof![
                standard.clone().prop_map(Principal::Standard),
                (standard, "[a-z][a-z0-9-]{0,39}").prop_map(|(p, n)| Principal::Contract(p, n)),
            ]
        }

        fn value() -> impl Strategy<Value = ClarityValue> {
            let leaf = prop_oneof![
                any::<i128>().prop_map(ClarityValue::Int),
                any::<u128>().prop_map(ClarityValue::UInt),
                any::<bool>().prop_map(ClarityValue::Bool),
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(ClarityValue::Buffer),
                "[ -~]{0,20}".prop_map(ClarityValue::StringAscii),
                "\\PC{0,10}".prop_map(ClarityValue::StringUtf8),
                principal().prop_map(ClarityValue::Principal),
                Just(ClarityValue::none()),
            ];
            leaf.prop_recursive(4, 64, 6, |inner| {
                prop_oneof![
                    inner.clone().prop_map(ClarityValue::some),
                    inner.clone().prop_map(ClarityValue::ok),
                    inner.clone().prop_map(ClarityValue::err),
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(ClarityValue::List),
                    proptest::collection::btree_map("[a-z][a-z-]{0,12}", inner, 0..6).prop_map(ClarityValue::Tuple),
                ]
            })
        }

        proptest! {
            #[test]
            fn serialize_then_deserialize_is_identity(v in value()) {
                let bytes = v.serialize();
                prop_assert_eq!(ClarityValue::deserialize(&bytes).expect("decodes"), v);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = ClarityValue::deserialize(&bytes);
            }
        }
    }
}
