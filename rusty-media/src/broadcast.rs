//! Live streams on the network: the broadcaster's side (cutting input into
//! signed, announced segments) and the viewer's (fetching announced
//! segments from other viewers or the broadcaster, reordering them in a
//! jitter buffer, skipping what falls out of the live window, measuring
//! latency).
//!
//! Offloading the broadcaster: a viewer asks other viewers of the stream
//! first and the broadcaster last, and the broadcaster hands each fresh
//! segment to only [`SEED_COPIES`] viewers, answering `Busy` to the rest for
//! a moment so they fetch it from those (BitTorrent's super-seeding, per
//! segment). After [`SEED_HOLD`] it serves anyone, so a swarm that does not
//! re-serve costs latency, never the stream.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use rand::seq::SliceRandom;
use rusty_network::{PeerId, Topic};
use rusty_shared_types::Hash256;
use tokio::sync::Notify;
use tracing::{debug, info};

use crate::{
    downloader::obtain_manifest,
    live::{JitterBuffer, LatencyStats, Popped, Segmenter, SegmenterConfig},
    manifest::{Manifest, ManifestFields, SignedManifest},
    service::{actor::MediaCommand, lock, unix_ms, MediaError, MediaHandle},
    wire::{Announcement, MediaRequest, MediaResponse, SegmentAnnouncement},
};

/// Segments kept for serving and playback (about 30 s at 0.5 s segments).
pub const WINDOW: usize = 64;
/// How many viewers the broadcaster serves a fresh segment to before
/// pointing the rest at them.
pub const SEED_COPIES: u32 = 1;
/// How long a segment counts as fresh.
pub const SEED_HOLD: Duration = Duration::from_millis(1500);
/// A viewer waits this long for a missing segment before skipping it.
pub const JITTER_MAX_WAIT_MS: u64 = 2_000;
/// A viewer gives up fetching a segment after this long.
const FETCH_DEADLINE: Duration = Duration::from_secs(8);
/// Viewers say they are watching this often (for viewers that join later).
const REANNOUNCE: Duration = Duration::from_secs(5);
/// Watchers not heard from for this long are forgotten.
const WATCHER_TTL: Duration = Duration::from_secs(30);
/// Watchers remembered per stream, at most.
const MAX_WATCHERS: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Broadcaster,
    Viewer,
}

/// A segment in play order, for output (HLS, RPC, files).
#[derive(Debug, Clone)]
pub struct Played {
    pub seq: u64,
    pub duration_ms: u32,
    /// Input to playable on this node, ms (0 on the broadcaster).
    pub latency_ms: u64,
    pub data: Arc<Vec<u8>>,
}

/// A live stream's state, for `stream_status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveStatus {
    pub id: String,
    pub title: String,
    pub role: Role,
    pub ended: bool,
    /// The newest segment played (viewer) or cut (broadcaster).
    pub last_seq: Option<u64>,
    pub segments: u64,
    pub skipped: u64,
    /// Segments waiting in the jitter buffer.
    pub buffered: usize,
    pub buffered_bytes: usize,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_max_ms: Option<u64>,
    pub received_bytes: u64,
    pub uploaded_bytes: u64,
    pub watchers: usize,
}

#[derive(Debug)]
struct Held {
    ann: SegmentAnnouncement,
    data: Arc<Vec<u8>>,
    at: Instant,
    served: u32,
}

#[derive(Debug)]
struct State {
    segmenter: Option<Segmenter>,
    held: BTreeMap<u64, Held>,
    played: BTreeMap<u64, Played>,
    jitter: JitterBuffer,
    latency: LatencyStats,
    fetching: HashSet<u64>,
    watchers: HashMap<PeerId, Instant>,
    segments: u64,
    skipped: u64,
    /// The creator said the stream ended after this segment (viewer), and
    /// when that was heard.
    end: Option<(Option<u64>, Instant)>,
}

/// How long a viewer waits, after the end was announced, for segments
/// still missing before it ends too.
const END_GRACE: Duration = Duration::from_secs(5);

/// A stream this node broadcasts or watches.
///
/// Its window sits behind one lock of its own, not in the media task:
/// segment requests are served from it by the serving tasks, segment
/// fetches and the stream's ticker fill it, and a reply copies up to a
/// segment's bytes, which must not queue behind the task. The lock is held
/// only for map updates, never across an await. (Giving each stream a task
/// of its own, like the service, is the next step.)
#[derive(Debug)]
pub struct LiveStream {
    pub id: Hash256,
    pub manifest: Arc<SignedManifest>,
    pub role: Role,
    state: Mutex<State>,
    notify: Notify,
    ended: AtomicBool,
    uploaded: AtomicU64,
    received: AtomicU64,
}

impl LiveStream {
    /// A stream this node watches.
    pub(crate) fn viewer(id: Hash256, manifest: Arc<SignedManifest>) -> LiveStream {
        LiveStream::new(id, manifest, Role::Viewer)
    }

    fn new(id: Hash256, manifest: Arc<SignedManifest>, role: Role) -> LiveStream {
        LiveStream {
            id,
            manifest,
            role,
            state: Mutex::new(State {
                segmenter: (role == Role::Broadcaster)
                    .then(|| Segmenter::new(SegmenterConfig::default())),
                held: BTreeMap::new(),
                played: BTreeMap::new(),
                jitter: JitterBuffer::new(WINDOW as u64, JITTER_MAX_WAIT_MS),
                latency: LatencyStats::default(),
                fetching: HashSet::new(),
                watchers: HashMap::new(),
                segments: 0,
                skipped: 0,
                end: None,
            }),
            notify: Notify::new(),
            ended: AtomicBool::new(false),
            uploaded: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// The creator's verified end-of-stream (viewer): the stream ends here
    /// once everything up to `last_seq` played, or after [`END_GRACE`].
    pub(crate) fn on_end(&self, last_seq: Option<u64>) {
        if self.role == Role::Viewer {
            let mut s = lock(&self.state);
            if s.end.is_none() {
                s.end = Some((last_seq, Instant::now()));
            }
        }
    }

    pub(crate) fn add_watcher(&self, peer: PeerId) {
        let mut s = lock(&self.state);
        if !s.watchers.contains_key(&peer) && s.watchers.len() >= MAX_WATCHERS {
            // Forget the one heard from least recently.
            if let Some(oldest) = s.watchers.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                s.watchers.remove(&oldest);
            }
        }
        s.watchers.insert(peer, Instant::now());
    }

    pub(crate) fn count_upload(&self, bytes: u64) {
        self.uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn status(&self) -> LiveStatus {
        let s = lock(&self.state);
        LiveStatus {
            id: self.id.to_string(),
            title: self.manifest.manifest.title.clone(),
            role: self.role,
            ended: self.is_ended(),
            last_seq: s.played.keys().next_back().copied(),
            segments: s.segments,
            skipped: s.skipped,
            buffered: s.jitter.buffered(),
            buffered_bytes: s.jitter.buffered_bytes(),
            latency_p50_ms: s.latency.percentile(50.0),
            latency_p95_ms: s.latency.percentile(95.0),
            latency_max_ms: s.latency.max(),
            received_bytes: self.received.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded.load(Ordering::Relaxed),
            watchers: s.watchers.len(),
        }
    }

    /// Latency samples so far (viewer).
    pub fn latencies(&self) -> LatencyStats {
        lock(&self.state).latency.clone()
    }

    /// Played segments with `seq >= from`, oldest first, at most `max`.
    pub fn played_from(&self, from: u64, max: usize) -> Vec<Played> {
        lock(&self.state)
            .played
            .range(from..)
            .take(max)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Waits until a segment `>= from` is played, the stream ends, or
    /// `timeout` passes; returns what is there.
    pub async fn wait_played(&self, from: u64, max: usize, timeout: Duration) -> Vec<Played> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let got = self.played_from(from, max);
            if !got.is_empty() || self.is_ended() {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// The playable window, oldest first: (seq, duration ms).
    pub fn window(&self) -> Vec<(u64, u32)> {
        lock(&self.state)
            .played
            .values()
            .map(|p| (p.seq, p.duration_ms))
            .collect()
    }

    pub fn segment(&self, seq: u64) -> Option<Arc<Vec<u8>>> {
        lock(&self.state).played.get(&seq).map(|p| p.data.clone())
    }

    /// Answers a peer's segment request.
    pub(crate) fn serve_segment(&self, seq: u64, peer: PeerId) -> MediaResponse {
        let mut s = lock(&self.state);
        let others_watching = s.watchers.keys().any(|w| *w != peer);
        let Some(h) = s.held.get_mut(&seq) else {
            return MediaResponse::NotFound;
        };
        if self.role == Role::Broadcaster
            && h.served >= SEED_COPIES
            && others_watching
            && h.at.elapsed() < SEED_HOLD
        {
            return MediaResponse::Busy;
        }
        h.served = h.served.saturating_add(1);
        MediaResponse::Segment {
            announcement: h.ann.clone(),
            data: h.data.as_ref().clone(),
        }
    }

    /// Keeps a verified segment for serving and, on a viewer, feeds the
    /// jitter buffer.
    fn hold(&self, ann: SegmentAnnouncement, data: Vec<u8>) {
        let now_ms = unix_ms();
        let data = Arc::new(data);
        let mut s = lock(&self.state);
        let seq = ann.seq;
        let captured = ann.captured_ms;
        let duration_ms = ann.duration_ms;
        s.held.insert(
            seq,
            Held {
                ann,
                data: data.clone(),
                at: Instant::now(),
                served: 0,
            },
        );
        while s.held.len() > WINDOW {
            s.held.pop_first();
        }
        s.fetching.remove(&seq);
        match self.role {
            Role::Broadcaster => {
                s.segments += 1;
                s.played.insert(
                    seq,
                    Played {
                        seq,
                        duration_ms,
                        latency_ms: 0,
                        data,
                    },
                );
            }
            Role::Viewer => {
                self.received
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if let Err(e) = s
                    .jitter
                    .insert(seq, data.as_ref().clone(), captured, now_ms)
                {
                    debug!(target: "media", stream = %self.id, seq, error = %e, "segment not buffered");
                }
                let durations: HashMap<u64, u32> = s
                    .held
                    .iter()
                    .map(|(k, h)| (*k, h.ann.duration_ms))
                    .collect();
                self.drain(&mut s, now_ms, &durations);
            }
        }
        while s.played.len() > WINDOW {
            s.played.pop_first();
        }
        drop(s);
        self.notify.notify_waiters();
    }

    fn drain(&self, s: &mut State, now_ms: u64, durations: &HashMap<u64, u32>) {
        for p in s.jitter.pop_ready(now_ms) {
            match p {
                Popped::Segment {
                    seq,
                    data,
                    latency_ms,
                } => {
                    s.latency.record(latency_ms);
                    s.segments += 1;
                    s.played.insert(
                        seq,
                        Played {
                            seq,
                            duration_ms: durations.get(&seq).copied().unwrap_or(1),
                            latency_ms,
                            data: Arc::new(data),
                        },
                    );
                }
                Popped::Skipped { from, to } => {
                    s.skipped = s.skipped.saturating_add(to.saturating_sub(from));
                    info!(target: "media", stream = %self.id, from, to, "skipped segments that did not arrive in time");
                }
            }
        }
    }

    fn tick(&self) {
        {
            let now = Instant::now();
            lock(&self.state)
                .watchers
                .retain(|_, t| now.duration_since(*t) < WATCHER_TTL);
        }
        if self.role == Role::Viewer {
            let mut s = lock(&self.state);
            let durations: HashMap<u64, u32> = s
                .held
                .iter()
                .map(|(k, h)| (*k, h.ann.duration_ms))
                .collect();
            let before = s.played.len();
            self.drain(&mut s, unix_ms(), &durations);
            while s.played.len() > WINDOW {
                s.played.pop_first();
            }
            let changed = s.played.len() != before;
            let finished = s.end.is_some_and(|(last, at)| {
                let caught_up = match (last, s.jitter.next_seq()) {
                    (None, _) => true,
                    (Some(l), Some(next)) => next > l,
                    (Some(_), None) => false,
                };
                caught_up || at.elapsed() >= END_GRACE
            });
            drop(s);
            if finished {
                info!(target: "media", stream = %self.id, "live stream ended");
                self.end();
                return;
            }
            if changed {
                self.notify.notify_waiters();
            }
        }
    }

    /// A verified announcement of segment `ann.seq` (viewer): fetch it.
    pub(crate) fn on_announcement(
        self: &Arc<Self>,
        svc: &MediaHandle,
        ann: SegmentAnnouncement,
        author: Option<PeerId>,
    ) {
        if self.role != Role::Viewer || self.is_ended() {
            return;
        }
        {
            let mut s = lock(&self.state);
            s.jitter.note_newest(ann.seq);
            let stale = s.jitter.next_seq().is_some_and(|n| ann.seq < n);
            if stale || s.held.contains_key(&ann.seq) || !s.fetching.insert(ann.seq) {
                return;
            }
        }
        let this = self.clone();
        let svc = svc.clone();
        tokio::spawn(async move {
            let seq = ann.seq;
            if !this.fetch(&svc, ann, author).await {
                lock(&this.state).fetching.remove(&seq);
            }
        });
    }

    /// Fetches one segment: other viewers first, the announcer last.
    async fn fetch(
        &self,
        svc: &MediaHandle,
        ann: SegmentAnnouncement,
        author: Option<PeerId>,
    ) -> bool {
        let deadline = Instant::now() + FETCH_DEADLINE;
        let creator = self.manifest.manifest.creator();
        let me = svc.peer_id();
        let mut bad: HashSet<PeerId> = HashSet::new();
        while Instant::now() < deadline && !self.is_ended() {
            if lock(&self.state)
                .jitter
                .next_seq()
                .is_some_and(|n| ann.seq < n)
            {
                return false;
            }
            let mut candidates: Vec<PeerId> = {
                let s = lock(&self.state);
                s.watchers.keys().copied().collect()
            };
            candidates.retain(|p| Some(*p) != author && *p != me && !bad.contains(p));
            candidates.shuffle(&mut rand::thread_rng());
            if let Some(a) = author.filter(|a| !bad.contains(a)) {
                candidates.push(a);
            }
            for peer in candidates {
                let req = MediaRequest::Segment {
                    id: self.id,
                    seq: ann.seq,
                };
                match svc.request(peer, &req).await {
                    Ok(MediaResponse::Segment { announcement, data }) => {
                        let ok = announcement.stream == self.id
                            && announcement.seq == ann.seq
                            && announcement.hash == ann.hash
                            && announcement.verify(&creator).is_ok()
                            && announcement.verify_data(&data).is_ok();
                        if ok {
                            svc.shared
                                .counters
                                .downloaded_bytes
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                            self.hold(announcement, data);
                            return true;
                        }
                        bad.insert(peer);
                        svc.shared
                            .counters
                            .bad_chunks
                            .fetch_add(1, Ordering::Relaxed);
                        svc.penalise(
                            peer,
                            &format!("live segment {} of {} does not verify", ann.seq, self.id),
                        );
                    }
                    Ok(MediaResponse::NotFound | MediaResponse::Busy) => {}
                    Ok(_) => {
                        bad.insert(peer);
                        svc.penalise(peer, "answered a segment request with other data");
                    }
                    Err(e) => {
                        debug!(target: "media", %peer, seq = ann.seq, error = %e, "segment request failed");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}

impl MediaHandle {
    /// Starts a live broadcast: signs its manifest, announces it. Feed it
    /// with [`MediaHandle::broadcast_push`]; segments are cut every half
    /// second (or at 1 MiB) and announced as they are.
    pub async fn broadcast_start(&self, mut fields: ManifestFields) -> Result<Hash256, MediaError> {
        if fields.created == 0 {
            fields.created = unix_ms() / 1000;
        }
        let signed = Manifest::build_live(&self.shared.key, fields)?;
        let id = signed.content_id();
        let store = self.store().clone();
        let s = signed.clone();
        crate::service::blocking(move || Ok(store.add_manifest(s, true)?)).await?;
        let stream = Arc::new(LiveStream::new(id, Arc::new(signed), Role::Broadcaster));
        self.tell(MediaCommand::Broadcast {
            stream: stream.clone(),
        })
        .await?;
        self.announce_have(id, true).await;
        spawn_ticker(self.clone(), stream);
        info!(target: "media", %id, "live broadcast started");
        Ok(id)
    }

    /// Feeds input bytes to a broadcast (read now).
    pub async fn broadcast_push(&self, id: Hash256, data: &[u8]) -> Result<(), MediaError> {
        let stream = self.broadcasting(&id).await?;
        let cut = {
            let mut s = lock(&stream.state);
            match s.segmenter.as_mut() {
                Some(seg) => seg.push(data, unix_ms()),
                None => Vec::new(),
            }
        };
        for c in cut {
            self.emit_segment(&stream, c).await?;
        }
        Ok(())
    }

    /// Ends a broadcast: the pending input becomes the last segment.
    pub async fn broadcast_end(&self, id: Hash256) -> Result<(), MediaError> {
        let stream = self.broadcasting(&id).await?;
        let last = lock(&stream.state)
            .segmenter
            .as_mut()
            .and_then(|s| s.finish(unix_ms()));
        if let Some(c) = last {
            self.emit_segment(&stream, c).await?;
        }
        let last_seq = lock(&stream.state).held.keys().next_back().copied();
        let end = crate::wire::StreamEnd::sign(&self.shared.key, id, last_seq, unix_ms());
        let msg = Announcement::End(end).encode();
        if let Err(e) = self.shared.net.publish(Topic::Media, msg).await {
            debug!(target: "media", stream = %id, error = %e, "end of stream not announced");
        }
        stream.end();
        info!(target: "media", %id, "live broadcast ended");
        Ok(())
    }

    async fn broadcasting(&self, id: &Hash256) -> Result<Arc<LiveStream>, MediaError> {
        let stream = self
            .live_stream(id)
            .await
            .filter(|s| s.role == Role::Broadcaster)
            .ok_or(MediaError::NotBroadcasting(*id))?;
        if stream.is_ended() {
            return Err(MediaError::Ended(*id));
        }
        Ok(stream)
    }

    async fn emit_segment(
        &self,
        stream: &Arc<LiveStream>,
        c: crate::live::CutSegment,
    ) -> Result<(), MediaError> {
        let ann = SegmentAnnouncement::sign(
            &self.shared.key,
            stream.id,
            c.seq,
            &c.data,
            c.captured_ms,
            c.duration_ms,
        )
        .map_err(|e| MediaError::Download {
            id: stream.id,
            reason: format!("segment {}: {e}", c.seq),
        })?;
        stream.hold(ann.clone(), c.data);
        let msg = Announcement::Segment(ann).encode();
        if let Err(e) = self.shared.net.publish(Topic::Media, msg).await {
            debug!(target: "media", stream = %stream.id, error = %e, "segment announcement not published");
        }
        Ok(())
    }

    /// Starts watching live stream `id` (or returns the running watch).
    pub async fn watch(&self, id: Hash256) -> Result<Arc<LiveStream>, MediaError> {
        if let Some(s) = self.live_stream(&id).await {
            return Ok(s);
        }
        let never = AtomicBool::new(false);
        let manifest = obtain_manifest(self, id, &never).await?;
        if !manifest.manifest.live {
            return Err(MediaError::NotLive(id));
        }
        // The known providers become its first watchers (the task adds
        // them, with the stream, in one step).
        let stream = self
            .ask(|reply| MediaCommand::Watch {
                id,
                manifest,
                reply,
            })
            .await?;
        self.announce_have(id, false).await;
        spawn_ticker(self.clone(), stream.clone());
        info!(target: "media", %id, "watching live stream");
        Ok(stream)
    }

    /// Stops watching (or broadcasting) `id`.
    pub async fn unwatch(&self, id: &Hash256) -> bool {
        let id = *id;
        match self.ask(|reply| MediaCommand::Unwatch { id, reply }).await {
            Ok(Some(s)) => {
                s.end();
                true
            }
            _ => false,
        }
    }
}

/// Cuts pending broadcast input on time, drains viewers' jitter buffers,
/// and re-announces viewers, until the stream ends.
fn spawn_ticker(svc: MediaHandle, stream: Arc<LiveStream>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_announce = Instant::now();
        while !stream.is_ended() {
            tick.tick().await;
            stream.tick();
            match stream.role {
                Role::Broadcaster => {
                    let cut = lock(&stream.state)
                        .segmenter
                        .as_mut()
                        .and_then(|s| s.tick(unix_ms()));
                    if let Some(c) = cut {
                        if let Err(e) = svc.emit_segment(&stream, c).await {
                            debug!(target: "media", error = %e, "segment not emitted");
                        }
                    }
                }
                Role::Viewer => {
                    if last_announce.elapsed() >= REANNOUNCE {
                        last_announce = Instant::now();
                        svc.reannounce(stream.id).await;
                    }
                }
            }
        }
    });
}
