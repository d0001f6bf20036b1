//! Our own transactions, published again while they wait in the mempool.
//!
//! Gossip reaches the peers connected at the moment a transaction is
//! published. A miner that was restarted (its mempool is not kept across a
//! kill) or cut off then never hears of it, and the payment waits in the
//! sender's mempool for good (found by `rusty-cli chaos`). So, like Bitcoin
//! Core's wallet rebroadcast but on a dev-network scale, a transaction this
//! node published itself is published again every
//! [`REBROADCAST_AFTER`] while it is still in the mempool.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rusty_shared_types::Hash256;

/// Longer than gossipsub's duplicate cache (60 s), inside which a
/// second publish of the same bytes is refused as a duplicate.
pub(super) const REBROADCAST_AFTER: Duration = Duration::from_secs(65);

/// Transactions remembered at most; beyond it the oldest are forgotten.
const MAX_OWN_TXS: usize = 1_000;

/// When each of our own unconfirmed transactions was last published.
#[derive(Debug, Default)]
pub(super) struct OwnTxs {
    published: HashMap<Hash256, Instant>,
}

impl OwnTxs {
    /// `txid` was published at `now`.
    pub(super) fn published(&mut self, txid: Hash256, now: Instant) {
        self.published.insert(txid, now);
        while self.published.len() > MAX_OWN_TXS {
            let Some(oldest) = self
                .published
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.published.remove(&oldest);
        }
    }

    /// Transactions due to be published again at `now`.
    pub(super) fn due(&self, now: Instant) -> Vec<Hash256> {
        self.published
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= REBROADCAST_AFTER)
            .map(|(id, _)| *id)
            .collect()
    }

    /// `txid` left the mempool (mined, replaced or dropped).
    pub(super) fn forget(&mut self, txid: &Hash256) {
        self.published.remove(txid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_is_due_again_after_the_interval_until_forgotten() {
        let start = Instant::now();
        let mut own = OwnTxs::default();
        let a = Hash256([1; 32]);
        own.published(a, start);
        assert!(own.due(start + REBROADCAST_AFTER / 2).is_empty());
        assert_eq!(own.due(start + REBROADCAST_AFTER), vec![a]);
        own.published(a, start + REBROADCAST_AFTER);
        assert!(own.due(start + REBROADCAST_AFTER * 3 / 2).is_empty());
        own.forget(&a);
        assert!(own.due(start + REBROADCAST_AFTER * 10).is_empty());
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_cap() {
        let start = Instant::now();
        let mut own = OwnTxs::default();
        for i in 0..=MAX_OWN_TXS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            own.published(Hash256(id), start + Duration::from_millis(i as u64));
        }
        assert_eq!(own.published.len(), MAX_OWN_TXS);
        assert!(!own.published.contains_key(&Hash256([0; 32])));
    }
}
