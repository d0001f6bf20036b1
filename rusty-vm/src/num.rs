//! Script numbers and booleans: how stack elements are read as values.
//!
//! Numbers are little-endian sign-magnitude, exactly like Bitcoin's `CScriptNum`:
//! the high bit of the last byte is the sign, zero is the empty element, and the
//! encoding must be minimal (no trailing `0x00`/`0x80` byte unless it is needed to
//! hold the sign bit). Arithmetic operands are at most [`MAX_NUM_LEN`] = 4 bytes
//! (±2³¹−1); lock-time operands of `CHECKLOCKTIMEVERIFY` and
//! `CHECKSEQUENCEVERIFY` may use [`MAX_LOCKTIME_NUM_LEN`] = 5 bytes, enough for
//! any UNIX time until the year 19 000 (2³⁹−1).
#![deny(clippy::arithmetic_side_effects)]

use crate::{Result, ScriptError};

/// Longest number operand of arithmetic opcodes (`NUMEQUAL`, `CHECKSIGADD`).
pub const MAX_NUM_LEN: usize = 4;

/// Longest number operand of `CHECKLOCKTIMEVERIFY` and `CHECKSEQUENCEVERIFY`.
pub const MAX_LOCKTIME_NUM_LEN: usize = 5;

/// Longest encoding [`encode`] can produce (an `i64` magnitude plus a sign byte).
pub const MAX_ENCODED_LEN: usize = 9;

/// Reads `bytes` as a minimally encoded number of at most `max_len` bytes.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<i64> {
    let invalid = || ScriptError::InvalidNumber { max_len };
    // Beyond 8 bytes the magnitude would not fit an i64; no caller asks for more.
    if bytes.len() > max_len || bytes.len() > 8 {
        return Err(invalid());
    }
    let Some((&last, rest)) = bytes.split_last() else {
        return Ok(0);
    };
    // Minimal: the last byte carries magnitude bits, unless it only exists to hold
    // the sign because the previous byte's high bit is taken.
    if last & 0x7f == 0 && rest.last().is_none_or(|&b| b & 0x80 == 0) {
        return Err(invalid());
    }
    let mut le = [0u8; 8];
    le[..rest.len()].copy_from_slice(rest);
    le[rest.len()] = last & 0x7f;
    // The sign bit is masked off, so the magnitude is below 2^63 and fits.
    let magnitude = i64::try_from(u64::from_le_bytes(le)).map_err(|_| invalid())?;
    if last & 0x80 != 0 {
        magnitude.checked_neg().ok_or_else(invalid)
    } else {
        Ok(magnitude)
    }
}

/// The minimal encoding of `n`, written into a fixed buffer: `(buffer, length)`.
pub fn encode(n: i64) -> ([u8; MAX_ENCODED_LEN], usize) {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let magnitude = n.unsigned_abs();
    // Significant bytes of the magnitude: 0 for zero, at most 8.
    let len = usize::try_from(
        u64::BITS
            .saturating_sub(magnitude.leading_zeros())
            .div_ceil(8),
    )
    .unwrap_or(8);
    out[..8].copy_from_slice(&magnitude.to_le_bytes());
    let Some(top) = len.checked_sub(1) else {
        return (out, 0);
    };
    if out[top] & 0x80 != 0 {
        // The magnitude uses the sign bit: a whole byte holds the sign. `len <= 8`,
        // so the buffer has room for it.
        out[len] = if n < 0 { 0x80 } else { 0x00 };
        (out, len.saturating_add(1))
    } else {
        if n < 0 {
            out[top] |= 0x80;
        }
        (out, len)
    }
}

/// Bitcoin truthiness: false is any all-zero string, including "negative zero"
/// (zeros followed by a final `0x80`); everything else is true.
pub fn is_true(bytes: &[u8]) -> bool {
    match bytes.split_last() {
        None => false,
        Some((&last, rest)) => rest.iter().any(|&b| b != 0) || (last != 0 && last != 0x80),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn enc(n: i64) -> Vec<u8> {
        let (buf, len) = encode(n);
        buf[..len].to_vec()
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc(0), Vec::<u8>::new());
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(-1), [0x81]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x00]);
        assert_eq!(enc(-128), [0x80, 0x80]);
        assert_eq!(enc(255), [0xff, 0x00]);
        assert_eq!(enc(256), [0x00, 0x01]);
        assert_eq!(enc(0xffff), [0xff, 0xff, 0x00]);
        assert_eq!(enc(i64::from(i32::MAX)), [0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(enc(i64::from(i32::MAX) + 1), [0, 0, 0, 0x80, 0]);
    }

    #[test]
    fn rejects_non_minimal_and_long() {
        assert!(decode(&[0x00], 4).is_err());
        assert!(decode(&[0x80], 4).is_err());
        assert!(decode(&[0x01, 0x00], 4).is_err());
        assert!(decode(&[0x01, 0x80], 4).is_err());
        assert_eq!(decode(&[0x80, 0x00], 4), Ok(128));
        assert_eq!(decode(&[0x80, 0x80], 4), Ok(-128));
        assert!(decode(&[1, 2, 3, 4, 5], 4).is_err());
        assert_eq!(decode(&[1, 2, 3, 4, 5], 5), Ok(0x05_0403_0201));
    }

    #[test]
    fn truthiness() {
        assert!(!is_true(&[]));
        assert!(!is_true(&[0]));
        assert!(!is_true(&[0, 0, 0x80]));
        assert!(is_true(&[1]));
        assert!(is_true(&[0, 1, 0]));
        assert!(is_true(&[0x80, 0]));
    }

    proptest! {
        #[test]
        fn round_trip(n in -(1i64 << 39)..(1i64 << 39)) {
            let bytes = enc(n);
            prop_assert!(bytes.len() <= MAX_LOCKTIME_NUM_LEN);
            prop_assert_eq!(decode(&bytes, MAX_LOCKTIME_NUM_LEN), Ok(n));
            prop_assert_eq!(is_true(&bytes), n != 0);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            if let Ok(n) = decode(&bytes, 8) {
                prop_assert_eq!(enc(n), bytes);
            }
        }
    }
}
