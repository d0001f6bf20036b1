//! The creator-signed manifest of a piece of content, its content id and
//! chunk verification.
//!
//! Content is cut into [`CHUNK_SIZE`] chunks (the last one may be shorter).
//! Each chunk is hashed with [`chunk_hash`], which binds the chunk's index so
//! two chunks can never be swapped, and the manifest lists every chunk hash.
//! The creator signs the manifest's canonical encoding with Ed25519; the
//! content id is the BLAKE3 hash ([`Domain::ContentManifest`]) of the whole
//! signed encoding, so the id commits to the creator, the metadata and every
//! byte of the content.
//!
//! [`Manifest`] decoding only enforces what it must to decode safely (caps
//! on every length, checked before allocating; UTF-8 text; a known
//! version). Everything else — text rules, chunk size, chunk count, price and
//! encryption — is checked by [`Manifest::validate`], which
//! [`SignedManifest::verify`] runs before checking the signature.

use std::{io::Read, ops::Range, sync::OnceLock};

use rusty_crypto::{CryptoError, PublicKey, SecretKey, Signature};
use rusty_shared_types::{
    decode_exact,
    encoding::{write_bytes, write_compact_size, write_vec, DecodeResult, Reader},
    Decode, DecodeError, Domain, Encode, Hash256,
};

/// The manifest format version this build writes and accepts.
pub const MANIFEST_VERSION: u8 = 1;
/// Bytes per chunk; every chunk but the last has exactly this length.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// Largest content a manifest may describe: 64 GiB.
pub const MAX_CONTENT_SIZE: u64 = 64 << 30;
/// Most chunks a manifest may list (`MAX_CONTENT_SIZE / CHUNK_SIZE`).
pub const MAX_CHUNKS: u64 = MAX_CONTENT_SIZE / CHUNK_SIZE as u64;
/// Most bytes of a title (at least one is required).
pub const MAX_TITLE_LEN: usize = 200;
/// Most bytes of a description.
pub const MAX_DESCRIPTION_LEN: usize = 4000;
/// Most tags of a manifest.
pub const MAX_TAGS: usize = 16;
/// Most bytes of one tag (at least one is required).
pub const MAX_TAG_LEN: usize = 32;
/// Most bytes of a MIME type (`type/subtype`, optionally followed by
/// `; parameters`).
pub const MAX_MIME_LEN: usize = 100;

/// Why a manifest or a chunk was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not a canonical manifest encoding.
    #[error("malformed manifest: {0}")]
    Decode(#[from] DecodeError),
    /// A manifest version this build does not know.
    #[error("unsupported manifest version {0} (this build knows version {MANIFEST_VERSION})")]
    UnsupportedVersion(u8),
    /// The signature does not verify under the creator key.
    #[error("the manifest signature does not verify under the creator key")]
    BadSignature,
    /// The creator key is not a valid Ed25519 public key.
    #[error("the creator key is not a valid Ed25519 public key")]
    BadCreatorKey,
    /// A field or the content is over its limit.
    #[error("{what} is {len}, more than the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    /// A text field breaks the text rules.
    #[error("invalid {field}: {reason}")]
    BadText {
        field: &'static str,
        reason: &'static str,
    },
    /// The chunk size is not [`CHUNK_SIZE`].
    #[error("chunk size {0} is not the protocol's {CHUNK_SIZE}")]
    BadChunkSize(u32),
    /// The number of chunk hashes does not match the size.
    #[error("the manifest lists {found} chunk hashes, its size needs {expected}")]
    ChunkCountMismatch { expected: u64, found: u64 },
    /// Priced content must be encrypted.
    #[error("priced content must be encrypted")]
    PricedNotEncrypted,
    /// A live stream's manifest lists content (its segments come later).
    #[error("a live stream manifest must have size 0 and no chunk hashes")]
    LiveWithContent,
    /// A chunk index past the last chunk.
    #[error("chunk {index} is out of range (the content has {count} chunks)")]
    ChunkOutOfRange { index: u64, count: u64 },
    /// A chunk whose length is not the one its index requires.
    #[error("chunk {index} has {found} bytes, expected {expected}")]
    BadChunkLength {
        index: u64,
        expected: u64,
        found: u64,
    },
    /// A chunk whose hash does not match the manifest.
    #[error("chunk {index} does not match its hash in the manifest")]
    BadChunk { index: u64 },
    /// Reading the content failed.
    #[error("reading the content: {0}")]
    Io(#[from] std::io::Error),
}

impl ManifestError {
    /// Whether the error means that data received from a peer was bad (a
    /// wrong chunk or a malformed or forged manifest), as opposed to a local
    /// I/O problem or a request for something that does not exist.
    pub fn is_bad_data(&self) -> bool {
        !matches!(
            self,
            ManifestError::Io(_) | ManifestError::ChunkOutOfRange { .. }
        )
    }
}

/// What a creator says about a piece of content. See the module docs and
/// `docs/media.md` for the encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u8,
    /// The creator's Ed25519 public key, which signs the manifest.
    pub creator: [u8; 32],
    /// 1 to [`MAX_TITLE_LEN`] bytes.
    pub title: String,
    /// Up to [`MAX_DESCRIPTION_LEN`] bytes; may contain newlines and tabs.
    pub description: String,
    /// Up to [`MAX_TAGS`] tags of 1 to [`MAX_TAG_LEN`] bytes.
    pub tags: Vec<String>,
    /// The MIME type of the content, e.g. `video/mp4`.
    pub mime: String,
    /// Content size in bytes (0 for a live stream).
    pub size: u64,
    /// [`CHUNK_SIZE`].
    pub chunk_size: u32,
    /// [`chunk_hash`] of every chunk, in order (empty for a live stream).
    pub chunk_hashes: Vec<Hash256>,
    /// Price in base units; 0 = free. Priced content must be encrypted.
    pub price: u64,
    /// Whether the chunks are ciphertext (the key is released on payment).
    pub encrypted: bool,
    /// A live stream: no size or chunks here, segments are announced later.
    pub live: bool,
    /// Creation time, Unix seconds, as the creator states it.
    pub created: u64,
}

/// A manifest and the creator's signature over its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    pub manifest: Manifest,
    /// Ed25519 signature by `manifest.creator` over `manifest.encode()`.
    pub signature: [u8; 64],
}

/// The metadata a creator chooses when building a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestFields {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub mime: String,
    /// Base units; a non-zero price requires `encrypted`.
    pub price: u64,
    /// Whether the content handed to the builder is already ciphertext.
    pub encrypted: bool,
    /// Unix seconds.
    pub created: u64,
}

/// The hash of chunk `index` with contents `bytes`: BLAKE3 under
/// [`Domain::MediaChunk`] of the index (u64 little-endian) followed by the
/// bytes.
pub fn chunk_hash(index: u64, bytes: &[u8]) -> Hash256 {
    let mut h = chunk_hasher(index);
    h.update(bytes);
    Hash256(*h.finalize().as_bytes())
}

/// A hasher for chunk `index` with the index already absorbed.
fn chunk_hasher(index: u64) -> blake3::Hasher {
    static KEYED: OnceLock<blake3::Hasher> = OnceLock::new();
    let mut h = KEYED.get_or_init(|| Domain::MediaChunk.hasher()).clone();
    h.update(&index.to_le_bytes());
    h
}

/// Number of chunks of content of `size` bytes cut into `chunk_size` chunks;
/// `None` if `chunk_size` is 0.
pub fn chunk_count_for(size: u64, chunk_size: u32) -> Option<u64> {
    if chunk_size == 0 {
        return None;
    }
    Some(size.div_ceil(u64::from(chunk_size)))
}

/// Hashes content chunk by chunk as it streams in, in pieces of any size,
/// without buffering a chunk.
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    current: blake3::Hasher,
    /// Bytes of the current chunk absorbed so far.
    filled: u32,
    size: u64,
    hashes: Vec<Hash256>,
}

impl Default for ChunkHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkHasher {
    pub fn new() -> Self {
        ChunkHasher {
            current: chunk_hasher(0),
            filled: 0,
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// Bytes absorbed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Absorbs the next `data` bytes of the content. Fails, absorbing
    /// nothing, if the content would exceed [`MAX_CONTENT_SIZE`].
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), ManifestError> {
        let new_size = self
            .size
            .checked_add(data.len() as u64)
            .filter(|s| *s <= MAX_CONTENT_SIZE)
            .ok_or(ManifestError::TooLarge {
                what: "content size",
                len: self.size.saturating_add(data.len() as u64),
                max: MAX_CONTENT_SIZE,
            })?;
        while !data.is_empty() {
            // `filled < CHUNK_SIZE` between calls, so `room >= 1`.
            let room = (CHUNK_SIZE - self.filled) as usize;
            let take = room.min(data.len());
            let (head, tail) = data.split_at(take);
            self.current.update(head);
            // `take <= room <= CHUNK_SIZE`, so the cast and sum are in range.
            self.filled += take as u32;
            data = tail;
            if self.filled == CHUNK_SIZE {
                self.close_chunk();
            }
        }
        self.size = new_size;
        Ok(())
    }

    fn close_chunk(&mut self) {
        let next = self.hashes.len() as u64 + 1;
        let done = std::mem::replace(&mut self.current, chunk_hasher(next));
        self.hashes.push(Hash256(*done.finalize().as_bytes()));
        self.filled = 0;
    }

    /// The content size and the hash of every chunk.
    pub fn finish(mut self) -> (u64, Vec<Hash256>) {
        if self.filled > 0 {
            self.close_chunk();
        }
        (self.size, self.hashes)
    }
}

impl Manifest {
    /// Builds and signs the manifest of `content` with `creator_key`.
    pub fn build(
        creator_key: &SecretKey,
        content: &[u8],
        fields: ManifestFields,
    ) -> Result<SignedManifest, ManifestError> {
        Self::build_from_reader(creator_key, content, fields)
    }

    /// Builds and signs the manifest of the content read from `content`,
    /// holding only one read buffer in memory however large the content is.
    pub fn build_from_reader(
        creator_key: &SecretKey,
        mut content: impl Read,
        fields: ManifestFields,
    ) -> Result<SignedManifest, ManifestError> {
        let mut hasher = ChunkHasher::new();
        let mut buf = vec![0u8; CHUNK_SIZE as usize];
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ManifestError::Io(e)),
            };
            hasher.update(buf.get(..n).unwrap_or_default())?;
        }
        let (size, chunk_hashes) = hasher.finish();
        Self::from_fields(fields, size, chunk_hashes, false).sign(creator_key)
    }

    /// Builds and signs the manifest of a live stream, whose segments are
    /// announced separately as they are produced.
    pub fn build_live(
        creator_key: &SecretKey,
        fields: ManifestFields,
    ) -> Result<SignedManifest, ManifestError> {
        Self::from_fields(fields, 0, Vec::new(), true).sign(creator_key)
    }

    fn from_fields(fields: ManifestFields, size: u64, hashes: Vec<Hash256>, live: bool) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            creator: [0; 32],
            title: fields.title,
            description: fields.description,
            tags: fields.tags,
            mime: fields.mime,
            size,
            chunk_size: CHUNK_SIZE,
            chunk_hashes: hashes,
            price: fields.price,
            encrypted: fields.encrypted,
            live,
            created: fields.created,
        }
    }

    /// Sets the creator to `creator_key`'s public key, validates and signs.
    pub fn sign(mut self, creator_key: &SecretKey) -> Result<SignedManifest, ManifestError> {
        self.creator = creator_key.public_key().0;
        self.validate()?;
        let signature = creator_key.sign(&self.encode()).0;
        Ok(SignedManifest {
            manifest: self,
            signature,
        })
    }

    /// The creator key.
    pub fn creator(&self) -> PublicKey {
        PublicKey(self.creator)
    }

    /// Checks every rule a manifest must follow besides its signature.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion(self.version));
        }
        check_text("title", &self.title, MAX_TITLE_LEN, TextKind::Line)?;
        check_text(
            "description",
            &self.description,
            MAX_DESCRIPTION_LEN,
            TextKind::Paragraph,
        )?;
        check_len("tags", self.tags.len(), MAX_TAGS)?;
        for tag in &self.tags {
            check_text("tag", tag, MAX_TAG_LEN, TextKind::Line)?;
        }
        check_text("MIME type", &self.mime, MAX_MIME_LEN, TextKind::Mime)?;
        if self.chunk_size != CHUNK_SIZE {
            return Err(ManifestError::BadChunkSize(self.chunk_size));
        }
        if self.size > MAX_CONTENT_SIZE {
            return Err(ManifestError::TooLarge {
                what: "content size",
                len: self.size,
                max: MAX_CONTENT_SIZE,
            });
        }
        if self.live && (self.size != 0 || !self.chunk_hashes.is_empty()) {
            return Err(ManifestError::LiveWithContent);
        }
        let expected = chunk_count_for(self.size, self.chunk_size)
            .ok_or(ManifestError::BadChunkSize(self.chunk_size))?;
        let found = self.chunk_hashes.len() as u64;
        if expected != found {
            return Err(ManifestError::ChunkCountMismatch { expected, found });
        }
        if self.price > 0 && !self.encrypted {
            return Err(ManifestError::PricedNotEncrypted);
        }
        Ok(())
    }

    /// Number of chunks (the number of chunk hashes listed).
    pub fn chunk_count(&self) -> u64 {
        self.chunk_hashes.len() as u64
    }

    /// Byte offset and length of chunk `index`.
    pub fn chunk_range(&self, index: u64) -> Result<(u64, u64), ManifestError> {
        let count = self.chunk_count();
        let out_of_range = ManifestError::ChunkOutOfRange { index, count };
        if index >= count {
            return Err(out_of_range);
        }
        let chunk_size = u64::from(self.chunk_size);
        let offset = index.checked_mul(chunk_size).ok_or(out_of_range)?;
        let rest = self
            .size
            .checked_sub(offset)
            .filter(|r| *r > 0)
            .ok_or(ManifestError::ChunkOutOfRange { index, count })?;
        Ok((offset, rest.min(chunk_size)))
    }

    /// Checks that `bytes` are chunk `index`: the index is in range, the
    /// length is the chunk size (or the remainder, for the last chunk) and
    /// the hash matches.
    pub fn verify_chunk(&self, index: u64, bytes: &[u8]) -> Result<(), ManifestError> {
        let (_, len) = self.chunk_range(index)?;
        if bytes.len() as u64 != len {
            return Err(ManifestError::BadChunkLength {
                index,
                expected: len,
                found: bytes.len() as u64,
            });
        }
        let expected = usize::try_from(index)
            .ok()
            .and_then(|i| self.chunk_hashes.get(i))
            .ok_or(ManifestError::ChunkOutOfRange {
                index,
                count: self.chunk_count(),
            })?;
        if chunk_hash(index, bytes) != *expected {
            return Err(ManifestError::BadChunk { index });
        }
        Ok(())
    }

    /// The chunks holding bytes `start..end` (half-open, clamped to the
    /// content size). An HTTP `Range: bytes=a-b` (inclusive) is
    /// `chunks_for_range(a, b + 1)`. An empty byte range gives an empty chunk
    /// range.
    pub fn chunks_for_range(&self, start: u64, end: u64) -> Range<u64> {
        let chunk_size = u64::from(self.chunk_size);
        let count = self.chunk_count();
        if chunk_size == 0 {
            return 0..0;
        }
        let end = end.min(self.size);
        if start >= end {
            let at = (start / chunk_size).min(count);
            return at..at;
        }
        // `end >= 1` here, so `end - 1` cannot underflow.
        let first = start / chunk_size;
        let last = (end - 1) / chunk_size;
        first.min(count)..last.saturating_add(1).min(count)
    }
}

impl SignedManifest {
    /// The content id: BLAKE3 under [`Domain::ContentManifest`] of the full
    /// signed encoding.
    pub fn content_id(&self) -> Hash256 {
        Hash256::domain_hash(Domain::ContentManifest, &self.encode())
    }

    /// Checks the manifest's rules ([`Manifest::validate`]) and the
    /// creator's signature over the unsigned encoding.
    pub fn verify(&self) -> Result<(), ManifestError> {
        self.manifest.validate()?;
        self.manifest
            .creator()
            .verify(&self.manifest.encode(), &Signature(self.signature))
            .map_err(|e| match e {
                CryptoError::InvalidPublicKey => ManifestError::BadCreatorKey,
                _ => ManifestError::BadSignature,
            })
    }

    /// Decodes (rejecting trailing bytes) and verifies a signed manifest.
    pub fn decode_verified(bytes: &[u8]) -> Result<SignedManifest, ManifestError> {
        let signed: SignedManifest = decode_exact(bytes)?;
        signed.verify()?;
        Ok(signed)
    }

    /// See [`Manifest::chunk_count`].
    pub fn chunk_count(&self) -> u64 {
        self.manifest.chunk_count()
    }

    /// See [`Manifest::chunk_range`].
    pub fn chunk_range(&self, index: u64) -> Result<(u64, u64), ManifestError> {
        self.manifest.chunk_range(index)
    }

    /// See [`Manifest::verify_chunk`].
    pub fn verify_chunk(&self, index: u64, bytes: &[u8]) -> Result<(), ManifestError> {
        self.manifest.verify_chunk(index, bytes)
    }

    /// See [`Manifest::chunks_for_range`].
    pub fn chunks_for_range(&self, start: u64, end: u64) -> Range<u64> {
        self.manifest.chunks_for_range(start, end)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// One line: no control characters, no leading or trailing whitespace,
    /// not empty.
    Line,
    /// Free text: no control characters except `\n` and `\t`; may be empty.
    Paragraph,
    /// `type/subtype[; parameters]`: printable ASCII and spaces, no leading
    /// or trailing space, a non-empty type and subtype without spaces.
    Mime,
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), ManifestError> {
    if len > max {
        return Err(ManifestError::TooLarge {
            what,
            len: len as u64,
            max: max as u64,
        });
    }
    Ok(())
}

fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    kind: TextKind,
) -> Result<(), ManifestError> {
    check_len(field, text.len(), max)?;
    let bad = |reason| Err(ManifestError::BadText { field, reason });
    if kind != TextKind::Paragraph {
        if text.is_empty() {
            return bad("must not be empty");
        }
        if text.trim() != text {
            return bad("must not start or end with whitespace");
        }
    }
    match kind {
        TextKind::Line => {
            if text.chars().any(char::is_control) {
                return bad("must not contain control characters");
            }
        }
        TextKind::Paragraph => {
            if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return bad("must not contain control characters other than newline and tab");
            }
        }
        TextKind::Mime => {
            if !text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return bad("must be printable ASCII");
            }
            let essence = text.split(';').next().unwrap_or_default().trim_end();
            let well_formed = essence.split_once('/').is_some_and(|(ty, sub)| {
                !ty.is_empty() && !sub.is_empty() && !essence.contains(' ')
            });
            if !well_formed {
                return bad("must have the form type/subtype");
            }
        }
    }
    Ok(())
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_bytes(out, text.as_bytes());
}

fn read_text(r: &mut Reader<'_>, what: &'static str, max: usize) -> DecodeResult<String> {
    String::from_utf8(r.bytes(what, max)?).map_err(|_| DecodeError::InvalidValue(what))
}

impl Encode for Manifest {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.creator);
        write_text(out, &self.title);
        write_text(out, &self.description);
        write_compact_size(out, self.tags.len() as u64);
        for tag in &self.tags {
            write_text(out, tag);
        }
        write_text(out, &self.mime);
        self.size.encode_to(out);
        self.chunk_size.encode_to(out);
        write_vec(out, &self.chunk_hashes);
        self.price.encode_to(out);
        self.encrypted.encode_to(out);
        self.live.encode_to(out);
        self.created.encode_to(out);
    }

    fn encoded_size_hint(&self) -> usize {
        let tags: usize = self.tags.iter().map(|t| t.len() + 1).sum();
        // Fixed fields, text with length prefixes, chunk hashes, signature.
        120 + self.title.len()
            + self.description.len()
            + tags
            + self.mime.len()
            + 32 * self.chunk_hashes.len()
    }
}

impl Decode for Manifest {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != MANIFEST_VERSION {
            return Err(DecodeError::InvalidTag {
                what: "manifest version",
                tag: u64::from(version),
            });
        }
        let creator = r.array()?;
        let title = read_text(r, "title", MAX_TITLE_LEN)?;
        let description = read_text(r, "description", MAX_DESCRIPTION_LEN)?;
        // Each tag takes at least its one-byte length prefix.
        let tag_count = r.length("tags", MAX_TAGS, 1)?;
        let mut tags = Vec::with_capacity(tag_count);
        for _ in 0..tag_count {
            tags.push(read_text(r, "tag", MAX_TAG_LEN)?);
        }
        let mime = read_text(r, "MIME type", MAX_MIME_LEN)?;
        let size = r.u64()?;
        let chunk_size = r.u32()?;
        // `MAX_CHUNKS` (2^20) fits every `usize` this builds for.
        let chunk_hashes = r.vec("chunk hashes", MAX_CHUNKS as usize, 32)?;
        let price = r.u64()?;
        let encrypted = bool::decode_from(r)?;
        let live = bool::decode_from(r)?;
        let created = r.u64()?;
        Ok(Manifest {
            version,
            creator,
            title,
            description,
            tags,
            mime,
            size,
            chunk_size,
            chunk_hashes,
            price,
            encrypted,
            live,
            created,
        })
    }
}

impl Encode for SignedManifest {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.manifest.encode_to(out);
        out.extend_from_slice(&self.signature);
    }

    fn encoded_size_hint(&self) -> usize {
        self.manifest.encoded_size_hint()
    }
}

impl Decode for SignedManifest {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SignedManifest {
            manifest: Manifest::decode_from(r)?,
            signature: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
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
}
