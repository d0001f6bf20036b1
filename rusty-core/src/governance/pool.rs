//! Votes waiting to be mined. A vote pays no fee, so it does not compete
//! for the mempool's fee-ordered space: it waits here, checked against the
//! tip when it arrives and again when a block is built, and leaves when a
//! block carries it or its window closes. Consensus bounds the rate (one
//! vote per masternode and proposal per block, the cooldown, the window),
//! and the pool is capped.

use std::collections::{HashMap, HashSet};

use rusty_shared_types::{governance::VoteBatch, ChainParams, Hash256, Payload, Transaction};
use rusty_storage::Database;

use super::{GovState, VoteKey};
use crate::{chain::ChainError, masternode::MnState};

/// Most votes the pool holds (far more than one cycle of a large list
/// voting on every open proposal needs at once).
pub const MAX_POOLED_VOTES: usize = 50_000;

/// A vote transaction the pool keeps.
#[derive(Debug, Clone)]
struct Pooled {
    tx: Transaction,
    vote: VoteBatch,
    /// The voting key the signature was verified with on entry.
    voting_key: [u8; 32],
}

impl Pooled {
    /// Still minable at `height`: the rules without the signature, which
    /// was verified on entry against a voting key that has not changed.
    fn still_valid(
        &self,
        params: &ChainParams,
        db: &Database,
        gov: &GovState,
        mn: &MnState,
        height: u64,
    ) -> bool {
        mn.get(&self.vote.pro_tx_hash)
            .is_some_and(|e| e.voting_key == self.voting_key)
            && gov
                .check_vote_with(params, db, mn, &self.vote, height, false)
                .is_ok()
    }
}

/// Votes waiting to be mined, by txid.
#[derive(Debug, Default)]
pub struct VotePool {
    votes: HashMap<Hash256, Pooled>,
    /// (proposal, masternode) pairs with a pooled vote.
    pairs: HashMap<VoteKey, Hash256>,
}

/// Why the pool refused a vote.
#[derive(Debug, thiserror::Error)]
pub enum VotePoolError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("vote transaction {0} is already waiting to be mined")]
    AlreadyKnown(Hash256),
    #[error("the vote pool is full ({MAX_POOLED_VOTES} votes)")]
    Full,
    /// Another vote of the pair waits: a policy refusal, not the sender's
    /// fault (it may have seen the other vote first).
    #[error(
        "vote transaction {waiting} for the same masternode and proposal is waiting to be mined"
    )]
    Conflict { waiting: Hash256 },
}

fn pair_keys(vote: &VoteBatch) -> impl Iterator<Item = VoteKey> + '_ {
    vote.votes.iter().map(|(proposal, _)| VoteKey {
        proposal: *proposal,
        masternode: vote.pro_tx_hash,
    })
}

impl VotePool {
    pub fn len(&self) -> usize {
        self.votes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.votes.is_empty()
    }

    pub fn contains(&self, txid: &Hash256) -> bool {
        self.votes.contains_key(txid)
    }

    pub fn get(&self, txid: &Hash256) -> Option<&Transaction> {
        self.votes.get(txid).map(|p| &p.tx)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.votes.values().map(|p| &p.tx)
    }

    /// Checks a vote transaction against the tip (for the next block at
    /// `height`) and keeps it. A vote for a pair that already has one
    /// waiting is refused as the block would refuse it.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        params: &ChainParams,
        db: &Database,
        gov: &GovState,
        mn: &MnState,
        tx: Transaction,
        txid: Hash256,
        height: u64,
    ) -> Result<(), VotePoolError> {
        let Some(Payload::Vote(vote)) = &tx.payload else {
            return Ok(());
        };
        if self.votes.contains_key(&txid) {
            return Err(VotePoolError::AlreadyKnown(txid));
        }
        if self.votes.len() >= MAX_POOLED_VOTES {
            return Err(VotePoolError::Full);
        }
        for key in pair_keys(vote) {
            if let Some(waiting) = self.pairs.get(&key) {
                return Err(VotePoolError::Conflict { waiting: *waiting });
            }
        }
        gov.check_vote(params, db, mn, vote, height)?;
        let vote = vote.clone();
        let voting_key = mn
            .get(&vote.pro_tx_hash)
            .map(|e| e.voting_key)
            .unwrap_or_default();
        for key in pair_keys(&vote) {
            self.pairs.insert(key, txid);
        }
        self.votes.insert(
            txid,
            Pooled {
                tx,
                vote,
                voting_key,
            },
        );
        Ok(())
    }

    fn remove(&mut self, txid: &Hash256) {
        if let Some(p) = self.votes.remove(txid) {
            for key in pair_keys(&p.vote) {
                if self.pairs.get(&key) == Some(txid) {
                    self.pairs.remove(&key);
                }
            }
        }
    }

    /// After the tip moved: drop the votes a block carried and those that
    /// can no longer be mined at `next_height` (window passed, masternode
    /// gone, proposal closed…).
    pub fn revalidate(
        &mut self,
        params: &ChainParams,
        db: &Database,
        gov: &GovState,
        mn: &MnState,
        next_height: u64,
    ) {
        let stale: Vec<Hash256> = self
            .votes
            .iter()
            .filter(|(_, p)| !p.still_valid(params, db, gov, mn, next_height))
            .map(|(txid, _)| *txid)
            .collect();
        for txid in stale {
            self.remove(&txid);
        }
    }

    /// Votes for a block at `height`: each still valid, no two for one
    /// pair, at most `max_bytes` of them encoded, oldest vote first.
    pub fn select_for_block(
        &self,
        params: &ChainParams,
        db: &Database,
        gov: &GovState,
        mn: &MnState,
        height: u64,
        max_bytes: usize,
    ) -> Vec<Transaction> {
        let mut pooled: Vec<&Pooled> = self.votes.values().collect();
        pooled.sort_by_key(|p| (p.vote.made_at, p.vote.pro_tx_hash));
        let mut used: HashSet<VoteKey> = HashSet::new();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for p in pooled {
            // The smallest vote transaction is about 150 bytes.
            if max_bytes.saturating_sub(bytes) < 150 {
                break;
            }
            let size = p.tx.size();
            if bytes.saturating_add(size) > max_bytes {
                continue;
            }
            if pair_keys(&p.vote).any(|k| used.contains(&k)) {
                continue;
            }
            if !p.still_valid(params, db, gov, mn, height) {
                continue;
            }
            used.extend(pair_keys(&p.vote));
            bytes = bytes.saturating_add(size);
            out.push(p.tx.clone());
        }
        out
    }
}
