//! The media task: the one owner of the service's mutable state.
//!
//! Handles reach it only through [`MediaCommand`]s on a bounded channel;
//! it answers on `oneshot`s. Every command is handled without awaiting
//! (no I/O, no network, never a reply from another task), so the loop
//! cannot deadlock with the tasks it spawns (downloads, manifest fetches,
//! live streams), which in turn ask it for state. Live streams have tasks
//! of their own ([`crate::broadcast`]); this one spawns each once, keeps
//! its handle, and passes it gossip with `try_send` (never waiting on it).

use std::{
    collections::{HashMap, HashSet},
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use rusty_network::PeerId;
use rusty_shared_types::Hash256;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::{
    book::{ProviderBook, UploadLimiter},
    MediaHandle, Shared, MAX_ANNOUNCED_MANIFEST_BYTES,
};
use crate::{
    broadcast::{LiveStream, Role, Running},
    downloader::{self, Download},
    ladder::play::LadderPlayer,
    manifest::SignedManifest,
    wire::SegmentAnnouncement,
};

/// Commands queued for the media task, at most; senders wait beyond it
/// (gossip, which must not wait, drops what it learned instead).
pub(crate) const COMMAND_QUEUE: usize = 1_024;
/// Manifests fetched at once because of announcements.
const MAX_MANIFEST_FETCHES: usize = 8;
/// Finished downloads are forgotten once this many are remembered.
const MAX_DOWNLOADS: usize = 256;
/// Ladders played by the node at once (each a task with a little state).
const MAX_LADDERS: usize = 32;

/// What a [`MediaHandle`] asks of the media task.
pub(crate) enum MediaCommand {
    // ---- providers ------------------------------------------------------
    AddProvider {
        id: Hash256,
        peer: PeerId,
    },
    ForgetProvider {
        id: Hash256,
        peer: PeerId,
    },
    Providers {
        id: Hash256,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    // ---- gossip, already judged ----------------------------------------
    /// `author` says it has (or published) `id`; `fetch_manifest`: the
    /// manifest is not here and the announcement budget allows one.
    Announced {
        id: Hash256,
        author: PeerId,
        fetch_manifest: bool,
    },
    /// A verified segment announcement of a known live stream.
    Segment {
        ann: SegmentAnnouncement,
        author: Option<PeerId>,
    },
    /// A verified end of a live stream.
    StreamEnd {
        stream: Hash256,
        last_seq: Option<u64>,
    },
    /// Fetch the manifest of `id` from `from` into the catalog, unless a
    /// fetch of it runs or too many do.
    FetchManifest {
        id: Hash256,
        from: PeerId,
    },
    /// A background manifest fetch is over.
    ManifestFetched {
        id: Hash256,
    },
    // ---- downloads -----------------------------------------------------
    /// Starts or joins the download of `id`; `sparse`: fetching only what
    /// readers ask for (a running download is made whole when not).
    /// `store_lacks_it`: the asker found chunks of `id` missing from the
    /// store, so a download that completed has lost its content since
    /// (evicted from the cache or removed) and a new one starts.
    Download {
        id: Hash256,
        sparse: bool,
        store_lacks_it: bool,
        reply: oneshot::Sender<Arc<Download>>,
    },
    Downloads {
        reply: oneshot::Sender<Vec<Arc<Download>>>,
    },
    DownloadOf {
        id: Hash256,
        reply: oneshot::Sender<Option<Arc<Download>>>,
    },
    /// The node's player of the on-demand ladder under `master`
    /// (started on first use, again if its task ended).
    LadderPlayer {
        master: Hash256,
        reply: oneshot::Sender<LadderPlayer>,
    },
    // ---- live streams --------------------------------------------------
    LiveStream {
        id: Hash256,
        reply: oneshot::Sender<Option<LiveStream>>,
    },
    LiveStreams {
        reply: oneshot::Sender<Vec<LiveStream>>,
    },
    /// Starts the task of a broadcast of this node (a stream of that id
    /// already here is let go, which ends it).
    Broadcast {
        id: Hash256,
        manifest: Arc<SignedManifest>,
        reply: oneshot::Sender<LiveStream>,
    },
    /// Watch `id`: the running stream, else a new viewer over `manifest`
    /// (its task started here, so once per id); either way the known
    /// providers become its watchers.
    Watch {
        id: Hash256,
        manifest: Arc<SignedManifest>,
        reply: oneshot::Sender<LiveStream>,
    },
    /// Lets go of stream `id` (which ends it); the reply is its handle.
    Unwatch {
        id: Hash256,
        reply: oneshot::Sender<Option<LiveStream>>,
    },
    // ---- serving -------------------------------------------------------
    /// Upload tokens for a reply of `bytes`: how long to wait, or `None`
    /// (refuse as `Busy`).
    ReserveUpload {
        bytes: u64,
        reply: oneshot::Sender<Option<Duration>>,
    },
    /// A new upload rate, bytes per second (0 = none).
    SetUploadLimit {
        bytes_per_sec: u64,
        reply: oneshot::Sender<()>,
    },
    // ---- announcing ----------------------------------------------------
    /// Marks `id` provided; `true` the first time this run.
    StartProviding {
        id: Hash256,
        reply: oneshot::Sender<bool>,
    },
    // ---- content keys --------------------------------------------------
    ContentKey {
        id: Hash256,
        reply: oneshot::Sender<Option<[u8; 32]>>,
    },
    SetContentKey {
        id: Hash256,
        key: [u8; 32],
    },
}

/// The state only the media task touches.
pub(crate) struct Actor {
    /// The read-mostly part every handle shares; held (strongly) until the
    /// loop ends, so [`MediaHandle::stop_and_wait`] also waits for it.
    shared: Arc<Shared>,
    /// Weak, so the channel closes (and the loop ends) when the last
    /// handle goes; upgraded to hand a handle to the tasks it spawns.
    me: mpsc::WeakSender<MediaCommand>,
    commands: mpsc::Receiver<MediaCommand>,
    providers: ProviderBook,
    downloads: HashMap<Hash256, Arc<Download>>,
    /// Live streams by id; dropping an entry ends the stream's task.
    live: HashMap<Hash256, Running>,
    /// Ladders the node plays for players ([`crate::ladder::play`]);
    /// dropping an entry (shutdown) ends its task.
    ladders: HashMap<Hash256, LadderPlayer>,
    upload: UploadLimiter,
    manifest_fetches: HashSet<Hash256>,
    /// Content this node announced and registered as provider of.
    providing: HashSet<Hash256>,
    /// Content keys of priced content seen this run (the files under
    /// `keys_dir` are the durable copy).
    keys: HashMap<Hash256, [u8; 32]>,
}

impl Actor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        me: mpsc::WeakSender<MediaCommand>,
        commands: mpsc::Receiver<MediaCommand>,
    ) -> Actor {
        let upload =
            UploadLimiter::new(shared.upload_limit.load(Ordering::Relaxed), Instant::now());
        Actor {
            shared,
            me,
            commands,
            providers: ProviderBook::default(),
            downloads: HashMap::new(),
            live: HashMap::new(),
            ladders: HashMap::new(),
            upload,
            manifest_fetches: HashSet::new(),
            providing: HashSet::new(),
            keys: HashMap::new(),
        }
    }

    /// The loop: until [`MediaHandle::stop`] or the last handle is gone.
    /// Then every stream ends (its entry dropped) and every download is
    /// cancelled.
    pub(crate) async fn run(mut self) {
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            tokio::select! {
                biased;
                _ = async { let _ = shutdown.wait_for(|stopped| *stopped).await; } => break,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
            }
        }
        self.live.clear();
        self.ladders.clear();
        for d in self.downloads.values() {
            d.cancel();
        }
        debug!(target: "media", "media task stopped");
    }

    /// A handle for a task this one spawns; `None` once every handle is
    /// gone (nothing is left to work for).
    fn handle_for_task(&self) -> Option<MediaHandle> {
        Some(MediaHandle {
            shared: self.shared.clone(),
            commands: self.me.upgrade()?,
        })
    }

    fn handle(&mut self, cmd: MediaCommand) {
        // A dropped reply receiver means the asker gave up: nothing to do.
        match cmd {
            MediaCommand::AddProvider { id, peer } => self.providers.add(id, peer, Instant::now()),
            MediaCommand::ForgetProvider { id, peer } => self.providers.remove(&id, &peer),
            MediaCommand::Providers { id, reply } => {
                let _ = reply.send(self.providers.get(&id));
            }
            MediaCommand::Announced {
                id,
                author,
                fetch_manifest,
            } => {
                self.providers.add(id, author, Instant::now());
                if let Some(l) = self.live.get(&id) {
                    l.stream.add_watchers(vec![author]);
                }
                if fetch_manifest {
                    self.fetch_manifest(id, author);
                }
            }
            MediaCommand::Segment { ann, author } => {
                if let Some(a) = author.filter(|a| *a != self.shared.net.peer_id()) {
                    self.providers.add(ann.stream, a, Instant::now());
                }
                if let Some(l) = self.live.get(&ann.stream) {
                    l.stream.on_announcement(ann, author);
                }
            }
            MediaCommand::StreamEnd { stream, last_seq } => {
                if let Some(l) = self.live.get(&stream) {
                    l.stream.on_end(last_seq);
                }
            }
            MediaCommand::FetchManifest { id, from } => self.fetch_manifest(id, from),
            MediaCommand::ManifestFetched { id } => {
                self.manifest_fetches.remove(&id);
            }
            MediaCommand::Download {
                id,
                sparse,
                store_lacks_it,
                reply,
            } => {
                let _ = reply.send(self.download(id, sparse, store_lacks_it));
            }
            MediaCommand::Downloads { reply } => {
                let _ = reply.send(self.downloads.values().cloned().collect());
            }
            MediaCommand::DownloadOf { id, reply } => {
                let _ = reply.send(self.downloads.get(&id).cloned());
            }
            MediaCommand::LadderPlayer { master, reply } => {
                if let Some(p) = self.ladder_player(master) {
                    let _ = reply.send(p);
                }
            }
            MediaCommand::LiveStream { id, reply } => {
                let _ = reply.send(self.live.get(&id).map(|l| l.stream.clone()));
            }
            MediaCommand::LiveStreams { reply } => {
                let _ = reply.send(self.live.values().map(|l| l.stream.clone()).collect());
            }
            MediaCommand::Broadcast {
                id,
                manifest,
                reply,
            } => {
                // No handle left to spawn with: the asker sees `Stopped`.
                if let Some(h) = self.handle_for_task() {
                    let running = Running::spawn(h, id, manifest, Role::Broadcaster, Vec::new());
                    let _ = reply.send(running.stream.clone());
                    self.live.insert(id, running);
                }
            }
            MediaCommand::Watch {
                id,
                manifest,
                reply,
            } => {
                let providers = self.providers.get(&id);
                if let Some(l) = self.live.get(&id) {
                    l.stream.add_watchers(providers);
                    let _ = reply.send(l.stream.clone());
                } else if let Some(h) = self.handle_for_task() {
                    let running = Running::spawn(h, id, manifest, Role::Viewer, providers);
                    let _ = reply.send(running.stream.clone());
                    self.live.insert(id, running);
                }
            }
            MediaCommand::Unwatch { id, reply } => {
                let _ = reply.send(self.live.remove(&id).map(|l| l.stream.clone()));
            }
            MediaCommand::ReserveUpload { bytes, reply } => {
                let _ = reply.send(self.upload.reserve(bytes, Instant::now()));
            }
            MediaCommand::SetUploadLimit {
                bytes_per_sec,
                reply,
            } => {
                self.upload.set_rate(bytes_per_sec, Instant::now());
                let _ = reply.send(());
            }
            MediaCommand::StartProviding { id, reply } => {
                let _ = reply.send(self.providing.insert(id));
            }
            MediaCommand::ContentKey { id, reply } => {
                let _ = reply.send(self.keys.get(&id).copied());
            }
            MediaCommand::SetContentKey { id, key } => {
                self.keys.insert(id, key);
            }
        }
    }

    /// The running download of `id`, else a new one (a failed or
    /// cancelled one starts over).
    fn download(&mut self, id: Hash256, sparse: bool, store_lacks_it: bool) -> Arc<Download> {
        if let Some(d) = self.downloads.get(&id) {
            let out_of_date = store_lacks_it && d.is_complete();
            if !d.is_finished_with_error() && !out_of_date {
                if !sparse {
                    d.make_whole();
                }
                return d.clone();
            }
        }
        let Some(handle) = self.handle_for_task() else {
            return Download::stopped(id);
        };
        let d = Arc::new(if sparse {
            Download::new_sparse(id)
        } else {
            Download::new(id)
        });
        self.downloads.insert(id, d.clone());
        if self.downloads.len() > MAX_DOWNLOADS {
            self.downloads.retain(|_, d| !d.is_finished());
        }
        // The download asks this task for providers as it goes: it runs on
        // its own, never awaited here.
        tokio::spawn(downloader::run(handle, d.clone()));
        d
    }

    fn ladder_player(&mut self, master: Hash256) -> Option<LadderPlayer> {
        if let Some(p) = self.ladders.get(&master).filter(|p| !p.is_closed()) {
            return Some(p.clone());
        }
        let player = LadderPlayer::spawn(self.handle_for_task()?, master);
        self.ladders.retain(|_, p| !p.is_closed());
        if self.ladders.len() >= MAX_LADDERS {
            // The oldest is not known; any one goes (its players reopen it).
            let any = self.ladders.keys().next().copied();
            any.map(|k| self.ladders.remove(&k));
        }
        self.ladders.insert(master, player.clone());
        Some(player)
    }

    /// Fetches an announced manifest into the catalog (so `stream list`
    /// and `stream search` know it), at most a few at a time. The caller
    /// checked that the store lacks it (store reads stay off this task).
    fn fetch_manifest(&mut self, id: Hash256, from: PeerId) {
        if self.manifest_fetches.len() >= MAX_MANIFEST_FETCHES || !self.manifest_fetches.insert(id)
        {
            return;
        }
        let Some(handle) = self.handle_for_task() else {
            self.manifest_fetches.remove(&id);
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = handle
                .fetch_manifest_limited(id, from, MAX_ANNOUNCED_MANIFEST_BYTES)
                .await
            {
                debug!(target: "media", %id, peer = %from, error = %e, "announced manifest not fetched");
            }
            let _ = handle.tell(MediaCommand::ManifestFetched { id }).await;
        });
    }
}
