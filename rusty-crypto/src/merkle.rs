//! Binary BLAKE3 merkle root.
//!
//! Leaves are hashed under [`Domain::MerkleLeaf`] and inner nodes under
//! [`Domain::MerkleNode`], so a leaf can never be passed off as an inner node (second
//! preimage). When a level has an odd number of nodes the last one is promoted unchanged
//! to the next level. Bitcoin instead pairs it with itself, which makes `[a, b, c]` and
//! `[a, b, c, c]` share a root (CVE-2012-2459); promotion gives every list its own root.
//!
//! ```text
//!            root
//!           /    \
//!         n01     c'      c' = leaf(c), promoted
//!        /   \
//!     a'      b'
//! ```

use rusty_shared_types::{Domain, Hash256};

/// The merkle root of `leaves` (typically txids); [`Hash256::ZERO`] for no leaves.
///
/// Allocates one vector of `leaves.len()` hashes and folds it in place, level by level.
pub fn merkle_root(leaves: &[Hash256]) -> Hash256 {
    if leaves.is_empty() {
        return Hash256::ZERO;
    }

    // Deriving a domain key costs a few BLAKE3 compressions; derive each once and
    // `reset` (which keeps the key) between uses.
    let mut leaf_hasher = Domain::MerkleLeaf.hasher();
    let mut node_hasher = Domain::MerkleNode.hasher();

    let mut level: Vec<Hash256> = leaves
        .iter()
        .map(|leaf| finish(leaf_hasher.update(&leaf.0)))
        .collect();

    let mut len = level.len();
    while len > 1 {
        let pairs = len / 2;
        // Writing slot `i` only after reading slots `2i` and `2i + 1` (both >= i) keeps
        // the in-place fold correct.
        for i in 0..pairs {
            let (left, right) = (level[2 * i], level[2 * i + 1]);
            node_hasher.update(&left.0);
            node_hasher.update(&right.0);
            level[i] = finish(&mut node_hasher);
        }
        if len % 2 == 1 {
            level[pairs] = level[len - 1];
        }
        len = pairs + len % 2;
    }
    level[0]
}

/// Finalizes `hasher` and resets it (keeping its domain key) for the next node.
fn finish(hasher: &mut blake3::Hasher) -> Hash256 {
    let out = Hash256(*hasher.finalize().as_bytes());
    hasher.reset();
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(n: u8) -> Hash256 {
        Hash256([n; 32])
    }

    fn leaf(x: Hash256) -> Hash256 {
        Hash256::domain_hash(Domain::MerkleLeaf, &x.0)
    }

    fn node(l: Hash256, r: Hash256) -> Hash256 {
        let mut buf = [0u8; 64];
        buf[..32].copy_from_slice(&l.0);
        buf[32..].copy_from_slice(&r.0);
        Hash256::domain_hash(Domain::MerkleNode, &buf)
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(merkle_root(&[]), Hash256::ZERO);
    }

    #[test]
    fn single_leaf_is_its_leaf_hash() {
        assert_eq!(merkle_root(&[h(1)]), leaf(h(1)));
        assert_ne!(
            merkle_root(&[h(1)]),
            h(1),
            "a leaf is hashed, never used raw"
        );
    }

    #[test]
    fn matches_reference_shapes() {
        let (a, b, c, d, e) = (h(1), h(2), h(3), h(4), h(5));
        let ab = node(leaf(a), leaf(b));
        let cd = node(leaf(c), leaf(d));
        assert_eq!(merkle_root(&[a, b]), ab);
        // Odd count: c is promoted, not paired with itself.
        assert_eq!(merkle_root(&[a, b, c]), node(ab, leaf(c)));
        assert_eq!(merkle_root(&[a, b, c, d]), node(ab, cd));
        // Five: e is promoted twice.
        assert_eq!(merkle_root(&[a, b, c, d, e]), node(node(ab, cd), leaf(e)));
    }

    #[test]
    fn no_duplication_malleability() {
        let (a, b, c) = (h(1), h(2), h(3));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
        let six = [h(1), h(2), h(3), h(4), h(5), h(6)];
        let mut seven = six.to_vec();
        seven.push(h(6));
        assert_ne!(merkle_root(&six), merkle_root(&seven));
    }

    #[test]
    fn order_matters() {
        assert_ne!(merkle_root(&[h(1), h(2)]), merkle_root(&[h(2), h(1)]));
        assert_ne!(
            merkle_root(&[h(1), h(2), h(3)]),
            merkle_root(&[h(1), h(3), h(2)])
        );
    }

    proptest! {
        #[test]
        fn any_leaf_change_changes_root(
            leaves in prop::collection::vec(any::<[u8; 32]>().prop_map(Hash256), 1..70),
            pick in any::<prop::sample::Index>(),
            flip in 0u8..=255,
            byte in 0usize..32,
        ) {
            let root = merkle_root(&leaves);
            let mut changed = leaves.clone();
            let i = pick.index(changed.len());
            changed[i].0[byte] ^= flip.max(1);
            prop_assert_ne!(root, merkle_root(&changed));
        }

        #[test]
        fn appending_changes_root(
            leaves in prop::collection::vec(any::<[u8; 32]>().prop_map(Hash256), 0..70),
        ) {
            // Covers the duplicated-tail attack for every length and parity.
            let mut longer = leaves.clone();
            longer.push(leaves.last().copied().unwrap_or(Hash256::ZERO));
            prop_assert_ne!(merkle_root(&leaves), merkle_root(&longer));
        }
    }
}
