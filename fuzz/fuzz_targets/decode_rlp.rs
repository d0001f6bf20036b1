//! RLP from untrusted bytes (Ethereum transactions, trie proofs): decoding
//! never panics, and anything that decodes re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_shared_types::rlp::{decode, encode, Item, Kind, Rlp};

fn to_item(r: &Rlp<'_>) -> Item {
    match &r.kind {
        Kind::Bytes(b) => Item::Bytes(b.to_vec()),
        Kind::List(items) => Item::List(items.iter().map(to_item).collect()),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode(data) {
        assert_eq!(item.raw, data);
        assert_eq!(encode(&to_item(&item)), data);
        let _ = item.uint();
    }
});
