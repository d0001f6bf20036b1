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
mod tests;
