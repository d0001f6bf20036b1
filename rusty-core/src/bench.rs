//! The block-connection benchmark behind `rusty-cli bench connect`.
//!
//! Builds a chain in a temporary RocksDB whose first block's coinbase fans
//! out to one output per benchmark transaction, then times
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

use crate::{
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
    crate::miner::solve(header, &target, u64::MAX)
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

fn coinbase(height: u64, outputs: Vec<TxOut>) -> Transaction {
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

/// Runs the benchmark.
pub fn run_connect_bench(
    blocks: usize,
    txs_per_block: usize,
    threads: usize,
) -> Result<ConnectReport, BenchError> {
    let mut params: ChainParams = rusty_shared_types::params::DEV.clone();
    params.max_block_size = 64 << 20;
    let params: &'static ChainParams = Box::leak(Box::new(params));
    let dir = tempfile_dir()?;
    let db = Database::open_rocksdb(dir.path(), TABLES, SCHEMA_VERSION, RocksOptions::default())?;
    let far_future = u64::MAX / 2;
    let (mut chain, _) = Chain::open(db, params, far_future)?;

    let keys: Vec<SecretKey> = (0..16u8)
        .map(|i| SecretKey::from_bytes([i.wrapping_add(1); 32]))
        .collect();
    let pubs: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
    let total = blocks.saturating_mul(txs_per_block);
    let subsidy = params.subsidy(1).units();
    let each = subsidy / total.max(1) as u64;
    let fee = 1_000u64;
    if each <= fee.saturating_mul(2) {
        return Err(BenchError::Setup(
            "too many transactions for one subsidy".into(),
        ));
    }
    let amount = |u: u64| Amount::from_units(u).map_err(|_| BenchError::Setup("amount".into()));

    // Block 1: the fan-out coinbase; then enough blocks to mature it.
    let mut time = params.genesis_time;
    let bits = params.pow_limit_bits;
    let fan_out: Vec<TxOut> = (0..total)
        .map(|i| {
            Ok(TxOut {
                value: amount(each)?,
                lock: Script::p2pkh(&pubkey_hash(&pubs[i % pubs.len()])),
            })
        })
        .collect::<Result<_, BenchError>>()?;
    let cb1 = coinbase(1, fan_out.clone());
    let cb1_txid = cb1.txid();
    let mut height = 0u64;
    let push = |chain: &mut Chain,
                txs: Vec<Transaction>,
                height: &mut u64,
                time: &mut u64|
     -> Result<Block, BenchError> {
        *height += 1;
        *time += params.target_spacing;
        let b = make_block(chain.tip(), *time, bits, txs)?;
        Ok(b)
    };
    let b1 = push(&mut chain, vec![cb1], &mut height, &mut time)?;
    chain.process_block(b1, far_future)?;
    for _ in 0..params.coinbase_maturity {
        let cb = coinbase(
            height + 1,
            vec![TxOut {
                value: Amount::ZERO,
                lock: Script::default(),
            }],
        );
        let b = push(&mut chain, vec![cb], &mut height, &mut time)?;
        chain.process_block(b, far_future)?;
    }

    // Sign every benchmark transaction and assemble the blocks up front.
    let mut bench_blocks = Vec::with_capacity(blocks);
    let mut sig_sets: Vec<Vec<(PublicKey, [u8; 32], Signature)>> = Vec::with_capacity(blocks);
    let mut prev = chain.tip();
    for b in 0..blocks {
        let h = height + 1 + b as u64;
        let mut txs = vec![coinbase(
            h,
            vec![TxOut {
                value: amount(params.subsidy(h).units())?,
                lock: Script::p2pkh(&pubkey_hash(&pubs[0])),
            }],
        )];
        let mut sigs = Vec::with_capacity(txs_per_block);
        for t in 0..txs_per_block {
            let i = b * txs_per_block + t;
            let key = &keys[i % keys.len()];
            let spent = fan_out[i].clone();
            let pay = each - fee;
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prevout: OutPoint::new(cb1_txid, i as u32),
                    unlock: Script::default(),
                    sequence: SEQUENCE_FINAL,
                }],
                outputs: vec![
                    TxOut {
                        value: amount(pay / 2)?,
                        lock: Script::p2pkh(&pubkey_hash(&pubs[(i + 1) % pubs.len()])),
                    },
                    TxOut {
                        value: amount(pay - pay / 2)?,
                        lock: spent.lock.clone(),
                    },
                ],
                lock_time: 0,
                payload: None,
            };
            let k = key.clone();
            rusty_vm::signer::sign_p2pkh(&mut tx, std::slice::from_ref(&spent), |_| {
                Some(k.clone())
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
        time += params.target_spacing;
        let block = make_block(prev, time, bits, txs)?;
        prev = block.hash();
        bench_blocks.push(block);
        sig_sets.push(sigs);
    }
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
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> std::io::Result<TempDir> {
    let dir = std::env::temp_dir().join(format!(
        "rusty-bench-{}-{}",
        std::process::id(),
        crate::now()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}
