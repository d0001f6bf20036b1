//! The direct data channel: chunk ranges over a plain TCP connection of
//! their own, beside the libp2p connection.
//!
//! Why: on libp2p every media byte is split into 16 KiB Yamux frames,
//! encrypted and decrypted by Noise (ChaCha20-Poly1305) and copied through
//! both layers' buffers, on the same connection as blocks and ChainLocks.
//! Profiles put those layers at about half of a transfer's CPU, and a block
//! gossiped during a transfer waited behind the replies queued on the
//! shared connection (`docs/performance.md`, media). Chunks need no
//! transport security: each is verified against the creator-signed
//! manifest before it is stored, and priced content is encrypted before it
//! is chunked. BitTorrent moves its pieces the same way.
//!
//! How:
//! 1. Over the media protocol (libp2p: authenticated and encrypted) the
//!    viewer asks for a ticket: [`MediaRequest::DirectTicket`] →
//!    [`MediaResponse::Direct`] `{ port, ticket }`.
//! 2. It connects to `port` at the IP address of its libp2p connection to
//!    that peer and sends [`MAGIC`] ‖ ticket. A ticket admits one
//!    connection, within [`server::TICKET_TTL`] of its issue, and binds it
//!    to the peer that asked: that peer's uploads are counted and limited
//!    as on libp2p.
//! 3. Requests are [`ChunkRange`] frames, pipelined; replies come in order,
//!    each a [`ReplyHead`], the chunks' lengths ([`encode_lengths`]) and the
//!    chunks' bytes.
//!
//! What it trusts: nothing on this connection is authenticated per byte,
//! so an on-path attacker could inject bytes. A chunk that fails
//! verification here therefore closes the channel without penalising the
//! peer, and the download goes on over libp2p, where a bad chunk is the
//! provider's own (and banned). Which content a node fetches is visible on
//! the path, as with BitTorrent; `--media-data-bind off` keeps every media
//! byte inside libp2p. Manifests and live segments always go over libp2p.
//!
//! [`MediaRequest::DirectTicket`]: crate::wire::MediaRequest::DirectTicket
//! [`MediaResponse::Direct`]: crate::wire::MediaResponse::Direct

use rusty_shared_types::Hash256;

use crate::{
    manifest::CHUNK_SIZE,
    wire::{check_chunk_span, WireError, MAX_CHUNKS_PER_REQUEST},
};

pub mod client;
pub mod server;
#[cfg(test)]
mod tests;

/// The first bytes a viewer sends: the protocol and its version.
pub const MAGIC: [u8; 8] = *b"RSTYDC01";
/// Bytes of a ticket.
pub const TICKET_LEN: usize = 32;
/// Bytes of the viewer's greeting: [`MAGIC`] ‖ ticket.
pub const HELLO_LEN: usize = MAGIC.len() + TICKET_LEN;
/// Bytes of a [`ChunkRange`] frame.
pub const REQUEST_LEN: usize = 32 + 8 + 4;
/// Bytes of a [`ReplyHead`] frame.
pub const REPLY_HEAD_LEN: usize = 1 + 8 + 1;

const STATUS_CHUNKS: u8 = 0;
const STATUS_NOT_FOUND: u8 = 1;
const STATUS_BUSY: u8 = 2;

/// A request on the channel: chunks `[start, start + count)` of `id`, with
/// `1 <= count <= MAX_CHUNKS_PER_REQUEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub id: Hash256,
    pub start: u64,
    pub count: u32,
}

impl ChunkRange {
    /// The frame: id, start (u64 LE), count (u32 LE).
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut out = [0u8; REQUEST_LEN];
        out[..32].copy_from_slice(&self.id.0);
        out[32..40].copy_from_slice(&self.start.to_le_bytes());
        out[40..].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Decodes a frame from untrusted bytes (the span rules of a media
    /// chunks request).
    pub fn decode(bytes: &[u8; REQUEST_LEN]) -> Result<ChunkRange, WireError> {
        let (id, rest) = bytes.split_at(32);
        let (start, count) = rest.split_at(8);
        let mut id_bytes = [0u8; 32];
        id_bytes.copy_from_slice(id);
        let start = u64::from_le_bytes(start.try_into().map_err(|_| truncated(8))?);
        let count = u32::from_le_bytes(count.try_into().map_err(|_| truncated(4))?);
        check_chunk_span("direct chunks request", start, u64::from(count))?;
        Ok(ChunkRange {
            id: Hash256(id_bytes),
            start,
            count,
        })
    }
}

fn truncated(needed: usize) -> WireError {
    WireError::Truncated { needed }
}

/// What a reply is; for [`ReplyHead::Chunks`], `count` chunks from `start`
/// follow (a prefix of what was asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyHead {
    Chunks { start: u64, count: u8 },
    NotFound,
    Busy,
}

impl ReplyHead {
    /// The frame: status, start (u64 LE), count; start and count are zero
    /// unless chunks follow.
    pub fn encode(&self) -> [u8; REPLY_HEAD_LEN] {
        let mut out = [0u8; REPLY_HEAD_LEN];
        match self {
            ReplyHead::Chunks { start, count } => {
                out[0] = STATUS_CHUNKS;
                out[1..9].copy_from_slice(&start.to_le_bytes());
                out[9] = *count;
            }
            ReplyHead::NotFound => out[0] = STATUS_NOT_FOUND,
            ReplyHead::Busy => out[0] = STATUS_BUSY,
        }
        out
    }

    /// Decodes a frame from untrusted bytes: a known status, 1 to
    /// [`MAX_CHUNKS_PER_REQUEST`] chunks in range, zeros elsewhere.
    pub fn decode(bytes: &[u8; REPLY_HEAD_LEN]) -> Result<ReplyHead, WireError> {
        let mut start = [0u8; 8];
        start.copy_from_slice(&bytes[1..9]);
        let start = u64::from_le_bytes(start);
        let count = bytes[9];
        match bytes[0] {
            STATUS_CHUNKS => {
                check_chunk_span("direct chunks reply", start, u64::from(count))?;
                Ok(ReplyHead::Chunks { start, count })
            }
            STATUS_NOT_FOUND | STATUS_BUSY if start != 0 || count != 0 => Err(
                WireError::InvalidValue("direct reply fields after a status"),
            ),
            STATUS_NOT_FOUND => Ok(ReplyHead::NotFound),
            STATUS_BUSY => Ok(ReplyHead::Busy),
            s => Err(WireError::UnknownTag {
                what: "direct reply status",
                tag: u64::from(s),
            }),
        }
    }
}

/// The chunks' lengths, u32 LE each, as they follow a
/// [`ReplyHead::Chunks`].
pub fn encode_lengths(lengths: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 * lengths.len());
    for &len in lengths {
        // A chunk is at most CHUNK_SIZE bytes, far below u32::MAX.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

/// Decodes the lengths of the chunks from `start` from untrusted bytes:
/// each 1 to [`CHUNK_SIZE`], all but the last exactly [`CHUNK_SIZE`] (the
/// rules of a media chunks response), at most [`MAX_CHUNKS_PER_REQUEST`].
pub fn decode_lengths(start: u64, bytes: &[u8]) -> Result<Vec<u32>, WireError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(WireError::TrailingBytes(bytes.len() % 4));
    }
    let count = (bytes.len() / 4) as u64;
    check_chunk_span("direct chunks reply", start, count)?;
    let last = bytes.len() / 4 - 1;
    let mut out = Vec::with_capacity(last + 1);
    for (i, b) in bytes.chunks_exact(4).enumerate() {
        let mut len = [0u8; 4];
        len.copy_from_slice(b);
        let len = u32::from_le_bytes(len);
        if len == 0 {
            return Err(WireError::Empty("chunk"));
        }
        if len > CHUNK_SIZE {
            return Err(WireError::TooLong {
                what: "chunk",
                len: u64::from(len),
                max: u64::from(CHUNK_SIZE),
            });
        }
        if i < last && len != CHUNK_SIZE {
            return Err(WireError::ShortChunk {
                index: start.saturating_add(i as u64),
                len: len as usize,
            });
        }
        out.push(len);
    }
    Ok(out)
}

/// Chunks in one request, at most, as a `u8` (the reply head's count).
const _: () = assert!(MAX_CHUNKS_PER_REQUEST <= u8::MAX as u32);
