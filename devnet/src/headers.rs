//! Block headers of the devnet chain and the Clarity VM's view of them
//! (`HeadersDB`, `BurnStateDB`): block info for `get-block-info?` and the
//! burn height behind `burn-block-height`.

use std::collections::HashMap;

use clarity_repl::clarity::stacks_common::types::chainstate::{
    BlockHeaderHash, BurnchainHeaderHash, ConsensusHash, SortitionId, StacksAddress, StacksBlockId, VRFSeed,
};
use clarity_repl::clarity::stacks_common::types::StacksEpochId;
use clarity_repl::clarity::vm::ast::ASTRules;
use clarity_repl::clarity::vm::costs::ExecutionCost;
use clarity_repl::clarity::vm::database::{BurnStateDB, HeadersDB};
use clarity_repl::clarity::vm::types::TupleData;
use clarity_repl::clarity::vm::StacksEpoch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512_256};

/// The mainnet block budget since Stacks 2.1.
pub const BLOCK_LIMIT: ExecutionCost = ExecutionCost {
    write_length: 15_000_000,
    write_count: 15_000,
    read_length: 100_000_000,
    read_count: 15_000,
    runtime: 5_000_000_000,
};

/// The epoch the devnet runs (the newest the VM knows with Clarity 2).
pub const EPOCH: StacksEpochId = StacksEpochId::Epoch24;

/// A mined block's header. Hashes are SHA-512/256, as Stacks uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Stacks block height (genesis is 0).
    pub height: u64,
    /// Hash of the block's header fields and transaction ids.
    #[serde(with = "hex32")]
    pub block_hash: [u8; 32],
    /// `SHA-512/256(block_hash ‖ consensus_hash)`: the block's unique id.
    #[serde(with = "hex32")]
    pub index_block_hash: [u8; 32],
    /// The parent's `block_hash` (zeros for genesis).
    #[serde(with = "hex32")]
    pub parent_block_hash: [u8; 32],
    /// The parent's `index_block_hash` (zeros for genesis).
    #[serde(with = "hex32")]
    pub parent_index_block_hash: [u8; 32],
    /// The burn block this block was mined in.
    pub burn_block_height: u32,
    /// That burn block's hash (derived: the devnet has no Bitcoin).
    #[serde(with = "hex32")]
    pub burn_block_hash: [u8; 32],
    /// That burn block's time (unix seconds).
    pub burn_block_time: u64,
    /// Consensus hash of the burn block (its first 20 bytes, derived).
    #[serde(with = "hex20")]
    pub consensus_hash: [u8; 20],
    /// Unix seconds when the block was mined.
    pub timestamp: u64,
}

impl Header {
    /// Computes the hashes of a block from its fields and transaction ids.
    pub fn seal(
        height: u64,
        parent: Option<&Header>,
        burn_block_height: u32,
        timestamp: u64,
        txids: &[[u8; 32]],
    ) -> Header {
        let burn_block_hash: [u8; 32] = Sha512_256::digest(format!("medanchor-devnet-burn-{burn_block_height}")).into();
        let mut consensus_hash = [0u8; 20];
        consensus_hash.copy_from_slice(&Sha512_256::digest(burn_block_hash)[..20]);
        let (parent_block_hash, parent_index_block_hash) =
            parent.map(|p| (p.block_hash, p.index_block_hash)).unwrap_or_default();
        let mut h = Sha512_256::new();
        h.update(height.to_be_bytes());
        h.update(parent_block_hash);
        h.update(burn_block_hash);
        h.update(timestamp.to_be_bytes());
        for txid in txids {
            h.update(txid);
        }
        let block_hash: [u8; 32] = h.finalize().into();
        let mut h = Sha512_256::new();
        h.update(block_hash);
        h.update(consensus_hash);
        let index_block_hash: [u8; 32] = h.finalize().into();
        Header {
            height,
            block_hash,
            index_block_hash,
            parent_block_hash,
            parent_index_block_hash,
            burn_block_height,
            burn_block_hash,
            burn_block_time: timestamp,
            consensus_hash,
            timestamp,
        }
    }

    /// The block id as the VM knows it.
    pub fn block_id(&self) -> StacksBlockId {
        StacksBlockId(self.index_block_hash)
    }
}

/// The headers the VM may ask about: every mined block.
#[derive(Debug, Default)]
pub struct HeaderIndex {
    headers: Vec<Header>,
    by_id: HashMap<[u8; 32], usize>,
    by_burn: HashMap<[u8; 32], usize>,
    /// Block ids by height, the form the backing store wants.
    pub ids: Vec<StacksBlockId>,
}

impl HeaderIndex {
    /// Appends a mined block's header.
    pub fn push(&mut self, header: Header) {
        let i = self.headers.len();
        self.by_id.insert(header.index_block_hash, i);
        self.by_burn.insert(header.burn_block_hash, i);
        self.ids.push(header.block_id());
        self.headers.push(header);
    }

    /// The tip, if any block was mined.
    pub fn tip(&self) -> Option<&Header> {
        self.headers.last()
    }

    /// The header at `height`.
    pub fn at(&self, height: u64) -> Option<&Header> {
        self.headers.get(usize::try_from(height).ok()?)
    }

    /// The header with this index block hash.
    pub fn by_id(&self, id: &[u8; 32]) -> Option<&Header> {
        self.by_id.get(id).map(|&i| &self.headers[i])
    }

    /// How many blocks there are.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether no block was mined yet.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    fn get(&self, id: &StacksBlockId) -> Option<&Header> {
        self.by_id(&id.0)
    }

    fn by_sortition(&self, id: &SortitionId) -> Option<&Header> {
        self.by_burn.get(&id.0).map(|&i| &self.headers[i])
    }
}

impl HeadersDB for HeaderIndex {
    fn get_stacks_block_header_hash_for_block(&self, id: &StacksBlockId) -> Option<BlockHeaderHash> {
        self.get(id).map(|h| BlockHeaderHash(h.block_hash))
    }
    fn get_burn_header_hash_for_block(&self, id: &StacksBlockId) -> Option<BurnchainHeaderHash> {
        self.get(id).map(|h| BurnchainHeaderHash(h.burn_block_hash))
    }
    fn get_consensus_hash_for_block(&self, id: &StacksBlockId) -> Option<ConsensusHash> {
        self.get(id).map(|h| ConsensusHash(h.consensus_hash))
    }
    fn get_vrf_seed_for_block(&self, id: &StacksBlockId) -> Option<VRFSeed> {
        self.get(id).map(|h| VRFSeed(Sha512_256::digest(h.block_hash).into()))
    }
    fn get_burn_block_time_for_block(&self, id: &StacksBlockId) -> Option<u64> {
        self.get(id).map(|h| h.burn_block_time)
    }
    fn get_burn_block_height_for_block(&self, id: &StacksBlockId) -> Option<u32> {
        self.get(id).map(|h| h.burn_block_height)
    }
    fn get_miner_address(&self, id: &StacksBlockId) -> Option<StacksAddress> {
        self.get(id).map(|_| StacksAddress::burn_address(false))
    }
    fn get_burnchain_tokens_spent_for_block(&self, id: &StacksBlockId) -> Option<u128> {
        self.get(id).map(|_| 0)
    }
    fn get_burnchain_tokens_spent_for_winning_block(&self, id: &StacksBlockId) -> Option<u128> {
        self.get(id).map(|_| 0)
    }
    fn get_tokens_earned_for_block(&self, id: &StacksBlockId) -> Option<u128> {
        self.get(id).map(|_| 0)
    }
}

impl BurnStateDB for HeaderIndex {
    fn get_v1_unlock_height(&self) -> u32 {
        0
    }
    fn get_v2_unlock_height(&self) -> u32 {
        0
    }
    fn get_pox_3_activation_height(&self) -> u32 {
        0
    }
    fn get_burn_block_height(&self, id: &SortitionId) -> Option<u32> {
        self.by_sortition(id).map(|h| h.burn_block_height)
    }
    fn get_burn_start_height(&self) -> u32 {
        0
    }
    fn get_pox_prepare_length(&self) -> u32 {
        50
    }
    fn get_pox_reward_cycle_length(&self) -> u32 {
        1050
    }
    fn get_pox_rejection_fraction(&self) -> u64 {
        25
    }
    fn get_burn_header_hash(&self, height: u32, _id: &SortitionId) -> Option<BurnchainHeaderHash> {
        self.headers
            .iter()
            .rev()
            .find(|h| h.burn_block_height == height)
            .map(|h| BurnchainHeaderHash(h.burn_block_hash))
    }
    fn get_sortition_id_from_consensus_hash(&self, ch: &ConsensusHash) -> Option<SortitionId> {
        self.headers.iter().rev().find(|h| h.consensus_hash == ch.0).map(|h| SortitionId(h.burn_block_hash))
    }
    fn get_stacks_epoch(&self, _height: u32) -> Option<StacksEpoch> {
        Some(epoch(EPOCH))
    }
    fn get_stacks_epoch_by_epoch_id(&self, id: &StacksEpochId) -> Option<StacksEpoch> {
        Some(epoch(*id))
    }
    fn get_ast_rules(&self, _height: u32) -> ASTRules {
        ASTRules::PrecheckSize
    }
    fn get_pox_payout_addrs(&self, _height: u32, _id: &SortitionId) -> Option<(Vec<TupleData>, u128)> {
        Some((Vec::new(), 0))
    }
}

fn epoch(epoch_id: StacksEpochId) -> StacksEpoch {
    StacksEpoch {
        epoch_id,
        start_height: 0,
        end_height: u64::MAX,
        block_limit: BLOCK_LIMIT,
        network_epoch: 0x09, // the peer network epoch of Stacks 2.4
    }
}

macro_rules! hex_array {
    ($module:ident, $n:literal) => {
        mod $module {
            use serde::{Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(bytes: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(bytes))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
                v.try_into().map_err(|_| serde::de::Error::custom("wrong length"))
            }
        }
    };
}
hex_array!(hex32, 32);
hex_array!(hex20, 20);
