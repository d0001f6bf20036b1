//! Unit tests of `crypt`.

use proptest::prelude::*;
use rusty_crypto::ed25519::SecretKey;

use super::*;
use crate::manifest::{Manifest, ManifestFields};

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

fn encrypt_all(key: &ContentKey, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (p, c) = encrypt_stream(key, plain, &mut out).unwrap();
    assert_eq!(p, plain.len() as u64);
    assert_eq!(c, out.len() as u64);
    out
}

fn decrypt_all(key: &ContentKey, cipher: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    for (i, c) in cipher.chunks(CHUNK_SIZE as usize).enumerate() {
        plain.extend(decrypt_chunk(key, i as u64, c).unwrap());
    }
    plain
}

/// The sizes of the plaintext pieces of content of `len` bytes, by
/// cutting it one chunk at a time.
fn model_pieces(len: u64) -> Vec<u64> {
    let mut pieces = Vec::new();
    let mut left = len;
    loop {
        let take = left.min(PLAIN);
        pieces.push(take);
        left -= take;
        if left == 0 {
            break;
        }
    }
    pieces
}

fn model_cipher_size(len: u64) -> u64 {
    model_pieces(len).iter().map(|p| p + TAG).sum()
}

/// Brute-force inverse of [`model_cipher_size`]: the plaintext is at most
/// the ciphertext and at most one tag per chunk shorter.
fn model_plain_size(c: u64) -> Option<u64> {
    let lo = c.saturating_sub(TAG * (c / CHUNK + 2));
    (lo..=c).find(|&p| model_cipher_size(p) == c)
}

const SHAPES: [usize; 7] = [
    0,
    1,
    PLAIN_CHUNK - 1,
    PLAIN_CHUNK,
    PLAIN_CHUNK + 1,
    2 * PLAIN_CHUNK,
    3 * PLAIN_CHUNK + 1234,
];

#[test]
fn crypt_round_trips_every_shape() {
    let key = ContentKey::generate();
    for len in SHAPES {
        let plain = content(len);
        let cipher = encrypt_all(&key, &plain);
        assert_eq!(cipher.len() as u64, model_cipher_size(len as u64), "{len}");
        assert_eq!(cipher_size(len as u64), Some(cipher.len() as u64));
        assert_eq!(plain_size(cipher.len() as u64), Some(len as u64));
        let chunks: Vec<&[u8]> = cipher.chunks(CHUNK_SIZE as usize).collect();
        assert_eq!(chunks.len(), model_pieces(len as u64).len(), "{len}");
        let (last, rest) = chunks.split_last().unwrap();
        for c in rest {
            assert_eq!(c.len(), CHUNK_SIZE as usize);
        }
        assert!(last.len() >= TAG_LEN && last.len() <= CHUNK_SIZE as usize);
        assert!(len == 0 || last.len() > TAG_LEN, "empty last chunk");
        // Chunk by chunk, the same bytes as the stream.
        for (i, piece) in plain.chunks(PLAIN_CHUNK).enumerate() {
            assert_eq!(encrypt_chunk(&key, i as u64, piece), chunks[i]);
        }
        assert_eq!(decrypt_all(&key, &cipher), plain, "{len}");
    }
    assert_eq!(encrypt_chunk(&key, 0, &[]).len(), TAG_LEN);
    assert!(decrypt_chunk(&key, 0, &encrypt_chunk(&key, 0, &[]))
        .unwrap()
        .is_empty());
}

#[test]
#[should_panic(expected = "at most")]
fn crypt_oversize_plain_chunk_panics() {
    let _ = encrypt_chunk(&ContentKey::generate(), 0, &vec![0; PLAIN_CHUNK + 1]);
}

/// A reader that hands out a few bytes at a time and is sometimes
/// interrupted.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn crypt_stream_handles_short_reads_and_errors() {
    let key = ContentKey::generate();
    let plain = content(2 * PLAIN_CHUNK + 77);
    let reader = Trickle {
        data: &plain,
        step: 10_007,
        calls: 0,
    };
    let mut out = Vec::new();
    encrypt_stream(&key, reader, &mut out).unwrap();
    assert_eq!(out, encrypt_all(&key, &plain));

    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
    }
    assert!(matches!(
        encrypt_stream(&key, Broken, Vec::new()),
        Err(CryptError::Io(_))
    ));
    let mut tiny = [0u8; 10];
    assert!(matches!(
        encrypt_stream(&key, &plain[..], &mut tiny[..]),
        Err(CryptError::Io(_))
    ));
}

#[test]
fn crypt_manifest_verifies_encrypted_chunks() {
    let key = ContentKey::generate();
    let creator = SecretKey::generate();
    for len in SHAPES {
        let plain = content(len);
        let cipher = encrypt_all(&key, &plain);
        let fields = ManifestFields {
            title: "Priced".into(),
            mime: "video/mp4".into(),
            encrypted: true,
            price: 5,
            ..Default::default()
        };
        let signed = Manifest::build_from_reader(&creator, &cipher[..], fields).unwrap();
        signed.verify().unwrap();
        assert_eq!(signed.manifest.size, cipher.len() as u64);
        assert_eq!(plain_size(signed.manifest.size), Some(len as u64));
        let chunks: Vec<&[u8]> = cipher.chunks(CHUNK_SIZE as usize).collect();
        assert_eq!(signed.chunk_count(), chunks.len() as u64);
        for (i, c) in chunks.iter().enumerate() {
            signed.verify_chunk(i as u64, c).unwrap();
            decrypt_chunk(&key, i as u64, c).unwrap();
        }
    }
}

#[test]
fn crypt_tampering_fails_with_tag_error() {
    let key = ContentKey::generate();
    let other = ContentKey::generate();
    let plain = content(PLAIN_CHUNK + 500);
    let cipher = encrypt_all(&key, &plain);
    let chunk1 = &cipher[CHUNK_SIZE as usize..];
    assert!(matches!(
        decrypt_chunk(&other, 1, chunk1),
        Err(CryptError::TagMismatch { index: 1 })
    ));
    assert!(matches!(
        decrypt_chunk(&key, 0, chunk1),
        Err(CryptError::TagMismatch { index: 0 })
    ));
    assert!(matches!(
        decrypt_chunk(&key, 2, chunk1),
        Err(CryptError::TagMismatch { index: 2 })
    ));
    for at in [0, 250, chunk1.len() - 1, chunk1.len() - TAG_LEN] {
        let mut bad = chunk1.to_vec();
        bad[at] ^= 0x40;
        assert!(matches!(
            decrypt_chunk(&key, 1, &bad),
            Err(CryptError::TagMismatch { index: 1 })
        ));
    }
    // Truncated or extended ciphertext.
    assert!(matches!(
        decrypt_chunk(&key, 1, &chunk1[..chunk1.len() - 1]),
        Err(CryptError::TagMismatch { .. })
    ));
    assert!(matches!(
        decrypt_chunk(&key, 1, &chunk1[..5]),
        Err(CryptError::ChunkTooShort { index: 1, len: 5 })
    ));
    let mut long = cipher[..CHUNK_SIZE as usize].to_vec();
    long.push(0);
    assert!(matches!(
        decrypt_chunk(&key, 0, &long),
        Err(CryptError::ChunkTooLong { index: 0, .. })
    ));
    assert_eq!(
        decrypt_chunk(&key, 1, chunk1).unwrap(),
        &plain[PLAIN_CHUNK..]
    );
}

#[test]
fn crypt_sizes_at_boundaries() {
    assert_eq!(plain_size(0), None);
    assert_eq!(plain_size(1), None);
    assert_eq!(plain_size(TAG), Some(0));
    assert_eq!(plain_size(TAG + 1), Some(1));
    assert_eq!(plain_size(CHUNK), Some(PLAIN));
    assert_eq!(plain_size(CHUNK + TAG), None);
    assert_eq!(plain_size(CHUNK + TAG + 1), Some(PLAIN + 1));
    assert_eq!(plain_size(CHUNK + 3), None);
    assert_eq!(
        plain_size(u64::MAX),
        Some(u64::MAX / CHUNK * PLAIN + u64::MAX % CHUNK - TAG)
    );
    assert_eq!(cipher_size(u64::MAX), None);
    for c in 0..(2 * CHUNK + 100) {
        if c % CHUNK < 40 || c % CHUNK > CHUNK - 40 {
            assert_eq!(plain_size(c), model_plain_size(c), "{c}");
        }
    }
    assert_eq!(plain_range_to_chunks(0, 0), (0..0, 0));
    assert_eq!(plain_range_to_chunks(0, 1), (0..1, 0));
    assert_eq!(plain_range_to_chunks(0, PLAIN), (0..1, 0));
    assert_eq!(
        plain_range_to_chunks(PLAIN - 1, PLAIN + 1),
        (0..2, PLAIN_CHUNK - 1)
    );
    assert_eq!(plain_range_to_chunks(PLAIN, PLAIN + 1), (1..2, 0));
    assert_eq!(plain_range_to_chunks(PLAIN + 5, PLAIN), (1..1, 5));
    assert_eq!(
        plain_range_to_chunks(u64::MAX - 1, u64::MAX),
        (
            (u64::MAX - 1) / PLAIN..u64::MAX.div_ceil(PLAIN),
            ((u64::MAX - 1) % PLAIN) as usize
        )
    );
}

#[test]
fn crypt_range_reads_through_chunks() {
    let key = ContentKey::generate();
    let plain = content(3 * PLAIN_CHUNK + 1000);
    let cipher = encrypt_all(&key, &plain);
    let p = PLAIN_CHUNK;
    for (a, b) in [
        (0, 1),
        (0, p),
        (p - 3, p + 3),
        (p, 2 * p),
        (10, 3 * p + 1000),
        (3 * p + 999, 3 * p + 1000),
    ] {
        let (chunks, offset) = plain_range_to_chunks(a as u64, b as u64);
        let mut got = Vec::new();
        for i in chunks {
            let at = (i * CHUNK) as usize;
            let end = (at + CHUNK_SIZE as usize).min(cipher.len());
            got.extend(decrypt_chunk(&key, i, &cipher[at..end]).unwrap());
        }
        assert_eq!(&got[offset..offset + (b - a)], &plain[a..b], "{a}..{b}");
    }
}

proptest! {
    #[test]
    fn crypt_plain_size_matches_model(
        chunks in 0u64..5,
        rest in prop_oneof![0u64..40, (CHUNK - 40)..CHUNK, 0..CHUNK],
    ) {
        let c = chunks * CHUNK + rest;
        prop_assert_eq!(plain_size(c), model_plain_size(c));
        if let Some(p) = plain_size(c) {
            prop_assert_eq!(cipher_size(p), Some(c));
        }
    }

    #[test]
    fn crypt_cipher_size_matches_model(p in 0u64..(5 * CHUNK)) {
        prop_assert_eq!(cipher_size(p), Some(model_cipher_size(p)));
        prop_assert_eq!(plain_size(model_cipher_size(p)), Some(p));
    }

    #[test]
    fn crypt_range_to_chunks_matches_model(
        start in 0u64..(5 * CHUNK),
        len in prop_oneof![0u64..40, 0u64..(3 * CHUNK)],
        backwards in any::<bool>(),
    ) {
        let end = if backwards { start.saturating_sub(len) } else { start + len };
        let (range, offset) = plain_range_to_chunks(start, end);
        prop_assert_eq!(range.start, start / PLAIN);
        for i in 0..(end / PLAIN + 3) {
            let (lo, hi) = (i * PLAIN, (i + 1) * PLAIN);
            let overlaps = start < end && lo < end && start < hi;
            prop_assert_eq!(range.contains(&i), overlaps, "chunk {} of {:?}", i, range);
        }
        prop_assert_eq!(offset as u64, start - range.start * PLAIN);
        prop_assert!(offset < PLAIN_CHUNK);
    }
}

fn content_id(n: u8) -> Hash256 {
    Hash256([n; 32])
}

#[test]
fn crypt_wrap_round_trip_and_failures() {
    let seed = [7u8; 32];
    let buyer = BuyerKey::derive(&seed, &content_id(1));
    let key = ContentKey::generate();
    let ctx = b"content 01.. purchase ab..";
    let wrapped = wrap_key(&key, &buyer.public(), ctx).unwrap();
    assert_eq!(wrapped.len(), WRAPPED_LEN);
    assert_eq!(unwrap_key(&buyer, &wrapped, ctx).unwrap().0, key.0);
    // Re-derived from the seed later: still opens.
    let again = BuyerKey::derive(&seed, &content_id(1));
    assert_eq!(unwrap_key(&again, &wrapped, ctx).unwrap().0, key.0);
    // A fresh ephemeral key each time.
    let second = wrap_key(&key, &buyer.public(), ctx).unwrap();
    assert_ne!(second, wrapped);
    assert_eq!(unwrap_key(&buyer, &second, ctx).unwrap().0, key.0);

    let other_buyer = BuyerKey::derive(&[8u8; 32], &content_id(1));
    assert!(matches!(
        unwrap_key(&other_buyer, &wrapped, ctx),
        Err(CryptError::BadWrappedKey)
    ));
    let other_content = BuyerKey::derive(&seed, &content_id(2));
    assert!(matches!(
        unwrap_key(&other_content, &wrapped, ctx),
        Err(CryptError::BadWrappedKey)
    ));
    assert!(matches!(
        unwrap_key(&buyer, &wrapped, b"another context"),
        Err(CryptError::BadWrappedKey)
    ));
    assert!(matches!(
        unwrap_key(&buyer, &wrapped, b""),
        Err(CryptError::BadWrappedKey)
    ));
    for at in 0..WRAPPED_LEN {
        let mut bad = wrapped;
        bad[at] ^= 1 << (at % 8);
        assert!(
            matches!(
                unwrap_key(&buyer, &bad, ctx),
                Err(CryptError::BadWrappedKey)
            ),
            "byte {at}"
        );
    }
    // A low-order ephemeral key is refused, not used.
    let mut weak = wrapped;
    weak[..32].fill(0);
    assert!(matches!(
        unwrap_key(&buyer, &weak, ctx),
        Err(CryptError::BadWrappedKey)
    ));
    // Empty context works too.
    let w = wrap_key(&key, &buyer.public(), b"").unwrap();
    assert_eq!(unwrap_key(&buyer, &w, b"").unwrap().0, key.0);
}

#[test]
fn crypt_wrap_refuses_weak_public_keys() {
    let key = ContentKey::generate();
    // Points of small order on Curve25519 (and non-canonical encodings
    // of them): the shared secret is all zeros whatever the secret.
    let mut low_order: Vec<[u8; 32]> = vec![[0; 32], [0; 32], [0xff; 32]];
    low_order[1][0] = 1;
    let p = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
    low_order.extend([
        p("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        p("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        p("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        p("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        p("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ]);
    for (i, pk) in low_order.iter().enumerate() {
        if i == 2 {
            // 2^255 - 1 reduces to 18, an ordinary point: sanity check
            // that the check is not over-eager.
            assert!(wrap_key(&key, pk, b"c").is_ok());
            continue;
        }
        assert!(
            matches!(wrap_key(&key, pk, b"c"), Err(CryptError::WeakPublicKey)),
            "{}",
            hex::encode(pk)
        );
    }
}

#[test]
fn crypt_buyer_key_derivation() {
    let seed = [3u8; 32];
    let a = BuyerKey::derive(&seed, &content_id(1));
    assert_eq!(a.public(), BuyerKey::derive(&seed, &content_id(1)).public());
    assert_ne!(a.public(), BuyerKey::derive(&seed, &content_id(2)).public());
    assert_ne!(
        a.public(),
        BuyerKey::derive(&[4u8; 32], &content_id(1)).public()
    );
    assert_ne!(a.public(), [0u8; 32]);
    // The secret is the documented BLAKE3 derivation.
    let mut material = [0u8; 64];
    material[..32].copy_from_slice(&seed);
    material[32..].copy_from_slice(content_id(1).as_bytes());
    let secret = StaticSecret::from(blake3::derive_key(BUYER_KEY_CONTEXT, &material));
    assert_eq!(X25519Public::from(&secret).to_bytes(), a.public());
}

#[test]
fn crypt_debug_hides_secrets() {
    let key = ContentKey([0xab; 32]);
    let shown = format!("{key:?}");
    assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    let buyer = BuyerKey::derive(&[9u8; 32], &content_id(1));
    let shown = format!("{buyer:?}");
    assert!(shown.contains(&hex::encode(buyer.public())), "{shown}");
    assert!(
        !shown.contains(&hex::encode(buyer.secret.to_bytes())),
        "{shown}"
    );
    let e = CryptError::TagMismatch { index: 3 };
    assert!(e.to_string().contains("chunk 3"));
}
