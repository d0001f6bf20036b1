//! `rusty-cli bench erc20`: ERC-20 transfers connected by the chain, beside
//! revm alone executing the same transactions in memory, in one run.
//!
//! A dev chain in a temporary RocksDB funds a bank account through deposits
//! of matured coinbases; the bank deploys `Token` (tests/eth/contracts/Token.sol,
//! compiled by the pinned solc into `erc20/Token.bin`) and funds 50
//! senders, which mint tokens and then transfer them to fresh addresses.
//! Blocks are built by templates on one node; then a second node on a
//! fresh RocksDB connects the same blocks, and only the transfer blocks'
//! `process_block` (validation, EVM, trie, receipts, one batch) is timed.
//! A third does the same with each block's transactions admitted to its
//! pool first (untimed), as when they were gossiped before the block: its
//! connect reuses the senders recovered at admission.
//! The state-root time per block is measured apart (the trie commit after
//! executing the block). The yardstick runs the same decoded transactions
//! through revm on its own `InMemoryDB` (`rusty_vm::evm::raw_revm_yardstick`).

use std::{fmt, time::Instant};

use ruint::aliases::U256;
use rusty_core::{
    chain::Chain,
    contracts::exec::{self, BlockExecutor},
    mempool::Mempool,
    pow,
    state::NodeState,
    tables::{SCHEMA_VERSION, TABLES},
};
use rusty_crypto::eth::{
    abi::{call_data, word_address},
    keccak256,
    tx::{self as eth_tx, EthTxFields, EthTxType},
    EthKey,
};
use rusty_shared_types::{
    evm::{deposit_script, EthTxPayload},
    Block, Network, Payload, Script, Transaction,
};
use rusty_storage::{Database, RocksOptions};

use crate::connect::{BenchError, TempDir};

const TOKEN_BIN: &str = include_str!("erc20/Token.bin");
const SENDERS: usize = 50;
/// Transactions a sender queues per round (the pool holds 64 ahead).
const PER_ROUND: usize = 60;
const GWEI: u128 = 1_000_000_000;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Erc20Report {
    pub transfers: usize,
    pub blocks: usize,
    pub gas: u64,
    /// Connecting on a node that never saw the transactions.
    pub secs: f64,
    /// Connecting on a node whose pool admitted them first (senders
    /// recovered at admission are reused): the fastest of the runs.
    pub gossiped_secs: f64,
    /// Every run of it, in order.
    pub gossiped_runs: Vec<f64>,
    /// The chain's flush after the fastest run's blocks: what they left
    /// to write (the connect itself writes little).
    pub gossiped_flush_secs: f64,
    /// The yardstick: the fastest of its runs.
    pub raw_secs: f64,
    pub raw_runs: Vec<f64>,
    pub root_ms_avg: f64,
    pub root_ms_max: f64,
    /// Of the connect time: decoding the transactions and recovering
    /// their senders (secp256k1), measured apart.
    pub recover_secs: f64,
    /// Running the blocks' transactions over the trie (before its commit),
    /// measured apart.
    pub execute_secs: f64,
}

impl Erc20Report {
    pub fn tx_per_sec(&self) -> f64 {
        self.transfers as f64 / self.secs
    }
    pub fn raw_tx_per_sec(&self) -> f64 {
        self.transfers as f64 / self.raw_secs
    }
    pub fn ratio(&self) -> f64 {
        self.raw_secs / self.secs
    }
    pub fn gossiped_tx_per_sec(&self) -> f64 {
        self.transfers as f64 / self.gossiped_secs
    }
    pub fn gossiped_ratio(&self) -> f64 {
        self.raw_secs / self.gossiped_secs
    }
}

impl fmt::Display for Erc20Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mgas = self.gas as f64 / 1e6;
        writeln!(
            f,
            "ERC-20 transfers: {} in {} blocks, {:.0} gas each",
            self.transfers,
            self.blocks,
            self.gas as f64 / self.transfers as f64
        )?;
        writeln!(
            f,
            "  connected, transactions never seen (RocksDB, BLAKE3 state trie, receipts): {:.0} tx/s, {:.1} Mgas/s",
            self.tx_per_sec(),
            mgas / self.secs
        )?;
        let per_sec = |runs: &[f64]| {
            runs.iter()
                .map(|s| format!("{:.0}", self.transfers as f64 / s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  connected, transactions gossiped first (their senders recovered at pool admission): {:.0} tx/s, {:.1} Mgas/s (fastest of {} runs: {} tx/s)",
            self.gossiped_tx_per_sec(),
            mgas / self.gossiped_secs,
            self.gossiped_runs.len(),
            per_sec(&self.gossiped_runs)
        )?;
        writeln!(
            f,
            "  raw revm, InMemoryDB, same transactions:                               {:.0} tx/s, {:.1} Mgas/s (fastest of {} runs: {} tx/s)",
            self.raw_tx_per_sec(),
            mgas / self.raw_secs,
            self.raw_runs.len(),
            per_sec(&self.raw_runs)
        )?;
        writeln!(
            f,
            "  ratio connected / raw revm: {:.3} never seen, {:.3} gossiped first",
            self.ratio(),
            self.gossiped_ratio()
        )?;
        let with_flush = self.gossiped_secs + self.gossiped_flush_secs;
        writeln!(
            f,
            "  the chain's flush after the gossiped blocks (their trie nodes, indexes and receipts written): {:.1} ms; counted in, {:.0} tx/s, ratio {:.3}",
            self.gossiped_flush_secs * 1e3,
            self.transfers as f64 / with_flush,
            self.raw_secs / with_flush
        )?;
        let with_recovery = self.raw_secs + self.recover_secs;
        writeln!(
            f,
            "  raw revm plus one-core sender recovery of the same transactions: {:.0} tx/s; ratio {:.3}",
            self.transfers as f64 / with_recovery,
            with_recovery / self.secs
        )?;
        writeln!(
            f,
            "  measured apart, on one core: sender recovery (secp256k1) {:.2} s, EVM over the state trie {:.2} s (raw revm {:.2} s); the connect decodes on worker threads while it runs the block",
            self.recover_secs, self.execute_secs, self.raw_secs
        )?;
        write!(
            f,
            "  state root (the block's changes written into the trie, then committed) per block: {:.1} ms average, {:.1} ms max",
            self.root_ms_avg, self.root_ms_max
        )
    }
}

fn setup_err(e: impl fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn open_state(dir: &TempDir) -> Result<NodeState, BenchError> {
    let db = Database::open_rocksdb(dir.path(), TABLES, SCHEMA_VERSION, RocksOptions::default())?;
    let (chain, _) = Chain::open(db, Network::Dev.params(), rusty_core::now())?;
    Ok(NodeState::new(chain, Mempool::new(300 << 20, 1_000), None))
}

/// Mines one block on `state` from its pool, paying `payout`.
fn mine(state: &mut NodeState, payout: &Script) -> Result<Block, BenchError> {
    let t = state.block_template(payout, rusty_core::now(), Vec::new());
    let mut block = t.block;
    pow::solve(&mut block.header, &t.target, u64::MAX).ok_or_else(|| setup_err("no nonce"))?;
    state.submit_block(block.clone(), rusty_core::now())?;
    Ok(block)
}

/// Spends `coinbase`'s first output, less a fee, into one output locked
/// by `lock`, signed by `key` (pay-to-pubkey-hash).
fn deposit_coin(
    key: &rusty_crypto::ed25519::SecretKey,
    coinbase: &Transaction,
    lock: &Script,
) -> Result<Transaction, BenchError> {
    use rusty_shared_types::{transaction::SEQUENCE_FINAL, Amount, OutPoint, TxIn, TxOut};
    let spent = coinbase
        .outputs
        .first()
        .ok_or_else(|| setup_err("no coinbase output"))?;
    let fee = Amount::from_units(100_000).map_err(setup_err)?;
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint::new(coinbase.txid(), 0),
            unlock: Script::default(),
            sequence: SEQUENCE_FINAL,
        }],
        outputs: vec![TxOut {
            value: spent.value.checked_sub(fee).map_err(setup_err)?,
            lock: lock.clone(),
        }],
        lock_time: 0,
        payload: None,
    };
    let cache = rusty_vm::SighashCache::new(&tx, std::slice::from_ref(spent)).map_err(setup_err)?;
    let sig = rusty_vm::sign_input(&cache, 0, rusty_vm::SighashType::default(), key)
        .map_err(setup_err)?;
    tx.inputs[0].unlock = rusty_vm::p2pkh_unlock(&sig, &key.public_key());
    Ok(tx)
}

/// Mines until the Ethereum pool is empty; returns the blocks.
fn mine_pool(state: &mut NodeState, payout: &Script) -> Result<Vec<Block>, BenchError> {
    let mut blocks = Vec::new();
    while !state.eth_pool().is_empty() {
        let b = mine(state, payout)?;
        if b.txs.len() == 1 {
            return Err(setup_err("a block left the pool's transactions out"));
        }
        blocks.push(b);
    }
    Ok(blocks)
}

fn send(
    state: &mut NodeState,
    key: &EthKey,
    nonce: u64,
    to: Option<[u8; 20]>,
    value: U256,
    input: Vec<u8>,
    gas: u64,
) -> Result<(), BenchError> {
    let raw = EthTxFields {
        tx_type: EthTxType::DynamicFee,
        chain_id: Some(exec_params()?.chain_id),
        nonce,
        max_priority_fee_per_gas: 0,
        max_fee_per_gas: 2 * GWEI,
        gas_limit: gas,
        to,
        value: value.to_be_bytes(),
        input,
        access_list: Vec::new(),
    }
    .sign(key)
    .map_err(setup_err)?;
    let tx = Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        payload: Some(Payload::EthTx(EthTxPayload { raw })),
    };
    state
        .accept_transaction(tx, rusty_core::now())
        .map_err(setup_err)?;
    Ok(())
}

fn exec_params() -> Result<rusty_shared_types::evm::EvmParams, BenchError> {
    Network::Dev
        .params()
        .evm
        .ok_or_else(|| setup_err("the dev network has no account world"))
}

/// The EVM calls of a block's Ethereum transactions.
fn calls_of(block: &Block) -> Result<Vec<rusty_vm::evm::EvmCall>, BenchError> {
    block
        .txs
        .iter()
        .filter_map(|t| match &t.payload {
            Some(Payload::EthTx(p)) => Some(eth_tx::decode(&p.raw).map(|tx| exec::call_of(&tx))),
            _ => None,
        })
        .collect::<Result<_, _>>()
        .map_err(setup_err)
}

/// Runs the benchmark: `transfers` ERC-20 transfers, the gossiped
/// connect and the yardstick `rounds` times each.
pub fn run_erc20_bench(transfers: usize, rounds: usize) -> Result<Erc20Report, BenchError> {
    let evm = exec_params()?;
    let dir_a = TempDir::new("rusty-bench-erc20-a")?;
    let mut a = open_state(&dir_a)?;
    let bank = EthKey::from_bytes(&[0x42; 32]).map_err(setup_err)?;
    let senders: Vec<EthKey> = (1..=SENDERS as u8)
        .map(|i| EthKey::from_bytes(&[i; 32]))
        .collect::<Result<_, _>>()
        .map_err(setup_err)?;
    let miner_key = rusty_crypto::ed25519::SecretKey::from_bytes([0x77; 32]);
    let miner = Script::p2pkh(&rusty_crypto::ed25519::pubkey_hash(&miner_key.public_key()));

    // Set-up: the bank funded by deposits of three matured coinbases (a
    // coinbase may not deposit), the token, the senders funded and minting.
    let mut setup = Vec::new();
    let maturity = a.params().coinbase_maturity;
    for _ in 0..3 + maturity {
        setup.push(mine(&mut a, &miner)?);
    }
    for block in setup.iter().take(3) {
        let coinbase = &block.txs[0];
        let deposit = deposit_coin(&miner_key, coinbase, &deposit_script(&bank.address()))?;
        a.accept_transaction(deposit, rusty_core::now())
            .map_err(|e| setup_err(format!("{e:?}")))?;
    }
    setup.push(mine(&mut a, &miner)?);
    let code = hex::decode(TOKEN_BIN.trim()).map_err(setup_err)?;
    send(&mut a, &bank, 0, None, U256::ZERO, code, 2_000_000)?;
    let token = rusty_crypto::eth::create_address(&bank.address(), 0);
    let coin = U256::from(10u64).pow(U256::from(18u64));
    for (i, s) in senders.iter().enumerate() {
        send(
            &mut a,
            &bank,
            i as u64 + 1,
            Some(s.address()),
            coin,
            Vec::new(),
            21_000,
        )?;
    }
    setup.extend(mine_pool(&mut a, &miner)?);
    let supply = U256::from(10u64).pow(U256::from(24u64)).to_be_bytes();
    for s in &senders {
        send(
            &mut a,
            s,
            0,
            Some(token),
            U256::ZERO,
            call_data("mint(uint256)", &[supply]),
            100_000,
        )?;
    }
    setup.extend(mine_pool(&mut a, &miner)?);

    // The transfers, in rounds the pool holds.
    let mut timed = Vec::new();
    let mut nonces = vec![1u64; SENDERS];
    let mut sent = 0usize;
    while sent < transfers {
        for (i, s) in senders.iter().enumerate() {
            for _ in 0..PER_ROUND {
                if sent == transfers {
                    break;
                }
                let to: [u8; 20] = keccak256(&(sent as u64).to_be_bytes())[12..]
                    .try_into()
                    .map_err(setup_err)?;
                let mut one = [0u8; 32];
                one[31] = 1;
                let data = call_data("transfer(address,uint256)", &[word_address(&to), one]);
                send(&mut a, s, nonces[i], Some(token), U256::ZERO, data, 80_000)?;
                nonces[i] += 1;
                sent += 1;
            }
        }
        timed.extend(mine_pool(&mut a, &miner)?);
    }
    drop(a);

    // A second node connects the same blocks cold (it never saw their
    // transactions); more nodes had each block's transactions in their
    // pool first, as a node does when they were gossiped before the block.
    let cold = connect_timed(&setup, &timed, false)?;
    let gas = cold.gas;

    // The yardstick: the same transactions through revm alone. Both it
    // and the gossiped connect are run `rounds` times, alternating, and
    // each keeps its fastest run: a run of revm alone takes tens of
    // milliseconds, and on this shared machine one run was 0.6-1.7 x the
    // next.
    let setup_calls = setup.iter().map(calls_of).collect::<Result<Vec<_>, _>>()?;
    let timed_calls = timed.iter().map(calls_of).collect::<Result<Vec<_>, _>>()?;
    let ctx = exec::block_context(&evm, 1, rusty_core::now(), Vec::new());
    let rich = U256::from(10u64).pow(U256::from(24u64)).to_be_bytes();
    let (setup_calls, timed_calls) = (setup_calls.concat(), timed_calls.concat());
    let mut raw_runs = Vec::new();
    let mut gossiped_runs: Vec<Connected> = Vec::new();
    for _ in 0..rounds.max(1) {
        let (raw, raw_gas) = rusty_vm::evm::raw_revm_yardstick(
            &ctx,
            &[(bank.address(), rich)],
            &setup_calls,
            &timed_calls,
        )
        .map_err(setup_err)?;
        if raw_gas != gas {
            return Err(setup_err(format!(
                "raw revm used {raw_gas} gas where the chain used {gas}: not the same work"
            )));
        }
        raw_runs.push(raw.as_secs_f64());
        gossiped_runs.push(connect_timed(&setup, &timed, true)?);
    }
    let roots = &cold.roots;
    let avg = roots.iter().sum::<f64>() / roots.len().max(1) as f64;
    let max = roots.iter().copied().fold(0f64, f64::max);
    let best = gossiped_runs
        .iter()
        .min_by(|x, y| x.secs.total_cmp(&y.secs))
        .ok_or_else(|| setup_err("no gossiped run"))?;
    Ok(Erc20Report {
        transfers,
        blocks: timed.len(),
        gas,
        secs: cold.secs,
        gossiped_secs: best.secs,
        gossiped_flush_secs: best.flush_secs,
        gossiped_runs: gossiped_runs.iter().map(|c| c.secs).collect(),
        raw_secs: raw_runs.iter().copied().fold(f64::INFINITY, f64::min),
        raw_runs,
        root_ms_avg: avg,
        root_ms_max: max,
        recover_secs: cold.recover_secs,
        execute_secs: cold.execute_secs - cold.recover_secs,
    })
}

/// What connecting the timed blocks on a fresh node took.
struct Connected {
    secs: f64,
    /// Writing out what the timed blocks left for the chain's next flush
    /// (trie nodes, indexes, receipts), timed after them.
    flush_secs: f64,
    gas: u64,
    /// State-root times per block, ms.
    roots: Vec<f64>,
    recover_secs: f64,
    execute_secs: f64,
}

/// Connects `setup` then `timed` on a node with a fresh RocksDB, timing
/// only the `timed` blocks' `submit_block`. With `gossip_first`, each
/// block's transactions enter the node's pool before it (not timed);
/// without, the parts of a connect are also measured apart.
fn connect_timed(
    setup: &[Block],
    timed: &[Block],
    gossip_first: bool,
) -> Result<Connected, BenchError> {
    let dir = TempDir::new("rusty-bench-erc20-b")?;
    let mut b = open_state(&dir)?;
    for block in setup {
        b.submit_block(block.clone(), rusty_core::now())?;
    }
    let mut out = Connected {
        secs: 0.0,
        flush_secs: 0.0,
        gas: 0,
        roots: Vec::new(),
        recover_secs: 0.0,
        execute_secs: 0.0,
    };
    for block in timed {
        if gossip_first {
            for tx in block.txs.iter().skip(1) {
                b.accept_transaction(tx.clone(), rusty_core::now())
                    .map_err(setup_err)?;
            }
        } else {
            let started = Instant::now();
            calls_of(block)?;
            out.recover_secs += started.elapsed().as_secs_f64();
            let parent = b.chain().tip_entry().header.state_root;
            let height = b.chain().height() + 1;
            // Not through the chain's node cache, which the timed connect
            // below would then find warm.
            let world = b.chain().accounts_uncached(parent);
            let ancestors = b.chain().ancestor_hashes(&b.chain().tip());
            let mut ex = BlockExecutor::new(
                world,
                Network::Dev.params(),
                height,
                block.header.time,
                ancestors,
            );
            let started = Instant::now();
            for (i, tx) in block.txs.iter().enumerate() {
                ex.apply(i as u32, tx).map_err(setup_err)?;
            }
            out.execute_secs += started.elapsed().as_secs_f64();
            let root_started = Instant::now();
            let effects = ex.finish().map_err(setup_err)?;
            out.roots.push(root_started.elapsed().as_secs_f64() * 1e3);
            out.gas += effects.gas_used;
        }
        // A node receives the block it connects: the copy is not timed.
        let block_copy = block.clone();
        let started = Instant::now();
        b.submit_block(block_copy, rusty_core::now())?;
        out.secs += started.elapsed().as_secs_f64();
        if b.chain().tip() != block.hash() {
            return Err(setup_err("a benchmark block did not connect"));
        }
    }
    let started = Instant::now();
    b.flush_chain()?;
    out.flush_secs = started.elapsed().as_secs_f64();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_matches_raw_revm_gas() {
        let r = run_erc20_bench(120, 2).expect("runs");
        assert_eq!(r.transfers, 120);
        assert_eq!((r.gossiped_runs.len(), r.raw_runs.len()), (2, 2));
        assert!(r.blocks >= 1);
        // An ERC-20 transfer to a fresh address: 21,000 + storage writes.
        let per = r.gas / 120;
        assert!((40_000..80_000).contains(&per), "{per} gas per transfer");
    }
}
