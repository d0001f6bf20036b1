//! The phases of `rusty-cli bench media` that check media never delays
//! consensus: blocks, then ChainLocks, timed with the network idle, while
//! a viewer downloads files back to back from the node that mines, and
//! idle again (how far the two idle runs differ is the noise the busy run
//! is compared with).

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use rusty_media::service::MediaHandle;
use rusty_shared_types::Hash256;

use crate::{
    chainlock::{form_quorum, stamp_arrivals, LockTimer, Percentiles, Stamps},
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
) -> Result<(Vec<Duration>, Beside), BenchError> {
    let viewer = net.len() - 1;
    let stamps = Stamps::default();
    let miner_task = stamp_arrivals(net, 0, &stamps);
    let viewer_task = stamp_arrivals(net, viewer, &stamps);
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
            .all(|h| stamps.lock().is_ok_and(|m| m.contains_key(&(viewer, *h))))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    miner_task.abort();
    viewer_task.abort();
    let stamps = stamps.lock().map(|m| m.clone()).unwrap_or_default();
    let latencies = mined
        .iter()
        .filter_map(|h| {
            let connected = stamps.get(&(0, *h))?;
            // One that never arrived was at least this late: left out, it
            // would make a phase that lost blocks look fast.
            let arrived = stamps.get(&(viewer, *h)).copied().unwrap_or(deadline);
            Some(arrived.saturating_duration_since(*connected))
        })
        .collect();
    Ok((latencies, transfers))
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

/// One measure (a block's propagation, or its ChainLock) in the three
/// phases: the network idle, beside transfers, idle again.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    pub idle: Vec<Duration>,
    pub busy: Vec<Duration>,
    pub after: Vec<Duration>,
}

impl Phases {
    pub fn idle_p(&self) -> Percentiles {
        Percentiles::of(self.idle.clone())
    }
    pub fn busy_p(&self) -> Percentiles {
        Percentiles::of(self.busy.clone())
    }
    pub fn after_p(&self) -> Percentiles {
        Percentiles::of(self.after.clone())
    }

    /// How likely values at least as late as the busy phase's are if
    /// media changed nothing: the one-sided p-value of a rank-sum test
    /// (Mann-Whitney U, normal approximation with ties corrected) of the
    /// busy phase against both idle ones pooled. Small (under 0.05) says
    /// the busy phase is later than idle beyond what chance gives; at
    /// 0.5 they are alike.
    pub fn later_p(&self) -> f64 {
        let idle: Vec<Duration> = self.idle.iter().chain(&self.after).copied().collect();
        later_p(&self.busy, &idle)
    }

    /// Writes how the busy phase compares with the slower of the two idle
    /// ones, how far the idle ones differ (the noise), at p50 and p95, and
    /// the rank-sum test's verdict.
    pub(crate) fn write_noise(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (idle, busy, after) = (self.idle_p(), self.busy_p(), self.after_p());
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-6);
        let band = |a: Duration, b: Duration| ratio(a, b).max(ratio(b, a));
        writeln!(
            f,
            "    beside ÷ idle (the slower idle run): p50 {:.2}  p95 {:.2}; the two idle runs differ by {:.2} × at p50, {:.2} × at p95 (the noise)",
            ratio(busy.p50, idle.p50.max(after.p50)),
            ratio(busy.p95, idle.p95.max(after.p95)),
            band(idle.p50, after.p50),
            band(idle.p95, after.p95)
        )?;
        let p = self.later_p();
        writeln!(
            f,
            "    beside later than idle? rank-sum test against both idle runs: p = {p:.3} ({})",
            if p < 0.05 {
                "yes, beyond noise at 5 %"
            } else {
                "within noise at 5 %"
            }
        )
    }
}

/// The one-sided p-value that `later`'s values are stochastically larger
/// than `base`'s (Mann-Whitney U with mid-ranks for ties, the normal
/// approximation with its tie correction and a continuity correction); 1
/// when either is empty or every value is equal.
pub fn later_p(later: &[Duration], base: &[Duration]) -> f64 {
    let (n1, n2) = (later.len() as f64, base.len() as f64);
    if later.is_empty() || base.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(Duration, bool)> = later
        .iter()
        .map(|d| (*d, true))
        .chain(base.iter().map(|d| (*d, false)))
        .collect();
    all.sort_by_key(|(d, _)| *d);
    // Mid-ranks (1-based) over runs of equal values; the tie term for the
    // variance sums t³ - t over those runs.
    let (mut rank_sum, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum += mid * all[i..j].iter().filter(|(_, l)| *l).count() as f64;
        ties += t * t * t - t;
        i = j;
    }
    let u = rank_sum - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / variance.sqrt();
    upper_tail(z)
}

/// P(Z > z) for a standard normal Z (Abramowitz and Stegun 7.1.26 for
/// erfc, absolute error under 1.5e-7).
fn upper_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

/// Masternodes of the ChainLock phase (the dev quorum takes 5 of them).
const MASTERNODES: usize = 6;

/// Pause between a block locked on every node and the next block.
const LOCK_PACE: Duration = Duration::from_millis(100);

/// ChainLock latencies idle, beside transfers, and idle again.
#[derive(Debug, Clone)]
pub struct LocksBeside {
    pub nodes: usize,
    /// Per block, until every node holds its lock.
    pub every_node: Phases,
    /// Per (block, node), the lock after the node's arrival of the block.
    pub per_node: Phases,
    /// Blocks without a lock on every node within 10 s, per phase.
    pub missed: [usize; 3],
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
        let (every, per) = (&self.every_node, &self.per_node);
        for (what, p, node, missed) in [
            ("network idle", every.idle_p(), per.idle_p(), self.missed[0]),
            (
                "beside the transfer",
                every.busy_p(),
                per.busy_p(),
                self.missed[1],
            ),
            (
                "idle again after",
                every.after_p(),
                per.after_p(),
                self.missed[2],
            ),
        ] {
            writeln!(
                f,
                "    block → locked on every node, {what:<20} p50 {:>6.1} ms  p95 {:>6.1} ms  max {:>6.1} ms  ({} blocks, {missed} missed; per node arrival → lock p50 {:.1} ms, p95 {:.1} ms)",
                ms(p.p50),
                ms(p.p95),
                ms(p.max),
                p.samples,
                ms(node.p50),
                ms(node.p95),
            )?;
        }
        every.write_noise(f)
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
        missed: [idle.missed, busy.missed, after.missed],
        every_node: Phases {
            idle: idle.every_node,
            busy: busy.every_node,
            after: after.every_node,
        },
        per_node: Phases {
            idle: idle.per_node,
            busy: busy.per_node,
            after: after.per_node,
        },
        transfers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn the_rank_sum_test_tells_a_shift_from_noise() {
        let base = ms(&(1..=40).collect::<Vec<_>>());
        // The same spread: no evidence of lateness. Worked by hand (ties
        // at each odd value): U = 390, z = -0.1647, p = 0.5654.
        let alike = ms(&(1..=40).step_by(2).collect::<Vec<_>>());
        let p = later_p(&alike, &base);
        assert!((p - 0.565_41).abs() < 1e-4, "{p}");
        // Every value above every base value: far beyond noise.
        let later = ms(&(41..=60).collect::<Vec<_>>());
        assert!(later_p(&later, &base) < 1e-6);
        // Earlier than the base: p near 1, never "later".
        let earlier = ms(&(0..20).map(|_| 0).collect::<Vec<_>>());
        assert!(later_p(&earlier, &base) > 0.99);
        // Degenerate inputs.
        assert_eq!(later_p(&[], &base), 1.0);
        assert_eq!(later_p(&ms(&[5, 5]), &ms(&[5, 5, 5])), 1.0);
    }

    #[test]
    fn the_normal_tail_matches_known_values() {
        for (z, want) in [
            (0.0, 0.5),
            (1.644_854, 0.05),
            (2.326_348, 0.01),
            (-1.959_964, 0.975),
        ] {
            assert!(
                (upper_tail(z) - want).abs() < 1e-6,
                "{z}: {}",
                upper_tail(z)
            );
        }
    }
}
