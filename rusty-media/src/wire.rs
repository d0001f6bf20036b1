//! Messages of the media protocol: requests and responses of the media
//! request-response protocol (carried by the network layer as opaque bytes)
//! and announcements on the `media` gossip topic.
//!
//! Every message starts with the wire version byte ([`WIRE_VERSION`]) and a
//! tag byte naming its kind. Requests, responses and announcements use
//! disjoint tag ranges (`0x01..`, `0x11..`, `0x21..`), so the bytes of one
//! kind never decode as another. The body uses the canonical encoding of
//! `rusty-shared-types`: fixed-width little-endian integers, CompactSize
//! lengths and counts in their shortest form. See `docs/media.md`, "Wire
//! format", for the byte layouts.
//!
//! Decoders are strict: the whole message is checked against its size cap
//! first, every length and count against its own cap and against the bytes
//! left before anything is allocated, and trailing bytes are rejected, so
//! anything that decodes re-encodes to exactly the same bytes. A decoded
//! [`SegmentAnnouncement`] has its fields in range, but its signature is
//! only checked by [`SegmentAnnouncement::verify`] and its data only by
//! [`SegmentAnnouncement::verify_data`]; likewise a decoded [`StreamEnd`]'s
//! signature is only checked by [`StreamEnd::verify`].

use std::fmt;

use rusty_crypto::{CryptoError, PublicKey, SecretKey, Signature};
use rusty_shared_types::{
    encoding::{write_bytes, write_compact_size, write_option, Reader},
    DecodeError, Domain, Hash256,
};

use crate::manifest::{ManifestError, SignedManifest, CHUNK_SIZE, MAX_CHUNKS};

/// The wire format version this build writes and accepts (the first byte of
/// every message).
pub const WIRE_VERSION: u8 = 1;
/// Most chunks one request may ask for (and one response may carry).
pub const MAX_CHUNKS_PER_REQUEST: u32 = 16;
/// Most bytes of one live segment.
pub const MAX_SEGMENT_BYTES: usize = 1 << 20;
/// Longest media time one live segment may cover, in milliseconds.
pub const MAX_SEGMENT_DURATION_MS: u32 = 60_000;
/// Largest encoded [`MediaRequest`].
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;
/// Largest encoded [`MediaResponse`].
pub const MAX_RESPONSE_BYTES: usize = 40 << 20;
/// Largest encoded [`Announcement`] (gossipsub's default message cap).
pub const MAX_ANNOUNCEMENT_BYTES: usize = 64 * 1024;
/// Largest signed manifest a [`MediaResponse::Manifest`] may carry: the
/// chunk hashes of the largest content (32 MiB) plus room for every other
/// field at its cap (4,966 bytes).
pub const MAX_MANIFEST_BYTES: usize = 32 * MAX_CHUNKS as usize + 8 * 1024;
/// Encoded length of a [`SegmentAnnouncement`]: 88 bytes of fields and the
/// 64-byte signature.
pub const SEGMENT_ANNOUNCEMENT_LEN: usize = SIGNED_FIELDS_LEN + 64;
/// What a creator's segment signature covers, before the announcement's
/// fields. It starts with `r`, never with a manifest version byte, and the
/// message is longer than 32 bytes, so a segment signature can never pass
/// for a manifest or transaction signature by the same key.
pub const SEGMENT_SIGNING_CONTEXT: &[u8] = b"rusty-coin media-segment-announcement v1";
/// Largest encoded [`StreamEnd`] (with a last segment; 8 bytes less
/// without): 49 bytes of fields and the 64-byte signature.
pub const MAX_STREAM_END_LEN: usize = MAX_STREAM_END_FIELDS_LEN + 64;
/// What a creator's stream-end signature covers, before the statement's
/// fields. Like [`SEGMENT_SIGNING_CONTEXT`] it starts with `r` and the
/// message is longer than 32 bytes; it differs from it in its first bytes
/// already, so a stream-end signature can never pass for a segment
/// announcement's (or a manifest's, or a transaction's) by the same key.
pub const STREAM_END_SIGNING_CONTEXT: &[u8] = b"rusty-coin media-stream-end v1";

/// Encoded length of the signed fields of a [`SegmentAnnouncement`].
const SIGNED_FIELDS_LEN: usize = 32 + 8 + 4 + 32 + 8 + 4;
/// Largest encoding of the signed fields of a [`StreamEnd`]: the stream,
/// the `last_seq` option (tag and u64) and `ended_ms`.
const MAX_STREAM_END_FIELDS_LEN: usize = 32 + 1 + 8 + 8;

// The largest message of each kind fits its cap.
const _: () = assert!(2 + 5 + MAX_MANIFEST_BYTES <= MAX_RESPONSE_BYTES);
const _: () = assert!(
    2 + 8 + 1 + MAX_CHUNKS_PER_REQUEST as usize * (5 + CHUNK_SIZE as usize) <= MAX_RESPONSE_BYTES
);
const _: () = assert!(2 + SEGMENT_ANNOUNCEMENT_LEN + 5 + MAX_SEGMENT_BYTES <= MAX_RESPONSE_BYTES);
const _: () = assert!(2 + 32 + 8 + 5 <= MAX_REQUEST_BYTES);
const _: () = assert!(2 + SEGMENT_ANNOUNCEMENT_LEN <= MAX_ANNOUNCEMENT_BYTES);
const _: () = assert!(2 + MAX_STREAM_END_LEN <= MAX_ANNOUNCEMENT_BYTES);

/// Tag bytes (the second byte of every message).
mod tag {
    pub const REQ_MANIFEST: u8 = 0x01;
    pub const REQ_CHUNKS: u8 = 0x02;
    pub const REQ_SEGMENT: u8 = 0x03;

    pub const RESP_MANIFEST: u8 = 0x11;
    pub const RESP_CHUNKS: u8 = 0x12;
    pub const RESP_SEGMENT: u8 = 0x13;
    pub const RESP_NOT_FOUND: u8 = 0x14;
    pub const RESP_BUSY: u8 = 0x15;

    pub const ANN_PUBLISHED: u8 = 0x21;
    pub const ANN_HAVE: u8 = 0x22;
    pub const ANN_SEGMENT: u8 = 0x23;
    pub const ANN_END: u8 = 0x24;
}

/// Why a media message was rejected.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message is longer than its kind allows.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    Oversize {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A wire version this build does not know.
    #[error("unsupported media wire version {0} (this build knows version {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// A tag byte that no message of this kind uses.
    #[error("unknown {what} tag {tag:#04x}")]
    UnknownTag { what: &'static str, tag: u64 },
    /// The input ended inside the message.
    #[error("the message is truncated ({needed} more bytes needed)")]
    Truncated { needed: usize },
    /// Bytes were left over after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A CompactSize length or count not in its shortest form.
    #[error("non-minimal length encoding")]
    NonMinimalLength,
    /// A field (a chunk, a segment, a manifest) is longer than its cap.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    /// A field that must not be empty is.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A chunk count of 0 or above [`MAX_CHUNKS_PER_REQUEST`].
    #[error("{what}: {count} chunks, must be 1 to {max}")]
    CountOutOfRange {
        what: &'static str,
        count: u64,
        max: u32,
    },
    /// Chunks past the largest chunk index any content can have.
    #[error("chunks {start} + {count} reach past the last possible chunk index {}", MAX_CHUNKS - 1)]
    ChunkRangeOutOfBounds { start: u64, count: u64 },
    /// A chunk other than the last of a response is shorter than
    /// [`CHUNK_SIZE`] (only the content's last chunk may be short, and
    /// nothing follows it).
    #[error(
        "chunk {index} is {len} bytes but is followed by another chunk, so it must be {CHUNK_SIZE}"
    )]
    ShortChunk { index: u64, len: usize },
    /// A segment announcement field out of its range.
    #[error("segment {field} is {value}, must be {min} to {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// A decoded value that breaks a type invariant.
    #[error("invalid {0}")]
    InvalidValue(&'static str),
    /// Segment data whose length is not the announced size.
    #[error("segment {seq} has {found} bytes, its announcement says {expected}")]
    SizeMismatch {
        seq: u64,
        expected: u32,
        found: usize,
    },
    /// Segment data that does not hash to the announced hash.
    #[error("segment {seq} does not match the hash in its announcement")]
    HashMismatch { seq: u64 },
    /// The signature of a segment announcement or stream end does not
    /// verify under the creator key.
    #[error("the announcement signature does not verify under the creator key")]
    BadSignature,
    /// The creator key is not a valid Ed25519 public key.
    #[error("the creator key is not a valid Ed25519 public key")]
    BadCreatorKey,
    /// A manifest response whose bytes do not hash to the content id asked
    /// for.
    #[error("the manifest received hashes to {found}, not to the content id {expected} asked for")]
    ManifestIdMismatch { expected: Hash256, found: Hash256 },
    /// A manifest response that hashes to the right id but is not a valid
    /// signed manifest.
    #[error("invalid manifest: {0}")]
    Manifest(ManifestError),
    /// A live segment (or its announcement) for content whose manifest is
    /// not a live stream.
    #[error("the content is not a live stream")]
    NotLive,
}

impl WireError {
    /// Whether the error means that the peer sent bad data (a malformed or
    /// forged message), as opposed to a local problem.
    pub fn is_bad_data(&self) -> bool {
        match self {
            WireError::Manifest(e) => e.is_bad_data(),
            _ => true,
        }
    }
}

impl From<DecodeError> for WireError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnexpectedEnd { needed } => WireError::Truncated { needed },
            DecodeError::TrailingBytes(n) => WireError::TrailingBytes(n),
            DecodeError::NonMinimalLength => WireError::NonMinimalLength,
            DecodeError::TooLong { what, len, max } => WireError::TooLong { what, len, max },
            DecodeError::InvalidTag { what, tag } => WireError::UnknownTag { what, tag },
            DecodeError::InvalidValue(what) => WireError::InvalidValue(what),
        }
    }
}

/// A request of the media request-response protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRequest {
    /// The signed manifest of content `id`.
    Manifest { id: Hash256 },
    /// Chunks `[start, start + count)` of `id`;
    /// `1 <= count <= MAX_CHUNKS_PER_REQUEST`.
    Chunks { id: Hash256, start: u64, count: u32 },
    /// Live segment `seq` of stream `id` (the stream's content id).
    Segment { id: Hash256, seq: u64 },
}

/// A response of the media request-response protocol.
#[derive(Clone, PartialEq, Eq)]
pub enum MediaResponse {
    /// The signed manifest's encoding (`SignedManifest::encode()`); the
    /// receiver checks it hashes to the id it asked for
    /// ([`decode_manifest_response`]).
    Manifest(Vec<u8>),
    /// Consecutive chunks from `start` (a prefix of what was asked: the
    /// responder stops at the first chunk it lacks). Never empty (use
    /// [`MediaResponse::NotFound`]).
    Chunks { start: u64, chunks: Vec<Vec<u8>> },
    /// A live segment and the creator-signed announcement that vouches for
    /// it.
    Segment {
        announcement: SegmentAnnouncement,
        data: Vec<u8>,
    },
    /// The responder has none of it.
    NotFound,
    /// Over its upload limit (or serving this item to enough peers
    /// already): ask someone else.
    Busy,
}

/// A message on the `media` gossip topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The gossip author published content `id` and serves it (receivers
    /// fetch the manifest from the author).
    Published { id: Hash256 },
    /// The gossip author holds (some of) content `id` or is watching live
    /// stream `id`, and serves what it has.
    Have { id: Hash256 },
    /// A live segment is available (from the gossip author, at least).
    Segment(SegmentAnnouncement),
    /// The live stream ended.
    End(StreamEnd),
}

/// The creator's signed statement that segment `seq` of live stream
/// `stream` is `size` bytes hashing to `hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct SegmentAnnouncement {
    /// Content id of the live manifest.
    pub stream: Hash256,
    /// 0, 1, 2, ...
    pub seq: u64,
    /// `1..=MAX_SEGMENT_BYTES`.
    pub size: u32,
    /// [`segment_hash`]`(stream, seq, data)`.
    pub hash: Hash256,
    /// Unix ms when the segment's first byte was read by the broadcaster.
    pub captured_ms: u64,
    /// Media time the segment covers (wall time between cuts), `1..=`
    /// [`MAX_SEGMENT_DURATION_MS`].
    pub duration_ms: u32,
    /// The creator's Ed25519 signature over [`SEGMENT_SIGNING_CONTEXT`]
    /// followed by the encoding of all fields above.
    pub signature: [u8; 64],
}

/// The creator's signed statement that live stream `stream` ended after
/// segment `last_seq` (`None`: ended before any segment).
#[derive(Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Content id of the live manifest.
    pub stream: Hash256,
    /// The stream's last segment, if it had any.
    pub last_seq: Option<u64>,
    /// Unix ms when the broadcaster ended the stream.
    pub ended_ms: u64,
    /// The creator's Ed25519 signature over [`STREAM_END_SIGNING_CONTEXT`]
    /// followed by the encoding of all fields above.
    pub signature: [u8; 64],
}

/// The hash of segment `seq` of stream `stream` with contents `data`:
/// BLAKE3 under [`Domain::MediaSegment`] of the stream id, the sequence
/// number (u64 little-endian) and the bytes.
pub fn segment_hash(stream: &Hash256, seq: u64, data: &[u8]) -> Hash256 {
    let mut h = Domain::MediaSegment.hasher();
    h.update(&stream.0);
    h.update(&seq.to_le_bytes());
    h.update(data);
    Hash256(*h.finalize().as_bytes())
}

/// Checks a manifest response against the content id it was asked for: the
/// bytes must hash to `expected` (checked first, before decoding), decode as
/// a signed manifest and verify (rules and creator signature).
pub fn decode_manifest_response(
    expected: &Hash256,
    bytes: &[u8],
) -> Result<SignedManifest, WireError> {
    // Decoding is canonical, so the content id of whatever decodes is the
    // hash of these very bytes.
    let found = Hash256::domain_hash(Domain::ContentManifest, bytes);
    if found != *expected {
        return Err(WireError::ManifestIdMismatch {
            expected: *expected,
            found,
        });
    }
    SignedManifest::decode_verified(bytes).map_err(WireError::Manifest)
}

fn check_message_len(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::Oversize { what, len, max });
    }
    Ok(())
}

/// Reads the version and tag bytes.
fn read_header(r: &mut Reader<'_>) -> Result<u8, WireError> {
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    Ok(r.u8()?)
}

/// Checks the creator's signature over `message`.
fn verify_signature(
    creator: &PublicKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), WireError> {
    creator
        .verify(message, &Signature(*signature))
        .map_err(|e| match e {
            CryptoError::InvalidPublicKey => WireError::BadCreatorKey,
            _ => WireError::BadSignature,
        })
}

fn unknown_tag(what: &'static str, tag: u8) -> WireError {
    WireError::UnknownTag {
        what,
        tag: u64::from(tag),
    }
}

/// Checks a chunk count and that the chunks exist in some content.
fn check_chunk_span(what: &'static str, start: u64, count: u64) -> Result<(), WireError> {
    if count == 0 || count > u64::from(MAX_CHUNKS_PER_REQUEST) {
        return Err(WireError::CountOutOfRange {
            what,
            count,
            max: MAX_CHUNKS_PER_REQUEST,
        });
    }
    match start.checked_add(count) {
        Some(end) if end <= MAX_CHUNKS => Ok(()),
        _ => Err(WireError::ChunkRangeOutOfBounds { start, count }),
    }
}

/// Reads length-prefixed bytes of 1 to `max` bytes.
fn read_nonempty(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Vec<u8>, WireError> {
    let bytes = r.bytes(what, max)?;
    if bytes.is_empty() {
        return Err(WireError::Empty(what));
    }
    Ok(bytes)
}

/// Checks the chunks of a response: their count, each length, and that only
/// the last may be shorter than a full chunk.
fn check_chunks(start: u64, chunks: &[Vec<u8>]) -> Result<(), WireError> {
    check_chunk_span("chunks response", start, chunks.len() as u64)?;
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        // The span check above keeps `start + i` in range.
        let index = start.saturating_add(i as u64);
        if chunk.is_empty() {
            return Err(WireError::Empty("chunk"));
        }
        if chunk.len() > CHUNK_SIZE as usize {
            return Err(WireError::TooLong {
                what: "chunk",
                len: chunk.len() as u64,
                max: u64::from(CHUNK_SIZE),
            });
        }
        if i < last && chunk.len() != CHUNK_SIZE as usize {
            return Err(WireError::ShortChunk {
                index,
                len: chunk.len(),
            });
        }
    }
    Ok(())
}

impl MediaRequest {
    /// Checks the rules [`MediaRequest::decode`] enforces: a chunk count of
    /// 1 to [`MAX_CHUNKS_PER_REQUEST`] and chunk indexes below
    /// [`MAX_CHUNKS`].
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            MediaRequest::Chunks { start, count, .. } => {
                check_chunk_span("chunks request", *start, u64::from(*count))
            }
            MediaRequest::Manifest { .. } | MediaRequest::Segment { .. } => Ok(()),
        }
    }

    /// The canonical encoding. A request that breaks
    /// [`MediaRequest::validate`] encodes, but its bytes do not decode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.push(WIRE_VERSION);
        match self {
            MediaRequest::Manifest { id } => {
                out.push(tag::REQ_MANIFEST);
                out.extend_from_slice(&id.0);
            }
            MediaRequest::Chunks { id, start, count } => {
                out.push(tag::REQ_CHUNKS);
                out.extend_from_slice(&id.0);
                out.extend_from_slice(&start.to_le_bytes());
                write_compact_size(&mut out, u64::from(*count));
            }
            MediaRequest::Segment { id, seq } => {
                out.push(tag::REQ_SEGMENT);
                out.extend_from_slice(&id.0);
                out.extend_from_slice(&seq.to_le_bytes());
            }
        }
        out
    }

    /// Decodes a request from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_message_len("media request", bytes.len(), MAX_REQUEST_BYTES)?;
        let mut r = Reader::new(bytes);
        let req = match read_header(&mut r)? {
            tag::REQ_MANIFEST => MediaRequest::Manifest {
                id: Hash256(r.array()?),
            },
            tag::REQ_CHUNKS => {
                let id = Hash256(r.array()?);
                let start = r.u64()?;
                let count = r.compact_size()?;
                check_chunk_span("chunks request", start, count)?;
                // `count <= MAX_CHUNKS_PER_REQUEST`, checked above.
                let count = u32::try_from(count).map_err(|_| WireError::CountOutOfRange {
                    what: "chunks request",
                    count,
                    max: MAX_CHUNKS_PER_REQUEST,
                })?;
                MediaRequest::Chunks { id, start, count }
            }
            tag::REQ_SEGMENT => MediaRequest::Segment {
                id: Hash256(r.array()?),
                seq: r.u64()?,
            },
            t => return Err(unknown_tag("media request", t)),
        };
        r.finish()?;
        Ok(req)
    }
}

impl MediaResponse {
    /// Checks the rules [`MediaResponse::decode`] enforces: a manifest of 1
    /// to [`MAX_MANIFEST_BYTES`] bytes; 1 to [`MAX_CHUNKS_PER_REQUEST`]
    /// chunks of 1 to [`CHUNK_SIZE`] bytes, all but the last exactly
    /// [`CHUNK_SIZE`], with indexes below [`MAX_CHUNKS`]; a segment whose
    /// announcement's fields are in range and whose data has the announced
    /// size. (The segment's hash and signature are not checked here: see
    /// [`SegmentAnnouncement::verify`] and
    /// [`SegmentAnnouncement::verify_data`].)
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            MediaResponse::Manifest(bytes) => {
                if bytes.is_empty() {
                    return Err(WireError::Empty("manifest"));
                }
                if bytes.len() > MAX_MANIFEST_BYTES {
                    return Err(WireError::TooLong {
                        what: "manifest",
                        len: bytes.len() as u64,
                        max: MAX_MANIFEST_BYTES as u64,
                    });
                }
                Ok(())
            }
            MediaResponse::Chunks { start, chunks } => check_chunks(*start, chunks),
            MediaResponse::Segment { announcement, data } => {
                announcement.check_fields()?;
                announcement.check_size(data)
            }
            MediaResponse::NotFound | MediaResponse::Busy => Ok(()),
        }
    }

    /// The canonical encoding. A response that breaks
    /// [`MediaResponse::validate`] encodes, but its bytes do not decode.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            MediaResponse::Manifest(bytes) => bytes.len() + 5,
            MediaResponse::Chunks { chunks, .. } => {
                9 + chunks.iter().map(|c| c.len() + 3).sum::<usize>()
            }
            MediaResponse::Segment { data, .. } => SEGMENT_ANNOUNCEMENT_LEN + 5 + data.len(),
            MediaResponse::NotFound | MediaResponse::Busy => 0,
        };
        let mut out = Vec::with_capacity(2 + body);
        out.push(WIRE_VERSION);
        match self {
            MediaResponse::Manifest(bytes) => {
                out.push(tag::RESP_MANIFEST);
                write_bytes(&mut out, bytes);
            }
            MediaResponse::Chunks { start, chunks } => {
                out.push(tag::RESP_CHUNKS);
                out.extend_from_slice(&start.to_le_bytes());
                write_compact_size(&mut out, chunks.len() as u64);
                for chunk in chunks {
                    write_bytes(&mut out, chunk);
                }
            }
            MediaResponse::Segment { announcement, data } => {
                out.push(tag::RESP_SEGMENT);
                announcement.encode_to(&mut out);
                write_bytes(&mut out, data);
            }
            MediaResponse::NotFound => out.push(tag::RESP_NOT_FOUND),
            MediaResponse::Busy => out.push(tag::RESP_BUSY),
        }
        out
    }

    /// Decodes a response from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_message_len("media response", bytes.len(), MAX_RESPONSE_BYTES)?;
        let mut r = Reader::new(bytes);
        let resp = match read_header(&mut r)? {
            tag::RESP_MANIFEST => {
                MediaResponse::Manifest(read_nonempty(&mut r, "manifest", MAX_MANIFEST_BYTES)?)
            }
            tag::RESP_CHUNKS => {
                let start = r.u64()?;
                let count = r.compact_size()?;
                check_chunk_span("chunks response", start, count)?;
                // At most `MAX_CHUNKS_PER_REQUEST` (checked above), and each
                // chunk's length is checked against the input before its
                // bytes are copied.
                let mut chunks = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    chunks.push(read_nonempty(&mut r, "chunk", CHUNK_SIZE as usize)?);
                }
                check_chunks(start, &chunks)?;
                MediaResponse::Chunks { start, chunks }
            }
            tag::RESP_SEGMENT => {
                let announcement = SegmentAnnouncement::decode_from(&mut r)?;
                let data = read_nonempty(&mut r, "segment", MAX_SEGMENT_BYTES)?;
                announcement.check_size(&data)?;
                MediaResponse::Segment { announcement, data }
            }
            tag::RESP_NOT_FOUND => MediaResponse::NotFound,
            tag::RESP_BUSY => MediaResponse::Busy,
            t => return Err(unknown_tag("media response", t)),
        };
        r.finish()?;
        Ok(resp)
    }
}

impl fmt::Debug for MediaResponse {
    /// Shows lengths rather than the (up to 40 MiB of) bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaResponse::Manifest(bytes) => f
                .debug_struct("Manifest")
                .field("len", &bytes.len())
                .finish(),
            MediaResponse::Chunks { start, chunks } => f
                .debug_struct("Chunks")
                .field("start", start)
                .field("lens", &chunks.iter().map(Vec::len).collect::<Vec<_>>())
                .finish(),
            MediaResponse::Segment { announcement, data } => f
                .debug_struct("Segment")
                .field("announcement", announcement)
                .field("len", &data.len())
                .finish(),
            MediaResponse::NotFound => f.write_str("NotFound"),
            MediaResponse::Busy => f.write_str("Busy"),
        }
    }
}

impl Announcement {
    /// Checks the rules [`Announcement::decode`] enforces (a segment
    /// announcement's fields in range; a stream end has no field rules;
    /// signatures are not checked here).
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            Announcement::Segment(a) => a.check_fields(),
            Announcement::Published { .. } | Announcement::Have { .. } | Announcement::End(_) => {
                Ok(())
            }
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + SEGMENT_ANNOUNCEMENT_LEN);
        out.push(WIRE_VERSION);
        match self {
            Announcement::Published { id } => {
                out.push(tag::ANN_PUBLISHED);
                out.extend_from_slice(&id.0);
            }
            Announcement::Have { id } => {
                out.push(tag::ANN_HAVE);
                out.extend_from_slice(&id.0);
            }
            Announcement::Segment(a) => {
                out.push(tag::ANN_SEGMENT);
                a.encode_to(&mut out);
            }
            Announcement::End(e) => {
                out.push(tag::ANN_END);
                e.encode_to(&mut out);
            }
        }
        out
    }

    /// Decodes an announcement from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_message_len("media announcement", bytes.len(), MAX_ANNOUNCEMENT_BYTES)?;
        let mut r = Reader::new(bytes);
        let ann = match read_header(&mut r)? {
            tag::ANN_PUBLISHED => Announcement::Published {
                id: Hash256(r.array()?),
            },
            tag::ANN_HAVE => Announcement::Have {
                id: Hash256(r.array()?),
            },
            tag::ANN_SEGMENT => Announcement::Segment(SegmentAnnouncement::decode_from(&mut r)?),
            tag::ANN_END => Announcement::End(StreamEnd::decode_from(&mut r)?),
            t => return Err(unknown_tag("media announcement", t)),
        };
        r.finish()?;
        Ok(ann)
    }
}

impl SegmentAnnouncement {
    /// Signs the announcement of segment `seq` of `stream` holding `data`
    /// with the creator's key. Fails if `data` is empty or longer than
    /// [`MAX_SEGMENT_BYTES`], or `duration_ms` is not in `1..=`
    /// [`MAX_SEGMENT_DURATION_MS`].
    pub fn sign(
        key: &SecretKey,
        stream: Hash256,
        seq: u64,
        data: &[u8],
        captured_ms: u64,
        duration_ms: u32,
    ) -> Result<Self, WireError> {
        if data.is_empty() {
            return Err(WireError::Empty("segment"));
        }
        let size = u32::try_from(data.len())
            .ok()
            .filter(|s| *s as usize <= MAX_SEGMENT_BYTES)
            .ok_or(WireError::TooLong {
                what: "segment",
                len: data.len() as u64,
                max: MAX_SEGMENT_BYTES as u64,
            })?;
        let mut a = SegmentAnnouncement {
            stream,
            seq,
            size,
            hash: segment_hash(&stream, seq, data),
            captured_ms,
            duration_ms,
            signature: [0; 64],
        };
        a.check_fields()?;
        a.signature = key.sign(&a.signing_message()).0;
        Ok(a)
    }

    /// Checks the field rules and the creator's signature.
    pub fn verify(&self, creator: &PublicKey) -> Result<(), WireError> {
        self.check_fields()?;
        verify_signature(creator, &self.signing_message(), &self.signature)
    }

    /// Checks that `data` is the announced segment: its size, then its hash.
    pub fn verify_data(&self, data: &[u8]) -> Result<(), WireError> {
        self.check_size(data)?;
        if segment_hash(&self.stream, self.seq, data) != self.hash {
            return Err(WireError::HashMismatch { seq: self.seq });
        }
        Ok(())
    }

    /// The message the creator signs: [`SEGMENT_SIGNING_CONTEXT`] followed
    /// by the encoding of every field but the signature.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEGMENT_SIGNING_CONTEXT.len() + SIGNED_FIELDS_LEN);
        out.extend_from_slice(SEGMENT_SIGNING_CONTEXT);
        self.encode_fields(&mut out);
        out
    }

    /// The announcement's own encoding ([`SEGMENT_ANNOUNCEMENT_LEN`] bytes),
    /// as it appears inside [`Announcement::Segment`] and
    /// [`MediaResponse::Segment`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEGMENT_ANNOUNCEMENT_LEN);
        self.encode_to(&mut out);
        out
    }

    /// Decodes exactly one announcement (the inverse of
    /// [`SegmentAnnouncement::encode`]); the fields must be in range.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let a = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(a)
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.stream.0);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.captured_ms.to_le_bytes());
        out.extend_from_slice(&self.duration_ms.to_le_bytes());
    }

    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_fields(out);
        out.extend_from_slice(&self.signature);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let a = SegmentAnnouncement {
            stream: Hash256(r.array()?),
            seq: r.u64()?,
            size: r.u32()?,
            hash: Hash256(r.array()?),
            captured_ms: r.u64()?,
            duration_ms: r.u32()?,
            signature: r.array()?,
        };
        a.check_fields()?;
        Ok(a)
    }

    /// Size and duration in range.
    fn check_fields(&self) -> Result<(), WireError> {
        if self.size == 0 || self.size as usize > MAX_SEGMENT_BYTES {
            return Err(WireError::OutOfRange {
                field: "size",
                value: u64::from(self.size),
                min: 1,
                max: MAX_SEGMENT_BYTES as u64,
            });
        }
        if self.duration_ms == 0 || self.duration_ms > MAX_SEGMENT_DURATION_MS {
            return Err(WireError::OutOfRange {
                field: "duration_ms",
                value: u64::from(self.duration_ms),
                min: 1,
                max: u64::from(MAX_SEGMENT_DURATION_MS),
            });
        }
        Ok(())
    }

    fn check_size(&self, data: &[u8]) -> Result<(), WireError> {
        if data.len() != self.size as usize {
            return Err(WireError::SizeMismatch {
                seq: self.seq,
                expected: self.size,
                found: data.len(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for SegmentAnnouncement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentAnnouncement")
            .field("stream", &self.stream)
            .field("seq", &self.seq)
            .field("size", &self.size)
            .field("hash", &self.hash)
            .field("captured_ms", &self.captured_ms)
            .field("duration_ms", &self.duration_ms)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

impl StreamEnd {
    /// Signs the statement that `stream` ended after segment `last_seq`
    /// (`None`: before any segment) at `ended_ms` with the creator's key.
    pub fn sign(
        key: &SecretKey,
        stream: Hash256,
        last_seq: Option<u64>,
        ended_ms: u64,
    ) -> StreamEnd {
        let mut e = StreamEnd {
            stream,
            last_seq,
            ended_ms,
            signature: [0; 64],
        };
        e.signature = key.sign(&e.signing_message()).0;
        e
    }

    /// Checks the creator's signature.
    pub fn verify(&self, creator: &PublicKey) -> Result<(), WireError> {
        verify_signature(creator, &self.signing_message(), &self.signature)
    }

    /// The message the creator signs: [`STREAM_END_SIGNING_CONTEXT`]
    /// followed by the encoding of every field but the signature.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(STREAM_END_SIGNING_CONTEXT.len() + MAX_STREAM_END_FIELDS_LEN);
        out.extend_from_slice(STREAM_END_SIGNING_CONTEXT);
        self.encode_fields(&mut out);
        out
    }

    /// The statement's own encoding (at most [`MAX_STREAM_END_LEN`] bytes),
    /// as it appears inside [`Announcement::End`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_STREAM_END_LEN);
        self.encode_to(&mut out);
        out
    }

    /// Decodes exactly one statement (the inverse of [`StreamEnd::encode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let e = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(e)
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.stream.0);
        write_option(out, &self.last_seq);
        out.extend_from_slice(&self.ended_ms.to_le_bytes());
    }

    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_fields(out);
        out.extend_from_slice(&self.signature);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(StreamEnd {
            stream: Hash256(r.array()?),
            last_seq: r.option("stream end last_seq")?,
            ended_ms: r.u64()?,
            signature: r.array()?,
        })
    }
}

impl fmt::Debug for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEnd")
            .field("stream", &self.stream)
            .field("last_seq", &self.last_seq)
            .field("ended_ms", &self.ended_ms)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

#[cfg(test)]
mod tests {
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
        SegmentAnnouncement::sign(&k, id(1), 0, &vec![0; MAX_SEGMENT_BYTES], 0, 500)
            .expect("max size");
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
        SegmentAnnouncement::sign(&k, id(1), 0, b"x", u64::MAX, MAX_SEGMENT_DURATION_MS)
            .expect("60 s");

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
        for t in [0x00, 0x04, 0x11, 0x21, 0x24, 0xff] {
            assert!(matches!(
                MediaRequest::decode(&raw(t, &[0; 40])),
                Err(WireError::UnknownTag { what: "media request", tag }) if tag == u64::from(t)
            ));
        }
        for t in [0x00, 0x01, 0x10, 0x16, 0x23, 0x24] {
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
            (arb_hash(), 0..MAX_CHUNKS, 1..=MAX_CHUNKS_PER_REQUEST).prop_map(
                |(id, start, count)| MediaRequest::Chunks {
                    id,
                    start: start.min(MAX_CHUNKS - u64::from(count)),
                    count
                }
            ),
            (arb_hash(), any::<u64>()).prop_map(|(id, seq)| MediaRequest::Segment { id, seq }),
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
            t in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x11, 0x12, 0x13, 0x14, 0x15, 0x21, 0x22, 0x23, 0x24]),
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
}
