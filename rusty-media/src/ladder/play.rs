//! The node's own adaptive bitrate for an on-demand ladder
//! (`stream publish --transcode`): a [`LadderPlayer`] offers a player one
//! media playlist (`/media/<master>/abr.m3u8`) and picks, segment by
//! segment, which rendition it fetches from the swarm and serves.
//!
//! The node knows what a player cannot: how fast each rendition's chunks
//! arrive from its providers, and what it already holds. So the choice is
//! made where the bytes come in. BOLA-E ([`Chooser`]) picks the rendition
//! of the next segment to prefetch from the node's buffer, the seconds of
//! segments held ahead of the player's position, and the throughput of the
//! last segment fetches; the player is offered only what was chosen. A
//! segment the player asks for before it was prefetched is a rebuffer: it
//! is fetched at once, at the rendition the rule picks with an empty
//! buffer, and BOLA-E drops its start-up placeholder.
//!
//! Every rendition is read through a sparse download
//! ([`MediaHandle::read_sparse`]): only the chosen segments' chunks are
//! fetched, never a whole rendition, and each is verified as usual. A
//! player that wants to choose for itself plays the master playlist
//! instead; both work side by side.
//!
//! One task owns a ladder's state; [`LadderPlayer`] is its cloneable handle
//! (commands over a bounded channel). The media task keeps one per master
//! playlist. A live ladder (`stream broadcast --live --transcode`) is
//! answered through the same handle by the task in `super::live_play`,
//! which follows one rendition's broadcast at a time.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use futures::{stream::FuturesUnordered, StreamExt};
use rusty_shared_types::Hash256;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::{
    abr::{Chooser, Rule, MAX_BUFFER_SECS},
    service::{MediaError, MediaHandle},
};

/// Commands queued per ladder before senders wait.
const QUEUE: usize = 32;
/// How long a segment read (prefetch or the player's) may take.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of a playlist read.
const MAX_PLAYLIST_BYTES: u64 = 1 << 20;
/// Most renditions and segments accepted from a master / media playlist.
const MAX_RENDITIONS: usize = 16;
const MAX_SEGMENTS: usize = 100_000;

/// Why a ladder cannot be played by the node.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LadderPlayError {
    #[error("{0} is not an HLS master playlist (no #EXT-X-STREAM-INF variant)")]
    NotAMaster(Hash256),
    /// Found while opening: the live ladder task takes over.
    #[error("a live ladder")]
    Live,
    #[error("the ladder's playlists do not fit together: {0}")]
    BadLadder(String),
    #[error("segment {0} does not exist")]
    NoSegment(usize),
    #[error("{0}")]
    Media(String),
    #[error("the node is shutting down")]
    Stopped,
}

impl From<MediaError> for LadderPlayError {
    fn from(e: MediaError) -> Self {
        LadderPlayError::Media(e.to_string())
    }
}

/// One rendition as the player sees it in the status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RenditionStatus {
    /// `854x480`, or the bandwidth when the master names no resolution.
    pub name: String,
    pub kbps: f64,
    /// The rendition's MPEG-TS content id.
    pub content: String,
    /// Segments of this rendition fetched (prefetched or on demand).
    pub segments: u64,
    pub bytes: u64,
}

/// What the node chose so far: [`LadderPlayer::status`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LadderStatus {
    pub master: String,
    pub rule: &'static str,
    /// A live ladder (its segments numbered as its broadcasts number them).
    pub live: bool,
    /// The segment `chosen[0]` is: 0 on demand, the oldest in a live
    /// ladder's window.
    pub first_segment: u64,
    pub segments: usize,
    /// The next segment the player will ask for.
    pub position: usize,
    /// Seconds held ahead of the position.
    pub buffer_secs: f64,
    /// Segment fetch throughput, harmonic mean of the last five, kbit/s.
    pub throughput_kbps: Option<f64>,
    /// Segments the player asked for before they were here.
    pub rebuffers: u64,
    /// Changes of rendition from one segment to the next.
    pub switches: u64,
    pub renditions: Vec<RenditionStatus>,
    /// The rendition index served or held for each segment, `None` where
    /// nothing is chosen yet.
    pub chosen: Vec<Option<usize>>,
    /// Renditions `/media/<master>/master.m3u8` offers now (the lowest
    /// ones; see [`LadderPlayer::capped_master`]).
    pub offered: usize,
    /// Live: the renditions whose broadcasts the node follows now (one, or
    /// two during a switch). Empty on demand.
    pub following: Vec<usize>,
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, LadderPlayError>>;

pub(super) enum Command {
    Playlist(Reply<String>),
    /// The master playlist capped for a player that chooses for itself.
    Master(Reply<String>),
    Segment(usize, Reply<Vec<u8>>),
    Status(Reply<LadderStatus>),
}

/// Handle on one ladder's player task.
#[derive(Debug, Clone)]
pub struct LadderPlayer {
    tx: mpsc::Sender<Command>,
}

impl LadderPlayer {
    /// Starts the task for `master`; it reads the playlists (fetching them
    /// from the swarm if needed) before it answers anything, and a ladder
    /// it cannot play answers every command with why.
    pub fn spawn(media: MediaHandle, master: Hash256) -> LadderPlayer {
        Self::spawn_with_rule(media, master, Rule::BolaE)
    }

    /// [`LadderPlayer::spawn`] choosing with `rule` instead of BOLA-E (the
    /// node always uses BOLA-E; `rusty-cli bench abr` compares the rules).
    pub fn spawn_with_rule(media: MediaHandle, master: Hash256, rule: Rule) -> LadderPlayer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(media, master, rule, rx));
        LadderPlayer { tx }
    }

    /// The task ended (a ladder it could not play, or the node stopping).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    async fn ask<T>(&self, cmd: impl FnOnce(Reply<T>) -> Command) -> Result<T, LadderPlayError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(cmd(reply))
            .await
            .map_err(|_| LadderPlayError::Stopped)?;
        rx.await.map_err(|_| LadderPlayError::Stopped)?
    }

    /// The media playlist offered to the player: every segment, as
    /// `abr/<n>.ts` relative to `/media/<master>/abr.m3u8`.
    pub async fn playlist(&self) -> Result<String, LadderPlayError> {
        self.ask(Command::Playlist).await
    }

    /// The master playlist for a player that chooses renditions itself,
    /// without the renditions the swarm does not carry now: those above
    /// [`crate::abr::Chooser::cap`] (what 90 % of the node's measured
    /// segment throughput carries, and at least the rendition the node is
    /// fetching). The lowest is always offered. Before the first segment
    /// fetch has measured anything, the answer waits for it.
    pub async fn capped_master(&self) -> Result<String, LadderPlayError> {
        self.ask(Command::Master).await
    }

    /// Segment `n`'s bytes, in the rendition the node chose.
    pub async fn segment(&self, n: usize) -> Result<Vec<u8>, LadderPlayError> {
        self.ask(|r| Command::Segment(n, r)).await
    }

    pub async fn status(&self) -> Result<LadderStatus, LadderPlayError> {
        self.ask(Command::Status).await
    }
}

/// A rendition: its bitrate and where each segment lies in its TS file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub name: String,
    pub kbps: f64,
    pub ts: Hash256,
    /// `(seconds, offset, length)` per segment.
    pub ranges: Vec<(f64, u64, u64)>,
}

/// The variants of a master playlist: `(kbps, resolution, playlist id)`,
/// in the master's order. Average bandwidth is preferred to peak, as the
/// rule compares it with measured throughput.
pub fn master_variants(text: &str) -> Result<Vec<(f64, Option<String>, String)>, String> {
    let mut out = Vec::new();
    let mut pending: Option<(f64, Option<String>)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let kbps = variant_kbps(attrs)
                .ok_or_else(|| format!("a variant without a usable BANDWIDTH: {line}"))?;
            pending = Some((kbps, attribute(attrs, "RESOLUTION")));
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some((kbps, res)) = pending.take() {
                out.push((kbps, res, line.to_string()));
            }
        }
    }
    if out.len() > MAX_RENDITIONS {
        return Err(format!("{} variants (at most {MAX_RENDITIONS})", out.len()));
    }
    Ok(out)
}

/// The value of attribute `name` in an `#EXT-X-STREAM-INF` attribute list.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    attrs.split(',').find_map(|a| {
        let (k, v) = a.split_once('=')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// A variant's bandwidth in kbit/s: the average if given, else the peak;
/// `None` unless a positive finite number.
fn variant_kbps(attrs: &str) -> Option<f64> {
    attribute(attrs, "AVERAGE-BANDWIDTH")
        .or_else(|| attribute(attrs, "BANDWIDTH"))
        .and_then(|b| b.parse::<f64>().ok())
        .filter(|b| b.is_finite() && *b > 0.0)
        .map(|bps| bps / 1000.0)
}

/// `text` (a master playlist) without the variants whose bandwidth
/// (average preferred, as [`master_variants`] reads it) is above
/// `max_kbps`, except the lowest, which always stays; every other line is
/// kept as it is.
pub fn cap_master(text: &str, max_kbps: f64) -> String {
    let lowest = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#EXT-X-STREAM-INF:"))
        .filter_map(variant_kbps)
        .fold(f64::INFINITY, f64::min);
    let mut out = String::with_capacity(text.len());
    // Dropping a variant drops its tag and the URI line after it.
    let mut dropping = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(attrs) = trimmed.strip_prefix("#EXT-X-STREAM-INF:") {
            let kbps = variant_kbps(attrs).unwrap_or(f64::INFINITY);
            dropping = kbps > max_kbps && kbps > lowest;
        } else if dropping && !trimmed.is_empty() && !trimmed.starts_with('#') {
            dropping = false;
            continue;
        }
        if !dropping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `../<64 hex>/<tail>` → the id.
pub(super) fn id_in(uri: &str, tail: &str) -> Option<Hash256> {
    uri.strip_prefix("../")?
        .strip_suffix(tail)?
        .strip_suffix('/')?
        .parse()
        .ok()
}

/// Reads a small content (a playlist, at most 1 MiB) as text, fetching it
/// from the swarm if needed.
pub async fn read_text(media: &MediaHandle, id: Hash256) -> Result<String, LadderPlayError> {
    let size = media.manifest(id).await?.manifest.size;
    if size == 0 || size > MAX_PLAYLIST_BYTES {
        return Err(LadderPlayError::BadLadder(format!(
            "{id} has {size} bytes, not a playlist"
        )));
    }
    let bytes = media.read(id, 0, size, SEGMENT_TIMEOUT).await?;
    String::from_utf8(bytes).map_err(|_| LadderPlayError::BadLadder(format!("{id} is not text")))
}

/// A master playlist's text and its variants (at least one), as
/// [`master_variants`] gives them.
pub(super) async fn read_master(
    media: &MediaHandle,
    master: Hash256,
) -> Result<(String, Vec<(f64, Option<String>, String)>), LadderPlayError> {
    let text = read_text(media, master).await?;
    let variants = master_variants(&text).map_err(LadderPlayError::BadLadder)?;
    if variants.is_empty() {
        return Err(LadderPlayError::NotAMaster(master));
    }
    Ok((text, variants))
}

/// The ladder behind `master`, renditions by ascending bitrate, and the
/// master playlist's text.
async fn open(
    media: &MediaHandle,
    master: Hash256,
) -> Result<(Vec<Rendition>, String), LadderPlayError> {
    let (text, variants) = read_master(media, master).await?;
    let mut renditions = Vec::new();
    for (kbps, resolution, uri) in variants {
        if uri.ends_with("/live.m3u8") {
            return Err(LadderPlayError::Live);
        }
        let playlist = id_in(&uri, "content").ok_or_else(|| {
            LadderPlayError::BadLadder(format!(
                "variant {uri:?} is not a node path ../<id>/content"
            ))
        })?;
        let text = read_text(media, playlist).await?;
        let ranges = super::segments(&text);
        let uris: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let ts = match uris.first() {
            Some(first) if uris.iter().all(|u| u == first) => id_in(first, "content"),
            _ => None,
        }
        .ok_or_else(|| {
            LadderPlayError::BadLadder(format!(
                "rendition {uri} is not one file of byte ranges on the node"
            ))
        })?;
        // The TS file's manifest too: the node's playback routes serve only
        // content whose manifest it holds, and a player that chooses for
        // itself may ask for any rendition.
        media.manifest(ts).await?;
        if ranges.is_empty() || ranges.len() > MAX_SEGMENTS {
            return Err(LadderPlayError::BadLadder(format!(
                "rendition {uri} has {} segments",
                ranges.len()
            )));
        }
        renditions.push(Rendition {
            name: resolution.unwrap_or_else(|| format!("{kbps:.0} kbit/s")),
            kbps,
            ts,
            ranges,
        });
    }
    renditions.sort_by(|a, b| a.kbps.total_cmp(&b.kbps));
    Ok((renditions, text))
}

/// The media playlist of `durations`: every segment as `abr/<n>.ts`.
pub fn abr_playlist(durations: &[f64]) -> String {
    let target = durations.iter().copied().fold(1.0_f64, f64::max).ceil() as u64;
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    for (n, d) in durations.iter().enumerate() {
        out.push_str(&format!("#EXTINF:{d:.3},\nabr/{n}.ts\n"));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// A finished segment fetch.
struct Fetched {
    segment: usize,
    rendition: usize,
    secs: f64,
    result: Result<Vec<u8>, LadderPlayError>,
}

/// Everything one ladder's task owns.
struct Ladder {
    media: MediaHandle,
    master: Hash256,
    renditions: Vec<Rendition>,
    /// Segment durations (the shortest rendition's count; the renditions
    /// are cut on the same keyframes).
    durations: Vec<f64>,
    chooser: Chooser,
    /// Segments held here, and in which rendition.
    held: BTreeMap<usize, usize>,
    /// Segments being fetched, and in which rendition.
    fetching: HashMap<usize, usize>,
    /// Players waiting for a segment being fetched.
    waiting: HashMap<usize, Vec<Reply<Vec<u8>>>>,
    position: usize,
    rebuffers: u64,
    fetched: Vec<(u64, u64)>,
    master_text: String,
    /// Players waiting for a capped master playlist until the first
    /// segment fetch has measured the swarm.
    waiting_master: Vec<Reply<String>>,
}

async fn run(media: MediaHandle, master: Hash256, rule: Rule, mut rx: mpsc::Receiver<Command>) {
    let (renditions, master_text) = match open(&media, master).await {
        Ok(r) => r,
        Err(LadderPlayError::Live) => return super::live_play::run(media, master, rx).await,
        Err(e) => return refuse_all(master, rx, e).await,
    };
    let count = renditions.iter().map(|r| r.ranges.len()).min().unwrap_or(0);
    let durations: Vec<f64> = renditions[0].ranges[..count].iter().map(|r| r.0).collect();
    let mean = durations.iter().sum::<f64>() / count.max(1) as f64;
    let bitrates: Vec<f64> = renditions.iter().map(|r| r.kbps).collect();
    let mut ladder = Ladder {
        chooser: Chooser::new(rule, &bitrates, mean.max(0.1)),
        fetched: vec![(0, 0); renditions.len()],
        media,
        master,
        renditions,
        durations,
        held: BTreeMap::new(),
        fetching: HashMap::new(),
        waiting: HashMap::new(),
        position: 0,
        rebuffers: 0,
        master_text,
        waiting_master: Vec::new(),
    };
    let mut fetches = FuturesUnordered::new();
    loop {
        if let Some((segment, rendition)) = ladder.next_prefetch() {
            fetches.push(ladder.fetch(segment, rendition));
        }
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => {
                    if let Some(f) = ladder.on_command(cmd) {
                        fetches.push(f);
                    }
                }
                None => break,
            },
            Some(done) = fetches.next(), if !fetches.is_empty() => ladder.on_fetched(done),
        }
    }
}

/// A ladder the node cannot play: answers what is queued with why, then
/// ends (the media task starts a new task on the next request, so a ladder
/// whose playlists were not reachable yet gets another try).
pub(super) async fn refuse_all(
    master: Hash256,
    mut rx: mpsc::Receiver<Command>,
    e: LadderPlayError,
) {
    debug!(target: "media", %master, error = %e, "ladder not playable by the node");
    rx.close();
    while let Some(cmd) = rx.recv().await {
        refuse(cmd, e.clone());
    }
}

pub(super) fn refuse(cmd: Command, e: LadderPlayError) {
    match cmd {
        Command::Playlist(r) | Command::Master(r) => drop(r.send(Err(e))),
        Command::Segment(_, r) => drop(r.send(Err(e))),
        Command::Status(r) => drop(r.send(Err(e))),
    }
}

/// Changes of rendition between consecutive chosen segments.
fn switches(chosen: &[Option<usize>]) -> u64 {
    chosen
        .windows(2)
        .filter(|w| matches!(w, [Some(a), Some(b)] if a != b))
        .count() as u64
}

type FetchFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Fetched> + Send>>;

impl Ladder {
    /// Seconds held contiguously from the position.
    fn buffer(&self) -> f64 {
        (self.position..self.durations.len())
            .take_while(|n| self.held.contains_key(n))
            .fold(0.0, |secs, n| secs + self.durations[n])
    }

    /// The next segment to prefetch and its rendition, if the buffer is
    /// below its cap and nothing is being prefetched.
    fn next_prefetch(&mut self) -> Option<(usize, usize)> {
        if !self.fetching.is_empty() {
            return None;
        }
        let buffer = self.buffer();
        if buffer >= MAX_BUFFER_SECS {
            return None;
        }
        let next = (self.position..self.durations.len()).find(|n| !self.held.contains_key(n))?;
        Some((next, self.chooser.choose(buffer)))
    }

    /// Reads `segment` of `rendition` through a sparse download (from the
    /// store when it is held).
    fn read(
        &self,
        segment: usize,
        rendition: usize,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, LadderPlayError>> + Send + 'static {
        let media = self.media.clone();
        let r = &self.renditions[rendition];
        let (ts, (_, offset, len)) = (r.ts, r.ranges[segment]);
        async move {
            media
                .read_sparse(ts, offset, offset.saturating_add(len), SEGMENT_TIMEOUT)
                .await
                .map_err(LadderPlayError::from)
        }
    }

    fn fetch(&mut self, segment: usize, rendition: usize) -> FetchFuture {
        self.fetching.insert(segment, rendition);
        let read = self.read(segment, rendition);
        Box::pin(async move {
            let started = Instant::now();
            let result = read.await;
            Fetched {
                segment,
                rendition,
                secs: started.elapsed().as_secs_f64(),
                result,
            }
        })
    }

    fn on_command(&mut self, cmd: Command) -> Option<FetchFuture> {
        match cmd {
            Command::Playlist(reply) => {
                let _ = reply.send(Ok(abr_playlist(&self.durations)));
                None
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
                None
            }
            Command::Master(reply) => {
                if self.chooser.throughput().is_some() {
                    let _ = reply.send(Ok(self.capped_master()));
                } else {
                    // The first prefetch is under way (it starts with the
                    // task); its end answers this.
                    self.waiting_master.push(reply);
                }
                None
            }
            Command::Segment(n, reply) => {
                if n >= self.durations.len() {
                    let _ = reply.send(Err(LadderPlayError::NoSegment(n)));
                    return None;
                }
                self.position = n + 1;
                if let Some(&rendition) = self.held.get(&n) {
                    // Held: read it from the store off this task.
                    let read = self.read(n, rendition);
                    tokio::spawn(async move {
                        let _ = reply.send(read.await);
                    });
                    return None;
                }
                self.waiting.entry(n).or_default().push(reply);
                if self.fetching.contains_key(&n) {
                    return None;
                }
                // The player got here first: a rebuffer.
                self.rebuffers += 1;
                self.chooser.rebuffered();
                let rendition = self.chooser.choose(0.0);
                Some(self.fetch(n, rendition))
            }
        }
    }

    fn on_fetched(&mut self, done: Fetched) {
        self.fetching.remove(&done.segment);
        let waiting = self.waiting.remove(&done.segment).unwrap_or_default();
        match &done.result {
            Ok(bytes) => {
                let kbits = bytes.len() as f64 * 8.0 / 1000.0;
                let secs = done.secs.max(0.001);
                self.chooser.record(kbits, secs);
                let f = &mut self.fetched[done.rendition];
                f.0 += 1;
                f.1 += bytes.len() as u64;
                self.held.insert(done.segment, done.rendition);
            }
            Err(e) => {
                debug!(target: "media", master = %self.master, segment = done.segment, error = %e, "segment fetch failed");
            }
        }
        for reply in waiting {
            let _ = reply.send(done.result.clone());
        }
        // Answered after any fetch, even a failed one: a player should not
        // wait on a swarm that does not deliver (it gets the lowest).
        if !self.waiting_master.is_empty() {
            let capped = self.capped_master();
            for reply in self.waiting_master.drain(..) {
                let _ = reply.send(Ok(capped.clone()));
            }
        }
    }

    /// The master playlist without the renditions above the cap.
    fn capped_master(&self) -> String {
        let cap = self.chooser.cap();
        let max_kbps = self.renditions.get(cap).map_or(0.0, |r| r.kbps);
        cap_master(&self.master_text, max_kbps)
    }

    fn status(&self) -> LadderStatus {
        let chosen: Vec<Option<usize>> = (0..self.durations.len())
            .map(|n| self.held.get(&n).or_else(|| self.fetching.get(&n)).copied())
            .collect();
        LadderStatus {
            master: self.master.to_string(),
            rule: self.chooser.rule().name(),
            live: false,
            first_segment: 0,
            switches: switches(&chosen),
            segments: self.durations.len(),
            position: self.position,
            buffer_secs: self.buffer(),
            throughput_kbps: self.chooser.throughput(),
            rebuffers: self.rebuffers,
            renditions: self
                .renditions
                .iter()
                .zip(&self.fetched)
                .map(|(r, f)| RenditionStatus {
                    name: r.name.clone(),
                    kbps: r.kbps,
                    content: r.ts.to_string(),
                    segments: f.0,
                    bytes: f.1,
                })
                .collect(),
            chosen,
            offered: self.chooser.cap() + 1,
            following: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_playlist_gives_its_variants_with_average_bandwidth_first() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=1140800,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n../aa/content\n\n#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=400000\n../bb/content\n";
        let v = master_variants(text).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].0, v[0].1.as_deref(), v[0].2.as_str()),
            (1140.8, Some("640x360"), "../aa/content")
        );
        assert_eq!((v[1].0, v[1].1.as_deref()), (400.0, None));
        assert!(master_variants("#EXT-X-STREAM-INF:RESOLUTION=1x1\nx\n").is_err());
        assert!(master_variants("#EXTM3U\n#EXTINF:1,\nseg.ts\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_capped_master_keeps_the_lowest_and_what_the_cap_allows() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=983000,RESOLUTION=854x480\n../cc/content\n\
#EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=245000,RESOLUTION=426x240\n../aa/content\n\
#EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=552000,RESOLUTION=640x360\n../bb/content\n";
        let names = |text: &str| -> Vec<String> {
            master_variants(text)
                .expect("a master")
                .into_iter()
                .map(|v| v.2)
                .collect()
        };
        // Everything under a high cap: unchanged.
        assert_eq!(cap_master(master, 10_000.0), master);
        // 600 kbit/s: 240p and 360p, in the master's order, other tags kept.
        let capped = cap_master(master, 600.0);
        assert_eq!(names(&capped), ["../aa/content", "../bb/content"]);
        assert!(capped.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"));
        assert!(!capped.contains("854x480"));
        // Below the lowest: the lowest alone, never nothing.
        assert_eq!(names(&cap_master(master, 10.0)), ["../aa/content"]);
    }

    #[test]
    fn node_paths_give_their_ids() {
        let id = "ab".repeat(32);
        assert_eq!(
            id_in(&format!("../{id}/content"), "content").map(|h| h.to_string()),
            Some(id.clone())
        );
        assert_eq!(id_in(&format!("../{id}/live.m3u8"), "content"), None);
        assert_eq!(id_in("../zz/content", "content"), None);
        assert_eq!(id_in(&format!("/{id}/content"), "content"), None);
    }

    #[test]
    fn the_offered_playlist_names_every_segment_once() {
        let p = abr_playlist(&[1.0, 1.0, 0.4]);
        assert!(p.starts_with("#EXTM3U\n"));
        assert!(p.contains("#EXT-X-TARGETDURATION:1\n"));
        assert_eq!(p.matches("#EXTINF").count(), 3);
        assert!(p.contains("#EXTINF:0.400,\nabr/2.ts\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }
}
