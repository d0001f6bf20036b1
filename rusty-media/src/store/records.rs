//! The media database's tables and the records stored in them: the
//! per-content summary (what listing and search need), the per-content state
//! (pinned, bytes present, last access) and the verified-chunk bitmap in
//! segments of [`super::SEGMENT_CHUNKS`] chunks, with their encodings. Kept
//! apart from [`super::ContentStore`]'s logic so the on-disk layout (what
//! [`super::SCHEMA_VERSION`] versions) is in one place.

use rusty_shared_types::{
    encoding::{write_bytes, write_compact_size, DecodeResult, Reader},
    Decode, DecodeError, Encode, Hash256,
};
use rusty_storage::TableKey;

use super::{ContentInfo, SEGMENT_CHUNKS};
use crate::manifest::{SignedManifest, MAX_MIME_LEN, MAX_TAGS, MAX_TAG_LEN, MAX_TITLE_LEN};

/// Bitmap segments of content with `chunk_count` chunks. At most
/// `MAX_CHUNKS / SEGMENT_CHUNKS` = 128 for a valid manifest.
pub(super) fn segment_count(chunk_count: u64) -> u32 {
    u32::try_from(chunk_count.div_ceil(SEGMENT_CHUNKS)).unwrap_or(u32::MAX)
}

const SEGMENT_BYTES: usize = (SEGMENT_CHUNKS / 8) as usize;

rusty_storage::tables! {
    /// Every table of the media database.
    pub(super) const TABLES;
    /// Content id → signed manifest.
    pub(super) table Catalog: Hash256 => SignedManifest = "media_catalog";
    /// Content id → what listing and search need, without the chunk hashes.
    pub(super) table Summaries: Hash256 => Summary = "media_summary";
    /// Content id → pinned, chunks and bytes present, last access.
    pub(super) table States: Hash256 => ContentState = "media_state";
    /// (content id, segment) → bitmap of the segment's verified chunks.
    pub(super) table ChunkMaps: SegmentKey => ChunkBits = "media_chunk_map";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    creator: [u8; 32],
    title: String,
    tags: Vec<String>,
    mime: String,
    size: u64,
    pub(super) chunk_count: u64,
    price: u64,
    encrypted: bool,
    live: bool,
    created: u64,
}

impl Summary {
    pub(super) fn of(signed: &SignedManifest) -> Summary {
        let m = &signed.manifest;
        Summary {
            creator: m.creator,
            title: m.title.clone(),
            tags: m.tags.clone(),
            mime: m.mime.clone(),
            size: m.size,
            chunk_count: m.chunk_count(),
            price: m.price,
            encrypted: m.encrypted,
            live: m.live,
            created: m.created,
        }
    }
}

impl Encode for Summary {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.creator);
        write_bytes(out, self.title.as_bytes());
        write_compact_size(out, self.tags.len() as u64);
        for tag in &self.tags {
            write_bytes(out, tag.as_bytes());
        }
        write_bytes(out, self.mime.as_bytes());
        self.size.encode_to(out);
        self.chunk_count.encode_to(out);
        self.price.encode_to(out);
        self.encrypted.encode_to(out);
        self.live.encode_to(out);
        self.created.encode_to(out);
    }
}

fn read_string(r: &mut Reader<'_>, what: &'static str, max: usize) -> DecodeResult<String> {
    String::from_utf8(r.bytes(what, max)?).map_err(|_| DecodeError::InvalidValue(what))
}

impl Decode for Summary {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let creator = r.array()?;
        let title = read_string(r, "title", MAX_TITLE_LEN)?;
        let tag_count = r.length("tags", MAX_TAGS, 1)?;
        let mut tags = Vec::with_capacity(tag_count);
        for _ in 0..tag_count {
            tags.push(read_string(r, "tag", MAX_TAG_LEN)?);
        }
        Ok(Summary {
            creator,
            title,
            tags,
            mime: read_string(r, "MIME type", MAX_MIME_LEN)?,
            size: r.u64()?,
            chunk_count: r.u64()?,
            price: r.u64()?,
            encrypted: bool::decode_from(r)?,
            live: bool::decode_from(r)?,
            created: r.u64()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ContentState {
    pub(super) pinned: bool,
    pub(super) chunks_present: u64,
    pub(super) bytes_present: u64,
    /// The store's logical clock at the last access (orders LRU eviction).
    pub(super) access_seq: u64,
    /// Unix seconds at the last access (for display).
    pub(super) accessed_at: u64,
}

impl Encode for ContentState {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.pinned.encode_to(out);
        self.chunks_present.encode_to(out);
        self.bytes_present.encode_to(out);
        self.access_seq.encode_to(out);
        self.accessed_at.encode_to(out);
    }
}

impl Decode for ContentState {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ContentState {
            pinned: bool::decode_from(r)?,
            chunks_present: r.u64()?,
            bytes_present: r.u64()?,
            access_seq: r.u64()?,
            accessed_at: r.u64()?,
        })
    }
}

impl ContentInfo {
    pub(super) fn new(id: Hash256, s: Summary, state: &ContentState) -> ContentInfo {
        ContentInfo {
            id,
            complete: !s.live && state.chunks_present == s.chunk_count,
            title: s.title,
            tags: s.tags,
            mime: s.mime,
            creator: s.creator,
            size: s.size,
            price: s.price,
            encrypted: s.encrypted,
            live: s.live,
            created: s.created,
            chunk_count: s.chunk_count,
            chunks_present: state.chunks_present,
            bytes_present: state.bytes_present,
            pinned: state.pinned,
            last_access: state.accessed_at,
        }
    }
}

/// Key of a bitmap segment: content id, then the segment number big-endian
/// (so a content's segments are adjacent and in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentKey {
    pub(super) id: Hash256,
    pub(super) segment: u32,
}

impl SegmentKey {
    /// The segment holding chunk `index`.
    pub(super) fn of(id: Hash256, index: u64) -> SegmentKey {
        SegmentKey {
            id,
            // Valid manifests have at most 2^20 chunks; an index past that
            // was rejected by `chunk_range` before any key is built.
            segment: u32::try_from(index / SEGMENT_CHUNKS).unwrap_or(u32::MAX),
        }
    }
}

impl TableKey for SegmentKey {
    fn encode_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(36);
        k.extend_from_slice(&self.id.0);
        k.extend_from_slice(&self.segment.to_be_bytes());
        k
    }

    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: [u8; 36] = bytes
            .try_into()
            .map_err(|_| DecodeError::InvalidValue("segment key length"))?;
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        Ok(SegmentKey {
            id: Hash256(id),
            segment: u32::from_be_bytes([b[32], b[33], b[34], b[35]]),
        })
    }
}

/// The verified-chunk bits of one segment; bit `i % SEGMENT_CHUNKS` (LSB
/// first within each byte) is chunk `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChunkBits(Vec<u8>);

impl ChunkBits {
    /// All clear, sized for segment `segment` of `chunk_count` chunks.
    pub(super) fn new(segment: u32, chunk_count: u64) -> ChunkBits {
        let first = u64::from(segment).saturating_mul(SEGMENT_CHUNKS);
        let chunks = chunk_count.saturating_sub(first).min(SEGMENT_CHUNKS);
        // `chunks <= SEGMENT_CHUNKS`, so the byte count fits a usize.
        ChunkBits(vec![0; chunks.div_ceil(8) as usize])
    }

    fn position(index: u64) -> (usize, u8) {
        let bit = index % SEGMENT_CHUNKS;
        ((bit / 8) as usize, 1 << (bit % 8))
    }

    pub(super) fn get(&self, index: u64) -> bool {
        let (byte, mask) = Self::position(index);
        self.0.get(byte).is_some_and(|b| b & mask != 0)
    }

    pub(super) fn set(&mut self, index: u64, value: bool) {
        let (byte, mask) = Self::position(index);
        if let Some(b) = self.0.get_mut(byte) {
            if value {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

impl Encode for ChunkBits {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, &self.0);
    }
}

impl Decode for ChunkBits {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ChunkBits(r.bytes("chunk bitmap", SEGMENT_BYTES)?))
    }
}
