//! Governance rules as pure functions of heights and counts: which heights
//! are superblocks, the bounds of every governable parameter, when a
//! proposal passes, the treasury budget and which payments fit it.
//!
//! Nothing here reads the clock or the network, so every node computes the
//! same answer from the same chain (Dash's superblock triggers and its
//! wall-clock epoch window are what this replaces). Consensus arithmetic is
//! checked: counts and amounts never wrap, and the payments selected never
//! exceed the budget, which never exceeds the balance.
//!
//! The payloads these rules judge are `rusty_shared_types::governance`;
//! `super::apply` applies them block by block.

use rusty_shared_types::{governance::ParamChange, Amount, ChainParams, Hash256, Network};

/// Governance constants of a network. They change only by a software
/// release, never by a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernanceParams {
    /// A superblock every `cycle` blocks (heights `cycle`, `2·cycle`, …).
    pub superblock_cycle: u64,
    /// The tally is taken this many blocks before the superblock.
    pub maturity_window: u64,
    /// Net yes a payment needs at least, however few masternodes there are.
    pub min_quorum: u64,
    /// Burned by the proposal's transaction, base units.
    pub proposal_fee: u64,
    /// Blocks a masternode waits before changing its vote on a proposal.
    pub vote_cooldown: u64,
    /// A vote is valid in the blocks `made_at + 1 ..= made_at + vote_window`.
    pub vote_window: u64,
    /// The superblock budget is at least this (while the balance allows).
    pub budget_floor: u64,
    /// … and otherwise this share of the balance, in basis points.
    pub budget_share_bp: u64,
}

/// Most payouts one superblock makes (in payment order; the rest are
/// skipped like those over budget), so its coinbase stays far below the
/// transaction size limit however many small proposals pass.
pub const MAX_SUPERBLOCK_PAYOUTS: usize = 200;

/// One coin in base units.
const COIN: u64 = 100_000_000;

impl GovernanceParams {
    /// The constants of `network`.
    pub fn of(network: Network) -> GovernanceParams {
        match network {
            // About a month of 2.5-minute blocks; a 3-day window.
            Network::Main | Network::Par | Network::Arc => GovernanceParams {
                superblock_cycle: 17_280,
                maturity_window: 1_728,
                min_quorum: 10,
                proposal_fee: 5 * COIN,
                vote_cooldown: 24,
                vote_window: 24,
                budget_floor: 1_000 * COIN,
                budget_share_bp: 400,
            },
            Network::Test => GovernanceParams {
                superblock_cycle: 576,
                maturity_window: 48,
                min_quorum: 1,
                proposal_fee: COIN,
                vote_cooldown: 10,
                vote_window: 24,
                budget_floor: 100 * COIN,
                budget_share_bp: 400,
            },
            Network::Dev | Network::ParDev | Network::ArcDev => GovernanceParams {
                superblock_cycle: 48,
                maturity_window: 8,
                min_quorum: 1,
                proposal_fee: COIN,
                vote_cooldown: 10,
                vote_window: 24,
                budget_floor: 100 * COIN,
                budget_share_bp: 400,
            },
        }
    }

    /// Whether a superblock is at `height` (never the genesis block).
    pub fn is_superblock(&self, height: u64) -> bool {
        height > 0 && self.superblock_cycle > 0 && height.is_multiple_of(self.superblock_cycle)
    }

    /// The first superblock after `height`.
    pub fn next_superblock(&self, height: u64) -> u64 {
        let cycle = self.superblock_cycle.max(1);
        (height / cycle).saturating_add(1).saturating_mul(cycle)
    }

    /// The last superblock at or below `height` (0 before the first).
    pub fn last_superblock(&self, height: u64) -> u64 {
        let cycle = self.superblock_cycle.max(1);
        height / cycle * cycle
    }

    /// Where the tally for the superblock at `superblock` is taken.
    pub fn snapshot_height(&self, superblock: u64) -> u64 {
        superblock.saturating_sub(self.maturity_window)
    }

    /// The treasury may spend at most this at a superblock:
    /// `min(balance, max(floor, share·balance))`.
    pub fn budget(&self, balance: Amount) -> Amount {
        let share = u128::from(balance.units()) * u128::from(self.budget_share_bp) / 10_000;
        let share = u64::try_from(share).unwrap_or(u64::MAX);
        let cap = share.max(self.budget_floor).min(balance.units());
        // At most the balance, so in range.
        Amount::from_units(cap).unwrap_or(Amount::ZERO)
    }
}

/// The treasury's share of every block from genesis to `height`
/// inclusive: what the treasury holds before any superblock has paid (so
/// far, always: governance is not active). Summed per halving era, so
/// constant time; checked, saturating at the money range.
pub fn accrued_treasury(params: &ChainParams, height: u64) -> Amount {
    let interval = params.halving_interval.max(1);
    let mut total: u128 = 0;
    let mut start = 0u64;
    while start <= height {
        let era_end = start.saturating_add(interval - 1).min(height);
        let blocks = u128::from(era_end - start) + 1;
        let per_block = u128::from(params.treasury_reward(start).units());
        if per_block == 0 {
            break;
        }
        total = total.saturating_add(per_block.saturating_mul(blocks));
        match era_end.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    let units = u64::try_from(total).unwrap_or(u64::MAX);
    Amount::from_units(units).unwrap_or(Amount::MAX)
}

/// A parameter's current values, what a change is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernedValues {
    /// Miner, masternode and treasury shares in basis points.
    pub reward_split_bp: [u16; 3],
    pub max_block_size: u64,
    pub min_relay_fee: u64,
}

/// Why a parameter change is out of bounds (the transaction is invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("the reward split sums to {0} basis points, not 10,000")]
    SplitSum(u32),
    #[error("the {share} share {value} bp is outside {min}–{max} bp")]
    ShareOutOfRange {
        share: &'static str,
        value: u16,
        min: u16,
        max: u16,
    },
    #[error("the {share} share moves {step} bp, more than {max} bp at once")]
    ShareStep {
        share: &'static str,
        step: u16,
        max: u16,
    },
    #[error("{param} {value} is outside {min}–{max}")]
    OutOfRange {
        param: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{param} may at most double or halve at once ({from} → {to})")]
    Step {
        param: &'static str,
        from: u64,
        to: u64,
    },
}

/// Bounds of the reward split: (name, min, max) of each share, in basis
/// points, in the order miner, masternodes, treasury.
pub const SPLIT_BOUNDS: [(&str, u16, u16); 3] = [
    ("miner", 3_000, 6_000),
    ("masternode", 3_000, 6_000),
    ("treasury", 0, 2_000),
];
/// The most one share may move in one change, basis points.
pub const MAX_SPLIT_STEP_BP: u16 = 500;
/// Bounds of the largest block, bytes.
pub const BLOCK_SIZE_BOUNDS: (u64, u64) = (1_000_000, 8_000_000);
/// Bounds of the default minimum relay fee, base units per 1000 bytes.
pub const RELAY_FEE_BOUNDS: (u64, u64) = (1, 1_000_000);

/// `to` is within a factor of two of `from`.
fn within_double(from: u64, to: u64) -> bool {
    to <= from.saturating_mul(2) && from <= to.saturating_mul(2)
}

/// Checks `change` against its hard bounds and its largest step from the
/// values in force.
pub fn check_bounds(change: &ParamChange, current: &GovernedValues) -> Result<(), BoundsError> {
    match *change {
        ParamChange::RewardSplit {
            miner_bp,
            masternode_bp,
            treasury_bp,
        } => {
            let new = [miner_bp, masternode_bp, treasury_bp];
            let sum: u32 = new.iter().map(|v| u32::from(*v)).sum();
            if sum != 10_000 {
                return Err(BoundsError::SplitSum(sum));
            }
            // Hard bounds first (the clearer error), then the step.
            for (value, (share, min, max)) in new.iter().zip(SPLIT_BOUNDS) {
                if !(min..=max).contains(value) {
                    return Err(BoundsError::ShareOutOfRange {
                        share,
                        value: *value,
                        min,
                        max,
                    });
                }
            }
            for ((value, old), (share, _, _)) in
                new.iter().zip(current.reward_split_bp).zip(SPLIT_BOUNDS)
            {
                let step = value.abs_diff(old);
                if step > MAX_SPLIT_STEP_BP {
                    return Err(BoundsError::ShareStep {
                        share,
                        step,
                        max: MAX_SPLIT_STEP_BP,
                    });
                }
            }
            Ok(())
        }
        ParamChange::MaxBlockSize(v) => check_scalar(
            "max-block-size",
            v,
            BLOCK_SIZE_BOUNDS,
            current.max_block_size,
        ),
        ParamChange::MinRelayFee(v) => {
            check_scalar("min-relay-fee", v, RELAY_FEE_BOUNDS, current.min_relay_fee)
        }
    }
}

fn check_scalar(
    param: &'static str,
    value: u64,
    (min, max): (u64, u64),
    current: u64,
) -> Result<(), BoundsError> {
    if !(min..=max).contains(&value) {
        return Err(BoundsError::OutOfRange {
            param,
            value,
            min,
            max,
        });
    }
    if !within_double(current, value) {
        return Err(BoundsError::Step {
            param,
            from: current,
            to: value,
        });
    }
    Ok(())
}

/// Share of the votes cast a parameter change needs as yes, percent.
const CHANGE_YES_PERCENT: u128 = 75;
/// Share of the eligible masternodes that must vote on a change, percent.
const CHANGE_PARTICIPATION_PERCENT: u128 = 20;

/// Votes counted for one proposal at a snapshot (only masternodes valid at
/// the snapshot, each one's last vote).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
}

impl Tally {
    /// Yes minus no (negative when more said no).
    pub fn net_yes(&self) -> i128 {
        i128::from(self.yes) - i128::from(self.no)
    }

    /// Net yes a payment needs: `max(min_quorum, ⌈eligible / 10⌉)`.
    pub fn funding_threshold(eligible: u64, min_quorum: u64) -> u64 {
        eligible.div_ceil(10).max(min_quorum)
    }

    /// A payment passes when `yes − no ≥ max(min_quorum, ⌈10% of
    /// eligible⌉)`.
    pub fn funds(&self, eligible: u64, min_quorum: u64) -> bool {
        self.net_yes() >= i128::from(Self::funding_threshold(eligible, min_quorum))
    }

    /// A parameter change passes with at least 75% yes among the votes
    /// cast (abstentions are cast votes) and at least 20% of eligible
    /// masternodes voting.
    pub fn changes_param(&self, eligible: u64) -> bool {
        let cast = u128::from(self.yes) + u128::from(self.no) + u128::from(self.abstain);
        cast > 0
            && u128::from(self.yes) * 100 >= cast * CHANGE_YES_PERCENT
            && cast * 100 >= u128::from(eligible) * CHANGE_PARTICIPATION_PERCENT
    }

    /// The yes votes a parameter change needs now: 75% of the votes cast,
    /// counting at least the 20% of `eligible` that must take part.
    pub fn change_yes_needed(&self, eligible: u64) -> u64 {
        let cast = u128::from(self.yes) + u128::from(self.no) + u128::from(self.abstain);
        let quorum = (u128::from(eligible) * CHANGE_PARTICIPATION_PERCENT).div_ceil(100);
        let needed = (cast.max(quorum) * CHANGE_YES_PERCENT).div_ceil(100);
        u64::try_from(needed).unwrap_or(u64::MAX)
    }
}

/// Sorts passing payments into payment order: most net yes first, then
/// the lower proposal hash.
pub fn payment_order(passing: &mut [super::DecidedPayment]) {
    passing.sort_by(|a, b| {
        b.net_yes
            .cmp(&a.net_yes)
            .then_with(|| a.proposal.cmp(&b.proposal))
    });
}

/// The payments a superblock makes from `passing` (in payment order):
/// each paid if it still fits the budget, else skipped and the next one
/// tried, at most [`MAX_SUPERBLOCK_PAYOUTS`]. The total never exceeds
/// `budget`.
pub fn select_payments(
    passing: &[super::DecidedPayment],
    budget: Amount,
) -> Vec<super::DecidedPayment> {
    let mut left = budget;
    passing
        .iter()
        .filter(|p| match left.checked_sub(p.amount) {
            Ok(rest) => {
                left = rest;
                true
            }
            Err(_) => false,
        })
        .take(MAX_SUPERBLOCK_PAYOUTS)
        .cloned()
        .collect()
}

/// Of several passing changes to one parameter, the one that takes effect:
/// the highest net yes, then the lower hash.
pub fn winning_change<T>(candidates: &[(Hash256, i128, T)]) -> Option<&(Hash256, i128, T)> {
    candidates
        .iter()
        .min_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn coins(c: u64) -> Amount {
        Amount::from_units(c * COIN).expect("in range")
    }

    /// A passing payment of proposal `[b; 32]`.
    fn passing(b: u8, net_yes: i64, amount: Amount) -> crate::governance::DecidedPayment {
        crate::governance::DecidedPayment {
            proposal: Hash256([b; 32]),
            net_yes,
            payee: rusty_shared_types::Script::new(vec![0x51]),
            amount,
        }
    }

    fn current() -> GovernedValues {
        GovernedValues {
            reward_split_bp: [4_500, 4_500, 1_000],
            max_block_size: 2_000_000,
            min_relay_fee: 1_000,
        }
    }

    fn split(m: u16, n: u16, t: u16) -> ParamChange {
        ParamChange::RewardSplit {
            miner_bp: m,
            masternode_bp: n,
            treasury_bp: t,
        }
    }

    #[test]
    fn superblocks_and_snapshots_are_heights() {
        let g = GovernanceParams::of(Network::Dev);
        assert!(!g.is_superblock(0));
        assert!(g.is_superblock(48) && g.is_superblock(96));
        assert!(!g.is_superblock(47));
        assert_eq!(g.next_superblock(0), 48);
        assert_eq!(g.next_superblock(48), 96);
        assert_eq!(g.snapshot_height(48), 40);
    }

    #[test]
    fn the_issue_s_out_of_bounds_changes_are_refused() {
        let c = current();
        assert_eq!(check_bounds(&split(4_000, 4_500, 1_500), &c), Ok(()));
        // A 2,500 bp treasury.
        assert!(matches!(
            check_bounds(&split(4_000, 3_500, 2_500), &c),
            Err(BoundsError::ShareOutOfRange {
                share: "treasury",
                ..
            })
        ));
        // Not summing to 10,000.
        assert_eq!(
            check_bounds(&split(4_500, 4_500, 1_100), &c),
            Err(BoundsError::SplitSum(10_100))
        );
        // A step over 500.
        assert!(matches!(
            check_bounds(&split(3_900, 4_600, 1_500), &c),
            Err(BoundsError::ShareStep {
                share: "miner",
                step: 600,
                ..
            })
        ));
        assert_eq!(
            check_bounds(&ParamChange::MaxBlockSize(4_000_000), &c),
            Ok(())
        );
        assert!(matches!(
            check_bounds(&ParamChange::MaxBlockSize(4_000_001), &c),
            Err(BoundsError::Step { .. })
        ));
        assert!(matches!(
            check_bounds(&ParamChange::MaxBlockSize(9_000_000), &c),
            Err(BoundsError::OutOfRange { .. })
        ));
        assert!(check_bounds(&ParamChange::MinRelayFee(0), &c).is_err());
    }

    #[test]
    fn passing_rules() {
        let t = Tally {
            yes: 5,
            no: 1,
            abstain: 0,
        };
        // 40 eligible: the threshold is 4 = ⌈40/10⌉; net yes is 4.
        assert!(t.funds(40, 1));
        assert!(!t.funds(41, 1));
        // Few masternodes: the minimum quorum rules.
        assert!(!t.funds(6, 10));
        // 5 of 6 cast votes are yes (83%), 6 of 30 eligible voted (20%).
        assert!(t.changes_param(30));
        assert!(!t.changes_param(31));
        let split_vote = Tally {
            yes: 3,
            no: 1,
            abstain: 1,
        };
        assert!(!split_vote.changes_param(5), "60% yes is not 75%");
        assert!(!Tally::default().changes_param(0));
    }

    #[test]
    fn over_budget_payments_are_skipped_in_order() {
        let p = |b: u8, net_yes: i64, amount: u64| passing(b, net_yes, coins(amount));
        let mut asks = vec![p(1, 5, 60), p(2, 9, 50), p(3, 7, 45), p(4, 7, 30)];
        payment_order(&mut asks);
        let paid = select_payments(&asks, coins(100));
        // By net yes: 2 (50) fits, then 3 and 4 tie at 7 (lower hash first):
        // 3 (45) fits, 4 (30) does not, then 1 (60) does not.
        let order: Vec<u8> = paid.iter().map(|p| p.proposal.0[0]).collect();
        assert_eq!(order, vec![2, 3]);
        let g = GovernanceParams::of(Network::Dev);
        assert_eq!(
            g.budget(coins(10)),
            coins(10),
            "never more than the balance"
        );
        assert_eq!(g.budget(coins(1_000)), coins(100), "the floor");
        assert_eq!(g.budget(coins(10_000)), coins(400), "4% of the balance");
    }

    #[test]
    fn the_treasury_accrues_every_block_s_share() {
        let p = Network::Dev.params();
        let by_block =
            |h: u64| Amount::checked_sum((0..=h).map(|x| p.treasury_reward(x))).expect("in range");
        for h in [0, 1, 47, 48, 1_000] {
            assert_eq!(accrued_treasury(p, h), by_block(h), "height {h}");
        }
        // Across a halving, with the era sizes of a small interval.
        let mut halving = p.clone();
        halving.halving_interval = 10;
        let by_block = |h: u64| {
            Amount::checked_sum((0..=h).map(|x| halving.treasury_reward(x))).expect("in range")
        };
        for h in [9, 10, 25, 700] {
            assert_eq!(accrued_treasury(&halving, h), by_block(h), "height {h}");
        }
        assert!(accrued_treasury(p, u64::MAX) > Amount::ZERO);
    }

    #[test]
    fn the_strongest_change_wins_then_the_lower_hash() {
        let c = [
            (Hash256([3; 32]), 7, "a"),
            (Hash256([1; 32]), 9, "b"),
            (Hash256([2; 32]), 9, "c"),
        ];
        assert_eq!(winning_change(&c).map(|w| w.2), Some("b"));
        assert!(winning_change::<()>(&[]).is_none());
    }

    proptest! {
        #[test]
        fn payments_never_exceed_the_budget_or_the_balance(
            balance in 0u64..(21_000_000 * COIN),
            asks in proptest::collection::vec((any::<u8>(), -50i64..50, 0u64..(5_000 * COIN)), 0..40),
        ) {
            let g = GovernanceParams::of(Network::Main);
            let balance = Amount::from_units(balance).expect("in range");
            let budget = g.budget(balance);
            prop_assert!(budget <= balance);
            let mut asks: Vec<_> = asks
                .into_iter()
                .map(|(b, net_yes, amount)| {
                    passing(b, net_yes, Amount::from_units(amount).expect("in range"))
                })
                .collect();
            payment_order(&mut asks);
            let paid = select_payments(&asks, budget);
            let total = Amount::checked_sum(paid.iter().map(|p| p.amount)).expect("no overflow");
            prop_assert!(total <= budget);
        }

        #[test]
        fn a_split_in_bounds_sums_to_ten_thousand(m in 0u16..10_000, n in 0u16..10_000) {
            let t = 10_000u16.saturating_sub(m).saturating_sub(n);
            if check_bounds(&split(m, n, t), &current()).is_ok() {
                prop_assert_eq!(u32::from(m) + u32::from(n) + u32::from(t), 10_000);
                prop_assert!(t <= 2_000);
            }
        }
    }
}
