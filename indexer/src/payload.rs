//! The stacks-node event-observer payloads, as the node sends them.
//!
//! Only what the indexer reads is declared; every other field is ignored,
//! so payloads of any node version parse (2.0-era `contract_abi` and
//! `contract_event.value`, 3.x `contract_interface`, `vm_error` and signer
//! fields). Fields that old nodes omit default rather than fail.

use serde::Deserialize;

use crate::{Error, Result};

/// `POST /new_block`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewBlock {
    /// Block hash (`0x` hex).
    pub block_hash: String,
    /// Stacks height.
    pub block_height: u64,
    /// Unix time of the block (Nakamoto), if the node sends it.
    #[serde(default)]
    pub block_time: Option<u64>,
    /// The burn block it was mined in.
    #[serde(default)]
    pub burn_block_hash: String,
    /// Its height.
    pub burn_block_height: u64,
    /// Its time (unix seconds).
    #[serde(default)]
    pub burn_block_time: u64,
    /// The block's id across forks: the primary key.
    pub index_block_hash: String,
    /// The parent's id.
    pub parent_index_block_hash: String,
    /// Transactions in block order.
    #[serde(default)]
    pub transactions: Vec<Tx>,
    /// Events, in any order (sort by `event_index`).
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One transaction of a block.
#[derive(Debug, Clone, Deserialize)]
pub struct Tx {
    /// `0x` txid.
    pub txid: String,
    /// Position in the block.
    pub tx_index: u32,
    /// `success`, `abort_by_response`, `abort_by_post_condition`, `problematic_skipped`.
    pub status: String,
    /// The result (`0x` Clarity hex).
    #[serde(default)]
    pub raw_result: String,
    /// The transaction (`0x00` for Bitcoin-originated operations).
    #[serde(default)]
    pub raw_tx: String,
    /// The VM's error, when it had one (3.1.0.0.9+).
    #[serde(default)]
    pub vm_error: Option<String>,
}

/// One event.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// The transaction it belongs to.
    pub txid: String,
    /// Its index in the block.
    pub event_index: u32,
    /// False for events of a rolled-back transaction (never sent today).
    #[serde(default = "yes")]
    pub committed: bool,
    /// `contract_event`, `stx_transfer_event`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// For `contract_event`.
    #[serde(default)]
    pub contract_event: Option<ContractEventBody>,
}

fn yes() -> bool {
    true
}

/// The body of a `contract_event`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContractEventBody {
    /// `address.name` of the emitting contract.
    pub contract_identifier: String,
    /// `print` for `(print …)`.
    pub topic: String,
    /// The printed value (`0x` Clarity hex).
    #[serde(default)]
    pub raw_value: Option<String>,
}

/// `POST /new_burn_block`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewBurnBlock {
    /// The burn block's hash.
    pub burn_block_hash: String,
    /// Its height.
    pub burn_block_height: u64,
}

/// Decodes `0x`-prefixed (or bare) hex of exactly `N` bytes.
pub fn hex_bytes<const N: usize>(field: &str, s: &str) -> Result<[u8; N]> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    if !decode_hex(digits.as_bytes(), &mut out) {
        return Err(Error::Payload(format!("{field} must be {N} bytes of hex, got {s:?}")));
    }
    Ok(out)
}

/// Hex digit values; 0xff for anything else.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes `digits` (upper or lower case, no prefix) into `out`, which
/// must be exactly half as long; false if the length or a digit is wrong.
/// A table lookup per digit: payloads are mostly hex, and this is several
/// times faster than the `hex` crate's checked decoding.
pub(crate) fn decode_hex(digits: &[u8], out: &mut [u8]) -> bool {
    if digits.len() != 2 * out.len() {
        return false;
    }
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (HEX_DIGITS[usize::from(pair[0])], HEX_DIGITS[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | low;
    }
    // Valid digits are below 16; 0xff marks anything else.
    invalid < 16
}

impl NewBlock {
    /// Parses a `/new_block` body.
    pub fn parse(body: &[u8]) -> Result<NewBlock> {
        serde_json::from_slice(body).map_err(|e| Error::Payload(format!("/new_block: {e}")))
    }

    /// The block's id.
    pub fn id(&self) -> Result<[u8; 32]> {
        hex_bytes("index_block_hash", &self.index_block_hash)
    }

    /// The parent's id.
    pub fn parent_id(&self) -> Result<[u8; 32]> {
        hex_bytes("parent_index_block_hash", &self.parent_index_block_hash)
    }
}
