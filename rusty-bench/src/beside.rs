//! The phases of `rusty-cli bench media` that check media never delays
//! consensus: blocks, then ChainLocks, timed with the network idle, while
//! a viewer downloads files back to back from the node that mines, and
//! idle again (how far the two idle runs differ is the noise the busy run
//! is compared with).

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rusty_media::service::MediaHandle;
use rusty_shared_types::Hash256;

use crate::{
    chainlock::{form_quorum, LockTimer, LockTimes, Percentiles},
    connect::BenchError,
    media::{fields, media, random_file},
    network::{setup, wait_peers},
};
use rusty_node::localnet::{LocalNet, LocalNetConfig};

/// Publishes [`BESIDE_FILES`] files of `size` bytes on node 0 and waits
/// until the other nodes hold their manifests: every node fetches an
/// announced manifest (its catalog), and those fetches should end before
/// timing, so that a phase times consensus beside the transfers and not
/// beside the bench's own publishing.
pub(crate) async fn publish_beside_files(
    net: &LocalNet,
    size: usize,
) -> Result<Vec<Hash256>, BenchError> {
    let mut ids = Vec::new();
    for seed in 0..BESIDE_FILES {
        let id = media(net, 0)?
            .publish_bytes(
                random_file(size, 100 + seed),
                fields("bench file beside blocks"),
            )
            .await
            .map_err(|e| setup(format!("publish: {e}")))?;
        ids.push(id);
    }
    wait_for_manifests(net, &ids).await?;
    Ok(ids)
}

/// Waits until every node's catalog holds the manifests of `ids` (their
/// announcements fetched), or [`ANNOUNCE_SETTLE`] has passed: a node
/// fetches a manifest over 256 KiB (files over about 500 MiB) and then
/// does not keep it.
pub(crate) async fn wait_for_manifests(net: &LocalNet, ids: &[Hash256]) -> Result<(), BenchError> {
    let deadline = Instant::now() + ANNOUNCE_SETTLE;
    for i in 0..net.len() {
        let store = media(net, i)?.store().clone();
        for id in ids {
            while store
                .manifest(id)
                .map_err(|e| setup(format!("store: {e}")))?
                .is_none()
            {
                if Instant::now() > deadline {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(())
}

/// The longest [`wait_for_manifests`] waits.
const ANNOUNCE_SETTLE: Duration = Duration::from_secs(3);

/// Files of `--file-mib` the viewer downloads one after another while
/// blocks are timed beside them.
pub(crate) const BESIDE_FILES: u8 = 4;

/// Mines `count` blocks on node 0, one every 100 ms, and takes each
/// block's arrival on the last node (the viewer) minus its connection on
/// node 0, from both nodes' block events. With `beside`, the viewer
/// downloads those contents from node 0 meanwhile, back to back, for as
/// long as the blocks are mined (see [`keep_downloading`]); returns the
/// transfers that completed in that time too.
pub(crate) async fn block_latencies(
    net: &LocalNet,
    count: usize,
    beside: &[Hash256],
) -> Result<(Percentiles, Beside), BenchError> {
    let viewer = net.len() - 1;
    // Each node's block events are stamped by their own task, as they come.
    let stamp = |i: usize| {
        let mut blocks = net.node(i).handle().subscribe_blocks();
        let stamps: Arc<Mutex<HashMap<Hash256, Instant>>> = Arc::default();
        let s = stamps.clone();
        let task = tokio::spawn(async move {
            while let Ok(tip) = blocks.recv().await {
                if let Ok(mut m) = s.lock() {
                    m.entry(tip.hash).or_insert_with(Instant::now);
                }
            }
        });
        (stamps, task)
    };
    let (connected, miner_task) = stamp(0);
    let (arrived, viewer_task) = stamp(viewer);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let downloads = (!beside.is_empty()).then(|| {
        let viewer_media = media(net, viewer);
        let beside = beside.to_vec();
        tokio::spawn(async move { keep_downloading(viewer_media?, beside, stopped).await })
    });
    let mut mined = Vec::new();
    while mined.len() < count {
        if downloads.as_ref().is_some_and(|d| d.is_finished()) {
            break; // a transfer failed: its error is taken below
        }
        mined.push(net.mine(0, 1).await?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let transfers = match downloads {
        Some(d) => d
            .await
            .map_err(|e| setup(format!("transfers beside blocks: {e}")))??,
        None => Beside::default(),
    };
    // The last block's arrival.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !mined
            .iter()
            .all(|h| arrived.lock().is_ok_and(|m| m.contains_key(h)))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    miner_task.abort();
    viewer_task.abort();
    let (connected, arrived) = (
        connected.lock().map(|m| m.clone()).unwrap_or_default(),
        arrived.lock().map(|m| m.clone()).unwrap_or_default(),
    );
    let latencies = mined
        .iter()
        .filter_map(|h| {
            Some(
                arrived
                    .get(h)?
                    .saturating_duration_since(*connected.get(h)?),
            )
        })
        .collect();
    Ok((Percentiles::of(latencies), transfers))
}

/// Transfers that completed beside the blocks, and their time summed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Beside {
    pub completed: usize,
    pub busy: Duration,
}

/// Downloads `contents` on `viewer`, one after another and round again,
/// until `stop`; returns those that completed. Each is removed from the
/// viewer's store before it is fetched again (as a node's cache evicts
/// what it viewed), so that a phase of any length has a transfer running
/// all through it, from the few files the bench published before timing.
/// The one running at `stop` is awaited, not counted.
async fn keep_downloading(
    viewer: MediaHandle,
    contents: Vec<Hash256>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Beside, BenchError> {
    let (mut completed, mut busy) = (0, Duration::ZERO);
    for id in contents.iter().cycle() {
        if *stop.borrow() {
            break;
        }
        let store = viewer.store().clone();
        let id = *id;
        tokio::task::spawn_blocking(move || store.remove(&id))
            .await
            .map_err(|e| setup(format!("remove beside blocks: {e}")))?
            .map_err(|e| setup(format!("remove beside blocks: {e}")))?;
        let started = Instant::now();
        let download = viewer.download(id).await;
        let status = tokio::select! {
            status = download.finished() => status,
            _ = stop.changed() => {
                download.finished().await;
                break;
            }
        };
        if status.chunks_present != status.chunks_total {
            return Err(setup(format!("transfer beside blocks failed: {status:?}")));
        }
        busy += started.elapsed();
        completed += 1;
    }
    Ok(Beside { completed, busy })
}

/// Writes how the busy phase compares with the slower of the two idle
/// ones, and how far the idle ones differ (the noise), at p50 and p95.
pub(crate) fn write_noise(
    f: &mut fmt::Formatter<'_>,
    idle: &Percentiles,
    busy: &Percentiles,
    after: &Percentiles,
) -> fmt::Result {
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-6);
    let band = |a: Duration, b: Duration| ratio(a, b).max(ratio(b, a));
    writeln!(
        f,
        "    beside ÷ idle (the slower idle run): p50 {:.2}  p95 {:.2}; the two idle runs differ by {:.2} × at p50, {:.2} × at p95 (the noise)",
        ratio(busy.p50, idle.p50.max(after.p50)),
        ratio(busy.p95, idle.p95.max(after.p95)),
        band(idle.p50, after.p50),
        band(idle.p95, after.p95)
    )
}

/// Masternodes of the ChainLock phase (the dev quorum takes 5 of them).
const MASTERNODES: usize = 6;

/// Pause between a block locked on every node and the next block.
const LOCK_PACE: Duration = Duration::from_millis(100);

/// One ChainLock phase: the time until every node holds a block's lock,
/// and each node's lock after its own arrival of the block.
#[derive(Debug, Clone, Copy)]
pub struct LockPhase {
    pub every_node: Percentiles,
    pub per_node: Percentiles,
    /// Blocks without a lock on every node within 10 s.
    pub missed: usize,
}

impl From<LockTimes> for LockPhase {
    fn from(t: LockTimes) -> Self {
        LockPhase {
            every_node: Percentiles::of(t.every_node),
            per_node: Percentiles::of(t.per_node),
            missed: t.missed,
        }
    }
}

/// ChainLock latencies idle, beside transfers, and idle again.
#[derive(Debug, Clone, Copy)]
pub struct LocksBeside {
    pub nodes: usize,
    pub idle: LockPhase,
    pub busy: LockPhase,
    pub after: LockPhase,
    pub transfers: Beside,
}

impl LocksBeside {
    /// Writes the phase's lines of the media report; `file_mib` is the
    /// transferred files' size.
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>, file_mib: usize) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let t = &self.transfers;
        let mb = (file_mib << 20) as f64 / 1e6 * t.completed as f64;
        writeln!(
            f,
            "  ChainLocks: {} nodes ({MASTERNODES} masternodes, quorum of 5), the viewer is the last masternode; {} transfers of {file_mib} MiB beside at {:.0} MB/s",
            self.nodes,
            t.completed,
            mb / t.busy.as_secs_f64().max(1e-3)
        )?;
        for (what, p) in [
            ("network idle", &self.idle),
            ("beside the transfer", &self.busy),
            ("idle again after", &self.after),
        ] {
            writeln!(
                f,
                "    block → locked on every node, {what:<20} p50 {:>6.1} ms  p95 {:>6.1} ms  max {:>6.1} ms  ({} blocks, {} missed; per node arrival → lock p50 {:.1} ms, p95 {:.1} ms)",
                ms(p.every_node.p50),
                ms(p.every_node.p95),
                ms(p.every_node.max),
                p.every_node.samples,
                p.missed,
                ms(p.per_node.p50),
                ms(p.per_node.p95),
            )?;
        }
        write_noise(
            f,
            &self.idle.every_node,
            &self.busy.every_node,
            &self.after.every_node,
        )
    }
}

/// On a new network of one mining node and [`MASTERNODES`] masternodes:
/// forms a quorum, then times `blocks` ChainLocks idle, beside the last
/// masternode downloading files of `size` bytes from node 0 back to back,
/// and idle again.
pub(crate) async fn chainlocks_beside(
    dir: &Path,
    size: usize,
    blocks: usize,
) -> Result<LocksBeside, BenchError> {
    let mut cfg = LocalNetConfig::new(dir, MASTERNODES + 1);
    cfg.masternodes = MASTERNODES;
    let net = LocalNet::start(cfg).await?;
    let result = locks_on(&net, size, blocks).await;
    net.shutdown().await;
    result
}

async fn locks_on(net: &LocalNet, size: usize, blocks: usize) -> Result<LocksBeside, BenchError> {
    wait_peers(net, 1).await?;
    form_quorum(net, MASTERNODES).await?;
    let files = publish_beside_files(net, size).await?;
    let timer = LockTimer::start(net)?;
    let idle = timer.time_blocks(net, blocks, LOCK_PACE).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let viewer = media(net, net.len() - 1)?;
    let mut downloads = tokio::spawn(keep_downloading(viewer, files, stopped));
    let busy = tokio::select! {
        times = timer.time_blocks(net, blocks, LOCK_PACE) => times?,
        ended = &mut downloads => {
            return Err(match ended {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => setup("the transfers beside ChainLocks stopped early"),
                Err(e) => setup(format!("transfers beside ChainLocks: {e}")),
            });
        }
    };
    let _ = stop.send(true);
    let transfers = downloads
        .await
        .map_err(|e| setup(format!("transfers beside ChainLocks: {e}")))??;
    let after = timer.time_blocks(net, blocks, LOCK_PACE).await?;
    Ok(LocksBeside {
        nodes: net.len(),
        idle: idle.into(),
        busy: busy.into(),
        after: after.into(),
        transfers,
    })
}
