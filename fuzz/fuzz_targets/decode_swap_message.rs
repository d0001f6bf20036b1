//! Bridge swap messages from untrusted bytes (the `direct` protocol):
//! decoding never panics, anything that decodes re-encodes to exactly the
//! input, and checking its signature never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_shared_types::{decode_exact, Encode};

#[allow(dead_code)]
#[path = "../../rusty-node/src/bridge/messages.rs"]
mod messages;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_exact::<messages::SwapMessage>(data) {
        assert_eq!(m.encode(), data);
        let _ = m.verify();
    }
    if let Ok(b) = decode_exact::<messages::SwapBody>(data) {
        assert_eq!(b.encode(), data);
    }
});
