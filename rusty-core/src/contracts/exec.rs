//! A block's account-world effects: its deposit outputs credited, its
//! Ethereum transactions run in block order, their receipts, and the
//! state root the header must carry. Templates and connects run the same
//! [`BlockExecutor`]; a template skips a transaction that fails, a
//! connect fails the block.

use std::rc::Rc;

use ruint::aliases::U256;
use rusty_crypto::eth::tx::{self as eth_tx, EthTx};
use rusty_shared_types::{
    evm::{parse_deposit, to_wei, EvmParams},
    ChainParams, Hash256, Payload, Transaction, TxOut,
};
use rusty_storage::{trie::NewNodes, Database};
use rusty_vm::evm::{self, BlockContext, EvmCall, EvmError, EvmState};

use super::{pool::SenderCache, withdraw, AccountWorld, ContractError, EthReceipt, SharedWorld};

/// What a block changed in the account world, to write with it.
#[derive(Debug, Default)]
pub struct BlockEffects {
    /// The header's `state_root` (zero for the empty state).
    pub state_root: Hash256,
    pub nodes: NewNodes,
    pub code: super::CodeByHash,
    pub receipts: Vec<EthReceipt>,
    /// Gas used by the block's Ethereum transactions.
    pub gas_used: u64,
    /// Base fees burned, and what the EVM burned besides (EIP-6780), in
    /// wei-units.
    pub burned: U256,
    /// What the block pays out of the account world (its settlement
    /// transaction's outputs).
    pub withdrawals: Vec<TxOut>,
    /// Wei-units credited by deposits.
    pub deposited: U256,
}

impl BlockEffects {
    /// Adds the block's new code to its write batch. Not the state nodes,
    /// the receipts or the hash index: the chain holds them until its next
    /// flush ([`rusty_storage::trie::UnwrittenNodes`], and its unwritten
    /// index).
    pub fn write(&self, batch: &mut rusty_storage::WriteBatch) {
        super::write_code(batch, &self.code);
    }
}

/// Deletes the hash index entries of disconnected `block`, once written.
/// Its receipts stay, keyed by its hash (as its nodes stay: other roots
/// may share them): a log filter that reported its logs reports them again
/// with `removed: true`, and a block connected again writes the same.
pub fn unwrite(
    db: &Database,
    block: &Hash256,
    batch: &mut rusty_storage::WriteBatch,
) -> Result<(), ContractError> {
    if let Some(receipts) = db.get::<crate::tables::Receipts>(block)? {
        for r in &receipts.0 {
            batch.delete::<crate::tables::EthTxIndex>(&Hash256(r.tx_hash));
        }
    }
    Ok(())
}

/// The network's account world if it is active at `height`.
pub fn active_params(params: &ChainParams, height: u64) -> Option<&EvmParams> {
    params
        .evm
        .as_ref()
        .filter(|e| height >= e.activation_height)
}

/// The block a transaction at `height` runs in; `ancestors` are the
/// hashes of the blocks before it, parent first (up to 256).
pub fn block_context(
    evm: &EvmParams,
    height: u64,
    time: u64,
    ancestors: Vec<[u8; 32]>,
) -> BlockContext {
    BlockContext {
        chain_id: evm.chain_id,
        number: height,
        timestamp: time,
        gas_limit: evm.block_gas_limit,
        base_fee: evm.base_fee,
        // Priority fees go to the zero address, which no key controls:
        // paying them to the miner needs the settlement transaction.
        coinbase: [0; 20],
        // The chain has no randomness beacon: PREVRANDAO reads the
        // parent's hash, which its miner could grind, as pre-merge
        // Ethereum's DIFFICULTY-based randomness could be.
        prevrandao: ancestors.first().copied().unwrap_or([0; 32]),
        ancestors,
    }
}

/// The gas price an Ethereum transaction pays under `base_fee`.
pub fn effective_gas_price(tx: &EthTx, base_fee: u64) -> u128 {
    let f = &tx.fields;
    f.max_fee_per_gas
        .min(u128::from(base_fee).saturating_add(f.max_priority_fee_per_gas))
}

/// The EVM call an Ethereum transaction makes.
pub fn call_of(tx: &EthTx) -> EvmCall {
    let f = &tx.fields;
    let dynamic = f.tx_type == eth_tx::EthTxType::DynamicFee;
    EvmCall {
        caller: tx.sender,
        to: f.to,
        value: f.value,
        input: f.input.clone(),
        gas_limit: f.gas_limit,
        gas_price: f.max_fee_per_gas,
        max_priority_fee: dynamic.then_some(f.max_priority_fee_per_gas),
        nonce: f.nonce,
        tx_type: f.tx_type.number(),
        access_list: f.access_list.clone(),
        simulate: false,
    }
}

/// Checks that depend on the transaction alone and the network: shape,
/// chain id, fee cap, gas limit.
pub fn check_eth_tx(tx: &Transaction, evm: &EvmParams) -> Result<EthTx, ContractError> {
    check_decoded(tx, decode_payload(tx, None)?, evm)
}

/// The Ethereum transaction a native one carries, decoded and its sender
/// recovered (or taken from `senders`).
fn decode_payload(tx: &Transaction, senders: Option<&SenderCache>) -> Result<EthTx, ContractError> {
    let Some(Payload::EthTx(p)) = &tx.payload else {
        return Err(ContractError::BadShape);
    };
    Ok(eth_tx::decode_known(&p.raw, |hash| {
        senders.and_then(|s| s.get(hash))
    })?)
}

/// [`check_eth_tx`] for a transaction already decoded.
fn check_decoded(tx: &Transaction, eth: EthTx, evm: &EvmParams) -> Result<EthTx, ContractError> {
    if tx.version != 1 || !tx.inputs.is_empty() || !tx.outputs.is_empty() || tx.lock_time != 0 {
        return Err(ContractError::BadShape);
    }
    match eth.fields.chain_id {
        None => return Err(ContractError::NotReplayProtected),
        Some(id) if id != evm.chain_id => {
            return Err(ContractError::WrongChainId {
                expected: evm.chain_id,
                found: id,
            })
        }
        Some(_) => {}
    }
    if eth.fields.max_fee_per_gas < u128::from(evm.base_fee) {
        return Err(ContractError::FeeCapTooLow {
            max_fee: eth.fields.max_fee_per_gas,
            base_fee: evm.base_fee,
        });
    }
    if eth.fields.gas_limit > evm.block_gas_limit {
        return Err(ContractError::GasLimitExceeded);
    }
    Ok(eth)
}

/// Hands each of a block's transactions, in block order, to `apply`
/// with its Ethereum transaction decoded (`None` for the others), while
/// worker threads decode the ones ahead: recovering a secp256k1 sender
/// (unless `senders` knows it) costs several times running the
/// transaction, so the calling thread runs transactions as soon as they
/// are decoded instead of waiting for the whole block, and decodes itself
/// whenever a decoded one is not ready. Stops at `apply`'s first error.
fn for_each_decoded(
    txs: &[Transaction],
    senders: &SenderCache,
    mut apply: impl FnMut(
        usize,
        &Transaction,
        Option<Result<EthTx, ContractError>>,
    ) -> Result<(), ContractError>,
) -> Result<(), ContractError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    type Decoded = Option<Result<EthTx, ContractError>>;
    let decode = |t: &Transaction| -> Decoded {
        match t.payload {
            Some(Payload::EthTx(_)) => Some(
                // A decoder that panics fails its transaction (the node's
                // fault) instead of leaving the block waiting for it.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    decode_payload(t, Some(senders))
                }))
                .unwrap_or_else(|_| Err(ContractError::State("the decoder panicked".into()))),
            ),
            _ => None,
        }
    };
    let count = txs
        .iter()
        .filter(|t| matches!(t.payload, Some(Payload::EthTx(_))))
        .count();
    let workers = crate::cores().saturating_sub(1).min(count / 16);
    if workers == 0 {
        return txs
            .iter()
            .enumerate()
            .try_for_each(|(i, t)| apply(i, t, decode(t)));
    }
    let ahead = crate::claims::Claims::new(txs);
    let stop = AtomicBool::new(false);
    // Decodes the next unclaimed transaction; false when none is left.
    let claim = || ahead.claim(decode);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if !claim() {
                        break;
                    }
                }
            });
        }
        let mut run = || {
            for (i, tx) in txs.iter().enumerate() {
                let decoded = loop {
                    if let Some(d) = ahead.get(i) {
                        break d.clone();
                    }
                    // Not ready: decode one further ahead, or wait out the
                    // worker holding this one.
                    if !claim() {
                        std::thread::yield_now();
                    }
                };
                apply(i, tx, decoded)?;
            }
            Ok(())
        };
        let result = run();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// Runs a block's account-world effects transaction by transaction.
#[derive(Debug)]
pub struct BlockExecutor<'a> {
    /// Shared with `runner`, which reads it while a transaction runs;
    /// changed only between transactions.
    world: Rc<SharedWorld<'a>>,
    evm: Option<EvmParams>,
    height: u64,
    /// One revm instance for the block's Ethereum transactions (when
    /// contracts are active at its height).
    runner: Option<evm::BlockEvm<'a>>,
    effects: BlockEffects,
    /// The block's settlement transaction, once seen: its position and
    /// outputs.
    settlement: Option<(u32, Vec<TxOut>)>,
}

impl<'a> BlockExecutor<'a> {
    /// Effects of a block at `height` and `time` on `world`, the state
    /// its parent's header commits to; `ancestors` as [`block_context`].
    pub fn new(
        world: AccountWorld<'a>,
        params: &ChainParams,
        height: u64,
        time: u64,
        ancestors: Vec<[u8; 32]>,
    ) -> Self {
        let evm = active_params(params, height).copied();
        let world = Rc::new(SharedWorld(std::cell::RefCell::new(world)));
        let runner = evm.as_ref().map(|e| {
            let state: Rc<dyn EvmState + 'a> = world.clone();
            evm::BlockEvm::new(state, &block_context(e, height, time, ancestors))
        });
        BlockExecutor {
            world,
            runner,
            evm,
            height,
            effects: BlockEffects::default(),
            settlement: None,
        }
    }

    /// The settlement transaction the block must end with, if it pays
    /// withdrawals.
    pub fn settlement_tx(&self) -> Option<Transaction> {
        (!self.effects.withdrawals.is_empty())
            .then(|| withdraw::settlement_tx(self.height, self.effects.withdrawals.clone()))
    }

    /// Checks the block's settlement transaction (if any) against the
    /// withdrawals: it must be the last of `tx_count` transactions and pay
    /// exactly them, in order.
    pub fn check_settlement(&self, tx_count: usize) -> Result<(), ContractError> {
        let expected = &self.effects.withdrawals;
        match &self.settlement {
            None if expected.is_empty() => Ok(()),
            None => Err(ContractError::BadSettlement(format!(
                "the block pays {} withdrawals and has no settlement transaction",
                expected.len()
            ))),
            Some((index, _)) if *index as usize + 1 != tx_count => Err(
                ContractError::BadSettlement("the settlement transaction is not last".into()),
            ),
            Some((_, outputs)) if outputs != expected => {
                Err(ContractError::BadSettlement(format!(
                    "it pays {} outputs where the block's withdrawals are {}",
                    outputs.len(),
                    expected.len()
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// The state so far (for previews).
    pub fn world(&self) -> std::cell::Ref<'_, AccountWorld<'a>> {
        self.world.0.borrow()
    }

    /// Applies transaction `index` of the block: credits its deposit
    /// outputs and runs its Ethereum transaction. On error nothing
    /// changed.
    pub fn apply(&mut self, index: u32, tx: &Transaction) -> Result<(), ContractError> {
        self.apply_decoded(index, tx, None)
    }

    /// [`BlockExecutor::apply`] with the Ethereum transaction already
    /// decoded (`decoded`): by a block's decoding workers, or when a
    /// pooled transaction was admitted.
    pub(crate) fn apply_decoded(
        &mut self,
        index: u32,
        tx: &Transaction,
        decoded: Option<Result<EthTx, ContractError>>,
    ) -> Result<(), ContractError> {
        let (Some(evm), Some(runner)) = (self.evm, self.runner.as_mut()) else {
            // Not active: deposit outputs are plain burns, and no
            // Ethereum transaction may be mined.
            return match tx.payload {
                Some(Payload::EthTx(_) | Payload::Settlement(_)) => {
                    Err(ContractError::NotActive(self.height))
                }
                _ => Ok(()),
            };
        };
        if let Some(Payload::Settlement(p)) = &tx.payload {
            if self.settlement.is_some() {
                return Err(ContractError::BadSettlement(
                    "a second settlement transaction".into(),
                ));
            }
            if p.height != self.height || !tx.inputs.is_empty() || tx.lock_time != 0 {
                return Err(ContractError::BadSettlement(
                    "a malformed settlement transaction".into(),
                ));
            }
            self.settlement = Some((index, tx.outputs.clone()));
            return Ok(());
        }
        if let Some(Payload::EthTx(_)) = &tx.payload {
            let eth = match decoded {
                Some(d) => check_decoded(tx, d?, &evm)?,
                None => check_eth_tx(tx, &evm)?,
            };
            let remaining = evm.block_gas_limit.saturating_sub(self.effects.gas_used);
            if eth.fields.gas_limit > remaining {
                return Err(ContractError::GasLimitExceeded);
            }
            let outcome = runner
                .execute(&call_of(&eth))
                .map_err(|EvmError::Invalid(why)| ContractError::Evm(why))?;
            let (added, removed) = self.world.0.borrow().balance_flow();
            self.world.0.borrow_mut().apply(&outcome.changes)?;
            // What the transaction took out of the accounts: its base fee,
            // and what the EVM burned besides (under Cancun, a contract
            // created and self-destructed to itself in one transaction
            // burns its balance, EIP-6780). Counted so the supply adds up.
            let (added_now, removed_now) = self.world.0.borrow().balance_flow();
            let vanished = removed_now
                .saturating_sub(removed)
                .saturating_sub(added_now.saturating_sub(added));
            let fee_burn = U256::from(outcome.gas_used).saturating_mul(U256::from(evm.base_fee));
            self.settle_withdrawals(&eth.sender, &outcome.logs)?;
            let price = effective_gas_price(&eth, evm.base_fee);
            self.effects.gas_used = self.effects.gas_used.saturating_add(outcome.gas_used);
            self.effects.burned = self.effects.burned.saturating_add(vanished.max(fee_burn));
            self.effects.receipts.push(EthReceipt {
                tx_hash: eth.hash,
                index,
                from: eth.sender,
                to: eth.fields.to,
                contract_address: outcome.created,
                tx_type: eth.fields.tx_type.number(),
                success: outcome.success,
                gas_used: outcome.gas_used,
                cumulative_gas_used: self.effects.gas_used,
                effective_gas_price: price,
                logs: outcome.logs,
            });
            return Ok(());
        }
        let deposits: Vec<([u8; 20], U256)> = tx
            .outputs
            .iter()
            .filter_map(|o| parse_deposit(&o.lock).map(|a| (a, U256::from(to_wei(o.value)))))
            .collect();
        if tx.is_coinbase() && !deposits.is_empty() {
            // Credited at once, a reward could be withdrawn and spent in
            // the next block, before the maturity a coinbase waits for.
            return Err(ContractError::CoinbaseDeposit);
        }
        for (address, wei) in deposits {
            self.world.0.borrow_mut().credit(&address, wei)?;
            self.effects.deposited = self.effects.deposited.saturating_add(wei);
        }
        Ok(())
    }

    /// Takes what a transaction sent to the withdraw contract out of the
    /// account world: a payable withdrawal joins the settlement, another
    /// goes back to the transaction's sender.
    fn settle_withdrawals(
        &mut self,
        sender: &[u8; 20],
        logs: &[rusty_vm::evm::EvmLog],
    ) -> Result<(), ContractError> {
        for (script, wei) in logs.iter().filter_map(withdraw::parse_log) {
            self.world
                .0
                .borrow_mut()
                .debit(&withdraw::WITHDRAW_ADDRESS, wei)?;
            match withdraw::payout(&script, wei) {
                Some(out) => self.effects.withdrawals.push(out),
                None => self.world.0.borrow_mut().credit(sender, wei)?,
            }
        }
        Ok(())
    }

    /// The supply invariant of the block so far: balances rose by what
    /// deposits brought and fell by what withdrawals paid out and base fees
    /// burned, to the wei-unit (what moved between accounts cancels).
    pub fn check_supply(&self) -> Result<(), ContractError> {
        let (added, removed) = self.world.0.borrow().balance_flow();
        let withdrawn = self.effects.withdrawals.iter().fold(U256::ZERO, |sum, o| {
            sum.saturating_add(U256::from(to_wei(o.value)))
        });
        let inflow = added
            .saturating_add(withdrawn)
            .saturating_add(self.effects.burned);
        let outflow = removed.saturating_add(self.effects.deposited);
        if inflow != outflow {
            return Err(ContractError::State(format!(
                "supply invariant broken at height {}: balances +{added} -{removed}, \
                 deposits {}, withdrawals {withdrawn}, burned {}",
                self.height, self.effects.deposited, self.effects.burned
            )));
        }
        Ok(())
    }

    /// Commits the state: the effects to write and the header's root.
    pub fn finish(mut self) -> Result<BlockEffects, ContractError> {
        // Checked on every block in debug builds (tests, the dev profile);
        // the property test checks it over random sequences.
        if cfg!(debug_assertions) {
            self.check_supply()?;
        }
        let (root, nodes, code) = self.world.0.borrow_mut().commit()?;
        self.effects.state_root = root;
        self.effects.nodes = nodes;
        self.effects.code = code;
        Ok(self.effects)
    }
}

/// A whole block's effects on `world` (its parent's state), checked
/// against the root its header carries; `ancestors` as [`block_context`];
/// `senders` holds senders recovered before (the pool's).
pub fn execute_block(
    world: AccountWorld<'_>,
    params: &ChainParams,
    height: u64,
    block: &rusty_shared_types::Block,
    ancestors: Vec<[u8; 32]>,
    senders: &SenderCache,
) -> Result<BlockEffects, ContractError> {
    let mut exec = BlockExecutor::new(world, params, height, block.header.time, ancestors);
    let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    if exec.evm.is_some() {
        for_each_decoded(&block.txs, senders, |i, tx, decoded| {
            exec.apply_decoded(index(i), tx, decoded)
        })?;
    } else {
        for (i, tx) in block.txs.iter().enumerate() {
            exec.apply(index(i), tx)?;
        }
    }
    exec.check_settlement(block.txs.len())?;
    let effects = exec.finish()?;
    if effects.state_root != block.header.state_root {
        return Err(ContractError::BadStateRoot {
            expected: effects.state_root,
            found: block.header.state_root,
        });
    }
    Ok(effects)
}
