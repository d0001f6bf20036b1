//! Governance payloads from untrusted transactions
//! (`rusty-shared-types/src/governance.rs`): proposals (tag 9) and vote
//! batches (tag 10). Decoding never panics; whatever decodes re-encodes to
//! exactly the input (one encoding per value), and a vote batch's signing
//! hash can be computed for any chain name.
//!
//! Each input is also tried behind both payload tags, so the `Payload`
//! decoder's governance arms see the bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_shared_types::{
    decode_exact,
    governance::{Proposal, VoteBatch},
    Encode, Payload,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = decode_exact::<Proposal>(data) {
        assert_eq!(p.encode(), data);
        assert!(p.title.len() <= rusty_shared_types::governance::MAX_TITLE_LEN);
    }
    if let Ok(v) = decode_exact::<VoteBatch>(data) {
        assert_eq!(v.encode(), data);
        assert!(!v.votes.is_empty());
        assert!(v.votes.windows(2).all(|w| w[0].0 < w[1].0));
        let _ = v.signing_hash("dev");
    }
    for tag in [9u8, 10] {
        let mut framed = Vec::with_capacity(data.len() + 1);
        framed.push(tag);
        framed.extend_from_slice(data);
        if let Ok(p) = decode_exact::<Payload>(&framed) {
            assert_eq!(p.encode(), framed);
        }
    }
});
