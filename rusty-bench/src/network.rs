//! The network benchmark behind `rusty-cli bench network`.
//!
//! One run measures, on loopback with real RocksDB datadirs and real
//! libp2p connections ([`LocalNet`]):
//!
//! - **the yardstick**: raw loopback TCP throughput of this machine (one
//!   tokio connection, 64 KiB writes), measured first in the same run;
//! - **initial sync from 1 peer and from 3 peers**: a chain of dev blocks
//!   full of signed pay-to-pubkey-hash transactions (built once in memory
//!   with the connect benchmark's builder, handed to a seed untimed; the
//!   other seeds download it from that one before the clock starts) is
//!   downloaded and connected by a fresh node, timed from just before it
//!   starts until its tip reaches the chain's; blocks/s, tx/s and MB/s of
//!   encoded block data, and that MB/s as a fraction of the loopback TCP
//!   figure;
//! - **tx gossip latency across 5 nodes**: node 0's wallet sends
//!   transactions one at a time, paced, and every other node records when
//!   each one entered its mempool; p50, p95 and max over every (transaction,
//!   receiving node) pair.
//!
//! No tracing subscriber is installed here: the nodes log nothing unless
//! the caller installed one.

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use rusty_network::message::{BLOCKS_REPLY_SOFT_BYTES, MAX_BLOCKS_PER_REQUEST};
use rusty_shared_types::{Address, Amount, Block, Encode, Hash256, Network};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::connect::{build_p2pkh_chain, BenchError};
use rusty_node::{
    localnet::{LocalNet, LocalNetConfig},
    node::Node,
    service::ChainHandle,
};

/// Bytes sent over the loopback TCP yardstick connection.
const TCP_BYTES: u64 = 512 << 20;
/// Write size on the yardstick connection.
const TCP_CHUNK: usize = 64 << 10;
/// Blocks handed to a seed per chain-service call.
const SUBMIT_BATCH: usize = 32;
/// Nodes in the gossip phase.
const GOSSIP_NODES: usize = 5;
/// Time between two gossip sends: long against one propagation, so the
/// figure is propagation, not queueing.
const GOSSIP_PACE: Duration = Duration::from_millis(10);
/// What each gossip transaction pays (to node 0's own address).
const GOSSIP_AMOUNT_UNITS: u64 = 1_000_000;
/// Give up on a wait for the network when nothing moved for this long (a
/// stuck set-up, not a measurement; the sync's own stall handling takes up
/// to 10 s plus a 30 s penalty box).
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// Largest block this benchmark builds. A `blocks` reply stops at 8 MiB
/// (`BLOCKS_REPLY_SOFT_BYTES`), and the sync takes the blocks a short
/// reply left out for blocks that peer does not have, never asking it for
/// them again: with one seed, 16 consecutive blocks totalling over 8 MiB
/// stall the sync for good. Blocks up to 1/16 of the cap (fan-out
/// coinbases included) keep every reply whole.
const MAX_SYNCED_BLOCK_BYTES: usize = BLOCKS_REPLY_SOFT_BYTES / MAX_BLOCKS_PER_REQUEST - 4_096;
/// After the seeds have the chain: time for their P2P services to work off
/// the tip announcements queued while the blocks went in.
const SETTLE: Duration = Duration::from_secs(1);
/// How long the receivers may still wait after the last gossip send.
const GOSSIP_DRAIN: Duration = Duration::from_secs(30);

/// How big a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetBenchConfig {
    /// Blocks of transactions in the synced chain (after the fan-out and
    /// maturity blocks that fund them).
    pub blocks: usize,
    /// Pay-to-pubkey-hash transactions per block.
    pub txs_per_block: usize,
    /// Transactions sent in the gossip phase.
    pub gossip_txs: usize,
}

impl Default for NetBenchConfig {
    /// 1,000 blocks × 200 transactions (200,000 transactions, ~59 MB with
    /// the fan-out blocks) and 200 gossip transactions: under a minute on
    /// 2 cores, with about 7 s per sync measurement.
    fn default() -> Self {
        NetBenchConfig {
            blocks: 1_000,
            txs_per_block: 200,
            gossip_txs: 200,
        }
    }
}

/// One initial-sync measurement.
#[derive(Debug, Clone)]
pub struct SyncFigures {
    /// Seeds the new node synced from.
    pub seeds: usize,
    /// Peers the new node had when it finished.
    pub peers_at_end: usize,
    /// Blocks it connected (the whole chain above genesis).
    pub blocks: u64,
    /// Non-coinbase transactions in those blocks.
    pub txs: usize,
    /// Encoded size of those blocks.
    pub bytes: usize,
    /// From just before the node started until its tip was the chain's.
    pub secs: f64,
    /// From just before the node started until its first block connected
    /// (start-up, connection, handshake, status and headers).
    pub first_block_secs: f64,
}

impl SyncFigures {
    pub fn blocks_per_sec(&self) -> f64 {
        self.blocks as f64 / self.secs
    }

    pub fn tx_per_sec(&self) -> f64 {
        self.txs as f64 / self.secs
    }

    /// Block data, 10^6 bytes per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }
}

/// The gossip measurement.
#[derive(Debug, Clone)]
pub struct GossipFigures {
    pub nodes: usize,
    /// Transactions node 0 sent.
    pub sent: usize,
    /// (transaction, receiving node) pairs expected: `sent × (nodes − 1)`.
    pub expected: usize,
    /// Pairs that arrived.
    pub arrived: usize,
    /// Latency from just before node 0's send call to the transaction's
    /// acceptance into a receiving node's mempool, milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Median time node 0's send call took (wallet, signing, its own
    /// mempool acceptance): the part of the latency spent before the
    /// transaction leaves node 0.
    pub send_p50_ms: f64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct NetBenchReport {
    pub config: NetBenchConfig,
    /// Blocks in the synced chain above genesis (fan-out, maturity and
    /// transaction blocks).
    pub chain_blocks: u64,
    pub chain_txs: usize,
    pub chain_bytes: usize,
    /// Loopback TCP throughput, 10^6 bytes per second.
    pub tcp_mb_per_sec: f64,
    pub sync_1: SyncFigures,
    pub sync_3: SyncFigures,
    pub gossip: GossipFigures,
}

impl NetBenchReport {
    /// Sync MB/s over loopback TCP MB/s.
    pub fn ratio(&self, sync: &SyncFigures) -> f64 {
        sync.mb_per_sec() / self.tcp_mb_per_sec
    }
}

impl fmt::Display for NetBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "network: {} dev blocks ({} x {} P2PKH txs after {} fan-out/maturity blocks, {:.1} MB), libp2p over loopback TCP",
            self.chain_blocks,
            self.config.blocks,
            self.config.txs_per_block,
            self.chain_blocks.saturating_sub(self.config.blocks as u64),
            self.chain_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "  loopback TCP:         {:>10.1} MB/s (yardstick: one connection, {} MiB in {} KiB writes)",
            self.tcp_mb_per_sec,
            TCP_BYTES >> 20,
            TCP_CHUNK >> 10
        )?;
        for s in [&self.sync_1, &self.sync_3] {
            let label = format!(
                "sync from {} peer{}:",
                s.seeds,
                if s.seeds == 1 { "" } else { "s" }
            );
            writeln!(
                f,
                "  {label:<21} {:>10.1} blocks/s {:>8.0} tx/s {:>7.2} MB/s  ({:.2} s; first block after {:.2} s; {} peer{} at the end)",
                s.blocks_per_sec(),
                s.tx_per_sec(),
                s.mb_per_sec(),
                s.secs,
                s.first_block_secs,
                s.peers_at_end,
                if s.peers_at_end == 1 { "" } else { "s" },
            )?;
            writeln!(f, "    ratio sync/TCP:     {:>10.4}", self.ratio(s))?;
        }
        let g = &self.gossip;
        let label = format!("tx gossip, {} nodes:", g.nodes);
        write!(
            f,
            "  {label:<21} p50 {:.2} ms  p95 {:.2} ms  max {:.2} ms  ({}/{} arrivals of {} txs sent {} ms apart; send call p50 {:.2} ms)",
            g.p50_ms,
            g.p95_ms,
            g.max_ms,
            g.arrived,
            g.expected,
            g.sent,
            GOSSIP_PACE.as_millis(),
            g.send_p50_ms
        )
    }
}

pub(crate) fn setup(msg: impl fmt::Display) -> BenchError {
    BenchError::Setup(msg.to_string())
}

/// Runs the benchmark with every node's files under `base_dir` (one fresh
/// subdirectory per phase).
pub async fn run_network_bench(
    cfg: NetBenchConfig,
    base_dir: &Path,
) -> Result<NetBenchReport, BenchError> {
    if cfg.blocks == 0 || cfg.txs_per_block == 0 || cfg.gossip_txs == 0 {
        return Err(setup("blocks, txs per block and gossip txs must be > 0"));
    }
    // The chain, built once before anything is timed.
    let params = Network::Dev.params();
    let genesis = params.genesis_block();
    let (b, t) = (cfg.blocks, cfg.txs_per_block);
    let built = tokio::task::spawn_blocking(move || {
        build_p2pkh_chain(
            params,
            genesis.hash(),
            0,
            genesis.header.time,
            b,
            t,
            MAX_SYNCED_BLOCK_BYTES,
        )
    })
    .await
    .map_err(|e| setup(format!("chain builder: {e}")))??;
    let mut chain = built.setup;
    chain.extend(built.blocks);
    let mut chain_bytes = 0usize;
    for b in &chain {
        let size = b.encode().len();
        if size > MAX_SYNCED_BLOCK_BYTES {
            return Err(setup(format!(
                "{} txs per block make {size}-byte blocks; this benchmark keeps blocks \
                 under {MAX_SYNCED_BLOCK_BYTES} bytes (see MAX_SYNCED_BLOCK_BYTES)",
                cfg.txs_per_block
            )));
        }
        chain_bytes += size;
    }
    let chain_txs: usize = chain.iter().map(|b| b.txs.len().saturating_sub(1)).sum();
    let chain = Arc::new(chain);

    let tcp_mb_per_sec = loopback_tcp_mb_per_sec().await?;
    let sync_1 = sync_phase(&base_dir.join("sync-1"), 1, &chain, chain_txs, chain_bytes).await?;
    let sync_3 = sync_phase(&base_dir.join("sync-3"), 3, &chain, chain_txs, chain_bytes).await?;
    let gossip = gossip_phase(&base_dir.join("gossip"), cfg.gossip_txs).await?;
    Ok(NetBenchReport {
        chain_blocks: chain.len() as u64,
        chain_txs,
        chain_bytes,
        config: cfg,
        tcp_mb_per_sec,
        sync_1,
        sync_3,
        gossip,
    })
}

/// Raw loopback TCP: one connection, [`TCP_BYTES`] written in
/// [`TCP_CHUNK`] writes, counted by the reader; 10^6 bytes per second.
pub(crate) async fn loopback_tcp_mb_per_sec() -> Result<f64, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; TCP_CHUNK];
        let mut n = 0u64;
        loop {
            let r = sock.read(&mut buf).await?;
            if r == 0 {
                return Ok::<u64, std::io::Error>(n);
            }
            n += r as u64;
        }
    });
    let start = Instant::now();
    let mut sock = TcpStream::connect(addr).await?;
    let chunk = vec![0xa5u8; TCP_CHUNK];
    let mut sent = 0u64;
    while sent < TCP_BYTES {
        sock.write_all(&chunk).await?;
        sent += TCP_CHUNK as u64;
    }
    sock.shutdown().await?;
    drop(sock);
    let got = reader
        .await
        .map_err(|e| setup(format!("TCP reader: {e}")))??;
    let secs = start.elapsed().as_secs_f64();
    if got != sent {
        return Err(setup(format!("TCP reader got {got} of {sent} bytes")));
    }
    Ok(got as f64 / 1e6 / secs)
}

/// Hands `blocks` to a node, in batches.
async fn submit_chain(handle: ChainHandle, blocks: Arc<Vec<Block>>) -> Result<(), BenchError> {
    for start in (0..blocks.len()).step_by(SUBMIT_BATCH) {
        let batch: Vec<Block> = blocks[start..(start + SUBMIT_BATCH).min(blocks.len())].to_vec();
        // The chain stops at the first block that fails: that one is the
        // last result.
        for r in handle.submit_blocks(batch).await.map_err(setup)? {
            r?;
        }
    }
    Ok(())
}

/// Waits until `node`'s tip is `hash` at `height` (no polling: the tip
/// watch wakes us on every new tip). Fails if the tip does not move for
/// [`WAIT_LIMIT`].
async fn wait_for_tip(node: &Node, hash: Hash256, height: u64) -> Result<(), BenchError> {
    let mut tip = node.handle().subscribe_tip();
    loop {
        let now = tip.borrow_and_update().clone();
        if now.height >= height {
            if now.hash != hash {
                return Err(setup(format!(
                    "tip {} at height {}, expected {hash} at {height}",
                    now.hash, now.height
                )));
            }
            return Ok(());
        }
        match tokio::time::timeout(WAIT_LIMIT, tip.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(setup("node stopped")),
            Err(_) => {
                return Err(setup(format!(
                    "a node's tip stayed at height {} for {WAIT_LIMIT:?} (waiting for {height})",
                    now.height
                )))
            }
        }
    }
}

/// One initial-sync measurement: `seeds` nodes holding the chain, then a
/// fresh node joining them.
async fn sync_phase(
    dir: &Path,
    seeds: usize,
    chain: &Arc<Vec<Block>>,
    txs: usize,
    bytes: usize,
) -> Result<SyncFigures, BenchError> {
    let mut net = LocalNet::start(LocalNetConfig::new(dir, 1)).await?;
    let result = sync_on(&mut net, seeds, chain, txs, bytes).await;
    net.shutdown().await;
    result
}

async fn sync_on(
    net: &mut LocalNet,
    seeds: usize,
    chain: &Arc<Vec<Block>>,
    txs: usize,
    bytes: usize,
) -> Result<SyncFigures, BenchError> {
    let last = chain
        .last()
        .map(|b| b.hash())
        .ok_or_else(|| setup("empty chain"))?;
    let height = chain.len() as u64;
    // Untimed: the first seed gets the chain while it has no peers, the
    // others download it from it. (Handing the blocks to connected seeds
    // would make each announce hundreds of blocks a second to the others:
    // over their block-gossip rate limit, which gets it banned.)
    submit_chain(net.node(0).handle().clone(), chain.clone()).await?;
    for _ in 1..seeds {
        net.add_node(false).await?;
    }
    for node in net.nodes() {
        wait_for_tip(node, last, height).await?;
    }
    tokio::time::sleep(SETTLE).await;

    // Timed: from just before the new node starts until its tip is the
    // chain's.
    let start = Instant::now();
    let node = net.add_node(false).await?;
    let mut tip = node.handle().subscribe_tip();
    let first = tokio::time::timeout(WAIT_LIMIT, tip.wait_for(|t| t.height > 0))
        .await
        .map_err(|_| setup("the new node connected no block"))?
        .map(|_| start.elapsed())
        .map_err(|_| setup("node stopped"))?;
    wait_for_tip(node, last, height).await?;
    let secs = start.elapsed().as_secs_f64();
    let peers_at_end = match node.p2p() {
        Some(p) => p.net.peers().await.map(|v| v.len()).unwrap_or(0),
        None => 0,
    };
    Ok(SyncFigures {
        seeds,
        peers_at_end,
        blocks: height,
        txs,
        bytes,
        secs,
        first_block_secs: first.as_secs_f64(),
    })
}

/// Waits until every node has at least `n` peers (the test kit's wait,
/// with the bench's limit).
pub(crate) async fn wait_peers(net: &LocalNet, n: usize) -> Result<(), BenchError> {
    Ok(net.wait_peers(n, WAIT_LIMIT).await?)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn gossip_phase(dir: &Path, txs: usize) -> Result<GossipFigures, BenchError> {
    let mut net = LocalNet::start(LocalNetConfig::new(dir, 1)).await?;
    let result = gossip_on(&mut net, txs).await;
    net.shutdown().await;
    result
}

async fn gossip_on(net: &mut LocalNet, txs: usize) -> Result<GossipFigures, BenchError> {
    let sender = net.node(0).handle().clone();
    let params = sender.params();
    let addr: Address = sender
        .new_address()
        .await
        .map_err(setup)?
        .map_err(|e| setup(format!("node 0: {e}")))?;
    // One mature coinbase per transaction, so no send spends another's
    // unconfirmed change (a child can reach a node before its parent).
    // Mined before the other nodes start: a connected node announcing
    // hundreds of blocks at once exceeds its peers' block-gossip rate
    // limit and is banned. The others then sync them and are wired to
    // every node started before them, like `LocalNet::start`.
    let count = params.coinbase_maturity + txs as u64 + 2;
    let hashes = sender
        .generate(count, &addr, u64::MAX)
        .await
        .map_err(setup)?;
    let tip = *hashes.last().ok_or_else(|| setup("mined nothing"))?;
    for _ in 1..GOSSIP_NODES {
        net.add_node(false).await?;
    }
    let nodes = net.len();
    wait_peers(net, nodes - 1).await?;
    for node in net.nodes() {
        wait_for_tip(node, tip, hashes.len() as u64).await?;
    }
    // Two gossipsub heartbeats, so every mesh is formed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Receivers: every transaction entering nodes 1.. mempools, timed.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::new();
    for node in &net.nodes()[1..] {
        let mut rx = node.handle().subscribe_txs();
        let mut stop = stop_rx.clone();
        receivers.push(tokio::spawn(async move {
            let mut seen: HashMap<Hash256, Instant> = HashMap::new();
            while seen.len() < txs {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(tx) => {
                            seen.entry(tx.txid()).or_insert_with(Instant::now);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            seen
        }));
    }

    // Paced sends from node 0's wallet, small payments to itself.
    let amount = Amount::from_units(GOSSIP_AMOUNT_UNITS).map_err(|_| setup("amount"))?;
    let fee_rate = params.min_relay_fee_per_kb.saturating_mul(2);
    let mut sent: HashMap<Hash256, Instant> = HashMap::with_capacity(txs);
    let mut send_ms = Vec::with_capacity(txs);
    let t0 = tokio::time::Instant::now();
    for k in 0..txs {
        tokio::time::sleep_until(t0 + GOSSIP_PACE * k as u32).await;
        let before = Instant::now();
        let txid = sender
            .send_to_address(addr, amount, fee_rate)
            .await
            .map_err(setup)?
            .map_err(|e| setup(format!("gossip send {k}: {e}")))?;
        send_ms.push(before.elapsed().as_secs_f64() * 1e3);
        sent.insert(txid, before);
    }
    // Let the receivers finish (they stop by themselves once they have
    // everything), then stop the stragglers.
    let drained = tokio::time::Instant::now() + GOSSIP_DRAIN;
    let mut latencies = Vec::with_capacity(txs * (nodes - 1));
    let mut arrived = 0usize;
    for r in receivers {
        let mut r = r;
        let seen = match tokio::time::timeout_at(drained, &mut r).await {
            Ok(seen) => seen,
            Err(_) => {
                let _ = stop_tx.send(true);
                r.await
            }
        }
        .map_err(|e| setup(format!("receiver: {e}")))?;
        for (txid, at) in seen {
            if let Some(before) = sent.get(&txid) {
                arrived += 1;
                latencies.push(at.saturating_duration_since(*before).as_secs_f64() * 1e3);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    send_ms.sort_by(f64::total_cmp);
    Ok(GossipFigures {
        nodes,
        sent: sent.len(),
        expected: sent.len() * (nodes - 1),
        arrived,
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        send_p50_ms: percentile(&send_ms, 50.0),
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
