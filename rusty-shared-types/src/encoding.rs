//! The canonical binary encoding: one byte string per value, used for hashing,
//! the wire and the database.
//!
//! - Fixed-width integers are little-endian.
//! - Lengths and counts are CompactSize (Bitcoin's varint): `< 0xfd` in one
//!   byte, then `0xfd`+u16, `0xfe`+u32, `0xff`+u64. Decoders reject any
//!   non-minimal form, so every value has exactly one encoding.
//! - `Option<T>` is a `0`/`1` tag byte followed by the value.
//! - Decoders check a collection's length against its cap *and* against the
//!   bytes that remain before allocating, and [`decode_exact`] rejects
//!   trailing bytes.

use thiserror::Error;

/// Why a byte string is not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of input (needed {needed} more bytes)")]
    UnexpectedEnd { needed: usize },
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A CompactSize was not in its shortest form.
    #[error("non-minimal length encoding")]
    NonMinimalLength,
    /// A length or count exceeded its cap.
    #[error("{what} has {len} elements, more than the limit of {max}")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    /// An enum or option tag that no variant uses.
    #[error("invalid {what} tag {tag}")]
    InvalidTag { what: &'static str, tag: u64 },
    /// A value that decodes but breaks a type invariant.
    #[error("invalid {0}")]
    InvalidValue(&'static str),
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// Types with a canonical binary encoding.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The encoding of `self` as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size_hint());
        self.encode_to(&mut out);
        out
    }

    /// A capacity hint for [`Encode::encode`]; need not be exact.
    fn encoded_size_hint(&self) -> usize {
        64
    }
}

/// Types that decode from their canonical encoding.
pub trait Decode: Sized {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self>;
}

/// Decodes exactly one value from `bytes`, rejecting trailing bytes.
pub fn decode_exact<T: Decode>(bytes: &[u8]) -> DecodeResult<T> {
    let mut r = Reader::new(bytes);
    let v = T::decode_from(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(&self) -> DecodeResult<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }

    pub fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> DecodeResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A minimal CompactSize.
    pub fn compact_size(&mut self) -> DecodeResult<u64> {
        let tag = self.u8()?;
        let (v, min) = match tag {
            0xfd => (u64::from(self.u16()?), 0xfd),
            0xfe => (u64::from(self.u32()?), 0x1_0000),
            0xff => (self.u64()?, 0x1_0000_0000),
            t => return Ok(u64::from(t)),
        };
        if v < min {
            return Err(DecodeError::NonMinimalLength);
        }
        Ok(v)
    }

    /// A collection length, checked against `max` and against the bytes left
    /// (each element takes at least `min_elem_size` bytes) before anything is
    /// allocated.
    pub fn length(
        &mut self,
        what: &'static str,
        max: usize,
        min_elem_size: usize,
    ) -> DecodeResult<usize> {
        let len = self.compact_size()?;
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        // `len <= max <= usize::MAX`, so the cast is lossless.
        let len = len as usize;
        let needed = len.saturating_mul(min_elem_size.max(1));
        if needed > self.buf.len() && min_elem_size > 0 {
            return Err(DecodeError::UnexpectedEnd {
                needed: needed - self.buf.len(),
            });
        }
        Ok(len)
    }

    /// Length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> DecodeResult<Vec<u8>> {
        let len = self.length(what, max, 1)?;
        Ok(self.take(len)?.to_vec())
    }

    /// A length-prefixed vector of at most `max` elements, each at least
    /// `min_elem_size` encoded bytes.
    pub fn vec<T: Decode>(
        &mut self,
        what: &'static str,
        max: usize,
        min_elem_size: usize,
    ) -> DecodeResult<Vec<T>> {
        let len = self.length(what, max, min_elem_size)?;
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(T::decode_from(self)?);
        }
        Ok(out)
    }

    /// `0` → `None`, `1` → `Some`; any other tag is an error.
    pub fn option<T: Decode>(&mut self, what: &'static str) -> DecodeResult<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode_from(self)?)),
            t => Err(DecodeError::InvalidTag {
                what,
                tag: u64::from(t),
            }),
        }
    }
}

/// Appends a minimal CompactSize.
pub fn write_compact_size(out: &mut Vec<u8>, v: u64) {
    if v < 0xfd {
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xfd);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xfe);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends length-prefixed bytes.
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_compact_size(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a length-prefixed sequence.
pub fn write_vec<T: Encode>(out: &mut Vec<u8>, items: &[T]) {
    write_compact_size(out, items.len() as u64);
    for i in items {
        i.encode_to(out);
    }
}

/// Appends an option tag and value.
pub fn write_option<T: Encode>(out: &mut Vec<u8>, v: &Option<T>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            v.encode_to(out);
        }
    }
}

macro_rules! int_codec {
    ($t:ty, $read:ident) => {
        impl Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn encoded_size_hint(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
        impl Decode for $t {
            fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
                r.$read()
            }
        }
    };
}
int_codec!(u8, u8);
int_codec!(u16, u16);
int_codec!(u32, u32);
int_codec!(u64, u64);

impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn encoded_size_hint(&self) -> usize {
        N
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.array()
    }
}

impl Encode for crate::Hash256 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn encoded_size_hint(&self) -> usize {
        32
    }
}

impl Decode for crate::Hash256 {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(crate::Hash256(r.array()?))
    }
}

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(DecodeError::InvalidTag {
                what: "bool",
                tag: u64::from(t),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn compact_size_rejects_non_minimal() {
        assert_eq!(
            Reader::new(&[0xfd, 0x10, 0x00]).compact_size(),
            Err(DecodeError::NonMinimalLength)
        );
        assert_eq!(
            Reader::new(&[0xfe, 0xff, 0xff, 0, 0]).compact_size(),
            Err(DecodeError::NonMinimalLength)
        );
        assert_eq!(Reader::new(&[0xfd, 0xfd, 0x00]).compact_size(), Ok(0xfd));
    }

    #[test]
    fn length_checked_before_allocation() {
        // Claims 2^32 elements with 3 bytes of input: must fail without allocating.
        let bytes = [0xff, 0, 0, 0, 0, 1, 0, 0, 0];
        let r: DecodeResult<Vec<u64>> = Reader::new(&bytes).vec("test", usize::MAX, 8);
        assert!(matches!(r, Err(DecodeError::UnexpectedEnd { .. })));
        let r: DecodeResult<Vec<u64>> = Reader::new(&bytes).vec("test", 10, 8);
        assert!(matches!(r, Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn trailing_bytes_rejected() {
        assert_eq!(decode_exact::<u32>(&[1, 0, 0, 0]), Ok(1));
        assert_eq!(
            decode_exact::<u32>(&[1, 0, 0, 0, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    proptest! {
        #[test]
        fn compact_size_round_trip(v: u64) {
            let mut out = Vec::new();
            write_compact_size(&mut out, v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.compact_size().unwrap(), v);
            prop_assert!(r.finish().is_ok());
        }
    }
}
