//! Unit tests of `wire`.

use proptest::prelude::*;

use rusty_shared_types::Encode;

use super::*;
use crate::manifest::{Manifest, ManifestFields};

fn key(seed: u8) -> SecretKey {
    SecretKey::from_bytes([seed; 32])
}

fn id(b: u8) -> Hash256 {
    Hash256([b; 32])
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 255) as u8).collect()
}

const CS: usize = CHUNK_SIZE as usize;

fn announcement(seq: u64, bytes: &[u8]) -> SegmentAnnouncement {
    SegmentAnnouncement::sign(&key(1), id(9), seq, bytes, 1_700_000_000_000 + seq, 500)
        .expect("sign")
}

fn stream_end(last_seq: Option<u64>) -> StreamEnd {
    StreamEnd::sign(&key(1), id(9), last_seq, 1_700_000_123_456)
}

fn samples() -> (Vec<MediaRequest>, Vec<MediaResponse>, Vec<Announcement>) {
    let seg = data(1000);
    let a = announcement(3, &seg);
    let requests = vec![
        MediaRequest::Manifest { id: id(1) },
        MediaRequest::Chunks {
            id: id(2),
            start: 5,
            count: 16,
        },
        MediaRequest::Chunks {
            id: id(2),
            start: MAX_CHUNKS - 1,
            count: 1,
        },
        MediaRequest::Segment {
            id: id(3),
            seq: u64::MAX,
        },
    ];
    let responses = vec![
        MediaResponse::Manifest(vec![1, 2, 3]),
        MediaResponse::Chunks {
            start: 0,
            chunks: vec![data(CS), data(CS), data(10)],
        },
        MediaResponse::Chunks {
            start: 7,
            chunks: vec![data(1)],
        },
        MediaResponse::Segment {
            announcement: a.clone(),
            data: seg,
        },
        MediaResponse::NotFound,
        MediaResponse::Busy,
    ];
    let announcements = vec![
        Announcement::Published { id: id(4) },
        Announcement::Have { id: id(5) },
        Announcement::Segment(a),
        Announcement::End(stream_end(Some(41))),
        Announcement::End(stream_end(None)),
        Announcement::End(stream_end(Some(u64::MAX))),
    ];
    (requests, responses, announcements)
}

#[test]
fn samples_round_trip() {
    let (reqs, resps, anns) = samples();
    for m in reqs {
        m.validate().expect("valid");
        let bytes = m.encode();
        assert!(bytes.len() <= MAX_REQUEST_BYTES);
        assert_eq!(MediaRequest::decode(&bytes).expect("decodes"), m);
        // Never mistaken for another kind.
        assert!(MediaResponse::decode(&bytes).is_err());
        assert!(Announcement::decode(&bytes).is_err());
    }
    for m in resps {
        m.validate().expect("valid");
        let bytes = m.encode();
        assert_eq!(MediaResponse::decode(&bytes).expect("decodes"), m);
        assert!(MediaRequest::decode(&bytes).is_err());
        assert!(Announcement::decode(&bytes).is_err());
    }
    for m in anns {
        m.validate().expect("valid");
        let bytes = m.encode();
        assert!(bytes.len() <= MAX_ANNOUNCEMENT_BYTES);
        assert_eq!(Announcement::decode(&bytes).expect("decodes"), m);
        assert!(MediaRequest::decode(&bytes).is_err());
        assert!(MediaResponse::decode(&bytes).is_err());
    }
}

#[test]
fn byte_layouts_match_the_docs() {
    let req = MediaRequest::Chunks {
        id: id(0xaa),
        start: 0x0102,
        count: 3,
    };
    let mut expected = vec![1, 0x02];
    expected.extend_from_slice(&[0xaa; 32]);
    expected.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 0]);
    expected.push(3);
    assert_eq!(req.encode(), expected);

    assert_eq!(MediaRequest::Manifest { id: id(0) }.encode().len(), 2 + 32);
    assert_eq!(
        MediaRequest::Segment { id: id(0), seq: 0 }.encode()[..2],
        [1, 0x03]
    );
    assert_eq!(MediaResponse::NotFound.encode(), vec![1, 0x14]);
    assert_eq!(MediaResponse::Busy.encode(), vec![1, 0x15]);
    assert_eq!(
        MediaResponse::Manifest(vec![7; 300]).encode()[..5],
        [1, 0x11, 0xfd, 0x2c, 0x01]
    );
    let resp = MediaResponse::Chunks {
        start: 9,
        chunks: vec![vec![5; 2]],
    };
    assert_eq!(
        resp.encode(),
        vec![1, 0x12, 9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 5, 5]
    );

    let seg = data(10);
    let a = announcement(0x0807, &seg);
    let enc = a.encode();
    assert_eq!(enc.len(), SEGMENT_ANNOUNCEMENT_LEN);
    assert_eq!(enc.len(), 152);
    assert_eq!(enc[..32], [9; 32]);
    assert_eq!(enc[32..40], 0x0807u64.to_le_bytes());
    assert_eq!(enc[40..44], 10u32.to_le_bytes());
    assert_eq!(enc[44..76], a.hash.0);
    assert_eq!(enc[76..84], a.captured_ms.to_le_bytes());
    assert_eq!(enc[84..88], 500u32.to_le_bytes());
    assert_eq!(enc[88..], a.signature);
    assert_eq!(
        a.signing_message(),
        [SEGMENT_SIGNING_CONTEXT, &enc[..88]].concat()
    );

    let ann = Announcement::Segment(a.clone()).encode();
    assert_eq!(ann[..2], [1, 0x23]);
    assert_eq!(ann[2..], enc[..]);
    assert_eq!(
        Announcement::Published { id: id(1) }.encode()[..2],
        [1, 0x21]
    );
    assert_eq!(Announcement::Have { id: id(1) }.encode()[..2], [1, 0x22]);

    let end = stream_end(Some(0x0807));
    let enc_end = end.encode();
    assert_eq!(enc_end.len(), MAX_STREAM_END_LEN);
    assert_eq!(enc_end.len(), 113);
    assert_eq!(enc_end[..32], [9; 32]);
    assert_eq!(enc_end[32], 1);
    assert_eq!(enc_end[33..41], 0x0807u64.to_le_bytes());
    assert_eq!(enc_end[41..49], end.ended_ms.to_le_bytes());
    assert_eq!(enc_end[49..], end.signature);
    assert_eq!(
        end.signing_message(),
        [STREAM_END_SIGNING_CONTEXT, &enc_end[..49]].concat()
    );
    let ann = Announcement::End(end).encode();
    assert_eq!(ann[..2], [1, 0x24]);
    assert_eq!(ann[2..], enc_end[..]);
    let end = stream_end(None);
    let enc_end = end.encode();
    assert_eq!(enc_end.len(), 105);
    assert_eq!(enc_end[..32], [9; 32]);
    assert_eq!(enc_end[32], 0);
    assert_eq!(enc_end[33..41], end.ended_ms.to_le_bytes());
    assert_eq!(enc_end[41..], end.signature);
    assert_eq!(
        end.signing_message(),
        [STREAM_END_SIGNING_CONTEXT, &enc_end[..41]].concat()
    );
    assert_eq!(
        STREAM_END_SIGNING_CONTEXT,
        b"rusty-coin media-stream-end v1"
    );

    let resp = MediaResponse::Segment {
        announcement: a,
        data: seg.clone(),
    }
    .encode();
    assert_eq!(resp[..2], [1, 0x13]);
    assert_eq!(resp[2..154], enc[..]);
    assert_eq!(resp[154], 10);
    assert_eq!(resp[155..], seg[..]);
}

#[test]
fn segment_hash_binds_stream_seq_and_bytes() {
    let h = segment_hash(&id(1), 0, b"abc");
    assert_ne!(h, segment_hash(&id(2), 0, b"abc"));
    assert_ne!(h, segment_hash(&id(1), 1, b"abc"));
    assert_ne!(h, segment_hash(&id(1), 0, b"abd"));
    let mut pre = id(1).0.to_vec();
    pre.extend_from_slice(&0u64.to_le_bytes());
    pre.extend_from_slice(b"abc");
    assert_eq!(h, Hash256::domain_hash(Domain::MediaSegment, &pre));
    assert_ne!(h, Hash256::domain_hash(Domain::MediaChunk, &pre));
    assert_eq!(
        Domain::MediaSegment.context(),
        "rusty-coin media-segment v1"
    );
}

#[test]
fn segment_signature_and_data() {
    let seg = data(4000);
    let creator = key(1).public_key();
    let a = announcement(42, &seg);
    a.verify(&creator).expect("verifies");
    a.verify_data(&seg).expect("data matches");

    // Wrong key.
    assert!(matches!(
        a.verify(&key(2).public_key()),
        Err(WireError::BadSignature)
    ));
    assert!(matches!(
        a.verify(&bad_creator_key()),
        Err(WireError::BadCreatorKey)
    ));

    // Any field changed breaks the signature.
    let tampered: Vec<SegmentAnnouncement> = vec![
        SegmentAnnouncement {
            seq: 43,
            ..a.clone()
        },
        SegmentAnnouncement {
            stream: id(8),
            ..a.clone()
        },
        SegmentAnnouncement {
            size: 3999,
            ..a.clone()
        },
        SegmentAnnouncement {
            hash: segment_hash(&id(9), 42, &seg[1..]),
            ..a.clone()
        },
        SegmentAnnouncement {
            captured_ms: a.captured_ms + 1,
            ..a.clone()
        },
        SegmentAnnouncement {
            duration_ms: 501,
            ..a.clone()
        },
    ];
    for t in tampered {
        assert!(
            matches!(t.verify(&creator), Err(WireError::BadSignature)),
            "{t:?}"
        );
    }
    // A flipped byte anywhere in the encoding.
    let enc = a.encode();
    for i in 0..enc.len() {
        let mut e = enc.clone();
        e[i] ^= 0x10;
        if let Ok(t) = SegmentAnnouncement::decode(&e) {
            assert!(t.verify(&creator).is_err(), "byte {i}");
        }
    }

    // Data: flipped byte, wrong length, right bytes for another seq.
    let mut flipped = seg.clone();
    flipped[1234] ^= 1;
    assert!(matches!(
        a.verify_data(&flipped),
        Err(WireError::HashMismatch { seq: 42 })
    ));
    assert!(matches!(
        a.verify_data(&seg[..3999]),
        Err(WireError::SizeMismatch {
            seq: 42,
            expected: 4000,
            found: 3999
        })
    ));
    let other = announcement(43, &seg);
    other.verify(&creator).expect("verifies");
    assert_ne!(other.hash, a.hash);
    // Segment 42's bytes offered under 43's signed announcement with 42's
    // hash: the signature no longer covers it.
    let spliced = SegmentAnnouncement {
        hash: a.hash,
        ..other.clone()
    };
    assert!(spliced.verify(&creator).is_err());
    // 43's own announcement vouches for the same bytes at seq 43 only.
    other.verify_data(&seg).expect("same bytes, own seq");
    let moved = SegmentAnnouncement {
        seq: 43,
        ..a.clone()
    };
    assert!(matches!(
        moved.verify_data(&seg),
        Err(WireError::HashMismatch { seq: 43 })
    ));
}

/// A key that is not a curve point.
fn bad_creator_key() -> PublicKey {
    for b in 0..=255u8 {
        let mut k = [0xffu8; 32];
        k[0] = b;
        if rusty_crypto::verify(&PublicKey(k), b"x", &Signature([0; 64]))
            .is_err_and(|e| matches!(e, CryptoError::InvalidPublicKey))
        {
            return PublicKey(k);
        }
    }
    panic!("some 32 bytes are not a point");
}

#[test]
fn stream_end_signature() {
    let creator = key(1).public_key();
    for last_seq in [Some(42), Some(0), Some(u64::MAX), None] {
        let e = stream_end(last_seq);
        e.verify(&creator).expect("verifies");
        assert_eq!(e.last_seq, last_seq);

        // Round trip, alone and as an announcement.
        let enc = e.encode();
        assert_eq!(StreamEnd::decode(&enc).expect("decodes"), e);
        let ann = Announcement::End(e.clone());
        ann.validate().expect("valid");
        let back = Announcement::decode(&ann.encode()).expect("decodes");
        assert_eq!(back, ann);
        let Announcement::End(back) = back else {
            panic!("not an end");
        };
        back.verify(&creator).expect("still verifies");

        // Wrong key; a key that is not a curve point.
        assert!(matches!(
            e.verify(&key(2).public_key()),
            Err(WireError::BadSignature)
        ));
        assert!(matches!(
            e.verify(&bad_creator_key()),
            Err(WireError::BadCreatorKey)
        ));

        // Any field changed breaks the signature.
        let other_seq = match last_seq {
            Some(s) => Some(s.wrapping_add(1)),
            None => Some(0),
        };
        let other_none = match last_seq {
            Some(_) => None,
            None => Some(u64::MAX),
        };
        let tampered: Vec<StreamEnd> = vec![
            StreamEnd {
                stream: id(8),
                ..e.clone()
            },
            StreamEnd {
                last_seq: other_seq,
                ..e.clone()
            },
            StreamEnd {
                last_seq: other_none,
                ..e.clone()
            },
            StreamEnd {
                ended_ms: e.ended_ms + 1,
                ..e.clone()
            },
        ];
        for t in tampered {
            assert!(
                matches!(t.verify(&creator), Err(WireError::BadSignature)),
                "{t:?}"
            );
        }
        let mut sig = e.clone();
        sig.signature[63] ^= 1;
        assert!(sig.verify(&creator).is_err());

        // A flipped byte anywhere in the encoding.
        for i in 0..enc.len() {
            let mut b = enc.clone();
            b[i] ^= 0x10;
            if let Ok(t) = StreamEnd::decode(&b) {
                assert!(t.verify(&creator).is_err(), "byte {i}");
            }
        }

        // Trailing bytes, alone and as an announcement.
        assert!(matches!(
            StreamEnd::decode(&[&enc[..], &[0]].concat()),
            Err(WireError::TrailingBytes(1))
        ));
        assert!(matches!(
            Announcement::decode(&[&ann.encode()[..], &[0]].concat()),
            Err(WireError::TrailingBytes(1))
        ));
        assert!(matches!(
            StreamEnd::decode(&enc[..enc.len() - 1]),
            Err(WireError::Truncated { needed: 1 })
        ));

        // An option tag other than 0 or 1.
        for t in [2u8, 0x80, 0xff] {
            let mut b = enc.clone();
            b[32] = t;
            assert!(
                matches!(
                    StreamEnd::decode(&b),
                    Err(WireError::UnknownTag { what: "stream end last_seq", tag }) if tag == u64::from(t)
                ),
                "{t}"
            );
            assert!(matches!(
                Announcement::decode(&raw(0x24, &b)),
                Err(WireError::UnknownTag {
                    what: "stream end last_seq",
                    ..
                })
            ));
        }
    }

    // `None` is not `Some(0)`: the encodings and signatures differ.
    let none = stream_end(None);
    let zero = stream_end(Some(0));
    assert_ne!(none.signing_message(), zero.signing_message());
    assert_eq!(none.encode().len() + 8, zero.encode().len());
    assert!(StreamEnd {
        last_seq: Some(0),
        ..none.clone()
    }
    .verify(&creator)
    .is_err());
    // A `None` tag followed by a seq is trailing bytes, a `Some` tag
    // without one is truncated.
    let mut b = zero.encode();
    b[32] = 0;
    assert!(matches!(
        StreamEnd::decode(&b),
        Err(WireError::TrailingBytes(8))
    ));
    let mut b = none.encode();
    b[32] = 1;
    assert!(matches!(
        StreamEnd::decode(&b),
        Err(WireError::Truncated { needed: 8 })
    ));

    // Domain separation: a stream-end signature over the same field
    // bytes does not pass for a segment announcement's, nor the other
    // way round.
    let k = key(1);
    assert_ne!(STREAM_END_SIGNING_CONTEXT, SEGMENT_SIGNING_CONTEXT);
    let e = stream_end(Some(3));
    let mut fields = Vec::new();
    e.encode_fields(&mut fields);
    assert!(creator.verify(&fields, &Signature(e.signature)).is_err());
    let forged_seg = k.sign(&[SEGMENT_SIGNING_CONTEXT, &fields[..]].concat());
    assert!(StreamEnd {
        signature: forged_seg.0,
        ..e.clone()
    }
    .verify(&creator)
    .is_err());
}

#[test]
fn sign_checks_fields() {
    let k = key(1);
    assert!(matches!(
        SegmentAnnouncement::sign(&k, id(1), 0, b"", 0, 500),
        Err(WireError::Empty("segment"))
    ));
    assert!(matches!(
        SegmentAnnouncement::sign(&k, id(1), 0, &vec![0; MAX_SEGMENT_BYTES + 1], 0, 500),
        Err(WireError::TooLong {
            what: "segment",
            ..
        })
    ));
    SegmentAnnouncement::sign(&k, id(1), 0, &vec![0; MAX_SEGMENT_BYTES], 0, 500).expect("max size");
    for d in [0, MAX_SEGMENT_DURATION_MS + 1] {
        assert!(matches!(
            SegmentAnnouncement::sign(&k, id(1), 0, b"x", 0, d),
            Err(WireError::OutOfRange {
                field: "duration_ms",
                ..
            })
        ));
    }
    SegmentAnnouncement::sign(&k, id(1), 0, b"x", 0, 1).expect("1 ms");
    SegmentAnnouncement::sign(&k, id(1), 0, b"x", u64::MAX, MAX_SEGMENT_DURATION_MS).expect("60 s");

    // A hand-built announcement with fields out of range fails verify
    // even with a valid signature over them.
    let mut a = announcement(1, b"xyz");
    a.size = 0;
    a.signature = k.sign(&a.signing_message()).0;
    assert!(matches!(
        a.verify(&k.public_key()),
        Err(WireError::OutOfRange { field: "size", .. })
    ));
    a.size = MAX_SEGMENT_BYTES as u32 + 1;
    a.signature = k.sign(&a.signing_message()).0;
    assert!(matches!(
        a.verify(&k.public_key()),
        Err(WireError::OutOfRange { field: "size", .. })
    ));
}

/// Raw request bytes: version, tag, body.
fn raw(tag: u8, body: &[u8]) -> Vec<u8> {
    [&[WIRE_VERSION, tag][..], body].concat()
}

#[test]
fn header_rejections() {
    for bytes in [&[][..], &[1][..]] {
        assert!(matches!(
            MediaRequest::decode(bytes),
            Err(WireError::Truncated { needed: 1 })
        ));
        assert!(matches!(
            MediaResponse::decode(bytes),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Announcement::decode(bytes),
            Err(WireError::Truncated { .. })
        ));
    }
    let mut bytes = MediaRequest::Manifest { id: id(1) }.encode();
    bytes[0] = 2;
    assert!(matches!(
        MediaRequest::decode(&bytes),
        Err(WireError::UnsupportedVersion(2))
    ));
    for t in [0x00, 0x05, 0x11, 0x21, 0x24, 0xff] {
        assert!(matches!(
            MediaRequest::decode(&raw(t, &[0; 40])),
            Err(WireError::UnknownTag { what: "media request", tag }) if tag == u64::from(t)
        ));
    }
    for t in [0x00, 0x01, 0x10, 0x17, 0x23, 0x24] {
        assert!(matches!(
            MediaResponse::decode(&raw(t, &[0; 40])),
            Err(WireError::UnknownTag {
                what: "media response",
                ..
            })
        ));
    }
    for t in [0x00, 0x01, 0x13, 0x20, 0x25, 0xff] {
        assert!(matches!(
            Announcement::decode(&raw(t, &[0; 40])),
            Err(WireError::UnknownTag {
                what: "media announcement",
                ..
            })
        ));
    }
}

#[test]
fn trailing_and_truncated_rejected() {
    let (reqs, resps, anns) = samples();
    for m in reqs {
        let mut b = m.encode();
        b.push(0);
        assert!(matches!(
            MediaRequest::decode(&b),
            Err(WireError::TrailingBytes(1))
        ));
        b.truncate(b.len() - 2);
        assert!(MediaRequest::decode(&b).is_err());
    }
    for m in resps {
        let mut b = m.encode();
        b.push(0);
        assert!(matches!(
            MediaResponse::decode(&b),
            Err(WireError::TrailingBytes(1))
        ));
        b.truncate(b.len() - 2);
        if b.len() >= 2 {
            assert!(MediaResponse::decode(&b).is_err(), "{m:?}");
        }
    }
    for m in anns {
        let mut b = m.encode();
        b.push(0);
        assert!(matches!(
            Announcement::decode(&b),
            Err(WireError::TrailingBytes(1))
        ));
        b.truncate(b.len() - 2);
        assert!(matches!(
            Announcement::decode(&b),
            Err(WireError::Truncated { needed: 1 })
        ));
    }
    let a = announcement(0, b"x").encode();
    assert!(matches!(
        SegmentAnnouncement::decode(&[&a[..], &[0]].concat()),
        Err(WireError::TrailingBytes(1))
    ));
}

#[test]
fn oversize_messages_rejected_before_parsing() {
    let big = vec![0u8; MAX_REQUEST_BYTES + 1];
    assert!(matches!(
        MediaRequest::decode(&big),
        Err(WireError::Oversize {
            what: "media request",
            len,
            max: MAX_REQUEST_BYTES
        }) if len == MAX_REQUEST_BYTES + 1
    ));
    let big = vec![0u8; MAX_ANNOUNCEMENT_BYTES + 1];
    assert!(matches!(
        Announcement::decode(&big),
        Err(WireError::Oversize { .. })
    ));
    let big = vec![0u8; MAX_RESPONSE_BYTES + 1];
    assert!(matches!(
        MediaResponse::decode(&big),
        Err(WireError::Oversize { .. })
    ));
}

#[test]
fn chunk_request_rules() {
    let enc = |start: u64, count: u64| {
        let mut b = raw(0x02, &[3; 32]);
        b.extend_from_slice(&start.to_le_bytes());
        write_compact_size(&mut b, count);
        b
    };
    assert!(MediaRequest::decode(&enc(0, 1)).is_ok());
    assert!(MediaRequest::decode(&enc(0, 16)).is_ok());
    for count in [0, 17, 0xfd, u64::from(u32::MAX) + 1, u64::MAX] {
        assert!(
            matches!(
                MediaRequest::decode(&enc(0, count)),
                Err(WireError::CountOutOfRange { what: "chunks request", count: c, max: 16 }) if c == count
            ),
            "{count}"
        );
    }
    assert!(MediaRequest::decode(&enc(MAX_CHUNKS - 16, 16)).is_ok());
    for (start, count) in [(MAX_CHUNKS - 15, 16), (MAX_CHUNKS, 1), (u64::MAX, 1)] {
        assert!(matches!(
            MediaRequest::decode(&enc(start, count)),
            Err(WireError::ChunkRangeOutOfBounds { .. })
        ));
    }
    // A non-minimal count.
    let mut b = raw(0x02, &[3; 32]);
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&[0xfd, 1, 0]);
    assert!(matches!(
        MediaRequest::decode(&b),
        Err(WireError::NonMinimalLength)
    ));
    // validate() agrees.
    let bad = MediaRequest::Chunks {
        id: id(1),
        start: 0,
        count: 0,
    };
    assert!(matches!(
        bad.validate(),
        Err(WireError::CountOutOfRange { .. })
    ));
    assert!(MediaRequest::decode(&bad.encode()).is_err());
    let bad = MediaRequest::Chunks {
        id: id(1),
        start: 0,
        count: 17,
    };
    assert!(bad.validate().is_err());
    assert!(MediaRequest::decode(&bad.encode()).is_err());
}

#[test]
fn chunk_response_rules() {
    let enc = |start: u64, count: u64, chunks: &[Vec<u8>]| {
        let mut b = raw(0x12, &start.to_le_bytes());
        write_compact_size(&mut b, count);
        for c in chunks {
            write_bytes(&mut b, c);
        }
        b
    };
    let full = data(CS);
    // Empty response.
    assert!(matches!(
        MediaResponse::decode(&enc(0, 0, &[])),
        Err(WireError::CountOutOfRange {
            what: "chunks response",
            count: 0,
            ..
        })
    ));
    assert!(matches!(
        MediaResponse::Chunks {
            start: 0,
            chunks: vec![]
        }
        .validate(),
        Err(WireError::CountOutOfRange { .. })
    ));
    // More chunks than a request may ask for.
    let many = vec![full.clone(); 17];
    assert!(matches!(
        MediaResponse::decode(&enc(0, 17, &many)),
        Err(WireError::CountOutOfRange { count: 17, .. })
    ));
    assert!(MediaResponse::decode(&enc(0, 16, &many[..16])).is_ok());
    // A count claiming more chunks than the input holds.
    assert!(matches!(
        MediaResponse::decode(&enc(0, 3, std::slice::from_ref(&full))),
        Err(WireError::Truncated { .. })
    ));
    // A chunk longer than CHUNK_SIZE: rejected from its length prefix.
    let mut b = raw(0x12, &0u64.to_le_bytes());
    b.push(1);
    write_compact_size(&mut b, CS as u64 + 1);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::TooLong { what: "chunk", len, max }) if len == CS as u64 + 1 && max == CS as u64
    ));
    // A huge claimed length in a short message allocates nothing.
    let mut b = raw(0x12, &0u64.to_le_bytes());
    b.push(1);
    write_compact_size(&mut b, CS as u64);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::Truncated { needed }) if needed == CS
    ));
    // An empty chunk.
    assert!(matches!(
        MediaResponse::decode(&enc(0, 1, &[vec![]])),
        Err(WireError::Empty("chunk"))
    ));
    // A short chunk followed by another.
    assert!(matches!(
        MediaResponse::decode(&enc(4, 2, &[data(100), data(100)])),
        Err(WireError::ShortChunk { index: 4, len: 100 })
    ));
    assert!(MediaResponse::decode(&enc(4, 2, &[full.clone(), data(100)])).is_ok());
    // Past the last possible chunk index.
    assert!(matches!(
        MediaResponse::decode(&enc(MAX_CHUNKS, 1, &[data(1)])),
        Err(WireError::ChunkRangeOutOfBounds { .. })
    ));
    assert!(matches!(
        MediaResponse::decode(&enc(u64::MAX, 1, &[data(1)])),
        Err(WireError::ChunkRangeOutOfBounds { .. })
    ));
}

#[test]
fn manifest_and_segment_response_rules() {
    // Empty manifest.
    assert!(matches!(
        MediaResponse::decode(&raw(0x11, &[0])),
        Err(WireError::Empty("manifest"))
    ));
    // A manifest longer than the cap, rejected from its length alone.
    let mut b = raw(0x11, &[]);
    write_compact_size(&mut b, MAX_MANIFEST_BYTES as u64 + 1);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::TooLong {
            what: "manifest",
            ..
        })
    ));
    assert!(MediaResponse::Manifest(vec![0; MAX_MANIFEST_BYTES + 1])
        .validate()
        .is_err());
    MediaResponse::Manifest(vec![0; MAX_MANIFEST_BYTES])
        .validate()
        .expect("at the cap");

    // Segment data whose length is not the announced size.
    let seg = data(100);
    let a = announcement(1, &seg);
    let mut b = raw(0x13, &a.encode());
    write_bytes(&mut b, &seg[..99]);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::SizeMismatch {
            seq: 1,
            expected: 100,
            found: 99
        })
    ));
    let mut b = raw(0x13, &a.encode());
    b.push(0);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::Empty("segment"))
    ));
    let mut b = raw(0x13, &a.encode());
    write_compact_size(&mut b, MAX_SEGMENT_BYTES as u64 + 1);
    assert!(matches!(
        MediaResponse::decode(&b),
        Err(WireError::TooLong {
            what: "segment",
            ..
        })
    ));
    // Decoding does not check the hash or signature: verify does.
    let mut wrong = seg.clone();
    wrong[0] ^= 1;
    let resp = MediaResponse::Segment {
        announcement: a.clone(),
        data: wrong.clone(),
    };
    let back = MediaResponse::decode(&resp.encode()).expect("structurally fine");
    let MediaResponse::Segment { announcement, data } = back else {
        panic!("not a segment");
    };
    announcement.verify(&key(1).public_key()).expect("signed");
    assert!(matches!(
        announcement.verify_data(&data),
        Err(WireError::HashMismatch { seq: 1 })
    ));
}

#[test]
fn announcement_field_ranges_checked_on_decode() {
    let a = announcement(1, b"abc");
    let mut enc = a.encode();
    enc[40..44].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        SegmentAnnouncement::decode(&enc),
        Err(WireError::OutOfRange {
            field: "size",
            value: 0,
            ..
        })
    ));
    enc[40..44].copy_from_slice(&(MAX_SEGMENT_BYTES as u32 + 1).to_le_bytes());
    assert!(matches!(
        Announcement::decode(&raw(0x23, &enc)),
        Err(WireError::OutOfRange { field: "size", .. })
    ));
    let mut enc = a.encode();
    enc[84..88].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        Announcement::decode(&raw(0x23, &enc)),
        Err(WireError::OutOfRange {
            field: "duration_ms",
            value: 0,
            ..
        })
    ));
    enc[84..88].copy_from_slice(&(MAX_SEGMENT_DURATION_MS + 1).to_le_bytes());
    assert!(matches!(
        MediaResponse::decode(&[&raw(0x13, &enc)[..], &[3, 1, 2, 3]].concat()),
        Err(WireError::OutOfRange {
            field: "duration_ms",
            ..
        })
    ));
}

fn fields() -> ManifestFields {
    ManifestFields {
        title: "Live from the lab".into(),
        mime: "video/mp2t".into(),
        created: 1_700_000_000,
        ..ManifestFields::default()
    }
}

#[test]
fn manifest_response_checked_against_id() {
    let signed = Manifest::build(&key(3), &data(CS + 3), fields()).expect("build");
    let bytes = signed.encode();
    let cid = signed.content_id();
    assert_eq!(
        decode_manifest_response(&cid, &bytes).expect("matches"),
        signed
    );
    let other = Manifest::build_live(&key(3), fields()).expect("live");
    let err = decode_manifest_response(&cid, &other.encode()).expect_err("other id");
    assert!(matches!(err, WireError::ManifestIdMismatch { .. }));
    assert!(err.is_bad_data());
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    assert!(matches!(
        decode_manifest_response(&cid, &flipped),
        Err(WireError::ManifestIdMismatch { .. })
    ));
    // Bytes that hash to the id asked for but are not a manifest.
    let junk = b"junk";
    let junk_id = Hash256::domain_hash(Domain::ContentManifest, junk);
    assert!(matches!(
        decode_manifest_response(&junk_id, junk),
        Err(WireError::Manifest(ManifestError::Decode(_)))
    ));
    // A manifest with a forged signature whose id is asked for.
    let mut forged = signed.clone();
    forged.signature[0] ^= 1;
    let fb = forged.encode();
    assert!(matches!(
        decode_manifest_response(&forged.content_id(), &fb),
        Err(WireError::Manifest(ManifestError::BadSignature))
    ));
    // Through the wire.
    let resp = MediaResponse::Manifest(bytes);
    let MediaResponse::Manifest(back) = MediaResponse::decode(&resp.encode()).expect("decodes")
    else {
        panic!("not a manifest");
    };
    decode_manifest_response(&cid, &back).expect("matches");
}

#[test]
fn largest_manifest_fits() {
    let m = Manifest {
        version: crate::manifest::MANIFEST_VERSION,
        creator: [0; 32],
        title: "t".repeat(crate::manifest::MAX_TITLE_LEN),
        description: "d".repeat(crate::manifest::MAX_DESCRIPTION_LEN),
        tags: vec!["g".repeat(crate::manifest::MAX_TAG_LEN); crate::manifest::MAX_TAGS],
        mime: format!("a/{}", "b".repeat(crate::manifest::MAX_MIME_LEN - 2)),
        size: crate::manifest::MAX_CONTENT_SIZE,
        chunk_size: CHUNK_SIZE,
        chunk_hashes: vec![Hash256::ZERO; MAX_CHUNKS as usize],
        price: 1,
        encrypted: true,
        live: false,
        created: u64::MAX,
    };
    let signed = m.sign(&key(4)).expect("valid at every cap");
    let bytes = signed.encode();
    assert_eq!(bytes.len(), 32 * (1 << 20) + 4966);
    assert!(bytes.len() <= MAX_MANIFEST_BYTES);
    let resp = MediaResponse::Manifest(bytes);
    let enc = resp.encode();
    assert!(enc.len() <= MAX_RESPONSE_BYTES);
    let MediaResponse::Manifest(back) = MediaResponse::decode(&enc).expect("decodes") else {
        panic!("not a manifest");
    };
    assert_eq!(
        decode_manifest_response(&signed.content_id(), &back).expect("verifies"),
        signed
    );
}

#[test]
fn debug_shows_lengths_not_bytes() {
    let resp = MediaResponse::Chunks {
        start: 2,
        chunks: vec![data(CS), data(5)],
    };
    let s = format!("{resp:?}");
    assert!(s.contains("start: 2") && s.contains("[65536, 5]"), "{s}");
    let s = format!("{:?}", MediaResponse::Manifest(vec![0; 1000]));
    assert!(s.contains("len: 1000"), "{s}");
    let a = announcement(7, b"abc");
    let s = format!("{a:?}");
    assert!(
        s.contains("seq: 7") && s.contains(&hex::encode(a.signature)),
        "{s}"
    );
    let s = format!(
        "{:?}",
        MediaResponse::Segment {
            announcement: a,
            data: vec![0; 3]
        }
    );
    assert!(s.contains("len: 3"), "{s}");
    assert_eq!(format!("{:?}", MediaResponse::Busy), "Busy");
    assert!(format!("{:?}", Announcement::Have { id: id(1) }).contains("Have"));
    let e = stream_end(Some(12));
    let s = format!("{:?}", Announcement::End(e.clone()));
    assert!(
        s.contains("End(StreamEnd")
            && s.contains("last_seq: Some(12)")
            && s.contains(&hex::encode(e.signature)),
        "{s}"
    );
}

fn arb_hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

prop_compose! {
    fn arb_segment_announcement()(
        stream in arb_hash(),
        seq in any::<u64>(),
        size in 1..=MAX_SEGMENT_BYTES as u32,
        hash in arb_hash(),
        captured_ms in any::<u64>(),
        duration_ms in 1..=MAX_SEGMENT_DURATION_MS,
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) -> SegmentAnnouncement {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig);
        SegmentAnnouncement { stream, seq, size, hash, captured_ms, duration_ms, signature }
    }
}

prop_compose! {
    fn arb_stream_end()(
        stream in arb_hash(),
        last_seq in proptest::option::of(any::<u64>()),
        ended_ms in any::<u64>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) -> StreamEnd {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig);
        StreamEnd { stream, last_seq, ended_ms, signature }
    }
}

fn arb_request() -> impl Strategy<Value = MediaRequest> {
    prop_oneof![
        arb_hash().prop_map(|id| MediaRequest::Manifest { id }),
        (arb_hash(), 0..MAX_CHUNKS, 1..=MAX_CHUNKS_PER_REQUEST).prop_map(|(id, start, count)| {
            MediaRequest::Chunks {
                id,
                start: start.min(MAX_CHUNKS - u64::from(count)),
                count,
            }
        }),
        (arb_hash(), any::<u64>()).prop_map(|(id, seq)| MediaRequest::Segment { id, seq }),
        Just(MediaRequest::DirectTicket),
    ]
}

fn arb_response() -> impl Strategy<Value = MediaResponse> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..300).prop_map(MediaResponse::Manifest),
        (
            0..MAX_CHUNKS,
            1..=MAX_CHUNKS_PER_REQUEST as usize,
            1..=CS,
            any::<u8>()
        )
            .prop_map(|(start, n, last, fill)| {
                let mut chunks = vec![vec![fill; CS]; n - 1];
                chunks.push(vec![fill.wrapping_add(1); last]);
                MediaResponse::Chunks {
                    start: start.min(MAX_CHUNKS - n as u64),
                    chunks,
                }
            }),
        (arb_segment_announcement(), 1..2000usize, any::<u8>()).prop_map(
            |(mut announcement, len, fill)| {
                announcement.size = len as u32;
                MediaResponse::Segment {
                    announcement,
                    data: vec![fill; len],
                }
            }
        ),
        Just(MediaResponse::NotFound),
        Just(MediaResponse::Busy),
        (1..=u16::MAX, any::<[u8; 32]>())
            .prop_map(|(port, ticket)| MediaResponse::Direct { port, ticket }),
    ]
}

fn arb_announcement() -> impl Strategy<Value = Announcement> {
    prop_oneof![
        arb_hash().prop_map(|id| Announcement::Published { id }),
        arb_hash().prop_map(|id| Announcement::Have { id }),
        arb_segment_announcement().prop_map(Announcement::Segment),
        arb_stream_end().prop_map(Announcement::End),
    ]
}

/// Decodes `bytes` as every kind; whatever decodes must re-encode to
/// exactly `bytes`, and verification must not panic.
fn check_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    let creator = key(1).public_key();
    if let Ok(m) = MediaRequest::decode(bytes) {
        prop_assert_eq!(m.encode(), bytes);
        prop_assert!(m.validate().is_ok());
    }
    if let Ok(m) = MediaResponse::decode(bytes) {
        prop_assert_eq!(m.encode(), bytes);
        prop_assert!(m.validate().is_ok());
        if let MediaResponse::Segment { announcement, data } = &m {
            let _ = announcement.verify(&creator);
            let _ = announcement.verify_data(data);
        }
    }
    if let Ok(m) = Announcement::decode(bytes) {
        prop_assert_eq!(m.encode(), bytes);
        prop_assert!(m.validate().is_ok());
        match &m {
            Announcement::Segment(a) => prop_assert!(a.verify(&creator).is_err()),
            Announcement::End(e) => prop_assert!(e.verify(&creator).is_err()),
            Announcement::Published { .. } | Announcement::Have { .. } => {}
        }
    }
    if let Ok(a) = SegmentAnnouncement::decode(bytes) {
        prop_assert_eq!(a.encode(), bytes);
    }
    if let Ok(e) = StreamEnd::decode(bytes) {
        prop_assert_eq!(e.encode(), bytes);
        prop_assert!(e.verify(&creator).is_err());
    }
    Ok(())
}

proptest! {
    #[test]
    fn requests_round_trip(m in arb_request()) {
        let bytes = m.encode();
        prop_assert!(bytes.len() <= MAX_REQUEST_BYTES);
        prop_assert_eq!(MediaRequest::decode(&bytes).expect("decodes"), m);
    }

    #[test]
    fn responses_round_trip(m in arb_response()) {
        prop_assert!(m.validate().is_ok());
        let bytes = m.encode();
        prop_assert_eq!(MediaResponse::decode(&bytes).expect("decodes"), m);
    }

    #[test]
    fn announcements_round_trip(m in arb_announcement()) {
        let bytes = m.encode();
        prop_assert!(bytes.len() <= MAX_ANNOUNCEMENT_BYTES);
        prop_assert_eq!(Announcement::decode(&bytes).expect("decodes"), m);
    }

    #[test]
    fn signed_segments_verify(
        stream in arb_hash(),
        seq in any::<u64>(),
        bytes in proptest::collection::vec(any::<u8>(), 1..3000),
        captured_ms in any::<u64>(),
        duration_ms in 1..=MAX_SEGMENT_DURATION_MS,
        flip in any::<prop::sample::Index>(),
    ) {
        let k = key(5);
        let a = SegmentAnnouncement::sign(&k, stream, seq, &bytes, captured_ms, duration_ms).expect("sign");
        a.verify(&k.public_key()).expect("verifies");
        a.verify_data(&bytes).expect("data");
        let back = Announcement::decode(&Announcement::Segment(a.clone()).encode()).expect("decodes");
        prop_assert_eq!(back, Announcement::Segment(a.clone()));
        let mut bad = bytes.clone();
        bad[flip.index(bytes.len())] ^= 0x80;
        let mismatch = matches!(a.verify_data(&bad), Err(WireError::HashMismatch { .. }));
        prop_assert!(mismatch);
        prop_assert!(a.verify(&key(6).public_key()).is_err());
    }

    #[test]
    fn signed_stream_ends_verify(
        stream in arb_hash(),
        last_seq in proptest::option::of(any::<u64>()),
        ended_ms in any::<u64>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u32,
    ) {
        let k = key(5);
        let e = StreamEnd::sign(&k, stream, last_seq, ended_ms);
        e.verify(&k.public_key()).expect("verifies");
        let back = Announcement::decode(&Announcement::End(e.clone()).encode()).expect("decodes");
        prop_assert_eq!(back, Announcement::End(e.clone()));
        let mut enc = e.encode();
        let i = flip.index(enc.len());
        enc[i] ^= 1 << bit;
        if let Ok(t) = StreamEnd::decode(&enc) {
            prop_assert!(t.verify(&k.public_key()).is_err());
        }
        prop_assert!(e.verify(&key(6).public_key()).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_canonical(&bytes)?;
    }

    /// Random bodies behind every valid header.
    #[test]
    fn random_bodies_never_panic(
        t in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x21, 0x22, 0x23, 0x24]),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        check_canonical(&raw(t, &body))?;
    }

    /// Valid messages with a few bytes changed, maybe truncated: either
    /// rejected or canonical.
    #[test]
    fn mutated_messages_are_canonical_or_rejected(
        which in 0..3u8,
        req in arb_request(),
        resp in arb_response(),
        ann in arb_announcement(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = match which {
            0 => req.encode(),
            1 => resp.encode(),
            _ => ann.encode(),
        };
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        check_canonical(&bytes)?;
    }
}
