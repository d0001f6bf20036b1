//! Ethereum-signed transactions from untrusted bytes
//! (`eth_sendRawTransaction`): decoding and sender recovery never panic,
//! and what decodes is hashed as Ethereum does and has sane fees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_crypto::eth::tx::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = decode(data) {
        assert_eq!(tx.hash, rusty_crypto::eth::keccak256(data));
        assert!(tx.fields.max_priority_fee_per_gas <= tx.fields.max_fee_per_gas);
    }
});
