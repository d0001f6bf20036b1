//! Media protocol messages from untrusted peers (`rusty-media/src/wire.rs`):
//! requests and responses of the media request-response protocol and
//! announcements on the `media` gossip topic; and the direct data
//! channel's frames (`rusty-media/src/direct.rs`). Decoding never panics;
//! whatever decodes re-encodes to exactly the input, passes `validate` and
//! fits its kind's size cap; every segment announcement and stream end
//! that decodes is checked against a fixed creator key (a segment's data
//! too, when it comes with some), which must not panic either.
//!
//! Random bytes rarely start with the wire version and a valid tag, so each
//! input is also tried behind every valid header: that reaches the bodies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rusty_crypto::{PublicKey, SecretKey};
use rusty_media::direct::{
    decode_lengths, encode_lengths, ChunkRange, ReplyHead, REPLY_HEAD_LEN, REQUEST_LEN,
};
use rusty_media::wire::{
    Announcement, MediaRequest, MediaResponse, SegmentAnnouncement, StreamEnd,
    MAX_ANNOUNCEMENT_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_STREAM_END_LEN,
    WIRE_VERSION,
};

/// Every tag in use: requests, responses, announcements.
const TAGS: [u8; 14] = [
    0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x21, 0x22, 0x23, 0x24,
];

fn creator() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::from_bytes([7; 32]).public_key())
}

fn check_segment(a: &SegmentAnnouncement, data: Option<&[u8]>) {
    let _ = a.verify(creator());
    if let Some(d) = data {
        let _ = a.verify_data(d);
    }
    assert_eq!(
        SegmentAnnouncement::decode(&a.encode()).ok().as_ref(),
        Some(a)
    );
}

fn check_end(e: &StreamEnd) {
    let _ = e.verify(creator());
    let enc = e.encode();
    assert!(enc.len() <= MAX_STREAM_END_LEN);
    assert_eq!(StreamEnd::decode(&enc).ok().as_ref(), Some(e));
}

/// The data channel's frames: what decodes re-encodes to the input.
fn check_direct(bytes: &[u8]) {
    if let Some(frame) = bytes.get(..REQUEST_LEN).and_then(|b| <[u8; REQUEST_LEN]>::try_from(b).ok()) {
        if let Ok(r) = ChunkRange::decode(&frame) {
            assert_eq!(r.encode(), frame);
        }
    }
    if let Some(frame) = bytes.get(..REPLY_HEAD_LEN).and_then(|b| <[u8; REPLY_HEAD_LEN]>::try_from(b).ok()) {
        if let Ok(h) = ReplyHead::decode(&frame) {
            assert_eq!(h.encode(), frame);
        }
    }
    let start = bytes.first().map_or(0, |b| u64::from(*b) << 8);
    if let Ok(lens) = decode_lengths(start, bytes) {
        let lens: Vec<u64> = lens.iter().map(|l| u64::from(*l)).collect();
        assert_eq!(encode_lengths(&lens), bytes);
    }
}

fn check(bytes: &[u8]) {
    if let Ok(m) = MediaRequest::decode(bytes) {
        assert_eq!(m.encode(), bytes);
        assert!(m.validate().is_ok());
        assert!(bytes.len() <= MAX_REQUEST_BYTES);
    }
    if let Ok(m) = MediaResponse::decode(bytes) {
        assert_eq!(m.encode(), bytes);
        assert!(m.validate().is_ok());
        assert!(bytes.len() <= MAX_RESPONSE_BYTES);
        if let MediaResponse::Segment { announcement, data } = &m {
            check_segment(announcement, Some(data));
        }
    }
    if let Ok(m) = Announcement::decode(bytes) {
        assert_eq!(m.encode(), bytes);
        assert!(m.validate().is_ok());
        assert!(bytes.len() <= MAX_ANNOUNCEMENT_BYTES);
        match &m {
            Announcement::Segment(a) => check_segment(a, None),
            Announcement::End(e) => check_end(e),
            Announcement::Published { .. } | Announcement::Have { .. } => {}
        }
    }
    if let Ok(a) = SegmentAnnouncement::decode(bytes) {
        assert_eq!(a.encode(), bytes);
        check_segment(&a, None);
    }
    if let Ok(e) = StreamEnd::decode(bytes) {
        assert_eq!(e.encode(), bytes);
        check_end(&e);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check_direct(data);
    let mut framed = Vec::with_capacity(data.len() + 2);
    for tag in TAGS {
        framed.clear();
        framed.extend_from_slice(&[WIRE_VERSION, tag]);
        framed.extend_from_slice(data);
        check(&framed);
    }
});
