//! Connecting one block's transactions: input lookup (in-block spends
//! first), parallel script and fee checks over runs of transactions with
//! batch signature verification, the coinbase limit, and the index and
//! undo records of the block's write batch.

use std::collections::{HashMap, HashSet};

use rusty_shared_types::{Amount, Block, ChainParams, Hash256, OutPoint, Transaction};
use rusty_vm::DeferredChecker;

use super::{ChainError, CoinChanges, CoinView, Result};
use crate::{
    tables::{ActiveChain, BlockUndo, Coin, Undo},
    validation::{self, ValidationError},
};

pub(super) struct Connecting<'a> {
    pub(super) block: &'a Block,
    pub(super) hash: Hash256,
    /// The txids of `block.txs`, in order.
    pub(super) txids: &'a [Hash256],
    pub(super) height: u64,
    /// Median time past of the parent (for lock times).
    pub(super) parent_mtp: u64,
    /// What the coinbase may pay, by the governance state.
    pub(super) rewards: &'a crate::governance::BlockRewards,
}

/// Validates `block` against the UTXO set in `db` for connection at `height`
/// and adds its effects (coins, undo data, indexes) to `batch`. Nothing is
/// written on error.
///
/// Three phases: (1) serially, decide where each input's coin comes from (an
/// earlier transaction of this block, or the database) and catch double
/// spends inside the block; (2) on every core, each thread takes a run of
/// transactions, reads their coins, checks amounts, lock times and scripts,
/// then batch-verifies that run's signatures; (3) serially, sum the fees,
/// check the coinbase and build the write batch.
pub(super) fn connect_block_into(
    coins: CoinView<'_>,
    params: &ChainParams,
    connecting: Connecting<'_>,
    batch: &mut rusty_storage::WriteBatch,
) -> Result<CoinChanges> {
    let Connecting {
        block,
        hash,
        txids,
        height,
        parent_mtp,
        rewards,
    } = connecting;
    // Phase 1: coin sources and in-block double spends.
    let mut created: HashMap<OutPoint, Coin> = HashMap::new();
    let mut spent_here: HashSet<OutPoint> = HashSet::new();
    // Spends of coins from before this block (the others never reach disk).
    let mut spent_outside: Vec<OutPoint> = Vec::new();
    let mut sources: Vec<Vec<Option<Coin>>> = Vec::with_capacity(block.txs.len());
    for (tx, txid) in block.txs.iter().zip(txids).skip(1) {
        if !validation::is_final(tx, height, parent_mtp) {
            return Err(ValidationError::NonFinal(tx.lock_time).into());
        }
        let mut tx_sources = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if !spent_here.insert(input.prevout) {
                return Err(ValidationError::MissingOrSpent(input.prevout).into());
            }
            let in_block = created.remove(&input.prevout);
            if in_block.is_none() {
                spent_outside.push(input.prevout);
            }
            tx_sources.push(in_block);
        }
        sources.push(tx_sources);
        add_outputs(&mut created, tx, *txid, height, false);
    }

    // Phase 2: coins, amounts, scripts and signatures, in parallel runs.
    let txs = &block.txs[1..];
    // Threads for the checks and signatures: every core.
    let threads = crate::cores().min(txs.len().div_ceil(64)).max(1);
    let run_len = txs.len().div_ceil(threads).max(1);
    let mut work: Vec<Run<'_>> = txs
        .chunks(run_len)
        .zip(sources.chunks_mut(run_len))
        .enumerate()
        .map(|(i, (run, srcs))| (i * run_len, run, srcs))
        .collect();
    let own = if work.is_empty() {
        None
    } else {
        Some(work.remove(0))
    };
    let runs: Vec<RunResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|(offset, run, srcs)| {
                scope.spawn(move || check_run(coins, params, height, offset, run, srcs))
            })
            .collect();
        let mut results = Vec::with_capacity(threads);
        if let Some((offset, run, srcs)) = own {
            results.push(check_run(coins, params, height, offset, run, srcs));
        }
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err((
                    usize::MAX,
                    ChainError::Inconsistent("validation thread panicked".into()),
                ))
            }));
        }
        results
    });

    // Phase 3: fees, coinbase, writes. The first failing transaction (in
    // block order) names the error, so the verdict does not depend on timing.
    let mut fees = Amount::ZERO;
    let mut undo = BlockUndo::default();
    let mut first_err: Option<(usize, ChainError)> = None;
    for run in runs {
        match run {
            Ok((run_fees, coins)) => {
                fees = fees
                    .checked_add(run_fees)
                    .map_err(|_| ValidationError::InputValueOutOfRange)?;
                undo.spent.extend(coins);
            }
            Err((i, e)) => {
                if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_err = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    let coinbase = &block.txs[0];
    // A superblock's coinbase ends with exactly its treasury payouts; no
    // other block pays the treasury (its coinbase may not exceed the
    // miner's and masternode's share plus fees).
    let payouts = rewards.treasury_outputs();
    if !payouts.is_empty()
        && (coinbase.outputs.len() <= payouts.len()
            || coinbase.outputs[coinbase.outputs.len() - payouts.len()..] != payouts[..])
    {
        return Err(
            ValidationError::from(crate::governance::GovError::BadTreasuryOutputs(
                payouts.len(),
            ))
            .into(),
        );
    }
    let max = rewards
        .coinbase_subsidy()
        .checked_add(fees)
        .and_then(|m| m.checked_add(rewards.payout_total()))
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    let paid = coinbase
        .output_value()
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    if paid > max {
        return Err(ValidationError::BadCoinbaseAmount { max, found: paid }.into());
    }
    add_outputs(&mut created, coinbase, txids[0], height, true);

    // The txids' index entries wait for the chain's next flush
    // (`UnwrittenIndex`).
    batch.put::<Undo>(&hash, &undo);
    batch.put::<ActiveChain>(&height, &hash);
    Ok(CoinChanges {
        spent: spent_outside,
        created,
    })
}

/// A run of transactions for one validation thread: its offset among the
/// block's non-coinbase transactions, the transactions and their coin sources.
type Run<'a> = (usize, &'a [Transaction], &'a mut [Vec<Option<Coin>>]);

/// Fees and spent coins (in input order) of a run of transactions, or the
/// index of the first failing transaction (within the block's non-coinbase
/// transactions) with its error.
type RunResult = std::result::Result<(Amount, Vec<Coin>), (usize, ChainError)>;

/// Phase 2 of [`connect_block_into`] for one run of transactions starting at
/// `offset`: coins from the database where phase 1 left `None`, amount and
/// lock checks, scripts with deferred signatures, then one batch
/// verification of the run's signatures.
fn check_run(
    view: CoinView<'_>,
    params: &ChainParams,
    height: u64,
    offset: usize,
    txs: &[Transaction],
    sources: &mut [Vec<Option<Coin>>],
) -> RunResult {
    let mut fees = Amount::ZERO;
    let mut spent = Vec::with_capacity(txs.len());
    let mut checker = DeferredChecker::with_capacity(txs.len());
    // Number of deferred signatures after each transaction.
    let mut sigs_after = Vec::with_capacity(txs.len());
    let mut read_time = std::time::Duration::ZERO;
    let started = std::time::Instant::now();
    for (i, (tx, srcs)) in txs.iter().zip(sources.iter_mut()).enumerate() {
        let fail = |e: ChainError| (offset + i, e);
        let read_start = std::time::Instant::now();
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for (input, src) in tx.inputs.iter().zip(srcs.iter_mut()) {
            let coin = match src.take() {
                Some(c) => Some(c),
                None => view.get(&input.prevout).map_err(fail)?,
            }
            .ok_or_else(|| fail(ValidationError::MissingOrSpent(input.prevout).into()))?;
            coins.push(coin);
        }
        read_time += read_start.elapsed();
        // A settlement's outputs come from the account world (checked
        // when the block's contracts run), not from inputs.
        if matches!(tx.payload, Some(rusty_shared_types::Payload::Settlement(_))) {
            sigs_after.push(checker.len());
            continue;
        }
        let fee =
            validation::check_tx_inputs(tx, &coins, height, params).map_err(|e| fail(e.into()))?;
        fees = fees
            .checked_add(fee)
            .map_err(|_| fail(ValidationError::InputValueOutOfRange.into()))?;
        validation::verify_scripts(tx, &coins, &mut checker).map_err(|e| fail(e.into()))?;
        sigs_after.push(checker.len());
        spent.extend(coins);
    }
    let scripts_done = started.elapsed();
    if let Some(bad) = rusty_crypto::ed25519::first_invalid(&checker.into_items()) {
        let i = sigs_after.partition_point(|&end| end <= bad);
        let txid = txs.get(i).map(Transaction::txid).unwrap_or_default();
        return Err((offset + i, ValidationError::BadSignature(txid).into()));
    }
    tracing::trace!(target: "chain", txs = txs.len(), read_us = read_time.as_micros() as u64,
                    scripts_us = (scripts_done - read_time).as_micros() as u64,
                    verify_us = (started.elapsed() - scripts_done).as_micros() as u64, "validated run");
    Ok((fees, spent))
}

fn add_outputs(
    created: &mut HashMap<OutPoint, Coin>,
    tx: &Transaction,
    txid: Hash256,
    height: u64,
    is_coinbase: bool,
) {
    for (vout, out) in tx.outputs.iter().enumerate() {
        if out.lock.is_unspendable() {
            continue;
        }
        created.insert(
            OutPoint::new(txid, vout as u32),
            Coin {
                output: out.clone(),
                height,
                is_coinbase,
            },
        );
    }
}
