//! [`NodeState`]: the chain, the mempool and the wallet, owned together by
//! the chain service task so that every change to one is seen by the others
//! in the same step (a connected block leaves the mempool and credits the
//! wallet before any other command runs).

use rusty_shared_types::{
    Address, Amount, Block, BlockHeader, ChainParams, CoinbasePayload, Hash256, OutPoint, Payload,
    Transaction, TxOut,
};
use rusty_vm::ImmediateChecker;
use tracing::{debug, info};

use crate::{
    chain::{BlockAcceptance, Chain, ChainError, ChainEvent, LockOutcome},
    governance::{GovError, VotePool, VotePoolError},
    mempool::{fee_rate, Mempool, MempoolEntry, MempoolError},
    pow,
    tables::Coin,
    validation::{self, ValidationError},
    wallet::Wallet,
};

/// Why a transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum TxRejection {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Policy(#[from] MempoolError),
    #[error("transaction {0} is already in the block chain")]
    AlreadyInChain(Hash256),
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The share of a template's bytes votes may take (each vote transaction
/// is about 150 bytes plus 33 per proposal voted on); fee-paying
/// transactions get the rest.
const VOTE_SHARE_DIVISOR: usize = 4;

/// A block to mine: everything but the nonce.
#[derive(Debug, Clone)]
pub struct BlockTemplate {
    pub block: Block,
    pub height: u64,
    pub fees: Amount,
    pub target: ruint::aliases::U256,
    /// Median time past of the parent: the header time must exceed it.
    pub min_time: u64,
}

/// Chain + mempool + wallet, owned by one thread (`rusty-node`'s chain
/// service).
///
/// The fields are private so that every change goes through a method that
/// keeps them in step: a connected block updates mempool, wallet and
/// subscribers together; a transaction enters the mempool only after full
/// validation. Reads go through [`NodeState::chain`], [`NodeState::mempool`]
/// and [`NodeState::wallet`].
#[derive(Debug)]
pub struct NodeState {
    chain: Chain,
    mempool: Mempool,
    wallet: Option<Wallet>,
    /// Changes since the owner last drained them.
    announcements: Vec<Announcement>,
    /// Where the mempool is saved at shutdown and reloaded at start.
    mempool_file: Option<std::path::PathBuf>,
    /// Final DKG commitments waiting to be mined, by quorum hash.
    commitments: std::collections::HashMap<Hash256, rusty_shared_types::QuorumCommitment>,
    /// Governance votes waiting to be mined (they pay no fee).
    votes: VotePool,
    /// The mempool's relay floor follows the governed default (the node
    /// was started with the network's default, not its own).
    relay_fee_governed: bool,
    /// Reorganisations since the state was opened (metrics).
    reorgs: u64,
    /// Ethereum transactions waiting for a block.
    eth_pool: crate::contracts::pool::EthPool,
}

/// A new active tip, as announced to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipInfo {
    pub hash: Hash256,
    pub height: u64,
    pub time: u64,
    pub txs: usize,
}

/// A change the owner of the state tells others about: new tips (miners,
/// RPC subscriptions) and transactions accepted into the mempool (relay).
/// Collected during an operation and drained with
/// [`NodeState::take_announcements`], so this crate needs no channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    Tip(TipInfo),
    Transaction(Box<Transaction>),
}

impl NodeState {
    pub fn new(chain: Chain, mempool: Mempool, wallet: Option<Wallet>) -> Self {
        let mut state = NodeState {
            chain,
            mempool,
            wallet,
            announcements: Vec::new(),
            mempool_file: None,
            commitments: std::collections::HashMap::new(),
            votes: VotePool::default(),
            relay_fee_governed: false,
            reorgs: 0,
            eth_pool: Default::default(),
        };
        state.relay_fee_governed =
            state.mempool.min_fee_rate() == state.params().min_relay_fee_per_kb;
        state.follow_governed_relay_fee();
        state.rescan_wallet();
        state
    }

    pub fn params(&self) -> &'static ChainParams {
        self.chain.params()
    }

    /// The block tree, the UTXO set and the masternode list.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The chain for tests that drive it below the state (flushes, raw
    /// blocks); never in a node.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn chain_mut(&mut self) -> &mut Chain {
        &mut self.chain
    }

    /// The wallet to change and the mempool to read at once (tests that
    /// build payments by hand).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn wallet_and_mempool(&mut self) -> (Option<&mut Wallet>, &Mempool) {
        (self.wallet.as_mut(), &self.mempool)
    }

    /// The pool of unconfirmed transactions.
    /// Reorganisations (a block of the active chain disconnected) since
    /// the state was opened.
    pub fn reorg_count(&self) -> u64 {
        self.reorgs
    }

    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The wallet, when one is loaded.
    pub fn wallet(&self) -> Option<&Wallet> {
        self.wallet.as_ref()
    }

    /// The wallet for a change that touches only it (a new address, a
    /// signature); chain-driven changes go through [`NodeState::apply_events`].
    pub fn wallet_mut(&mut self) -> Option<&mut Wallet> {
        self.wallet.as_mut()
    }

    /// A new receiving address of the wallet.
    pub fn new_address(&mut self) -> Result<Address, SendError> {
        Ok(self
            .wallet
            .as_mut()
            .ok_or(SendError::NoWallet)?
            .new_address()?)
    }

    /// Height of the active tip.
    pub fn height(&self) -> u64 {
        self.chain.height()
    }

    /// New tips and accepted transactions since the last call, oldest
    /// first.
    pub fn take_announcements(&mut self) -> Vec<Announcement> {
        std::mem::take(&mut self.announcements)
    }

    /// Where the mempool is saved by [`NodeState::close`].
    pub fn set_mempool_file(&mut self, path: std::path::PathBuf) {
        self.mempool_file = Some(path);
    }

    /// A node on the network's default relay fee follows the governed one.
    fn follow_governed_relay_fee(&mut self) {
        if self.relay_fee_governed {
            let governed = self.chain.gov().values().min_relay_fee;
            if governed != self.mempool.min_fee_rate() {
                info!(target: "mempool", from = self.mempool.min_fee_rate(), to = governed,
                      "minimum relay fee follows governance");
                self.mempool.set_min_fee_rate(governed);
            }
        }
    }

    /// Governance votes waiting to be mined.
    pub fn vote_pool(&self) -> &VotePool {
        &self.votes
    }

    /// Final DKG commitments waiting to be mined, by quorum hash.
    pub fn pending_commitments(
        &self,
    ) -> &std::collections::HashMap<Hash256, rusty_shared_types::QuorumCommitment> {
        &self.commitments
    }

    /// Checks a final DKG commitment against the list at the tip and keeps
    /// it to be mined when it has more signers than the one kept for its
    /// quorum; `Ok(false)`: valid but not better. Commitments of quorums
    /// whose DKG is no longer pending are dropped, so the pool stays as
    /// small as the pending list.
    pub fn submit_commitment(
        &mut self,
        qc: rusty_shared_types::QuorumCommitment,
    ) -> Result<bool, crate::masternode::MnError> {
        let params = self.params();
        self.chain.mn().check_commitment(params, &qc)?;
        let better = self
            .commitments
            .get(&qc.quorum_hash)
            .is_none_or(|old| old.signers.count() < qc.signers.count());
        let mn = self.chain.mn();
        let pending: std::collections::HashSet<Hash256> =
            mn.pending_dkgs().iter().map(|d| d.quorum_hash).collect();
        self.commitments.retain(|q, _| pending.contains(q));
        if better {
            self.commitments.insert(qc.quorum_hash, qc);
        }
        Ok(better)
    }

    /// Rebuilds the wallet from the active chain.
    pub fn rescan_wallet(&mut self) {
        let Some(wallet) = self.wallet.as_mut() else {
            return;
        };
        let height = self.chain.height();
        for h in 1..=height {
            let Some(hash) = self.chain.hash_at(h) else {
                break;
            };
            match self.chain.block(&hash) {
                Ok(Some(block)) => wallet.apply(&ChainEvent::Connected {
                    txids: block.txs.iter().map(Transaction::txid).collect(),
                    block,
                    height: h,
                }),
                other => {
                    tracing::error!(target: "wallet", height = h, ?other, "rescan could not read block");
                    break;
                }
            }
        }
        if height > 0 {
            info!(target: "wallet", blocks = height, "wallet rescanned the chain");
        }
    }

    /// Validates and applies a block; updates mempool and wallet.
    pub fn submit_block(&mut self, block: Block, now: u64) -> Result<BlockAcceptance, ChainError> {
        let (acceptance, events) = self.chain.process_block(block, now)?;
        self.apply_events(events, now);
        Ok(acceptance)
    }

    /// Verifies a ChainLock and, if it is the best so far, applies it (the
    /// chain may move to the locked branch). `Ok(false)`: valid but not
    /// new.
    pub fn apply_chainlock(
        &mut self,
        cl: rusty_shared_types::ChainLock,
    ) -> Result<bool, ValidationError> {
        let now = crate::now();
        match self.chain.apply_chainlock(cl, now) {
            Ok(LockOutcome::Applied(events)) => {
                self.apply_events(events, now);
                Ok(true)
            }
            Ok(LockOutcome::Stale) => Ok(false),
            Ok(LockOutcome::Rejected { error, events }) => {
                self.apply_events(events, now);
                Err(error)
            }
            Err(ChainError::Invalid(e)) => Err(e),
            Err(e) => {
                tracing::error!(target: "chain", err = %e, "storing a ChainLock failed");
                Ok(false)
            }
        }
    }

    /// Applies active-chain changes to the mempool and wallet.
    pub fn apply_events(&mut self, events: Vec<ChainEvent>, now: u64) {
        if events.is_empty() {
            return;
        }
        // Transactions of disconnected blocks, one vector per block, tip first.
        let mut resurrect: Vec<Vec<Transaction>> = Vec::new();
        let mut reorged = false;
        for ev in &events {
            if let Some(w) = self.wallet.as_mut() {
                w.apply(ev);
            }
            match ev {
                ChainEvent::Connected { block, txids, .. } => {
                    self.mempool.remove_for_block(&block.txs, txids)
                }
                ChainEvent::Disconnected { block, .. } => {
                    reorged = true;
                    resurrect.push(block.txs.iter().skip(1).cloned().collect());
                }
            }
        }
        self.follow_governed_relay_fee();
        self.prune_eth_pool();
        let next_height = self.chain.height().saturating_add(1);
        self.votes.revalidate(
            self.chain.params(),
            self.chain.db(),
            self.chain.gov(),
            self.chain.mn(),
            next_height,
        );
        if reorged {
            self.reorgs = self.reorgs.saturating_add(1);
            // Revalidate everything against the new chain: disconnected
            // transactions first (oldest block first, block order within a
            // block, so parents precede children), then the old pool.
            resurrect.reverse();
            let resurrect = resurrect.into_iter().flatten();
            let mut old: Vec<MempoolEntry> = self.mempool.entries().cloned().collect();
            old.sort_by_key(|e| e.time);
            for e in &old {
                self.mempool.remove_with_descendants(&e.txid);
            }
            let pending = resurrect
                .map(|tx| (tx, now))
                .chain(old.into_iter().map(|e| (e.tx, now)))
                .collect();
            let back = self.accept_parents_first(pending);
            info!(target: "mempool", returned = back, "mempool revalidated after reorg");
        }
        self.announcements
            .push(Announcement::Tip(tip_info(&self.chain)));
    }

    /// Coin for `outpoint` from the UTXO set or, if `allow_pool`, an output
    /// of a pool transaction (as if confirmed in the next block).
    fn lookup_coin(
        &self,
        outpoint: &OutPoint,
        next_height: u64,
    ) -> Result<Option<Coin>, ChainError> {
        if let Some(c) = self.chain.coin(outpoint)? {
            return Ok(Some(c));
        }
        Ok(self.mempool.output(outpoint).map(|o| Coin {
            output: o.clone(),
            height: next_height,
            is_coinbase: false,
        }))
    }

    /// Full validation of a loose transaction against the tip, then mempool
    /// policy. Nothing changes unless it is accepted.
    pub fn accept_transaction(
        &mut self,
        tx: Transaction,
        now: u64,
    ) -> Result<Hash256, TxRejection> {
        let params = self.params();
        validation::check_transaction(&tx, params)?;
        if tx.is_coinbase() {
            return Err(ValidationError::LooseCoinbase.into());
        }
        if let Some(
            p @ (Payload::QuorumCommitment(_) | Payload::ChainLock(_) | Payload::Settlement(_)),
        ) = &tx.payload
        {
            return Err(ValidationError::BlockOnlyTx(p.kind()).into());
        }
        let txid = tx.txid();
        // An Ethereum transaction is known by its sender and nonce: a
        // mined one is "nonce too low", a pooled one "already known".
        if let Some(Payload::EthTx(_)) = &tx.payload {
            return self.accept_eth(tx, txid, now);
        }
        if self.mempool.contains(&txid) {
            return Err(MempoolError::AlreadyKnown(txid).into());
        }
        if self.chain.tx_location(&txid)?.is_some() {
            return Err(TxRejection::AlreadyInChain(txid));
        }
        let next_height = self.chain.height().saturating_add(1);
        if let Some(Payload::Vote(_)) = &tx.payload {
            return self.accept_vote(tx, txid, next_height);
        }
        let mtp = self.chain.median_time_past(&self.chain.tip());
        if !validation::is_final(&tx, next_height, mtp) {
            return Err(ValidationError::NonFinal(tx.lock_time).into());
        }
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            let coin = self
                .lookup_coin(&input.prevout, next_height)?
                .ok_or(ValidationError::MissingOrSpent(input.prevout))?;
            coins.push(coin);
        }
        let fee = validation::check_tx_inputs(&tx, &coins, next_height, params)?;
        validation::verify_scripts(&tx, &coins, &mut ImmediateChecker)?;
        // Masternode special transactions must fit the list at the tip,
        // proposals the governance state.
        self.chain
            .mn()
            .check_special_tx(params, &tx, txid, next_height)
            .map_err(ValidationError::from)?;
        if let Some(Payload::Proposal(p)) = &tx.payload {
            self.chain
                .gov()
                .check_proposal(params, p, next_height)
                .map_err(ValidationError::from)?;
        }
        let size = tx.size();
        let entry = MempoolEntry {
            txid,
            size,
            fee,
            fee_rate: fee_rate(fee, size),
            time: now,
            height: next_height.saturating_sub(1),
            spent: coins.into_iter().map(|c| c.output).collect(),
            tx,
        };
        let relay = entry.tx.clone();
        let removed = self.mempool.insert(entry)?;
        self.announcements
            .push(Announcement::Transaction(Box::new(relay)));
        debug!(target: "mempool", %txid, size, fee = %fee, replaced = removed.len(), "accepted transaction");
        Ok(txid)
    }

    /// A vote for the vote pool (checked against the tip), relayed once
    /// accepted.
    fn accept_vote(
        &mut self,
        tx: Transaction,
        txid: Hash256,
        next_height: u64,
    ) -> Result<Hash256, TxRejection> {
        let relay = tx.clone();
        self.votes
            .insert(
                self.chain.params(),
                self.chain.db(),
                self.chain.gov(),
                self.chain.mn(),
                tx,
                txid,
                next_height,
            )
            .map_err(|e| match e {
                // A proposal still in the mempool: say so, not "unknown".
                VotePoolError::Chain(ChainError::Invalid(ValidationError::Governance(
                    GovError::UnknownProposal(p),
                ))) if self.mempool.contains(&p) => {
                    TxRejection::Invalid(GovError::ProposalNotMined(p).into())
                }
                VotePoolError::Chain(ChainError::Invalid(e)) => TxRejection::Invalid(e),
                VotePoolError::Chain(e) => TxRejection::Chain(e),
                VotePoolError::AlreadyKnown(t) => MempoolError::AlreadyKnown(t).into(),
                VotePoolError::Conflict { waiting } => {
                    MempoolError::ConflictingVote { waiting }.into()
                }
                VotePoolError::Full => MempoolError::MempoolFull.into(),
            })?;
        self.announcements
            .push(Announcement::Transaction(Box::new(relay)));
        debug!(target: "mempool", %txid, "accepted vote");
        Ok(txid)
    }

    /// A block template on the current tip paying `payout`.
    pub fn block_template(
        &self,
        payout: &rusty_shared_types::Script,
        now: u64,
        extra: Vec<u8>,
    ) -> BlockTemplate {
        let params = self.params();
        let parent = self.chain.tip_entry();
        let height = parent.height.saturating_add(1);
        let mtp = self.chain.median_time_past(&self.chain.tip());
        let time = now.max(mtp.saturating_add(1));
        let bits = self.chain.next_bits(parent);
        let rewards = self.chain.gov().rewards(params, height);
        let max_size = usize::try_from(rewards.values.max_block_size)
            .unwrap_or(usize::MAX)
            .min(validation::hard_max_block_size(params));
        let specials = self.block_specials(height, max_size / VOTE_SHARE_DIVISOR);
        // Leave room for the header, the coinbase and the specials.
        let specials_size: usize = specials.iter().map(Transaction::size).sum();
        let payouts = rewards.treasury_outputs();
        let payouts_size: usize = payouts
            .iter()
            .map(|o| rusty_shared_types::Encode::encode(o).len())
            .sum();
        let budget = max_size
            .saturating_sub(1_000)
            .saturating_sub(specials_size)
            .saturating_sub(payouts_size);
        let selected = self.select_for_template(budget, height);
        let fees = Amount::checked_sum(selected.iter().map(|e| e.fee)).unwrap_or(Amount::ZERO);
        let base = rewards.coinbase_subsidy();
        let reward = base.checked_add(fees).unwrap_or(base);
        let mn_payments = self.chain.mn().expected_payments(rewards.masternode);
        let mn_total =
            Amount::checked_sum(mn_payments.iter().map(|o| o.value)).unwrap_or(Amount::ZERO);
        let mut outputs = vec![TxOut {
            value: reward.checked_sub(mn_total).unwrap_or(Amount::ZERO),
            lock: payout.clone(),
        }];
        outputs.extend(mn_payments);
        // A superblock's coinbase ends with the treasury payouts.
        outputs.extend(payouts);
        let coinbase = Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs,
            lock_time: 0,
            payload: Some(Payload::Coinbase(CoinbasePayload { height, extra })),
        };
        let chainlock_hash = specials
            .iter()
            .find_map(|t| match &t.payload {
                Some(Payload::ChainLock(cl)) => Some(cl.hash()),
                _ => None,
            })
            .unwrap_or(Hash256::ZERO);
        let mut txs = Vec::with_capacity(selected.len().saturating_add(2));
        txs.push(coinbase);
        txs.extend(specials);
        txs.extend(selected.into_iter().map(|e| e.tx.clone()));
        let mut header = BlockHeader {
            version: validation::BLOCK_VERSION,
            prev_hash: self.chain.tip(),
            merkle_root: validation::block_merkle_root(&txs),
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash,
            time,
            bits,
            nonce: 0,
        };
        let after = self.preview_mn(&header, &txs, height, rewards.coinbase_reward());
        // A vote must fit the list after the block: leave out the votes of
        // masternodes it removes (spent collateral), revokes, bans (a DKG
        // commitment) or gives a new voting key. Votes never change the
        // list, so its root stays.
        let before = self.chain.mn();
        txs.retain(|t| match &t.payload {
            Some(Payload::Vote(v)) => after.get(&v.pro_tx_hash).is_some_and(|e| {
                e.is_valid()
                    && before
                        .get(&v.pro_tx_hash)
                        .is_some_and(|b| b.voting_key == e.voting_key)
            }),
            _ => true,
        });
        let used: usize = txs.iter().map(Transaction::size).sum();
        self.fill_eth_template(
            &mut header,
            &mut txs,
            height,
            max_size.saturating_sub(1_000).saturating_sub(used),
        );
        // Votes left out, Ethereum transactions added.
        header.merkle_root = validation::block_merkle_root(&txs);
        header.mn_list_root = after.list_root();
        let target = pow::target_from_compact(bits).unwrap_or_default();
        BlockTemplate {
            block: Block { header, txs },
            height,
            fees,
            target,
            min_time: mtp.saturating_add(1),
        }
    }

    /// The block-only transactions of the next block: the best ChainLock on
    /// the active chain, and a commitment for every DKG that has one ready
    /// (a null commitment when its mining window closes at `height`). Pool
    /// commitments were checked against their DKG when they entered the
    /// pool, and a DKG is fixed by its quorum hash, so they are not checked
    /// again here. Then pooled votes, up to `vote_bytes`.
    fn block_specials(&self, height: u64, vote_bytes: usize) -> Vec<Transaction> {
        let params = self.params();
        let mn = self.chain.mn();
        let special = |payload| Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_time: 0,
            payload: Some(payload),
        };
        let mut out = Vec::new();
        for dkg in mn.pending_dkgs() {
            let best = self.commitments.get(&dkg.quorum_hash).cloned();
            let closes = dkg
                .quorum_height
                .saturating_add(params.masternode.dkg_mining_window)
                <= height;
            let qc = match best {
                Some(qc) => qc,
                None if closes => rusty_shared_types::QuorumCommitment::null(
                    dkg.quorum_hash,
                    dkg.quorum_height,
                    dkg.members.len(),
                ),
                None => continue,
            };
            out.push(special(Payload::QuorumCommitment(qc)));
        }
        if let Some(cl) = self.chain.best_chainlock() {
            if cl.height < height && self.chain.hash_at(cl.height) == Some(cl.block_hash) {
                out.push(special(Payload::ChainLock(cl.clone())));
            }
        }
        out.extend(self.votes.select_for_block(
            params,
            self.chain.db(),
            self.chain.gov(),
            mn,
            height,
            vote_bytes,
        ));
        out
    }

    /// Mempool transactions for a block at `height`, leaving out masternode
    /// special transactions that conflict with earlier ones (and whatever
    /// spends their outputs).
    fn select_for_template(&self, budget: usize, height: u64) -> Vec<&MempoolEntry> {
        let params = self.params();
        let mut scratch: Option<crate::masternode::MnState> = None;
        let mut dropped = std::collections::HashSet::new();
        let mut out = Vec::new();
        for e in self.mempool.select_for_block(budget) {
            if e.tx
                .inputs
                .iter()
                .any(|i| dropped.contains(&i.prevout.txid))
            {
                dropped.insert(e.txid);
                continue;
            }
            if let Some(Payload::Proposal(p)) = &e.tx.payload {
                if let Err(err) = self.chain.gov().check_proposal(params, p, height) {
                    debug!(target: "miner", txid = %e.txid, %err, "left out a proposal");
                    dropped.insert(e.txid);
                    continue;
                }
            }
            if e.tx.payload.is_some() {
                let mn = scratch.get_or_insert_with(|| self.chain.mn().clone());
                match mn.check_special_tx(params, &e.tx, e.txid, height) {
                    Ok(Some(entry)) => mn.put_unrecorded(entry),
                    Ok(None) => {}
                    Err(err) => {
                        debug!(target: "miner", txid = %e.txid, %err, "left out a special transaction");
                        dropped.insert(e.txid);
                        continue;
                    }
                }
            }
            out.push(e);
        }
        out
    }

    /// The masternode list after a block with `txs` on the tip (the tip's
    /// list if the block breaks a masternode rule).
    fn preview_mn(
        &self,
        header: &BlockHeader,
        txs: &[Transaction],
        height: u64,
        reward: crate::masternode::CoinbaseReward,
    ) -> crate::masternode::MnState {
        let mut mn = self.chain.mn().clone();
        let block = Block {
            header: header.clone(),
            txs: txs.to_vec(),
        };
        let txids: Vec<Hash256> = txs.iter().map(Transaction::txid).collect();
        let chain = &self.chain;
        match mn.apply_block(
            self.params(),
            &block,
            &txids,
            header.prev_hash,
            height,
            reward,
            &|h| chain.hash_at(h),
        ) {
            Ok(_) => mn,
            Err(err) => {
                tracing::warn!(target: "miner", %err, "block template breaks a masternode rule");
                self.chain.mn().clone()
            }
        }
    }

    /// The wallet's spendable balance and a payment to `to`, accepted to the
    /// mempool.
    pub fn send_to_address(
        &mut self,
        to: &Address,
        amount: Amount,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let payment = vec![TxOut {
            value: amount,
            lock: to.lock_script(),
        }];
        self.send_from_wallet(payment, 0, |_| None, fee_rate, now)
    }

    /// Builds a masternode special transaction from the wallet: `payment`
    /// outputs (the collateral of a registration), a payload made from the
    /// chosen inputs, fees and change. Accepted to the mempool.
    pub fn send_special(
        &mut self,
        payment: Vec<TxOut>,
        payload: impl FnOnce(&[rusty_shared_types::TxIn]) -> Option<Payload>,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        // Payloads are a few hundred bytes; 600 covers the largest.
        self.send_from_wallet(payment, 600, payload, fee_rate, now)
    }

    /// Buys content: pays `payment` (the price, to the creator's purchase
    /// lock) with `purchase` as payload. One purchase of a content by a
    /// buyer key at a time: while one waits in the mempool, a retry gets
    /// [`PurchaseError::Pending`] instead of paying twice.
    pub fn send_purchase(
        &mut self,
        purchase: rusty_shared_types::media::ContentPurchase,
        payment: TxOut,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, PurchaseError> {
        let pending = self.mempool.entries().find(|e| {
            matches!(&e.tx.payload,
                Some(Payload::ContentPurchase(p))
                    if p.content_id == purchase.content_id && p.buyer_key == purchase.buyer_key)
        });
        if let Some(e) = pending {
            return Err(PurchaseError::Pending(e.txid));
        }
        Ok(self.send_special(
            vec![payment],
            |_| Some(Payload::ContentPurchase(purchase)),
            fee_rate,
            now,
        )?)
    }

    /// A wallet transaction paying `payment` (plus a payload of at most
    /// `payload_size` bytes), never spending a masternode collateral,
    /// accepted to the mempool.
    /// A signed payment of `amount` to `to`, built by the wallet but not
    /// sent (the web UI's confirmation step shows its exact fee, then
    /// sends these very bytes), with its fee. Its coins stay spendable
    /// until it is sent.
    pub fn prepare_payment(
        &mut self,
        to: &Address,
        amount: Amount,
        fee_rate: u64,
    ) -> Result<(Transaction, Amount), SendError> {
        let payment = vec![TxOut {
            value: amount,
            lock: to.lock_script(),
        }];
        let tx = self.build_from_wallet(payment, 0, |_| None, fee_rate)?;
        let next = self.chain.height().saturating_add(1);
        let mut inputs = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            let coin = self
                .lookup_coin(&input.prevout, next)
                .ok()
                .flatten()
                .ok_or(SendError::Wallet(crate::wallet::WalletError::InvalidAmount))?;
            inputs.push(coin.output.value);
        }
        let fee = Amount::checked_sum(inputs)
            .ok()
            .zip(Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).ok())
            .and_then(|(i, o)| i.checked_sub(o).ok())
            .ok_or(SendError::Wallet(crate::wallet::WalletError::InvalidAmount))?;
        Ok((tx, fee))
    }

    fn send_from_wallet(
        &mut self,
        payment: Vec<TxOut>,
        payload_size: usize,
        payload: impl FnOnce(&[rusty_shared_types::TxIn]) -> Option<Payload>,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let tx = self.build_from_wallet(payment, payload_size, payload, fee_rate)?;
        Ok(self.accept_transaction(tx, now)?)
    }

    fn build_from_wallet(
        &mut self,
        payment: Vec<TxOut>,
        payload_size: usize,
        payload: impl FnOnce(&[rusty_shared_types::TxIn]) -> Option<Payload>,
        fee_rate: u64,
    ) -> Result<rusty_shared_types::Transaction, SendError> {
        let height = self.chain.height();
        let maturity = self.params().coinbase_maturity;
        let wallet = self.wallet.as_mut().ok_or(SendError::NoWallet)?;
        let mn = self.chain.mn();
        let spend = crate::wallet::Spend {
            fee_rate,
            tip_height: height,
            maturity,
            mempool: &self.mempool,
            locked: &|op| mn.by_collateral(op).is_some(),
        };
        Ok(wallet.create_transaction(payment, payload_size, payload, spend)?)
    }
}

/// What a registration sets (everything but the keys the wallet makes).
#[derive(Debug, Clone)]
pub struct Registration {
    pub operator_key: rusty_shared_types::masternode::BlsPublicKeyBytes,
    pub service: String,
    pub operator_reward_bps: u16,
    /// Where rewards go; default: a new wallet address.
    pub payout: Option<Address>,
}

/// A masternode registered from the wallet.
#[derive(Debug, Clone)]
pub struct Registered {
    pub pro_tx_hash: Hash256,
    pub collateral_address: Address,
    pub owner_address: Address,
    pub payout_address: Address,
}

impl NodeState {
    /// Registers a masternode: a transaction from the wallet paying the
    /// collateral to a new wallet address (output 0) and carrying the
    /// registration, whose owner and voting keys are new wallet keys.
    pub fn register_masternode(
        &mut self,
        reg: Registration,
        fee_rate: u64,
        now: u64,
    ) -> Result<Registered, SendError> {
        let collateral = self.params().masternode.collateral;
        let wallet = self.wallet.as_mut().ok_or(SendError::NoWallet)?;
        let collateral_address = wallet.new_address()?;
        let owner_address = wallet.new_address()?;
        let payout_address = match reg.payout {
            Some(a) => a,
            None => wallet.new_address()?,
        };
        let owner_pkh = owner_address.pubkey_hash;
        let owner_key = wallet
            .key_for(&owner_pkh)
            .ok_or(SendError::NoWallet)?
            .public_key()
            .0;
        let payload = rusty_shared_types::masternode::ProRegister {
            collateral_vout: 0,
            owner_key,
            operator_key: reg.operator_key,
            voting_key: owner_key,
            payout: payout_address.lock_script(),
            operator_reward_bps: reg.operator_reward_bps,
            service: reg.service,
        };
        let payment = vec![TxOut {
            value: collateral,
            lock: collateral_address.lock_script(),
        }];
        let pro_tx_hash = self.send_special(
            payment,
            |_| Some(Payload::ProRegister(payload)),
            fee_rate,
            now,
        )?;
        Ok(Registered {
            pro_tx_hash,
            collateral_address,
            owner_address,
            payout_address,
        })
    }

    /// Changes a masternode's service address, signed with its operator
    /// key (also revives a PoSe-banned masternode). Fees from the wallet.
    pub fn update_masternode_service(
        &mut self,
        pro_tx_hash: Hash256,
        service: String,
        operator: &rusty_crypto::bls::SecretKey,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let update = rusty_shared_types::masternode::ProUpdateService {
            pro_tx_hash,
            service,
            operator_payout: None,
            signature: [0; 96],
        };
        self.send_operator_signed(update, operator, fee_rate, now)
    }

    /// Revokes a masternode's service, signed with its operator key.
    pub fn revoke_masternode(
        &mut self,
        pro_tx_hash: Hash256,
        reason: u16,
        operator: &rusty_crypto::bls::SecretKey,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let revoke = rusty_shared_types::masternode::ProRevoke {
            pro_tx_hash,
            reason,
            signature: [0; 96],
        };
        self.send_operator_signed(revoke, operator, fee_rate, now)
    }

    /// Sends `payload` signed by `operator` over the inputs the wallet
    /// picks to pay the fee.
    fn send_operator_signed<P: rusty_shared_types::masternode::OperatorSigned>(
        &mut self,
        mut payload: P,
        operator: &rusty_crypto::bls::SecretKey,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let fee_only = self.fee_output()?;
        self.send_special(
            fee_only,
            |inputs| {
                let hash = rusty_shared_types::masternode::inputs_hash(inputs);
                let sig = operator.sign(&payload.sig_hash(&hash).0).to_bytes();
                payload.set_signature(sig);
                Some(payload.into_payload())
            },
            fee_rate,
            now,
        )
    }

    /// A special transaction needs an output; operators' update and revoke
    /// transactions pay a dust-free minimum back to the wallet.
    fn fee_output(&mut self) -> Result<Vec<TxOut>, SendError> {
        let wallet = self.wallet.as_mut().ok_or(SendError::NoWallet)?;
        let back = wallet.new_address()?;
        Ok(vec![TxOut {
            value: Amount::from_units(100_000).unwrap_or(Amount::ZERO),
            lock: back.lock_script(),
        }])
    }
}

/// Version of the `mempool.dat` format.
const MEMPOOL_FILE_VERSION: u32 = 1;

/// One saved mempool transaction.
struct SavedTx {
    time: u64,
    tx: Transaction,
}

impl rusty_shared_types::Encode for SavedTx {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.time.encode_to(out);
        self.tx.encode_to(out);
    }
}

impl rusty_shared_types::Decode for SavedTx {
    fn decode_from(
        r: &mut rusty_shared_types::encoding::Reader<'_>,
    ) -> rusty_shared_types::encoding::DecodeResult<Self> {
        Ok(SavedTx {
            time: r.u64()?,
            tx: Transaction::decode_from(r)?,
        })
    }
}

impl NodeState {
    /// Writes the mempool and the Ethereum pool to `path` (atomically:
    /// temporary file + rename). Returns how many transactions were saved.
    pub fn save_mempool(&self, path: &std::path::Path) -> std::io::Result<usize> {
        use rusty_shared_types::Encode;
        let mut entries: Vec<&MempoolEntry> = self.mempool.entries().collect();
        entries.sort_by_key(|e| e.time);
        let saved: Vec<SavedTx> = entries
            .iter()
            .map(|e| SavedTx {
                time: e.time,
                tx: e.tx.clone(),
            })
            // Ethereum transactions by sender and nonce, so each sender's
            // load back in order.
            .chain(self.eth_pool.iter().map(|p| SavedTx {
                time: p.time,
                tx: p.tx.clone(),
            }))
            .collect();
        let mut out = Vec::new();
        MEMPOOL_FILE_VERSION.encode_to(&mut out);
        rusty_shared_types::encoding::write_compact_size(&mut out, saved.len() as u64);
        for tx in &saved {
            tx.encode_to(&mut out);
        }
        let tmp = path.with_extension("dat.tmp");
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, path)?;
        Ok(saved.len())
    }

    /// Re-validates and re-adds the transactions saved in `path`; a missing
    /// file is an empty mempool, a corrupt one is reported and ignored.
    /// Returns (accepted, refused).
    pub fn load_mempool(&mut self, path: &std::path::Path) -> (usize, usize) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(_) => return (0, 0),
        };
        let mut r = rusty_shared_types::encoding::Reader::new(&bytes);
        let saved: Vec<SavedTx> = match r
            .u32()
            .and_then(|v| {
                if v == MEMPOOL_FILE_VERSION {
                    Ok(())
                } else {
                    Err(rusty_shared_types::DecodeError::InvalidValue(
                        "mempool file version",
                    ))
                }
            })
            .and_then(|()| r.vec("mempool transactions", 10_000_000, 24))
            .and_then(|v| r.finish().map(|()| v))
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(target: "mempool", path = %path.display(), error = %e, "ignoring unreadable mempool file");
                return (0, 0);
            }
        };
        let total = saved.len();
        // An Ethereum transaction next in line is dry-run at admission in a
        // block at the time given: now, not when it first arrived.
        let now = crate::now();
        let entries = saved
            .into_iter()
            .map(|s| match s.tx.payload {
                Some(Payload::EthTx(_)) => (s.tx, now.max(s.time)),
                _ => (s.tx, s.time),
            })
            .collect();
        let accepted = self.accept_parents_first(entries);
        info!(target: "mempool", accepted, refused = total - accepted, "mempool loaded");
        (accepted, total - accepted)
    }

    /// Accepts `(transaction, arrival time)` pairs that may come in any
    /// parent/child order: those missing an input are retried after the
    /// others until a pass makes no progress. Returns how many were accepted.
    fn accept_parents_first(&mut self, mut pending: Vec<(Transaction, u64)>) -> usize {
        let mut accepted = 0usize;
        loop {
            let before = pending.len();
            let mut retry = Vec::new();
            for (tx, time) in pending {
                match self.accept_transaction(tx.clone(), time) {
                    Ok(_) => accepted += 1,
                    Err(TxRejection::Invalid(ValidationError::MissingOrSpent(_))) => {
                        retry.push((tx, time))
                    }
                    Err(_) => {}
                }
            }
            if retry.is_empty() || retry.len() == before {
                return accepted;
            }
            pending = retry;
        }
    }

    /// Writes what the chain holds in memory (coin changes, state-trie
    /// nodes, indexes and receipts of the blocks since the last flush)
    /// to the database now.
    pub fn flush_chain(&mut self) -> Result<(), crate::chain::ChainError> {
        self.chain.flush()
    }

    /// Called by the chain service as it stops: saves the mempool, writes
    /// the coin cache and flushes the database.
    pub fn close(&mut self) {
        self.persist();
        if let Err(e) = self.chain.flush() {
            tracing::error!(target: "chain", error = %e, "writing the coin cache failed");
        }
        if let Err(e) = self.chain.db().flush() {
            tracing::error!(target: "chain", error = %e, "flushing the database failed");
        }
    }

    /// Saves the mempool to its file, if it has one.
    pub fn persist(&self) {
        if let Some(path) = &self.mempool_file {
            match self.save_mempool(path) {
                Ok(n) => {
                    info!(target: "mempool", saved = n, path = %path.display(), "mempool saved")
                }
                Err(e) => {
                    tracing::error!(target: "mempool", error = %e, "saving the mempool failed")
                }
            }
        }
    }
}

/// The tip of `chain` as announced to subscribers.
pub fn tip_info(chain: &Chain) -> TipInfo {
    let e = chain.tip_entry();
    TipInfo {
        hash: chain.tip(),
        height: e.height,
        time: e.header.time,
        txs: 0,
    }
}

/// Why a content purchase was not sent.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// A purchase of the same content by the same buyer key is waiting to
    /// be mined.
    #[error("a purchase is already waiting to be mined: {0}")]
    Pending(Hash256),
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Why `sendtoaddress` failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("this node has no wallet loaded")]
    NoWallet,
    #[error(transparent)]
    Wallet(#[from] crate::wallet::WalletError),
    #[error("the wallet's transaction was rejected: {0}")]
    Rejected(#[from] TxRejection),
}

#[path = "state_eth.rs"]
mod eth;

#[cfg(test)]
mod tests {
    use rusty_shared_types::{Amount, TxOut};

    use crate::test_utils::{coinbase_at, memory_state, Key, NOW};

    #[test]
    fn mempool_file_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::new(21);
        let mut s = memory_state(None);
        s.generate(12, &key.address, u64::MAX, NOW).unwrap();
        let (op, out) = coinbase_at(&s, 1);
        let parent = key.spend(
            op,
            &out,
            vec![TxOut {
                value: Amount::from_units(out.value.units() - 1_000).unwrap(),
                lock: key.address.lock_script(),
            }],
        );
        let child = key.spend(
            rusty_shared_types::OutPoint::new(parent.txid(), 0),
            &parent.outputs[0],
            vec![TxOut {
                value: Amount::from_units(out.value.units() - 2_000).unwrap(),
                lock: key.address.lock_script(),
            }],
        );
        s.accept_transaction(parent, NOW).unwrap();
        s.accept_transaction(child, NOW).unwrap();
        let path = dir.path().join("mempool.dat");
        assert_eq!(s.save_mempool(&path).unwrap(), 2);
        // Clear and reload: both come back, the child after its parent.
        let ids: Vec<_> = s.mempool.entries().map(|e| e.txid).collect();
        for id in &ids {
            s.mempool.remove_with_descendants(id);
        }
        assert_eq!(s.load_mempool(&path), (2, 0));
        assert_eq!(s.mempool.len(), 2);

        // Garbage and a wrong version are ignored, never a panic.
        std::fs::write(&path, b"not a mempool").unwrap();
        assert_eq!(s.load_mempool(&path), (0, 0));
        std::fs::write(&path, 7u32.to_le_bytes()).unwrap();
        assert_eq!(s.load_mempool(&path), (0, 0));
        assert_eq!(s.load_mempool(&dir.path().join("missing.dat")), (0, 0));
    }
}
