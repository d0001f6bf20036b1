//! The task that owns one live stream (see the module docs of
//! [`crate::broadcast`]): its commands, its loop, and the work that talks
//! to the network — cutting and announcing segments, starting fetches,
//! announcing the end.

use std::{sync::Arc, time::Instant};

use rusty_network::{PeerId, Topic};
use rusty_shared_types::Hash256;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use super::{
    fetch, state::State, LiveStatus, LiveStream, Played, Role, MAX_WAITERS, REANNOUNCE,
    STREAM_QUEUE, TICK,
};
use crate::{
    live::{CutSegment, LatencyStats},
    manifest::SignedManifest,
    service::{unix_ms, MediaError, MediaHandle},
    wire::{Announcement, SegmentAnnouncement, StreamEnd},
};

type Reply<T> = oneshot::Sender<T>;

/// What a [`LiveStream`] handle asks of its stream's task.
pub(crate) enum StreamCommand {
    // ---- from the media task, which never waits (`try_send`) -------------
    /// Peers that announced the stream: watchers to fetch from.
    AddWatchers(Vec<PeerId>),
    /// A verified announcement of a segment (viewer): fetch it.
    Announced {
        ann: SegmentAnnouncement,
        author: Option<PeerId>,
    },
    /// The creator's verified end of the stream (viewer).
    EndAnnounced {
        last_seq: Option<u64>,
    },
    // ---- the broadcaster's input ------------------------------------------
    /// Input bytes: cut what is complete, hold and announce it.
    Push {
        data: Vec<u8>,
        reply: Reply<Result<(), MediaError>>,
    },
    /// The last segment, then the signed end of stream.
    End {
        reply: Reply<Result<(), MediaError>>,
    },
    // ---- serving and fetching ---------------------------------------------
    /// A peer asks for segment `seq`.
    Serve {
        seq: u64,
        peer: PeerId,
        reply: Reply<Served>,
    },
    /// Bytes of segments sent to peers.
    Uploaded {
        bytes: u64,
    },
    /// Whom a fetch of `seq` asks next; `None`: playback moved past it.
    FetchPeers {
        seq: u64,
        reply: Reply<Option<Vec<PeerId>>>,
    },
    /// A fetched segment that verified.
    Arrived {
        ann: SegmentAnnouncement,
        data: Arc<[u8]>,
        /// How long the fetch took.
        fetch_ms: u64,
    },
    /// A fetch gave up on `seq` (a later announcement may start another).
    FetchFailed {
        seq: u64,
    },
    // ---- reads --------------------------------------------------------------
    Status {
        reply: Reply<LiveStatus>,
    },
    Latencies {
        reply: Reply<LatencyStats>,
    },
    PlayedFrom {
        from: u64,
        max: usize,
        reply: Reply<Vec<Played>>,
    },
    /// As `PlayedFrom`, answered once there is something or the stream
    /// ended (the asker's timeout drops the reply).
    WaitPlayed {
        from: u64,
        max: usize,
        reply: Reply<Vec<Played>>,
    },
    Window {
        reply: Reply<crate::http::LiveWindow>,
    },
    Segment {
        seq: u64,
        reply: Reply<Option<Arc<[u8]>>>,
    },
}

/// The answer to a segment request: a handle on the bytes, not a copy.
#[derive(Debug)]
pub(crate) enum Served {
    Segment {
        announcement: SegmentAnnouncement,
        data: Arc<[u8]>,
    },
    NotFound,
    Busy,
}

/// A running stream as the media task keeps it: the handle, and the stop
/// signal its task waits on. Dropping it (unwatch, a replaced broadcast,
/// the media task ending) ends the stream.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) stream: LiveStream,
    _stop: oneshot::Sender<()>,
}

impl Running {
    /// Spawns the task of stream `id`, with `watchers` as its first
    /// watchers. Called only by the media task, once per stream.
    pub(crate) fn spawn(
        svc: MediaHandle,
        id: Hash256,
        manifest: Arc<SignedManifest>,
        role: Role,
        watchers: Vec<PeerId>,
    ) -> Running {
        let (tx, commands) = mpsc::channel(STREAM_QUEUE);
        let (ended, ended_rx) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let mut state = State::new(id, role);
        let now = Instant::now();
        for p in watchers {
            state.add_watcher(p, now);
        }
        let task = StreamTask {
            manifest: manifest.clone(),
            svc: Some(svc),
            me: tx.downgrade(),
            commands,
            ended,
            state,
            waiters: Vec::new(),
        };
        tokio::spawn(task.run(stopped));
        Running {
            stream: LiveStream {
                id,
                manifest,
                role,
                commands: tx,
                ended: ended_rx,
            },
            _stop: stop,
        }
    }
}

/// A parked `wait_played`.
struct Waiter {
    from: u64,
    max: usize,
    reply: Reply<Vec<Played>>,
}

struct StreamTask {
    manifest: Arc<SignedManifest>,
    /// The service, for signing, publishing and fetching; dropped when the
    /// stream ends, so the service can close while reads of the final
    /// window go on.
    svc: Option<MediaHandle>,
    /// Weak, so the channel closes (and the task ends) when the last
    /// handle goes; upgraded to give fetch tasks a handle.
    me: mpsc::WeakSender<StreamCommand>,
    commands: mpsc::Receiver<StreamCommand>,
    ended: watch::Sender<bool>,
    state: State,
    waiters: Vec<Waiter>,
}

impl StreamTask {
    /// Live: ticks and commands until the stream ends; then commands
    /// (reads) until the last handle is gone.
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_announce = Instant::now();
        loop {
            let live = !self.is_ended();
            tokio::select! {
                biased;
                // Only ever dropped, never sent: the media task let go.
                _ = &mut stop, if live => self.finish(),
                _ = tick.tick(), if live => self.tick(&mut last_announce).await,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
            }
        }
        debug!(target: "media", stream = %self.state.id, "live stream task stopped");
    }

    fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    fn id(&self) -> Hash256 {
        self.state.id
    }

    /// The stream ends: no more ticks, fetches or announcements; the
    /// service is let go; parked readers get what there is.
    fn finish(&mut self) {
        self.ended.send_replace(true);
        self.svc = None;
        self.wake();
    }

    async fn tick(&mut self, last_announce: &mut Instant) {
        let now = Instant::now();
        let ticked = self.state.tick(now, unix_ms());
        match self.state.role {
            Role::Broadcaster => {
                let cut = self
                    .state
                    .segmenter
                    .as_mut()
                    .and_then(|s| s.tick(unix_ms()));
                if let Some(c) = cut {
                    if let Err(e) = self.emit(c).await {
                        debug!(target: "media", stream = %self.id(), error = %e, "segment not emitted");
                    }
                }
            }
            Role::Viewer => {
                if ticked.finished {
                    info!(target: "media", stream = %self.id(), "live stream ended");
                    self.finish();
                    return;
                }
                if ticked.played {
                    self.wake();
                }
                if now.duration_since(*last_announce) >= REANNOUNCE {
                    *last_announce = now;
                    if let Some(svc) = &self.svc {
                        svc.reannounce(self.state.id).await;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, cmd: StreamCommand) {
        // A dropped reply receiver means the asker gave up: nothing to do.
        match cmd {
            StreamCommand::AddWatchers(peers) => {
                let now = Instant::now();
                for p in peers {
                    self.state.add_watcher(p, now);
                }
            }
            StreamCommand::Announced { ann, author } => self.on_announcement(ann, author),
            StreamCommand::EndAnnounced { last_seq } => self.state.on_end(last_seq, Instant::now()),
            StreamCommand::Push { data, reply } => {
                let r = self.push(&data).await;
                let _ = reply.send(r);
            }
            StreamCommand::End { reply } => {
                let r = self.end_broadcast().await;
                let _ = reply.send(r);
            }
            StreamCommand::Serve { seq, peer, reply } => {
                let _ = reply.send(self.state.serve(seq, peer, Instant::now()));
            }
            StreamCommand::Uploaded { bytes } => self.state.count_upload(bytes),
            StreamCommand::FetchPeers { seq, reply } => {
                let peers = if self.is_ended() {
                    None
                } else {
                    self.state.fetch_peers(seq)
                };
                let _ = reply.send(peers);
            }
            StreamCommand::Arrived {
                ann,
                data,
                fetch_ms,
            } => {
                self.state.hold(ann, data, fetch_ms, unix_ms());
                self.wake();
            }
            StreamCommand::FetchFailed { seq } => self.state.fetch_failed(seq),
            StreamCommand::Status { reply } => {
                let _ = reply.send(self.state.status(&self.manifest, self.is_ended()));
            }
            StreamCommand::Latencies { reply } => {
                let _ = reply.send(self.state.latencies());
            }
            StreamCommand::PlayedFrom { from, max, reply } => {
                let _ = reply.send(self.state.played_from(from, max));
            }
            StreamCommand::WaitPlayed { from, max, reply } => {
                self.wait(Waiter { from, max, reply })
            }
            StreamCommand::Window { reply } => {
                let _ = reply.send(crate::http::LiveWindow {
                    segments: self.state.window(),
                    ended: false,
                    start: self.state.join_at(),
                    longest_ms: self.state.longest_ms(),
                });
            }
            StreamCommand::Segment { seq, reply } => {
                let _ = reply.send(self.state.segment(seq));
            }
        }
    }

    /// Answers a `wait_played` now if it can, else parks it until
    /// [`StreamTask::wake`] can.
    fn wait(&mut self, w: Waiter) {
        let got = self.state.played_from(w.from, w.max);
        if !got.is_empty() || self.is_ended() {
            let _ = w.reply.send(got);
            return;
        }
        self.waiters.retain(|w| !w.reply.is_closed());
        if self.waiters.len() >= MAX_WAITERS {
            let _ = w.reply.send(Vec::new());
            return;
        }
        self.waiters.push(w);
    }

    /// Answers the parked waiters that have something now (all of them
    /// once the stream ended).
    fn wake(&mut self) {
        let ended = self.is_ended();
        for w in std::mem::take(&mut self.waiters) {
            if w.reply.is_closed() {
                continue;
            }
            let got = self.state.played_from(w.from, w.max);
            if got.is_empty() && !ended {
                self.waiters.push(w);
            } else {
                let _ = w.reply.send(got);
            }
        }
    }

    // ---- broadcaster --------------------------------------------------------

    async fn push(&mut self, data: &[u8]) -> Result<(), MediaError> {
        if self.is_ended() {
            return Err(MediaError::Ended(self.id()));
        }
        let Some(segmenter) = self.state.segmenter.as_mut() else {
            return Err(MediaError::NotBroadcasting(self.id()));
        };
        for c in segmenter.push(data, unix_ms()) {
            self.emit(c).await?;
        }
        Ok(())
    }

    /// Signs a cut segment, holds it and announces it. Only this task
    /// cuts and emits, so announcements leave in sequence order.
    async fn emit(&mut self, c: CutSegment) -> Result<(), MediaError> {
        let id = self.id();
        let Some(svc) = self.svc.clone() else {
            return Err(MediaError::Ended(id));
        };
        let ann = SegmentAnnouncement::sign(
            &svc.shared.key,
            id,
            c.seq,
            &c.data,
            c.captured_ms,
            c.duration_ms,
        )
        .map_err(|e| MediaError::Download {
            id,
            reason: format!("segment {}: {e}", c.seq),
        })?;
        self.state.hold(ann.clone(), c.data.into(), 0, unix_ms());
        self.wake();
        let msg = Announcement::Segment(ann).encode();
        if let Err(e) = svc.shared.net.publish(Topic::Media, msg).await {
            debug!(target: "media", stream = %id, error = %e, "segment announcement not published");
        }
        Ok(())
    }

    async fn end_broadcast(&mut self) -> Result<(), MediaError> {
        let id = self.id();
        if self.is_ended() {
            return Err(MediaError::Ended(id));
        }
        let Some(segmenter) = self.state.segmenter.as_mut() else {
            return Err(MediaError::NotBroadcasting(id));
        };
        if let Some(c) = segmenter.finish(unix_ms()) {
            self.emit(c).await?;
        }
        if let Some(svc) = &self.svc {
            let end = StreamEnd::sign(&svc.shared.key, id, self.state.last_held(), unix_ms());
            let msg = Announcement::End(end).encode();
            if let Err(e) = svc.shared.net.publish(Topic::Media, msg).await {
                debug!(target: "media", stream = %id, error = %e, "end of stream not announced");
            }
        }
        self.finish();
        info!(target: "media", %id, "live broadcast ended");
        Ok(())
    }

    // ---- viewer ---------------------------------------------------------------

    /// A verified announcement: starts a fetch of the segment unless it is
    /// here, being fetched, or already past.
    fn on_announcement(&mut self, ann: SegmentAnnouncement, author: Option<PeerId>) {
        if self.state.role != Role::Viewer || self.is_ended() || !self.state.want(ann.seq) {
            return;
        }
        let (Some(svc), Some(commands)) = (self.svc.clone(), self.me.upgrade()) else {
            self.state.fetch_failed(ann.seq);
            return;
        };
        let stream = LiveStream {
            id: self.state.id,
            manifest: self.manifest.clone(),
            role: self.state.role,
            commands,
            ended: self.ended.subscribe(),
        };
        tokio::spawn(fetch::run(svc, stream, ann, author));
    }
}
