//! `rusty-cli bench media`: the media layer on dev nodes over loopback, in
//! one process, beside raw loopback TCP measured in the same run.
//!
//! 1. Transfer: a file published on one node is downloaded by another
//!    (libp2p, verified chunks written to RocksDB-backed stores); MB/s as a
//!    ratio to one raw loopback TCP connection.
//! 2. Live: one broadcaster and N viewers (all connected); input is pushed
//!    at a fixed bitrate; reports the share of the bytes the viewers
//!    received that the broadcaster uploaded (goal ≤ 25% with 8 viewers)
//!    and the latency from input (the segment's first byte) to playable on
//!    a viewer, p50/p95 over every segment of every viewer (goal p50 ≤ 2 s).

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use rusty_media::{live::LatencyStats, manifest::ManifestFields, service::MediaHandle};

use crate::{
    connect::BenchError,
    network::{loopback_tcp_mb_per_sec, setup, wait_peers},
};
use rusty_node::localnet::{LocalNet, LocalNetConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct MediaBenchConfig {
    /// Size of the transferred file, MiB.
    pub file_mib: usize,
    /// Live viewers.
    pub viewers: usize,
    /// Seconds of live input.
    pub live_secs: u64,
    /// Live input rate, kbit/s.
    pub live_kbps: u64,
}

impl Default for MediaBenchConfig {
    fn default() -> Self {
        MediaBenchConfig {
            file_mib: 64,
            viewers: 8,
            live_secs: 20,
            live_kbps: 2_000,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct MediaBenchReport {
    pub config: MediaBenchConfig,
    pub tcp_mb_per_sec: f64,
    pub transfer_secs: f64,
    pub transfer_mb_per_sec: f64,
    pub segments_cut: u64,
    /// Segments played, summed over viewers.
    pub segments_played: u64,
    pub skipped: u64,
    pub uploaded_by_broadcaster: u64,
    pub received_by_viewers: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_max_ms: Option<u64>,
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
        writeln!(
            f,
            "  raw loopback TCP (yardstick):        {:>9.1} MB/s",
            self.tcp_mb_per_sec
        )?;
        writeln!(
            f,
            "  transfer {} MiB, 1 provider → 1 viewer: {:>7.1} MB/s in {:.2} s  ({:.3} × TCP)",
            c.file_mib,
            self.transfer_mb_per_sec,
            self.transfer_secs,
            self.transfer_mb_per_sec / self.tcp_mb_per_sec
        )?;
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
        )
    }
}

fn media(net: &LocalNet, i: usize) -> Result<MediaHandle, BenchError> {
    net.node(i)
        .p2p()
        .and_then(|p| p.media.clone())
        .ok_or_else(|| setup(format!("node {i} has no media service")))
}

fn fields(title: &str) -> ManifestFields {
    ManifestFields {
        title: title.into(),
        mime: "application/octet-stream".into(),
        created: rusty_core::now(),
        ..Default::default()
    }
}

/// Runs the benchmark with node datadirs under `dir`.
pub async fn run_media_bench(
    config: MediaBenchConfig,
    dir: &Path,
) -> Result<MediaBenchReport, BenchError> {
    let tcp_mb_per_sec = loopback_tcp_mb_per_sec().await?;

    // 1. Transfer.
    let net = LocalNet::start(LocalNetConfig::new(dir.join("transfer"), 2)).await?;
    wait_peers(&net, 1).await?;
    let mut data = vec![0u8; config.file_mib << 20];
    blake3::Hasher::new().finalize_xof().fill(&mut data);
    let size = data.len();
    let id = media(&net, 0)?
        .publish_bytes(data, fields("bench file"))
        .await
        .map_err(|e| setup(format!("publish: {e}")))?;
    let viewer = media(&net, 1)?;
    let start = Instant::now();
    let status = viewer.download(id).await.finished().await;
    let transfer_secs = start.elapsed().as_secs_f64();
    if status.chunks_present != status.chunks_total {
        return Err(setup(format!("transfer did not complete: {status:?}")));
    }
    net.shutdown().await;
    let transfer_mb_per_sec = size as f64 / 1e6 / transfer_secs;

    // 2. Live.
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
    Ok(MediaBenchReport {
        config,
        tcp_mb_per_sec,
        transfer_secs,
        transfer_mb_per_sec,
        segments_cut: cut.segments,
        segments_played: played,
        skipped,
        uploaded_by_broadcaster: uploaded,
        received_by_viewers: received,
        latency_p50_ms: all.percentile(50.0),
        latency_p95_ms: all.percentile(95.0),
        latency_max_ms: all.max(),
    })
}
