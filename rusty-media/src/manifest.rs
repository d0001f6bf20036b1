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
mod tests;
