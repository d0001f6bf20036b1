//! Request-response frames from untrusted peers (`rusty-network`'s
//! `status`, `headers`, `blocks` and `direct` requests and responses):
//! decoding never panics, and anything that decodes re-encodes to exactly
//! the input.
//!
//! The message module is compiled in directly: it depends only on
//! `rusty-shared-types`, so the fuzz build does not pull in libp2p.
#![no_main]

#[path = "../../rusty-network/src/message.rs"]
#[allow(dead_code)]
mod message;

use libfuzzer_sys::fuzz_target;
use message::{Protocol, Request, Response};

fuzz_target!(|data: &[u8]| {
    for p in Protocol::ALL {
        if let Ok(req) = Request::decode_body(p, data) {
            assert_eq!(req.encode_body(), data);
            assert!(data.len() <= p.max_request());
        }
        if let Ok(resp) = Response::decode_body(p, data) {
            assert_eq!(resp.encode_body(), data);
        }
    }
});
