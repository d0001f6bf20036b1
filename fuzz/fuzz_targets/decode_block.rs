//! Blocks from untrusted bytes: decoding never panics, and anything that
//! decodes re-encodes to exactly the input (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_shared_types::{decode_exact, Block, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = decode_exact::<Block>(data) {
        assert_eq!(block.encode(), data);
        let _ = block.hash();
    }
});
