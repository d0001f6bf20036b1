//! Encryption of priced content and release of its key to a buyer.
//!
//! Priced content is stored and served as ciphertext: the plaintext is cut
//! into [`PLAIN_CHUNK`]-byte pieces and each piece is sealed with
//! ChaCha20-Poly1305 under the content key, with the chunk index as the
//! nonce and a fixed associated-data label. A sealed piece plus its 16-byte
//! tag is exactly [`CHUNK_SIZE`] bytes, so ciphertext chunks line up with the
//! manifest's chunks: the manifest is built over the ciphertext and every
//! chunk can be verified by anyone before it is decrypted by the buyer.
//! Only the last chunk may be shorter; empty content encrypts to one chunk
//! holding just a tag.
//!
//! Once a purchase is final the creator's node wraps the content key to the
//! buyer ([`wrap_key`]): an ephemeral X25519 key agreement with the buyer's
//! per-content key ([`BuyerKey`], derived from the buyer node's secret seed
//! and the content id, so it can be re-derived at any time), a BLAKE3-derived
//! wrapping key, and ChaCha20-Poly1305 over the 32-byte content key. The
//! wrapped key goes on chain in a key-release transaction.

use std::{
    fmt,
    io::{ErrorKind, Read, Write},
    ops::Range,
};

use chacha20poly1305::{
    aead::{AeadInPlace, KeyInit},
    ChaCha20Poly1305, Key, Nonce, Tag,
};
use rand::{rngs::OsRng, RngCore};
use rusty_shared_types::Hash256;
use x25519_dalek::{EphemeralSecret, PublicKey as X25519Public, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::manifest::CHUNK_SIZE;

/// Bytes of a ChaCha20-Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Plaintext bytes per encrypted chunk: a ciphertext chunk is this plus the
/// 16-byte tag = [`CHUNK_SIZE`].
pub const PLAIN_CHUNK: usize = CHUNK_SIZE as usize - TAG_LEN;
/// Bytes of a content key.
pub const KEY_LEN: usize = 32;
/// Bytes of a wrapped content key: the ephemeral X25519 public key, the
/// encrypted content key and its tag.
pub const WRAPPED_LEN: usize = 32 + KEY_LEN + TAG_LEN;

/// Associated data of every content chunk.
const CHUNK_AAD: &[u8] = b"rusty-coin media-chunk-encryption v1";
/// BLAKE3 `derive_key` context of a buyer's per-content X25519 secret.
const BUYER_KEY_CONTEXT: &str = "rusty-coin media-buyer-key v1";
/// BLAKE3 `derive_key` context of a key-wrapping key.
const KEY_WRAP_CONTEXT: &str = "rusty-coin media-key-wrap v1";

const CHUNK: u64 = CHUNK_SIZE as u64;
const PLAIN: u64 = PLAIN_CHUNK as u64;
const TAG: u64 = TAG_LEN as u64;

/// Why encryption, decryption or key unwrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// A ciphertext chunk longer than [`CHUNK_SIZE`].
    #[error("ciphertext chunk {index} has {len} bytes, more than the chunk size {CHUNK_SIZE}")]
    ChunkTooLong { index: u64, len: usize },
    /// A ciphertext chunk shorter than its tag.
    #[error("ciphertext chunk {index} has {len} bytes, less than the {TAG_LEN}-byte tag")]
    ChunkTooShort { index: u64, len: usize },
    /// The chunk's tag does not verify: a wrong key, a wrong index or
    /// tampered bytes.
    #[error("chunk {index} does not decrypt: wrong key, wrong index or tampered ciphertext")]
    TagMismatch { index: u64 },
    /// The wrapped key does not open with this buyer key and context (another
    /// buyer's key, another context, tampered bytes or a weak ephemeral key).
    #[error("the wrapped content key does not open with this buyer key and context")]
    BadWrappedKey,
    /// The buyer's public key is of low order (e.g. all zeros), so the key
    /// agreement would not be secret.
    #[error("the buyer's public key is weak (low order): refusing to wrap a key to it")]
    WeakPublicKey,
    /// Reading the plaintext or writing the ciphertext failed.
    #[error("content I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A content key: the ChaCha20-Poly1305 key of one piece of content.
/// Zeroized on drop; its `Debug` does not show the key.
#[derive(Clone)]
pub struct ContentKey(pub [u8; KEY_LEN]);

impl ContentKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = ContentKey([0; KEY_LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The nonce of chunk `index`: the index as u64 little-endian followed by
/// four zero bytes.
fn chunk_nonce(index: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&index.to_le_bytes());
    Nonce::from(nonce)
}

/// Encrypts `buffer` in place and returns the tag.
fn seal(cipher: &ChaCha20Poly1305, nonce: &Nonce, aad: &[u8], buffer: &mut [u8]) -> Tag {
    match cipher.encrypt_in_place_detached(nonce, aad, buffer) {
        Ok(tag) => tag,
        // ChaCha20-Poly1305 only refuses plaintexts over 256 GiB; every
        // caller here passes at most one chunk.
        Err(_) => unreachable!(
            "ChaCha20-Poly1305 refused a {}-byte plaintext",
            buffer.len()
        ),
    }
}

/// Encrypts chunk `index` of the content into `out` (cleared first):
/// ciphertext followed by the tag.
fn encrypt_chunk_into(cipher: &ChaCha20Poly1305, index: u64, plain: &[u8], out: &mut Vec<u8>) {
    assert!(
        plain.len() <= PLAIN_CHUNK,
        "a chunk holds at most {PLAIN_CHUNK} plaintext bytes, got {}",
        plain.len()
    );
    out.clear();
    out.extend_from_slice(plain);
    let tag = seal(cipher, &chunk_nonce(index), CHUNK_AAD, out);
    out.extend_from_slice(&tag);
}

/// Encrypts chunk `index` (nonce = index as u64 little-endian ‖ 4 zero
/// bytes; associated data `b"rusty-coin media-chunk-encryption v1"`): the
/// plaintext, of at most [`PLAIN_CHUNK`] bytes, becomes ciphertext followed
/// by the 16-byte tag. Every chunk but the last holds exactly
/// [`PLAIN_CHUNK`] bytes; the last is not empty unless the whole content is.
///
/// # Panics
///
/// If `plain` is longer than [`PLAIN_CHUNK`] (a caller bug: the chunking is
/// fixed by the protocol).
pub fn encrypt_chunk(key: &ContentKey, index: u64, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + TAG_LEN);
    encrypt_chunk_into(&key.cipher(), index, plain, &mut out);
    out
}

/// Decrypts chunk `index` sealed by [`encrypt_chunk`]. Fails with
/// [`CryptError::TagMismatch`] if the key or index is wrong or the bytes were
/// altered, and on a chunk longer than [`CHUNK_SIZE`] or shorter than a tag.
pub fn decrypt_chunk(key: &ContentKey, index: u64, cipher: &[u8]) -> Result<Vec<u8>, CryptError> {
    let len = cipher.len();
    if len > CHUNK_SIZE as usize {
        return Err(CryptError::ChunkTooLong { index, len });
    }
    let Some(body_len) = len.checked_sub(TAG_LEN) else {
        return Err(CryptError::ChunkTooShort { index, len });
    };
    let (body, tag) = cipher.split_at(body_len);
    let mut plain = body.to_vec();
    key.cipher()
        .decrypt_in_place_detached(
            &chunk_nonce(index),
            CHUNK_AAD,
            &mut plain,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptError::TagMismatch { index })?;
    Ok(plain)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Streams `plain` into ciphertext chunks (each exactly [`CHUNK_SIZE`] bytes
/// except the last) written to `out`, holding one chunk in memory however
/// large the content is. Returns (plaintext size, ciphertext size). Empty
/// content gives one chunk holding only a tag.
pub fn encrypt_stream(
    key: &ContentKey,
    mut plain: impl Read,
    mut out: impl Write,
) -> Result<(u64, u64), CryptError> {
    let cipher = key.cipher();
    let mut buf = Zeroizing::new(vec![0u8; PLAIN_CHUNK]);
    let mut sealed = Vec::with_capacity(CHUNK_SIZE as usize);
    let (mut plain_size, mut cipher_size) = (0u64, 0u64);
    let mut index = 0u64;
    loop {
        let n = read_full(&mut plain, &mut buf)?;
        if n == 0 && index > 0 {
            break;
        }
        encrypt_chunk_into(
            &cipher,
            index,
            buf.get(..n).unwrap_or_default(),
            &mut sealed,
        );
        out.write_all(&sealed)?;
        plain_size += n as u64;
        cipher_size += sealed.len() as u64;
        index += 1;
        if n < PLAIN_CHUNK {
            break;
        }
    }
    out.flush()?;
    Ok((plain_size, cipher_size))
}

/// Ciphertext size of content of `plain_size` bytes (`None` on overflow).
pub fn cipher_size(plain_size: u64) -> Option<u64> {
    if plain_size == 0 {
        return Some(TAG);
    }
    let full = plain_size / PLAIN;
    let rest = plain_size % PLAIN;
    let last = if rest == 0 { 0 } else { rest + TAG };
    full.checked_mul(CHUNK)?.checked_add(last)
}

/// Plaintext size of a ciphertext of `cipher_size` bytes; `None` if no
/// content encrypts to that size (no bytes at all, a last chunk shorter than
/// the tag, or an empty last chunk after full ones).
pub fn plain_size(cipher_size: u64) -> Option<u64> {
    let full = cipher_size / CHUNK;
    let rest = cipher_size % CHUNK;
    match rest {
        0 if full == 0 => None,
        0 => Some(full * PLAIN),
        TAG if full == 0 => Some(0),
        r if r <= TAG => None,
        r => Some(full * PLAIN + (r - TAG)),
    }
}

/// Which ciphertext chunks hold plaintext bytes `start..end` (half-open), and
/// the offset of `start` inside the first chunk's plaintext. The range is
/// not clamped to the content size: clamp `end` first. An empty byte range
/// gives the empty chunk range at `start`'s chunk.
pub fn plain_range_to_chunks(start: u64, end: u64) -> (Range<u64>, usize) {
    let first = start / PLAIN;
    // `start % PLAIN < PLAIN_CHUNK`, so the cast is lossless.
    let offset = (start % PLAIN) as usize;
    if start >= end {
        return (first..first, offset);
    }
    (first..end.div_ceil(PLAIN), offset)
}

/// A buyer's X25519 key pair for one piece of content, derived from the
/// buyer node's secret seed and the content id, so the buyer can re-derive
/// it at any time and recover the content key from the chain for as long as
/// it keeps the seed. The secret is zeroized on drop; `Debug` shows only the
/// public key.
pub struct BuyerKey {
    secret: StaticSecret,
    public: X25519Public,
}

impl BuyerKey {
    /// The key pair for `content_id`: BLAKE3 `derive_key("rusty-coin
    /// media-buyer-key v1", seed ‖ content_id)` as an X25519 static secret.
    pub fn derive(seed: &[u8; 32], content_id: &Hash256) -> BuyerKey {
        let mut material = Zeroizing::new([0u8; 64]);
        material[..32].copy_from_slice(seed);
        material[32..].copy_from_slice(content_id.as_bytes());
        let secret = StaticSecret::from(blake3::derive_key(BUYER_KEY_CONTEXT, &material[..]));
        let public = X25519Public::from(&secret);
        BuyerKey { secret, public }
    }

    /// The public key a content purchase names, which the key is wrapped to.
    pub fn public(&self) -> [u8; 32] {
        self.public.to_bytes()
    }
}

impl fmt::Debug for BuyerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuyerKey")
            .field("public", &hex::encode(self.public.as_bytes()))
            .finish_non_exhaustive()
    }
}

/// The cipher of a key wrap: key = BLAKE3 `derive_key("rusty-coin
/// media-key-wrap v1", shared ‖ ephemeral pub ‖ buyer pub ‖ context)`.
fn wrap_cipher(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    buyer: &[u8; 32],
    context: &[u8],
) -> ChaCha20Poly1305 {
    let mut material = Zeroizing::new(Vec::with_capacity(96 + context.len()));
    material.extend_from_slice(shared);
    material.extend_from_slice(ephemeral);
    material.extend_from_slice(buyer);
    material.extend_from_slice(context);
    let key = Zeroizing::new(blake3::derive_key(KEY_WRAP_CONTEXT, &material));
    ChaCha20Poly1305::new(Key::from_slice(&key[..]))
}

/// Seals `key` to the buyer's X25519 public key: a fresh ephemeral key pair,
/// the wrapping key derived from the shared secret, both public keys and
/// `context` (e.g. the content id and purchase), and ChaCha20-Poly1305 with
/// an all-zero nonce (each wrapping key is used once) and `context` as the
/// associated data. Output: ephemeral public key ‖ encrypted key ‖ tag.
/// Refuses low-order buyer keys (the shared secret would be all zeros).
pub fn wrap_key(
    key: &ContentKey,
    buyer_public: &[u8; 32],
    context: &[u8],
) -> Result<[u8; WRAPPED_LEN], CryptError> {
    let ephemeral = EphemeralSecret::random_from_rng(OsRng);
    let ephemeral_public = X25519Public::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&X25519Public::from(*buyer_public));
    if !shared.was_contributory() {
        return Err(CryptError::WeakPublicKey);
    }
    let cipher = wrap_cipher(shared.as_bytes(), &ephemeral_public, buyer_public, context);
    let mut sealed = Zeroizing::new(key.0);
    let tag = seal(&cipher, &Nonce::default(), context, &mut sealed[..]);
    let mut wrapped = [0u8; WRAPPED_LEN];
    wrapped[..32].copy_from_slice(&ephemeral_public);
    wrapped[32..32 + KEY_LEN].copy_from_slice(&sealed[..]);
    wrapped[32 + KEY_LEN..].copy_from_slice(&tag);
    Ok(wrapped)
}

/// Opens a key sealed by [`wrap_key`] with the buyer's key pair and the same
/// `context`.
pub fn unwrap_key(
    buyer: &BuyerKey,
    wrapped: &[u8; WRAPPED_LEN],
    context: &[u8],
) -> Result<ContentKey, CryptError> {
    let mut ephemeral_public = [0u8; 32];
    ephemeral_public.copy_from_slice(&wrapped[..32]);
    let shared = buyer
        .secret
        .diffie_hellman(&X25519Public::from(ephemeral_public));
    if !shared.was_contributory() {
        return Err(CryptError::BadWrappedKey);
    }
    let cipher = wrap_cipher(
        shared.as_bytes(),
        &ephemeral_public,
        buyer.public.as_bytes(),
        context,
    );
    let mut key = ContentKey([0; KEY_LEN]);
    key.0.copy_from_slice(&wrapped[32..32 + KEY_LEN]);
    cipher
        .decrypt_in_place_detached(
            &Nonce::default(),
            context,
            &mut key.0,
            Tag::from_slice(&wrapped[32 + KEY_LEN..]),
        )
        .map_err(|_| CryptError::BadWrappedKey)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
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
}
