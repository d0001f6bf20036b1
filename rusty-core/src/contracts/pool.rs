//! Ethereum transactions waiting for a block, by sender and nonce (the
//! UTXO mempool orders by fee rate and spends; these order by nonce and
//! pay from an account).
//!
//! A sender's transactions may leave gaps (up to [`MAX_NONCE_AHEAD`]
//! ahead of its account nonce); only the run without gaps is mined. A
//! transaction with the same sender and nonce replaces one in the pool if
//! it raises both the fee cap and the tip by at least 10 %, as geth's.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ruint::aliases::U256;
use rusty_crypto::eth::{
    tx::{EthTx, EthTxFields},
    EthAddress,
};
use rusty_shared_types::{Hash256, Transaction};

use super::ContractError;

/// How far ahead of the account's nonce a pooled transaction may be.
pub const MAX_NONCE_AHEAD: u64 = 64;

/// Pooled transactions at most.
pub const MAX_POOLED: usize = 8_192;

/// Arrivals remembered for `eth_newPendingTransactionFilter`'s polls,
/// also of transactions mined or replaced since (geth reports those too).
pub const ARRIVALS_KEPT: usize = 4_096;

/// The gas `f` costs before its first instruction (see
/// [`rusty_vm::evm::intrinsic_gas`]: revm's rule, so the pool and
/// execution never disagree). The pool refuses a transaction whose limit
/// is below it: it could never run, yet a queued one (not run at
/// admission) would hold a place.
pub fn intrinsic_gas(f: &EthTxFields) -> u64 {
    let slots = f.access_list.iter().map(|(_, s)| s.len()).sum();
    rusty_vm::evm::intrinsic_gas(&f.input, f.to.is_none(), f.access_list.len(), slots)
}

/// A pooled transaction.
#[derive(Debug, Clone)]
pub struct PooledEthTx {
    /// The native transaction carrying it (what blocks and relay use).
    pub tx: Transaction,
    pub txid: Hash256,
    pub eth: EthTx,
    pub time: u64,
}

/// The pool.
#[derive(Debug, Default)]
pub struct EthPool {
    by_sender: BTreeMap<([u8; 20], u64), PooledEthTx>,
    /// keccak256 hash → (sender, nonce).
    by_hash: HashMap<[u8; 32], ([u8; 20], u64)>,
    /// The last [`ARRIVALS_KEPT`] admissions, numbered from 1 in order.
    arrivals: VecDeque<(u64, [u8; 32])>,
    /// The number of the last admission (0: none yet).
    last_arrival: u64,
}

impl EthPool {
    pub fn len(&self) -> usize {
        self.by_sender.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sender.is_empty()
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<&PooledEthTx> {
        self.by_hash.get(hash).and_then(|k| self.by_sender.get(k))
    }

    pub fn iter(&self) -> impl Iterator<Item = &PooledEthTx> {
        self.by_sender.values()
    }

    /// The nonce after `sender`'s gap-free run starting at `account_nonce`
    /// (what `eth_getTransactionCount(…, "pending")` reports).
    pub fn pending_nonce(&self, sender: &[u8; 20], account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        while self.by_sender.contains_key(&(*sender, next)) {
            next = next.saturating_add(1);
        }
        next
    }

    /// Adds `entry`, whose nonce is at least `account_nonce` (checked by
    /// the caller with the balance); returns the transaction it replaced.
    pub fn insert(
        &mut self,
        entry: PooledEthTx,
        account_nonce: u64,
    ) -> Result<Option<PooledEthTx>, ContractError> {
        let key = (entry.eth.sender, entry.eth.fields.nonce);
        if self.by_hash.contains_key(&entry.eth.hash) {
            return Err(ContractError::AlreadyKnown);
        }
        if key.1 > account_nonce.saturating_add(MAX_NONCE_AHEAD) {
            return Err(ContractError::NonceTooHigh {
                expected: self.pending_nonce(&key.0, account_nonce),
                found: key.1,
            });
        }
        let replaced = match self.by_sender.get(&key) {
            Some(old) => {
                let bumped = |new: u128, old: u128| new >= old.saturating_add(old / 10);
                let (n, o) = (&entry.eth.fields, &old.eth.fields);
                if !bumped(n.max_fee_per_gas, o.max_fee_per_gas)
                    || !bumped(n.max_priority_fee_per_gas, o.max_priority_fee_per_gas)
                {
                    return Err(ContractError::ReplacementUnderpriced);
                }
                self.remove(&old.eth.hash.clone())
            }
            None if self.by_sender.len() >= MAX_POOLED => return Err(ContractError::PoolFull),
            None => None,
        };
        self.by_hash.insert(entry.eth.hash, key);
        self.last_arrival = self.last_arrival.saturating_add(1);
        if self.arrivals.len() == ARRIVALS_KEPT {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back((self.last_arrival, entry.eth.hash));
        self.by_sender.insert(key, entry);
        Ok(replaced)
    }

    /// The number of the last admission, for a filter to start after.
    pub fn last_arrival(&self) -> u64 {
        self.last_arrival
    }

    /// The hashes admitted after admission number `after`, oldest first
    /// (at most the last [`ARRIVALS_KEPT`]), and the number of the last.
    pub fn arrivals_after(&self, after: u64) -> (Vec<[u8; 32]>, u64) {
        let start = self.arrivals.partition_point(|(n, _)| *n <= after);
        let hashes = self.arrivals.range(start..).map(|(_, h)| *h).collect();
        (hashes, self.last_arrival)
    }

    /// What `sender`'s pooled transactions with nonces in `nonces` may
    /// cost at most (gas limit × fee cap + value each).
    pub fn queued_cost(&self, sender: &[u8; 20], nonces: std::ops::Range<u64>) -> U256 {
        self.by_sender
            .range((*sender, nonces.start)..(*sender, nonces.end))
            .fold(U256::ZERO, |sum, (_, e)| {
                sum.saturating_add(max_cost(&e.eth.fields))
            })
    }

    pub fn remove(&mut self, hash: &[u8; 32]) -> Option<PooledEthTx> {
        let key = self.by_hash.remove(hash)?;
        self.by_sender.remove(&key)
    }

    /// Drops every transaction whose nonce its sender's account has
    /// passed (mined, or replaced by a mined one).
    pub fn prune(&mut self, mut account_nonce: impl FnMut(&[u8; 20]) -> u64) {
        let mut current: Option<([u8; 20], u64)> = None;
        let by_hash = &mut self.by_hash;
        // One pass that removes in place: after a block, most of the pool
        // (the block's own transactions) goes, and looking each one up
        // again to remove it had cost more than the pass.
        self.by_sender.retain(|(sender, nonce), e| {
            let floor = match current {
                Some((s, n)) if s == *sender => n,
                _ => {
                    let n = account_nonce(sender);
                    current = Some((*sender, n));
                    n
                }
            };
            let keep = *nonce >= floor;
            if !keep {
                by_hash.remove(&e.eth.hash);
            }
            keep
        });
    }

    /// Candidates for a block: each sender's gap-free run from its account
    /// nonce, senders ordered by the tip of their first transaction
    /// (highest first), then by address.
    pub fn candidates(
        &self,
        mut account_nonce: impl FnMut(&[u8; 20]) -> u64,
    ) -> Vec<Vec<&PooledEthTx>> {
        let mut runs: Vec<Vec<&PooledEthTx>> = Vec::new();
        let mut senders: Vec<[u8; 20]> = self.by_sender.keys().map(|(s, _)| *s).collect();
        senders.dedup();
        for sender in senders {
            let mut nonce = account_nonce(&sender);
            let mut run = Vec::new();
            while let Some(e) = self.by_sender.get(&(sender, nonce)) {
                run.push(e);
                nonce = nonce.saturating_add(1);
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        runs.sort_by_key(|run| std::cmp::Reverse(run[0].eth.fields.max_priority_fee_per_gas));
        runs
    }
}

/// The most a transaction can cost its sender: gas limit × fee cap + value.
pub fn max_cost(f: &EthTxFields) -> U256 {
    U256::from(f.gas_limit)
        .saturating_mul(U256::from(f.max_fee_per_gas))
        .saturating_add(U256::from_be_bytes(f.value))
}

/// Senders recovered when transactions entered the pool, by the keccak256
/// hash of their bytes, so connecting a block that carries them does not
/// recover them again (Bitcoin Core keeps a signature cache for the same
/// reason): recovering a secp256k1 key is most of what an Ethereum
/// transaction costs a connect. Only successful decodes enter, so a hit
/// is the answer recovery would give. Bounded; the oldest leave first.
#[derive(Debug)]
pub struct SenderCache {
    senders: HashMap<[u8; 32], EthAddress>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl Default for SenderCache {
    fn default() -> Self {
        SenderCache::with_capacity(MAX_CACHED_SENDERS)
    }
}

/// Senders the cache keeps at most (twice the pool, for transactions
/// replaced or mined on a branch that lost).
pub const MAX_CACHED_SENDERS: usize = 2 * MAX_POOLED;

impl SenderCache {
    pub fn with_capacity(capacity: usize) -> Self {
        SenderCache {
            senders: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn insert(&mut self, tx: &EthTx) {
        if self.senders.insert(tx.hash, tx.sender).is_some() {
            return;
        }
        self.order.push_back(tx.hash);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.senders.remove(&old);
            }
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<EthAddress> {
        self.senders.get(hash).copied()
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_crypto::eth::{
        tx::{decode, EthTxFields, EthTxType},
        EthKey,
    };

    fn tx(nonce: u64) -> EthTx {
        tx_from(3, nonce)
    }

    fn tx_from(key: u8, nonce: u64) -> EthTx {
        let key = EthKey::from_bytes(&[key; 32]).expect("a key");
        let raw = EthTxFields {
            tx_type: EthTxType::DynamicFee,
            chain_id: Some(7373),
            nonce,
            max_priority_fee_per_gas: 0,
            max_fee_per_gas: 1,
            gas_limit: 21_000,
            to: Some([1; 20]),
            value: [0; 32],
            input: Vec::new(),
            access_list: Vec::new(),
        }
        .sign(&key)
        .expect("signs");
        decode(&raw).expect("decodes")
    }

    fn pooled(eth: EthTx) -> PooledEthTx {
        PooledEthTx {
            tx: Transaction {
                version: 1,
                inputs: Vec::new(),
                outputs: Vec::new(),
                lock_time: 0,
                payload: None,
            },
            txid: Hash256(eth.hash),
            eth,
            time: 0,
        }
    }

    #[test]
    fn arrivals_are_reported_after_a_mark_also_once_mined() {
        let mut pool = EthPool::default();
        assert_eq!(pool.arrivals_after(0), (Vec::new(), 0));
        for n in 0..3 {
            pool.insert(pooled(tx_from(5, n)), 0).expect("pooled");
        }
        let mark = pool.last_arrival();
        assert_eq!(mark, 3);
        let refused = pool.insert(pooled(tx_from(5, 0)), 0);
        assert!(matches!(refused, Err(ContractError::AlreadyKnown)));
        pool.insert(pooled(tx_from(6, 0)), 0).expect("pooled");
        // Mined before the poll: still an arrival the filter reports.
        pool.prune(|_| 10);
        let (hashes, last) = pool.arrivals_after(mark);
        assert_eq!(hashes, vec![tx_from(6, 0).hash]);
        assert_eq!(last, 4);
        let (all, _) = pool.arrivals_after(0);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], tx_from(5, 0).hash);
        assert_eq!(pool.arrivals_after(last).0, Vec::<[u8; 32]>::new());
    }

    #[test]
    fn arrivals_keep_only_the_newest() {
        let mut pool = EthPool::default();
        let extra = 3u64;
        let signed = tx_from(7, 0);
        for n in 0..ARRIVALS_KEPT as u64 + extra {
            // One transaction under ever new hashes, mined each time.
            let mut eth = signed.clone();
            eth.hash[..8].copy_from_slice(&n.to_le_bytes());
            pool.insert(pooled(eth), 0).expect("pooled");
            pool.prune(|_| 1);
        }
        let (hashes, last) = pool.arrivals_after(0);
        assert_eq!(hashes.len(), ARRIVALS_KEPT);
        assert_eq!(last, ARRIVALS_KEPT as u64 + extra);
    }

    #[test]
    fn prune_drops_each_senders_passed_nonces_from_both_maps() {
        let mut pool = EthPool::default();
        let (a, b) = ((0..5).map(|n| tx_from(3, n)), (0..3).map(|n| tx_from(4, n)));
        for eth in a.chain(b) {
            pool.insert(pooled(eth), 0).expect("pooled");
        }
        let (sender_a, sender_b) = (tx_from(3, 0).sender, tx_from(4, 0).sender);
        // A's account is at nonce 3 (0, 1 and 2 mined); B's at 0.
        pool.prune(|s| if *s == sender_a { 3 } else { 0 });
        assert_eq!(pool.len(), 2 + 3);
        assert!(
            pool.get(&tx_from(3, 2).hash).is_none(),
            "a mined one left by hash"
        );
        assert!(pool.get(&tx_from(3, 3).hash).is_some());
        assert_eq!(pool.pending_nonce(&sender_a, 3), 5);
        assert_eq!(pool.pending_nonce(&sender_b, 0), 3);
        // Everything mined: both maps empty.
        pool.prune(|_| 10);
        assert!(pool.is_empty());
        assert!(pool.get(&tx_from(4, 2).hash).is_none());
        assert!(pool.by_hash.is_empty());
    }

    #[test]
    fn the_sender_cache_keeps_the_newest_up_to_its_bound() {
        const CAPACITY: usize = 4;
        let mut cache = SenderCache::with_capacity(CAPACITY);
        let first = tx(0);
        cache.insert(&first);
        assert_eq!(cache.get(&first.hash), Some(first.sender));
        for nonce in 1..=CAPACITY as u64 {
            cache.insert(&tx(nonce));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(cache.get(&first.hash), None, "the oldest left first");
        let last = tx(CAPACITY as u64);
        assert_eq!(cache.get(&last.hash), Some(last.sender));
        // Inserting one already there changes nothing.
        cache.insert(&last);
        assert_eq!(cache.len(), CAPACITY);
    }
}
