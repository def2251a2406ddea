//! The on-disk schema: every column family with its key, value and
//! invariants, the key encoders, and the stored row types. This is the one
//! place the layout is written down; nothing else builds keys.
//!
//! Numbers in keys are big-endian so byte order is numeric order. A
//! principal in a key is [`principal_key`]: `0x05 version hash160` for an
//! account, `0x06 version hash160 len name` for a contract — self-delimiting,
//! so composite keys can be prefix-scanned by their leading principal.
//! Values are postcard-encoded rows (below); they are storage types, not
//! the JSON the HTTP routes serve (`query` has those).
//!
//! | family | key | value | invariant |
//! |---|---|---|---|
//! | `meta` | name | bytes | `schema` (the version, [`crate::migrate`]), `tip` (index block hash), `tip_header` ([`BlockHeader`] of the tip; present whenever `tip` is, from version 2), `burn` (last burn block) |
//! | `blocks` | index block hash | [`BlockRow`] | every connected block of every fork ever received; immutable |
//! | `orphans` | parent hash ‖ index block hash | raw `/new_block` JSON | blocks whose parent is unknown; moved out when it arrives |
//! | `undo` | index block hash | [`UndoLog`] | present exactly for canonical blocks within the undo depth |
//! | `canonical` | height | index block hash | the canonical chain, root..=tip, contiguous |
//! | `txs` | txid | [`TxRow`] | transactions of canonical blocks |
//! | `events` | height ‖ tx index ‖ event index | [`EventRow`] | our contracts' events in canonical blocks |
//! | `patients` | patient | [`PatientRow`] | = patient-consent `patients` |
//! | `patient_ids` | patient id (32) | principal string | = `patient-ids` |
//! | `consents` | patient ‖ provider ‖ data type (u8) | [`ConsentRow`] | = `consents` |
//! | `history` | patient ‖ seq | [`HistoryRow`] | = `consent-history`; seq 0..history_len |
//! | `overrides` | patient ‖ provider | [`OverrideRow`] | = `emergency-overrides` |
//! | `responders` | provider | `[authorized]` | = `emergency-responders` |
//! | `providers` | provider | [`ProviderRow`] | = record-management `providers` |
//! | `access` | patient ‖ provider | [`AccessRow`] | = `provider-access` |
//! | `operators` | principal | `[authorized]` | = `anchor-operators` |
//! | `records` | record id (16) | [`RecordRow`] | = `records` (the current version) |
//! | `versions` | record id ‖ version | [`VersionRow`] | every version, the current one included |
//! | `by_patient` | patient ‖ created height ‖ record id | [`PatientRecordRow`] | one per record |
//! | `anchors` | data hash ‖ record id ‖ version | [`AnchorRow`] | one per anchored version (a rollback re-anchors an old hash) |
//! | `batches` | root | [`BatchRow`] | = `batches` |
//! | `audit_roots` | log ‖ tree size | [`AuditRootRow`] | = `audit-checkpoints` |
//! | `activity` | actor ‖ height ‖ tx index ‖ event index | [`ActivityRow`] | every event, under the principal that caused it |
//! | `settings` | name | bytes | `paused`, `emergency_timeout`, `retention`, owners |
//!
//! Everything from `canonical` down is *derived*: written only through
//! `store::Stage`, which records each key's previous value in the block's
//! undo log, so rolling a block back restores every derived family
//! exactly. One block (or one re-org) is one synced `WriteBatch`, tip
//! marker included.

use medanchor_contracts::principal::Principal;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The on-disk schema version this build writes; older indexes are
/// migrated forward on open, newer ones refused ([`crate::migrate`]).
pub use crate::migrate::SCHEMA_VERSION;

macro_rules! families {
    ($( $variant:ident = $name:literal, )+) => {
        /// A column family.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        #[allow(missing_docs)] // Documented in the table above.
        pub enum Cf { $( $variant, )+ }

        impl Cf {
            /// Every family, in declaration order.
            pub const ALL: &'static [Cf] = &[$( Cf::$variant, )+];

            /// The RocksDB name.
            pub fn name(self) -> &'static str {
                match self { $( Cf::$variant => $name, )+ }
            }

            /// From the tag stored in undo logs.
            pub fn from_tag(tag: u8) -> Option<Cf> {
                Cf::ALL.get(usize::from(tag)).copied()
            }

            /// Whether writes go through the undo log.
            pub fn is_derived(self) -> bool {
                self >= Cf::Canonical
            }
        }
    };
}

families! {
    Meta = "meta",
    Blocks = "blocks",
    Orphans = "orphans",
    Undo = "undo",
    Canonical = "canonical",
    Txs = "txs",
    Events = "events",
    Patients = "patients",
    PatientIds = "patient_ids",
    Consents = "consents",
    History = "history",
    Overrides = "overrides",
    Responders = "responders",
    Providers = "providers",
    Access = "access",
    Operators = "operators",
    Records = "records",
    Versions = "versions",
    ByPatient = "by_patient",
    Anchors = "anchors",
    Batches = "batches",
    AuditRoots = "audit_roots",
    Activity = "activity",
    Settings = "settings",
}

/// A principal as a self-delimiting key part.
pub fn principal_key(p: &Principal) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    push_principal(&mut k, p);
    k
}

fn push_principal(k: &mut Vec<u8>, p: &Principal) {
    match p {
        Principal::Standard(s) => {
            k.push(0x05);
            k.push(s.version);
            k.extend_from_slice(&s.hash160);
        }
        Principal::Contract(s, name) => {
            k.push(0x06);
            k.push(s.version);
            k.extend_from_slice(&s.hash160);
            // Contract names are at most 128 bytes.
            k.push(name.len() as u8);
            k.extend_from_slice(name.as_bytes());
        }
    }
}

/// Parses [`principal_key`] bytes; returns the principal and the rest.
pub fn parse_principal_key(bytes: &[u8]) -> Option<(Principal, &[u8])> {
    use medanchor_contracts::principal::StandardPrincipal;
    let (&tag, rest) = bytes.split_first()?;
    let (&version, rest) = rest.split_first()?;
    let hash160: [u8; 20] = rest.get(..20)?.try_into().ok()?;
    let rest = &rest[20..];
    let issuer = StandardPrincipal { version, hash160 };
    match tag {
        0x05 => Some((Principal::Standard(issuer), rest)),
        0x06 => {
            let (&len, rest) = rest.split_first()?;
            let name = std::str::from_utf8(rest.get(..usize::from(len))?).ok()?.to_string();
            Some((Principal::Contract(issuer, name), &rest[usize::from(len)..]))
        }
        _ => None,
    }
}

/// Principals in rows as their key bytes: no c32 checksums to compute on
/// every read and write.
mod pbin {
    use super::*;

    pub fn serialize<S: serde::Serializer>(p: &Principal, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&principal_key(p))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Principal, D::Error> {
        let bytes: &[u8] = serde::Deserialize::deserialize(d)?;
        match parse_principal_key(bytes) {
            Some((p, [])) => Ok(p),
            _ => Err(serde::de::Error::custom("malformed principal")),
        }
    }
}

/// Serializes as a byte string. Postcard writes a byte string exactly as
/// it writes a sequence of `u8` (a varint length, then the bytes), but in
/// one copy rather than one call per byte: the encoding is unchanged.
struct Bytes<'a>(&'a [u8]);

impl serde::Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Deserializes what [`Bytes`] wrote (or a sequence of `u8`).
struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<ByteBuf, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

/// `Vec<u8>` fields through [`Bytes`] / [`ByteBuf`].
mod bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&super::Bytes(v), s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        Ok(<super::ByteBuf as serde::Deserialize>::deserialize(d)?.0)
    }
}

/// [`UndoLog::entries`] with keys and values through [`Bytes`] / [`ByteBuf`].
mod undo_entries {
    use super::{ByteBuf, Bytes};
    use serde::ser::SerializeSeq;

    type Entry = (u8, Vec<u8>, Option<Vec<u8>>);

    pub fn serialize<S: serde::Serializer>(entries: &[Entry], s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(entries.len()))?;
        for (tag, key, value) in entries {
            seq.serialize_element(&(tag, Bytes(key), value.as_deref().map(Bytes)))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<Entry>, D::Error> {
        let raw: Vec<(u8, ByteBuf, Option<ByteBuf>)> = serde::Deserialize::deserialize(d)?;
        Ok(raw.into_iter().map(|(tag, key, value)| (tag, key.0, value.map(|v| v.0))).collect())
    }
}

mod opt_pbin {
    use super::*;

    pub fn serialize<S: serde::Serializer>(p: &Option<Principal>, s: S) -> std::result::Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(&Bytes(&principal_key(p))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Principal>, D::Error> {
        let bytes: Option<&[u8]> = serde::Deserialize::deserialize(d)?;
        match bytes {
            None => Ok(None),
            Some(b) => match parse_principal_key(b) {
                Some((p, [])) => Ok(Some(p)),
                _ => Err(serde::de::Error::custom("malformed principal")),
            },
        }
    }
}

/// Key builders, one per family that has a composite key.
pub mod key {
    use super::*;

    /// `consents`: patient ‖ provider ‖ data type.
    pub fn consent(patient: &Principal, provider: &Principal, data_type: u8) -> Vec<u8> {
        let mut k = principal_key(patient);
        push_principal(&mut k, provider);
        k.push(data_type);
        k
    }

    /// A patient ‖ provider pair (`overrides`, `access`).
    pub fn pair(patient: &Principal, provider: &Principal) -> Vec<u8> {
        let mut k = principal_key(patient);
        push_principal(&mut k, provider);
        k
    }

    /// `history`: patient ‖ seq.
    pub fn history(patient: &Principal, seq: u64) -> Vec<u8> {
        let mut k = principal_key(patient);
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `versions`: record ‖ version.
    pub fn version(record: &[u8; 16], version: u64) -> Vec<u8> {
        let mut k = record.to_vec();
        k.extend_from_slice(&version.to_be_bytes());
        k
    }

    /// `by_patient`: patient ‖ height ‖ record.
    pub fn by_patient(patient: &Principal, height: u64, record: &[u8; 16]) -> Vec<u8> {
        let mut k = principal_key(patient);
        k.extend_from_slice(&height.to_be_bytes());
        k.extend_from_slice(record);
        k
    }

    /// `anchors`: hash ‖ record ‖ version.
    pub fn anchor(hash: &[u8; 32], record: &[u8; 16], version: u64) -> Vec<u8> {
        let mut k = hash.to_vec();
        k.extend_from_slice(record);
        k.extend_from_slice(&version.to_be_bytes());
        k
    }

    /// `audit_roots`: log ‖ tree size.
    pub fn audit_root(log: &Principal, tree_size: u64) -> Vec<u8> {
        let mut k = principal_key(log);
        k.extend_from_slice(&tree_size.to_be_bytes());
        k
    }

    /// Position of an event in the canonical chain (`events`, and the tail
    /// of `activity` keys).
    pub fn position(height: u64, tx_index: u32, event_index: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(16);
        k.extend_from_slice(&height.to_be_bytes());
        k.extend_from_slice(&tx_index.to_be_bytes());
        k.extend_from_slice(&event_index.to_be_bytes());
        k
    }

    /// `activity`: actor ‖ position.
    pub fn activity(actor: &Principal, height: u64, tx_index: u32, event_index: u32) -> Vec<u8> {
        let mut k = principal_key(actor);
        k.extend_from_slice(&position(height, tx_index, event_index));
        k
    }
}

/// Encodes a row.
pub fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    postcard::to_stdvec(row).expect("rows have no maps with non-string keys and no failing serializers")
}

/// Decodes a row; `what` names it in the error.
pub fn decode<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

/// A received block, as kept for re-applying it after a re-org.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockRow {
    /// Stacks height.
    pub height: u64,
    /// Its id.
    pub id: [u8; 32],
    /// Its parent's id.
    pub parent: [u8; 32],
    /// Burn height.
    pub burn_block_height: u64,
    /// Block time: `block_time` if the node sent it, else the burn block's.
    pub time: u64,
    /// All transactions.
    pub txs: Vec<TxEntry>,
    /// Our contracts' committed print events, in `event_index` order.
    pub events: Vec<EventEntry>,
}

/// The leading fields of a [`BlockRow`], in the same order: decoding a
/// stored `BlockRow` as a `BlockHeader` reads only these (postcard decodes
/// fields in order and ignores the bytes after them). The tip's header is
/// also kept under `meta`/`tip_header`, so that queries learn "now" without
/// reading the tip block, however large it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockHeader {
    /// Stacks height.
    pub height: u64,
    /// Its id.
    pub id: [u8; 32],
    /// Its parent's id.
    pub parent: [u8; 32],
    /// Burn height.
    pub burn_block_height: u64,
    /// Block time.
    pub time: u64,
}

impl From<&BlockRow> for BlockHeader {
    fn from(b: &BlockRow) -> Self {
        BlockHeader {
            height: b.height,
            id: b.id,
            parent: b.parent,
            burn_block_height: b.burn_block_height,
            time: b.time,
        }
    }
}

/// A transaction inside a [`BlockRow`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxEntry {
    /// Txid.
    pub txid: [u8; 32],
    /// Position.
    pub tx_index: u32,
    /// Status string as the node sent it.
    pub status: String,
    /// The result, Clarity wire bytes (empty if the node sent none).
    #[serde(with = "bytes")]
    pub raw_result: Vec<u8>,
}

/// One of our events inside a [`BlockRow`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventEntry {
    /// Its transaction.
    pub txid: [u8; 32],
    /// That transaction's index.
    pub tx_index: u32,
    /// The event's index in the block.
    pub event_index: u32,
    /// Which contract printed it (`ContractName` code: 0 consent, 1 records).
    pub contract: u8,
    /// The printed value, Clarity wire bytes.
    #[serde(with = "bytes")]
    pub raw_value: Vec<u8>,
}

/// `txs` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxRow {
    /// The block.
    pub block: [u8; 32],
    /// Its height.
    pub height: u64,
    /// Position.
    pub tx_index: u32,
    /// Status.
    pub status: String,
    /// Result bytes.
    #[serde(with = "bytes")]
    pub raw_result: Vec<u8>,
}

/// `events` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRow {
    /// The block.
    pub block: [u8; 32],
    /// Its transaction.
    pub txid: [u8; 32],
    /// Contract code (0 consent, 1 records).
    pub contract: u8,
    /// The printed value.
    #[serde(with = "bytes")]
    pub raw_value: Vec<u8>,
}

/// `patients` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors the contract's `patients` map.
pub struct PatientRow {
    pub patient_id: [u8; 32],
    #[serde(with = "opt_pbin")]
    pub emergency_contact: Option<Principal>,
    #[serde(with = "opt_pbin")]
    pub primary_physician: Option<Principal>,
    pub emergency_mental_health: bool,
    pub emergency_genetic: bool,
    pub deceased: bool,
    pub registered_at: u64,
    pub updated_at: u64,
    pub history_len: u64,
}

/// `consents` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsentRow {
    /// The provider (also in the key; here so a scan needs no key parsing).
    #[serde(with = "pbin")]
    pub provider: Principal,
    /// Data type code.
    pub data_type: u8,
    /// Burn height of the grant.
    pub granted_at: u64,
    /// Exclusive end, if any.
    pub expires_at: Option<u64>,
    /// Burn height of the revocation, if revoked.
    pub revoked_at: Option<u64>,
    /// History seq of the grant.
    pub seq: u64,
    /// The granting transaction.
    pub txid: [u8; 32],
    /// Its Stacks height.
    pub height: u64,
}

/// `history` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors `consent-history`, plus where it happened.
pub struct HistoryRow {
    pub action: u8,
    #[serde(with = "pbin")]
    pub actor: Principal,
    #[serde(with = "opt_pbin")]
    pub provider: Option<Principal>,
    pub data_type: Option<u8>,
    pub at: u64,
    pub expires_at: Option<u64>,
    pub txid: [u8; 32],
    pub height: u64,
}

/// `overrides` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors `emergency-overrides`.
pub struct OverrideRow {
    pub reason: u8,
    pub started_at: u64,
    pub expires_at: u64,
    pub seq: u64,
}

/// `providers` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors record-management `providers`.
pub struct ProviderRow {
    pub credential_hash: [u8; 32],
    pub active: bool,
    pub registered_at: u64,
}

/// `access` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors `provider-access`.
pub struct AccessRow {
    pub level: u8,
    pub granted_at: u64,
    pub expires_at: Option<u64>,
}

/// `records` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors `records`, plus where it was created.
pub struct RecordRow {
    #[serde(with = "pbin")]
    pub patient: Principal,
    pub record_type: u8,
    pub data_type: u8,
    pub data_hash: [u8; 32],
    pub encryption_key_id: Option<[u8; 32]>,
    pub confidentiality: u8,
    #[serde(with = "pbin")]
    pub created_by: Principal,
    pub created_at: u64,
    pub created_height: u64,
    pub created_time: u64,
    pub version: u64,
    #[serde(with = "pbin")]
    pub updated_by: Principal,
    pub updated_at: u64,
    pub status: u8,
    pub finalized: bool,
    pub retention_until: u64,
}

/// `versions` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)] // Mirrors `record-versions`, plus where it happened.
pub struct VersionRow {
    pub data_hash: [u8; 32],
    pub encryption_key_id: Option<[u8; 32]>,
    #[serde(with = "pbin")]
    pub author: Principal,
    pub at: u64,
    pub change: u8,
    pub txid: [u8; 32],
    pub height: u64,
    pub block: [u8; 32],
}

/// `by_patient` value: what filters need without reading the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PatientRecordRow {
    pub record_type: u8,
    #[serde(with = "pbin")]
    pub created_by: Principal,
    pub created_time: u64,
}

/// `anchors` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AnchorRow {
    #[serde(with = "pbin")]
    pub by: Principal,
    pub at: u64,
    pub txid: [u8; 32],
    pub height: u64,
    pub block: [u8; 32],
}

/// `batches` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct BatchRow {
    #[serde(with = "pbin")]
    pub submitter: Principal,
    pub leaf_count: u64,
    pub at: u64,
    pub txid: [u8; 32],
    pub height: u64,
}

/// `audit_roots` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AuditRootRow {
    pub root: [u8; 32],
    pub at: u64,
    pub txid: [u8; 32],
    pub height: u64,
}

/// `activity` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ActivityRow {
    pub event: String,
    #[serde(with = "opt_pbin")]
    pub patient: Option<Principal>,
    pub record_id: Option<[u8; 16]>,
    pub data_type: Option<u8>,
    pub at: u64,
    pub txid: [u8; 32],
}

/// The undo log of one block: each derived key it wrote, with the value
/// before (None = absent). Restored in reverse order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UndoLog {
    /// (family tag, key, previous value).
    #[serde(with = "undo_entries")]
    pub entries: Vec<(u8, Vec<u8>, Option<Vec<u8>>)>,
}

/// Settings keys.
pub mod setting {
    /// `[0|1]`.
    pub const PAUSED: &[u8] = b"paused";
    /// u64 BE.
    pub const EMERGENCY_TIMEOUT: &[u8] = b"emergency_timeout";
    /// u64 BE.
    pub const RETENTION: &[u8] = b"retention";
    /// Principal string.
    pub const CONSENT_OWNER: &[u8] = b"consent_owner";
    /// Principal string.
    pub const RECORDS_OWNER: &[u8] = b"records_owner";
}

/// Meta keys.
pub mod meta {
    /// The schema version, ASCII decimal ([`super::SCHEMA_VERSION`]).
    pub const SCHEMA: &[u8] = b"schema";
    /// Index block hash of the canonical tip.
    pub const TIP: &[u8] = b"tip";
    /// [`super::BlockHeader`] of the canonical tip, written with [`TIP`].
    pub const TIP_HEADER: &[u8] = b"tip_header";
    /// Last burn block: height (u64 BE) ‖ hash.
    pub const BURN: &[u8] = b"burn";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_row_decodes_as_its_header() {
        let row = BlockRow {
            height: 7,
            id: [1; 32],
            parent: [2; 32],
            burn_block_height: 1_234_567,
            time: 1_700_000_000,
            txs: vec![TxEntry { txid: [3; 32], tx_index: 0, status: "success".into(), raw_result: vec![7, 3, 1] }],
            events: vec![EventEntry {
                txid: [3; 32],
                tx_index: 0,
                event_index: 0,
                contract: 1,
                raw_value: vec![9; 300],
            }],
        };
        let header: BlockHeader = decode("blocks", &encode(&row)).expect("header");
        assert_eq!(BlockHeader::from(&row), header);
        let expected =
            BlockHeader { height: 7, id: [1; 32], parent: [2; 32], burn_block_height: 1_234_567, time: 1_700_000_000 };
        assert_eq!(header, expected);
    }

    /// The byte-string (de)serializers write what plain `Vec<u8>` fields
    /// would: the on-disk encoding did not change with them.
    #[test]
    fn byte_fields_encode_as_plain_vectors_do() {
        #[derive(Serialize)]
        struct PlainEvent {
            block: [u8; 32],
            txid: [u8; 32],
            contract: u8,
            raw_value: Vec<u8>,
        }
        let raw_value: Vec<u8> = (0..=255).collect();
        let row = EventRow { block: [1; 32], txid: [2; 32], contract: 1, raw_value: raw_value.clone() };
        let plain = PlainEvent { block: [1; 32], txid: [2; 32], contract: 1, raw_value };
        assert_eq!(encode(&row), encode(&plain));
        assert_eq!(decode::<EventRow>("events", &encode(&plain)).expect("decodes"), row);

        let entries = vec![(3, vec![1, 2, 3], None), (9, vec![0; 40], Some((0..200).collect::<Vec<u8>>()))];
        let log = UndoLog { entries: entries.clone() };
        assert_eq!(encode(&log), encode(&(entries,)));
        assert_eq!(decode::<UndoLog>("undo", &encode(&log)).expect("decodes"), log);
    }
}
