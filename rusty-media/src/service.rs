//! The media service: the node's side of the media layer on the P2P
//! network.
//!
//! - answers peers' `media` requests (manifests, chunk ranges, live
//!   segments) from the content store and the live windows, under the
//!   upload limit (`--media-upload-limit`), at low priority (`serve`);
//! - validates announcements on the `media` gossip topic (malformed ones
//!   are rejected and their sender penalised) and learns who provides what
//!   (`gossip`);
//! - publishes files (manifest, chunks, announcement, provider record);
//! - runs downloads ([`crate::downloader`]) and live streams
//!   ([`crate::broadcast`]).
//!
//! # Tasks and state
//!
//! One task owns the service's mutable state (`actor`): the provider
//! book, the downloads of this run and the handles of its live streams,
//! the upload token bucket, the announced-manifest fetches in flight, the
//! set of content this node provides, and the content keys in memory. A
//! [`MediaHandle`] is cheap to clone; its methods send that task a command
//! and, when they need an answer, await it on a `oneshot`. The task never
//! awaits anything itself, so the tasks it spawns (downloads, fetches,
//! live streams) may ask it freely. Each live stream's state is owned by a
//! task of its own, spawned once by this one (see [`crate::broadcast`]).
//!
//! Kept outside the task, in `Shared`, because they are read-mostly or
//! synchronise themselves and are on hot paths:
//! - the content store (`Arc<ContentStore>`): a store with its own locking,
//!   read by serving tasks and downloads directly so chunk bytes never go
//!   through the task;
//! - the network handle and the creator key (immutable);
//! - [`Counters`] and the announced-manifest count: atomics, written from
//!   serving and download tasks, read by `stream_status`;
//! - the serving slots and reply budget: semaphores bounding the serving
//!   tasks, taken without a round trip so a flood is shed at once;
//! - the shutdown signal (a `watch`): set by [`MediaHandle::stop`], read by
//!   background tasks to wind down.
//!
//! The node's P2P task hands it gossip and requests through
//! [`MediaHandle::on_gossip`] and [`MediaHandle::on_request`]; neither
//! blocks: serving runs in tasks bounded by a semaphore, and a request that
//! finds every slot taken is dropped (the requester asks someone else).
//!
//! # Spawning
//!
//! [`MediaHandle::open`] and [`MediaHandle::with_store`] spawn the task on
//! the current Tokio runtime. A supervisor that wants to watch it uses
//! [`MediaHandle::open_task`] or [`MediaHandle::new_task`] instead: they
//! return the handle and the task's future, to spawn as a critical task.
//! The task ends on [`MediaHandle::stop`] or when every handle is dropped.

pub(crate) mod actor;
mod book;
mod gossip;
pub(crate) mod io_pool;
mod serve;
#[cfg(test)]
mod tests;

pub(crate) use serve::DirectAnswer;

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use rusty_crypto::ed25519::SecretKey;
use rusty_network::{NetworkHandle, PeerId};
use rusty_shared_types::Hash256;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{info, warn};

use self::actor::{Actor, MediaCommand, COMMAND_QUEUE};
use crate::{
    broadcast::LiveStream,
    direct::server::DirectServer,
    downloader::{self, Download, DownloadStatus},
    http::LiveWindow,
    ladder::play::{LadderPlayError, LadderPlayer},
    manifest::{Manifest, ManifestError, ManifestFields, SignedManifest},
    selection::PolicyKind,
    store::{ContentInfo, ContentStore, StoreError},
};

/// Default `--media-cache-size`: 4 GiB of cached (unpinned) content.
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 30;
/// Requests served at once (until their reply is written out); more are
/// dropped (the requester goes elsewhere).
const SERVE_SLOTS: usize = 32;
/// Bytes of replies held until written out, at most, in KiB: a peer that
/// asks and never reads cannot make the node hold more ([`MediaResponse::Busy`]
/// beyond it).
///
/// [`MediaResponse::Busy`]: crate::wire::MediaResponse::Busy
const REPLY_BUDGET_KIB: usize = 64 * 1024;
/// Announced manifests kept in the catalog per run, at most, and the
/// largest one kept (about 512 MiB of content): announcements cannot fill
/// the disk with manifests of content nobody here asked for.
const MAX_ANNOUNCED_MANIFESTS: usize = 4_096;
const MAX_ANNOUNCED_MANIFEST_BYTES: usize = 256 * 1024;
/// How long one request to a peer may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The creator key's file name in the network datadir.
pub const CREATOR_KEY_FILE: &str = "media.key";
/// Content keys of priced content, under the network datadir.
pub const KEYS_DIR: &str = "media-keys";

/// Where and how the media service runs.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The network's datadir: content under `content/`, the catalog in
    /// `media-db/`, the creator key in `media.key`.
    pub dir: PathBuf,
    /// Cap on cached (unpinned) content, bytes (`--media-cache-size`).
    pub cache_bytes: u64,
    /// Upload limit for media replies, bytes per second; 0 = none
    /// (`--media-upload-limit`).
    pub upload_limit: u64,
    /// How downloads choose and load providers
    /// (`--media-provider-policy`).
    pub provider_policy: PolicyKind,
    /// Where the direct data channel listens ([`crate::direct`]); `None`:
    /// no data channel, every media byte goes over libp2p, both ways
    /// (`--media-data-bind`).
    pub data_bind: Option<std::net::SocketAddr>,
}

impl MediaConfig {
    pub fn new(dir: impl Into<PathBuf>) -> MediaConfig {
        MediaConfig {
            dir: dir.into(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            upload_limit: 0,
            provider_policy: PolicyKind::default(),
            data_bind: None,
        }
    }
}

/// Where a node's direct data channel ([`crate::direct`]) listens
/// (`--media-data-bind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataBind {
    /// At the IP address of the first TCP P2P listen address (loopback
    /// when there is none), on a port the system picks; peers learn it
    /// with their ticket.
    #[default]
    BesideP2p,
    /// Here (a fixed port to open in a firewall).
    At(std::net::SocketAddr),
    /// No data channel: every media byte goes over libp2p, both ways.
    Off,
}

impl DataBind {
    /// The address to bind, given the P2P listen addresses.
    pub fn resolve(self, p2p_listen: &[rusty_network::Multiaddr]) -> Option<std::net::SocketAddr> {
        use rusty_network::multiaddr::Protocol;
        match self {
            DataBind::Off => None,
            DataBind::At(addr) => Some(addr),
            DataBind::BesideP2p => {
                let ip = p2p_listen
                    .iter()
                    .find_map(|a| {
                        let mut ip = None;
                        let mut tcp = false;
                        for p in a.iter() {
                            match p {
                                Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
                                Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
                                Protocol::Tcp(_) => tcp = true,
                                _ => {}
                            }
                        }
                        ip.filter(|_| tcp)
                    })
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
                Some(std::net::SocketAddr::new(ip, 0))
            }
        }
    }
}

impl std::str::FromStr for DataBind {
    type Err = String;

    fn from_str(s: &str) -> Result<DataBind, String> {
        match s {
            "off" => Ok(DataBind::Off),
            "auto" => Ok(DataBind::BesideP2p),
            _ => s.parse().map(DataBind::At).map_err(|_| {
                format!("`{s}`: expected an address with a port (0.0.0.0:7335), `auto` or `off`")
            }),
        }
    }
}

/// Media service errors, as the RPC and the CLI show them.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creator key {}: {reason}", path.display())]
    CreatorKey { path: PathBuf, reason: String },
    #[error("no peer provides content {0} (no manifest found on the network)")]
    NotFound(Hash256),
    #[error("content {0} is a live stream: watch it instead")]
    IsLive(Hash256),
    #[error("content {0} is not a live stream")]
    NotLive(Hash256),
    #[error("this node is not broadcasting stream {0}")]
    NotBroadcasting(Hash256),
    #[error("live stream {0} has ended")]
    Ended(Hash256),
    #[error("download of {id} failed: {reason}")]
    Download { id: Hash256, reason: String },
    #[error("timed out waiting for bytes {start}..{end} of {id}")]
    ReadTimeout { id: Hash256, start: u64, end: u64 },
    #[error("the media service stopped")]
    Stopped,
    #[error("content {0} is priced: buy it first (rusty-cli stream buy {0}); the key arrives once the purchase is final")]
    NotPurchased(Hash256),
    #[error("content {0} is free: there is nothing to buy")]
    NotPriced(Hash256),
    #[error("content {id}: {reason}")]
    Crypt { id: Hash256, reason: String },
    #[error(
        "media data channel on {addr}: {reason} (choose another with --media-data-bind, or `off`)"
    )]
    DataChannel {
        addr: std::net::SocketAddr,
        reason: String,
    },
}

/// Counters over the life of the service.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes of chunks and segments sent to peers.
    pub uploaded_bytes: AtomicU64,
    /// Media requests answered with data.
    pub served_requests: AtomicU64,
    /// Requests answered `Busy` because of the upload limit.
    pub busy_replies: AtomicU64,
    /// Requests dropped because every serving slot was taken.
    pub shed_requests: AtomicU64,
    /// Verified chunk and segment bytes received.
    pub downloaded_bytes: AtomicU64,
    /// Chunks or segments that failed verification (their senders were
    /// penalised).
    pub bad_chunks: AtomicU64,
    /// Announcements rejected as malformed or forged.
    pub bad_announcements: AtomicU64,
    /// Chunks a download received that verified.
    pub chunks_ok: AtomicU64,
    /// Chunk requests a provider answered "not found".
    pub replies_not_found: AtomicU64,
    /// Chunk requests a provider answered "busy".
    pub busy_replies_received: AtomicU64,
    /// Chunk requests that timed out or failed (a stall: the provider is
    /// backed off).
    pub requests_failed: AtomicU64,
    /// Of `uploaded_bytes`, those sent over the direct data channel.
    pub direct_uploaded_bytes: AtomicU64,
    /// Of `downloaded_bytes`, those received over the direct data channel.
    pub direct_downloaded_bytes: AtomicU64,
}

/// A snapshot of [`Counters`] and the store, for `stream_status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceStats {
    pub uploaded_bytes: u64,
    pub served_requests: u64,
    pub busy_replies: u64,
    pub shed_requests: u64,
    pub downloaded_bytes: u64,
    pub bad_chunks: u64,
    pub bad_announcements: u64,
    pub chunks_ok: u64,
    pub replies_not_found: u64,
    pub busy_replies_received: u64,
    pub requests_failed: u64,
    pub direct_uploaded_bytes: u64,
    pub direct_downloaded_bytes: u64,
    /// The direct data channel's port; `None`: this node serves none.
    pub data_channel_port: Option<u16>,
    pub upload_limit: u64,
    pub store_bytes: u64,
    pub pinned_bytes: u64,
    pub cached_bytes: u64,
    pub cache_cap_bytes: u64,
    pub items: u64,
}

/// What every handle shares: read-mostly, or synchronising itself (see
/// the module docs for why each lives here rather than in the task).
pub(crate) struct Shared {
    pub(crate) store: Arc<ContentStore>,
    pub(crate) net: NetworkHandle,
    pub(crate) key: SecretKey,
    /// Bytes per second, 0 = none; the task's token bucket holds the rate
    /// too ([`MediaHandle::set_upload_limit`] changes both).
    upload_limit: AtomicU64,
    serve_slots: Arc<Semaphore>,
    reply_budget: Arc<Semaphore>,
    /// Manifests added to the catalog because of announcements, this run.
    announced_manifests: AtomicU64,
    pub(crate) counters: Counters,
    /// Set by [`MediaHandle::stop`]: the task ends, background work winds
    /// down.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Where content keys of priced content live, one owner-only file per
    /// content; `None`: kept in the task's memory only.
    keys_dir: Option<PathBuf>,
    /// The downloads' provider policy: 0 classic, 1 learned.
    provider_policy: AtomicU8,
    /// The direct data channel's server; `None`: media bytes go over
    /// libp2p only, both ways.
    pub(crate) direct: Option<DirectServer>,
}

/// The media service. Cheap to clone.
#[derive(Clone)]
pub struct MediaHandle {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::Sender<MediaCommand>,
}

impl std::fmt::Debug for MediaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaHandle")
            .field("peer", &self.shared.net.peer_id())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| MediaError::Stopped)?
}

/// Loads the creator key from `path`, or makes one (owner-only file).
pub fn load_or_create_creator_key(path: &Path) -> Result<SecretKey, MediaError> {
    let bad = |reason: String| MediaError::CreatorKey {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                bad(format!(
                    "expected 32 bytes, found {} (remove it to make a new key)",
                    bytes.len()
                ))
            })?;
            Ok(SecretKey::from_bytes(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            rusty_crypto::keystore::write_private(path, &key.to_bytes()).map_err(|source| {
                MediaError::Io {
                    path: path.to_owned(),
                    source,
                }
            })?;
            Ok(key)
        }
        Err(source) => Err(MediaError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl MediaHandle {
    /// Opens the content store and the creator key under `config.dir` and
    /// spawns the media task on the current Tokio runtime (panics outside
    /// one).
    pub fn open(config: &MediaConfig, net: NetworkHandle) -> Result<MediaHandle, MediaError> {
        let (handle, task) = Self::open_task(config, net)?;
        tokio::spawn(task);
        Ok(handle)
    }

    /// [`MediaHandle::open`] without spawning: the handle and the media
    /// task's future, for a supervisor to spawn and watch.
    pub fn open_task(
        config: &MediaConfig,
        net: NetworkHandle,
    ) -> Result<(MediaHandle, impl Future<Output = ()> + Send + 'static), MediaError> {
        let store = ContentStore::open(&config.dir, config.cache_bytes)?;
        let key = load_or_create_creator_key(&config.dir.join(CREATOR_KEY_FILE))?;
        let data_channel = match config.data_bind {
            Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|source| {
                MediaError::DataChannel {
                    addr,
                    reason: source.to_string(),
                }
            })?),
            None => None,
        };
        let (handle, task) = Self::new_task(
            Arc::new(store),
            key,
            net,
            config.upload_limit,
            Some(config.dir.join(KEYS_DIR)),
            data_channel,
        );
        handle.set_provider_policy(config.provider_policy);
        Ok((handle, task))
    }

    /// The provider policy downloads started from now on use.
    pub fn set_provider_policy(&self, policy: PolicyKind) {
        let v = match policy {
            PolicyKind::Classic => 0,
            PolicyKind::Learned => 1,
        };
        self.shared.provider_policy.store(v, Ordering::Relaxed);
    }

    pub fn provider_policy(&self) -> PolicyKind {
        match self.shared.provider_policy.load(Ordering::Relaxed) {
            1 => PolicyKind::Learned,
            _ => PolicyKind::Classic,
        }
    }

    /// A service over an open store (content keys in memory only); spawns
    /// the media task on the current Tokio runtime (panics outside one).
    pub fn with_store(
        store: Arc<ContentStore>,
        key: SecretKey,
        net: NetworkHandle,
        upload_limit: u64,
    ) -> MediaHandle {
        let (handle, task) = Self::new_task(store, key, net, upload_limit, None, None);
        tokio::spawn(task);
        handle
    }

    /// A service over an open store, not spawned: the handle and the media
    /// task's future. Content keys go to files under `keys_dir` when given;
    /// a direct data channel ([`crate::direct`]) is served on
    /// `data_channel` when given (the task's future runs it too).
    pub fn new_task(
        store: Arc<ContentStore>,
        key: SecretKey,
        net: NetworkHandle,
        upload_limit: u64,
        keys_dir: Option<PathBuf>,
        data_channel: Option<std::net::TcpListener>,
    ) -> (MediaHandle, impl Future<Output = ()> + Send + 'static) {
        // A listener that cannot be made non-blocking is no data channel:
        // downloads use libp2p alone.
        let (direct, direct_task) = match data_channel.map(DirectServer::new) {
            Some(Ok((server, task))) => (Some(server), Some(task)),
            Some(Err(e)) => {
                warn!(target: "media", error = %e, "data channel off");
                (None, None)
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            store,
            net,
            key,
            upload_limit: AtomicU64::new(upload_limit),
            serve_slots: Arc::new(Semaphore::new(SERVE_SLOTS)),
            reply_budget: Arc::new(Semaphore::new(REPLY_BUDGET_KIB)),
            announced_manifests: AtomicU64::new(0),
            counters: Counters::default(),
            shutdown: watch::Sender::new(false),
            keys_dir,
            provider_policy: AtomicU8::new(0),
            direct,
        });
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let actor = Actor::new(shared.clone(), tx.downgrade(), rx);
        let handle = MediaHandle {
            shared,
            commands: tx,
        };
        // The data channel's server ends with the service, as the actor
        // does: one future for the supervisor to watch.
        let server = direct_task
            .zip(handle.shared.direct.clone())
            .map(|(task, server)| {
                let svc = handle.clone();
                async move { task.run(svc, server).await }
            });
        let run = async move {
            match server {
                Some(server) => {
                    tokio::join!(actor.run(), server);
                }
                None => actor.run().await,
            }
        };
        (handle, run)
    }

    /// The port of this node's direct data channel, if it serves one.
    pub fn data_channel_port(&self) -> Option<u16> {
        self.shared.direct.as_ref().map(DirectServer::port)
    }

    /// Sends the media task a command that needs no answer;
    /// [`MediaError::Stopped`] once the task is gone (most callers need
    /// not care: what they told it no longer matters).
    pub(crate) async fn tell(&self, cmd: MediaCommand) -> Result<(), MediaError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|_| MediaError::Stopped)
    }

    /// Asks the media task; [`MediaError::Stopped`] once it is gone.
    pub(crate) async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<T>) -> MediaCommand,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(cmd(reply))
            .await
            .map_err(|_| MediaError::Stopped)?;
        answer.await.map_err(|_| MediaError::Stopped)
    }

    pub fn store(&self) -> &Arc<ContentStore> {
        &self.shared.store
    }

    pub fn peer_id(&self) -> PeerId {
        self.shared.net.peer_id()
    }

    /// The creator's public key this node signs manifests with.
    pub fn creator(&self) -> [u8; 32] {
        self.shared.key.public_key().0
    }

    /// The creator key itself: it signs manifests and, on chain, the
    /// spending of payments for this node's priced content.
    pub fn creator_secret(&self) -> SecretKey {
        self.shared.key.clone()
    }

    /// This node's buyer key for content `id` (derived, never stored).
    pub fn buyer_key(&self, id: &Hash256) -> crate::crypt::BuyerKey {
        crate::crypt::BuyerKey::derive(&self.shared.key.to_bytes(), id)
    }

    /// The content key of priced content `id`, when this node created or
    /// bought it.
    pub async fn content_key(&self, id: &Hash256) -> Option<crate::crypt::ContentKey> {
        let id = *id;
        if let Ok(Some(k)) = self
            .ask(|reply| MediaCommand::ContentKey { id, reply })
            .await
        {
            return Some(crate::crypt::ContentKey(k));
        }
        // Not seen this run: the file, read here (file I/O stays off the
        // media task), then remembered there.
        let path = self.shared.keys_dir.as_ref()?.join(id.to_string());
        let bytes = blocking(move || Ok(std::fs::read(path).ok()))
            .await
            .ok()
            .flatten()?;
        let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
        let _ = self.tell(MediaCommand::SetContentKey { id, key }).await;
        Some(crate::crypt::ContentKey(key))
    }

    /// Keeps the content key of `id` (owner-only file).
    pub async fn set_content_key(
        &self,
        id: &Hash256,
        key: &crate::crypt::ContentKey,
    ) -> Result<(), MediaError> {
        let id = *id;
        if let Some(dir) = &self.shared.keys_dir {
            let path = dir.join(id.to_string());
            let k = key.0;
            blocking(move || {
                rusty_crypto::keystore::write_private(&path, &k)
                    .map_err(|source| MediaError::Io { path, source })
            })
            .await?;
        }
        let (reply, answer) = oneshot::channel();
        let key = key.0;
        // Waits until the task has it, so a `content_key` right after
        // (from any handle) sees it.
        let sent = self
            .commands
            .send(MediaCommand::SetContentKey { id, key })
            .await
            .is_ok()
            && self
                .commands
                .send(MediaCommand::ContentKey { id, reply })
                .await
                .is_ok()
            && answer.await.is_ok();
        if sent || self.shared.keys_dir.is_some() {
            Ok(())
        } else {
            Err(MediaError::Stopped)
        }
    }

    /// Changes the upload limit for media replies (bytes per second, 0 =
    /// none) while the node runs. Tokens already in the bucket stay, up to
    /// the new burst: a rate that changes often still paces. Turned on
    /// from no limit, the bucket starts empty.
    pub async fn set_upload_limit(&self, bytes_per_sec: u64) -> Result<(), MediaError> {
        self.ask(|reply| MediaCommand::SetUploadLimit {
            bytes_per_sec,
            reply,
        })
        .await?;
        // Stored once the task holds the new rate: from here on the
        // replies' fast path (no limit, no round trip) and the bucket agree.
        self.shared
            .upload_limit
            .store(bytes_per_sec, Ordering::Relaxed);
        Ok(())
    }

    /// The manifest of `id`, fetched from the network if needed.
    pub async fn manifest(&self, id: Hash256) -> Result<Arc<SignedManifest>, MediaError> {
        let never = std::sync::atomic::AtomicBool::new(false);
        downloader::obtain_manifest(self, id, &never).await
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn stats(&self) -> ServiceStats {
        let c = &self.shared.counters;
        let s = self.shared.store.stats();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServiceStats {
            uploaded_bytes: get(&c.uploaded_bytes),
            served_requests: get(&c.served_requests),
            busy_replies: get(&c.busy_replies),
            shed_requests: get(&c.shed_requests),
            downloaded_bytes: get(&c.downloaded_bytes),
            bad_chunks: get(&c.bad_chunks),
            bad_announcements: get(&c.bad_announcements),
            chunks_ok: get(&c.chunks_ok),
            replies_not_found: get(&c.replies_not_found),
            busy_replies_received: get(&c.busy_replies_received),
            requests_failed: get(&c.requests_failed),
            direct_uploaded_bytes: get(&c.direct_uploaded_bytes),
            direct_downloaded_bytes: get(&c.direct_downloaded_bytes),
            data_channel_port: self.data_channel_port(),
            upload_limit: get(&self.shared.upload_limit),
            store_bytes: s.total_bytes,
            pinned_bytes: s.pinned_bytes,
            cached_bytes: s.cached_bytes,
            cache_cap_bytes: s.cap_bytes,
            items: s.items,
        }
    }

    // ---- providers ------------------------------------------------------

    pub(crate) async fn add_provider(&self, id: Hash256, peer: PeerId) {
        let _ = self.tell(MediaCommand::AddProvider { id, peer }).await;
    }

    pub(crate) async fn known_providers(&self, id: &Hash256) -> Vec<PeerId> {
        let id = *id;
        self.ask(|reply| MediaCommand::Providers { id, reply })
            .await
            .unwrap_or_default()
    }

    pub(crate) async fn forget_provider(&self, id: &Hash256, peer: &PeerId) {
        let (id, peer) = (*id, *peer);
        let _ = self.tell(MediaCommand::ForgetProvider { id, peer }).await;
    }

    /// Providers of `id` this node knows of (announcements, provider
    /// records).
    pub async fn providers(&self, id: &Hash256) -> Vec<PeerId> {
        self.known_providers(id).await
    }

    // ---- files ----------------------------------------------------------

    /// Publishes the file at `path`: builds and signs its manifest, imports
    /// it (pinned), announces it and registers as its provider. Returns the
    /// content id.
    pub async fn publish_file(
        &self,
        path: PathBuf,
        fields: ManifestFields,
    ) -> Result<Hash256, MediaError> {
        let store = self.shared.store.clone();
        let key = self.shared.key.clone();
        let id = blocking(move || {
            let io = |source| MediaError::Io {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(io)?;
            if fields.price == 0 {
                let signed = Manifest::build_from_reader(&key, file, fields)?;
                let file = std::fs::File::open(&path).map_err(io)?;
                return Ok((store.import(signed, std::io::BufReader::new(file))?, None));
            }
            // Priced: encrypt to a temporary file, publish the ciphertext.
            let ckey = crate::crypt::ContentKey::generate();
            let tmp = store
                .content_path(&Hash256::ZERO)
                .with_extension(format!("encrypting-{}", std::process::id()));
            let tmp_io = |source| MediaError::Io {
                path: tmp.clone(),
                source,
            };
            if let Some(d) = tmp.parent() {
                std::fs::create_dir_all(d).map_err(tmp_io)?;
            }
            let result = (|| -> Result<Hash256, MediaError> {
                let out = std::fs::File::create(&tmp).map_err(tmp_io)?;
                let mut w = std::io::BufWriter::new(out);
                crate::crypt::encrypt_stream(&ckey, std::io::BufReader::new(file), &mut w)
                    .map_err(|e| MediaError::Crypt {
                        id: Hash256::ZERO,
                        reason: e.to_string(),
                    })?;
                std::io::Write::flush(&mut w).map_err(tmp_io)?;
                drop(w);
                let mut fields = fields;
                fields.encrypted = true;
                let f = std::fs::File::open(&tmp).map_err(tmp_io)?;
                let signed = Manifest::build_from_reader(&key, f, fields)?;
                let f = std::fs::File::open(&tmp).map_err(tmp_io)?;
                Ok(store.import(signed, std::io::BufReader::new(f))?)
            })();
            let _ = std::fs::remove_file(&tmp);
            Ok((result?, Some(ckey)))
        })
        .await?;
        let (id, ckey) = id;
        if let Some(k) = ckey {
            self.set_content_key(&id, &k).await?;
        }
        info!(target: "media", %id, "published");
        self.announce_have(id, true).await;
        Ok(id)
    }

    /// Publishes bytes already in memory (tests, benchmarks, RPC uploads).
    pub async fn publish_bytes(
        &self,
        data: Vec<u8>,
        fields: ManifestFields,
    ) -> Result<Hash256, MediaError> {
        let store = self.shared.store.clone();
        let key = self.shared.key.clone();
        let id = blocking(move || {
            let signed = Manifest::build_from_reader(&key, data.as_slice(), fields)?;
            Ok(store.import(signed, data.as_slice())?)
        })
        .await?;
        self.announce_have(id, true).await;
        Ok(id)
    }

    /// Starts (or joins) the download of `id` and returns its handle (once
    /// the service stopped: a download already cancelled). Content that
    /// completed once and has left the store since (evicted from the
    /// cache) is downloaded again.
    pub async fn download(&self, id: Hash256) -> Arc<Download> {
        let store = self.shared.store.clone();
        // Unknown content (or a store that cannot say) counts as lacking.
        let stored = blocking(move || Ok(store.is_complete(&id).unwrap_or(false)))
            .await
            .unwrap_or(false);
        self.start_download(id, false, !stored).await
    }

    async fn start_download(
        &self,
        id: Hash256,
        sparse: bool,
        store_lacks_it: bool,
    ) -> Arc<Download> {
        self.ask(|reply| MediaCommand::Download {
            id,
            sparse,
            store_lacks_it,
            reply,
        })
        .await
        .unwrap_or_else(|_| Download::stopped(id))
    }

    /// Status of every download this run.
    pub async fn downloads(&self) -> Vec<DownloadStatus> {
        self.ask(|reply| MediaCommand::Downloads { reply })
            .await
            .unwrap_or_default()
            .iter()
            .map(|d| d.status())
            .collect()
    }

    pub async fn download_status(&self, id: &Hash256) -> Option<DownloadStatus> {
        let id = *id;
        self.ask(|reply| MediaCommand::DownloadOf { id, reply })
            .await
            .ok()
            .flatten()
            .map(|d| d.status())
    }

    /// Bytes `start..end` of the content `id` (for priced content: of its
    /// plaintext, once this node has the key; [`MediaError::NotPurchased`]
    /// before), fetching the chunks first (with priority) if they are not
    /// here yet; waits up to `timeout`.
    pub async fn read(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, MediaError> {
        self.read_as(id, start, end, timeout, false).await
    }

    /// [`MediaHandle::read`], but a download this starts is sparse: it
    /// fetches only the ranges read, not the rest of the file (a node
    /// prefetching one rendition of a ladder segment by segment).
    pub async fn read_sparse(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, MediaError> {
        self.read_as(id, start, end, timeout, true).await
    }

    async fn read_as(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
        sparse: bool,
    ) -> Result<Vec<u8>, MediaError> {
        let m = match self.shared.store.manifest(&id)? {
            Some(m) => m,
            None => self.manifest(id).await?,
        };
        if !m.manifest.encrypted {
            return self.read_stored_as(id, start, end, timeout, sparse).await;
        }
        let key = self
            .content_key(&id)
            .await
            .ok_or(MediaError::NotPurchased(id))?;
        let crypt_err = |reason: String| MediaError::Crypt { id, reason };
        let size = crate::crypt::plain_size(m.manifest.size)
            .ok_or_else(|| crypt_err("the ciphertext size is impossible".into()))?;
        if start >= end || end > size {
            return Err(StoreError::BadRange { start, end, size }.into());
        }
        let (chunks, offset) = crate::crypt::plain_range_to_chunks(start, end);
        let (first, _) = m.chunk_range(chunks.start)?;
        let (last, last_len) = m.chunk_range(chunks.end.saturating_sub(1))?;
        let cipher = self
            .read_stored_as(id, first, last.saturating_add(last_len), timeout, sparse)
            .await?;
        let mut plain = Vec::with_capacity(cipher.len());
        let mut at = 0usize;
        for index in chunks {
            let (_, len) = m.chunk_range(index)?;
            let len = usize::try_from(len).map_err(|_| crypt_err("chunk too long".into()))?;
            let piece = cipher
                .get(at..at.saturating_add(len))
                .ok_or_else(|| crypt_err("short read".into()))?;
            at = at.saturating_add(len);
            plain.extend(
                crate::crypt::decrypt_chunk(&key, index, piece)
                    .map_err(|e| crypt_err(format!("chunk {index}: {e}")))?,
            );
        }
        let want = usize::try_from(end - start).map_err(|_| crypt_err("range too long".into()))?;
        plain
            .get(offset..offset.saturating_add(want))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| crypt_err("decrypted range is short".into()))
    }

    /// Bytes `start..end` of `id` as stored (ciphertext for priced
    /// content), fetching them first (with priority) if they are not here
    /// yet; waits up to `timeout`.
    pub async fn read_stored(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, MediaError> {
        self.read_stored_as(id, start, end, timeout, false).await
    }

    async fn read_stored_as(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
        sparse: bool,
    ) -> Result<Vec<u8>, MediaError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut dl: Option<Arc<Download>> = None;
        loop {
            let store = self.shared.store.clone();
            let present = blocking(move || {
                let Some(m) = store.manifest(&id)? else {
                    return Ok(None);
                };
                if m.manifest.live {
                    return Err(MediaError::IsLive(id));
                }
                let chunks = m.chunks_for_range(start, end);
                let end_chunk = chunks.end;
                Ok(Some((store.first_missing(&id, chunks)?, end_chunk)))
            })
            .await?;
            let missing = match present {
                Some((None, _)) => {
                    let store = self.shared.store.clone();
                    match blocking(move || Ok(store.read_range(&id, start, end)?)).await {
                        // Evicted, or a chunk found corrupt (and unmarked),
                        // since the check above: look again, which fetches
                        // what is missing now.
                        Err(MediaError::Store(
                            StoreError::UnknownContent(_) | StoreError::ChunkMissing { .. },
                        )) if tokio::time::Instant::now() < deadline => continue,
                        read => return read,
                    }
                }
                Some((Some(chunk), end_chunk)) => Some((chunk, end_chunk)),
                None => None,
            };
            let d = match dl.clone() {
                // One that completed since, yet chunks are missing now:
                // the store lost them; the service starts another.
                Some(d) if !d.is_complete() => d,
                // Only missing chunks get here.
                _ => dl
                    .insert(self.start_download(id, sparse, true).await)
                    .clone(),
            };
            if let Some((chunk, end_chunk)) = missing {
                d.fetch_range(chunk, end_chunk);
            }
            if let Some(e) = d.error() {
                return Err(MediaError::Download { id, reason: e });
            }
            let wait = d.progressed();
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                return Err(MediaError::ReadTimeout { id, start, end });
            }
        }
    }

    pub fn list(&self) -> Result<Vec<ContentInfo>, MediaError> {
        Ok(self.shared.store.list()?)
    }

    pub fn search(&self, query: &str) -> Result<Vec<ContentInfo>, MediaError> {
        Ok(self.shared.store.search(query)?)
    }

    pub fn info(&self, id: &Hash256) -> Result<(ContentInfo, Arc<SignedManifest>), MediaError> {
        let m = self
            .shared
            .store
            .manifest(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        Ok((self.shared.store.info(id)?, m))
    }

    /// The node's player of the on-demand ladder whose master playlist is
    /// `master` (see [`crate::ladder::play`]).
    pub async fn ladder_player(&self, master: Hash256) -> Result<LadderPlayer, LadderPlayError> {
        self.ask(|reply| MediaCommand::LadderPlayer { master, reply })
            .await
            .map_err(|_| LadderPlayError::Stopped)
    }

    // ---- live -----------------------------------------------------------

    pub(crate) async fn live_stream(&self, id: &Hash256) -> Option<LiveStream> {
        let id = *id;
        self.ask(|reply| MediaCommand::LiveStream { id, reply })
            .await
            .ok()
            .flatten()
    }

    pub async fn live_streams(&self) -> Vec<LiveStream> {
        self.ask(|reply| MediaCommand::LiveStreams { reply })
            .await
            .unwrap_or_default()
    }

    /// Stops serving and watching every stream and download (shutdown):
    /// the media task ends them and stops. Does not wait (callable from
    /// `Drop`); see [`MediaHandle::stop_and_wait`].
    pub fn stop(&self) {
        self.shared.shutdown.send_replace(true);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// [`MediaHandle::stop`], then waits (up to `timeout`) until the media
    /// task and every background task have let go of the service, so the
    /// content store is closed when this handle is dropped (a restart can
    /// open it again).
    pub async fn stop_and_wait(self, timeout: Duration) {
        self.stop();
        let deadline = Instant::now() + timeout;
        while Arc::strong_count(&self.shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if Arc::strong_count(&self.shared) > 1 {
            warn!(target: "media", "media tasks still running at shutdown");
        }
    }
}

/// One content of this node as a [`crate::http::PlaybackSource`]: byte
/// ranges are read from the store, fetched first (with priority) when they
/// are not here yet; a live stream plays from its window.
#[derive(Debug, Clone)]
pub struct MediaSource {
    pub media: MediaHandle,
    pub id: Hash256,
}

impl crate::http::PlaybackSource for MediaSource {
    async fn info(&self) -> Result<crate::http::SourceInfo, String> {
        let never = std::sync::atomic::AtomicBool::new(false);
        crate::downloader::obtain_manifest(&self.media, self.id, &never)
            .await
            .map_err(|e| e.to_string())?;
        let (info, m) = self.media.info(&self.id).map_err(|e| e.to_string())?;
        let size = if m.manifest.encrypted {
            if self.media.content_key(&self.id).await.is_none() {
                return Err(MediaError::NotPurchased(self.id).to_string());
            }
            crate::crypt::plain_size(info.size).unwrap_or(0)
        } else {
            info.size
        };
        Ok(crate::http::SourceInfo {
            mime: info.mime,
            size: (!info.live).then_some(size),
            title: info.title,
        })
    }

    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        self.media
            .read(self.id, start, end, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())
    }

    async fn live_window(&self) -> Result<LiveWindow, String> {
        Ok(match self.media.live_stream(&self.id).await {
            // Whether it ended is read first: a window read after the end
            // is the final one (the stream's task answers reads after it).
            Some(s) => {
                let ended = s.is_ended();
                LiveWindow {
                    ended,
                    ..s.window().await
                }
            }
            None => LiveWindow::default(),
        })
    }

    async fn live_segment(&self, seq: u64) -> Result<Option<Vec<u8>>, String> {
        Ok(match self.media.live_stream(&self.id).await {
            Some(s) => s.segment(seq).await.map(|d| d.to_vec()),
            None => None,
        })
    }
}
