//! Wire messages of the sync protocols and gossip topics, in the canonical
//! encoding of `rusty-shared-types` (CompactSize lengths, strict decoders).
//!
//! Every request-response protocol carries one message kind each way; a frame
//! on the stream is a 4-byte big-endian length followed by that many bytes of
//! message. The length is checked against the protocol's cap before anything
//! is allocated (see [`Protocol::max_request`] / [`Protocol::max_response`]).
//!
//! Besides the sync protocols there is `direct`: an opaque, typed message
//! from one node to another (masternode quorum members exchanging DKG
//! messages), answered with a one-byte [`DirectAck`]; and `media`: opaque
//! requests and responses of the media service (`rusty-media` owns their
//! encoding), bounded by [`MAX_MEDIA_REQUEST`] and [`MAX_MEDIA_RESPONSE`].

use rusty_shared_types::{
    encoding::{write_bytes, write_vec, Reader},
    Block, BlockHeader, ChainLock, Decode, DecodeError, Encode, Hash256, HEADER_SIZE,
};

/// Headers in one `headers` reply, at most (Bitcoin's 2,000).
pub const MAX_HEADERS_PER_REPLY: usize = 2_000;
/// Block hashes in one `blocks` request, at most.
pub const MAX_BLOCKS_PER_REQUEST: usize = 16;
/// Entries of a block locator, at most.
pub const MAX_LOCATOR: usize = 64;
/// A `blocks` reply stops adding blocks once it holds this many bytes (it
/// always carries at least the first block it has).
pub const BLOCKS_REPLY_SOFT_BYTES: usize = 8 << 20;
/// The largest body of a [`DirectMessage`].
pub const MAX_DIRECT_BODY: usize = 512 * 1024;
/// The largest body of a media request (a content id, a chunk range, a
/// signed query: small).
pub const MAX_MEDIA_REQUEST: usize = 4 * 1024;
/// The largest body of a media response: a signed manifest of the largest
/// content is about 32 MiB, a chunk reply up to 16 chunks of 64 KiB.
pub const MAX_MEDIA_RESPONSE: usize = 40 << 20;

/// The request-response protocols. Their ids are
/// `/rusty/<chain>/<name>/1`, so nodes of different chains never talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Exchange of chain tips: genesis, best hash, height, cumulative work.
    Status,
    /// Headers after a locator, up to [`MAX_HEADERS_PER_REPLY`].
    Headers,
    /// Full blocks by hash, up to [`MAX_BLOCKS_PER_REQUEST`].
    Blocks,
    /// A [`DirectMessage`] from one node to another, acknowledged with a
    /// [`DirectAck`] (masternode DKG traffic between quorum members).
    Direct,
    /// Opaque media requests and responses (manifests, chunks), encoded by
    /// the media service; this layer only bounds their size.
    Media,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Status,
        Protocol::Headers,
        Protocol::Blocks,
        Protocol::Direct,
        Protocol::Media,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Status => "status",
            Protocol::Headers => "headers",
            Protocol::Blocks => "blocks",
            Protocol::Direct => "direct",
            Protocol::Media => "media",
        }
    }

    /// The largest request frame accepted, in bytes.
    pub fn max_request(self) -> usize {
        match self {
            Protocol::Status => STATUS_MAX,
            Protocol::Headers => 8 + 33 * MAX_LOCATOR + 33,
            Protocol::Blocks => 8 + 33 * MAX_BLOCKS_PER_REQUEST,
            // The kind byte and a CompactSize length (5 bytes at most for
            // this cap) before the body.
            Protocol::Direct => 1 + 5 + MAX_DIRECT_BODY,
            // The frame is the body: no kind, no length prefix.
            Protocol::Media => MAX_MEDIA_REQUEST,
        }
    }

    /// The largest response frame accepted, in bytes.
    pub fn max_response(self, max_block_size: usize) -> usize {
        match self {
            Protocol::Status => STATUS_MAX,
            Protocol::Headers => 16 + HEADER_SIZE * MAX_HEADERS_PER_REPLY,
            // A reply stops after the soft limit, so it can exceed it by one
            // block at most.
            Protocol::Blocks => 16 + BLOCKS_REPLY_SOFT_BYTES + max_block_size,
            Protocol::Direct => 1,
            Protocol::Media => MAX_MEDIA_RESPONSE,
        }
    }
}

/// The largest status frame: 104 bytes of chain view and a ChainLock of
/// 137 bytes with its tag, with room to spare.
const STATUS_MAX: usize = 512;

/// A node's view of its best chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub genesis: Hash256,
    pub tip: Hash256,
    pub height: u64,
    /// Cumulative proof of work of the tip, big-endian.
    pub chain_work: [u8; 32],
    /// The node's best ChainLock. A peer on a heavier fork of its own (cut
    /// off by a partition while it mined) follows it to the locked chain,
    /// which sync by work alone never does.
    /// Boxed: a status is small next to the lock's signature.
    pub best_chainlock: Option<Box<ChainLock>>,
}

/// An opaque message from one node to another on the `direct` protocol.
/// The network layer only bounds its size; `kind` tells the receiver how to
/// read `body` (the masternode service defines the kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectMessage {
    pub kind: u8,
    /// At most [`MAX_DIRECT_BODY`] bytes.
    pub body: Vec<u8>,
}

/// The receiver's answer to a [`DirectMessage`], one byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DirectAck {
    /// Taken in for processing.
    Accepted = 0,
    /// Already had it.
    Duplicate = 1,
    /// Not wanted or not valid (unknown kind, not a member, bad contents).
    Rejected = 2,
}

/// A request on one of the request-response protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "Here is my status; what is yours?"
    Status(Status),
    /// Headers of the responder's active chain after the first locator hash
    /// it knows, up to `stop` (inclusive) or [`MAX_HEADERS_PER_REPLY`].
    Headers {
        locator: Vec<Hash256>,
        stop: Hash256,
    },
    /// Blocks by hash, returned in request order; unknown hashes are
    /// skipped.
    Blocks { hashes: Vec<Hash256> },
    /// An opaque message for the responder's masternode service.
    Direct(DirectMessage),
    /// An opaque request for the responder's media service, at most
    /// [`MAX_MEDIA_REQUEST`] bytes; sent as is (the frame is the body).
    Media(Vec<u8>),
}

/// The reply to a [`Request`] of the same protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(Status),
    Headers(Vec<BlockHeader>),
    Blocks(Vec<Block>),
    Direct(DirectAck),
    /// The media service's opaque answer, at most [`MAX_MEDIA_RESPONSE`]
    /// bytes.
    Media(Vec<u8>),
}

impl Request {
    pub fn protocol(&self) -> Protocol {
        match self {
            Request::Status(_) => Protocol::Status,
            Request::Headers { .. } => Protocol::Headers,
            Request::Blocks { .. } => Protocol::Blocks,
            Request::Direct(_) => Protocol::Direct,
            Request::Media(_) => Protocol::Media,
        }
    }

    /// The frame body, without copying an opaque media body.
    pub fn into_body(self) -> Vec<u8> {
        match self {
            Request::Media(body) => body,
            other => other.encode_body(),
        }
    }

    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Request::Status(s) => s.encode_to(&mut out),
            Request::Headers { locator, stop } => {
                write_vec(&mut out, locator);
                stop.encode_to(&mut out);
            }
            Request::Blocks { hashes } => write_vec(&mut out, hashes),
            Request::Direct(m) => m.encode_to(&mut out),
            Request::Media(body) => out.extend_from_slice(body),
        }
        out
    }

    /// Decodes a request of `protocol`; the whole frame must be consumed.
    pub fn decode_body(protocol: Protocol, bytes: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(bytes);
        let req = match protocol {
            Protocol::Status => Request::Status(Status::decode_from(&mut r)?),
            Protocol::Headers => Request::Headers {
                locator: r.vec("locator", MAX_LOCATOR, 32)?,
                stop: Hash256::decode_from(&mut r)?,
            },
            Protocol::Blocks => Request::Blocks {
                hashes: r.vec("block hashes", MAX_BLOCKS_PER_REQUEST, 32)?,
            },
            Protocol::Direct => Request::Direct(DirectMessage::decode_from(&mut r)?),
            Protocol::Media => Request::Media(opaque(&mut r, "media request", MAX_MEDIA_REQUEST)?),
        };
        r.finish()?;
        Ok(req)
    }
}

impl Response {
    pub fn protocol(&self) -> Protocol {
        match self {
            Response::Status(_) => Protocol::Status,
            Response::Headers(_) => Protocol::Headers,
            Response::Blocks(_) => Protocol::Blocks,
            Response::Direct(_) => Protocol::Direct,
            Response::Media(_) => Protocol::Media,
        }
    }

    /// The frame body, without copying an opaque media body.
    pub fn into_body(self) -> Vec<u8> {
        match self {
            Response::Media(body) => body,
            other => other.encode_body(),
        }
    }

    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Response::Status(s) => s.encode_to(&mut out),
            Response::Headers(h) => write_vec(&mut out, h),
            Response::Blocks(b) => write_vec(&mut out, b),
            Response::Direct(a) => a.encode_to(&mut out),
            Response::Media(body) => out.extend_from_slice(body),
        }
        out
    }

    /// Decodes a response frame, taking ownership: a media body (a megabyte
    /// of chunks) is moved, not copied.
    pub fn decode_frame(protocol: Protocol, body: Vec<u8>) -> Result<Response, DecodeError> {
        match protocol {
            Protocol::Media if body.len() <= MAX_MEDIA_RESPONSE => Ok(Response::Media(body)),
            _ => Response::decode_body(protocol, &body),
        }
    }

    /// Decodes a response of `protocol`; the whole frame must be consumed.
    pub fn decode_body(protocol: Protocol, bytes: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(bytes);
        let resp = match protocol {
            Protocol::Status => Response::Status(Status::decode_from(&mut r)?),
            Protocol::Headers => {
                Response::Headers(r.vec("headers", MAX_HEADERS_PER_REPLY, HEADER_SIZE)?)
            }
            // The smallest encoding: a header and an empty transaction list.
            Protocol::Blocks => {
                Response::Blocks(r.vec("blocks", MAX_BLOCKS_PER_REQUEST, HEADER_SIZE + 1)?)
            }
            Protocol::Direct => Response::Direct(DirectAck::decode_from(&mut r)?),
            Protocol::Media => {
                Response::Media(opaque(&mut r, "media response", MAX_MEDIA_RESPONSE)?)
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

/// An opaque body: every byte left, at most `max` of them.
fn opaque(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
    let n = r.remaining();
    if n > max {
        return Err(DecodeError::TooLong {
            what,
            len: n as u64,
            max: max as u64,
        });
    }
    Ok(r.take(n)?.to_vec())
}

impl Encode for Status {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.genesis.encode_to(out);
        self.tip.encode_to(out);
        self.height.encode_to(out);
        self.chain_work.encode_to(out);
        match &self.best_chainlock {
            None => out.push(0),
            Some(cl) => {
                out.push(1);
                cl.encode_to(out);
            }
        }
    }
}

impl Decode for Status {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Status {
            genesis: Hash256::decode_from(r)?,
            tip: Hash256::decode_from(r)?,
            height: r.u64()?,
            chain_work: r.array()?,
            best_chainlock: r.option::<ChainLock>("status ChainLock")?.map(Box::new),
        })
    }
}

impl Encode for DirectMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        write_bytes(out, &self.body);
    }

    fn encoded_size_hint(&self) -> usize {
        1 + 5 + self.body.len()
    }
}

impl Decode for DirectMessage {
    /// The body length is checked against [`MAX_DIRECT_BODY`] and the bytes
    /// left before anything is allocated.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DirectMessage {
            kind: r.u8()?,
            body: r.bytes("direct message body", MAX_DIRECT_BODY)?,
        })
    }
}

impl Encode for DirectAck {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for DirectAck {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(DirectAck::Accepted),
            1 => Ok(DirectAck::Duplicate),
            2 => Ok(DirectAck::Rejected),
            tag => Err(DecodeError::InvalidTag {
                what: "direct ack",
                tag: u64::from(tag),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusty_shared_types::arbitrary::{block, chainlock, hash, header};

    fn status() -> impl Strategy<Value = Status> {
        (
            hash(),
            hash(),
            any::<u64>(),
            any::<[u8; 32]>(),
            proptest::option::of(chainlock().prop_map(Box::new)),
        )
            .prop_map(
                |(genesis, tip, height, chain_work, best_chainlock)| Status {
                    genesis,
                    tip,
                    height,
                    chain_work,
                    best_chainlock,
                },
            )
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            status().prop_map(Request::Status),
            (prop::collection::vec(hash(), 0..=MAX_LOCATOR), hash())
                .prop_map(|(locator, stop)| Request::Headers { locator, stop }),
            prop::collection::vec(hash(), 0..=MAX_BLOCKS_PER_REQUEST)
                .prop_map(|hashes| Request::Blocks { hashes }),
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..2_000))
                .prop_map(|(kind, body)| Request::Direct(DirectMessage { kind, body })),
            prop::collection::vec(any::<u8>(), 0..=MAX_MEDIA_REQUEST).prop_map(Request::Media),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            status().prop_map(Response::Status),
            prop::collection::vec(header(), 0..20).prop_map(Response::Headers),
            prop::collection::vec(block(), 0..3).prop_map(Response::Blocks),
            prop_oneof![
                Just(DirectAck::Accepted),
                Just(DirectAck::Duplicate),
                Just(DirectAck::Rejected),
            ]
            .prop_map(Response::Direct),
            prop::collection::vec(any::<u8>(), 0..5_000).prop_map(Response::Media),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip_within_their_cap(req in request()) {
            let p = req.protocol();
            let body = req.encode_body();
            prop_assert!(body.len() <= p.max_request());
            prop_assert_eq!(Request::decode_body(p, &body).unwrap(), req.clone());
            prop_assert_eq!(req.into_body(), body);
        }

        #[test]
        fn responses_round_trip(resp in response()) {
            let p = resp.protocol();
            let body = resp.encode_body();
            prop_assert_eq!(Response::decode_body(p, &body).unwrap(), resp.clone());
            if matches!(p, Protocol::Direct | Protocol::Media) {
                prop_assert!(body.len() <= p.max_response(0));
            }
            prop_assert_eq!(resp.into_body(), body);
        }

        #[test]
        fn random_bytes_never_panic_and_decoded_values_reencode(
            bytes in prop::collection::vec(any::<u8>(), 0..600)
        ) {
            for p in Protocol::ALL {
                if let Ok(req) = Request::decode_body(p, &bytes) {
                    prop_assert_eq!(req.encode_body(), bytes.clone());
                }
                let by_ref = Response::decode_body(p, &bytes);
                if let Ok(resp) = &by_ref {
                    prop_assert_eq!(resp.encode_body(), bytes.clone());
                }
                // Decoding an owned frame agrees with decoding a borrowed one.
                prop_assert_eq!(
                    Response::decode_frame(p, bytes.clone()).ok(),
                    by_ref.ok()
                );
            }
        }
    }

    #[test]
    fn a_full_headers_reply_fits_its_cap() {
        let h = BlockHeader {
            version: 1,
            prev_hash: Hash256::ZERO,
            merkle_root: Hash256::ZERO,
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash: Hash256::ZERO,
            time: 0,
            bits: 0,
            nonce: 0,
        };
        let body = Response::Headers(vec![h; MAX_HEADERS_PER_REPLY]).encode_body();
        assert!(body.len() <= Protocol::Headers.max_response(0));
    }

    #[test]
    fn the_largest_direct_message_fits_its_cap_and_a_larger_one_is_refused() {
        let full = Request::Direct(DirectMessage {
            kind: 7,
            body: vec![0xab; MAX_DIRECT_BODY],
        });
        let body = full.encode_body();
        assert_eq!(body.len(), Protocol::Direct.max_request());
        assert_eq!(Request::decode_body(Protocol::Direct, &body).unwrap(), full);

        // One byte more: refused on its length prefix alone, before the
        // body is read (the frame here is even shorter than it claims).
        let mut over = vec![7];
        rusty_shared_types::encoding::write_compact_size(&mut over, MAX_DIRECT_BODY as u64 + 1);
        over.extend_from_slice(&[0; 16]);
        assert!(matches!(
            Request::decode_body(Protocol::Direct, &over),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn direct_messages_reject_trailing_bytes_and_acks_unknown_tags() {
        let mut body = Request::Direct(DirectMessage {
            kind: 1,
            body: b"share".to_vec(),
        })
        .encode_body();
        body.push(0);
        assert!(matches!(
            Request::decode_body(Protocol::Direct, &body),
            Err(DecodeError::TrailingBytes(1))
        ));
        for (tag, ack) in [
            (0, DirectAck::Accepted),
            (1, DirectAck::Duplicate),
            (2, DirectAck::Rejected),
        ] {
            assert_eq!(
                Response::decode_body(Protocol::Direct, &[tag]).unwrap(),
                Response::Direct(ack)
            );
        }
        assert!(Response::decode_body(Protocol::Direct, &[3]).is_err());
        assert!(Response::decode_body(Protocol::Direct, &[]).is_err());
        assert!(Response::decode_body(Protocol::Direct, &[0, 0]).is_err());
    }

    #[test]
    fn media_bodies_are_the_frame_and_bounded_by_their_caps() {
        assert_eq!(Protocol::Media.name(), "media");
        assert_eq!(Protocol::Media.max_request(), MAX_MEDIA_REQUEST);
        assert_eq!(Protocol::Media.max_request(), 4 * 1024);
        // The block size bounds only `blocks` replies.
        assert_eq!(Protocol::Media.max_response(0), MAX_MEDIA_RESPONSE);
        assert_eq!(Protocol::Media.max_response(1 << 30), 40 << 20);
        // A signed manifest of the largest content, and 16 chunks of 64 KiB.
        const { assert!(MAX_MEDIA_RESPONSE >= 32 << 20) };
        const { assert!(MAX_MEDIA_RESPONSE >= 16 * 64 * 1024) };

        // Opaque: the body is sent as is, empty included.
        for body in [Vec::new(), b"want chunk 7".to_vec()] {
            let req = Request::Media(body.clone());
            assert_eq!(req.protocol(), Protocol::Media);
            assert_eq!(req.encode_body(), body);
            assert_eq!(
                Request::decode_body(Protocol::Media, &body).expect("decodes"),
                req
            );
            let resp = Response::Media(body.clone());
            assert_eq!(resp.protocol(), Protocol::Media);
            assert_eq!(
                Response::decode_body(Protocol::Media, &body).expect("decodes"),
                resp
            );
        }

        // Exactly at the cap: accepted; one byte more: refused.
        let full = vec![0x11; MAX_MEDIA_REQUEST];
        assert_eq!(
            Request::decode_body(Protocol::Media, &full).expect("at the cap"),
            Request::Media(full.clone())
        );
        let over = vec![0x11; MAX_MEDIA_REQUEST + 1];
        assert!(matches!(
            Request::decode_body(Protocol::Media, &over),
            Err(DecodeError::TooLong { .. })
        ));
        let full = vec![0x22; MAX_MEDIA_RESPONSE];
        assert!(Response::decode_body(Protocol::Media, &full).is_ok());
        let mut over = full;
        over.push(0);
        assert!(matches!(
            Response::decode_body(Protocol::Media, &over),
            Err(DecodeError::TooLong { .. })
        ));
        // A request body is not a valid response of another protocol.
        assert!(Response::decode_body(Protocol::Direct, b"want chunk 7").is_err());
    }

    #[test]
    fn a_request_of_another_protocol_is_rejected() {
        let body = Request::Blocks {
            hashes: vec![Hash256::ZERO; 3],
        }
        .encode_body();
        assert!(Request::decode_body(Protocol::Status, &body).is_err());
    }
}
