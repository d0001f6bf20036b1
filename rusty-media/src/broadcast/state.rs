//! What a live stream's task owns, and the changes to it that need no
//! I/O: holding segments, draining the jitter buffer, choosing whom to
//! serve, answering reads.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Instant,
};

use rusty_network::PeerId;
use rusty_shared_types::Hash256;
use tracing::{debug, info};

use super::{
    task::Served, LiveStatus, Played, Role, END_GRACE, JITTER_MAX_WAIT_MS, MAX_WATCHERS,
    SEED_COPIES, SEED_HOLD, WATCHER_TTL, WINDOW,
};
use crate::{
    live::{join_point, JitterBuffer, LatencyStats, Popped, Segmenter, SegmenterConfig},
    manifest::SignedManifest,
    wire::SegmentAnnouncement,
};

/// A verified segment kept for serving.
#[derive(Debug)]
struct Held {
    ann: SegmentAnnouncement,
    data: Arc<[u8]>,
    at: Instant,
    served: u32,
    /// How long its fetch took (0 on the broadcaster).
    fetch_ms: u64,
}

/// What [`State::tick`] found.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Ticked {
    /// Segments were played (waiters may have something now).
    pub(super) played: bool,
    /// A viewer reached the announced end (or gave up waiting for it).
    pub(super) finished: bool,
}

/// One live stream's state; owned by its task alone.
#[derive(Debug)]
pub(super) struct State {
    pub(super) id: Hash256,
    pub(super) role: Role,
    /// The broadcaster's input cutter (`None` on a viewer).
    pub(super) segmenter: Option<Segmenter>,
    held: BTreeMap<u64, Held>,
    played: BTreeMap<u64, Played>,
    /// The longest segment played so far, ms (see
    /// [`crate::http::hls_target_duration`]).
    longest_ms: u32,
    jitter: JitterBuffer<Arc<[u8]>>,
    latency: LatencyStats,
    fetching: HashSet<u64>,
    watchers: HashMap<PeerId, Instant>,
    segments: u64,
    skipped: u64,
    /// The playlist ([`State::window`]) starts here: after the last
    /// segment the jitter buffer skipped. A playlist cannot express a gap,
    /// and a skipped segment never comes, so the segments before it would
    /// otherwise hold the playlist back until they left the window.
    listed_from: u64,
    /// The creator said the stream ended after this segment (viewer), and
    /// when that was heard.
    end: Option<(Option<u64>, Instant)>,
    received: u64,
    uploaded: u64,
}

impl State {
    pub(super) fn new(id: Hash256, role: Role) -> State {
        State {
            id,
            role,
            segmenter: (role == Role::Broadcaster)
                .then(|| Segmenter::new(SegmenterConfig::default())),
            held: BTreeMap::new(),
            played: BTreeMap::new(),
            longest_ms: 0,
            jitter: JitterBuffer::new(WINDOW as u64, JITTER_MAX_WAIT_MS),
            latency: LatencyStats::default(),
            fetching: HashSet::new(),
            watchers: HashMap::new(),
            segments: 0,
            skipped: 0,
            listed_from: 0,
            end: None,
            received: 0,
            uploaded: 0,
        }
    }

    pub(super) fn add_watcher(&mut self, peer: PeerId, now: Instant) {
        if !self.watchers.contains_key(&peer) && self.watchers.len() >= MAX_WATCHERS {
            // Forget the one heard from least recently.
            if let Some(oldest) = self
                .watchers
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(p, _)| *p)
            {
                self.watchers.remove(&oldest);
            }
        }
        self.watchers.insert(peer, now);
    }

    /// The creator's verified end (viewer); the first one counts.
    pub(super) fn on_end(&mut self, last_seq: Option<u64>, now: Instant) {
        if self.role == Role::Viewer && self.end.is_none() {
            self.end = Some((last_seq, now));
        }
    }

    pub(super) fn count_upload(&mut self, bytes: u64) {
        self.uploaded = self.uploaded.saturating_add(bytes);
    }

    /// An announcement of `seq` was heard (viewer): whether to start
    /// fetching it (then it counts as being fetched).
    pub(super) fn want(&mut self, seq: u64) -> bool {
        self.jitter.note_newest(seq);
        let stale = self.jitter.next_seq().is_some_and(|n| seq < n);
        !stale && !self.held.contains_key(&seq) && self.fetching.insert(seq)
    }

    /// Whom a fetch of `seq` asks (the watchers), or `None` once playback
    /// moved past it.
    pub(super) fn fetch_peers(&self, seq: u64) -> Option<Vec<PeerId>> {
        if self.jitter.next_seq().is_some_and(|n| seq < n) {
            return None;
        }
        Some(self.watchers.keys().copied().collect())
    }

    pub(super) fn fetch_failed(&mut self, seq: u64) {
        self.fetching.remove(&seq);
    }

    /// Keeps a verified segment for serving and, on a viewer, feeds the
    /// jitter buffer.
    /// `fetch_ms` is how long fetching it took (0 for the broadcaster's own).
    pub(super) fn hold(
        &mut self,
        ann: SegmentAnnouncement,
        data: Arc<[u8]>,
        fetch_ms: u64,
        now_ms: u64,
    ) {
        let seq = ann.seq;
        let captured = ann.captured_ms;
        let duration_ms = ann.duration_ms;
        self.held.insert(
            seq,
            Held {
                ann,
                data: data.clone(),
                at: Instant::now(),
                served: 0,
                fetch_ms,
            },
        );
        while self.held.len() > WINDOW {
            self.held.pop_first();
        }
        self.fetching.remove(&seq);
        match self.role {
            Role::Broadcaster => {
                self.segments = self.segments.saturating_add(1);
                self.play(Played::new(seq, duration_ms, 0, 0, data));
            }
            Role::Viewer => {
                self.received = self.received.saturating_add(data.len() as u64);
                if let Err(e) = self.jitter.insert(seq, data, captured, now_ms) {
                    debug!(target: "media", stream = %self.id, seq, error = %e, "segment not buffered");
                }
                self.drain(now_ms);
            }
        }
        self.trim_played();
    }

    /// Plays what the jitter buffer lets go of; whether anything played.
    fn drain(&mut self, now_ms: u64) -> bool {
        let mut played = false;
        for p in self.jitter.pop_ready(now_ms) {
            match p {
                Popped::Segment {
                    seq,
                    data,
                    latency_ms,
                } => {
                    self.latency.record(latency_ms);
                    self.segments = self.segments.saturating_add(1);
                    let (duration_ms, fetch_ms) = self
                        .held
                        .get(&seq)
                        .map_or((1, 0), |h| (h.ann.duration_ms, h.fetch_ms));
                    self.play(Played::new(seq, duration_ms, latency_ms, fetch_ms, data));
                    played = true;
                }
                Popped::Skipped { from, to } => {
                    self.skipped = self.skipped.saturating_add(to.saturating_sub(from));
                    self.listed_from = self.listed_from.max(to);
                    info!(target: "media", stream = %self.id, from, to, "skipped segments that did not arrive in time");
                }
            }
        }
        played
    }

    fn play(&mut self, p: Played) {
        self.longest_ms = self.longest_ms.max(p.duration_ms);
        self.played.insert(p.seq, p);
    }

    pub(super) fn longest_ms(&self) -> u32 {
        self.longest_ms
    }

    fn trim_played(&mut self) {
        while self.played.len() > WINDOW {
            self.played.pop_first();
        }
    }

    /// The periodic work: forget silent watchers; on a viewer, play what
    /// waited long enough and check for the end.
    pub(super) fn tick(&mut self, now: Instant, now_ms: u64) -> Ticked {
        self.watchers
            .retain(|_, t| now.duration_since(*t) < WATCHER_TTL);
        if self.role != Role::Viewer {
            return Ticked::default();
        }
        let played = self.drain(now_ms);
        self.trim_played();
        let finished = self.end.is_some_and(|(last, at)| {
            let caught_up = match (last, self.jitter.next_seq()) {
                (None, _) => true,
                (Some(l), Some(next)) => next > l,
                (Some(_), None) => false,
            };
            caught_up || now.duration_since(at) >= END_GRACE
        });
        Ticked { played, finished }
    }

    /// Answers a peer's request for segment `seq`; a broadcaster with
    /// other watchers hands a fresh segment to [`SEED_COPIES`] peers only.
    pub(super) fn serve(&mut self, seq: u64, peer: PeerId, now: Instant) -> Served {
        let others_watching = self.watchers.keys().any(|w| *w != peer);
        let role = self.role;
        let Some(h) = self.held.get_mut(&seq) else {
            return Served::NotFound;
        };
        if role == Role::Broadcaster
            && h.served >= SEED_COPIES
            && others_watching
            && now.duration_since(h.at) < SEED_HOLD
        {
            return Served::Busy;
        }
        h.served = h.served.saturating_add(1);
        Served::Segment {
            announcement: h.ann.clone(),
            data: h.data.clone(),
        }
    }

    /// The newest segment held (cut, on the broadcaster).
    pub(super) fn last_held(&self) -> Option<u64> {
        self.held.keys().next_back().copied()
    }

    /// Played segments with `seq >= from`, oldest first, at most `max`.
    pub(super) fn played_from(&self, from: u64, max: usize) -> Vec<Played> {
        self.played
            .range(from..)
            .take(max)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The played segments a playlist lists: `(seq, duration_ms)`, oldest
    /// first, from after the last skipped one.
    pub(super) fn window(&self) -> Vec<(u64, u32)> {
        self.played
            .range(self.listed_from..)
            .map(|(_, p)| (p.seq, p.duration_ms))
            .collect()
    }

    /// Where a player joining now should start ([`join_point`] of the
    /// window): `None` when it may start where it likes.
    pub(super) fn join_at(&self) -> Option<u64> {
        let listed: Vec<(u64, bool)> = self
            .played
            .range(self.listed_from..)
            .map(|(_, p)| (p.seq, p.joinable))
            .collect();
        join_point(&listed)
    }

    pub(super) fn segment(&self, seq: u64) -> Option<Arc<[u8]>> {
        self.played.get(&seq).map(|p| p.data.clone())
    }

    pub(super) fn latencies(&self) -> LatencyStats {
        self.latency.clone()
    }

    pub(super) fn status(&self, manifest: &SignedManifest, ended: bool) -> LiveStatus {
        LiveStatus {
            id: self.id.to_string(),
            title: manifest.manifest.title.clone(),
            role: self.role,
            ended,
            last_seq: self.played.keys().next_back().copied(),
            final_seq: self.end.and_then(|(last, _)| last),
            segments: self.segments,
            skipped: self.skipped,
            buffered: self.jitter.buffered(),
            buffered_bytes: self.jitter.buffered_bytes(),
            latency_p50_ms: self.latency.percentile(50.0),
            latency_p95_ms: self.latency.percentile(95.0),
            latency_max_ms: self.latency.max(),
            received_bytes: self.received,
            uploaded_bytes: self.uploaded,
            watchers: self.watchers.len(),
        }
    }
}
