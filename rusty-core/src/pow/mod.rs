//! Proof of work: targets, their compact encoding, chain work, and the
//! ASERT difficulty adjustment.
//!
//! * [`compact`]: Bitcoin's 32-bit "nBits" encoding of a 256-bit target.
//! * [`hash_meets_target`] and [`block_work`]: checking a header hash against
//!   its target and measuring the work a target represents.
//! * [`asert`]: the aserti3-2d difficulty algorithm (Bitcoin Cash, November
//!   2020), integer-only.
//!
//! Everything here is consensus code: every node must compute bit-identical
//! results on every platform. All arithmetic is therefore integer-only, and
//! `clippy::arithmetic_side_effects` is denied for the whole module: every
//! `+`, `-`, `*`, `/` and `%` goes through a checked, saturating or widening
//! operation (saturating only where saturation provably cannot change the
//! result), or through an explicitly wrapping one that is shown, in a comment
//! and a test, never to wrap. Shifts are by constants or through `ruint`'s
//! total `wrapping_shl`/`wrapping_shr`.

#![deny(clippy::arithmetic_side_effects)]

pub mod asert;
pub mod compact;
pub mod search;

pub use search::solve;

use ruint::aliases::U256;
use rusty_shared_types::Hash256;

pub use asert::{calculate_asert, next_bits_asert, try_calculate_asert, AsertError, AsertParams};
pub use compact::{
    compact_from_target, decode_compact, encode_compact, target_from_compact, CompactError,
    DecodedCompact,
};

/// The 256-bit integer a hash is compared with: its 32 bytes read as a
/// **big-endian** number, so `hash.0[0]` is the most significant byte.
///
/// This is the natural byte order in which [`Hash256`] is displayed, and
/// deliberately *not* Bitcoin's convention (Bitcoin's `UintToArith256` reads
/// the bytes little-endian, which is why Bitcoin block hashes are displayed
/// reversed with the leading zeros first).
#[must_use]
pub fn hash_to_u256(hash: &Hash256) -> U256 {
    U256::from_be_bytes(hash.0)
}

/// Does `hash` satisfy the proof-of-work `target`?
///
/// The hash's 32 bytes are interpreted as a **big-endian** 256-bit integer
/// (see [`hash_to_u256`]) and must be less than or equal to the target, as in
/// Bitcoin's `CheckProofOfWork`. Validating the target itself (decoding the
/// header's bits with [`target_from_compact`], comparing against the pow
/// limit) is the caller's job.
#[must_use]
pub fn hash_meets_target(hash: &Hash256, target: &U256) -> bool {
    hash_to_u256(hash) <= *target
}

/// The expected number of hashes needed to meet `target`:
/// `floor(2^256 / (target + 1))`.
///
/// Computed as Bitcoin Core's `GetBlockProof` does, without a 257-bit
/// intermediate: since `2^256 = (2^256 - target - 1) + (target + 1)`,
/// the quotient is `(!target / (target + 1)) + 1`.
///
/// Edge cases: a zero target (impossible to meet, rejected by
/// [`target_from_compact`]) has zero work, as Bitcoin returns for invalid
/// targets; `U256::MAX` (every hash meets it) has work 1.
#[must_use]
pub fn block_work(target: &U256) -> U256 {
    if target.is_zero() {
        return U256::ZERO;
    }
    match target.checked_add(U256::ONE) {
        // target + 1 >= 2, so the division cannot fail and the quotient is at
        // most (2^256 - 1) / 2, leaving room for the + 1.
        Some(divisor) => (!*target)
            .checked_div(divisor)
            .and_then(|q| q.checked_add(U256::ONE))
            .unwrap_or(U256::ZERO),
        // target == U256::MAX: 2^256 / 2^256.
        None => U256::ONE,
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ruint::aliases::U512;

    fn hash_from_hex(s: &str) -> Hash256 {
        s.parse().expect("valid hash hex")
    }

    #[test]
    fn hash_is_read_big_endian() {
        let mut one = [0_u8; 32];
        one[31] = 1;
        assert_eq!(hash_to_u256(&Hash256(one)), U256::ONE);

        let mut top = [0_u8; 32];
        top[0] = 1;
        assert_eq!(hash_to_u256(&Hash256(top)), U256::from(1_u64) << 248);

        let h = hash_from_hex("00000000000000000000000000000000000000000000000000000000000000ff");
        assert!(hash_meets_target(&h, &U256::from(0xff_u64)));
        assert!(!hash_meets_target(&h, &U256::from(0xfe_u64)));
    }

    #[test]
    fn hash_against_bitcoin_pow_limit() {
        let limit = target_from_compact(0x1d00_ffff).expect("valid bits");
        // Exactly the limit meets it; one more does not.
        let at = hash_from_hex("00000000ffff0000000000000000000000000000000000000000000000000000");
        let above =
            hash_from_hex("00000000ffff0000000000000000000000000000000000000000000000000001");
        assert!(hash_meets_target(&at, &limit));
        assert!(!hash_meets_target(&above, &limit));
        assert!(hash_meets_target(&Hash256::ZERO, &limit));
        assert!(!hash_meets_target(&Hash256([0xff; 32]), &limit));
        assert!(hash_meets_target(&Hash256([0xff; 32]), &U256::MAX));
    }

    #[test]
    fn work_known_values() {
        // Difficulty 1 in Bitcoin: 0x0100010001 hashes per block (the
        // chainwork of block 1 is 0x200020002).
        let limit = target_from_compact(0x1d00_ffff).expect("valid bits");
        assert_eq!(block_work(&limit), U256::from(0x01_0001_0001_u64));
        assert_eq!(block_work(&U256::ZERO), U256::ZERO);
        assert_eq!(block_work(&U256::ONE), U256::from(1_u64) << 255);
        assert_eq!(block_work(&U256::MAX), U256::ONE);
        assert_eq!(block_work(&(U256::MAX >> 1)), U256::from(2_u64));
    }

    proptest! {
        #[test]
        fn work_is_floor_of_two_pow_256_over_target_plus_one(bytes in any::<[u8; 32]>()) {
            let target = U256::from_be_bytes(bytes);
            prop_assume!(!target.is_zero());
            let exact = (U512::from(1_u64) << 256) / (U512::from(target) + U512::from(1_u64));
            prop_assert_eq!(U512::from(block_work(&target)), exact);
        }

        #[test]
        fn easier_target_means_less_work(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (a, b) = (U256::from_be_bytes(a), U256::from_be_bytes(b));
            prop_assume!(!a.is_zero() && !b.is_zero());
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(block_work(&lo) >= block_work(&hi));
        }
    }
}
