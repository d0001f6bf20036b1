//! `rusty-cli bench abr --node-traces N`: the rules on real nodes over real
//! throttled transfers, beside the simulation and the offline optimum of
//! the same traces.
//!
//! One provider node serves a ladder; its upload token bucket follows a
//! seeded trace, a new rate every segment-length of wall-clock time
//! ([`MediaHandle::set_upload_limit`]). A viewer node chooses renditions
//! with the rule ([`LadderPlayer`], the code behind the node's own
//! `abr.m3u8`), and a player paced at playback speed asks it for segment
//! after segment, the next once it holds at most [`PLAYER_AHEAD_SECS`].
//! Every rule gets its own viewer node and every run its own ladder (same
//! sizes, other bytes): a viewer holding segments of a ladder serves them,
//! unthrottled, to the next viewer of that ladder. The runs go one after
//! another, each from an empty bucket (as the model's link, which lends no
//! burst).
//!
//! Segment bytes are the ladder's bitrates × [`BYTE_SCALE`], and so are the
//! trace's rates. At the real bitrates a low rung's 1 s segment (31 kB) is
//! half of one 64 KiB chunk, and the bucket's burst (one full reply, 1 MiB)
//! would carry 28 s of the trace's lowest rate: the throttle would not
//! throttle. Scaled, the rules see the trace's ratios of rate to bitrate;
//! the scores are given in the ladder's own Mbit/s, as the simulation's.

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use rusty_media::{
    abr::{offline_optimum_timed, seeded_trace, simulate_timed, Qoe, Rule, Trace},
    ladder::{self, play::LadderPlayer, Rung, SEGMENT_SECS},
    service::MediaHandle,
};
use rusty_node::localnet::{LocalNet, LocalNetConfig};
use rusty_shared_types::Hash256;

use super::AbrBenchConfig;
use crate::{
    connect::BenchError,
    media::{fields, media},
    network::{setup, wait_peers},
};

/// Segment sizes and trace rates are this many times the ladder's.
pub const BYTE_SCALE: f64 = 8.0;
/// The player asks for the next segment once it holds this little (a
/// player that fetched far ahead would leave the node no buffer to choose
/// by: the node's rule is the one measured).
pub const PLAYER_AHEAD_SECS: f64 = 1.0;
/// More than this from the other viewers (one 64 KiB chunk) means the run
/// was not throttled: an error, not a figure.
const MAX_UNTHROTTLED_BYTES: u64 = 64 * 1024;
/// A segment the player waits longer than this for ends the run.
const SEGMENT_DEADLINE: Duration = Duration::from_secs(120);

/// One rule over one trace.
#[derive(Debug, Clone)]
pub struct NodeRun {
    pub trace: usize,
    pub rule: &'static str,
    /// As played against the nodes.
    pub played: Qoe,
    /// The simulation of the same rule over the same trace, read as a
    /// link over time ([`simulate_timed`]), as the provider applies it.
    pub simulated: Qoe,
    /// Segments the player asked for before the node held them.
    pub node_rebuffers: u64,
    pub wall_secs: f64,
}

#[derive(Debug, Clone)]
pub struct NodesReport {
    pub traces: usize,
    pub segments: usize,
    pub runs: Vec<NodeRun>,
    /// Offline optimum per trace on the same link ([`offline_optimum_timed`]).
    pub optimum: Vec<f64>,
}

/// Plays every rule over `config.node_traces` traces of
/// `config.node_segments` segments on a new localnet under `dir` (one
/// provider, one viewer per rule).
pub async fn run(dir: &Path, config: &AbrBenchConfig) -> Result<NodesReport, BenchError> {
    let net = LocalNet::start(LocalNetConfig::new(dir, 1 + Rule::ALL.len())).await?;
    let result = runs_on(&net, config, config.node_traces, config.node_segments).await;
    net.shutdown().await;
    result
}

async fn runs_on(
    net: &LocalNet,
    config: &AbrBenchConfig,
    traces: usize,
    segments: usize,
) -> Result<NodesReport, BenchError> {
    wait_peers(net, Rule::ALL.len()).await?;
    let provider = media(net, 0)?;
    let rungs = super::rungs();
    let bitrates: Vec<f64> = rungs.iter().map(|r| f64::from(r.video_kbps)).collect();
    let seg = f64::from(SEGMENT_SECS);
    let mut report = NodesReport {
        traces,
        segments,
        runs: Vec::new(),
        optimum: Vec::new(),
    };
    for t in 0..traces {
        let trace = seeded_trace(
            config.seed.wrapping_add(t as u64),
            segments,
            config.low_kbps,
            config.high_kbps,
        );
        report
            .optimum
            .push(offline_optimum_timed(&bitrates, seg, &trace, segments));
        for (k, &rule) in Rule::ALL.iter().enumerate() {
            // A ladder of its own: a viewer that played another rule holds
            // that ladder's segments and would serve them unthrottled.
            let tag = (t * Rule::ALL.len() + k) as u64;
            let master = publish_ladder(&provider, &rungs, segments, tag).await?;
            let viewer = media(net, 1 + k)?;
            let served_by_viewers = viewers_uploaded(net)?;
            let started = Instant::now();
            let (played, node_rebuffers) =
                play(&provider, &viewer, master, rule, &trace, &bitrates).await?;
            // The segments must have come through the throttled provider
            // (viewers may pass each other a manifest, never a segment's
            // worth).
            let unthrottled = viewers_uploaded(net)?.saturating_sub(served_by_viewers);
            if unthrottled > MAX_UNTHROTTLED_BYTES {
                return Err(setup(format!(
                    "{}: viewer nodes served {unthrottled} bytes, past the provider's throttle",
                    rule.name()
                )));
            }
            report.runs.push(NodeRun {
                trace: t,
                rule: rule.name(),
                played,
                simulated: simulate_timed(rule, &bitrates, seg, &trace, segments),
                node_rebuffers,
                wall_secs: started.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(report)
}

/// Media bytes the viewer nodes (all but node 0) have uploaded.
fn viewers_uploaded(net: &LocalNet) -> Result<u64, BenchError> {
    let mut total = 0;
    for i in 1..=Rule::ALL.len() {
        total += media(net, i)?.stats().uploaded_bytes;
    }
    Ok(total)
}

/// Bytes of a rendition's segment at `kbps`, scaled.
fn segment_bytes(kbps: u32) -> u64 {
    (f64::from(kbps) * BYTE_SCALE * 1000.0 / 8.0 * f64::from(SEGMENT_SECS)) as u64
}

/// The trace's rate at step `k` (the last one after the end), bytes/s,
/// scaled.
fn upload_rate(trace: &Trace, k: usize) -> u64 {
    let kbps = trace
        .get(k)
        .or(trace.last())
        .copied()
        .unwrap_or(0.0)
        .max(1.0);
    (kbps * BYTE_SCALE * 1000.0 / 8.0) as u64
}

/// Publishes a ladder of `segments` segments per rung on `provider`, as
/// `stream publish --transcode` lays one out (one TS file per rendition,
/// a media playlist of byte ranges into it, a master playlist naming the
/// media playlists), filled with pseudo-random bytes distinct per `tag`.
async fn publish_ladder(
    provider: &MediaHandle,
    rungs: &[Rung],
    segments: usize,
    tag: u64,
) -> Result<Hash256, BenchError> {
    let publish = |bytes: Vec<u8>, title: String| async move {
        provider
            .publish_bytes(bytes, fields(&title))
            .await
            .map_err(|e| setup(format!("publish {title}: {e}")))
    };
    let seg = f64::from(SEGMENT_SECS);
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (m, rung) in rungs.iter().enumerate() {
        let len = segment_bytes(rung.video_kbps);
        let ts = publish(
            pseudo_random(len as usize * segments, tag, m as u64),
            format!("abr bench {tag} {} ts", rung.name()),
        )
        .await?;
        let ts_uri = ladder::content_uri(&ts.to_string());
        let mut playlist = format!(
            "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:{SEGMENT_SECS}\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        );
        for n in 0..segments as u64 {
            playlist.push_str(&format!(
                "#EXTINF:{seg:.3},\n#EXT-X-BYTERANGE:{len}@{}\n{ts_uri}\n",
                n * len
            ));
        }
        playlist.push_str("#EXT-X-ENDLIST\n");
        let playlist = publish(
            playlist.into_bytes(),
            format!("abr bench {tag} {} playlist", rung.name()),
        )
        .await?;
        let bps = (f64::from(rung.video_kbps) * BYTE_SCALE * 1000.0) as u64;
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bps},AVERAGE-BANDWIDTH={bps},RESOLUTION={}x{}\n{}\n",
            rung.width,
            rung.height,
            ladder::content_uri(&playlist.to_string())
        ));
    }
    publish(master.into_bytes(), format!("abr bench {tag} master")).await
}

/// `len` bytes from BLAKE3's output stream keyed by (`tag`, `rendition`).
fn pseudo_random(len: usize, tag: u64, rendition: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"rusty-coin abr bench")
        .update(&tag.to_le_bytes())
        .update(&rendition.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// One run: the provider's bucket follows `trace` while a paced player
/// plays `master` from `viewer`, which chooses with `rule`. The QoE is in
/// the ladder's own bitrates (`bitrates`, kbit/s, ascending as the
/// ladder's renditions), with the start-up wait counted as rebuffering, as
/// in the simulation.
async fn play(
    provider: &MediaHandle,
    viewer: &MediaHandle,
    master: Hash256,
    rule: Rule,
    trace: &Trace,
    bitrates: &[f64],
) -> Result<(Qoe, u64), BenchError> {
    let limit = |e: rusty_media::service::MediaError| setup(format!("upload limit: {e}"));
    // Off, then on: an empty bucket at the trace's first rate.
    provider.set_upload_limit(0).await.map_err(limit)?;
    provider
        .set_upload_limit(upload_rate(trace, 0))
        .await
        .map_err(limit)?;
    let step = Duration::from_secs(u64::from(SEGMENT_SECS));
    let started = Instant::now();
    let throttle = tokio::spawn({
        let (provider, trace) = (provider.clone(), trace.clone());
        async move {
            for k in 1.. {
                tokio::time::sleep_until((started + step * k as u32).into()).await;
                if provider
                    .set_upload_limit(upload_rate(&trace, k))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    let result = paced_player(viewer, master, rule, bitrates, started).await;
    throttle.abort();
    provider.set_upload_limit(0).await.map_err(limit)?;
    result
}

async fn paced_player(
    viewer: &MediaHandle,
    master: Hash256,
    rule: Rule,
    bitrates: &[f64],
    started: Instant,
) -> Result<(Qoe, u64), BenchError> {
    let failed = |what: &str, e: ladder::play::LadderPlayError| {
        setup(format!("{} playing {master}: {what}: {e}", rule.name()))
    };
    let player = LadderPlayer::spawn_with_rule(viewer.clone(), master, rule);
    let segments = player
        .status()
        .await
        .map_err(|e| failed("opening", e))?
        .segments;
    let seg = Duration::from_secs(u64::from(SEGMENT_SECS));
    let ahead = Duration::from_secs_f64(PLAYER_AHEAD_SECS);
    let (mut qoe, mut previous) = (Qoe::default(), None);
    // When what the player holds runs out.
    let mut play_end = started;
    for n in 0..segments {
        let ask_at = play_end.checked_sub(ahead).unwrap_or(play_end);
        tokio::time::sleep_until(ask_at.into()).await;
        tokio::time::timeout(SEGMENT_DEADLINE, player.segment(n))
            .await
            .map_err(|_| setup(format!("segment {n} took over {SEGMENT_DEADLINE:?}")))?
            .map_err(|e| failed(&format!("segment {n}"), e))?;
        let got = Instant::now();
        let stall = got.saturating_duration_since(play_end).as_secs_f64();
        play_end = play_end.max(got) + seg;
        let status = player.status().await.map_err(|e| failed("status", e))?;
        let rendition = status
            .chosen
            .get(n)
            .copied()
            .flatten()
            .ok_or_else(|| setup(format!("segment {n} served but not held")))?;
        let mbps = bitrates[rendition] / 1000.0;
        qoe.add(mbps, previous, stall);
        previous = Some(mbps);
    }
    let rebuffers = player
        .status()
        .await
        .map_err(|e| failed("status", e))?
        .rebuffers;
    Ok((qoe, rebuffers))
}

impl NodesReport {
    /// Mean over the traces of `pick` for each rule's runs, in
    /// [`Rule::ALL`]'s order.
    fn mean_by_rule(&self, pick: impl Fn(&NodeRun) -> f64) -> Vec<(&'static str, f64)> {
        Rule::ALL
            .iter()
            .map(|rule| {
                let runs: Vec<&NodeRun> =
                    self.runs.iter().filter(|r| r.rule == rule.name()).collect();
                let n = runs.len().max(1) as f64;
                (rule.name(), runs.iter().map(|r| pick(r)).sum::<f64>() / n)
            })
            .collect()
    }

    pub fn mean_optimum(&self) -> f64 {
        self.optimum.iter().sum::<f64>() / self.optimum.len().max(1) as f64
    }
}

impl fmt::Display for NodesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ABR on real nodes: {} trace(s) × {} segments; a provider node whose upload token bucket follows the trace every {} s (rates and segment bytes × {BYTE_SCALE}), a viewer node per rule choosing renditions, a player paced at playback speed holding ≤ {PLAYER_AHEAD_SECS} s",
            self.traces, self.segments, SEGMENT_SECS
        )?;
        writeln!(
            f,
            "  {:<12} {:>9} {:>8} {:>12} {:>11} {:>12} {:>10} {:>15} {:>7}",
            "rule",
            "QoE",
            "of opt.",
            "mean Mbit/s",
            "rebuffer s",
            "Σ|Δ| Mbit/s",
            "node rebuf",
            "simulated QoE",
            "wall s"
        )?;
        let optimum = self.mean_optimum();
        let qoe = self.mean_by_rule(|r| r.played.score());
        let bitrate = self.mean_by_rule(|r| r.played.bitrate / r.played.segments.max(1) as f64);
        let rebuffer = self.mean_by_rule(|r| r.played.rebuffer_secs);
        let switches = self.mean_by_rule(|r| r.played.switches);
        let node_rebuffers = self.mean_by_rule(|r| r.node_rebuffers as f64);
        let simulated = self.mean_by_rule(|r| r.simulated.score());
        let wall = self.mean_by_rule(|r| r.wall_secs);
        for i in 0..qoe.len() {
            writeln!(
                f,
                "  {:<12} {:>9.1} {:>7.0}% {:>12.2} {:>11.2} {:>12.1} {:>10.1} {:>15.1} {:>7.0}",
                qoe[i].0,
                qoe[i].1,
                100.0 * qoe[i].1 / optimum,
                bitrate[i].1,
                rebuffer[i].1,
                switches[i].1,
                node_rebuffers[i].1,
                simulated[i].1,
                wall[i].1
            )?;
        }
        write!(
            f,
            "  {:<12} {:>9.1} {:>7}%  (yardstick: knows each trace in advance; a link without the bucket's burst)",
            "offline opt.", optimum, 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_sets_the_scaled_rate_and_holds_its_last() {
        let trace = vec![300.0, 6_000.0];
        assert_eq!(upload_rate(&trace, 0), 300_000);
        assert_eq!(upload_rate(&trace, 1), 6_000_000);
        assert_eq!(upload_rate(&trace, 9), 6_000_000);
        assert_eq!(segment_bytes(245), 245_000);
    }

    /// Three segments per rule on a real localnet: every rule plays every
    /// segment, in one of the ladder's renditions, and its start-up wait
    /// counts as rebuffering.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_rule_plays_a_short_trace_on_real_nodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AbrBenchConfig {
            node_traces: 1,
            node_segments: 3,
            ..AbrBenchConfig::default()
        };
        let report = run(dir.path(), &config).await.expect("ran");
        assert_eq!(report.runs.len(), Rule::ALL.len());
        assert_eq!(report.optimum.len(), 1);
        for r in &report.runs {
            assert_eq!(r.played.segments, 3, "{r:?}");
            assert!(r.played.rebuffer_secs > 0.0, "start-up counts: {r:?}");
            assert!(r.played.bitrate >= 3.0 * 0.245 - 1e-9, "{r:?}");
        }
        let text = report.to_string();
        assert!(text.contains("BOLA-E") && text.contains("offline opt."));
    }
}
