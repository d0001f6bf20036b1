//! Bitcoin's compact ("nBits") encoding of a 256-bit target.
//!
//! A compact value packs a target into 32 bits as a base-256 floating point
//! number:
//!
//! ```text
//!   bits = [ size: 8 bits ][ sign: 1 bit ][ mantissa: 23 bits ]
//!   target = mantissa * 256^(size - 3)        (mantissa >> 8*(3 - size) if size < 3)
//! ```
//!
//! The functions here reproduce Bitcoin Core's `arith_uint256::SetCompact` and
//! `arith_uint256::GetCompact` bit for bit, including the two diagnostic flags
//! `SetCompact` reports:
//!
//! * **negative**: the sign bit (`0x0080_0000`) is set and the mantissa is
//!   non-zero (for sizes below 3, after shifting it: `0x00923456` decodes to
//!   zero and is not negative). The encoding inherited this from OpenSSL's `BN_mpi2bn`; a
//!   negative target is meaningless.
//! * **overflow**: the mantissa is non-zero and the value does not fit in 256
//!   bits. The decoded value then has the high bits silently dropped, exactly
//!   as in Bitcoin Core.
//!
//! [`decode_compact`] returns the raw value and both flags;
//! [`target_from_compact`] is what consensus code should call: like Bitcoin's
//! `DeriveTarget`/`CheckProofOfWork` it rejects negative, overflowing and
//! zero targets. (Checking the result against a chain's proof-of-work limit is
//! left to the caller.)
//!
//! Encoding is lossy: [`compact_from_target`] keeps the two or three most
//! significant bytes of the target (whole bytes, as a 23-bit mantissa) and
//! truncates the rest, so `target_from_compact(compact_from_target(t)) <= t`.

use ruint::aliases::U256;

/// Sign bit of a compact value.
const SIGN_BIT: u32 = 0x0080_0000;
/// Mantissa bits of a compact value (the sign bit excluded).
const MANTISSA_MASK: u32 = 0x007f_ffff;

/// Why a compact value is not a usable proof-of-work target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The sign bit is set on a non-zero mantissa.
    #[error("compact target is negative")]
    Negative,
    /// The encoded value does not fit in 256 bits.
    #[error("compact target overflows 256 bits")]
    Overflow,
    /// The encoded value is zero, which no hash can meet.
    #[error("compact target is zero")]
    Zero,
}

/// The result of decoding a compact value, exactly as Bitcoin Core's
/// `SetCompact(nCompact, &fNegative, &fOverflow)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedCompact {
    /// The decoded magnitude (high bits dropped when `overflow` is set).
    pub target: U256,
    /// Sign bit set on a non-zero mantissa.
    pub negative: bool,
    /// Non-zero mantissa shifted past 256 bits.
    pub overflow: bool,
}

/// Decodes a compact value without judging it (Bitcoin Core's `SetCompact`).
///
/// Never fails: the flags say whether the value is usable. Use
/// [`target_from_compact`] for consensus checks.
#[must_use]
pub fn decode_compact(bits: u32) -> DecodedCompact {
    // `size` is the top byte, so it is at most 255 and none of the shift
    // amounts below can come near overflowing.
    let size = bits >> 24;
    let mut word = bits & MANTISSA_MASK;

    let target = if size <= 3 {
        // 3 - size is 0..=3: shift the mantissa right by whole bytes. As in
        // Bitcoin Core, the flags below look at the *shifted* mantissa, so
        // e.g. 0x00923456 is zero, not negative.
        let shift = 3_u32.saturating_sub(size).saturating_mul(8);
        word = word.checked_shr(shift).unwrap_or(0);
        U256::from(word)
    } else {
        // Bitcoin's `arith_uint256 <<=` drops bits shifted past 256 (and a
        // shift of 256 or more yields zero); `wrapping_shl` does the same.
        let shift = size.saturating_sub(3).saturating_mul(8);
        U256::from(word).wrapping_shl(shift as usize)
    };

    let negative = word != 0 && bits & SIGN_BIT != 0;
    let overflow =
        word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));

    DecodedCompact {
        target,
        negative,
        overflow,
    }
}

/// Decodes a compact value into a proof-of-work target, rejecting what
/// Bitcoin's consensus rejects: negative, overflowing and zero targets.
///
/// # Errors
///
/// [`CompactError::Negative`], [`CompactError::Overflow`] or
/// [`CompactError::Zero`]; when several defects coincide the first in that
/// order is reported.
pub fn target_from_compact(bits: u32) -> Result<U256, CompactError> {
    let decoded = decode_compact(bits);
    if decoded.negative {
        Err(CompactError::Negative)
    } else if decoded.overflow {
        Err(CompactError::Overflow)
    } else if decoded.target.is_zero() {
        Err(CompactError::Zero)
    } else {
        Ok(decoded.target)
    }
}

/// Encodes a target in compact form (Bitcoin Core's `GetCompact()`).
///
/// The three most significant bytes are kept and the rest truncated. The
/// result never has the sign bit set: if the top kept bit would collide with
/// it, only two bytes are kept and the size is bumped instead.
#[must_use]
pub fn compact_from_target(target: U256) -> u32 {
    encode_compact(target, false)
}

/// Encodes a target in compact form with an explicit sign, as Bitcoin Core's
/// `GetCompact(fNegative)`. The sign bit is only set for a non-zero mantissa.
///
/// Only useful for tests and tooling: a proof-of-work target is never
/// negative, see [`compact_from_target`].
#[must_use]
pub fn encode_compact(target: U256, negative: bool) -> u32 {
    // bit_len() <= 256, so size <= 32 and every shift below is in range.
    let mut size = target.bit_len().div_ceil(8);
    let mut compact: u32 = if size <= 3 {
        // The whole value fits in the low 24 bits; left-align it in them.
        let low = target.as_limbs()[0];
        let shift = 3_usize.saturating_sub(size).saturating_mul(8);
        (low.checked_shl(shift as u32).unwrap_or(0) & 0x00ff_ffff) as u32
    } else {
        let shift = size.saturating_sub(3).saturating_mul(8);
        (target.wrapping_shr(shift).as_limbs()[0] & 0x00ff_ffff) as u32
    };

    // The 0x00800000 bit is the sign bit: if the mantissa would set it, divide
    // the mantissa by 256 and increase the exponent.
    if compact & SIGN_BIT != 0 {
        compact >>= 8;
        size = size.saturating_add(1);
    }

    // size <= 33, so it fits in the top byte.
    compact |= (size as u32) << 24;
    if negative && compact & MANTISSA_MASK != 0 {
        compact |= SIGN_BIT;
    }
    compact
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex_u256(s: &str) -> U256 {
        U256::from_str_radix(s, 16).expect("valid hex")
    }

    /// Bitcoin Core's `arith_uint256_tests.cpp` `bignum_SetCompact`:
    /// (compact, decoded hex, GetCompact(negative) of the decoded value,
    /// negative flag, overflow flag).
    #[test]
    fn bitcoin_core_set_compact_vectors() {
        let cases: &[(u32, &str, u32, bool, bool)] = &[
            (0, "0", 0, false, false),
            (0x0012_3456, "0", 0, false, false),
            (0x0100_3456, "0", 0, false, false),
            (0x0200_0056, "0", 0, false, false),
            (0x0300_0000, "0", 0, false, false),
            (0x0400_0000, "0", 0, false, false),
            (0x0092_3456, "0", 0, false, false),
            (0x0180_3456, "0", 0, false, false),
            (0x0280_0056, "0", 0, false, false),
            (0x0380_0000, "0", 0, false, false),
            (0x0480_0000, "0", 0, false, false),
            (0x0112_3456, "12", 0x0112_0000, false, false),
            (0x01fe_dcba, "7e", 0x01fe_0000, true, false),
            (0x0212_3456, "1234", 0x0212_3400, false, false),
            (0x0312_3456, "123456", 0x0312_3456, false, false),
            (0x0412_3456, "12345600", 0x0412_3456, false, false),
            (0x0492_3456, "12345600", 0x0492_3456, true, false),
            (0x0500_9234, "92340000", 0x0500_9234, false, false),
            (
                0x2012_3456,
                "1234560000000000000000000000000000000000000000000000000000000000",
                0x2012_3456,
                false,
                false,
            ),
        ];
        for &(bits, hex, recompact, negative, overflow) in cases {
            let d = decode_compact(bits);
            assert_eq!(d.target, hex_u256(hex), "value of {bits:#010x}");
            assert_eq!(d.negative, negative, "negative flag of {bits:#010x}");
            assert_eq!(d.overflow, overflow, "overflow flag of {bits:#010x}");
            assert_eq!(
                encode_compact(d.target, d.negative),
                recompact,
                "GetCompact of {bits:#010x}"
            );
        }

        let d = decode_compact(0xff12_3456);
        assert!(!d.negative);
        assert!(d.overflow);

        // "Make sure that we don't generate compacts with the 0x00800000 bit set"
        assert_eq!(compact_from_target(U256::from(0x80_u64)), 0x0200_8000);
    }

    #[test]
    fn bitcoin_mainnet_pow_limit() {
        let limit = hex_u256("00000000ffff0000000000000000000000000000000000000000000000000000");
        assert_eq!(target_from_compact(0x1d00_ffff), Ok(limit));
        assert_eq!(compact_from_target(limit), 0x1d00_ffff);
        // The full-precision limit truncates to the same bits.
        let full = hex_u256("00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
        assert_eq!(compact_from_target(full), 0x1d00_ffff);
    }

    #[test]
    fn bitcoin_regtest_pow_limit() {
        let limit = hex_u256("7fffff0000000000000000000000000000000000000000000000000000000000");
        assert_eq!(target_from_compact(0x207f_ffff), Ok(limit));
        assert_eq!(compact_from_target(limit), 0x207f_ffff);
    }

    #[test]
    fn real_block_targets_round_trip() {
        // Bitcoin block 32256 (first retarget) and a 2020-era value.
        for bits in [
            0x1d00_d86a_u32,
            0x1b04_04cb,
            0x1802_aee8,
            0x1a2b_3c4d,
            0x0101_0000,
        ] {
            let target = target_from_compact(bits).expect("valid");
            assert_eq!(compact_from_target(target), bits);
        }
    }

    #[test]
    fn consensus_rejections() {
        assert_eq!(
            target_from_compact(0x0492_3456),
            Err(CompactError::Negative)
        );
        assert_eq!(
            target_from_compact(0xff12_3456),
            Err(CompactError::Overflow)
        );
        assert_eq!(
            target_from_compact(0x2300_0100),
            Err(CompactError::Overflow)
        );
        assert_eq!(target_from_compact(0), Err(CompactError::Zero));
        assert_eq!(target_from_compact(0x0100_3456), Err(CompactError::Zero));
        // The sign bit on a zero mantissa is not "negative", just zero.
        assert_eq!(target_from_compact(0x0480_0000), Err(CompactError::Zero));
        // Largest sizes that still fit, per mantissa width.
        assert!(target_from_compact(0x2200_00ff).is_ok());
        assert_eq!(
            target_from_compact(0x2200_0100),
            Err(CompactError::Overflow)
        );
        assert!(target_from_compact(0x2100_ffff).is_ok());
        assert_eq!(
            target_from_compact(0x2101_0000),
            Err(CompactError::Overflow)
        );
        assert!(target_from_compact(0x207f_ffff).is_ok());
    }

    #[test]
    fn extremes_encode() {
        assert_eq!(compact_from_target(U256::ZERO), 0);
        assert_eq!(compact_from_target(U256::from(1_u64)), 0x0101_0000);
        // U256::MAX keeps 0x00ffff of its top bytes with size 33.
        assert_eq!(compact_from_target(U256::MAX), 0x2100_ffff);
    }

    proptest! {
        /// Decoding an encoding truncates to the three most significant bytes.
        #[test]
        fn encode_then_decode_truncates(bytes in any::<[u8; 32]>()) {
            let target = U256::from_be_bytes(bytes);
            let bits = compact_from_target(target);
            prop_assert_eq!(bits & SIGN_BIT, 0);
            let d = decode_compact(bits);
            prop_assert!(!d.negative && !d.overflow);
            prop_assert!(d.target <= target);
            // Whole bytes below the 2 or 3 most significant bytes are dropped
            // (2 when a 3-byte mantissa would collide with the sign bit).
            let size = target.bit_len().div_ceil(8);
            let mut drop = if size > 3 { 8 * (size - 3) } else { 0 };
            if (target >> drop) & U256::from(SIGN_BIT) != U256::ZERO {
                drop += 8;
            }
            prop_assert_eq!(d.target, (target >> drop) << drop);
            prop_assert_eq!(compact_from_target(d.target), bits);
        }

        /// Every non-negative, non-overflowing compact value that is already
        /// in normal form survives a decode/encode round trip.
        #[test]
        fn normal_compacts_round_trip(size in 0_u32..=34, word in 0_u32..=0x7f_ffff) {
            let bits = (size << 24) | word;
            let d = decode_compact(bits);
            prop_assume!(!d.overflow);
            let again = compact_from_target(d.target);
            prop_assert_eq!(decode_compact(again).target, d.target);
            // In normal form (no leading zero byte, value not truncated) the
            // bits themselves are reproduced.
            let normal = word >= 0x8000 && size >= 3;
            if normal {
                prop_assert_eq!(again, bits);
            }
        }
    }
}
