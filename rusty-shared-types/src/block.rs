//! Block headers and blocks.

use crate::{
    encoding::{write_vec, Decode, DecodeResult, Encode, Reader},
    hash::Domain,
    Hash256, Transaction,
};

/// Encoded size of a header, in bytes.
pub const HEADER_SIZE: usize = 4 + 32 * 5 + 8 + 4 + 8;

/// Upper bound on transactions a decoder accepts; the consensus block size
/// limit is tighter.
pub const MAX_BLOCK_TXS: usize = 1_000_000;

/// A block header. Its BLAKE3 hash (domain `header`) is both the block id and
/// the proof-of-work hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub version: u32,
    pub prev_hash: Hash256,
    /// Merkle root of the block's wtxids.
    pub merkle_root: Hash256,
    /// Root of the contract state trie; zero until contracts activate.
    pub state_root: Hash256,
    /// Root of the deterministic masternode list; zero until masternodes activate.
    pub mn_list_root: Hash256,
    /// Hash of the ChainLock embedded in this block; zero when none.
    pub chainlock_hash: Hash256,
    /// UNIX time in seconds.
    pub time: u64,
    /// Compact target (Bitcoin's nBits format).
    pub bits: u32,
    pub nonce: u64,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash256 {
        let mut buf = [0u8; HEADER_SIZE];
        self.write_fixed(&mut buf);
        Hash256::domain_hash(Domain::Header, &buf)
    }

    /// Writes the fixed-size encoding; lets miners hash without allocating.
    pub fn write_fixed(&self, buf: &mut [u8; HEADER_SIZE]) {
        buf[0..4].copy_from_slice(&self.version.to_le_bytes());
        buf[4..36].copy_from_slice(&self.prev_hash.0);
        buf[36..68].copy_from_slice(&self.merkle_root.0);
        buf[68..100].copy_from_slice(&self.state_root.0);
        buf[100..132].copy_from_slice(&self.mn_list_root.0);
        buf[132..164].copy_from_slice(&self.chainlock_hash.0);
        buf[164..172].copy_from_slice(&self.time.to_le_bytes());
        buf[172..176].copy_from_slice(&self.bits.to_le_bytes());
        buf[176..184].copy_from_slice(&self.nonce.to_le_bytes());
    }
}

/// Offset of the nonce inside the fixed header encoding.
pub const HEADER_NONCE_OFFSET: usize = 176;

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; HEADER_SIZE];
        self.write_fixed(&mut buf);
        out.extend_from_slice(&buf);
    }
    fn encoded_size_hint(&self) -> usize {
        HEADER_SIZE
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(BlockHeader {
            version: r.u32()?,
            prev_hash: Hash256::decode_from(r)?,
            merkle_root: Hash256::decode_from(r)?,
            state_root: Hash256::decode_from(r)?,
            mn_list_root: Hash256::decode_from(r)?,
            chainlock_hash: Hash256::decode_from(r)?,
            time: r.u64()?,
            bits: r.u32()?,
            nonce: r.u64()?,
        })
    }
}

/// A block: header and transactions, the coinbase first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Transaction>,
}

impl Block {
    pub fn hash(&self) -> Hash256 {
        self.header.hash()
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write_vec(out, &self.txs);
    }
    fn encoded_size_hint(&self) -> usize {
        HEADER_SIZE
            + self
                .txs
                .iter()
                .map(|t| t.encoded_size_hint())
                .sum::<usize>()
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Block {
            header: BlockHeader::decode_from(r)?,
            // The smallest transaction encodes in 15 bytes.
            txs: r.vec("transactions", MAX_BLOCK_TXS, 15)?,
        })
    }
}
