//! The ChainLock latency benchmark behind `rusty-cli bench chainlock`.
//!
//! A dev [`LocalNet`] of one mining node and six masternodes (real RocksDB
//! datadirs, real libp2p over loopback TCP): the masternodes are funded and
//! registered, a quorum forms by DKG, then node 0 mines blocks one at a time
//! and every node records when each block became its tip and when it held a
//! verified ChainLock for it. Reported: p50 / p95 / max of
//!
//! - **per node**: lock time − arrival time on that node, over every
//!   (block, node) pair (zero when the lock arrived first);
//! - **on every node**: the last node's lock time − node 0's block time,
//!   per block — the time until the whole network treats the block as
//!   final (a block without a lock on every node within 10 s counts as
//!   10 s, and is also reported as missed);
//!
//! beside the yardstick measured in the same run: the round trip of a
//! 100-byte message over raw loopback TCP.

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rusty_shared_types::Hash256;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::connect::BenchError;
use rusty_node::localnet::{LocalNet, LocalNetConfig, MasternodeSetup};

/// How big a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClBenchConfig {
    /// Blocks measured after the quorum formed.
    pub blocks: usize,
    /// Masternodes (the dev quorum has 5 members of them).
    pub masternodes: usize,
    /// Pause between a block's last ChainLock and the next block.
    pub pace: Duration,
}

impl Default for ClBenchConfig {
    fn default() -> Self {
        ClBenchConfig {
            blocks: 40,
            masternodes: 6,
            pace: Duration::from_millis(300),
        }
    }
}

/// p50, p95 and max of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
    pub samples: usize,
}

impl Percentiles {
    pub fn of(mut v: Vec<Duration>) -> Percentiles {
        v.sort();
        let at = |q: f64| {
            if v.is_empty() {
                return Duration::ZERO;
            }
            let i = ((v.len() - 1) as f64 * q).round() as usize;
            v[i.min(v.len() - 1)]
        };
        Percentiles {
            p50: at(0.5),
            p95: at(0.95),
            max: v.last().copied().unwrap_or_default(),
            samples: v.len(),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct ClBenchReport {
    pub nodes: usize,
    pub masternodes: usize,
    /// From the quorum block to the final commitment in node 0's pool.
    pub dkg: Duration,
    pub per_node: Percentiles,
    pub every_node: Percentiles,
    /// Blocks that did not get a ChainLock on every node within 10 s.
    pub missed: usize,
    /// Loopback TCP round trip of a 100-byte message (median of 1000).
    pub tcp_rtt: Duration,
}

impl fmt::Display for ClBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ratio = |d: Duration| d.as_secs_f64() / self.tcp_rtt.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "ChainLock latency: {} nodes, {} masternodes, dev quorum of 5 (threshold 3)",
            self.nodes, self.masternodes
        )?;
        writeln!(
            f,
            "  loopback TCP round trip: {:>8.3} ms (yardstick, 100-byte ping-pong, median of 1000)",
            ms(self.tcp_rtt)
        )?;
        writeln!(
            f,
            "  DKG (quorum block → final commitment): {:.0} ms",
            ms(self.dkg)
        )?;
        for (name, p) in [
            ("per node (arrival → lock)", &self.per_node),
            ("every node (block → last lock)", &self.every_node),
        ] {
            writeln!(
                f,
                "  {name:<31} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} samples; p50 = {:.0}× TCP RTT)",
                ms(p.p50),
                ms(p.p95),
                ms(p.max),
                p.samples,
                ratio(p.p50)
            )?;
        }
        write!(
            f,
            "  blocks without a ChainLock on every node within 10 s: {}",
            self.missed
        )
    }
}

fn setup(msg: impl fmt::Display) -> BenchError {
    BenchError::Setup(msg.to_string())
}

/// Runs the benchmark with the nodes' files under `base_dir`.
pub async fn run_chainlock_bench(
    cfg: ClBenchConfig,
    base_dir: &Path,
) -> Result<ClBenchReport, BenchError> {
    let tcp_rtt = loopback_rtt().await?;
    let mut lcfg = LocalNetConfig::new(base_dir, cfg.masternodes + 1);
    lcfg.masternodes = cfg.masternodes;
    let net = LocalNet::start(lcfg).await?;
    let result = measure(&net, &cfg, tcp_rtt).await;
    net.shutdown().await;
    result
}

async fn mine(net: &LocalNet, count: u64) -> Result<Hash256, BenchError> {
    Ok(net.mine(0, count).await?)
}

async fn wait_synced(net: &LocalNet) -> Result<(), BenchError> {
    net.wait_synced(Duration::from_secs(120)).await?;
    Ok(())
}

/// Funds and registers the last `masternodes` nodes of `net` from node 0,
/// mines to the next quorum height and waits for its DKG, then one block
/// more: from there on every block gets a ChainLock. Returns how long the
/// DKG took.
pub async fn form_quorum(net: &LocalNet, masternodes: usize) -> Result<Duration, BenchError> {
    let params = rusty_shared_types::Network::Dev.params();
    // Fund and register the masternodes.
    mine(net, params.coinbase_maturity + 1).await?;
    let mut mn_setup = MasternodeSetup::default();
    let deadline = Instant::now() + Duration::from_secs(300);
    while mn_setup.step(net).await? < masternodes {
        if Instant::now() > deadline {
            return Err(setup("masternodes did not register"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        mine(net, 1).await?;
        wait_synced(net).await?;
    }
    // Form a quorum.
    let interval = params.masternode.quorum_interval;
    let height = net
        .node(0)
        .handle()
        .query(|s| s.chain().height())
        .await
        .map_err(|_| setup("chain service stopped"))?;
    let q_height = (height / interval + 1) * interval;
    let q = mine(net, q_height - height).await?;
    let dkg_start = Instant::now();
    let deadline = dkg_start + Duration::from_secs(120);
    loop {
        let ready = net
            .node(0)
            .handle()
            .query(move |s| s.pending_commitments().contains_key(&q))
            .await
            .map_err(|_| setup("chain service stopped"))?;
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(setup("the DKG did not complete"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dkg = dkg_start.elapsed();
    mine(net, 1).await?;
    wait_synced(net).await?;

    Ok(dkg)
}

/// When something happened to a block on a node: `(node, block)` → time.
pub(crate) type Stamps = Arc<Mutex<HashMap<(usize, Hash256), Instant>>>;

/// Stamps, on a task of its own, when each block becomes node `i`'s tip,
/// as its block events come (the first time only).
pub(crate) fn stamp_arrivals(
    net: &LocalNet,
    i: usize,
    into: &Stamps,
) -> tokio::task::JoinHandle<()> {
    let mut tips = net.node(i).handle().subscribe_blocks();
    let stamps = into.clone();
    tokio::spawn(async move {
        while let Ok(tip) = tips.recv().await {
            if let Ok(mut m) = stamps.lock() {
                m.entry((i, tip.hash)).or_insert_with(Instant::now);
            }
        }
    })
}

/// Records, on every node of a network, when each block became its tip and
/// when it held a verified ChainLock for it (from the nodes' own events,
/// stamped as they come). Stops recording when dropped.
#[derive(Debug)]
pub struct LockTimer {
    arrivals: Stamps,
    locks: Stamps,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How long [`LockTimer::time_blocks`] waits for a block's lock on every
/// node.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// ChainLock latencies of a run of blocks (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct LockTimes {
    /// Lock time − arrival time, per (block, node).
    pub per_node: Vec<Duration>,
    /// The last node's lock − node 0's block, per block; a block not
    /// locked everywhere within 10 s counts as 10 s, so that a phase
    /// missing locks is not taken for a fast one.
    pub every_node: Vec<Duration>,
    /// Blocks that did not get a ChainLock on every node within 10 s.
    pub missed: usize,
}

impl LockTimer {
    pub fn start(net: &LocalNet) -> Result<LockTimer, BenchError> {
        let arrivals: Stamps = Arc::default();
        let locks: Stamps = Arc::default();
        let mut tasks = Vec::new();
        for (i, node) in net.nodes().iter().enumerate() {
            let Some(p2p) = node.p2p() else {
                tasks.iter().for_each(tokio::task::JoinHandle::abort);
                return Err(setup("a node without P2P"));
            };
            tasks.push(stamp_arrivals(net, i, &arrivals));
            let mut cls = p2p.llmq.chainlocks.subscribe();
            let l = locks.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(ev) = cls.recv().await {
                    if let Ok(mut m) = l.lock() {
                        m.entry((i, ev.block_hash)).or_insert(ev.at);
                    }
                }
            }));
        }
        Ok(LockTimer {
            arrivals,
            locks,
            tasks,
        })
    }

    /// Mines `blocks` blocks on node 0, one at a time: each is waited for
    /// until every node holds its ChainLock (at most 10 s), then `pace`
    /// passes before the next.
    pub async fn time_blocks(
        &self,
        net: &LocalNet,
        blocks: usize,
        pace: Duration,
    ) -> Result<LockTimes, BenchError> {
        let n = net.len();
        let mut times = LockTimes::default();
        for _ in 0..blocks {
            let hash = mine(net, 1).await?;
            let deadline = Instant::now() + LOCK_WAIT;
            let locked_everywhere = loop {
                let all = self
                    .locks
                    .lock()
                    .map(|m| (0..n).all(|i| m.contains_key(&(i, hash))))
                    .unwrap_or(false);
                if all {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            if !locked_everywhere {
                times.missed += 1;
                times.every_node.push(LOCK_WAIT);
                continue;
            }
            let (a, l) = match (self.arrivals.lock(), self.locks.lock()) {
                (Ok(a), Ok(l)) => (a.clone(), l.clone()),
                _ => return Err(setup("poisoned lock")),
            };
            let Some(mined_at) = a.get(&(0, hash)).copied() else {
                times.missed += 1;
                times.every_node.push(LOCK_WAIT);
                continue;
            };
            let mut last = mined_at;
            for i in 0..n {
                let Some(locked) = l.get(&(i, hash)).copied() else {
                    continue;
                };
                last = last.max(locked);
                let arrived = a.get(&(i, hash)).copied().unwrap_or(locked);
                times
                    .per_node
                    .push(locked.saturating_duration_since(arrived));
            }
            times
                .every_node
                .push(last.saturating_duration_since(mined_at));
            tokio::time::sleep(pace).await;
        }
        Ok(times)
    }
}

impl Drop for LockTimer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

async fn measure(
    net: &LocalNet,
    cfg: &ClBenchConfig,
    tcp_rtt: Duration,
) -> Result<ClBenchReport, BenchError> {
    let dkg = form_quorum(net, cfg.masternodes).await?;
    let timer = LockTimer::start(net)?;
    let times = timer.time_blocks(net, cfg.blocks, cfg.pace).await?;
    Ok(ClBenchReport {
        nodes: net.len(),
        masternodes: cfg.masternodes,
        dkg,
        per_node: Percentiles::of(times.per_node),
        every_node: Percentiles::of(times.every_node),
        missed: times.missed,
        tcp_rtt,
    })
}

/// Median round trip of a 100-byte message over one loopback TCP
/// connection (1000 ping-pongs, after 100 for warm-up).
async fn loopback_rtt() -> Result<Duration, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        let mut buf = [0u8; 100];
        loop {
            if sock.read_exact(&mut buf).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
            sock.write_all(&buf).await?;
        }
    });
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let msg = [0x5au8; 100];
    let mut buf = [0u8; 100];
    let mut rtts = Vec::with_capacity(1000);
    for i in 0..1100 {
        let start = Instant::now();
        sock.write_all(&msg).await?;
        sock.read_exact(&mut buf).await?;
        if i >= 100 {
            rtts.push(start.elapsed());
        }
    }
    drop(sock);
    let _ = echo.await;
    Ok(Percentiles::of(rtts).p50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(v);
        assert_eq!(p.p50, Duration::from_millis(51));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(Percentiles::of(Vec::new()).samples, 0);
    }
}
