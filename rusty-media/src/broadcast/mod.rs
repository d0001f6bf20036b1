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
//!
//! # Tasks and state
//!
//! Each stream is owned by one task (`task`), spawned once by the media
//! task, which keeps the stream's [`LiveStream`] handle in its map of live
//! streams. The stream's task owns everything that changes: the segmenter
//! (broadcaster), the held and played windows, the jitter buffer, the
//! latency samples, the fetches in flight, the watchers and the end
//! (`state`). Everyone else — the media task, serving tasks, segment
//! fetches, RPC, playback — holds a [`LiveStream`] (cheap to clone) and
//! sends the task commands over a bounded channel, with a `oneshot` reply
//! when it needs an answer. Segment bytes are shared (`Arc<[u8]>`), so
//! answering a serve or a read clones a handle, never a segment.
//!
//! Because only the stream's task cuts segments (on a push or on its
//! tick) and publishes their announcements, announcements go out in
//! sequence order. The task runs a 50 ms tick (cutting pending input on
//! time, draining the jitter buffer, re-announcing a viewer) until the
//! stream ends: the broadcaster ends it, a viewer reaches the announced
//! end, or the media task lets go of it (`unwatch`, a replaced broadcast,
//! the media task stopping). From then on it holds no [`MediaHandle`] (so
//! [`MediaHandle::stop_and_wait`] sees the service released) and only
//! answers reads of its final window, until the last handle is dropped.

mod fetch;
mod state;
mod task;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use rusty_network::PeerId;
use rusty_shared_types::Hash256;
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot, watch,
};
use tracing::{debug, info};

pub(crate) use self::task::Running;
use self::task::{Served, StreamCommand};
use crate::{
    downloader::obtain_manifest,
    live::LatencyStats,
    manifest::{Manifest, ManifestFields, SignedManifest},
    service::{actor::MediaCommand, unix_ms, MediaError, MediaHandle},
    wire::{MediaResponse, SegmentAnnouncement},
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
/// How long a viewer waits, after the end was announced, for segments
/// still missing before it ends too.
const END_GRACE: Duration = Duration::from_secs(5);
/// How often a stream's task cuts pending input, drains its jitter buffer
/// and checks for the end.
const TICK: Duration = Duration::from_millis(50);
/// Commands queued for one stream's task, at most; senders wait beyond it
/// (the media task, which must not wait, drops gossip-derived commands
/// instead).
const STREAM_QUEUE: usize = 256;
/// `wait_played` callers parked in one stream's task, at most; more are
/// answered at once with nothing (as if their wait had timed out).
const MAX_WAITERS: usize = 1_024;

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
    /// How long fetching it from the swarm took, ms: from the fetch's
    /// start to the verified bytes (0 on the broadcaster).
    pub fetch_ms: u64,
    pub data: Arc<[u8]>,
    /// A player that starts here decodes it from its first frame
    /// ([`crate::live::ts::joinable`]; true when that cannot be told).
    pub joinable: bool,
}

impl Played {
    /// A segment played now, classified for joining players.
    pub(crate) fn new(
        seq: u64,
        duration_ms: u32,
        latency_ms: u64,
        fetch_ms: u64,
        data: Arc<[u8]>,
    ) -> Played {
        Played {
            seq,
            duration_ms,
            latency_ms,
            fetch_ms,
            joinable: crate::live::ts::joinable(&data) != Some(false),
            data,
        }
    }
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
    /// The stream's last segment, once its signed end is known (`None`
    /// before, or if it ended before any segment).
    pub final_seq: Option<u64>,
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

/// A stream this node broadcasts or watches: a handle on the task that
/// owns it (see the module docs). Cheap to clone; every clone talks to the
/// same task.
#[derive(Clone)]
pub struct LiveStream {
    pub id: Hash256,
    pub manifest: Arc<SignedManifest>,
    pub role: Role,
    commands: mpsc::Sender<StreamCommand>,
    /// Set once, by the stream's task, when the stream ends.
    ended: watch::Receiver<bool>,
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("ended", &self.is_ended())
            .finish_non_exhaustive()
    }
}

impl LiveStream {
    /// Whether the stream ended (also when its task is gone).
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow() || self.ended.has_changed().is_err()
    }

    /// Waits until the stream ended.
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        // An error means the task is gone: ended too.
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Whether `other` is a handle on the same stream (the same task).
    pub fn same_stream(&self, other: &LiveStream) -> bool {
        self.commands.same_channel(&other.commands)
    }

    /// The stream's state.
    pub async fn status(&self) -> LiveStatus {
        self.ask(|reply| StreamCommand::Status { reply })
            .await
            .unwrap_or_else(|| self.gone_status())
    }

    /// Latency samples so far (viewer).
    pub async fn latencies(&self) -> LatencyStats {
        self.ask(|reply| StreamCommand::Latencies { reply })
            .await
            .unwrap_or_default()
    }

    /// Played segments with `seq >= from`, oldest first, at most `max`.
    pub async fn played_from(&self, from: u64, max: usize) -> Vec<Played> {
        self.ask(|reply| StreamCommand::PlayedFrom { from, max, reply })
            .await
            .unwrap_or_default()
    }

    /// Waits until a segment `>= from` is played, the stream ends, or
    /// `timeout` passes; returns what is there.
    pub async fn wait_played(&self, from: u64, max: usize, timeout: Duration) -> Vec<Played> {
        let wait = self.ask(|reply| StreamCommand::WaitPlayed { from, max, reply });
        tokio::time::timeout(timeout, wait)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The playable window, oldest first, where a player joining now
    /// should start ([`crate::live::join_point`]), and the longest segment
    /// played so far; `ended` is left false (the caller knows it better,
    /// see [`LiveStream::is_ended`]).
    pub async fn window(&self) -> crate::http::LiveWindow {
        self.ask(|reply| StreamCommand::Window { reply })
            .await
            .unwrap_or_default()
    }

    /// The bytes of played segment `seq`, if it is in the window.
    pub async fn segment(&self, seq: u64) -> Option<Arc<[u8]>> {
        self.ask(|reply| StreamCommand::Segment { seq, reply })
            .await
            .flatten()
    }

    /// Answers a peer's segment request. The task hands out a handle on
    /// the segment; the copy into the reply is made here, on the serving
    /// task.
    pub(crate) async fn serve_segment(&self, seq: u64, peer: PeerId) -> MediaResponse {
        match self
            .ask(|reply| StreamCommand::Serve { seq, peer, reply })
            .await
        {
            Some(Served::Segment { announcement, data }) => MediaResponse::Segment {
                announcement,
                data: data.to_vec(),
            },
            Some(Served::Busy) => MediaResponse::Busy,
            Some(Served::NotFound) | None => MediaResponse::NotFound,
        }
    }

    /// Counts `bytes` of segments sent to peers.
    pub(crate) async fn count_upload(&self, bytes: u64) {
        let _ = self.commands.send(StreamCommand::Uploaded { bytes }).await;
    }

    // ---- from the media task: never waits ---------------------------------

    /// Peers that announced the stream (watchers, to fetch from).
    pub(crate) fn add_watchers(&self, peers: Vec<PeerId>) {
        if !peers.is_empty() {
            self.offer(StreamCommand::AddWatchers(peers));
        }
    }

    /// A verified announcement of segment `ann.seq` (viewer): fetch it.
    pub(crate) fn on_announcement(&self, ann: SegmentAnnouncement, author: Option<PeerId>) {
        if self.role == Role::Viewer && !self.is_ended() {
            self.offer(StreamCommand::Announced { ann, author });
        }
    }

    /// The creator's verified end-of-stream (viewer): the stream ends once
    /// everything up to `last_seq` played, or after [`END_GRACE`]. Must
    /// arrive, so a full queue hands it to a task that waits.
    pub(crate) fn on_end(&self, last_seq: Option<u64>) {
        if self.role != Role::Viewer {
            return;
        }
        match self
            .commands
            .try_send(StreamCommand::EndAnnounced { last_seq })
        {
            Err(TrySendError::Full(cmd)) => {
                let commands = self.commands.clone();
                tokio::spawn(async move {
                    let _ = commands.send(cmd).await;
                });
            }
            Ok(()) | Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Sends without waiting; dropped (gossip will say it again) when the
    /// stream's queue is full.
    fn offer(&self, cmd: StreamCommand) {
        if let Err(TrySendError::Full(_)) = self.commands.try_send(cmd) {
            debug!(target: "media", stream = %self.id, "stream queue full: gossip dropped");
        }
    }

    // ---- the broadcaster's input ------------------------------------------

    async fn push(&self, data: Vec<u8>) -> Result<(), MediaError> {
        self.ask(|reply| StreamCommand::Push { data, reply })
            .await
            .unwrap_or(Err(MediaError::Ended(self.id)))
    }

    async fn end_broadcast(&self) -> Result<(), MediaError> {
        self.ask(|reply| StreamCommand::End { reply })
            .await
            .unwrap_or(Err(MediaError::Ended(self.id)))
    }

    /// Asks the stream's task; `None` once it is gone.
    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> StreamCommand) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(cmd(reply)).await.ok()?;
        answer.await.ok()
    }

    /// What [`LiveStream::status`] says of a stream whose task is gone (it
    /// panicked): ended, nothing known.
    fn gone_status(&self) -> LiveStatus {
        LiveStatus {
            id: self.id.to_string(),
            title: self.manifest.manifest.title.clone(),
            role: self.role,
            ended: true,
            last_seq: None,
            final_seq: None,
            segments: 0,
            skipped: 0,
            buffered: 0,
            buffered_bytes: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            latency_max_ms: None,
            received_bytes: 0,
            uploaded_bytes: 0,
            watchers: 0,
        }
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
        let manifest = Arc::new(signed);
        self.ask(|reply| MediaCommand::Broadcast {
            id,
            manifest,
            reply,
        })
        .await?;
        self.announce_have(id, true).await;
        info!(target: "media", %id, "live broadcast started");
        Ok(id)
    }

    /// Feeds input bytes to a broadcast; returns once the segments they
    /// completed are announced.
    pub async fn broadcast_push(&self, id: Hash256, data: &[u8]) -> Result<(), MediaError> {
        self.broadcasting(&id).await?.push(data.to_vec()).await
    }

    /// Ends a broadcast: the pending input becomes the last segment, then
    /// the creator-signed end of stream is announced.
    pub async fn broadcast_end(&self, id: Hash256) -> Result<(), MediaError> {
        self.broadcasting(&id).await?.end_broadcast().await
    }

    async fn broadcasting(&self, id: &Hash256) -> Result<LiveStream, MediaError> {
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

    /// Starts watching live stream `id` (or returns the running watch).
    pub async fn watch(&self, id: Hash256) -> Result<LiveStream, MediaError> {
        if let Some(s) = self.live_stream(&id).await {
            return Ok(s);
        }
        let never = std::sync::atomic::AtomicBool::new(false);
        let manifest = obtain_manifest(self, id, &never).await?;
        if !manifest.manifest.live {
            return Err(MediaError::NotLive(id));
        }
        // The media task starts the stream's task unless one runs already
        // (two watchers racing here share one), with the known providers
        // as its first watchers.
        let stream = self
            .ask(|reply| MediaCommand::Watch {
                id,
                manifest,
                reply,
            })
            .await?;
        self.announce_have(id, false).await;
        info!(target: "media", %id, "watching live stream");
        Ok(stream)
    }

    /// Stops watching (or broadcasting) `id`; returns once it ended.
    pub async fn unwatch(&self, id: &Hash256) -> bool {
        let id = *id;
        match self.ask(|reply| MediaCommand::Unwatch { id, reply }).await {
            Ok(Some(s)) => {
                s.ended().await;
                true
            }
            _ => false,
        }
    }
}
