//! aserti3-2d: the ASERT difficulty adjustment algorithm, integer-only.
//!
//! ASERT ("absolutely scheduled exponentially rising targets", Mark
//! Lundeberg 2019/2020; implemented by Jonathan Toomim, activated on Bitcoin
//! Cash on 2020-11-15) sets every block's target from one fixed *anchor*
//! block instead of from a window of recent blocks:
//!
//! ```text
//!   next_target = anchor_target * 2^((time_diff - spacing * (height_diff + 1)) / half_life)
//!
//!   time_diff   = parent.time   - anchor_parent.time
//!   height_diff = parent.height - anchor.height
//! ```
//!
//! where `parent` is the block the new block builds on and `anchor_parent` is
//! the anchor's own parent. `spacing * (height_diff + 1)` is the time the
//! chain *should* have taken from the anchor's parent to `parent`; every
//! `half_life` seconds the chain runs behind schedule doubles the target
//! (halves the difficulty), every `half_life` ahead halves it. Because the
//! schedule is absolute, rounding errors never accumulate and there is no
//! window to oscillate.
//!
//! # Why integer-only
//!
//! Every node must derive bit-identical targets, or the chain splits.
//! Floating-point `exp2` is not reproducible across CPUs, compilers and libm
//! versions, so aserti3-2d ("i" for integer, "3" for the cubic, "2d" for the
//! two-day half-life of Bitcoin Cash) uses 16.16 fixed point:
//!
//! 1. `exponent = (time_diff - spacing * (height_diff + 1)) * 65536 / half_life`,
//!    with C++ *truncating* division (rounds toward zero).
//! 2. `shifts = exponent >> 16`, an *arithmetic* shift (rounds toward minus
//!    infinity), and `frac = exponent mod 65536` (its low 16 bits), so that
//!    `exponent = shifts * 65536 + frac` with `0 <= frac < 65536`.
//! 3. `2^(frac / 65536)` is approximated, scaled by 65536, by the cubic
//!    `factor = 65536 + ((195766423245049 f + 971821376 f^2 + 5127 f^3 + 2^47) >> 48)`
//!    (error below 0.013 %).
//! 4. `next = (anchor_target * factor) >> 16`, then shifted by `shifts`
//!    (left if positive, right if negative).
//! 5. If a left shift would push the value to 2^255 or beyond, the result is
//!    `pow_limit` (the "overflow" rule); a zero result becomes 1, and
//!    anything above `pow_limit` becomes `pow_limit`.
//!
//! # Fidelity to the reference
//!
//! This is a transcription of Bitcoin Cash Node's `CalculateASERT` (itself
//! from Bitcoin ABC) and reproduces the published test vectors bit for bit.
//! BCHN *asserts* its preconditions; here they are checked and reported as
//! [`AsertError`] by [`try_calculate_asert`] and [`next_bits_asert`]. Two
//! deliberate extensions keep every input well defined:
//!
//! * BCHN multiplies `anchor_target * factor` in 256 bits and therefore asserts
//!   `pow_limit < 2^224`. The product is formed here in 320 bits, so any
//!   non-zero `pow_limit` works (Rusty Coin's limits are above 2^224). When
//!   `pow_limit < 2^224` the value is the same.
//! * BCHN asserts `|time_diff - spacing * height_diff| < 2^47` so that its
//!   64-bit exponent cannot overflow. Here the exponent is computed in 128
//!   bits and saturated only where the result is already pinned to
//!   `pow_limit` or 1, so absurd timestamps give the limits instead of
//!   undefined behaviour.
//!
//! For every input BCHN accepts (and whose shift count fits the 32-bit
//! `unsigned int` BCHN's shift operators take, i.e. any time difference below
//! `2^32` half-lives) the results are identical.

use ruint::aliases::{U256, U320};

use super::compact::{compact_from_target, target_from_compact, CompactError};

/// Bits after the radix point of the fixed-point exponent.
const RADIX_BITS: u32 = 16;
/// 1.0 in the fixed-point exponent.
const RADIX: i128 = 1 << RADIX_BITS;

/// Chain parameters of the ASERT algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsertParams {
    /// The ideal time between blocks, in seconds (600 on Bitcoin Cash).
    pub target_spacing: i64,
    /// Seconds behind (ahead of) schedule that double (halve) the target
    /// (172 800, two days, on Bitcoin Cash).
    pub half_life: i64,
    /// The easiest allowed target; results never exceed it.
    pub pow_limit: U256,
}

impl AsertParams {
    /// Checks that the parameters make sense: positive spacing and
    /// half-life, non-zero pow limit.
    ///
    /// # Errors
    ///
    /// [`AsertError::NonPositiveTargetSpacing`],
    /// [`AsertError::NonPositiveHalfLife`] or [`AsertError::ZeroPowLimit`].
    pub fn validate(&self) -> Result<(), AsertError> {
        if self.target_spacing <= 0 {
            return Err(AsertError::NonPositiveTargetSpacing(self.target_spacing));
        }
        if self.half_life <= 0 {
            return Err(AsertError::NonPositiveHalfLife(self.half_life));
        }
        if self.pow_limit.is_zero() {
            return Err(AsertError::ZeroPowLimit);
        }
        Ok(())
    }
}

/// Inputs the ASERT calculation cannot accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsertError {
    /// [`AsertParams::target_spacing`] is zero or negative.
    #[error("ASERT target spacing must be positive, got {0}")]
    NonPositiveTargetSpacing(i64),
    /// [`AsertParams::half_life`] is zero or negative.
    #[error("ASERT half-life must be positive, got {0}")]
    NonPositiveHalfLife(i64),
    /// [`AsertParams::pow_limit`] is zero.
    #[error("ASERT pow limit must be non-zero")]
    ZeroPowLimit,
    /// The anchor target is zero or above the pow limit.
    #[error("ASERT anchor target must be between 1 and the pow limit")]
    AnchorTargetOutOfRange,
    /// The parent is below the anchor: ASERT only computes targets for blocks
    /// after the anchor.
    #[error("ASERT height difference must not be negative, got {0}")]
    NegativeHeightDiff(i64),
    /// The anchor's compact bits do not decode to a valid target.
    #[error("invalid ASERT anchor bits: {0}")]
    InvalidAnchorBits(#[from] CompactError),
}

/// Computes the target of the block after `parent` (BCHN's `CalculateASERT`).
///
/// * `anchor_target`: the anchor block's target, in `[1, pow_limit]`.
/// * `time_diff`: `parent.time - anchor_parent.time`, the timestamp of the
///   block being built on minus the timestamp of the anchor block's *parent*.
///   May be negative.
/// * `height_diff`: `parent.height - anchor.height`, at least 0.
///
/// The result is always in `[1, params.pow_limit]`.
///
/// # Panics
///
/// If the preconditions do not hold (see [`try_calculate_asert`] for the
/// non-panicking form): invalid `params`, `anchor_target` outside
/// `[1, pow_limit]`, or a negative `height_diff`. BCHN aborts on the same
/// conditions. Callers handling untrusted data should use
/// [`try_calculate_asert`] or [`next_bits_asert`].
#[must_use]
pub fn calculate_asert(
    anchor_target: &U256,
    params: &AsertParams,
    time_diff: i64,
    height_diff: i64,
) -> U256 {
    match try_calculate_asert(anchor_target, params, time_diff, height_diff) {
        Ok(target) => target,
        Err(e) => panic!("calculate_asert precondition violated: {e}"),
    }
}

/// [`calculate_asert`], reporting violated preconditions as errors instead
/// of panicking.
///
/// # Errors
///
/// Invalid `params` (see [`AsertParams::validate`]),
/// [`AsertError::AnchorTargetOutOfRange`] if `anchor_target` is not in
/// `[1, pow_limit]`, [`AsertError::NegativeHeightDiff`] if `height_diff < 0`.
pub fn try_calculate_asert(
    anchor_target: &U256,
    params: &AsertParams,
    time_diff: i64,
    height_diff: i64,
) -> Result<U256, AsertError> {
    params.validate()?;
    if anchor_target.is_zero() || *anchor_target > params.pow_limit {
        return Err(AsertError::AnchorTargetOutOfRange);
    }
    if height_diff < 0 {
        return Err(AsertError::NegativeHeightDiff(height_diff));
    }

    let exponent = fixed_point_exponent(params, time_diff, height_diff)?;

    // Split the exponent into integer and fractional parts:
    // exponent == shifts * 65536 + frac, 0 <= frac < 65536. The shift is
    // arithmetic (floor), not a truncating division: -1 is (-1) * 65536 + 65535.
    let shifts = exponent >> RADIX_BITS;
    // The low 16 bits in two's complement, as C++'s `uint16_t(exponent)`.
    let frac = exponent as u16;

    // anchor_target * 65536 * 2^(frac / 65536). anchor_target < 2^256 and
    // factor < 2^17, so the widened product is below 2^273 and cannot wrap.
    let product = U320::from(*anchor_target).wrapping_mul(U320::from(fractional_factor(frac)));

    // Multiply by 2^shifts and divide by the 65536 of the factor.
    let shifts = shifts.saturating_sub(i128::from(RADIX_BITS));
    let next = if shifts <= 0 {
        // A right shift of 320 or more bits leaves zero.
        let right = usize::try_from(shifts.unsigned_abs()).unwrap_or(usize::MAX);
        product.wrapping_shr(right)
    } else {
        // BCHN's overflow rule: if the shifted value would reach 2^255 (the
        // 256-bit shift would drop bits), the target is the pow limit.
        let bits = i128::try_from(product.bit_len()).unwrap_or(i128::MAX);
        if bits.saturating_add(shifts) > 255 {
            return Ok(params.pow_limit);
        }
        // 0 < shifts <= 255 - bits here, and the result is below 2^255.
        product.wrapping_shl(usize::try_from(shifts).unwrap_or(usize::MAX))
    };

    if next.is_zero() {
        // 0 is not a valid target, but 1 is.
        return Ok(U256::ONE);
    }
    if next > U320::from(params.pow_limit) {
        return Ok(params.pow_limit);
    }
    // next <= pow_limit, so it fits in 256 bits and nothing saturates.
    Ok(U256::saturating_from(next))
}

/// Computes the compact bits of the block after `parent` from the anchor's
/// compact bits: [`try_calculate_asert`] between [`target_from_compact`] and
/// [`compact_from_target`], as BCHN's `GetNextASERTWorkRequired` does.
///
/// `time_diff` and `height_diff` are as in [`calculate_asert`]:
/// `parent.time - anchor_parent.time` and `parent.height - anchor.height`.
/// (For a genesis anchor, which has no parent, BCHN uses the anchor's own
/// time.)
///
/// # Errors
///
/// [`AsertError::InvalidAnchorBits`] if `anchor_bits` is negative,
/// overflowing or zero, and otherwise as [`try_calculate_asert`].
pub fn next_bits_asert(
    anchor_bits: u32,
    params: &AsertParams,
    time_diff: i64,
    height_diff: i64,
) -> Result<u32, AsertError> {
    let anchor_target = target_from_compact(anchor_bits)?;
    try_calculate_asert(&anchor_target, params, time_diff, height_diff).map(compact_from_target)
}

/// `(time_diff - spacing * (height_diff + 1)) * 65536 / half_life`, truncated
/// toward zero like C++ integer division.
///
/// Computed in 128 bits: with 64-bit inputs, `spacing * (height_diff + 1)` is
/// below 2^126 and the difference below 2^127 in magnitude, so neither
/// saturates. The multiplication by 65536 saturates only when the difference
/// is at least 2^111 in magnitude; the exponent is then at least 2^64 in
/// magnitude either way, far beyond the ±256 halvings that already pin the
/// result to `pow_limit` or 1, so saturation does not change the result.
fn fixed_point_exponent(
    params: &AsertParams,
    time_diff: i64,
    height_diff: i64,
) -> Result<i128, AsertError> {
    let ideal_time =
        i128::from(params.target_spacing).saturating_mul(i128::from(height_diff).saturating_add(1));
    let schedule_delta = i128::from(time_diff).saturating_sub(ideal_time);
    schedule_delta
        .saturating_mul(RADIX)
        .checked_div(i128::from(params.half_life))
        // Only a zero half-life makes the division fail (a positive divisor
        // cannot overflow), and `validate` has ruled that out.
        .ok_or(AsertError::NonPositiveHalfLife(params.half_life))
}

/// `65536 * 2^(frac / 65536)`, approximated by aserti3-2d's cubic:
/// `65536 + ((195766423245049 f + 971821376 f^2 + 5127 f^3 + 2^47) >> 48)`.
///
/// The arithmetic is C++'s unsigned 64-bit arithmetic, which wraps; with
/// `f < 2^16` every term is below 2^64 and their sum peaks at
/// 18 446 563 080 438 344 768 < 2^64 for `f = 65535` (checked for every `f` by
/// the tests), so nothing actually wraps. The result is in `[65536, 131071]`.
fn fractional_factor(frac: u16) -> u64 {
    let f = u64::from(frac);
    let polynomial = 195_766_423_245_049_u64
        .wrapping_mul(f)
        .wrapping_add(971_821_376_u64.wrapping_mul(f).wrapping_mul(f))
        .wrapping_add(5_127_u64.wrapping_mul(f).wrapping_mul(f).wrapping_mul(f))
        .wrapping_add(1 << 47);
    65_536_u64.wrapping_add(polynomial >> 48)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;
