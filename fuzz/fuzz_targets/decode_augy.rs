//! `.augy` files from untrusted bytes: parsing never panics, the in-memory
//! parser and the streaming reader agree, and whatever parses re-packs to
//! exactly the input.
//!
//! Random bytes almost never carry a valid BLAKE3 checksum, so each input
//! is also tried sealed with its own checksum: that reaches the field
//! checks, the codec signature and the success path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_media::augy::{checksum, AugyFile, AugyMeta};

fn check(bytes: &[u8]) {
    let parsed = AugyFile::parse(bytes);
    let streamed = AugyMeta::read_header(bytes);
    assert_eq!(
        parsed.as_ref().map(|f| (&f.meta, f.audio.len() as u64)),
        streamed.as_ref().map(|(m, len)| (m, *len)),
    );
    if let Ok(file) = parsed {
        assert_eq!(file.to_bytes().as_deref(), Ok(bytes));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&checksum(data));
    check(&sealed);
});
