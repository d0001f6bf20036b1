//! The node's column families and the records stored in them.

use rusty_shared_types::{
    encoding::{write_vec, Decode, DecodeError, DecodeResult, Encode, Reader},
    Block, BlockHeader, Hash256, OutPoint, TxOut,
};

/// Bumped whenever a table's layout changes.
pub const SCHEMA_VERSION: u32 = 3;

/// Meta key of the masternode state at the `tip` record's block, written
/// with every flush and disconnect.
pub const META_MN_STATE: &str = "mn_state";

/// Meta key of the governance state at the `tip` record's block (treasury,
/// values in force, live proposals with their tallies), written with every
/// flush and disconnect.
pub const META_GOV_STATE: &str = "gov_state";

/// Meta key of the best ChainLock this node has verified.
pub const META_CHAINLOCK: &str = "best_chainlock";

/// Meta key of the active tip's hash, written in the same batch as the
/// UTXO changes that lead to it.
pub const META_TIP: &str = "tip";

rusty_storage::tables! {
    /// Every table of the chain database.
    pub const TABLES;
    /// Header, height, cumulative work and status of every known block.
    pub table BlockIndex: Hash256 => IndexEntry = "block_index";
    /// Full blocks by hash.
    pub table Blocks: Hash256 => Block = "blocks";
    /// Coins a connected block spent, to disconnect it.
    pub table Undo: Hash256 => BlockUndo = "undo";
    /// The unspent transaction outputs.
    pub table Utxos: OutPoint => Coin = "utxo";
    /// Height → block hash of the active chain.
    pub table ActiveChain: u64 => Hash256 = "active_chain";
    /// txid → where the transaction sits in the active chain.
    pub table TxIndex: Hash256 => TxLocation = "tx_index";
    /// Masternode-list changes a connected block made, to disconnect it.
    pub table MnUndoTable: Hash256 => crate::masternode::MnUndo = "mn_undo";
    /// The counted vote of each (proposal, masternode) pair.
    pub table GovVotes: crate::governance::VoteKey => crate::governance::VoteRecord = "gov_votes";
    /// Governance changes a connected block made, to disconnect it.
    pub table GovUndoTable: Hash256 => crate::governance::GovUndo = "gov_undo";
    /// Nodes of the account and storage tries, by BLAKE3 hash (never
    /// changed, so every root stays readable).
    pub table StateNodes: Hash256 => rusty_storage::trie::NodeBytes = "state_nodes";
    /// Contract code by keccak256.
    pub table ContractCode: Hash256 => rusty_storage::trie::NodeBytes = "contract_code";
    /// keccak256 of a raw Ethereum transaction → where it sits in the
    /// active chain.
    pub table EthTxIndex: Hash256 => TxLocation = "eth_tx_index";
    /// The receipts of a block's Ethereum transactions.
    pub table Receipts: Hash256 => crate::contracts::BlockReceipts = "receipts";
}

/// Validation state of a block in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Header and body passed every check that does not need the UTXO set.
    Valid = 1,
    /// Failed validation; never connected again.
    Invalid = 2,
}

/// One block index record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub header: BlockHeader,
    pub height: u64,
    /// Cumulative work up to and including this block, big-endian.
    pub chain_work: [u8; 32],
    pub status: BlockStatus,
}

impl Encode for IndexEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        self.height.encode_to(out);
        self.chain_work.encode_to(out);
        out.push(self.status as u8);
    }
}

impl Decode for IndexEntry {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(IndexEntry {
            header: BlockHeader::decode_from(r)?,
            height: r.u64()?,
            chain_work: r.array()?,
            status: match r.u8()? {
                1 => BlockStatus::Valid,
                2 => BlockStatus::Invalid,
                t => {
                    return Err(DecodeError::InvalidTag {
                        what: "block status",
                        tag: u64::from(t),
                    })
                }
            },
        })
    }
}

/// An unspent output with the facts validation needs about its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    pub output: TxOut,
    pub height: u64,
    pub is_coinbase: bool,
}

impl Encode for Coin {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.output.encode_to(out);
        self.height.encode_to(out);
        self.is_coinbase.encode_to(out);
    }
}

impl Decode for Coin {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Coin {
            output: TxOut::decode_from(r)?,
            height: r.u64()?,
            is_coinbase: bool::decode_from(r)?,
        })
    }
}

/// The coins a block spent, in input order (coinbase excluded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockUndo {
    pub spent: Vec<Coin>,
}

impl Encode for BlockUndo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_vec(out, &self.spent);
    }
}

impl Decode for BlockUndo {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(BlockUndo {
            // The smallest coin: value 8 + empty script 1 + height 8 + flag 1.
            spent: r.vec("undo coins", usize::MAX, 18)?,
        })
    }
}

/// Position of a transaction in the active chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub block: Hash256,
    pub index: u32,
}

impl Encode for TxLocation {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.block.encode_to(out);
        self.index.encode_to(out);
    }
}

impl Decode for TxLocation {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TxLocation {
            block: Hash256::decode_from(r)?,
            index: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusty_shared_types::{
        arbitrary::{self, assert_round_trip as round_trip},
        decode_exact, Encode,
    };

    use super::*;

    fn coin() -> impl Strategy<Value = Coin> {
        (arbitrary::txout(), any::<u64>(), any::<bool>()).prop_map(
            |(output, height, is_coinbase)| Coin {
                output,
                height,
                is_coinbase,
            },
        )
    }

    proptest! {
        #[test]
        fn index_entry(header in arbitrary::header(), height: u64, work: [u8; 32], invalid: bool) {
            let status = if invalid { BlockStatus::Invalid } else { BlockStatus::Valid };
            round_trip(&IndexEntry { header, height, chain_work: work, status });
        }

        #[test]
        fn coin_codec(c in coin()) { round_trip(&c) }

        #[test]
        fn undo_codec(spent in proptest::collection::vec(coin(), 0..8)) {
            round_trip(&BlockUndo { spent })
        }

        #[test]
        fn tx_location(block in arbitrary::hash(), index: u32) {
            round_trip(&TxLocation { block, index })
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_exact::<IndexEntry>(&bytes);
            let _ = decode_exact::<Coin>(&bytes);
            let _ = decode_exact::<BlockUndo>(&bytes);
        }
    }

    #[test]
    fn unknown_status_is_rejected() {
        let mut bytes = IndexEntry {
            header: rusty_shared_types::Network::Dev
                .params()
                .genesis_block()
                .header,
            height: 0,
            chain_work: [0; 32],
            status: BlockStatus::Valid,
        }
        .encode();
        *bytes.last_mut().unwrap() = 9;
        assert!(decode_exact::<IndexEntry>(&bytes).is_err());
    }
}
