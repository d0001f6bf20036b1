//! The block-connection benchmark behind `rusty-cli bench connect`.
//!
//! Builds a chain in a temporary RocksDB whose first block's coinbase fans
//! out to one output per benchmark transaction (more blocks' coinbases when
//! one would be over the size limits), then times
//! [`Chain::process_block`] (decode-free: check, store, connect with batch
//! signature verification, atomic write) over blocks of 1-in-2-out
//! pay-to-pubkey-hash transactions. The yardstick is the raw Ed25519 batch
//! verification of the same signatures on the same threads, measured in the
//! same run.

use std::{fmt, time::Instant};

use rusty_crypto::ed25519::{pubkey_hash, verify_batch_parallel, PublicKey, SecretKey, Signature};
use rusty_shared_types::{
    transaction::SEQUENCE_FINAL, Amount, Block, BlockHeader, ChainParams, CoinbasePayload, Encode,
    Hash256, OutPoint, Payload, Script, Transaction, TxIn, TxOut,
};
use rusty_storage::{Database, RocksOptions};

use rusty_core::{
    chain::{Chain, ChainError},
    pow,
    tables::{SCHEMA_VERSION, TABLES},
    validation,
};

/// Benchmark failures (set-up problems, not measurements).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] rusty_storage::StorageError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    LocalNet(#[from] rusty_node::localnet::LocalNetError),
    #[error("benchmark set-up: {0}")]
    Setup(String),
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct ConnectReport {
    pub blocks: usize,
    pub txs_per_block: usize,
    pub threads: usize,
    pub connect_secs: f64,
    pub tx_per_sec: f64,
    pub raw_verify_per_sec: f64,
}

impl ConnectReport {
    /// Connected tx/s over raw signature verifications/s (one signature per tx).
    pub fn ratio(&self) -> f64 {
        self.tx_per_sec / self.raw_verify_per_sec
    }
}

impl fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "connect: {} blocks x {} P2PKH txs into RocksDB, {} verify thread(s)",
            self.blocks, self.txs_per_block, self.threads
        )?;
        writeln!(
            f,
            "  connected:            {:>10.0} tx/s  ({:.3} s)",
            self.tx_per_sec, self.connect_secs
        )?;
        writeln!(
            f,
            "  raw ed25519 batch:    {:>10.0} sig/s (same signatures, same threads)",
            self.raw_verify_per_sec
        )?;
        write!(f, "  ratio connect/raw:    {:>10.2}", self.ratio())
    }
}

fn solve(header: &mut BlockHeader) -> Result<(), BenchError> {
    let target = pow::target_from_compact(header.bits)
        .map_err(|e| BenchError::Setup(format!("bits: {e:?}")))?;
    rusty_core::pow::solve(header, &target, u64::MAX)
        .ok_or_else(|| BenchError::Setup("no nonce".into()))?;
    Ok(())
}

fn make_block(
    chain_tip: Hash256,
    time: u64,
    bits: u32,
    txs: Vec<Transaction>,
) -> Result<Block, BenchError> {
    let mut header = BlockHeader {
        version: validation::BLOCK_VERSION,
        prev_hash: chain_tip,
        merkle_root: validation::block_merkle_root(&txs),
        state_root: Hash256::ZERO,
        mn_list_root: Hash256::ZERO,
        chainlock_hash: Hash256::ZERO,
        time,
        bits,
        nonce: 0,
    };
    solve(&mut header)?;
    Ok(Block { header, txs })
}

/// A coinbase at `height` paying `outputs`.
pub(crate) fn coinbase(height: u64, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs,
        lock_time: 0,
        payload: Some(Payload::Coinbase(CoinbasePayload {
            height,
            extra: Vec::new(),
        })),
    }
}

/// The end of a chain being built: each block goes one target spacing
/// after its parent, at the proof-of-work limit.
struct Tip {
    hash: Hash256,
    height: u64,
    time: u64,
    spacing: u64,
    bits: u32,
}

impl Tip {
    fn extend(&mut self, txs: Vec<Transaction>) -> Result<Block, BenchError> {
        self.height += 1;
        self.time += self.spacing;
        let b = make_block(self.hash, self.time, self.bits, txs)?;
        self.hash = b.hash();
        Ok(b)
    }
}

/// (public key, sighash, signature) of one benchmark transaction.
pub(crate) type SigCheck = (PublicKey, [u8; 32], Signature);

/// Blocks full of signed pay-to-pubkey-hash transactions, built in memory
/// on top of a given parent, shared by the connect and network benchmarks.
#[derive(Debug)]
pub(crate) struct P2pkhChain {
    /// The fan-out blocks (each coinbase pays one output per benchmark
    /// transaction it funds) and the empty blocks that mature them.
    pub setup: Vec<Block>,
    /// Each: a coinbase and `txs_per_block` one-input, two-output P2PKH
    /// transactions with one Ed25519 signature each.
    pub blocks: Vec<Block>,
    /// The signatures of each benchmark block's transactions, in order.
    pub sigs: Vec<Vec<SigCheck>>,
}

/// Builds `blocks` benchmark blocks of `txs_per_block` transactions after
/// the block `parent` at `parent_height` with time `parent_time`, preceded
/// by the fan-out and maturity blocks they need. Times go up by the target
/// spacing per block; every block is at the proof-of-work limit (right for
/// chains that never retarget, like dev). Each fan-out coinbase stays
/// within `max_fan_out_bytes` and `params`' block and transaction size
/// limits, so the chain is valid for a node running with `params`; the
/// benchmark blocks themselves are only as small as `txs_per_block` makes
/// them.
pub(crate) fn build_p2pkh_chain(
    params: &ChainParams,
    parent: Hash256,
    parent_height: u64,
    parent_time: u64,
    blocks: usize,
    txs_per_block: usize,
    max_fan_out_bytes: usize,
) -> Result<P2pkhChain, BenchError> {
    let keys: Vec<SecretKey> = (0..16u8)
        .map(|i| SecretKey::from_bytes([i.wrapping_add(1); 32]))
        .collect();
    let pubs: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
    let locks: Vec<Script> = pubs
        .iter()
        .map(|p| Script::p2pkh(&pubkey_hash(p)))
        .collect();
    let total = blocks.saturating_mul(txs_per_block);
    let fee = 1_000u64;
    let amount = |u: u64| Amount::from_units(u).map_err(|_| BenchError::Setup("amount".into()));
    let mut tip = Tip {
        hash: parent,
        height: parent_height,
        time: parent_time,
        spacing: params.target_spacing,
        bits: params.pow_limit_bits,
    };

    // The fan-out: as many outputs per coinbase as its size limits allow.
    let out_size = TxOut {
        value: Amount::ZERO,
        lock: locks[0].clone(),
    }
    .encode()
    .len();
    let per_coinbase = params
        .max_block_size
        .min(params.max_tx_size)
        .min(max_fan_out_bytes)
        .saturating_sub(1_024)
        / out_size.max(1);
    if per_coinbase == 0 {
        return Err(BenchError::Setup("no room for a fan-out coinbase".into()));
    }
    let mut setup = Vec::new();
    // (outpoint, output) funding benchmark transaction i.
    let mut fan_out: Vec<(OutPoint, TxOut)> = Vec::with_capacity(total);
    let mut remaining = total;
    while remaining > 0 {
        let n = remaining.min(per_coinbase);
        let each = params.coinbase_subsidy(tip.height + 1).units() / n as u64;
        if each <= fee.saturating_mul(2) {
            return Err(BenchError::Setup(
                "too many transactions for one subsidy".into(),
            ));
        }
        let outputs: Vec<TxOut> = (0..n)
            .map(|j| {
                let i = fan_out.len() + j;
                Ok(TxOut {
                    value: amount(each)?,
                    lock: locks[i % locks.len()].clone(),
                })
            })
            .collect::<Result<_, BenchError>>()?;
        let cb = coinbase(tip.height + 1, outputs.clone());
        let txid = cb.txid();
        fan_out.extend(
            outputs
                .into_iter()
                .enumerate()
                .map(|(v, o)| (OutPoint::new(txid, v as u32), o)),
        );
        setup.push(tip.extend(vec![cb])?);
        remaining -= n;
    }
    for _ in 0..params.coinbase_maturity {
        let cb = coinbase(
            tip.height + 1,
            vec![TxOut {
                value: Amount::ZERO,
                lock: Script::default(),
            }],
        );
        setup.push(tip.extend(vec![cb])?);
    }

    // Sign every benchmark transaction (on all cores: blocks are
    // independent), then chain the blocks together.
    let sign_block = |b: usize| -> Result<(Vec<Transaction>, Vec<SigCheck>), BenchError> {
        let mut txs = Vec::with_capacity(txs_per_block);
        let mut sigs = Vec::with_capacity(txs_per_block);
        for t in 0..txs_per_block {
            let i = b * txs_per_block + t;
            let key = &keys[i % keys.len()];
            let (prevout, spent) = fan_out[i].clone();
            let pay = spent.value.units() - fee;
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prevout,
                    unlock: Script::default(),
                    sequence: SEQUENCE_FINAL,
                }],
                outputs: vec![
                    TxOut {
                        value: amount(pay / 2)?,
                        lock: locks[(i + 1) % locks.len()].clone(),
                    },
                    TxOut {
                        value: amount(pay - pay / 2)?,
                        lock: spent.lock.clone(),
                    },
                ],
                lock_time: 0,
                payload: None,
            };
            rusty_vm::signer::sign_p2pkh(&mut tx, std::slice::from_ref(&spent), |_| {
                Some(key.clone())
            })
            .map_err(|e| BenchError::Setup(format!("signing: {e}")))?;
            let cache = rusty_vm::SighashCache::new(&tx, std::slice::from_ref(&spent))
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let msg = cache
                .sighash(0, rusty_vm::SighashType::default())
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let unlock = tx.inputs[0].unlock.as_bytes();
            // P2PKH unlock: push(64-byte sig) push(32-byte key).
            let mut sig = [0u8; 64];
            sig.copy_from_slice(&unlock[1..65]);
            sigs.push((key.public_key(), msg.0, Signature(sig)));
            txs.push(tx);
        }
        Ok((txs, sigs))
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, blocks.max(1));
    let per_thread = blocks.div_ceil(threads);
    let signed: Vec<(Vec<Transaction>, Vec<SigCheck>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let range = (w * per_thread)..((w + 1) * per_thread).min(blocks);
                let sign_block = &sign_block;
                scope.spawn(move || range.map(sign_block).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        let mut all = Vec::with_capacity(blocks);
        for w in workers {
            let part = w
                .join()
                .map_err(|_| BenchError::Setup("a signing thread panicked".into()))??;
            all.extend(part);
        }
        Ok::<_, BenchError>(all)
    })?;

    let mut bench_blocks = Vec::with_capacity(blocks);
    let mut sig_sets = Vec::with_capacity(blocks);
    for (mut txs, sigs) in signed {
        let h = tip.height + 1;
        let mut all = Vec::with_capacity(txs.len() + 1);
        all.push(coinbase(
            h,
            vec![TxOut {
                value: params.coinbase_subsidy(h),
                lock: locks[0].clone(),
            }],
        ));
        all.append(&mut txs);
        bench_blocks.push(tip.extend(all)?);
        sig_sets.push(sigs);
    }
    Ok(P2pkhChain {
        setup,
        blocks: bench_blocks,
        sigs: sig_sets,
    })
}

/// Runs the benchmark.
pub fn run_connect_bench(
    blocks: usize,
    txs_per_block: usize,
    threads: usize,
) -> Result<ConnectReport, BenchError> {
    let mut params: ChainParams = rusty_shared_types::params::DEV.clone();
    params.max_block_size = 64 << 20;
    let params: &'static ChainParams = Box::leak(Box::new(params));
    let dir = TempDir::new("bench")?;
    let db = Database::open_rocksdb(dir.path(), TABLES, SCHEMA_VERSION, RocksOptions::default())?;
    let far_future = u64::MAX / 2;
    let (mut chain, _) = Chain::open(db, params, far_future)?;
    let total = blocks.saturating_mul(txs_per_block);

    // The fan-out and maturity blocks, then every benchmark block, signed
    // and assembled up front.
    let built = build_p2pkh_chain(
        params,
        chain.tip(),
        0,
        params.genesis_time,
        blocks,
        txs_per_block,
        usize::MAX,
    )?;
    for b in built.setup {
        chain.process_block(b, far_future)?;
    }
    let bench_blocks = built.blocks;
    let sig_sets = built.sigs;
    let bytes: usize = bench_blocks.iter().map(|b| b.encode().len()).sum();
    tracing::debug!(target: "bench", bytes, "benchmark blocks built");

    // Interleave the two measurements block by block (alternating which goes
    // first) so both see the same machine: these hosts are noisy.
    let mut connect_secs = 0.0;
    let mut raw_secs = 0.0;
    for (i, (block, sigs)) in bench_blocks.into_iter().zip(sig_sets).enumerate() {
        let raw = |sigs| -> Result<f64, BenchError> {
            let start = Instant::now();
            verify_batch_parallel(sigs, threads)
                .map_err(|e| BenchError::Setup(format!("raw verify: {e}")))?;
            Ok(start.elapsed().as_secs_f64())
        };
        let mut sigs = Some(sigs);
        if i % 2 == 0 {
            raw_secs += raw(sigs.take().unwrap_or_default())?;
        }
        let start = Instant::now();
        chain.process_block(block, far_future)?;
        connect_secs += start.elapsed().as_secs_f64();
        if let Some(sigs) = sigs {
            raw_secs += raw(sigs)?;
        }
    }
    // The coin cache's write counts: flush it inside the measurement.
    let start = Instant::now();
    chain.flush()?;
    connect_secs += start.elapsed().as_secs_f64();

    Ok(ConnectReport {
        blocks,
        txs_per_block,
        threads,
        connect_secs,
        tx_per_sec: total as f64 / connect_secs,
        raw_verify_per_sec: total as f64 / raw_secs,
    })
}

/// A temporary directory removed on drop, without a test-only dependency.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new empty directory `rusty-<prefix>-<pid>-<n>` in the system's
    /// temporary directory.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "rusty-{prefix}-{}-{}-{n}",
            std::process::id(),
            rusty_core::now()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
