//! Governance through block connection, on a dev chain with masternodes
//! registered from one wallet (which so holds every voting key): payments
//! paid once within the budget, parameter activation, the bounds, vote
//! rules, treasury outputs, the snapshot, reorganisations and restarts.

use rusty_crypto::ed25519::{pubkey_hash, SecretKey};
use rusty_shared_types::{
    governance::{ParamChange, Proposal, ProposalKind, VoteBatch, VoteOutcome},
    Address, Amount, Block, ChainParams, Hash256, Network, OutPoint, Payload, Transaction, TxOut,
};

use super::*;
use crate::{
    chain::{Chain, ChainError},
    state::{NodeState, SendError, TxRejection},
    test_utils::{memory_state, NOW},
    validation::ValidationError,
};

const COIN: u64 = 100_000_000;

fn params() -> &'static ChainParams {
    Network::Dev.params()
}

fn coins(c: u64) -> Amount {
    Amount::from_units(c * COIN).unwrap()
}

/// A dev state whose wallet registered `n` masternodes.
fn with_masternodes(dir: &std::path::Path, n: usize) -> (NodeState, Vec<Hash256>, Address) {
    let (s, pros, _, addr) = crate::test_utils::with_masternodes(dir, n);
    (s, pros, addr)
}

fn mine(s: &mut NodeState, addr: &Address, n: u64) {
    let mined = s.generate(n, addr, u64::MAX, NOW).unwrap();
    assert_eq!(mined.len() as u64, n);
}

fn mine_to(s: &mut NodeState, addr: &Address, height: u64) {
    let h = s.chain().height();
    assert!(h <= height, "at {h}, past {height}");
    mine(s, addr, height - h);
}

fn payment(title: &str, payee: &Address, amount: u64, superblocks: u16) -> Proposal {
    Proposal {
        title: title.into(),
        url: "https://example.org/p".into(),
        doc_hash: Hash256([7; 32]),
        first_superblock: 48,
        superblocks,
        kind: ProposalKind::TreasuryPayment {
            payee: payee.lock_script(),
            amount: amount * COIN,
        },
    }
}

fn split(m: u16, n: u16, t: u16) -> Proposal {
    Proposal {
        title: "split".into(),
        url: String::new(),
        doc_hash: Hash256::ZERO,
        first_superblock: 48,
        superblocks: 1,
        kind: ProposalKind::ParamChange(ParamChange::RewardSplit {
            miner_bp: m,
            masternode_bp: n,
            treasury_bp: t,
        }),
    }
}

fn vote(s: &mut NodeState, pro: Hash256, votes: &[(Hash256, VoteOutcome)]) {
    let sent = s.vote_from_wallet(votes.to_vec(), Some(pro), NOW).unwrap();
    for v in sent {
        v.result.unwrap();
    }
}

fn yes(p: Hash256) -> (Hash256, VoteOutcome) {
    (p, VoteOutcome::Yes)
}

/// The voting key of `pro` from the wallet.
fn voting_key(s: &NodeState, pro: &Hash256) -> SecretKey {
    let e = s.chain().mn().get(pro).unwrap();
    let pkh = pubkey_hash(&rusty_crypto::ed25519::PublicKey(e.voting_key));
    s.wallet().unwrap().key_for(&pkh).unwrap()
}

/// A signed vote transaction of `pro` made at `made_at`.
fn vote_tx(
    s: &NodeState,
    pro: Hash256,
    made_at: u64,
    votes: Vec<(Hash256, VoteOutcome)>,
) -> Transaction {
    let mut v = VoteBatch {
        pro_tx_hash: pro,
        made_at,
        votes,
        signature: [0; 64],
    };
    v.signature = voting_key(s, &pro).sign(&v.signing_hash("dev").0).0;
    vote_transaction(v)
}

/// A template on the tip, edited, solved and submitted.
fn submit_edited(s: &mut NodeState, edit: impl FnOnce(&mut Block)) -> Result<(), ChainError> {
    let addr = s.wallet_mut().unwrap().new_address().unwrap();
    let t = s.block_template(&addr.lock_script(), NOW, Vec::new());
    let mut block = t.block;
    edit(&mut block);
    block.header.merkle_root = crate::validation::block_merkle_root(&block.txs);
    crate::pow::solve(&mut block.header, &t.target, u64::MAX).unwrap();
    s.submit_block(block, NOW).map(|_| ())
}

fn gov_err(e: &ChainError) -> Option<&GovError> {
    match e {
        ChainError::Invalid(ValidationError::Governance(g)) => Some(g),
        _ => None,
    }
}

/// A transaction spending `prevout` (a wallet coin) signed by hand, so a
/// test can put what the wallet would refuse into a block.
fn signed_spend(
    s: &NodeState,
    prevout: OutPoint,
    outputs: Vec<TxOut>,
    payload: Option<Payload>,
) -> Transaction {
    let coin = s.chain().coin(&prevout).unwrap().unwrap();
    let owner = Address::from_lock_script(Network::Dev, &coin.output.lock).expect("p2pkh");
    let key = s
        .wallet()
        .unwrap()
        .key_for(&owner.pubkey_hash)
        .expect("a wallet coin");
    crate::test_utils::sign_spend(&key, prevout, &coin.output, outputs, payload)
}

/// A mature coinbase coin of the wallet, unspent and not spent in the
/// mempool, from the block at `from` or later.
fn mature_coin(s: &NodeState, from: u64) -> (OutPoint, Amount) {
    for height in from..s.chain().height().saturating_sub(10) {
        let hash = s.chain().hash_at(height).unwrap();
        let block = s.chain().block(&hash).unwrap().unwrap();
        let op = OutPoint::new(block.txs[0].txid(), 0);
        if s.chain().coin(&op).unwrap().is_some() && s.mempool().spender(&op).is_none() {
            return (op, block.txs[0].outputs[0].value);
        }
    }
    panic!("no unspent mature coinbase from height {from}")
}

fn coinbase_of(s: &NodeState, height: u64) -> Transaction {
    let hash = s.chain().hash_at(height).unwrap();
    s.chain().block(&hash).unwrap().unwrap().txs[0].clone()
}

#[test]
fn passing_payments_are_paid_once_in_order_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 6);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p1 = s
        .submit_proposal(payment("one", &payee, 60, 1), 2_000, NOW)
        .unwrap();
    let p2 = s
        .submit_proposal(payment("two", &payee, 50, 1), 2_000, NOW)
        .unwrap();
    let p3 = s
        .submit_proposal(payment("three", &payee, 30, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    assert_eq!(s.chain().gov().proposals().count(), 3);
    for pro in &pros[..4] {
        vote(&mut s, *pro, &[yes(p1), yes(p2), yes(p3)]);
    }
    vote(&mut s, pros[4], &[yes(p1)]);
    mine(&mut s, &addr, 1);
    assert_eq!(s.chain().gov().proposal(&p1).unwrap().tally.yes, 5);
    assert_eq!(s.chain().gov().proposal(&p3).unwrap().tally.yes, 4);

    mine_to(&mut s, &addr, 40);
    let decision = s.chain().gov().decision().unwrap().clone();
    assert_eq!((decision.superblock, decision.eligible), (48, 6));
    assert_eq!(decision.payments.len(), 3);
    assert_eq!(decision.payments[0].proposal, p1, "most net yes first");

    mine_to(&mut s, &addr, 47);
    let before = s.chain().gov().treasury();
    mine(&mut s, &addr, 1);
    // Budget: the 100-coin floor. p1 (60) fits, p2 (50) does not and is
    // skipped, p3 (30) fits.
    let cb = coinbase_of(&s, 48);
    let tail = &cb.outputs[cb.outputs.len() - 2..];
    assert_eq!(tail[0].value, coins(60));
    assert_eq!(tail[1].value, coins(30));
    assert!(tail.iter().all(|o| o.lock == payee.lock_script()));
    let share = basis_points(params().subsidy(48), 1_000);
    assert_eq!(
        s.chain().gov().treasury(),
        before
            .checked_add(share)
            .unwrap()
            .checked_sub(coins(90))
            .unwrap()
    );
    assert_eq!(
        s.chain().gov().treasury(),
        accrued_treasury(params(), 48)
            .checked_sub(coins(90))
            .unwrap()
    );
    assert_eq!(s.chain().gov().proposals().count(), 0, "finished");
    // Paid once: the next superblock pays nothing.
    mine_to(&mut s, &addr, 96);
    let cb = coinbase_of(&s, 96);
    assert!(cb.outputs.iter().all(|o| o.lock != payee.lock_script()));
    assert_eq!(
        s.chain().gov().treasury(),
        accrued_treasury(params(), 96)
            .checked_sub(coins(90))
            .unwrap()
    );
}

#[test]
fn a_passing_split_activates_at_the_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 6);
    let p = s
        .submit_proposal(split(4_000, 4_500, 1_500), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    for pro in &pros[..4] {
        vote(&mut s, *pro, &[yes(p)]);
    }
    mine_to(&mut s, &addr, 48);
    let subsidy = params().subsidy(47);
    // Miner output: subsidy − treasury − masternode share (no fees).
    assert_eq!(
        coinbase_of(&s, 47).outputs[0].value,
        basis_points(subsidy, 4_500)
    );
    assert_eq!(
        coinbase_of(&s, 48).outputs[0].value,
        basis_points(subsidy, 4_000)
    );
    assert_eq!(
        s.chain().gov().values().reward_split_bp,
        [4_000, 4_500, 1_500]
    );
    let before = s.chain().gov().treasury();
    mine(&mut s, &addr, 1);
    assert_eq!(
        s.chain().gov().treasury(),
        before.checked_add(basis_points(subsidy, 1_500)).unwrap()
    );
}

#[test]
fn out_of_bounds_changes_are_refused_by_mempool_and_block() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _, addr) = with_masternodes(dir.path(), 2);
    for bad in [
        split(4_000, 3_500, 2_500),
        split(4_500, 4_500, 1_100),
        split(3_900, 4_600, 1_500),
    ] {
        let err = s.submit_proposal(bad.clone(), 2_000, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                SendError::Rejected(TxRejection::Invalid(ValidationError::Governance(
                    GovError::OutOfBounds(_)
                )))
            ),
            "{err}"
        );
        let (coin, value) = mature_coin(&s, 1);
        let burn = TxOut {
            value: coins(1),
            lock: rusty_shared_types::Script::data_carrier(BURN_MARKER).unwrap(),
        };
        let change = TxOut {
            value: value.checked_sub(coins(2)).unwrap(),
            lock: addr.lock_script(),
        };
        let tx = signed_spend(&s, coin, vec![burn, change], Some(Payload::Proposal(bad)));
        let err = submit_edited(&mut s, |b| b.txs.push(tx)).unwrap_err();
        assert!(
            matches!(gov_err(&err), Some(GovError::OutOfBounds(_))),
            "{err}"
        );
    }
    // Without the burn, even a valid proposal is refused; nor is a
    // deposit a burn: unspendable, but credited to an account (its author
    // could withdraw the fee again).
    for lock in [
        addr.lock_script(),
        rusty_shared_types::evm::deposit_script(&[0x42; 20]),
    ] {
        let (coin, value) = mature_coin(&s, 1);
        let tx = signed_spend(
            &s,
            coin,
            vec![TxOut {
                value: value.checked_sub(coins(1)).unwrap(),
                lock,
            }],
            Some(Payload::Proposal(split(4_000, 4_500, 1_500))),
        );
        let err = s.accept_transaction(tx, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                TxRejection::Invalid(ValidationError::Governance(GovError::ProposalFee { .. }))
            ),
            "{err}"
        );
    }
    assert_eq!(s.chain().gov().proposals().count(), 0);
}

#[test]
fn vote_rules_duplicates_cooldown_window_and_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 2);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 10, 1), 2_000, NOW)
        .unwrap();
    // Not mined yet: the error says so.
    let sent = s
        .vote_from_wallet(vec![yes(p)], Some(pros[0]), NOW)
        .unwrap();
    let err = sent.into_iter().next().unwrap().result.unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::ProposalNotMined(_)))
        ),
        "{err}"
    );
    mine(&mut s, &addr, 1);
    let h = s.chain().height();
    // Two votes of one masternode on one proposal in one block.
    let a = vote_tx(&s, pros[0], h, vec![yes(p)]);
    let b = vote_tx(&s, pros[0], h - 1, vec![(p, VoteOutcome::No)]);
    let err = submit_edited(&mut s, |blk| blk.txs.extend([a, b])).unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::DuplicateVote { .. })),
        "{err}"
    );
    // The pool refuses the second as well.
    vote(&mut s, pros[0], &[yes(p)]);
    let err = s
        .vote_from_wallet(vec![(p, VoteOutcome::No)], Some(pros[0]), NOW)
        .unwrap();
    assert!(err[0].result.is_err());
    mine(&mut s, &addr, 1);
    assert_eq!(s.chain().gov().proposal(&p).unwrap().tally.yes, 1);
    let voted_at = s.chain().height();
    // A change inside the cooldown is refused; after it, accepted.
    let sent = s
        .vote_from_wallet(vec![(p, VoteOutcome::No)], Some(pros[0]), NOW)
        .unwrap();
    let err = sent.into_iter().next().unwrap().result.unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::VoteCooldown { .. }))
        ),
        "{err}"
    );
    let early = vote_tx(&s, pros[0], voted_at, vec![(p, VoteOutcome::No)]);
    let err = submit_edited(&mut s, |blk| blk.txs.push(early)).unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::VoteCooldown { .. })),
        "{err}"
    );
    mine_to(&mut s, &addr, voted_at + 9);
    vote(&mut s, pros[0], &[(p, VoteOutcome::No)]);
    mine(&mut s, &addr, 1);
    let t = s.chain().gov().proposal(&p).unwrap().tally;
    assert_eq!((t.yes, t.no), (0, 1), "the last vote counted wins");
    // A vote outside its window, a forged one, one for an unknown proposal.
    mine_to(&mut s, &addr, 35);
    let h = s.chain().height();
    let stale = vote_tx(&s, pros[1], h - 25, vec![yes(p)]);
    let err = s.accept_transaction(stale, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::VoteWindow { .. }))
        ),
        "{err}"
    );
    let mut forged = vote_tx(&s, pros[1], h, vec![yes(p)]);
    if let Some(Payload::Vote(v)) = &mut forged.payload {
        v.signature = voting_key(&s, &pros[0]).sign(&v.signing_hash("dev").0).0;
    }
    let err = s.accept_transaction(forged.clone(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::BadVoteSignature(_)))
        ),
        "{err}"
    );
    // In a block beside a good vote, the batch check names the forger.
    mine(&mut s, &addr, 2);
    let now = s.chain().height();
    let good = vote_tx(&s, pros[0], now, vec![(p, VoteOutcome::Abstain)]);
    let err = submit_edited(&mut s, |b| b.txs.extend([good, forged])).unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::BadVoteSignature(m)) if *m == pros[1]),
        "{err}"
    );
    let unknown = vote_tx(&s, pros[1], h, vec![yes(Hash256([9; 32]))]);
    let err = s.accept_transaction(unknown, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::UnknownProposal(_)))
        ),
        "{err}"
    );
    // Voting closes at the snapshot.
    mine_to(&mut s, &addr, 40);
    let late = vote_tx(&s, pros[1], 40, vec![yes(p)]);
    let err = s.accept_transaction(late, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            TxRejection::Invalid(ValidationError::Governance(GovError::VotingClosed { .. }))
        ),
        "{err}"
    );
}

#[test]
fn an_old_vote_cannot_be_replayed_over_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 2);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 10, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    let first = vote_tx(&s, pros[0], s.chain().height(), vec![yes(p)]);
    s.accept_transaction(first.clone(), NOW).unwrap();
    mine(&mut s, &addr, 10);
    vote(&mut s, pros[0], &[(p, VoteOutcome::No)]);
    mine(&mut s, &addr, 10);
    // The first (yes) is still inside its window and past the cooldown,
    // but older than the counted no.
    let err = submit_edited(&mut s, |b| b.txs.push(first)).unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::StaleVote { .. })),
        "{err}"
    );
    assert_eq!(s.chain().gov().proposal(&p).unwrap().tally.no, 1);
}

#[test]
fn a_superblock_pays_at_most_its_payout_limit() {
    let mut g = GovState::genesis(params());
    g.treasury = coins(1_000_000);
    g.decision = Some(Decision {
        superblock: 48,
        eligible: 1,
        payments: (0..MAX_SUPERBLOCK_PAYOUTS + 50)
            .map(|i| DecidedPayment {
                proposal: Hash256([i as u8; 32]),
                net_yes: 1,
                payee: rusty_shared_types::Script::new(vec![0x51]),
                amount: Amount::from_units(1).unwrap(),
            })
            .collect(),
        changes: Vec::new(),
    });
    let r = g.rewards(params(), 48);
    assert_eq!(r.payouts.len(), MAX_SUPERBLOCK_PAYOUTS);
    assert_eq!(
        r.payout_total(),
        Amount::from_units(MAX_SUPERBLOCK_PAYOUTS as u64).unwrap()
    );
}

#[test]
fn treasury_outputs_are_exact_and_only_in_superblocks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 2);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 25, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    vote(&mut s, pros[0], &[yes(p)]);
    mine_to(&mut s, &addr, 47);
    // Outside a superblock, a treasury-sized extra output overpays.
    let extra = TxOut {
        value: coins(25),
        lock: payee.lock_script(),
    };
    let e = extra.clone();
    let err = submit_edited(&mut s, |b| b.txs[0].outputs.push(e)).unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
        ),
        "{err}"
    );
    // At the superblock: omitted, altered, added.
    let err = submit_edited(&mut s, |b| {
        b.txs[0].outputs.pop();
    })
    .unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::BadTreasuryOutputs(1))),
        "{err}"
    );
    let err = submit_edited(&mut s, |b| {
        let last = b.txs[0].outputs.last_mut().unwrap();
        last.value = coins(26);
    })
    .unwrap_err();
    assert!(
        matches!(gov_err(&err), Some(GovError::BadTreasuryOutputs(1))),
        "{err}"
    );
    let e = extra.clone();
    let err = submit_edited(&mut s, |b| b.txs[0].outputs.push(e)).unwrap_err();
    assert!(
        gov_err(&err).is_some()
            || matches!(
                err,
                ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
            ),
        "{err}"
    );
    let e = extra;
    let err = submit_edited(&mut s, |b| b.txs[0].outputs.insert(1, e)).unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
        ),
        "{err}"
    );
    assert_eq!(s.chain().height(), 47);
    mine(&mut s, &addr, 1);
    let cb = coinbase_of(&s, 48);
    assert_eq!(cb.outputs.last().unwrap().value, coins(25));
}

/// A masternode whose collateral is spent before the snapshot is not
/// counted; one spent after it is.
fn collateral_spent_at(height: u64) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 3);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 10, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    vote(&mut s, pros[1], &[yes(p)]);
    vote(&mut s, pros[2], &[yes(p)]);
    vote(&mut s, pros[0], &[(p, VoteOutcome::No)]);
    mine_to(&mut s, &addr, height - 1);
    let collateral = s.chain().mn().get(&pros[2]).unwrap().collateral;
    let value = s.chain().coin(&collateral).unwrap().unwrap().output.value;
    let tx = signed_spend(
        &s,
        collateral,
        vec![TxOut {
            value: value.checked_sub(coins(1)).unwrap(),
            lock: addr.lock_script(),
        }],
        None,
    );
    s.accept_transaction(tx, NOW).unwrap();
    mine(&mut s, &addr, 1);
    assert!(s.chain().mn().get(&pros[2]).is_none());
    mine_to(&mut s, &addr, 48);
    let cb = coinbase_of(&s, 48);
    cb.outputs.last().unwrap().lock == payee.lock_script()
}

#[test]
fn votes_fit_the_byte_budget_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 3);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 10, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    for pro in &pros {
        vote(&mut s, *pro, &[yes(p)]);
    }
    let one = s.vote_pool().transactions().next().unwrap().size();
    let chain = s.chain();
    let pick = |bytes| {
        s.vote_pool().select_for_block(
            params(),
            chain.db(),
            chain.gov(),
            chain.mn(),
            chain.height() + 1,
            bytes,
        )
    };
    assert_eq!(pick(one * 2 + one / 2).len(), 2);
    assert_eq!(pick(one - 1).len(), 0);
    assert_eq!(pick(usize::MAX).len(), 3);
}

#[test]
fn a_template_leaves_out_the_vote_of_a_masternode_leaving_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 2);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 10, 1), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    // Both wait: a vote of masternode 1 and the spend of its collateral.
    vote(&mut s, pros[1], &[yes(p)]);
    let collateral = s.chain().mn().get(&pros[1]).unwrap().collateral;
    let value = s.chain().coin(&collateral).unwrap().unwrap().output.value;
    let spend = signed_spend(
        &s,
        collateral,
        vec![TxOut {
            value: value.checked_sub(coins(1)).unwrap(),
            lock: addr.lock_script(),
        }],
        None,
    );
    s.accept_transaction(spend, NOW).unwrap();
    // The template is valid: the spend goes in, the vote stays out…
    mine(&mut s, &addr, 1);
    assert!(s.chain().mn().get(&pros[1]).is_none());
    assert_eq!(s.chain().gov().proposal(&p).unwrap().tally.yes, 0);
    // …and leaves the pool, which can never mine it now.
    assert!(s.vote_pool().is_empty());
}

#[test]
fn only_masternodes_valid_at_the_snapshot_count() {
    assert!(
        !collateral_spent_at(39),
        "spent before the snapshot: net yes 0"
    );
    assert!(collateral_spent_at(42), "spent after the snapshot: counted");
}

#[test]
fn a_reorg_across_a_superblock_restores_payouts_balance_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, pros, addr) = with_masternodes(dir.path(), 4);
    let payee = a.wallet_mut().unwrap().new_address().unwrap();
    let pay = a
        .submit_proposal(payment("p", &payee, 20, 1), 2_000, NOW)
        .unwrap();
    let change = a
        .submit_proposal(split(4_000, 4_500, 1_500), 2_000, NOW)
        .unwrap();
    mine(&mut a, &addr, 1);
    // b shares the chain so far, without votes from here on.
    let mut b = memory_state(None);
    for h in 1..=a.chain().height() {
        let block = a
            .chain()
            .block(&a.chain().hash_at(h).unwrap())
            .unwrap()
            .unwrap();
        b.submit_block(block, NOW).unwrap();
    }
    let fork = a.chain().height();
    let before = a.chain().gov().clone();
    for pro in &pros {
        vote(&mut a, *pro, &[yes(pay), yes(change)]);
    }
    mine_to(&mut a, &addr, 49);
    assert_eq!(
        a.chain().gov().values().reward_split_bp,
        [4_000, 4_500, 1_500]
    );
    assert_eq!(coinbase_of(&a, 48).outputs.last().unwrap().value, coins(20));
    // b's branch, one block longer and without the votes, wins.
    let miner = rusty_shared_types::Address::p2pkh(Network::Dev, Hash256([3; 32]));
    mine(&mut b, &miner, 50 - fork);
    for h in fork + 1..=50 {
        let block = b
            .chain()
            .block(&b.chain().hash_at(h).unwrap())
            .unwrap()
            .unwrap();
        let _ = a.chain_mut().process_block(block, NOW);
    }
    assert_eq!(a.chain().tip(), b.chain().tip());
    let (ga, gb) = (a.chain().gov(), b.chain().gov());
    assert_eq!(ga.values(), gb.values());
    assert_eq!(ga.values().reward_split_bp, [4_500, 4_500, 1_000]);
    assert_eq!(ga.treasury(), gb.treasury());
    assert_eq!(ga.treasury(), accrued_treasury(params(), 50));
    assert_eq!(ga.proposals().count(), 0);
    assert!(coinbase_of(&a, 48)
        .outputs
        .iter()
        .all(|o| o.lock != payee.lock_script()));
    // The votes of the abandoned branch are gone too.
    assert!(ga.votes_on(a.chain().db(), &pay).unwrap().is_empty());
    assert_eq!(before.treasury(), accrued_treasury(params(), fork));
}

#[test]
fn a_restart_without_a_flush_replays_to_identical_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 3);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 20, 2), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    s.chain_mut().flush().unwrap();
    for pro in &pros {
        vote(&mut s, *pro, &[yes(p)]);
    }
    mine_to(&mut s, &addr, 60);
    // As after kill -9: the database holds the last flush (before the
    // votes); opening it replays the blocks since.
    let crashed = Chain::open(s.chain().db().clone(), params(), NOW)
        .unwrap()
        .0;
    assert_eq!(crashed.height(), 60);
    let (a, b) = (crashed.gov(), s.chain().gov());
    assert_eq!(a.treasury(), b.treasury());
    assert_eq!(a.values(), b.values());
    assert_eq!(
        a.proposals().cloned().collect::<Vec<_>>(),
        b.proposals().cloned().collect::<Vec<_>>()
    );
    assert_eq!(a.proposal(&p).unwrap().tally.yes, 3);
    assert_eq!(
        a.votes_on(crashed.db(), &p).unwrap(),
        b.votes_on(s.chain().db(), &p).unwrap()
    );
}

#[test]
fn state_and_undo_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, pros, addr) = with_masternodes(dir.path(), 2);
    let payee = s.wallet_mut().unwrap().new_address().unwrap();
    let p = s
        .submit_proposal(payment("p", &payee, 20, 2), 2_000, NOW)
        .unwrap();
    mine(&mut s, &addr, 1);
    vote(&mut s, pros[0], &[yes(p)]);
    mine_to(&mut s, &addr, 41);
    let mut state = s.chain().gov().clone();
    state.written();
    rusty_shared_types::arbitrary::assert_round_trip(&state);
    for h in [21, 22, 40] {
        let hash = s.chain().hash_at(h).unwrap();
        let undo = s
            .chain()
            .db()
            .get::<crate::tables::GovUndoTable>(&hash)
            .unwrap()
            .unwrap();
        rusty_shared_types::arbitrary::assert_round_trip(&undo);
    }
}

proptest::proptest! {
    /// Random bytes never panic the decoders of the governance records,
    /// and whatever decodes re-encodes byte for byte.
    #[test]
    fn record_decoders_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        use rusty_shared_types::{decode_exact, Encode};
        if let Ok(v) = decode_exact::<GovState>(&bytes) {
            proptest::prop_assert_eq!(v.encode(), bytes.clone());
        }
        if let Ok(v) = decode_exact::<GovUndo>(&bytes) {
            proptest::prop_assert_eq!(v.encode(), bytes.clone());
        }
        if let Ok(v) = decode_exact::<VoteRecord>(&bytes) {
            proptest::prop_assert_eq!(v.encode(), bytes);
        }
    }
}
