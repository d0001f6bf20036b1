//! Quorum-layer messages from untrusted bytes (DKG messages from the
//! `direct` protocol, signature shares and ChainLocks from gossip, final
//! commitments) and the BLS point decoders they feed: decoding never
//! panics, and anything that decodes re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_crypto::bls;
use rusty_shared_types::{decode_exact, Encode, QuorumCommitment};

#[allow(dead_code)]
#[path = "../../rusty-node/src/llmq/messages.rs"]
mod messages;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_exact::<messages::DkgMessage>(data) {
        assert_eq!(m.encode(), data);
        let _ = m.signing_hash();
    }
    if let Ok(g) = decode_exact::<messages::ChainLockGossip>(data) {
        assert_eq!(g.encode(), data);
    }
    if let Ok(qc) = decode_exact::<QuorumCommitment>(data) {
        assert_eq!(qc.encode(), data);
        let _ = qc.signing_hash();
    }
    // Compressed points: a subgroup-checked key or signature, or an error.
    if let Ok(pk) = bls::PublicKey::from_bytes(data) {
        assert_eq!(&pk.to_bytes()[..], data);
    }
    if let Ok(sig) = bls::Signature::from_bytes(data) {
        assert_eq!(&sig.to_bytes()[..], data);
    }
});
