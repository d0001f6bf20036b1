//! `rusty-cli bench media`: the media layer on dev nodes over loopback, in
//! one process, beside raw loopback TCP measured in the same run.
//!
//! 1. Transfer: a file published on one node is downloaded by another
//!    (libp2p, verified chunks written to RocksDB-backed stores); MB/s as a
//!    ratio to one raw loopback TCP connection.
//! 2. Three providers: the same kind of file held by three nodes (one
//!    published it, two downloaded it first), downloaded by a fourth.
//! 3. Blocks beside media: node 0 mines blocks and the viewer's arrival
//!    time of each is taken from both nodes' block events, first with the
//!    network idle, then while the viewer downloads a file of the same size
//!    from node 0 (goal: within noise; media never delays blocks).
//!    Then the same for ChainLocks, on a network with a masternode quorum:
//!    the time until every node holds a block's lock, idle and while the
//!    last masternode downloads from node 0 (see [`crate::beside`]).
//! 4. Live: one broadcaster and N viewers (all connected); input is pushed
//!    at a fixed bitrate; reports the share of the bytes the viewers
//!    received that the broadcaster uploaded (goal ≤ 25% with 8 viewers)
//!    and the latency from input (the segment's first byte) to playable on
//!    a viewer, p50/p95 over every segment of every viewer (goal p50 ≤ 2 s).

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use rusty_media::{
    live::LatencyStats,
    manifest::ManifestFields,
    service::{DataBind, MediaHandle},
};
use rusty_shared_types::Hash256;

use crate::{
    beside::{
        block_latencies, chainlocks_beside, publish_beside_files, Beside, LocksBeside, Phases,
    },
    connect::BenchError,
    network::{loopback_tcp_mb_per_sec, setup, wait_peers},
};
use rusty_node::localnet::{LocalNet, LocalNetConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct MediaBenchConfig {
    /// Size of the transferred file, MiB.
    pub file_mib: usize,
    /// Blocks timed in each block-latency phase.
    pub blocks: usize,
    /// Blocks timed in each ChainLock phase (0: no ChainLock phases).
    pub chainlock_blocks: usize,
    /// Live viewers.
    pub viewers: usize,
    /// Seconds of live input.
    pub live_secs: u64,
    /// Live input rate, kbit/s.
    pub live_kbps: u64,
    /// Runs of raw TCP and of the 1-provider transfer (alternating; each
    /// keeps its fastest).
    pub rounds: usize,
}

impl Default for MediaBenchConfig {
    fn default() -> Self {
        MediaBenchConfig {
            file_mib: 200,
            blocks: 40,
            chainlock_blocks: 40,
            viewers: 8,
            live_secs: 20,
            live_kbps: 2_000,
            rounds: 3,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct MediaBenchReport {
    pub config: MediaBenchConfig,
    /// The fastest run of raw TCP, and every run in order.
    pub tcp_mb_per_sec: f64,
    pub tcp_runs: Vec<f64>,
    /// The fastest 1-provider transfer, and every run's seconds in order.
    pub transfer_secs: f64,
    pub transfer_mb_per_sec: f64,
    pub transfer_runs: Vec<f64>,
    /// The same transfer with `--media-data-bind off`: every byte over
    /// libp2p (Noise, Yamux), as before the data channel.
    pub libp2p_secs: f64,
    pub libp2p_mb_per_sec: f64,
    /// The same size between two aria2c clients, and 1 MiB (its fixed
    /// start-up), seconds (None: not installed).
    pub aria2c_secs: Option<(f64, f64)>,
    pub three_secs: f64,
    pub three_mb_per_sec: f64,
    /// Bytes each of the three providers sent.
    pub three_shares: Vec<u64>,
    /// Block arrival node 0 → viewer with the network idle, while the
    /// viewer downloads from node 0, and idle again after the transfers
    /// (how far the two idle runs differ is the noise "beside" is
    /// compared with).
    pub blocks: Phases,
    /// Transfers of the file size that completed during the busy phase.
    pub transfers_beside: Beside,
    /// ChainLocks idle, beside transfers and idle again (None: not run).
    pub chainlocks: Option<LocksBeside>,
    pub segments_cut: u64,
    /// Segments played, summed over viewers.
    pub segments_played: u64,
    pub skipped: u64,
    pub uploaded_by_broadcaster: u64,
    pub received_by_viewers: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_max_ms: Option<u64>,
    /// Input → a real player's first decoded frame, per join (empty
    /// without ffmpeg).
    pub player_joins: Vec<crate::player::FirstFrame>,
}

impl MediaBenchReport {
    pub fn upload_share(&self) -> f64 {
        self.uploaded_by_broadcaster as f64 / self.received_by_viewers.max(1) as f64
    }
}

impl fmt::Display for MediaBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(f, "media benchmark (dev nodes on loopback, one process)")?;
        let runs = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let size_mb = (c.file_mib << 20) as f64 / 1e6;
        let transfer_rates: Vec<f64> = self.transfer_runs.iter().map(|s| size_mb / s).collect();
        writeln!(
            f,
            "  raw loopback TCP (yardstick):        {:>9.1} MB/s  (fastest of {} runs: {} MB/s)",
            self.tcp_mb_per_sec,
            self.tcp_runs.len(),
            runs(&self.tcp_runs)
        )?;
        writeln!(
            f,
            "  transfer {} MiB, 1 provider → 1 viewer: {:>7.1} MB/s in {:.2} s  ({:.3} × TCP; fastest of {} runs, alternating with TCP's: {} MB/s)",
            c.file_mib,
            self.transfer_mb_per_sec,
            self.transfer_secs,
            self.transfer_mb_per_sec / self.tcp_mb_per_sec,
            transfer_rates.len(),
            runs(&transfer_rates)
        )?;
        writeln!(
            f,
            "    the same over libp2p only (--media-data-bind off): {:>7.1} MB/s in {:.2} s  ({:.3} × TCP)",
            self.libp2p_mb_per_sec,
            self.libp2p_secs,
            self.libp2p_mb_per_sec / self.tcp_mb_per_sec
        )?;
        match self.aria2c_secs {
            Some((secs, small)) => {
                let proper = (secs - small).max(1e-3);
                writeln!(
                    f,
                    "  BitTorrent, aria2c → aria2c, same size:     {secs:.2} s from start to exit ({small:.2} s for a 1 MiB torrent)"
                )?;
                writeln!(
                    f,
                    "    aria2c's transfer proper (the difference, one run): {:>7.1} MB/s in {proper:.2} s; ours took {:.2} × as long in its fastest run, {:.2} × in its slowest (and {:.2} × its start-to-exit)",
                    ((c.file_mib << 20) - (1 << 20)) as f64 / 1e6 / proper,
                    self.transfer_secs / proper,
                    self.transfer_runs.iter().copied().fold(0.0, f64::max) / proper,
                    self.transfer_secs / secs
                )?;
            }
            None => writeln!(
                f,
                "  BitTorrent yardstick skipped: aria2c is not installed (scripts/install-deps.sh installs it)"
            )?,
        }
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        writeln!(
            f,
            "  transfer {} MiB, 3 providers → 1 viewer: {:>7.1} MB/s in {:.2} s  ({:.3} × TCP; {} MiB from each)",
            c.file_mib,
            self.three_mb_per_sec,
            self.three_secs,
            self.three_mb_per_sec / self.tcp_mb_per_sec,
            self.three_shares
                .iter()
                .map(|b| format!("{:.0}", mib(*b)))
                .collect::<Vec<_>>()
                .join(" / ")
        )?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let t = &self.transfers_beside;
        let beside = format!(
            ", {} transfers of {} MiB at {:.0} MB/s",
            t.completed,
            c.file_mib,
            size_mb * t.completed as f64 / t.busy.as_secs_f64().max(1e-3)
        );
        let b = &self.blocks;
        for (what, p, transfers) in [
            ("network idle", b.idle_p(), ""),
            ("beside the transfer", b.busy_p(), beside.as_str()),
            ("idle again after", b.after_p(), ""),
        ] {
            writeln!(
                f,
                "  block node 0 → viewer, {what:<20} p50 {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms  ({} blocks{transfers})",
                ms(p.p50),
                ms(p.p95),
                ms(p.max),
                p.samples
            )?;
        }
        b.write_noise(f)?;
        match &self.chainlocks {
            Some(locks) => locks.write(f, c.file_mib)?,
            None => writeln!(
                f,
                "  ChainLocks beside media: not run (--chainlock-blocks 0)"
            )?,
        }
        writeln!(
            f,
            "  live {} s at {} kbit/s, 1 broadcaster + {} viewers: {} segments cut, {} played, {} skipped",
            c.live_secs, c.live_kbps, c.viewers, self.segments_cut, self.segments_played, self.skipped
        )?;
        writeln!(
            f,
            "    broadcaster upload share: {:.1}% ({} of {} bytes the viewers received; goal ≤ 25%)",
            self.upload_share() * 100.0,
            self.uploaded_by_broadcaster,
            self.received_by_viewers
        )?;
        let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
        write!(
            f,
            "    latency input → viewer: p50 {}  p95 {}  max {}  (goal p50 ≤ 2 s; includes the 0.5 s segment)",
            ms(self.latency_p50_ms),
            ms(self.latency_p95_ms),
            ms(self.latency_max_ms)
        )?;
        if self.player_joins.is_empty() {
            return write!(
                f,
                "\n  real player: skipped, ffmpeg is not installed (scripts/install-deps.sh installs it)"
            );
        }
        let list = |pick: fn(&crate::player::FirstFrame) -> Duration| {
            self.player_joins
                .iter()
                .map(|j| format!("{} ms", pick(j).as_millis()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "\n  real player (ffmpeg) joining a live stream {} s in, {} joins:\n    input → first decoded frame: {}\n    player start → first decoded frame: {}",
            PLAYER_JOIN_AFTER.as_secs(),
            self.player_joins.len(),
            list(|j| j.latency),
            list(|j| j.startup)
        )
    }
}

pub(crate) fn media(net: &LocalNet, i: usize) -> Result<MediaHandle, BenchError> {
    net.node(i)
        .p2p()
        .and_then(|p| p.media.clone())
        .ok_or_else(|| setup(format!("node {i} has no media service")))
}

pub(crate) fn fields(title: &str) -> ManifestFields {
    ManifestFields {
        title: title.into(),
        mime: "application/octet-stream".into(),
        created: rusty_core::now(),
        ..Default::default()
    }
}

/// Real-player joins measured, and how far into the stream each joins.
const PLAYER_JOINS: usize = 3;
const PLAYER_JOIN_AFTER: Duration = Duration::from_secs(3);

/// Runs the benchmark with node datadirs under `dir`.
pub async fn run_media_bench(
    config: MediaBenchConfig,
    dir: &Path,
) -> Result<MediaBenchReport, BenchError> {
    // 1. Transfer: over the data channel (the default), beside raw TCP,
    //    `rounds` times alternating, each keeping its fastest run (raw
    //    loopback TCP measured 1.4-3.3 GB/s in runs minutes apart on this
    //    machine: one run of each compared whatever moments they got);
    //    then over libp2p only.
    let size = config.file_mib << 20;
    let mut tcp_runs = Vec::new();
    let mut transfer_runs = Vec::new();
    for round in 0..config.rounds.max(1) {
        tcp_runs.push(loopback_tcp_mb_per_sec().await?);
        let dir = dir.join(format!("transfer-{round}"));
        transfer_runs.push(one_provider_secs(&dir, size, DataBind::BesideP2p).await?);
    }
    let tcp_mb_per_sec = tcp_runs.iter().copied().fold(0.0, f64::max);
    let transfer_secs = transfer_runs.iter().copied().fold(f64::INFINITY, f64::min);
    let transfer_mb_per_sec = size as f64 / 1e6 / transfer_secs;
    let libp2p_secs = one_provider_secs(&dir.join("transfer-libp2p"), size, DataBind::Off).await?;
    let libp2p_mb_per_sec = size as f64 / 1e6 / libp2p_secs;
    // The same size between two aria2c clients, if aria2c is here.
    // aria2c spends seconds before its first piece whatever the size, so a
    // 1 MiB torrent is timed too: the difference is its transfer proper.
    let aria2c_secs = if crate::torrent::aria2c_installed() {
        let one_mib = random_file(1 << 20, 5);
        let small = crate::torrent::aria2c_transfer_secs(&dir.join("aria2c-1"), &one_mib).await?;
        let full = crate::torrent::aria2c_transfer_secs(&dir.join("aria2c"), &random_file(size, 4))
            .await?;
        let _ = std::fs::remove_dir_all(dir.join("aria2c"));
        Some((full, small))
    } else {
        None
    };

    // 2. Three providers, then blocks beside a transfer, on one network.
    let net = LocalNet::start(LocalNetConfig::new(dir.join("three"), 4)).await?;
    wait_peers(&net, 3).await?;
    let id = media(&net, 0)?
        .publish_bytes(random_file(size, 2), fields("bench file"))
        .await
        .map_err(|e| setup(format!("publish: {e}")))?;
    let (a, b) = (media(&net, 1)?, media(&net, 2)?);
    let (da, db) = tokio::join!(a.download(id), b.download(id));
    let (sa, sb) = tokio::join!(da.finished(), db.finished());
    if sa.chunks_present != sa.chunks_total || sb.chunks_present != sb.chunks_total {
        return Err(setup("the second and third providers did not get the file"));
    }
    let viewer = media(&net, 3)?;
    let start = Instant::now();
    let status = viewer.download(id).await.finished().await;
    let three_secs = start.elapsed().as_secs_f64();
    if status.chunks_present != status.chunks_total {
        return Err(setup(format!(
            "3-provider transfer did not complete: {status:?}"
        )));
    }
    let three_shares = status.peers.iter().map(|p| p.bytes).collect();
    let three_mb_per_sec = size as f64 / 1e6 / three_secs;

    let (idle, _) = block_latencies(&net, config.blocks, &[]).await?;
    // Over the data channel one file of this size goes by in a few blocks:
    // the viewer fetches these, back to back and round again, for as long
    // as the phase mines.
    let others = publish_beside_files(&net, size).await?;
    let (busy, transfers_beside) = block_latencies(&net, config.blocks, &others).await?;
    let (after, _) = block_latencies(&net, config.blocks, &[]).await?;
    let blocks = Phases { idle, busy, after };
    net.shutdown().await;
    let _ = std::fs::remove_dir_all(dir.join("three"));
    let chainlocks = if config.chainlock_blocks > 0 {
        let locks = chainlocks_beside(&dir.join("chainlocks"), size, config.chainlock_blocks).await;
        let _ = std::fs::remove_dir_all(dir.join("chainlocks"));
        Some(locks?)
    } else {
        None
    };

    // 3. Live.
    let nodes = config.viewers + 1;
    let net = LocalNet::start(LocalNetConfig::new(dir.join("live"), nodes)).await?;
    wait_peers(&net, nodes - 1).await?;
    let broadcaster = media(&net, 0)?;
    let id = broadcaster
        .broadcast_start(fields("bench live"))
        .await
        .map_err(|e| setup(format!("broadcast: {e}")))?;
    let mut streams = Vec::new();
    for i in 1..nodes {
        let s = media(&net, i)?
            .watch(id)
            .await
            .map_err(|e| setup(format!("watch on node {i}: {e}")))?;
        streams.push(s);
    }
    // Let every viewer's "watching" announcement reach the others.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_tick = usize::try_from(config.live_kbps * 1000 / 8 / 10)
        .unwrap_or(usize::MAX)
        .max(188)
        / 188
        * 188;
    let mut chunk = vec![0xffu8; per_tick];
    for p in chunk.chunks_mut(188) {
        p[0] = 0x47;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let live_start = Instant::now();
    while live_start.elapsed() < Duration::from_secs(config.live_secs) {
        tick.tick().await;
        broadcaster
            .broadcast_push(id, &chunk)
            .await
            .map_err(|e| setup(format!("push: {e}")))?;
    }
    broadcaster
        .broadcast_end(id)
        .await
        .map_err(|e| setup(format!("end: {e}")))?;
    let cast = broadcaster
        .live_streams()
        .await
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| setup("broadcast vanished"))?;
    let cut = cast.status().await;
    // Let the last segment reach everyone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut behind = false;
        for s in &streams {
            behind |= s.status().await.last_seq < cut.last_seq;
        }
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = LatencyStats::default();
    let (mut played, mut skipped, mut received) = (0u64, 0u64, 0u64);
    for s in &streams {
        let st = s.status().await;
        played += st.segments;
        skipped += st.skipped;
        received += st.received_bytes;
        all.merge(&s.latencies().await);
    }
    let uploaded = cast.status().await.uploaded_bytes;
    net.shutdown().await;

    // 4. A real player joining a live stream (ffmpeg as encoder and player).
    let mut player_joins = Vec::new();
    if crate::player::ffmpeg_installed() {
        let net = LocalNet::start(LocalNetConfig::new(dir.join("player"), 2)).await?;
        wait_peers(&net, 1).await?;
        for join in 0..PLAYER_JOINS {
            let broadcaster = media(&net, 0)?;
            let mut f = fields(&format!("bench player {join}"));
            f.mime = "video/mp2t".into();
            let id = broadcaster
                .broadcast_start(f)
                .await
                .map_err(|e| setup(format!("broadcast: {e}")))?;
            let viewer = media(&net, 1)?;
            let _watching = viewer
                .watch(id)
                .await
                .map_err(|e| setup(format!("watch: {e}")))?;
            let measured =
                crate::player::first_frame(broadcaster.clone(), viewer, id, PLAYER_JOIN_AFTER)
                    .await?;
            let _ = broadcaster.broadcast_end(id).await;
            player_joins.push(measured);
        }
        net.shutdown().await;
    }
    Ok(MediaBenchReport {
        config,
        tcp_mb_per_sec,
        tcp_runs,
        transfer_runs,
        transfer_secs,
        transfer_mb_per_sec,
        libp2p_secs,
        libp2p_mb_per_sec,
        aria2c_secs,
        three_secs,
        three_mb_per_sec,
        three_shares,
        blocks,
        transfers_beside,
        chainlocks,
        segments_cut: cut.segments,
        segments_played: played,
        skipped,
        uploaded_by_broadcaster: uploaded,
        received_by_viewers: received,
        latency_p50_ms: all.percentile(50.0),
        latency_p95_ms: all.percentile(95.0),
        latency_max_ms: all.max(),
        player_joins,
    })
}

/// `len` pseudo-random bytes (distinct per `seed`, so files never share an id).
pub(crate) fn random_file(len: usize, seed: u8) -> Vec<u8> {
    let mut data = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut data);
    data
}

/// Seconds to move `size` bytes from one provider to one viewer on a new
/// two-node network whose data channels are `data_bind`.
async fn one_provider_secs(
    dir: &Path,
    size: usize,
    data_bind: DataBind,
) -> Result<f64, BenchError> {
    let mut cfg = LocalNetConfig::new(dir, 2);
    cfg.media_data_bind = data_bind;
    let net = LocalNet::start(cfg).await?;
    wait_peers(&net, 1).await?;
    let id = media(&net, 0)?
        .publish_bytes(random_file(size, 1), fields("bench file"))
        .await
        .map_err(|e| setup(format!("publish: {e}")))?;
    let secs = timed_download(&net, 1, id).await;
    net.shutdown().await;
    // Free the disk and the page cache now: the transfers after this one
    // (and a large --file-mib) would otherwise find both fuller.
    let _ = std::fs::remove_dir_all(dir);
    secs
}

pub(crate) async fn timed_download(
    net: &LocalNet,
    i: usize,
    id: Hash256,
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let status = media(net, i)?.download(id).await.finished().await;
    let secs = start.elapsed().as_secs_f64();
    if status.chunks_present != status.chunks_total {
        return Err(setup(format!("transfer did not complete: {status:?}")));
    }
    Ok(secs)
}
