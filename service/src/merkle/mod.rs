//! RFC 6962 / RFC 9162 Merkle trees for the tamper-evident audit log.
//!
//! Read in this order:
//!
//! 1. Hashing ([`leaf_hash`], [`node_hash`], [`empty_root`]): the domain-separated
//!    SHA-256 of RFC 9162 §2.1.1, so a leaf can never be passed off as an
//!    interior node or the other way round.
//! 2. The incremental tree ([`NodeStore`], [`append`], [`root`],
//!    [`inclusion_proof`], [`consistency_proof`]): the log stores only the hashes
//!    of complete, aligned subtrees; everything else is composed on demand in
//!    O(log n) node reads. [`MemoryStore`] is an in-memory [`NodeStore`].
//! 3. [`proof`]: checking inclusion and consistency proofs with the RFC 9162
//!    §2.1.3.2 and §2.1.4.2 algorithms.
//! 4. [`checkpoint`]: signed tree heads in the C2SP `tlog-checkpoint` /
//!    `signed-note` format with Ed25519.
//!
//! What this module does **not** do: IO. It never opens a database or a socket;
//! the audit log's storage implements [`NodeStore`] and persists what
//! [`append`] returns, in the same write as the entry itself.
//!
//! # Node addressing
//!
//! The node at `(level, index)` is the root of the complete subtree over the
//! leaves `[index · 2^level, (index + 1) · 2^level)`; level 0 holds the leaf
//! hashes. Such a node exists once the tree has at least `(index + 1) · 2^level`
//! leaves and never changes afterwards, which is why a log can store it forever
//! and why nothing else needs storing: a tree of any size is a sequence of at
//! most 64 complete subtrees (one per set bit of the size), read left to right.

use std::collections::HashMap;
use std::convert::Infallible;

use sha2::{Digest, Sha256};

pub mod checkpoint;
pub mod proof;

pub use checkpoint::{key_id, sign, verify_note, Checkpoint, CheckpointError};
pub use proof::{verify_consistency, verify_inclusion, ProofError};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// A complete node as [`append`] creates it: `(level, index, hash)`.
pub type Node = (u8, u64, Hash);

/// Prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// The hash of a log entry as a leaf: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n`, where RFC 9162 §2.1.1 splits a
/// tree of `n` leaves into its left (complete) and right subtrees.
///
/// Only meaningful for `n >= 2`; every caller splits ranges of at least two
/// leaves.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "a tree of {n} leaves has no split");
    1 << (63 - (n - 1).leading_zeros())
}

/// Read access to the stored hashes of complete, aligned subtrees.
///
/// `node(level, index)` returns the hash of the subtree over the leaves
/// `[index · 2^level, (index + 1) · 2^level)` if it has been stored, and
/// `Ok(None)` if it has not. The functions in this module only ask for nodes
/// that are complete in the tree size they are given, so `Ok(None)` there means
/// the caller's size is ahead of the store (reported as
/// [`TreeError::MissingNode`]).
pub trait NodeStore {
    /// Why a read failed (the storage engine's error).
    type Error: std::error::Error + 'static;

    /// The stored hash of the complete subtree at `(level, index)`.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;
}

impl<S: NodeStore + ?Sized> NodeStore for &S {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        (**self).node(level, index)
    }
}

/// Why a tree operation failed.
///
/// [`TreeError::IndexOutOfRange`] and [`TreeError::SizeDecreased`] are the
/// caller's doing (a bad request); [`TreeError::Store`],
/// [`TreeError::MissingNode`] and [`TreeError::TreeFull`] are ours (a storage
/// failure or a size that the store does not back).
#[derive(Debug, thiserror::Error)]
pub enum TreeError<E> {
    /// The node store failed to read.
    #[error("node store read failed")]
    Store(#[source] E),
    /// A node that must exist for the given tree size is not in the store.
    #[error("node at level {level}, index {index} is missing from the store")]
    MissingNode {
        /// Level of the missing node.
        level: u8,
        /// Index of the missing node within its level.
        index: u64,
    },
    /// An inclusion proof was requested for a leaf the tree does not have.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was requested from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeDecreased {
        /// The older (claimed smaller) size.
        old_size: u64,
        /// The newer (claimed larger) size.
        new_size: u64,
    },
    /// The tree already has `u64::MAX` leaves; its size would overflow.
    #[error("the tree is full: its size cannot exceed u64::MAX")]
    TreeFull,
}

/// Reads a node that must exist.
fn read<S: NodeStore + ?Sized>(store: &S, level: u8, index: u64) -> Result<Hash, TreeError<S::Error>> {
    store.node(level, index).map_err(TreeError::Store)?.ok_or(TreeError::MissingNode { level, index })
}

/// The Merkle tree hash of the leaves `[start, end)`, composed from stored
/// complete subtrees.
///
/// The range must be one RFC 9162 recursion produces: `start` is a multiple of
/// the smallest power of two that is at least `end - start`. Then the range is
/// exactly one complete subtree per set bit of its length, largest first, and
/// the RFC's recursion reduces to hashing them together from the right. That
/// costs one read per set bit, i.e. at most 64.
fn range_hash<S: NodeStore + ?Sized>(store: &S, start: u64, end: u64) -> Result<Hash, TreeError<S::Error>> {
    debug_assert!(start <= end);
    let mut remaining = end - start;
    let mut right_edge = end;
    let mut acc: Option<Hash> = None;
    // The lowest set bit of the length is the rightmost (smallest) subtree;
    // folding from the right reproduces MTH's right-leaning shape.
    while remaining != 0 {
        let level = remaining.trailing_zeros();
        let width = 1u64 << level;
        let node_start = right_edge - width;
        debug_assert_eq!(node_start % width, 0, "[{start}, {end}) is not an RFC 9162 subtree");
        // `level` is below 64, so it fits a u8.
        let node = read(store, level as u8, node_start >> level)?;
        acc = Some(match acc {
            None => node,
            Some(right) => node_hash(&node, &right),
        });
        remaining -= width;
        right_edge = node_start;
    }
    // An empty range is the empty tree; no caller asks for one, but that is
    // its hash by definition.
    Ok(acc.unwrap_or_else(empty_root))
}

/// Appends leaf number `size_before` (zero-based) with hash `leaf_hash` and
/// returns the complete nodes this creates, bottom-up, as
/// `(level, index, hash)`.
///
/// The caller persists every returned node; the store must already hold the
/// complete nodes of the tree of `size_before` leaves. The first element is
/// always the leaf itself at `(0, size_before)`; one more node follows for each
/// subtree the new leaf completes (amortised one, at most 63).
pub fn append<S: NodeStore + ?Sized>(
    size_before: u64,
    leaf_hash: Hash,
    store: &S,
) -> Result<Vec<Node>, TreeError<S::Error>> {
    // The size after the append must itself be a u64.
    if size_before == u64::MAX {
        return Err(TreeError::TreeFull);
    }
    let mut created = Vec::with_capacity(size_before.trailing_ones() as usize + 1);
    let (mut level, mut index, mut hash) = (0u8, size_before, leaf_hash);
    created.push((level, index, hash));
    // An odd index is a right child: its left sibling is already stored, and
    // together they complete their parent.
    while index & 1 == 1 {
        let left = read(store, level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        created.push((level, index, hash));
    }
    Ok(created)
}

/// The root hash of the tree of the first `size` leaves (RFC 9162 §2.1.1).
pub fn root<S: NodeStore + ?Sized>(size: u64, store: &S) -> Result<Hash, TreeError<S::Error>> {
    range_hash(store, 0, size)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size`
/// leaves, bottom-up as RFC 9162 §2.1.3.1 orders it.
pub fn inclusion_proof<S: NodeStore + ?Sized>(
    index: u64,
    size: u64,
    store: &S,
) -> Result<Vec<Hash>, TreeError<S::Error>> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    // Walk the RFC's PATH recursion from the root down, recording the sibling
    // of each subtree that holds the leaf. Only the right-edge sibling may be
    // incomplete, and only once (after the walk turns left, every range is a
    // complete subtree), so this stays O(log n) reads.
    let mut proof = Vec::new();
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let mid = start + split_point(end - start);
        if index < mid {
            proof.push(range_hash(store, mid, end)?);
            end = mid;
        } else {
            proof.push(range_hash(store, start, mid)?);
            start = mid;
        }
    }
    // PATH appends the sibling after the sub-path, so the RFC order is ours
    // reversed.
    proof.reverse();
    Ok(proof)
}

/// The consistency proof between the trees of `old_size` and `new_size` leaves
/// (RFC 9162 §2.1.4.1), in the RFC's order.
///
/// It is empty when `old_size` is 0 or equal to `new_size`: those pairs are
/// consistent by definition.
pub fn consistency_proof<S: NodeStore + ?Sized>(
    old_size: u64,
    new_size: u64,
    store: &S,
) -> Result<Vec<Hash>, TreeError<S::Error>> {
    if old_size > new_size {
        return Err(TreeError::SizeDecreased { old_size, new_size });
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    // The RFC's SUBPROOF(m, D[start:end], b) recursion, walked top-down.
    // `old_is_root` is b: whether the verifier already holds this subtree's hash
    // as the old root, true until the walk first turns right.
    let (mut start, mut end, mut old_is_root) = (0, new_size, true);
    // Invariant: start < old_size <= end, so the loop ends at a single leaf at
    // the latest, before a split of fewer than two leaves is needed.
    while old_size != end {
        let mid = start + split_point(end - start);
        if old_size <= mid {
            proof.push(range_hash(store, mid, end)?);
            end = mid;
        } else {
            proof.push(range_hash(store, start, mid)?);
            start = mid;
            old_is_root = false;
        }
    }
    if !old_is_root {
        proof.push(range_hash(store, start, end)?);
    }
    // SUBPROOF appends this level's node after the deeper ones.
    proof.reverse();
    Ok(proof)
}

/// An in-memory [`NodeStore`]: for tests, tools, and logs small enough to
/// rebuild at start-up.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    nodes: HashMap<(u8, u64), Hash>,
}

impl MemoryStore {
    /// An empty store (the tree of size 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the node at `(level, index)`, replacing any previous hash.
    pub fn insert(&mut self, level: u8, index: u64, hash: Hash) {
        self.nodes.insert((level, index), hash);
    }

    /// The number of stored nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Accepts [`append`]'s output directly.
impl Extend<Node> for MemoryStore {
    fn extend<I: IntoIterator<Item = Node>>(&mut self, iter: I) {
        for (level, index, hash) in iter {
            self.insert(level, index, hash);
        }
    }
}

impl NodeStore for MemoryStore {
    /// Memory reads cannot fail.
    type Error = Infallible;

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        Ok(self.nodes.get(&(level, index)).copied())
    }
}

/// Shared by the tests of this module and its children: the RFC test inputs
/// and a naive reference implementation that follows the RFC's recursive
/// definitions literally, against which the incremental tree is checked.
#[cfg(test)]
mod testutil {
    use super::*;

    /// Decodes a hex string the test itself spells out.
    pub(crate) fn h(digits: &str) -> Hash {
        let bytes = hex::decode(digits).expect("test hex is valid");
        bytes.try_into().expect("test hash is 32 bytes")
    }

    /// The RFC 6962 test leaves, as used by google/certificate-transparency and
    /// transparency-dev/merkle (`testonly/constants.go`, `LeafInputs`).
    pub(crate) fn rfc_leaves() -> Vec<Vec<u8>> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|leaf| hex::decode(leaf).expect("test hex is valid"))
            .collect()
    }

    /// `n` distinct, deterministic entries for the property tests.
    pub(crate) fn entries(n: u64) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("audit entry {i}").into_bytes()).collect()
    }

    /// A store holding the tree of `entries`, built only through [`append`].
    pub(crate) fn build(entries: &[Vec<u8>]) -> MemoryStore {
        let mut store = MemoryStore::new();
        for (size, entry) in (0u64..).zip(entries) {
            let created = append(size, leaf_hash(entry), &store).expect("append to a consistent store");
            store.extend(created);
        }
        store
    }

    fn ref_split(n: usize) -> usize {
        // Deliberately not `split_point`: the reference must not share code
        // with the implementation it checks.
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]), RFC 9162 §2.1.1.
    pub(crate) fn ref_root(entries: &[Vec<u8>]) -> Hash {
        match entries {
            [] => empty_root(),
            [entry] => leaf_hash(entry),
            _ => {
                let k = ref_split(entries.len());
                node_hash(&ref_root(&entries[..k]), &ref_root(&entries[k..]))
            }
        }
    }

    /// PATH(m, D[n]), RFC 9162 §2.1.3.1.
    pub(crate) fn ref_inclusion(entries: &[Vec<u8>], m: usize) -> Vec<Hash> {
        if entries.len() <= 1 {
            return Vec::new();
        }
        let k = ref_split(entries.len());
        if m < k {
            let mut path = ref_inclusion(&entries[..k], m);
            path.push(ref_root(&entries[k..]));
            path
        } else {
            let mut path = ref_inclusion(&entries[k..], m - k);
            path.push(ref_root(&entries[..k]));
            path
        }
    }

    /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 9162 §2.1.4.1.
    pub(crate) fn ref_consistency(entries: &[Vec<u8>], m: usize) -> Vec<Hash> {
        if m == 0 || m == entries.len() {
            return Vec::new();
        }
        ref_subproof(entries, m, true)
    }

    fn ref_subproof(entries: &[Vec<u8>], m: usize, b: bool) -> Vec<Hash> {
        let n = entries.len();
        if m == n {
            return if b { Vec::new() } else { vec![ref_root(entries)] };
        }
        let k = ref_split(n);
        if m <= k {
            let mut proof = ref_subproof(&entries[..k], m, b);
            proof.push(ref_root(&entries[k..]));
            proof
        } else {
            let mut proof = ref_subproof(&entries[k..], m - k, false);
            proof.push(ref_root(&entries[..k]));
            proof
        }
    }

    // Known answers from github.com/transparency-dev/merkle:
    // `testonly/constants.go` (RootHashes, NodeHashes; commit 582a6ad1),
    // `testonly/reference_test.go` (TestRefInclusionProof,
    // TestRefConsistencyProof; commit 141d627e) and `proof/verify_test.go`
    // (the (2, 3) inclusion and (6, 7) consistency vectors; commit 02194e9a).

    /// Roots of the trees of the first 0..=8 RFC test leaves.
    pub(crate) const RFC_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Every complete node of the 8-leaf tree, `[level][index]`.
    pub(crate) const RFC_NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    /// `(index, size, proof)` over the RFC test leaves.
    pub(crate) const RFC_INCLUSION: &[(u64, u64, &[&str])] = &[
        (0, 1, &[]),
        (0, 2, &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
        (1, 2, &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    /// `(old_size, new_size, proof)` over the RFC test leaves.
    pub(crate) const RFC_CONSISTENCY: &[(u64, u64, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    pub(crate) fn hashes(digits: &[&str]) -> Vec<Hash> {
        digits.iter().map(|d| h(d)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use std::cell::Cell;

    /// A store that counts its reads, to pin the O(log n) cost.
    struct Counting<'a> {
        inner: &'a MemoryStore,
        reads: Cell<u32>,
    }

    impl NodeStore for Counting<'_> {
        type Error = Infallible;

        fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
            self.reads.set(self.reads.get() + 1);
            self.inner.node(level, index)
        }
    }

    /// The tree whose every leaf is the empty entry: the node at level `l` is
    /// the same for every index, so a store can answer for trees far too big to
    /// build, and the root of any size has a cheap independent recursion.
    struct Uniform {
        levels: Vec<Hash>,
    }

    impl Uniform {
        fn new() -> Self {
            let mut levels = vec![leaf_hash(b"")];
            for level in 1..64 {
                let below = levels[level - 1];
                levels.push(node_hash(&below, &below));
            }
            Self { levels }
        }

        /// MTH of `n` identical leaves, following the RFC's recursion.
        fn root(&self, n: u64) -> Hash {
            if n.is_power_of_two() {
                return self.levels[n.trailing_zeros() as usize];
            }
            let k = 1u64 << (63 - n.leading_zeros());
            node_hash(&self.levels[k.trailing_zeros() as usize], &self.root(n - k))
        }
    }

    impl NodeStore for Uniform {
        type Error = Infallible;

        fn node(&self, level: u8, _index: u64) -> Result<Option<Hash>, Infallible> {
            Ok(self.levels.get(usize::from(level)).copied())
        }
    }

    #[test]
    fn hashing_matches_rfc_definitions() {
        assert_eq!(empty_root(), h(RFC_ROOTS[0]));
        // A one-leaf tree's root is its leaf hash.
        assert_eq!(leaf_hash(b""), h(RFC_ROOTS[1]));
        assert_eq!(node_hash(&h(RFC_NODES[0][0]), &h(RFC_NODES[0][1])), h(RFC_NODES[1][0]));
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        // Cases from transparency-dev/merkle TestDownToPowerOfTwo, plus the
        // edges of u64.
        for (n, want) in [(2, 1), (3, 2), (4, 2), (5, 4), (7, 4), (8, 4), (9, 8), (63, 32), (28937, 16384)] {
            assert_eq!(split_point(n), want, "split_point({n})");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
        assert_eq!(split_point(1 << 63), 1 << 62);
    }

    #[test]
    fn known_roots_of_rfc_leaves() {
        let leaves = rfc_leaves();
        let store = build(&leaves);
        for (size, want) in (0u64..).zip(RFC_ROOTS) {
            let got = root(size, &store).expect("root");
            assert_eq!(hex::encode(got), want, "root of size {size}");
            assert_eq!(got, ref_root(&leaves[..size as usize]), "reference root of size {size}");
        }
    }

    #[test]
    fn appends_store_exactly_the_known_complete_nodes() {
        let store = build(&rfc_leaves());
        let mut count = 0;
        for (level, nodes) in (0u8..).zip(RFC_NODES) {
            for (index, want) in (0u64..).zip(nodes) {
                assert_eq!(store.node(level, index), Ok(Some(h(want))), "node ({level}, {index})");
                count += 1;
            }
        }
        assert_eq!(store.len(), count, "no other nodes are stored");
    }

    #[test]
    fn append_returns_leaf_then_completed_parents() {
        let leaves = entries(70);
        let mut store = MemoryStore::new();
        for (size, entry) in (0u64..).zip(&leaves) {
            let created = append(size, leaf_hash(entry), &store).expect("append");
            assert_eq!(created.len(), size.trailing_ones() as usize + 1, "nodes created by leaf {size}");
            assert_eq!(created[0], (0, size, leaf_hash(entry)));
            for &(level, index, _) in &created {
                // Each new node's last leaf is the one just appended.
                assert_eq!(((index + 1) << level) - 1, size, "node ({level}, {index})");
            }
            store.extend(created);
        }
        // A complete tree of n leaves has 2n - 1 nodes; an incremental one holds
        // one node per complete subtree, which is n + (n - popcount(n)).
        assert_eq!(store.len(), 70 + 70 - 70u64.count_ones() as usize);
    }

    #[test]
    fn known_inclusion_proofs() {
        let store = build(&rfc_leaves());
        for &(index, size, want) in RFC_INCLUSION {
            let got = inclusion_proof(index, size, &store).expect("proof");
            assert_eq!(got, hashes(want), "inclusion proof of {index} in {size}");
        }
    }

    #[test]
    fn known_consistency_proofs() {
        let store = build(&rfc_leaves());
        for &(old_size, new_size, want) in RFC_CONSISTENCY {
            let got = consistency_proof(old_size, new_size, &store).expect("proof");
            assert_eq!(got, hashes(want), "consistency proof {old_size} -> {new_size}");
        }
    }

    #[test]
    fn proofs_match_reference_for_every_size_up_to_70() {
        let leaves = entries(70);
        let store = build(&leaves);
        for size in 0..=70u64 {
            let tree = &leaves[..size as usize];
            assert_eq!(root(size, &store).expect("root"), ref_root(tree), "root of {size}");
            for index in 0..size {
                let got = inclusion_proof(index, size, &store).expect("inclusion proof");
                assert_eq!(got, ref_inclusion(tree, index as usize), "inclusion of {index} in {size}");
            }
            for old_size in 0..=size {
                let got = consistency_proof(old_size, size, &store).expect("consistency proof");
                assert_eq!(got, ref_consistency(tree, old_size as usize), "consistency {old_size} -> {size}");
            }
        }
    }

    fn drop_hash(result: Result<Hash, TreeError<Infallible>>) {
        result.expect("root");
    }

    fn drop_proof(result: Result<Vec<Hash>, TreeError<Infallible>>) {
        result.expect("proof");
    }

    #[test]
    fn reads_are_logarithmic() {
        let leaves = entries(300);
        let store = build(&leaves);
        let counting = Counting { inner: &store, reads: Cell::new(0) };
        let reads = |f: &dyn Fn(&Counting<'_>)| {
            counting.reads.set(0);
            f(&counting);
            counting.reads.get()
        };
        for size in 1..=300u64 {
            // Bits needed to address a leaf: the tree's height.
            let height = 64 - (size - 1).leading_zeros();
            let bound = 2 * height + 1;
            assert_eq!(reads(&|s| drop_hash(root(size, s))), size.count_ones(), "root of {size}");
            for index in 0..size {
                let n = reads(&|s| drop_proof(inclusion_proof(index, size, s)));
                assert!(n <= bound, "inclusion of {index} in {size}: {n} reads, bound {bound}");
            }
            for old_size in 0..=size {
                let n = reads(&|s| drop_proof(consistency_proof(old_size, size, s)));
                assert!(n <= bound, "consistency {old_size} -> {size}: {n} reads, bound {bound}");
            }
        }
    }

    #[test]
    fn trees_at_the_edge_of_u64() {
        let uniform = Uniform::new();
        for size in [1 << 40, (1 << 40) + 12345, 1 << 63, (1 << 63) + 1, u64::MAX - 1, u64::MAX] {
            let want = uniform.root(size);
            assert_eq!(root(size, &uniform).expect("root"), want, "root of {size}");
            for index in [0, 1, size / 3, size - 2, size - 1] {
                let proof = inclusion_proof(index, size, &uniform).expect("inclusion proof");
                assert!(proof.len() <= 64);
                let verified = verify_inclusion(&leaf_hash(b""), index, size, &proof, &want);
                assert_eq!(verified, Ok(()), "inclusion of {index} in {size}");
            }
            for old_size in [1, 2, 3, size / 2 + 1, size - 1] {
                let proof = consistency_proof(old_size, size, &uniform).expect("consistency proof");
                let old_root = uniform.root(old_size);
                let verified = verify_consistency(old_size, size, &old_root, &want, &proof);
                assert_eq!(verified, Ok(()), "consistency {old_size} -> {size}");
            }
        }
        let created = append(u64::MAX - 1, leaf_hash(b""), &uniform).expect("last leaf fits");
        assert_eq!(created.len(), 1);
        assert!(matches!(append(u64::MAX, leaf_hash(b""), &uniform), Err(TreeError::TreeFull)));
    }

    #[test]
    fn bad_requests_are_rejected() {
        let store = build(&entries(5));
        assert!(matches!(inclusion_proof(5, 5, &store), Err(TreeError::IndexOutOfRange { index: 5, size: 5 })));
        assert!(matches!(inclusion_proof(0, 0, &store), Err(TreeError::IndexOutOfRange { index: 0, size: 0 })));
        assert!(matches!(consistency_proof(5, 4, &store), Err(TreeError::SizeDecreased { old_size: 5, new_size: 4 })));
    }

    #[test]
    fn sizes_beyond_the_store_report_the_missing_node() {
        let store = build(&entries(5));
        // Size 6 needs node (1, 2) = leaves 4 and 5; only leaf 4 exists.
        assert!(matches!(root(6, &store), Err(TreeError::MissingNode { level: 1, index: 2 })));
        assert!(matches!(inclusion_proof(0, 6, &store), Err(TreeError::MissingNode { level: 1, index: 2 })));
        assert!(matches!(consistency_proof(5, 6, &store), Err(TreeError::MissingNode { .. })));
        // Appending leaf 7 needs leaf 6, which was never appended.
        assert!(matches!(append(7, leaf_hash(b"x"), &store), Err(TreeError::MissingNode { level: 0, index: 6 })));
    }
}
