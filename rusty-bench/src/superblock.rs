//! The superblock benchmark behind `rusty-cli bench superblock`.
//!
//! A dev chain in a temporary RocksDB, built with real transactions only:
//! coinbases fund everything; `masternodes` ProRegister transactions
//! (10 RSC collateral each) fill the masternode list; `proposals` payment
//! proposals (each burning the proposal fee) ask the treasury for
//! `budget / proposals` each at one superblock `S`; every masternode votes
//! on every proposal in vote transactions of up to [`MAX_VOTES_PER_TX`]
//! proposals, packed into blocks of at most 2,000 vote transactions and
//! 90% of the block size limit, all before the snapshot `S − 8`. Null DKG
//! commitments are mined when a DKG's window closes, masternode payees are
//! paid, the list root is the one a miner computes: every block is valid
//! for a node on the dev network.
//!
//! The database is copied once the votes are in (the copy's tip is a few
//! blocks before the snapshot), then the blocks from there to the quorum
//! height `S + 24` are built once and connected into a fresh copy in every
//! run, each timed around [`Chain::process_block`] (check, store, connect,
//! atomic write):
//!
//! - the **snapshot** block `S − 8`, where the tally decides;
//! - the **superblock** `S`, whose coinbase ends with the treasury payouts
//!   and which prunes the finished proposals; on dev (and main) a
//!   superblock is also a quorum height, where a DKG starts;
//! - the **quorum-start** block `S + 24`: an ordinary block where a DKG
//!   starts, like the superblock;
//! - **ordinary** blocks: every other one from `S − 7` to `S + 23`.
//!
//! Every one of these blocks carries the same `txs_per_block` one-input,
//! two-output P2PKH transactions, and all but the superblock a coinbase
//! with as many extra outputs (same scripts, same encoded size) as the
//! superblock pays proposals, so the blocks differ only in what governance
//! (and the masternode list) does with them. Three such blocks connect
//! first in every run, unmeasured, so the first measured one does not pay
//! for a cold database.

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use rusty_crypto::ed25519::{pubkey_hash, SecretKey};
use rusty_shared_types::{
    governance::{Proposal, ProposalKind, VoteBatch, VoteOutcome, MAX_VOTES_PER_TX},
    masternode::ProRegister,
    transaction::SEQUENCE_FINAL,
    Amount, Block, BlockHeader, ChainParams, Encode, Hash256, Network, OutPoint, Payload,
    QuorumCommitment, Script, Transaction, TxIn, TxOut,
};
use rusty_storage::{Database, RocksOptions};

use rusty_core::{
    chain::{BlockAcceptance, Chain},
    governance::{accrued_treasury, vote_transaction, GovernanceParams, BURN_MARKER},
    pow,
    tables::{SCHEMA_VERSION, TABLES},
    validation,
};

use crate::connect::{BenchError, TempDir};

/// No block is ever too new.
const FAR_FUTURE: u64 = u64::MAX / 2;
/// Loaded blocks connected before the snapshot in every run (not measured).
const WARM_UP: u64 = 3;
/// Most vote transactions per block (the node's block template limit; the
/// template does not also bound their bytes, so this bench packs vote
/// blocks to 90% of the size limit itself).
const MAX_VOTE_TXS_PER_BLOCK: usize = 2_000;
/// Funding keys the coins rotate over.
const FUND_KEYS: usize = 16;
/// The fee of the benchmark's own P2PKH and registration transactions.
const TX_FEE: u64 = 10_000;

/// How big a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperblockBenchConfig {
    /// Masternodes registered (every one votes on every proposal).
    pub masternodes: usize,
    /// Payment proposals, all passing and paid at the superblock.
    pub proposals: usize,
    /// P2PKH transactions in every compared block.
    pub txs_per_block: usize,
    /// Fresh copies of the database the measured blocks connect into.
    pub runs: usize,
}

impl Default for SuperblockBenchConfig {
    fn default() -> Self {
        SuperblockBenchConfig {
            masternodes: 5_000,
            proposals: 200,
            txs_per_block: 1_000,
            runs: 10,
        }
    }
}

/// Median, minimum and maximum of a set of samples (timings in
/// microseconds, or ratios).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let median = match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Spread {
            median,
            min: v.first().copied().unwrap_or(0.0),
            max: v.last().copied().unwrap_or(0.0),
            samples: v.len(),
        }
    }
}

/// One kind of special block: its connection time and how it compares
/// with ordinary blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecialBlock {
    /// Connection time over the runs, µs.
    pub time: Spread,
    /// Its median over the median ordinary block.
    pub ratio: f64,
    /// Per run, its time over the mean of the two ordinary blocks around
    /// it (connected just before and just after, so the machine's load and
    /// the database's state are the same): the paired ratio.
    pub to_neighbours: Spread,
}

/// What one run of the benchmark measured.
#[derive(Debug, Clone)]
pub struct SuperblockReport {
    pub config: SuperblockBenchConfig,
    /// Height of the measured superblock.
    pub superblock: u64,
    /// Proposals its coinbase pays.
    pub paid: usize,
    /// (masternode, proposal) votes and the transactions carrying them.
    pub votes: usize,
    pub vote_txs: usize,
    /// Encoded size of an ordinary compared block and of the superblock.
    pub ordinary_bytes: usize,
    pub superblock_bytes: usize,
    /// Ordinary blocks' connection time, µs.
    pub ordinary: Spread,
    /// The block at the snapshot height, where the tally decides.
    pub snapshot: SpecialBlock,
    /// The superblock: treasury payouts, pruning (and a DKG start).
    pub superblock_connect: SpecialBlock,
    /// The ordinary block at the next quorum height (a DKG starts there,
    /// as at the superblock).
    pub quorum_start: SpecialBlock,
    /// Vote blocks, connected once while building the chain, µs.
    pub vote_blocks: Spread,
    pub votes_per_vote_block: f64,
    /// Building the chain (funding, registrations, proposals, votes, the
    /// measured blocks), seconds.
    pub setup_secs: f64,
}

impl fmt::Display for SuperblockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "superblock: {} masternodes, {} payment proposals, {} votes in {} vote txs; \
             superblock {} pays {} proposals",
            c.masternodes, c.proposals, self.votes, self.vote_txs, self.superblock, self.paid
        )?;
        writeln!(
            f,
            "  compared blocks: {} P2PKH txs each, {} bytes (superblock {} bytes); \
             {} run(s) into fresh RocksDB copies",
            c.txs_per_block, self.ordinary_bytes, self.superblock_bytes, c.runs
        )?;
        let t = &self.ordinary;
        writeln!(
            f,
            "  {:<25}{:>8.0} µs  ({:.0}–{:.0} µs, {} blocks)",
            "ordinary block:", t.median, t.min, t.max, t.samples
        )?;
        for (label, b) in [
            ("snapshot block (tally):", &self.snapshot),
            ("superblock (pay, prune):", &self.superblock_connect),
            ("quorum-start block:", &self.quorum_start),
        ] {
            writeln!(
                f,
                "  {label:<25}{:>8.0} µs  ({:.0}–{:.0} µs)  ratio {:.2}, to its neighbours {:.2} ({:.2}–{:.2})",
                b.time.median,
                b.time.min,
                b.time.max,
                b.ratio,
                b.to_neighbours.median,
                b.to_neighbours.min,
                b.to_neighbours.max
            )?;
        }
        write!(
            f,
            "  {:<25}{:>8.0} µs  ({} blocks of ~{:.0} votes: {:.2} µs per vote)",
            "vote block (build run):",
            self.vote_blocks.median,
            self.vote_blocks.samples,
            self.votes_per_vote_block,
            self.vote_blocks.median / self.votes_per_vote_block.max(1.0)
        )
    }
}

fn setup_err(what: impl fmt::Display) -> BenchError {
    BenchError::Setup(what.to_string())
}

fn amount(units: u64) -> Result<Amount, BenchError> {
    Amount::from_units(units).map_err(|_| setup_err(format!("amount {units} out of range")))
}

/// A deterministic Ed25519 key.
fn ed_key(tag: &str, i: u64) -> SecretKey {
    let mut h = blake3::Hasher::new();
    h.update(tag.as_bytes());
    h.update(&i.to_le_bytes());
    SecretKey::from_bytes(*h.finalize().as_bytes())
}

/// A deterministic BLS operator key (public part).
fn operator_key(i: u64) -> Result<[u8; 48], BenchError> {
    let mut h = blake3::Hasher::new();
    h.update(b"operator");
    h.update(&i.to_le_bytes());
    let mut bytes = *h.finalize().as_bytes();
    // Below the group order.
    bytes[0] &= 0x3f;
    let sk = rusty_crypto::bls::SecretKey::from_bytes(&bytes)
        .map_err(|e| setup_err(format!("operator key: {e:?}")))?;
    Ok(sk.public_key().to_bytes())
}

fn p2pkh_of(key: &SecretKey) -> Script {
    Script::p2pkh(&pubkey_hash(&key.public_key()))
}

/// A spendable output and the funding key that owns it.
#[derive(Debug, Clone)]
struct Coin {
    outpoint: OutPoint,
    output: TxOut,
    key: usize,
}

/// What a block's coinbase pays besides the masternode payee and the
/// treasury payouts.
enum Coinbase<'a> {
    /// Everything to the miner.
    Miner,
    /// The miner, then these outputs (an ordinary block shaped like a
    /// superblock's coinbase).
    Fill(&'a [TxOut]),
    /// `n` equal outputs to the funding keys, instead of the miner.
    Fund(usize),
}

/// A chain being built one valid block at a time on its tip.
struct Builder {
    chain: Chain,
    params: &'static ChainParams,
    miner: Script,
    fund_keys: Vec<SecretKey>,
    fund_locks: Vec<Script>,
    /// Rotates the funding keys.
    next_key: usize,
}

/// The chain in the RocksDB database at `dir` (created if empty).
fn open_chain(dir: &Path, params: &'static ChainParams) -> Result<Chain, BenchError> {
    let db = Database::open_rocksdb(dir, TABLES, SCHEMA_VERSION, RocksOptions::default())?;
    Ok(Chain::open(db, params, FAR_FUTURE)?.0)
}

impl Builder {
    fn height(&self) -> u64 {
        self.chain.height()
    }

    /// The next block on the tip: coinbase (miner or funding outputs,
    /// masternode payee, fill, treasury payouts), null commitments of DKGs
    /// whose mining window closes, then `txs`; the list root a miner
    /// computes; solved.
    fn build(&self, txs: Vec<Transaction>, coinbase: &Coinbase<'_>) -> Result<Block, BenchError> {
        let chain = &self.chain;
        let params = self.params;
        let parent = chain.tip_entry();
        let height = parent.height + 1;
        let rewards = chain.gov().rewards(params, height);
        let mn_payments = chain.mn().expected_payments(rewards.masternode);
        let mn_total = Amount::checked_sum(mn_payments.iter().map(|o| o.value))
            .map_err(|_| setup_err("masternode payments"))?;
        let available = rewards
            .coinbase_subsidy()
            .checked_sub(mn_total)
            .map_err(|_| setup_err("masternode payments above the subsidy"))?;
        let mut outputs = Vec::new();
        let mut fill: &[TxOut] = &[];
        match coinbase {
            Coinbase::Miner => outputs.push(TxOut {
                value: available,
                lock: self.miner.clone(),
            }),
            Coinbase::Fill(f) => {
                fill = f;
                let total = Amount::checked_sum(f.iter().map(|o| o.value))
                    .map_err(|_| setup_err("fill"))?;
                outputs.push(TxOut {
                    value: available
                        .checked_sub(total)
                        .map_err(|_| setup_err("fill above the miner's share"))?,
                    lock: self.miner.clone(),
                });
            }
            Coinbase::Fund(n) => {
                let each = available.units() / (*n).max(1) as u64;
                for k in 0..*n {
                    outputs.push(TxOut {
                        value: amount(each)?,
                        lock: self.fund_locks[(self.next_key + k) % FUND_KEYS].clone(),
                    });
                }
            }
        }
        outputs.extend(mn_payments);
        outputs.extend_from_slice(fill);
        outputs.extend(rewards.treasury_outputs());
        let mut all = Vec::with_capacity(txs.len() + 2);
        all.push(crate::connect::coinbase(height, outputs));
        let window = params.masternode.dkg_mining_window;
        for dkg in chain.mn().pending_dkgs() {
            if dkg.quorum_height.saturating_add(window) <= height {
                all.push(Transaction {
                    version: 1,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    lock_time: 0,
                    payload: Some(Payload::QuorumCommitment(QuorumCommitment::null(
                        dkg.quorum_hash,
                        dkg.quorum_height,
                        dkg.members.len(),
                    ))),
                });
            }
        }
        all.extend(txs);
        let header = BlockHeader {
            version: validation::BLOCK_VERSION,
            prev_hash: chain.tip(),
            merkle_root: validation::block_merkle_root(&all),
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash: Hash256::ZERO,
            time: parent.header.time + params.target_spacing,
            bits: chain.next_bits(parent),
            nonce: 0,
        };
        let mut block = Block { header, txs: all };
        // The list root after the block, as a miner previews it.
        let mut mn = chain.mn().clone();
        let txids: Vec<Hash256> = block.txs.iter().map(Transaction::txid).collect();
        mn.apply_block(
            params,
            &block,
            &txids,
            block.header.prev_hash,
            height,
            rewards.coinbase_reward(),
            &|h| chain.hash_at(h),
        )
        .map_err(|e| setup_err(format!("block {height} breaks a masternode rule: {e}")))?;
        block.header.mn_list_root = mn.list_root();
        let target = pow::target_from_compact(block.header.bits)
            .map_err(|e| setup_err(format!("bits: {e:?}")))?;
        pow::solve(&mut block.header, &target, u64::MAX).ok_or_else(|| setup_err("no nonce"))?;
        Ok(block)
    }

    /// Builds and connects the next block; returns it and how long
    /// `process_block` took.
    fn mine(
        &mut self,
        txs: Vec<Transaction>,
        coinbase: Coinbase<'_>,
    ) -> Result<(Block, Duration), BenchError> {
        let block = self.build(txs, &coinbase)?;
        if let Coinbase::Fund(n) = coinbase {
            self.next_key = (self.next_key + n) % FUND_KEYS;
        }
        let start = Instant::now();
        let (acceptance, _) = self.chain.process_block(block.clone(), FAR_FUTURE)?;
        let took = start.elapsed();
        if acceptance != BlockAcceptance::BecameTip {
            return Err(setup_err("a built block did not become the tip"));
        }
        Ok((block, took))
    }

    /// Mines coinbases paying `n` coins of at least `min_value` each to
    /// the funding keys (at most `per_block` per coinbase).
    fn fund(
        &mut self,
        n: usize,
        min_value: u64,
        per_block: usize,
    ) -> Result<Vec<Coin>, BenchError> {
        let mut coins = Vec::with_capacity(n);
        while coins.len() < n {
            let available = self.params.coinbase_subsidy(self.height() + 1).units();
            let k = ((available / min_value.max(1)) as usize)
                .min(per_block)
                .min(n - coins.len());
            if k == 0 {
                return Err(setup_err("a coinbase cannot fund one coin"));
            }
            let first_key = self.next_key;
            let (block, _) = self.mine(Vec::new(), Coinbase::Fund(k))?;
            let cb = &block.txs[0];
            let txid = cb.txid();
            for (v, out) in cb.outputs.iter().take(k).enumerate() {
                coins.push(Coin {
                    outpoint: OutPoint::new(txid, v as u32),
                    output: out.clone(),
                    key: (first_key + v) % FUND_KEYS,
                });
            }
        }
        Ok(coins)
    }

    /// A transaction spending `coin` (one input) to `outputs` with
    /// `payload`, signed by the coin's funding key.
    fn spend(
        &self,
        coin: &Coin,
        outputs: Vec<TxOut>,
        payload: Option<Payload>,
    ) -> Result<Transaction, BenchError> {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: coin.outpoint,
                unlock: Script::default(),
                sequence: SEQUENCE_FINAL,
            }],
            outputs,
            lock_time: 0,
            payload,
        };
        let key = &self.fund_keys[coin.key];
        rusty_vm::signer::sign_p2pkh(&mut tx, std::slice::from_ref(&coin.output), |_| {
            Some(key.clone())
        })
        .map_err(|e| setup_err(format!("signing: {e}")))?;
        Ok(tx)
    }

    /// A one-input, two-output P2PKH payment of `coin` (minus the fee).
    fn payment(&self, coin: &Coin) -> Result<Transaction, BenchError> {
        let pay = coin.output.value.units().saturating_sub(TX_FEE);
        let to = &self.fund_locks[(coin.key + 1) % FUND_KEYS];
        self.spend(
            coin,
            vec![
                TxOut {
                    value: amount(pay / 2)?,
                    lock: to.clone(),
                },
                TxOut {
                    value: amount(pay - pay / 2)?,
                    lock: coin.output.lock.clone(),
                },
            ],
            None,
        )
    }
}

/// Counts per block when items of `sizes` are packed in order into blocks
/// of at most `budget` bytes and `max_items` items.
fn pack(sizes: impl IntoIterator<Item = usize>, budget: usize, max_items: usize) -> Vec<usize> {
    let mut blocks = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for s in sizes {
        if n > 0 && (bytes + s > budget || n >= max_items) {
            blocks.push(n);
            n = 0;
            bytes = 0;
        }
        n += 1;
        bytes += s;
    }
    if n > 0 {
        blocks.push(n);
    }
    blocks
}

/// Copies a (closed) database directory.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// One masternode's keys.
struct Masternode {
    owner: SecretKey,
    pro_tx_hash: Hash256,
}

/// Runs the benchmark.
pub fn run_superblock_bench(cfg: SuperblockBenchConfig) -> Result<SuperblockReport, BenchError> {
    let setup_start = Instant::now();
    let params: &'static ChainParams = Network::Dev.params();
    let g = GovernanceParams::of(params.network);
    let m = cfg.masternodes;
    let p = cfg.proposals;
    if m == 0 || p == 0 {
        return Err(setup_err("needs at least one masternode and one proposal"));
    }
    let budget = params.max_block_size / 10 * 9;
    let quorum_interval = params.masternode.quorum_interval;
    let master_dir = TempDir::new("sbbench")?;
    let base_dir = TempDir::new("sbbench-base")?;
    let fund_keys: Vec<SecretKey> = (0..FUND_KEYS as u64).map(|i| ed_key("fund", i)).collect();
    let fund_locks: Vec<Script> = fund_keys.iter().map(p2pkh_of).collect();
    let mut b = Builder {
        chain: open_chain(master_dir.path(), params)?,
        params,
        miner: p2pkh_of(&ed_key("miner", 0)),
        fund_keys,
        fund_locks,
        next_key: 0,
    };

    // 1. Funding: collateral plus fee per masternode, the proposal fee
    //    plus a fee per proposal, a coin per compared transaction; then
    //    the coinbase maturity.
    let collateral = params.masternode.collateral.units();
    // Every block from the copy's tip to the one after the quorum height
    // after the superblock carries the load.
    let loaded_blocks = (WARM_UP + g.maturity_window + quorum_interval + 2) as usize;
    let load_total = loaded_blocks * cfg.txs_per_block;
    let reg_coins = b.fund(m, collateral + 100 * TX_FEE, usize::MAX)?;
    let proposal_coins = b.fund(p, g.proposal_fee + 100 * TX_FEE, usize::MAX)?;
    let out_size = TxOut {
        value: Amount::ZERO,
        lock: b.fund_locks[0].clone(),
    }
    .encode()
    .len();
    let per_fan_out = params
        .max_tx_size
        .min(params.max_block_size)
        .saturating_sub(1_024)
        / out_size;
    let load_coins = b.fund(load_total, 100 * TX_FEE, per_fan_out)?;
    for _ in 0..=params.coinbase_maturity {
        b.mine(Vec::new(), Coinbase::Miner)?;
    }
    tracing::info!(target: "bench", height = b.height(), secs = setup_start.elapsed().as_secs_f64(),
                   "funded");

    // 2. Registrations (ProRegister, collateral in output 0, the owner key
    //    votes), as many per block as fit.
    let mut nodes = Vec::with_capacity(m);
    let mut regs = Vec::with_capacity(m);
    for (i, coin) in reg_coins.iter().enumerate() {
        let owner = ed_key("owner", i as u64);
        let owner_pk = owner.public_key().0;
        let owner_lock = p2pkh_of(&owner);
        let payload = ProRegister {
            collateral_vout: 0,
            owner_key: owner_pk,
            operator_key: operator_key(i as u64)?,
            voting_key: owner_pk,
            payout: owner_lock.clone(),
            operator_reward_bps: 0,
            service: format!(
                "/ip4/10.{}.{}.{}/tcp/28433/p2p/12D3KooWbench{i}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            ),
        };
        let change = coin.output.value.units() - collateral - TX_FEE;
        let tx = b.spend(
            coin,
            vec![
                TxOut {
                    value: amount(collateral)?,
                    lock: owner_lock,
                },
                TxOut {
                    value: amount(change)?,
                    lock: coin.output.lock.clone(),
                },
            ],
            Some(Payload::ProRegister(payload)),
        )?;
        nodes.push(Masternode {
            owner,
            pro_tx_hash: tx.txid(),
        });
        regs.push(tx);
    }
    let counts = pack(regs.iter().map(Transaction::size), budget, usize::MAX);
    let mut regs = regs.into_iter();
    for n in counts {
        b.mine(regs.by_ref().take(n).collect(), Coinbase::Miner)?;
    }
    if b.chain.mn().valid_count() != m {
        return Err(setup_err(format!(
            "{} of {m} masternodes on the list",
            b.chain.mn().valid_count()
        )));
    }
    tracing::info!(target: "bench", height = b.height(), secs = setup_start.elapsed().as_secs_f64(),
                   masternodes = m, "registered");

    // 3. Where the superblock goes: after the proposal and vote blocks,
    //    with room for the warm-up blocks before its snapshot.
    let chunks: Vec<usize> = (0..p)
        .step_by(MAX_VOTES_PER_TX)
        .map(|start| (p - start).min(MAX_VOTES_PER_TX))
        .collect();
    let vote_size = |k: usize| {
        vote_transaction(VoteBatch {
            pro_tx_hash: Hash256::ZERO,
            made_at: 0,
            votes: vec![(Hash256::ZERO, VoteOutcome::Yes); k],
            signature: [0; 64],
        })
        .size()
    };
    let chunk_sizes: Vec<usize> = chunks.iter().map(|k| vote_size(*k)).collect();
    // Vote transactions in mining order: every masternode's first chunk,
    // then every masternode's second…
    let vote_order: Vec<(usize, usize)> = (0..chunks.len())
        .flat_map(|c| (0..m).map(move |i| (c, i)))
        .collect();
    let vote_counts = pack(
        vote_order.iter().map(|(c, _)| chunk_sizes[*c]),
        budget,
        MAX_VOTE_TXS_PER_BLOCK,
    );
    let payee = |j: usize| {
        let h = blake3::hash(format!("payee {j}").as_bytes());
        Script::p2pkh(&Hash256(*h.as_bytes()))
    };
    let make_proposal = |j: usize, superblock: u64, units: u64| Proposal {
        title: format!("benchmark proposal {j}"),
        url: format!("https://example.org/proposals/{j}"),
        doc_hash: Hash256(*blake3::hash(format!("document {j}").as_bytes()).as_bytes()),
        first_superblock: superblock,
        superblocks: 1,
        kind: ProposalKind::TreasuryPayment {
            payee: payee(j),
            amount: units,
        },
    };
    let burn_lock = Script::data_carrier(BURN_MARKER).ok_or_else(|| setup_err("burn script"))?;
    let proposal_tx = |b: &Builder, j: usize, superblock: u64, units: u64| {
        b.spend(
            &proposal_coins[j],
            vec![TxOut {
                value: amount(g.proposal_fee)?,
                lock: burn_lock.clone(),
            }],
            Some(Payload::Proposal(make_proposal(j, superblock, units))),
        )
    };
    // Sizes do not depend on the heights or the amount (fixed-width fields).
    let proposal_sizes: Vec<usize> = (0..p)
        .map(|j| proposal_tx(&b, j, 0, 1).map(|t| t.size()))
        .collect::<Result<_, _>>()?;
    let proposal_counts = pack(proposal_sizes, budget, usize::MAX);
    let last_vote = b.height() + proposal_counts.len() as u64 + vote_counts.len() as u64;
    let superblock = (last_vote + g.maturity_window + 1 + WARM_UP)
        .div_ceil(g.superblock_cycle)
        .saturating_mul(g.superblock_cycle);
    let snapshot = g.snapshot_height(superblock);
    let base_height = snapshot - WARM_UP - 1;
    let quorum_start = superblock + quorum_interval;
    let last = quorum_start + 1;
    if g.is_superblock(quorum_start)
        || g.snapshot_height(g.next_superblock(superblock)) <= quorum_start
    {
        return Err(setup_err("no ordinary quorum height after the superblock"));
    }
    // Every proposal asks for an equal share of the superblock's budget.
    let budget_units = g.budget(accrued_treasury(params, superblock)).units();
    let ask = budget_units / p as u64 / 1_000 * 1_000;
    if ask == 0 {
        return Err(setup_err("the treasury budget cannot pay every proposal"));
    }

    // 4. The proposals.
    let mut proposal_ids = Vec::with_capacity(p);
    let mut next = 0;
    for n in proposal_counts {
        let txs: Vec<Transaction> = (next..next + n)
            .map(|j| proposal_tx(&b, j, superblock, ask))
            .collect::<Result<_, _>>()?;
        next += n;
        proposal_ids.extend(txs.iter().map(Transaction::txid));
        b.mine(txs, Coinbase::Miner)?;
    }
    if b.chain.gov().proposals().count() != p {
        return Err(setup_err("not every proposal is live"));
    }
    tracing::info!(target: "bench", height = b.height(), superblock, proposals = p, ask,
                   "proposals mined");

    // 5. The votes: in ascending proposal order, chunks of MAX_VOTES_PER_TX,
    //    one transaction per masternode and chunk, made at the parent.
    let mut sorted = proposal_ids.clone();
    sorted.sort();
    let index_of: std::collections::HashMap<Hash256, usize> = proposal_ids
        .iter()
        .enumerate()
        .map(|(j, h)| (*h, j))
        .collect();
    let chunk_ids: Vec<&[Hash256]> = sorted.chunks(MAX_VOTES_PER_TX).collect();
    let chain_name = params.network.name();
    let mut vote_times = Vec::with_capacity(vote_counts.len());
    let mut order = vote_order.iter();
    for n in &vote_counts {
        let made_at = b.height();
        let txs: Vec<Transaction> = order
            .by_ref()
            .take(*n)
            .map(|&(c, i)| {
                let votes = chunk_ids[c]
                    .iter()
                    .map(|h| {
                        let j = index_of[h];
                        // One in ten says no: every proposal still passes.
                        let outcome = if (i + j).is_multiple_of(10) {
                            VoteOutcome::No
                        } else {
                            VoteOutcome::Yes
                        };
                        (*h, outcome)
                    })
                    .collect();
                let mut vote = VoteBatch {
                    pro_tx_hash: nodes[i].pro_tx_hash,
                    made_at,
                    votes,
                    signature: [0; 64],
                };
                vote.signature = nodes[i].owner.sign(&vote.signing_hash(chain_name).0).0;
                vote_transaction(vote)
            })
            .collect();
        let (_, took) = b.mine(txs, Coinbase::Miner)?;
        vote_times.push(took.as_secs_f64() * 1e6);
    }
    let votes = m * p;
    let vote_txs = vote_order.len();
    tracing::info!(target: "bench", height = b.height(), votes, vote_txs,
                   blocks = vote_counts.len(), secs = setup_start.elapsed().as_secs_f64(),
                   "votes mined");

    // 6. Empty blocks up to the copy's tip.
    while b.height() < base_height {
        b.mine(Vec::new(), Coinbase::Miner)?;
    }
    if b.height() != base_height {
        return Err(setup_err("the votes ran past the snapshot"));
    }
    // Everything cached (coins, the vote records) goes to the database.
    let flush_start = Instant::now();
    b.chain.flush()?;
    let flush_secs = flush_start.elapsed().as_secs_f64();
    b.chain.db().flush()?;
    let Builder {
        chain,
        params: _,
        miner,
        fund_keys,
        fund_locks,
        next_key,
    } = b;
    drop(chain);
    // One open and close before copying, so every copy starts from the
    // same settled files (whatever the write-ahead log still held is in
    // table files), and no run pays for a replay.
    let settle_start = Instant::now();
    drop(open_chain(master_dir.path(), params)?);
    let settle_secs = settle_start.elapsed().as_secs_f64();
    copy_dir(master_dir.path(), base_dir.path())?;
    tracing::info!(target: "bench", height = base_height, flush_secs, settle_secs,
                   secs = setup_start.elapsed().as_secs_f64(), "flushed and copied");
    let mut b = Builder {
        chain: open_chain(master_dir.path(), params)?,
        params,
        miner,
        fund_keys,
        fund_locks,
        next_key,
    };

    // 7. The measured blocks, built once on the master chain, each with
    //    the load; all but the superblock with the fill.
    let load: Vec<Transaction> = load_coins
        .iter()
        .map(|c| b.payment(c))
        .collect::<Result<_, _>>()?;
    let mut load = load.into_iter();
    let fill: Vec<TxOut> = (0..p)
        .map(|j| {
            Ok(TxOut {
                value: amount(1_000)?,
                lock: payee(j),
            })
        })
        .collect::<Result<_, BenchError>>()?;
    let mut blocks = Vec::new();
    let mut paid = 0;
    while b.height() < last {
        let h = b.height() + 1;
        let txs: Vec<Transaction> = load.by_ref().take(cfg.txs_per_block).collect();
        let coinbase = if h == superblock {
            Coinbase::Miner
        } else {
            Coinbase::Fill(&fill)
        };
        if h == superblock {
            paid = b.chain.gov().rewards(params, h).payouts.len();
        }
        let (block, _) = b.mine(txs, coinbase)?;
        if h == snapshot && b.chain.gov().decision().map(|d| d.payments.len()) != Some(p) {
            return Err(setup_err(
                "the snapshot did not decide to pay every proposal",
            ));
        }
        if h == superblock && b.chain.gov().proposals().count() != 0 {
            return Err(setup_err("the superblock left proposals live"));
        }
        blocks.push(block);
    }
    if paid != p {
        return Err(setup_err(format!(
            "the superblock pays {paid} of {p} proposals"
        )));
    }
    let bytes_at = |h: u64| {
        blocks
            .get((h - base_height - 1) as usize)
            .map_or(0, |b| b.encode().len())
    };
    let ordinary_bytes = bytes_at(superblock - 1);
    let superblock_bytes = bytes_at(superblock);
    drop(b);
    drop(master_dir);
    let setup_secs = setup_start.elapsed().as_secs_f64();
    tracing::info!(target: "bench", setup_secs, blocks = blocks.len(), "measured blocks built");

    // 8. The runs: a fresh copy of the database each, every block timed.
    let mut times: Vec<Vec<f64>> = Vec::with_capacity(cfg.runs.max(1));
    for run in 0..cfg.runs.max(1) {
        let started = Instant::now();
        let dir = TempDir::new("sbbench-run")?;
        copy_dir(base_dir.path(), dir.path())?;
        let copied = started.elapsed().as_secs_f64();
        let mut chain = open_chain(dir.path(), params)?;
        let opened = started.elapsed().as_secs_f64();
        if chain.height() != base_height {
            return Err(setup_err("the copy is not at the base height"));
        }
        let mut t = Vec::with_capacity(blocks.len());
        for block in &blocks {
            // Every block starts from an empty coin cache (a node's state
            // right after a flush), so the cache's occasional rehash as it
            // doubles does not land on whichever block crosses it.
            chain.flush()?;
            let block = block.clone();
            let start = Instant::now();
            chain.process_block(block, FAR_FUTURE)?;
            t.push(start.elapsed().as_secs_f64() * 1e6);
        }
        if chain.height() != last {
            return Err(setup_err("a run did not connect every block"));
        }
        times.push(t);
        tracing::info!(target: "bench", run, copy_secs = copied, open_secs = opened - copied,
                       connect_secs = started.elapsed().as_secs_f64() - opened, "run done");
    }
    // Block at height `h` in a run.
    let at = |t: &[f64], h: u64| t[(h - base_height - 1) as usize];
    let ordinary = Spread::of(
        times
            .iter()
            .flat_map(|t| {
                (snapshot + 1..=last)
                    .filter(|h| *h != superblock && *h != quorum_start)
                    .map(|h| at(t, h))
            })
            .collect(),
    );
    let special = |h: u64| {
        let time = Spread::of(times.iter().map(|t| at(t, h)).collect());
        SpecialBlock {
            time,
            ratio: time.median / ordinary.median,
            to_neighbours: Spread::of(
                times
                    .iter()
                    .map(|t| at(t, h) / ((at(t, h - 1) + at(t, h + 1)) / 2.0))
                    .collect(),
            ),
        }
    };

    Ok(SuperblockReport {
        config: cfg,
        superblock,
        paid,
        votes,
        vote_txs,
        ordinary_bytes,
        superblock_bytes,
        ordinary,
        snapshot: special(snapshot),
        superblock_connect: special(superblock),
        quorum_start: special(quorum_start),
        votes_per_vote_block: votes as f64 / vote_counts.len().max(1) as f64,
        vote_blocks: Spread::of(vote_times),
        setup_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_respects_bytes_and_counts() {
        assert_eq!(pack([5, 5, 5, 5], 10, 100), vec![2, 2]);
        assert_eq!(pack([5, 5, 5], 100, 2), vec![2, 1]);
        assert_eq!(pack([20, 1], 10, 100), vec![1, 1]);
        assert!(pack([], 10, 10).is_empty());
    }

    #[test]
    fn a_small_superblock_is_built_paid_and_measured() {
        let r = run_superblock_bench(SuperblockBenchConfig {
            masternodes: 8,
            proposals: 70,
            txs_per_block: 3,
            runs: 1,
        })
        .unwrap();
        assert_eq!(r.paid, 70);
        assert_eq!(r.votes, 8 * 70);
        // Two chunks (64 + 6) per masternode.
        assert_eq!(r.vote_txs, 16);
        // S − 7 … S + 25 but the superblock and S + 24.
        assert_eq!(r.ordinary.samples, 31);
        assert_eq!(r.superblock_connect.time.samples, 1);
        assert!(r.superblock_connect.ratio > 0.0 && r.snapshot.to_neighbours.median > 0.0);
        // Same shape: the ordinary coinbase has as many outputs as the
        // superblock pays.
        assert!(r.ordinary_bytes.abs_diff(r.superblock_bytes) < 200);
        assert!(r.to_string().contains("superblock (pay, prune)"));
    }
}
