//! Unit tests of `manifest`.

use proptest::prelude::*;

use super::*;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_bytes([seed; 32])
}

fn fields() -> ManifestFields {
    ManifestFields {
        title: "Rust in ten minutes".into(),
        description: "An introduction.\nWith a second line.".into(),
        tags: vec!["rust".into(), "Programming".into()],
        mime: "video/mp4".into(),
        price: 0,
        encrypted: false,
        created: 1_700_000_000,
    }
}

/// Deterministic content of `len` bytes.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

const CS: usize = CHUNK_SIZE as usize;

#[test]
fn build_round_trip_and_verify() {
    let data = content(3 * CS + 1234);
    let signed = Manifest::build(&key(1), &data, fields()).unwrap();
    assert_eq!(signed.manifest.size, data.len() as u64);
    assert_eq!(signed.chunk_count(), 4);
    assert_eq!(signed.manifest.creator, key(1).public_key().0);
    signed.verify().unwrap();

    let bytes = signed.encode();
    let back = SignedManifest::decode_verified(&bytes).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.content_id(), signed.content_id());
    assert_eq!(
        signed.content_id(),
        Hash256::domain_hash(Domain::ContentManifest, &bytes)
    );
    // Trailing bytes are rejected.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        SignedManifest::decode_verified(&longer),
        Err(ManifestError::Decode(DecodeError::TrailingBytes(1)))
    ));
}

#[test]
fn streaming_builder_matches_in_memory() {
    // Feed the reader in odd-sized pieces.
    struct Dribble<'a>(&'a [u8]);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(777);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for len in [0, 1, CS - 1, CS, CS + 1, 2 * CS, 5 * CS + 17] {
        let data = content(len);
        let a = Manifest::build(&key(2), &data, fields()).unwrap();
        let b = Manifest::build_from_reader(&key(2), Dribble(&data), fields()).unwrap();
        assert_eq!(a, b, "len {len}");
        let expected: Vec<Hash256> = data
            .chunks(CS)
            .enumerate()
            .map(|(i, c)| chunk_hash(i as u64, c))
            .collect();
        assert_eq!(a.manifest.chunk_hashes, expected, "len {len}");
    }
}

#[test]
fn tampering_breaks_the_signature() {
    let data = content(CS + 5);
    let signed = Manifest::build(&key(3), &data, fields()).unwrap();

    let mut t = signed.clone();
    t.manifest.title.push('!');
    assert!(matches!(t.verify(), Err(ManifestError::BadSignature)));

    let mut t = signed.clone();
    t.manifest.chunk_hashes[1] = chunk_hash(1, b"other");
    assert!(matches!(t.verify(), Err(ManifestError::BadSignature)));

    let mut t = signed.clone();
    t.manifest.creator = key(4).public_key().0;
    assert!(matches!(t.verify(), Err(ManifestError::BadSignature)));

    let mut t = signed.clone();
    t.signature[10] ^= 1;
    assert!(matches!(t.verify(), Err(ManifestError::BadSignature)));

    // The same tampering through the wire encoding.
    let mut bytes = signed.encode();
    let created_last = bytes.len() - 64 - 1;
    bytes[created_last] ^= 0x40;
    assert!(SignedManifest::decode_verified(&bytes).is_err());

    // A different manifest has a different id.
    assert_ne!(t.content_id(), signed.content_id());
}

#[test]
fn structural_rules() {
    let k = key(5);
    let data = content(10);
    let base = Manifest::build(&k, &data, fields()).unwrap().manifest;

    let mut m = base.clone();
    m.chunk_size = 1024;
    assert!(matches!(m.sign(&k), Err(ManifestError::BadChunkSize(1024))));

    let mut m = base.clone();
    m.chunk_hashes.push(Hash256::ZERO);
    assert!(matches!(
        m.sign(&k),
        Err(ManifestError::ChunkCountMismatch {
            expected: 1,
            found: 2
        })
    ));

    let mut m = base.clone();
    m.price = 100;
    assert!(matches!(m.sign(&k), Err(ManifestError::PricedNotEncrypted)));
    let mut m = base.clone();
    m.price = 100;
    m.encrypted = true;
    m.sign(&k).unwrap().verify().unwrap();

    let mut m = base.clone();
    m.live = true;
    assert!(matches!(m.sign(&k), Err(ManifestError::LiveWithContent)));

    let mut m = base.clone();
    m.size = MAX_CONTENT_SIZE + 1;
    assert!(matches!(m.sign(&k), Err(ManifestError::TooLarge { .. })));

    let mut m = base.clone();
    m.title = "x".repeat(MAX_TITLE_LEN + 1);
    assert!(matches!(
        m.sign(&k),
        Err(ManifestError::TooLarge { what: "title", .. })
    ));

    for (title, ok) in [
        ("", false),
        (" x", false),
        ("a\u{7}b", false),
        ("Ünïcode ✓", true),
    ] {
        let mut m = base.clone();
        m.title = title.into();
        assert_eq!(m.sign(&k).is_ok(), ok, "{title:?}");
    }
    let mut m = base.clone();
    m.tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    assert!(matches!(
        m.sign(&k),
        Err(ManifestError::TooLarge { what: "tags", .. })
    ));
    let mut m = base.clone();
    m.tags = vec!["a\nb".into()];
    assert!(matches!(
        m.sign(&k),
        Err(ManifestError::BadText { field: "tag", .. })
    ));
    for (mime, ok) in [
        ("video/mp4", true),
        ("audio/ogg; codecs=opus", true),
        ("video", false),
        ("vidéo/mp4", false),
        ("/", false),
        ("video/", false),
        ("vi deo/mp4", false),
        ("text/plain ; charset=utf-8", true),
    ] {
        let mut m = base.clone();
        m.mime = mime.into();
        assert_eq!(m.sign(&k).is_ok(), ok, "{mime:?}");
    }
    let mut m = base.clone();
    m.description = "tab\there\r".into();
    assert!(matches!(
        m.sign(&k),
        Err(ManifestError::BadText {
            field: "description",
            ..
        })
    ));

    let live = Manifest::build_live(&k, fields()).unwrap();
    live.verify().unwrap();
    assert!(live.manifest.live);
    assert_eq!(live.chunk_count(), 0);
}

#[test]
fn decoder_rejects_oversize_before_allocating() {
    let signed = Manifest::build(&key(6), &content(10), fields()).unwrap();
    let mut bytes = Vec::new();
    let m = &signed.manifest;
    bytes.push(MANIFEST_VERSION);
    bytes.extend_from_slice(&m.creator);
    write_text(&mut bytes, &m.title);
    write_text(&mut bytes, &m.description);
    write_compact_size(&mut bytes, 0);
    write_text(&mut bytes, &m.mime);
    bytes.extend_from_slice(&m.size.to_le_bytes());
    bytes.extend_from_slice(&m.chunk_size.to_le_bytes());
    let prefix = bytes.clone();
    // A million chunk hashes claimed, none present.
    write_compact_size(&mut bytes, MAX_CHUNKS);
    assert!(matches!(
        decode_exact::<Manifest>(&bytes),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    let mut bytes = prefix;
    write_compact_size(&mut bytes, MAX_CHUNKS + 1);
    assert!(matches!(
        decode_exact::<Manifest>(&bytes),
        Err(DecodeError::TooLong {
            what: "chunk hashes",
            ..
        })
    ));
    // Unknown version.
    let mut bytes = signed.encode();
    bytes[0] = 2;
    assert!(matches!(
        decode_exact::<SignedManifest>(&bytes),
        Err(DecodeError::InvalidTag { .. })
    ));
    // A boolean that is neither 0 nor 1.
    let mut bytes = signed.encode();
    let encrypted_at = bytes.len() - 64 - 8 - 2;
    bytes[encrypted_at] = 2;
    assert!(matches!(
        decode_exact::<SignedManifest>(&bytes),
        Err(DecodeError::InvalidTag { what: "bool", .. })
    ));
}

#[test]
fn chunk_verification() {
    let data = content(2 * CS + 100);
    let signed = Manifest::build(&key(7), &data, fields()).unwrap();
    let chunks: Vec<&[u8]> = data.chunks(CS).collect();
    for (i, c) in chunks.iter().enumerate() {
        signed.verify_chunk(i as u64, c).unwrap();
    }
    // Swapped: chunk 0's bytes offered as chunk 1.
    assert!(matches!(
        signed.verify_chunk(1, chunks[0]),
        Err(ManifestError::BadChunk { index: 1 })
    ));
    // Same hash preimage at another index does not verify either.
    let first_again = chunk_hash(1, chunks[0]);
    assert_ne!(first_again, signed.manifest.chunk_hashes[0]);
    // One flipped bit.
    let mut bad = chunks[1].to_vec();
    bad[500] ^= 1;
    let err = signed.verify_chunk(1, &bad).unwrap_err();
    assert!(matches!(err, ManifestError::BadChunk { index: 1 }));
    assert!(err.is_bad_data());
    // Wrong lengths.
    assert!(matches!(
        signed.verify_chunk(2, chunks[1]),
        Err(ManifestError::BadChunkLength {
            index: 2,
            expected: 100,
            found: 65536
        })
    ));
    assert!(matches!(
        signed.verify_chunk(0, &chunks[0][..10]),
        Err(ManifestError::BadChunkLength { index: 0, .. })
    ));
    // Out of range.
    let err = signed.verify_chunk(3, chunks[2]).unwrap_err();
    assert!(matches!(
        err,
        ManifestError::ChunkOutOfRange { index: 3, count: 3 }
    ));
    assert!(!err.is_bad_data());
    assert!(signed.verify_chunk(u64::MAX, b"").is_err());
}

#[test]
fn chunk_ranges() {
    let cs = CHUNK_SIZE as u64;
    let signed = Manifest::build(&key(8), &content(2 * CS + 100), fields()).unwrap();
    assert_eq!(signed.chunk_range(0).unwrap(), (0, cs));
    assert_eq!(signed.chunk_range(1).unwrap(), (cs, cs));
    assert_eq!(signed.chunk_range(2).unwrap(), (2 * cs, 100));
    assert!(signed.chunk_range(3).is_err());

    let r = |a, b| signed.chunks_for_range(a, b);
    assert_eq!(r(0, 1), 0..1);
    assert_eq!(r(0, cs), 0..1);
    assert_eq!(r(0, cs + 1), 0..2);
    assert_eq!(r(cs - 1, cs + 1), 0..2);
    assert_eq!(r(cs, cs + 1), 1..2);
    assert_eq!(r(cs, 2 * cs), 1..2);
    assert_eq!(r(2 * cs + 99, 2 * cs + 100), 2..3);
    assert_eq!(r(0, u64::MAX), 0..3);
    assert_eq!(r(5, 5), 0..0);
    assert_eq!(r(cs + 5, cs), 1..1);
    assert_eq!(r(2 * cs + 100, u64::MAX), 2..2);
    assert_eq!(r(u64::MAX, u64::MAX), 3..3);

    let empty = Manifest::build(&key(8), &[], fields()).unwrap();
    assert_eq!(empty.chunk_count(), 0);
    assert_eq!(empty.chunks_for_range(0, 10), 0..0);
    assert!(empty.chunk_range(0).is_err());

    let exact = Manifest::build(&key(8), &content(2 * CS), fields()).unwrap();
    assert_eq!(exact.chunk_range(1).unwrap(), (cs, cs));
    assert_eq!(exact.chunks_for_range(cs, 2 * cs), 1..2);
    assert_eq!(exact.chunks_for_range(2 * cs - 1, 3 * cs), 1..2);
}

#[test]
fn chunk_hasher_size_cap() {
    let mut h = ChunkHasher::new();
    h.size = MAX_CONTENT_SIZE - 1;
    assert!(h.update(b"a").is_ok());
    assert!(matches!(
        h.update(b"b"),
        Err(ManifestError::TooLarge {
            what: "content size",
            ..
        })
    ));
    assert_eq!(h.size(), MAX_CONTENT_SIZE);
}

fn arb_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..12).prop_map(move |cs| {
        let mut s = String::new();
        for c in cs {
            if s.len() + c.len_utf8() <= max {
                s.push(c);
            }
        }
        s
    })
}

prop_compose! {
    fn arb_manifest()(
        creator in any::<[u8; 32]>(),
        title in arb_text(MAX_TITLE_LEN),
        description in arb_text(MAX_DESCRIPTION_LEN),
        tags in proptest::collection::vec(arb_text(MAX_TAG_LEN), 0..=MAX_TAGS),
        mime in arb_text(MAX_MIME_LEN),
        size in any::<u64>(),
        chunk_size in any::<u32>(),
        hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..5),
        price in any::<u64>(),
        encrypted in any::<bool>(),
        live in any::<bool>(),
        created in any::<u64>(),
    ) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            creator,
            title,
            description,
            tags,
            mime,
            size,
            chunk_size,
            chunk_hashes: hashes.into_iter().map(Hash256).collect(),
            price,
            encrypted,
            live,
            created,
        }
    }
}

proptest! {
    #[test]
    fn encoding_round_trips(m in arb_manifest(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let signed = SignedManifest { manifest: m, signature: sig.try_into().unwrap() };
        let bytes = signed.encode();
        prop_assert_eq!(decode_exact::<SignedManifest>(&bytes).unwrap(), signed);
    }

    /// Mutated encodings either fail to decode or re-encode to exactly
    /// the same bytes; verification never panics.
    #[test]
    fn mutated_bytes_are_canonical_or_rejected(
        m in arb_manifest(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let signed = SignedManifest { manifest: m, signature: [7; 64] };
        let mut bytes = signed.encode();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(back) = decode_exact::<SignedManifest>(&bytes) {
            prop_assert_eq!(back.encode(), bytes);
            let _ = back.verify();
            let _ = back.chunks_for_range(0, u64::MAX);
            let _ = back.chunk_range(0);
        }
    }

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some(b) = bytes.first_mut() {
            *b = MANIFEST_VERSION;
        }
        if let Ok(back) = decode_exact::<SignedManifest>(&bytes) {
            prop_assert_eq!(back.encode(), bytes);
            let _ = back.verify();
        }
    }

    #[test]
    fn chunks_for_range_covers_exactly(size in 0u64..(5 * CHUNK_SIZE as u64), a in 0u64..(6 * CHUNK_SIZE as u64), len in 0u64..(3 * CHUNK_SIZE as u64)) {
        let count = chunk_count_for(size, CHUNK_SIZE).unwrap();
        let m = Manifest {
            version: MANIFEST_VERSION,
            creator: [0; 32],
            title: "t".into(),
            description: String::new(),
            tags: vec![],
            mime: "a/b".into(),
            size,
            chunk_size: CHUNK_SIZE,
            chunk_hashes: vec![Hash256::ZERO; count as usize],
            price: 0,
            encrypted: false,
            live: false,
            created: 0,
        };
        let b = a + len;
        let r = m.chunks_for_range(a, b);
        let end = b.min(size);
        for i in 0..count {
            let (off, l) = m.chunk_range(i).unwrap();
            let overlaps = off < end && a < off + l;
            prop_assert_eq!(r.contains(&i), overlaps, "chunk {} range {:?}", i, r);
        }
    }
}
