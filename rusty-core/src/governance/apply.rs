//! Connecting and disconnecting a block's governance effects: the
//! treasury's share and a superblock's payouts, parameter activation,
//! proposals and votes, masternodes entering or leaving the list (their
//! votes stop or start counting), the tally at the snapshot, and the
//! pruning of finished proposals. Every change is recorded in a
//! [`GovUndo`] first, so an invalid block leaves the state as it was and
//! a disconnected one restores it exactly.

use std::collections::{BTreeMap, HashSet};

use rusty_shared_types::{
    encoding::{write_option, write_vec, Decode, DecodeResult, Encode, Reader},
    governance::{
        ParamChange, Proposal, ProposalKind, VoteBatch, VoteOutcome, MAX_PAYMENT_SUPERBLOCKS,
    },
    Amount, ChainParams, Hash256, Payload, Transaction,
};
use rusty_storage::Database;

use super::{
    check_bounds, BlockRewards, BoundsError, DecidedPayment, Decision, GovState, GovernanceParams,
    GovernedValues, LiveProposal, Tally, VoteKey, VoteRecord,
};
use crate::{chain::ChainError, masternode::MnState, validation::ValidationError};

/// How many cycles ahead a proposal's first superblock may be.
pub const MAX_LEAD_CYCLES: u64 = 12;

/// Why a governance transaction (or a superblock's coinbase) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovError {
    #[error(
        "a proposal must burn the proposal fee {needed} in OP_RETURN outputs; it burns {paid}"
    )]
    ProposalFee { needed: Amount, paid: Amount },
    #[error("proposal: {0}")]
    BadProposal(String),
    #[error("parameter change out of bounds: {0}")]
    OutOfBounds(#[from] BoundsError),
    #[error("a vote transaction has no inputs, no outputs, lock time 0 and 1 to 64 votes on distinct proposals in ascending order")]
    BadVoteShape,
    #[error("masternode {0} is not on the list (or not valid) and cannot vote")]
    NotOnList(Hash256),
    #[error("votes made at height {made_at} are valid in blocks {first}..={last}, not {height}")]
    VoteWindow {
        made_at: u64,
        first: u64,
        last: u64,
        height: u64,
    },
    #[error("the vote is not signed by masternode {0}'s voting key")]
    BadVoteSignature(Hash256),
    #[error("vote for unknown proposal {0}")]
    UnknownProposal(Hash256),
    #[error("proposal {0} is waiting in the mempool: vote once a block carries it")]
    ProposalNotMined(Hash256),
    #[error("voting on proposal {proposal} closed at height {closed}")]
    VotingClosed { proposal: Hash256, closed: u64 },
    #[error("masternode {masternode} votes on proposal {proposal} twice in one block")]
    DuplicateVote {
        masternode: Hash256,
        proposal: Hash256,
    },
    #[error("a vote made at {made_at} is older than the counted one, made at {counted}")]
    StaleVote { made_at: u64, counted: u64 },
    #[error("masternode {masternode} may change its vote on {proposal} from height {from}")]
    VoteCooldown {
        masternode: Hash256,
        proposal: Hash256,
        from: u64,
    },
    #[error("the superblock's coinbase must end with exactly the treasury payouts ({0} outputs)")]
    BadTreasuryOutputs(usize),
    #[error("treasury arithmetic out of range")]
    TreasuryRange,
}

impl GovError {
    /// Bitcoin-style short reject reason.
    pub fn reject_reason(&self) -> &'static str {
        use GovError::*;
        match self {
            ProposalFee { .. } => "bad-gov-fee",
            BadProposal(_) => "bad-gov-proposal",
            OutOfBounds(_) => "bad-gov-param",
            BadVoteShape => "bad-gov-vote",
            NotOnList(_) => "bad-gov-vote-masternode",
            VoteWindow { .. } => "bad-gov-vote-window",
            BadVoteSignature(_) => "bad-gov-vote-sig",
            UnknownProposal(_) | ProposalNotMined(_) => "bad-gov-vote-proposal",
            VotingClosed { .. } => "bad-gov-vote-closed",
            DuplicateVote { .. } => "bad-gov-vote-duplicate",
            VoteCooldown { .. } => "bad-gov-vote-cooldown",
            StaleVote { .. } => "bad-gov-vote-stale",
            BadTreasuryOutputs(_) => "bad-cb-treasury",
            TreasuryRange => "bad-gov-treasury",
        }
    }

    /// Whether the error depends on the receiver's chain (an honest peer on
    /// another tip can send such a transaction).
    pub fn depends_on_chain(&self) -> bool {
        use GovError::*;
        matches!(
            self,
            NotOnList(_)
                | VoteWindow { .. }
                | UnknownProposal(_)
                | ProposalNotMined(_)
                | VotingClosed { .. }
                | VoteCooldown { .. }
                | StaleVote { .. }
                // The voting key may have changed since it was signed.
                | BadVoteSignature(_)
                | OutOfBounds(BoundsError::ShareStep { .. } | BoundsError::Step { .. })
                | BadProposal(_)
        )
    }
}

fn invalid(e: GovError) -> ChainError {
    ChainError::Invalid(ValidationError::Governance(e))
}

/// What a block changed, to disconnect it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GovUndo {
    pub treasury: Amount,
    pub values: Option<GovernedValues>,
    pub decision: Option<Option<Decision>>,
    /// Tallies before the block, of proposals it changed.
    pub tallies: Vec<(Hash256, Tally)>,
    /// Vote records before the block, of pairs it changed.
    pub votes: Vec<(VoteKey, Option<VoteRecord>)>,
    /// Proposals the block added.
    pub added: Vec<Hash256>,
    /// Proposals the block finished (a superblock).
    pub pruned: Vec<LiveProposal>,
}

/// The governance facts of a block being connected.
#[derive(Debug)]
pub struct GovBlock<'a> {
    pub params: &'a ChainParams,
    pub db: &'a Database,
    /// The masternode list after the block.
    pub mn: &'a MnState,
    /// Masternodes the block touched, with whether each was valid before.
    pub mn_before: &'a [(Hash256, bool)],
    pub txs: &'a [Transaction],
    pub txids: &'a [Hash256],
    pub height: u64,
    /// What the block pays, as [`GovState::rewards`] gave it for `height`
    /// (the coinbase was checked against it).
    pub rewards: &'a BlockRewards,
}

fn add_vote(t: &mut Tally, outcome: VoteOutcome, count: bool) {
    let slot = match outcome {
        VoteOutcome::Yes => &mut t.yes,
        VoteOutcome::No => &mut t.no,
        VoteOutcome::Abstain => &mut t.abstain,
    };
    *slot = if count {
        slot.saturating_add(1)
    } else {
        slot.saturating_sub(1)
    };
}

impl GovState {
    /// Checks a proposal for inclusion at `height` (fee aside: see
    /// `validation::check_tx_inputs`).
    pub fn check_proposal(
        &self,
        params: &ChainParams,
        p: &Proposal,
        height: u64,
    ) -> Result<(), GovError> {
        let g = GovernanceParams::of(params.network);
        if p.title.trim().is_empty() {
            return Err(GovError::BadProposal("the title is empty".into()));
        }
        let first = p.first_superblock;
        if !g.is_superblock(first) {
            return Err(GovError::BadProposal(format!(
                "first superblock {first} is not a superblock height (multiples of {})",
                g.superblock_cycle
            )));
        }
        if g.snapshot_height(first) <= height {
            return Err(GovError::BadProposal(format!(
                "superblock {first} is too close: its tally is taken at {}, and this block is {height}",
                g.snapshot_height(first)
            )));
        }
        let lead = g
            .next_superblock(height)
            .saturating_add(MAX_LEAD_CYCLES.saturating_mul(g.superblock_cycle));
        if first > lead {
            return Err(GovError::BadProposal(format!(
                "first superblock {first} is more than {MAX_LEAD_CYCLES} cycles ahead"
            )));
        }
        match &p.kind {
            ProposalKind::TreasuryPayment { payee, amount } => {
                if p.superblocks == 0 || p.superblocks > MAX_PAYMENT_SUPERBLOCKS {
                    return Err(GovError::BadProposal(format!(
                        "a payment runs 1 to {MAX_PAYMENT_SUPERBLOCKS} superblocks, not {}",
                        p.superblocks
                    )));
                }
                if *amount == 0 || Amount::from_units(*amount).is_err() {
                    return Err(GovError::BadProposal(format!(
                        "payment amount {amount} is zero or out of range"
                    )));
                }
                if payee.as_bytes().is_empty() || payee.is_unspendable() {
                    return Err(GovError::BadProposal(
                        "the payee script is unspendable".into(),
                    ));
                }
            }
            ProposalKind::ParamChange(change) => {
                if p.superblocks != 1 {
                    return Err(GovError::BadProposal(
                        "a parameter change is voted for one superblock".into(),
                    ));
                }
                check_bounds(change, &self.values_at(height))?;
            }
        }
        Ok(())
    }

    /// Checks a vote for inclusion at `height` against the list `mn`;
    /// returns the record each of its votes replaces. Duplicates within a
    /// block are the caller's check.
    pub fn check_vote(
        &self,
        params: &ChainParams,
        db: &Database,
        mn: &MnState,
        v: &VoteBatch,
        height: u64,
    ) -> Result<Vec<Option<VoteRecord>>, ChainError> {
        self.check_vote_with(params, db, mn, v, height, true)
    }

    /// [`GovState::check_vote`], with the signature checked or not: the
    /// vote pool verified it on entry and re-checks only that the
    /// masternode's voting key is unchanged.
    pub fn check_vote_with(
        &self,
        params: &ChainParams,
        db: &Database,
        mn: &MnState,
        v: &VoteBatch,
        height: u64,
        verify_signature: bool,
    ) -> Result<Vec<Option<VoteRecord>>, ChainError> {
        let g = GovernanceParams::of(params.network);
        let entry = mn
            .get(&v.pro_tx_hash)
            .filter(|e| e.is_valid())
            .ok_or_else(|| invalid(GovError::NotOnList(v.pro_tx_hash)))?;
        let first = v.made_at.saturating_add(1);
        let last = v.made_at.saturating_add(g.vote_window);
        if !(first..=last).contains(&height) {
            return Err(invalid(GovError::VoteWindow {
                made_at: v.made_at,
                first,
                last,
                height,
            }));
        }
        if verify_signature {
            let msg = v.signing_hash(params.network.name());
            rusty_crypto::ed25519::verify(
                &rusty_crypto::ed25519::PublicKey(entry.voting_key),
                &msg.0,
                &rusty_crypto::ed25519::Signature(v.signature),
            )
            .map_err(|_| invalid(GovError::BadVoteSignature(v.pro_tx_hash)))?;
        }
        let mut previous = Vec::with_capacity(v.votes.len());
        for (proposal, _) in &v.votes {
            let p = self
                .proposals
                .get(proposal)
                .ok_or_else(|| invalid(GovError::UnknownProposal(*proposal)))?;
            let closed = p.voting_closes(&g);
            if height > closed {
                return Err(invalid(GovError::VotingClosed {
                    proposal: *proposal,
                    closed,
                }));
            }
            let prev = self.vote(db, proposal, &v.pro_tx_hash)?;
            if let Some(prev) = prev {
                // A vote newer than the counted one only: an old signed vote
                // cannot be replayed over a later change of mind.
                if v.made_at <= prev.made_at {
                    return Err(invalid(GovError::StaleVote {
                        made_at: v.made_at,
                        counted: prev.made_at,
                    }));
                }
                let from = prev.height.saturating_add(g.vote_cooldown);
                if height < from {
                    return Err(invalid(GovError::VoteCooldown {
                        masternode: v.pro_tx_hash,
                        proposal: *proposal,
                        from,
                    }));
                }
            }
            previous.push(prev);
        }
        Ok(previous)
    }

    /// Applies a block's governance effects. On error the state is
    /// unchanged.
    pub fn apply_block(&mut self, b: &GovBlock<'_>) -> Result<GovUndo, ChainError> {
        let mut undo = GovUndo {
            treasury: self.treasury,
            ..GovUndo::default()
        };
        match self.apply_inner(b, &mut undo) {
            Ok(()) => Ok(undo),
            Err(e) => {
                self.undo(undo);
                Err(e)
            }
        }
    }

    /// Records `proposal`'s tally before its first change in the block;
    /// `saved` holds the proposals already recorded.
    fn save_tally(&self, proposal: &Hash256, undo: &mut GovUndo, saved: &mut HashSet<Hash256>) {
        if let Some(p) = self.proposals.get(proposal) {
            if saved.insert(*proposal) {
                undo.tallies.push((*proposal, p.tally));
            }
        }
    }

    fn apply_inner(&mut self, b: &GovBlock<'_>, undo: &mut GovUndo) -> Result<(), ChainError> {
        let g = GovernanceParams::of(b.params.network);
        let h = b.height;
        // 1. The block's rewards: a superblock's changes activate, the
        //    treasury takes its share and pays the superblock's payouts.
        let rewards = b.rewards;
        if rewards.values != self.values {
            undo.values = Some(self.values);
            self.values = rewards.values;
        }
        self.treasury = self
            .treasury
            .checked_add(rewards.treasury_share)
            .and_then(|t| t.checked_sub(rewards.payout_total()))
            .map_err(|_| invalid(GovError::TreasuryRange))?;

        // 2. Masternodes that joined or left the valid set: their votes
        //    start or stop counting.
        let mut saved: HashSet<Hash256> = HashSet::new();
        for (pro, was_valid) in b.mn_before {
            let now_valid = b.mn.get(pro).is_some_and(|e| e.is_valid());
            if now_valid == *was_valid {
                continue;
            }
            let live: Vec<Hash256> = self.proposals.keys().copied().collect();
            for proposal in live {
                if let Some(v) = self.vote(b.db, &proposal, pro)? {
                    self.save_tally(&proposal, undo, &mut saved);
                    if let Some(p) = self.proposals.get_mut(&proposal) {
                        add_vote(&mut p.tally, v.outcome, now_valid);
                    }
                }
            }
        }

        // 3. Proposals and votes, in block order.
        let mut voted: HashSet<VoteKey> = HashSet::new();
        // Every vote's (voting key, message, signature), verified in one
        // batch below, and its masternode, to name a forger.
        let mut signatures = Vec::new();
        let mut signers = Vec::new();
        for (tx, txid) in b.txs.iter().zip(b.txids).skip(1) {
            match &tx.payload {
                Some(Payload::Proposal(p)) => {
                    self.check_proposal(b.params, p, h).map_err(invalid)?;
                    self.proposals.insert(
                        *txid,
                        LiveProposal {
                            txid: *txid,
                            proposal: p.clone(),
                            height: h,
                            tally: Tally::default(),
                        },
                    );
                    undo.added.push(*txid);
                }
                Some(Payload::Vote(v)) => {
                    for (proposal, _) in &v.votes {
                        let key = VoteKey {
                            proposal: *proposal,
                            masternode: v.pro_tx_hash,
                        };
                        if !voted.insert(key) {
                            return Err(invalid(GovError::DuplicateVote {
                                masternode: v.pro_tx_hash,
                                proposal: *proposal,
                            }));
                        }
                    }
                    // The rules now, the signatures in one batch below.
                    let previous = self.check_vote_with(b.params, b.db, b.mn, v, h, false)?;
                    if let Some(e) = b.mn.get(&v.pro_tx_hash) {
                        signatures.push((
                            rusty_crypto::ed25519::PublicKey(e.voting_key),
                            v.signing_hash(b.params.network.name()).0,
                            rusty_crypto::ed25519::Signature(v.signature),
                        ));
                        signers.push(v.pro_tx_hash);
                    }
                    for ((proposal, outcome), prev) in v.votes.iter().zip(previous) {
                        let key = VoteKey {
                            proposal: *proposal,
                            masternode: v.pro_tx_hash,
                        };
                        undo.votes.push((key, prev));
                        self.save_tally(proposal, undo, &mut saved);
                        if let Some(p) = self.proposals.get_mut(proposal) {
                            if let Some(prev) = prev {
                                add_vote(&mut p.tally, prev.outcome, false);
                            }
                            add_vote(&mut p.tally, *outcome, true);
                        }
                        self.vote_cache.insert(
                            key,
                            Some(VoteRecord {
                                outcome: *outcome,
                                height: h,
                                made_at: v.made_at,
                            }),
                        );
                    }
                }
                _ => {}
            }
        }

        if let Some(bad) = rusty_crypto::ed25519::first_invalid(&signatures) {
            let forger = signers.get(bad).copied().unwrap_or_default();
            return Err(invalid(GovError::BadVoteSignature(forger)));
        }

        // 4. The snapshot of the next superblock: the tally decides.
        let next = g.next_superblock(h);
        if h > 0 && g.snapshot_height(next) == h {
            undo.decision.get_or_insert_with(|| self.decision.clone());
            self.decision = Some(self.decide(&g, next, b.mn.valid_count() as u64));
        }

        // 5. A superblock finishes the proposals whose last superblock it is.
        if g.is_superblock(h) {
            let done: Vec<Hash256> = self
                .proposals
                .values()
                .filter(|p| p.last_superblock(&g) <= h)
                .map(|p| p.txid)
                .collect();
            for txid in done {
                if let Some(p) = self.proposals.remove(&txid) {
                    undo.pruned.push(p);
                }
            }
            if self.decision.as_ref().is_some_and(|d| d.superblock <= h) {
                undo.decision.get_or_insert_with(|| self.decision.clone());
                self.decision = None;
            }
        }
        Ok(())
    }

    /// The tally for the superblock at `superblock`, over the live
    /// proposals that cover it: O(proposals), the counts are kept as votes
    /// arrive.
    fn decide(&self, g: &GovernanceParams, superblock: u64, eligible: u64) -> Decision {
        let mut payments = Vec::new();
        let mut changes: BTreeMap<&'static str, Vec<(Hash256, i128, ParamChange)>> =
            BTreeMap::new();
        for p in self.proposals.values().filter(|p| p.covers(g, superblock)) {
            match &p.proposal.kind {
                ProposalKind::TreasuryPayment { payee, amount } => {
                    if !p.tally.funds(eligible, g.min_quorum) {
                        continue;
                    }
                    let Ok(amount) = Amount::from_units(*amount) else {
                        continue;
                    };
                    payments.push(DecidedPayment {
                        proposal: p.txid,
                        net_yes: i64::try_from(p.tally.net_yes()).unwrap_or(i64::MIN),
                        payee: payee.clone(),
                        amount,
                    });
                }
                ProposalKind::ParamChange(c) => {
                    // Bounds are checked again here (and at activation):
                    // a change that no longer fits never wins over one
                    // that does.
                    if p.tally.changes_param(eligible) && check_bounds(c, &self.values).is_ok() {
                        changes
                            .entry(c.name())
                            .or_default()
                            .push((p.txid, p.tally.net_yes(), *c));
                    }
                }
            }
        }
        super::payment_order(&mut payments);
        let changes = changes
            .values()
            .filter_map(|c| super::winning_change(c))
            .map(|(h, _, c)| (*h, *c))
            .collect();
        Decision {
            superblock,
            eligible,
            payments,
            changes,
        }
    }

    /// Reverts a block's changes (or a partial application's).
    pub fn undo(&mut self, undo: GovUndo) {
        for p in undo.pruned {
            self.proposals.insert(p.txid, p);
        }
        for txid in &undo.added {
            self.proposals.remove(txid);
        }
        for (key, prev) in undo.votes.into_iter().rev() {
            self.vote_cache.insert(key, prev);
        }
        for (txid, tally) in undo.tallies {
            if let Some(p) = self.proposals.get_mut(&txid) {
                p.tally = tally;
            }
        }
        if let Some(d) = undo.decision {
            self.decision = d;
        }
        if let Some(v) = undo.values {
            self.values = v;
        }
        self.treasury = undo.treasury;
    }
}

// ---- the undo record's encoding ----

const MAX_UNDO_ITEMS: usize = 1 << 22;

impl Encode for GovUndo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.treasury.encode_to(out);
        write_option(out, &self.values);
        match &self.decision {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                write_option(out, d);
            }
        }
        rusty_shared_types::encoding::write_compact_size(out, self.tallies.len() as u64);
        for (h, t) in &self.tallies {
            h.encode_to(out);
            t.encode_to(out);
        }
        rusty_shared_types::encoding::write_compact_size(out, self.votes.len() as u64);
        for (k, v) in &self.votes {
            k.proposal.encode_to(out);
            k.masternode.encode_to(out);
            write_option(out, v);
        }
        write_vec(out, &self.added);
        write_vec(out, &self.pruned);
    }
}

impl Decode for GovUndo {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let treasury = Amount::decode_from(r)?;
        let values = r.option("governed values")?;
        let decision = match r.u8()? {
            0 => None,
            1 => Some(r.option("decision")?),
            t => {
                return Err(rusty_shared_types::DecodeError::InvalidTag {
                    what: "decision undo",
                    tag: u64::from(t),
                })
            }
        };
        let n = r.length("tally undo", MAX_UNDO_ITEMS, 56)?;
        let mut tallies = Vec::with_capacity(n);
        for _ in 0..n {
            tallies.push((Hash256::decode_from(r)?, Tally::decode_from(r)?));
        }
        let n = r.length("vote undo", MAX_UNDO_ITEMS, 65)?;
        let mut votes = Vec::with_capacity(n);
        for _ in 0..n {
            let key = VoteKey {
                proposal: Hash256::decode_from(r)?,
                masternode: Hash256::decode_from(r)?,
            };
            votes.push((key, r.option("vote record")?));
        }
        Ok(GovUndo {
            treasury,
            values,
            decision,
            tallies,
            votes,
            added: r.vec("added proposals", MAX_UNDO_ITEMS, 32)?,
            pruned: r.vec("pruned proposals", MAX_UNDO_ITEMS, 64)?,
        })
    }
}
