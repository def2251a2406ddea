//! Checking inclusion and consistency proofs (RFC 9162 §2.1.3.2, §2.1.4.2).
//!
//! The verifiers follow the RFC's iterative algorithms step by step, so they
//! can be read side by side with the RFC. Before running them they check the
//! proof's length against the exact length the sizes imply: a proof with a
//! hash too many or too few is then reported as such, instead of as a root
//! mismatch further down, and no input can make the loops run past the tree
//! height.
//!
//! A proof is only as good as the roots it is checked against: take them, with
//! their sizes, from signed checkpoints ([`super::checkpoint`]), never from the
//! party being audited. A proof binds roots, not sizes: the same hashes can
//! prove a leaf's inclusion, or a consistency, for several neighbouring tree
//! sizes whose trees have the same shape along the path, so the size a root
//! belongs to must come from the signature over both.

use super::{empty_root, node_hash, Hash};

/// Why a proof did not verify.
///
/// Every variant is the prover's (or the caller's) doing: none of them is an
/// internal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// A consistency proof was asked to go from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeDecreased {
        /// The claimed older size.
        old_size: u64,
        /// The claimed newer size.
        new_size: u64,
    },
    /// The proof does not have the number of hashes the sizes require.
    #[error("proof has {got} hashes but these tree sizes require {expected}")]
    WrongProofLength {
        /// The length RFC 9162 implies for the sizes.
        expected: usize,
        /// The proof's length.
        got: usize,
    },
    /// The inclusion proof leads to a different root.
    #[error("inclusion proof leads to root {} instead of {}", hex::encode(.computed), hex::encode(.expected))]
    RootMismatch {
        /// The root the caller trusts.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// The consistency proof does not lead back to the old root.
    #[error("consistency proof leads to old root {} instead of {}", hex::encode(.computed), hex::encode(.expected))]
    OldRootMismatch {
        /// The old root the caller trusts.
        expected: Hash,
        /// The old root the proof leads to.
        computed: Hash,
    },
    /// The consistency proof does not lead to the new root.
    #[error("consistency proof leads to new root {} instead of {}", hex::encode(.computed), hex::encode(.expected))]
    NewRootMismatch {
        /// The new root the caller was given.
        expected: Hash,
        /// The new root the proof leads to.
        computed: Hash,
    },
}

/// The number of bits needed to write `x`: 0 for 0, 64 for `u64::MAX`.
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// The exact length of the inclusion proof of leaf `index` in a tree of `size`
/// leaves (`index < size`).
///
/// The path splits in two: below the level where `index` and the last leaf
/// `size - 1` share an ancestor, every level contributes one sibling (`inner`);
/// above it, the leaf is on the tree's right edge, where only levels at which
/// the path is a right child have a (left) sibling (`border`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    // `inner` may be 64, where a plain shift would overflow.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The exact length of the consistency proof from `old_size` to `new_size`
/// (`0 < old_size < new_size`).
///
/// It is the inclusion path of the old tree's last leaf, minus the levels
/// inside the old tree's rightmost complete subtree (of `2^shift` leaves),
/// plus that subtree's own hash unless it is the whole old tree, whose root
/// the verifier already holds.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let inner = bit_len((old_size - 1) ^ (new_size - 1));
    let border = (old_size - 1).checked_shr(inner).unwrap_or(0).count_ones();
    // old_size is a multiple of 2^shift, so (old_size - 1) >> shift and
    // (new_size - 1) >> shift differ: inner > shift, and this cannot underflow.
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    (seed + inner - shift + border) as usize
}

/// Checks that `leaf_hash` is leaf number `index` of the tree of `size` leaves
/// whose root is `root`, by RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    let wrong_length = ProofError::WrongProofLength { expected, got: proof.len() };
    if proof.len() != expected {
        return Err(wrong_length);
    }

    // RFC 9162 §2.1.3.2, steps 2 to 5. `fn` is a keyword, hence `f`.
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        // With the length checked above these two guards cannot fire; they
        // stay because they are the RFC's, and cost nothing.
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            // On the right edge, levels where the path has no sibling are
            // skipped.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch { expected: *root, computed: r });
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root`, by RFC 9162 §2.1.4.2.
///
/// Trees of equal size are consistent when their roots are equal, and the
/// empty tree is consistent with every tree; both take an empty proof. The
/// empty tree has a root too (`SHA-256("")`), and `old_root` must be it: a
/// size-0 tree head with any other root is not a tree head at all.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeDecreased { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength { expected: 0, got: proof.len() });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::OldRootMismatch { expected: *old_root, computed: empty_root() });
        }
        // Equal sizes: the "proof" is that the trees are the same tree.
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::NewRootMismatch { expected: *new_root, computed: *old_root });
        }
        return Ok(());
    }

    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = ProofError::WrongProofLength { expected, got: proof.len() };
    if proof.len() != expected {
        return Err(wrong_length);
    }

    // Step 2: when the old tree is a complete subtree of the new one, its root
    // is the starting node and the proof leaves it out.
    let (seed, rest) = match proof.split_first() {
        Some((first, rest)) if !old_size.is_power_of_two() => (*first, rest),
        _ => (*old_root, proof),
    };
    // Steps 3 and 4.
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // Steps 5 and 6: `fr` rebuilds the old root, `sr` the new one.
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { expected: *old_root, computed: fr });
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch { expected: *new_root, computed: sr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{consistency_proof, inclusion_proof, leaf_hash};
    use super::*;

    /// `SHA-256("")`, spelled out rather than computed.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// An arbitrary hash that is no node of any test tree (transparency-dev's
    /// `sha256SomeHash`).
    const SOME: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

    /// One way of presenting a proof to a verifier.
    struct Probe {
        desc: String,
        a: u64,
        b: u64,
        x: Hash,
        y: Hash,
        proof: Vec<Hash>,
    }

    fn probe(desc: impl Into<String>, a: u64, b: u64, x: Hash, y: Hash, proof: Vec<Hash>) -> Probe {
        Probe { desc: desc.into(), a, b, x, y, proof }
    }

    /// Ways to damage a proof itself: each element flipped, removed, or
    /// preceded by a foreign hash; foreign hashes added at either end; the
    /// order reversed.
    fn damaged(proof: &[Hash], extras: &[(&str, Hash)]) -> Vec<(String, Vec<Hash>)> {
        let mut out = Vec::new();
        for (name, extra) in extras {
            out.push((format!("trailing {name}"), [proof, &[*extra]].concat()));
            out.push((format!("preceding {name}"), [&[*extra], proof].concat()));
        }
        for i in 0..proof.len() {
            let mut flipped = proof.to_vec();
            flipped[i][0] ^= 8;
            out.push((format!("proof[{i}] bit 3 flipped"), flipped));
            let mut last_bit = proof.to_vec();
            last_bit[i][31] ^= 1;
            out.push((format!("proof[{i}] bit 248 flipped"), last_bit));
            let mut removed = proof.to_vec();
            removed.remove(i);
            out.push((format!("proof[{i}] removed"), removed));
            let mut inserted = proof.to_vec();
            inserted.insert(i, h(SOME));
            out.push((format!("hash inserted at {i}"), inserted));
        }
        let reversed: Vec<Hash> = proof.iter().rev().copied().collect();
        if reversed != proof {
            out.push(("reversed".into(), reversed));
        }
        out
    }

    /// Checks that a known-good inclusion proof verifies and that every
    /// mutation of it, as transparency-dev/merkle's `corruptInclusionProof`
    /// enumerates them (and a few more), fails.
    fn check_inclusion(leaf: Hash, index: u64, size: u64, proof: &[Hash], root: Hash) {
        let ok = verify_inclusion(&leaf, index, size, proof, &root);
        assert_eq!(ok, Ok(()), "valid proof of {index} in {size}");

        let p = proof.to_vec();
        let mut probes = vec![
            probe("index - 1", index.wrapping_sub(1), size, leaf, root, p.clone()),
            probe("index + 1", index + 1, size, leaf, root, p.clone()),
            probe("index ^ 2", index ^ 2, size, leaf, root, p.clone()),
            probe("size * 2", index, size * 2, leaf, root, p.clone()),
            probe("size / 2", index, size / 2, leaf, root, p.clone()),
            probe("wrong leaf", index, size, leaf_hash(b"WrongLeaf"), root, p.clone()),
            probe("leaf hash of the leaf hash", index, size, leaf_hash(&leaf), root, p.clone()),
            probe("empty root", index, size, leaf, h(EMPTY), p.clone()),
            probe("random root", index, size, leaf, h(SOME), p.clone()),
        ];
        for (desc, damaged) in damaged(proof, &[("random hash", h(SOME)), ("root", root), ("leaf", leaf)]) {
            probes.push(probe(desc, index, size, leaf, root, damaged));
        }
        for Probe { desc, a, b, x, y, proof } in probes {
            let got = verify_inclusion(&x, a, b, &proof, &y);
            assert!(got.is_err(), "{desc}: mutated proof of {index} in {size} verified");
        }
    }

    /// Checks that a known-good consistency proof verifies and that every
    /// mutation of it, as transparency-dev/merkle's `corruptConsistencyProof`
    /// enumerates them (and a few more), fails.
    fn check_consistency(old_size: u64, new_size: u64, old_root: Hash, new_root: Hash, proof: &[Hash]) {
        let ok = verify_consistency(old_size, new_size, &old_root, &new_root, proof);
        assert_eq!(ok, Ok(()), "valid proof {old_size} -> {new_size}");

        let (m, n, p) = (old_size, new_size, proof.to_vec());
        let wrong = leaf_hash(b"WrongRoot");
        let mut probes = vec![
            probe("wrong old root", m, n, wrong, new_root, p.clone()),
            probe("old size = new size + 1", n + 1, n, old_root, new_root, p.clone()),
        ];
        // The empty tree is consistent with every tree, whatever its root.
        if m != 0 || n == 0 {
            probes.push(probe("wrong new root", m, n, old_root, wrong, p.clone()));
        }
        if old_root != new_root {
            probes.push(probe("swapped roots", m, n, new_root, old_root, p.clone()));
        }
        // The trivial pairs prove nothing about the sizes beyond their own
        // definition, so size mutations only apply to real proofs
        // (transparency-dev skips them for empty proofs too). As there, the
        // new size is only doubled and halved: a proof does not always pin the
        // new size. Trees of 7 and 8 leaves give the proof from size 1 the same
        // shape (three siblings up the left edge), so the 1 -> 8 proof also
        // passes as 1 -> 7 against the size-8 root. The size a root belongs to
        // comes from the signed checkpoint, not from the proof.
        if !proof.is_empty() {
            probes.extend([
                probe("old size - 1", m - 1, n, old_root, new_root, p.clone()),
                probe("old size + 1", m + 1, n, old_root, new_root, p.clone()),
                probe("old size ^ 2", m ^ 2, n, old_root, new_root, p.clone()),
                probe("new size * 2", m, n * 2, old_root, new_root, p.clone()),
                probe("new size / 2", m, n / 2, old_root, new_root, p.clone()),
                probe("empty proof", m, n, old_root, new_root, Vec::new()),
            ]);
            let extras = [("random hash", h(SOME)), ("old root", old_root), ("new root", new_root), ("proof[0]", p[0])];
            for (desc, damaged) in damaged(proof, &extras) {
                probes.push(probe(desc, m, n, old_root, new_root, damaged));
            }
        } else {
            probes.push(probe("non-empty proof", m, n, old_root, new_root, vec![h(SOME)]));
        }
        for Probe { desc, a, b, x, y, proof } in probes {
            let got = verify_consistency(a, b, &x, &y, &proof);
            assert!(got.is_err(), "{desc}: mutated proof {old_size} -> {new_size} verified");
        }
    }

    #[test]
    fn known_inclusion_proofs_verify_and_resist_mutation() {
        let leaves = rfc_leaves();
        for &(index, size, proof) in RFC_INCLUSION {
            let root = h(RFC_ROOTS[size as usize]);
            check_inclusion(leaf_hash(&leaves[index as usize]), index, size, &hashes(proof), root);
        }
    }

    #[test]
    fn known_consistency_proofs_verify_and_resist_mutation() {
        for &(old_size, new_size, proof) in RFC_CONSISTENCY {
            let (old_root, new_root) = (h(RFC_ROOTS[old_size as usize]), h(RFC_ROOTS[new_size as usize]));
            check_consistency(old_size, new_size, old_root, new_root, &hashes(proof));
        }
    }

    #[test]
    fn every_proof_up_to_70_leaves_verifies_against_reference_roots() {
        let leaves = entries(70);
        let store = build(&leaves);
        let roots: Vec<Hash> = (0..=70).map(|n| ref_root(&leaves[..n])).collect();
        let mut checked = 0;
        for size in 1..=70u64 {
            let root = roots[size as usize];
            for index in 0..size {
                let proof = inclusion_proof(index, size, &store).expect("inclusion proof");
                assert_eq!(proof.len(), inclusion_proof_len(index, size));
                check_inclusion(leaf_hash(&leaves[index as usize]), index, size, &proof, root);
                checked += 1;
            }
            for old_size in 0..=size {
                let proof = consistency_proof(old_size, size, &store).expect("consistency proof");
                if old_size != 0 && old_size != size {
                    assert_eq!(proof.len(), consistency_proof_len(old_size, size));
                }
                check_consistency(old_size, size, roots[old_size as usize], root, &proof);
                checked += 1;
            }
        }
        assert_eq!(checked, 2485 + 2555);
    }

    #[test]
    fn trivially_consistent_pairs() {
        // Adapted from transparency-dev/merkle TestVerifyConsistency, with
        // real roots: this verifier also requires a size-0 root to be the
        // empty root.
        let (empty, r1, r2) = (h(EMPTY), h(RFC_ROOTS[1]), h(RFC_ROOTS[2]));
        // (old size, new size, old root, new root, proof, outcome)
        type Case<'a> = (u64, u64, Hash, Hash, &'a [Hash], Result<(), ProofError>);
        let cases: &[Case<'_>] = &[
            (0, 0, empty, empty, &[], Ok(())),
            (0, 1, empty, r1, &[], Ok(())),
            (0, 2, empty, r2, &[], Ok(())),
            (1, 1, r1, r1, &[], Ok(())),
            (2, 2, r2, r2, &[], Ok(())),
            (1, 1, r1, r2, &[], Err(ProofError::NewRootMismatch { expected: r2, computed: r1 })),
            (0, 0, empty, r1, &[], Err(ProofError::NewRootMismatch { expected: r1, computed: empty })),
            (0, 1, r1, r1, &[], Err(ProofError::OldRootMismatch { expected: r1, computed: empty })),
            (0, 0, empty, empty, &[empty], Err(ProofError::WrongProofLength { expected: 0, got: 1 })),
            (0, 1, empty, r1, &[empty], Err(ProofError::WrongProofLength { expected: 0, got: 1 })),
            (1, 1, r1, r1, &[r1], Err(ProofError::WrongProofLength { expected: 0, got: 1 })),
            // A real pair with no proof.
            (1, 2, r1, r2, &[], Err(ProofError::WrongProofLength { expected: 1, got: 0 })),
            // Time travel to the past.
            (1, 0, r1, empty, &[], Err(ProofError::SizeDecreased { old_size: 1, new_size: 0 })),
            (2, 1, r2, r1, &[], Err(ProofError::SizeDecreased { old_size: 2, new_size: 1 })),
        ];
        for (old_size, new_size, old_root, new_root, proof, want) in cases {
            let got = verify_consistency(*old_size, *new_size, old_root, new_root, proof);
            assert_eq!(&got, want, "({old_size}, {new_size})");
        }
    }

    #[test]
    fn errors_name_the_failure() {
        // Each case takes a known-good proof and breaks exactly one thing.
        let leaves = rfc_leaves();
        let (index, size, proof) = RFC_INCLUSION[6]; // leaf 5 of 8
        let (proof, root, leaf) = (hashes(proof), h(RFC_ROOTS[8]), leaf_hash(&leaves[5]));
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        assert_eq!(
            verify_inclusion(&leaf, 8, size, &proof, &root),
            Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            verify_inclusion(&leaf, index, size, &proof[..2], &root),
            Err(ProofError::WrongProofLength { expected: 3, got: 2 })
        );
        let computed = node_hash(&proof[2], &node_hash(&node_hash(&proof[0], &leaf), &proof[1]));
        assert_eq!(computed, root, "the RFC's order for leaf 5 of 8 is left, right, left");
        let other = h(RFC_ROOTS[7]);
        assert_eq!(
            verify_inclusion(&leaf, index, size, &proof, &other),
            Err(ProofError::RootMismatch { expected: other, computed: root })
        );

        let (m, n, proof) = RFC_CONSISTENCY[3]; // 6 -> 8
        let (proof, old_root, new_root) = (hashes(proof), h(RFC_ROOTS[6]), h(RFC_ROOTS[8]));
        assert_eq!(verify_consistency(m, n, &old_root, &new_root, &proof), Ok(()));
        assert!(matches!(
            verify_consistency(m, n, &new_root, &new_root, &proof),
            Err(ProofError::OldRootMismatch { computed, .. }) if computed == old_root
        ));
        assert!(matches!(
            verify_consistency(m, n, &old_root, &old_root, &proof),
            Err(ProofError::NewRootMismatch { computed, .. }) if computed == new_root
        ));
        assert_eq!(
            verify_consistency(m, n, &old_root, &new_root, &proof[1..]),
            Err(ProofError::WrongProofLength { expected: 3, got: 2 })
        );
        assert_eq!(
            verify_consistency(9, n, &old_root, &new_root, &proof),
            Err(ProofError::SizeDecreased { old_size: 9, new_size: 8 })
        );
    }

    #[test]
    fn inclusion_rejects_empty_and_out_of_range_trees() {
        // transparency-dev/merkle TestVerifyInclusion's probes (index, size).
        for (index, size) in [(0, 0), (1, 0), (1, 1), (2, 1), (u64::MAX, u64::MAX)] {
            let got = verify_inclusion(&h(SOME), index, size, &[], &h(EMPTY));
            assert_eq!(got, Err(ProofError::IndexOutOfRange { index, size }));
        }
        // A single-leaf tree: the root is the leaf hash and the proof is empty.
        let leaf = leaf_hash(b"data");
        assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
        assert!(verify_inclusion(&leaf, 0, 1, &[], &h(EMPTY)).is_err());
        assert!(verify_inclusion(&h(EMPTY), 0, 1, &[], &leaf).is_err());
    }

    #[test]
    fn proof_lengths_at_the_edges() {
        assert_eq!(inclusion_proof_len(0, 1), 0);
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(inclusion_proof_len(1 << 63, (1 << 63) + 1), 1);
        assert_eq!(consistency_proof_len(1, u64::MAX), 64);
        assert_eq!(consistency_proof_len(1 << 63, u64::MAX), 1);
        assert_eq!(consistency_proof_len(u64::MAX - 1, u64::MAX), 64);
    }

    #[test]
    fn errors_display_hex_roots() {
        let err = ProofError::RootMismatch { expected: [0xab; 32], computed: [0; 32] };
        let text = err.to_string();
        assert!(text.starts_with("inclusion proof leads to root 0000"), "{text}");
        assert!(text.ends_with(&"ab".repeat(32)), "{text}");
    }
}
