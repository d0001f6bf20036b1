//! Transactions from untrusted bytes: decoding never panics, and anything
//! that decodes re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_shared_types::{decode_exact, Encode, Transaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = decode_exact::<Transaction>(data) {
        assert_eq!(tx.encode(), data);
        let _ = (tx.txid(), tx.wtxid());
    }
});
