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
    pub const REQ_DIRECT: u8 = 0x04;

    pub const RESP_MANIFEST: u8 = 0x11;
    pub const RESP_CHUNKS: u8 = 0x12;
    pub const RESP_SEGMENT: u8 = 0x13;
    pub const RESP_NOT_FOUND: u8 = 0x14;
    pub const RESP_BUSY: u8 = 0x15;
    pub const RESP_DIRECT: u8 = 0x16;

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
    /// A ticket for the responder's direct data channel
    /// ([`crate::direct`]).
    DirectTicket,
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
    /// The responder's direct data channel listens on `port` (at the
    /// address the asker reached it on) and admits one connection that
    /// presents `ticket` ([`crate::direct`]).
    Direct {
        port: u16,
        ticket: [u8; crate::direct::TICKET_LEN],
    },
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
pub(crate) fn check_chunk_span(
    what: &'static str,
    start: u64,
    count: u64,
) -> Result<(), WireError> {
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
            MediaRequest::Manifest { .. }
            | MediaRequest::Segment { .. }
            | MediaRequest::DirectTicket => Ok(()),
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
            MediaRequest::DirectTicket => out.push(tag::REQ_DIRECT),
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
            tag::REQ_DIRECT => MediaRequest::DirectTicket,
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
            MediaResponse::Direct { port, .. } if *port == 0 => {
                Err(WireError::InvalidValue("direct channel port 0"))
            }
            MediaResponse::NotFound | MediaResponse::Busy | MediaResponse::Direct { .. } => Ok(()),
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
            MediaResponse::Direct { .. } => 2 + crate::direct::TICKET_LEN,
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
            MediaResponse::Direct { port, ticket } => {
                out.push(tag::RESP_DIRECT);
                out.extend_from_slice(&port.to_le_bytes());
                out.extend_from_slice(ticket);
            }
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
            tag::RESP_DIRECT => {
                let port = u16::from_le_bytes(r.array()?);
                if port == 0 {
                    return Err(WireError::InvalidValue("direct channel port 0"));
                }
                MediaResponse::Direct {
                    port,
                    ticket: r.array()?,
                }
            }
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
            // The ticket is a secret of the asker's.
            MediaResponse::Direct { port, .. } => {
                f.debug_struct("Direct").field("port", port).finish()
            }
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
mod tests;
