//! [`NodeState`]'s Ethereum transactions: admission to their pool against
//! the tip's account state, pruning as blocks connect, and their place in
//! block templates (run in order, the state root computed).

use rusty_shared_types::{BlockHeader, Hash256, Transaction};
use tracing::debug;

use super::{Announcement, NodeState, TxRejection};
use crate::{
    contracts::{
        exec::{self, BlockExecutor},
        pool::{self, EthPool, PooledEthTx},
        ContractError,
    },
    validation::ValidationError,
};

impl NodeState {
    /// Ethereum transactions waiting for a block.
    pub fn eth_pool(&self) -> &EthPool {
        &self.eth_pool
    }

    /// The nonce `address`'s next transaction should carry, counting the
    /// pool (`eth_getTransactionCount(…, "pending")`).
    pub fn eth_pending_nonce(&self, address: &[u8; 20]) -> Result<u64, ContractError> {
        let (nonce, _) = self.chain.accounts().nonce_and_balance(address)?;
        Ok(self.eth_pool.pending_nonce(address, nonce))
    }

    /// Checks an Ethereum transaction against the next block's rules and
    /// the tip's account state, then pools it. Nothing changes on error.
    pub(super) fn accept_eth(
        &mut self,
        tx: Transaction,
        txid: Hash256,
        now: u64,
    ) -> Result<Hash256, TxRejection> {
        let reject = |e: ContractError| TxRejection::Invalid(ValidationError::Contract(e));
        let next_height = self.chain.height().saturating_add(1);
        let evm = *exec::active_params(self.params(), next_height)
            .ok_or_else(|| reject(ContractError::NotActive(next_height)))?;
        let eth = exec::check_eth_tx(&tx, &evm).map_err(reject)?;
        let world = self.chain.accounts();
        let (nonce, balance) = world.nonce_and_balance(&eth.sender).map_err(reject)?;
        let f = &eth.fields;
        if f.nonce < nonce {
            return Err(reject(ContractError::NonceTooLow {
                expected: nonce,
                found: f.nonce,
            }));
        }
        let needed = pool::intrinsic_gas(f);
        if f.gas_limit < needed {
            return Err(reject(ContractError::IntrinsicGasTooLow {
                needed,
                limit: f.gas_limit,
            }));
        }
        // The balance must cover this one after the sender's pooled ones
        // before it: otherwise it could never be mined, and held a place.
        let want = pool::max_cost(f)
            .saturating_add(self.eth_pool.queued_cost(&eth.sender, nonce..f.nonce));
        if balance < want {
            return Err(reject(ContractError::InsufficientFunds {
                address: crate::contracts::hex(&eth.sender),
                have: balance,
                want,
            }));
        }
        if f.nonce == nonce {
            // Next in line: it must run (intrinsic gas, code size, …) as
            // it would in the next block.
            let ancestors = self.chain.ancestor_hashes(&self.chain.tip());
            let ctx = exec::block_context(&evm, next_height, now, ancestors);
            rusty_vm::evm::execute(&world, &ctx, &exec::call_of(&eth))
                .map_err(|rusty_vm::evm::EvmError::Invalid(why)| reject(ContractError::Evm(why)))?;
        }
        let hash = eth.hash;
        let relay = tx.clone();
        let replaced = self
            .eth_pool
            .insert(
                PooledEthTx {
                    tx,
                    txid,
                    eth,
                    time: now,
                },
                nonce,
            )
            .map_err(reject)?;
        // Only pooled transactions' senders are kept: one refused costs
        // its sender nothing and must not push pooled ones out.
        if let Some(pooled) = self.eth_pool.get(&hash) {
            self.chain.remember_sender(&pooled.eth);
        }
        self.announcements
            .push(Announcement::Transaction(Box::new(relay)));
        debug!(target: "mempool", %txid, hash = %crate::contracts::hex(&hash),
               replaced = replaced.is_some(), "accepted ethereum transaction");
        Ok(txid)
    }

    /// Drops pooled transactions the tip's accounts have passed.
    pub(super) fn prune_eth_pool(&mut self) {
        if self.eth_pool.is_empty() {
            return;
        }
        let world = self.chain.accounts();
        self.eth_pool.prune(|a| {
            world
                .nonce_and_balance(a)
                .map(|(n, _)| n)
                .unwrap_or_default()
        });
    }

    /// Completes a template's transactions with pooled Ethereum
    /// transactions that run (up to `budget` bytes with the settlement
    /// that ends the block, and the block's gas) and sets the header's
    /// state root; `txs` must be final otherwise.
    pub(crate) fn fill_eth_template(
        &self,
        header: &mut BlockHeader,
        txs: &mut Vec<Transaction>,
        height: u64,
        budget: usize,
    ) {
        // The settlement is known only once the transactions ran, and
        // they cannot be taken back out of the executor: when it does not
        // fit, run again with the room it took less.
        let before = txs.len();
        let mut room = budget;
        for _ in 0..MAX_FILLS {
            txs.truncate(before);
            match self.fill_eth_once(header, txs, height, room) {
                Some(used) if used > budget && room > 0 => {
                    room = room.saturating_sub(used - budget);
                }
                _ => return,
            }
        }
        txs.truncate(before);
        self.fill_eth_once(header, txs, height, 0);
    }

    /// One try of [`NodeState::fill_eth_template`] with `budget` bytes for
    /// Ethereum transactions: returns the bytes it added with the
    /// settlement (`None`: it left the template without contracts).
    fn fill_eth_once(
        &self,
        header: &mut BlockHeader,
        txs: &mut Vec<Transaction>,
        height: u64,
        mut budget: usize,
    ) -> Option<usize> {
        let mut used = 0usize;
        let ancestors = self.chain.ancestor_hashes(&self.chain.tip());
        let mut exec = BlockExecutor::new(
            self.chain.accounts(),
            self.params(),
            height,
            header.time,
            ancestors,
        );
        for (i, tx) in txs.iter().enumerate() {
            if let Err(err) = exec.apply(index(i), tx) {
                // Deposits cannot fail but by our own state: mine no
                // account-world change rather than a wrong root.
                tracing::warn!(target: "miner", %err, "template left without contracts");
                return None;
            }
        }
        let runs = {
            let world = exec.world();
            self.eth_pool.candidates(|a| {
                world
                    .nonce_and_balance(a)
                    .map(|(n, _)| n)
                    .unwrap_or_default()
            })
        };
        for run in runs {
            for e in run {
                let size = e.tx.size();
                if size > budget {
                    break;
                }
                // Decoded (its sender recovered) when it entered the pool.
                match exec.apply_decoded(index(txs.len()), &e.tx, Some(Ok(e.eth.clone()))) {
                    Ok(()) => {
                        budget -= size;
                        used += size;
                        txs.push(e.tx.clone());
                    }
                    Err(err) => {
                        // The rest of this sender's run depends on it.
                        debug!(target: "miner", txid = %e.txid, %err, "left out an ethereum transaction");
                        break;
                    }
                }
            }
        }
        if let Some(settlement) = exec.settlement_tx() {
            used += settlement.size();
            txs.push(settlement);
        }
        match exec.finish() {
            Ok(effects) => header.state_root = effects.state_root,
            Err(err) => tracing::warn!(target: "miner", %err, "could not compute the state root"),
        }
        Some(used)
    }
}

/// Tries at filling a template before it is left with no Ethereum
/// transactions (each try takes out the bytes the last one was over by).
const MAX_FILLS: usize = 4;

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
