//! The governance state at the active tip: the treasury balance, the
//! governed parameter values in force, the live proposals with their
//! running tallies, and the decision taken at the last snapshot.
//!
//! Votes themselves live in the `gov_votes` table (one record per
//! masternode and proposal, the last vote counted), behind a write cache
//! flushed with the coin cache; what stays in memory is small (a few
//! hundred bytes per live proposal), so connecting a superblock costs
//! O(proposals), never O(votes).

use std::collections::{BTreeMap, HashMap};

use rusty_shared_types::{
    encoding::{write_option, write_vec, Decode, DecodeError, DecodeResult, Encode, Reader},
    governance::{ParamChange, Proposal, VoteOutcome},
    Amount, ChainParams, Hash256, Script, TxOut,
};
use rusty_storage::{Database, StorageError, TableKey, WriteBatch};

use super::{GovernanceParams, GovernedValues, Tally};
use crate::tables::{GovVotes, META_GOV_STATE};

/// A masternode's counted vote on one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteRecord {
    pub outcome: VoteOutcome,
    /// The height of the block that carried it (the cooldown runs from it).
    pub height: u64,
    /// The height the vote was made at: a later vote must be newer.
    pub made_at: u64,
}

/// Key of a vote record: the proposal, then the masternode, so one
/// proposal's votes are one key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoteKey {
    pub proposal: Hash256,
    pub masternode: Hash256,
}

/// A proposal that is open or still to be paid, with the votes counted
/// for it so far (only masternodes valid now count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveProposal {
    /// The proposal transaction's id, which names the proposal.
    pub txid: Hash256,
    pub proposal: Proposal,
    /// Height of the block that carried it.
    pub height: u64,
    pub tally: Tally,
}

impl LiveProposal {
    /// The proposal's last superblock.
    pub fn last_superblock(&self, g: &GovernanceParams) -> u64 {
        let extra = u64::from(self.proposal.superblocks.saturating_sub(1));
        self.proposal
            .first_superblock
            .saturating_add(extra.saturating_mul(g.superblock_cycle))
    }

    /// Whether the proposal is voted for the superblock at `superblock`.
    pub fn covers(&self, g: &GovernanceParams, superblock: u64) -> bool {
        superblock >= self.proposal.first_superblock
            && superblock <= self.last_superblock(g)
            && (superblock - self.proposal.first_superblock)
                .is_multiple_of(g.superblock_cycle.max(1))
    }

    /// The last height a vote for it may be mined at: the snapshot of its
    /// last superblock.
    pub fn voting_closes(&self, g: &GovernanceParams) -> u64 {
        g.snapshot_height(self.last_superblock(g))
    }
}

/// A payment the superblock makes (or a passing payment it considers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedPayment {
    pub proposal: Hash256,
    pub net_yes: i64,
    pub payee: Script,
    pub amount: Amount,
}

/// What the tally at a snapshot decided for the next superblock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub superblock: u64,
    /// Masternodes valid at the snapshot.
    pub eligible: u64,
    /// Passing payments, in payment order (net yes, then hash); the
    /// superblock pays those that fit its budget.
    pub payments: Vec<DecidedPayment>,
    /// The winning change of each parameter, activating at the superblock.
    pub changes: Vec<(Hash256, ParamChange)>,
}

/// What a block at some height pays and to whom, by the governance state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRewards {
    /// The values in force for the block (a superblock's activated ones).
    pub values: GovernedValues,
    /// The subsidy at the height.
    pub subsidy: Amount,
    /// The masternode payee's share.
    pub masternode: Amount,
    /// The treasury's share, added to the balance.
    pub treasury_share: Amount,
    /// A superblock's payments, in the order its coinbase ends with them.
    pub payouts: Vec<DecidedPayment>,
}

impl BlockRewards {
    /// What the coinbase may create besides fees and treasury payouts:
    /// the subsidy without the treasury share.
    pub fn coinbase_subsidy(&self) -> Amount {
        self.subsidy
            .checked_sub(self.treasury_share)
            .unwrap_or(Amount::ZERO)
    }

    /// The outputs a superblock's coinbase ends with.
    pub fn treasury_outputs(&self) -> Vec<TxOut> {
        self.payouts
            .iter()
            .map(|p| TxOut {
                value: p.amount,
                lock: p.payee.clone(),
            })
            .collect()
    }

    /// What the masternode-list rules check the coinbase against.
    pub fn coinbase_reward(&self) -> crate::masternode::CoinbaseReward {
        crate::masternode::CoinbaseReward {
            masternode: self.masternode,
            treasury_outputs: self.payouts.len(),
        }
    }

    pub fn payout_total(&self) -> Amount {
        Amount::checked_sum(self.payouts.iter().map(|p| p.amount)).unwrap_or(Amount::MAX)
    }
}

/// `bp` basis points of `amount`, rounded down.
pub fn basis_points(amount: Amount, bp: u16) -> Amount {
    let part = u128::from(amount.units()) * u128::from(bp) / 10_000;
    // At most `amount` for bp ≤ 10,000 (the bounds guarantee it).
    Amount::from_units(u64::try_from(part).unwrap_or(0)).unwrap_or(Amount::ZERO)
}

/// The governance state at the active tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovState {
    pub(super) treasury: Amount,
    pub(super) values: GovernedValues,
    pub(super) proposals: BTreeMap<Hash256, LiveProposal>,
    pub(super) decision: Option<Decision>,
    /// Vote records written since the last flush (`None`: deleted).
    pub(super) vote_cache: HashMap<VoteKey, Option<VoteRecord>>,
}

/// The values a network starts with (the genesis split in basis points).
pub fn initial_values(params: &ChainParams) -> GovernedValues {
    let s = params.masternode.reward_split;
    GovernedValues {
        reward_split_bp: [
            u16::from(s.miner) * 100,
            u16::from(s.masternode) * 100,
            u16::from(s.treasury) * 100,
        ],
        max_block_size: params.max_block_size as u64,
        min_relay_fee: params.min_relay_fee_per_kb,
    }
}

impl GovState {
    /// The state after the genesis block: its treasury share, the initial
    /// values, no proposals.
    pub fn genesis(params: &ChainParams) -> GovState {
        let values = initial_values(params);
        GovState {
            treasury: basis_points(params.subsidy(0), values.reward_split_bp[2]),
            values,
            proposals: BTreeMap::new(),
            decision: None,
            vote_cache: HashMap::new(),
        }
    }

    pub fn treasury(&self) -> Amount {
        self.treasury
    }

    pub fn values(&self) -> &GovernedValues {
        &self.values
    }

    pub fn proposals(&self) -> impl Iterator<Item = &LiveProposal> {
        self.proposals.values()
    }

    pub fn proposal(&self, txid: &Hash256) -> Option<&LiveProposal> {
        self.proposals.get(txid)
    }

    /// The decision of the last snapshot, until its superblock connects.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// The values in force at `height` (the tip's, or a superblock's after
    /// its decided changes activate).
    pub fn values_at(&self, height: u64) -> GovernedValues {
        let mut values = self.values;
        if let Some(d) = self.decision.as_ref().filter(|d| d.superblock == height) {
            for (_, change) in &d.changes {
                // Re-checked at activation: an earlier change may have moved
                // the value the step was measured from.
                if super::check_bounds(change, &values).is_ok() {
                    apply_change(&mut values, change);
                }
            }
        }
        values
    }

    /// What the block at `height` (the tip's child) pays.
    pub fn rewards(&self, params: &ChainParams, height: u64) -> BlockRewards {
        let g = GovernanceParams::of(params.network);
        let values = self.values_at(height);
        let subsidy = params.subsidy(height);
        let [_, mn_bp, treasury_bp] = values.reward_split_bp;
        let treasury_share = basis_points(subsidy, treasury_bp);
        let masternode = basis_points(subsidy, mn_bp);
        let payouts = match self.decision.as_ref() {
            Some(d) if d.superblock == height && g.is_superblock(height) => {
                let balance = self
                    .treasury
                    .checked_add(treasury_share)
                    .unwrap_or(self.treasury);
                super::select_payments(&d.payments, g.budget(balance))
            }
            _ => Vec::new(),
        };
        BlockRewards {
            values,
            subsidy,
            masternode,
            treasury_share,
            payouts,
        }
    }

    /// The vote of `masternode` on `proposal`, from the cache or the
    /// database.
    pub fn vote(
        &self,
        db: &Database,
        proposal: &Hash256,
        masternode: &Hash256,
    ) -> Result<Option<VoteRecord>, StorageError> {
        let key = VoteKey {
            proposal: *proposal,
            masternode: *masternode,
        };
        match self.vote_cache.get(&key) {
            Some(v) => Ok(*v),
            None => db.get::<GovVotes>(&key),
        }
    }

    /// Every counted vote on `proposal` (of masternodes valid or not), by
    /// masternode.
    pub fn votes_on(
        &self,
        db: &Database,
        proposal: &Hash256,
    ) -> Result<BTreeMap<Hash256, VoteRecord>, StorageError> {
        let start = VoteKey {
            proposal: *proposal,
            masternode: Hash256::ZERO,
        };
        let mut out = BTreeMap::new();
        for item in db.iter_from::<GovVotes>(&start) {
            let (key, record) = item?;
            if key.proposal != *proposal {
                break;
            }
            out.insert(key.masternode, record);
        }
        for (key, record) in &self.vote_cache {
            if key.proposal == *proposal {
                match record {
                    Some(r) => out.insert(key.masternode, *r),
                    None => out.remove(&key.masternode),
                };
            }
        }
        Ok(out)
    }

    /// Writes the cached votes and the state record into `batch`; the
    /// caller clears the cache with [`GovState::written`] once committed.
    pub fn write_to(&self, batch: &mut WriteBatch) {
        // In key order: RocksDB takes sorted inserts far faster.
        let mut cached: Vec<(&VoteKey, &Option<VoteRecord>)> = self.vote_cache.iter().collect();
        cached.sort_unstable_by_key(|(k, _)| **k);
        for (key, record) in cached {
            match record {
                Some(r) => batch.put::<GovVotes>(key, r),
                None => batch.delete::<GovVotes>(key),
            }
        }
        batch.put_meta(META_GOV_STATE, self.encode());
    }

    /// Vote records waiting for the next flush.
    pub fn cached_votes(&self) -> usize {
        self.vote_cache.len()
    }

    /// The cache was committed.
    pub fn written(&mut self) {
        self.vote_cache.clear();
    }
}

/// Sets the value `change` names.
pub(super) fn apply_change(values: &mut GovernedValues, change: &ParamChange) {
    match *change {
        ParamChange::RewardSplit {
            miner_bp,
            masternode_bp,
            treasury_bp,
        } => values.reward_split_bp = [miner_bp, masternode_bp, treasury_bp],
        ParamChange::MaxBlockSize(v) => values.max_block_size = v,
        ParamChange::MinRelayFee(v) => values.min_relay_fee = v,
    }
}

// ---- encodings (the state record, undo data and vote records) ----

impl TableKey for VoteKey {
    fn encode_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(64);
        k.extend_from_slice(&self.proposal.0);
        k.extend_from_slice(&self.masternode.0);
        k
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; 64] = bytes
            .try_into()
            .map_err(|_| DecodeError::InvalidValue("vote key length"))?;
        let mut proposal = [0u8; 32];
        let mut masternode = [0u8; 32];
        proposal.copy_from_slice(&b[..32]);
        masternode.copy_from_slice(&b[32..]);
        Ok(VoteKey {
            proposal: Hash256(proposal),
            masternode: Hash256(masternode),
        })
    }
}

fn outcome_from(tag: u8) -> DecodeResult<VoteOutcome> {
    match tag {
        1 => Ok(VoteOutcome::Yes),
        2 => Ok(VoteOutcome::No),
        3 => Ok(VoteOutcome::Abstain),
        t => Err(DecodeError::InvalidTag {
            what: "vote outcome",
            tag: u64::from(t),
        }),
    }
}

impl Encode for VoteRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.outcome.tag());
        self.height.encode_to(out);
        self.made_at.encode_to(out);
    }
}

impl Decode for VoteRecord {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(VoteRecord {
            outcome: outcome_from(r.u8()?)?,
            height: r.u64()?,
            made_at: r.u64()?,
        })
    }
}

impl Encode for Tally {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.yes.encode_to(out);
        self.no.encode_to(out);
        self.abstain.encode_to(out);
    }
}

impl Decode for Tally {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Tally {
            yes: r.u64()?,
            no: r.u64()?,
            abstain: r.u64()?,
        })
    }
}

impl Encode for GovernedValues {
    fn encode_to(&self, out: &mut Vec<u8>) {
        for bp in self.reward_split_bp {
            bp.encode_to(out);
        }
        self.max_block_size.encode_to(out);
        self.min_relay_fee.encode_to(out);
    }
}

impl Decode for GovernedValues {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GovernedValues {
            reward_split_bp: [r.u16()?, r.u16()?, r.u16()?],
            max_block_size: r.u64()?,
            min_relay_fee: r.u64()?,
        })
    }
}

impl Encode for LiveProposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.txid.encode_to(out);
        self.proposal.encode_to(out);
        self.height.encode_to(out);
        self.tally.encode_to(out);
    }
}

impl Decode for LiveProposal {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(LiveProposal {
            txid: Hash256::decode_from(r)?,
            proposal: Proposal::decode_from(r)?,
            height: r.u64()?,
            tally: Tally::decode_from(r)?,
        })
    }
}

impl Encode for DecidedPayment {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.proposal.encode_to(out);
        // Two's complement: the codec has no signed integers.
        (self.net_yes as u64).encode_to(out);
        self.payee.encode_to(out);
        self.amount.encode_to(out);
    }
}

impl Decode for DecidedPayment {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(DecidedPayment {
            proposal: Hash256::decode_from(r)?,
            net_yes: r.u64()? as i64,
            payee: Script::decode_from(r)?,
            amount: Amount::decode_from(r)?,
        })
    }
}

/// Bound on decoded lists of state records (far above any real count; a
/// corrupt length fails instead of allocating).
const MAX_RECORDS: usize = 1 << 20;

impl Encode for Decision {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.superblock.encode_to(out);
        self.eligible.encode_to(out);
        write_vec(out, &self.payments);
        rusty_shared_types::encoding::write_compact_size(out, self.changes.len() as u64);
        for (h, c) in &self.changes {
            h.encode_to(out);
            c.encode_to(out);
        }
    }
}

impl Decode for Decision {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let superblock = r.u64()?;
        let eligible = r.u64()?;
        let payments = r.vec("decided payments", MAX_RECORDS, 49)?;
        let n = r.length("decided changes", 8, 33)?;
        let mut changes = Vec::with_capacity(n);
        for _ in 0..n {
            changes.push((Hash256::decode_from(r)?, ParamChange::decode_from(r)?));
        }
        Ok(Decision {
            superblock,
            eligible,
            payments,
            changes,
        })
    }
}

impl Encode for GovState {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.treasury.encode_to(out);
        self.values.encode_to(out);
        let proposals: Vec<&LiveProposal> = self.proposals.values().collect();
        rusty_shared_types::encoding::write_compact_size(out, proposals.len() as u64);
        for p in proposals {
            p.encode_to(out);
        }
        write_option(out, &self.decision);
    }
}

impl Decode for GovState {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let treasury = Amount::decode_from(r)?;
        let values = GovernedValues::decode_from(r)?;
        let list: Vec<LiveProposal> = r.vec("live proposals", MAX_RECORDS, 64)?;
        let proposals = list.into_iter().map(|p| (p.txid, p)).collect();
        let decision = r.option("decision")?;
        Ok(GovState {
            treasury,
            values,
            proposals,
            decision,
            vote_cache: HashMap::new(),
        })
    }
}
