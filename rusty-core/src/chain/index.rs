//! The transaction indexes and receipts of connected blocks, held in
//! memory until the chain's next flush, like the coin cache and the trie
//! nodes: a block of 500 ERC-20 transfers adds about 1,200 index keys and
//! 150 KB of receipts, and writing them in the block's own batch was a
//! sixth of its connect (`bench erc20`). Nothing here is needed to
//! validate a later block; after a crash, the blocks connected since the
//! last flush are connected again from their stored bodies, which writes
//! their entries again.

use std::collections::HashMap;

use rusty_shared_types::Hash256;
use rusty_storage::WriteBatch;

use crate::{
    contracts::{BlockReceipts, EthReceipt},
    tables::{EthTxIndex, Receipts, TxIndex, TxLocation},
};

/// Keyed by txids, transaction hashes and block hashes: outputs of a hash,
/// but of bytes a peer chose, so the hasher is seeded (foldhash's: SipHash
/// on these keys was a visible part of holding a block's entries).
type Map<V> = HashMap<Hash256, V, foldhash::fast::RandomState>;

/// Index entries and receipts not yet in the database.
#[derive(Debug, Default)]
pub struct UnwrittenIndex {
    /// Where each transaction sits, by txid.
    txs: Map<TxLocation>,
    /// Where each Ethereum transaction sits, by keccak256 of its bytes.
    eth_txs: Map<TxLocation>,
    /// Each block's receipts, by block hash.
    receipts: Map<BlockReceipts>,
    /// About what the entries take in memory (bounds them).
    bytes: usize,
}

/// Roughly what an index entry costs in memory: key, location, the map's
/// own overhead.
const ENTRY_BYTES: usize = 96;

impl UnwrittenIndex {
    /// Holds a connected block's entries: its txids in block order, and
    /// its receipts (if any).
    pub fn hold(&mut self, block: Hash256, txids: &[Hash256], receipts: Vec<EthReceipt>) {
        self.txs.reserve(txids.len());
        self.eth_txs.reserve(receipts.len());
        for (i, txid) in txids.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            self.txs.insert(*txid, TxLocation { block, index });
        }
        self.bytes = self
            .bytes
            .saturating_add(txids.len().saturating_mul(ENTRY_BYTES));
        if receipts.is_empty() {
            return;
        }
        for r in &receipts {
            self.eth_txs.insert(
                Hash256(r.tx_hash),
                TxLocation {
                    block,
                    index: r.index,
                },
            );
            self.bytes = self.bytes.saturating_add(receipt_bytes(r));
        }
        self.receipts.insert(block, BlockReceipts(receipts));
    }

    pub fn tx_location(&self, txid: &Hash256) -> Option<TxLocation> {
        self.txs.get(txid).copied()
    }

    pub fn eth_tx_location(&self, hash: &Hash256) -> Option<TxLocation> {
        self.eth_txs.get(hash).copied()
    }

    pub fn receipts(&self, block: &Hash256) -> Option<&BlockReceipts> {
        self.receipts.get(block)
    }

    /// About how many bytes the held entries take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds every held entry to `batch`.
    pub fn write_to(&self, batch: &mut WriteBatch) {
        for (txid, location) in &self.txs {
            batch.put::<TxIndex>(txid, location);
        }
        for (hash, location) in &self.eth_txs {
            batch.put::<EthTxIndex>(hash, location);
        }
        for (block, receipts) in &self.receipts {
            batch.put::<Receipts>(block, receipts);
        }
    }

    /// Forgets the entries once the batch holding them is written.
    pub fn written(&mut self) {
        *self = UnwrittenIndex::default();
    }
}

/// About what a receipt takes in memory.
fn receipt_bytes(r: &EthReceipt) -> usize {
    r.logs.iter().fold(2 * ENTRY_BYTES, |sum, log| {
        sum.saturating_add(log.data.len())
            .saturating_add(32 * log.topics.len())
            .saturating_add(64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(tx: u8, index: u32) -> EthReceipt {
        EthReceipt {
            tx_hash: [tx; 32],
            index,
            from: [1; 20],
            to: Some([2; 20]),
            contract_address: None,
            tx_type: 2,
            success: true,
            gas_used: 21_000,
            cumulative_gas_used: 21_000,
            effective_gas_price: 1,
            logs: Vec::new(),
        }
    }

    #[test]
    fn held_entries_are_found_then_written_then_forgotten() {
        let db = rusty_storage::Database::in_memory(crate::tables::TABLES, 1).expect("db");
        let mut index = UnwrittenIndex::default();
        let block = Hash256([7; 32]);
        let txids = [Hash256([1; 32]), Hash256([2; 32])];
        index.hold(block, &txids, vec![receipt(9, 1)]);
        assert_eq!(
            index.tx_location(&txids[1]),
            Some(TxLocation { block, index: 1 })
        );
        assert_eq!(
            index.eth_tx_location(&Hash256([9; 32])),
            Some(TxLocation { block, index: 1 })
        );
        assert_eq!(index.receipts(&block).map(|r| r.0.len()), Some(1));
        assert!(index.bytes() > 0);
        assert_eq!(index.tx_location(&Hash256([3; 32])), None);

        let mut batch = db.batch();
        index.write_to(&mut batch);
        db.commit(batch).expect("commit");
        index.written();
        assert_eq!(index.bytes(), 0);
        assert_eq!(index.tx_location(&txids[0]), None);
        assert!(index.receipts(&block).is_none());
        assert_eq!(
            db.get::<TxIndex>(&txids[0]).expect("read"),
            Some(TxLocation { block, index: 0 })
        );
        assert_eq!(
            db.get::<EthTxIndex>(&Hash256([9; 32])).expect("read"),
            Some(TxLocation { block, index: 1 })
        );
        assert_eq!(
            db.get::<Receipts>(&block).expect("read").map(|r| r.0.len()),
            Some(1)
        );
    }
}
