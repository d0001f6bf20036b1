//! Wire messages of the sync protocols and gossip topics, in the canonical
//! encoding of `rusty-shared-types` (CompactSize lengths, strict decoders).
//!
//! Every request-response protocol carries one message kind each way; a frame
//! on the stream is a 4-byte big-endian length followed by that many bytes of
//! message. The length is checked against the protocol's cap before anything
//! is allocated (see [`Protocol::max_request`] / [`Protocol::max_response`]).

use rusty_shared_types::{
    encoding::{write_vec, Reader},
    Block, BlockHeader, Decode, DecodeError, Encode, Hash256, HEADER_SIZE,
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
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Status, Protocol::Headers, Protocol::Blocks];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Status => "status",
            Protocol::Headers => "headers",
            Protocol::Blocks => "blocks",
        }
    }

    /// The largest request frame accepted, in bytes.
    pub fn max_request(self) -> usize {
        match self {
            Protocol::Status => 256,
            Protocol::Headers => 8 + 33 * MAX_LOCATOR + 33,
            Protocol::Blocks => 8 + 33 * MAX_BLOCKS_PER_REQUEST,
        }
    }

    /// The largest response frame accepted, in bytes.
    pub fn max_response(self, max_block_size: usize) -> usize {
        match self {
            Protocol::Status => 256,
            Protocol::Headers => 16 + HEADER_SIZE * MAX_HEADERS_PER_REPLY,
            // A reply stops after the soft limit, so it can exceed it by one
            // block at most.
            Protocol::Blocks => 16 + BLOCKS_REPLY_SOFT_BYTES + max_block_size,
        }
    }
}

/// A node's view of its best chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub genesis: Hash256,
    pub tip: Hash256,
    pub height: u64,
    /// Cumulative proof of work of the tip, big-endian.
    pub chain_work: [u8; 32],
}

/// A request on one of the sync protocols.
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
}

/// The reply to a [`Request`] of the same protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(Status),
    Headers(Vec<BlockHeader>),
    Blocks(Vec<Block>),
}

impl Request {
    pub fn protocol(&self) -> Protocol {
        match self {
            Request::Status(_) => Protocol::Status,
            Request::Headers { .. } => Protocol::Headers,
            Request::Blocks { .. } => Protocol::Blocks,
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
        }
    }

    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Response::Status(s) => s.encode_to(&mut out),
            Response::Headers(h) => write_vec(&mut out, h),
            Response::Blocks(b) => write_vec(&mut out, b),
        }
        out
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
        };
        r.finish()?;
        Ok(resp)
    }
}

impl Encode for Status {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.genesis.encode_to(out);
        self.tip.encode_to(out);
        self.height.encode_to(out);
        self.chain_work.encode_to(out);
    }
}

impl Decode for Status {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Status {
            genesis: Hash256::decode_from(r)?,
            tip: Hash256::decode_from(r)?,
            height: r.u64()?,
            chain_work: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusty_shared_types::arbitrary::{block, hash, header};

    fn status() -> impl Strategy<Value = Status> {
        (hash(), hash(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            |(genesis, tip, height, chain_work)| Status {
                genesis,
                tip,
                height,
                chain_work,
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
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            status().prop_map(Response::Status),
            prop::collection::vec(header(), 0..20).prop_map(Response::Headers),
            prop::collection::vec(block(), 0..3).prop_map(Response::Blocks),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip_within_their_cap(req in request()) {
            let p = req.protocol();
            let body = req.encode_body();
            prop_assert!(body.len() <= p.max_request());
            prop_assert_eq!(Request::decode_body(p, &body).unwrap(), req);
        }

        #[test]
        fn responses_round_trip(resp in response()) {
            let p = resp.protocol();
            let body = resp.encode_body();
            prop_assert_eq!(Response::decode_body(p, &body).unwrap(), resp);
        }

        #[test]
        fn random_bytes_never_panic_and_decoded_values_reencode(
            bytes in prop::collection::vec(any::<u8>(), 0..600)
        ) {
            for p in Protocol::ALL {
                if let Ok(req) = Request::decode_body(p, &bytes) {
                    prop_assert_eq!(req.encode_body(), bytes.clone());
                }
                if let Ok(resp) = Response::decode_body(p, &bytes) {
                    prop_assert_eq!(resp.encode_body(), bytes.clone());
                }
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
    fn a_request_of_another_protocol_is_rejected() {
        let body = Request::Blocks {
            hashes: vec![Hash256::ZERO; 3],
        }
        .encode_body();
        assert!(Request::decode_body(Protocol::Status, &body).is_err());
    }
}
