//! The memory pool: valid transactions waiting for a block.
//!
//! Ordered by fee rate; a minimum relay fee; a byte cap enforced by evicting
//! the lowest fee rate (with its descendants); conflicts detected through the
//! outpoints each transaction spends; a conflicting transaction replaces the
//! ones it conflicts with only if it pays a higher fee rate and more absolute
//! fee than all of them together, plus relay fee for its own size (BIP-125's
//! economic rules, without the opt-in signal).

#![deny(clippy::arithmetic_side_effects)]

use std::collections::{BTreeSet, HashMap, HashSet};

use rusty_shared_types::{Amount, Hash256, OutPoint, Transaction};

/// Why a transaction was not accepted to the mempool (beyond consensus
/// rules, which are [`crate::validation::ValidationError`]s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Hash256),
    #[error("fee rate {rate} units/kB is below the minimum relay fee rate of {min} units/kB")]
    FeeTooLow { rate: u64, min: u64 },
    #[error("transaction conflicts with {conflicts} mempool transaction(s) and does not pay enough to replace them (needs fee > {needed} and a higher fee rate)")]
    InsufficientReplacementFee { conflicts: usize, needed: Amount },
    #[error("mempool is full and the transaction's fee rate is too low to evict anything")]
    MempoolFull,
    #[error(
        "vote transaction {waiting} for the same masternode and proposal is waiting to be mined"
    )]
    ConflictingVote { waiting: Hash256 },
}

/// A transaction in the pool with what was learnt validating it.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    pub tx: Transaction,
    pub txid: Hash256,
    pub size: usize,
    pub fee: Amount,
    /// Base units per 1000 bytes.
    pub fee_rate: u64,
    /// UNIX time of acceptance.
    pub time: u64,
    /// Height of the chain's tip at acceptance.
    pub height: u64,
    /// The outputs this transaction spends, in input order.
    pub spent: Vec<rusty_shared_types::TxOut>,
}

/// Fee rate in base units per 1000 bytes (rounded down).
pub fn fee_rate(fee: Amount, size: usize) -> u64 {
    let size = u128::from((size as u64).max(1));
    let rate = u128::from(fee.units())
        .saturating_mul(1000)
        .checked_div(size)
        .unwrap_or(0);
    u64::try_from(rate).unwrap_or(u64::MAX)
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    entries: HashMap<Hash256, MempoolEntry>,
    /// Which pool transaction spends each outpoint.
    spends: HashMap<OutPoint, Hash256>,
    by_fee_rate: BTreeSet<(u64, Hash256)>,
    total_size: usize,
    max_size: usize,
    min_fee_rate: u64,
}

impl Mempool {
    pub fn new(max_size: usize, min_fee_rate: u64) -> Self {
        Mempool {
            entries: HashMap::new(),
            spends: HashMap::new(),
            by_fee_rate: BTreeSet::new(),
            total_size: 0,
            max_size,
            min_fee_rate,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn total_size(&self) -> usize {
        self.total_size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Changes the relay floor (the governed default moved); entries
    /// already in stay until mined or evicted.
    pub fn set_min_fee_rate(&mut self, rate: u64) {
        self.min_fee_rate = rate;
    }

    pub fn min_fee_rate(&self) -> u64 {
        self.min_fee_rate
    }

    pub fn total_fees(&self) -> Amount {
        Amount::checked_sum(self.entries.values().map(|e| e.fee)).unwrap_or(Amount::MAX)
    }

    pub fn get(&self, txid: &Hash256) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    pub fn contains(&self, txid: &Hash256) -> bool {
        self.entries.contains_key(txid)
    }

    pub fn entries(&self) -> impl Iterator<Item = &MempoolEntry> {
        self.entries.values()
    }

    /// The pool transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Hash256> {
        self.spends.get(outpoint).copied()
    }

    /// Output `outpoint` of a pool transaction, if it exists.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&rusty_shared_types::TxOut> {
        self.entries
            .get(&outpoint.txid)
            .and_then(|e| e.tx.outputs.get(outpoint.vout as usize))
    }

    /// Pool transactions that spend any input of `tx`.
    pub fn conflicts_of(&self, tx: &Transaction) -> HashSet<Hash256> {
        tx.inputs
            .iter()
            .filter_map(|i| self.spends.get(&i.prevout).copied())
            .collect()
    }

    /// Every pool transaction `txid` descends from (not `txid` itself).
    pub fn ancestors(&self, txid: &Hash256) -> HashSet<Hash256> {
        let mut out = HashSet::new();
        let mut stack = vec![*txid];
        while let Some(t) = stack.pop() {
            let Some(e) = self.entries.get(&t) else {
                continue;
            };
            for i in &e.tx.inputs {
                let parent = i.prevout.txid;
                if self.entries.contains_key(&parent) && out.insert(parent) {
                    stack.push(parent);
                }
            }
        }
        out
    }

    /// The pool transactions spending an output of `txid` directly.
    pub fn spent_by(&self, txid: &Hash256) -> Vec<Hash256> {
        let Some(e) = self.entries.get(txid) else {
            return Vec::new();
        };
        let mut children: Vec<Hash256> = (0..e.tx.outputs.len())
            .filter_map(|vout| self.spends.get(&OutPoint::new(*txid, vout as u32)).copied())
            .collect();
        children.sort_unstable();
        children.dedup();
        children
    }

    /// `txids` and every pool transaction descending from them.
    pub fn with_descendants(&self, txids: impl IntoIterator<Item = Hash256>) -> HashSet<Hash256> {
        let mut out = HashSet::new();
        let mut stack: Vec<Hash256> = txids.into_iter().collect();
        while let Some(txid) = stack.pop() {
            if !out.insert(txid) {
                continue;
            }
            if let Some(e) = self.entries.get(&txid) {
                for vout in 0..e.tx.outputs.len() {
                    if let Some(child) = self.spends.get(&OutPoint::new(txid, vout as u32)) {
                        stack.push(*child);
                    }
                }
            }
        }
        out
    }

    /// Checks fee policy, replacement and the size cap for a transaction
    /// that passed consensus checks, then inserts it. Returns the txids it
    /// replaced or evicted.
    pub fn insert(&mut self, entry: MempoolEntry) -> Result<Vec<Hash256>, MempoolError> {
        if self.entries.contains_key(&entry.txid) {
            return Err(MempoolError::AlreadyKnown(entry.txid));
        }
        if entry.fee_rate < self.min_fee_rate {
            return Err(MempoolError::FeeTooLow {
                rate: entry.fee_rate,
                min: self.min_fee_rate,
            });
        }
        let direct = self.conflicts_of(&entry.tx);
        let replaced = self.with_descendants(direct);
        if !replaced.is_empty() {
            let replaced_fees = Amount::checked_sum(
                replaced
                    .iter()
                    .filter_map(|t| self.entries.get(t))
                    .map(|e| e.fee),
            )
            .unwrap_or(Amount::MAX);
            let relay_units = u128::from(self.min_fee_rate)
                .saturating_mul(entry.size as u128)
                .checked_div(1000)
                .unwrap_or(0);
            let relay = Amount::from_units(u64::try_from(relay_units).unwrap_or(u64::MAX))
                .unwrap_or(Amount::MAX);
            let needed = replaced_fees.checked_add(relay).unwrap_or(Amount::MAX);
            let max_rate = replaced
                .iter()
                .filter_map(|t| self.entries.get(t))
                .map(|e| e.fee_rate)
                .max()
                .unwrap_or(0);
            if entry.fee < needed || entry.fee_rate <= max_rate {
                return Err(MempoolError::InsufficientReplacementFee {
                    conflicts: replaced.len(),
                    needed,
                });
            }
        }
        // Would the cap force out something paying at least as much?
        if self.total_size.saturating_add(entry.size) > self.max_size {
            let mut freed = replaced
                .iter()
                .filter_map(|t| self.entries.get(t))
                .map(|e| e.size)
                .sum::<usize>();
            let need = self
                .total_size
                .saturating_add(entry.size)
                .saturating_sub(self.max_size);
            for (rate, txid) in &self.by_fee_rate {
                if freed >= need {
                    break;
                }
                if *rate >= entry.fee_rate {
                    return Err(MempoolError::MempoolFull);
                }
                if !replaced.contains(txid) {
                    freed = freed.saturating_add(self.entries[txid].size);
                }
            }
        }
        let mut removed: Vec<Hash256> = replaced.into_iter().collect();
        for txid in &removed {
            self.remove_one(txid);
        }
        self.add(entry);
        while self.total_size > self.max_size {
            let Some(&(_, lowest)) = self.by_fee_rate.iter().next() else {
                break;
            };
            for txid in self.with_descendants([lowest]) {
                self.remove_one(&txid);
                removed.push(txid);
            }
        }
        Ok(removed)
    }

    fn add(&mut self, entry: MempoolEntry) {
        for input in &entry.tx.inputs {
            self.spends.insert(input.prevout, entry.txid);
        }
        self.by_fee_rate.insert((entry.fee_rate, entry.txid));
        self.total_size = self.total_size.saturating_add(entry.size);
        self.entries.insert(entry.txid, entry);
    }

    fn remove_one(&mut self, txid: &Hash256) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.inputs {
            if self.spends.get(&input.prevout) == Some(txid) {
                self.spends.remove(&input.prevout);
            }
        }
        self.by_fee_rate.remove(&(entry.fee_rate, entry.txid));
        self.total_size = self.total_size.saturating_sub(entry.size);
        Some(entry)
    }

    /// Removes `txid` and its descendants.
    pub fn remove_with_descendants(&mut self, txid: &Hash256) -> Vec<MempoolEntry> {
        self.with_descendants([*txid])
            .into_iter()
            .filter_map(|t| self.remove_one(&t))
            .collect()
    }

    /// After a block connects: drop its transactions (`txids` are theirs,
    /// in order), and anything that conflicts with them (with
    /// descendants).
    pub fn remove_for_block(&mut self, txs: &[Transaction], txids: &[Hash256]) {
        for (tx, txid) in txs.iter().zip(txids) {
            self.remove_one(txid);
            for c in self.conflicts_of(tx) {
                self.remove_with_descendants(&c);
            }
        }
    }

    /// Transactions for a block template, best fee rate first, parents always
    /// before children, within `max_bytes`.
    pub fn select_for_block(&self, max_bytes: usize) -> Vec<&MempoolEntry> {
        let mut chosen: Vec<&MempoolEntry> = Vec::new();
        let mut included: HashSet<Hash256> = HashSet::new();
        let mut used = 0usize;
        let mut pending: Vec<&MempoolEntry> = self
            .by_fee_rate
            .iter()
            .rev()
            .filter_map(|(_, t)| self.entries.get(t))
            .collect();
        loop {
            let mut progress = false;
            let mut deferred = Vec::new();
            for e in pending {
                let parents_in = e.tx.inputs.iter().all(|i| {
                    !self.entries.contains_key(&i.prevout.txid)
                        || included.contains(&i.prevout.txid)
                });
                if !parents_in {
                    deferred.push(e);
                    continue;
                }
                if used.saturating_add(e.size) > max_bytes {
                    continue;
                }
                used = used.saturating_add(e.size);
                included.insert(e.txid);
                chosen.push(e);
                progress = true;
            }
            if !progress || deferred.is_empty() {
                break;
            }
            pending = deferred;
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::{Script, TxIn, TxOut};

    use super::*;

    fn entry(prevouts: &[OutPoint], fee: u64, size: usize, tag: u8) -> MempoolEntry {
        let tx = Transaction {
            version: 1,
            inputs: prevouts
                .iter()
                .map(|p| TxIn {
                    prevout: *p,
                    unlock: Script::new(vec![tag]),
                    sequence: u32::MAX,
                })
                .collect(),
            outputs: vec![TxOut {
                value: Amount::from_units(1000).unwrap(),
                lock: Script::new(vec![tag]),
            }],
            lock_time: 0,
            payload: None,
        };
        let fee = Amount::from_units(fee).unwrap();
        MempoolEntry {
            txid: tx.txid(),
            tx,
            size,
            fee,
            fee_rate: fee_rate(fee, size),
            time: 0,
            height: 0,
            spent: vec![],
        }
    }

    fn op(n: u8) -> OutPoint {
        OutPoint::new(Hash256([n; 32]), 0)
    }

    #[test]
    fn min_fee_enforced() {
        let mut m = Mempool::new(1 << 20, 1000);
        assert!(matches!(
            m.insert(entry(&[op(1)], 10, 200, 1)),
            Err(MempoolError::FeeTooLow { .. })
        ));
        assert!(m.insert(entry(&[op(1)], 1000, 200, 1)).is_ok());
    }

    #[test]
    fn replacement_needs_more_fee() {
        let mut m = Mempool::new(1 << 20, 1000);
        let a = entry(&[op(1)], 1000, 200, 1);
        let a_id = a.txid;
        m.insert(a).unwrap();
        // Same fee: rejected, the original stays.
        assert!(matches!(
            m.insert(entry(&[op(1)], 1000, 200, 2)),
            Err(MempoolError::InsufficientReplacementFee { .. })
        ));
        assert!(m.contains(&a_id));
        // Higher fee (covers old fee + relay for its own size): replaces.
        let b = entry(&[op(1)], 1300, 200, 3);
        let b_id = b.txid;
        assert_eq!(m.insert(b).unwrap(), vec![a_id]);
        assert!(m.contains(&b_id) && !m.contains(&a_id));
        assert_eq!(m.spender(&op(1)), Some(b_id));
    }

    #[test]
    fn replacement_evicts_descendants() {
        let mut m = Mempool::new(1 << 20, 1000);
        let parent = entry(&[op(1)], 1000, 200, 1);
        let pid = parent.txid;
        m.insert(parent).unwrap();
        let child = entry(&[OutPoint::new(pid, 0)], 1000, 200, 2);
        m.insert(child).unwrap();
        assert_eq!(m.len(), 2);
        let replacement = entry(&[op(1)], 5000, 200, 3);
        assert_eq!(m.insert(replacement).unwrap().len(), 2);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn cap_evicts_lowest_fee_rate() {
        let mut m = Mempool::new(500, 1000);
        let low = entry(&[op(1)], 300, 200, 1);
        let low_id = low.txid;
        m.insert(low).unwrap();
        m.insert(entry(&[op(2)], 1000, 200, 2)).unwrap();
        // A third that pays more pushes out the cheapest.
        let removed = m.insert(entry(&[op(3)], 2000, 200, 3)).unwrap();
        assert_eq!(removed, vec![low_id]);
        assert!(m.total_size() <= 500);
        // One that pays less than everything left is refused.
        assert!(matches!(
            m.insert(entry(&[op(4)], 250, 200, 4)),
            Err(MempoolError::MempoolFull)
        ));
    }

    #[test]
    fn template_orders_parents_first() {
        let mut m = Mempool::new(1 << 20, 1000);
        let parent = entry(&[op(1)], 1000, 200, 1);
        let pid = parent.txid;
        m.insert(parent).unwrap();
        m.insert(entry(&[OutPoint::new(pid, 0)], 9000, 200, 2))
            .unwrap();
        let sel = m.select_for_block(1 << 20);
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0].txid, pid);
        assert_eq!(m.select_for_block(300).len(), 1);
    }

    #[test]
    fn ancestors_and_direct_spenders() {
        let mut mp = Mempool::new(1 << 20, 0);
        let parent = entry(&[OutPoint::new(Hash256([1; 32]), 0)], 1000, 100, 1);
        let child = entry(&[OutPoint::new(parent.txid, 0)], 1000, 100, 2);
        let grandchild = entry(&[OutPoint::new(child.txid, 0)], 1000, 100, 3);
        let (p, c, g) = (parent.txid, child.txid, grandchild.txid);
        for e in [parent, child, grandchild] {
            mp.insert(e).expect("inserted");
        }
        assert_eq!(mp.ancestors(&g), HashSet::from([p, c]));
        assert!(mp.ancestors(&p).is_empty());
        assert_eq!(mp.spent_by(&p), vec![c]);
        assert!(mp.spent_by(&g).is_empty());
        assert_eq!(mp.with_descendants([p]).len(), 3);
    }
}
