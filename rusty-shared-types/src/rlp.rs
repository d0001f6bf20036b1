//! Recursive Length Prefix, Ethereum's serialisation: what its
//! transactions and the Merkle Patricia Trie's nodes are made of.
//!
//! The decoder takes untrusted bytes (transactions from the network,
//! nodes from proofs) and is strict: only the canonical encoding of an
//! item decodes (a single byte below 0x80 is never wrapped, the short form
//! is used wherever it fits, lengths have no leading zeros), nothing may
//! follow the item, and lists nest at most [`MAX_DEPTH`] deep. So anything
//! that decodes re-encodes to exactly its bytes.

use thiserror::Error;

/// Deepest list nesting the decoder follows (a trie node embeds at most
/// a few levels; transactions two).
pub const MAX_DEPTH: usize = 32;

/// An item to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Bytes(Vec<u8>),
    List(Vec<Item>),
    /// An item encoded already, put in as it is (a trie node embedded in
    /// its parent).
    Raw(Vec<u8>),
}

impl Item {
    /// An unsigned integer: big-endian without leading zeros (0 is the
    /// empty string).
    pub fn uint(value: u128) -> Item {
        Item::uint_bytes(&value.to_be_bytes())
    }

    /// A big-endian integer of any width, leading zeros dropped.
    pub fn uint_bytes(value: &[u8]) -> Item {
        let start = value.iter().position(|b| *b != 0).unwrap_or(value.len());
        Item::Bytes(value[start..].to_vec())
    }
}

pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(item, &mut out);
    out
}

fn encode_into(item: &Item, out: &mut Vec<u8>) {
    match item {
        Item::Bytes(bytes) if bytes.len() == 1 && bytes[0] < 0x80 => out.push(bytes[0]),
        Item::Bytes(bytes) => {
            header(0x80, bytes.len(), out);
            out.extend_from_slice(bytes);
        }
        Item::List(items) => {
            let mut payload = Vec::new();
            for item in items {
                encode_into(item, &mut payload);
            }
            header(0xc0, payload.len(), out);
            out.extend_from_slice(&payload);
        }
        Item::Raw(encoded) => out.extend_from_slice(encoded),
    }
}

/// Appends `bytes` as an RLP string (for encoders that write in one pass
/// instead of building [`Item`]s).
pub fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    if let [b] = bytes {
        if *b < 0x80 {
            out.push(*b);
            return;
        }
    }
    header(0x80, bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Appends the header of a list whose items take `payload_len` bytes.
pub fn write_list_header(payload_len: usize, out: &mut Vec<u8>) {
    header(0xc0, payload_len, out);
}

/// A string's (0x80) or a list's (0xc0) length prefix.
fn header(base: u8, len: usize, out: &mut Vec<u8>) {
    if len <= 55 {
        // len ≤ 55, so base + len stays below base + 0x38.
        out.push(base + len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        // At most 8 length bytes: base + 55 + 8 fits in a byte.
        out.push(base + 55 + (be.len() - start) as u8);
        out.extend_from_slice(&be[start..]);
    }
}

/// Why bytes are not one canonical RLP item.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RlpError {
    #[error("RLP: the input ends inside an item")]
    Truncated,
    #[error("RLP: not the canonical encoding ({0})")]
    NonCanonical(&'static str),
    #[error("RLP: {0} bytes follow the item")]
    Trailing(usize),
    #[error("RLP: lists nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("RLP: expected {0}")]
    Shape(&'static str),
}

/// A decoded item, borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlp<'a> {
    /// The item's whole encoding (header included).
    pub raw: &'a [u8],
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    Bytes(&'a [u8]),
    List(Vec<Rlp<'a>>),
}

impl<'a> Rlp<'a> {
    pub fn bytes(&self) -> Result<&'a [u8], RlpError> {
        match self.kind {
            Kind::Bytes(b) => Ok(b),
            Kind::List(_) => Err(RlpError::Shape("a string, not a list")),
        }
    }

    pub fn list(&self) -> Result<&[Rlp<'a>], RlpError> {
        match &self.kind {
            Kind::List(items) => Ok(items),
            Kind::Bytes(_) => Err(RlpError::Shape("a list, not a string")),
        }
    }

    /// A 256-bit unsigned integer (a balance, a value, a signature's `r`
    /// or `s`) as 32 big-endian bytes: at most 32 bytes, without leading
    /// zeros.
    pub fn uint256(&self) -> Result<[u8; 32], RlpError> {
        let b = self.bytes()?;
        if b.len() > 32 {
            return Err(RlpError::Shape("an integer of at most 256 bits"));
        }
        if b.first() == Some(&0) {
            return Err(RlpError::NonCanonical("an integer with a leading zero"));
        }
        let mut out = [0u8; 32];
        out[32 - b.len()..].copy_from_slice(b);
        Ok(out)
    }

    /// An unsigned integer of at most 16 bytes, without leading zeros.
    pub fn uint(&self) -> Result<u128, RlpError> {
        let b = self.bytes()?;
        if b.len() > 16 {
            return Err(RlpError::Shape("an integer of at most 128 bits"));
        }
        if b.first() == Some(&0) {
            return Err(RlpError::NonCanonical("an integer with a leading zero"));
        }
        Ok(b.iter().fold(0u128, |acc, x| (acc << 8) | u128::from(*x)))
    }
}

/// `bytes` as exactly one canonical item.
pub fn decode(bytes: &[u8]) -> Result<Rlp<'_>, RlpError> {
    let (item, used) = decode_at(bytes, 0)?;
    match bytes.len() - used {
        0 => Ok(item),
        n => Err(RlpError::Trailing(n)),
    }
}

/// One item at the start of `bytes` and how many bytes it took.
fn decode_at(bytes: &[u8], depth: usize) -> Result<(Rlp<'_>, usize), RlpError> {
    let first = *bytes.first().ok_or(RlpError::Truncated)?;
    let (is_list, header_len, payload_len) = match first {
        0x00..=0x7f => {
            return Ok((
                Rlp {
                    raw: &bytes[..1],
                    kind: Kind::Bytes(&bytes[..1]),
                },
                1,
            ))
        }
        0x80..=0xb7 => (false, 1, usize::from(first - 0x80)),
        0xb8..=0xbf => (
            false,
            1 + usize::from(first - 0xb7),
            long_len(bytes, first - 0xb7)?,
        ),
        0xc0..=0xf7 => (true, 1, usize::from(first - 0xc0)),
        0xf8..=0xff => (
            true,
            1 + usize::from(first - 0xf7),
            long_len(bytes, first - 0xf7)?,
        ),
    };
    let end = header_len
        .checked_add(payload_len)
        .ok_or(RlpError::Truncated)?;
    let payload = bytes.get(header_len..end).ok_or(RlpError::Truncated)?;
    let raw = &bytes[..end];
    if !is_list {
        if payload_len == 1 && payload[0] < 0x80 {
            return Err(RlpError::NonCanonical("a single low byte wrapped"));
        }
        return Ok((
            Rlp {
                raw,
                kind: Kind::Bytes(payload),
            },
            end,
        ));
    }
    if depth >= MAX_DEPTH {
        return Err(RlpError::TooDeep);
    }
    let mut items = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let (item, used) = decode_at(&payload[at..], depth + 1)?;
        items.push(item);
        at += used;
    }
    Ok((
        Rlp {
            raw,
            kind: Kind::List(items),
        },
        end,
    ))
}

/// The length in the `n` bytes after a long-form header.
fn long_len(bytes: &[u8], n: u8) -> Result<usize, RlpError> {
    let len_bytes = bytes
        .get(1..1 + usize::from(n))
        .ok_or(RlpError::Truncated)?;
    if len_bytes[0] == 0 {
        return Err(RlpError::NonCanonical("a length with a leading zero"));
    }
    if len_bytes.len() > std::mem::size_of::<usize>() {
        return Err(RlpError::Truncated);
    }
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if len <= 55 {
        return Err(RlpError::NonCanonical("the long form for a short length"));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lengths_around_the_short_form_boundary() {
        assert_eq!(encode(&Item::uint(0)), vec![0x80]);
        assert_eq!(encode(&Item::uint(0x7f)), vec![0x7f]);
        assert_eq!(encode(&Item::uint(0x80)), vec![0x81, 0x80]);
        assert_eq!(encode(&Item::Bytes(vec![1; 55]))[0], 0x80 + 55);
        assert_eq!(encode(&Item::Bytes(vec![1; 56]))[..2], [0xb8, 56]);
        assert_eq!(encode(&Item::Bytes(vec![1; 1024]))[..3], [0xb9, 4, 0]);
        assert_eq!(encode(&Item::List(vec![])), vec![0xc0]);
        let long = Item::List(vec![Item::Bytes(vec![2; 60])]);
        assert_eq!(encode(&long)[..2], [0xf8, 62]);
        // The yellow paper's examples.
        let dog = Item::Bytes(b"dog".to_vec());
        assert_eq!(encode(&dog), b"\x83dog");
        let cat_dog = Item::List(vec![Item::Bytes(b"cat".to_vec()), dog]);
        assert_eq!(encode(&cat_dog), b"\xc8\x83cat\x83dog");
    }

    #[test]
    fn non_canonical_and_broken_input_is_refused() {
        for (bad, why) in [
            (&[0x81, 0x05][..], "wrapped low byte"),
            (&[0xb8, 0x05, 1, 2, 3, 4, 5], "long form for a short string"),
            (&[0xb9, 0x00, 0x40], "length with a leading zero"),
            (&[0x83, b'd', b'o'], "truncated"),
            (&[0xc2, 0x83, b'd'], "item longer than its list"),
            (&[0x80, 0x80], "trailing byte"),
            (&[], "empty"),
            (
                &[0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "huge length",
            ),
        ] {
            assert!(decode(bad).is_err(), "{why}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(0xc1, MAX_DEPTH + 1)
            .chain([0xc0])
            .collect();
        assert!(decode(&deep).is_err());
        assert_eq!(
            decode(&encode(&Item::uint(0x0100)))
                .unwrap()
                .uint()
                .unwrap(),
            0x0100
        );
        assert!(decode(&[0x82, 0x00, 0x01]).unwrap().uint().is_err());
    }

    fn item() -> impl Strategy<Value = Item> {
        let leaf = proptest::collection::vec(any::<u8>(), 0..80).prop_map(Item::Bytes);
        leaf.prop_recursive(4, 64, 8, |inner| {
            proptest::collection::vec(inner, 0..8).prop_map(Item::List)
        })
    }

    fn to_item(r: &Rlp<'_>) -> Item {
        match &r.kind {
            Kind::Bytes(b) => Item::Bytes(b.to_vec()),
            Kind::List(items) => Item::List(items.iter().map(to_item).collect()),
        }
    }

    proptest! {
        #[test]
        fn items_round_trip(item in item()) {
            let bytes = encode(&item);
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(decoded.raw, &bytes[..]);
            prop_assert_eq!(to_item(&decoded), item);
        }

        #[test]
        fn whatever_decodes_re_encodes_to_its_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_eq!(encode(&to_item(&decoded)), bytes);
            }
        }

        #[test]
        fn a_flipped_bit_never_decodes_to_the_same_item(item in item(), bit in any::<usize>()) {
            let bytes = encode(&item);
            let mut flipped = bytes.clone();
            let at = bit % (bytes.len() * 8);
            flipped[at / 8] ^= 1 << (at % 8);
            if let Ok(decoded) = decode(&flipped) {
                prop_assert_ne!(to_item(&decoded), item);
            }
        }
    }
}
