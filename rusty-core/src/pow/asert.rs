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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bitcoin Cash mainnet: the parameters of every published vector.
    fn bch_params() -> AsertParams {
        AsertParams {
            target_spacing: 600,
            half_life: 2 * 24 * 3600,
            pow_limit: hex_u256("00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        }
    }

    fn hex_u256(s: &str) -> U256 {
        U256::from_str_radix(s, 16).expect("valid hex")
    }

    // ----------------------------------------------------------------------
    // The published aserti3-2d test vectors (BCHN qa-assets
    // test_vectors/aserti3-2d, generated by BCHN's gen_asert_test_vectors
    // from the C++ CalculateASERT).
    //
    // Each row `<iteration> <height> <time> <nBits>` gives the nBits of the
    // block *after* a block at <height> with timestamp <time>: the generator
    // calls CalculateASERT(anchor target, 600, time - anchor parent time,
    // height - anchor height, powLimit, 172800) and prints GetCompact() of
    // the result (see BCHN contrib/testgen/gen_asert_test_vectors.cpp and
    // validate_nbits_aserti3_2d.py). So a row's height and time are the
    // *parent*'s, and height_diff = height - anchor height (no -1).
    // ----------------------------------------------------------------------

    /// One row, reduced to the algorithm's inputs.
    #[derive(Debug)]
    struct Row {
        line: usize,
        height_diff: i64,
        time_diff: i64,
        expected_bits: u32,
    }

    #[derive(Debug)]
    struct Run {
        name: &'static str,
        anchor_bits: u32,
        rows: Vec<Row>,
    }

    fn parse_bits(s: &str) -> u32 {
        let hex = s.trim().strip_prefix("0x").expect("nBits in 0x form");
        u32::from_str_radix(hex, 16).expect("nBits hex")
    }

    /// Parses a verbatim qa-assets run file, checking its header
    /// (iteration count, start height and time) against its rows.
    fn parse_run_file(name: &'static str, text: &str) -> Run {
        let mut anchor_height: Option<u64> = None;
        let mut anchor_time: Option<i64> = None;
        let mut anchor_bits: Option<u32> = None;
        let mut start: Option<(u64, i64)> = None;
        let mut start_height: Option<u64> = None;
        let mut start_time: Option<i64> = None;
        let mut iterations: Option<usize> = None;
        let mut rows = Vec::new();

        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix("##") {
                let (key, value) = header.split_once(':').expect("header has a colon");
                let value = value.trim();
                match key.trim() {
                    "description" => {}
                    "anchor height" => anchor_height = Some(value.parse().expect("height")),
                    // Older generator versions said "ancestor", newer "parent".
                    "anchor ancestor time" | "anchor parent time" => {
                        anchor_time = Some(value.parse().expect("time"));
                    }
                    "anchor nBits" => anchor_bits = Some(parse_bits(value)),
                    "start height" => start_height = Some(value.parse().expect("height")),
                    "start time" => start_time = Some(value.parse().expect("time")),
                    "iterations" => iterations = Some(value.parse().expect("count")),
                    other => panic!("{name}: unknown header {other:?}"),
                }
                continue;
            }
            if line.starts_with('#') {
                continue; // column legend
            }

            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 4, "{name}:{}: malformed row", index + 1);
            let iteration: usize = fields[0].parse().expect("iteration");
            let height: u64 = fields[1].parse().expect("height");
            let time: i64 = fields[2].parse().expect("time");
            assert_eq!(iteration, rows.len() + 1, "{name}:{}: iteration", index + 1);
            if start.is_none() {
                start = Some((height, time));
            }

            let anchor_height = anchor_height.expect("anchor height before rows");
            let anchor_time = anchor_time.expect("anchor time before rows");
            // Heights in run10 exceed i64::MAX; the difference does not.
            let height_diff = height.checked_sub(anchor_height).expect("row above anchor");
            rows.push(Row {
                line: index + 1,
                height_diff: i64::try_from(height_diff).expect("small height diff"),
                time_diff: time.checked_sub(anchor_time).expect("time diff"),
                expected_bits: parse_bits(fields[3]),
            });
        }

        assert_eq!(Some(rows.len()), iterations, "{name}: row count vs header");
        assert_eq!(
            start,
            start_height.zip(start_time),
            "{name}: start vs header"
        );
        Run {
            name,
            anchor_bits: anchor_bits.expect("anchor nBits"),
            rows,
        }
    }

    /// Parses a `*.diffs` file: `<height_diff> <time_diff> <nBits>` rows
    /// relative to the anchor named in an `# anchor nBits:` comment.
    fn parse_diffs_file(name: &'static str, text: &str) -> Run {
        let mut anchor_bits = None;
        let mut rows = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(bits) = comment.trim().strip_prefix("anchor nBits:") {
                    anchor_bits = Some(parse_bits(bits));
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 3, "{name}:{}: malformed row", index + 1);
            rows.push(Row {
                line: index + 1,
                height_diff: fields[0].parse().expect("height diff"),
                time_diff: fields[1].parse().expect("time diff"),
                expected_bits: parse_bits(fields[2]),
            });
        }
        Run {
            name,
            anchor_bits: anchor_bits.expect("anchor nBits comment"),
            rows,
        }
    }

    macro_rules! vector_file {
        ($file:literal) => {
            (
                $file,
                include_str!(concat!("../../tests/data/asert/", $file)),
            )
        };
    }

    /// Verbatim copies of qa-assets run01..run10, with their row counts.
    const RUN_FILES: [((&str, &str), usize); 10] = [
        (vector_file!("run01"), 10),
        (vector_file!("run02"), 10),
        (vector_file!("run03"), 10),
        (vector_file!("run04"), 225),
        (vector_file!("run05"), 225),
        (vector_file!("run06"), 1000),
        (vector_file!("run07"), 1000),
        (vector_file!("run08"), 500),
        (vector_file!("run09"), 10),
        (vector_file!("run10"), 10),
    ];

    /// Prefixes of run11 and run12 in third-party difference form (see the
    /// files' headers for provenance).
    const DIFF_FILES: [((&str, &str), usize); 2] = [
        (vector_file!("run11-prefix.diffs"), 201),
        (vector_file!("run12-prefix.diffs"), 94),
    ];

    fn check_run(run: &Run) {
        let params = bch_params();
        let anchor_target = target_from_compact(run.anchor_bits).expect("anchor bits");
        for row in &run.rows {
            let bits = next_bits_asert(run.anchor_bits, &params, row.time_diff, row.height_diff)
                .expect("valid inputs");
            assert_eq!(
                bits, row.expected_bits,
                "{} line {}: height_diff {} time_diff {}: got {bits:#010x}, expected {:#010x}",
                run.name, row.line, row.height_diff, row.time_diff, row.expected_bits,
            );
            let target = calculate_asert(&anchor_target, &params, row.time_diff, row.height_diff);
            assert_eq!(compact_from_target(target), row.expected_bits);
        }
    }

    #[test]
    fn published_vectors_run01_to_run10() {
        let mut total = 0;
        for ((name, text), expected_rows) in RUN_FILES {
            let run = parse_run_file(name, text);
            assert_eq!(run.rows.len(), expected_rows, "{name}");
            check_run(&run);
            total += run.rows.len();
        }
        assert_eq!(total, 3000);
    }

    #[test]
    fn published_vectors_run11_run12_prefixes() {
        for ((name, text), expected_rows) in DIFF_FILES {
            let run = parse_diffs_file(name, text);
            assert_eq!(run.rows.len(), expected_rows, "{name}");
            check_run(&run);
        }
    }

    // ----------------------------------------------------------------------
    // BCHN src/test/pow_tests.cpp, calculate_asert_test (BCH mainnet
    // parameters). CalculateASERT's time difference is to the anchor's
    // *parent*; the test assumes that parent is an ideal 600 s earlier.
    // ----------------------------------------------------------------------

    const PARENT_TIME_DIFF: i64 = 600;

    #[test]
    fn bchn_calculate_asert_sequence() {
        let params = bch_params();
        let pow_limit = params.pow_limit;
        let pow_limit_bits = compact_from_target(pow_limit);
        let calc = |target: U256, time_diff: i64, height_diff: i64| {
            calculate_asert(&target, &params, time_diff, height_diff)
        };
        let initial = pow_limit >> 4;

        // Steady.
        let next = calc(initial, PARENT_TIME_DIFF + 600, 1);
        assert_eq!(next, initial);

        // A block that arrives in half the expected time.
        let next = calc(initial, PARENT_TIME_DIFF + 600 + 300, 2);
        assert!(next < initial);

        // A block that makes up for the shortfall restores the target.
        let prev = next;
        let next = calc(initial, PARENT_TIME_DIFF + 600 + 300 + 900, 3);
        assert!(next > prev);
        assert_eq!(next, initial);

        // Two days ahead of schedule doubles the target, two days behind
        // halves it.
        let prev = next;
        let next = calc(prev, PARENT_TIME_DIFF + 288 * 1200, 288);
        assert_eq!(next, prev * U256::from(2_u64));
        let prev = next;
        let mut next = calc(prev, PARENT_TIME_DIFF, 288);
        assert_eq!(next, prev / U256::from(2_u64));
        assert_eq!(next, initial);

        // Ramping up from initial to the pow limit takes 4 doublings.
        for _ in 0..3 {
            let prev = next;
            next = calc(prev, PARENT_TIME_DIFF + 288 * 1200, 288);
            assert_eq!(next, prev * U256::from(2_u64));
            assert!(next < pow_limit);
            assert_ne!(compact_from_target(next), pow_limit_bits);
        }
        let prev = next;
        let next = calc(prev, PARENT_TIME_DIFF + 288 * 1200, 288);
        assert_eq!(next, prev * U256::from(2_u64));
        assert_eq!(compact_from_target(next), pow_limit_bits);

        // Fast periods cannot push the target past the limit, even where a
        // 256-bit product would overflow.
        let next = calc(prev, PARENT_TIME_DIFF + 512 * 144 * 600, 0);
        assert_eq!(compact_from_target(next), pow_limit_bits);

        // ~446 days of missing blocks bring the pow limit down to 1.
        let next = calc(pow_limit, 0, 2 * (256 - 33) * 144);
        assert_eq!(compact_from_target(next), compact_from_target(U256::ONE));
    }

    #[test]
    fn bchn_calculate_asert_table() {
        let params = bch_params();
        let pow_limit = params.pow_limit;
        let pow_limit_bits = compact_from_target(pow_limit);
        let single_300 =
            hex_u256("00000000ffb1ffffffffffffffffffffffffffffffffffffffffffffffffffff");
        let funny_ref =
            hex_u256("000000008000000000000000000fffffffffffffffffffffffffffffffffffff");
        let one = U256::ONE;

        // (anchor target, time diff excluding the parent's 600 s, height
        // diff, expected target, expected bits)
        let cases: [(U256, i64, i64, U256, u32); 18] = [
            (pow_limit, 0, 2 * 144, pow_limit >> 1, 0x1c7f_ffff),
            (pow_limit, 0, 4 * 144, pow_limit >> 2, 0x1c3f_ffff),
            (pow_limit >> 1, 0, 2 * 144, pow_limit >> 2, 0x1c3f_ffff),
            (pow_limit >> 2, 0, 2 * 144, pow_limit >> 3, 0x1c1f_ffff),
            (pow_limit >> 3, 0, 2 * 144, pow_limit >> 4, 0x1c0f_ffff),
            (
                pow_limit,
                0,
                2 * (256 - 34) * 144,
                U256::from(3_u64),
                0x0103_0000,
            ),
            (
                pow_limit,
                0,
                2 * (256 - 34) * 144 + 119,
                U256::from(3_u64),
                0x0103_0000,
            ),
            (
                pow_limit,
                0,
                2 * (256 - 34) * 144 + 120,
                U256::from(2_u64),
                0x0102_0000,
            ),
            (
                pow_limit,
                0,
                2 * (256 - 33) * 144 - 1,
                U256::from(2_u64),
                0x0102_0000,
            ),
            // 1 bit less since we do not need to shift to 0.
            (pow_limit, 0, 2 * (256 - 33) * 144, one, 0x0101_0000),
            // More will not decrease below 1.
            (pow_limit, 0, 2 * (256 - 32) * 144, one, 0x0101_0000),
            (one, 0, 2 * (256 - 32) * 144, one, 0x0101_0000),
            (
                pow_limit,
                2 * (512 - 32) * 144,
                0,
                pow_limit,
                pow_limit_bits,
            ),
            (one, (512 - 64) * 144 * 600, 0, pow_limit, pow_limit_bits),
            // Clamps to the pow limit.
            (pow_limit, 300, 1, single_300, 0x1d00_ffb1),
            // Confuses any attempt to detect overflow by inspecting the result.
            (funny_ref, 600 * 2 * 33 * 144, 0, pow_limit, pow_limit_bits),
            // Overflow to exactly 2^256.
            (one, 600 * 2 * 256 * 144, 0, pow_limit, pow_limit_bits),
            // Just under the pow limit (not clamped) yet over its nBits.
            (
                one,
                600 * 2 * 224 * 144 - 1,
                0,
                U256::from(0xf_fff8_u64) << 204,
                pow_limit_bits,
            ),
        ];
        for (anchor, time_diff, height_diff, expected, expected_bits) in cases {
            let time_diff = PARENT_TIME_DIFF + time_diff;
            let next = calculate_asert(&anchor, &params, time_diff, height_diff);
            assert_eq!(
                next, expected,
                "anchor {anchor:#x} time {time_diff} height {height_diff}"
            );
            assert_eq!(compact_from_target(next), expected_bits);
        }
    }

    // ----------------------------------------------------------------------
    // The fixed-point pieces.
    // ----------------------------------------------------------------------

    #[test]
    fn factor_polynomial_never_wraps_and_is_monotonic() {
        let mut previous = 0;
        for frac in 0..=u16::MAX {
            let f = u128::from(frac);
            let exact =
                195_766_423_245_049 * f + 971_821_376 * f * f + 5_127 * f * f * f + (1_u128 << 47);
            assert!(exact < 1_u128 << 64, "polynomial wraps at {frac}");
            let factor = fractional_factor(frac);
            assert_eq!(u128::from(factor), 65_536 + (exact >> 48));
            assert!(factor >= previous);
            previous = factor;
            // Within the advertised 0.013 % of 65536 * 2^(frac / 65536)
            // (floating point is fine in a test).
            let ideal = 65_536.0 * (f64::from(frac) / 65_536.0).exp2();
            assert!(
                (factor as f64 - ideal).abs() / ideal < 1.3e-4,
                "error at {frac}"
            );
        }
        assert_eq!(fractional_factor(0), 65_536);
        assert_eq!(fractional_factor(u16::MAX), 131_071);
    }

    #[test]
    fn exponent_truncates_toward_zero_and_shifts_floor() {
        let params = bch_params();
        // One second behind schedule: 65536 / 172800 truncates to 0.
        assert_eq!(fixed_point_exponent(&params, 601, 0), Ok(0));
        // One second ahead: -65536 / 172800 also truncates to 0 (not -1).
        assert_eq!(fixed_point_exponent(&params, 599, 0), Ok(0));
        // Three seconds ahead: -196608 / 172800 = -1.13 truncates to -1, whose
        // floor shift is -1 with fraction 65535.
        let e = fixed_point_exponent(&params, 597, 0).expect("valid");
        assert_eq!(e, -1);
        assert_eq!(e >> RADIX_BITS, -1);
        assert_eq!(e as u16, u16::MAX);
        // Exactly one half-life behind.
        assert_eq!(fixed_point_exponent(&params, 600 + 172_800, 0), Ok(RADIX));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let params = bch_params();
        let anchor = params.pow_limit >> 8;
        assert_eq!(
            try_calculate_asert(&anchor, &params, 600, -1),
            Err(AsertError::NegativeHeightDiff(-1))
        );
        assert_eq!(
            try_calculate_asert(&U256::ZERO, &params, 600, 0),
            Err(AsertError::AnchorTargetOutOfRange)
        );
        assert_eq!(
            try_calculate_asert(&(params.pow_limit + U256::ONE), &params, 600, 0),
            Err(AsertError::AnchorTargetOutOfRange)
        );
        let bad = AsertParams {
            half_life: 0,
            ..params
        };
        assert_eq!(
            try_calculate_asert(&anchor, &bad, 600, 0),
            Err(AsertError::NonPositiveHalfLife(0))
        );
        let bad = AsertParams {
            target_spacing: -600,
            ..params
        };
        assert_eq!(
            try_calculate_asert(&anchor, &bad, 600, 0),
            Err(AsertError::NonPositiveTargetSpacing(-600))
        );
        let bad = AsertParams {
            pow_limit: U256::ZERO,
            ..params
        };
        assert_eq!(bad.validate(), Err(AsertError::ZeroPowLimit));

        assert_eq!(
            next_bits_asert(0x0492_3456, &params, 600, 0),
            Err(AsertError::InvalidAnchorBits(CompactError::Negative))
        );
        assert_eq!(
            next_bits_asert(0, &params, 600, 0),
            Err(AsertError::InvalidAnchorBits(CompactError::Zero))
        );
        // Valid bits, but easier than the pow limit.
        assert_eq!(
            next_bits_asert(0x1e00_ffff, &params, 600, 0),
            Err(AsertError::AnchorTargetOutOfRange)
        );
    }

    #[test]
    #[should_panic(expected = "precondition")]
    fn calculate_asert_panics_on_negative_height_diff() {
        let params = bch_params();
        let _ = calculate_asert(&params.pow_limit, &params, 0, -1);
    }

    #[test]
    fn extreme_inputs_pin_to_the_limits() {
        let params = bch_params();
        let anchor = params.pow_limit >> 40;
        for height_diff in [0, 1, i64::MAX] {
            assert_eq!(calculate_asert(&anchor, &params, i64::MAX, height_diff), {
                if height_diff == i64::MAX {
                    U256::ONE
                } else {
                    params.pow_limit
                }
            });
            assert_eq!(
                calculate_asert(&anchor, &params, i64::MIN, height_diff),
                U256::ONE
            );
        }
        // Minimal half-life and huge spacing: the 128-bit exponent saturates.
        let wild = AsertParams {
            target_spacing: i64::MAX,
            half_life: 1,
            ..params
        };
        assert_eq!(
            calculate_asert(&anchor, &wild, i64::MIN, i64::MAX),
            U256::ONE
        );
        assert_eq!(calculate_asert(&anchor, &wild, i64::MAX, 1), U256::ONE);
        // On schedule even there: unchanged.
        assert_eq!(calculate_asert(&anchor, &wild, i64::MAX, 0), anchor);
    }

    /// Rusty Coin's limits are above BCHN's 2^224 bound (e.g. regtest bits
    /// 0x207fffff); the 320-bit product keeps ASERT exact there.
    #[test]
    fn pow_limits_above_2_pow_224() {
        for limit_bits in [0x207f_ffff_u32, 0x1f0f_ffff, 0x2100_ffff] {
            let pow_limit = target_from_compact(limit_bits).expect("valid limit");
            let params = AsertParams {
                target_spacing: 150,
                half_life: 21_600,
                pow_limit,
            };
            // At the limit and on schedule: unchanged.
            assert_eq!(
                calculate_asert(&pow_limit, &params, 150 * 11, 10),
                pow_limit
            );
            // One half-life ahead of schedule halves the target exactly when
            // the low bit is clear.
            let even = (pow_limit >> 1) << 1;
            assert_eq!(
                calculate_asert(&even, &params, 150 * 11 - 21_600, 10),
                even >> 1
            );
            // Behind schedule from the limit stays at the limit.
            assert_eq!(calculate_asert(&pow_limit, &params, 1 << 40, 10), pow_limit);
            // One half-life behind from a quarter of the limit doubles it.
            let quarter = pow_limit >> 2;
            assert_eq!(
                calculate_asert(&quarter, &params, 150 * 11 + 21_600, 10),
                quarter << 1
            );
        }
    }

    // ----------------------------------------------------------------------
    // A line-by-line port of BCHN's CalculateASERT with 64-bit exponent and
    // wrapping 256-bit arithmetic, used as a differential oracle on the
    // domain BCHN accepts.
    // ----------------------------------------------------------------------

    fn bchn_literal(
        ref_target: U256,
        spacing: i64,
        time_diff: i64,
        height_diff: i64,
        pow_limit: U256,
        half_life: i64,
    ) -> U256 {
        assert!(ref_target > U256::ZERO && ref_target <= pow_limit);
        assert!(pow_limit >> 224 == U256::ZERO);
        assert!(height_diff >= 0);
        assert!((time_diff - spacing * height_diff).abs() < (1_i64 << 47));
        let exponent: i64 = ((time_diff - spacing * (height_diff + 1)) * 65536) / half_life;
        let mut shifts: i64 = exponent >> 16;
        let frac = exponent as u16;
        assert_eq!(exponent, shifts * 65536 + i64::from(frac));
        let f = u64::from(frac);
        let factor: u32 = 65536
            + ((195_766_423_245_049_u64 * f
                + 971_821_376_u64 * f * f
                + 5127_u64 * f * f * f
                + (1_u64 << 47))
                >> 48) as u32;
        let mut next = ref_target.wrapping_mul(U256::from(factor));
        shifts -= 16;
        if shifts <= 0 {
            next = next.wrapping_shr((-shifts) as u32 as usize);
        } else {
            if next.bit_len() as i64 + shifts > 255 {
                return pow_limit;
            }
            next = next.wrapping_shl(shifts as u32 as usize);
        }
        if next == U256::ZERO {
            return U256::ONE;
        }
        if next > pow_limit {
            return pow_limit;
        }
        next
    }

    fn check_against_bchn_literal(
        limit: U256,
        anchor: U256,
        spacing: i64,
        half_life: i64,
        time_diff: i64,
        height_diff: i64,
    ) -> Result<(), TestCaseError> {
        // BCHN needs pow_limit < 2^224.
        let pow_limit = (limit >> 32_usize).max(U256::ONE);
        let anchor = anchor % pow_limit + U256::ONE;
        let params = AsertParams {
            target_spacing: spacing,
            half_life,
            pow_limit,
        };
        prop_assert_eq!(
            calculate_asert(&anchor, &params, time_diff, height_diff),
            bchn_literal(
                anchor,
                spacing,
                time_diff,
                height_diff,
                pow_limit,
                half_life
            )
        );
        Ok(())
    }

    /// A U256 of random magnitude: random bits shifted right by 0..=255.
    fn any_u256() -> impl Strategy<Value = U256> {
        (any::<[u8; 32]>(), 0_usize..=255).prop_map(|(b, s)| U256::from_be_bytes(b) >> s)
    }

    /// Parameters with an anchor in range. Spacing and half-life are
    /// realistic (up to an hour and about eleven days) when `realistic`, and
    /// anywhere in the accepted domain half the time otherwise.
    fn params_and_anchor(realistic: bool) -> impl Strategy<Value = (AsertParams, U256)> {
        (
            any_u256(),
            any_u256(),
            1_i64..=i64::MAX,
            1_i64..=i64::MAX,
            any::<bool>(),
        )
            .prop_map(move |(limit, anchor, spacing, half_life, coin)| {
                let pow_limit = limit.max(U256::ONE);
                let anchor = anchor % pow_limit + U256::ONE;
                let (target_spacing, half_life) = if realistic || coin {
                    (spacing % 3_600 + 1, half_life % 1_000_000 + 1)
                } else {
                    (spacing, half_life)
                };
                (
                    AsertParams {
                        target_spacing,
                        half_life,
                        pow_limit,
                    },
                    anchor,
                )
            })
    }

    /// Time differences: realistic ones most of the time, any i64 sometimes.
    fn any_time_diff() -> impl Strategy<Value = i64> {
        prop_oneof![4 => -10_000_000_i64..=100_000_000, 1 => any::<i64>()]
    }

    fn any_height_diff() -> impl Strategy<Value = i64> {
        prop_oneof![4 => 0_i64..=100_000, 1 => 0_i64..=i64::MAX]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Wide time differences with half-lives of at least 2^15 s, so
        /// that BCHN's 32-bit shift counts cannot truncate.
        #[test]
        fn matches_bchn_literal_port_long_half_lives(
            limit in any_u256(),
            anchor in any_u256(),
            spacing in 1_i64..=(1 << 20),
            half_life in (1_i64 << 15)..=(1 << 40),
            height_diff in 0_i64..=(1 << 26),
            time_diff in -(1_i64 << 44)..=(1 << 44),
        ) {
            check_against_bchn_literal(limit, anchor, spacing, half_life, time_diff, height_diff)?;
        }

        /// Any half-life, with time differences below 2^31 s.
        #[test]
        fn matches_bchn_literal_port_any_half_life(
            limit in any_u256(),
            anchor in any_u256(),
            spacing in 1_i64..=(1 << 10),
            half_life in 1_i64..=(1 << 40),
            height_diff in 0_i64..=(1 << 20),
            time_diff in -(1_i64 << 30)..=(1 << 30),
        ) {
            check_against_bchn_literal(limit, anchor, spacing, half_life, time_diff, height_diff)?;
        }

        #[test]
        fn result_is_within_one_and_pow_limit(
            (params, anchor) in params_and_anchor(false),
            time_diff in any_time_diff(),
            height_diff in any_height_diff(),
        ) {
            let next = calculate_asert(&anchor, &params, time_diff, height_diff);
            prop_assert!(next >= U256::ONE);
            prop_assert!(next <= params.pow_limit);
            // The compact form decodes to a valid target within the limit's.
            let bits = compact_from_target(next);
            let decoded = target_from_compact(bits).expect("valid compact");
            prop_assert!(decoded <= next);
        }

        /// More time since the anchor never makes the next block harder.
        #[test]
        fn later_parent_means_easier_or_equal_target(
            (params, anchor) in params_and_anchor(false),
            a in any_time_diff(),
            b in any_time_diff(),
            height_diff in any_height_diff(),
        ) {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(
                calculate_asert(&anchor, &params, early, height_diff)
                    <= calculate_asert(&anchor, &params, late, height_diff)
            );
        }

        /// More blocks in the same time never make the next block easier.
        #[test]
        fn more_blocks_mean_harder_or_equal_target(
            (params, anchor) in params_and_anchor(false),
            time_diff in any_time_diff(),
            a in any_height_diff(),
            b in any_height_diff(),
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(
                calculate_asert(&anchor, &params, time_diff, low)
                    >= calculate_asert(&anchor, &params, time_diff, high)
            );
        }

        /// A chain exactly on schedule keeps the anchor's target.
        #[test]
        fn on_schedule_keeps_the_target(
            (params, anchor) in params_and_anchor(false),
            height_diff in 0_i64..=1_000_000,
        ) {
            // Keep spacing * (height_diff + 1) within i64.
            let params = AsertParams {
                target_spacing: params.target_spacing % (i64::MAX / (height_diff + 1)) + 1,
                ..params
            };
            let on_time = params.target_spacing * (height_diff + 1);
            prop_assert_eq!(calculate_asert(&anchor, &params, on_time, height_diff), anchor);
        }

        /// Blocks a little off schedule move the target only a little:
        /// by at most a factor 2^(|deviation| / half_life), within the
        /// cubic's 0.013 % error and integer rounding.
        #[test]
        fn near_schedule_changes_the_target_little(
            anchor_bits in 0_u64..1 << 40,
            height_diff in 0_i64..=100_000,
            deviation in -3_600_i64..=3_600,
        ) {
            let params = bch_params();
            let anchor = (params.pow_limit >> 32) + U256::from(anchor_bits);
            let on_time = params.target_spacing * (height_diff + 1);
            let next = calculate_asert(&anchor, &params, on_time + deviation, height_diff);
            // 2^(3600 / 172800) = 1.0145; allow 1.5 %.
            let slack = anchor / U256::from(66_u64);
            prop_assert!(next <= anchor + slack && next + slack >= anchor);
            // ...and in the right direction.
            if deviation >= 0 {
                prop_assert!(next >= anchor);
            }
            if deviation <= 0 {
                prop_assert!(next <= anchor);
            }
        }

        /// One half-life later doubles the target (up to one unit of
        /// rounding), unless a clamp intervenes. (Behind schedule, so that
        /// the truncating division moves the exponent by exactly 1.0.)
        #[test]
        fn one_half_life_late_doubles_the_target(
            (params, anchor) in params_and_anchor(true),
            behind in 0_i64..=10_000_000,
            height_diff in 0_i64..=100_000,
        ) {
            let on_time = params.target_spacing * (height_diff + 1);
            let next = calculate_asert(&anchor, &params, on_time + behind, height_diff);
            let later =
                calculate_asert(&anchor, &params, on_time + behind + params.half_life, height_diff);
            if later < params.pow_limit && next > U256::ONE {
                prop_assert!(later == next << 1 || later == (next << 1) + U256::ONE);
            }
        }
    }
}
